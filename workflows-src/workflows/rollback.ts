import { acrossVariants, variantPlan } from '../variants.js';
import type { Distro } from '../../actions/lib/declarations.js';
import {
  checkout,
  dateGuard,
  NOTIFY_CALL_SECRETS,
  notifyStep,
  Params,
  promotionConcurrency,
  registryToken,
  registryUser,
  type GenerateOptions,
  type Mode,
} from '../common.js';
import { callOutput, concat, failure, github, input, ne } from '../expr.js';
import { job, keel, type Triggers, type Workflow } from '../model.js';

/**
 * rollback.yml (dispatch, input `date`): points `stable` back at the digest `stable.<date>` names.
 * The date is checked first (a calendar date YYYYMMDD, before any step holds a token); the dated
 * tag is resolved once, and `promote` moves only `stable` (`tags: stable`), only when that digest
 * is still tagged `stable.<date>` and its signature verifies with the public key; its summary
 * shows `stable: <from> → <to>`. It runs in the promotion group (one move of stable at a time,
 * never cancelled) and the release environment, and notifies either way.
 */
export const ROLLBACK_SOURCE = 'workflows-src/workflows/rollback.ts';

export function rollbackWorkflow(decl: Distro, mode: Mode, opts: GenerateOptions = {}): Workflow {
  const p = new Params(mode, opts);
  if (!p.reusable && !decl.signing)
    throw new Error('rollback verifies the dated digest: declarations signing.public-key is required');
  // Each variant image rolls back to its own stable.<date>: variants are promoted together.
  const plan = variantPlan(decl, p.reusable);
  const image = plan.image(
    p.v('image', `${decl.image.registry}/${decl.image.name}`, {
      description: 'Image repository, registry/name: its stable tag is moved.',
      required: true,
    }),
  );
  const publicKey = p.v('public-key', decl.signing?.['public-key'] ?? '', {
    description:
      'Cosign public key (path in your repository, or PEM): the dated digest must verify before stable moves.',
    required: true,
  });
  const identity = p.v('signing-identity', decl.signing?.identity ?? 'repository', {
    description: 'Signed identity rule: repository or tags.',
    default: 'repository',
  });
  const stable = p.v('stable-tag', decl.tags.stable, { description: 'Stable tag word.', default: 'stable' });
  const date = p.reusable
    ? p.input('date', { description: 'Release date YYYYMMDD: stable goes back to stable.<date>.', required: true })
    : input('date');
  const dated = concat(stable, '.', date);
  const user = registryUser();
  const token = registryToken();

  const resolve = keel.resolve(
    'dated',
    { image: concat(image, ':', dated), username: user, password: token },
    { name: 'Pin stable.<date> to its digest' },
  );
  const promote = keel.promote(
    'promote',
    {
      'image-ref': resolve.outputs['image-ref'],
      tags: stable,
      'require-tag': dated,
      'public-key': publicKey,
      identity,
      username: user,
      password: token,
    },
    { name: 'Move stable (only stable) to that digest, verified' },
  );
  const rollback = acrossVariants(
    plan,
    job('rollback', {
      name: 'Roll stable back to a dated release',
      // Never on behalf of a pull request (a caller of the reusable workflow may run on one).
      if: ne(github('event_name'), 'pull_request'),
      runsOn: p.runsOn(),
      timeoutMinutes: 15,
      permissions: { contents: 'read', packages: 'write' },
      // Moving stable is a release: main only, with the environment's reviewers.
      environment: p.environment(decl),
      concurrency: promotionConcurrency(image),
      outputs: { digest: promote.outputs.digest },
      steps: [
        // Checked out first, so the failure notification below can run ./actions/notify; the
        // date is checked before anything reads it.
        checkout(),
        dateGuard({ name: 'Refuse a date that is not YYYYMMDD', value: date, what: 'input date' }),
        resolve,
        promote,
        notifyStep('notify', {
          name: 'Notify: stable rolled back',
          title: concat('Rollback: ', image),
          message: concat(stable, ' of ', image, ' now points at ', dated, ' (', promote.outputs.digest, ')'),
          priority: 4,
          tags: 'rewind',
        }),
        notifyStep('notify-failed', {
          name: 'Notify: the rollback failed',
          if: failure(),
          title: concat('Rollback failed: ', image),
          message: concat('Rolling ', stable, ' of ', image, ' back to ', dated, ' failed; ', stable, ' did not move.'),
          priority: 5,
          tags: 'rotating_light',
        }),
      ],
    }),
  );

  const on: Triggers = p.reusable
    ? {
        workflow_call: {
          inputs: p.callInputs,
          secrets: NOTIFY_CALL_SECRETS,
          outputs: {
            digest: { description: 'The digest stable now points at.', value: callOutput(rollback.refs.digest) },
          },
        },
      }
    : {
        workflow_dispatch: {
          inputs: {
            date: {
              description: 'Release date YYYYMMDD: stable goes back to the digest of stable.<date>.',
              required: true,
              type: 'string',
            },
          },
        },
      };
  return {
    file: p.reusable ? 'reusable-rollback.yml' : 'rollback.yml',
    source: ROLLBACK_SOURCE,
    name: p.reusable ? 'Keel rollback (reusable)' : `Keel rollback (${decl.image.name})`,
    on,
    permissions: {},
    actions: p.actionSource(),
    jobs: [rollback],
  };
}

import { acrossVariants, variantPlan } from '../variants.js';
import type { Distro } from '../../actions/lib/declarations.js';
import { Params, registryToken, registryUser, type GenerateOptions, type Mode } from '../common.js';
import { callOutput, concat, eq, github, input, lit, ne, or, secret } from '../expr.js';
import { job, keel, type Triggers, type Workflow } from '../model.js';

/**
 * cleanup.yml: deletes `pr-<N>` when that pull request closes, and weekly what has aged out
 * (`candidate.<date>` and `pr-<N>` older than declarations `cleanup.keep-days`); a dispatch can
 * ask for a `dry-run`. The cleanup hop never deletes a released digest (stable, stable.<date>,
 * <date>, the current candidate, or anything they reference).
 *
 * The job holds nothing but GITHUB_TOKEN with `packages: write`: no release secret, no
 * environment, and no checkout. A pull_request run is defined by the pull request's merge
 * commit, so even this repository's own workflow runs the *released* cleanup action pinned by
 * commit SHA (as the reusable workflows do) instead of `./actions/cleanup` from a checkout of
 * the pull request's code.
 */
export const CLEANUP_SOURCE = 'workflows-src/workflows/cleanup.ts';

/** Written next to the pull_request trigger. */
export const PULL_REQUEST_GUARDS = [
  'pull_request closed: deletes pr-<N> of the closed pull request. Guards:',
  '- the job checks out nothing and runs the released cleanup action pinned by commit SHA,',
  "  never the pull request's code;",
  '- it holds only GITHUB_TOKEN with packages: write (no environment, no release secret);',
  '- it runs only for a pull request from this repository (a fork never had a pr-<N> image).',
];

export function cleanupWorkflow(decl: Distro, mode: Mode, opts: GenerateOptions = {}): Workflow {
  const p = new Params(mode, opts);
  // Each variant image has its own pr-<N> and candidate.<date> tags.
  const plan = variantPlan(decl, p.reusable);
  const image = plan.image(
    p.v('image', `${decl.image.registry}/${decl.image.name}`, {
      description: 'Image repository to clean, registry/name.',
      required: true,
    }),
  );
  const dryRun = p.reusable
    ? p.input('dry-run', { description: 'List what would be deleted, delete nothing.', default: false })
    : // Empty on the schedule and on pull requests: real deletes then.
      or(input('dry-run'), false);
  const cleanup = keel.cleanup(
    'cleanup',
    {
      image,
      'keep-days': p.v('keep-days', decl.cleanup['keep-days'], {
        description: 'candidate.<date> and pr-<N> older than this many days are deleted.',
        default: 30,
      }),
      'dry-run': dryRun,
      'stable-tag': p.v('stable-tag', decl.tags.stable, { description: 'Stable tag word.', default: 'stable' }),
      'candidate-tag': p.v('candidate-tag', decl.tags.candidate, {
        description: 'Candidate tag word.',
        default: 'candidate',
      }),
      token: secret('GITHUB_TOKEN'),
      username: registryUser(),
      password: registryToken(),
    },
    { name: 'Delete expired and closed pull-request images (released digests never)' },
  );
  const cleanupJob = acrossVariants(
    plan,
    job('cleanup', {
      name: 'Clean up the registry',
      // A pull request only from this repository: a fork's closed pull request has no pr-<N>.
      if: or(
        ne(github('event_name'), 'pull_request'),
        eq(github('event.pull_request.head.repo.full_name'), github('repository')),
      ),
      runsOn: p.runsOn(),
      timeoutMinutes: 30,
      permissions: { packages: 'write' },
      // One cleanup of the repository at a time; a running one finishes.
      concurrency: { group: concat(lit('keel-cleanup-'), image), cancelInProgress: false },
      outputs: { deleted: cleanup.outputs.deleted, kept: cleanup.outputs.kept, planned: cleanup.outputs.planned },
      steps: [cleanup],
    }),
  );

  const on: Triggers = p.reusable
    ? {
        workflow_call: {
          inputs: p.callInputs,
          outputs: {
            deleted: {
              description: 'Deleted tags, "<tag> <digest>" lines.',
              value: callOutput(cleanupJob.refs.deleted),
            },
            kept: {
              description: 'Tags left in place, "<tag> <reason>" lines.',
              value: callOutput(cleanupJob.refs.kept),
            },
          },
        },
      }
    : {
        pull_request: { types: ['closed'], branches: ['main'] },
        schedule: [{ cron: '23 5 * * 1' }],
        workflow_dispatch: {
          inputs: {
            'dry-run': {
              description: 'List what would be deleted and delete nothing.',
              required: false,
              type: 'boolean',
              default: true,
            },
          },
        },
      };
  return {
    file: p.reusable ? 'reusable-cleanup.yml' : 'cleanup.yml',
    source: CLEANUP_SOURCE,
    name: p.reusable ? 'Keel cleanup (reusable)' : `Keel cleanup (${decl.image.name})`,
    on,
    ...(on.pull_request ? { triggerGuards: { pull_request: PULL_REQUEST_GUARDS } } : {}),
    permissions: {},
    actions: p.releasedActions(),
    jobs: [cleanupJob],
  };
}

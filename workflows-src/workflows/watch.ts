import type { Distro } from '../../actions/lib/declarations.js';
import {
  checkout,
  NOTIFY_CALL_SECRETS,
  notifyStep,
  Params,
  registryToken,
  registryUser,
  type GenerateOptions,
  type Mode,
} from '../common.js';
import { always, and, callOutput, cancelled, concat, eq, github, lit, ne, not, secret } from '../expr.js';
import { actionStep, job, keel, type Triggers, type Workflow } from '../model.js';
import { pins } from '../pins.js';
import { buildWorkflow } from './build.js';

/**
 * watch.yml (daily, and on dispatch): the server-side staleness alarm. The watch hop resolves
 * stable and candidate, computes the age of stable from its created label, writes status.json
 * (to the job summary and as an artifact) and fails the job while stable is older than
 * declarations `staleness.server-days` or unreadable, so the run is red every day until it is
 * fixed. It also re-runs the newest failed build run once when every failed step is marked
 * transient (`[transient]` in the step name: the network-bound steps of build.yml). A separate
 * job in the release environment sends the notification (it reads the ntfy secrets).
 */
export const WATCH_SOURCE = 'workflows-src/workflows/watch.ts';
export const WATCH_ARTIFACT = 'keel-watch-status';
export const WATCH_DIR = 'watch-out';

export function watchWorkflow(decl: Distro, mode: Mode, opts: GenerateOptions = {}): Workflow {
  const p = new Params(mode, opts);
  const image = p.v('image', `${decl.image.registry}/${decl.image.name}`, {
    description: 'Image repository to watch, registry/name.',
    required: true,
  });
  const maxAge = p.v('max-age-days', decl.staleness['server-days'], {
    description: 'stable older than this many days is stale: notified, and the run is red.',
    default: 9,
  });
  const buildFile = p.v('build-workflow', buildWorkflow(decl, 'dogfood', opts).file, {
    description: 'File name of your build workflow (its transiently failed run is re-run once); empty: no retry.',
    default: '',
  });
  const watch = keel.watch(
    'watch',
    {
      image,
      'stable-tag': p.v('stable-tag', decl.tags.stable, { description: 'Stable tag word.', default: 'stable' }),
      'candidate-tag': p.v('candidate-tag', decl.tags.candidate, {
        description: 'Candidate tag word.',
        default: 'candidate',
      }),
      'max-age-days': maxAge,
      'fail-when-stale': true,
      'output-dir': WATCH_DIR,
      token: secret('GITHUB_TOKEN'),
      workflow: buildFile,
      username: registryUser(),
      password: registryToken(),
    },
    { name: 'How old is stable; re-run a transiently failed build once' },
  );
  const watchJob = job('watch', {
    name: 'Watch the age of stable',
    runsOn: p.runsOn(),
    timeoutMinutes: 15,
    // actions: write re-runs the failed build; contents: read reads the branch head it checks.
    permissions: { actions: 'write', contents: 'read', packages: 'read' },
    // A second watch waits: two could otherwise both decide to re-run the same build.
    concurrency: { group: concat(lit('keel-watch-'), image), cancelInProgress: false },
    outputs: {
      stale: watch.outputs.stale,
      state: watch.outputs.state,
      'age-days': watch.outputs['age-days'],
      'stable-digest': watch.outputs['stable-digest'],
    },
    steps: [
      checkout(),
      watch,
      actionStep({
        name: 'Keep status.json (also when stale)',
        if: always(),
        uses: pins.uploadArtifact,
        with: {
          name: WATCH_ARTIFACT,
          path: `${WATCH_DIR}/status.json`,
          'retention-days': 30,
          'if-no-files-found': 'warn',
          overwrite: true,
        },
        local: { local: 'artifact-upload', name: lit(WATCH_ARTIFACT), paths: [lit(`${WATCH_DIR}/status.json`)] },
      }),
    ],
  });

  const notifyJob = job('notify', {
    name: 'Notify: stable is stale',
    needs: [watchJob],
    // The watch job fails while stable is stale; this job runs after it anyway (not when
    // cancelled), never on behalf of a pull request (a caller of the reusable workflow may run on one).
    if: and(ne(github('event_name'), 'pull_request'), not(cancelled()), eq(watchJob.refs.stale, 'true')),
    runsOn: p.runsOn(),
    timeoutMinutes: 5,
    permissions: { contents: 'read' },
    // The ntfy topic URL and token are secrets of the release environment.
    environment: p.environment(decl),
    outputs: {},
    steps: [
      checkout(),
      notifyStep('notify', {
        name: 'Notify',
        title: concat('Stale: ', image),
        message: concat(
          'stable of ',
          image,
          ' is ',
          watchJob.refs.state,
          ' (age ',
          watchJob.refs['age-days'],
          ' days, limit ',
          maxAge,
          '; digest ',
          watchJob.refs['stable-digest'],
          ').',
        ),
        priority: 4,
        tags: 'warning',
      }),
    ],
  });

  const on: Triggers = p.reusable
    ? {
        workflow_call: {
          inputs: p.callInputs,
          secrets: NOTIFY_CALL_SECRETS,
          outputs: {
            stale: { description: 'true when stable is stale or unreadable.', value: callOutput(watchJob.refs.stale) },
            state: { description: 'fresh, stale, critical or unreadable.', value: callOutput(watchJob.refs.state) },
          },
        },
      }
    : { schedule: [{ cron: '37 7 * * *' }], workflow_dispatch: {} };
  return {
    file: p.reusable ? 'reusable-watch.yml' : 'watch.yml',
    source: WATCH_SOURCE,
    name: p.reusable ? 'Keel watch (reusable)' : `Keel watch (${decl.image.name})`,
    on,
    permissions: {},
    actions: p.actionSource(),
    jobs: [watchJob, notifyJob],
  };
}

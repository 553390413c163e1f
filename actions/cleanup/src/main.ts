import { withFailureSummary } from '../../lib/action.js';
import { InputError } from '../../lib/errors.js';
import { createClient } from '../../lib/github.js';
import type { ActionIO } from '../../lib/io.js';
import {
  bool,
  int,
  oneOf,
  optionalInt,
  readInputs,
  registryInputs,
  releaseDate,
  repository,
  secret,
  httpsUrl,
  str,
} from '../../lib/inputs.js';
import { connect } from '../../lib/registry.js';
import { code, section, seconds, table } from '../../lib/summary.js';
import { pullRequestOf, releaseDateOf } from '../../lib/tags.js';
import { githubPackagesBackend, packageOf, registryBackend, type Backend } from './backends.js';
import { runCleanup, type CleanupReport } from './cleanup.js';
import { Snapshotter } from './inventory.js';

const WORD = /^[a-z][a-z0-9-]*$/;

export const inputs = {
  image: repository(true),
  'pull-request': optionalInt({ min: 1 }),
  'keep-days': int({ default: 30, min: 1, max: 3650 }),
  'release-date': releaseDate(),
  'dry-run': bool(false),
  backend: oneOf(['auto', 'registry', 'github-packages'] as const, 'auto'),
  token: secret(),
  'api-url': httpsUrl({
    default: 'https://api.github.com',
    expected: 'the https URL of the GitHub API (http only for loopback)',
  }),
  'stable-tag': str({ default: 'stable', pattern: WORD, expected: 'a lowercase tag word' }),
  'candidate-tag': str({ default: 'candidate', pattern: WORD, expected: 'a lowercase tag word' }),
  ...registryInputs,
};

/** cleanup: delete closed and expired pr-<N> and candidate.<date> images, never a released one. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const image = inp.image;
  const backendName =
    inp.backend === 'auto' ? (image.registry === 'ghcr.io' ? 'github-packages' : 'registry') : inp.backend;
  const pkg = packageOf(image.repository);
  if (backendName === 'github-packages') {
    if (!inp.token)
      throw new InputError(
        'token',
        undefined,
        'the github-packages backend needs a token that can delete package versions',
      );
    if (!pkg) throw new InputError('image', image.toString(), 'expected REGISTRY/OWNER/PACKAGE for GitHub Packages');
  }
  const closedPr = inp['pull-request'] ?? closedPullRequest(io);
  const today = inp['release-date'] ?? releaseDateOf(io.context.now());
  const started = Date.now();
  // GHCR reads with the same token when no registry password is given.
  const useToken = backendName === 'github-packages' && !inp.password;
  const client = connect(
    image,
    useToken ? { ...inp, username: inp.username || pkg!.owner, password: inp.token } : inp,
    io,
  );
  const backend: Backend =
    backendName === 'github-packages'
      ? await githubPackagesBackend(
          createClient({ token: inp.token, apiUrl: inp['api-url'], log: io, userAgent: 'keel-cleanup' }),
          pkg!,
          io,
        )
      : registryBackend(client, image.repository);
  const words = { stable: inp['stable-tag'], candidate: inp['candidate-tag'] };
  const report: CleanupReport = { deleted: [], untagged: [], deferred: [] };
  await withFailureSummary(
    () =>
      io.group('plan and delete', () =>
        runCleanup(
          new Snapshotter(backend, client, image.repository, words),
          backend,
          { dryRun: inp['dry-run'], options: { today, keepDays: inp['keep-days'], closedPr, words } },
          report,
          io,
        ),
      ),
    () =>
      publish(io, report, {
        image: image.toString(),
        backend: backend.name,
        dryRun: inp['dry-run'],
        closedPr,
        today,
        ms: Date.now() - started,
      }),
  );
}

/** The pull request a `pull_request` event closed (only `closed`: an open PR's image stays). */
function closedPullRequest(io: ActionIO): number | undefined {
  const ev = io.context.eventName;
  if ((ev !== 'pull_request' && ev !== 'pull_request_target') || io.context.event.action !== 'closed') return undefined;
  return pullRequestOf(io.context)?.number;
}

async function publish(
  io: ActionIO,
  report: CleanupReport,
  run: { image: string; backend: string; dryRun: boolean; closedPr?: number; today: string; ms: number },
): Promise<void> {
  const plan = report.plan;
  const planned = plan?.deletions.flatMap((d) => [
    ...d.parts.flatMap((p) => p.tags.map((t) => `${t} ${p.digest}`)),
    ...d.tags.map((t) => `${t} ${d.digest}`),
  ]);
  const kept = [...(plan?.kept ?? []), ...report.deferred];
  io.setOutput('deleted', report.deleted.map((d) => `${d.tag} ${d.digest}`).join('\n'));
  io.setOutput('kept', kept.map((k) => `${k.tag} ${k.reason}`).join('\n'));
  io.setOutput('planned', (planned ?? []).join('\n'));
  const verb = run.dryRun ? 'would delete' : 'deleted';
  const headline = !plan
    ? 'Failed before a plan was made.'
    : run.dryRun
      ? `Dry run: nothing was deleted; ${planned!.length} tag(s) would be.`
      : `Deleted ${report.deleted.length} tag(s) and ${report.untagged.length} untagged manifest(s).`;
  io.info(headline);
  const rows = (plan?.deletions ?? []).map((d) => [
    d.tags.map(code).join(' '),
    code(d.digest),
    d.why,
    d.parts.length
      ? d.parts.map((p) => `${p.role} ${p.tags.map(code).join(' ') || code(p.digest.slice(0, 19))}`).join(', ')
      : '—',
  ]);
  await io.summary(
    section(
      'cleanup',
      [
        `${code(run.image)} through ${run.backend}, ages counted to ${run.today}${run.closedPr ? `, closed pull request #${run.closedPr}` : ''} (${seconds(run.ms)}). ${headline}`,
        rows.length ? table(['tags', 'digest', `why (${verb})`, `${verb} with it`], rows) : 'Nothing to delete.\n',
        kept.length
          ? `<details><summary>kept (${kept.length})</summary>\n\n${table(
              ['tag', 'reason'],
              kept.map((k) => [code(k.tag), k.reason]),
            )}\n</details>\n`
          : '',
      ].join('\n\n'),
    ),
  );
}

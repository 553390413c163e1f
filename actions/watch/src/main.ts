import fs from 'node:fs';
import path from 'node:path';
import { errorMessage, UserError } from '../../lib/errors.js';
import { createClient } from '../../lib/github.js';
import type { ActionIO } from '../../lib/io.js';
import {
  bool,
  int,
  list,
  oneOf,
  readInputs,
  registryInputs,
  repository,
  secret,
  httpsUrl,
  str,
} from '../../lib/inputs.js';
import { connect } from '../../lib/registry.js';
import { code, section, table } from '../../lib/summary.js';
import { checkBuild, type BuildCheck } from './rerun.js';
import { bootStatus, buildSection, imageStatus, stateOf, type ImageStatus, type WatchStatus } from './status.js';

const WORD = /^[a-z][a-z0-9-]*$/;

export const inputs = {
  image: repository(true),
  'stable-tag': str({ default: 'stable', pattern: WORD, expected: 'a lowercase tag word' }),
  'candidate-tag': str({ default: 'candidate', pattern: WORD, expected: 'a lowercase tag word' }),
  'max-age-days': int({ default: 9, min: 1, max: 3650 }),
  'fail-when-stale': bool(false),
  'boot-verdict': oneOf(['', 'passed', 'failed'] as const, ''),
  'boot-status': str({ expected: 'a path to a JSON file (smoke-boot outputs or an earlier status.json)' }),
  'output-dir': str({ default: 'watch-out', expected: 'a directory for status.json' }),
  token: secret(),
  'api-url': httpsUrl({
    default: 'https://api.github.com',
    expected: 'the https URL of the GitHub API (http only for loopback)',
  }),
  repository: str({
    pattern: /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/(?!\.\.?$)[A-Za-z0-9_.-]{1,100}$/,
    expected: 'owner/name of the repository whose build workflow is watched',
  }),
  workflow: str({
    pattern: /^[A-Za-z0-9_.-]+\.ya?ml$|^\d+$/,
    expected: 'the build workflow file name (build.yml) or id',
  }),
  branch: str({ pattern: /^[A-Za-z0-9._/-]+$/, expected: 'a branch name' }),
  'transient-steps': list({ expected: 'step names whose failure is transient, one per line' }),
  ...registryInputs,
};

/** watch: how old is stable, did the candidate boot, and re-run a transiently failed build once. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const repoName = inp.repository || io.context.repository;
  if (inp.workflow && inp.token && !repoName) {
    throw new UserError("Input 'repository': needed with workflow (GITHUB_REPOSITORY is not set)");
  }
  const now = io.context.now();
  const image = inp.image;
  const client = connect(image, inp, io);
  const [stable, candidate] = await io.group(`read ${image.toString()}`, () =>
    Promise.all([
      imageStatus(client, image.repository, inp['stable-tag'], now),
      imageStatus(client, image.repository, inp['candidate-tag'], now),
    ]),
  );
  const state = stateOf(stable, inp['max-age-days']);
  const boot = bootStatus(inp['boot-verdict'], inp['boot-status']);
  if (boot.warning) io.warning(boot.warning);

  let check: BuildCheck | undefined;
  if (inp.workflow && inp.token) {
    const [owner, repo] = repoName.split('/') as [string, string];
    try {
      check = await io.group(`check ${inp.workflow}`, () =>
        checkBuild(
          createClient({ token: inp.token, apiUrl: inp['api-url'], log: io, userAgent: 'keel-watch' }),
          {
            owner,
            repo,
            workflow: inp.workflow,
            branch: inp.branch || undefined,
            transientSteps: inp['transient-steps'],
          },
          io,
        ),
      );
    } catch (e) {
      // The build check is secondary to the staleness verdict: it can fail without hiding it.
      io.warning(`watch: could not check ${inp.workflow}: ${errorMessage(e)}`);
    }
  } else if (inp.workflow) {
    io.info('watch: no token, so the build workflow is not checked');
  }

  const status: WatchStatus = {
    schemaVersion: 1,
    generatedAt: now.toISOString(),
    image: image.toString(),
    maxAgeDays: inp['max-age-days'],
    state,
    stale: state !== 'fresh',
    stable,
    candidate,
    boot: boot.boot,
    build: buildSection(check),
  };
  const file = writeStatus(inp['output-dir'], status);
  io.setOutput('status-file', file);
  io.setOutput('state', state);
  io.setOutput('stale', String(status.stale));
  io.setOutput('age-days', stable.ageDays === undefined ? '' : String(stable.ageDays));
  io.setOutput('stable-digest', stable.digest ?? '');
  io.setOutput('candidate-digest', candidate.digest ?? '');
  io.setOutput('retried-run', check?.rerun ? String(check.run!.id) : '');
  io.setOutput('retry-decision', check?.decision.reason ?? '');
  const verdict = verdictLine(status);
  io.info(`watch: ${verdict}`);
  await io.summary(summaryOf(status, verdict));
  if (status.stale && inp['fail-when-stale']) throw new UserError(`watch: ${verdict}`);
}

function verdictLine(s: WatchStatus): string {
  const t = s.stable.tag;
  if (s.state === 'unreadable') return `${t} of ${s.image} has no age (${s.stable.problem}): treated as stale`;
  const age = `${t} is ${s.stable.ageDays} day(s) old (max-age-days ${s.maxAgeDays})`;
  return s.state === 'fresh' ? `${age}: fresh` : `${age}: ${s.state.toUpperCase()}`;
}

/** Written whole to a temporary file, then renamed: a reader never sees half a status. */
function writeStatus(dir: string, status: WatchStatus): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'status.json');
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(status, null, 2)}\n`);
  fs.renameSync(tmp, file);
  return file;
}

function summaryOf(s: WatchStatus, verdict: string): string {
  const row = (i: ImageStatus) => [
    code(i.tag),
    i.digest ? code(i.digest) : '—',
    i.created ? `${i.created} (${i.createdFrom})` : (i.problem ?? '—'),
    i.ageDays ?? '—',
    i.version ?? '—',
  ];
  const lines = [
    `**${verdict}**`,
    table(['tag', 'digest', 'built', 'age (days)', 'version'], [row(s.stable), row(s.candidate)]),
    `Last boot: ${s.boot ? `${s.boot.verdict}${s.boot.digest ? ` (${code(s.boot.digest)})` : ''} — from ${s.boot.source}` : 'not given'}.`,
    s.build
      ? `Build (${code(s.build.workflow)} on ${code(s.build.branch)}): ${s.build.runUrl ? `[run ${s.build.runId}](${s.build.runUrl})` : 'no run'} — ${s.build.decision}.`
      : 'Build workflow: not checked.',
  ];
  return section('watch', lines.join('\n\n'));
}

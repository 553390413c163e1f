import { withFailureSummary } from '../../lib/action.js';
import { InputError } from '../../lib/errors.js';
import { apiFailure, createClient } from '../../lib/github.js';
import { publishStableRelease, releaseNotesFrom } from '../../lib/github-release.js';
import type { ActionIO } from '../../lib/io.js';
import { httpsUrl, readInputs, releaseDate, secret, str } from '../../lib/inputs.js';
import { code, section } from '../../lib/summary.js';
import { releaseDateOf, tagProblem } from '../../lib/tags.js';
import { httpsUnlessLoopbackProblem } from '../../lib/transport.js';

const API_URL_EXPECTED =
  'the https URL of the GitHub REST API (https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server; http only for loopback)';

export const inputs = {
  'release-date': releaseDate(),
  // The same rule as promote's stable-tag: the release is named after the tag promote wrote.
  'stable-tag': str({ default: 'stable', pattern: /^[a-z][a-z0-9-]*$/, expected: 'a lowercase tag word' }),
  'notes-file': str({ expected: 'the path of the changelog Markdown (missing or empty: notes saying so)' }),
  token: secret({ required: true }),
  repository: str({
    pattern: /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/(?!\.\.?$)[A-Za-z0-9_.-]{1,100}$/,
    expected: 'owner/name of the repository on GitHub (empty: this run’s repository)',
  }),
  'api-url': httpsUrl({ expected: API_URL_EXPECTED }),
  'target-commitish': str({
    pattern: /^[A-Za-z0-9._/-]+$/,
    expected: 'a commit SHA or branch name (empty: this run’s commit)',
  }),
};

/** github-release: the promotion's changelog as the notes of the GitHub Release stable.<date>. */
export async function run(io: ActionIO): Promise<void> {
  await withFailureSummary(
    () => publish(io),
    async (failure) => {
      if (failure !== undefined) await io.summary(section('github-release', `Failed: ${failure}`));
    },
  );
}

/** The inputs after the run's defaults: every check done here, before any request. */
function resolveInputs(io: ActionIO) {
  const inp = readInputs(io, inputs);
  const ctx = io.context;
  const repository = inp.repository || ctx.repository;
  if (!inputs.repository.schema.safeParse(repository).success || repository === '')
    throw new InputError('repository', repository, `expected ${inputs.repository.expected}`);
  const apiUrl = inp['api-url'] || ctx.apiUrl || 'https://api.github.com';
  const apiProblem = httpsUnlessLoopbackProblem(apiUrl);
  if (apiProblem) throw new InputError('api-url', apiUrl, `${apiProblem}: expected ${API_URL_EXPECTED}`);
  const date = inp['release-date'] ?? releaseDateOf(ctx.now());
  const stableTag = inp['stable-tag'];
  const problem = tagProblem(`${stableTag}.${date}`);
  if (problem) throw new InputError('stable-tag', stableTag, problem);
  const runUrl =
    ctx.repository && ctx.runId
      ? `${ctx.serverUrl.replace(/\/+$/, '')}/${ctx.repository}/actions/runs/${ctx.runId}`
      : undefined;
  return { ...inp, repository, apiUrl, date, stableTag, target: inp['target-commitish'] || ctx.sha, runUrl };
}

async function publish(io: ActionIO): Promise<void> {
  const inp = resolveInputs(io);
  const { notes, available } = releaseNotesFrom(inp['notes-file'], inp.runUrl);
  if (!available)
    io.warning(
      `github-release: no changelog at ${JSON.stringify(inp['notes-file'])}; the release notes say it was not available`,
    );
  const client = createClient({ token: inp.token, apiUrl: inp.apiUrl, log: io, userAgent: 'keel-github-release' });
  const release = await io.group(`GitHub Release ${inp.stableTag}.${inp.date} of ${inp.repository}`, () =>
    publishStableRelease(
      client,
      {
        repository: inp.repository,
        releaseDate: inp.date,
        stableTag: inp.stableTag,
        notes,
        ...(inp.target ? { targetCommitish: inp.target } : {}),
      },
      io,
    ).catch((err: unknown) => apiFailure(`GitHub Release ${inp.stableTag}.${inp.date} of ${inp.repository}`, err)),
  );
  io.setOutput('tag', release.tag);
  io.setOutput('url', release.htmlUrl);
  io.setOutput('action', release.action);
  await io.summary(
    section(
      'github-release',
      `${code(release.tag)}: ${release.action} ([release](${release.htmlUrl}))${available ? '' : '; the changelog was not available'}.`,
    ),
  );
}

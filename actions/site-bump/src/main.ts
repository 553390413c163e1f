import { withFailureSummary } from '../../lib/action.js';
import { InputError } from '../../lib/errors.js';
import type { ActionIO } from '../../lib/io.js';
import { bool, httpsUrl, list, oneOf, readInputs, secret, str, type InputDef } from '../../lib/inputs.js';
import { code, section, table } from '../../lib/summary.js';
import { z } from 'zod';
import { bump, type BumpOutcome } from './bump.js';
import { branchNameProblem, graphqlUrlFor } from './constants.js';
import { createClient } from '../../lib/github.js';

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const IDENT_EXPECTED = 'a constant name (letters, digits, _ and $, not starting with a digit)';
const VALUE = /^[^\r\n]+$/;

function pathProblem(p: string): string | undefined {
  if (p.startsWith('/') || p.split('/').some((c) => c === '..' || c === '.' || c === '')) {
    return 'expected a path relative to the repository root (no leading /, no . or .. components)';
  }
  return undefined;
}

/** `extra-constants`: `NAME=value` lines, applied in the same commit as `constant`/`value`. */
function extraConstants(): InputDef<{ name: string; value: string }[]> {
  const expected = 'newline-separated NAME=value lines';
  return {
    schema: z.string().transform((v, ctx) => {
      const out: { name: string; value: string }[] = [];
      for (const line of list().schema.parse(v)) {
        const i = line.indexOf('=');
        const name = i > 0 ? line.slice(0, i).trim() : '';
        const value = i > 0 ? line.slice(i + 1).trim() : '';
        const problem =
          i <= 0
            ? `expected ${expected}; ${JSON.stringify(line)} has no '='`
            : !IDENT.test(name)
              ? `${JSON.stringify(name)}: expected ${IDENT_EXPECTED}`
              : value === ''
                ? `${JSON.stringify(line)}: the value is empty`
                : out.some((o) => o.name === name)
                  ? `${name} is listed twice`
                  : undefined;
        if (problem) {
          ctx.addIssue({ code: 'custom', message: problem });
          return z.NEVER;
        }
        out.push({ name, value });
      }
      return out;
    }),
    expected,
  };
}

function branch(expected: string, dflt: string): InputDef<string> {
  const d = str({ default: dflt, expected });
  return {
    ...d,
    schema: d.schema.superRefine((v, ctx) => {
      const problem = branchNameProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: `expected ${expected}; it ${problem}` });
    }),
  };
}

export const inputs = {
  repository: str({
    required: true,
    pattern: /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/(?!\.\.?$)[A-Za-z0-9_.-]{1,100}$/,
    expected: 'owner/name of the site repository on GitHub',
  }),
  constant: str({ required: true, pattern: IDENT, expected: IDENT_EXPECTED }),
  value: str({ required: true, pattern: VALUE, expected: 'the new value, one line' }),
  'extra-constants': extraConstants(),
  token: secret(),
  files: list({ item: pathProblem, expected: 'newline-separated paths in the site repository' }),
  base: branch('a branch name', 'main'),
  'branch-prefix': str({
    default: 'keel/release-',
    pattern: /^[A-Za-z0-9._/-]*$/,
    expected: 'a branch name prefix (letters, digits, . _ / -)',
  }),
  'auto-merge': bool(true),
  'merge-method': oneOf(['squash', 'merge', 'rebase'] as const, 'squash'),
  'api-url': httpsUrl({
    default: 'https://api.github.com',
    expected:
      'the https URL of the GitHub REST API (https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server; http only for loopback)',
  }),
};

/** site-bump: point the download site at the new release through a PR (auto-merged when allowed). */
export async function run(io: ActionIO): Promise<void> {
  // On success bumpSite writes its own summary; a failure gets this one.
  await withFailureSummary(
    () => bumpSite(io),
    async (failure) => {
      if (failure !== undefined) await io.summary(section('site-bump', `Failed: ${failure}`));
    },
  );
}

async function bumpSite(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const constants = [
    { name: inp.constant, value: inp.value, input: 'value' },
    ...inp['extra-constants'].map((c) => ({ ...c, input: 'extra-constants' })),
  ];
  if (inp['extra-constants'].some((c) => c.name === inp.constant)) {
    throw new InputError(
      'extra-constants',
      inp['extra-constants'].map((c) => `${c.name}=${c.value}`).join('\n'),
      `repeats ${inp.constant}, already set by 'constant'`,
    );
  }
  const branchName = `${inp['branch-prefix']}${inp.value}`;
  const problem = branchNameProblem(branchName);
  if (problem) {
    const blame = branchNameProblem(`${inp['branch-prefix']}x`) ? 'branch-prefix' : 'value';
    throw new InputError(
      blame,
      blame === 'value' ? inp.value : inp['branch-prefix'],
      `the branch ${JSON.stringify(branchName)} ${problem}`,
    );
  }
  const [owner, repo] = inp.repository.split('/') as [string, string];
  io.setOutput('branch', branchName);
  io.setOutput('pr-number', '');
  io.setOutput('pr-url', '');
  io.setOutput('commit-sha', '');
  io.setOutput('auto-merge-enabled', 'false');

  if (!inp.token) {
    io.setOutput('result', 'skipped');
    io.warning(
      `site-bump: no token given, so ${inp.repository} was not bumped to ${inp.constant}=${inp.value}. Pass a token with contents and pull-requests write access to the site repository (e.g. secrets.SITE_BUMP_TOKEN) to enable it.`,
    );
    await io.summary(
      section(
        'site-bump',
        `Skipped: no \`token\`, so ${code(inp.repository)} was not bumped to ${code(`${inp.constant}=${inp.value}`)}.`,
      ),
    );
    return;
  }

  const ctx = io.context;
  const runUrl =
    ctx.repository && ctx.runId
      ? `${ctx.serverUrl.replace(/\/+$/, '')}/${ctx.repository}/actions/runs/${ctx.runId}`
      : undefined;
  const started = Date.now();
  const client = createClient({ token: inp.token, apiUrl: inp['api-url'], log: io, userAgent: 'keel-site-bump' });
  const outcome: BumpOutcome = await io.group(`bump ${inp.repository}`, () =>
    bump(
      client,
      {
        owner,
        repo,
        constants,
        files: [...new Set(inp.files)],
        base: inp.base,
        branch: branchName,
        autoMerge: inp['auto-merge'],
        mergeMethod: inp['merge-method'],
        graphqlUrl: graphqlUrlFor(inp['api-url']),
        runUrl,
      },
      io,
    ),
  );

  io.setOutput('result', outcome.result);
  if (outcome.result !== 'up-to-date') {
    io.setOutput('pr-number', String(outcome.pr.number));
    io.setOutput('pr-url', outcome.pr.url);
  }
  if (outcome.result === 'created') {
    io.setOutput('commit-sha', outcome.commitSha);
    io.setOutput('auto-merge-enabled', String(outcome.autoMerge === 'enabled'));
  }

  const headline =
    outcome.result === 'up-to-date'
      ? `Up to date: ${code(`${inp.repository}@${inp.base}`)} already has these values; nothing written.`
      : outcome.result === 'exists'
        ? `Pull request [#${outcome.pr.number}](${outcome.pr.url}) from ${code(branchName)} is already open; nothing written.`
        : `Opened [#${outcome.pr.number}](${outcome.pr.url}) from ${code(branchName)} (commit ${code(outcome.commitSha.slice(0, 12))}); auto-merge: ${
            outcome.autoMerge === 'enabled'
              ? `enabled (${inp['merge-method']})`
              : outcome.autoMerge === 'off'
                ? 'not requested'
                : `refused (${outcome.autoMergeMessage ?? ''})`
          }.`;
  await io.summary(
    section(
      'site-bump',
      `${headline}\n\n${table(
        ['constant', 'file', 'from', 'to', 'changed'],
        outcome.changes.map((c) => [
          code(c.name),
          code(`${c.path}:${c.line}`),
          code(c.from),
          code(c.to),
          c.changed ? 'yes' : 'no',
        ]),
      )}\n${Date.now() - started} ms`,
    ),
  );
}

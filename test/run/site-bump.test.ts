// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startGithubEmulator, type GithubEmulator } from '../../emulators/github/index.js';
import { recordingIO } from '../../actions/lib/io.js';
import { run } from '../../actions/site-bump/src/main.js';
import { fakeRunner } from '../harness/fake-runner.js';

/**
 * site-bump's run() through recordingIO against the in-process GitHub API emulator: rows of
 * inputs → result outputs, the PR and its branch, and what was written; bad input and a missing
 * token never reach the API.
 */
const TOKEN = 'ghp_tableTestToken0123456789abcdef';
const RELEASE = 'export const LATEST_ISO_DATE = "20250301";\nexport const LATEST_ISO_FILE = "os-20250301.iso";\n';
let emu: GithubEmulator;
beforeAll(async () => {
  const seed = { files: { 'README.md': '# site\n', 'src/lib/release.ts': RELEASE } };
  emu = await startGithubEmulator({
    token: TOKEN,
    repos: { 'acme/site': seed, 'acme/multi': seed, 'acme/noauto': { ...seed, allowAutoMerge: false } },
  });
});
afterAll(() => emu.close());

const bump = (inputs: Record<string, string>) => {
  const io = recordingIO(
    { token: TOKEN, 'api-url': emu.url, constant: 'LATEST_ISO_DATE', value: '20250415', ...inputs },
    { repository: 'acme/os', runId: '42', serverUrl: 'https://github.com' },
    fakeRunner(),
  );
  return { io, done: run(io) };
};
const fileAt = (repo: string, branch: string, file: string) => emu.state.repos.get(repo)!.files(branch)[file];

describe('site-bump run()', () => {
  it.each([
    ['a new release', 'acme/site', {}, 'created', 'true'],
    [
      'two constants in one commit',
      'acme/multi',
      { 'extra-constants': 'LATEST_ISO_FILE=os-20250415.iso' },
      'created',
      'true',
    ],
    ['a repository that refuses auto-merge', 'acme/noauto', {}, 'created', 'false'],
  ])('%s: opens the PR from keel/release-<value>', async (_what, repo, extra, result, autoMerge) => {
    const { io, done } = bump({ repository: repo, files: 'src/lib/release.ts', ...extra });
    await done;
    expect(io.outputs).toMatchObject({
      result,
      branch: 'keel/release-20250415',
      'pr-number': '1',
      'auto-merge-enabled': autoMerge,
    });
    expect(io.groups).toEqual([`bump ${repo}`]);
    expect(io.outputs['pr-url']).toMatch(/\/acme\/[a-z]+\/pull\/1$/);
    expect(io.outputs['commit-sha']).toMatch(/^[0-9a-f]{40}$/);
    const text = fileAt(repo, 'keel/release-20250415', 'src/lib/release.ts')!;
    expect(text).toContain('LATEST_ISO_DATE = "20250415"');
    if ('extra-constants' in extra) expect(text).toContain('LATEST_ISO_FILE = "os-20250415.iso"');
  });

  it('a second run finds the open PR and writes nothing', async () => {
    const before = emu.state.requests.filter((r) => r.method !== 'GET').length;
    const { io, done } = bump({ repository: 'acme/site', files: 'src/lib/release.ts' });
    await done;
    expect(io.outputs).toMatchObject({ result: 'exists', 'pr-number': '1', 'commit-sha': '' });
    expect(emu.state.requests.filter((r) => r.method !== 'GET').length).toBe(before);
  });

  it('without a token: skipped with a warning, no request', async () => {
    const before = emu.state.requests.length;
    const { io, done } = bump({ repository: 'acme/site', token: '' });
    await done;
    expect(io.outputs).toMatchObject({ result: 'skipped', 'pr-number': '', branch: 'keel/release-20250415' });
    expect(io.logs.find((l) => l.level === 'warning')?.message).toMatch(/no token given/);
    expect(emu.state.requests.length).toBe(before);
  });

  it.each([
    [
      'a bad repository',
      { repository: 'not a repo' },
      /^Input 'repository' has value "not a repo": expected owner\/name/,
    ],
    [
      'a bad constant',
      { repository: 'acme/site', constant: '1X' },
      /^Input 'constant' has value "1X": expected a constant name/,
    ],
    [
      'a path outside the repository',
      { repository: 'acme/site', files: '../etc/passwd' },
      /^Input 'files'.*relative to the repository root/,
    ],
    [
      'a repeated constant',
      { repository: 'acme/site', 'extra-constants': 'LATEST_ISO_DATE=1' },
      /^Input 'extra-constants'.*repeats LATEST_ISO_DATE/,
    ],
    [
      'a value that makes a bad branch',
      { repository: 'acme/site', value: 'a..b' },
      /^Input 'value' has value "a\.\.b": the branch/,
    ],
  ])('refuses %s before any request, with a failure summary', async (_what, extra, message) => {
    const before = emu.state.requests.length;
    const { io, done } = bump(extra);
    await expect(done).rejects.toThrow(message);
    expect(emu.state.requests.length).toBe(before);
    expect(io.summaries.join('')).toMatch(/### site-bump\n\nFailed: /);
  });
});

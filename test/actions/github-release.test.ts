// test-kind: integration
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { errors, runAction, warnings, type StepResult } from '../harness/run-action.js';
import { startGithubEmulator, type GithubEmulator } from '../../emulators/github/index.js';

/**
 * github-release, bundled and driven the runner's way (the dist bundle in a child process, inputs
 * as INPUT_* variables, outputs through GITHUB_OUTPUT), against the local GitHub API emulator.
 * Asserts what the repository holds afterwards and which requests were made.
 */
const TOKEN = 'ghp_githubReleaseBundleToken0123456789';
const NOTES = '## Kernel\n\n6.12.1 → 6.12.9\n\n## Added\n\n- htop 3.4.0\n';

describe('github-release (bundled, driven the runner way, GitHub API emulator)', () => {
  let emu: GithubEmulator;
  let dir: string;
  let mark = 0;
  beforeAll(async () => {
    emu = await startGithubEmulator({ token: TOKEN, repos: { 'acme/os': { files: { 'README.md': '# os\n' } } } });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-ghrel-int-'));
  });
  afterAll(async () => {
    await emu.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    mark = emu.state.requests.length;
  });

  const requests = () => emu.state.requests.slice(mark);
  const releases = () => emu.state.releases.list(emu.state.repo('acme/os'));
  const notes = (text: string) => {
    const p = path.join(dir, `changelog-${Math.random().toString(36).slice(2)}.md`);
    fs.writeFileSync(p, text);
    return p;
  };
  const publish = (inputs: Record<string, string>): Promise<StepResult> =>
    runAction({
      action: 'github-release',
      inputs: { token: TOKEN, 'release-date': '20260401', ...inputs },
      env: {
        GITHUB_REPOSITORY: 'acme/os',
        GITHUB_API_URL: emu.url,
        GITHUB_SHA: emu.state.repo('acme/os').resolve('main')!,
        GITHUB_RUN_ID: '7',
        GITHUB_SERVER_URL: 'https://github.com',
      },
      timeoutMs: 30_000,
    });
  /** The token only ever in the mask command (how a runner learns to mask it). */
  const tokenFree = (r: StepResult) => {
    const stdout = r.stdout
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n');
    expect(JSON.stringify([stdout, r.stderr, r.outputs, r.summary])).not.toContain(TOKEN);
  };

  it('creates stable.<date> with the changelog as its notes (repository, API and commit from the run)', async () => {
    const r = await publish({ 'notes-file': notes(NOTES) });
    expect(errors(r)).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.outputs).toMatchObject({ tag: 'stable.20260401', action: 'created' });
    expect(r.outputs.url).toMatch(/\/acme\/os\/releases\/tag\/stable\.20260401$/);
    expect(releases().map((x) => [x.tagName, x.name, x.body])).toEqual([['stable.20260401', 'stable.20260401', NOTES]]);
    const repo = emu.state.repo('acme/os');
    expect(repo.refs.get('refs/tags/stable.20260401')).toBe(repo.resolve('main'));
    expect(r.summary).toMatch(/### github-release/);
    tokenFree(r);
  });

  it('a re-run is unchanged: no write, no second release', async () => {
    const r = await publish({ 'notes-file': notes(NOTES) });
    expect(r.code).toBe(0);
    expect(r.outputs.action).toBe('unchanged');
    expect(requests().filter((q) => q.method !== 'GET')).toEqual([]);
    expect(releases()).toHaveLength(1);
    tokenFree(r);
  });

  it('changed notes update the same release', async () => {
    const id = releases()[0]!.id;
    const r = await publish({ 'notes-file': notes(`${NOTES}- tmux 3.5\n`) });
    expect(r.code).toBe(0);
    expect(r.outputs.action).toBe('updated');
    expect(releases().map((x) => [x.id, x.body])).toEqual([[id, `${NOTES}- tmux 3.5\n`]]);
  });

  it('a missing changelog gives notes saying so, with a warning, and succeeds', async () => {
    const r = await publish({ 'notes-file': path.join(dir, 'absent.md'), 'release-date': '20260402' });
    expect(r.code).toBe(0);
    expect(warnings(r).join('\n')).toMatch(/no changelog at/);
    expect(releases().find((x) => x.tagName === 'stable.20260402')!.body).toMatch(
      /^The changelog was not available for this release\. See the run: https:\/\/github\.com\/acme\/os\/actions\/runs\/7\n$/,
    );
  });

  it.each([
    ['release-date', { 'release-date': '2026-04-01' }],
    ['stable-tag', { 'stable-tag': '../x' }],
    ['repository', { repository: 'a/b/c' }],
    ['api-url', { 'api-url': 'http://example.com' }],
    ['token', { token: '' }],
  ])('bad %s fails before any request, naming the input', async (name, extra) => {
    const r = await publish({ 'notes-file': '', ...extra });
    expect(r.code).not.toBe(0);
    expect(errors(r).join('\n')).toMatch(new RegExp(`Input '${name}'`));
    expect(requests()).toEqual([]);
    tokenFree(r);
  });
});

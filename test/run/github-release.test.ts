// test-kind: unit
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { startGithubEmulator, type GithubEmulator } from '../../emulators/github/index.js';
import { recordingIO } from '../../actions/lib/io.js';
import { MAX_RELEASE_BODY } from '../../actions/lib/github-release.js';
import { run } from '../../actions/github-release/src/main.js';
import { declaredInputs, localOverrides } from '../../cli/runner.js';
import type { LocalServices } from '../../cli/services/index.js';
import { stableReleaseProblem } from '../../cli/services/release-check.js';

/**
 * github-release's run() through recordingIO against the in-process GitHub API emulator (the
 * Octokit Keel ships, with the retry policy): one release per date, its notes the changelog;
 * bad input never reaches the API; the token is never written anywhere but the request header.
 */
const TOKEN = 'ghp_githubReleaseTableToken0123456789';
const NOTES = '## Kernel\n\n6.12.1 → 6.12.9\n\n## Changed\n\n- openssl 3.5.0 → 3.5.1\n';
let emu: GithubEmulator;
let dir: string;
let mark = 0;

beforeAll(async () => {
  emu = await startGithubEmulator({
    token: TOKEN,
    repos: { 'acme/os': { files: { 'README.md': '# os\n' } }, 'acme/other': { files: { 'README.md': '# o\n' } } },
  });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-ghrel-'));
});
afterAll(async () => {
  await emu.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  emu.setFaults([]);
  mark = emu.state.requests.length;
});

const notesFile = (name: string, text: string) => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
};
const publish = (inputs: Record<string, string>) => {
  const io = recordingIO(
    { token: TOKEN, 'api-url': emu.url, 'release-date': '20260301', ...inputs },
    { repository: 'acme/os', runId: '42', serverUrl: 'https://github.com', sha: '' },
  );
  return { io, done: run(io) };
};
const releasesOf = (repo: string) => emu.state.releases.list(emu.state.repo(repo));
const requests = () => emu.state.requests.slice(mark);
const everythingWritten = (io: ReturnType<typeof recordingIO>) =>
  JSON.stringify([io.logs, io.outputs, io.summaries, io.failed ?? '']);

describe('github-release run()', () => {
  it('creates stable.<date> with the changelog as its notes, its tag on the default branch', async () => {
    const file = notesFile('changelog.md', NOTES);
    const { io, done } = publish({ 'notes-file': file });
    await done;
    expect(io.outputs).toEqual({
      tag: 'stable.20260301',
      action: 'created',
      url: expect.stringMatching(/\/acme\/os\/releases\/tag\/stable\.20260301$/) as unknown as string,
    });
    const [rel, ...more] = releasesOf('acme/os');
    expect(more).toEqual([]);
    expect(rel).toMatchObject({ tagName: 'stable.20260301', name: 'stable.20260301', body: NOTES, draft: false });
    const repo = emu.state.repo('acme/os');
    expect(repo.refs.get('refs/tags/stable.20260301')).toBe(repo.resolve('main'));
    expect(stableReleaseProblem(emu, 'acme/os', 'stable.20260301', file)).toBeUndefined();
    expect(io.secrets).toContain(TOKEN);
    expect(everythingWritten(io)).not.toContain(TOKEN);
  });

  it('a re-run finds it unchanged and writes nothing; changed notes update the same release', async () => {
    const file = notesFile('changelog.md', NOTES);
    const again = publish({ 'notes-file': file });
    await again.done;
    expect(again.io.outputs.action).toBe('unchanged');
    expect(requests().filter((r) => r.method !== 'GET')).toEqual([]);
    expect(releasesOf('acme/os')).toHaveLength(1);

    const id = releasesOf('acme/os')[0]!.id;
    const changed = notesFile('changelog-2.md', `${NOTES}\n## Added\n\n- htop 3.4.0\n`);
    const upd = publish({ 'notes-file': changed });
    await upd.done;
    expect(upd.io.outputs.action).toBe('updated');
    expect(releasesOf('acme/os').map((r) => [r.id, r.body])).toEqual([[id, fs.readFileSync(changed, 'utf8')]]);
    expect(stableReleaseProblem(emu, 'acme/os', 'stable.20260301', file)).toMatch(/not the changelog/);
  });

  it.each([
    ['a missing file', () => path.join(dir, 'nope.md')],
    ['an empty file', () => notesFile('empty.md', ' \n')],
    ['no notes-file', () => ''],
  ])('%s: the notes say the changelog was not available (a warning, not a failure)', async (_what, file) => {
    const { io, done } = publish({ 'notes-file': file(), repository: 'acme/other', 'release-date': '20260302' });
    await done;
    expect(io.outputs.action).toMatch(/^(created|unchanged)$/);
    const rel = releasesOf('acme/other').find((r) => r.tagName === 'stable.20260302')!;
    expect(rel.body).toBe(
      'The changelog was not available for this release. See the run: https://github.com/acme/os/actions/runs/42\n',
    );
    expect(io.logs.find((l) => l.level === 'warning')?.message).toMatch(/no changelog at/);
  });

  it('cuts notes over GitHub’s limit at a line end, saying so', async () => {
    const long = `${'- a package line that repeats\n'.repeat(Math.ceil(MAX_RELEASE_BODY / 30) + 10)}`;
    const { io, done } = publish({ 'notes-file': notesFile('long.md', long), 'release-date': '20260303' });
    await done;
    expect(io.outputs.action).toBe('created');
    const body = releasesOf('acme/os').find((r) => r.tagName === 'stable.20260303')!.body!;
    expect(body.length).toBeLessThanOrEqual(MAX_RELEASE_BODY);
    expect(body).toMatch(/\(truncated: the full changelog is in the changelog artifact of the run\)\n$/);
  });

  it('uses the stable-tag word and the run’s repository and commit by default', async () => {
    const repo = emu.state.repo('acme/os');
    const sha = repo.resolve('main')!;
    const io = recordingIO(
      { token: TOKEN, 'api-url': emu.url, 'release-date': '20260304', 'stable-tag': 'lts', 'notes-file': '' },
      { repository: 'acme/os', sha },
    );
    await run(io);
    expect(io.outputs.tag).toBe('lts.20260304');
    expect(repo.refs.get('refs/tags/lts.20260304')).toBe(sha);
  });

  it.each([
    ['a bad date', { 'release-date': '20261345' }, /^Input 'release-date' has value "20261345": expected a UTC date/],
    ['a bad stable tag', { 'stable-tag': 'Stable!' }, /^Input 'stable-tag' has value "Stable!"/],
    ['a bad repository', { repository: 'acme' }, /^Input 'repository' has value "acme": expected owner\/name/],
    ['plain http to a remote API', { 'api-url': 'http://api.example.com' }, /^Input 'api-url'.*https/],
    ['no token', { token: '' }, /^Input 'token'/],
    ['a bad target', { 'target-commitish': 'a b' }, /^Input 'target-commitish'/],
  ])('refuses %s before any request, naming the input', async (_what, extra, message) => {
    const { io, done } = publish({ 'notes-file': '', ...extra });
    await expect(done).rejects.toThrow(message);
    expect(requests()).toEqual([]);
    expect(io.summaries.join('')).toMatch(/### github-release\n\nFailed: /);
    expect(everythingWritten(io)).not.toContain(TOKEN);
  });

  it('a wrong token fails with GitHub’s 401, without writing the token anywhere', async () => {
    const wrong = 'ghp_wrongTokenWrongTokenWrong0000';
    const { io, done } = publish({ token: wrong, 'release-date': '20260305' });
    await expect(done).rejects.toThrow(/401/);
    expect(everythingWritten(io)).not.toContain(wrong);
    expect(releasesOf('acme/os').some((r) => r.tagName === 'stable.20260305')).toBe(false);
  });

  it('retries a transient 5xx through the shared policy and still makes one release', async () => {
    emu.setFaults([{ method: 'POST', path: /\/releases$/, status: 502, times: 1 }]);
    const { io, done } = publish({ 'notes-file': '', 'release-date': '20260306' });
    await done;
    expect(io.outputs.action).toBe('created');
    expect(requests().filter((r) => r.method === 'POST').length).toBe(2);
    expect(releasesOf('acme/os').filter((r) => r.tagName === 'stable.20260306')).toHaveLength(1);
  });
});

describe("keel run's local stand-in for github-release", () => {
  it('points it at the emulator with the emulator token, in a copy of the run’s repository, and it reaches it', async () => {
    const svc = { github: emu, githubToken: TOKEN } as unknown as LocalServices;
    const inputs = localOverrides(
      'github-release',
      { token: '', 'release-date': '20260310', 'stable-tag': 'stable', 'notes-file': '' },
      svc,
      declaredInputs('github-release'),
      'keel-project/keel',
    );
    expect(inputs).toMatchObject({ 'api-url': emu.url, token: TOKEN, repository: 'keel-project/keel' });
    const io = recordingIO(inputs, { repository: 'keel-project/keel', sha: 'f'.repeat(40) });
    await run(io);
    expect(io.outputs.action).toBe('created');
    expect(releasesOf('keel-project/keel').map((r) => r.tagName)).toEqual(['stable.20260310']);
  });
});

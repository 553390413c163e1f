// test-kind: unit
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createClient } from '../../actions/lib/github.js';
import { fitNotes, publishStableRelease } from '../../actions/lib/github-release.js';
import { memoryLogger } from '../../actions/lib/log.js';
import { retryPolicy } from '../../actions/lib/retry.js';
import { startGithubEmulator, type GithubEmulator } from '../../emulators/github/index.js';

/**
 * publishStableRelease against the GitHub emulator, through the Octokit with Keel's retry
 * policy that the actions use: one release per date whatever happens (re-runs, lost answers).
 */
describe('publishStableRelease', () => {
  let emu: GithubEmulator;
  const TOKEN = 'ghp_releaseLibToken';
  const client = () =>
    createClient({
      token: TOKEN,
      apiUrl: emu.url,
      log: memoryLogger(),
      policy: retryPolicy({ attempts: 4, baseMs: 5, maxMs: 20 }),
    });
  const releases = () => emu.state.releases.list(emu.state.repo('acme/os'));

  beforeAll(async () => {
    emu = await startGithubEmulator({ repos: { 'acme/os': { files: { 'README.md': '# os\n' } } }, token: TOKEN });
  });
  afterAll(() => emu.close());
  beforeEach(() => emu.setFaults([]));

  it('creates stable.<date> with the changelog, then leaves it alone on a re-run and updates changed notes', async () => {
    const log = memoryLogger();
    const sha = emu.state.repo('acme/os').resolve('main')!;
    const req = {
      repository: 'acme/os',
      releaseDate: '20260301',
      notes: '## Changes\n\n- bash 5.1 → 5.2\n',
      targetCommitish: sha,
    };
    const a = await publishStableRelease(client(), req, log);
    expect(a).toMatchObject({ tag: 'stable.20260301', action: 'created' });
    expect(a.htmlUrl).toBe(`${emu.url}/acme/os/releases/tag/stable.20260301`);
    const rel = emu.state.releases.byTag(emu.state.repo('acme/os'), 'stable.20260301')!;
    expect(rel).toMatchObject({ name: 'stable.20260301', body: req.notes, targetCommitish: sha });
    expect(emu.state.repo('acme/os').refs.get('refs/tags/stable.20260301')).toBe(sha);
    expect((await publishStableRelease(client(), req, log)).action).toBe('unchanged');
    const b = await publishStableRelease(client(), { ...req, notes: '## Changes\n\n- bash 5.1 → 5.3\n' }, log);
    expect(b).toMatchObject({ action: 'updated', id: a.id });
    expect(releases().filter((r) => r.tagName === 'stable.20260301')).toHaveLength(1);
    expect(log.lines.map((l) => l.message)).toContain(`GitHub Release stable.20260301: updated (${a.htmlUrl})`);
  });

  it('makes exactly one release when the answer to the create is lost and the request is retried', async () => {
    emu.setFaults([{ method: 'POST', path: /\/releases$/, times: 1, status: 502, when: 'after' }]);
    const r = await publishStableRelease(
      client(),
      { repository: 'acme/os', releaseDate: '20260302', notes: 'notes' },
      memoryLogger(),
    );
    expect(r.tag).toBe('stable.20260302');
    expect(['unchanged', 'updated']).toContain(r.action);
    expect(releases().filter((x) => x.tagName === 'stable.20260302')).toHaveLength(1);
    const posts = emu.state.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/releases'));
    expect(posts.map((p) => p.status).slice(-2)).toEqual([502, 422]);
  });

  it('refuses a bad date or repository before calling GitHub; keeps long notes under the limit', async () => {
    const before = emu.state.requests.length;
    await expect(
      publishStableRelease(client(), { repository: 'acme/os', releaseDate: '2026-03-01', notes: '' }, memoryLogger()),
    ).rejects.toThrow(/release date must be YYYYMMDD/);
    await expect(
      publishStableRelease(client(), { repository: 'acme', releaseDate: '20260301', notes: '' }, memoryLogger()),
    ).rejects.toThrow(/owner\/name/);
    expect(emu.state.requests.length).toBe(before);
    const long = Array.from({ length: 10_000 }, (_, i) => `| pkg${i} | 1.0 | 1.1 |`).join('\n');
    const fit = fitNotes(long, 50_000);
    expect(fit.length).toBeLessThanOrEqual(50_000);
    expect(fit).toMatch(/\| 1\.1 \|\n\n… \(truncated/);
    expect(fitNotes('short')).toBe('short');
  });
});

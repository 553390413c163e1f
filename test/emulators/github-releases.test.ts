// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { getOctokit } from '@actions/github';
import { startGithubEmulator, type GithubEmulator } from '../../emulators/github/index.js';

/**
 * The emulator's Releases API driven through the Octokit the actions ship, as
 * test/emulators/github.test.ts does for the git API: shapes Octokit parses, GitHub's errors
 * (404, 422 already_exists, 401), the tag made on the target commit, assets uploaded to
 * upload_url with a raw body.
 */
describe('GitHub emulator: releases', () => {
  let emu: GithubEmulator;
  const TOKEN = 'ghp_releasesTestToken';
  const gh = () => getOctokit(TOKEN, { baseUrl: emu.url });
  /** A request without a token (Octokit insists on one). */
  const anon = (method: string, path: string, body?: unknown) =>
    fetch(`${emu.url}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  const repo = { owner: 'acme', repo: 'os' };
  const status = async (p: Promise<unknown>) => {
    try {
      await p;
      return 200;
    } catch (e) {
      return (e as { status: number }).status;
    }
  };

  beforeAll(async () => {
    emu = await startGithubEmulator({ repos: { 'acme/os': { files: { 'README.md': '# os\n' } } }, token: TOKEN });
  });
  afterAll(() => emu.close());

  it('creates a release for a tag (making the tag on the default branch) and finds it by tag and id', async () => {
    const o = gh();
    const created = await o.rest.repos.createRelease({
      ...repo,
      tag_name: 'stable.20260101',
      name: 'stable.20260101',
      body: '## notes',
    });
    expect(created.status).toBe(201);
    expect(created.data).toMatchObject({
      tag_name: 'stable.20260101',
      body: '## notes',
      draft: false,
      prerelease: false,
    });
    expect(created.data.upload_url).toMatch(/\/repos\/acme\/os\/releases\/\d+\/assets\{\?name,label\}$/);
    const r = emu.state.repo('acme/os');
    expect(r.refs.get('refs/tags/stable.20260101')).toBe(r.resolve('main'));
    const byTag = await o.rest.repos.getReleaseByTag({ ...repo, tag: 'stable.20260101' });
    expect(byTag.data.id).toBe(created.data.id);
    const byId = await o.rest.repos.getRelease({ ...repo, release_id: created.data.id });
    expect(byId.data.tag_name).toBe('stable.20260101');
    expect((await o.rest.repos.getLatestRelease(repo)).data.id).toBe(created.data.id);
  });

  it('answers 422 already_exists for a second release of a tag, 404 for an unknown tag, 401 without a token', async () => {
    const o = gh();
    let err: { status?: number; response?: { data?: { errors?: unknown[] } } } = {};
    try {
      await o.rest.repos.createRelease({ ...repo, tag_name: 'stable.20260101' });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.status).toBe(422);
    expect(err.response?.data?.errors).toEqual([{ resource: 'Release', code: 'already_exists', field: 'tag_name' }]);
    expect(await status(o.rest.repos.getReleaseByTag({ ...repo, tag: 'stable.19990101' }))).toBe(404);
    expect((await anon('POST', '/repos/acme/os/releases', { tag_name: 'x' })).status).toBe(401);
  });

  it('lists newest first with pagination, updates notes, hides drafts from anonymous readers, deletes', async () => {
    const o = gh();
    const second = await o.rest.repos.createRelease({ ...repo, tag_name: 'stable.20260102', body: 'second' });
    const draft = await o.rest.repos.createRelease({ ...repo, tag_name: 'stable.20260103', draft: true });
    expect(draft.data.published_at).toBeNull();
    const list = await o.rest.repos.listReleases({ ...repo, per_page: 2 });
    expect(list.data.map((r) => r.tag_name)).toEqual(['stable.20260103', 'stable.20260102']);
    const page2 = await o.rest.repos.listReleases({ ...repo, per_page: 2, page: 2 });
    expect(page2.data.map((r) => r.tag_name)).toEqual(['stable.20260101']);
    const seen = (await (await anon('GET', '/repos/acme/os/releases')).json()) as { tag_name: string }[];
    expect(seen.map((r) => r.tag_name)).toEqual(['stable.20260102', 'stable.20260101']);
    const upd = await o.rest.repos.updateRelease({ ...repo, release_id: second.data.id, body: 'second, edited' });
    expect(upd.data.body).toBe('second, edited');
    expect((await o.rest.repos.getReleaseByTag({ ...repo, tag: 'stable.20260102' })).data.body).toBe('second, edited');
    expect((await o.rest.repos.deleteRelease({ ...repo, release_id: draft.data.id })).status).toBe(204);
    expect(await status(o.rest.repos.getRelease({ ...repo, release_id: draft.data.id }))).toBe(404);
  });

  it('takes an asset upload at upload_url (raw body) and lists it; a second asset of the same name is 422', async () => {
    const o = gh();
    const rel = (await o.rest.repos.getReleaseByTag({ ...repo, tag: 'stable.20260101' })).data;
    const data = Buffer.from('abc  keel-os.iso\n');
    const up = await o.request({
      method: 'POST',
      url: rel.upload_url,
      name: 'SHA256SUMS',
      data,
      headers: { 'content-type': 'text/plain', 'content-length': data.length },
    });
    expect(up.status).toBe(201);
    expect(up.data).toMatchObject({
      name: 'SHA256SUMS',
      size: data.length,
      content_type: 'text/plain',
      state: 'uploaded',
    });
    const assets = await o.rest.repos.listReleaseAssets({ ...repo, release_id: rel.id });
    expect(assets.data.map((a) => a.name)).toEqual(['SHA256SUMS']);
    expect(emu.state.releases.byTag(emu.state.repo('acme/os'), 'stable.20260101')!.assets[0]!.content).toEqual(data);
    expect(
      await status(
        o.request({
          method: 'POST',
          url: rel.upload_url,
          name: 'SHA256SUMS',
          data,
          headers: { 'content-type': 'text/plain' },
        }),
      ),
    ).toBe(422);
  });
  it('tags the given target_commitish (a commit SHA), refuses an unknown one with 422, and renames on update', async () => {
    const o = gh();
    const r = emu.state.repo('acme/os');
    const first = r.resolve('main')!;
    r.commitFiles('main', { 'CHANGELOG.md': 'x\n' });
    expect(r.resolve('main')).not.toBe(first);
    const created = await o.rest.repos.createRelease({ ...repo, tag_name: 'stable.20260201', target_commitish: first });
    expect(created.data.target_commitish).toBe(first);
    expect(r.refs.get('refs/tags/stable.20260201')).toBe(first);
    let err: { status?: number; response?: { data?: { errors?: unknown[] } } } = {};
    try {
      await o.rest.repos.createRelease({ ...repo, tag_name: 'stable.20260202', target_commitish: 'f'.repeat(40) });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.status).toBe(422);
    expect(err.response?.data?.errors).toEqual([{ resource: 'Release', code: 'invalid', field: 'target_commitish' }]);
    expect(r.refs.has('refs/tags/stable.20260202')).toBe(false);
    const upd = await o.rest.repos.updateRelease({
      ...repo,
      release_id: created.data.id,
      name: 'stable.20260201',
      body: 'n',
    });
    expect(upd.data).toMatchObject({ name: 'stable.20260201', body: 'n', tag_name: 'stable.20260201' });
  });
});

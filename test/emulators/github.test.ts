// test-kind: unit
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { getOctokit } from '@actions/github';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hashObject, startGithubEmulator, type GithubEmulator } from '../../emulators/github/index.js';

/**
 * The emulator checked against the real client the action ships (Octokit from @actions/github)
 * and against git itself: object SHAs equal git's, answers parse the way Octokit expects, and
 * errors have GitHub's status codes and messages.
 */
const FILES = {
  'README.md': '# site\n',
  'src/lib/release.ts': 'export const LATEST_ISO_DATE = "20250301";\n',
  'src/routes/index.tsx': 'export default function Home() {}\n',
  'scripts/deploy.sh': { content: '#!/bin/sh\necho deploy\n', mode: '100755' as const },
};

describe('GitHub emulator', () => {
  let emu: GithubEmulator;
  const TOKEN = 'ghp_emulatorTestToken123';
  const gh = () => getOctokit(TOKEN, { baseUrl: emu.url });

  beforeAll(async () => {
    emu = await startGithubEmulator({ repos: { 'acme/site': { files: FILES } }, token: TOKEN });
  });
  afterAll(() => emu.close());
  beforeEach(() => emu.setFaults([]));

  it('hashes blobs, trees and nested trees exactly as git does', () => {
    expect(hashObject('blob', Buffer.from('hello\n'))).toBe('ce013625030ba8dba906f756967f9e9ca394464a');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-ghemu-git-'));
    try {
      const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim();
      git('init', '-q');
      for (const [p, spec] of Object.entries(FILES)) {
        fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
        fs.writeFileSync(path.join(dir, p), typeof spec === 'string' ? spec : spec.content, {
          mode: typeof spec === 'string' ? 0o644 : 0o755,
        });
      }
      git('add', '-A');
      const repo = emu.state.repo('acme/site');
      const root = repo.commit(repo.resolve('main')!)!.tree;
      expect(root).toBe(git('write-tree'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves the repository, refs and commits in the shapes Octokit parses', async () => {
    const o = gh();
    const repo = await o.rest.repos.get({ owner: 'acme', repo: 'site' });
    expect(repo.data).toMatchObject({ full_name: 'acme/site', default_branch: 'main', allow_auto_merge: true });
    const ref = await o.rest.git.getRef({ owner: 'acme', repo: 'site', ref: 'heads/main' });
    expect(ref.status).toBe(200);
    expect(ref.data.ref).toBe('refs/heads/main');
    expect(ref.data.object.sha).toMatch(/^[0-9a-f]{40}$/);
    const commit = await o.rest.git.getCommit({ owner: 'acme', repo: 'site', commit_sha: ref.data.object.sha });
    expect(commit.data.tree.sha).toBe(emu.state.repo('acme/site').commit(ref.data.object.sha)!.tree);
    const tree = await o.rest.git.getTree({
      owner: 'acme',
      repo: 'site',
      tree_sha: commit.data.tree.sha,
      recursive: 'true',
    });
    expect(tree.data.truncated).toBe(false);
    expect(
      tree.data.tree
        .filter((e) => e.type === 'blob')
        .map((e) => e.path)
        .sort(),
    ).toEqual(Object.keys(FILES).sort());
    expect(tree.data.tree.find((e) => e.path === 'scripts/deploy.sh')?.mode).toBe('100755');
    expect(tree.data.tree.find((e) => e.path === 'src')?.mode).toBe('040000');
  });

  it('answers 404 like GitHub for a missing ref, file, commit or repository', async () => {
    const o = gh();
    await expect(o.rest.git.getRef({ owner: 'acme', repo: 'site', ref: 'heads/nope' })).rejects.toMatchObject({
      status: 404,
    });
    await expect(o.rest.repos.getContent({ owner: 'acme', repo: 'site', path: 'src/nope.ts' })).rejects.toMatchObject({
      status: 404,
    });
    await expect(o.rest.repos.get({ owner: 'acme', repo: 'nope' })).rejects.toMatchObject({
      status: 404,
      message: expect.stringMatching(/^Not Found/),
    });
    await expect(
      o.rest.git.getCommit({ owner: 'acme', repo: 'site', commit_sha: '0'.repeat(40) }),
    ).rejects.toMatchObject({ status: 404 });
  });

  it('returns file contents base64-encoded in 60-column lines, pinned to a ref', async () => {
    const o = gh();
    const res = await o.rest.repos.getContent({ owner: 'acme', repo: 'site', path: 'src/lib/release.ts', ref: 'main' });
    const data = res.data as { type: string; encoding: string; content: string; sha: string };
    expect(data.type).toBe('file');
    expect(data.encoding).toBe('base64');
    expect(Buffer.from(data.content, 'base64').toString()).toBe(FILES['src/lib/release.ts']);
    expect(data.sha).toBe(hashObject('blob', Buffer.from(FILES['src/lib/release.ts'])));
    const dir = await o.rest.repos.getContent({ owner: 'acme', repo: 'site', path: 'src' });
    expect((dir.data as { name: string; type: string }[]).map((e) => [e.name, e.type])).toEqual([
      ['lib', 'dir'],
      ['routes', 'dir'],
    ]);
  });

  it('writes trees, commits and refs; refuses an existing branch and a non-fast-forward update (422)', async () => {
    const o = gh();
    const repo = emu.state.repo('acme/site');
    const base = repo.resolve('main')!;
    const baseTree = repo.commit(base)!.tree;
    const tree = await o.rest.git.createTree({
      owner: 'acme',
      repo: 'site',
      base_tree: baseTree,
      tree: [
        {
          path: 'src/lib/release.ts',
          mode: '100644',
          type: 'blob',
          content: 'export const LATEST_ISO_DATE = "20250401";\n',
        },
      ],
    });
    expect(tree.status).toBe(201);
    const commit = await o.rest.git.createCommit({
      owner: 'acme',
      repo: 'site',
      message: 'bump',
      tree: tree.data.sha,
      parents: [base],
    });
    expect(commit.status).toBe(201);
    expect(repo.changedFiles(base, commit.data.sha)).toEqual(['src/lib/release.ts']);

    const created = await o.rest.git.createRef({
      owner: 'acme',
      repo: 'site',
      ref: 'refs/heads/keel/test-1',
      sha: commit.data.sha,
    });
    expect(created.status).toBe(201);
    expect(repo.refs.get('refs/heads/keel/test-1')).toBe(commit.data.sha);
    await expect(
      o.rest.git.createRef({ owner: 'acme', repo: 'site', ref: 'refs/heads/keel/test-1', sha: base }),
    ).rejects.toMatchObject({
      status: 422,
      message: expect.stringMatching(/^Reference already exists/),
    });
    // A slash in the branch name survives Octokit's URL encoding.
    const got = await o.rest.git.getRef({ owner: 'acme', repo: 'site', ref: 'heads/keel/test-1' });
    expect(got.data.object.sha).toBe(commit.data.sha);
    await expect(
      o.rest.git.updateRef({ owner: 'acme', repo: 'site', ref: 'heads/keel/test-1', sha: base }),
    ).rejects.toMatchObject({ status: 422 });
    await o.rest.git.updateRef({ owner: 'acme', repo: 'site', ref: 'heads/keel/test-1', sha: base, force: true });
    expect(repo.refs.get('refs/heads/keel/test-1')).toBe(base);
    await o.rest.git.deleteRef({ owner: 'acme', repo: 'site', ref: 'heads/keel/test-1' });
    expect(repo.branches()).toEqual(['main']);
  });

  it('opens pull requests, lists them by head, refuses a duplicate and an empty one (422)', async () => {
    const o = gh();
    const repo = emu.state.repo('acme/site');
    repo.refs.set('refs/heads/feature', repo.resolve('main')!);
    await expect(
      o.rest.pulls.create({ owner: 'acme', repo: 'site', title: 't', head: 'feature', base: 'main' }),
    ).rejects.toMatchObject({
      status: 422,
      message: expect.stringContaining('No commits between main and feature'),
    });
    repo.commitFiles('feature', { 'README.md': '# site v2\n' });
    const pr = await o.rest.pulls.create({
      owner: 'acme',
      repo: 'site',
      title: 'Feature',
      head: 'feature',
      base: 'main',
      body: 'b',
    });
    expect(pr.status).toBe(201);
    expect(pr.data.number).toBeGreaterThan(0);
    expect(pr.data.html_url).toBe(`${emu.url}/acme/site/pull/${pr.data.number}`);
    expect(pr.data.node_id).toMatch(/^PR_/);
    expect(pr.data.head.ref).toBe('feature');
    await expect(
      o.rest.pulls.create({ owner: 'acme', repo: 'site', title: 'again', head: 'feature', base: 'main' }),
    ).rejects.toMatchObject({
      status: 422,
      message: expect.stringContaining('A pull request already exists for acme:feature.'),
    });
    const listed = await o.rest.pulls.list({ owner: 'acme', repo: 'site', state: 'open', head: 'acme:feature' });
    expect(listed.data.map((p) => p.number)).toEqual([pr.data.number]);
    expect((await o.rest.pulls.list({ owner: 'acme', repo: 'site', head: 'acme:other' })).data).toEqual([]);
    await expect(
      o.rest.pulls.create({ owner: 'acme', repo: 'site', title: 't', head: 'missing', base: 'main' }),
    ).rejects.toMatchObject({ status: 422 });

    // Merging (squash) applies the PR's change onto main as one commit.
    const before = repo.resolve('main')!;
    repo.mergePull(pr.data.number);
    expect(repo.file('main', 'README.md')).toBe('# site v2\n');
    expect(repo.log('main')[0]!.parents).toEqual([before]);
    expect(repo.pulls.find((p) => p.number === pr.data.number)).toMatchObject({ state: 'closed', merged: true });
  });

  it('enables auto-merge through GraphQL, and refuses it like GitHub when the repository does not allow it', async () => {
    const o = gh();
    const repo = emu.state.repo('acme/site');
    repo.commitFiles('main', {});
    repo.refs.set('refs/heads/am', repo.resolve('main')!);
    repo.commitFiles('am', { 'README.md': '# am\n' });
    const pr = await o.rest.pulls.create({ owner: 'acme', repo: 'site', title: 'am', head: 'am', base: 'main' });
    // Variables named like the arguments: the declaration `$mergeMethod: PullRequestMergeMethod!` is not an argument.
    const q = `mutation($pullRequestId: ID!, $mergeMethod: PullRequestMergeMethod!) {
      enablePullRequestAutoMerge(input: {pullRequestId: $pullRequestId, mergeMethod: $mergeMethod}) { pullRequest { number autoMergeRequest { mergeMethod } } }
    }`;

    repo.allowAutoMerge = false;
    await expect(o.graphql(q, { pullRequestId: pr.data.node_id, mergeMethod: 'SQUASH' })).rejects.toMatchObject({
      name: 'GraphqlResponseError',
      errors: [
        expect.objectContaining({
          type: 'UNPROCESSABLE',
          message: 'Pull request Auto merge is not allowed for this repository',
        }),
      ],
    });
    expect(repo.pulls.find((p) => p.number === pr.data.number)!.autoMerge).toBeNull();

    repo.allowAutoMerge = true;
    const ok = await o.graphql<{
      enablePullRequestAutoMerge: { pullRequest: { number: number; autoMergeRequest: { mergeMethod: string } } };
    }>(q, {
      pullRequestId: pr.data.node_id,
      mergeMethod: 'SQUASH',
    });
    expect(ok.enablePullRequestAutoMerge.pullRequest).toMatchObject({
      number: pr.data.number,
      autoMergeRequest: { mergeMethod: 'SQUASH' },
    });
    expect(repo.pulls.find((p) => p.number === pr.data.number)!.autoMerge?.mergeMethod).toBe('SQUASH');
    const listed = await o.rest.pulls.list({ owner: 'acme', repo: 'site', head: 'acme:am' });
    expect(listed.data[0]!.auto_merge?.merge_method).toBe('squash');

    await expect(o.graphql(q, { pullRequestId: 'PR_nope', mergeMethod: 'SQUASH' })).rejects.toMatchObject({
      errors: [expect.objectContaining({ type: 'NOT_FOUND' })],
    });
    // The whole input as one variable, and an invalid merge method.
    const qi =
      'mutation($input: EnablePullRequestAutoMergeInput!) { enablePullRequestAutoMerge(input: $input) { clientMutationId } }';
    await expect(
      o.graphql(qi, { input: { pullRequestId: pr.data.node_id, mergeMethod: 'FAST' } }),
    ).rejects.toMatchObject({
      errors: [expect.objectContaining({ message: expect.stringContaining('invalid value "FAST"') })],
    });
    await o.graphql(qi, { input: { pullRequestId: pr.data.node_id, mergeMethod: 'REBASE' } });
    expect(repo.pulls.find((p) => p.number === pr.data.number)!.autoMerge?.mergeMethod).toBe('REBASE');
  });

  it('serves the GitHub Enterprise Server layout: REST under /api/v3, GraphQL at /api/graphql', async () => {
    const o = getOctokit(TOKEN, { baseUrl: emu.ghesUrl });
    const ref = await o.rest.git.getRef({ owner: 'acme', repo: 'site', ref: 'heads/main' });
    expect(ref.data.url).toBe(`${emu.ghesUrl}/repos/acme/site/git/refs/heads/main`);
    const n = emu.state.requests.length;
    await expect(
      o.graphql(
        'mutation { enablePullRequestAutoMerge(input: {pullRequestId: "PR_x", mergeMethod: SQUASH}) { clientMutationId } }',
      ),
    ).rejects.toMatchObject({
      errors: [expect.objectContaining({ type: 'NOT_FOUND' })],
    });
    expect(emu.state.requests.slice(n).map((r) => `${r.method} ${r.path}`)).toEqual(['POST /api/graphql']);
  });

  it('refuses a bad token (401 Bad credentials) and a write without one', async () => {
    await expect(
      getOctokit('wrong', { baseUrl: emu.url }).rest.repos.get({ owner: 'acme', repo: 'site' }),
    ).rejects.toMatchObject({
      status: 401,
      message: expect.stringMatching(/^Bad credentials/),
    });
    const res = await fetch(`${emu.url}/repos/acme/site/git/refs`, {
      method: 'POST',
      body: JSON.stringify({ ref: 'refs/heads/x', sha: 'a'.repeat(40) }),
    });
    expect(res.status).toBe(401);
    expect(emu.state.repo('acme/site').refs.has('refs/heads/x')).toBe(false);
    expect(emu.state.requests.at(-1)).toMatchObject({ authorized: false, status: 401 });
  });

  it('injects faults before (no effect) or after (effect, answer lost) a request, with Retry-After', async () => {
    const o = gh();
    const repo = emu.state.repo('acme/site');
    const main = repo.resolve('main')!;
    emu.setFaults([{ method: 'POST', path: /\/git\/refs$/, times: 1, status: 503, retryAfter: 1 }]);
    const err = await o.rest.git
      .createRef({ owner: 'acme', repo: 'site', ref: 'refs/heads/f1', sha: main })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, response: { headers: expect.objectContaining({ 'retry-after': '1' }) } });
    expect(repo.refs.has('refs/heads/f1')).toBe(false);
    await o.rest.git.createRef({ owner: 'acme', repo: 'site', ref: 'refs/heads/f1', sha: main }); // times: 1 — passes now

    emu.setFaults([{ method: 'POST', path: /\/git\/refs$/, times: 1, status: 502, when: 'after' }]);
    await expect(
      o.rest.git.createRef({ owner: 'acme', repo: 'site', ref: 'refs/heads/f2', sha: main }),
    ).rejects.toMatchObject({ status: 502 });
    expect(repo.refs.get('refs/heads/f2')).toBe(main);
    expect(emu.state.requests.at(-1)).toMatchObject({ status: 502, fault: 'status 502 after' });
  });

  it('logs requests without credentials', () => {
    expect(emu.state.requests.length).toBeGreaterThan(0);
    expect(JSON.stringify(emu.state.requests)).not.toContain(TOKEN);
  });
});

describe('GitHub emulator: the route-registration seam', () => {
  const TOKEN = 'ghp_seamTestToken';
  it('serves routes a module adds (repository-scoped and top-level), with auth, faults and the request log', async () => {
    const { requireAuth, invalid } = await import('../../emulators/github/index.js');
    const releases: { tag: string }[] = [];
    const emu = await startGithubEmulator({
      token: TOKEN,
      repos: { 'acme/site': { files: { 'README.md': 'x' } } },
      routes: {
        repo: [
          {
            method: 'GET',
            path: /^releases$/,
            handle: () => ({ status: 200, body: releases.map((r) => ({ tag_name: r.tag })) }),
          },
          {
            method: 'POST',
            path: /^releases$/,
            handle: (ctx) => {
              requireAuth(ctx);
              if (typeof ctx.body.tag_name !== 'string') throw invalid('Validation Failed');
              releases.push({ tag: ctx.body.tag_name });
              return { status: 201, body: { tag_name: ctx.body.tag_name } };
            },
          },
        ],
        top: [
          {
            method: 'GET',
            path: /^\/orgs\/([^/]+)\/packages$/,
            handle: (_ctx, m) => ({ status: 200, body: [{ owner: m[1] }] }),
          },
        ],
      },
    });
    try {
      const o = getOctokit(TOKEN, { baseUrl: emu.url });
      await o.rest.repos.createRelease({ owner: 'acme', repo: 'site', tag_name: 'v1' });
      expect((await o.rest.repos.listReleases({ owner: 'acme', repo: 'site' })).data).toEqual([{ tag_name: 'v1' }]);
      await expect(o.request('POST /repos/acme/site/releases', { name: 'no tag' })).rejects.toMatchObject({
        status: 422,
      });
      expect((await o.request('GET /orgs/acme/packages')).data).toEqual([{ owner: 'acme' }]);
      // The built-in areas still answer, and an unknown repository is still a 404.
      expect((await o.rest.repos.get({ owner: 'acme', repo: 'site' })).data.full_name).toBe('acme/site');
      await expect(o.rest.repos.listReleases({ owner: 'acme', repo: 'nope' })).rejects.toMatchObject({ status: 404 });
      emu.setFaults([{ method: 'GET', path: /\/releases$/, times: 1, status: 503 }]);
      await expect(o.rest.repos.listReleases({ owner: 'acme', repo: 'site' })).rejects.toMatchObject({ status: 503 });
      expect(emu.state.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toContain(
        'POST /repos/acme/site/releases 201',
      );
    } finally {
      await emu.close();
    }
  });
});

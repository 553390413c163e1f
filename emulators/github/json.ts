import { base64Lines, type Ctx } from './api.js';
import type { EmulatedRepo, FlatFile, PullRequest } from './store.js';

/** The JSON shapes GitHub answers with (the fields Octokit and site-bump read, and their neighbours). */
export function repoJson(ctx: Ctx, r: EmulatedRepo) {
  return {
    id: r.id,
    node_id: r.nodeId,
    name: r.name,
    full_name: r.fullName,
    private: r.private,
    owner: { login: r.owner, id: r.id + 1, type: 'Organization' },
    html_url: `${ctx.web}/${r.fullName}`,
    url: `${ctx.api}/repos/${r.fullName}`,
    default_branch: r.defaultBranch,
    allow_auto_merge: r.allowAutoMerge,
    allow_squash_merge: true,
    allow_merge_commit: true,
    allow_rebase_merge: true,
    permissions: { admin: false, maintain: false, push: true, triage: true, pull: true },
  };
}

export function refJson(ctx: Ctx, r: EmulatedRepo, ref: string) {
  const sha = r.refs.get(ref)!;
  return {
    ref,
    node_id: `REF_${Buffer.from(`${r.id}:${ref}`).toString('base64url')}`,
    url: `${ctx.api}/repos/${r.fullName}/git/${ref}`,
    object: { sha, type: 'commit', url: `${ctx.api}/repos/${r.fullName}/git/commits/${sha}` },
  };
}

export function commitJson(ctx: Ctx, r: EmulatedRepo, sha: string) {
  const c = r.commit(sha)!;
  return {
    sha,
    node_id: `C_${Buffer.from(sha, 'hex').toString('base64url')}`,
    url: `${ctx.api}/repos/${r.fullName}/git/commits/${sha}`,
    html_url: `${ctx.web}/${r.fullName}/commit/${sha}`,
    author: c.author,
    committer: c.committer,
    message: c.message,
    tree: { sha: c.tree, url: `${ctx.api}/repos/${r.fullName}/git/trees/${c.tree}` },
    parents: c.parents.map((p) => ({
      sha: p,
      url: `${ctx.api}/repos/${r.fullName}/git/commits/${p}`,
      html_url: `${ctx.web}/${r.fullName}/commit/${p}`,
    })),
    verification: { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null },
  };
}

export function treeJson(ctx: Ctx, r: EmulatedRepo, treeSha: string, recursive: boolean) {
  const out: Record<string, unknown>[] = [];
  const walk = (sha: string, prefix: string) => {
    for (const e of r.tree(sha)!.entries) {
      const path = prefix ? `${prefix}/${e.name}` : e.name;
      const kind = e.type === 'tree' ? 'trees' : 'blobs';
      out.push({
        path,
        mode: e.mode,
        type: e.type,
        sha: e.sha,
        ...(e.type === 'blob' ? { size: r.blob(e.sha)?.content.length ?? 0 } : {}),
        ...(e.type !== 'commit' ? { url: `${ctx.api}/repos/${r.fullName}/git/${kind}/${e.sha}` } : {}),
      });
      if (recursive && e.type === 'tree') walk(e.sha, path);
    }
  };
  walk(treeSha, '');
  return { sha: treeSha, url: `${ctx.api}/repos/${r.fullName}/git/trees/${treeSha}`, tree: out, truncated: false };
}

export function pullJson(ctx: Ctx, r: EmulatedRepo, p: PullRequest) {
  const side = (ref: string, sha: string | undefined) => ({
    label: `${r.owner}:${ref}`,
    ref,
    sha: sha ?? null,
    user: { login: r.owner },
    repo: { id: r.id, node_id: r.nodeId, name: r.name, full_name: r.fullName, owner: { login: r.owner } },
  });
  return {
    url: `${ctx.api}/repos/${r.fullName}/pulls/${p.number}`,
    id: p.id,
    node_id: p.nodeId,
    html_url: `${ctx.web}/${r.fullName}/pull/${p.number}`,
    number: p.number,
    state: p.state,
    locked: false,
    title: p.title,
    body: p.body,
    user: { login: p.user },
    created_at: p.createdAt,
    updated_at: p.createdAt,
    closed_at: null,
    merged_at: null,
    merge_commit_sha: p.mergeCommitSha ?? null,
    draft: false,
    head: side(p.head, r.resolve(p.head)),
    base: side(p.base, r.resolve(p.base)),
    auto_merge: p.autoMerge
      ? {
          enabled_by: { login: p.user },
          merge_method: p.autoMerge.mergeMethod.toLowerCase(),
          commit_title: null,
          commit_message: null,
        }
      : null,
    merged: p.merged,
  };
}

export function contentJson(ctx: Ctx, r: EmulatedRepo, path: string, f: FlatFile, withContent: boolean) {
  const blob = r.blob(f.sha);
  const size = blob?.content.length ?? 0;
  const type = f.mode === '120000' ? 'symlink' : f.mode === '160000' ? 'submodule' : 'file';
  const big = size > 1024 * 1024;
  return {
    type,
    ...(withContent && type === 'file'
      ? { encoding: big ? 'none' : 'base64', content: big ? '' : base64Lines(blob!.content) }
      : {}),
    size,
    name: path.split('/').pop(),
    path,
    sha: f.sha,
    url: `${ctx.api}/repos/${r.fullName}/contents/${path}`,
    html_url: `${ctx.web}/${r.fullName}/blob/${r.defaultBranch}/${path}`,
    git_url: `${ctx.api}/repos/${r.fullName}/git/blobs/${f.sha}`,
    download_url: `${ctx.web}/${r.fullName}/raw/${r.defaultBranch}/${path}`,
  };
}

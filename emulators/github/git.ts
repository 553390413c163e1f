import { base64Lines, invalid, isAncestor, notFound, requireAuth, str, type RepoRoute } from './api.js';
import { commitJson, refJson, treeJson } from './json.js';
import type { FlatFile } from './store.js';

/** The Git data API: refs, commits, trees and blobs (what site-bump writes its one commit with). */
export const gitRoutes: RepoRoute[] = [
  {
    method: 'GET',
    path: /^git\/ref\/(.+)$/,
    handle: (ctx, r, x) => {
      const ref = `refs/${decodeURIComponent(x[1]!)}`;
      if (!r.refs.has(ref)) throw notFound();
      return { status: 200, body: refJson(ctx, r, ref) };
    },
  },
  {
    method: 'POST',
    path: /^git\/refs$/,
    handle: (ctx, r) => {
      requireAuth(ctx);
      const ref = str(ctx.body.ref);
      const sha = str(ctx.body.sha);
      if (!ref || !sha) throw invalid('Invalid request.\n\n"ref", "sha" weren\'t supplied.');
      if (!/^refs\/[^/]+\/.+/.test(ref) || /\.\.|\/\/|\/$|\.lock$|[\s~^:?*[\\]/.test(ref))
        throw invalid(`${ref} is not a valid ref name.`);
      if (!r.commit(sha)) throw invalid('Object does not exist');
      if (r.refs.has(ref)) throw invalid('Reference already exists');
      r.refs.set(ref, sha);
      return {
        status: 201,
        body: refJson(ctx, r, ref),
        headers: { location: `${ctx.api}/repos/${r.fullName}/git/${ref}` },
      };
    },
  },
  {
    method: 'DELETE',
    path: /^git\/refs\/(.+)$/,
    handle: (ctx, r, x) => {
      requireAuth(ctx);
      const ref = `refs/${decodeURIComponent(x[1]!)}`;
      if (!r.refs.has(ref)) throw invalid('Reference does not exist');
      r.refs.delete(ref);
      return { status: 204 };
    },
  },
  {
    method: 'PATCH',
    path: /^git\/refs\/(.+)$/,
    handle: (ctx, r, x) => {
      requireAuth(ctx);
      const ref = `refs/${decodeURIComponent(x[1]!)}`;
      if (!r.refs.has(ref)) throw invalid('Reference does not exist');
      const sha = str(ctx.body.sha);
      if (!sha) throw invalid('Invalid request.\n\n"sha" wasn\'t supplied.');
      if (!r.commit(sha)) throw invalid('Object does not exist');
      if (ctx.body.force !== true && !isAncestor(r, r.refs.get(ref)!, sha))
        throw invalid('Update is not a fast forward');
      r.refs.set(ref, sha);
      return { status: 200, body: refJson(ctx, r, ref) };
    },
  },
  {
    method: 'GET',
    path: /^git\/commits\/([0-9a-f]{40})$/,
    handle: (ctx, r, x) => {
      if (!r.commit(x[1]!)) throw notFound();
      return { status: 200, body: commitJson(ctx, r, x[1]!) };
    },
  },
  {
    method: 'POST',
    path: /^git\/commits$/,
    handle: (ctx, r, _x, env) => {
      requireAuth(ctx);
      const message = str(ctx.body.message);
      const tree = str(ctx.body.tree);
      const parents = ctx.body.parents ?? [];
      if (message === undefined || !tree) throw invalid('Invalid request.\n\n"message", "tree" weren\'t supplied.');
      if (!Array.isArray(parents) || parents.some((p) => typeof p !== 'string'))
        throw invalid("Invalid request.\n\nFor 'properties/parents', is not an array of strings.");
      if (!r.tree(tree)) throw invalid('Tree SHA does not exist');
      for (const p of parents as string[])
        if (!r.commit(p)) throw invalid('Parent SHA does not exist or is not a commit object');
      const person = (v: unknown) => (v && typeof v === 'object' ? (v as Record<string, string>) : undefined);
      const sha = r.writeCommit({
        tree,
        parents: parents as string[],
        message,
        author: person(ctx.body.author) ?? { name: env.login, email: `${env.login}@users.noreply.github.com` },
        committer: person(ctx.body.committer) ?? { name: 'GitHub', email: 'noreply@github.com' },
      });
      return { status: 201, body: commitJson(ctx, r, sha) };
    },
  },
  {
    method: 'GET',
    path: /^git\/trees\/(.+)$/,
    handle: (ctx, r, x) => {
      const id = decodeURIComponent(x[1]!);
      const commit = r.resolve(id);
      const treeSha = commit ? r.commit(commit)!.tree : r.tree(id) ? id : undefined;
      if (!treeSha) throw notFound();
      return { status: 200, body: treeJson(ctx, r, treeSha, ctx.query.has('recursive')) };
    },
  },
  {
    method: 'POST',
    path: /^git\/trees$/,
    handle: (ctx, r) => {
      requireAuth(ctx);
      const entries = ctx.body.tree;
      if (!Array.isArray(entries)) throw invalid('Invalid request.\n\n"tree" wasn\'t supplied.');
      const baseTree = str(ctx.body.base_tree);
      if (baseTree && !r.tree(baseTree)) throw invalid('base_tree is not a valid tree oid');
      const files = baseTree ? r.flatten(baseTree) : new Map<string, FlatFile>();
      for (const raw of entries as Record<string, unknown>[]) applyTreeEntry(r, files, raw);
      const sha = r.writeFlatTree(files);
      return { status: 201, body: treeJson(ctx, r, sha, false) };
    },
  },
  {
    method: 'GET',
    path: /^git\/blobs\/([0-9a-f]{40})$/,
    handle: (ctx, r, x) => {
      const b = r.blob(x[1]!);
      if (!b) throw notFound();
      return {
        status: 200,
        body: {
          sha: x[1],
          node_id: `B_${Buffer.from(x[1]!, 'hex').toString('base64url')}`,
          size: b.content.length,
          url: `${ctx.api}/repos/${r.fullName}/git/blobs/${x[1]}`,
          content: base64Lines(b.content),
          encoding: 'base64',
        },
      };
    },
  },
  {
    method: 'POST',
    path: /^git\/blobs$/,
    handle: (ctx, r) => {
      requireAuth(ctx);
      const content = str(ctx.body.content);
      if (content === undefined) throw invalid('Invalid request.\n\n"content" wasn\'t supplied.');
      const enc = str(ctx.body.encoding) ?? 'utf-8';
      if (enc !== 'utf-8' && enc !== 'base64') throw invalid(`encoding must be utf-8 or base64`);
      const sha = r.writeBlob(Buffer.from(content, enc === 'base64' ? 'base64' : 'utf8'));
      return { status: 201, body: { sha, url: `${ctx.api}/repos/${r.fullName}/git/blobs/${sha}` } };
    },
  },
];

/** One entry of POST git/trees applied to the flat file map (content, sha, or null to delete). */
function applyTreeEntry(
  r: Parameters<RepoRoute['handle']>[1],
  files: Map<string, FlatFile>,
  raw: Record<string, unknown>,
): void {
  const path = str(raw.path) ?? '';
  const mode = str(raw.mode);
  if (
    !path ||
    path.startsWith('/') ||
    path.endsWith('/') ||
    path.split('/').some((c) => c === '' || c === '.' || c === '..' || c === '.git')
  ) {
    throw invalid(`tree.path contains a malformed path component`);
  }
  if (!mode || !['100644', '100755', '040000', '160000', '120000'].includes(mode))
    throw invalid(`Invalid tree info: mode ${String(mode)}`);
  if ('sha' in raw && 'content' in raw && raw.sha !== undefined && raw.content !== undefined) {
    throw invalid('Invalid tree info: use either tree.sha or content');
  }
  for (const p of [...files.keys()]) if (p === path || p.startsWith(`${path}/`)) files.delete(p);
  if (raw.sha === null) return;
  if (typeof raw.content === 'string') {
    files.set(path, { mode, sha: r.writeBlob(Buffer.from(raw.content, 'utf8')) });
  } else if (typeof raw.sha === 'string') {
    if (mode === '040000') {
      if (!r.tree(raw.sha)) throw invalid(`Invalid tree info: ${raw.sha} is not a tree`);
      for (const [p, f] of r.flatten(raw.sha)) files.set(`${path}/${p}`, f);
    } else if (mode === '160000') files.set(path, { mode, sha: raw.sha });
    else if (!r.blob(raw.sha)) throw invalid(`Invalid tree info: ${raw.sha} is not a blob`);
    else files.set(path, { mode, sha: raw.sha });
  } else throw invalid('Invalid tree info: tree.sha or content is required');
}

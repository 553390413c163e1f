import { ApiError, notFound, type RepoRoute } from './api.js';
import { contentJson, repoJson } from './json.js';

/** The repository itself and the contents API (read). */
export const repoRoutes: RepoRoute[] = [
  { method: 'GET', path: /^$/, handle: (ctx, r) => ({ status: 200, body: repoJson(ctx, r) }) },
  {
    method: 'GET',
    path: /^contents(?:\/(.*))?$/,
    handle: (ctx, r, x) => {
      const path = (x[1] ?? '')
        .split('/')
        .map(decodeURIComponent)
        .join('/')
        .replace(/^\/+|\/+$/g, '');
      const refName = ctx.query.get('ref') ?? r.defaultBranch;
      const commit = r.resolve(refName);
      if (!commit) throw new ApiError(404, `No commit found for the ref ${refName}`);
      const files = r.flatten(r.commit(commit)!.tree);
      const f = files.get(path);
      if (f) return { status: 200, body: contentJson(ctx, r, path, f, true) };
      // A directory: its entries, one level deep.
      const prefix = path ? `${path}/` : '';
      const children = new Map<string, Record<string, unknown>>();
      for (const [p, ff] of files) {
        if (!p.startsWith(prefix)) continue;
        const restPath = p.slice(prefix.length);
        const i = restPath.indexOf('/');
        if (i < 0) children.set(restPath, contentJson(ctx, r, p, ff, false));
        else {
          const dir = prefix + restPath.slice(0, i);
          children.set(restPath.slice(0, i), {
            type: 'dir',
            name: restPath.slice(0, i),
            path: dir,
            size: 0,
            url: `${ctx.api}/repos/${r.fullName}/contents/${dir}`,
          });
        }
      }
      if (!children.size) throw notFound();
      return { status: 200, body: [...children.values()].sort((a, b) => (String(a.name) < String(b.name) ? -1 : 1)) };
    },
  },
];

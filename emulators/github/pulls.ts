import { invalid, isAncestor, notFound, requireAuth, str, type RepoRoute } from './api.js';
import { pullJson } from './json.js';

/** Pull requests: list (filtered by state, head and base, paginated), get, create. */
export const pullRoutes: RepoRoute[] = [
  {
    method: 'GET',
    path: /^pulls$/,
    handle: (ctx, r) => {
      const st = ctx.query.get('state') ?? 'open';
      const head = ctx.query.get('head');
      const baseF = ctx.query.get('base');
      let list = r.pulls.filter((p) => st === 'all' || p.state === st);
      // GitHub filters by head only in the `user:ref-name` form.
      if (head && head.includes(':')) {
        const [user, ref] = [head.slice(0, head.indexOf(':')), head.slice(head.indexOf(':') + 1)];
        list = list.filter((p) => user.toLowerCase() === r.owner.toLowerCase() && p.head === ref);
      }
      if (baseF) list = list.filter((p) => p.base === baseF);
      list = [...list].sort((a, b) => b.number - a.number);
      const perPage = Math.min(100, Number(ctx.query.get('per_page') ?? 30) || 30);
      const page = Math.max(1, Number(ctx.query.get('page') ?? 1) || 1);
      return { status: 200, body: list.slice((page - 1) * perPage, page * perPage).map((p) => pullJson(ctx, r, p)) };
    },
  },
  {
    method: 'GET',
    path: /^pulls\/(\d+)$/,
    handle: (ctx, r, x) => {
      const p = r.pulls.find((pp) => pp.number === Number(x[1]));
      if (!p) throw notFound();
      return { status: 200, body: pullJson(ctx, r, p) };
    },
  },
  {
    method: 'POST',
    path: /^pulls$/,
    handle: (ctx, r, _x, env) => {
      requireAuth(ctx);
      const title = str(ctx.body.title);
      let head = str(ctx.body.head);
      const baseB = str(ctx.body.base);
      if (!title)
        throw invalid('Validation Failed', [{ resource: 'PullRequest', field: 'title', code: 'missing_field' }]);
      if (head?.includes(':')) {
        const owner = head.slice(0, head.indexOf(':'));
        if (owner.toLowerCase() !== r.owner.toLowerCase())
          throw invalid('Validation Failed', [{ resource: 'PullRequest', field: 'head', code: 'invalid' }]);
        head = head.slice(head.indexOf(':') + 1);
      }
      if (!head || !r.refs.has(`refs/heads/${head}`))
        throw invalid('Validation Failed', [{ resource: 'PullRequest', field: 'head', code: 'invalid' }]);
      if (!baseB || !r.refs.has(`refs/heads/${baseB}`))
        throw invalid('Validation Failed', [{ resource: 'PullRequest', field: 'base', code: 'invalid' }]);
      if (r.openPulls().some((p) => p.head === head && p.base === baseB)) {
        throw invalid('Validation Failed', [
          { resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${r.owner}:${head}.` },
        ]);
      }
      if (isAncestor(r, r.resolve(head)!, r.resolve(baseB)!)) {
        throw invalid('Validation Failed', [
          { resource: 'PullRequest', code: 'custom', message: `No commits between ${baseB} and ${head}` },
        ]);
      }
      const p = r.createPull({ title, body: str(ctx.body.body) ?? '', head, base: baseB, user: env.login });
      return {
        status: 201,
        body: pullJson(ctx, r, p),
        headers: { location: `${ctx.api}/repos/${r.fullName}/pulls/${p.number}` },
      };
    },
  },
];

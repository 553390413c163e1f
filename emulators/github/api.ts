import type { EmulatedRepo } from './store.js';

/**
 * The emulator's request and answer shapes and the seam every API area registers through: a
 * module exports routes (repository-scoped, under /repos/{owner}/{repo}/, or top-level) and
 * index.ts serves them. A new area (releases, packages, ...) is a new module with its routes,
 * added to the list in index.ts or passed in GithubEmulatorOptions.routes.
 */
export const DOCS = 'https://docs.github.com/rest';

/** An error answer in GitHub's shape (`message`, `errors`, `documentation_url`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: unknown[],
    readonly docs = DOCS,
  ) {
    super(message);
  }
}

export const notFound = () => new ApiError(404, 'Not Found');
export const invalid = (message: string, errors?: unknown[]) => new ApiError(422, message, errors);

export interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Ctx {
  method: string;
  /** Path below the API root, decoded per segment by the routes. */
  path: string;
  query: URLSearchParams;
  body: Record<string, unknown>;
  /** `http://host[/api/v3]`: base of `url` fields. */
  api: string;
  /** `http://host`: base of `html_url` fields. */
  web: string;
  authorized: boolean;
}

/** What a route may use besides the request: the repositories and the token's login. */
export interface RouteEnv {
  repos: Map<string, EmulatedRepo>;
  login: string;
}

/** A route under /repos/{owner}/{repo}/: `path` is matched against the rest of the path ('' for the repository itself). */
export interface RepoRoute {
  method: string;
  path: RegExp;
  handle(ctx: Ctx, repo: EmulatedRepo, match: RegExpExecArray, env: RouteEnv): Answer;
}

/** A route outside /repos/ (e.g. /orgs/{org}/packages/...): `path` is matched against the whole path. */
export interface TopRoute {
  method: string;
  path: RegExp;
  handle(ctx: Ctx, match: RegExpExecArray, env: RouteEnv): Answer;
}

export interface Routes {
  repo?: RepoRoute[];
  top?: TopRoute[];
}

export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function requireAuth(ctx: Ctx): void {
  if (!ctx.authorized) throw new ApiError(401, 'Requires authentication');
}

export function base64Lines(buf: Buffer): string {
  return (buf.toString('base64').match(/.{1,60}/g) ?? ['']).join('\n') + '\n';
}

/** Is `ancestor` reachable from commit `of` through parents? */
export function isAncestor(repo: EmulatedRepo, ancestor: string, of: string): boolean {
  const seen = new Set<string>();
  const stack = [of];
  while (stack.length) {
    const s = stack.pop()!;
    if (s === ancestor) return true;
    if (seen.has(s)) continue;
    seen.add(s);
    stack.push(...(repo.commit(s)?.parents ?? []));
  }
  return false;
}

/** Serves a request from the routes: top-level first, then the repository routes. */
export function dispatch(ctx: Ctx, routes: Required<Routes>, env: RouteEnv): Answer {
  for (const r of routes.top) {
    const m = r.method === ctx.method ? r.path.exec(ctx.path) : null;
    if (m) return r.handle(ctx, m, env);
  }
  const m = /^\/repos\/([^/]+)\/([^/]+)(?:\/(.*))?$/.exec(ctx.path);
  if (!m) throw notFound();
  const repo = env.repos.get(`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`.toLowerCase());
  if (!repo || (repo.private && !ctx.authorized)) throw notFound();
  const rest = m[3] ?? '';
  for (const r of routes.repo) {
    const x = r.method === ctx.method ? r.path.exec(rest) : null;
    if (x) return r.handle(ctx, repo, x, env);
  }
  throw notFound();
}

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { ApiError, DOCS, dispatch, notFound, type Answer, type Ctx, type RouteEnv, type Routes } from './api.js';
import { gitRoutes } from './git.js';
import { graphql } from './graphql.js';
import { pullRoutes } from './pulls.js';
import { repoRoutes } from './repos.js';
import { EmulatedRepo, type RepoSeed } from './store.js';
import { routeExtensions, type GithubExtension } from './extension.js';
import { ReleaseStore, releasesRoute, releaseUpload } from './releases.js';

export { EmulatedRepo, hashObject, type PullRequest, type RepoSeed, type FileSpec, type MergeMethod } from './store.js';
export type { Answer, Ctx, RepoRoute, RouteEnv, Routes, TopRoute } from './api.js';
export { ApiError, invalid, notFound, requireAuth } from './api.js';

/**
 * A local GitHub API emulator: the REST and GraphQL calls Keel's `site-bump` makes, over
 * in-memory repositories (real git object hashing, refs, pull requests, the auto-merge flag).
 * Answers have the shapes Octokit parses (status codes, `number`, `html_url`, `node_id`, `sha`,
 * base64 `content` with `encoding`) and the errors GitHub gives (404 for a missing ref or file,
 * 422 for an existing branch or pull request, the GraphQL error when a repository does not
 * allow auto-merge). REST is served at the root (like api.github.com) and under `/api/v3`
 * (GitHub Enterprise Server); GraphQL at `/graphql` and `/api/graphql`. Faults (5xx, 429 with
 * Retry-After, before or after the request takes effect) are injectable per route. Used by the
 * tests and by the local runner (`keel run`).
 *
 * Each API area is a module of routes (api.ts has the seam): repos.ts (repository, contents),
 * git.ts (refs, commits, trees, blobs), pulls.ts, graphql.ts, releases.ts. A new area adds its
 * module to AREAS below, or a test passes extra routes in `routes`. Areas that answer
 * asynchronously (packages.ts backed by a registry, workflow-runs.ts) plug in as `extensions`.
 */
export interface GithubEmulatorOptions {
  /** 'owner/name' → seed (files of the first commit, default branch, allow auto-merge). */
  repos: Record<string, RepoSeed>;
  /** When set, every request must carry this token (`Authorization: token …` or `Bearer …`). */
  token?: string;
  /** Login of the token's user (the author of pull requests). */
  login?: string;
  port?: number;
  host?: string;
  /** More routes, served before the built-in areas (an area being written, a test's stand-in). */
  routes?: Routes;
  /** Asynchronous API areas (packages.ts, workflow-runs.ts): the first that claims a request answers it. */
  extensions?: GithubExtension[];
}

export interface FaultRule {
  method?: string;
  /** Matched against the request path with its query string. */
  path?: RegExp;
  /** Fire on at most this many matching requests (default: unlimited). */
  times?: number;
  /** Let this many matching requests through before firing. */
  skip?: number;
  status: number;
  retryAfter?: number | string;
  body?: unknown;
  /** 'before' (default): the request has no effect; 'after': it takes effect, then the answer is lost. */
  when?: 'before' | 'after';
}

export interface RequestLogEntry {
  method: string;
  /** Path with query string, as received. */
  path: string;
  status: number;
  /** The JSON body sent, when any (never headers: tokens stay out of the log). */
  body?: unknown;
  /** Whether the request carried an Authorization header the emulator accepted. */
  authorized: boolean;
  fault?: string;
}

export interface EmulatorState {
  repos: Map<string, EmulatedRepo>;
  requests: RequestLogEntry[];
  releases: ReleaseStore;
  /** A repository by 'owner/name' (case-insensitive); throws when unknown. */
  repo(fullName: string): EmulatedRepo;
  addRepo(fullName: string, seed: RepoSeed): EmulatedRepo;
}

export interface GithubEmulator {
  /** REST base URL (api.github.com style). */
  url: string;
  /** GraphQL endpoint for `url`. */
  graphqlUrl: string;
  /** REST base URL in the GitHub Enterprise Server shape (`…/api/v3`; GraphQL at `…/api/graphql`). */
  ghesUrl: string;
  state: EmulatorState;
  setFaults(rules: FaultRule[]): void;
  close(): Promise<void>;
}

/** The API areas the emulator serves, each a module of routes. */
const AREAS: Routes[] = [{ repo: repoRoutes }, { repo: gitRoutes }, { repo: pullRoutes }];

/** releases.ts answers every method under /repos/{owner}/{repo}/releases itself. */
function releaseRoutes(store: ReleaseStore): Routes {
  return {
    repo: ['GET', 'POST', 'PATCH', 'DELETE'].map((method) => ({
      method,
      path: /^releases(?:\/.*)?$/,
      handle: (ctx, repo, m) => {
        const a = releasesRoute(store, ctx, repo, m[0]);
        if (!a) throw notFound();
        return a;
      },
    })),
  };
}

export async function startGithubEmulator(opts: GithubEmulatorOptions): Promise<GithubEmulator> {
  const state = emulatorState(opts.repos, opts.login ?? 'keel-bot');
  const faults = new FaultQueue();
  const env: RouteEnv = { repos: state.repos, login: opts.login ?? 'keel-bot' };
  const areas = [...AREAS, releaseRoutes(state.releases)];
  const routes: Required<Routes> = {
    top: [...(opts.routes?.top ?? []), ...areas.flatMap((r) => r.top ?? [])],
    repo: [...(opts.routes?.repo ?? []), ...areas.flatMap((r) => r.repo ?? [])],
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => serve(req, res, Buffer.concat(chunks), { opts, state, faults, env, routes }));
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${opts.host ?? '127.0.0.1'}:${addr.port}`;
  return {
    url,
    graphqlUrl: `${url}/graphql`,
    ghesUrl: `${url}/api/v3`,
    state,
    setFaults: (rules) => faults.set(rules),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function emulatorState(seeds: Record<string, RepoSeed>, login: string): EmulatorState {
  const repos = new Map<string, EmulatedRepo>();
  const state: EmulatorState = {
    repos,
    requests: [],
    releases: new ReleaseStore(login),
    repo(fullName) {
      const r = repos.get(fullName.toLowerCase());
      if (!r) throw new Error(`emulator: no repository ${fullName}`);
      return r;
    },
    addRepo(fullName, seed) {
      const [owner, name] = fullName.split('/');
      if (!owner || !name) throw new Error(`emulator: repository names are owner/name, got ${fullName}`);
      const r = new EmulatedRepo(owner, name, seed);
      repos.set(fullName.toLowerCase(), r);
      return r;
    },
  };
  for (const [fullName, seed] of Object.entries(seeds)) state.addRepo(fullName, seed);
  return state;
}

/** The injected faults, in order; each rule fires on its matching requests after `skip`, `times` times. */
class FaultQueue {
  private rules: FaultRule[] = [];
  private counters = new Map<FaultRule, { seen: number; fired: number }>();

  set(rules: FaultRule[]): void {
    this.rules = rules;
    this.counters = new Map();
  }

  pick(method: string, path: string): FaultRule | undefined {
    for (const r of this.rules) {
      if (r.method && r.method !== method) continue;
      if (r.path && !r.path.test(path)) continue;
      const c = this.counters.get(r) ?? { seen: 0, fired: 0 };
      this.counters.set(r, c);
      c.seen++;
      if (r.skip !== undefined && c.seen <= r.skip) continue;
      if (r.times !== undefined && c.fired >= r.times) continue;
      c.fired++;
      return r;
    }
    return undefined;
  }
}

interface Server {
  opts: GithubEmulatorOptions;
  state: EmulatorState;
  faults: FaultQueue;
  env: RouteEnv;
  routes: Required<Routes>;
}

/** One request: logged (never its headers), faults applied before or after it takes effect, then routed. */
function serve(req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer, s: Server): void {
  const method = req.method ?? 'GET';
  const rawPath = req.url ?? '/';
  const u = new URL(rawPath, 'http://emulator.invalid');
  const host = req.headers.host ?? '127.0.0.1';
  const ghes = u.pathname === '/api/v3' || u.pathname.startsWith('/api/v3/') || u.pathname === '/api/graphql';
  const auth = req.headers.authorization;
  const presented = auth ? /^(?:token|bearer)\s+(.+)$/i.exec(auth)?.[1] : undefined;
  const authorized = presented !== undefined && (s.opts.token === undefined || presented === s.opts.token);
  const entry: RequestLogEntry = { method, path: rawPath, status: 0, authorized };
  s.state.requests.push(entry);
  const answer = (a: Answer) => {
    entry.status = a.status;
    sendAnswer(res, a, s.state.requests.length);
  };

  // Asset uploads carry the file itself, not JSON.
  const apiPath = u.pathname.startsWith('/api/v3') ? u.pathname.slice('/api/v3'.length) || '/' : u.pathname;
  const upload = releaseUpload(s.state.releases, req, apiPath, raw, authorized, (n) => s.state.repos.get(n));
  if (upload) return answer(upload);
  const text = raw.toString('utf8');
  let body: Record<string, unknown> = {};
  if (text) {
    try {
      const parsed: unknown = JSON.parse(text);
      entry.body = parsed;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
    } catch {
      return answer({
        status: 400,
        body: { message: 'Problems parsing JSON', documentation_url: DOCS, status: '400' },
      });
    }
  }
  const fault = s.faults.pick(method, rawPath);
  if (fault && (fault.when ?? 'before') === 'before') return answer(faultAnswer(fault, entry));
  // A bad token is refused everywhere, like GitHub; no token at all only where auth is required.
  if (auth && !authorized)
    return answer({ status: 401, body: { message: 'Bad credentials', documentation_url: DOCS, status: '401' } });
  const ctx: Ctx = {
    method,
    path: apiPath,
    query: u.searchParams,
    body,
    api: `http://${host}${ghes ? '/api/v3' : ''}`,
    web: `http://${host}`,
    authorized,
  };
  const routed = routeExtensions(s.opts.extensions, ctx);
  if (routed) return void routed.then((x) => answer(fault ? faultAnswer(fault, entry) : x));
  const isGraphql = method === 'POST' && (u.pathname === '/graphql' || u.pathname === '/api/graphql');
  const a = answerOf(() => (isGraphql ? graphql(ctx, s.env) : dispatch(ctx, s.routes, s.env)));
  answer(fault ? faultAnswer(fault, entry) : a);
}

/** A route's answer, or its error in GitHub's shape (anything else is an emulator bug: 500). */
function answerOf(route: () => Answer): Answer {
  try {
    return route();
  } catch (e) {
    if (!(e instanceof ApiError))
      return { status: 500, body: { message: `emulator bug: ${e instanceof Error ? e.message : String(e)}` } };
    return {
      status: e.status,
      body: {
        message: e.message,
        ...(e.errors ? { errors: e.errors } : {}),
        documentation_url: e.docs,
        status: String(e.status),
      },
    };
  }
}

function faultAnswer(f: FaultRule, entry: RequestLogEntry): Answer {
  entry.fault = `status ${f.status} ${f.when ?? 'before'}`;
  return {
    status: f.status,
    body: f.body ?? { message: f.status >= 500 ? 'Server Error' : 'injected fault', status: String(f.status) },
    headers: f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {},
  };
}

function sendAnswer(res: http.ServerResponse, a: Answer, requestNumber: number): void {
  const headers: Record<string, string> = {
    'x-github-request-id': `EMU:${requestNumber}`,
    'x-ratelimit-limit': '5000',
    'x-ratelimit-remaining': '4999',
    ...(a.headers ?? {}),
  };
  if (a.status === 204 || a.body === undefined) {
    res.writeHead(a.status, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(a.body);
  res.writeHead(a.status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

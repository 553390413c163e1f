import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { EmulatedRepo, type FlatFile, type MergeMethod, type PullRequest, type RepoSeed } from './store.js';
import { routeExtensions, type GithubExtension } from './extension.js';
import { ReleaseStore, releasesRoute, releaseUpload } from './releases.js';

export { EmulatedRepo, hashObject, type PullRequest, type RepoSeed, type FileSpec, type MergeMethod } from './store.js';

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
  /** More API areas (packages.ts, workflow-runs.ts): the first that claims a request answers it. */
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
  /** A repository by 'owner/name' (case-insensitive); throws when unknown. */
  repo(fullName: string): EmulatedRepo;
  addRepo(fullName: string, seed: RepoSeed): EmulatedRepo;
  releases: ReleaseStore;
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

const DOCS = 'https://docs.github.com/rest';

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: unknown[],
    readonly docs = DOCS,
  ) {
    super(message);
  }
}

const notFound = () => new ApiError(404, 'Not Found');
const invalid = (message: string, errors?: unknown[]) => new ApiError(422, message, errors);

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

interface Ctx {
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

function base64Lines(buf: Buffer): string {
  return (buf.toString('base64').match(/.{1,60}/g) ?? ['']).join('\n') + '\n';
}

function isAncestor(repo: EmulatedRepo, ancestor: string, of: string): boolean {
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

export async function startGithubEmulator(opts: GithubEmulatorOptions): Promise<GithubEmulator> {
  const repos = new Map<string, EmulatedRepo>();
  const requests: RequestLogEntry[] = [];
  const login = opts.login ?? 'keel-bot';
  const state: EmulatorState = {
    repos,
    requests,
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
  for (const [fullName, seed] of Object.entries(opts.repos)) state.addRepo(fullName, seed);

  let faults: FaultRule[] = [];
  let counters = new Map<FaultRule, { seen: number; fired: number }>();
  const pickFault = (method: string, path: string): FaultRule | undefined => {
    for (const r of faults) {
      if (r.method && r.method !== method) continue;
      if (r.path && !r.path.test(path)) continue;
      const c = counters.get(r) ?? { seen: 0, fired: 0 };
      counters.set(r, c);
      c.seen++;
      if (r.skip !== undefined && c.seen <= r.skip) continue;
      if (r.times !== undefined && c.fired >= r.times) continue;
      c.fired++;
      return r;
    }
    return undefined;
  };

  // ---------- JSON shapes ----------
  const repoJson = (ctx: Ctx, r: EmulatedRepo) => ({
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
  });
  const refJson = (ctx: Ctx, r: EmulatedRepo, ref: string) => {
    const sha = r.refs.get(ref)!;
    return {
      ref,
      node_id: `REF_${Buffer.from(`${r.id}:${ref}`).toString('base64url')}`,
      url: `${ctx.api}/repos/${r.fullName}/git/${ref}`,
      object: { sha, type: 'commit', url: `${ctx.api}/repos/${r.fullName}/git/commits/${sha}` },
    };
  };
  const commitJson = (ctx: Ctx, r: EmulatedRepo, sha: string) => {
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
  };
  const treeEntries = (ctx: Ctx, r: EmulatedRepo, treeSha: string, recursive: boolean) => {
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
  };
  const pullJson = (ctx: Ctx, r: EmulatedRepo, p: PullRequest) => {
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
  };
  const contentJson = (ctx: Ctx, r: EmulatedRepo, path: string, f: FlatFile, withContent: boolean) => {
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
  };

  // ---------- REST ----------
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const requireAuth = (ctx: Ctx) => {
    if (!ctx.authorized) throw new ApiError(401, 'Requires authentication');
  };

  const rest = (ctx: Ctx): Answer => {
    const m = /^\/repos\/([^/]+)\/([^/]+)(?:\/(.*))?$/.exec(ctx.path);
    if (!m) throw notFound();
    const r = repos.get(`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`.toLowerCase());
    if (!r || (r.private && !ctx.authorized)) throw notFound();
    const rest = m[3] ?? '';
    const M = ctx.method;
    let x: RegExpExecArray | null;

    const release = releasesRoute(state.releases, ctx, r, rest);
    if (release) return release;
    if (rest === '' && M === 'GET') return { status: 200, body: repoJson(ctx, r) };

    // --- refs ---
    if (M === 'GET' && (x = /^git\/ref\/(.+)$/.exec(rest))) {
      const ref = `refs/${decodeURIComponent(x[1]!)}`;
      if (!r.refs.has(ref)) throw notFound();
      return { status: 200, body: refJson(ctx, r, ref) };
    }
    if (M === 'POST' && rest === 'git/refs') {
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
    }
    if ((M === 'PATCH' || M === 'DELETE') && (x = /^git\/refs\/(.+)$/.exec(rest))) {
      requireAuth(ctx);
      const ref = `refs/${decodeURIComponent(x[1]!)}`;
      if (!r.refs.has(ref)) throw invalid('Reference does not exist');
      if (M === 'DELETE') {
        r.refs.delete(ref);
        return { status: 204 };
      }
      const sha = str(ctx.body.sha);
      if (!sha) throw invalid('Invalid request.\n\n"sha" wasn\'t supplied.');
      if (!r.commit(sha)) throw invalid('Object does not exist');
      if (ctx.body.force !== true && !isAncestor(r, r.refs.get(ref)!, sha))
        throw invalid('Update is not a fast forward');
      r.refs.set(ref, sha);
      return { status: 200, body: refJson(ctx, r, ref) };
    }

    // --- commits ---
    if (M === 'GET' && (x = /^git\/commits\/([0-9a-f]{40})$/.exec(rest))) {
      if (!r.commit(x[1]!)) throw notFound();
      return { status: 200, body: commitJson(ctx, r, x[1]!) };
    }
    if (M === 'POST' && rest === 'git/commits') {
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
        author: person(ctx.body.author) ?? { name: login, email: `${login}@users.noreply.github.com` },
        committer: person(ctx.body.committer) ?? { name: 'GitHub', email: 'noreply@github.com' },
      });
      return { status: 201, body: commitJson(ctx, r, sha) };
    }

    // --- trees ---
    if (M === 'GET' && (x = /^git\/trees\/(.+)$/.exec(rest))) {
      const id = decodeURIComponent(x[1]!);
      const commit = r.resolve(id);
      const treeSha = commit ? r.commit(commit)!.tree : r.tree(id) ? id : undefined;
      if (!treeSha) throw notFound();
      return { status: 200, body: treeEntries(ctx, r, treeSha, ctx.query.has('recursive')) };
    }
    if (M === 'POST' && rest === 'git/trees') {
      requireAuth(ctx);
      const entries = ctx.body.tree;
      if (!Array.isArray(entries)) throw invalid('Invalid request.\n\n"tree" wasn\'t supplied.');
      const baseTree = str(ctx.body.base_tree);
      if (baseTree && !r.tree(baseTree)) throw invalid('base_tree is not a valid tree oid');
      const files = baseTree ? r.flatten(baseTree) : new Map<string, FlatFile>();
      for (const raw of entries as Record<string, unknown>[]) {
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
        if (raw.sha === null) continue;
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
      const sha = r.writeFlatTree(files);
      return { status: 201, body: treeEntries(ctx, r, sha, false) };
    }

    // --- blobs ---
    if (M === 'GET' && (x = /^git\/blobs\/([0-9a-f]{40})$/.exec(rest))) {
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
    }
    if (M === 'POST' && rest === 'git/blobs') {
      requireAuth(ctx);
      const content = str(ctx.body.content);
      if (content === undefined) throw invalid('Invalid request.\n\n"content" wasn\'t supplied.');
      const enc = str(ctx.body.encoding) ?? 'utf-8';
      if (enc !== 'utf-8' && enc !== 'base64') throw invalid(`encoding must be utf-8 or base64`);
      const sha = r.writeBlob(Buffer.from(content, enc === 'base64' ? 'base64' : 'utf8'));
      return { status: 201, body: { sha, url: `${ctx.api}/repos/${r.fullName}/git/blobs/${sha}` } };
    }

    // --- contents (read) ---
    if (M === 'GET' && (x = /^contents(?:\/(.*))?$/.exec(rest))) {
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
    }

    // --- pulls ---
    if (M === 'GET' && rest === 'pulls') {
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
    }
    if (M === 'GET' && (x = /^pulls\/(\d+)$/.exec(rest))) {
      const p = r.pulls.find((pp) => pp.number === Number(x![1]));
      if (!p) throw notFound();
      return { status: 200, body: pullJson(ctx, r, p) };
    }
    if (M === 'POST' && rest === 'pulls') {
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
      const p = r.createPull({ title, body: str(ctx.body.body) ?? '', head, base: baseB, user: login });
      return {
        status: 201,
        body: pullJson(ctx, r, p),
        headers: { location: `${ctx.api}/repos/${r.fullName}/pulls/${p.number}` },
      };
    }
    throw notFound();
  };

  // ---------- GraphQL ----------
  const graphql = (ctx: Ctx): Answer => {
    if (!ctx.authorized)
      return {
        status: 401,
        body: {
          message: 'This endpoint requires you to be authenticated.',
          documentation_url:
            'https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql',
          status: '401',
        },
      };
    const query = str(ctx.body.query) ?? '';
    const vars = (ctx.body.variables && typeof ctx.body.variables === 'object' ? ctx.body.variables : {}) as Record<
      string,
      unknown
    >;
    const field = 'enablePullRequestAutoMerge';
    if (!query.includes(field)) {
      return {
        status: 200,
        body: { errors: [{ message: 'keel GitHub emulator: only the enablePullRequestAutoMerge mutation is served' }] },
      };
    }
    const inputVar = /\binput\s*:\s*\$(\w+)/.exec(query);
    const input = inputVar ? ((vars[inputVar[1]!] ?? {}) as Record<string, unknown>) : {};
    const arg = (name: string): unknown => {
      if (name in input) return input[name];
      // An argument `name: $var | "literal" | ENUM`, not the declaration `$name: Type`.
      const a = new RegExp(`(?<![$\\w])${name}\\s*:\\s*(?:\\$(\\w+)|"([^"]*)"|([A-Z_]+)\\b)`).exec(query);
      if (!a) return undefined;
      return a[1] ? vars[a[1]] : (a[2] ?? a[3]);
    };
    const err = (type: string, message: string) => ({
      status: 200,
      body: {
        data: { [field]: null },
        errors: [{ type, path: [field], locations: [{ line: 2, column: 3 }], message }],
      },
    });
    const id = arg('pullRequestId');
    const method = arg('mergeMethod') ?? 'MERGE';
    if (typeof id !== 'string')
      return {
        status: 200,
        body: {
          errors: [
            { message: "Argument 'pullRequestId' on InputObject 'EnablePullRequestAutoMergeInput' is required." },
          ],
        },
      };
    if (typeof method !== 'string' || !['MERGE', 'SQUASH', 'REBASE'].includes(method)) {
      return {
        status: 200,
        body: {
          errors: [
            {
              message: `Variable $mergeMethod of type PullRequestMergeMethod was provided invalid value ${JSON.stringify(method)}`,
            },
          ],
        },
      };
    }
    for (const r of repos.values()) {
      const p = r.pulls.find((pp) => pp.nodeId === id);
      if (!p) continue;
      if (!r.allowAutoMerge) return err('UNPROCESSABLE', 'Pull request Auto merge is not allowed for this repository');
      if (p.state !== 'open')
        return err('UNPROCESSABLE', 'Pull request is not in the correct state to enable auto-merge');
      p.autoMerge = { mergeMethod: method as MergeMethod, enabledAt: r.now() };
      return {
        status: 200,
        body: {
          data: {
            [field]: {
              pullRequest: {
                id: p.nodeId,
                number: p.number,
                url: `${ctx.web}/${r.fullName}/pull/${p.number}`,
                autoMergeRequest: { ...p.autoMerge },
              },
            },
          },
        },
      };
    }
    return err('NOT_FOUND', `Could not resolve to a node with the global id of '${id}'.`);
  };

  // ---------- HTTP ----------
  const sockets = new Set<Socket>();
  const send = (res: http.ServerResponse, a: Answer) => {
    const headers: Record<string, string> = {
      'x-github-request-id': `EMU:${requests.length}`,
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
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const method = req.method ?? 'GET';
      const rawPath = req.url ?? '/';
      const u = new URL(rawPath, 'http://emulator.invalid');
      const host = req.headers.host ?? '127.0.0.1';
      const ghes = u.pathname === '/api/v3' || u.pathname.startsWith('/api/v3/') || u.pathname === '/api/graphql';
      const path = u.pathname.startsWith('/api/v3') ? u.pathname.slice('/api/v3'.length) || '/' : u.pathname;
      const auth = req.headers.authorization;
      const presented = auth ? /^(?:token|bearer)\s+(.+)$/i.exec(auth)?.[1] : undefined;
      const authorized = presented !== undefined && (opts.token === undefined || presented === opts.token);
      const entry: RequestLogEntry = { method, path: rawPath, status: 0, authorized };
      requests.push(entry);

      let body: Record<string, unknown> = {};
      const text = Buffer.concat(chunks).toString('utf8');
      const answer = (a: Answer) => {
        entry.status = a.status;
        send(res, a);
      };
      const upload = releaseUpload(state.releases, req, path, Buffer.concat(chunks), authorized, (n) => repos.get(n));
      if (upload) return answer(upload);
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

      const fault = pickFault(method, rawPath);
      const faultAnswer = (f: FaultRule): Answer => {
        entry.fault = `status ${f.status} ${f.when ?? 'before'}`;
        return {
          status: f.status,
          body: f.body ?? { message: f.status >= 500 ? 'Server Error' : 'injected fault', status: String(f.status) },
          headers: f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {},
        };
      };
      if (fault && (fault.when ?? 'before') === 'before') return answer(faultAnswer(fault));

      // A bad token is refused everywhere, like GitHub; no token at all only where auth is required.
      if (auth && !authorized)
        return answer({ status: 401, body: { message: 'Bad credentials', documentation_url: DOCS, status: '401' } });

      const ctx: Ctx = {
        method,
        path,
        query: u.searchParams,
        body,
        api: `http://${host}${ghes ? '/api/v3' : ''}`,
        web: `http://${host}`,
        authorized,
      };
      const routed = routeExtensions(opts.extensions, ctx);
      if (routed) return void routed.then((x) => answer(fault ? faultAnswer(fault) : x));
      let a: Answer;
      try {
        if (method === 'POST' && (u.pathname === '/graphql' || u.pathname === '/api/graphql')) a = graphql(ctx);
        else a = rest(ctx);
      } catch (e) {
        if (!(e instanceof ApiError)) {
          a = { status: 500, body: { message: `emulator bug: ${e instanceof Error ? e.message : String(e)}` } };
        } else {
          a = {
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
      if (fault) return answer(faultAnswer(fault));
      answer(a);
    });
  });
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
    setFaults(rules) {
      faults = rules;
      counters = new Map();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

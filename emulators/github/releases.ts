import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { EmulatedRepo } from './store.js';

/**
 * The GitHub Releases REST API for the emulator: create a release for a tag (the tag is made
 * on target_commitish when it does not exist, as GitHub does), get one by id or tag, the latest,
 * list (newest first, paginated), update, delete, and upload / list assets (the upload URL is
 * this emulator, with the raw body GitHub's uploads host takes). Answers carry the fields
 * Octokit's types name and GitHub's errors (404; 422 `already_exists` for a second release of
 * a tag or a second asset of a name). The index hooks it in with `releasesRoute` (the REST
 * router) and `releaseUpload` (the raw-body upload, before the JSON parser).
 */
export interface ReleaseAsset {
  id: number;
  name: string;
  label: string;
  contentType: string;
  content: Buffer;
  createdAt: string;
}

export interface Release {
  id: number;
  tagName: string;
  targetCommitish: string;
  name: string | null;
  body: string | null;
  draft: boolean;
  prerelease: boolean;
  createdAt: string;
  publishedAt: string | null;
  author: string;
  assets: ReleaseAsset[];
}

export interface ReleaseAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** What a route needs of a request (the index's context has these fields). */
export interface ReleaseRequest {
  method: string;
  query: URLSearchParams;
  body: Record<string, unknown>;
  /** Base of `url` fields (http://host[/api/v3]). */
  api: string;
  /** Base of `html_url` fields (http://host). */
  web: string;
  authorized: boolean;
}

const DOCS = 'https://docs.github.com/rest/releases';

const error = (status: number, message: string, errors?: unknown[]): ReleaseAnswer => ({
  status,
  body: { message, ...(errors ? { errors } : {}), documentation_url: DOCS, status: String(status) },
});
const notFound = () => error(404, 'Not Found');
const unauthorized = () => error(401, 'Requires authentication');
const alreadyExists = (resource: string, field: string) =>
  error(422, 'Validation Failed', [{ resource, code: 'already_exists', field }]);

/** The releases of every emulated repository, by 'owner/name' (lower-case). */
export class ReleaseStore {
  private readonly byRepo = new Map<string, Release[]>();
  private nextId = 1000;

  constructor(private readonly login: string) {}

  list(repo: EmulatedRepo): Release[] {
    const k = repo.fullName.toLowerCase();
    if (!this.byRepo.has(k)) this.byRepo.set(k, []);
    return this.byRepo.get(k)!;
  }

  byTag(repo: EmulatedRepo, tag: string): Release | undefined {
    return this.list(repo).find((r) => r.tagName === tag);
  }

  create(repo: EmulatedRepo, f: Omit<Release, 'id' | 'createdAt' | 'publishedAt' | 'author' | 'assets'>): Release {
    const now = repo.now();
    const rel: Release = {
      ...f,
      id: this.nextId++,
      createdAt: now,
      publishedAt: f.draft ? null : now,
      author: this.login,
      assets: [],
    };
    this.list(repo).unshift(rel);
    return rel;
  }

  newAssetId(): number {
    return this.nextId++;
  }
}

function releaseJson(req: ReleaseRequest, repo: EmulatedRepo, r: Release) {
  const api = `${req.api}/repos/${repo.fullName}/releases/${r.id}`;
  return {
    url: api,
    html_url: `${req.web}/${repo.fullName}/releases/tag/${encodeURIComponent(r.tagName)}`,
    assets_url: `${api}/assets`,
    upload_url: `${req.web}/repos/${repo.fullName}/releases/${r.id}/assets{?name,label}`,
    tarball_url: `${req.api}/repos/${repo.fullName}/tarball/${encodeURIComponent(r.tagName)}`,
    zipball_url: `${req.api}/repos/${repo.fullName}/zipball/${encodeURIComponent(r.tagName)}`,
    id: r.id,
    node_id: `RE_${Buffer.from(String(r.id)).toString('base64url')}`,
    tag_name: r.tagName,
    target_commitish: r.targetCommitish,
    name: r.name,
    body: r.body,
    draft: r.draft,
    prerelease: r.prerelease,
    created_at: r.createdAt,
    published_at: r.publishedAt,
    author: { login: r.author, id: 1, type: 'Bot' },
    assets: r.assets.map((a) => assetJson(req, repo, a)),
  };
}

function assetJson(req: ReleaseRequest, repo: EmulatedRepo, a: ReleaseAsset) {
  return {
    url: `${req.api}/repos/${repo.fullName}/releases/assets/${a.id}`,
    browser_download_url: `${req.web}/${repo.fullName}/releases/download/${a.id}/${encodeURIComponent(a.name)}`,
    id: a.id,
    node_id: `RA_${Buffer.from(String(a.id)).toString('base64url')}`,
    name: a.name,
    label: a.label,
    state: 'uploaded',
    content_type: a.contentType,
    size: a.content.length,
    digest: `sha256:${crypto.createHash('sha256').update(a.content).digest('hex')}`,
    download_count: 0,
    created_at: a.createdAt,
    updated_at: a.createdAt,
    uploader: { login: 'keel-bot' },
  };
}

const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const flag = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);

function createRelease(store: ReleaseStore, req: ReleaseRequest, repo: EmulatedRepo): ReleaseAnswer {
  const tag = text(req.body.tag_name);
  if (!tag) return error(422, 'Invalid request.\n\n"tag_name" wasn\'t supplied.');
  if (store.byTag(repo, tag)) return alreadyExists('Release', 'tag_name');
  const target = text(req.body.target_commitish) ?? repo.defaultBranch;
  if (!repo.refs.has(`refs/tags/${tag}`)) {
    const sha = repo.resolve(target);
    if (!sha)
      return error(422, 'Validation Failed', [{ resource: 'Release', code: 'invalid', field: 'target_commitish' }]);
    repo.refs.set(`refs/tags/${tag}`, sha);
  }
  const rel = store.create(repo, {
    tagName: tag,
    targetCommitish: target,
    name: text(req.body.name) ?? tag,
    body: text(req.body.body) ?? null,
    draft: flag(req.body.draft) ?? false,
    prerelease: flag(req.body.prerelease) ?? false,
  });
  return {
    status: 201,
    body: releaseJson(req, repo, rel),
    headers: { location: `${req.api}/repos/${repo.fullName}/releases/${rel.id}` },
  };
}

function updateRelease(store: ReleaseStore, req: ReleaseRequest, repo: EmulatedRepo, rel: Release): ReleaseAnswer {
  const tag = text(req.body.tag_name);
  if (tag && tag !== rel.tagName && store.byTag(repo, tag)) return alreadyExists('Release', 'tag_name');
  if (tag) rel.tagName = tag;
  if ('name' in req.body) rel.name = text(req.body.name) ?? null;
  if ('body' in req.body) rel.body = text(req.body.body) ?? null;
  rel.draft = flag(req.body.draft) ?? rel.draft;
  rel.prerelease = flag(req.body.prerelease) ?? rel.prerelease;
  if (!rel.draft && !rel.publishedAt) rel.publishedAt = repo.now();
  return { status: 200, body: releaseJson(req, repo, rel) };
}

/**
 * Routes `rest` (the path below /repos/{owner}/{repo}/) when it is a releases endpoint;
 * undefined otherwise (the index's router goes on).
 */
export function releasesRoute(
  store: ReleaseStore,
  req: ReleaseRequest,
  repo: EmulatedRepo,
  rest: string,
): ReleaseAnswer | undefined {
  const M = req.method;
  if (!/^releases(\/|$)/.test(rest)) return undefined;
  if (M !== 'GET' && !req.authorized) return unauthorized();
  const visible = store.list(repo).filter((r) => !r.draft || req.authorized);
  let x: RegExpExecArray | null;
  if (rest === 'releases' && M === 'POST') return createRelease(store, req, repo);
  if (rest === 'releases' && M === 'GET') {
    const per = Math.min(100, Number(req.query.get('per_page') ?? 30) || 30);
    const page = Math.max(1, Number(req.query.get('page') ?? 1) || 1);
    return { status: 200, body: visible.slice((page - 1) * per, page * per).map((r) => releaseJson(req, repo, r)) };
  }
  if (rest === 'releases/latest' && M === 'GET') {
    const latest = visible.find((r) => !r.draft && !r.prerelease);
    return latest ? { status: 200, body: releaseJson(req, repo, latest) } : notFound();
  }
  if (M === 'GET' && (x = /^releases\/tags\/(.+)$/.exec(rest))) {
    const rel = visible.find((r) => r.tagName === decodeURIComponent(x![1]!));
    return rel ? { status: 200, body: releaseJson(req, repo, rel) } : notFound();
  }
  if ((x = /^releases\/(\d+)(\/assets)?$/.exec(rest))) {
    const rel = visible.find((r) => r.id === Number(x![1]));
    if (!rel) return notFound();
    if (x[2]) return M === 'GET' ? { status: 200, body: rel.assets.map((a) => assetJson(req, repo, a)) } : notFound();
    if (M === 'GET') return { status: 200, body: releaseJson(req, repo, rel) };
    if (M === 'PATCH') return updateRelease(store, req, repo, rel);
    if (M === 'DELETE') {
      store.list(repo).splice(store.list(repo).indexOf(rel), 1);
      return { status: 204 };
    }
  }
  return notFound();
}

/**
 * The upload endpoint (`upload_url`: POST /repos/{owner}/{repo}/releases/{id}/assets?name=…
 * with the raw file as the body), or undefined for any other request. `repoOf` takes the
 * lower-case 'owner/name'.
 */
export function releaseUpload(
  store: ReleaseStore,
  http: IncomingMessage,
  path: string,
  raw: Buffer,
  authorized: boolean,
  repoOf: (fullName: string) => EmulatedRepo | undefined,
): ReleaseAnswer | undefined {
  const m = /^\/repos\/([^/]+)\/([^/]+)\/releases\/(\d+)\/assets$/.exec(path);
  if (!m || http.method !== 'POST') return undefined;
  if (!authorized) return unauthorized();
  const repo = repoOf(`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`.toLowerCase());
  const rel = repo && store.list(repo).find((r) => r.id === Number(m[3]));
  if (!repo || !rel) return notFound();
  const query = new URL(http.url ?? '/', 'http://emulator.invalid').searchParams;
  const name = query.get('name');
  if (!name)
    return error(422, 'Validation Failed', [{ resource: 'ReleaseAsset', code: 'missing_field', field: 'name' }]);
  if (rel.assets.some((a) => a.name === name)) return alreadyExists('ReleaseAsset', 'name');
  const asset: ReleaseAsset = {
    id: store.newAssetId(),
    name,
    label: query.get('label') ?? '',
    contentType: http.headers['content-type'] || 'application/octet-stream',
    content: raw,
    createdAt: repo.now(),
  };
  rel.assets.push(asset);
  const host = `http://${http.headers.host ?? '127.0.0.1'}`;
  return {
    status: 201,
    body: assetJson({ method: 'POST', query, body: {}, api: host, web: host, authorized }, repo, asset),
  };
}

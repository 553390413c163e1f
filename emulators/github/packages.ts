import fs from 'node:fs';
import path from 'node:path';
import {
  apiError,
  pageOf,
  requiresAuth,
  type EmulatedAnswer,
  type EmulatedRequest,
  type GithubExtension,
} from './extension.js';

/**
 * GitHub Packages (container) endpoints over a real docker-registry: a package is the registry
 * repository `<owner>/<name>`, its versions are the repository's manifests (read from the
 * registry's filesystem storage, so untagged index children are versions too, as on ghcr.io),
 * each with the tags that point at it. Deleting a version sends `DELETE /v2/<repo>/manifests/<digest>`
 * to the registry, so it really goes, with every tag on it. Whether an owner is a user or an
 * organization is part of the seed, and the `/orgs/…` and `/users/…` paths answer 404 for the
 * wrong kind, as GitHub does.
 */
export interface PackagesOptions {
  /** The registry behind the packages: its base URL and its storage root directory. */
  registry: { url: string; storage: string };
  /** login → account type. */
  accounts: Record<string, 'User' | 'Organization'>;
}

export interface PackagesEmulator {
  extension: GithubExtension;
  /** DELETE requests that reached the registry: `<repo>@<digest>`. */
  deleted: string[];
}

interface Version {
  id: number;
  digest: string;
  tags: string[];
  created: Date;
}

const ROUTE = /^\/(orgs|users)\/([^/]+)\/packages\/container\/([^/]+)(?:\/versions(?:\/(\d+))?)?$/;

export function packagesEmulator(opts: PackagesOptions): PackagesEmulator {
  const accounts = new Map(Object.entries(opts.accounts).map(([k, v]) => [k.toLowerCase(), { login: k, type: v }]));
  const ids = new Map<string, number>();
  let nextId = 100_001;
  const deleted: string[] = [];
  const idOf = (repo: string, digest: string) => {
    const key = `${repo}@${digest}`;
    if (!ids.has(key)) ids.set(key, nextId++);
    return ids.get(key)!;
  };

  const manifestsDir = (repo: string) =>
    path.join(opts.registry.storage, 'docker/registry/v2/repositories', repo, '_manifests');

  /** The repository's manifests, newest first, each with the tags pointing at it. */
  const versionsOf = (repo: string): Version[] => {
    const dir = manifestsDir(repo);
    const revisions = path.join(dir, 'revisions', 'sha256');
    if (!fs.existsSync(revisions)) return [];
    const tagsDir = path.join(dir, 'tags');
    const tagOf = new Map<string, string[]>();
    for (const t of fs.existsSync(tagsDir) ? fs.readdirSync(tagsDir) : []) {
      const link = path.join(tagsDir, t, 'current', 'link');
      if (!fs.existsSync(link)) continue;
      const d = fs.readFileSync(link, 'utf8').trim();
      tagOf.set(d, [...(tagOf.get(d) ?? []), t]);
    }
    const out: Version[] = [];
    for (const hex of fs.readdirSync(revisions)) {
      const link = path.join(revisions, hex, 'link');
      if (!fs.existsSync(link)) continue;
      const digest = `sha256:${hex}`;
      out.push({
        id: idOf(repo, digest),
        digest,
        tags: (tagOf.get(digest) ?? []).sort(),
        created: fs.statSync(link).mtime,
      });
    }
    return out.sort((a, b) => b.created.getTime() - a.created.getTime() || b.id - a.id);
  };

  const accountJson = (req: EmulatedRequest, a: { login: string; type: string }) => ({
    login: a.login,
    id: 4000 + [...accounts.keys()].indexOf(a.login.toLowerCase()),
    node_id: `${a.type === 'User' ? 'U' : 'O'}_${Buffer.from(a.login).toString('base64url')}`,
    type: a.type,
    url: `${req.api}/${a.type === 'User' ? 'users' : 'orgs'}/${a.login}`,
    html_url: `${req.web}/${a.login}`,
    site_admin: false,
  });

  const versionJson = (req: EmulatedRequest, base: string, owner: string, name: string, v: Version) => ({
    id: v.id,
    name: v.digest,
    url: `${base}/versions/${v.id}`,
    package_html_url: `${req.web}/${owner}/packages/container/package/${encodeURIComponent(name)}`,
    created_at: v.created.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    updated_at: v.created.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    html_url: `${req.web}/${owner}/packages/container/${encodeURIComponent(name)}/${v.id}`,
    metadata: { package_type: 'container', container: { tags: v.tags } },
  });

  const packages = async (req: EmulatedRequest, m: RegExpExecArray): Promise<EmulatedAnswer> => {
    if (!req.authorized) return requiresAuth();
    const [, kind, rawOwner, rawName, rawId] = m;
    const account = accounts.get(decodeURIComponent(rawOwner!).toLowerCase());
    if (!account || (kind === 'orgs') !== (account.type === 'Organization')) return apiError(404, 'Not Found');
    const name = decodeURIComponent(rawName!);
    const repo = `${account.login.toLowerCase()}/${name}`;
    const versions = versionsOf(repo);
    if (!versions.length) return apiError(404, 'Package not found.');
    const base = `${req.api}/${kind}/${account.login}/packages/container/${encodeURIComponent(name)}`;
    const isVersions = req.path.includes('/versions');
    if (!isVersions && req.method === 'GET') {
      return {
        status: 200,
        body: {
          id: 9000 + versions.length,
          name,
          package_type: 'container',
          owner: accountJson(req, account),
          version_count: versions.length,
          visibility: 'private',
          url: base,
          html_url: `${req.web}/${account.login}/packages/container/package/${encodeURIComponent(name)}`,
          created_at: versions.at(-1)!.created.toISOString(),
          updated_at: versions[0]!.created.toISOString(),
        },
      };
    }
    if (isVersions && !rawId && req.method === 'GET') {
      if (req.query.get('state') === 'deleted') return { status: 200, body: [] };
      const page = pageOf(req, versions, `${base}/versions`);
      return {
        status: 200,
        body: page.items.map((v) => versionJson(req, base, account.login, name, v)),
        headers: page.headers,
      };
    }
    const v = rawId ? versions.find((x) => x.id === Number(rawId)) : undefined;
    if (!v) return apiError(404, 'Not Found');
    if (req.method === 'GET') return { status: 200, body: versionJson(req, base, account.login, name, v) };
    if (req.method !== 'DELETE') return apiError(404, 'Not Found');
    if (versions.length === 1) {
      return apiError(400, 'You cannot delete the last version of a package. You must delete the package instead.');
    }
    const res = await fetch(`${opts.registry.url}/v2/${repo}/manifests/${v.digest}`, { method: 'DELETE' });
    await res.arrayBuffer();
    if (res.status === 404) return apiError(404, 'Not Found');
    if (res.status !== 202) return apiError(500, `registry answered ${res.status} to the delete`);
    deleted.push(`${repo}@${v.digest}`);
    return { status: 204 };
  };

  const extension: GithubExtension = (req) => {
    const m = ROUTE.exec(req.path);
    if (m) return packages(req, m);
    const acct = /^\/(users|orgs)\/([^/]+)$/.exec(req.path);
    if (acct && req.method === 'GET') {
      const a = accounts.get(decodeURIComponent(acct[2]!).toLowerCase());
      // /users/{login} answers for organizations too (type says which); /orgs/{login} only for them.
      if (!a || (acct[1] === 'orgs' && a.type !== 'Organization')) return Promise.resolve(apiError(404, 'Not Found'));
      return Promise.resolve({ status: 200, body: accountJson(req, a) });
    }
    return undefined;
  };
  return { extension, deleted };
}

import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An in-memory OCI distribution registry inside the test process, for the table tests of the
 * registry hops (resolve, push, sign, verify): manifests by tag and digest, blobs, chunked and
 * monolithic uploads, cross-repository mounts, tag lists; no referrers API (as distribution 2.8).
 * The real registry (test/harness/registry.ts) is what the integration tests use; this one only
 * has to speak the protocol the one OCI client speaks, and records every request.
 */
export interface FakeRegistry {
  /** host:port, for image references. */
  host: string;
  /** Every request, in order: `METHOD /path?query`. */
  requests: string[];
  /** Stores a manifest (and tags it when `tag` is given); returns its digest. */
  putManifest(repo: string, body: Buffer | object, mediaType: string, tag?: string): string;
  /** Stores a blob; returns its digest. */
  putBlob(repo: string, body: Buffer | string): string;
  tags(repo: string): Record<string, string>;
  manifest(repo: string, ref: string): { body: Buffer; mediaType: string } | undefined;
  close(): Promise<void>;
}

const sha256 = (b: Buffer) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

interface Repo {
  manifests: Map<string, { body: Buffer; mediaType: string }>;
  tags: Map<string, string>;
}

export async function startFakeRegistry(): Promise<FakeRegistry> {
  const repos = new Map<string, Repo>();
  /** Blobs are shared across repositories (what makes a mount possible); `linked` says where they are visible. */
  const blobs = new Map<string, Buffer>();
  const linked = new Map<string, Set<string>>();
  const uploads = new Map<string, { repo: string; parts: Buffer[] }>();
  const requests: string[] = [];
  const repoOf = (name: string) => {
    let r = repos.get(name);
    if (!r) repos.set(name, (r = { manifests: new Map(), tags: new Map() }));
    return r;
  };
  const link = (repo: string, digest: string) => {
    let s = linked.get(repo);
    if (!s) linked.set(repo, (s = new Set()));
    s.add(digest);
  };
  const storeManifest = (repo: string, body: Buffer, mediaType: string, tag?: string) => {
    const digest = sha256(body);
    const r = repoOf(repo);
    r.manifests.set(digest, { body, mediaType });
    if (tag) r.tags.set(tag, digest);
    return digest;
  };
  const storeBlob = (repo: string, body: Buffer) => {
    const digest = sha256(body);
    blobs.set(digest, body);
    link(repo, digest);
    return digest;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://registry');
      requests.push(`${req.method} ${url.pathname}${url.search}`);
      const body = Buffer.concat(chunks);
      const send = (status: number, headers: Record<string, string> = {}, payload?: Buffer | string) => {
        res.writeHead(status, { 'content-length': String(payload ? Buffer.byteLength(payload) : 0), ...headers });
        res.end(req.method === 'HEAD' ? undefined : payload);
      };
      const notFound = (code: string) =>
        send(
          404,
          { 'content-type': 'application/json' },
          JSON.stringify({ errors: [{ code, message: code.toLowerCase() }] }),
        );
      if (url.pathname === '/v2/' || url.pathname === '/v2') return send(200, {}, '{}');
      const m = /^\/v2\/(.+)\/(manifests|blobs|tags|referrers)\/(.*)$/.exec(url.pathname);
      if (!m) return notFound('NAME_UNKNOWN');
      const [, name, kind, rest] = m as unknown as [string, string, string, string];
      const repo = repoOf(name);

      if (kind === 'manifests') {
        if (req.method === 'PUT') {
          const digest = storeManifest(
            name,
            body,
            req.headers['content-type'] ?? '',
            rest.startsWith('sha256:') ? undefined : rest,
          );
          return send(201, { 'docker-content-digest': digest, location: `/v2/${name}/manifests/${digest}` });
        }
        const digest = rest.startsWith('sha256:') ? rest : repo.tags.get(rest);
        const found = digest ? repo.manifests.get(digest) : undefined;
        if (!found) return notFound('MANIFEST_UNKNOWN');
        if (req.method === 'DELETE') {
          repo.manifests.delete(digest!);
          for (const [t, d] of repo.tags) if (d === digest) repo.tags.delete(t);
          return send(202);
        }
        return send(200, { 'content-type': found.mediaType, 'docker-content-digest': digest! }, found.body);
      }
      if (kind === 'tags')
        return send(200, { 'content-type': 'application/json' }, JSON.stringify({ name, tags: [...repo.tags.keys()] }));
      if (kind === 'referrers') return notFound('NOT_FOUND');

      // blobs
      if (rest.startsWith('uploads/')) {
        const id = rest.slice('uploads/'.length);
        if (req.method === 'POST') {
          const mount = url.searchParams.get('mount');
          const from = url.searchParams.get('from');
          if (mount && from && linked.get(from)?.has(mount)) {
            link(name, mount);
            return send(201, { 'docker-content-digest': mount, location: `/v2/${name}/blobs/${mount}` });
          }
          const uuid = crypto.randomUUID();
          uploads.set(uuid, { repo: name, parts: [] });
          return send(202, { location: `/v2/${name}/blobs/uploads/${uuid}`, range: '0-0', 'docker-upload-uuid': uuid });
        }
        const up = uploads.get(id);
        if (!up) return notFound('BLOB_UPLOAD_UNKNOWN');
        if (req.method === 'PATCH') {
          up.parts.push(body);
          const n = up.parts.reduce((a, p) => a + p.length, 0);
          return send(202, { location: `/v2/${name}/blobs/uploads/${id}`, range: `0-${Math.max(0, n - 1)}` });
        }
        if (req.method === 'GET') {
          const n = up.parts.reduce((a, p) => a + p.length, 0);
          return send(204, { range: `0-${Math.max(0, n - 1)}` });
        }
        if (req.method === 'PUT') {
          up.parts.push(body);
          const data = Buffer.concat(up.parts);
          const want = url.searchParams.get('digest');
          if (want !== sha256(data))
            return send(
              400,
              { 'content-type': 'application/json' },
              JSON.stringify({ errors: [{ code: 'DIGEST_INVALID' }] }),
            );
          uploads.delete(id);
          const digest = storeBlob(name, data);
          return send(201, { 'docker-content-digest': digest, location: `/v2/${name}/blobs/${digest}` });
        }
      }
      const blob = linked.get(name)?.has(rest) ? blobs.get(rest) : undefined;
      if (!blob) return notFound('BLOB_UNKNOWN');
      return send(200, { 'content-type': 'application/octet-stream', 'docker-content-digest': rest }, blob);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    putManifest: (repo, body, mediaType, tag) =>
      storeManifest(repo, Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body)), mediaType, tag),
    putBlob: (repo, body) => storeBlob(repo, Buffer.isBuffer(body) ? body : Buffer.from(body)),
    tags: (repo) => Object.fromEntries(repoOf(repo).tags),
    manifest: (repo, ref) => {
      const r = repoOf(repo);
      const digest = ref.startsWith('sha256:') ? ref : r.tags.get(ref);
      return digest ? r.manifests.get(digest) : undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Pushes a fresh single-image OCI layout (written under `dir`; `image` as makeOciImage takes it:
 * layers, labels, created) to `repo:tag` of the fake registry with the one OCI client; returns
 * the manifest digest.
 */
export async function seedImage(
  reg: FakeRegistry,
  repo: string,
  tag: string,
  dir: string,
  image: {
    layers?: (Record<string, string | Buffer> | Buffer)[];
    labels?: Record<string, string>;
    created?: string;
  } = {},
): Promise<string> {
  const { makeOciImage } = await import('./tools.js');
  const { OciLayout } = await import('../../actions/lib/oci/layout.js');
  const { planFromLayout, pushPlan } = await import('../../actions/lib/oci/push.js');
  const { parseReference } = await import('../../actions/lib/oci/reference.js');
  const { connect } = await import('../../actions/lib/registry.js');
  const { silentLogger } = await import('../../actions/lib/log.js');
  const img = makeOciImage(dir, { ...image, tag: 'latest' });
  const layout = OciLayout.open(img.dir);
  const client = connect(parseReference(`${reg.host}/${repo}:${tag}`), { 'tls-verify': false }, silentLogger);
  const r = await pushPlan(client, repo, layout, planFromLayout(layout, 'latest'), { tags: [tag], log: silentLogger });
  return r.digest;
}

/** Points `tag` of `repo` at the manifest `digest` already there (as a promotion does). */
export function tagManifest(reg: FakeRegistry, repo: string, digest: string, tag: string): void {
  const m = reg.manifest(repo, digest);
  if (!m) throw new Error(`${repo}@${digest} is not in the fake registry`);
  reg.putManifest(repo, m.body, m.mediaType, tag);
}

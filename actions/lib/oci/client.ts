import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HttpError, InputError, isTransient, TransientError, UserError } from '../errors.js';
import { errorFromResponse, request, type Body, type HttpResponse } from '../http.js';
import type { Logger } from '../log.js';
import { retryPolicy, withRetry, type RetryPolicy } from '../retry.js';
import { mayBeInsecure, realmProblem, registryTransportProblem, type RegistryTransport } from '../transport.js';
import { parseChallenge, type Credentials } from './auth.js';
import { MANIFEST_ACCEPT, manifestMediaType } from './media.js';

/**
 * The one OCI distribution client of Keel: every registry read and write of every hop goes
 * through it. Auth (anonymous, Basic, Bearer challenge), retries on 5xx/429/resets with the
 * shared policy, digests verified against the bytes on every manifest and blob.
 */
export interface RegistryOptions {
  /** `host[:port]` as written in the reference (docker.io is mapped to its API host). */
  registry: string;
  credentials?: Credentials;
  /** false allows plain HTTP (and unverified TLS), for loopback registries. */
  tlsVerify?: boolean;
  /** host[:port] that may be reached over plain HTTP whatever tlsVerify says (lib/transport.ts). */
  insecureRegistries?: readonly string[];
  retry?: RetryPolicy;
  log?: Logger;
  /** Blobs larger than this are uploaded in PATCH chunks of this size (0: always monolithic). */
  chunkSize?: number;
}

export interface ManifestResult {
  body: Buffer;
  mediaType: string;
  digest: string;
}

export interface UploadStats {
  blobsUploaded: number;
  bytesUploaded: number;
  blobsSkipped: number;
  bytesSkipped: number;
  blobsMounted: number;
  manifestsPut: number;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

interface Op {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Body;
  /** Repositories and actions the operation needs (token scopes). */
  scopes: string[];
  what: string;
  /** Statuses that are answers, not errors. */
  ok: number[];
  followRedirects?: boolean;
}

const DEFAULT_CHUNK = 32 * 1024 * 1024;

export class RegistryClient {
  readonly stats: UploadStats = {
    blobsUploaded: 0,
    bytesUploaded: 0,
    blobsSkipped: 0,
    bytesSkipped: 0,
    blobsMounted: 0,
    manifestsPut: 0,
  };
  private base?: Promise<string>;
  private readonly tokens = new Map<string, string>();
  private useBasic = false;
  private readonly policy: RetryPolicy;
  private readonly transport: RegistryTransport;
  /** Plain http and unverified TLS allowed for this registry (loopback or listed). */
  private readonly insecure: boolean;

  /** Throws InputError (naming tls-verify) when the transport rule forbids this registry. */
  constructor(readonly opts: RegistryOptions) {
    this.policy = opts.retry ?? retryPolicy();
    this.transport = { tlsVerify: opts.tlsVerify ?? true, insecureRegistries: opts.insecureRegistries };
    const problem = registryTransportProblem(this.host, this.transport);
    if (problem) throw new InputError('tls-verify', 'false', problem);
    this.insecure = mayBeInsecure(this.host, this.transport);
  }

  get host(): string {
    return this.opts.registry === 'docker.io' ? 'registry-1.docker.io' : this.opts.registry;
  }

  /** https; for an insecure registry: https without verification, falling back to plain http. */
  private baseUrl(): Promise<string> {
    // One probe per client, however many requests start at once.
    this.base ??= this.probeBase();
    return this.base;
  }

  private async probeBase(): Promise<string> {
    if (!this.insecure) return `https://${this.host}`;
    let base = `http://${this.host}`;
    try {
      const r = await request({
        method: 'GET',
        url: `https://${this.host}/v2/`,
        insecureTls: true,
        idleTimeoutMs: 10_000,
      });
      await r.drain();
      base = `https://${this.host}`;
    } catch {
      /* no TLS there: plain http */
    }
    this.opts.log?.debug(`registry ${this.host}: using ${base}`);
    return base;
  }

  /**
   * Credentials go to the registry's own origin only: an absolute upload location or a URL on
   * another host or scheme gets none (a registry cannot steer them elsewhere).
   */
  private authHeader(scopeKey: string, url: string, base: string): Record<string, string> {
    if (new URL(url).origin !== new URL(base).origin) return {};
    const t = this.tokens.get(scopeKey);
    if (t) return { authorization: `Bearer ${t}` };
    const c = this.opts.credentials;
    if (this.useBasic && c) {
      return { authorization: `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` };
    }
    return {};
  }

  private async fetchToken(params: Record<string, string>, scopes: string[]): Promise<string> {
    const realm = params.realm;
    if (!realm) throw new HttpError(401, `registry ${this.host} sent a Bearer challenge without a realm`);
    const problem = realmProblem(realm, this.transport);
    if (problem) throw new UserError(`registry ${this.opts.registry}: ${problem}`);
    const u = new URL(realm);
    if (params.service) u.searchParams.set('service', params.service);
    const all = new Set([...(params.scope ? params.scope.split(' ') : []), ...scopes]);
    for (const s of all) u.searchParams.append('scope', s);
    const c = this.opts.credentials;
    const headers: Record<string, string> = {};
    if (c) headers.authorization = `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
    const res = await request({ method: 'GET', url: u, headers, insecureTls: mayBeInsecure(u.host, this.transport) });
    if (res.status === 401 || res.status === 403) {
      const e = await errorFromResponse(res, `token request to ${u.host}`);
      throw new UserError(
        c
          ? `authentication failed for ${this.opts.registry} as '${c.username}' (credentials from ${c.source}): ${e.message}`
          : `registry ${this.opts.registry} refused an anonymous token: ${e.message}`,
      );
    }
    if (res.status !== 200) throw await errorFromResponse(res, `token request to ${u.host}`);
    const j = await res.json<{ token?: string; access_token?: string }>();
    const token = j.token ?? j.access_token;
    if (!token) throw new HttpError(500, `token endpoint ${u.host} returned no token`);
    return token;
  }

  /** One attempt of an operation, including the auth dance; unexpected statuses throw HttpError. */
  private async attempt(op: Op): Promise<HttpResponse> {
    const base = await this.baseUrl();
    const url = op.path.startsWith('http') ? op.path : `${base}${op.path}`;
    const scopeKey = op.scopes.join(' ');
    const send = () =>
      request({
        method: op.method,
        url,
        headers: { ...(op.headers ?? {}), ...this.authHeader(scopeKey, url, base) },
        body: op.body,
        insecureTls: this.insecure,
        followRedirects: op.followRedirects,
        keepAuthFor: (h) => h === new URL(base).host,
      });
    let res = await send();
    // Only the registry's own challenge starts the auth dance: a 401 from a redirect target or an
    // upload host on another origin is an answer, never a reason to send credentials there.
    if (res.status === 401 && new URL(res.url).origin === new URL(base).origin) {
      const challenge = parseChallenge(res.headers['www-authenticate']);
      await res.drain();
      const c = this.opts.credentials;
      if (challenge?.scheme === 'bearer') {
        this.tokens.set(scopeKey, await this.fetchToken(challenge.params, op.scopes));
        res = await send();
      } else if (challenge?.scheme === 'basic' && c && !this.useBasic) {
        this.useBasic = true;
        res = await send();
      }
      if (res.status === 401) {
        const e = await errorFromResponse(res, `${op.what}`);
        throw new UserError(
          c
            ? `authentication failed for ${this.opts.registry} as '${c.username}' (credentials from ${c.source}): ${e.message}`
            : `registry ${this.opts.registry} requires authentication: set the username/password inputs or log in (containers auth file)`,
        );
      }
    }
    if (res.status === 403) {
      const e = await errorFromResponse(res, op.what);
      throw new UserError(`${e.message} (access denied: check the token's permissions for ${op.scopes.join(', ')})`);
    }
    if (!op.ok.includes(res.status)) throw await errorFromResponse(res, op.what);
    return res;
  }

  private call(op: Op): Promise<HttpResponse> {
    return withRetry(() => this.attempt(op), this.policy, { log: this.opts.log, what: op.what });
  }

  private pullScope(repo: string) {
    return `repository:${repo}:pull`;
  }
  private pushScope(repo: string) {
    return `repository:${repo}:pull,push`;
  }

  // ---------------------------------------------------------------- manifests

  /** GET a manifest or index by tag or digest; the digest is computed from the bytes and checked. */
  async getManifest(repo: string, reference: string, accept = MANIFEST_ACCEPT): Promise<ManifestResult> {
    return (await this.fetchManifest(repo, reference, accept, true))!;
  }

  /** getManifest, but undefined when the registry has no such manifest (404). */
  async findManifest(repo: string, reference: string, accept = MANIFEST_ACCEPT): Promise<ManifestResult | undefined> {
    return this.fetchManifest(repo, reference, accept, false);
  }

  private async fetchManifest(
    repo: string,
    reference: string,
    accept: string,
    required: boolean,
  ): Promise<ManifestResult | undefined> {
    return withRetry(
      async () => {
        const res = await this.attempt({
          method: 'GET',
          path: `/v2/${repo}/manifests/${reference}`,
          headers: { accept },
          scopes: [this.pullScope(repo)],
          what: `GET manifest ${repo}:${reference}`,
          ok: [200, 404],
        });
        if (res.status === 404) {
          const e = await errorFromResponse(res, `manifest ${this.opts.registry}/${repo}:${reference}`);
          if (!required) return undefined;
          throw new UserError(`${e.message} (not found)`);
        }
        const body = await res.buffer();
        const digest = sha256(body);
        const header = res.headers['docker-content-digest'];
        if (reference.startsWith('sha256:') && digest !== reference) {
          throw new HttpError(502, `registry returned bytes with digest ${digest} for ${repo}@${reference}`);
        }
        if (header && header !== digest) {
          throw new HttpError(502, `Docker-Content-Digest ${header} does not match the manifest bytes (${digest})`);
        }
        return { body, digest, mediaType: manifestMediaType(body, res.headers['content-type']) };
      },
      this.policy,
      { log: this.opts.log, what: `GET manifest ${repo}:${reference}` },
    );
  }

  /** HEAD a manifest: its digest, or undefined when the tag/digest does not exist. */
  async headManifest(
    repo: string,
    reference: string,
  ): Promise<{ digest: string; mediaType?: string; size?: number } | undefined> {
    const res = await this.call({
      method: 'HEAD',
      path: `/v2/${repo}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
      scopes: [this.pullScope(repo)],
      what: `HEAD manifest ${repo}:${reference}`,
      ok: [200, 404],
    });
    await res.drain();
    if (res.status === 404) return undefined;
    const digest = res.headers['docker-content-digest'];
    if (!digest) {
      // Some registries omit the header on HEAD: fall back to GET and hash the bytes.
      const m = await this.getManifest(repo, reference);
      return { digest: m.digest, mediaType: m.mediaType, size: m.body.length };
    }
    return {
      digest,
      mediaType: res.headers['content-type']?.split(';')[0],
      size: res.headers['content-length'] ? Number(res.headers['content-length']) : undefined,
    };
  }

  /** PUT manifest bytes under a tag or digest; checks the registry computed the same digest. */
  async putManifest(repo: string, reference: string, body: Buffer, mediaType: string): Promise<string> {
    const digest = sha256(body);
    const res = await this.call({
      method: 'PUT',
      path: `/v2/${repo}/manifests/${reference}`,
      headers: { 'content-type': mediaType },
      body,
      scopes: [this.pushScope(repo)],
      what: `PUT manifest ${repo}:${reference}`,
      ok: [200, 201, 202],
    });
    await res.drain();
    const reported = res.headers['docker-content-digest'];
    if (reported && reported !== digest) {
      throw new Error(`registry stored ${repo}:${reference} as ${reported}, but the bytes sent hash to ${digest}`);
    }
    this.stats.manifestsPut++;
    return digest;
  }

  /**
   * Deletes a manifest by digest (the only delete distribution 2.x and the OCI spec share; every
   * tag on it goes with it). True when deleted, false when it was already gone.
   */
  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    const res = await this.call({
      method: 'DELETE',
      path: `/v2/${repo}/manifests/${digest}`,
      scopes: [`repository:${repo}:delete`, this.pushScope(repo)],
      what: `DELETE manifest ${repo}@${digest}`,
      ok: [200, 202, 404, 405],
    });
    if (res.status === 405) {
      const e = await errorFromResponse(res, `DELETE manifest ${repo}@${digest}`);
      throw new UserError(
        `${e.message} (the registry ${this.opts.registry} does not allow deleting manifests; distribution needs storage.delete.enabled)`,
      );
    }
    await res.drain();
    return res.status !== 404;
  }

  /**
   * Every tag of `repo`, following the registry's `Link: <…>; rel="next"` pages. A next link
   * that leaves this registry is refused: the request would carry this registry's credentials.
   */
  async listTags(repo: string, pageSize = 1000): Promise<string[]> {
    const tags: string[] = [];
    const base = await this.baseUrl();
    let next: string | undefined = `/v2/${repo}/tags/list?n=${pageSize}`;
    for (let page = 1; next; page++) {
      if (page > 10_000)
        throw new UserError(`registry ${this.opts.registry} paginates the tags of ${repo} without end`);
      const res: HttpResponse = await this.call({
        method: 'GET',
        path: next,
        scopes: [this.pullScope(repo)],
        what: `list tags of ${repo}`,
        ok: [200, 404],
      });
      if (res.status === 404) {
        await res.drain();
        return [];
      }
      const j = await res.json<{ tags?: string[] | null }>();
      tags.push(...(j.tags ?? []));
      const link = /<([^>]+)>;\s*rel="?next"?/.exec(res.headers.link ?? '')?.[1];
      next = link === undefined ? undefined : sameOriginPath(link, base, this.opts.registry);
    }
    return tags;
  }

  /** The referrers API answer, or undefined when the registry has none (distribution 2.8, GHCR). */
  async referrers(repo: string, digest: string): Promise<Buffer | undefined> {
    const res = await this.call({
      method: 'GET',
      path: `/v2/${repo}/referrers/${digest}`,
      headers: { accept: 'application/vnd.oci.image.index.v1+json' },
      scopes: [this.pullScope(repo)],
      what: `referrers of ${repo}@${digest}`,
      ok: [200, 404, 400, 405],
    });
    if (res.status !== 200 || !res.headers['content-type']?.includes('application/vnd.oci.image.index.v1+json')) {
      await res.drain();
      return undefined;
    }
    return res.buffer();
  }

  // ---------------------------------------------------------------- blobs

  /** Size of a blob in the repository, or undefined when absent. */
  async blobSize(repo: string, digest: string): Promise<number | undefined> {
    const res = await this.call({
      method: 'HEAD',
      path: `/v2/${repo}/blobs/${digest}`,
      scopes: [this.pullScope(repo)],
      what: `HEAD blob ${digest.slice(0, 19)}`,
      ok: [200, 404],
    });
    await res.drain();
    if (res.status === 404) return undefined;
    return res.headers['content-length'] ? Number(res.headers['content-length']) : 0;
  }

  /**
   * Makes sure `digest` exists in `repo`: skipped when present, mounted from another repository
   * of the same registry when possible, otherwise uploaded from `open()` (replayable stream).
   */
  async pushBlob(
    repo: string,
    blob: { digest: string; size: number },
    open: (start: number) => Readable,
    mountFrom: string[] = [],
  ): Promise<'skipped' | 'mounted' | 'uploaded'> {
    if ((await this.blobSize(repo, blob.digest)) !== undefined) {
      this.stats.blobsSkipped++;
      this.stats.bytesSkipped += blob.size;
      return 'skipped';
    }
    for (const from of mountFrom) {
      if (from === repo) continue;
      const res = await this.call({
        method: 'POST',
        path: `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}`,
        scopes: [this.pushScope(repo), this.pullScope(from)],
        what: `mount ${blob.digest.slice(0, 19)} from ${from}`,
        ok: [201, 202],
      });
      await res.drain();
      if (res.status === 201) {
        this.stats.blobsMounted++;
        return 'mounted';
      }
      // 202: the registry opened an ordinary upload instead; the upload below starts its own.
    }
    await withRetry(() => this.uploadOnce(repo, blob, open), this.policy, {
      log: this.opts.log,
      what: `upload ${blob.digest.slice(0, 19)}`,
    });
    this.stats.blobsUploaded++;
    return 'uploaded';
  }

  private async startUpload(repo: string): Promise<string> {
    const res = await this.attempt({
      method: 'POST',
      path: `/v2/${repo}/blobs/uploads/`,
      scopes: [this.pushScope(repo)],
      what: `start upload to ${repo}`,
      ok: [202],
    });
    await res.drain();
    const loc = res.headers.location;
    if (!loc) throw new HttpError(502, `registry did not return an upload location for ${repo}`);
    return new URL(loc, await this.baseUrl()).href;
  }

  private withDigest(location: string, digest: string): string {
    const u = new URL(location);
    u.searchParams.set('digest', digest);
    return u.href;
  }

  private async uploadOnce(
    repo: string,
    blob: { digest: string; size: number },
    open: (start: number) => Readable,
  ): Promise<void> {
    let location = await this.startUpload(repo);
    const chunk = this.opts.chunkSize ?? DEFAULT_CHUNK;
    let res: HttpResponse;
    if (chunk <= 0 || blob.size <= chunk) {
      res = await this.attempt({
        method: 'PUT',
        path: this.withDigest(location, blob.digest),
        headers: { 'content-type': 'application/octet-stream' },
        body: { length: blob.size, open: () => open(0) },
        scopes: [this.pushScope(repo)],
        what: `PUT blob ${blob.digest.slice(0, 19)}`,
        ok: [201],
        followRedirects: false,
      });
      this.stats.bytesUploaded += blob.size;
    } else {
      let offset = 0;
      while (offset < blob.size) {
        // Each chunk is retried on its own; a retry asks the registry how far the session got
        // and resumes there, so a reset costs one chunk, not the whole blob.
        await withRetry(
          async (attempt) => {
            if (attempt > 1) {
              const got = await this.uploadOffset(repo, location);
              if (got === undefined) throw new SessionLost('upload session lost; restarting the blob');
              offset = got;
              if (offset >= blob.size) return;
            }
            const start = offset;
            const len = Math.min(chunk, blob.size - start);
            const r = await this.attempt({
              method: 'PATCH',
              path: location,
              headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${start + len - 1}` },
              body: { length: len, open: () => limit(open(start), len) },
              scopes: [this.pushScope(repo)],
              what: `PATCH blob ${blob.digest.slice(0, 19)} @${start}`,
              ok: [202],
              followRedirects: false,
            });
            await r.drain();
            this.stats.bytesUploaded += len;
            if (r.headers.location) location = new URL(r.headers.location, location).href;
            offset = start + len;
          },
          this.policy,
          {
            log: this.opts.log,
            what: `chunk of ${blob.digest.slice(0, 19)}`,
            // A lost session is the outer retry's job (it starts a new upload).
            retryable: (e) => isTransient(e) && !(e instanceof SessionLost),
          },
        );
      }
      res = await this.attempt({
        method: 'PUT',
        path: this.withDigest(location, blob.digest),
        scopes: [this.pushScope(repo)],
        what: `commit blob ${blob.digest.slice(0, 19)}`,
        ok: [201],
        followRedirects: false,
      });
    }
    await res.drain();
    const reported = res.headers['docker-content-digest'];
    if (reported && reported !== blob.digest) {
      throw new Error(`registry stored blob as ${reported}, expected ${blob.digest}`);
    }
  }

  private async uploadOffset(repo: string, location: string): Promise<number | undefined> {
    const res = await this.attempt({
      method: 'GET',
      path: location,
      scopes: [this.pushScope(repo)],
      what: 'upload status',
      ok: [204, 404],
    });
    await res.drain();
    if (res.status !== 204) return undefined;
    const m = /^(?:bytes=)?0-(\d+)$/.exec(res.headers.range ?? '');
    // distribution answers "0-0" for an empty session as well as for one byte: ambiguous, so
    // the caller starts a fresh session rather than resume at a guessed offset.
    if (!m || m[1] === '0') return undefined;
    return Number(m[1]) + 1;
  }

  /** Streams a blob (redirects followed, auth dropped for other hosts). The caller verifies. */
  async openBlob(repo: string, digest: string): Promise<Readable> {
    const res = await this.call({
      method: 'GET',
      path: `/v2/${repo}/blobs/${digest}`,
      scopes: [this.pullScope(repo)],
      what: `GET blob ${digest.slice(0, 19)}`,
      ok: [200],
    });
    return res.stream;
  }

  /** Reads a small blob (configs, signature payloads) into memory and verifies its digest. */
  async getBlob(repo: string, digest: string): Promise<Buffer> {
    return withRetry(
      async () => {
        const s = await this.openBlob(repo, digest);
        const chunks: Buffer[] = [];
        for await (const c of s) chunks.push(c as Buffer);
        const body = Buffer.concat(chunks);
        if (sha256(body) !== digest) throw new HttpError(502, `blob ${digest} arrived with different content`);
        return body;
      },
      this.policy,
      { log: this.opts.log, what: `GET blob ${digest.slice(0, 19)}` },
    );
  }

  /**
   * Downloads a blob to `dest` (atomically: temp file + rename), verifying the digest, with
   * retries. An existing file with the right digest is reused (content-addressed cache).
   */
  async downloadBlob(repo: string, digest: string, dest: string): Promise<void> {
    if (fs.existsSync(dest)) return;
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    await withRetry(
      async () => {
        const tmp = `${dest}.part-${process.pid}`;
        const hash = crypto.createHash('sha256');
        const src = await this.openBlob(repo, digest);
        const tap = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            cb(null, chunk);
          },
        });
        try {
          await pipeline(src, tap, fs.createWriteStream(tmp));
          const got = `sha256:${hash.digest('hex')}`;
          if (got !== digest) throw new HttpError(502, `blob ${digest} arrived as ${got}`);
          fs.renameSync(tmp, dest);
        } finally {
          fs.rmSync(tmp, { force: true });
        }
      },
      this.policy,
      { log: this.opts.log, what: `download ${digest.slice(0, 19)}` },
    );
  }
}

class SessionLost extends TransientError {}

/** A registry-supplied link as a path on `base`; a link to another origin is an error. */
function sameOriginPath(link: string, base: string, registry: string): string {
  const u = new URL(link, base);
  if (u.origin !== new URL(base).origin) {
    throw new UserError(
      `registry ${registry} sent a next-page link to another host (${u.host}); refusing to follow it`,
    );
  }
  return `${u.pathname}${u.search}`;
}

/** Passes through the first `n` bytes of a stream. */
function limit(src: Readable, n: number): Readable {
  let left = n;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (left <= 0) return cb();
      const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
      left -= part.length;
      cb(null, part);
      if (left <= 0) {
        src.unpipe(t);
        src.destroy();
        t.end();
      }
    },
  });
  return src.pipe(t);
}

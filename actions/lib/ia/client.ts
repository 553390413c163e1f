import { HttpError, TransientError, UserError, errorMessage, isTransient } from '../errors.js';
import { fileBody, request, type HttpResponse } from '../http.js';
import type { Logger } from '../log.js';
import { httpsUnlessLoopbackProblem } from '../transport.js';
import {
  DEFAULT_RETRY,
  RetryExhaustedError,
  parseRetryAfter,
  sleep as realSleep,
  withRetry,
  type RetryPolicy,
} from '../retry.js';

/**
 * A native Internet Archive client (no `ia` CLI): IA-S3 streaming PUTs and the metadata, tasks,
 * check_limit and download endpoints. One PUT per file, from disk, with a fixed Content-Length
 * (IA-S3 rejects chunked bodies), a hex Content-MD5, `Expect: 100-continue` with a fallback
 * timer, 307 redirects replayed from byte 0 with auth kept only for archive hosts, a stall
 * detector (bytes/second floor over a window) that aborts and retries on a fresh connection,
 * and the check_limit gate before every PUT so a rationed account does not re-send gigabytes.
 * Every retry decision goes through lib/retry.ts.
 */
export interface IaClientOptions {
  /** IA-S3 endpoint (https://s3.us.archive.org). */
  s3Url: string;
  /** archive.org endpoint for metadata, tasks and downloads (https://archive.org). */
  apiUrl: string;
  accessKey: string;
  secretKey: string;
  log: Logger;
  /** Attempts, backoff base and wall-clock deadline for PUTs and API calls. */
  retry?: RetryPolicy;
  /** Abort a PUT whose body moves slower than `minBytesPerSec` over `windowMs`. */
  stall?: { minBytesPerSec: number; windowMs: number };
  /** Start the body if the server neither answers nor sends 100 Continue within this (default 5 s). */
  continueTimeoutMs?: number;
  /** How long a PUT may wait, idle, for IA's answer after the last body byte (default 30 min). */
  responseTimeoutMs?: number;
  /** Idle timeout of API requests (default 60 s). */
  apiTimeoutMs?: number;
  /** Progress lines for PUTs at most this often (default 30 s). */
  progressEveryMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  random?: () => number;
}

/** A file row of MDAPI (numbers come as strings). */
export interface IaFile {
  name: string;
  source?: string;
  format?: string;
  size?: string;
  md5?: string;
  sha1?: string;
  crc32?: string;
  mtime?: string;
  btih?: string;
  summation?: string;
}

export interface ItemRecord {
  created?: number;
  files?: IaFile[];
  metadata?: Record<string, unknown>;
  is_dark?: boolean;
  /** Historical hint that catalog tasks are pending (the `ia` client honours it). */
  tasks?: unknown;
  [k: string]: unknown;
}

export interface TaskSummary {
  queued: number;
  running: number;
  error: number;
  paused: number;
}

export interface LimitStatus {
  overLimit: boolean;
  reason?: string;
  detail?: Record<string, unknown>;
}

export interface UploadSource {
  /** Remote key inside the item (`/` makes sub-directories). */
  name: string;
  path: string;
  size: number;
  /** Hex MD5 of the file, sent as Content-MD5 (IA checks the body against it). */
  md5: string;
}

export interface PutResult {
  /** PUT requests sent for this file (retries included; redirects are part of one attempt). */
  attempts: number;
  /** Body bytes handed to the network across all attempts and redirects. */
  bytesSent: number;
  /** Server Date of the successful answer (ms since epoch), for torrent freshness. */
  serverDate?: number;
  ms: number;
}

/** An IA-S3 error body: `<Error><Code/><Message/><Resource/></Error>`. */
export interface S3Error {
  code?: string;
  message?: string;
  resource?: string;
}

export function parseS3Error(body: string): S3Error {
  const pick = (tag: string) => {
    const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(body);
    return m?.[1] ? decodeXml(m[1].trim()) : undefined;
  };
  return { code: pick('Code'), message: pick('Message'), resource: pick('Resource') };
}

function decodeXml(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

/** IA's own words for an error: `Code: Message - Resource` (what `ia` prints, plus the code). */
export function describeS3Error(e: S3Error, fallback: string): string {
  const head = [e.code, e.message].filter(Boolean).join(': ');
  const text = [head, e.resource].filter(Boolean).join(' - ');
  return text || fallback.replace(/\s+/g, ' ').trim().slice(0, 300);
}

/** Percent-encodes each `/`-separated segment of a remote key (as `ia` does with quote()). */
export function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** Hosts that may receive the `LOW` credentials: archive.org and its sub-domains. */
export function isArchiveHost(host: string): boolean {
  const h = host.replace(/:\d+$/, '').toLowerCase();
  return h === 'archive.org' || h.endsWith('.archive.org');
}

const TORRENT_MAX_BYTES = 64 * 1024 * 1024;

export class IaClient {
  readonly s3: string;
  readonly api: string;
  private readonly policy: RetryPolicy;
  /**
   * Metadata/tasks/download calls: the same backoff, at least 3 attempts, bounded by the policy's
   * deadline or by the one given to `withDeadline` (the phase of the step they belong to).
   */
  private readonly apiPolicy: RetryPolicy;
  private readonly auth: string;
  private readonly trusted: Set<string>;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;

  /** Refuses endpoints the keys must not travel to (plain http off loopback). */
  constructor(
    private readonly opts: IaClientOptions,
    apiDeadline?: number,
  ) {
    for (const url of [opts.s3Url, opts.apiUrl]) {
      const problem = httpsUnlessLoopbackProblem(url);
      if (problem) throw new UserError(`refusing to send the IA keys to ${url}: ${problem}`);
    }
    this.s3 = opts.s3Url.replace(/\/+$/, '');
    this.api = opts.apiUrl.replace(/\/+$/, '');
    this.policy = opts.retry ?? DEFAULT_RETRY;
    this.apiPolicy = {
      ...this.policy,
      attempts: Math.max(3, this.policy.attempts),
      deadline: apiDeadline ?? this.policy.deadline,
    };
    this.auth = `LOW ${opts.accessKey}:${opts.secretKey}`;
    this.trusted = new Set([new URL(this.s3).host, new URL(this.api).host]);
    this.sleep = opts.sleep ?? realSleep;
    this.now = opts.now ?? Date.now;
  }

  /**
   * The same client whose API calls (metadata, tasks, downloads, derive) neither start, wait nor
   * run past `deadline` (ms since epoch): a call that cannot finish in time throws
   * RetryExhaustedError. Uploads keep the policy's own deadline.
   */
  withDeadline(deadline: number): IaClient {
    return new IaClient(this.opts, deadline);
  }

  /** May a redirect target receive the credentials? Archive hosts and the configured endpoints only. */
  keepAuthFor = (host: string): boolean => isArchiveHost(host) || this.trusted.has(host);

  private hooks(what: string) {
    return { log: this.opts.log, what, sleep: this.sleep, now: this.now, random: this.opts.random };
  }

  // ------------------------------------------------------------------ read APIs

  private async getJson<T>(
    url: string,
    what: string,
    opts: { auth?: boolean; okStatuses?: number[] } = {},
  ): Promise<{ status: number; body: T | undefined }> {
    return withRetry(
      async (_attempt, signal) => {
        const res = await request({
          method: 'GET',
          url,
          headers: { accept: 'application/json', ...(opts.auth ? { authorization: this.auth } : {}) },
          idleTimeoutMs: this.opts.apiTimeoutMs ?? 60_000,
          keepAuthFor: this.keepAuthFor,
          signal,
        });
        if (res.status === 200) {
          const text = await res.text();
          try {
            return { status: 200, body: JSON.parse(text) as T };
          } catch {
            // A truncated or HTML answer from an overloaded front end: worth another try.
            throw new TransientError(`${what}: the answer is not JSON (${text.slice(0, 80).replace(/\s+/g, ' ')})`);
          }
        }
        if (opts.okStatuses?.includes(res.status)) {
          await res.drain();
          return { status: res.status, body: undefined };
        }
        throw await this.errorOf(res, what);
      },
      this.apiPolicy,
      this.hooks(what),
    );
  }

  private async errorOf(res: HttpResponse, what: string): Promise<Error> {
    const body = (await res.text().catch(() => '')).slice(0, 8192);
    const e = parseS3Error(body);
    const msg = `${what}: HTTP ${res.status} ${describeS3Error(e, body)}`.trim();
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      return new HttpError(res.status, msg, parseRetryAfter(res.headers['retry-after']), body);
    }
    return new UserError(msg);
  }

  /** MDAPI record of an item; undefined when IA answers `{}` (no such item, or not public yet). */
  async getItem(id: string): Promise<ItemRecord | undefined> {
    const { body } = await this.getJson<ItemRecord>(
      `${this.api}/metadata/${encodeURIComponent(id)}`,
      `GET metadata of ${id}`,
      { auth: true },
    );
    return body && Object.keys(body).length > 0 ? body : undefined;
  }

  /** `/metadata/{id}/files` (small answer for polling); accepts the bare list or `{"result": [...]}`. */
  async getFiles(id: string): Promise<IaFile[] | undefined> {
    const { body } = await this.getJson<unknown>(
      `${this.api}/metadata/${encodeURIComponent(id)}/files`,
      `GET files of ${id}`,
      { auth: true },
    );
    if (Array.isArray(body)) return body as IaFile[];
    const r = (body as { result?: unknown } | undefined)?.result;
    return Array.isArray(r) ? (r as IaFile[]) : undefined;
  }

  /** `available`, `not_available`, or undefined when IA's answer is unusable. */
  async checkIdentifier(id: string): Promise<string | undefined> {
    const { body } = await this.getJson<{ code?: string }>(
      `${this.api}/services/check_identifier.php?output=json&identifier=${encodeURIComponent(id)}`,
      `check identifier ${id}`,
    );
    return typeof body?.code === 'string' ? body.code : undefined;
  }

  /** Catalog task counts for the item; undefined when the Tasks API gives no summary. */
  async taskSummary(id: string): Promise<TaskSummary | undefined> {
    const { body } = await this.getJson<{ success?: boolean; value?: { summary?: Partial<TaskSummary> } }>(
      `${this.api}/services/tasks.php?identifier=${encodeURIComponent(id)}&summary=1&catalog=0&history=0`,
      `GET task summary of ${id}`,
      { auth: true },
    );
    const s = body?.value?.summary;
    if (!s) return undefined;
    return {
      queued: Number(s.queued ?? 0),
      running: Number(s.running ?? 0),
      error: Number(s.error ?? 0),
      paused: Number(s.paused ?? 0),
    };
  }

  /** Queued/running catalog tasks of the item (`cmd`: archive.php = ingest, derive.php, ...). */
  async pendingTasks(id: string): Promise<{ cmd: string; status?: string }[] | undefined> {
    const { body } = await this.getJson<{
      success?: boolean;
      value?: { catalog?: { cmd?: unknown; status?: unknown }[] };
    }>(
      `${this.api}/services/tasks.php?identifier=${encodeURIComponent(id)}&catalog=1&history=0&summary=0`,
      `GET catalog tasks of ${id}`,
      { auth: true },
    );
    const rows = body?.value?.catalog;
    if (!Array.isArray(rows)) return undefined;
    return rows.map((r) => ({ cmd: String(r.cmd ?? ''), status: typeof r.status === 'string' ? r.status : undefined }));
  }

  /** The S3 rate-limit probe; undefined when it fails (a probe failure never blocks: the PUT decides). */
  async checkLimit(id: string): Promise<LimitStatus | undefined> {
    const url = `${this.s3}/?check_limit=1&accesskey=${encodeURIComponent(this.opts.accessKey)}&bucket=${encodeURIComponent(id)}`;
    try {
      const res = await request({ method: 'GET', url, idleTimeoutMs: this.opts.apiTimeoutMs ?? 60_000 });
      if (res.status !== 200) {
        await res.drain();
        this.opts.log.debug(`check_limit answered HTTP ${res.status}; not blocking`);
        return undefined;
      }
      const j = JSON.parse(await res.text()) as { over_limit?: unknown; detail?: Record<string, unknown> };
      const reason =
        typeof j.detail?.limit_reason === 'string' && j.detail.limit_reason ? j.detail.limit_reason : undefined;
      return { overLimit: Number(j.over_limit ?? 0) !== 0, reason, detail: j.detail };
    } catch (e) {
      this.opts.log.debug(`check_limit failed (${errorMessage(e)}); not blocking`);
      return undefined;
    }
  }

  /**
   * Waits while check_limit reports `over_limit` (IA rationing): escalating backoff from 4× the
   * retry base, capped at 10 min, until the policy's deadline. Throws RetryExhaustedError then.
   */
  async waitUntilUnderLimit(id: string): Promise<{ polls: number }> {
    let polls = 0;
    const gate: RetryPolicy = {
      ...this.policy,
      attempts: Number.MAX_SAFE_INTEGER,
      baseMs: this.policy.baseMs * 4,
      maxMs: Math.max(this.policy.maxMs, 600_000),
    };
    await withRetry(
      async () => {
        polls++;
        const s = await this.checkLimit(id);
        if (s?.overLimit) {
          const queued = s.detail?.total_tasks_queued;
          throw new TransientError(
            `IA reports over_limit for ${id}${s.reason ? ` (${s.reason})` : ''}${queued !== undefined ? `, total_tasks_queued ${String(queued)}` : ''}; not sending until it clears`,
          );
        }
      },
      gate,
      { ...this.hooks(`check_limit ${id}`) },
    ).catch((e: unknown) => {
      if (e instanceof RetryExhaustedError) {
        throw new RetryExhaustedError(
          `${e.message}. IA is rationing uploads; re-run this step when ${this.s3}/?check_limit=1 shows over_limit 0`,
          e.attempts,
          e.lastError,
        );
      }
      throw e;
    });
    return { polls };
  }

  /** Queues a derive (which regenerates the torrent). `already` when one is queued or running. */
  async submitDerive(id: string): Promise<'queued' | 'already'> {
    const what = `submit derive.php for ${id}`;
    return withRetry(
      async (_attempt, signal) => {
        const res = await request({
          method: 'POST',
          url: `${this.api}/services/tasks.php`,
          headers: { authorization: this.auth, 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ identifier: id, cmd: 'derive.php' }),
          idleTimeoutMs: this.opts.apiTimeoutMs ?? 60_000,
          signal,
        });
        if (res.status >= 500 || res.status === 429) throw await this.errorOf(res, what);
        const text = await res.text();
        let j: { success?: boolean; error?: string } = {};
        try {
          j = JSON.parse(text) as typeof j;
        } catch {
          /* handled below */
        }
        if (j.success) return 'queued' as const;
        if (/already queued\/running/i.test(j.error ?? '')) return 'already' as const;
        throw new UserError(`${what}: IA refused: ${j.error ?? `HTTP ${res.status} ${text.slice(0, 200)}`}`);
      },
      this.apiPolicy,
      this.hooks(what),
    );
  }

  /** Downloads `<id>_archive.torrent` (public; follows IA's redirect to a data node). */
  async downloadTorrent(id: string): Promise<Buffer | undefined> {
    const what = `GET ${id}_archive.torrent`;
    return withRetry(
      async (_attempt, signal) => {
        const res = await request({
          method: 'GET',
          url: `${this.api}/download/${encodeURIComponent(id)}/${encodeURIComponent(`${id}_archive.torrent`)}`,
          idleTimeoutMs: this.opts.apiTimeoutMs ?? 60_000,
          signal,
        });
        if (res.status === 404) {
          await res.drain();
          return undefined;
        }
        if (res.status !== 200) throw await this.errorOf(res, what);
        const len = Number(res.headers['content-length'] ?? 0);
        if (len > TORRENT_MAX_BYTES) {
          res.stream.destroy();
          throw new UserError(`${what}: ${len} bytes is not a plausible torrent`);
        }
        return res.buffer();
      },
      this.apiPolicy,
      this.hooks(what),
    );
  }

  // ------------------------------------------------------------------ upload

  /**
   * Uploads one file with the retry policy: check_limit before every attempt, 503 SlowDown,
   * 5xx, resets and stalls retried (Retry-After honoured), spam and other 4xx fatal at once
   * with IA's message. Each attempt re-reads the file from byte 0 on a fresh connection.
   */
  async putFile(id: string, src: UploadSource, headers: Record<string, string>): Promise<PutResult> {
    const started = Date.now();
    const url = `${this.s3}/${encodeURIComponent(id)}/${encodeKey(src.name)}`;
    let attempts = 0;
    let bytesSent = 0;
    const serverDate = await withRetry(
      async () => {
        await this.waitUntilUnderLimit(id);
        attempts++;
        const r = await this.putOnce(url, src, headers, attempts);
        bytesSent += r.bytes;
        if (r.error) throw r.error;
        return r.serverDate;
      },
      this.policy,
      { ...this.hooks(`PUT ${src.name}`), retryable: isTransient },
    );
    return { attempts, bytesSent, serverDate, ms: Date.now() - started };
  }

  private async putOnce(
    url: string,
    src: UploadSource,
    headers: Record<string, string>,
    attempt: number,
  ): Promise<{ bytes: number; serverDate?: number; error?: Error }> {
    const log = this.opts.log;
    const ac = new AbortController();
    const stall = this.opts.stall;
    let total = 0;
    /** Body bytes of the current hop (a redirect starts the body again from 0). */
    let hopSent = 0;
    let stalled: string | undefined;
    let windowStart = Date.now();
    let windowBytes = 0;
    const t0 = Date.now();
    let lastLog = t0;
    const every = this.opts.progressEveryMs ?? 30_000;

    const onProgress = (sentThisHop: number, chunk: number) => {
      // Counted per chunk: a redirect replays the body from byte 0 and those bytes count too.
      total += chunk;
      hopSent = sentThisHop;
      const now = Date.now();
      if (now - lastLog >= every && src.size > 0) {
        lastLog = now;
        const rate = total / Math.max(0.001, (now - t0) / 1000);
        log.info(
          `PUT ${src.name}: ${((100 * hopSent) / src.size).toFixed(0)}% (${fmtBytes(hopSent)} of ${fmtBytes(src.size)}, ${fmtBytes(rate)}/s)`,
        );
      }
    };
    const monitor = stall
      ? setInterval(
          () => {
            if (hopSent >= src.size) return; // body handed over: the answer's wait is the idle timeout's
            const now = Date.now();
            const elapsed = now - windowStart;
            if (elapsed < stall.windowMs) return;
            const rate = ((total - windowBytes) * 1000) / elapsed;
            if (rate < stall.minBytesPerSec) {
              stalled = `stalled: ${Math.round(rate)} bytes/s over the last ${(elapsed / 1000).toFixed(1)} s is below the floor of ${stall.minBytesPerSec} bytes/s (${total} of ${src.size} bytes sent); aborted, retrying on a fresh connection`;
              ac.abort();
              return;
            }
            windowStart = now;
            windowBytes = total;
          },
          Math.max(10, Math.min(1000, Math.floor(stall.windowMs / 4))),
        )
      : undefined;

    log.debug(`PUT ${url} attempt ${attempt} (${src.size} bytes)`);
    try {
      const res = await request({
        method: 'PUT',
        url,
        headers: { ...headers, authorization: this.auth, 'content-md5': src.md5 },
        body: fileBody(src.path, src.size),
        expectContinue: true,
        continueTimeoutMs: this.opts.continueTimeoutMs ?? 5000,
        idleTimeoutMs: this.opts.responseTimeoutMs ?? 30 * 60_000,
        followRedirects: true,
        keepAuthFor: this.keepAuthFor,
        freshConnection: true,
        signal: ac.signal,
        onUploadProgress: onProgress,
      });
      if (res.url !== new URL(url).href)
        log.info(`PUT ${src.name}: IA redirected to ${new URL(res.url).host}; the body was replayed from byte 0`);
      if (res.status >= 200 && res.status < 300) {
        await res.drain();
        const d = res.headers.date ? Date.parse(res.headers.date) : NaN;
        return { bytes: total, serverDate: Number.isNaN(d) ? undefined : d };
      }
      return { bytes: total, error: await this.putError(res, src.name) };
    } catch (e) {
      if (stalled) return { bytes: total, error: new TransientError(`PUT ${src.name}: ${stalled}`) };
      return { bytes: total, error: e instanceof Error ? e : new Error(String(e)) };
    } finally {
      if (monitor) clearInterval(monitor);
    }
  }

  private async putError(res: HttpResponse, name: string): Promise<Error> {
    const body = (await res.text().catch(() => '')).slice(0, 8192);
    const e = parseS3Error(body);
    const text = describeS3Error(e, body);
    const what = `PUT ${name}`;
    if (/appears to be spam/i.test(body)) {
      return new UserError(
        `${what}: IA refused the upload as spam (HTTP ${res.status}): ${text}. This is not retried; contact info@archive.org with this message.`,
      );
    }
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      return new HttpError(
        res.status,
        `${what}: HTTP ${res.status} ${text}`,
        parseRetryAfter(res.headers['retry-after']),
        body,
      );
    }
    if (res.status === 403) {
      return new UserError(
        `${what}: access denied (HTTP 403) ${text}. Check the access-key/secret-key and that the item belongs to this account.`,
      );
    }
    return new UserError(`${what}: HTTP ${res.status} ${text}`);
  }
}

export function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
}

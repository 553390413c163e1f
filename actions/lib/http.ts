import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Readable, Transform } from 'node:stream';
import { HttpError } from './errors.js';
import { parseRetryAfter } from './retry.js';

/**
 * A small HTTP client over node:http/https, shared by the OCI client, the Internet Archive
 * client and the emulator tests. It streams request bodies from a factory (so a retry or a
 * redirect can replay them from byte 0), never buffers a response the caller wants streamed,
 * supports `Expect: 100-continue`, and detects idle sockets.
 */
export type Body = Buffer | string | { length: number; open: () => Readable };

export interface HttpRequest {
  method: string;
  url: string | URL;
  headers?: Record<string, string>;
  body?: Body;
  /** Abort when no byte moves in either direction for this long (default 120 s). */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
  /** Follow 301/302/303/307/308 for GET/HEAD (default true). */
  followRedirects?: boolean;
  /** Whether the Authorization header may be sent to a redirect target host (never after a downgrade to http). */
  keepAuthFor?: (host: string) => boolean;
  /** Send `Expect: 100-continue` and wait for it (or `continueTimeoutMs`) before the body. */
  expectContinue?: boolean;
  continueTimeoutMs?: number;
  /** Called as body bytes are handed to the socket: bytes sent by this hop so far, and this chunk. */
  onUploadProgress?: (sent: number, chunk: number) => void;
  /** Accept any TLS certificate (registries with tls-verify: false). */
  insecureTls?: boolean;
  /** Use a new connection, closed afterwards, instead of the keep-alive pool (retry after a stall). */
  freshConnection?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  url: string;
  stream: Readable;
  buffer(): Promise<Buffer>;
  text(): Promise<string>;
  json<T = unknown>(): Promise<T>;
  /** Discard the body (keeps the connection reusable). */
  drain(): Promise<void>;
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 16 }),
  insecure: new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false }),
};

/** Totals across the process: the benches read them to report bytes sent/received. */
export const httpStats = { requests: 0, bytesSent: 0, bytesReceived: 0 };

function bodyLength(b: Body | undefined): number | undefined {
  if (b === undefined) return undefined;
  if (typeof b === 'string') return Buffer.byteLength(b);
  if (Buffer.isBuffer(b)) return b.length;
  return b.length;
}

export async function request(req: HttpRequest, redirects = 0): Promise<HttpResponse> {
  const url = typeof req.url === 'string' ? new URL(req.url) : req.url;
  const isHttps = url.protocol === 'https:';
  const headers: Record<string, string> = { 'user-agent': 'keel/0.1', ...(req.headers ?? {}) };
  const len = bodyLength(req.body);
  if (len !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) {
    headers['content-length'] = String(len);
  }
  if (req.expectContinue && req.body !== undefined) headers.expect = '100-continue';
  httpStats.requests++;

  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const r = (isHttps ? https : http).request(
      url,
      {
        method: req.method,
        headers,
        agent: req.freshConnection ? false : isHttps ? (req.insecureTls ? agents.insecure : agents.https) : agents.http,
        ...(req.freshConnection && req.insecureTls ? { rejectUnauthorized: false } : {}),
        signal: req.signal,
      },
      resolve,
    );
    const idle = req.idleTimeoutMs ?? 120_000;
    r.setTimeout(idle, () => {
      const e = new Error(`no data moved for ${idle} ms (${req.method} ${url.host}${url.pathname})`);
      (e as NodeJS.ErrnoException).code = 'ETIMEDOUT';
      r.destroy(e);
    });
    r.on('error', reject);
    const b = req.body;
    if (b === undefined) {
      r.end();
      return;
    }
    const send = () => {
      if (typeof b === 'string' || Buffer.isBuffer(b)) {
        const buf = typeof b === 'string' ? Buffer.from(b) : b;
        httpStats.bytesSent += buf.length;
        req.onUploadProgress?.(buf.length, buf.length);
        r.end(buf);
        return;
      }
      const src = b.open();
      let sent = 0;
      src.on('data', (chunk: Buffer) => {
        sent += chunk.length;
        httpStats.bytesSent += chunk.length;
        req.onUploadProgress?.(sent, chunk.length);
      });
      src.on('error', (e) => r.destroy(e));
      // An aborted or refused request must not leave the file stream (and its fd) open.
      r.on('close', () => src.destroy());
      src.pipe(r);
    };
    if (req.expectContinue) {
      let started = false;
      const go = () => {
        if (!started) {
          started = true;
          send();
        }
      };
      r.on('continue', go);
      // A server that ignores Expect must not hang the upload (RFC 9110 §10.1.1).
      const t = setTimeout(go, req.continueTimeoutMs ?? 3000);
      r.on('response', (res: http.IncomingMessage) => {
        clearTimeout(t);
        if (!started) {
          // A final answer before the body (an early 307/503/403): the body is never sent, and
          // the half-done request is dropped once the answer is read so its socket cannot linger.
          started = true;
          res.once('end', () => r.destroy());
        }
      });
      r.on('close', () => clearTimeout(t));
    } else {
      send();
    }
  });

  const status = res.statusCode ?? 0;
  const outHeaders: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) {
    if (v !== undefined) outHeaders[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  // Count received bytes through a pass-through: it buffers (with back-pressure) until the
  // caller reads, so a body read after an await is never lost to a flowing stream.
  const counted = res.pipe(
    new Transform({
      transform(chunk: Buffer, _enc, cb) {
        httpStats.bytesReceived += chunk.length;
        cb(null, chunk);
      },
    }),
  );
  res.on('error', (e) => counted.destroy(e));

  const follow = req.followRedirects ?? (req.method === 'GET' || req.method === 'HEAD');
  if (follow && [301, 302, 303, 307, 308].includes(status) && outHeaders.location) {
    res.resume();
    if (redirects >= 10) throw new HttpError(status, `too many redirects at ${url.href}`);
    const next = new URL(outHeaders.location, url);
    const h = { ...(req.headers ?? {}) };
    if (!mayKeepAuthorization(url, next, req.keepAuthFor)) {
      for (const k of Object.keys(h)) if (k.toLowerCase() === 'authorization') delete h[k];
    }
    return request({ ...req, url: next, headers: h }, redirects + 1);
  }

  const buffer = async () => {
    const chunks: Buffer[] = [];
    for await (const c of counted) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  return {
    status,
    headers: outHeaders,
    url: url.href,
    stream: counted,
    buffer,
    text: async () => (await buffer()).toString('utf8'),
    json: async <T>() => JSON.parse((await buffer()).toString('utf8')) as T,
    drain: async () => {
      for await (const _ of counted) {
        /* discard */
      }
    },
  };
}

/**
 * May a redirect from `from` to `to` carry the Authorization header? Never when it leaves https
 * (a downgrade would put the credentials on the wire in clear); otherwise only to the same host
 * (name and port) or a host the caller vouches for (`keepAuthFor`).
 */
export function mayKeepAuthorization(from: URL, to: URL, keepAuthFor?: (host: string) => boolean): boolean {
  if (from.protocol === 'https:' && to.protocol !== 'https:') return false;
  return to.host === from.host || (keepAuthFor?.(to.host) ?? false);
}

/** Builds an HttpError from a response (reads at most 4 KiB of the body for the message). */
export async function errorFromResponse(res: HttpResponse, what: string): Promise<HttpError> {
  let body = '';
  try {
    body = (await res.text()).slice(0, 4096);
  } catch {
    /* body unreadable: the status says enough */
  }
  const retryAfter = parseRetryAfter(res.headers['retry-after']);
  const detail = summarizeErrorBody(body);
  return new HttpError(res.status, `${what}: HTTP ${res.status}${detail ? ` ${detail}` : ''}`, retryAfter, body);
}

/** Registry errors are `{"errors":[{"code","message"}]}`; others are text or XML. */
function summarizeErrorBody(body: string): string {
  const t = body.trim();
  if (!t) return '';
  try {
    const j = JSON.parse(t) as { errors?: { code?: string; message?: string }[]; message?: string };
    if (Array.isArray(j.errors) && j.errors.length) {
      return j.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    }
    if (typeof j.message === 'string') return j.message;
  } catch {
    /* not JSON */
  }
  const xml = /<Message>([\s\S]*?)<\/Message>/.exec(t);
  if (xml?.[1]) return xml[1].trim();
  return t.replace(/\s+/g, ' ').slice(0, 300);
}

/** A Body that streams a byte range of a file. */
export function fileBody(path: string, size: number, start = 0): Body {
  return {
    length: size,
    open: () =>
      size === 0
        ? Readable.from([])
        : fs.createReadStream(path, { start, end: start + size - 1, highWaterMark: 1024 * 1024 }),
  };
}

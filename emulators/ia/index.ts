import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Crc32, IaModel, formatOf, type DeriveOutcome, type EmuFile, type EmuItem } from './state.js';

export { IaModel, bencode, type DeriveOutcome, type EmuFile, type EmuItem, type EmuTask } from './state.js';

/**
 * A local Internet Archive emulator (IA-S3 PUT, MDAPI, Tasks API, check_limit,
 * check_identifier, downloads, derived torrents) with fault injection, for offline tests and
 * the local runner. It is validated against the real `ia` client (test/emulators/).
 *
 * Two listeners on 127.0.0.1 share one handler:
 *  - `s3Url` (IA-S3) and `apiUrl` (archive.org) for Keel's client (origin-form requests);
 *  - `proxyUrl` for the real `ia`, which reaches it through HTTP_PROXY with `secure = false`
 *    and sends absolute-form targets (`PUT http://s3.us.archive.org/ID/file`): those are routed
 *    on the host (s3.us.archive.org, archive.org, catalogd.archive.org, ia*.us.archive.org).
 * Whenever it will close a connection it says `Connection: close` first (the `ia` client
 * otherwise reuses a dead keep-alive socket).
 */
export interface IaEmulatorOptions {
  /** Delay from an accepted PUT to the file appearing in MDAPI (default 50 ms). */
  ingestDelayMs?: number;
  /** Delay of a derive (which regenerates the torrent) after the ingest (default 200 ms). */
  deriveDelayMs?: number;
  deriveOutcome?: DeriveOutcome;
  /** `continue` answers Expect: 100-continue; `ignore` never sends 100 (the client's fallback timer must start the body). */
  expect?: 'continue' | 'ignore';
  /** Identifiers MDAPI reports as collections (the `ia` client pre-checks `collection`). */
  collections?: string[];
  /** Identifiers taken by someone else: check_identifier says not_available, MDAPI `{}`, PUT 403. */
  reserved?: string[];
  /** When set, only these keys are accepted (others: 403 InvalidAccessKeyId). */
  keys?: { access: string; secret: string };
  now?: () => number;
  /** Stops itself after this long (default 15 min), so a crashed test leaves nothing behind. */
  lifetimeMs?: number;
}

export type FaultAction =
  /** 503 SlowDown (`total_tasks_queued exceeds global_limit` by default), optionally with Retry-After. */
  | { kind: 'slowdown'; retryAfter?: string | number; resource?: string; early?: boolean }
  /** 503 whose Resource says the upload "appears to be spam" (permanent). */
  | { kind: 'spam'; early?: boolean }
  /** Any S3-style error (403 AccessDenied, 500 InternalError, 400 BadDigest, ...). */
  | {
      kind: 'error';
      status: number;
      code: string;
      message?: string;
      resource?: string;
      early?: boolean;
      retryAfter?: string | number;
    }
  /** 307 to a data node: `node` (an archive host: same listener), `foreign` (another host: auth must be dropped), or a URL. */
  | { kind: 'redirect'; to?: 'node' | 'foreign' | string; early?: boolean }
  /** Destroys the connection after this many body bytes (default 0). */
  | { kind: 'reset'; afterBytes?: number }
  /** Stops reading the body after this many bytes; closes the socket after `forMs` (default: never). */
  | { kind: 'stall'; afterBytes?: number; forMs?: number }
  /** check_limit answers over_limit 1. */
  | { kind: 'over-limit'; reason?: string }
  /** 200 with an HTML error page instead of JSON (an overloaded front end), on metadata and tasks. */
  | { kind: 'garbage' };

/** What an overloaded front end answers in place of JSON. */
const GARBAGE =
  '<html><head><title>Temporarily unavailable</title></head><body>The Internet Archive is overloaded.</body></html>';

export type FaultRoute = 'put' | 'check_limit' | 'metadata' | 'tasks' | 'download';

export interface IaFault {
  on: FaultRoute;
  /** Only requests for this item. */
  identifier?: string;
  /** Only PUTs of this key. */
  key?: string;
  /** How many matching requests it fires on (default 1). */
  times?: number;
  /** Let this many matching requests through first. */
  skip?: number;
  action: FaultAction;
}

export interface JournalEntry {
  t: number;
  method: string;
  /** Host the request was for (Host header; the archive host in proxy mode). */
  host: string;
  path: string;
  query: Record<string, string>;
  role: Role;
  /** Absolute-form target: the request came through the proxy (the real `ia`). */
  proxied: boolean;
  /** Request headers, lower-cased, Authorization redacted to `LOW <access>:***`. */
  headers: Record<string, string>;
  /** The access key of a `LOW` Authorization header, if any. */
  accessKey?: string;
  expect: boolean;
  /** Client port of the connection (a new port = a fresh connection). */
  remotePort?: number;
  bodyBytes: number;
  md5?: string;
  status?: number;
  fault?: string;
}

export interface IaEmulator {
  s3Url: string;
  apiUrl: string;
  proxyUrl: string;
  state: EmulatorState;
  /** Replaces the fault queue; faults fire in order on matching requests. */
  setFaults(faults: IaFault[]): void;
  /** Changes delays/derive outcome/expect mode for later requests. */
  setOptions(o: Partial<Pick<IaEmulatorOptions, 'ingestDelayMs' | 'deriveDelayMs' | 'deriveOutcome' | 'expect'>>): void;
  close(): Promise<void>;
}

export interface SeedFile {
  name: string;
  /** Content (hashes computed), or size + md5 given directly. */
  content?: Buffer | string;
  size?: number;
  md5?: string;
  sha1?: string;
  mtime?: number;
}

export interface EmulatorState {
  model: IaModel;
  journal: JournalEntry[];
  /** Completes due tasks now. */
  advance(): void;
  /** The MDAPI record (`{}` for no item). */
  record(id: string): Record<string, unknown>;
  item(id: string): EmuItem | undefined;
  /** PUT requests (optionally of one key), in order. */
  puts(key?: string): JournalEntry[];
  /** Creates an item as if uploaded earlier (ingested, no pending tasks). `torrent: true` derives one now. */
  seed(
    id: string,
    opts: {
      metadata?: Record<string, string | string[]>;
      files?: SeedFile[];
      torrent?: boolean;
      owner?: string;
      createdAt?: number;
      dark?: boolean;
    },
  ): EmuItem;
  /** Queues an ingest of a file as if a previous run's PUT was still being processed. */
  stagePending(id: string, file: SeedFile, opts?: { delayMs?: number; owner?: string }): void;
}

type Role = 's3' | 'api' | 'node';

const ARCHIVE_NODE = 'ia800000.us.archive.org';

function xmlError(code: string, message: string, resource = '', requestId = crypto.randomUUID()): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return (
    `<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message>` +
    `<Resource>${esc(resource)}</Resource><RequestId>${requestId}</RequestId></Error>`
  );
}

/** Decodes an `x-archive-meta` value (`uri(...)` percent-encoding). */
export function decodeMetaValue(v: string): string {
  const m = /^uri\(([\s\S]*)\)$/.exec(v);
  if (!m) return v;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return m[1]!;
  }
}

/** Parses `x-(archive|amz)-meta[NN]-<field>` headers into item metadata (lists by number). */
export function parseMetaHeaders(
  headers: http.IncomingHttpHeaders,
  kind: 'meta' | 'filemeta' = 'meta',
): Record<string, string | string[]> {
  const pat = new RegExp(`^x-(?:archive|amz)-${kind}(\\d*)-(.+)$`);
  const acc = new Map<string, { n: number; v: string }[]>();
  for (const [k, raw] of Object.entries(headers)) {
    const m = pat.exec(k.toLowerCase());
    if (!m || raw === undefined) continue;
    const field = m[2]!.replace(/--/g, '_');
    const values = Array.isArray(raw) ? raw : [raw];
    const list = acc.get(field) ?? [];
    for (const v of values) list.push({ n: m[1] ? Number(m[1]) : -1, v: decodeMetaValue(v) });
    acc.set(field, list);
  }
  const out: Record<string, string | string[]> = {};
  for (const [field, list] of acc) {
    list.sort((a, b) => a.n - b.n);
    out[field] = list.length === 1 ? list[0]!.v : list.map((x) => x.v);
  }
  return out;
}

const dateTime = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, '');

export async function startIaEmulator(options: IaEmulatorOptions = {}): Promise<IaEmulator> {
  const opts = {
    ingestDelayMs: 50,
    deriveDelayMs: 200,
    deriveOutcome: 'ok' as DeriveOutcome,
    expect: 'continue' as const,
    ...options,
  };
  const now = opts.now ?? Date.now;
  const model = new IaModel({
    ingestDelayMs: opts.ingestDelayMs,
    deriveDelayMs: opts.deriveDelayMs,
    deriveOutcome: opts.deriveOutcome,
    now,
  });
  let expectMode: 'continue' | 'ignore' = opts.expect;
  const collections = new Set(opts.collections ?? ['opensource', 'test_collection']);
  const reserved = new Set(opts.reserved ?? []);
  const journal: JournalEntry[] = [];
  let faults: (IaFault & { fired: number; seen: number })[] = [];
  const sockets = new Set<Socket>();
  let s3Port = 0;
  let apiPort = 0;

  const takeFault = (route: FaultRoute, id?: string, key?: string): FaultAction | undefined => {
    for (const f of faults) {
      if (f.on !== route) continue;
      if (f.identifier !== undefined && f.identifier !== id) continue;
      if (f.key !== undefined && f.key !== key) continue;
      if (++f.seen <= (f.skip ?? 0)) continue;
      if (f.fired >= (f.times ?? 1)) continue;
      f.fired++;
      return f.action;
    }
    return undefined;
  };

  const send = (
    res: http.ServerResponse,
    entry: JournalEntry,
    status: number,
    body: string | Buffer | object = '',
    extra: Record<string, string> = {},
    close = false,
  ) => {
    const buf = Buffer.isBuffer(body)
      ? body
      : typeof body === 'string'
        ? Buffer.from(body)
        : Buffer.from(JSON.stringify(body));
    const ctype =
      extra['content-type'] ??
      (typeof body === 'object' && !Buffer.isBuffer(body)
        ? 'application/json'
        : buf.length && buf[0] === 0x3c
          ? 'application/xml'
          : 'text/plain');
    entry.status = status;
    if (res.headersSent) return;
    res.writeHead(status, {
      'content-type': ctype,
      'content-length': String(buf.length),
      ...extra,
      ...(close ? { connection: 'close' } : {}),
    });
    res.end(buf);
  };

  const roleOf = (listenerRole: Role, url: URL, proxied: boolean): Role => {
    if (!proxied) return listenerRole;
    const h = url.hostname.toLowerCase();
    if (h === 's3.us.archive.org') return 's3';
    if (h === 'archive.org' || h === 'www.archive.org' || h === 'catalogd.archive.org') return 'api';
    if (/^ia\d+\.us\.archive\.org$/.test(h)) return 'node';
    return listenerRole;
  };

  const redact = (h: http.IncomingHttpHeaders): { headers: Record<string, string>; accessKey?: string } => {
    const out: Record<string, string> = {};
    let accessKey: string | undefined;
    for (const [k, v] of Object.entries(h)) {
      if (v === undefined) continue;
      const s = Array.isArray(v) ? v.join(', ') : v;
      if (k === 'authorization') {
        const m = /^LOW ([^:]*):/.exec(s);
        accessKey = m?.[1];
        out[k] = m ? `LOW ${m[1]}:***` : '***';
      } else out[k] = s;
    }
    return { headers: out, accessKey };
  };

  const authOf = (req: http.IncomingMessage): { access: string; secret: string } | undefined => {
    const m = /^LOW ([^:]+):(.+)$/.exec(req.headers.authorization ?? '');
    return m ? { access: m[1]!, secret: m[2]! } : undefined;
  };

  // ------------------------------------------------------------------ PUT

  const handlePut = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    entry: JournalEntry,
    url: URL,
    expectPending: boolean,
  ) => {
    let p = decodeURIComponent(url.pathname);
    if (p.startsWith('/s3-put/')) p = p.slice('/s3-put'.length);
    const slash = p.indexOf('/', 1);
    const id = slash > 0 ? p.slice(1, slash) : p.slice(1);
    const key = slash > 0 ? p.slice(slash + 1) : '';
    const resource = `${id}/${key}`;
    // Answer without reading the body: announce the close, never send 100 Continue.
    const early = (status: number, body: string, extra: Record<string, string> = {}) => {
      send(res, entry, status, body, extra, true);
      req.resume();
    };

    if (!id || !key) return early(400, xmlError('InvalidURI', 'Could not parse the specified URI.', p));
    if (req.headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
      return early(
        400,
        xmlError('NotImplemented', 'Chunked transfer encoding is not supported; send Content-Length.', resource),
      );
    }
    if (req.headers['content-length'] === undefined)
      return early(411, xmlError('MissingContentLength', 'You must provide the Content-Length HTTP header.', resource));
    const creds = authOf(req);
    if (!creds) return early(403, xmlError('AccessDenied', 'Access Denied: no LOW authorization header.', resource));
    if (opts.keys && (creds.access !== opts.keys.access || creds.secret !== opts.keys.secret)) {
      return early(
        403,
        xmlError('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', resource),
      );
    }
    model.advance();
    const existing = model.items.get(id);
    if (reserved.has(id) || (existing && existing.owner !== creds.access)) {
      return early(
        403,
        xmlError('AccessDenied', `Access Denied: you do not have permission to write to ${id}.`, resource),
      );
    }

    const fault = takeFault('put', id, key);
    const answerFault = (): boolean => {
      if (!fault) return false;
      const ra =
        'retryAfter' in fault && fault.retryAfter !== undefined
          ? { 'retry-after': String(fault.retryAfter) }
          : undefined;
      switch (fault.kind) {
        case 'slowdown':
          entry.fault = `slowdown${ra ? ` retry-after ${ra['retry-after']}` : ''}`;
          send(
            res,
            entry,
            503,
            xmlError(
              'SlowDown',
              'Please reduce your request rate.',
              fault.resource ?? 'total_tasks_queued exceeds global_limit',
            ),
            ra ?? {},
            !bodyDone,
          );
          return true;
        case 'spam':
          entry.fault = 'spam';
          send(
            res,
            entry,
            503,
            xmlError(
              'SlowDown',
              'Please reduce your request rate.',
              `Your upload of ${id} from username ${creds.access} appears to be spam. If you believe this is a mistake, contact info@archive.org and include this entire message in your email.`,
            ),
            {},
            !bodyDone,
          );
          return true;
        case 'error':
          entry.fault = `${fault.status} ${fault.code}`;
          send(
            res,
            entry,
            fault.status,
            xmlError(fault.code, fault.message ?? fault.code, fault.resource ?? resource),
            ra ?? {},
            !bodyDone,
          );
          return true;
        case 'redirect': {
          const path = `/s3-put/${encodeURIComponent(id)}/${key.split('/').map(encodeURIComponent).join('/')}`;
          const to = fault.to ?? 'node';
          const location =
            to === 'node'
              ? entry.proxied
                ? `http://${ARCHIVE_NODE}${path}`
                : `http://127.0.0.1:${s3Port}${path}`
              : to === 'foreign'
                ? `http://localhost:${s3Port}${path}`
                : to;
          entry.fault = `307 → ${location}`;
          send(res, entry, 307, '', { location }, !bodyDone);
          return true;
        }
        default:
          return false;
      }
    };

    let bodyDone = false;
    const isEarly = fault && 'early' in fault && fault.early;
    if (isEarly && answerFault()) {
      req.resume();
      return;
    }
    if (expectPending && expectMode === 'continue') res.writeContinue();

    const md5 = crypto.createHash('md5');
    const sha1 = crypto.createHash('sha1');
    const declared = Number(req.headers['content-length']);
    const crc = declared <= 256 * 1024 * 1024 ? new Crc32() : undefined;
    let got = 0;
    let cut: number | undefined;
    let stallAt: number | undefined;
    if (fault?.kind === 'reset') cut = fault.afterBytes ?? 0;
    if (fault?.kind === 'stall') stallAt = fault.afterBytes ?? 0;
    if (cut === 0) {
      entry.fault = 'reset after 0 bytes';
      req.socket.destroy();
      return;
    }
    const onData = (chunk: Buffer) => {
      if (cut !== undefined && got + chunk.length >= cut) {
        const part = chunk.subarray(0, cut - got);
        got += part.length;
        entry.bodyBytes = got;
        entry.fault = `reset after ${cut} bytes`;
        req.socket.destroy();
        return;
      }
      got += chunk.length;
      entry.bodyBytes = got;
      md5.update(chunk);
      sha1.update(chunk);
      crc?.update(chunk);
      if (stallAt !== undefined && got >= stallAt) {
        entry.fault = `stall after ${got} bytes`;
        req.pause();
        req.off('data', onData);
        const ms = fault?.kind === 'stall' ? fault.forMs : undefined;
        if (ms !== undefined) setTimeout(() => req.socket.destroy(), ms).unref();
      }
    };
    req.on('data', onData);
    req.on('end', () => {
      bodyDone = true;
      const digest = md5.digest('hex');
      entry.md5 = digest;
      if (got !== declared)
        return send(
          res,
          entry,
          400,
          xmlError(
            'IncompleteBody',
            'You did not provide the number of bytes specified by the Content-Length HTTP header.',
            resource,
          ),
        );
      if (answerFault()) return;
      const rawMd5 = req.headers['content-md5'];
      const cmd5 = Array.isArray(rawMd5) ? rawMd5[0] : rawMd5;
      if (cmd5) {
        const hex = /^[0-9a-fA-F]{32}$/.test(cmd5) ? cmd5.toLowerCase() : Buffer.from(cmd5, 'base64').toString('hex');
        if (hex !== digest) {
          return send(
            res,
            entry,
            400,
            xmlError('BadDigest', 'The Content-MD5 you specified did not match what we received.', resource),
          );
        }
      }
      model.advance();
      let item = model.items.get(id);
      if (!item) {
        const auto = req.headers['x-archive-auto-make-bucket'] ?? req.headers['x-amz-auto-make-bucket'];
        if (auto !== '1')
          return send(res, entry, 404, xmlError('NoSuchBucket', 'The specified bucket does not exist.', id));
        item = model.create(id, creds.access, parseMetaHeaders(req.headers));
      } else if (req.headers['x-archive-ignore-preexisting-bucket'] === '1') {
        item.metadata = parseMetaHeaders(req.headers);
      }
      const hint = Number(req.headers['x-archive-size-hint']);
      if (Number.isFinite(hint) && hint > 0) item.sizeHint = hint;
      const file: EmuFile = {
        name: key,
        source: 'original',
        format: formatOf(key),
        size: got,
        md5: digest,
        sha1: sha1.digest('hex'),
        crc32: crc?.digest(),
        mtime: Math.floor(now() / 1000),
      };
      Object.assign(file, parseMetaHeaders(req.headers, 'filemeta'));
      model.stage(item, file, {
        queueDerive: (req.headers['x-archive-queue-derive'] ?? '1') !== '0',
        keepOldVersion: req.headers['x-archive-keep-old-version'] === '1',
      });
      send(res, entry, 200, '', { etag: `"${digest}"` });
    });
  };

  // ------------------------------------------------------------------ GET/POST

  const handleTasks = async (req: http.IncomingMessage, res: http.ServerResponse, entry: JournalEntry, url: URL) => {
    const q = url.searchParams;
    const fault = takeFault('tasks', q.get('identifier') ?? undefined);
    if (fault?.kind === 'garbage') {
      entry.fault = 'tasks garbage';
      return send(res, entry, 200, GARBAGE, { 'content-type': 'text/html' });
    }
    if (fault) {
      const status = fault.kind === 'error' ? fault.status : 503;
      entry.fault = `tasks ${status}`;
      return send(res, entry, status, { success: false, error: 'tasks API unavailable (injected)' });
    }
    if (!authOf(req))
      return send(res, entry, 401, { success: false, error: 'authentication required (LOW access:secret)' });
    model.advance();
    if (req.method === 'POST') {
      const raw = await readBody(req);
      entry.bodyBytes = raw.length;
      let j: { identifier?: string; cmd?: string } = {};
      try {
        j = JSON.parse(raw.toString('utf8')) as typeof j;
      } catch {
        return send(res, entry, 400, { success: false, error: 'request body is not JSON' });
      }
      const item = j.identifier ? model.items.get(j.identifier) : undefined;
      if (!item) return send(res, entry, 200, { success: false, error: `no such item: ${j.identifier}` });
      if (j.cmd !== 'derive.php') return send(res, entry, 200, { success: false, error: `cmd ${j.cmd} not emulated` });
      const t = model.queueDerive(item);
      if (!t) return send(res, entry, 200, { success: false, error: 'derive.php task already queued/running' });
      return send(res, entry, 200, {
        success: true,
        value: { task_id: t.task_id, log: `https://catalogd.archive.org/log/${t.task_id}` },
      });
    }
    if (q.get('task_log'))
      return send(res, entry, 200, `task ${q.get('task_log')}: emulated log\n`, { 'content-type': 'text/plain' });
    const id = q.get('identifier') ?? '';
    const item = model.items.get(id);
    if (q.get('summary') === '1' && q.get('catalog') !== '1' && q.get('history') !== '1') {
      return send(res, entry, 200, { success: true, value: { summary: model.summary(item) } });
    }
    const row = (t: EmuItem['tasks'][number]) => ({
      identifier: id,
      task_id: t.task_id,
      server: ARCHIVE_NODE,
      cmd: t.cmd,
      args: t.file ? { file: t.file.name } : {},
      submittime: dateTime(t.submittime),
      submitter: item?.owner ?? '',
      priority: 0,
      category: t.status === 'done' || t.status === 'error' ? 'history' : 'catalog',
      color: t.status === 'error' ? 'red' : t.status === 'done' ? 'done' : t.status === 'running' ? 'green' : 'blue',
      status: t.status,
      ...(t.finished !== undefined && t.status === 'done' ? { finished: dateTime(t.finished) } : {}),
    });
    const tasks = item?.tasks ?? [];
    const catalog =
      q.get('catalog') === '0' ? [] : tasks.filter((t) => t.status === 'queued' || t.status === 'running').map(row);
    const history =
      q.get('history') === '1' ? tasks.filter((t) => t.status === 'done' || t.status === 'error').map(row) : [];
    if (q.get('limit') === '0') {
      const lines = [...catalog, ...history].map((r) => JSON.stringify(r)).join('\n');
      return send(res, entry, 200, lines ? `${lines}\n` : '', { 'content-type': 'application/json-l' });
    }
    return send(res, entry, 200, {
      success: true,
      value: { catalog, history, ...(q.get('summary') === '1' ? { summary: model.summary(item) } : {}) },
    });
  };

  const handleGet = async (
    role: Role,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    entry: JournalEntry,
    url: URL,
  ) => {
    const p = decodeURIComponent(url.pathname);
    const q = url.searchParams;
    if (role === 's3' && p === '/' && q.get('check_limit')) {
      const bucket = q.get('bucket') ?? undefined;
      const f = takeFault('check_limit', bucket);
      const over = f?.kind === 'over-limit';
      if (over) entry.fault = 'over-limit';
      const item = bucket ? model.items.get(bucket) : undefined;
      const s = model.summary(item);
      return send(res, entry, 200, {
        accesskey: q.get('accesskey'),
        bucket: bucket ?? null,
        detail: {
          accesskey_ration: 5000,
          accesskey_tasks_queued: s.queued + s.running,
          bucket_ration: 50,
          bucket_tasks_queued: s.queued + s.running,
          limit_reason: over ? (f.reason ?? 'total_tasks_queued exceeds global_limit') : '',
          rationing_engaged: over ? 1 : 0,
          rationing_level: over ? 1 : 0,
          total_global_limit: 1000000,
          total_tasks_queued: over ? 1000001 : 0,
        },
        over_limit: over ? 1 : 0,
      });
    }
    if (role === 's3')
      return send(res, entry, 404, xmlError('NoSuchKey', 'The emulator serves only PUT and check_limit on IA-S3.', p));

    const md = /^\/metadata\/([^/]+)(?:\/(.*))?$/.exec(p);
    if (md && req.method === 'GET') {
      const f = takeFault('metadata', md[1]);
      if (f?.kind === 'garbage') {
        entry.fault = 'metadata garbage';
        return send(res, entry, 200, GARBAGE, { 'content-type': 'text/html' });
      }
      if (f) {
        const status = f.kind === 'error' ? f.status : 503;
        entry.fault = `metadata ${status}`;
        return send(res, entry, status, { error: 'injected metadata failure' });
      }
      model.advance();
      const id = md[1]!;
      const rec = reserved.has(id) ? {} : model.record(id, { collections });
      const sub = (md[2] ?? '').replace(/\/$/, '');
      if (!sub) return send(res, entry, 200, rec);
      if (!Object.keys(rec).length) return send(res, entry, 200, {});
      let v: unknown = rec;
      for (const part of sub.split('/'))
        v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
      return send(res, entry, 200, v === undefined ? {} : { result: v });
    }
    if (p === '/services/tasks.php') return handleTasks(req, res, entry, url);
    if (p === '/services/check_identifier.php') {
      model.advance();
      const id = q.get('identifier') ?? '';
      const taken = reserved.has(id) || model.items.has(id) || collections.has(id);
      return send(res, entry, 200, {
        type: 'success',
        code: taken ? 'not_available' : 'available',
        message: taken
          ? 'The identifier you have chosen is not available'
          : 'The identifier you have chosen is available',
        identifier: id,
      });
    }
    if (p === '/services/user.php') {
      const c = authOf(req);
      return send(
        res,
        entry,
        c ? 200 : 401,
        c ? { success: true, value: { username: c.access, screenname: c.access } } : { success: false },
      );
    }
    const dl = /^\/download\/([^/]+)\/(.+)$/.exec(p);
    if (dl) {
      if (takeFault('download', dl[1])) return send(res, entry, 503, 'download unavailable (injected)');
      model.advance();
      const item = model.items.get(dl[1]!);
      if (!item) return send(res, entry, 404, 'Item not found');
      const nodePath = `/0/items/${encodeURIComponent(item.id)}/${dl[2]!.split('/').map(encodeURIComponent).join('/')}`;
      const location = entry.proxied ? `http://${ARCHIVE_NODE}${nodePath}` : `http://127.0.0.1:${apiPort}${nodePath}`;
      return send(res, entry, 302, '', { location });
    }
    const node = /^\/0\/items\/([^/]+)\/(.+)$/.exec(p);
    if (node) {
      model.advance();
      const item = model.items.get(node[1]!);
      const name = node[2]!;
      if (item?.torrent && name === `${item.id}_archive.torrent`) {
        return send(res, entry, 200, item.torrent.bytes, { 'content-type': 'application/x-bittorrent' });
      }
      return send(res, entry, 404, 'not stored by the emulator (only torrents are served)');
    }
    const details = /^\/details\/([^/]+)\/?$/.exec(p);
    if (details) {
      const item = model.items.get(details[1]!);
      return send(
        res,
        entry,
        item ? 200 : 404,
        item ? `<html><body><h1>${item.id}</h1></body></html>` : 'Item not found',
        { 'content-type': 'text/html' },
      );
    }
    return send(res, entry, 404, { error: 'not emulated', path: p });
  };

  const handler =
    (listenerRole: Role) =>
    (req: http.IncomingMessage, res: http.ServerResponse, expectPending = false) => {
      const hostHeader = req.headers.host ?? `127.0.0.1:${listenerRole === 's3' ? s3Port : apiPort}`;
      const proxied = /^[a-z]+:\/\//i.test(req.url ?? '');
      const url = new URL(req.url ?? '/', `http://${hostHeader}`);
      const role = roleOf(listenerRole, url, proxied);
      const { headers, accessKey } = redact(req.headers);
      const entry: JournalEntry = {
        t: now(),
        method: req.method ?? '',
        host: url.host,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        role,
        proxied,
        headers,
        accessKey,
        expect: (req.headers.expect ?? '').toLowerCase() === '100-continue',
        remotePort: req.socket.remotePort,
        bodyBytes: 0,
      };
      journal.push(entry);
      const fail = (e: unknown) => {
        if (!res.headersSent) send(res, entry, 500, { error: String(e) });
      };
      try {
        if (req.method === 'PUT' && (role === 's3' || role === 'node' || url.pathname.startsWith('/s3-put/'))) {
          return handlePut(req, res, entry, url, expectPending);
        }
        if (
          req.method === 'GET' ||
          req.method === 'HEAD' ||
          (req.method === 'POST' && url.pathname === '/services/tasks.php')
        ) {
          handleGet(role, req, res, entry, url).catch(fail);
          return;
        }
        req.resume();
        send(res, entry, 405, xmlError('MethodNotAllowed', `${req.method} is not emulated`, url.pathname));
      } catch (e) {
        fail(e);
      }
    };

  const makeServer = (role: Role) => {
    const h = handler(role);
    const server = http.createServer((req, res) => h(req, res));
    // Expect: 100-continue: the PUT handler decides between an early answer and 100 Continue.
    server.on('checkContinue', (req, res) => h(req, res, true));
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    server.keepAliveTimeout = 5000;
    return server;
  };

  const s3Server = makeServer('s3');
  const apiServer = makeServer('api');
  await new Promise<void>((r) => s3Server.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => apiServer.listen(0, '127.0.0.1', r));
  s3Port = (s3Server.address() as AddressInfo).port;
  apiPort = (apiServer.address() as AddressInfo).port;

  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      clearTimeout(lifetime);
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise<void>((r) => s3Server.close(() => r())),
        new Promise<void>((r) => apiServer.close(() => r())),
      ]);
    })());
  const lifetime = setTimeout(() => void close(), opts.lifetimeMs ?? 15 * 60_000);
  lifetime.unref();

  const fileOf = (f: SeedFile): EmuFile => {
    const content =
      f.content === undefined ? undefined : Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content);
    return {
      name: f.name,
      source: 'original',
      format: formatOf(f.name),
      size: content ? content.length : (f.size ?? 0),
      md5: content ? crypto.createHash('md5').update(content).digest('hex') : (f.md5 ?? '0'.repeat(32)),
      sha1: content ? crypto.createHash('sha1').update(content).digest('hex') : (f.sha1 ?? '0'.repeat(40)),
      crc32: content ? new Crc32().update(content).digest() : undefined,
      mtime: f.mtime ?? Math.floor(now() / 1000),
    };
  };

  const state: EmulatorState = {
    model,
    journal,
    advance: () => model.advance(),
    record: (id) => {
      model.advance();
      return model.record(id, { collections });
    },
    item: (id) => {
      model.advance();
      return model.items.get(id);
    },
    puts: (key) =>
      journal.filter(
        (e) => e.method === 'PUT' && (key === undefined || decodeURIComponent(e.path).endsWith(`/${key}`)),
      ),
    seed: (id, o) => {
      const item = model.create(id, o.owner ?? 'TESTACCESS', o.metadata ?? {});
      if (o.createdAt !== undefined) item.created = o.createdAt;
      if (o.dark) item.dark = true;
      for (const f of o.files ?? []) item.files.set(f.name, fileOf(f));
      if (o.torrent) model.makeTorrent(item, o.createdAt ?? now());
      return item;
    },
    stagePending: (id, f, o = {}) => {
      const item = model.items.get(id) ?? model.create(id, o.owner ?? 'TESTACCESS', {});
      const saved = model.opts.ingestDelayMs;
      if (o.delayMs !== undefined) model.opts.ingestDelayMs = o.delayMs;
      model.stage(item, fileOf(f), { queueDerive: false, keepOldVersion: false });
      model.opts.ingestDelayMs = saved;
    },
  };

  return {
    s3Url: `http://127.0.0.1:${s3Port}`,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    proxyUrl: `http://127.0.0.1:${apiPort}`,
    state,
    setFaults: (f) => void (faults = f.map((x) => ({ ...x, fired: 0, seen: 0 }))),
    setOptions: (o) => {
      if (o.ingestDelayMs !== undefined) model.opts.ingestDelayMs = o.ingestDelayMs;
      if (o.deriveDelayMs !== undefined) model.opts.deriveDelayMs = o.deriveDelayMs;
      if (o.deriveOutcome !== undefined) model.opts.deriveOutcome = o.deriveOutcome;
      if (o.expect !== undefined) expectMode = o.expect;
    },
    close,
  };
}

async function readBody(req: http.IncomingMessage, max = 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > max) throw new Error('request body too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

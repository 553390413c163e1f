import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A local ntfy server for the publish side of its protocol (docs.ntfy.sh/publish): POST or PUT
 * the message body to `/<topic>`, with the title, priority, tags and click URL in headers under
 * any of ntfy's names (`X-Title`, `Title`, `ti`, `t`; `X-Priority`, `Priority`, `prio`, `p`;
 * `X-Tags`, `Tags`, `tag`, `ta`; `X-Click`, `Click`) or the same names as query parameters,
 * header values as raw UTF-8 or RFC 2047 encoded words, `Authorization: Bearer <token>` when a
 * token is configured. Answers with ntfy's JSON message, or its JSON errors (400 invalid
 * priority, 401, 429 and 5xx when a fault rule says so). Records every message it accepted.
 */
export interface NtfyMessage {
  id: string;
  topic: string;
  message: string;
  title?: string;
  priority: number;
  tags: string[];
  click?: string;
  /** Set when the body was too large for a message (ntfy turns it into an attachment). */
  attachment?: { name: string; size: number };
}

export interface NtfyRequestLog {
  method: string;
  path: string;
  status: number;
  authorized: boolean;
  fault?: string;
}

export interface NtfyFault {
  status: number;
  /** Fire on at most this many requests (default: unlimited). */
  times?: number;
  retryAfter?: number;
}

export interface NtfyEmulator {
  url: string;
  /** `url` + `/` + topic. */
  topicUrl(topic: string): string;
  messages: NtfyMessage[];
  requests: NtfyRequestLog[];
  setFaults(rules: NtfyFault[]): void;
  close(): Promise<void>;
}

const MESSAGE_LIMIT = 4096;
const TOPIC = /^\/([-_A-Za-z0-9]{1,64})$/;
const PRIORITIES: Record<string, number> = { min: 1, low: 2, default: 3, high: 4, max: 5, urgent: 5 };
const ALIASES = {
  title: ['x-title', 'title', 'ti', 't'],
  priority: ['x-priority', 'priority', 'prio', 'p'],
  tags: ['x-tags', 'tags', 'tag', 'ta'],
  click: ['x-click', 'click'],
  message: ['x-message', 'message', 'm'],
};

/** Node reads header bytes as latin1; ntfy reads them as UTF-8, and decodes RFC 2047 words. */
function headerText(raw: string): string {
  return Buffer.from(raw, 'latin1')
    .toString('utf8')
    .replace(/=\?utf-8\?([bq])\?([^?]*)\?=/gi, (_, enc: string, text: string) =>
      enc.toLowerCase() === 'b'
        ? Buffer.from(text, 'base64').toString('utf8')
        : Buffer.from(
            text
              .replace(/_/g, ' ')
              .replace(/=([0-9A-Fa-f]{2})/g, (__, h: string) => String.fromCharCode(parseInt(h, 16))),
            'latin1',
          ).toString('utf8'),
    );
}

function param(req: http.IncomingMessage, query: URLSearchParams, names: string[]): string | undefined {
  for (const n of names) {
    const h = req.headers[n];
    if (typeof h === 'string') return headerText(h);
    const q = query.get(n);
    if (q !== null) return q;
  }
  return undefined;
}

const ntfyError = (status: number, code: number, error: string) => ({ status, body: { code, http: status, error } });

export async function startNtfyEmulator(opts: { token?: string; port?: number } = {}): Promise<NtfyEmulator> {
  const messages: NtfyMessage[] = [];
  const requests: NtfyRequestLog[] = [];
  let faults: { rule: NtfyFault; fired: number }[] = [];
  const sockets = new Set<Socket>();

  const handle = (req: http.IncomingMessage, body: Buffer) => {
    const u = new URL(req.url ?? '/', 'http://ntfy.invalid');
    const auth = req.headers.authorization;
    const authorized = opts.token === undefined || auth === `Bearer ${opts.token}`;
    const entry: NtfyRequestLog = { method: req.method ?? '', path: u.pathname, status: 0, authorized };
    requests.push(entry);
    const fault = faults.find((f) => f.rule.times === undefined || f.fired < f.rule.times);
    if (fault) {
      fault.fired++;
      entry.fault = `status ${fault.rule.status}`;
      const e =
        fault.rule.status === 429
          ? ntfyError(429, 42901, 'limit reached: too many requests, please be nice')
          : ntfyError(fault.rule.status, fault.rule.status * 100 + 1, 'internal server error');
      return {
        ...e,
        entry,
        headers: fault.rule.retryAfter !== undefined ? { 'retry-after': String(fault.rule.retryAfter) } : {},
      };
    }
    const topic = TOPIC.exec(u.pathname)?.[1];
    if (!topic || (req.method !== 'POST' && req.method !== 'PUT'))
      return { ...ntfyError(404, 40401, 'page not found'), entry };
    if (!authorized) return { ...ntfyError(401, 40101, 'unauthorized'), entry };
    const prio = param(req, u.searchParams, ALIASES.priority)?.trim().toLowerCase();
    const priority = prio === undefined || prio === '' ? 3 : /^[1-5]$/.test(prio) ? Number(prio) : PRIORITIES[prio];
    if (priority === undefined) return { ...ntfyError(400, 40007, 'invalid priority'), entry };
    const title = param(req, u.searchParams, ALIASES.title);
    const click = param(req, u.searchParams, ALIASES.click);
    const tags = (param(req, u.searchParams, ALIASES.tags) ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    const text = param(req, u.searchParams, ALIASES.message) ?? body.toString('utf8');
    const big = body.length > MESSAGE_LIMIT;
    const msg: NtfyMessage = {
      id: crypto.randomBytes(6).toString('base64url'),
      topic,
      message: big ? 'You received a file: attachment.txt' : text.trim(),
      ...(title ? { title } : {}),
      priority,
      tags,
      ...(click ? { click } : {}),
      ...(big ? { attachment: { name: 'attachment.txt', size: body.length } } : {}),
    };
    messages.push(msg);
    const time = Math.floor(Date.now() / 1000);
    return { status: 200, body: { ...msg, time, expires: time + 43_200, event: 'message' }, entry };
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const a = handle(req, Buffer.concat(chunks));
      a.entry.status = a.status;
      const text = `${JSON.stringify(a.body)}\n`;
      res.writeHead(a.status, { 'content-type': 'application/json', ...('headers' in a ? a.headers : {}) });
      res.end(text);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    topicUrl: (topic) => `${url}/${topic}`,
    messages,
    requests,
    setFaults(rules) {
      faults = rules.map((rule) => ({ rule, fired: 0 }));
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fault-injecting HTTP reverse proxy for reliability tests. It forwards to a real peer
 * (the loopback registry, the IA emulator) and, on the requests a rule selects, answers a
 * status (5xx/429 with Retry-After), resets the connection (before or part-way through the
 * request body), stalls, or delays. Randomised rules use a seeded PRNG so a failing run can
 * be replayed. The Host header is preserved so registries build Location URLs that point
 * back at the proxy.
 */
export type FaultAction =
  | { kind: 'status'; status: number; retryAfter?: number | string; body?: string; headers?: Record<string, string> }
  | { kind: 'reset' }
  | { kind: 'reset-after'; bytes: number }
  | { kind: 'stall'; ms?: number }
  | { kind: 'delay'; ms: number };

export interface FaultRule {
  method?: string;
  path?: RegExp;
  /** Fire on at most this many matching requests (default: unlimited). */
  times?: number;
  /** Let this many matching requests through before firing. */
  skip?: number;
  /** Fire with this probability (seeded). */
  probability?: number;
  action: FaultAction;
}

export interface ProxyLogEntry {
  /** Arrival time (ms since epoch). */
  at: number;
  method: string;
  path: string;
  status?: number;
  fault?: string;
  bytesUp: number;
}

export interface FaultProxy {
  host: string;
  url: string;
  log: ProxyLogEntry[];
  /** Request-body bytes that reached the upstream. */
  bytesUp(): number;
  /** TCP connections accepted since start or the last reset (a refused request opens none). */
  connections(): number;
  setRules(rules: FaultRule[]): void;
  reset(): void;
  close(): Promise<void>;
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function startFaultProxy(
  upstream: string,
  opts: { seed?: number; rules?: FaultRule[]; /** Listen address (default 127.0.0.1). */ address?: string } = {},
): Promise<FaultProxy> {
  const target = new URL(upstream);
  let rules: FaultRule[] = opts.rules ?? [];
  let counters = new Map<FaultRule, { seen: number; fired: number }>();
  const random = mulberry32(opts.seed ?? 42);
  const log: ProxyLogEntry[] = [];
  const sockets = new Set<import('node:net').Socket>();
  let connections = 0;

  const pick = (req: http.IncomingMessage): FaultRule | undefined => {
    for (const r of rules) {
      if (r.method && r.method !== req.method) continue;
      if (r.path && !r.path.test(req.url ?? '')) continue;
      const c = counters.get(r) ?? { seen: 0, fired: 0 };
      counters.set(r, c);
      c.seen++;
      if (r.skip !== undefined && c.seen <= r.skip) continue;
      if (r.times !== undefined && c.fired >= r.times) continue;
      if (r.probability !== undefined && random() >= r.probability) continue;
      c.fired++;
      return r;
    }
    return undefined;
  };

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, entry: ProxyLogEntry, cutAfter?: number) => {
    const up = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (ur) => {
        entry.status = ur.statusCode;
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    let sent = 0;
    req.on('data', (chunk: Buffer) => {
      if (cutAfter !== undefined && sent + chunk.length > cutAfter) {
        const part = chunk.subarray(0, Math.max(0, cutAfter - sent));
        sent += part.length;
        entry.bytesUp += part.length;
        up.write(part);
        entry.fault = `reset after ${cutAfter} bytes`;
        up.destroy();
        req.socket.destroy();
        return;
      }
      sent += chunk.length;
      entry.bytesUp += chunk.length;
      if (!up.write(chunk)) {
        req.pause();
        up.once('drain', () => req.resume());
      }
    });
    req.on('end', () => up.end());
    req.on('aborted', () => up.destroy());
  };

  const server = http.createServer((req, res) => {
    const entry: ProxyLogEntry = { at: Date.now(), method: req.method ?? '', path: req.url ?? '', bytesUp: 0 };
    log.push(entry);
    const rule = pick(req);
    const a = rule?.action;
    if (!a) return forward(req, res, entry);
    switch (a.kind) {
      case 'status': {
        entry.status = a.status;
        entry.fault = `status ${a.status}`;
        req.resume();
        const headers: Record<string, string> = { 'content-type': 'application/json', ...(a.headers ?? {}) };
        if (a.retryAfter !== undefined) headers['retry-after'] = String(a.retryAfter);
        const body =
          a.body ??
          JSON.stringify({
            errors: [{ code: a.status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', message: `injected ${a.status}` }],
          });
        res.writeHead(a.status, headers);
        res.end(body);
        return;
      }
      case 'reset':
        entry.fault = 'reset';
        req.socket.destroy();
        return;
      case 'reset-after':
        return forward(req, res, entry, a.bytes);
      case 'stall':
        entry.fault = 'stall';
        req.resume();
        if (a.ms !== undefined) setTimeout(() => req.socket.destroy(), a.ms).unref();
        return;
      case 'delay':
        entry.fault = `delay ${a.ms}`;
        setTimeout(() => forward(req, res, entry), a.ms);
        return;
    }
  });
  server.on('connection', (s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 5000;
  const address = opts.address ?? '127.0.0.1';
  await new Promise<void>((r) => server.listen(0, address, r));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `${address}:${port}`,
    url: `http://${address}:${port}`,
    log,
    bytesUp: () => log.reduce((n, e) => n + e.bytesUp, 0),
    connections: () => connections,
    setRules(r) {
      rules = r;
      counters = new Map();
    },
    reset() {
      log.length = 0;
      connections = 0;
      counters = new Map();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

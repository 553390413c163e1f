import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { sh, tmpdir } from './tools.js';

/**
 * Small HTTP servers for the transport tests: each records every request it receives (method,
 * path, headers) and answers through a handler, so a test can assert what reached a host, and
 * in particular that nothing (or no Authorization header) did.
 */
export interface Recorded {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** 'http' or 'https': how the request arrived. */
  scheme: string;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, scheme: string) => void;

export interface RecordingServer {
  port: number;
  requests: Recorded[];
  /** TCP connections accepted (a client refused before sending opens none). */
  connections(): number;
  close(): Promise<void>;
}

/** A self-signed certificate for 127.0.0.1 and localhost (PEM files). */
export function selfSignedCert(): { keyPath: string; certPath: string } {
  const dir = tmpdir('keel-tls-');
  const keyPath = path.join(dir, 'key.pem');
  const certPath = path.join(dir, 'cert.pem');
  sh('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '2',
    '-subj',
    '/CN=keel-test',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return { keyPath, certPath };
}

/**
 * Listens on `address` (default 127.0.0.1). With `tls`, one port speaks both https and plain
 * http (told apart by the first byte), so a redirect from https://H:P to http://H:P changes the
 * scheme and nothing else.
 */
export async function startRecordingServer(
  handler: Handler,
  opts: { address?: string; tls?: { keyPath: string; certPath: string } } = {},
): Promise<RecordingServer> {
  const requests: Recorded[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const wrap = (scheme: string) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, scheme });
    handler(req, res, scheme);
  };
  const plain = http.createServer(wrap('http'));
  const secure = opts.tls
    ? https.createServer(
        { key: fs.readFileSync(opts.tls.keyPath), cert: fs.readFileSync(opts.tls.certPath) },
        wrap('https'),
      )
    : undefined;
  const front = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      // 0x16: a TLS handshake record.
      (first[0] === 0x16 && secure ? secure : plain).emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
  });
  await new Promise<void>((r) => front.listen(0, opts.address ?? '127.0.0.1', r));
  return {
    port: (front.address() as AddressInfo).port,
    requests,
    connections: () => connections,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        front.close(() => r());
      }),
  };
}

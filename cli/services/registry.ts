import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from './net.js';

/**
 * A real CNCF distribution registry (`docker-registry`, 2.8) on a free loopback port with a
 * temporary storage directory, optionally behind htpasswd basic auth or token (Bearer) auth.
 * One per test suite or local run; `stop()` kills it and removes its storage (unless kept).
 */
export interface Registry {
  /** host:port, e.g. 127.0.0.1:41234 */
  host: string;
  url: string;
  port: number;
  storage: string;
  username?: string;
  password?: string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  htpasswd?: { username: string; password: string };
  /** Token auth: the realm URL of a token server and its signing certificate bundle. */
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-registry-'));
  const storage = path.join(dir, 'data');
  fs.mkdirSync(storage);
  let auth = '';
  if (opts.htpasswd) {
    const r = spawnSync('htpasswd', ['-Bbn', opts.htpasswd.username, opts.htpasswd.password], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`htpasswd failed: ${r.stderr}`);
    fs.writeFileSync(path.join(dir, 'htpasswd'), r.stdout);
    auth = `auth:\n  htpasswd:\n    realm: keel-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
  } else if (opts.token) {
    auth = `auth:\n  token:\n    realm: ${opts.token.realm}\n    service: ${opts.token.service}\n    issuer: ${opts.token.issuer}\n    rootcertbundle: ${opts.token.rootCertBundle}\n`;
  }
  const config = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
  secret: keel-test-secret
${auth}`;
  const cfg = path.join(dir, 'config.yml');
  fs.writeFileSync(cfg, config);
  const child = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  let log = '';
  child.stderr?.on('data', (d: Buffer) => void (log += d.toString()));
  const host = `127.0.0.1:${port}`;
  try {
    await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          const req = http.get(`http://${host}/v2/`, (res) => {
            res.resume();
            resolve(res.statusCode === 200 || res.statusCode === 401);
          });
          req.on('error', () => resolve(false));
        }),
      15_000,
      `docker-registry on ${host} (${log.trim().slice(-500)})`,
    );
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return {
    host,
    port,
    url: `http://${host}`,
    storage,
    username: opts.htpasswd?.username,
    password: opts.htpasswd?.password,
    async stop() {
      running.delete(child);
      if (child.exitCode === null) {
        const done = new Promise((r) => child.once('close', r));
        child.kill('SIGTERM');
        let t: NodeJS.Timeout | undefined;
        await Promise.race([done, new Promise((r) => (t = setTimeout(r, 3000)))]);
        clearTimeout(t);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

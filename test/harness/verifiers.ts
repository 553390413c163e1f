import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Independent signature verifiers for the sign hop: skopeo 1.18 + cosign 2.5 (Debian 13) and,
 * with `sid`, skopeo 1.22 + cosign 3.x (Debian unstable), fetched once from Debian's signed
 * archive into a private cache by scripts/fetch-verifiers.sh (idempotent; re-runs are instant).
 * Debian 12's own skopeo cannot verify sigstore signatures (patched out), so the tests must use
 * these.
 */
export interface Verifiers {
  bin: string;
  skopeo: string;
  cosign: string;
  /** Present when fetched with sid. */
  skopeoSid?: string;
  cosign3?: string;
}

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const script = path.join(root, 'scripts', 'fetch-verifiers.sh');
const cache: Partial<Record<'trixie' | 'sid', Verifiers>> = {};

/** Fetches (cached) the verifiers; `sid: true` adds skopeo 1.22 and cosign 3. Throws if impossible. */
export function fetchVerifiers(opts: { sid?: boolean } = {}): Verifiers {
  const k = opts.sid ? 'sid' : 'trixie';
  const hit = cache[k];
  if (hit) return hit;
  if (!fs.existsSync(script)) throw new Error(`verifier fetch script not found at ${script}`);
  const r = spawnSync('bash', [script, ...(opts.sid ? ['--with-sid'] : [])], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`fetch-verifiers.sh failed (${r.status}): ${r.stderr.slice(-2000)}`);
  cache[k] = verifiersIn(r.stdout.trim().split('\n').pop()!.trim(), opts.sid ?? false);
  return cache[k];
}

function verifiersIn(bin: string, sid: boolean): Verifiers {
  const v: Verifiers = { bin, skopeo: path.join(bin, 'skopeo'), cosign: path.join(bin, 'cosign') };
  if (sid) {
    v.skopeoSid = path.join(bin, 'skopeo-sid');
    v.cosign3 = path.join(bin, 'cosign3');
  }
  for (const p of [v.skopeo, v.cosign, v.skopeoSid, v.cosign3]) {
    if (p && !fs.existsSync(p)) throw new Error(`no verifier at ${p}`);
  }
  return v;
}

export interface ToolResult {
  ok: boolean;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a verifier (argv only); never throws on a non-zero exit (tests assert on `ok`). */
export function runTool(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {},
): ToolResult {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    env: { ...process.env, ...(opts.env ?? {}) },
    input: opts.input,
    cwd: opts.cwd,
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { ok: r.status === 0, code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/**
 * `cosign verify --key` offline (no Rekor, plain-HTTP loopback registry). HOME is a scratch dir
 * so cosign never touches the user's TUF cache. Extra args go before the image.
 */
export function cosignVerify(
  cosign: string,
  image: string,
  keyPath: string,
  home: string,
  extra: string[] = [],
): ToolResult {
  return runTool(
    cosign,
    ['verify', '--key', keyPath, '--insecure-ignore-tlog=true', '--allow-http-registry', ...extra, image],
    {
      env: { HOME: home },
    },
  );
}

/**
 * What a bootc/rpm-ostree/podman client does: `skopeo copy` under a policy.json and a
 * registries.d dir. Accepted ⇔ exit 0 (assert on the exit code, not on the destination).
 */
export function skopeoPolicyCopy(
  skopeo: string,
  opts: { policy: string; registriesD: string; image: string; dest: string },
): ToolResult {
  fs.rmSync(opts.dest, { recursive: true, force: true });
  return runTool(skopeo, [
    '--policy',
    opts.policy,
    '--registries.d',
    opts.registriesD,
    'copy',
    '-q',
    '--src-tls-verify=false',
    `docker://${opts.image}`,
    `dir:${opts.dest}`,
  ]);
}

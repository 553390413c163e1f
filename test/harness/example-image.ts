import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BOOTSTRAP_SCRIPT, bootstrapArgs } from '../../actions/build/src/base-bootstrap.js';
import { buildImage } from '../../actions/build/src/build.js';
import { inputsDigest } from '../../actions/build/src/inputs-digest.js';
import { contextFromEnv } from '../../actions/lib/context.js';
import { loadDeclarations, type Distro } from '../../actions/lib/declarations.js';
import { processRunner } from '../../actions/lib/exec.js';
import type { Logger } from '../../actions/lib/log.js';

/**
 * The example distro's images for tests: `ensureBaseImage()` (the Debian base, built by
 * build_files/base/bootstrap.sh) and `ensureExampleImage()` (the Containerfile built by the
 * build action's own logic). Each is built once per machine and reused while its inputs are
 * unchanged; several jest workers (or agents) may call them at once: a cross-process lock file
 * serialises the builds, and everyone else waits and then reuses the result.
 *
 * Cold: about 1.5 min (base) + 1.5 min (example) + OCI export. Warm: well under a second plus
 * an existence check. Callers give their beforeAll a generous timeout (e.g. 20 min).
 *
 * The cache lives outside the repository: $KEEL_CACHE_DIR, else $XDG_CACHE_HOME/keel, else
 * /var/tmp/keel-cache. Build logs: <cache>/logs/. Needs root (mmdebstrap, buildah mount).
 */
export interface ExampleImage {
  /** The local name, e.g. localhost/keel-os:cache-<hash>. */
  name: string;
  /** containers-storage:<name>, for the actions' image inputs. */
  localRef: string;
  /** An OCI image layout export of the image (gzip layers, as skopeo writes them), tag `latest`; '' with { oci: false }. */
  ociDir: string;
  /** oci:<ociDir>:latest */
  ociRef: string;
  kernelVersion: string;
  imageId: string;
  labels: Record<string, string>;
}

export const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

export function cacheRoot(): string {
  if (process.env.KEEL_CACHE_DIR) return process.env.KEEL_CACHE_DIR;
  if (process.env.XDG_CACHE_HOME) return path.join(process.env.XDG_CACHE_HOME, 'keel');
  return '/var/tmp/keel-cache';
}

/** The example's tag prefix: every build of a different input set gets its own tag. */
export const EXAMPLE_REPO = 'localhost/keel-os';
const HASH_LABEL = 'dev.keel.test.input-hash';
/** Bump when the way this helper builds changes in a way the input hash cannot see. */
const HELPER_VERSION = '1';

function run(cmd: string, args: string[], opts: { timeoutMs?: number; okCodes?: number[] } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: opts.timeoutMs });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (!(opts.okCodes ?? [0]).includes(r.status ?? -1)) {
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim().split('\n').slice(-20).join('\n')}`,
    );
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Cross-process lock

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` holding an exclusive lock file (O_EXCL create). A lock whose owner process is gone
 * (killed test run) is broken; otherwise waiters poll until the owner releases it.
 */
export async function withLock<T>(name: string, fn: () => Promise<T>, timeoutMs = 60 * 60 * 1000): Promise<T> {
  const dir = path.join(cacheRoot(), 'locks');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.lock`);
  const token = `${process.pid} ${os.hostname()} ${crypto.randomUUID()}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.writeFileSync(file, token, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = '';
    try {
      owner = fs.readFileSync(file, 'utf8');
    } catch {
      continue; // released between our create and our read: try again
    }
    const [pid, host] = owner.split(' ');
    if (owner && host === os.hostname() && !pidAlive(Number(pid))) {
      // The owner died holding it. Remove it only if it is still that owner's file.
      try {
        if (fs.readFileSync(file, 'utf8') === owner) fs.rmSync(file);
      } catch {
        /* someone else broke it first */
      }
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for lock ${file} (held by: ${owner})`);
    await new Promise((r) => setTimeout(r, 500));
  }
  try {
    return await fn();
  } finally {
    try {
      if (fs.readFileSync(file, 'utf8') === token) fs.rmSync(file);
    } catch {
      /* already gone */
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function declarations(): Distro {
  return loadDeclarations(path.join(repoRoot, 'declarations', 'distro.yaml'));
}

interface LocalImage {
  id: string;
  labels: Record<string, string>;
}

function inspectLocal(ref: string): LocalImage | undefined {
  const r = run('buildah', ['inspect', '--type', 'image', ref], { okCodes: [0, 1, 125] });
  if (r.status !== 0) return undefined;
  const j = JSON.parse(r.stdout) as {
    FromImageID: string;
    OCIv1?: { config?: { Labels?: Record<string, string> | null } };
  };
  return { id: j.FromImageID, labels: j.OCIv1?.config?.Labels ?? {} };
}

/** Exports an image (by ID, so a moved tag cannot race) to a cached OCI layout. */
function exportOci(imageId: string): string {
  const dir = path.join(cacheRoot(), 'oci', imageId);
  if (fs.existsSync(path.join(dir, '.complete'))) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  run('skopeo', ['copy', '-q', `containers-storage:${imageId}`, `oci:${tmp}:latest`], { timeoutMs: 15 * 60 * 1000 });
  fs.writeFileSync(path.join(tmp, '.complete'), new Date().toISOString());
  fs.renameSync(tmp, dir);
  return dir;
}

function fileLogger(file: string): Logger & { tail(): string } {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'w');
  const last: string[] = [];
  const w = (level: string) => (m: string) => {
    fs.writeSync(fd, `${level === 'info' ? '' : `${level}: `}${m}\n`);
    last.push(m);
    if (last.length > 60) last.shift();
  };
  return { info: w('info'), warning: w('warning'), error: w('error'), debug: () => {}, tail: () => last.join('\n') };
}

function handle(name: string, img: LocalImage, kernelVersion: string, oci: boolean): ExampleImage {
  const ociDir = oci ? exportOci(img.id) : '';
  return {
    name,
    localRef: `containers-storage:${name}`,
    ociDir,
    ociRef: ociDir ? `oci:${ociDir}:latest` : '',
    kernelVersion,
    imageId: img.id,
    labels: img.labels,
  };
}

// ---------------------------------------------------------------------------------------------
// The base

async function ensureBase(oci: boolean): Promise<ExampleImage> {
  const decl = declarations();
  const name = decl.base.image;
  return withLock('keel-os-base', async () => {
    const script = path.join(repoRoot, BOOTSTRAP_SCRIPT);
    const args = bootstrapArgs(decl);
    if (!args) throw new Error('declarations base.bootstrap is missing: the example base cannot be built locally');
    const log = path.join(cacheRoot(), 'logs', 'base-bootstrap.log');
    fs.mkdirSync(path.dirname(log), { recursive: true });
    const r = spawnSync('bash', [script, ...args], {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
      timeout: 30 * 60 * 1000,
    });
    fs.writeFileSync(log, `${r.stderr}\n${r.stdout}`);
    if (r.status !== 0) {
      throw new Error(
        `base bootstrap failed (${r.status ?? r.error?.message}); log ${log}:\n${r.stderr.trim().split('\n').slice(-30).join('\n')}`,
      );
    }
    const img = inspectLocal(name);
    if (!img) throw new Error(`bootstrap succeeded but ${name} is not in containers-storage`);
    const kver = img.labels['ostree.linux'];
    if (!kver) throw new Error(`${name} has no ostree.linux label`);
    return handle(name, img, kver, oci);
  });
}

/** The Debian base (declarations base.image), built by build_files/base/bootstrap.sh when stale. */
export function ensureBaseImage(opts: { oci?: boolean } = {}): Promise<ExampleImage> {
  return ensureBase(opts.oci ?? true);
}

// ---------------------------------------------------------------------------------------------
// The example image

/** The cache key of the example: its declared build inputs, the base it builds from, the build logic. */
function exampleHash(decl: Distro, baseId: string): string {
  const h = crypto.createHash('sha256');
  h.update(`helper ${HELPER_VERSION}\n`);
  h.update(`inputs ${inputsDigest(repoRoot, decl.build.inputs).digest}\n`);
  h.update(`base ${baseId}\n`);
  h.update(`action ${inputsDigest(repoRoot, ['actions/build/src/**']).digest}\n`);
  return h.digest('hex');
}

/**
 * The example distro image, built from the repository's Containerfile by the build action's
 * logic (same labels, build-args, two-pass ostree.linux) and cached by its inputs.
 */
export async function ensureExampleImage(opts: { oci?: boolean } = {}): Promise<ExampleImage> {
  const base = await ensureBase(false);
  const decl = declarations();
  const hash = exampleHash(decl, base.imageId);
  const name = `${EXAMPLE_REPO}:cache-${hash.slice(0, 16)}`;
  return withLock('keel-os-example', async () => {
    let img = inspectLocal(name);
    if (!img || img.labels[HASH_LABEL] !== hash || !img.labels['ostree.linux']) {
      const logFile = path.join(cacheRoot(), 'logs', `example-${hash.slice(0, 16)}.log`);
      const log = fileLogger(logFile);
      const runnerTemp = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-example-'));
      try {
        await buildImage(
          {
            containerfile: path.join(repoRoot, decl.build.containerfile),
            context: path.join(repoRoot, decl.build.context),
            image: name,
            tags: [],
            baseImage: '',
            buildArgs: {},
            labels: { [HASH_LABEL]: hash },
            storageDriver: 'overlay',
            isolation: 'chroot',
            declarations: decl,
            registry: {},
          },
          {
            runner: processRunner(log),
            log,
            context: { ...contextFromEnv({}), workspace: repoRoot, runnerTemp, repository: 'keel-project/keel' },
          },
        );
      } catch (e) {
        throw new Error(`building the example image failed (log ${logFile}): ${(e as Error).message}\n${log.tail()}`);
      } finally {
        fs.rmSync(runnerTemp, { recursive: true, force: true });
      }
      img = inspectLocal(name);
      if (!img) throw new Error(`built ${name} but cannot find it in containers-storage`);
      pruneOlder(name);
    }
    return handle(name, img, img.labels['ostree.linux']!, opts.oci ?? true);
  });
}

/** Removes older cached example tags (other input hashes); images still in use stay. */
function pruneOlder(current: string): void {
  const r = run('buildah', ['images', '--format', '{{.Name}}:{{.Tag}}'], { okCodes: [0, 1, 125] });
  for (const ref of r.stdout.split('\n').map((l) => l.trim())) {
    if (!ref.startsWith(`${EXAMPLE_REPO}:cache-`) || ref === current) continue;
    const id = inspectLocal(ref)?.id;
    spawnSync('buildah', ['rmi', ref], { encoding: 'utf8' });
    if (id) fs.rmSync(path.join(cacheRoot(), 'oci', id), { recursive: true, force: true });
  }
}

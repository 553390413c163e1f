// What each hop's bundle (dist/<hop>/index.js) is built from, and the record of what it was
// last built from: scripts/bundle.mjs writes the record, the integration tests' global setup
// (test/global-setup.js) rebuilds every hop whose sources differ from it. The record lives in
// node_modules/.cache (per checkout, never committed).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const recordDir = path.join(root, 'node_modules', '.cache', 'keel-bundles');
/** Inputs of every bundle besides its own import graph. */
const SHARED_INPUTS = ['package-lock.json', 'scripts/bundle.mjs', 'scripts/bundle-inputs.mjs', 'tsconfig.json'];

/** Every hop with a bundle entry, actions/<hop>/src/index.ts. */
export function bundledHops() {
  const dir = path.join(root, 'actions');
  return fs
    .readdirSync(dir)
    .filter((d) => fs.existsSync(path.join(dir, d, 'src', 'index.ts')))
    .sort();
}

/** The `keel` command's bundle, dist/cli/index.js: what an installed Keel runs (bin/keel.js). */
export const CLI_BUNDLE = 'cli';

/** Every bundle under dist/: the hops and the CLI. */
export function bundleNames() {
  return [...bundledHops(), CLI_BUNDLE];
}

/** The source a bundle is built from. */
export function bundleEntry(name) {
  return name === CLI_BUNDLE ? path.join(root, 'cli', 'keel.ts') : path.join(root, 'actions', name, 'src', 'index.ts');
}

/** The repository files reachable from `entry` through relative imports (static and dynamic). */
export function importGraph(entry) {
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file) || !fs.existsSync(file)) return;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = path.resolve(path.dirname(file), m[1]);
      const candidates = [target.replace(/\.js$/, '.ts'), target, `${target}.ts`];
      visit(candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile()) ?? target);
    }
  };
  visit(entry);
  return [...seen].sort();
}

/** A hash over the paths and contents of a bundle's inputs (a hop, or the CLI). */
export function bundleInputsHash(hop) {
  const files = [...importGraph(bundleEntry(hop)), ...SHARED_INPUTS.map((f) => path.join(root, f))];
  const h = crypto.createHash('sha256');
  for (const f of files) {
    h.update(`${path.relative(root, f)}\0`);
    h.update(fs.existsSync(f) ? fs.readFileSync(f) : '');
    h.update('\0');
  }
  return h.digest('hex');
}

export function recordBundle(hop, hash) {
  fs.mkdirSync(recordDir, { recursive: true });
  fs.writeFileSync(path.join(recordDir, `${hop}.sha256`), `${hash}\n`);
}

function recorded(hop) {
  try {
    return fs.readFileSync(path.join(recordDir, `${hop}.sha256`), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The hops whose bundle is missing or was last built from other sources. */
export function staleBundles() {
  return bundleNames().filter(
    (hop) => !fs.existsSync(path.join(root, 'dist', hop, 'index.js')) || recorded(hop) !== bundleInputsHash(hop),
  );
}

/** Runs `fn` holding this checkout's bundle lock (two runs at once must not write dist/ together). */
export async function withBundleLock(fn) {
  fs.mkdirSync(recordDir, { recursive: true });
  const lock = path.join(recordDir, 'lock');
  for (let waited = 0; ; waited += 500) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      const since = fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now();
      if (Date.now() - since > 10 * 60_000) fs.rmSync(lock, { recursive: true, force: true }); // a crashed run's
      if (waited > 10 * 60_000) throw new Error(`bundle lock ${lock} held for more than 10 minutes`);
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

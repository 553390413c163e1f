#!/usr/bin/env node
// Bundles every hop (actions/<hop>/src/index.ts) into dist/<hop>/index.js, and the keel command
// (cli/keel.ts) into dist/cli/index.js, with @vercel/ncc.
// Output is deterministic: same sources, same bytes (checked by `npm run check` and a test).
// Usage: node scripts/bundle.mjs [hop|cli ...]   (no args: every bundle)
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { bundleEntry, bundleInputsHash, bundleNames, recordBundle, root } from './bundle-inputs.mjs';

const require = createRequire(import.meta.url);
const ncc = require('@vercel/ncc');

const all = bundleNames();
const hops = process.argv.slice(2).length ? process.argv.slice(2) : all;

if (!process.argv.slice(2).length) {
  // Full rebuild: drop bundles of hops that no longer exist.
  for (const d of fs.existsSync(path.join(root, 'dist')) ? fs.readdirSync(path.join(root, 'dist')) : []) {
    if (!all.includes(d)) fs.rmSync(path.join(root, 'dist', d), { recursive: true, force: true });
  }
}

for (const hop of hops) {
  const entry = bundleEntry(hop);
  const inputsHash = bundleInputsHash(hop); // before bundling: an edit during the build counts as stale
  const t0 = Date.now();
  const { code, assets } = await ncc(entry, {
    minify: false,
    sourceMap: false,
    quiet: true,
    cache: false,
    license: 'licenses.txt',
    // Type checking is `npm run typecheck` (whole project, strict); bundling only transpiles.
    transpileOnly: true,
  });
  const out = path.join(root, 'dist', hop);
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'index.js'), code);
  for (const [name, asset] of Object.entries(assets ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    const p = path.join(out, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, asset.source, { mode: asset.permissions });
  }
  recordBundle(hop, inputsHash);
  process.stderr.write(
    `bundled ${hop} → dist/${hop}/index.js (${(code.length / 1024).toFixed(0)} KiB, ${Date.now() - t0} ms)\n`,
  );
}

/**
 * Global setup of the integration project. Integration tests run the hops' dist/ bundles the way
 * the runner does, so every bundle must hold the current source: a hop whose bundle inputs (its
 * import graph, the lock file, the bundler) differ from those it was last bundled from is bundled
 * again first (scripts/bundle-inputs.mjs). ncc is deterministic: rebuilding a fresh bundle writes
 * the same bytes, so dist/ stays what `npm run check` expects. Only the stale hops are rebuilt,
 * so a run after an edit to one hop's code costs seconds, not the whole bundle step.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { root, staleBundles, withBundleLock } from '../scripts/bundle-inputs.mjs';

export default async function globalSetup() {
  await withBundleLock(() => {
    const stale = staleBundles();
    if (!stale.length) return;
    process.stderr.write(`\nintegration tests: bundling ${stale.join(', ')} (sources differ from the last bundle)\n`);
    // bundle.mjs records what each bundle was built from.
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'bundle.mjs'), ...stale], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`scripts/bundle.mjs ${stale.join(' ')} failed (exit ${r.status})`);
  });
}

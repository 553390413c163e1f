// test-kind: integration
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { withLock } from '../harness/example-image.js';
import { keelHop, readWorkflow } from '../workflows/helpers.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** The Keel hops of the generated workflows `keel demo` runs. */
function demoHops(): string[] {
  const hops = ['build.yml', 'smoke-boot.yml', 'build-disk.yml', 'sysext.yml', 'cleanup.yml'].flatMap((f) =>
    Object.values(readWorkflow(f).jobs).flatMap((j) => j.steps.map((s) => keelHop(s.uses) ?? [])),
  );
  return [...new Set(hops.flat())].sort();
}

/**
 * `npm run demo` end to end: the generated workflows, run locally through the committed
 * bundles, must take the example distro from sources to a promoted, signed, booted :stable,
 * an ISO on the (emulated) Internet Archive and a site PR. The demo checks its end state itself
 * (stable digest = booted digest, signature verifies); this test holds it to that.
 */
describe('npm run demo', () => {
  it(
    'ships the example distro end to end',
    async () => {
      const r = await withLock('vm', async () =>
        spawnSync(process.execPath, [path.join(root, 'bin/keel.js'), 'demo'], {
          cwd: root,
          encoding: 'utf8',
          maxBuffer: 1 << 26,
          timeout: 50 * 60 * 1000,
        }),
      );
      const out = `${r.stdout}\n${r.stderr}`;
      expect([r.status, out.slice(-4000)]).toEqual([0, expect.any(String)]);
      expect(out).toMatch(/booted digest\s+sha256:[0-9a-f]{64}\s+\(same: promoted exactly what booted\)/);
      expect(out).toMatch(/signature\s+verified \(\d+ legacy signature/);
      // The SBOMs and the provenance of :stable, and the signed checksums of the ISO, checked by the real cosign.
      for (const type of ['cyclonedx', 'spdxjson', 'slsaprovenance1', 'SHA256SUMS\\.sig'])
        expect(out).toMatch(new RegExp(`${type} \\(cosign\\)\\s+verified`));
      // Every hop of the workflows the demo runs reports its step done.
      for (const hop of demoHops()) {
        expect([hop, new RegExp(`✔ ${hop.replace('-', '\\-')}\\s`).test(out)]).toEqual([hop, true]);
      }
      expect(out).toMatch(/torrent-ready=true/);
      expect(out).toMatch(/result=created/);
      expect(out).toMatch(/cleanup dry run\s+stable untouched/);
      expect(out).toMatch(/✔ local pipeline complete/);
    },
    60 * 60 * 1000,
  );
});

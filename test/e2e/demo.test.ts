// test-kind: integration
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { withLock } from '../harness/example-image.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

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
      for (const hop of [
        'build',
        'validate',
        'rechunk',
        'push',
        'sign',
        'verify',
        'smoke-boot',
        'promote',
        'resolve',
        'build-disk',
        'ia-upload',
        'site-bump',
      ]) {
        expect([hop, new RegExp(`✔ ${hop.replace('-', '\\-')}\\s`).test(out)]).toEqual([hop, true]);
      }
      expect(out).toMatch(/torrent-ready=true/);
      expect(out).toMatch(/result=created/);
      expect(out).toMatch(/✔ local pipeline complete/);
    },
    60 * 60 * 1000,
  );
});

// test-kind: integration
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
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
      expectUpdateTested(out);
      expect(out).toMatch(/notification\s+sent: Promoted: /);
      expect(out).toMatch(/GitHub Release\s+stable\.\d{8}, the changelog as its notes/);
      expect(out).toMatch(/✔ local pipeline complete/);
    },
    60 * 60 * 1000,
  );
});

interface RecordedStep {
  outputs: Record<string, string>;
  summary?: string;
}
interface RecordedRun {
  id: string;
  workflow: string;
  jobs: Record<string, { steps: Record<string, RecordedStep> }>;
}

/**
 * The demo's two release cycles, read back from the run records it wrote: the first had no
 * stable to update from (a skip), the second updated a machine on the first's stable to the new
 * build (another ostree commit, seen from inside), kept /etc and /var, and rolled back to the
 * same previous commit.
 */
function expectUpdateTested(out: string): void {
  expect(out).toMatch(/update test\s+updated [0-9a-f]{12} → [0-9a-f]{12} \(\/etc and \/var kept\), rolled back/);
  const runsDir = path.join(root, '.keel', 'runs');
  const mtime = (id: string) => fs.statSync(path.join(runsDir, id, 'run.json')).mtimeMs;
  const smokeRuns = fs
    .readdirSync(runsDir)
    .map((id) => path.join(runsDir, id, 'run.json'))
    .filter((f) => fs.existsSync(f))
    .map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as RecordedRun)
    .filter((r) => r.workflow === 'smoke-boot.yml')
    .sort((a, b) => mtime(a.id) - mtime(b.id));
  const [first, second] = smokeRuns.slice(-2).map((r) => r.jobs.boot!.steps.update!.outputs);
  expect([first!.passed, first!.skipped]).toEqual(['true', 'true']);
  expect([second!.passed, second!.skipped]).toEqual(['true', 'false']);
  const boots = JSON.parse(second!.boots!) as { role: string; passed: boolean; commit: string; proved: string[] }[];
  expect(boots.map((b) => [b.role, b.passed])).toEqual([
    ['previous', true],
    ['candidate', true],
    ['previous', true],
  ]);
  expect(boots[1]!.commit).not.toBe(boots[0]!.commit);
  expect(boots[2]!.commit).toBe(boots[0]!.commit);
  expect(boots[1]!.proved.join('\n')).toMatch(
    /the local \/etc changes survived the 3-way merge\n.*\/var data is there/,
  );
  // The evidence a maintainer reads: the table of the three boots, and every boot's console.
  const step = smokeRuns.at(-1)!.jobs.boot!.steps.update!;
  expect(step.summary).toMatch(/\| boot \| deployment \| verdict \| multi-user \| time \| what it proved \|/);
  expect(step.summary).toMatch(/Signatures: previous: verified .*; candidate: verified/);
  const consoles = fs.readFileSync(second!['serial-log']!, 'utf8');
  expect(consoles).toMatch(
    /===== boot 1 \(previous\)[\s\S]*===== boot 2 \(candidate\)[\s\S]*===== boot 3 \(previous\)/,
  );
  expect(consoles).toMatch(/Finished ostree-prepare-root\.service[\s\S]*ostree-finalize-staged/);
}

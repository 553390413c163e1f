// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The client-side staleness check shipped in the image (/usr/bin/keel-os-staleness, run by a
 * user timer): it compares the image's own creation label, stamped at build time into
 * /usr/lib/keel/image-info.env, with the clock, and warns past the declared number of days.
 * Run here on the host against fixture info files (it is plain POSIX sh + GNU date).
 */
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const script = path.join(root, 'build_files/system_files/usr/bin/keel-os-staleness');
const userUnits = path.join(root, 'build_files/system_files/usr/lib/systemd/user');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-staleness-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const DAY = 86400;
const created = Date.parse('2025-01-01T00:00:00Z') / 1000;

function info(content: string): string {
  const f = path.join(dir, `info-${Math.random().toString(36).slice(2)}.env`);
  fs.writeFileSync(f, content);
  return f;
}
function check(file: string, nowEpoch: number, env: Record<string, string> = {}) {
  const r = spawnSync('sh', [script], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', KEEL_IMAGE_INFO: file, KEEL_NOW: String(nowEpoch), ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const stamp = info(
  '# stamp\nIMAGE_CREATED=2025-01-01T00:00:00Z\nIMAGE_VERSION=candidate.20250101\nSTALENESS_WARN_DAYS=14\n',
);

describe('keel-os-staleness', () => {
  it('is quiet (exit 0) while the image is younger than the policy', () => {
    const r = check(stamp, created + 13 * DAY + 3600);
    expect(r).toEqual({
      code: 0,
      stdout: 'keel-os-staleness: image built 13 days ago (2025-01-01T00:00:00Z), within the 14-day policy\n',
      stderr: '',
    });
  });

  it('warns (exit 1) from the declared number of days on, naming the age and the version', () => {
    const r = check(stamp, created + 14 * DAY);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'keel-os-staleness: warning: This system runs an image built 14 days ago (2025-01-01T00:00:00Z, version candidate.20250101); ' +
        'new images are expected at least every 14 days. Check that updates arrive (bootc status, bootc upgrade).\n',
    );
  });

  it('reads the threshold from the stamp, not a constant', () => {
    const f = info('IMAGE_CREATED=2025-01-01T00:00:00Z\nSTALENESS_WARN_DAYS=3\n');
    expect(check(f, created + 2 * DAY).code).toBe(0);
    expect(check(f, created + 3 * DAY).code).toBe(1);
  });

  it('logs at warning priority when run by systemd (journal stream)', () => {
    const r = check(stamp, created + 30 * DAY, { JOURNAL_STREAM: '8:1234' });
    expect(r.code).toBe(1);
    expect(r.stderr.startsWith('<4>keel-os-staleness: This system runs an image built 30 days ago')).toBe(true);
  });

  it('exits 2 when the age cannot be told (missing stamp, bad time)', () => {
    expect(check(path.join(dir, 'missing.env'), created).code).toBe(2);
    const bad = check(info('IMAGE_CREATED=yesterday-ish\nSTALENESS_WARN_DAYS=14\n'), created);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("IMAGE_CREATED 'yesterday-ish'");
  });

  it('is enabled for every user by a user timer under /usr (no per-user or /etc setup)', () => {
    const timer = fs.readFileSync(path.join(userUnits, 'keel-os-staleness.timer'), 'utf8');
    const service = fs.readFileSync(path.join(userUnits, 'keel-os-staleness.service'), 'utf8');
    expect(timer).toMatch(/^\[Timer\][\s\S]*OnUnitActiveSec=/m);
    expect(timer).toMatch(/^WantedBy=timers\.target$/m);
    expect(service).toMatch(/^ExecStart=\/usr\/bin\/keel-os-staleness$/m);
    expect(service).toMatch(/^SuccessExitStatus=1$/m);
    expect(fs.readlinkSync(path.join(userUnits, 'timers.target.wants', 'keel-os-staleness.timer'))).toBe(
      '../keel-os-staleness.timer',
    );
    expect(fs.statSync(script).mode & 0o111).not.toBe(0);
  });
});

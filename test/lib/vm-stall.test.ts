// test-kind: integration
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { memoryLogger } from '../../actions/lib/log.js';
import { bootAndWatch, bootWithRetry, startSwtpm, type QemuSpec } from '../../actions/lib/vm/qemu.js';
import { VerdictMatcher } from '../../actions/lib/vm/verdict.js';
import { processesMatching, tmpdir } from '../harness/tools.js';

/** A 512-byte boot sector running `code` (real mode) after SeaBIOS; the console stays silent. */
function bootSector(dir: string, name: string, code: number[]): string {
  const b = Buffer.alloc(512);
  Buffer.from(code).copy(b);
  b[510] = 0x55;
  b[511] = 0xaa;
  const f = path.join(dir, name);
  fs.writeFileSync(f, b);
  return f;
}

const spec = (disk: string): QemuSpec => ({
  accel: 'tcg',
  machine: 'pc',
  memoryMiB: 64,
  cpus: 1,
  drives: [{ file: disk, format: 'raw', interface: 'ide' }],
});

describe('bootAndWatch: a stalled guest is told apart from a slow one', () => {
  it('cli; hlt (nothing can wake the vCPU) is reported as stalled well before the timeout', async () => {
    // A work directory deeper than a UNIX socket path may be (107 bytes): QEMU must still start.
    const dir = path.join(
      tmpdir('keel-stall-'),
      'a-long-checkout-path'.repeat(3),
      'jobs',
      'boot',
      'temp',
      'keel-smoke-work',
    );
    fs.mkdirSync(dir, { recursive: true });
    expect(path.join(dir, 'qmp.sock').length).toBeGreaterThan(108);
    const log = memoryLogger();
    const r = await bootAndWatch(spec(bootSector(dir, 'halt.img', [0xfa, 0xf4, 0xeb, 0xfd])), {
      timeoutMs: 120_000,
      stallMs: 6000,
      matcher: new VerdictMatcher(),
      logFile: path.join(dir, 'serial.log'),
      log,
      workDir: dir,
    });
    expect([r.passed, r.stalled]).toEqual([false, true]);
    expect(r.reason).toMatch(/the guest stalled: no console output and no CPU use for 6 s/);
    expect(r.seconds).toBeLessThan(60);
    expect(processesMatching(dir)).toEqual([]);
  });

  it('a silent guest that keeps running (jmp $) is not a stall: it reaches the timeout', async () => {
    const dir = tmpdir('keel-stall-');
    const r = await bootAndWatch(spec(bootSector(dir, 'spin.img', [0xeb, 0xfe])), {
      timeoutMs: 15_000,
      stallMs: 6000,
      matcher: new VerdictMatcher(),
      logFile: path.join(dir, 'serial.log'),
      log: memoryLogger(),
      workDir: dir,
    });
    expect(r.stalled).toBeUndefined();
    expect(r.reason).toMatch(/timed out after 15 s/);
  });

  it('a silent guest that keeps running is reported as hung after quietMs', async () => {
    const dir = tmpdir('keel-stall-');
    const r = await bootAndWatch(spec(bootSector(dir, 'spin.img', [0xeb, 0xfe])), {
      timeoutMs: 60_000,
      stallMs: 6000,
      quietMs: 4000,
      matcher: new VerdictMatcher(),
      logFile: path.join(dir, 'serial.log'),
      log: memoryLogger(),
      workDir: dir,
    });
    expect([r.passed, r.stalled, r.timedOut]).toEqual([false, true, undefined]);
    expect(r.reason).toMatch(/^the guest hung: no console output for [45] s, no verdict/);
    expect(r.seconds).toBeLessThan(20);
  });

  it('bootWithRetry: the timeout bounds all boots together', async () => {
    const dir = tmpdir('keel-stall-');
    const log = memoryLogger();
    const logFile = path.join(dir, 'serial.log');
    const t0 = Date.now();
    const r = await bootWithRetry(
      spec(bootSector(dir, 'spin.img', [0xeb, 0xfe])),
      { timeoutMs: 8000, quietMs: 4000, matcher: new VerdictMatcher(), logFile, log, workDir: dir },
      { attempts: 3, minAttemptMs: 500 },
    );
    // Boot 1 hangs after 4 s; boot 2 gets the 3-4 s left, less than the quiet window: timeout.
    expect([r.passed, r.attempts, r.timedOut]).toEqual([false, 2, true]);
    expect(r.reason).toBe('timed out after 8 s in all (2 boots) without reaching the success pattern');
    expect(r.retried).toEqual([
      expect.stringMatching(/^attempt 1: the guest hung: .* \(console kept as serial\.log\.attempt-1\)$/),
    ]);
    expect(Date.now() - t0).toBeLessThan(8000 + 4000);
    expect(processesMatching(dir)).toEqual([]);
  });

  it('bootWithRetry boots a stalled guest once more, keeps the first console, and says so', async () => {
    const dir = tmpdir('keel-stall-');
    const log = memoryLogger();
    const logFile = path.join(dir, 'serial.log');
    let boots = 0;
    const r = await bootWithRetry(
      spec(bootSector(dir, 'halt.img', [0xfa, 0xf4, 0xeb, 0xfd])),
      { timeoutMs: 120_000, stallMs: 4000, matcher: new VerdictMatcher(), logFile, log, workDir: dir },
      { attempts: 2, before: async (s) => (boots++, s) },
    );
    expect([r.passed, r.stalled, r.attempts, boots]).toEqual([false, true, 2, 2]);
    expect(fs.existsSync(`${logFile}.attempt-1`)).toBe(true);
    expect(log.lines.map((l) => l.message).join('\n')).toMatch(/boot attempt 1 of 2: the guest stalled.*booting again/);
  });
});

describe('startSwtpm', () => {
  it('starts from a state directory deeper than a socket path may be, and leaves no socket behind', async () => {
    const dir = path.join(tmpdir('keel-tpm-'), 'a-long-checkout-path'.repeat(4), 'tpm-1');
    expect(path.join(dir, 'swtpm.sock').length).toBeGreaterThan(108);
    const tpm = await startSwtpm(dir, memoryLogger());
    expect(fs.statSync(tpm.socket).isSocket()).toBe(true);
    await tpm.stop();
    expect(fs.existsSync(path.dirname(tpm.socket))).toBe(false);
    expect(processesMatching(dir)).toEqual([]);
  });
});

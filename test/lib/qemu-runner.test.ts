// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommandError } from '../../actions/lib/exec.js';
import { memoryLogger } from '../../actions/lib/log.js';
import { bootAndWatch, QEMU, qemuArgs, startSwtpm, type QemuSpec } from '../../actions/lib/vm/qemu.js';
import { VerdictMatcher } from '../../actions/lib/vm/verdict.js';
import { fakeRunner, type Call } from '../harness/fake-runner.js';

/**
 * QEMU and swtpm start through the command runner like every other tool: the argv goes to the
 * runner, the verdict comes from the serial file it writes, and every path ends the process
 * through the runner's abort signal (the real runner kills and reaps the process group there).
 */
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-qemu-runner-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const spec: QemuSpec = {
  accel: 'tcg',
  memoryMiB: 256,
  cpus: 1,
  drives: [{ file: '/x.img', format: 'raw', interface: 'virtio' }],
};

/** Resolves when the call's abort signal fires, the way a killed process ends (SIGTERM). */
const untilAborted = (c: Call) =>
  new Promise<never>((_resolve, reject) =>
    c.opts.signal!.addEventListener('abort', () => reject(new CommandError(c.cmd, null, '', 'SIGTERM')), {
      once: true,
    }),
  );

/** Plays QEMU: writes `lines` to the serial file given on its command line, then runs until killed. */
const qemuWriting = (lines: string[], exitAfter?: { code: number; stderr: string }) => async (c: Call) => {
  const chardev = c.args[c.args.indexOf('-chardev') + 1]!;
  const serial = /path=(.*)$/.exec(chardev)![1]!;
  c.opts.onSpawn?.(process.pid);
  for (const l of lines) {
    fs.appendFileSync(serial, `${l}\n`);
    await new Promise((r) => setTimeout(r, 20));
  }
  if (exitAfter) throw new CommandError(c.cmd, exitAfter.code, exitAfter.stderr);
  return untilAborted(c);
};

const watch = (name: string, runner: ReturnType<typeof fakeRunner>, timeoutMs = 10_000) =>
  bootAndWatch(spec, {
    timeoutMs,
    stallMs: 0,
    matcher: new VerdictMatcher(),
    logFile: path.join(work, `${name}.log`),
    log: memoryLogger(),
    workDir: work,
    runner,
  });

describe('QEMU through the command runner', () => {
  it('passes on the success line, with the argv qemuArgs builds, and stops QEMU', async () => {
    const runner = fakeRunner(qemuWriting(['Booting', 'Reached target multi-user.target - Multi-User System.']));
    const r = await watch('pass', runner);
    expect([r.passed, r.reason]).toEqual([true, 'reached: Reached target multi-user.target - Multi-User System.']);
    expect(runner.calls).toHaveLength(1);
    const call = runner.calls[0]!;
    expect(call.cmd).toBe(QEMU);
    const qmp = call.args[call.args.indexOf('-qmp') + 1]!.replace(/^unix:/, '').replace(/,server=on,wait=off$/, '');
    expect(call.args).toEqual(qemuArgs(spec, qmp, path.join(work, 'pass.log')));
    expect(call.opts.signal!.aborted).toBe(true);
    expect(r.tail).toContain('Booting');
    // The QMP socket directory is removed.
    expect(fs.existsSync(path.dirname(qmp))).toBe(false);
  });

  it('fails on a kernel panic line and stops QEMU', async () => {
    const runner = fakeRunner(qemuWriting(['Kernel panic - not syncing: VFS: Unable to mount root fs']));
    const r = await watch('panic', runner);
    expect(r.passed).toBe(false);
    expect(r.reason).toMatch(/Kernel panic/);
    expect(runner.calls[0]!.opts.signal!.aborted).toBe(true);
  });

  it('reports QEMU exiting before a verdict with its stderr', async () => {
    const runner = fakeRunner(qemuWriting(['Booting'], { code: 1, stderr: 'qemu: could not open disk image /x.img' }));
    const r = await watch('exit', runner);
    expect(r.reason).toBe('QEMU exited (code 1) before a verdict: qemu: could not open disk image /x.img');
  });

  it('reports a QEMU that cannot start', async () => {
    const runner = fakeRunner(() => {
      throw Object.assign(new Error('spawn qemu-system-x86_64 ENOENT'), { code: 'ENOENT' });
    });
    const r = await watch('nostart', runner);
    expect(r.reason).toBe(`could not start ${QEMU}: spawn qemu-system-x86_64 ENOENT`);
  });

  it('times out and stops QEMU', async () => {
    const runner = fakeRunner(qemuWriting(['Booting']));
    const r = await watch('timeout', runner, 500);
    expect([r.passed, r.timedOut]).toEqual([false, true]);
    expect(runner.calls[0]!.opts.signal!.aborted).toBe(true);
  });
});

describe('swtpm through the command runner', () => {
  it('waits for its socket, and stop() ends it', async () => {
    const runner = fakeRunner(async (c) => {
      const ctrl = c.args[c.args.indexOf('--ctrl') + 1]!;
      fs.writeFileSync(/path=(.*)$/.exec(ctrl)![1]!, '');
      return untilAborted(c);
    });
    const tpm = await startSwtpm(path.join(work, 'tpm'), memoryLogger(), runner);
    expect(runner.calls[0]!.cmd).toBe('swtpm');
    expect(runner.calls[0]!.args.slice(0, 4)).toEqual([
      'socket',
      '--tpm2',
      '--tpmstate',
      `dir=${path.join(work, 'tpm')}`,
    ]);
    expect(fs.existsSync(tpm.socket)).toBe(true);
    await tpm.stop();
    expect(runner.calls[0]!.opts.signal!.aborted).toBe(true);
    expect(fs.existsSync(path.dirname(tpm.socket))).toBe(false);
  });

  it('fails with its stderr when it exits before creating the socket', async () => {
    const runner = fakeRunner(async (c) => {
      c.opts.onStderrLine?.('swtpm: Could not open TPM state directory');
      throw new CommandError('swtpm', 1, 'swtpm: Could not open TPM state directory');
    });
    await expect(startSwtpm(path.join(work, 'tpm2'), memoryLogger(), runner)).rejects.toThrow(
      /^swtpm exited: swtpm: Could not open TPM state directory/,
    );
  });
});

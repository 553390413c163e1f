// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { recordingIO } from '../../actions/lib/io.js';
import { QEMU, TEST_CONSOLE_ARGS } from '../../actions/lib/vm/qemu.js';
import { run } from '../../actions/smoke-boot/src/main.js';
import { seedImage, startFakeRegistry, type FakeRegistry } from '../harness/fake-registry.js';
import { debianFiles, KVER } from '../harness/fake-images.js';
import { fakeRunner, type Call, type FakeRunner } from '../harness/fake-runner.js';
import { argAfter, mke2fs, ok, playTools, qemu, tarExtract, toolOf, type QemuPlay } from '../harness/fake-tools.js';
import { signDigest, testKey, type TestKey } from '../harness/signing.js';

/**
 * smoke-boot's run() through recordingIO and a fake runner that plays tar, mke2fs and QEMU: the
 * pinned digest's kernel is booted (direct backend) with the argv qemuArgs builds, the verdict
 * comes from the serial lines QEMU writes, a hung first boot is booted once more, and the
 * outputs, evidence files and summary follow; the signature gate and bad input refuse before
 * anything is downloaded or run.
 */
const PASS = 'Reached target multi-user.target - Multi-User System.';
const PANIC = 'Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)';
let reg: FakeRegistry;
let work: string;
let key: TestKey;
let signed: string;
let unsigned: string;
let kernelless: string;

beforeAll(async () => {
  reg = await startFakeRegistry();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-smoke-'));
  key = testKey();
  signed = await seedImage(reg, 'acme/os', 'candidate', path.join(work, 'os'), { layers: [debianFiles()] });
  unsigned = await seedImage(reg, 'acme/os', 'unsigned', path.join(work, 'unsigned'), {
    layers: [debianFiles({ extra: { 'etc/unsigned': 'yes\n' } })],
  });
  kernelless = await seedImage(reg, 'acme/os', 'kernelless', path.join(work, 'kernelless'), {
    layers: [{ 'usr/lib/os-release': 'ID=keel\n' }],
  });
  for (const d of [signed, kernelless]) await signDigest(`${reg.host}/acme/os@${d}`, key);
});
afterAll(async () => {
  await reg.close();
  fs.rmSync(work, { recursive: true, force: true });
});

interface Booted {
  /** What QEMU was given as -kernel and -initrd, read while it ran (the work directory goes after). */
  kernel?: string;
  initrd?: string;
}

/** Plays the tools of a direct-backend boot; `boots` says what each QEMU run prints. */
function tools(boots: QemuPlay | ((n: number) => QemuPlay), booted: Booted = {}, entries: string[] = []) {
  const play = qemu((n) => (typeof boots === 'function' ? boots(n) : boots));
  return playTools({
    tar: tarExtract(entries),
    mke2fs,
    chown: () => ok(),
    rm: (call: Call) => {
      fs.rmSync(toolOf(call).args.at(-1)!, { recursive: true, force: true });
      return ok();
    },
    [QEMU]: (call: Call) => {
      booted.kernel = fs.readFileSync(argAfter(call, '-kernel')!, 'utf8');
      booted.initrd = fs.readFileSync(argAfter(call, '-initrd')!, 'utf8');
      return play(call);
    },
  });
}

const smoke = (inputs: Record<string, string>, runner: FakeRunner = fakeRunner()) => {
  const temp = fs.mkdtempSync(path.join(work, 'temp-'));
  const io = recordingIO(
    {
      image: `${reg.host}/acme/os:candidate`,
      'public-key': key.pem,
      'tls-verify': 'false',
      accel: 'tcg',
      ...inputs,
    },
    { runnerTemp: temp },
    runner,
  );
  return { io, runner, temp, done: run(io) };
};
const qemuCalls = (r: FakeRunner) => r.calls.filter((c) => c.cmd === QEMU);

describe('smoke-boot run()', () => {
  it('boots the pinned digest: argv, verdict from the console, outputs, evidence, summary', async () => {
    const booted: Booted = {};
    const entries: string[] = [];
    const runner = fakeRunner(tools({ lines: ['Booting Linux', PASS] }, booted, entries));
    const { io, temp, done } = smoke({ 'kernel-args': 'quiet splash', memory: '1024', cpus: '1' }, runner);
    await done;
    const id = signed.slice(7, 19);
    const serialLog = path.join(temp, `keel-smoke-${id}-serial.log`);
    expect(io.outputs).toEqual({
      digest: signed,
      'image-ref': `${reg.host}/acme/os@${signed}`,
      'serial-log': serialLog,
      passed: 'true',
      'boot-seconds': expect.stringMatching(/^\d+\.\d$/),
      reason: `reached: ${PASS}`,
      accel: 'tcg',
      screenshot: path.join(temp, `keel-smoke-${id}-screen.png`),
      attempts: '1',
    });
    expect(fs.readFileSync(serialLog, 'utf8')).toBe(`Booting Linux\n${PASS}\n`);
    expect(fs.readFileSync(io.outputs.screenshot!).subarray(1, 4).toString()).toBe('PNG');

    // The image's own kernel and initramfs, booted from an ext4 image of its root.
    expect(booted).toEqual({ kernel: `vmlinuz ${KVER}\n`, initrd: `initramfs ${KVER}\n` });
    expect(entries).toEqual(expect.arrayContaining([`usr/lib/modules/${KVER}/vmlinuz`, 'var/lib/dpkg/status']));
    const [boot] = qemuCalls(runner);
    expect(argAfter(boot!, '-machine')).toBe('q35,accel=tcg');
    expect([argAfter(boot!, '-m'), argAfter(boot!, '-smp')]).toEqual(['1024', '1']);
    expect(argAfter(boot!, '-append')).toBe(`root=/dev/vda rw ${TEST_CONSOLE_ARGS} rd.timeout=90 quiet splash`);
    const mkfs = runner.calls.find((c) => toolOf(c).tool === 'mke2fs')!;
    const disk = toolOf(mkfs).args.at(-2)!;
    expect(argAfter(boot!, '-drive')).toMatch(new RegExp(`^file=${disk},format=raw,if=virtio,snapshot=on,`));
    expect(toolOf(mkfs).args).toEqual(expect.arrayContaining(['-L', 'root', '-E', 'root_owner=0:0']));
    expect(mkfs.opts.env).toEqual({ E2FSPROGS_FAKE_TIME: '1' });
    // Every tool call is an argv array; the image reference never reaches one as an option.
    expect(runner.calls.every((c) => !c.args.some((a) => a.startsWith('-') && a.includes(reg.host)))).toBe(true);

    expect(io.groups).toEqual(['verify the signature', `download ${reg.host}/acme/os@${signed}`, 'boot (direct)']);
    const summary = io.summaries.join('');
    expect(summary).toMatch(/^### smoke-boot ✅ passed/);
    expect(summary).toContain(`| \`${reg.host}/acme/os@${signed}\` | direct | TCG (TCG requested) | \`${KVER}\` |`);
    expect(summary).toContain('verified (1 legacy signature(s) accepted)');
    // The work directory is gone; the evidence stays.
    expect(fs.readdirSync(temp).sort()).toEqual([`keel-smoke-${id}-screen.png`, `keel-smoke-${id}-serial.log`].sort());
  });

  it('a kernel panic fails the step with the reason, the console tail in the summary, outputs set', async () => {
    const runner = fakeRunner(tools({ lines: ['Booting Linux', PANIC] }));
    const { io, done } = smoke({}, runner);
    await expect(done).rejects.toThrow(`boot failed: ${PANIC}`);
    expect(io.outputs).toMatchObject({ passed: 'false', reason: PANIC, attempts: '1' });
    const summary = io.summaries.join('');
    expect(summary).toMatch(/^### smoke-boot ❌ failed/);
    expect(summary).toMatch(/Last 2 lines of the serial console:\n\n```\nBooting Linux\nKernel panic/);
  });

  it('a first boot that hangs is booted once more; its console is kept and named in the summary', async () => {
    const runner = fakeRunner(tools((n) => (n === 0 ? { lines: ['Booting Linux'] } : { lines: [PASS] })));
    const { io, done } = smoke({ 'quiet-timeout': '1' }, runner);
    await done;
    expect(qemuCalls(runner)).toHaveLength(2);
    expect(io.outputs).toMatchObject({ passed: 'true', attempts: '2' });
    expect(fs.readFileSync(`${io.outputs['serial-log']}.attempt-1`, 'utf8')).toBe('Booting Linux\n');
    expect(io.summaries.join('')).toMatch(
      /⚠️ Booted 2 times[\s\S]*attempt 1: the guest hung: no console output for 1 s/,
    );
  });

  it("under TCG, an int3 oops in kernel text (the emulator's code-patching race) is booted once more", async () => {
    const oops = [
      'Booting Linux',
      'Oops: int3: 0000 [#1] PREEMPT SMP NOPTI',
      'RIP: 0010:enqueue_timer+0xa5/0x100',
      PANIC,
    ];
    const runner = fakeRunner(tools((n) => (n === 0 ? { lines: oops } : { lines: [PASS] })));
    const { io, done } = smoke({}, runner);
    await done;
    expect(qemuCalls(runner)).toHaveLength(2);
    expect(io.outputs).toMatchObject({ passed: 'true', attempts: '2' });
    expect(io.summaries.join('')).toMatch(/attempt 1: Kernel panic.*an int3 oops in kernel text under TCG/);
  });

  it('any other panic is a verdict: no second boot', async () => {
    const oops = ['Booting Linux', 'Oops: general protection fault: 0000 [#1] PREEMPT SMP NOPTI', PANIC];
    const runner = fakeRunner(tools((n) => (n === 0 ? { lines: oops } : { lines: [PASS] })));
    const { io, done } = smoke({}, runner);
    await expect(done).rejects.toThrow(`boot failed: ${PANIC}`);
    expect(qemuCalls(runner)).toHaveLength(1);
    expect(io.outputs).toMatchObject({ passed: 'false', attempts: '1' });
  });

  it('QEMU exiting before a verdict fails with its stderr', async () => {
    const runner = fakeRunner(tools({ lines: [], exit: { code: 1, stderr: 'qemu: could not load kernel' } }));
    const { io, done } = smoke({}, runner);
    await expect(done).rejects.toThrow(
      'boot failed: QEMU exited (code 1) before a verdict: qemu: could not load kernel',
    );
    expect(io.outputs.passed).toBe('false');
  });

  it('an image without a kernel fails before any tool runs', async () => {
    const runner = fakeRunner(tools({ lines: [PASS] }));
    const { io, done } = smoke({ image: `${reg.host}/acme/os@${kernelless}` }, runner);
    await expect(done).rejects.toThrow(/exactly one kernel under \/usr\/lib\/modules \(found 0: none\)/);
    expect(runner.calls).toEqual([]);
    expect(io.outputs.passed).toBeUndefined();
  });

  it.each([
    ['an unsigned image', { image: 'UNSIGNED' }, /its signature does not verify with public-key/],
    ['a key of another pair', { 'public-key': 'OTHER' }, /its signature does not verify with public-key/],
  ])('refuses %s before anything is downloaded or run', async (_what, extra, message) => {
    const ex = { ...extra } as Record<string, string>;
    if (ex.image === 'UNSIGNED') ex.image = `${reg.host}/acme/os@${unsigned}`;
    if (ex['public-key'] === 'OTHER') ex['public-key'] = testKey().pem;
    const before = reg.requests.length;
    const runner = fakeRunner(tools({ lines: [PASS] }));
    const { io, done } = smoke(ex, runner);
    await expect(done).rejects.toThrow(message);
    expect(runner.calls).toEqual([]);
    // Signature blobs are read; none of the image's layers or config is.
    const digest = ex.image ? unsigned : signed;
    const { config, layers } = JSON.parse(reg.manifest('acme/os', digest)!.body.toString()) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    const imageBlobs = [config, ...layers].map((b) => `GET /v2/acme/os/blobs/${b.digest}`);
    expect(reg.requests.slice(before).filter((r) => imageBlobs.includes(r))).toEqual([]);
    expect(io.outputs.passed).toBeUndefined();
  });

  it.each([
    ['no public-key', { 'public-key': '' }, /^Input 'public-key': it is required: smoke-boot refuses to run without/],
    ['a bad backend', { backend: 'vmware' }, /^Input 'backend' has value "vmware": expected one of: direct, uefi, bib/],
    [
      'a success pattern that does not compile',
      { 'success-pattern': 'ok\n(' },
      /^Input 'success-pattern'.*"\(" is not a valid regular expression/,
    ],
    ['kernel arguments on two lines', { 'kernel-args': 'quiet\ninit=/bin/sh' }, /^Input 'kernel-args'/],
    [
      'an artifact name with a slash',
      { 'artifact-name': 'boot/logs' },
      /^Input 'artifact-name' has value "boot\/logs"/,
    ],
    [
      'a bib image not pinned by digest',
      { 'bib-image': 'quay.io/centos-bootc/bootc-image-builder:latest' },
      /^Input 'bib-image'.*pinned by digest/,
    ],
    ['too little memory', { memory: '64' }, /^Input 'memory' has value "64"/],
  ])('refuses %s before any request or command', async (_what, extra, message) => {
    const before = reg.requests.length;
    const { io, runner, done } = smoke(extra);
    await expect(done).rejects.toThrow(message);
    expect(reg.requests.length).toBe(before);
    expect(runner.calls).toEqual([]);
    expect(io.outputs).toEqual({});
  });
});

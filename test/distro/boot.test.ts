import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onCleanup } from '../../actions/lib/cleanup.js';
import { loadDeclarations } from '../../actions/lib/declarations.js';
import { ensureExampleImage, repoRoot, type ExampleImage } from '../harness/example-image.js';

/**
 * The example distro boots: its own kernel and initramfs (direct kernel boot), its rootfs as an
 * ext4 image made by `mke2fs -d` from the image's files, QEMU under TCG (KVM hangs on these
 * machines), no network. Passes when the serial console shows systemd reaching
 * multi-user.target. QEMU is killed on every path (pass, failure marker, timeout, test error).
 * The smoke-boot action will replace this plain boot.
 */
const decl = loadDeclarations(path.join(repoRoot, 'declarations', 'distro.yaml'));
const SUCCESS = /Reached target multi-user\.target/;
const FAILURE = /Kernel panic|You are in emergency mode|Entering emergency mode|dracut-initqueue\[\d+\]: Warning: Could not boot|Failed to switch root/;
const TIMEOUT_MS = 10 * 60 * 1000;
// eslint-disable-next-line no-control-regex -- the escape character is what is being stripped
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

let img: ExampleImage;
let work = '';
let qemu: ChildProcess | undefined;

function killQemu() {
  if (qemu && qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
}
// QEMU runs under `setpriv --pdeathsig KILL`: the kernel kills it when this process dies, however
// it dies (jest's signal handling keeps exit hooks from running on SIGTERM). It also stays in
// the test's process group, and the lib's cleanup registry kills it on a normal exit.
onCleanup(killQemu);

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  img = await ensureExampleImage({ oci: false });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-boot-'));
  const ctr = `keel-test-boot-${crypto.randomUUID().slice(0, 8)}`;
  sh('buildah', ['from', '--pull=never', '--name', ctr, img.imageId]);
  try {
    const root = sh('buildah', ['mount', ctr]).trim();
    const k = path.join(root, 'usr/lib/modules', img.kernelVersion);
    fs.copyFileSync(path.join(k, 'vmlinuz'), path.join(work, 'vmlinuz'));
    fs.copyFileSync(path.join(k, 'initramfs.img'), path.join(work, 'initramfs.img'));
    sh('mke2fs', ['-q', '-t', 'ext4', '-L', 'keel-root', '-d', root, path.join(work, 'root.img'), '2G']);
  } finally {
    spawnSync('buildah', ['umount', ctr]);
    spawnSync('buildah', ['rm', ctr]);
  }
}, 40 * 60 * 1000);

afterAll(() => {
  killQemu();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('example distro boot (QEMU, TCG, direct kernel boot)', () => {
  it(
    'reaches multi-user.target with its own kernel, generic initramfs and rootfs',
    async () => {
      const serialLog = path.join(work, 'serial.log');
      const out = fs.createWriteStream(serialLog);
      const t0 = Date.now();
      qemu = spawn(
        'setpriv',
        [
          '--pdeathsig', 'KILL', '--', 'qemu-system-x86_64',
          '-accel', 'tcg', '-m', '2048', '-smp', '2',
          '-kernel', path.join(work, 'vmlinuz'),
          '-initrd', path.join(work, 'initramfs.img'),
          '-append', 'root=/dev/vda rw console=ttyS0',
          '-drive', `file=${path.join(work, 'root.img')},format=raw,if=virtio`,
          '-nographic', '-no-reboot',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let raw = '';
      let serial = '';
      const verdict = await new Promise<{ ok: boolean; why: string }>((resolve) => {
        const timer = setTimeout(() => resolve({ ok: false, why: `no multi-user.target within ${TIMEOUT_MS / 1000} s` }), TIMEOUT_MS);
        const onData = (d: Buffer) => {
          // QEMU may still print between the verdict and its death: nothing is written once the
          // log is closed.
          if (out.writableEnded) return;
          out.write(d);
          // systemd colours its status lines: match on the text without ANSI escapes (stripped
          // from the whole output, since an escape sequence can straddle two chunks).
          raw += d.toString('utf8');
          if (raw.length > 4 * 1024 * 1024) raw = raw.slice(-1024 * 1024);
          serial = raw.replace(ANSI, '');
          const bad = FAILURE.exec(serial);
          if (bad) {
            clearTimeout(timer);
            resolve({ ok: false, why: `failure marker: ${bad[0]}` });
          } else if (SUCCESS.test(serial)) {
            clearTimeout(timer);
            resolve({ ok: true, why: 'multi-user.target' });
          }
        };
        qemu!.stdout!.on('data', onData);
        qemu!.stderr!.on('data', onData);
        qemu!.on('exit', (code, sig) => {
          clearTimeout(timer);
          resolve({ ok: SUCCESS.test(serial), why: `qemu exited (${code ?? sig}) before multi-user.target` });
        });
      });
      const seconds = (Date.now() - t0) / 1000;
      qemu.stdout!.removeAllListeners('data');
      qemu.stderr!.removeAllListeners('data');
      killQemu();
      await new Promise<void>((r) => out.end(() => r()));
      process.stderr.write(`example image ${img.name}: ${verdict.why} after ${seconds.toFixed(0)} s (TCG)\n`);
      const tail = serial.split('\n').slice(-40).join('\n');
      expect([verdict.ok, verdict.why, verdict.ok ? '' : tail]).toEqual([true, 'multi-user.target', '']);
      // It booted the distro the declarations describe, not just any Debian.
      expect(serial).toContain(`Welcome to ${decl.os['pretty-name']}!`);
    },
    TIMEOUT_MS + 60 * 1000,
  );
});

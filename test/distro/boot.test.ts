// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadDeclarations } from '../../actions/lib/declarations.js';
import { memoryLogger } from '../../actions/lib/log.js';
import { bootWithRetry, TEST_CONSOLE_ARGS } from '../../actions/lib/vm/qemu.js';
import { stripAnsi, VerdictMatcher } from '../../actions/lib/vm/verdict.js';
import { ensureExampleImage, repoRoot, type ExampleImage } from '../harness/example-image.js';
import { processesMatching } from '../harness/tools.js';

/**
 * The example distro boots: its own kernel and initramfs (direct kernel boot), its rootfs as an
 * ext4 image made by `mke2fs -d` from the image's files, QEMU under TCG (KVM hangs on these
 * machines), no network. Unlike the smoke-boot tests this goes through no action: the image is
 * read from container storage with buildah and booted with the VM layer's defaults (the test
 * console: serial log to a file, PID 1's log through the kernel log, console size set). It
 * passes when systemd reaches multi-user.target; QEMU is killed on every path.
 */
const decl = loadDeclarations(path.join(repoRoot, 'declarations', 'distro.yaml'));
const TIMEOUT_MS = 10 * 60 * 1000;

let img: ExampleImage;
let work = '';

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(
  async () => {
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
  },
  40 * 60 * 1000,
);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('example distro boot (QEMU, TCG, direct kernel boot)', () => {
  it(
    'reaches multi-user.target with its own kernel, generic initramfs and rootfs',
    async () => {
      const logFile = path.join(work, 'serial.log');
      const r = await bootWithRetry(
        {
          accel: 'tcg',
          memoryMiB: 2048,
          cpus: 2,
          kernel: {
            path: path.join(work, 'vmlinuz'),
            initrd: path.join(work, 'initramfs.img'),
            append: `root=/dev/vda rw ${TEST_CONSOLE_ARGS}`,
          },
          drives: [{ file: path.join(work, 'root.img'), format: 'raw', interface: 'virtio' }],
        },
        {
          timeoutMs: TIMEOUT_MS,
          quietMs: 300_000,
          matcher: new VerdictMatcher(),
          logFile,
          log: memoryLogger(),
          workDir: work,
        },
      );
      process.stderr.write(
        `example image ${img.name}: ${r.reason} after ${r.seconds.toFixed(0)} s (TCG, ${r.attempts} boot(s))\n`,
      );
      expect([r.passed, r.passed ? '' : r.tail.slice(-40).join('\n')]).toEqual([true, '']);
      expect(r.verdictLine).toMatch(/Reached target multi-user\.target/);
      // It booted the distro the declarations describe, not just any Debian.
      expect(stripAnsi(fs.readFileSync(logFile, 'utf8'))).toContain(`Welcome to ${decl.os['pretty-name']}!`);
      expect(processesMatching(work)).toEqual([]);
    },
    TIMEOUT_MS + 60 * 1000,
  );
});

// bench/smoke-boot — time from "here is a tag" to a verdict with Keel's smoke-boot (resolve,
// pull by digest, unpack, ext4 disk, KVM probe, boot, verdict), against a plain hand-run QEMU
// boot of the same kernel, initramfs and rootfs (disk prepared beforehand, not timed), both
// under the same accelerator. Prints the overhead ratio.   Run: npm run bench:smoke-boot
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startRegistry } from '../../cli/services/registry.js';
import { stripAnsi } from '../../actions/lib/vm/verdict.js';
import { TEST_CONSOLE_ARGS } from '../../actions/lib/vm/qemu.js';
import { ensureExampleImage } from '../../test/harness/example-image.js';
import { runAction } from '../../test/harness/run-action.js';
import { sh, skopeoPush, tmpdir } from '../../test/harness/tools.js';

const img = await ensureExampleImage({ oci: true });
const reg = await startRegistry();
try {
  skopeoPush(img.ociRef, `${reg.host}/bench/os:candidate`);
  const t0 = Date.now();
  const r = await runAction({
    action: 'smoke-boot',
    // The bench times the boot; the image is unsigned, so the signature gate is waived.
    inputs: {
      image: `${reg.host}/bench/os:candidate`,
      'tls-verify': 'false',
      'allow-unsigned': 'true',
      accel: 'auto',
      timeout: '900',
    },
  });
  const keelTotal = (Date.now() - t0) / 1000;
  if (r.outputs.passed !== 'true') throw new Error(`smoke-boot did not pass: ${r.outputs.reason}`);
  const accel = r.outputs.accel!;

  // The plain boot: same kernel, initramfs and rootfs, prepared by hand first.
  const dir = tmpdir('keel-bench-plain-');
  const mount = sh('podman', ['image', 'mount', img.name]).trim();
  const k = img.kernelVersion;
  fs.copyFileSync(path.join(mount, 'usr/lib/modules', k, 'vmlinuz'), path.join(dir, 'vmlinuz'));
  fs.copyFileSync(path.join(mount, 'usr/lib/modules', k, 'initramfs.img'), path.join(dir, 'initramfs.img'));
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', mount, path.join(dir, 'disk.img'), '1500M']);
  sh('podman', ['image', 'unmount', img.name]);
  // Serial to a file (as Keel does: a pipe can lose characters), polled, ANSI stripped. The same
  // kernel console arguments as Keel's: without systemd.log_target=kmsg a serial getty can
  // silence PID 1's status lines on a slow boot, and the plain boot would never see multi-user.
  const log = path.join(dir, 'serial.log');
  const plain = await new Promise<number>((resolve, reject) => {
    const t = Date.now();
    const q = spawn(
      'qemu-system-x86_64',
      [
        '-machine',
        `q35,accel=${accel}`,
        '-cpu',
        accel === 'kvm' ? 'host' : 'max',
        '-m',
        '2048',
        '-smp',
        '2',
        '-display',
        'none',
        '-serial',
        `file:${log}`,
        '-monitor',
        'none',
        '-nic',
        'none',
        '-no-reboot',
        '-kernel',
        path.join(dir, 'vmlinuz'),
        '-initrd',
        path.join(dir, 'initramfs.img'),
        '-append',
        `root=/dev/vda rw ${TEST_CONSOLE_ARGS}`,
        '-drive',
        `file=${path.join(dir, 'disk.img')},format=raw,if=virtio`,
      ],
      { stdio: 'ignore' },
    );
    const poll = setInterval(() => {
      if (
        fs.existsSync(log) &&
        /Reached target (multi-user\.target - )?Multi-User System/.test(stripAnsi(fs.readFileSync(log, 'utf8')))
      ) {
        clearInterval(poll);
        const s = (Date.now() - t) / 1000;
        q.kill('SIGKILL');
        resolve(s);
      }
    }, 100);
    q.on('close', () => {
      clearInterval(poll);
      reject(new Error('plain QEMU exited before multi-user'));
    });
    setTimeout(() => q.kill('SIGKILL'), 900_000).unref();
  });
  fs.rmSync(dir, { recursive: true, force: true });
  const bootPhase = Number(r.outputs['boot-seconds']);
  console.log(
    `\nbench/smoke-boot — example distro, accel ${accel} (KVM probe decided: ${accel === 'tcg' ? 'unusable' : 'usable'})`,
  );
  console.log(
    `Keel smoke-boot, tag → verdict:         ${keelTotal.toFixed(1)} s  (of which QEMU boot ${bootPhase.toFixed(1)} s, preparation ${(keelTotal - bootPhase).toFixed(1)} s)`,
  );
  console.log(`plain QEMU boot (disk prepared by hand): ${plain.toFixed(1)} s`);
  console.log(
    `overhead ratio: total ${(keelTotal / plain).toFixed(2)}×, boot phase alone ${(bootPhase / plain).toFixed(2)}×`,
  );
} finally {
  await reg.stop();
}

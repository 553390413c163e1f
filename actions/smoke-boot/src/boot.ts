import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../lib/errors.js';
import type { CommandRunner } from '../../lib/exec.js';
import type { OpenedImage } from '../../lib/image/open.js';
import type { Logger } from '../../lib/log.js';
import { LayeredRootfs } from '../../lib/rootfs/layered.js';
import { bibCommands, bibConfig } from '../../lib/vm/bib.js';
import { buildUefiDisk, makeExt4 } from '../../lib/vm/disk.js';
import { chooseAccel } from '../../lib/vm/probe.js';
import { bootAndWatch, findOvmf, startSwtpm, type BootResult, type QemuSpec } from '../../lib/vm/qemu.js';
import { removeTree, unpackRootfs } from '../../lib/vm/unpack.js';
import type { VerdictMatcher } from '../../lib/vm/verdict.js';

/**
 * The boot test itself, independent of the runner: from an opened (digest-pinned) image to a
 * verdict. Everything it creates lives in `workDir`, which the caller removes on every path.
 */
export interface BootRequest {
  image: OpenedImage;
  pinnedRef: string;
  backend: 'direct' | 'uefi' | 'bib';
  accel: 'auto' | 'kvm' | 'tcg';
  memoryMiB: number;
  cpus: number;
  timeoutMs: number;
  kernelArgs: string;
  matcher: VerdictMatcher;
  workDir: string;
  serialLog: string;
  screenshot: string;
  kvmProbeTimeoutMs: number;
  bibImage?: string;
  onLine?: (line: string) => void;
}

export interface BootOutcome extends BootResult {
  accel: 'kvm' | 'tcg';
  accelWhy: string;
  kernelVersion: string;
  prepareSeconds: number;
}

/** The single kernel directory of the image and its canonical boot files. */
export async function kernelOf(rootfs: LayeredRootfs): Promise<string> {
  const idx = await rootfs.index();
  const kernels = [...idx.values()]
    .filter((e) => e.type === 'dir' && /^usr\/lib\/modules\/[^/]+$/.test(e.path))
    .map((e) => e.path.split('/')[3]!);
  if (kernels.length !== 1) {
    throw new UserError(`the image must hold exactly one kernel under /usr/lib/modules (found ${kernels.length}: ${kernels.join(', ') || 'none'})`);
  }
  const k = kernels[0]!;
  for (const f of ['vmlinuz', 'initramfs.img']) {
    if (idx.get(`usr/lib/modules/${k}/${f}`)?.type !== 'file') throw new UserError(`/usr/lib/modules/${k}/${f} is missing from the image`);
  }
  return k;
}

export async function bootImage(req: BootRequest, runner: CommandRunner, log: Logger): Promise<BootOutcome> {
  const t0 = Date.now();
  const rootfs = new LayeredRootfs(req.image.layers);
  const kver = await kernelOf(rootfs);
  fs.mkdirSync(req.workDir, { recursive: true });
  const vmlinuz = path.join(req.workDir, 'vmlinuz');
  const initrd = path.join(req.workDir, 'initramfs.img');
  const files = await rootfs.readFiles([`usr/lib/modules/${kver}/vmlinuz`, `usr/lib/modules/${kver}/initramfs.img`]);
  fs.writeFileSync(vmlinuz, files.get(`usr/lib/modules/${kver}/vmlinuz`)!);
  fs.writeFileSync(initrd, files.get(`usr/lib/modules/${kver}/initramfs.img`)!);

  // tty0 feeds the screenshot; ttyS0 (last, so /dev/console) feeds the verdict.
  const console = 'console=tty0 console=ttyS0,115200';
  let spec: QemuSpec;
  let stopTpm: (() => Promise<void>) | undefined;
  const rootDir = path.join(req.workDir, 'rootfs');
  if (req.backend === 'bib') {
    const out = path.join(req.workDir, 'bib-output');
    fs.mkdirSync(out, { recursive: true });
    const config = path.join(req.workDir, 'config.toml');
    fs.writeFileSync(config, bibConfig({ kernelAppend: `${console} ${req.kernelArgs}`.trim() }));
    for (const [cmd, args] of bibCommands({ imageRef: req.pinnedRef, type: 'qcow2', outputDir: out, configFile: config, bibImage: req.bibImage })) {
      await runner.run(cmd, args, { echo: true, timeoutMs: 3600_000 });
    }
    const disk = path.join(out, 'qcow2', 'disk.qcow2');
    if (!fs.existsSync(disk)) throw new Error(`bootc-image-builder produced no ${disk}`);
    const fw = findOvmf();
    const vars = path.join(req.workDir, 'OVMF_VARS.fd');
    fs.copyFileSync(fw.vars, vars);
    spec = { accel: 'tcg', memoryMiB: req.memoryMiB, cpus: req.cpus, uefi: { code: fw.code, vars }, drives: [{ file: disk, format: 'qcow2', interface: 'virtio' }] };
  } else {
    await unpackRootfs(rootfs, rootDir, runner, log);
    const disk = path.join(req.workDir, 'disk.img');
    if (req.backend === 'direct') {
      await makeExt4(rootDir, disk, runner, { label: 'root' });
      spec = {
        accel: 'tcg',
        memoryMiB: req.memoryMiB,
        cpus: req.cpus,
        kernel: { path: vmlinuz, initrd, append: `root=/dev/vda rw ${console} ${req.kernelArgs}`.trim() },
        drives: [{ file: disk, format: 'raw', interface: 'virtio' }],
      };
    } else {
      await buildUefiDisk(
        { rootfsDir: rootDir, kernel: vmlinuz, initrd, cmdline: `${console} ${req.kernelArgs}`.trim(), out: disk, workDir: path.join(req.workDir, 'esp'), seed: req.pinnedRef, title: `Keel smoke boot ${kver}` },
        runner,
        log,
      );
      const fw = findOvmf();
      const vars = path.join(req.workDir, 'OVMF_VARS.fd');
      fs.copyFileSync(fw.vars, vars);
      const tpm = await startSwtpm(path.join(req.workDir, 'tpm'), log);
      stopTpm = tpm.stop;
      spec = { accel: 'tcg', memoryMiB: req.memoryMiB, cpus: req.cpus, uefi: { code: fw.code, vars }, drives: [{ file: disk, format: 'raw', interface: 'virtio' }], tpmSocket: tpm.socket };
    }
    await removeTree(rootDir, runner); // the disk holds it now; free the space before booting
  }
  try {
    const accel = await chooseAccel(req.accel, vmlinuz, path.join(req.workDir, 'probe'), log, req.kvmProbeTimeoutMs);
    spec.accel = accel.accel;
    const prepareSeconds = (Date.now() - t0) / 1000;
    log.info(`booting ${req.pinnedRef} (${req.backend}, ${accel.accel.toUpperCase()}: ${accel.why})`);
    const r = await bootAndWatch(spec, {
      timeoutMs: req.timeoutMs,
      matcher: req.matcher,
      logFile: req.serialLog,
      screenshotFile: req.screenshot,
      log,
      onLine: req.onLine,
      workDir: req.workDir,
    });
    return { ...r, accel: accel.accel, accelWhy: accel.why, kernelVersion: kver, prepareSeconds };
  } finally {
    await stopTpm?.();
  }
}

import fs from 'node:fs';
import path from 'node:path';
import type { CommandRunner } from '../../lib/exec.js';
import type { OpenedImage } from '../../lib/image/open.js';
import type { Logger } from '../../lib/log.js';
import { LayeredRootfs } from '../../lib/rootfs/layered.js';
import { bibConfig, bibSpaceNeeds, runBib, type BibRootfs, type RegistryLogin } from '../../lib/vm/bib.js';
import { buildUefiDisk, makeExt4, usageOf, type Usage } from '../../lib/vm/disk.js';
import { requireSpace, type SpaceCheckOptions, type SpaceNeed } from '../../lib/disk-space.js';
import { chooseAccel } from '../../lib/vm/probe.js';
import {
  bootWithRetry,
  uefiFirmware,
  TEST_CONSOLE_ARGS,
  startSwtpm,
  type BootResult,
  type QemuSpec,
} from '../../lib/vm/qemu.js';
import { removeTree, unpackRootfs } from '../../lib/vm/unpack.js';
import type { VerdictMatcher } from '../../lib/vm/verdict.js';
import { theKernel } from '../../lib/rootfs/kernel.js';

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
  /** Console silence before a running guest counts as hung (booted once more); 0 disables. */
  quietMs: number;
  kernelArgs: string;
  matcher: VerdictMatcher;
  workDir: string;
  serialLog: string;
  screenshot: string;
  kvmProbeTimeoutMs: number;
  bibImage?: string;
  bibRootfs?: BibRootfs;
  /** Credentials for the image's registry and the builder image's (bib backend). */
  bibLogins?: RegistryLogin[];
  /** Checks the space the disk needs once the image's index is known (before any unpacking). */
  space?: SpaceCheckOptions;
  onLine?: (line: string) => void;
}

export interface BootOutcome extends BootResult {
  attempts: number;
  retried: string[];
  /** Consoles of the earlier, failed attempts. */
  keptLogs: string[];
  accel: 'kvm' | 'tcg';
  accelWhy: string;
  kernelVersion: string;
  prepareSeconds: number;
}

/** The single kernel directory of the image and its canonical boot files. */
export async function kernelOf(rootfs: LayeredRootfs): Promise<string> {
  return theKernel(await rootfs.index(), { files: ['vmlinuz', 'initramfs.img'] });
}

/** What a boot test writes into its work directory, from the image's index. */
export function bootSpaceNeeds(req: Pick<BootRequest, 'backend' | 'workDir' | 'image'>, usage: Usage): SpaceNeed[] {
  if (req.backend === 'bib') {
    const compressed = req.image.manifest.layers.reduce((n, l) => n + l.size, 0);
    return bibSpaceNeeds(compressed, req.workDir);
  }
  return [
    { dir: req.workDir, bytes: usage.bytes, what: 'the unpacked rootfs' },
    { dir: req.workDir, bytes: usage.bytes * 1.25 + 512 * 1024 ** 2, what: 'the boot disk' },
  ];
}

export async function bootImage(req: BootRequest, runner: CommandRunner, log: Logger): Promise<BootOutcome> {
  const t0 = Date.now();
  const rootfs = new LayeredRootfs(req.image.layers);
  const kver = await kernelOf(rootfs);
  if (req.space) requireSpace(bootSpaceNeeds(req, usageOf(await rootfs.index())), req.space);
  fs.mkdirSync(req.workDir, { recursive: true });
  const vmlinuz = path.join(req.workDir, 'vmlinuz');
  const initrd = path.join(req.workDir, 'initramfs.img');
  const files = await rootfs.readFiles([`usr/lib/modules/${kver}/vmlinuz`, `usr/lib/modules/${kver}/initramfs.img`]);
  fs.writeFileSync(vmlinuz, files.get(`usr/lib/modules/${kver}/vmlinuz`)!);
  fs.writeFileSync(initrd, files.get(`usr/lib/modules/${kver}/initramfs.img`)!);

  const console = TEST_CONSOLE_ARGS;
  let spec: QemuSpec;
  let stopTpm: (() => Promise<void>) | undefined;
  let before: ((s: QemuSpec) => Promise<QemuSpec>) | undefined;
  const rootDir = path.join(req.workDir, 'rootfs');
  if (req.backend === 'bib') {
    const out = path.join(req.workDir, 'bib-output');
    fs.mkdirSync(out, { recursive: true });
    const config = path.join(req.workDir, 'config.toml');
    fs.writeFileSync(config, bibConfig({ kernelAppend: `${console} ${req.kernelArgs}`.trim() }));
    await runBib(
      {
        imageRef: req.pinnedRef,
        type: 'qcow2',
        outputDir: out,
        configFile: config,
        bibImage: req.bibImage,
        rootfs: req.bibRootfs,
      },
      req.bibLogins ?? [],
      { runner, log, workDir: req.workDir, timeoutMs: 3600_000 },
    );
    const disk = path.join(out, 'qcow2', 'disk.qcow2');
    if (!fs.existsSync(disk)) throw new Error(`bootc-image-builder produced no ${disk}`);
    spec = {
      accel: 'tcg',
      memoryMiB: req.memoryMiB,
      cpus: req.cpus,
      uefi: uefiFirmware(req.workDir),
      drives: [{ file: disk, format: 'qcow2', interface: 'virtio' }],
    };
  } else {
    await unpackRootfs(rootfs, rootDir, runner, log);
    const usage = usageOf(await rootfs.index());
    const disk = path.join(req.workDir, 'disk.img');
    if (req.backend === 'direct') {
      await makeExt4(rootDir, disk, runner, { label: 'root', usage });
      spec = {
        accel: 'tcg',
        memoryMiB: req.memoryMiB,
        cpus: req.cpus,
        kernel: { path: vmlinuz, initrd, append: `root=/dev/vda rw ${console} ${req.kernelArgs}`.trim() },
        drives: [{ file: disk, format: 'raw', interface: 'virtio' }],
      };
    } else {
      await buildUefiDisk(
        {
          rootfsDir: rootDir,
          usage,
          kernel: vmlinuz,
          initrd,
          cmdline: `${console} ${req.kernelArgs}`.trim(),
          out: disk,
          workDir: path.join(req.workDir, 'esp'),
          seed: req.pinnedRef,
          title: `Keel smoke boot ${kver}`,
        },
        runner,
        log,
      );
      spec = {
        accel: 'tcg',
        memoryMiB: req.memoryMiB,
        cpus: req.cpus,
        uefi: uefiFirmware(req.workDir),
        drives: [{ file: disk, format: 'raw', interface: 'virtio' }],
      };
      // swtpm ends with the QEMU it served: every boot (a retried one too) gets a fresh one.
      let n = 0;
      before = async (s) => {
        await stopTpm?.();
        const tpm = await startSwtpm(path.join(req.workDir, `tpm-${++n}`), log, runner);
        stopTpm = tpm.stop;
        return { ...s, tpmSocket: tpm.socket };
      };
    }
    await removeTree(rootDir, runner); // the disk holds it now; free the space before booting
  }
  try {
    const accel = await chooseAccel(req.accel, vmlinuz, path.join(req.workDir, 'probe'), log, {
      probeTimeoutMs: req.kvmProbeTimeoutMs,
      runner,
    });
    spec.accel = accel.accel;
    const prepareSeconds = (Date.now() - t0) / 1000;
    log.info(`booting ${req.pinnedRef} (${req.backend}, ${accel.accel.toUpperCase()}: ${accel.why})`);
    const r = await bootWithRetry(
      spec,
      {
        timeoutMs: req.timeoutMs,
        quietMs: req.quietMs,
        matcher: req.matcher,
        logFile: req.serialLog,
        screenshotFile: req.screenshot,
        log,
        onLine: req.onLine,
        workDir: req.workDir,
        runner,
      },
      { before },
    );
    return { ...r, accel: accel.accel, accelWhy: accel.why, kernelVersion: kver, prepareSeconds };
  } finally {
    await stopTpm?.();
  }
}

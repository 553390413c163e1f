import fs from 'node:fs';
import path from 'node:path';
import type { CommandRunner } from '../../lib/exec.js';
import type { Logger } from '../../lib/log.js';
import type { LayeredRootfs } from '../../lib/rootfs/layered.js';
import { runBib, type BibRootfs, type BibType, type RegistryLogin } from '../../lib/vm/bib.js';
import type { SpaceNeed } from '../../lib/disk-space.js';
import { buildUefiDisk, type Usage } from '../../lib/vm/disk.js';
import { buildLiveIso, elToritoPlatforms, GrubBootWatch, liveRequirements } from '../../lib/vm/iso.js';
import { chooseAccel } from '../../lib/vm/probe.js';
import {
  bootAndWatch,
  bootWithRetry,
  uefiFirmware,
  TEST_CONSOLE_ARGS,
  type BootResult,
  type QemuSpec,
} from '../../lib/vm/qemu.js';
import { copyOutOf, removeTree, unpackRootfs } from '../../lib/vm/unpack.js';
import { VerdictMatcher } from '../../lib/vm/verdict.js';
import { code } from '../../lib/summary.js';

/** What the live backend writes, from the image's index (the layers are already downloaded). */
export function liveSpaceNeeds(
  usage: Usage,
  type: 'iso' | 'qcow2' | 'raw',
  workDir: string,
  outDir: string,
): SpaceNeed[] {
  const u = usage.bytes;
  const rootfs = { dir: workDir, bytes: u, what: 'the unpacked rootfs' };
  if (type === 'iso')
    return [
      rootfs,
      { dir: workDir, bytes: u * 0.8, what: 'the squashfs' },
      { dir: outDir, bytes: u * 0.8, what: 'the ISO' },
    ];
  const raw = u * 1.25 + 512 * 1024 ** 2;
  return [
    rootfs,
    { dir: type === 'raw' ? outDir : workDir, bytes: raw, what: 'the raw disk' },
    ...(type === 'qcow2' ? [{ dir: outDir, bytes: u, what: 'the qcow2 disk' }] : []),
  ];
}

export interface BootTest {
  passed: boolean;
  seconds: number;
  reason: string;
  accel: string;
  serialLog: string;
  tail: string[];
}

interface Common {
  rootfs: LayeredRootfs;
  kver: string;
  index: Map<string, { type: string }>;
  /** What the final filesystem needs (from the index). */
  usage: Usage;
  workDir: string;
  artefact: string;
  bootTest: boolean;
  accel: 'auto' | 'kvm' | 'tcg';
  memoryMiB: number;
  bootTimeoutMs: number;
  temp: string;
  id: string;
  /** Starts the test VMs' QEMU (the hop's io.runner). */
  runner: CommandRunner;
}

const TEST_CONSOLE = `${TEST_CONSOLE_ARGS} systemd.show_status=1`;

/** The test VM for an artefact, on the accelerator chosen once for it (one KVM probe). */
async function testVm(c: Common, kernel: string, log: Logger): Promise<QemuSpec> {
  const { accel } = await chooseAccel(c.accel, kernel, path.join(c.workDir, 'probe'), log, { runner: c.runner });
  return { accel, memoryMiB: c.memoryMiB, cpus: 2, uefi: uefiFirmware(c.workDir) };
}

const outcome = (r: BootResult, spec: QemuSpec, serialLog: string): BootTest => ({
  passed: r.passed,
  seconds: r.seconds,
  reason: r.reason,
  accel: spec.accel,
  serialLog,
  tail: r.tail,
});

async function bootTest(spec: QemuSpec, c: Common, log: Logger): Promise<BootTest> {
  const serialLog = path.join(c.temp, `keel-disk-${c.id}-boot.log`);
  return outcome(
    await bootWithRetry(spec, {
      timeoutMs: c.bootTimeoutMs,
      matcher: new VerdictMatcher(),
      logFile: serialLog,
      log,
      workDir: c.workDir,
      runner: c.runner,
    }),
    spec,
    serialLog,
  );
}

/**
 * The user's path, judged: UEFI firmware reads the ISO's El Torito image, GRUB shows its menu and
 * boots its default entry with nothing added. OVMF mirrors the EFI console to the serial port, so
 * GRUB's messages are judged there; the shipped command line has no serial console, so the pass
 * is QEMU's monitor showing the CPU in kernel code after GRUB said "Booting" (the kernel's own
 * boot to multi-user is the second test).
 */
async function firmwareCheck(spec: QemuSpec, c: Common, log: Logger): Promise<BootTest> {
  const serialLog = path.join(c.temp, `keel-disk-${c.id}-firmware.log`);
  const watch = new GrubBootWatch();
  const r = await bootAndWatch(spec, {
    timeoutMs: Math.min(c.bootTimeoutMs, 600_000),
    matcher: watch,
    monitor: { everyMs: 1000, probe: (hmp) => watch.probe(hmp) },
    logFile: serialLog,
    log,
    workDir: c.workDir,
    runner: c.runner,
  });
  return outcome(r, spec, serialLog);
}

export async function liveIso(
  c: Common & { label: string; title: string; compressionLevel: number; kernelArgs: string },
  runner: CommandRunner,
  log: Logger,
): Promise<{ boot?: BootTest; detail: string }> {
  liveRequirements(c.index);
  const rootDir = path.join(c.workDir, 'rootfs');
  await unpackRootfs(c.rootfs, rootDir, runner, log);
  const iso = await buildLiveIso(
    {
      rootfsDir: rootDir,
      kver: c.kver,
      label: c.label,
      title: c.title,
      out: c.artefact,
      workDir: c.workDir,
      compressionLevel: c.compressionLevel,
      kernelArgs: c.kernelArgs || undefined,
    },
    runner,
    log,
  );
  await removeTree(rootDir, runner);
  const platforms = await elToritoPlatforms(c.artefact, runner);
  if (!platforms.includes('BIOS') || !platforms.includes('UEFI'))
    throw new Error(`the ISO lacks El Torito boot images for both BIOS and UEFI (has: ${platforms.join(', ')})`);
  let boot: BootTest | undefined;
  let firmware: BootTest | undefined;
  if (c.bootTest) {
    const k = path.join(c.workDir, 'test-vmlinuz');
    const i = path.join(c.workDir, 'test-initrd.img');
    await runner.run('xorriso', [
      '-osirrox',
      'on',
      '-indev',
      c.artefact,
      '-extract',
      '/boot/vmlinuz',
      k,
      '-extract',
      '/boot/initrd.img',
      i,
    ]);
    const vm = await testVm(c, k, log);
    // 1. Firmware → El Torito (UEFI) → GRUB → default entry, nothing added.
    firmware = await firmwareCheck({ ...vm, cdrom: c.artefact }, c, log);
    if (!firmware.passed) {
      return {
        boot: { ...firmware, reason: `UEFI firmware → GRUB: ${firmware.reason}` },
        detail: `Live ISO, kernel ${code(c.kver)}: GRUB did not boot its default entry under UEFI firmware.\n`,
      };
    }
    // 2. Boot what was shipped: kernel and initramfs read back out of the ISO, the shipped command
    // line plus a serial console added only for this test, the ISO itself as the CD-ROM.
    // Fresh OVMF variables: the firmware check's boot wrote to the first copy.
    boot = await bootTest(
      {
        ...vm,
        uefi: uefiFirmware(c.workDir),
        cdrom: c.artefact,
        kernel: { path: k, initrd: i, append: `${iso.cmdline} ${TEST_CONSOLE}` },
      },
      c,
      log,
    );
  }
  return {
    boot,
    detail:
      `Live ISO: squashfs (zstd) ${(iso.squashfsBytes / 1048576).toFixed(0)} MiB, kernel ${code(c.kver)}, El Torito: ${platforms.join(' + ')}, volume label ${code(c.label)}, shipped command line ${code(iso.cmdline)} (no serial console).\n` +
      (firmware
        ? `UEFI firmware → GRUB → default entry: ${firmware.reason} after ${firmware.seconds.toFixed(0)} s (${firmware.accel}).\n`
        : ''),
  };
}

export async function liveDisk(
  c: Common & { format: 'qcow2' | 'raw'; title: string; kernelArgs: string; seed: string },
  runner: CommandRunner,
  log: Logger,
): Promise<{ boot?: BootTest; detail: string }> {
  const rootDir = path.join(c.workDir, 'rootfs');
  await unpackRootfs(c.rootfs, rootDir, runner, log);
  const kernel = path.join(c.workDir, 'vmlinuz');
  const initrd = path.join(c.workDir, 'initramfs.img');
  copyOutOf(rootDir, `usr/lib/modules/${c.kver}/vmlinuz`, kernel);
  copyOutOf(rootDir, `usr/lib/modules/${c.kver}/initramfs.img`, initrd);
  const raw = c.format === 'raw' ? c.artefact : path.join(c.workDir, 'disk.raw');
  const { rootPartUuid } = await buildUefiDisk(
    {
      rootfsDir: rootDir,
      usage: c.usage,
      kernel,
      initrd,
      cmdline: c.kernelArgs,
      out: raw,
      workDir: path.join(c.workDir, 'esp'),
      seed: c.seed,
      title: c.title,
    },
    runner,
    log,
  );
  await removeTree(rootDir, runner);
  if (c.format === 'qcow2') {
    await runner.run('qemu-img', ['convert', '-O', 'qcow2', raw, c.artefact]);
    fs.rmSync(raw, { force: true });
  }
  let boot: BootTest | undefined;
  if (c.bootTest) {
    boot = await bootTest(
      {
        ...(await testVm(c, kernel, log)),
        drives: [{ file: c.artefact, format: c.format, interface: 'virtio' }],
        kernel: {
          path: kernel,
          initrd,
          append: `root=PARTUUID=${rootPartUuid} rw ${c.kernelArgs} ${TEST_CONSOLE}`.replace(/\s+/g, ' '),
        },
      },
      c,
      log,
    );
  }
  return {
    boot,
    detail: `GPT disk (${c.format}): ESP with systemd-boot, ext4 root PARTUUID=${rootPartUuid}, kernel ${code(c.kver)}.\n`,
  };
}

/** The bib backend: bootc-image-builder on a GitHub runner (privileged podman). */
export async function bibBuild(
  r: {
    ref: string;
    type: 'iso' | 'qcow2' | 'raw';
    outDir: string;
    artefact: string;
    config?: string;
    bibImage: string;
    rootfs?: BibRootfs;
    workDir: string;
    /** Credentials for the image's registry and the builder image's (logged in to first). */
    logins: RegistryLogin[];
  },
  runner: CommandRunner,
  log: Logger,
): Promise<string> {
  const type: BibType = r.type === 'iso' ? 'anaconda-iso' : r.type;
  const out = path.join(r.workDir, 'bib-output');
  fs.mkdirSync(out, { recursive: true });
  await runBib(
    {
      imageRef: r.ref,
      type,
      outputDir: out,
      configFile: r.config,
      bibImage: r.bibImage,
      rootfs: r.rootfs,
      chown: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`,
    },
    r.logins,
    { runner, log, workDir: r.workDir, timeoutMs: 3 * 3600_000 },
  );
  const produced =
    r.type === 'iso' ? path.join(out, 'bootiso', 'install.iso') : path.join(out, r.type, `disk.${r.type}`);
  if (!fs.existsSync(produced)) throw new Error(`bootc-image-builder finished but ${produced} is missing`);
  fs.renameSync(produced, r.artefact);
  log.info(`bootc-image-builder produced ${r.artefact}`);
  await removeTree(out, runner);
  return `bootc-image-builder (${type}) from ${code(r.ref)}.\n`;
}

import fs from 'node:fs';
import path from 'node:path';
import type { CommandRunner } from '../exec.js';
import type { Logger } from '../log.js';
import { bootAndWatch } from './qemu.js';
import { VerdictMatcher } from './verdict.js';

/**
 * Is KVM usable? `/dev/kvm` existing is not enough: on nested hosts a guest can fail as soon as
 * it leaves real mode ("KVM internal error. Suberror: 1") and then hang forever. A boot sector
 * runs fine in that state, so the probe boots the kernel that is about to be tested, with no
 * root filesystem: a working KVM gets it to its first console lines (and a quick panic) within
 * seconds. QEMU's own KVM error ends the probe at once.
 */
const KERNEL_RAN = /Linux version \d|Kernel panic - not syncing/;
const KVM_BROKEN = /KVM internal error|kvm run failed|failed to initialize kvm|Could not access KVM kernel module/i;

export interface ProbeResult {
  usable: boolean;
  reason: string;
  seconds: number;
}

export async function probeKvm(
  kernel: string,
  workDir: string,
  log: Logger,
  timeoutMs = 20_000,
  runner?: CommandRunner,
): Promise<ProbeResult> {
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return { usable: false, reason: '/dev/kvm is missing or not accessible', seconds: 0 };
  }
  fs.mkdirSync(workDir, { recursive: true });
  const r = await bootAndWatch(
    {
      accel: 'kvm',
      memoryMiB: 256,
      cpus: 1,
      kernel: { path: kernel, append: 'console=ttyS0 panic=-1 root=/dev/null loglevel=4' },
    },
    {
      timeoutMs,
      matcher: new VerdictMatcher([KERNEL_RAN], [KVM_BROKEN]),
      watchStderr: true,
      logFile: path.join(workDir, 'kvm-probe.log'),
      log: { ...log, info: log.debug },
      workDir,
      runner,
    },
  );
  return {
    usable: r.passed,
    reason: r.passed
      ? `the kernel ran under KVM (${r.seconds.toFixed(1)} s)`
      : `the probe guest did not run under KVM: ${r.reason}`,
    seconds: r.seconds,
  };
}

/**
 * auto: KVM only when the probe guest runs; otherwise TCG. `kvm` fails when KVM is unusable.
 * The probe's QEMU starts through `opts.runner` (default: processRunner with `log`).
 */
export async function chooseAccel(
  want: 'auto' | 'kvm' | 'tcg',
  kernel: string,
  workDir: string,
  log: Logger,
  opts: { probeTimeoutMs?: number; runner?: CommandRunner } = {},
): Promise<{ accel: 'kvm' | 'tcg'; why: string; probeSeconds: number }> {
  if (want === 'tcg') return { accel: 'tcg', why: 'TCG requested', probeSeconds: 0 };
  const p = await probeKvm(kernel, workDir, log, opts.probeTimeoutMs, opts.runner);
  if (p.usable) return { accel: 'kvm', why: p.reason, probeSeconds: p.seconds };
  if (want === 'kvm') throw new Error(`accel kvm requested but KVM is not usable: ${p.reason}`);
  log.info(`KVM not usable (${p.reason}); using TCG`);
  return { accel: 'tcg', why: `KVM not usable: ${p.reason}`, probeSeconds: p.seconds };
}

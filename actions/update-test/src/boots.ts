import fs from 'node:fs';
import path from 'node:path';
import type { CommandRunner } from '../../lib/exec.js';
import type { Logger } from '../../lib/log.js';
import { commitOfEntry } from '../../lib/ostree.js';
import { readBootEntries, type BootEntry } from '../../lib/vm/bls.js';
import { Ext4Image } from '../../lib/vm/ext4-image.js';
import { chooseAccel } from '../../lib/vm/probe.js';
import { bootWithRetry, TEST_CONSOLE_ARGS, type BootResult, type QemuSpec } from '../../lib/vm/qemu.js';
import { DEFAULT_FAILURE, DEFAULT_SUCCESS, VerdictMatcher } from '../../lib/vm/verdict.js';
import type { Machine } from './machine.js';
import { ProbeMarkers, type ProbeReport } from './probe.js';

/**
 * The three boots of one machine, each decided from its serial console like smoke-boot's
 * (panic, emergency shell, no init, timeout, stall/hang → that line is the reason), then judged
 * by what the probe reported from inside:
 *   1 previous, default entry: booted the previous commit, changed /etc and /var, staged the
 *     candidate; after it, the default entry must boot the candidate (finalized at shutdown).
 *   2 candidate, default entry: booted the candidate commit, /etc change and /var data kept;
 *     with rollback, the previous deployment made the default again.
 *   3 previous: the default entry after the rollback, or, when the candidate did not boot (or
 *     could not roll back), the previous release's entry chosen as a user would at the boot menu.
 * A boot ends when the guest shuts itself down (the probe's last act): the kernel's reboot line
 * is the console's success pattern. Boot 3 runs whenever boot 1 staged the candidate, whatever
 * boot 2 did: it proves the machine is not stranded.
 */
export interface BootsRequest {
  machine: Machine;
  accel: 'auto' | 'kvm' | 'tcg';
  memoryMiB: number;
  cpus: number;
  /** Absolute time (ms) by which every boot has ended. */
  deadline: number;
  quietMs: number;
  kvmProbeTimeoutMs: number;
  rollback: boolean;
  workDir: string;
  /** Serial log of boot N: `${logBase}.boot-N.log`. */
  logBase: string;
}

export interface BootRecord {
  n: 1 | 2 | 3;
  role: 'previous' | 'candidate';
  /** The BLS entry booted, and how it was chosen. */
  entry: string;
  chosen: 'default entry' | 'previous entry chosen at the boot menu';
  passed: boolean;
  reason: string;
  seconds: number;
  multiUserSeconds?: number;
  /** What this boot proved (or, failed, what it still showed). */
  proved: string[];
  report: Record<string, string>;
  serialLog: string;
  keptLogs: string[];
  attempts: number;
  tail: string[];
}

export interface BootsOutcome {
  passed: boolean;
  reason: string;
  boots: BootRecord[];
  accel: 'kvm' | 'tcg';
  accelWhy: string;
}

/** The kernel's last console line when the guest powers off or reboots (QEMU runs with -no-reboot). */
const SHUTDOWN = /reboot: (?:Restarting system|Power down)/;
/** systemd-shutdown's last line before it asks the kernel to reboot or power off. */
const SYSTEMD_SHUTDOWN = /systemd-shutdown\[1\]: (?:Rebooting|Powering off)\./;
const QEMU_CLEAN_EXIT = /^QEMU exited \(code 0\) before a verdict/;

/**
 * QEMU (-no-reboot) exits as soon as the guest resets, and the kernel's own restart line can be
 * cut off with it (seen under load with TCG: the console ended at "kvm: exiting hardware
 * virtualization"). A clean exit after systemd-shutdown's final line, in a boot whose probe
 * finished, is the shutdown the probe asked for: every file system was unmounted and synced.
 */
export function shutdownCutOff(r: Pick<BootResult, 'passed' | 'reason' | 'tail'>, probeDone: boolean): boolean {
  return !r.passed && probeDone && QEMU_CLEAN_EXIT.test(r.reason) && r.tail.some((l) => SYSTEMD_SHUTDOWN.test(l));
}

/** The initramfs's ostree module did its work (systemd in the initrd says so on the console). */
const PREPARE_ROOT = /Finished ostree-prepare-root\.service/;
/** The initramfs waits this long for the root disk (a missing driver fails instead of hanging). */
const ROOT_WAIT_S = 90;
const MAX_KERNEL = 256 * 1024 * 1024;
const MAX_INITRD = 1024 * 1024 * 1024;

const short = (commit: string | undefined) => (commit ? commit.slice(0, 12) : 'nothing');

export async function runBoots(req: BootsRequest, runner: CommandRunner, log: Logger): Promise<BootsOutcome> {
  const m = req.machine;
  const img = new Ext4Image(m.disk, runner);
  const entryFor = async (want: string, entries: BootEntry[]) => {
    for (const e of entries) if ((await commitOfEntry(img, e)) === want) return e;
    return undefined;
  };
  const boots: BootRecord[] = [];

  // Boot 1: the previous release, from the entry `ostree admin deploy` wrote.
  let entries = await readBootEntries(img);
  if (!entries[0] || (await commitOfEntry(img, entries[0])) !== m.previousCommit)
    throw new Error(`the prepared disk's default boot entry does not boot the previous commit ${m.previousCommit}`);
  const kernel1 = await bootFiles(img, entries[0], path.join(req.workDir, 'boot-1'));
  const accel = await chooseAccel(req.accel, kernel1.kernel, path.join(req.workDir, 'kvm-probe'), log, {
    probeTimeoutMs: req.kvmProbeTimeoutMs,
    runner,
  });
  log.info(`booting with ${accel.accel.toUpperCase()} (${accel.why})`);
  const boot = (n: 1 | 2 | 3, entry: BootEntry, chosen: BootRecord['chosen'], timeoutMs: number) =>
    bootOnce({ ...req, accel: accel.accel, img, n, entry, chosen, timeoutMs }, runner, log);

  // Boot 1 may not take more than half of what is left: the others need the rest.
  const b1 = await boot(1, entries[0], 'default entry', (req.deadline - Date.now()) / 2);
  boots.push(b1);
  judge(b1, (r) => [
    expectCommit(r, m.previousCommit, 'the previous release'),
    r.get('etc-changed') === 'yes' && r.get('var-written') === 'yes'
      ? 'changed /etc (/etc/hostname, a new file) and wrote /var'
      : undefined,
    r.get('staged') === m.candidateCommit
      ? `staged the candidate ${short(m.candidateCommit)} (ostree admin deploy --stage)`
      : undefined,
  ]);
  const outcome = (passed: boolean, reason: string): BootsOutcome => ({
    passed,
    reason,
    boots,
    accel: accel.accel,
    accelWhy: accel.why,
  });
  if (!b1.passed) return outcome(false, `the previous release did not update: ${b1.reason}`);
  entries = await readBootEntries(img);
  if (!entries[0] || (await commitOfEntry(img, entries[0])) !== m.candidateCommit) {
    b1.passed = false;
    b1.reason = `after the shutdown the default boot entry does not boot the candidate (the staged deployment was not finalized): entries ${entries.map((e) => e.file).join(', ') || 'none'}`;
    return outcome(false, b1.reason);
  }
  b1.proved.push('ostree-finalize-staged wrote the candidate as the default boot entry at shutdown');

  // Boot 2: the candidate, from the default entry. It leaves time for the rollback boot:
  // as long as boot 1 took, at least a minute, at most half of what is left.
  const left = () => req.deadline - Date.now();
  const reserve = req.rollback ? Math.min(left() / 2, Math.max(60_000, b1.seconds * 1000)) : 0;
  const b2 = await boot(2, entries[0], 'default entry', left() - reserve);
  boots.push(b2);
  judge(b2, (r) => [
    expectCommit(r, m.candidateCommit, 'the candidate'),
    r.get('etc-kept') === 'yes' ? 'the local /etc changes survived the 3-way merge' : undefined,
    r.get('var-kept') === 'yes' ? 'the /var data is there' : undefined,
    ...(req.rollback
      ? [
          r.get('rollback-default') === m.previousCommit
            ? 'rolled back: the previous deployment is the default again'
            : undefined,
        ]
      : []),
  ]);
  const b2Reason = `the candidate ${b2.passed ? 'passed' : `failed: ${b2.reason}`}`;
  if (!req.rollback)
    return outcome(
      b2.passed,
      b2.passed ? `updated ${short(m.previousCommit)} → ${short(m.candidateCommit)}` : b2Reason,
    );

  // Boot 3: the previous release again.
  entries = await readBootEntries(img);
  let entry: BootEntry | undefined;
  let chosen: BootRecord['chosen'] = 'default entry';
  if (b2.passed && entries[0] && (await commitOfEntry(img, entries[0])) === m.previousCommit) entry = entries[0];
  else {
    entry = await entryFor(m.previousCommit, entries);
    chosen = 'previous entry chosen at the boot menu';
  }
  if (!entry) {
    const why = `no boot entry boots the previous release any more: the machine would be stranded (${b2Reason})`;
    return outcome(false, why);
  }
  const b3 = await boot(3, entry, chosen, left());
  boots.push(b3);
  judge(b3, (r) => [
    expectCommit(r, m.previousCommit, 'the previous release'),
    r.get('var-kept') === 'yes' ? 'the /var data is still there' : undefined,
  ]);
  if (!b3.passed) return outcome(false, `${b2Reason}; the rollback boot failed: ${b3.reason}`);
  if (!b2.passed) return outcome(false, `${b2Reason}; rolled back: the previous release booted again (${chosen})`);
  return outcome(
    true,
    `updated ${short(m.previousCommit)} → ${short(m.candidateCommit)} (/etc and /var kept), rolled back, and booted the previous release again`,
  );
}

function expectCommit(r: ProbeReport, commit: string, what: string): string | undefined {
  return r.get('booted') === commit ? `booted ${what} (commit ${short(commit)}, from inside)` : undefined;
}

/**
 * A boot's verdict from the probe: every check must hold (each a fact it proved, or undefined)
 * and the probe must have finished; the first missing fact becomes the reason.
 */
function judge(b: BootRecord, checks: (r: ProbeReport) => (string | undefined)[]): void {
  const r = new Map(Object.entries(b.report));
  if (!b.passed) return; // the console already decided
  const facts = checks(r);
  const error = r.get('error');
  if (error || r.get('done') !== 'ok' || facts.some((f) => !f)) {
    b.passed = false;
    b.reason = error
      ? `the probe failed: ${error.replace(/_/g, ' ')}`
      : r.get('done') !== 'ok'
        ? `the guest shut down before the probe finished (${b.multiUserSeconds !== undefined ? 'multi-user was reached' : 'multi-user was never reached'})`
        : `the probe did not confirm: ${describeMissing(
            b.n,
            facts.findIndex((f) => !f),
          )}`;
  }
  b.proved.push(...(facts.filter(Boolean) as string[]));
  const version = [
    r.get('os-version') && `VERSION ${r.get('os-version')}`,
    r.get('image-version') && `image ${r.get('image-version')}`,
  ];
  if (version.some(Boolean)) b.proved.push(`runs ${version.filter(Boolean).join(', ')}`);
  const drift = r.get('etc-drift');
  if (drift) b.proved.push(`/etc drift (ostree admin config-diff): ${drift.replace(/,/g, ' ')}`);
  if (r.get('failed-units')) b.proved.push(`failed units: ${r.get('failed-units')!.replace(/,/g, ', ')}`);
}

function describeMissing(n: number, i: number): string {
  const what: Record<number, string[]> = {
    1: ['the booted commit', 'the /etc and /var changes', 'the staged candidate'],
    2: ['the booted commit', 'that the /etc changes survived', 'that the /var data survived', 'the rollback'],
    3: ['the booted commit', 'that the /var data survived'],
  };
  return what[n]?.[i] ?? 'a check';
}

/** The kernel and initrd(s) of a BLS entry, copied out of the disk (inside /boot only). */
async function bootFiles(img: Ext4Image, entry: BootEntry, dir: string): Promise<{ kernel: string; initrd?: string }> {
  fs.mkdirSync(dir, { recursive: true });
  const kernel = path.join(dir, 'vmlinuz');
  await img.copyOut(`/boot${entry.linux}`, kernel, MAX_KERNEL);
  if (!entry.initrd.length) return { kernel };
  const initrd = path.join(dir, 'initrd.img');
  fs.writeFileSync(initrd, '');
  for (const [i, p] of entry.initrd.entries()) {
    // Several initrd lines: the kernel unpacks concatenated cpio archives in order.
    const part = path.join(dir, `initrd-${i}`);
    await img.copyOut(`/boot${p}`, part, MAX_INITRD);
    fs.appendFileSync(initrd, fs.readFileSync(part));
    fs.rmSync(part);
  }
  return { kernel, initrd };
}

interface OneBoot extends Omit<BootsRequest, 'accel'> {
  accel: 'kvm' | 'tcg';
  img: Ext4Image;
  n: 1 | 2 | 3;
  entry: BootEntry;
  chosen: BootRecord['chosen'];
  timeoutMs: number;
}

async function bootOnce(b: OneBoot, runner: CommandRunner, log: Logger): Promise<BootRecord> {
  const role = b.n === 2 ? 'candidate' : 'previous';
  const dir = path.join(b.workDir, `boot-${b.n}`);
  const files = await bootFiles(b.img, b.entry, dir);
  const serialLog = `${b.logBase}.boot-${b.n}.log`;
  const append = [b.entry.options, TEST_CONSOLE_ARGS, `rd.timeout=${ROOT_WAIT_S}`, `keel.update-test=${b.n}`].join(' ');
  const spec: QemuSpec = {
    accel: b.accel,
    memoryMiB: b.memoryMiB,
    cpus: b.cpus,
    kernel: { path: files.kernel, initrd: files.initrd, append },
    drives: [
      { file: b.machine.disk, format: 'raw', interface: 'virtio', persistent: true },
      ...(b.n === 1
        ? [{ file: b.machine.candidateDisk, format: 'raw' as const, interface: 'virtio' as const, readonly: true }]
        : []),
    ],
  };
  let markers = new ProbeMarkers(b.machine.expect.nonce, b.n);
  let started = Date.now();
  let multiUserAt: number | undefined;
  let preparedRoot = false;
  // A retried boot (stall, hang) starts again from the disk as it was before this boot.
  const backup = path.join(dir, 'disk-before.img');
  let attempt = 0;
  const before = async (s: QemuSpec) => {
    if (attempt++ === 0) await runner.run('cp', ['--sparse=always', '--reflink=auto', '--', b.machine.disk, backup]);
    else await runner.run('cp', ['--sparse=always', '--reflink=auto', '--', backup, b.machine.disk]);
    markers = new ProbeMarkers(b.machine.expect.nonce, b.n);
    multiUserAt = undefined;
    preparedRoot = false;
    started = Date.now();
    return s;
  };
  log.info(
    `boot ${b.n} (${role}): ${b.entry.file} "${b.entry.title}" [${b.chosen}], ${Math.round(b.timeoutMs / 1000)} s at most`,
  );
  let r: BootResult & { attempts: number; keptLogs: string[] };
  try {
    r = await bootWithRetry(
      spec,
      {
        timeoutMs: Math.max(1000, b.timeoutMs),
        quietMs: b.quietMs,
        matcher: new VerdictMatcher([SHUTDOWN], DEFAULT_FAILURE),
        logFile: serialLog,
        log,
        workDir: dir,
        runner,
        onLine: (line) => {
          markers.feed(line);
          if (PREPARE_ROOT.test(line)) preparedRoot = true;
          if (multiUserAt === undefined && DEFAULT_SUCCESS.some((re) => re.test(line))) multiUserAt = Date.now();
        },
      },
      { before },
    );
  } finally {
    fs.rmSync(backup, { force: true });
  }
  if (shutdownCutOff(r, markers.report.get('done') === 'ok'))
    r = { ...r, passed: true, reason: "shut down by the probe (QEMU's exit cut off the kernel's restart line)" };
  const multiUserSeconds = multiUserAt === undefined ? undefined : (multiUserAt - started) / 1000;
  const record: BootRecord = {
    n: b.n,
    role,
    entry: b.entry.file,
    chosen: b.chosen,
    passed: r.passed,
    reason: r.passed ? 'shut down by the probe' : r.reason,
    seconds: r.seconds,
    multiUserSeconds,
    proved: [
      ...(preparedRoot ? ["ostree-prepare-root in the deployment's initramfs set up its root"] : []),
      ...(multiUserSeconds !== undefined ? [`reached multi-user in ${multiUserSeconds.toFixed(0)} s`] : []),
    ],
    report: Object.fromEntries(markers.report),
    serialLog,
    keptLogs: r.keptLogs,
    attempts: r.attempts,
    tail: r.tail,
  };
  log.info(`boot ${b.n} (${role}) ended after ${r.seconds.toFixed(1)} s: ${r.reason}`);
  return record;
}

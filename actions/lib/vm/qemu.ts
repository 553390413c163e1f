import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { errorMessage, UserError } from '../errors.js';
import { CommandError, processRunner, type CommandRunner } from '../exec.js';
import type { Logger } from '../log.js';
import { ppmToPng } from './png.js';
import { qmpCommand } from './qmp.js';
import { StartJobs, stripAnsi, type Verdict, type VerdictMatcher } from './verdict.js';

/**
 * Booting a VM and watching its serial console. QEMU runs in its own process group and is
 * killed and reaped on every exit path: verdict, timeout, QEMU dying, an exception, or the
 * step being cancelled (the cleanup registry handles SIGINT/SIGTERM).
 */
export interface QemuSpec {
  accel: 'kvm' | 'tcg';
  memoryMiB: number;
  cpus: number;
  machine?: 'q35' | 'pc';
  uefi?: { code: string; vars: string };
  kernel?: { path: string; initrd?: string; append: string };
  drives?: {
    file: string;
    format: 'raw' | 'qcow2';
    interface: 'virtio' | 'ide';
    /** The guest's writes land in the file (default: a throw-away overlay, see qemuArgs). */
    persistent?: boolean;
    /** The guest cannot write it at all. */
    readonly?: boolean;
  }[];
  cdrom?: string;
  /** swtpm control socket to attach as a TPM 2.0 device. */
  tpmSocket?: string;
  /**
   * A virtio NIC on QEMU's user network (the host's loopback is 10.0.2.2 in the guest). Off by
   * default: a boot test needs no network, and the guest should not reach anything it does not need.
   */
  userNet?: boolean;
}

export const QEMU = 'qemu-system-x86_64';

/**
 * The console a test boot adds to the kernel command line.
 *
 * - tty0 feeds the screenshot, ttyS0 (last, so /dev/console) feeds the verdict.
 * - systemd.log_target=kmsg, printk.devkmsg=on: PID 1's own log lines ("systemd[1]: Reached
 *   target multi-user.target - Multi-User System.") go through the kernel log, which the kernel
 *   prints on every console whatever userspace does. The verdict cannot rest on PID 1's status
 *   lines alone: PID 1 stops printing them for good once a Type=idle unit that may touch
 *   /dev/console (serial-getty@ttyS0) gives up waiting for the boot's jobs, after 5 s
 *   (manager_dispatch_idle_pipe_fd sets no_console_output), so a slow boot (TCG on a loaded
 *   runner) can reach multi-user.target with the status lines long stopped; the kernel-log copy
 *   of the line still arrives. devkmsg=on lifts the kernel's 10-lines-per-5-s limit on /dev/kmsg
 *   writers.
 * - The terminal sizes are given because nothing answers on the other end of the serial port:
 *   systemd 257 (Debian 13) asks /dev/console for its size with an ANSI cursor-position query
 *   and can hang there (systemd#35499, fixed in 260). With the size configured, it never asks.
 */
export const TEST_CONSOLE_ARGS = [
  'console=tty0',
  'console=ttyS0,115200',
  'systemd.log_target=kmsg',
  'printk.devkmsg=on',
  'systemd.tty.rows.console=24',
  'systemd.tty.columns.console=80',
  'systemd.tty.rows.ttyS0=24',
  'systemd.tty.columns.ttyS0=80',
].join(' ');

/**
 * The serial console goes to a regular file, never a pipe: QEMU's 16550 drops a character after
 * a few failed writes to a congested backend (a loaded machine loses letters from lines), and a
 * file write never back-pressures. The watcher tails the file.
 */
export function qemuArgs(spec: QemuSpec, qmpSocket?: string, serialFile = '/dev/null'): string[] {
  const a: string[] = [
    '-machine',
    `${spec.machine ?? 'q35'},accel=${spec.accel}`,
    '-cpu',
    spec.accel === 'kvm' ? 'host' : 'max',
    '-m',
    String(spec.memoryMiB),
    '-smp',
    String(spec.cpus),
    '-no-user-config',
    '-no-reboot',
    '-display',
    'none',
    '-vga',
    'std',
    '-chardev',
    `file,id=ser0,path=${serialFile}`,
    '-serial',
    'chardev:ser0',
    '-monitor',
    'none',
    '-nic',
    spec.userNet ? 'user,model=virtio-net-pci' : 'none',
  ];
  if (qmpSocket) a.push('-qmp', `unix:${qmpSocket},server=on,wait=off`);
  if (spec.uefi) {
    a.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${spec.uefi.code}`);
    a.push('-drive', `if=pflash,format=raw,unit=1,file=${spec.uefi.vars}`);
  }
  if (spec.kernel) {
    a.push('-kernel', spec.kernel.path);
    if (spec.kernel.initrd) a.push('-initrd', spec.kernel.initrd);
    a.push('-append', spec.kernel.append);
  }
  for (const d of spec.drives ?? []) {
    // snapshot=on (the default): the guest's writes go to a throw-away overlay. A test boot never
    // changes what it tests (build-disk boots the artefact it ships: no machine-id or journal
    // baked in), and a second boot after a stalled one starts from the same bytes. A persistent
    // drive keeps them (update-test boots one machine several times; it restores a retry's disk).
    const mode = d.readonly ? 'readonly=on' : d.persistent ? 'snapshot=off' : 'snapshot=on';
    a.push('-drive', `file=${d.file},format=${d.format},if=${d.interface},${mode},cache=unsafe,discard=unmap`);
  }
  if (spec.cdrom) a.push('-drive', `file=${spec.cdrom},format=raw,media=cdrom,readonly=on`);
  if (spec.tpmSocket) {
    a.push(
      '-chardev',
      `socket,id=chrtpm,path=${spec.tpmSocket}`,
      '-tpmdev',
      'emulator,id=tpm0,chardev=chrtpm',
      '-device',
      'tpm-tis,tpmdev=tpm0',
    );
  }
  return a;
}

/** The OVMF code/vars pair installed on this host (Debian/Ubuntu and Fedora layouts). */
export function findOvmf(): { code: string; vars: string } {
  const pairs: [string, string][] = [
    ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'],
    ['/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_VARS.fd'],
    ['/usr/share/edk2/ovmf/OVMF_CODE.fd', '/usr/share/edk2/ovmf/OVMF_VARS.fd'],
    ['/usr/share/edk2/x64/OVMF_CODE.4m.fd', '/usr/share/edk2/x64/OVMF_VARS.4m.fd'],
  ];
  for (const [c, v] of pairs) if (fs.existsSync(c) && fs.existsSync(v)) return { code: c, vars: v };
  throw new UserError(
    `no OVMF firmware found (looked for ${pairs.map((p) => p[0]).join(', ')}): install the ovmf package`,
  );
}

/**
 * The host's OVMF firmware for one boot: the read-only code image and a private copy of the
 * variable store in `workDir` (the guest writes its boot entries there; the host's stays pristine).
 */
export function uefiFirmware(workDir: string): { code: string; vars: string } {
  const fw = findOvmf();
  const vars = path.join(workDir, 'OVMF_VARS.fd');
  fs.copyFileSync(fw.vars, vars);
  return { code: fw.code, vars };
}

export interface WatchOptions {
  timeoutMs: number;
  matcher: VerdictMatcher;
  logFile: string;
  /** Where to write a PNG of the display at the verdict (best effort). */
  screenshotFile?: string;
  log: Logger;
  onLine?: (line: string) => void;
  /** Also judge QEMU's own stderr (e.g. "KVM internal error") with the failure patterns. */
  watchStderr?: boolean;
  /** Scratch directory (the screenshot's raw dump). */
  workDir: string;
  /** How QEMU is started (default: processRunner with `log`). */
  runner?: CommandRunner;
  /**
   * A verdict the serial console cannot give, asked of QEMU's monitor every `everyMs` (e.g. "is
   * the CPU executing kernel code yet"). Serial lines already written are judged first.
   */
  monitor?: { everyMs: number; probe: (hmp: (command: string) => Promise<string>) => Promise<Verdict | undefined> };
  /**
   * A stalled guest: console silent and QEMU using (almost) no CPU for this long, i.e. every vCPU
   * halted with nothing left to wake it. Such a VM never reaches a verdict; reporting it early
   * (and booting once more, see bootWithRetry) beats waiting for the boot timeout. A guest that is
   * idle but alive keeps using some CPU for its timers (about 1% here) and is not a stall.
   * 0 disables. Default 120 s.
   */
  stallMs?: number;
  /**
   * A hung guest: console silent this long, whatever the CPU does. With PID 1 logging to the
   * kernel log (TEST_CONSOLE_ARGS), a booting systemd prints a line per unit as it goes, so
   * minutes of silence before the verdict mean no progress (a deadlocked job, a spinning
   * driver). Reported like a stall (stalled: true), so bootWithRetry boots once more within the
   * same overall timeout. 0 (the default) disables.
   */
  quietMs?: number;
}

/** CPU time (clock ticks, 1/100 s) a process has used, from /proc; undefined when unreadable. */
function cpuTicks(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
  } catch {
    return undefined;
  }
}

export interface BootResult {
  passed: boolean;
  reason: string;
  seconds: number;
  tail: string[];
  screenshot?: string;
  verdictLine?: string;
  /** The guest stalled or hung (WatchOptions.stallMs, quietMs): a fault of the VM, worth one more boot. */
  stalled?: boolean;
  /** No verdict within the timeout. */
  timedOut?: boolean;
  /** Start jobs PID 1 had begun and not ended when the boot ended without a verdict. */
  pendingJobs?: string[];
}

/** The reason of a boot (or of all `boots` together) that reached no verdict in `ms`. */
function timedOutReason(ms: number, boots: number): string {
  return `timed out after ${Math.round(ms / 1000)} s${boots > 1 ? ` in all (${boots} boots)` : ''} without reaching the success pattern`;
}

/** The reason's suffix naming the start jobs still running, if any. */
function stillStarting(jobs: string[] | undefined): string {
  return jobs?.length ? `; still starting: ${jobs.join(', ')}` : '';
}

type Verdicted = Omit<BootResult, 'seconds' | 'tail' | 'screenshot'>;

/** How a QEMU process ended, as the runner reports it. */
interface QemuExit {
  code: number | null;
  signal: string | null;
  stderr: string;
  /** QEMU could not be started at all. */
  error?: Error;
}

/** A QEMU started through the command runner; `stop()` ends it (TERM, then KILL) and reaps it. */
interface QemuProcess {
  exited: Promise<QemuExit>;
  running(): boolean;
  pid(): number | undefined;
  stop(): Promise<QemuExit>;
}

/**
 * Boots `spec` and watches its serial console until a verdict: the matcher's success or failure
 * line, QEMU's own failure (with watchStderr), a stalled or hung guest, the monitor probe, QEMU
 * exiting, or the timeout. QEMU is killed and reaped on every path.
 */
export async function bootAndWatch(spec: QemuSpec, opts: WatchOptions): Promise<BootResult> {
  const sockets = socketDir('qmp');
  const qmp = path.join(sockets, 'qmp.sock');
  fs.writeFileSync(opts.logFile, '');
  const started = Date.now();
  const serial = new ConsoleTail(opts);
  const qemu = startQemu(spec, qmp, opts, (line) => serial.stderrLine(line));
  try {
    const result = await watchForVerdict(qemu, serial, qmp, opts);
    const seconds = (Date.now() - started) / 1000;
    const screenshot = qemu.running() ? await screenshotOf(qmp, opts) : undefined;
    await qemu.stop();
    return { ...result, seconds, tail: serial.tail.slice(-40), screenshot };
  } finally {
    await qemu.stop();
    serial.close();
    fs.rmSync(sockets, { recursive: true, force: true });
  }
}

/** Starts QEMU through the command runner (its own process group, killed on every exit path). */
function startQemu(spec: QemuSpec, qmp: string, opts: WatchOptions, onStderrLine: (line: string) => void): QemuProcess {
  const runner = opts.runner ?? processRunner(opts.log);
  const abort = new AbortController();
  let pid: number | undefined;
  let running = true;
  const exited: Promise<QemuExit> = runner
    .run(QEMU, qemuArgs(spec, qmp, opts.logFile), {
      stdout: 'ignore',
      echo: true,
      signal: abort.signal,
      onStderrLine,
      onSpawn: (p) => (pid = p),
    })
    .then(
      (r): QemuExit => ({ code: r.code, signal: null, stderr: r.stderr }),
      (e: unknown): QemuExit =>
        e instanceof CommandError
          ? { code: e.code, signal: e.signal ?? null, stderr: e.stderr }
          : { code: null, signal: null, stderr: '', error: e instanceof Error ? e : new Error(String(e)) },
    )
    .finally(() => (running = false));
  return {
    exited,
    running: () => running,
    pid: () => pid,
    stop: () => {
      if (running) abort.abort();
      return exited;
    },
  };
}

/**
 * The serial console, tailed from its log file (QEMU writes it; a file never back-pressures the
 * guest's UART): lines are cleaned, kept (tail), fed to the start-job tracker and the matcher.
 */
class ConsoleTail {
  readonly tail: string[] = [];
  readonly jobs = new StartJobs();
  /** Bytes read so far (the silence checks watch it grow). */
  offset = 0;
  private partial = '';
  private readonly fd: number;
  private readonly chunk = Buffer.alloc(1 << 16);
  /** A read may end inside a multi-byte character. */
  private readonly decoder = new StringDecoder('utf8');
  private closed = false;
  onVerdict: (v: Verdicted) => void = () => {};

  constructor(private readonly opts: WatchOptions) {
    this.fd = fs.openSync(opts.logFile, 'r');
  }

  /** Reads what QEMU appended since the last look; stops feeding once a verdict is in. */
  readNew(settled: () => boolean): void {
    if (this.closed) return;
    for (;;) {
      const n = fs.readSync(this.fd, this.chunk, 0, this.chunk.length, this.offset);
      if (n <= 0) break;
      this.offset += n;
      this.partial += this.decoder.write(this.chunk.subarray(0, n));
      const lines = this.partial.split('\n');
      this.partial = lines.pop() ?? '';
      for (const raw of lines) {
        if (settled()) return;
        this.feed(raw);
      }
    }
  }

  /** The last, unterminated line once QEMU is gone: it may hold the verdict. */
  flushPartial(): void {
    if (!this.partial) return;
    const v = this.opts.matcher.feed(this.partial);
    this.tail.push(stripAnsi(this.partial));
    this.partial = '';
    if (v) this.onVerdict(verdictOf(v));
  }

  /** QEMU's own stderr: judged with the failure patterns when asked (e.g. "KVM internal error"). */
  stderrLine(raw: string): void {
    if (!this.opts.watchStderr) return;
    const v = this.opts.matcher.feed(raw);
    if (v?.kind === 'fail') this.onVerdict({ passed: false, reason: `QEMU: ${v.line}`, verdictLine: v.line });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }

  private feed(raw: string): void {
    const clean = stripAnsi(raw);
    this.tail.push(clean);
    if (this.tail.length > 200) this.tail.shift();
    this.jobs.feed(clean);
    this.opts.onLine?.(clean);
    const v = this.opts.matcher.feed(raw);
    if (v) this.onVerdict(verdictOf(v));
  }
}

const verdictOf = (v: Verdict): Verdicted => ({
  passed: v.kind === 'pass',
  reason: v.kind === 'pass' ? `reached: ${v.line}` : v.line,
  verdictLine: v.line,
});

/** Waits for the first verdict from the console, the silence checks, the monitor, QEMU's exit or the timeout. */
function watchForVerdict(qemu: QemuProcess, serial: ConsoleTail, qmp: string, opts: WatchOptions): Promise<Verdicted> {
  return new Promise<Verdicted>((resolve) => {
    let settled = false;
    const isSettled = () => settled;
    const timers: NodeJS.Timeout[] = [];
    const settle = (r: Verdicted) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearInterval(t);
      const pending = serial.jobs.pending();
      // No verdict line: say what the boot was still waiting for.
      if (!r.passed && !r.verdictLine && pending.length)
        resolve({ ...r, pendingJobs: pending, reason: `${r.reason}${stillStarting(pending)}` });
      else resolve(r);
    };
    serial.onVerdict = settle;
    timers.push(
      setTimeout(
        () => settle({ passed: false, timedOut: true, reason: timedOutReason(opts.timeoutMs, 1) }),
        opts.timeoutMs,
      ),
      setInterval(() => serial.readNew(isSettled), 100),
    );
    const silence = silenceCheck(qemu, serial, opts, isSettled, settle);
    if (silence) timers.push(silence);
    const monitor = monitorProbe(qmp, serial, opts, isSettled, settle);
    if (monitor) timers.push(monitor);
    void qemu.exited.then((exit) => {
      if (exit.error) return settle({ passed: false, reason: `could not start ${QEMU}: ${errorMessage(exit.error)}` });
      serial.readNew(isSettled);
      if (settled) return;
      serial.flushPartial();
      const err = exit.stderr.trim().split('\n').slice(-3).join(' ');
      settle({
        passed: false,
        reason: `QEMU exited (${exit.signal ?? `code ${exit.code}`}) before a verdict${err ? `: ${err}` : ''}`,
      });
    });
  });
}

/**
 * The stall and hang checks (WatchOptions.stallMs, quietMs), sampled off the console's read path:
 * since when the console has not grown, and QEMU's CPU time at the start of the current window.
 */
function silenceCheck(
  qemu: QemuProcess,
  serial: ConsoleTail,
  opts: WatchOptions,
  settled: () => boolean,
  settle: (r: Verdicted) => void,
): NodeJS.Timeout | undefined {
  const stallMs = opts.stallMs ?? 120_000;
  const quietMs = opts.quietMs ?? 0;
  if (stallMs <= 0 && quietMs <= 0) return undefined;
  let lastGrowth = { offset: 0, at: Date.now() };
  let window: { at: number; ticks: number } | undefined;
  const every = Math.max(250, Math.min(5000, ...[stallMs, quietMs].filter((v) => v > 0).map((v) => v / 4)));
  return setInterval(() => {
    const pid = qemu.pid();
    if (settled() || !pid) return;
    const now = Date.now();
    if (serial.offset !== lastGrowth.offset) {
      lastGrowth = { offset: serial.offset, at: now }; // new output: every window starts again
      window = undefined;
    }
    const silent = now - lastGrowth.at;
    if (quietMs > 0 && silent >= quietMs) {
      settle({
        passed: false,
        stalled: true,
        reason: `the guest hung: no console output for ${Math.round(silent / 1000)} s, no verdict (running, but making no progress)`,
      });
    } else if (!window) {
      const ticks = cpuTicks(pid);
      if (ticks !== undefined) window = { at: now, ticks };
    } else if (stallMs > 0 && now - window.at >= stallMs) {
      const ticks = cpuTicks(pid);
      if (ticks === undefined) return;
      // Under 0.2% of one CPU through the whole window: nothing is running.
      if (ticks - window.ticks < (stallMs / 1000) * 0.2) {
        settle({
          passed: false,
          stalled: true,
          reason: `the guest stalled: no console output and no CPU use for ${Math.round(stallMs / 1000)} s (every vCPU halted)`,
        });
      } else {
        window = { at: now, ticks }; // busy but quiet: look again later
      }
    }
  }, every);
}

/** WatchOptions.monitor: asks QEMU's monitor every `everyMs`; a console failure already written outranks it. */
function monitorProbe(
  qmp: string,
  serial: ConsoleTail,
  opts: WatchOptions,
  settled: () => boolean,
  settle: (r: Verdicted) => void,
): NodeJS.Timeout | undefined {
  const probe = opts.monitor;
  if (!probe) return undefined;
  const hmp = async (command: string) =>
    String(await qmpCommand(qmp, 'human-monitor-command', { 'command-line': command }, 5000));
  let probing = false;
  return setInterval(() => {
    if (probing || settled()) return;
    probing = true;
    probe.probe(hmp).then(
      (v) => {
        probing = false;
        if (!v || settled()) return;
        serial.readNew(settled);
        settle(verdictOf(v));
      },
      () => {
        probing = false; // QEMU not listening yet, or going away: the console and the timer decide
      },
    );
  }, probe.everyMs);
}

/** A PNG of the display at the verdict (best effort: a failure is a warning). */
async function screenshotOf(qmp: string, opts: WatchOptions): Promise<string | undefined> {
  if (!opts.screenshotFile) return undefined;
  try {
    const ppm = path.join(opts.workDir, `screen-${process.pid}.ppm`);
    await qmpCommand(qmp, 'screendump', { filename: ppm }, 5000);
    fs.writeFileSync(opts.screenshotFile, ppmToPng(fs.readFileSync(ppm)));
    fs.rmSync(ppm, { force: true });
    return opts.screenshotFile;
  } catch (e) {
    opts.log.warning(`screenshot failed: ${errorMessage(e)}`);
    return undefined;
  }
}

/**
 * An oops on an int3 trap in kernel mode, under TCG: QEMU's multi-threaded translator can let one
 * vCPU run the breakpoint byte the kernel writes while it patches its own code (text_poke_bp) on
 * another vCPU. Real CPUs and KVM do not show it; it is a fault of the emulator, not a verdict on
 * the image, so it earns one more boot like a stall. Every other oops or panic stays a verdict.
 */
export function tcgCodePatchFault(accel: string, consoleText: string): boolean {
  return accel === 'tcg' && /Oops: int3: [0-9a-f]+ \[#\d+\]/.test(consoleText);
}

function emulatorFault(spec: QemuSpec, r: BootResult, logFile: string): boolean {
  if (r.passed || r.stalled) return false;
  try {
    return tcgCodePatchFault(spec.accel, fs.readFileSync(logFile, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * bootAndWatch, booted again when the guest stalled or hung, or hit TCG's code-patching fault (a
 * VM fault, not a verdict on the image), up to `attempts` boots in all. `opts.timeoutMs` bounds all attempts together: a retry
 * gets what is left, and none starts with less than `minAttemptMs` left. The console of a
 * stalled attempt is kept beside the log (`keptLogs`).
 */
export async function bootWithRetry(
  spec: QemuSpec,
  opts: WatchOptions,
  retry: {
    attempts?: number;
    minAttemptMs?: number;
    /** Per-boot set-up (e.g. a fresh swtpm, which exits with QEMU). */
    before?: (spec: QemuSpec) => Promise<QemuSpec>;
  } = {},
): Promise<BootResult & { attempts: number; retried: string[]; keptLogs: string[] }> {
  const attempts = retry.attempts ?? 2;
  const minAttemptMs = retry.minAttemptMs ?? 60_000;
  const deadline = Date.now() + opts.timeoutMs;
  const retried: string[] = [];
  const keptLogs: string[] = [];
  for (let i = 1; ; i++) {
    const timeoutMs = Math.max(1000, deadline - Date.now());
    const r = await bootAndWatch(retry.before ? await retry.before(spec) : spec, { ...opts, timeoutMs });
    if (r.timedOut && i > 1) r.reason = `${timedOutReason(opts.timeoutMs, i)}${stillStarting(r.pendingJobs)}`;
    const fault = r.stalled || emulatorFault(spec, r, opts.logFile);
    if (!fault || i >= attempts || deadline - Date.now() < minAttemptMs)
      return { ...r, attempts: i, retried, keptLogs };
    if (!r.stalled) r.reason = `${r.reason} (an int3 oops in kernel text under TCG: the emulator's fault)`;
    const kept = `${opts.logFile}.attempt-${i}`;
    fs.copyFileSync(opts.logFile, kept);
    keptLogs.push(kept);
    retried.push(`attempt ${i}: ${r.reason} after ${r.seconds.toFixed(0)} s (console kept as ${path.basename(kept)})`);
    opts.log.warning(
      `boot attempt ${i} of ${attempts}: ${r.reason} after ${r.seconds.toFixed(0)} s; booting again from the same disk (console kept as ${kept})`,
    );
  }
}

/**
 * A fresh directory for UNIX sockets, under the system temp directory: a socket path holds at
 * most 107 bytes, and a work directory under a long checkout does not leave room for one.
 */
function socketDir(kind: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `keel-${kind}-`));
}

/**
 * Starts swtpm (TPM 2.0) on a socket through the command runner; the returned stop() ends it
 * (TERM, then KILL) and reaps it. It also exits on its own when QEMU disconnects (--terminate).
 */
export async function startSwtpm(
  dir: string,
  log: Logger,
  runner: CommandRunner = processRunner(log),
): Promise<{ socket: string; stop: () => Promise<void> }> {
  fs.mkdirSync(dir, { recursive: true });
  const sockets = socketDir('tpm');
  const socket = path.join(sockets, 'swtpm.sock');
  const abort = new AbortController();
  let err = '';
  let running = true;
  const done = runner
    .run(
      'swtpm',
      ['socket', '--tpm2', '--tpmstate', `dir=${dir}`, '--ctrl', `type=unixio,path=${socket}`, '--terminate'],
      {
        stdout: 'ignore',
        signal: abort.signal,
        onStderrLine: (l) => void (err += `${l}\n`),
      },
    )
    .then(
      () => undefined,
      (e: unknown) => {
        if (!err) err = e instanceof CommandError ? e.stderr : errorMessage(e);
      },
    )
    .finally(() => (running = false));
  const stop = async () => {
    abort.abort();
    await done;
    fs.rmSync(sockets, { recursive: true, force: true });
  };
  for (let i = 0; i < 100 && !fs.existsSync(socket); i++) {
    if (!running) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!fs.existsSync(socket)) {
    await stop();
    throw new Error(running ? `swtpm did not create ${socket}: ${err.trim()}` : `swtpm exited: ${err.trim()}`);
  }
  log.debug(`swtpm listening on ${socket}`);
  return { socket, stop };
}

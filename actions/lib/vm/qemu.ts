import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { onCleanup } from '../cleanup.js';
import { errorMessage, UserError } from '../errors.js';
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
 *   (manager_dispatch_idle_pipe_fd sets no_console_output). A slow boot (TCG on a loaded runner)
 *   then reaches multi-user in silence. Seen here: the journal said "Reached target
 *   multi-user.target" at 70 s, the console's status lines had stopped at getty.target at 56 s.
 *   devkmsg=on lifts the kernel's 10-lines-per-5-s limit on /dev/kmsg writers.
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
 * a few failed writes to a congested backend (seen here under load: lines lost letters), and a
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
    'none',
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

export async function bootAndWatch(spec: QemuSpec, opts: WatchOptions): Promise<BootResult> {
  const sockets = socketDir('qmp');
  const qmp = path.join(sockets, 'qmp.sock');
  fs.writeFileSync(opts.logFile, '');
  const args = qemuArgs(spec, qmp, opts.logFile);
  opts.log.info(`$ ${QEMU} ${args.join(' ')}`);
  const started = Date.now();
  const child = spawn(QEMU, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  const killGroup = (sig: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, sig);
    } catch {
      /* gone */
    }
  };
  const unregister = onCleanup(() => killGroup('SIGKILL'));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('close', (code, signal) => r({ code, signal })),
  );
  const tail: string[] = [];
  const jobs = new StartJobs();
  let stderr = '';
  let stopTail = () => {};

  const result = await new Promise<Omit<BootResult, 'seconds' | 'tail' | 'screenshot'>>((resolve) => {
    let partial = '';
    let settled = false;
    const settle = (r: Omit<BootResult, 'seconds' | 'tail' | 'screenshot'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const pending = jobs.pending();
      // No verdict line: say what the boot was still waiting for.
      if (!r.passed && !r.verdictLine && pending.length)
        resolve({ ...r, pendingJobs: pending, reason: `${r.reason}${stillStarting(pending)}` });
      else resolve(r);
    };
    const timer = setTimeout(
      () => settle({ passed: false, timedOut: true, reason: timedOutReason(opts.timeoutMs, 1) }),
      opts.timeoutMs,
    );
    child.stderr.on('data', (d: Buffer) => {
      const s = d.toString();
      stderr = (stderr + s).slice(-4000);
      if (!opts.watchStderr) return;
      for (const raw of s.split('\n')) {
        const v = opts.matcher.feed(raw);
        if (v?.kind === 'fail') settle({ passed: false, reason: `QEMU: ${v.line}`, verdictLine: v.line });
      }
    });
    const feed = (raw: string) => {
      const clean = stripAnsi(raw);
      tail.push(clean);
      if (tail.length > 200) tail.shift();
      jobs.feed(clean);
      opts.onLine?.(clean);
      const v = opts.matcher.feed(raw);
      if (v)
        settle({
          passed: v.kind === 'pass',
          reason: v.kind === 'pass' ? `reached: ${v.line}` : v.line,
          verdictLine: v.line,
        });
    };
    // Tail the serial log: read what QEMU appended since the last look.
    const fd = fs.openSync(opts.logFile, 'r');
    let offset = 0;
    const chunk = Buffer.alloc(1 << 16);
    const decoder = new StringDecoder('utf8'); // a read may end inside a multi-byte character
    const readNew = () => {
      for (;;) {
        const n = fs.readSync(fd, chunk, 0, chunk.length, offset);
        if (n <= 0) break;
        offset += n;
        partial += decoder.write(chunk.subarray(0, n));
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const raw of lines) {
          if (settled) return;
          feed(raw);
        }
      }
    };
    const poll = setInterval(readNew, 100);
    const stallMs = opts.stallMs ?? 120_000;
    const quietMs = opts.quietMs ?? 0;
    // Since when the console has not grown, and QEMU's CPU time at the start of the current
    // stall window. Sampled here, off the console's read path.
    let lastGrowth = { offset: 0, at: Date.now() };
    let window: { at: number; ticks: number } | undefined;
    const silenceCheck =
      stallMs > 0 || quietMs > 0
        ? setInterval(
            () => {
              if (settled || !child.pid) return;
              const now = Date.now();
              if (offset !== lastGrowth.offset) {
                lastGrowth = { offset, at: now }; // new output: every window starts again
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
                const ticks = cpuTicks(child.pid);
                if (ticks !== undefined) window = { at: now, ticks };
              } else if (stallMs > 0 && now - window.at >= stallMs) {
                const ticks = cpuTicks(child.pid);
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
            },
            Math.max(250, Math.min(5000, ...[stallMs, quietMs].filter((v) => v > 0).map((v) => v / 4))),
          )
        : undefined;
    const hmp = async (command: string) =>
      String(await qmpCommand(qmp, 'human-monitor-command', { 'command-line': command }, 5000));
    let probing = false;
    const monitor = opts.monitor
      ? setInterval(() => {
          if (probing || settled) return;
          probing = true;
          opts.monitor!.probe(hmp).then(
            (v) => {
              probing = false;
              if (!v || settled) return;
              readNew(); // a failure already on the console outranks the monitor's verdict
              settle({
                passed: v.kind === 'pass',
                reason: v.kind === 'pass' ? `reached: ${v.line}` : v.line,
                verdictLine: v.line,
              });
            },
            () => {
              probing = false; // QEMU not listening yet, or going away: the console and the timer decide
            },
          );
        }, opts.monitor.everyMs)
      : undefined;
    stopTail = () => {
      clearInterval(poll);
      if (silenceCheck) clearInterval(silenceCheck);
      if (monitor) clearInterval(monitor);
      readNew();
      fs.closeSync(fd);
    };
    child.on('error', (e) => settle({ passed: false, reason: `could not start ${QEMU}: ${errorMessage(e)}` }));
    void exited.then(({ code, signal }) => {
      readNew();
      if (settled) return;
      if (partial) {
        const v = opts.matcher.feed(partial);
        tail.push(stripAnsi(partial));
        if (v)
          return settle({
            passed: v.kind === 'pass',
            reason: v.kind === 'pass' ? `reached: ${v.line}` : v.line,
            verdictLine: v.line,
          });
      }
      const err = stderr.trim().split('\n').slice(-3).join(' ');
      settle({
        passed: false,
        reason: `QEMU exited (${signal ?? `code ${code}`}) before a verdict${err ? `: ${err}` : ''}`,
      });
    });
  });
  const seconds = (Date.now() - started) / 1000;

  let screenshot: string | undefined;
  if (opts.screenshotFile && child.exitCode === null) {
    try {
      const ppm = path.join(opts.workDir, `screen-${process.pid}.ppm`);
      await qmpCommand(qmp, 'screendump', { filename: ppm }, 5000);
      fs.writeFileSync(opts.screenshotFile, ppmToPng(fs.readFileSync(ppm)));
      fs.rmSync(ppm, { force: true });
      screenshot = opts.screenshotFile;
    } catch (e) {
      opts.log.warning(`screenshot failed: ${errorMessage(e)}`);
    }
  }

  if (child.exitCode === null && child.signalCode === null) {
    killGroup('SIGTERM');
    const t = setTimeout(() => killGroup('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  } else {
    await exited;
  }
  killGroup('SIGKILL'); // anything the leader left behind
  unregister();
  stopTail();
  fs.rmSync(sockets, { recursive: true, force: true });
  return { ...result, seconds, tail: tail.slice(-40), screenshot };
}

/**
 * bootAndWatch, booted again when the guest stalled or hung (a VM fault, not a verdict on the
 * image), up to `attempts` boots in all. `opts.timeoutMs` bounds all attempts together: a retry
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
    if (!r.stalled || i >= attempts || deadline - Date.now() < minAttemptMs)
      return { ...r, attempts: i, retried, keptLogs };
    const kept = `${opts.logFile}.attempt-${i}`;
    fs.copyFileSync(opts.logFile, kept);
    keptLogs.push(kept);
    retried.push(`attempt ${i}: ${r.reason} after ${r.seconds.toFixed(0)} s (console kept as ${path.basename(kept)})`);
    opts.log.warning(
      `boot attempt ${i} of ${attempts}: ${r.reason} after ${r.seconds.toFixed(0)} s; booting again from the same disk (console kept as ${kept})`,
    );
  }
}

/** Starts swtpm (TPM 2.0) on a socket; the returned stop() kills it. */
/**
 * A fresh directory for UNIX sockets, under the system temp directory: a socket path holds at
 * most 107 bytes, and work directories under a long checkout do not fit (seen: the QMP socket
 * under .keel/runs/<id>/jobs/boot/temp/… of a clone in a mktemp directory, and QEMU refused
 * to start).
 */
function socketDir(kind: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `keel-${kind}-`));
}

export async function startSwtpm(dir: string, log: Logger): Promise<{ socket: string; stop: () => Promise<void> }> {
  fs.mkdirSync(dir, { recursive: true });
  const sockets = socketDir('tpm');
  const socket = path.join(sockets, 'swtpm.sock');
  const child = spawn(
    'swtpm',
    ['socket', '--tpm2', '--tpmstate', `dir=${dir}`, '--ctrl', `type=unixio,path=${socket}`, '--terminate'],
    {
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
  const unregister = onCleanup(() => child.kill('SIGKILL'));
  const closed = new Promise<void>((r) => child.on('close', () => r()));
  const fail = (why: string) => {
    child.kill('SIGKILL');
    unregister();
    fs.rmSync(sockets, { recursive: true, force: true });
    return new Error(why);
  };
  for (let i = 0; i < 100 && !fs.existsSync(socket); i++) {
    if (child.exitCode !== null) throw fail(`swtpm exited: ${err.trim()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!fs.existsSync(socket)) throw fail(`swtpm did not create ${socket}: ${err.trim()}`);
  log.debug(`swtpm listening on ${socket}`);
  return {
    socket,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2000).unref())]);
      child.kill('SIGKILL');
      unregister();
      fs.rmSync(sockets, { recursive: true, force: true });
    },
  };
}

/**
 * Deciding a boot from the serial console: ANSI escapes stripped, failure patterns checked
 * first (they end the run at once with the matching line as the reason), then success.
 */
export const DEFAULT_SUCCESS: RegExp[] = [
  // systemd < 255: "Reached target Multi-User System."; >= 255: "Reached target multi-user.target - Multi-User System."
  /Reached target (?:multi-user\.target - )?Multi-User System/,
];

export const DEFAULT_FAILURE: RegExp[] = [
  /Kernel panic - not syncing[^\n]*/,
  /VFS: Cannot open root device[^\n]*/,
  /Cannot open root device[^\n]*/,
  /Failed to switch root[^\n]*/,
  /Failed to start [^\n]*Switch Root[^\n]*/,
  /You are in (?:emergency|rescue) mode[^\n]*/,
  /Reached target (?:emergency\.target - )?Emergency Mode/,
  /Reached target (?:rescue\.target - )?Rescue Mode/,
  /Entering emergency mode[^\n]*/,
  /Starting [^\n]*Emergency Shell/,
  /dracut-emergency|Dropping to debug shell/,
  /No working init found[^\n]*/,
  // systemd in the initrd, when the real root has no init: it says so, then freezes silently.
  /Switch root target contains no usable init[^\n]*/,
  /Failed to execute [^\n]*init[^\n]*/,
  /Freezing execution[^\n]*/,
  /Timed out waiting for device[^\n]*/,
  /Give root password for maintenance/,
];

// CSI, OSC and two-character escapes, plus stray carriage returns and NULs.
// eslint-disable-next-line no-control-regex -- escape characters are what is being stripped
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]|\r|\0/g;

export function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}

export interface Verdict {
  kind: 'pass' | 'fail';
  line: string;
  pattern: string;
}

export class VerdictMatcher {
  constructor(
    readonly success: RegExp[] = DEFAULT_SUCCESS,
    readonly failure: RegExp[] = DEFAULT_FAILURE,
  ) {}

  /** Feeds one line (already split); returns a verdict when the line decides the boot. */
  feed(rawLine: string): Verdict | undefined {
    const line = stripAnsi(rawLine).trim();
    if (!line) return undefined;
    for (const re of this.failure) if (re.test(line)) return { kind: 'fail', line, pattern: re.source };
    for (const re of this.success) if (re.test(line)) return { kind: 'pass', line, pattern: re.source };
    return undefined;
  }
}

/**
 * The start jobs still running, from PID 1's log lines on the console (see TEST_CONSOLE_ARGS:
 * systemd.log_target=kmsg). Said when a boot ends without a verdict, it names what the boot
 * was waiting for: "timed out …; still starting: foo.service".
 */
export class StartJobs {
  private readonly running = new Set<string>();

  feed(rawLine: string): void {
    const line = stripAnsi(rawLine);
    const i = line.indexOf('systemd[1]: ');
    if (i < 0) return;
    const msg = line.slice(i + 'systemd[1]: '.length).trim();
    if (/^Switching root\b/.test(msg)) return this.running.clear();
    const started = /^Starting (\S+\.[a-z]+)\b.*\.\.\.$/.exec(msg);
    if (started) return void this.running.add(started[1]!);
    const done =
      /^(?:Started|Finished|Failed to start|Stopped|Mounted|Failed to mount|Activated swap|Reached target|Listening on) (\S+\.[a-z]+)\b/.exec(
        msg,
      );
    if (done) return void this.running.delete(done[1]!);
    const ended =
      /^(\S+\.[a-z]+): (?:Failed with result|Deactivated successfully|Start request repeated too quickly)/.exec(msg);
    if (ended) this.running.delete(ended[1]!);
  }

  /** Units with a "Starting …" line and no end yet, in the order they started. */
  pending(): string[] {
    return [...this.running];
  }
}

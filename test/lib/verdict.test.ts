// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { StartJobs, stripAnsi, VerdictMatcher } from '../../actions/lib/vm/verdict.js';
import { TEST_CONSOLE_ARGS } from '../../actions/lib/vm/qemu.js';
import { consoleFixture, firstVerdict } from '../harness/console.js';

// A real serial console (this repo's example distro, UEFI backend, TCG with a second VM running
// beside it) in which serial-getty@ttyS0 gives up waiting for the boot's jobs and PID 1 stops
// writing status lines: "[  OK  ] Reached target multi-user…" never comes. The boot is fine,
// and PID 1's log line, routed through the kernel log, says so. (The capture's command line also
// has sysrq_always_enabled and a debug shell on ttyS1; neither changes the verdict.)
const capture = consoleFixture('uefi-getty-silences-status.serial');
const verdictOf = (lines: string[]) => firstVerdict(new VerdictMatcher(), lines);

describe('the verdict survives systemd silencing its console status', () => {
  it("the test boot routes PID 1's log through the kernel log, unthrottled", () => {
    expect(TEST_CONSOLE_ARGS.split(' ')).toEqual(
      expect.arrayContaining(['systemd.log_target=kmsg', 'printk.devkmsg=on']),
    );
    expect(capture.find((l) => l.includes('Command line:'))).toContain('systemd.log_target=kmsg printk.devkmsg=on');
  });

  it('status lines alone give no verdict: they stop after the serial getty starts', () => {
    const status = capture.map(stripAnsi).filter((l) => !l.includes('systemd[1]: '));
    expect(status.some((l) => l.includes('Started serial-getty@ttyS0.service'))).toBe(true);
    expect(verdictOf(status)).toBeUndefined();
  });

  it('the kernel-log line of PID 1 passes the boot', () => {
    expect(verdictOf(capture)).toEqual({
      kind: 'pass',
      line: expect.stringMatching(
        /^\[ +\d+\.\d+\] systemd\[1\]: Reached target multi-user\.target - Multi-User System\.$/,
      ),
      pattern: expect.any(String),
    });
  });
});

describe('StartJobs', () => {
  const upTo = (marker: RegExp) => {
    const j = new StartJobs();
    for (const l of capture) {
      j.feed(l);
      if (marker.test(l)) break;
    }
    return j.pending();
  };

  it('names the start jobs still running at a point of the boot', () => {
    expect(upTo(/systemd\[1\]: Reached target getty\.target/)).toEqual([
      'dbus.service',
      'e2scrub_reap.service',
      'systemd-logind.service',
    ]);
  });

  it("forgets the initrd's jobs at the switch to the real root, and ends with none", () => {
    expect(upTo(/systemd\[1\]: Switching root/)).toEqual([]);
    expect(upTo(/$^/)).toEqual([]);
  });

  it("reads PID 1's lines only, and every way a job ends", () => {
    const j = new StartJobs();
    for (const l of [
      '[    1.0] systemd[1]: Starting a.service - A...',
      '[    1.1] systemd[1]: Starting b.service - B...',
      '[    1.2] systemd[1]: Starting c.mount - C...',
      '[    1.3] systemd[1]: Starting d.service - D...',
      '[    1.4] systemd-journald[99]: Starting e.service - not PID 1...',
      '         Starting f.service - a status line, not a log line...',
      '[    2.0] systemd[1]: a.service: Deactivated successfully.',
      '[    2.1] systemd[1]: Failed to start b.service - B.',
      '[    2.2] systemd[1]: Mounted c.mount - C.',
    ])
      j.feed(l);
    expect(j.pending()).toEqual(['d.service']);
  });
});

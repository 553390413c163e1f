// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { shutdownCutOff } from '../../actions/update-test/src/boots.js';
import { repoRoot } from '../../workflows-src/action-specs.js';

/**
 * A real capture (TCG under load, the demo's update test): the probe finished (done=ok), systemd
 * shut down and asked for a reboot, and QEMU (-no-reboot) exited on the guest's reset before the
 * kernel's "reboot: Restarting system" reached the console. That boot did what the probe asked.
 */
const tail = fs
  .readFileSync(path.join(repoRoot, 'test/fixtures/update-boot-restart-cut-off.serial'), 'utf8')
  .split('\n')
  .slice(-40);
const exited = { passed: false, reason: 'QEMU exited (code 0) before a verdict', tail };

describe('a shutdown whose restart line QEMU cut off', () => {
  it('the captured console: systemd-shutdown rebooted, no kernel restart line', () => {
    expect(tail.some((l) => /systemd-shutdown\[1\]: Rebooting\./.test(l))).toBe(true);
    expect(tail.some((l) => /reboot: Restarting system/.test(l))).toBe(false);
  });

  it('counts as the probe’s shutdown after the probe finished and QEMU exited cleanly', () => {
    expect(shutdownCutOff(exited, true)).toBe(true);
  });

  it.each([
    ['the probe did not finish', exited, false],
    ['QEMU failed', { ...exited, reason: 'QEMU exited (code 1) before a verdict' }, true],
    ['QEMU was killed', { ...exited, reason: 'QEMU exited (SIGKILL) before a verdict' }, true],
    [
      'systemd never reached its final shutdown line',
      { ...exited, tail: tail.filter((l) => !/systemd-shutdown/.test(l)) },
      true,
    ],
    ['the boot timed out', { ...exited, reason: 'no verdict within 900 s' }, true],
  ])('not when %s', (_why, r, probeDone) => {
    expect(shutdownCutOff(r, probeDone)).toBe(false);
  });
});

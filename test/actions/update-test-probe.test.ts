// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { expectEnv, PROBE_SCRIPT, ProbeMarkers, UNIT_TEXT } from '../../actions/update-test/src/probe.js';

/**
 * The guest side of update-test without a guest: the probe script must be valid for the shells
 * an image may have as /bin/sh, its markers are read only for this run and this boot, and the
 * expectations it sources cannot carry shell syntax. (It runs for real in update-test.test.ts.)
 */
describe('update-test probe', () => {
  it.each(['dash', 'bash'])('is a valid %s script', (shell) => {
    const r = spawnSync(shell, ['-n'], { input: PROBE_SCRIPT, encoding: 'utf8' });
    expect([r.status, r.stderr]).toEqual([0, '']);
  });

  it('is started by its unit only on a test boot, after multi-user', () => {
    expect(UNIT_TEXT).toMatch(/^After=multi-user\.target$/m);
    expect(UNIT_TEXT).toMatch(/^ConditionKernelCommandLine=keel\.update-test$/m);
    expect(UNIT_TEXT).toMatch(/^ExecStart=\/bin\/sh \/etc\/keel-update-test\/probe\.sh$/m);
  });

  it("reads this run's markers of this boot only; the last value of a key wins", () => {
    const m = new ProbeMarkers('ab12cd34', 2);
    for (const line of [
      '[    0.000000] Command line: root=UUID=x rw keel.update-test=2',
      '[   43.6] keel-update-test[ab12cd34] boot=2 booted=aaaa',
      '[   43.7] keel-update-test[ffffffff] boot=2 booted=forged-by-another-run',
      '[   43.8] keel-update-test[ab12cd34] boot=1 staged=from-boot-1',
      'keel-update-test-1234 login: [   46.6] keel-update-test[ab12cd34] boot=2 etc-kept=yes var-kept=no',
      '[   47.0] keel-update-test[ab12cd34] boot=2 var-kept=yes',
    ])
      m.feed(line);
    expect(Object.fromEntries(m.report)).toEqual({ booted: 'aaaa', 'etc-kept': 'yes', 'var-kept': 'yes' });
  });

  it('writes plain expectations and refuses anything a shell would interpret', () => {
    const e = {
      nonce: 'ab12',
      previous: 'a'.repeat(64),
      candidate: 'b'.repeat(64),
      stateroot: 'default',
      token: 't0k',
      rollback: true,
    };
    expect(expectEnv(e)).toBe(
      `NONCE=ab12\nPREVIOUS=${'a'.repeat(64)}\nCANDIDATE=${'b'.repeat(64)}\nSTATEROOT=default\nTOKEN=t0k\nROLLBACK=true\nCANDIDATE_LABEL=keel-candidate\n`,
    );
    expect(() => expectEnv({ ...e, stateroot: 'x;reboot' })).toThrow(/stateroot is not plain/);
    expect(() => expectEnv({ ...e, token: '$(id)' })).toThrow(/token is not plain/);
  });
});

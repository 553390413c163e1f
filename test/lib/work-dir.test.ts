// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { contextFromEnv, workDir } from '../../actions/lib/context.js';
import { tmpdir } from '../harness/tools.js';

/**
 * The hops' work directory: KEEL_WORK_DIR (the free-disk step points it at the runner's largest
 * volume) over RUNNER_TEMP; a KEEL_WORK_DIR that is not an existing absolute directory fails.
 */
const dir = tmpdir('keel-work-dir-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('workDir', () => {
  it('KEEL_WORK_DIR when set, else RUNNER_TEMP, else the system temp directory', () => {
    expect(workDir({ KEEL_WORK_DIR: dir, RUNNER_TEMP: '/runner/temp' })).toBe(dir);
    expect(workDir({ KEEL_WORK_DIR: '', RUNNER_TEMP: '/runner/temp' })).toBe('/runner/temp');
    expect(workDir({ RUNNER_TEMP: '/runner/temp' })).toBe('/runner/temp');
    expect(workDir({})).toBe(os.tmpdir());
    expect(contextFromEnv({ KEEL_WORK_DIR: dir }).runnerTemp).toBe(dir);
  });

  it.each([
    ['a relative path', 'keel-work'],
    ['a missing directory', '/nonexistent/keel-work'],
    ['a file', 'FILE'],
  ])('refuses %s, naming KEEL_WORK_DIR', (_what, value) => {
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, '');
    const v = value === 'FILE' ? file : value;
    expect(() => workDir({ KEEL_WORK_DIR: v, RUNNER_TEMP: '/runner/temp' })).toThrow(
      `KEEL_WORK_DIR: expected an absolute path to an existing directory, got ${JSON.stringify(v)}`,
    );
  });
});

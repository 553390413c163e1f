// test-kind: integration
import { describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { repoRoot } from '../../workflows-src/action-specs.js';
import { errors, runAction } from '../harness/run-action.js';

/** A bundle started with a KEEL_WORK_DIR it cannot use fails the step, naming it, before any work. */
describe('KEEL_WORK_DIR in a hop’s bundle', () => {
  it.each(['relative/work', '/nonexistent/keel-work'])(
    '%s: the step fails naming KEEL_WORK_DIR, no output',
    async (value) => {
      const r = await runAction({
        action: 'settings',
        inputs: { declarations: path.join(repoRoot, 'declarations/distro.yaml') },
        env: { KEEL_WORK_DIR: value },
      });
      expect(r.code).not.toBe(0);
      expect(errors(r)).toEqual([
        `KEEL_WORK_DIR: expected an absolute path to an existing directory, got ${JSON.stringify(value)}`,
      ]);
      expect(r.outputs).toEqual({});
    },
  );
});

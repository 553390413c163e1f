// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { lineLog } from '../../actions/build/src/buildah.js';
import { displayArgv, processRunner } from '../../actions/lib/exec.js';
import { redact, Redactor } from '../../actions/lib/redact.js';

/** The one masking rule, and the places that use it: the tool runner's argv and stderr, the build log. */
describe('redaction', () => {
  const key = '-----BEGIN KEY-----\nAbCdEf0123456789\n-----END KEY-----\n';

  it('masks a value, each of its lines, and its JSON-escaped form, longest first', () => {
    const r = new Redactor(['pw', key, 'pw-longer', '']);
    expect(r.apply('pw and pw-longer')).toBe('*** and ***');
    expect(r.apply('the line AbCdEf0123456789')).toBe('the line ***');
    expect(r.apply(JSON.stringify({ k: key }))).toBe('{"k":"***"}');
    expect(redact('token=pw', ['pw'])).toBe('token=***');
    expect(redact('nothing to hide', [])).toBe('nothing to hide');
  });

  it('skips values shorter than minLength (the local runner uses GitHub’s 3)', () => {
    expect(new Redactor(['ab'], { minLength: 3 }).apply('ab cd')).toBe('ab cd');
    expect(new Redactor(['ab']).apply('ab cd')).toBe('*** cd');
  });

  it('the tool runner masks the argv it logs and the stderr it captures', async () => {
    expect(displayArgv('tool', ['--password', 'hunter2', `--key=${key}`], ['hunter2', key])).toBe(
      "tool --password *** '--key=***'",
    );
    const logged: string[] = [];
    const log = { info: (m: string) => logged.push(m), debug: (m: string) => logged.push(m), warning() {}, error() {} };
    const err = await processRunner(log)
      .run('sh', ['-c', 'echo "secret is $1 / AbCdEf0123456789" >&2; exit 3', 'sh', 'hunter2'], {
        redact: ['hunter2', key],
      })
      .catch((e: Error) => e);
    expect(String(err)).toContain('secret is *** / ***');
    expect(logged.join('\n')).not.toContain('hunter2');
  });

  it('the build log masks each line', () => {
    const lines: string[] = [];
    const w = lineLog((l) => lines.push(l), ['hunter2']);
    w.write('step 1: hunter2\nstep 2\n');
    w.end();
    expect(lines).toEqual(['step 1: ***', 'step 2']);
  });
});

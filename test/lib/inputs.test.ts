// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { recordingIO } from '../../actions/lib/io.js';
import {
  bool,
  digestRef,
  int,
  keyValues,
  list,
  oneOf,
  readInputs,
  releaseDate,
  secret,
  str,
} from '../../actions/lib/inputs.js';

const D = `sha256:${'b'.repeat(64)}`;

describe('input parsing', () => {
  const defs = {
    name: str({ required: true, expected: 'a name' }),
    on: bool(true),
    n: int({ default: 5, min: 1, max: 10 }),
    mode: oneOf(['a', 'b'] as const, 'a'),
    items: list(),
    labels: keyValues('='),
    date: releaseDate(),
    pw: secret(),
  };

  it('parses and defaults', () => {
    const io = recordingIO({ name: 'x', items: 'a\n\n# comment\nb\n', labels: 'k=v\nx=y=z', pw: 'hunter2' });
    const v = readInputs(io, defs);
    expect(v).toEqual({
      name: 'x',
      on: true,
      n: 5,
      mode: 'a',
      items: ['a', 'b'],
      labels: { k: 'v', x: 'y=z' },
      date: undefined,
      pw: 'hunter2',
    });
    expect(io.secrets).toEqual(['hunter2']);
  });

  it.each([
    [{ name: '' }, `Input 'name': it is required: expected a name`],
    [{ name: 'x', on: 'yes' }, `Input 'on' has value "yes": expected true or false`],
    [{ name: 'x', n: '0' }, `Input 'n' has value "0": expected an integer >= 1 <= 10`],
    [{ name: 'x', mode: 'c' }, `Input 'mode' has value "c": expected one of: a, b`],
    [
      { name: 'x', labels: 'novalue' },
      `Input 'labels' has value "novalue": expected newline-separated key=value lines; "novalue" has no '='`,
    ],
    [
      { name: 'x', date: '20260230' },
      `Input 'date' has value "20260230": expected a UTC date YYYYMMDD (a real calendar day)`,
    ],
  ])('%j fails with %s', (inputs, msg) => {
    expect(() => readInputs(recordingIO(inputs), defs)).toThrow(msg);
  });

  it('masks a secret before validation fails on another input, and never echoes it', () => {
    const io = recordingIO({ name: 'x', on: 'nope', pw: 'topsecret' });
    expect(() => readInputs(io, defs)).toThrow(/'on'/);
    expect(io.secrets).toEqual(['topsecret']);
  });

  it('digest-only inputs refuse tags with the reason', () => {
    const d = { 'image-ref': digestRef('the promoted digest must be the one that was tested') };
    expect(readInputs(recordingIO({ 'image-ref': `ghcr.io/o/i@${D}` }), d)['image-ref'].digest).toBe(D);
    expect(() => readInputs(recordingIO({ 'image-ref': 'ghcr.io/o/i:candidate' }), d)).toThrow(
      `Input 'image-ref' has value "ghcr.io/o/i:candidate": not a valid image reference: a digest reference (repo@sha256:...) is required, not a tag: the promoted digest must be the one that was tested`,
    );
  });
});

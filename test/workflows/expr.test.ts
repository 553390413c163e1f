// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import {
  and,
  concat,
  contains,
  eq,
  evaluate,
  evaluateCondition,
  exprText,
  github,
  input,
  lines,
  lit,
  ne,
  not,
  or,
  secret,
  startsWith,
  template,
  valueText,
  type Expr,
} from '../../workflows-src/expr.js';

/** Structured expressions: one rendering for GitHub, one evaluation for a local runner. */
const step = (s: string, o: string): Expr => ({ kind: 'step-output', step: s, output: o });
const job = (j: string, o: string): Expr => ({ kind: 'job-output', job: j, output: o });

describe('expressions', () => {
  it('render to GitHub syntax with the parentheses precedence needs', () => {
    expect(exprText(or(eq(github('event_name'), 'push'), and(ne(input('x'), ''), not(eq(secret('S'), 'a')))))).toBe(
      "github.event_name == 'push' || (inputs.x != '' && !(secrets.S == 'a'))",
    );
    expect(exprText(and(or(lit(true), lit(false)), lit(1)))).toBe('(true || false) && 1');
    expect(exprText(lit("it's"))).toBe("'it''s'");
    expect(exprText(contains(github('event.pull_request.labels.*.name'), 'vm-test'))).toBe(
      "contains(github.event.pull_request.labels.*.name, 'vm-test')",
    );
    expect(exprText(startsWith(job('boot', 'image-ref'), concat(input('image'), '@sha256:')))).toBe(
      "startsWith(needs.boot.outputs.image-ref, format('{0}@sha256:', inputs.image))",
    );
    expect(exprText(concat('a{b}', step('s', 'o')))).toBe("format('a{{b}}{0}', steps.s.outputs.o)");
  });

  it('render as values: constants as they are, run-time parts as ${{ }}', () => {
    expect(valueText(concat('x-', step('date', 'release-date')))).toBe('x-${{ steps.date.outputs.release-date }}');
    expect(valueText(lines('a', job('b', 'c')))).toBe('a\n${{ needs.b.outputs.c }}');
    expect(valueText(lit(3))).toBe(3);
  });

  it('templates expand at generation time when static, and stay structured when not', () => {
    expect(template('my-os-{date}', { date: lit('20261122') })).toEqual(lit('my-os-20261122'));
    const t = template('my-os-{date}.iso', { date: job('disk', 'release-date') });
    expect(t.kind).toBe('template');
    expect(valueText(t)).toBe('my-os-${{ needs.disk.outputs.release-date }}.iso');
    expect(evaluate(t, { jobOutput: () => '20261122' })).toBe('my-os-20261122.iso');
    expect(() => evaluate(t, { jobOutput: () => 'today' })).toThrow(/not YYYYMMDD/);
    expect(() => template('x-{file}', { date: lit('20261122') })).toThrow(/\{file\}/);
  });

  it('evaluate like GitHub: || picks the first non-empty value, comparisons ignore case', () => {
    const ctx = { stepOutput: () => '', input: (n: string) => (n === 'image-ref' ? 'r@sha256:1' : '') };
    expect(evaluate(or(step('handoff', 'image-ref'), input('image-ref')), ctx)).toBe('r@sha256:1');
    expect(evaluateCondition(eq(lit('Success'), 'success'), {})).toBe(true);
    expect(evaluateCondition(contains(github('labels'), 'vm-test'), { github: () => ['docs', 'VM-TEST'] })).toBe(true);
    expect(evaluateCondition({ kind: 'status', fn: 'success' }, { status: 'failure' })).toBe(false);
    expect(evaluateCondition({ kind: 'status', fn: 'always' }, { status: 'failure' })).toBe(true);
  });

  it('refuses hand-typed expression text in a constant', () => {
    expect(() => lit('${{ secrets.X }}')).toThrow(/must not contain an expression/);
  });
});

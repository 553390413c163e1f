// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import path from 'node:path';
import ts from 'typescript';
import { ACTION_TYPES_FILE, renderActionTypes } from '../../workflows-src/action-specs.js';
import { lit, type Expr } from '../../workflows-src/expr.js';
import { job, keel, runStep } from '../../workflows-src/model.js';
import { root } from './helpers.js';

/**
 * Step wiring is typed: a renamed output or input breaks the build (tsc), not a release.
 *
 * 1. Compile-time: the `@ts-expect-error` lines below must each be an error, or `tsc --noEmit -p .`
 *    (npm run lint) fails with "Unused '@ts-expect-error' directive".
 * 2. The same through the compiler: the generators are type-checked against a copy of
 *    actions.generated.ts in which one output (or input) of an action is renamed, as if its
 *    action.yml had changed; the generator that reads it must stop compiling.
 */
export function compileTimeChecks(): void {
  const push = keel.push('push', { source: 'oci:/tmp/x:keel', image: 'ghcr.io/o/x' });
  void push.outputs.digest;
  void push.outputs['image-ref'];
  // @ts-expect-error push declares no output 'manifest-digest'
  void push.outputs['manifest-digest'];
  // @ts-expect-error push has no input 'sorce' (and then misses 'source')
  keel.push('push', { sorce: 'oci:/tmp/x', image: 'ghcr.io/o/x' });
  // @ts-expect-error push requires 'image'
  keel.push('push', { source: 'oci:/tmp/x' });
  // @ts-expect-error sign's registry password is 'registry-password' ('password' is the key's)
  keel.sign('sign', { 'image-ref': push.outputs['image-ref'], 'registry-pasword': 'x' });
  // @ts-expect-error a Keel step's input takes an Expr or a constant, not an object of another shape
  keel.resolve('r', { image: { kind: 'nope' } });
  // @ts-expect-error there is no 'publish' action
  void keel.publish;
  const date = runStep({
    id: 'date',
    name: 'date',
    run: 'true',
    local: { local: 'release-date' },
    outputs: ['release-date'],
  });
  void date.outputs['release-date'];
  // @ts-expect-error the run step declares only 'release-date'
  void date.outputs.date;
  const j = job('build', {
    name: 'b',
    runsOn: 'ubuntu-24.04',
    timeoutMinutes: 5,
    permissions: {},
    outputs: { digest: push.outputs.digest },
    steps: [date, push],
  });
  void j.refs.digest;
  // @ts-expect-error the job declares only 'digest'
  void j.refs['image-ref'];
  // @ts-expect-error no such permission scope
  job('x', { name: 'x', runsOn: 'u', timeoutMinutes: 1, permissions: { packagez: 'write' }, steps: [] });
}

/** Type-checks workflows-src with actions.generated.ts replaced by `generated`; returns the errors. */
function typecheckGenerators(generated: string): string[] {
  const cfg = ts.readConfigFile(path.join(root, 'tsconfig.json'), (f) => ts.sys.readFile(f));
  const parsed = ts.parseJsonConfigFileContent(cfg.config, ts.sys, root);
  const options = { ...parsed.options, noEmit: true };
  const target = path.join(root, ACTION_TYPES_FILE);
  const host = ts.createCompilerHost(options, true);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (file, lang, onError, fresh) =>
    path.resolve(file) === target
      ? ts.createSourceFile(file, generated, lang)
      : getSourceFile(file, lang, onError, fresh);
  const readFile = host.readFile.bind(host);
  host.readFile = (file) => (path.resolve(file) === target ? generated : readFile(file));
  const program = ts.createProgram([path.join(root, 'workflows-src', 'index.ts')], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.category === ts.DiagnosticCategory.Error)
    .map((d) => {
      const where = d.file
        ? `${path.relative(root, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}`
        : '';
      return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
    });
}

describe('typed step wiring', () => {
  it('builders reject what the types reject, at run time too (hand-built objects stay honest)', () => {
    expect(() => keel.push('push', { sorce: 'x', image: 'y' } as never)).toThrow("push: unknown input 'sorce'");
    expect(() => keel.push('push', { source: 'x' } as never)).toThrow("push: missing required input 'image'");
    expect(Object.keys(keel.push('push', { source: 'x', image: 'y' }).outputs).sort()).toEqual([
      'digest',
      'image-ref',
      'tags',
    ]);
    // Generation without type-checking (tsx) still stops at an output that no longer exists.
    const push = keel.push('push', { source: 'x', image: 'y' });
    const gone = (push.outputs as Record<string, Expr>)['manifest-digest'];
    expect(() =>
      job('j', { name: 'j', runsOn: 'u', timeoutMinutes: 1, permissions: {}, outputs: { d: gone! }, steps: [] }),
    ).toThrow("job j output 'd' is undefined");
    expect(() => keel.promote('p', { 'image-ref': 'r@sha256:0', 'release-date': gone! })).toThrow(
      "promote input 'release-date' is undefined",
    );
    expect(() => lit('${{ github.event.issue.title }}')).toThrow(/must not contain an expression/);
    expect(() =>
      runStep({ name: 'x', run: 'echo ${{ github.event.issue.title }}', local: { local: 'skip', reason: 'x' } }),
    ).toThrow(/must not interpolate/);
  });

  it('the generators compile against the current generated types', () => {
    expect(typecheckGenerators(renderActionTypes())).toEqual([]);
  }, 120_000);

  it("renaming an output in action.yml (here: push digest → manifest-digest) breaks the generators' compilation", () => {
    const types = renderActionTypes();
    const renamed = types.replace(
      /export type PushOutput = ([^;]*)'digest'/,
      "export type PushOutput = $1'manifest-digest'",
    );
    expect(renamed).not.toBe(types);
    const errors = typecheckGenerators(renamed);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.join('\n')).toMatch(/workflows-src\/workflows\/build\.ts:\d+ .*digest/);
  }, 120_000);

  it('renaming an input (here: promote require-tag → required-tag) breaks it too', () => {
    const types = renderActionTypes();
    const renamed = types.replace("  'require-tag'?: Value;", "  'required-tag'?: Value;");
    expect(renamed).not.toBe(types);
    const errors = typecheckGenerators(renamed);
    expect(errors.join('\n')).toMatch(/workflows-src\/workflows\/smoke-boot\.ts:\d+ .*require-tag/);
  }, 120_000);
});

// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import type { InputDef } from '../../actions/lib/inputs.js';

/**
 * Repository invariants over every action: metadata conventions, inputs in action.yml equal
 * the zod definitions the code parses (names, required flags, defaults), every output the
 * code sets is declared, and the fixed public contract (../shared/spec/actions.md) is kept.
 */
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const hops = fs
  .readdirSync(path.join(root, 'actions'))
  .filter((d) => fs.existsSync(path.join(root, 'actions', d, 'action.yml')))
  .sort();

interface ActionYml {
  name: string;
  description: string;
  branding?: { icon?: string; color?: string };
  inputs?: Record<string, { description?: string; required?: boolean; default?: string }>;
  outputs?: Record<string, { description?: string }>;
  runs: { using: string; main: string };
}
const meta = (hop: string) =>
  parse(fs.readFileSync(path.join(root, 'actions', hop, 'action.yml'), 'utf8')) as ActionYml;

/** Contract rows from ../shared/spec/actions.md: action → input and output names. */
function contract(): Map<string, { inputs: string[]; outputs: string[] }> {
  const file = path.join(root, '..', 'shared', 'spec', 'actions.md');
  const rows = new Map<string, { inputs: string[]; outputs: string[] }>();
  if (!fs.existsSync(file)) return rows;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^\| `([a-z-]+)` \|(.*)\|(.*)\|(.*)\|\s*$/.exec(line);
    if (!m) continue;
    const names = (cell: string) =>
      [...cell.replace(/\([^)]*\)/g, '').matchAll(/`([a-z][a-z0-9-]*)`/g)].map((x) => x[1]!);
    rows.set(m[1]!, { inputs: [...names(m[2]!), ...names(m[3]!)], outputs: names(m[4]!) });
  }
  return rows;
}

describe('action metadata', () => {
  it('there are actions', () => expect(hops.length).toBeGreaterThan(0));

  it('reads the contract table (so the contract check cannot pass vacuously)', () => {
    const c = contract();
    expect([...c.keys()].sort()).toEqual([
      'build',
      'build-disk',
      'ia-upload',
      'promote',
      'push',
      'rechunk',
      'resolve',
      'sign',
      'site-bump',
      'smoke-boot',
      'validate',
      'verify',
    ]);
    expect(c.get('resolve')).toEqual({ inputs: ['image'], outputs: ['digest', 'image-ref', 'repository'] });
    expect(c.get('push')?.inputs).toEqual([
      'source',
      'image',
      'tags',
      'stream',
      'candidate-tag',
      'release-date',
      'retries',
    ]);
  });

  describe.each(hops)('%s', (hop) => {
    const m = meta(hop);

    it('follows the conventions (node24, bundle path, branding, descriptions)', () => {
      expect(m.runs.using).toBe('node24');
      expect(m.runs.main).toBe(`../../dist/${hop}/index.js`);
      expect(fs.existsSync(path.join(root, 'dist', hop, 'index.js'))).toBe(true);
      expect(m.name).toMatch(/^Keel: /);
      expect(m.description.length).toBeGreaterThan(20);
      expect(m.branding?.icon).toBeTruthy();
      expect(m.branding?.color).toBeTruthy();
      for (const [k, v] of Object.entries(m.inputs ?? {}))
        expect([k, (v.description ?? '').length > 10]).toEqual([k, true]);
      for (const [k, v] of Object.entries(m.outputs ?? {}))
        expect([k, (v.description ?? '').length > 10]).toEqual([k, true]);
    });

    it('declares exactly the inputs the code parses, with the same defaults and required flags', async () => {
      const mod = (await import(path.join(root, 'actions', hop, 'src', 'main.ts'))) as {
        inputs: Record<string, InputDef<unknown>>;
      };
      expect(Object.keys(m.inputs ?? {}).sort()).toEqual(Object.keys(mod.inputs).sort());
      for (const [name, def] of Object.entries(mod.inputs)) {
        const y = m.inputs![name]!;
        expect([name, Boolean(y.required)]).toEqual([name, Boolean(def.required)]);
        expect([name, y.default ?? '']).toEqual([name, def.default ?? '']);
      }
    });

    it('declares every output the code sets, and sets every declared output', () => {
      const srcDir = path.join(root, 'actions', hop, 'src');
      const src = fs
        .readdirSync(srcDir)
        .map((f) => fs.readFileSync(path.join(srcDir, f), 'utf8'))
        .join('\n');
      const set = new Set([...src.matchAll(/setOutput\(\s*'([a-z0-9-]+)'/g)].map((x) => x[1]!));
      expect([...set].sort()).toEqual(Object.keys(m.outputs ?? {}).sort());
    });

    it('keeps the public contract (../shared/spec/actions.md)', () => {
      const c = contract().get(hop);
      if (!c) return; // an action beyond the contract table
      const have = new Set(Object.keys(m.inputs ?? {}));
      for (const i of c.inputs) expect([i, have.has(i)]).toEqual([i, true]);
      const outs = new Set(Object.keys(m.outputs ?? {}));
      for (const o of c.outputs) expect([o, outs.has(o)]).toEqual([o, true]);
    });
  });
});

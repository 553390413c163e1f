// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { root } from '../workflows/helpers.js';

/**
 * What `npm pack` ships and what the docs tell users to run. The packed install itself is proved
 * end to end by test/e2e/adoption.test.ts; this holds the cheap invariants on every unit run.
 */
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  private?: boolean;
  bin: Record<string, string>;
  files: string[];
  dependencies?: Record<string, string>;
  scripts: Record<string, string>;
};

describe('the keel package', () => {
  it('needs no dependency at run time and is never published to the npm registry', () => {
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.private).toBe(true);
    expect(pkg.bin).toEqual({ keel: 'bin/keel.js' });
  });

  it('ships what the installed keel reads: bundles, the CLI bundle, bootstrap scripts, templates, stamp, docs', () => {
    for (const entry of [
      'bin/keel.js',
      'dist/',
      'actions/*/action.yml',
      'build_files/base/',
      'build_files/lib/',
      'templates/',
      'workflows-src/keel-release.json',
      'docs/',
    ])
      expect([entry, pkg.files.includes(entry)]).toEqual([entry, true]);
    expect(fs.existsSync(path.join(root, 'dist', 'cli', 'index.js'))).toBe(true);
    expect(fs.readFileSync(path.join(root, 'bin', 'keel.js'), 'utf8')).toContain("import('../dist/cli/index.js')");
    expect(pkg.scripts.prepack).toBe('node scripts/package-source.mjs');
  });

  it('no document tells anyone to run `npx keel …` (npm would fetch whatever package owns that name)', () => {
    const docs = ['README.md', 'CONTRIBUTING.md', 'workflows-src/README.md', 'build_files/README.md'];
    for (const d of fs.readdirSync(path.join(root, 'docs'))) docs.push(`docs/${d}`);
    for (const d of fs.readdirSync(path.join(root, 'actions')))
      if (fs.existsSync(path.join(root, 'actions', d, 'README.md'))) docs.push(`actions/${d}/README.md`);
    for (const d of docs.filter((f) => fs.existsSync(path.join(root, f)))) {
      const runs = fs.readFileSync(path.join(root, d), 'utf8').match(/npx keel [a-z]/g) ?? [];
      expect([d, runs]).toEqual([d, []]);
    }
  });
});

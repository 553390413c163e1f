// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Every test file says what kind it is on its first line, once (`// test-kind: unit` or
 * `// test-kind: integration`), and jest's two projects select files by that line alone.
 */
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

interface Project {
  displayName: string;
  testRegex: string[];
}
// Plain JavaScript modules (jest.config.js loads them before any transform): imported by path.
const { allTestFiles, kindOf, MARKER } = (await import(path.join(root, 'test', 'kinds.js'))) as {
  allTestFiles: () => string[];
  kindOf: (file: string) => string;
  MARKER: RegExp;
};
const { projects } = ((await import(path.join(root, 'jest.config.js'))) as { default: { projects: Project[] } })
  .default;
const files = allTestFiles();
const rel = (f: string) => path.relative(root, f);
const selects = (p: Project, file: string) => p.testRegex.some((r) => new RegExp(r).test(file));

describe('test kind markers', () => {
  it('finds the test files', () => expect(files.length).toBeGreaterThan(40));

  it.each(files.map(rel))('%s has exactly one marker, on its first line', (file) => {
    const lines = fs.readFileSync(path.join(root, file), 'utf8').split('\n');
    expect([file, MARKER.test(lines[0] ?? '')]).toEqual([file, true]);
    const markers = lines.filter((l) => /test-kind:/.test(l) && l.trimStart().startsWith('//'));
    expect([file, markers.length]).toEqual([file, 1]);
  });

  it('each file is in exactly the project its marker names', () => {
    for (const f of files) {
      const chosen = projects.filter((p) => selects(p, f)).map((p) => p.displayName);
      expect([rel(f), chosen]).toEqual([rel(f), [kindOf(f)]]);
    }
  });

  it('a file without a marker counts as integration', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-kinds-'));
    try {
      const f = path.join(dir, 'x.test.ts');
      fs.writeFileSync(f, "import { it } from '@jest/globals';\n// test-kind: unit\n");
      expect(kindOf(f)).toBe('integration');
      fs.writeFileSync(f, '// test-kind: unit\n');
      expect(kindOf(f)).toBe('unit');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

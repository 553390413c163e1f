/**
 * The test-kind marker: the first line of every test file is `// test-kind: unit` or
 * `// test-kind: integration`. Unit tests need no registry, VM, buildah/podman, root tools or
 * network and run in seconds; everything else is integration. A file without a valid marker on
 * its first line counts as integration (test/repo/test-kinds.test.ts fails on it).
 * Plain JavaScript: jest.config.js imports it before any transform exists.
 */
import fs from 'node:fs';
import path from 'node:path';

export const TEST_KINDS = ['unit', 'integration'];
export const MARKER = /^\/\/ test-kind: (unit|integration)$/;
const testDir = path.dirname(new URL(import.meta.url).pathname);

/** Every `*.test.ts` under test/, as absolute paths, sorted. */
export function allTestFiles(dir = testDir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...allTestFiles(p));
    else if (e.isFile() && e.name.endsWith('.test.ts')) out.push(p);
  }
  return out.sort();
}

/** The kind a file's first line declares; integration when it declares none. */
export function kindOf(file) {
  const first = fs.readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  return MARKER.exec(first)?.[1] ?? 'integration';
}

/** The test files of one kind as exact-path patterns (jest `testRegex`). */
export function testFiles(kind) {
  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const files = allTestFiles().filter((f) => kindOf(f) === kind);
  // An empty list would make jest fall back to its default pattern and run every file.
  return files.length ? files.map((f) => `^${escape(f)}$`) : ['^$'];
}

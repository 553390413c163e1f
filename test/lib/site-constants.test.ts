// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import {
  applyEdits,
  branchNameProblem,
  findDefinitions,
  graphqlUrlFor,
  isSearchable,
  valueProblem,
} from '../../actions/site-bump/src/constants.js';

/** site-bump's constant finder/editor: pure functions over file text. */
const bumpOne = (text: string, name: string, value: string, path = 'src/lib/release.ts') => {
  const defs = findDefinitions(text, name, path);
  expect(defs).toHaveLength(1);
  return applyEdits(text, [{ def: defs[0]!, value }]);
};

describe('findDefinitions / applyEdits', () => {
  it.each([
    [
      'export const, double quotes',
      'export const LATEST_ISO_DATE = "20250301";\n',
      'export const LATEST_ISO_DATE = "20250415";\n',
    ],
    [
      'const, single quotes, no semicolon',
      "const LATEST_ISO_DATE = '20250301'\n",
      "const LATEST_ISO_DATE = '20250415'\n",
    ],
    [
      'TS type annotation',
      'export const LATEST_ISO_DATE: string = "20250301" as const;\n',
      'export const LATEST_ISO_DATE: string = "20250415" as const;\n',
    ],
    [
      'odd spacing and a trailing comment',
      'export  const LATEST_ISO_DATE=\t"20250301" ; // bumped by CI\n',
      'export  const LATEST_ISO_DATE=\t"20250415" ; // bumped by CI\n',
    ],
    [
      'template literal without substitutions',
      'export let LATEST_ISO_DATE = `20250301`;\n',
      'export let LATEST_ISO_DATE = `20250415`;\n',
    ],
    [
      'object key',
      'export const release = {\n  LATEST_ISO_DATE: "20250301",\n};\n',
      'export const release = {\n  LATEST_ISO_DATE: "20250415",\n};\n',
    ],
    [
      'inline object key after {',
      'export const r = { LATEST_ISO_DATE: "20250301", x: 1 };\n',
      'export const r = { LATEST_ISO_DATE: "20250415", x: 1 };\n',
    ],
    [
      'JSON key',
      '{\n  "LATEST_ISO_DATE": "20250301",\n  "other": 1\n}\n',
      '{\n  "LATEST_ISO_DATE": "20250415",\n  "other": 1\n}\n',
    ],
    [
      'unquoted number in TS',
      'export const LATEST_ISO_DATE = 20250301;\n',
      'export const LATEST_ISO_DATE = 20250415;\n',
    ],
    [
      'CRLF line endings',
      'const A = 1;\r\nexport const LATEST_ISO_DATE = "20250301";\r\nconst B = 2;\r\n',
      'const A = 1;\r\nexport const LATEST_ISO_DATE = "20250415";\r\nconst B = 2;\r\n',
    ],
    ['Python', 'LATEST_ISO_DATE: Final = "20250301"\n', 'LATEST_ISO_DATE: Final = "20250415"\n'],
  ])('%s: changes the value only', (_label, text, expected) => {
    expect(bumpOne(text, 'LATEST_ISO_DATE', '20250415')).toBe(expected);
  });

  it.each([
    [
      'YAML',
      'site/config.yaml',
      'site:\n  LATEST_ISO_DATE: 20250301  # managed\n',
      'site:\n  LATEST_ISO_DATE: 20250415  # managed\n',
    ],
    ['YAML quoted', 'config.yml', "LATEST_ISO_DATE: '20250301'\n", "LATEST_ISO_DATE: '20250415'\n"],
    ['shell', 'scripts/env.sh', 'export LATEST_ISO_DATE=20250301\n', 'export LATEST_ISO_DATE=20250415\n'],
    ['dotenv', '.env.production', 'LATEST_ISO_DATE="20250301"\n', 'LATEST_ISO_DATE="20250415"\n'],
  ])('%s (%s): bare and quoted values', (_label, path, text, expected) => {
    expect(bumpOne(text, 'LATEST_ISO_DATE', '20250415', path)).toBe(expected);
  });

  it('ignores imports, uses, comparisons, ternaries, comments and longer names', () => {
    const text = [
      'import { LATEST_ISO_DATE } from "../lib/release";',
      '// export const LATEST_ISO_DATE = "20240101";',
      '/*',
      ' * const LATEST_ISO_DATE = "20240101";',
      ' */',
      '# LATEST_ISO_DATE=20240101',
      'const d = LATEST_ISO_DATE;',
      'if (LATEST_ISO_DATE === "20240101") {}',
      'const label = ok ? LATEST_ISO_DATE : "none";',
      'const meta = { LATEST_ISO_DATE: LATEST_ISO_DATE, date: LATEST_ISO_DATE };',
      'export const LATEST_ISO_DATE_OLD = "20240101";',
      'export const MY_LATEST_ISO_DATE = "20240101";',
      'interface R { LATEST_ISO_DATE: string }',
      'const f = (LATEST_ISO_DATE) => LATEST_ISO_DATE;',
    ].join('\n');
    expect(findDefinitions(text, 'LATEST_ISO_DATE', 'src/routes/index.tsx')).toEqual([]);
  });

  it('finds every definition in a file (so two are reported, not the first silently used)', () => {
    const text =
      'export const LATEST_ISO_DATE = "20250301";\nconst x = 1;\nexport const release = { LATEST_ISO_DATE: "20250201" };\n';
    const defs = findDefinitions(text, 'LATEST_ISO_DATE', 'a.ts');
    expect(defs.map((d) => [d.line, d.value])).toEqual([
      [1, '20250301'],
      [3, '20250201'],
    ]);
    expect(defs[0]).toMatchObject({
      path: 'a.ts',
      column: 33,
      quote: '"',
      source: 'export const LATEST_ISO_DATE = "20250301";',
    });
  });

  it('reports a definition it cannot edit instead of pretending it is absent', () => {
    const [expr] = findDefinitions(
      'export const LATEST_ISO_DATE = process.env.DATE ?? "x";\n',
      'LATEST_ISO_DATE',
      'a.ts',
    );
    expect(expr?.problem).toMatch(/is not a string literal/);
    const [tpl] = findDefinitions('export const LATEST_ISO_DATE = `${YEAR}0301`;\n', 'LATEST_ISO_DATE', 'a.ts');
    expect(tpl?.problem).toMatch(/template literal/);
    expect(valueProblem(tpl!, '20250415')).toMatch(/^a\.ts:1: LATEST_ISO_DATE is a template literal/);
  });

  it('edits two constants of one file in one pass', () => {
    const text = 'export const LATEST_ISO_DATE = "20250301";\nexport const LATEST_ISO_FILE = "os-20250301.iso";\n';
    const d = findDefinitions(text, 'LATEST_ISO_DATE', 'a.ts')[0]!;
    const f = findDefinitions(text, 'LATEST_ISO_FILE', 'a.ts')[0]!;
    expect(
      applyEdits(text, [
        { def: d, value: '20250415' },
        { def: f, value: 'os-20250415.iso' },
      ]),
    ).toBe('export const LATEST_ISO_DATE = "20250415";\nexport const LATEST_ISO_FILE = "os-20250415.iso";\n');
  });

  it('handles names with $ and escaped quotes in the current value', () => {
    expect(bumpOne('const $DATE = "a\\"b";\n', '$DATE', 'c')).toBe('const $DATE = "c";\n');
  });
});

describe('valueProblem', () => {
  const def = (text: string, path = 'src/lib/release.ts') => findDefinitions(text, 'X', path)[0]!;
  it('requires a real YYYYMMDD date when the current value is one', () => {
    expect(valueProblem(def('const X = "20250301";'), '20250415')).toBeUndefined();
    expect(valueProblem(def('const X = "20250301";'), '2025-04-15')).toMatch(
      /expected a UTC date YYYYMMDD, like the current value "20250301" in src\/lib\/release\.ts:1/,
    );
    expect(valueProblem(def('const X = "20250301";'), '20250231')).toMatch(/YYYYMMDD/);
    expect(valueProblem(def('const X = "os.iso";'), 'anything-1.iso')).toBeUndefined();
  });
  it('refuses values that would break the literal', () => {
    expect(valueProblem(def('const X = "a";'), 'say "hi"')).toMatch(/without " or \\/);
    expect(valueProblem(def("const X = 'a';"), "it's")).toMatch(/without '/);
    expect(valueProblem(def('const X = `a`;'), '${evil}')).toMatch(/template/);
    expect(valueProblem(def('const X = 1;'), 'one')).toMatch(/expected a number/);
    expect(valueProblem(def('X: abc\n', 'c.yaml'), 'two words')).toMatch(/unquoted/);
    expect(valueProblem(def('X: abc\n', 'c.yaml'), 'two-words')).toBeUndefined();
  });
});

describe('helpers', () => {
  it('maps the REST base URL to the GraphQL endpoint (GitHub.com and Enterprise Server)', () => {
    expect(graphqlUrlFor('https://api.github.com')).toBe('https://api.github.com/graphql');
    expect(graphqlUrlFor('https://api.github.com/')).toBe('https://api.github.com/graphql');
    expect(graphqlUrlFor('https://ghe.example.com/api/v3')).toBe('https://ghe.example.com/api/graphql');
    expect(graphqlUrlFor('https://ghe.example.com/api/v3/')).toBe('https://ghe.example.com/api/graphql');
    expect(graphqlUrlFor('http://127.0.0.1:1234')).toBe('http://127.0.0.1:1234/graphql');
  });

  it('checks branch names with git ref rules', () => {
    expect(branchNameProblem('keel/release-20250301')).toBeUndefined();
    expect(branchNameProblem('keel/release-os-20250301.iso')).toBeUndefined();
    for (const bad of ['a b', 'a..b', 'a/', 'a.lock', 'a//b', 'a:b', 'a~1', '/a', 'a.', '-a', 'x/.hidden', 'a@{b']) {
      expect([bad, branchNameProblem(bad) !== undefined]).toEqual([bad, true]);
    }
  });

  it('searches source files, not dependencies, lockfiles, binaries or huge files', () => {
    expect(isSearchable('src/lib/release.ts', 100)).toBe(true);
    expect(isSearchable('src/routes/index.tsx', 100)).toBe(true);
    expect(isSearchable('.env.production', 10)).toBe(true);
    expect(isSearchable('config/site.yaml', 10)).toBe(true);
    expect(isSearchable('node_modules/x/index.js', 10)).toBe(false);
    expect(isSearchable('package-lock.json', 10)).toBe(false);
    expect(isSearchable('public/logo.png', 10)).toBe(false);
    expect(isSearchable('README.md', 10)).toBe(false);
    expect(isSearchable('src/big.ts', 10 * 1024 * 1024)).toBe(false);
  });
});

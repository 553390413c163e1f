import { isValidYmd } from '../../lib/inputs.js';

/**
 * Finding and editing a constant's definition in a source file, without parsing the language:
 * the forms a download site uses for "the latest release" are few and line-shaped, e.g.
 *
 *   export const LATEST_ISO_DATE = "20250301";        (TS/JS, with or without a type annotation)
 *   const LATEST_ISO_DATE: string = '20250301'
 *   LATEST_ISO_DATE: "20250301",                      (object literal key, JSON "key", YAML)
 *   LATEST_ISO_DATE="20250301"  /  export LATEST_ISO_DATE=20250301   (shell, .env)
 *
 * An edit replaces the characters of the value only (quotes, spacing, semicolons, comments and
 * line endings stay byte-identical). Pure functions: no I/O, unit-tested on their own.
 */
export interface ConstantSpec {
  name: string;
  value: string;
}

export interface Definition {
  path: string;
  name: string;
  /** 1-based line and column of the value's first character (after an opening quote). */
  line: number;
  column: number;
  /** Offsets of the value inside the file text (quotes excluded). */
  valueStart: number;
  valueEnd: number;
  /** The quote around the value, '' for a bare value (YAML, shell, a number). */
  quote: '"' | "'" | '`' | '';
  /** The current value, as written between the quotes. */
  value: string;
  /** The whole line, for messages. */
  source: string;
  /** Set when this is a definition Keel cannot edit (an expression, a template with ${…}). */
  problem?: string;
}

const KEYWORDS = [
  'export',
  'declare',
  'const',
  'let',
  'var',
  'readonly',
  'static',
  'public',
  'private',
  'protected',
  'final',
  'val',
  'local',
];

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Files whose values are customarily unquoted (YAML, shell, .env, INI-like). */
export function allowsBareValues(path: string): boolean {
  const base = path.split('/').pop() ?? path;
  if (base.startsWith('.env') || base === 'Makefile' || base === 'Containerfile' || base === 'Dockerfile') return true;
  if (!base.includes('.')) return true;
  return /\.(ya?ml|env|sh|bash|zsh|conf|cfg|ini|properties|toml|mk)$/i.test(base);
}

const BARE = /^[A-Za-z0-9._+\-/:@]+/;
const BARE_END = /^[ \t]*(?:[;,}#\r]|\/\/|$)/;
const NUMERIC = /^\d[\d_]*$/;

function lineAt(text: string, offset: number): { line: number; column: number; source: string } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const lineStart = before.lastIndexOf('\n') + 1;
  let lineEnd = text.indexOf('\n', offset);
  if (lineEnd < 0) lineEnd = text.length;
  return { line, column: offset - lineStart + 1, source: text.slice(lineStart, lineEnd).replace(/\r$/, '') };
}

type Literal = { quote: Definition['quote']; start: number; end: number; problem?: string } | undefined;

/** Reads the literal starting at `pos` (a quoted string on one line, or a bare token). */
function readLiteral(text: string, pos: number, bareAllowed: boolean): Literal {
  const c = text[pos];
  if (c === '"' || c === "'" || c === '`') {
    for (let i = pos + 1; i < text.length; i++) {
      const ch = text[i];
      if (ch === '\\') {
        i++;
        continue;
      }
      if (ch === '\n') return undefined;
      if (ch === c) {
        const body = text.slice(pos + 1, i);
        const problem =
          c === '`' && body.includes('${')
            ? 'is a template literal with ${…} substitutions, not a plain string'
            : undefined;
        return { quote: c, start: pos + 1, end: i, problem };
      }
    }
    return undefined;
  }
  const m = BARE.exec(text.slice(pos));
  if (!m) return undefined;
  const end = pos + m[0].length;
  const nl = text.indexOf('\n', end);
  if (!BARE_END.test(text.slice(end, nl < 0 ? undefined : nl))) return undefined;
  if (!bareAllowed && !NUMERIC.test(m[0])) return undefined;
  return { quote: '', start: pos, end };
}

/**
 * Every definition of `name` in `text`. A declaration or assignment (`const NAME = …`,
 * `NAME=…`) whose value is not a literal is returned with a `problem` (it is a definition, just
 * not one Keel may rewrite); a key whose value is not a literal (`NAME: NAME,`) is a reference,
 * not a definition. Lines starting with a comment marker never match (the anchor is line start,
 * `{` or `,`).
 */
export function findDefinitions(text: string, name: string, path = ''): Definition[] {
  const n = escapeRe(name);
  const bare = allowsBareValues(path);
  const found = new Map<number, Definition>();
  const add = (lit: NonNullable<Literal>, problem?: string) => {
    const where = lineAt(text, lit.start);
    found.set(lit.start, {
      path,
      name,
      line: where.line,
      column: where.column,
      valueStart: lit.start,
      valueEnd: lit.end,
      quote: lit.quote,
      value: text.slice(lit.start, lit.end),
      source: where.source.trim(),
      ...(problem || lit.problem ? { problem: problem ?? lit.problem } : {}),
    });
  };

  // Declarations and assignments at the start of a line: [keywords] NAME [: Type] = value
  const assign = new RegExp(
    `^[ \\t]*(?:(?:${KEYWORDS.join('|')})[ \\t]+)*${n}(?![\\w$])[ \\t]*(?::[ \\t]*[A-Za-z_$][^=;\\n]*?)?=(?![=>~])[ \\t]*`,
    'gm',
  );
  for (let m = assign.exec(text); m; m = assign.exec(text)) {
    const pos = m.index + m[0].length;
    const lit = readLiteral(text, pos, bare);
    if (lit) add(lit);
    else {
      // A definition Keel cannot rewrite: report it so "exactly one" stays honest.
      const end = text.indexOf('\n', pos);
      const expr = text.slice(pos, end < 0 ? undefined : end).trim();
      if (expr === '') continue;
      add({ quote: '', start: pos, end: pos }, `is not a string literal (${JSON.stringify(expr.slice(0, 60))})`);
    }
  }

  // Keys: NAME: value, "NAME": value, at line start or after { or ,
  const key = new RegExp(`(?:^[ \\t]*|[{,][ \\t]*)(["']?)${n}\\1(?![\\w$])[ \\t]*:(?![:=])[ \\t]*`, 'gm');
  for (let m = key.exec(text); m; m = key.exec(text)) {
    const pos = m.index + m[0].length;
    const lit = readLiteral(text, pos, bare);
    if (lit) add(lit);
  }
  return [...found.values()].sort((a, b) => a.valueStart - b.valueStart);
}

/** Why `value` cannot replace the current value of `def` (undefined: it can). */
export function valueProblem(def: Definition, value: string): string | undefined {
  if (def.problem) return `${def.path}:${def.line}: ${def.name} ${def.problem}; edit it by hand or make it a literal`;
  if (/[\r\n]/.test(value)) return 'expected a single line';
  if (isValidYmd(def.value) && !isValidYmd(value)) {
    return `expected a UTC date YYYYMMDD, like the current value ${JSON.stringify(def.value)} in ${def.path}:${def.line}`;
  }
  switch (def.quote) {
    case '"':
    case "'":
      if (value.includes(def.quote) || value.includes('\\')) {
        return `expected a value without ${def.quote} or \\ (the constant in ${def.path}:${def.line} is a ${def.quote}-quoted string)`;
      }
      return undefined;
    case '`':
      if (/[`\\]|\$\{/.test(value))
        return `expected a value without \`, \\ or \${ (the constant in ${def.path}:${def.line} is a template string)`;
      return undefined;
    case '':
      if (NUMERIC.test(def.value) && !allowsBareValues(def.path) && !NUMERIC.test(value)) {
        return `expected a number (the constant in ${def.path}:${def.line} is an unquoted number)`;
      }
      if (!/^[A-Za-z0-9._+\-/:@]+$/.test(value)) {
        return `expected letters, digits and . _ + - / : @ only (the constant in ${def.path}:${def.line} is unquoted)`;
      }
      return undefined;
  }
}

/** Replaces the values of the given definitions (all in `text`), leaving every other byte alone. */
export function applyEdits(text: string, edits: { def: Definition; value: string }[]): string {
  let out = text;
  for (const e of [...edits].sort((a, b) => b.def.valueStart - a.def.valueStart)) {
    out = out.slice(0, e.def.valueStart) + e.value + out.slice(e.def.valueEnd);
  }
  return out;
}

/** Source-looking files worth reading when searching the whole repository for a definition. */
const SKIP_DIRS =
  /(^|\/)(node_modules|\.git|dist|build|out|vendor|coverage|\.next|\.svelte-kit|\.astro|\.cache|public\/assets)\//;
const SKIP_FILES = /(^|\/)(package-lock\.json|pnpm-lock\.yaml|yarn\.lock|bun\.lockb|composer\.lock|Cargo\.lock)$/;
const TEXT_EXT =
  /\.(ts|tsx|mts|cts|js|jsx|mjs|cjs|json|jsonc|json5|ya?ml|toml|ini|conf|cfg|env|properties|sh|bash|py|rb|go|rs|php|java|kt|astro|svelte|vue|html?|mdx|njk|liquid|hbs)$/i;
export const MAX_SEARCH_BYTES = 512 * 1024;

export function isSearchable(path: string, size: number | undefined): boolean {
  if (SKIP_DIRS.test(path) || SKIP_FILES.test(path)) return false;
  if (size !== undefined && size > MAX_SEARCH_BYTES) return false;
  const base = path.split('/').pop() ?? path;
  return TEXT_EXT.test(base) || base.startsWith('.env');
}

/** A cheap pre-filter before running the definition regexes over a file. */
export function mentions(text: string, name: string): boolean {
  return text.includes(name);
}

/**
 * The GraphQL endpoint for a REST base URL: `https://api.github.com` → `…/graphql`,
 * GitHub Enterprise Server `https://HOST/api/v3` → `https://HOST/api/graphql`.
 */
export function graphqlUrlFor(apiUrl: string): string {
  const base = apiUrl.replace(/\/+$/, '');
  if (/\/api\/v3$/.test(base)) return base.replace(/\/api\/v3$/, '/api/graphql');
  return `${base}/graphql`;
}

/** git check-ref-format rules for a branch name; undefined when valid. */
export function branchNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if ([...name].some((c) => c.charCodeAt(0) <= 0x20 || c.charCodeAt(0) === 0x7f) || /[~^:?*[\\]/.test(name))
    return 'contains a space, a control character or one of ~ ^ : ? * [ \\';
  if (name.includes('..')) return "contains '..'";
  if (name.includes('@{')) return "contains '@{'";
  if (name.includes('//')) return "contains '//'";
  if (name.startsWith('/') || name.endsWith('/') || name.endsWith('.'))
    return "starts with '/' or ends with '/' or '.'";
  if (name.startsWith('-')) return "starts with '-'";
  if (name.split('/').some((c) => c.startsWith('.') || c.endsWith('.lock')))
    return "has a component starting with '.' or ending with '.lock'";
  if (name === '@' || name === 'HEAD') return 'is reserved';
  return undefined;
}

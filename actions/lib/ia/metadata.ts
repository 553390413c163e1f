/**
 * Item metadata as IA-S3 headers. Input is `key:value` lines; a key given more than once is a
 * list. On the wire (IA docs, and what the real `ia` client sends):
 *   single value  → `x-archive-meta-<key>: <value>`
 *   list          → `x-archive-meta01-<key>`, `x-archive-meta02-<key>`, … (number after `meta`)
 *   `_` in a key  → `--` (header names cannot carry `_`: `release_date` → `release--date`)
 *   a value with anything but printable ASCII, whitespace or parentheses → `uri(<percent-encoded UTF-8>)`
 */
export type ItemMetadata = Map<string, string[]>;

const KEY = /^[a-z][a-z0-9_-]*$/;
/** Keys IA sets itself or that the action controls through other inputs. */
const RESERVED = new Set(['identifier']);
/** A conservative bound on one header line (IA's limit is not documented; proxies allow ~8 KiB). */
export const MAX_HEADER_VALUE = 8000;

/** Why a metadata key is unusable, or undefined. */
export function metadataKeyProblem(key: string): string | undefined {
  if (!KEY.test(key))
    return `key ${JSON.stringify(key)}: expected lower-case letters, digits, '_' and '-', starting with a letter`;
  if (key.includes('--')) return `key ${JSON.stringify(key)}: '--' is IA's header spelling of '_'; write '_' instead`;
  if (key.endsWith('-')) return `key ${JSON.stringify(key)}: must not end with '-'`;
  if (RESERVED.has(key)) return `key ${JSON.stringify(key)}: set by IA from the identifier input`;
  return undefined;
}

/** Parses `key:value` lines (blank lines and `#` comments already removed). Throws with the problem. */
export function parseMetadataLines(lines: readonly string[]): ItemMetadata {
  const out: ItemMetadata = new Map();
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i <= 0) throw new Error(`expected key:value lines; ${JSON.stringify(line)} has no key before ':'`);
    const key = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    const problem = metadataKeyProblem(key);
    if (problem) throw new Error(problem);
    if (value === '') throw new Error(`key ${JSON.stringify(key)} has an empty value`);
    const header = encodeMetaValue(value);
    if (header.length > MAX_HEADER_VALUE) {
      throw new Error(
        `the value of ${JSON.stringify(key)} is ${header.length} bytes once encoded; keep header values under ${MAX_HEADER_VALUE}`,
      );
    }
    const list = out.get(key) ?? [];
    list.push(value);
    out.set(key, list);
  }
  return out;
}

/** Header-name form of a metadata key (`_` → `--`). */
export function headerKey(key: string): string {
  return key.replace(/_/g, '--');
}

/** Does a value need the `uri()` wrapper? Anything outside printable ASCII, whitespace, or ( ). */
export function needsUriEncoding(value: string): boolean {
  return /[^\x21-\x7e]|[()]/.test(value);
}

const UNRESERVED = /[A-Za-z0-9._~-]/;

/** Percent-encodes UTF-8 bytes except the unreserved set `A-Z a-z 0-9 . _ ~ -`. */
export function percentEncode(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && UNRESERVED.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function encodeMetaValue(value: string): string {
  return needsUriEncoding(value) ? `uri(${percentEncode(value)})` : value;
}

/** The `x-archive-meta*` headers for an item's metadata. */
export function metadataHeaders(meta: ItemMetadata): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [key, values] of meta) {
    const k = headerKey(key);
    if (values.length === 1) h[`x-archive-meta-${k}`] = encodeMetaValue(values[0]!);
    else values.forEach((v, i) => (h[`x-archive-meta${String(i + 1).padStart(2, '0')}-${k}`] = encodeMetaValue(v)));
  }
  return h;
}

/** MDAPI gives a metadata value as a string or a list of strings. */
export function asList(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  if (v === undefined || v === null) return [];
  return [String(v)];
}

/** Keys whose values on an existing item differ from the requested ones. */
export function metadataDifferences(wanted: ItemMetadata, existing: Record<string, unknown> | undefined): string[] {
  const diff: string[] = [];
  for (const [key, values] of wanted) {
    const have = asList(existing?.[key]);
    if (have.length !== values.length || have.some((v, i) => v !== values[i])) diff.push(key);
  }
  return diff;
}

/**
 * os-release(5) files (and extension-release files, the same format): `KEY=value` lines, values
 * optionally in single or double quotes with shell-style backslash escapes inside double quotes,
 * `#` comments and blank lines ignored. Reading never fails on a malformed line (systemd skips
 * them too); writing quotes any value that is not a plain word and refuses newlines.
 */
export type OsRelease = Record<string, string>;

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses os-release text into KEY → value (the last assignment of a key wins, as in a shell). */
export function parseOsRelease(text: string): OsRelease {
  const out: OsRelease = {};
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '').trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    if (!KEY.test(key)) continue;
    out[key] = unquote(line.slice(eq + 1).trim());
  }
  return out;
}

function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1);
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    return v.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
  }
  return v;
}

const PLAIN = /^[A-Za-z0-9._:+-]*$/;

/** One `KEY=value` line; the value double-quoted (and escaped) unless it is a plain word. */
export function osReleaseLine(key: string, value: string): string {
  if (!KEY.test(key)) throw new Error(`os-release key ${JSON.stringify(key)} is not [A-Za-z_][A-Za-z0-9_]*`);
  if (/[\n\r\0]/.test(value)) throw new Error(`os-release value of ${key} holds a line break or NUL`);
  return PLAIN.test(value) ? `${key}=${value}` : `${key}="${value.replace(/(["\\$`])/g, '\\$1')}"`;
}

/** Formats entries (in the given order) as os-release text with a trailing newline. */
export function formatOsRelease(entries: [string, string][]): string {
  return entries.map(([k, v]) => `${osReleaseLine(k, v)}\n`).join('');
}

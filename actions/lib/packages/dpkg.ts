import { PackageDatabaseError, type InstalledPackage } from './types.js';

/**
 * The dpkg database of an image: `<admindir>/status` (deb822 paragraphs, one per package) and
 * the machine-readable copyright files (DEP-5) under usr/share/doc. Both come from the image,
 * so both are parsed as hostile input: a status file that is not what dpkg writes is refused,
 * naming the file and line; a copyright file that is not DEP-5 just yields no license.
 */

/** dpkg admin directories, in the order dpkg itself looks (the sysimage one is the newer layout). */
export const DPKG_DIRS = ['usr/lib/sysimage/dpkg', 'var/lib/dpkg'];

/** Status files larger than this are refused (Debian's full archive installed is ~60 MiB). */
export const MAX_STATUS_BYTES = 256 * 1024 * 1024;
/** Copyright files larger than this are not parsed for licenses. */
export const MAX_COPYRIGHT_BYTES = 4 * 1024 * 1024;

const NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const ARCH = /^[a-z0-9][a-z0-9-]*$/;
/** [epoch:]upstream[-revision]: no whitespace, nothing a URL or a log line could be bent with. */
const VERSION = /^(?:\d+:)?[A-Za-z0-9][A-Za-z0-9.+~:-]*$/;
const FIELD = /^([!-9;-~][!-9;-~]*):[ \t]*(.*)$/;

/** Package states whose files are on disk (dpkg-query -W also lists `config-files`). */
const PRESENT = new Set([
  'installed',
  'half-configured',
  'unpacked',
  'half-installed',
  'triggers-awaited',
  'triggers-pending',
]);

/** A control character other than tab (dpkg never writes one into its files). */
function hasControl(s: string): boolean {
  return [...s].some((c) => {
    const n = c.charCodeAt(0);
    return (n < 0x20 && c !== '\t') || n === 0x7f;
  });
}

interface Paragraph {
  line: number;
  fields: Map<string, string>;
}

/**
 * deb822 paragraphs: `Field: value` lines, continuation lines starting with a space or tab,
 * paragraphs separated by blank lines. Anything else is an error at its line.
 */
export function parseDeb822(text: string, source: string): Paragraph[] {
  const out: Paragraph[] = [];
  let cur: Paragraph | undefined;
  let last: string | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    const at = i + 1;
    if (line.trim() === '') {
      cur = undefined;
      last = undefined;
      continue;
    }
    if (hasControl(line)) throw new PackageDatabaseError(source, `line ${at}: control character in the file`);
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!cur || last === undefined)
        throw new PackageDatabaseError(source, `line ${at}: continuation line without a field`);
      cur.fields.set(last, `${cur.fields.get(last)}\n${line.slice(1)}`);
      continue;
    }
    const m = FIELD.exec(line);
    if (!m)
      throw new PackageDatabaseError(
        source,
        `line ${at}: expected "Field: value", got ${JSON.stringify(line.slice(0, 80))}`,
      );
    if (!cur) {
      cur = { line: at, fields: new Map() };
      out.push(cur);
    }
    const key = m[1]!.toLowerCase();
    if (cur.fields.has(key))
      throw new PackageDatabaseError(source, `line ${at}: field ${m[1]} appears twice in one paragraph`);
    cur.fields.set(key, m[2]!);
    last = key;
  }
  return out;
}

/** `Source: name (version)` → its parts (the version defaults to the binary's). */
function sourceOf(field: string | undefined, version: string, source: string, at: number) {
  if (field === undefined) return {};
  const m = /^([a-z0-9][a-z0-9+.-]+)(?:\s+\(([^()\s]+)\))?$/.exec(field.trim());
  if (!m || (m[2] !== undefined && !VERSION.test(m[2])))
    throw new PackageDatabaseError(source, `line ${at}: Source ${JSON.stringify(field)} is not "name [(version)]"`);
  return { sourceName: m[1]!, sourceVersion: m[2] ?? version };
}

/**
 * The packages of a dpkg status file whose files are on disk (what `dpkg-query -W` lists,
 * minus packages left only with their configuration files). Refuses a malformed file.
 */
export function parseDpkgStatus(text: string, source: string): InstalledPackage[] {
  const out: InstalledPackage[] = [];
  const seen = new Set<string>();
  for (const p of parseDeb822(text, source)) {
    const f = (k: string) => p.fields.get(k)?.trim();
    const name = f('package');
    if (!name) throw new PackageDatabaseError(source, `line ${p.line}: paragraph without a Package field`);
    if (!NAME.test(name))
      throw new PackageDatabaseError(
        source,
        `line ${p.line}: package name ${JSON.stringify(name)} is not a Debian package name`,
      );
    const status = f('status')?.split(/\s+/) ?? [];
    if (status.length !== 3)
      throw new PackageDatabaseError(source, `line ${p.line}: ${name}: Status must be "want flag state"`);
    if (!PRESENT.has(status[2]!)) continue;
    const version = f('version') ?? '';
    const architecture = f('architecture') ?? '';
    if (!VERSION.test(version))
      throw new PackageDatabaseError(
        source,
        `line ${p.line}: ${name}: Version ${JSON.stringify(version)} is not a Debian version`,
      );
    if (!ARCH.test(architecture))
      throw new PackageDatabaseError(
        source,
        `line ${p.line}: ${name}: Architecture ${JSON.stringify(architecture)} is not a Debian architecture`,
      );
    const key = `${name}:${architecture}`;
    if (seen.has(key)) throw new PackageDatabaseError(source, `line ${p.line}: ${key} is listed twice`);
    seen.add(key);
    out.push({ type: 'deb', name, version, architecture, ...sourceOf(f('source'), version, source, p.line) });
  }
  return out;
}

const DEP5_FORMAT = /^https?:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\/?$/;

/**
 * The licenses a machine-readable copyright file (DEP-5) declares: the short name (first line
 * of `License:`) of every `Files:` paragraph, in order, without repeats. Undefined when the file
 * is not DEP-5 or cannot be read as one (then the SBOM says nothing rather than guess).
 */
export function dep5Licenses(text: string): string[] | undefined {
  let paragraphs: Paragraph[];
  try {
    paragraphs = parseDeb822(text, 'copyright');
  } catch {
    return undefined;
  }
  const header = paragraphs[0];
  if (!header || !DEP5_FORMAT.test(header.fields.get('format')?.trim() ?? '')) return undefined;
  const out: string[] = [];
  for (const p of paragraphs.slice(1)) {
    if (!p.fields.has('files')) continue;
    const name = p.fields.get('license')?.split('\n')[0]?.trim();
    if (name && /^[\x20-\x7e]+$/.test(name) && !out.includes(name)) out.push(name);
  }
  return out.length ? out : undefined;
}

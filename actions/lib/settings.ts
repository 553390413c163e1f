import { z } from 'zod';
import { DistroSchema, type Distro } from './declarations.js';
import { UserError } from './errors.js';
import { splitList } from './inputs.js';

/**
 * The settings a reusable workflow takes from the caller's declarations: each has one place in
 * the declarations and an override (the workflow input of the same name). The declarations
 * schema checks an override as it checks the file, so a value is valid in `with:` exactly when
 * it is valid in declarations/distro.yaml.
 */

/** Sections with defaults (always there) and optional ones (absent: their settings are empty). */
type Section = 'validate' | 'smoke-boot' | 'iso' | 'internet-archive' | 'site';
/** How an override (a string input) becomes a declarations value, and back. */
type Kind = 'number' | 'bool' | 'bool-or-auto' | 'text' | 'lines' | 'metadata';
interface SettingDef {
  section: Section;
  key: string;
  kind: Kind;
}

export const SETTINGS = {
  // smoke-boot
  backend: { section: 'smoke-boot', key: 'backend', kind: 'text' },
  memory: { section: 'smoke-boot', key: 'memory', kind: 'number' },
  cpus: { section: 'smoke-boot', key: 'cpus', kind: 'number' },
  'boot-timeout': { section: 'smoke-boot', key: 'timeout', kind: 'number' },
  'update-test': { section: 'smoke-boot', key: 'update-test', kind: 'bool' },
  'kernel-args': { section: 'smoke-boot', key: 'kernel-args', kind: 'text' },
  'success-pattern': { section: 'smoke-boot', key: 'success-pattern', kind: 'text' },
  'failure-pattern': { section: 'smoke-boot', key: 'failure-pattern', kind: 'text' },
  // validate
  checks: { section: 'validate', key: 'checks', kind: 'lines' },
  'warn-checks': { section: 'validate', key: 'warn-checks', kind: 'lines' },
  'min-initramfs-mb': { section: 'validate', key: 'min-initramfs-mb', kind: 'number' },
  'require-ostree-module': { section: 'validate', key: 'require-ostree-module', kind: 'bool-or-auto' },
  'initramfs-modules': { section: 'validate', key: 'initramfs-modules', kind: 'lines' },
  'repo-globs': { section: 'validate', key: 'repo-globs', kind: 'lines' },
  'var-allow': { section: 'validate', key: 'var-allow', kind: 'lines' },
  // install media
  'iso-name': { section: 'iso', key: 'name', kind: 'text' },
  'iso-label': { section: 'iso', key: 'label', kind: 'text' },
  'iso-type': { section: 'iso', key: 'type', kind: 'text' },
  'iso-backend': { section: 'iso', key: 'backend', kind: 'text' },
  'iso-boot-test': { section: 'iso', key: 'boot-test', kind: 'bool' },
  'iso-boot-timeout': { section: 'iso', key: 'boot-timeout', kind: 'number' },
  'publish-untested': { section: 'iso', key: 'publish-untested', kind: 'bool' },
  // publication
  'ia-identifier': { section: 'internet-archive', key: 'identifier', kind: 'text' },
  'ia-metadata': { section: 'internet-archive', key: 'metadata', kind: 'metadata' },
  'ia-torrent-timeout': { section: 'internet-archive', key: 'torrent-timeout', kind: 'number' },
  'ia-require-torrent': { section: 'internet-archive', key: 'require-torrent', kind: 'bool' },
  'site-repository': { section: 'site', key: 'repository', kind: 'text' },
  'site-files': { section: 'site', key: 'files', kind: 'lines' },
  'site-base': { section: 'site', key: 'base', kind: 'text' },
  'site-branch-prefix': { section: 'site', key: 'branch-prefix', kind: 'text' },
  'site-auto-merge': { section: 'site', key: 'auto-merge', kind: 'bool' },
} as const satisfies Record<string, SettingDef>;

/**
 * The download site's constants (declarations site.constants, a list) as the site-bump hop takes
 * them: the first one's name and value, the others as NAME=value lines. An override replaces
 * the derived text and is checked as site.constants would be (checkSiteConstants).
 */
const SITE_CONSTANTS = {
  'site-constant': (s: SiteSection) => s.constants[0]?.name ?? '',
  'site-value': (s: SiteSection) => s.constants[0]?.value ?? '',
  'site-extra-constants': (s: SiteSection) =>
    s.constants
      .slice(1)
      .map((c) => `${c.name}=${c.value}`)
      .join('\n'),
} as const;
type SiteSection = NonNullable<Distro['site']>;

export type SettingName = keyof typeof SETTINGS | keyof typeof SITE_CONSTANTS;
export const SETTING_NAMES = [...Object.keys(SETTINGS), ...Object.keys(SITE_CONSTANTS)] as SettingName[];

/** A setting's place and kind; undefined for the site constants, derived from site.constants. */
function defOf(name: string): SettingDef | undefined {
  return Object.hasOwn(SETTINGS, name) ? (SETTINGS as Record<string, SettingDef>)[name] : undefined;
}

/** Where a setting lives in the declarations, e.g. smoke-boot.timeout. */
export function settingPath(name: SettingName): string {
  const def = defOf(name);
  return def ? `${def.section}.${def.key}` : 'site.constants';
}

/** Where a setting's value came from. */
export type SettingSource = 'input' | 'declarations' | 'default' | 'absent';

export interface ResolvedSetting {
  /** As a hop's input reads it: lists newline-separated, absent as ''. */
  value: string;
  source: SettingSource;
  /** Its place in the declarations, e.g. smoke-boot.timeout. */
  path: string;
}

const SCHEMAS: Record<Section, z.ZodObject> = {
  validate: DistroSchema.shape.validate.unwrap() as unknown as z.ZodObject,
  'smoke-boot': DistroSchema.shape['smoke-boot'].unwrap() as unknown as z.ZodObject,
  iso: DistroSchema.shape.iso.unwrap() as unknown as z.ZodObject,
  'internet-archive': DistroSchema.shape['internet-archive'].unwrap() as unknown as z.ZodObject,
  site: DistroSchema.shape.site.unwrap() as unknown as z.ZodObject,
};
const ALWAYS_THERE: Section[] = ['validate', 'smoke-boot'];

/** The override as a declarations value. */
function overrideValue(name: string, { kind }: SettingDef, raw: string): unknown {
  const v = raw.trim();
  if (kind === 'number') {
    if (!/^[0-9]+(\.[0-9]+)?$/.test(v))
      throw new UserError(`input ${name}: expected a number, got ${JSON.stringify(raw)}`);
    return Number(v);
  }
  if (kind === 'bool' || kind === 'bool-or-auto') {
    if (v === 'true' || v === 'false') return v === 'true';
    if (kind === 'bool-or-auto' && v === 'auto') return 'auto';
    const expected = kind === 'bool' ? 'true or false' : 'true, false or auto';
    throw new UserError(`input ${name}: expected ${expected}, got ${JSON.stringify(raw)}`);
  }
  if (kind === 'metadata') return metadataRecord(name, v);
  return kind === 'lines' ? splitList(v) : v;
}

/** key:value lines into the metadata record (a repeated key gives a list). */
function metadataRecord(name: string, text: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const line of splitList(text)) {
    const m = /^([^:]+):(.*)$/.exec(line);
    if (!m) throw new UserError(`input ${name}: expected key:value lines, got ${JSON.stringify(line)}`);
    const [key, value] = [m[1]!.trim(), m[2]!.trim()];
    const prev = out[key];
    out[key] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
  }
  return out;
}

/** A declarations value as a hop's input reads it. */
function asInput(v: unknown, kind: Kind): string {
  if (v === undefined) return '';
  if (kind === 'metadata')
    return Object.entries(v as Record<string, string | string[]>)
      .flatMap(([k, x]) => (Array.isArray(x) ? x : [x]).map((item) => `${k}:${item}`))
      .join('\n');
  return Array.isArray(v) ? v.join('\n') : String(v as string | number | boolean);
}

/** '' is no override; so is 0 for a number (a number input's default). */
const isUnset = (name: SettingName, raw: string | undefined) =>
  raw === undefined || raw.trim() === '' || (defOf(name)?.kind === 'number' && /^0+(\.0+)?$/.test(raw.trim()));

const SITE_CONSTANT_NAMES = Object.keys(SITE_CONSTANTS) as (keyof typeof SITE_CONSTANTS)[];

/**
 * Site constants an input replaced, checked as declarations site.constants would be, so a bad
 * name fails here, not in the site-bump step after the media were published.
 */
function checkSiteConstants(out: Record<SettingName, ResolvedSetting>): void {
  if (!SITE_CONSTANT_NAMES.some((n) => out[n].source === 'input')) return;
  const first = { name: out['site-constant'].value, value: out['site-value'].value };
  const entries = first.name || first.value ? [{ ...first, input: 'site-constant' }] : [];
  for (const line of splitList(out['site-extra-constants'].value)) {
    const i = line.indexOf('=');
    if (i <= 0)
      throw new UserError(`input site-extra-constants: expected NAME=value lines, got ${JSON.stringify(line)}`);
    entries.push({ name: line.slice(0, i).trim(), value: line.slice(i + 1).trim(), input: 'site-extra-constants' });
  }
  const constants = SCHEMAS.site.shape.constants as z.ZodType;
  const parsed = constants.safeParse(entries.map(({ name, value }) => ({ name, value })));
  if (parsed.success || entries.length === 0) return;
  const issue = parsed.error.issues[0]!;
  const at = entries[Number(issue.path[0] ?? 0)]!;
  throw new UserError(
    `input ${at.input}: ${JSON.stringify(at.name)}: expected ${issue.message} (as declarations site.constants)`,
  );
}

/** The first problem of a section, named after the input that set it (or its declarations key). */
function sectionProblem(section: Section, error: z.ZodError): UserError {
  const issue = error.issues[0]!;
  const key = String(issue.path[0] ?? '');
  const name = Object.keys(SETTINGS).find((n) => defOf(n)!.section === section && defOf(n)!.key === key);
  return new UserError(`input ${name ?? key}: ${issue.message} (as declarations ${section}.${key})`);
}

/**
 * Every setting: the override when given, else the declarations' value (`decl` undefined: no
 * declarations file, the schema's defaults; an optional section the declarations leave out:
 * empty). Every override is checked before anything is returned; a bad one fails naming the
 * input, what was expected and its declarations key.
 */
export function resolveSettings(
  decl: Distro | undefined,
  overrides: Partial<Record<SettingName, string>>,
): Record<SettingName, ResolvedSetting> {
  const given = SETTING_NAMES.filter((n) => !isUnset(n, overrides[n]));
  const sections = {} as Record<Section, Record<string, unknown> | undefined>;
  for (const section of Object.keys(SCHEMAS) as Section[]) {
    const declared = decl?.[section] as Record<string, unknown> | undefined;
    const base = declared ?? (ALWAYS_THERE.includes(section) ? SCHEMAS[section].parse({}) : undefined);
    const mine = given.filter((n) => defOf(n)?.section === section);
    if (!base && mine.length === 0) continue;
    const merged: Record<string, unknown> = { ...base };
    for (const n of mine) merged[defOf(n)!.key] = overrideValue(n, defOf(n)!, overrides[n]!);
    // A section the declarations leave out is checked only where an override sets it.
    const parsed = (base ? SCHEMAS[section] : SCHEMAS[section].partial()).safeParse(merged);
    if (!parsed.success) throw sectionProblem(section, parsed.error);
    sections[section] = parsed.data as Record<string, unknown>;
  }
  const out = {} as Record<SettingName, ResolvedSetting>;
  for (const name of SETTING_NAMES) {
    const path = settingPath(name);
    const def = defOf(name);
    if (!def) {
      const site = sections.site as SiteSection | undefined;
      const derived = site?.constants ? SITE_CONSTANTS[name as keyof typeof SITE_CONSTANTS](site) : '';
      const value = given.includes(name) ? overrides[name]!.trim() : derived;
      out[name] = { value, source: given.includes(name) ? 'input' : site ? 'declarations' : 'absent', path };
      continue;
    }
    const { section, key, kind } = def;
    const source: SettingSource = given.includes(name)
      ? 'input'
      : !decl
        ? ALWAYS_THERE.includes(section)
          ? 'default'
          : 'absent'
        : decl[section] === undefined && !ALWAYS_THERE.includes(section)
          ? 'absent'
          : 'declarations';
    out[name] = { value: asInput(sections[section]?.[key], kind), source, path };
  }
  checkSiteConstants(out);
  return out;
}

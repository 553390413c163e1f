import { DistroSchema, type Distro } from './declarations.js';
import { UserError } from './errors.js';
import { splitList } from './inputs.js';

/**
 * The settings a reusable workflow takes from the caller's declarations: each has one place in
 * the declarations and an override (the workflow input of the same name). The declarations
 * schema checks an override as it checks the file, so a value is valid in `with:` exactly when
 * it is valid in declarations/distro.yaml.
 */

type Section = 'validate' | 'smoke-boot';
/** How an override (a string input) becomes a declarations value. */
type Kind = 'number' | 'bool' | 'bool-or-auto' | 'text' | 'lines';
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
} as const satisfies Record<string, SettingDef>;

export type SettingName = keyof typeof SETTINGS;
export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

/** Where a setting's value came from. */
export type SettingSource = 'input' | 'declarations' | 'default';

export interface ResolvedSetting {
  /** As a hop's input reads it: lists newline-separated, absent as ''. */
  value: string;
  source: SettingSource;
  /** Its place in the declarations, e.g. smoke-boot.timeout. */
  path: string;
}

/** The override as a declarations value; '' (and 0 for a number: a number input's default) is none. */
function overrideValue(name: SettingName, raw: string): unknown {
  const { kind } = SETTINGS[name] as SettingDef;
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
  return kind === 'lines' ? splitList(v) : v;
}

const isUnset = (name: SettingName, raw: string) =>
  raw.trim() === '' || ((SETTINGS[name] as SettingDef).kind === 'number' && /^0+(\.0+)?$/.test(raw.trim()));

const asInput = (v: unknown): string =>
  v === undefined ? '' : Array.isArray(v) ? v.join('\n') : String(v as string | number | boolean);

/**
 * Every setting: the override when given, else the declarations' value (`decl` undefined: no
 * declarations file, the schema's defaults). Every override is checked before anything is
 * returned; a bad one fails naming the input, what was expected and its declarations key.
 */
export function resolveSettings(
  decl: Distro | undefined,
  overrides: Partial<Record<SettingName, string>>,
): Record<SettingName, ResolvedSetting> {
  const sections: Record<Section, Record<string, unknown>> = {
    validate: { ...(decl?.validate ?? DistroSchema.shape.validate.parse(undefined)) },
    'smoke-boot': { ...(decl?.['smoke-boot'] ?? DistroSchema.shape['smoke-boot'].parse(undefined)) },
  };
  const given = SETTING_NAMES.filter((n) => overrides[n] !== undefined && !isUnset(n, overrides[n]!));
  for (const name of given) {
    const { section, key } = SETTINGS[name] as SettingDef;
    sections[section][key] = overrideValue(name, overrides[name]!);
  }
  for (const section of ['validate', 'smoke-boot'] as const) {
    const parsed = DistroSchema.shape[section].safeParse(sections[section]);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const key = String(issue.path[0] ?? '');
      const name = SETTING_NAMES.find((n) => SETTINGS[n].section === section && SETTINGS[n].key === key);
      throw new UserError(`input ${name ?? key}: ${issue.message} (as declarations ${section}.${key})`);
    }
    sections[section] = parsed.data as Record<string, unknown>;
  }
  const out = {} as Record<SettingName, ResolvedSetting>;
  for (const name of SETTING_NAMES) {
    const { section, key } = SETTINGS[name] as SettingDef;
    const source: SettingSource = given.includes(name) ? 'input' : decl ? 'declarations' : 'default';
    out[name] = { value: asInput(sections[section][key]), source, path: `${section}.${key}` };
  }
  return out;
}

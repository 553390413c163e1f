/**
 * os-release(5) of an image (`etc/os-release`, else `usr/lib/os-release`): the distribution
 * identity that package URLs are qualified with (`distro=<ID>-<VERSION_ID>`).
 */
export interface OsRelease {
  /** ID, lower-case (e.g. "debian", "fedora"); "linux" when absent, as os-release(5) says. */
  id: string;
  versionId?: string;
  name?: string;
  prettyName?: string;
  versionCodename?: string;
}

export const OS_RELEASE_PATHS = ['etc/os-release', 'usr/lib/os-release'];

/** Unquotes one value: double quotes with backslash escapes, single quotes verbatim, or bare. */
function unquote(raw: string): string {
  const v = raw.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\(["\\`$])/g, '$1');
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1);
  return v;
}

/** Parses os-release text; lines that are not KEY=value are ignored (the file is advisory). */
export function parseOsRelease(text: string): OsRelease {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) fields.set(m[1]!, unquote(m[2]!));
  }
  const token = (k: string) => {
    const v = fields.get(k);
    // ID and VERSION_ID end up in package URLs: only the characters os-release allows there.
    return v && /^[a-z0-9._-]+$/i.test(v) ? v.toLowerCase() : undefined;
  };
  return {
    id: token('ID') ?? 'linux',
    versionId: token('VERSION_ID'),
    name: fields.get('NAME'),
    prettyName: fields.get('PRETTY_NAME'),
    versionCodename: token('VERSION_CODENAME'),
  };
}

/** The purl `distro` qualifier: `<id>-<version_id>` (just `<id>` for a rolling release). */
export function distroQualifier(os: OsRelease): string {
  return os.versionId ? `${os.id}-${os.versionId}` : os.id;
}

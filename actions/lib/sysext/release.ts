import { formatOsRelease, parseOsRelease, type OsRelease } from '../os-release.js';

/**
 * `usr/lib/extension-release.d/extension-release.<name>`: what binds an extension to its base.
 * systemd-sysext merges an extension only when this file matches the host's os-release
 * (systemd-sysext(8), os-release(5)): `ID=` equal (or `_any`); then `SYSEXT_LEVEL=` equal when
 * both sides have one, else `VERSION_ID=` equal when the host has one; `ARCHITECTURE=`, when
 * set and not `_any`, equal to the host's. The same rules are checked here, at build time, so a
 * mismatch fails the build with the field named instead of being skipped on every client.
 */
export const EXTENSION_RELEASE_DIR = 'usr/lib/extension-release.d';

export function extensionReleasePath(name: string): string {
  return `${EXTENSION_RELEASE_DIR}/extension-release.${name}`;
}

export interface BaseIdentity {
  /** The base's os-release. */
  osRelease: OsRelease;
  /** systemd's architecture name (x86-64, arm64, …). */
  architecture: string;
}

/** The extension-release Keel writes: the base's compatibility keys, the extension's own identity. */
export function extensionRelease(base: BaseIdentity, ext: { name: string; version: string }): string {
  const os = base.osRelease;
  const entries: [string, string][] = [['ID', os.ID!]];
  // SYSEXT_LEVEL is the base's promise of a stable extension ABI: bind to it when it exists,
  // otherwise to the exact VERSION_ID (a rolling base has neither: ID alone decides).
  if (os.SYSEXT_LEVEL) entries.push(['SYSEXT_LEVEL', os.SYSEXT_LEVEL]);
  else if (os.VERSION_ID) entries.push(['VERSION_ID', os.VERSION_ID]);
  entries.push(
    ['ARCHITECTURE', base.architecture],
    ['SYSEXT_ID', ext.name],
    ['SYSEXT_VERSION_ID', ext.version],
    // Unit files in the extension are seen by PID 1 right after a merge (systemd >= 255).
    ['EXTENSION_RELOAD_MANAGER', '1'],
  );
  return formatOsRelease(entries);
}

/** What keeps an extension-release from matching the base, one phrase per field (empty: it matches). */
export function extensionReleaseMismatches(text: string, base: BaseIdentity): string[] {
  const ext = parseOsRelease(text);
  const host = base.osRelease;
  const problems: string[] = [];
  const arch = ext.ARCHITECTURE;
  if (arch && arch !== '_any' && arch !== base.architecture)
    problems.push(`ARCHITECTURE=${arch}, the base is ${base.architecture}`);
  if (!ext.ID) return [...problems, 'it has no ID= (systemd-sysext ignores such an extension)'];
  if (ext.ID === '_any') return problems;
  if (ext.ID !== host.ID) problems.push(`ID=${ext.ID}, the base has ID=${host.ID ?? '(none)'}`);
  if (host.SYSEXT_LEVEL && ext.SYSEXT_LEVEL) {
    if (ext.SYSEXT_LEVEL !== host.SYSEXT_LEVEL)
      problems.push(`SYSEXT_LEVEL=${ext.SYSEXT_LEVEL}, the base has SYSEXT_LEVEL=${host.SYSEXT_LEVEL}`);
  } else if (host.VERSION_ID) {
    if (!ext.VERSION_ID) problems.push(`it has no VERSION_ID= (the base has VERSION_ID=${host.VERSION_ID})`);
    else if (ext.VERSION_ID !== host.VERSION_ID)
      problems.push(`VERSION_ID=${ext.VERSION_ID}, the base has VERSION_ID=${host.VERSION_ID}`);
  }
  return problems;
}

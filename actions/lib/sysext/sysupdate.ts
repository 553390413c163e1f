/**
 * The client side of a published extension: a sysupdate.d(5) `.transfer` file and an updex /
 * sysupdate.features(5) `.feature` file. A machine owner drops both into /etc/sysupdate.d/ and
 * enables the feature (`updex features enable <name>`, or a drop-in with `Enabled=true`); then
 * systemd-sysupdate or updex fetches `<base-url>/SHA256SUMS`, verifies `SHA256SUMS.gpg` against
 * /etc/systemd/import-pubring.gpg, picks the newest `<name>_@v_<arch>.raw`, checks its SHA-256 and
 * installs it into /var/lib/extensions/, where systemd-sysext finds it.
 */
export interface TransferSpec {
  name: string;
  /** systemd's architecture name, written literally (updex and old sysupdate need no `%a`). */
  architecture: string;
  /** http(s) URL of the directory holding SHA256SUMS, SHA256SUMS.gpg and the images. */
  baseUrl: string;
}

/** An http(s) URL safe to write into an INI value: no whitespace, quotes, `%` specifiers or `@` wildcards. */
export function baseUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'expected an http(s) URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'expected an http(s) URL';
  if (/[\s"'\\%@]/.test(url)) return 'the URL may not contain whitespace, quotes, backslashes, % or @';
  if (u.search || u.hash) return 'the URL may not have a query or fragment (systemd-sysupdate appends file names)';
  return undefined;
}

export function matchPattern(t: Pick<TransferSpec, 'name' | 'architecture'>): string {
  return `${t.name}_@v_${t.architecture}.raw`;
}

export function transferFile(t: TransferSpec): string {
  const problem = baseUrlProblem(t.baseUrl);
  if (problem) throw new Error(`base URL ${JSON.stringify(t.baseUrl)}: ${problem}`);
  const pattern = matchPattern(t);
  return [
    `# ${t.name}: a system extension published by Keel. Install into /etc/sysupdate.d/ with`,
    `# ${t.name}.feature, then enable the feature (updex features enable ${t.name}).`,
    '[Transfer]',
    `Features=${t.name}`,
    // The default, written out: SHA256SUMS must carry a valid detached signature.
    'Verify=yes',
    '',
    '[Source]',
    'Type=url-file',
    `Path=${t.baseUrl.replace(/\/+$/, '')}`,
    `MatchPattern=${pattern}`,
    '',
    '[Target]',
    'Type=regular-file',
    'Path=/var/lib/extensions/',
    `MatchPattern=${pattern}`,
    'Mode=0444',
    'InstancesMax=2',
    '',
  ].join('\n');
}

export function featureFile(t: { name: string; description: string }): string {
  return [
    '[Feature]',
    `Description=${t.description.replace(/[\n\r]/g, ' ')}`,
    // Opt-in: a distro may ship every feature of its extensions; the machine owner enables some.
    'Enabled=false',
    '',
  ].join('\n');
}

import fs from 'node:fs';
import path from 'node:path';
import { onCleanup } from '../../lib/cleanup.js';
import { InputError, UserError } from '../../lib/errors.js';
import { armoredKeyProblem } from '../../lib/gpg.js';
import type { ActionIO } from '../../lib/io.js';
import {
  bool,
  digestRef,
  existingPath,
  int,
  list,
  oneOf,
  readInputs,
  registryInputs,
  secret,
  str,
} from '../../lib/inputs.js';
import { connect, resolveDigest } from '../../lib/registry.js';
import { requireSignatureGate, signatureGateInputs } from '../../lib/signature-gate.js';
import { code, fence, table } from '../../lib/summary.js';
import { SYSEXT_FORMATS } from '../../lib/sysext/fs-image.js';
import {
  DEBIAN_PACKAGE,
  DEBIAN_PACKAGE_EXPECTED,
  SYSEXT_NAME,
  SYSEXT_NAME_EXPECTED,
  SYSEXT_VERSION,
  SYSEXT_VERSION_EXPECTED,
} from '../../lib/sysext/naming.js';
import { baseUrlProblem } from '../../lib/sysext/sysupdate.js';
import { unsafeEntryReason } from '../../lib/safe-path.js';
import { removeTree } from '../../lib/vm/unpack.js';
import { buildSysext, type SysextResult } from './sysext.js';

/** An absolute path as a user writes it in exclude / allow-overrides. */
function absolutePathProblem(p: string, hierarchiesOnly: boolean): string | undefined {
  if (!p.startsWith('/') || p === '/') return 'expected an absolute path below /';
  if (unsafeEntryReason(p.slice(1))) return 'expected a path without ".." components';
  if (hierarchiesOnly && !/^\/(usr|opt)\/./.test(p)) return 'expected a path below /usr or /opt';
  return undefined;
}

export const inputs = {
  'base-image-ref': digestRef('the extension is built for, and booted on, exactly this base'),
  name: str({ required: true, pattern: SYSEXT_NAME, expected: SYSEXT_NAME_EXPECTED }),
  packages: list({
    item: (s) => (DEBIAN_PACKAGE.test(s) ? undefined : `expected ${DEBIAN_PACKAGE_EXPECTED}`),
    expected: 'newline-separated Debian packages',
  }),
  'source-dir': existingPath('dir'),
  version: str({ pattern: SYSEXT_VERSION, expected: SYSEXT_VERSION_EXPECTED }),
  format: oneOf(SYSEXT_FORMATS, 'squashfs'),
  'output-dir': str({ default: 'sysext-out', pattern: /^[^\n\0]+$/, expected: 'a directory for the published files' }),
  'boot-test': bool(true),
  'probe-command': str({ expected: 'a shell command run in the guest after the merge' }),
  accel: oneOf(['auto', 'kvm', 'tcg'] as const, 'auto'),
  memory: int({ default: 2048, min: 512, max: 65536 }),
  timeout: int({ default: 900, min: 60, max: 86400 }),
  'gpg-private-key': secret(),
  'gpg-passphrase': secret(),
  'base-url': str({ expected: 'the http(s) URL the published directory is served from' }),
  exclude: list({
    item: (s) => absolutePathProblem(s, false),
    expected: 'newline-separated absolute paths the build wrote that are dropped deliberately',
  }),
  'allow-overrides': list({
    item: (s) => absolutePathProblem(s, true),
    expected: 'newline-separated absolute paths of base files the extension may replace',
  }),
  'apt-sources': str({ expected: 'sources.list lines ("deb URI SUITE COMPONENTS")' }),
  ...signatureGateInputs,
  identity: oneOf(['repository', 'tags'] as const, 'repository'),
  ...registryInputs,
};

type Inputs = ReturnType<typeof readInputs<typeof inputs>>;

/** Cross-input rules, before any side effect. */
function checkCombination(inp: Inputs): void {
  const hasPackages = inp.packages.length > 0;
  if (hasPackages === Boolean(inp['source-dir']))
    throw new InputError(
      hasPackages ? 'source-dir' : 'packages',
      undefined,
      'give exactly one of packages (installed on the base) and source-dir (a prepared tree)',
    );
  if (!hasPackages && !inp.version)
    throw new InputError('version', undefined, `required with source-dir: expected ${SYSEXT_VERSION_EXPECTED}`);
  const keyProblem = inp['gpg-private-key'] ? armoredKeyProblem(inp['gpg-private-key']) : undefined;
  if (keyProblem) throw new InputError('gpg-private-key', undefined, keyProblem);
  const urlProblem = inp['base-url'] ? baseUrlProblem(inp['base-url']) : undefined;
  if (urlProblem) throw new InputError('base-url', inp['base-url'], urlProblem);
  for (const line of inp['apt-sources'].split('\n').map((l) => l.trim())) {
    if (line && !line.startsWith('#') && !/^deb(-src)?\s+\S/.test(line))
      throw new InputError('apt-sources', line, 'expected one-line sources.list entries ("deb URI SUITE COMPONENTS")');
  }
  if (inp['apt-sources'] && !hasPackages)
    throw new InputError('apt-sources', undefined, 'only used with packages (there is no build with source-dir)');
}

/** sysext: a system extension of the pinned base, signed, boot-tested, ready for systemd-sysupdate. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  // The runner masks a secret as a whole; a line of the armored key printed alone would not be.
  for (const line of inp['gpg-private-key'].split('\n')) if (line.trim().length >= 8) io.setSecret(line.trim());
  checkCombination(inp);
  const gate = await requireSignatureGate(inp, io, 'sysext');
  const base = inp['base-image-ref'];
  const client = connect(base, inp, io);
  const signature = await io.group("verify the base's signature", async () => {
    await resolveDigest(client, base);
    return gate.check(client, base, io, inp.identity);
  });

  const runner = io.runner;
  const temp = io.context.runnerTemp;
  const workDir = fs.mkdtempSync(path.join(temp, 'keel-sysext-'));
  const unregister = onCleanup(() => fs.rmSync(workDir, { recursive: true, force: true }));
  const serialLog = path.join(temp, `keel-sysext-${inp.name}-serial.log`);
  let r: SysextResult;
  try {
    r = await io.group(`build ${inp.name}`, () =>
      buildSysext(
        {
          base,
          name: inp.name,
          packages: inp.packages,
          sourceDir: inp['source-dir'] ? path.resolve(io.context.workspace, inp['source-dir']) : '',
          version: inp.version,
          format: inp.format,
          outputDir: path.resolve(io.context.workspace, inp['output-dir']),
          bootTest: inp['boot-test'],
          probeCommand: inp['probe-command'],
          accel: inp.accel,
          memoryMiB: inp.memory,
          timeoutMs: inp.timeout * 1000,
          gpgKey: inp['gpg-private-key'],
          gpgPassphrase: inp['gpg-passphrase'],
          baseUrl: inp['base-url'],
          allowOverrides: inp['allow-overrides'],
          exclude: inp.exclude,
          aptSources: inp['apt-sources'],
          workDir,
          serialLog,
        },
        { client, access: inp, runner, log: io },
      ),
    );
  } finally {
    await removeTree(workDir, runner).catch(() => undefined);
    unregister();
  }
  const boot = r.boot;
  const passed = !boot || boot.passed;
  if (passed) {
    io.setOutput('path', r.image);
    io.setOutput('version', r.version);
    io.setOutput('sha256sums', r.sha256sums);
    io.setOutput('transfer-file', r.transfer ?? '');
    io.setOutput('feature-file', r.feature ?? '');
  }
  await io.summary(summary(r, base.toString(), signature, serialLog));
  if (!passed) throw new UserError(`boot test failed: ${boot!.reason}`);
  if (!inp['base-url'])
    io.info('no base-url: no .transfer/.feature written (clients need the URL the directory is served from)');
  io.info(
    `${path.basename(r.image)} (${r.version}, sha256 ${r.sha256}) ${boot ? 'merged and ran in the booted base' : 'built (boot-test false)'}`,
  );
}

function summary(r: SysextResult, base: string, signature: string, serialLog: string): string {
  const b = r.boot;
  const d = r.decision;
  const verdict = !b ? 'not run (boot-test false)' : `${b.passed ? '✅' : '❌'} ${b.reason}`;
  const rows: string[][] = [
    ['image', code(path.basename(r.image))],
    ['base', `${code(base)} (${r.baseId}, ${r.architecture}); base signature: ${signature}`],
    ['size, sha256', `${(r.size / 1048576).toFixed(1)} MiB, ${code(r.sha256)}`],
    ['SHA256SUMS', r.fingerprint ? `signed by ${code(r.fingerprint)}` : '⚠️ unsigned (no gpg-private-key)'],
    [
      'extension-release',
      r.releaseFrom === 'keel' ? 'written by Keel from the base' : "the content's own, checked against the base",
    ],
    [
      'client files',
      r.transfer ? `${code(path.basename(r.transfer))}, ${code(path.basename(r.feature!))}` : 'none (no base-url)',
    ],
    ['boot test', verdict],
  ];
  if (b) {
    rows.push(
      ['merged', b.probe.merged ?? 'no'],
      ['probe-command', b.probe.probeCommand ?? 'not reached'],
      ['systemd-sysupdate', b.probe.sysupdate ?? 'not reached'],
    );
    if (b.fetched.length) rows.push(['guest fetched', b.fetched.map(code).join(' ')]);
  }
  if (d.excluded.length) rows.push(['dropped (exclude)', d.excluded.map((p) => code(`/${p}`)).join(' ')]);
  if (d.overrides.length) rows.push(['replaces (allow-overrides)', d.overrides.map((p) => code(`/${p}`)).join(' ')]);
  if (d.bookkeeping) rows.push(['package-manager state dropped', `${d.bookkeeping} entries`]);
  rows.push([
    'timings',
    Object.entries(r.timings)
      .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
      .join(', '),
  ]);
  let md = `### sysext ${path.basename(r.image)} ${b && !b.passed ? '❌' : '✅'}\n\n${table(['', ''], rows)}`;
  if (b && !b.passed)
    md += `\nSerial log: ${code(serialLog)}. Last ${b.tail.length} console lines:\n\n${fence(b.tail.join('\n'))}`;
  return md;
}

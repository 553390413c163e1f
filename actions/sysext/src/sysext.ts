import fs from 'node:fs';
import path from 'node:path';
import { writeSha256Sums } from '../../lib/checksums.js';
import { UserError } from '../../lib/errors.js';
import { requireTools, type CommandRunner } from '../../lib/exec.js';
import { withGpgKey } from '../../lib/gpg.js';
import { openImage, type OpenedImage } from '../../lib/image/open.js';
import type { Logger } from '../../lib/log.js';
import type { RegistryClient } from '../../lib/oci/client.js';
import type { ImageReference } from '../../lib/oci/reference.js';
import { parseOsRelease } from '../../lib/os-release.js';
import type { RegistryAccess } from '../../lib/registry.js';
import { LayeredRootfs } from '../../lib/rootfs/layered.js';
import { decideContent, type ContentDecision, type ContentRules } from '../../lib/sysext/content.js';
import { FORMAT_TOOLS, fsImageArgv, type SysextFormat } from '../../lib/sysext/fs-image.js';
import {
  imageFileName,
  SYSEXT_VERSION,
  SYSEXT_VERSION_EXPECTED,
  systemdArchitecture,
  versionFromDebian,
} from '../../lib/sysext/naming.js';
import {
  extensionRelease,
  extensionReleaseMismatches,
  extensionReleasePath,
  type BaseIdentity,
} from '../../lib/sysext/release.js';
import { featureFile, transferFile } from '../../lib/sysext/sysupdate.js';
import { unpackRootfs, removeTree } from '../../lib/vm/unpack.js';
import { bootWithExtension, type SysextBootOutcome } from './boot.js';
import { baseLayout, installPackages } from './packages.js';
import { layerSource, shippingLayer, treeSource, type ContentSource } from './source.js';

/**
 * The sysext hop's work, independent of the runner: base (pinned, verified blobs) → content
 * (a prepared tree, or packages installed in a throw-away build) → decision (only /usr and /opt,
 * no undeclared shadowing) → extension-release matching the base → reproducible image →
 * SHA256SUMS (+ detached signature) and the client's .transfer/.feature → boot test → the files
 * moved into the output directory, all at once, only when every step passed.
 */
export interface SysextRequest {
  base: ImageReference;
  name: string;
  packages: string[];
  sourceDir: string;
  version: string;
  format: SysextFormat;
  outputDir: string;
  bootTest: boolean;
  probeCommand: string;
  accel: 'auto' | 'kvm' | 'tcg';
  memoryMiB: number;
  timeoutMs: number;
  gpgKey: string;
  gpgPassphrase: string;
  baseUrl: string;
  allowOverrides: string[];
  exclude: string[];
  aptSources: string;
  workDir: string;
  serialLog: string;
}

export interface SysextDeps {
  client: RegistryClient;
  access: RegistryAccess;
  runner: CommandRunner;
  log: Logger;
}

export interface SysextResult {
  image: string;
  version: string;
  architecture: string;
  sha256: string;
  size: number;
  sha256sums: string;
  signature?: string;
  fingerprint?: string;
  transfer?: string;
  feature?: string;
  baseId: string;
  decision: ContentDecision;
  /** The extension-release shipped: Keel's, or the content's own (validated). */
  releaseFrom: 'keel' | 'content';
  boot?: SysextBootOutcome;
  timings: Record<string, number>;
}

/** The base's os-release and systemd architecture name. */
async function baseIdentity(image: OpenedImage, rootfs: LayeredRootfs): Promise<BaseIdentity> {
  const files = await rootfs.readFiles(['usr/lib/os-release', 'etc/os-release']);
  const text = files.get('usr/lib/os-release') ?? files.get('etc/os-release');
  if (!text)
    throw new UserError(`the base ${image.source} has no /usr/lib/os-release (systemd-sysext matches against it)`);
  const osRelease = parseOsRelease(text.toString('utf8'));
  if (!osRelease.ID) throw new UserError(`the base's os-release has no ID= (systemd-sysext matches extensions by it)`);
  const oci = image.config.architecture ?? 'amd64';
  const architecture = systemdArchitecture(oci);
  if (!architecture) throw new UserError(`the base's architecture ${oci} has no systemd name Keel knows`);
  return { osRelease, architecture };
}

/** The content of one file of a source (its own extension-release), or undefined. */
async function readEntry(source: ContentSource, p: string): Promise<string | undefined> {
  for await (const e of source.stream()) {
    if (e.header.path !== p || e.header.type !== 'file') continue;
    const parts: Buffer[] = [];
    if (Buffer.isBuffer(e.body)) parts.push(e.body);
    else if (e.body) for await (const c of e.body) parts.push(c);
    return Buffer.concat(parts).toString('utf8');
  }
  return undefined;
}

/** Fails before anything is downloaded when a prepared tree holds content that can never ship. */
export async function precheckTree(dir: string, rules: ContentRules): Promise<void> {
  decideContent(await treeSource(dir).entries(), new Map(), rules);
}

/** Copies a finished file into the output directory atomically (temp name, then rename). */
function publish(file: string, outDir: string): string {
  const dest = path.join(outDir, path.basename(file));
  const tmp = path.join(outDir, `.${path.basename(file)}.keel-${process.pid}`);
  fs.copyFileSync(file, tmp);
  fs.renameSync(tmp, dest);
  return dest;
}

export async function buildSysext(req: SysextRequest, deps: SysextDeps): Promise<SysextResult> {
  const { runner, log } = deps;
  const timings: Record<string, number> = {};
  const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      timings[name] = (Date.now() - t0) / 1000;
    }
  };
  const tool = FORMAT_TOOLS[req.format];
  requireTools({ [tool.tool]: tool.pkg, gpg: 'gnupg', ...(req.packages.length ? { buildah: 'buildah' } : {}) }, runner);
  const rules: ContentRules = {
    mode: req.packages.length ? 'packages' : 'tree',
    exclude: req.exclude,
    allowOverrides: req.allowOverrides,
    name: req.name,
  };
  if (req.sourceDir) await precheckTree(req.sourceDir, rules);

  const blobs = path.join(req.workDir, 'blobs');
  const image = await phase('download base', () =>
    openImage(
      { kind: 'registry', ref: req.base },
      { access: deps.access, log, runner, tmpDir: req.workDir, cacheDir: blobs },
    ),
  );
  const rootfs = new LayeredRootfs(image.layers);
  const baseIndex = await phase('index base', () => rootfs.index());
  const identity = await baseIdentity(image, rootfs);

  let source: ContentSource;
  let version = req.version;
  if (req.packages.length) {
    const layout = await baseLayout(
      image,
      deps.client,
      (d) => path.join(blobs, d.replace(':', '-')),
      path.join(req.workDir, 'base-oci'),
    );
    const built = await phase('install packages', () =>
      installPackages({
        baseLayoutDir: layout,
        baseLayers: image.manifest.layers.length,
        baseDiffIds: image.config.rootfs.diff_ids,
        packages: req.packages,
        aptSources: req.aptSources,
        workDir: req.workDir,
        runner,
        log,
      }),
    );
    source = layerSource(built.layer);
    if (!version) {
      version = versionFromDebian(built.installedVersion);
      log.info(`version ${version} (from ${req.packages[0]} ${built.installedVersion})`);
    }
  } else {
    source = treeSource(req.sourceDir);
  }
  if (!SYSEXT_VERSION.test(version))
    throw new UserError(
      `the extension version ${JSON.stringify(version)} is not ${SYSEXT_VERSION_EXPECTED}: give the version input`,
    );

  const decision = decideContent(await source.entries(), baseIndex, rules);
  const ownRelease = extensionReleasePath(req.name);
  const ship = new Set(decision.ship.map((e) => e.path));
  let releaseFrom: 'keel' | 'content' = 'keel';
  const extra: { path: string; content: string }[] = [];
  if (ship.has(ownRelease)) {
    const problems = extensionReleaseMismatches((await readEntry(source, ownRelease)) ?? '', identity);
    if (problems.length)
      throw new UserError(
        `/${ownRelease} does not match the base (systemd-sysext would not merge it): ${problems.join('; ')}`,
      );
    releaseFrom = 'content';
  } else {
    extra.push({ path: ownRelease, content: extensionRelease(identity, { name: req.name, version }) });
  }

  const staging = path.join(req.workDir, 'tree');
  await phase('stage content', () =>
    unpackRootfs(new LayeredRootfs([shippingLayer(source, ship, extra)]), staging, runner, log),
  );
  const publishDir = path.join(req.workDir, 'publish');
  fs.mkdirSync(publishDir, { recursive: true });
  const raw = path.join(publishDir, imageFileName(req.name, version, identity.architecture));
  await phase('make image', async () => {
    const [cmd, args] = fsImageArgv(req.format, staging, raw, `${req.name}/${version}`);
    await runner.run(cmd, args, { echo: true, timeoutMs: 60 * 60_000 });
  });
  await removeTree(staging, runner);
  if (process.getuid?.() !== 0) await runner.run('sudo', ['-n', 'chown', String(process.getuid?.()), raw]);

  const listed = [raw];
  let transfer: string | undefined;
  let feature: string | undefined;
  if (req.baseUrl) {
    transfer = path.join(publishDir, `${req.name}.transfer`);
    feature = path.join(publishDir, `${req.name}.feature`);
    fs.writeFileSync(
      transfer,
      transferFile({ name: req.name, architecture: identity.architecture, baseUrl: req.baseUrl }),
    );
    fs.writeFileSync(
      feature,
      featureFile({
        name: req.name,
        description: `${req.name} ${version}: system extension for ${identity.osRelease.PRETTY_NAME ?? identity.osRelease.ID}`,
      }),
    );
    listed.push(transfer, feature);
  }
  const sums = await writeSha256Sums(listed, path.join(publishDir, 'SHA256SUMS'));
  let signature: string | undefined;
  let fingerprint: string | undefined;
  const publicKey = path.join(req.workDir, 'import-pubring.gpg');
  if (req.gpgKey) {
    signature = path.join(publishDir, 'SHA256SUMS.gpg');
    fingerprint = await withGpgKey(
      { armoredKey: req.gpgKey, passphrase: req.gpgPassphrase || undefined, tmpDir: req.workDir, runner },
      async (g) => {
        await g.detachSign(sums.path, signature!);
        await g.verify(sums.path, signature!);
        await g.exportPublic(publicKey);
        return g.fingerprint;
      },
    );
    log.info(`signed SHA256SUMS with ${fingerprint}`);
  } else {
    log.warning(
      'no gpg-private-key: SHA256SUMS is unsigned, and systemd-sysupdate/updex (Verify=yes) refuse it until it is signed',
    );
  }

  let boot: SysextBootOutcome | undefined;
  if (req.bootTest) {
    const sysupdate =
      baseIndex.has('usr/lib/systemd/systemd-sysupdate') || ship.has('usr/lib/systemd/systemd-sysupdate');
    boot = await phase('boot test', () =>
      bootWithExtension(
        {
          base: rootfs,
          image: raw,
          publishDir,
          name: req.name,
          version,
          architecture: identity.architecture,
          probeCommand: req.probeCommand,
          sysupdate,
          signed: Boolean(signature),
          publicKey: signature ? publicKey : undefined,
          accel: req.accel,
          memoryMiB: req.memoryMiB,
          timeoutMs: req.timeoutMs,
          workDir: req.workDir,
          serialLog: req.serialLog,
        },
        runner,
        log,
      ),
    );
  }
  const size = fs.statSync(raw).size;
  const result: SysextResult = {
    image: raw,
    version,
    architecture: identity.architecture,
    sha256: sums.entries.find((e) => e.name === path.basename(raw))!.sha256,
    size,
    sha256sums: sums.path,
    signature,
    fingerprint,
    transfer,
    feature,
    baseId: `${identity.osRelease.ID} ${identity.osRelease.SYSEXT_LEVEL ?? identity.osRelease.VERSION_ID ?? ''}`.trim(),
    decision,
    releaseFrom,
    boot,
    timings,
  };
  if (boot && !boot.passed) return result;

  fs.mkdirSync(req.outputDir, { recursive: true });
  // SHA256SUMS (and its signature) last: a reader never sees a manifest naming a missing file.
  for (const f of [raw, transfer, feature, sums.path, signature]) {
    if (!f) continue;
    const dest = publish(f, req.outputDir);
    if (f === raw) result.image = dest;
    else if (f === transfer) result.transfer = dest;
    else if (f === feature) result.feature = dest;
    else if (f === sums.path) result.sha256sums = dest;
    else result.signature = dest;
  }
  return result;
}

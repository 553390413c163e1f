import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { onCleanup } from '../../lib/cleanup.js';
import type { RunContext } from '../../lib/context.js';
import type { Distro } from '../../lib/declarations.js';
import { InputError, UserError } from '../../lib/errors.js';
import type { CommandRunner } from '../../lib/exec.js';
import type { Logger } from '../../lib/log.js';
import { InvalidReferenceError, parseReference, type ImageReference } from '../../lib/oci/reference.js';
import { mayBeInsecure, registryTransportProblem } from '../../lib/transport.js';
import { connect, resolveDigest, type RegistryAccess } from '../../lib/registry.js';
import { pullRequestOf, releaseDateOf } from '../../lib/tags.js';
import { Buildah, privilegeFor, theKernel, type ImageInfo } from './buildah.js';
import { requireBuiltFromBase, requireFromBaseImage } from './containerfile.js';
import { inputsDigest } from './inputs-digest.js';
import {
  buildArgv,
  computeBuildArgs,
  computeLabels,
  LABEL,
  localImageName,
  rfc3339,
  secretsFromDeclarations,
  secretValues,
  versionOf,
  type BaseImage,
  type BuildPlan,
  type SecretSource,
} from './plan.js';

/**
 * The build hop: resolve the base once, build with buildah (isolation chroot by default), read
 * the kernel version from the built image, and stamp `ostree.linux` with it in a second,
 * fully cached pass (same layers, one more label: no extra layer, nothing inherited).
 */
export interface BuildRequest {
  containerfile: string;
  /** Multi-stage target (stage name); absent: the last stage. */
  target?: string;
  context: string;
  /** Local name; empty: localhost/<declarations image.name>. */
  image: string;
  /** More local tags: tag words (same repository) or full local names. */
  tags: string[];
  /** Base reference; empty: declarations base.image. */
  baseImage: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  /** undefined: the declarations' build.secrets. */
  secrets?: SecretSource[];
  storageDriver: string;
  /** Keep images in root's containers-storage (buildah through `sudo -n` when not root). */
  rootStorage?: boolean;
  isolation: string;
  releaseDate?: string;
  version?: string;
  declarations?: Distro;
  registry: RegistryAccess;
}

export interface BuildDeps {
  runner: CommandRunner;
  log: Logger;
  context: RunContext;
  /** Registers a value to mask in the runner's log (core.setSecret). */
  mask?: (value: string) => void;
  env?: NodeJS.ProcessEnv;
  /** Resolves a registry reference to its digest (default: the lib registry client). */
  resolveRegistry?: (ref: ImageReference, access: RegistryAccess, log: Logger) => Promise<string>;
  /** The effective uid (tests); default: this process's. */
  uid?: number;
}

/** What is known so far; filled as the hop proceeds, so failure paths can still report it. */
export interface BuildState {
  created?: string;
  releaseDate?: string;
  version?: string;
  image?: string;
  localRef?: string;
  base?: BaseImage;
  imageId?: string;
  digest?: string;
  kernelVersion?: string;
  labels?: Record<string, string>;
  inputs?: { digest: string; files: number };
  timings: Record<string, number>;
}

export interface BuildResult extends Required<Omit<BuildState, 'inputs'>> {
  inputs?: { digest: string; files: number };
}

async function defaultResolveRegistry(ref: ImageReference, access: RegistryAccess, log: Logger): Promise<string> {
  return resolveDigest(connect(ref, access, log), ref);
}

/** Resolves the base reference to a digest exactly once (local containers-storage or registry). */
export async function resolveBase(
  given: string,
  fromDeclarations: boolean,
  buildah: Buildah,
  deps: Pick<BuildDeps, 'log' | 'resolveRegistry'>,
  access: RegistryAccess,
): Promise<BaseImage> {
  let ref: ImageReference;
  try {
    ref = parseReference(given);
  } catch (e) {
    const why = e instanceof InvalidReferenceError ? e.reason : String(e);
    if (fromDeclarations)
      throw new UserError(`declarations base.image ${JSON.stringify(given)} is not a valid image reference: ${why}`);
    throw new InputError('base-image', given, `not a valid image reference: ${why}`);
  }
  // `localhost/...` (no port) is podman/buildah's name space for images that exist only in local
  // containers-storage; everything else lives in a registry, which is the source of truth.
  if (ref.registry === 'localhost') {
    const info = await buildah.inspect(ref.toString());
    if (!info) {
      throw new UserError(
        `base image ${ref.toString()} is not in local containers-storage (storage driver ${buildah.storageDriver}): ` +
          'build it first (build_files/base/bootstrap.sh builds the example base from Debian packages) or give a registry reference',
      );
    }
    if (!/^sha256:[a-f0-9]{64}$/.test(info.digest))
      throw new UserError(`local base image ${ref.toString()} has no manifest digest`);
    if (ref.digest && ref.digest !== info.digest) {
      throw new UserError(`local base image ${ref.toString()} resolved to ${info.digest}, not the digest it names`);
    }
    return { given: ref.toString(), digest: info.digest, pinned: `${ref.name}@${info.digest}`, source: 'local' };
  }
  const problem = registryTransportProblem(ref.registry, {
    tlsVerify: access['tls-verify'] ?? true,
    insecureRegistries: access['insecure-registries'],
  });
  if (problem) throw new InputError('tls-verify', 'false', problem);
  const digest = await (deps.resolveRegistry ?? defaultResolveRegistry)(ref, access, deps.log);
  return { given: ref.toString(), digest, pinned: `${ref.name}@${digest}`, source: 'registry' };
}

/** `git rev-parse HEAD` of the workspace, when the run context has no sha. */
async function gitRevision(runner: CommandRunner, dir: string): Promise<string | undefined> {
  try {
    const r = await runner.run('git', ['-C', dir, 'rev-parse', 'HEAD'], { okCodes: [0, 128] });
    const sha = r.stdout.toString('utf8').trim();
    return r.code === 0 && /^[0-9a-f]{40,64}$/.test(sha) ? sha : undefined;
  } catch {
    return undefined; // no git on PATH: the revision label is omitted (with a warning) instead
  }
}

/** A containers auth file for explicit credentials (0600, removed on every exit path). */
function writeAuthFile(dir: string, registry: string, access: RegistryAccess): { file: string; remove: () => void } {
  const file = path.join(dir, `keel-build-auth-${crypto.randomUUID()}.json`);
  const auth = Buffer.from(`${access.username ?? ''}:${access.password ?? ''}`).toString('base64');
  fs.writeFileSync(file, JSON.stringify({ auths: { [registry]: { auth } } }), { mode: 0o600 });
  const remove = () => fs.rmSync(file, { force: true });
  const unregister = onCleanup(remove);
  return {
    file,
    remove: () => {
      remove();
      unregister();
    },
  };
}

export async function buildImage(
  req: BuildRequest,
  deps: BuildDeps,
  state: BuildState = { timings: {} },
): Promise<BuildResult> {
  const { log, runner, context: ctx } = deps;
  const env = deps.env ?? process.env;
  const decl = req.declarations;
  const buildah = new Buildah(
    runner,
    log,
    req.storageDriver,
    privilegeFor(req.rootStorage ?? true, deps.uid ?? process.getuid?.()),
  );
  const pr = ctx.eventName.startsWith('pull_request') ? pullRequestOf(ctx) : undefined;

  // Everything the run computes once: one instant, one release date, one version.
  const now = ctx.now();
  state.created = rfc3339(now);
  state.releaseDate = req.releaseDate ?? releaseDateOf(now);
  state.version = req.version || versionOf(decl, pr, state.releaseDate);

  const image = localImageName(req.image, decl, pr);
  const tags = [
    image.toString(),
    ...req.tags.map((t) =>
      (t.includes('/') || t.includes(':') ? localImageName(t, decl, pr) : image.withTag(t)).toString(),
    ),
  ];
  state.image = image.toString();

  const secrets = req.secrets ?? secretsFromDeclarations(decl, env, log);
  const redact: string[] = [];
  for (const s of secrets) {
    for (const v of secretValues(s, env)) {
      redact.push(v);
      deps.mask?.(v);
    }
  }
  if (req.registry.password) redact.push(req.registry.password);

  const givenBase = req.baseImage || decl?.base.image;
  if (!givenBase)
    throw new InputError(
      'base-image',
      undefined,
      'it is required when there is no declarations file (expected an image reference)',
    );
  let t = Date.now();
  state.base = await resolveBase(givenBase, !req.baseImage, buildah, deps, req.registry);
  state.timings.resolve = Date.now() - t;
  log.info(`base ${state.base.given} → ${state.base.pinned} (${state.base.source})`);
  const from = requireFromBaseImage(req.containerfile, state.base.pinned);

  const revision = ctx.sha || (await gitRevision(runner, ctx.workspace));
  const source = decl?.image.source ?? (ctx.repository ? `${ctx.serverUrl}/${ctx.repository}` : undefined);
  const labels = computeLabels(
    { created: state.created, version: state.version, revision, source, base: state.base, decl },
    req.labels,
    log,
  );
  if (decl) {
    state.inputs = inputsDigest(ctx.workspace, decl.build.inputs);
    log.info(`build inputs (${decl.build.inputs.join(', ')}): ${state.inputs.files} files, ${state.inputs.digest}`);
  }
  const buildArgs = computeBuildArgs({
    base: state.base,
    labels,
    decl,
    inputsDigest: state.inputs?.digest,
    user: req.buildArgs,
  });

  const tmp = fs.mkdtempSync(path.join(ctx.runnerTemp, 'keel-build-'));
  const auth =
    state.base.source === 'registry' && (req.registry.username || req.registry.password)
      ? writeAuthFile(tmp, parseReference(state.base.given).registry, req.registry)
      : undefined;
  const secretEnv: Record<string, string | undefined> = {};
  for (const s of secrets) if (s.kind === 'env') secretEnv[s.ref] = env[s.ref];
  const plan: BuildPlan = {
    containerfile: req.containerfile,
    ...(req.target ? { target: req.target } : {}),
    context: req.context,
    isolation: req.isolation,
    buildArgs,
    labels,
    annotations: { [LABEL.baseName]: state.base.given, [LABEL.baseDigest]: state.base.digest },
    secrets,
    tags: [],
    iidfile: path.join(tmp, 'pass1.iid'),
    // buildah pulls the pinned base: unverified only where the transport rule allows it (the
    // registry client already refused anything else while resolving the base).
    tlsVerify: !(
      state.base.source === 'registry' &&
      mayBeInsecure(parseReference(state.base.given).registry, {
        tlsVerify: req.registry['tls-verify'] ?? true,
        insecureRegistries: req.registry['insecure-registries'],
      })
    ),
    authfile: auth?.file,
  };
  try {
    // Pass 1: the build itself, untagged (its ID is all the next steps need).
    t = Date.now();
    log.info('pass 1: build');
    const id1 = await buildah.build(buildArgv(plan), plan.iidfile, redact, secretEnv);
    state.timings.build = Date.now() - t;
    state.imageId = id1; // reported if a later step fails: the image that was built, untagged
    const info1 = await mustInspect(buildah, id1);
    const base = await buildah.inspect(state.base.pinned);
    requireBuiltFromBase(info1.diffIds, base?.diffIds, { file: req.containerfile, from, pinned: state.base.pinned });

    // The kernel, read from the built content (never from an inherited label).
    t = Date.now();
    state.kernelVersion = theKernel(await buildah.kernelDirs(id1));
    state.timings.kernel = Date.now() - t;
    log.info(`kernel ${state.kernelVersion}`);

    // Pass 2: same build, every step from cache, plus the ostree.linux label and the tags.
    t = Date.now();
    log.info(`pass 2: label ostree.linux=${state.kernelVersion} (cached)`);
    const pass2 = { ...plan, tags, iidfile: path.join(tmp, 'pass2.iid') };
    const id2 = await buildah.build(
      buildArgv(pass2, { [LABEL.ostreeLinux]: state.kernelVersion }),
      pass2.iidfile,
      redact,
      secretEnv,
    );
    state.timings.label = Date.now() - t;
    const info2 = await mustInspect(buildah, id2);
    if (info2.diffIds.join() !== info1.diffIds.join()) {
      // The cache did not hold (pruned between passes?): the kernel must be read again.
      const again = theKernel(await buildah.kernelDirs(id2));
      if (again !== state.kernelVersion) {
        throw new UserError(
          `the second build pass produced other layers with kernel ${again} (first pass: ${state.kernelVersion}); rerun the build`,
        );
      }
      log.warning('the second build pass did not reuse the first pass layers; its kernel was read again and matches');
    }
    // The first pass's image stays: it is the parent of the second (one LABEL step on top) and
    // the cache entry the next build's second pass starts from.
    state.imageId = id2;
    state.localRef = `containers-storage:${state.image}`;
    state.digest = info2.digest;
    state.labels = sortKeys(info2.labels);
    if (state.labels[LABEL.ostreeLinux] !== state.kernelVersion) {
      throw new Error(
        `built image has ostree.linux=${state.labels[LABEL.ostreeLinux]} instead of ${state.kernelVersion}`,
      );
    }
    if (state.labels[LABEL.baseDigest] !== state.base.digest) {
      throw new Error(`built image has base.digest=${state.labels[LABEL.baseDigest]} instead of ${state.base.digest}`);
    }
  } finally {
    auth?.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return state as BuildResult;
}

async function mustInspect(buildah: Buildah, id: string): Promise<ImageInfo> {
  const info = await buildah.inspect(id);
  if (!info) throw new Error(`image ${id} vanished from containers-storage right after the build`);
  return info;
}

function sortKeys(r: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => a.localeCompare(b)));
}

import fs from 'node:fs';
import { InputError, UserError } from '../../lib/errors.js';
import type { Distro } from '../../lib/declarations.js';
import type { Logger } from '../../lib/log.js';
import { InvalidReferenceError, parseReference, type ImageReference } from '../../lib/oci/reference.js';
import { tagProblem, type PullRequestInfo } from '../../lib/tags.js';

/**
 * The pure half of the build hop: from inputs, declarations and the run context to the exact
 * labels, build-args, secrets and buildah argv. No I/O but reading secret files' existence,
 * so every rule here is unit-tested by comparing argv arrays.
 */

// ---------------------------------------------------------------------------------------------
// Local image name

/**
 * The local name the image is tagged with. A name without registry is put under `localhost/`
 * (what buildah does anyway, made explicit so `local-ref` is exact); a name without tag gets
 * the stream word (`candidate`, or `pr-<N>` on a pull request). Digests are refused.
 */
export function localImageName(
  input: string,
  decl: Distro | undefined,
  pr: PullRequestInfo | undefined,
): ImageReference {
  const streamTag = pr ? `pr-${pr.number}` : (decl?.tags.candidate ?? 'candidate');
  let raw = input.trim();
  if (!raw) {
    if (!decl) {
      throw new InputError(
        'image',
        undefined,
        'it is required when there is no declarations file (expected a local name like localhost/my-os)',
      );
    }
    raw = `localhost/${decl.image.name}`;
  }
  const first = raw.split('/')[0] ?? '';
  const hasRegistry = raw.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasRegistry) raw = `localhost/${raw}`;
  let ref: ImageReference;
  try {
    ref = parseReference(raw, { requireTagOrDigest: false });
  } catch (e) {
    throw new InputError(
      'image',
      input,
      e instanceof InvalidReferenceError ? `not a valid image name: ${e.reason}` : String(e),
    );
  }
  if (ref.digest)
    throw new InputError('image', input, 'a local image name cannot carry a digest (the build produces the digest)');
  if (!ref.tag) ref = ref.withTag(streamTag);
  const problem = tagProblem(ref.tag!);
  if (problem) throw new InputError('image', input, problem);
  return ref;
}

// ---------------------------------------------------------------------------------------------
// Secrets

export interface SecretSource {
  id: string;
  kind: 'file' | 'env';
  /** File path or environment variable name (never the value). */
  ref: string;
}

const SECRET_ID = /^[A-Za-z0-9_.-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `id=path` or `id=env:VAR`; returns the problem as a string when the line is wrong. */
export function parseSecretLine(line: string, env: NodeJS.ProcessEnv = process.env): SecretSource | string {
  const i = line.indexOf('=');
  if (i <= 0) return 'expected id=path or id=env:VAR';
  const id = line.slice(0, i).trim();
  const src = line.slice(i + 1).trim();
  if (!SECRET_ID.test(id)) return `secret id ${JSON.stringify(id)} may only contain [A-Za-z0-9_.-]`;
  if (!src) return 'the source after = is empty';
  if (src.startsWith('env:')) {
    const name = src.slice(4);
    if (!ENV_NAME.test(name)) return `${JSON.stringify(name)} is not an environment variable name`;
    if (!env[name]) return `environment variable ${name} is not set or empty`;
    return { id, kind: 'env', ref: name };
  }
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(src);
  } catch {
    st = undefined;
  }
  if (!st?.isFile()) return `secret file ${src} does not exist`;
  return { id, kind: 'file', ref: src };
}

/**
 * Secrets declared in `build.secrets` (used when the `secrets` input is empty). A declared
 * secret whose variable is unset is skipped with a warning (a fork's pull request has no
 * secrets; a RUN that needs it fails with its own message), never an error here.
 */
export function secretsFromDeclarations(decl: Distro | undefined, env: NodeJS.ProcessEnv, log: Logger): SecretSource[] {
  const out: SecretSource[] = [];
  for (const s of decl?.build.secrets ?? []) {
    if (s.file) {
      if (!fs.existsSync(s.file)) {
        log.warning(`declared build secret '${s.id}': file ${s.file} does not exist; building without it`);
        continue;
      }
      out.push({ id: s.id, kind: 'file', ref: s.file });
      continue;
    }
    const name = s.env ?? s['github-secret'];
    if (!name)
      throw new UserError(`declarations build.secrets: secret '${s.id}' names neither env, file nor github-secret`);
    if (!env[name]) {
      log.warning(`declared build secret '${s.id}': environment variable ${name} is not set; building without it`);
      continue;
    }
    out.push({ id: s.id, kind: 'env', ref: name });
  }
  return out;
}

/**
 * The environment variable through which the reusable build hands the caller's secret values to
 * the hop (its BUILD_SECRETS secret, withheld from pull requests by the workflow).
 */
export const PASSED_SECRETS_ENV = 'KEEL_BUILD_SECRETS';

/**
 * Takes the passed secret values out of `env` (so no tool the hop starts inherits them): lines
 * `NAME=value`, NAME being the `env` or `github-secret` of a `build.secrets` entry, the
 * value the rest of the line. Every value is masked before anything is checked; a problem names
 * the line number, never its text.
 */
export function takePassedSecrets(env: NodeJS.ProcessEnv, mask: (value: string) => void): Record<string, string> {
  const text = env[PASSED_SECRETS_ENV] ?? '';
  delete env[PASSED_SECRETS_ENV];
  const lines = text.split(/\r?\n/);
  for (const line of lines) {
    const value = line.slice(line.indexOf('=') + 1);
    if (value.trim()) mask(value);
  }
  const passed: Record<string, string> = {};
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const name = line.slice(0, Math.max(line.indexOf('='), 0));
    const where = `${PASSED_SECRETS_ENV} (the reusable build's BUILD_SECRETS) line ${i + 1}`;
    if (!ENV_NAME.test(name))
      throw new UserError(`${where}: expected NAME=value, NAME a variable name ([A-Za-z_][A-Za-z0-9_]*)`);
    if (name in passed) throw new UserError(`${where}: ${name} is given twice`);
    passed[name] = line.slice(name.length + 1);
  });
  return passed;
}

/** Passed names no `build.secrets` entry reads (a typo, or a secret the build no longer needs). */
export function unreadPassedSecrets(decl: Distro | undefined, passed: Record<string, string>): string[] {
  const read = new Set((decl?.build.secrets ?? []).map((s) => s.env ?? s['github-secret']));
  return Object.keys(passed).filter((name) => !read.has(name));
}

/** The values a secret carries, for masking (never for logging). Lines of text files too. */
export function secretValues(s: SecretSource, env: NodeJS.ProcessEnv = process.env): string[] {
  const raw = s.kind === 'env' ? (env[s.ref] ?? '') : fs.readFileSync(s.ref).toString('utf8');
  const values = new Set<string>();
  if (raw.trim()) values.add(raw.trim());
  for (const line of raw.split(/\r?\n/)) if (line.trim().length >= 4) values.add(line.trim());
  return [...values];
}

// ---------------------------------------------------------------------------------------------
// Labels

export const LABEL = {
  created: 'org.opencontainers.image.created',
  version: 'org.opencontainers.image.version',
  revision: 'org.opencontainers.image.revision',
  source: 'org.opencontainers.image.source',
  title: 'org.opencontainers.image.title',
  description: 'org.opencontainers.image.description',
  vendor: 'org.opencontainers.image.vendor',
  licenses: 'org.opencontainers.image.licenses',
  baseName: 'org.opencontainers.image.base.name',
  baseDigest: 'org.opencontainers.image.base.digest',
  keywords: 'io.artifacthub.package.keywords',
  bootc: 'containers.bootc',
  ostreeBootable: 'ostree.bootable',
  ostreeLinux: 'ostree.linux',
} as const;

/**
 * Labels the action owns: they describe facts the action establishes (the kernel found in the
 * built image, the base actually built from, the run's single creation time), so an input may
 * not override them.
 */
export const PROTECTED_LABELS: readonly string[] = [LABEL.ostreeLinux, LABEL.baseName, LABEL.baseDigest, LABEL.created];

export interface BaseImage {
  /** The reference as given (recorded in base.name). */
  given: string;
  /** The digest it resolved to, once. */
  digest: string;
  /** `name@digest`, what the build is FROM. */
  pinned: string;
  source: 'local' | 'registry';
}

export interface LabelFacts {
  created: string;
  version: string;
  revision?: string;
  source?: string;
  base: BaseImage;
  decl?: Distro;
}

/** The computed label set, then the user's labels over it; empty values are dropped with a warning. */
export function computeLabels(facts: LabelFacts, user: Record<string, string>, log: Logger): Record<string, string> {
  for (const k of Object.keys(user)) {
    if (PROTECTED_LABELS.includes(k)) {
      throw new InputError(
        'labels',
        `${k}=${user[k]}`,
        `${k} is set by the build itself (from the built image, the resolved base or the run's creation time) and cannot be overridden`,
      );
    }
  }
  const img = facts.decl?.image;
  const computed: Record<string, string | undefined> = {
    [LABEL.created]: facts.created,
    [LABEL.version]: facts.version,
    [LABEL.revision]: facts.revision,
    [LABEL.source]: facts.source,
    [LABEL.title]: img?.title,
    [LABEL.description]: img?.description,
    [LABEL.vendor]: img?.vendor,
    [LABEL.licenses]: img?.licenses,
    [LABEL.baseName]: facts.base.given,
    [LABEL.baseDigest]: facts.base.digest,
    [LABEL.keywords]: img?.keywords.length ? img.keywords.join(',') : undefined,
    [LABEL.bootc]: '1',
    [LABEL.ostreeBootable]: 'true',
  };
  const out: Record<string, string> = {};
  const omitted: string[] = [];
  for (const [k, v] of Object.entries({ ...computed, ...user })) {
    if (v === undefined || v.trim() === '') omitted.push(k);
    else out[k] = v;
  }
  const worth = omitted.filter((k) => k !== LABEL.keywords);
  if (worth.length)
    log.warning(`labels omitted because their value is empty (never published empty): ${worth.join(', ')}`);
  return out;
}

/** `<stream>.<YYYYMMDD>`: the candidate word (or pr-<N>) and the release date. */
export function versionOf(decl: Distro | undefined, pr: PullRequestInfo | undefined, releaseDate: string): string {
  const word = pr ? `pr-${pr.number}` : (decl?.tags.candidate ?? 'candidate');
  return `${word}.${releaseDate}`;
}

/** RFC 3339 UTC without fractional seconds: what labels and the image stamp carry. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// ---------------------------------------------------------------------------------------------
// Build args

/**
 * Build-args in precedence order: what the action derives (identity and staleness policy from
 * the declarations, the build stamp from the labels, the inputs digest) < the declarations'
 * `build.build-args` < the `build-args` input. BASE_IMAGE is the resolved base and nothing else.
 */
export function computeBuildArgs(opts: {
  base: BaseImage;
  labels: Record<string, string>;
  decl?: Distro;
  inputsDigest?: string;
  user: Record<string, string>;
}): Record<string, string> {
  if ('BASE_IMAGE' in opts.user) {
    throw new InputError(
      'build-args',
      `BASE_IMAGE=${opts.user.BASE_IMAGE}`,
      'BASE_IMAGE is set from the base-image input (resolved to a digest once); set base-image instead',
    );
  }
  const declared = opts.decl?.build['build-args'] ?? {};
  if ('BASE_IMAGE' in declared) {
    throw new UserError('declarations build.build-args sets BASE_IMAGE: declare the base in base.image instead');
  }
  const d = opts.decl;
  const derived: Record<string, string | undefined> = {
    OS_ID: d?.os.id,
    OS_NAME: d?.os.name,
    OS_PRETTY_NAME: d?.os['pretty-name'],
    OS_ID_LIKE: d?.os['id-like'],
    OS_VARIANT_ID: d?.os['variant-id'],
    OS_HOME_URL: d?.os['home-url'],
    STALENESS_WARN_DAYS: d ? String(d.staleness['warn-after-days']) : undefined,
    IMAGE_CREATED: opts.labels[LABEL.created],
    IMAGE_VERSION: opts.labels[LABEL.version],
    IMAGE_REVISION: opts.labels[LABEL.revision],
    IMAGE_SOURCE: opts.labels[LABEL.source],
    BUILD_INPUTS_DIGEST: opts.inputsDigest,
  };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(derived)) if (v !== undefined && v !== '') out[k] = v;
  Object.assign(out, declared, opts.user);
  out.BASE_IMAGE = opts.base.pinned;
  return out;
}

// ---------------------------------------------------------------------------------------------
// buildah argv

export interface BuildPlan {
  containerfile: string;
  /** Multi-stage target: `--target`; absent: the last stage. */
  target?: string;
  context: string;
  isolation: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  /** Manifest annotations (base.name/base.digest, so they agree with the labels). */
  annotations: Record<string, string>;
  secrets: SecretSource[];
  tags: string[];
  iidfile: string;
  tlsVerify: boolean;
  authfile?: string;
}

/** Global flags every buildah invocation of the hop carries. */
export function buildahGlobal(storageDriver: string): string[] {
  return ['--storage-driver', storageDriver];
}

/**
 * `buildah build` arguments (after the global flags). Always `--layers`: the second pass (ostree.linux) must reuse every
 * layer of the first, and buildah ignores `--mount=type=secret` without layers. Secrets are
 * passed by id and path or variable name: their values never appear in argv.
 */
export function buildArgv(p: BuildPlan, extraLabels: Record<string, string> = {}): string[] {
  const argv = ['build', '--isolation', p.isolation, '--layers', '--iidfile', p.iidfile, '--file', p.containerfile];
  if (p.target) argv.push('--target', p.target);
  if (!p.tlsVerify) argv.push('--tls-verify=false');
  if (p.authfile) argv.push('--authfile', p.authfile);
  for (const [k, v] of Object.entries(p.buildArgs)) argv.push('--build-arg', `${k}=${v}`);
  for (const s of p.secrets)
    argv.push('--secret', s.kind === 'env' ? `id=${s.id},env=${s.ref}` : `id=${s.id},src=${s.ref}`);
  for (const [k, v] of Object.entries(p.annotations)) argv.push('--annotation', `${k}=${v}`);
  for (const [k, v] of Object.entries({ ...p.labels, ...extraLabels })) argv.push('--label', `${k}=${v}`);
  for (const t of p.tags) argv.push('--tag', t);
  argv.push('--', p.context);
  return argv;
}

/**
 * Image references: `[registry/]repository[:tag][@sha256:<hex>]`, normalised the way
 * containers/image and the Docker CLI do (docker.io default, `library/` for single names).
 * Every rejection says why, so a bad `image` input fails with a message a user can act on.
 */
export const DEFAULT_REGISTRY = 'docker.io';
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?))*(?::[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]+)?$/;

export class InvalidReferenceError extends Error {
  constructor(
    readonly ref: string,
    readonly reason: string,
  ) {
    super(`invalid image reference ${JSON.stringify(ref)}: ${reason}`);
    this.name = 'InvalidReferenceError';
  }
}

export class ImageReference {
  constructor(
    readonly registry: string,
    readonly repository: string,
    readonly tag?: string,
    readonly digest?: string,
  ) {}

  /** `registry/repository` (what signatures and policies call the repository). */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  /** Host the registry API lives on (docker.io's API is registry-1.docker.io). */
  get apiHost(): string {
    return this.registry === 'docker.io' ? 'registry-1.docker.io' : this.registry;
  }

  /** The tag or digest to ask the registry for (digest wins). */
  get reference(): string {
    const r = this.digest ?? this.tag;
    if (!r) throw new Error(`reference ${this.name} names neither a tag nor a digest`);
    return r;
  }

  withDigest(digest: string): ImageReference {
    if (!DIGEST.test(digest)) throw new InvalidReferenceError(digest, 'expected sha256:<64 lowercase hex>');
    return new ImageReference(this.registry, this.repository, undefined, digest);
  }

  withTag(tag: string): ImageReference {
    if (!TAG.test(tag))
      throw new InvalidReferenceError(tag, 'a tag is 1-128 of [A-Za-z0-9_.-], not starting with . or -');
    return new ImageReference(this.registry, this.repository, tag, undefined);
  }

  toString(): string {
    return `${this.name}${this.tag ? `:${this.tag}` : ''}${this.digest ? `@${this.digest}` : ''}`;
  }
}

/**
 * Parses a reference. `requireTagOrDigest` (default true) rejects a bare repository;
 * a bare repository otherwise gets no tag (callers decide; Keel never defaults to `latest`).
 */
export function parseReference(input: string, opts: { requireTagOrDigest?: boolean } = {}): ImageReference {
  const ref = input.trim();
  if (!ref) throw new InvalidReferenceError(input, 'it is empty');
  if (/\s/.test(ref)) throw new InvalidReferenceError(input, 'it contains whitespace');
  if (ref.includes('://')) {
    throw new InvalidReferenceError(input, 'drop the transport prefix (write registry/repo:tag, not docker://...)');
  }
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) {
      throw new InvalidReferenceError(input, `digest ${JSON.stringify(digest)} is not sha256:<64 lowercase hex>`);
    }
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      throw new InvalidReferenceError(
        input,
        `tag ${JSON.stringify(tag)} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -`,
      );
    }
  }
  const parts = rest.split('/');
  let registry = DEFAULT_REGISTRY;
  const first = parts[0] ?? '';
  if (
    parts.length > 1 &&
    (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))
  ) {
    registry = first;
    parts.shift();
    if (!HOST.test(registry))
      throw new InvalidReferenceError(input, `registry host ${JSON.stringify(registry)} is not a valid host[:port]`);
  }
  if (parts.length === 0 || parts.some((p) => p === '')) {
    throw new InvalidReferenceError(input, 'the repository path has an empty component');
  }
  for (const p of parts) {
    if (/[A-Z]/.test(p))
      throw new InvalidReferenceError(input, `repository component ${JSON.stringify(p)} must be lowercase`);
    if (!COMPONENT.test(p)) {
      throw new InvalidReferenceError(
        input,
        `repository component ${JSON.stringify(p)} must be lowercase letters and digits separated by '.', '_', '__' or '-'`,
      );
    }
  }
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (`${registry}/${repository}`.length > 255)
    throw new InvalidReferenceError(input, 'the name is longer than 255 characters');
  if ((opts.requireTagOrDigest ?? true) && !tag && !digest) {
    throw new InvalidReferenceError(input, 'it names neither a tag nor a digest (write repo:tag or repo@sha256:...)');
  }
  return new ImageReference(registry, repository, tag, digest);
}

/** Parses a `repo@sha256:...` reference and refuses tags, saying why. */
export function parseDigestReference(
  input: string,
  why = 'only a digest pins the exact bytes that were tested',
): ImageReference {
  const r = parseReference(input);
  if (!r.digest) {
    throw new InvalidReferenceError(input, `a digest reference (repo@sha256:...) is required, not a tag: ${why}`);
  }
  if (r.tag) throw new InvalidReferenceError(input, 'give either a tag or a digest, not both');
  return r;
}

/** Parses `registry/repo` without tag or digest (the push destination). */
export function parseRepository(input: string): ImageReference {
  const r = parseReference(input, { requireTagOrDigest: false });
  if (r.tag || r.digest)
    throw new InvalidReferenceError(input, 'expected a repository without tag or digest (registry/name)');
  return r;
}

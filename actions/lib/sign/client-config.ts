import { stringify } from 'yaml';
import { UserError } from '../errors.js';
import { parseReference, type ImageReference } from '../oci/reference.js';

/**
 * The client side of Keel's signatures: the files a bootc / rpm-ostree / podman host needs so it
 * ENFORCES the signatures `sign` writes (reference/signing.md §1.3, §6.10).
 *
 *  - `/etc/containers/policy.json`: a `sigstoreSigned` requirement for the image's repository
 *    with `keyPath` and `signedIdentity: matchRepository` (matches both the repo-only identity
 *    Keel and cosign write by default and per-tag identities). The policy's `default` is the
 *    user's choice and is kept when an existing policy is given; a new policy gets `reject`.
 *    bootc/rpm-ostree refuse `ostree-image-signed:` and `--enforce-container-sigpolicy` when
 *    the default is `insecureAcceptAnything`, so that default is reported as a warning.
 *  - `/etc/containers/registries.d/<name>.yaml`: `use-sigstore-attachments: true` for the
 *    registry namespace; without it containers/image never looks at `sha256-<hex>.sig` and
 *    says "A signature was required, but no signature exists".
 *  - the public key at `keyPath`.
 *
 * Paths are the client's absolute paths. In a bootc image, write them under /etc in the
 * Containerfile (ostree keeps the image's /etc as /usr/etc, the default of every deployment),
 * so a switched client enforces signatures from its first boot.
 */

export interface ClientConfigOptions {
  /** The image: `registry/repo` (a tag or digest is allowed and ignored for the scope). */
  image: string | ImageReference;
  /** Base name for the key and the registries.d file (default: the repository's last component). */
  name?: string;
  /** Where the public key lives on the client (default /etc/pki/containers/<name>.pub). */
  keyPath?: string;
  /** The public key PEM; when given it is included in `files`. */
  publicKeyPem?: string;
  /** The client's current policy.json (text or parsed); its `default` and other entries are kept. */
  existingPolicy?: string | Record<string, unknown>;
  /**
   * For a NEW policy: accept unsigned images from every other registry (docker "" scope
   * insecureAcceptAnything). Default false: only this image and local transports are accepted.
   */
  acceptOtherRegistries?: boolean;
  /** registries.d scope: the repository's namespace (default) or the repository itself. */
  attachmentsScope?: 'namespace' | 'repository';
  /** Tag used in the switch instructions (default: stable). */
  tag?: string;
  /** For the instructions: the directory the files were written to, mirroring client paths. */
  sourceDir?: string;
}

export interface ClientFile {
  /** Absolute path on the client. */
  path: string;
  content: string;
  mode: number;
}

export interface ClientConfig {
  name: string;
  repository: string;
  keyPath: string;
  /** The complete policy.json to install. */
  policy: Record<string, unknown>;
  /** Just the requirement for the repository (to merge by hand). */
  policyEntry: Record<string, unknown[]>;
  registriesDPath: string;
  registriesD: string;
  files: ClientFile[];
  /** Markdown: how to install and switch. */
  instructions: string;
  warnings: string[];
}

const LOCAL_TRANSPORTS = ['containers-storage', 'dir', 'docker-archive', 'docker-daemon', 'oci', 'oci-archive'];
const ACCEPT = [{ type: 'insecureAcceptAnything' }];

function safeName(s: string): string {
  const n = s
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[.-]+|[.-]+$/g, '');
  if (!n) throw new UserError(`cannot derive a file name from ${JSON.stringify(s)}: give a name`);
  return n;
}

export function renderClientConfig(opts: ClientConfigOptions): ClientConfig {
  const ref = typeof opts.image === 'string' ? parseReference(opts.image, { requireTagOrDigest: false }) : opts.image;
  const repository = ref.name;
  const parts = ref.repository.split('/');
  const name = safeName(opts.name ?? parts[parts.length - 1]!);
  const keyPath = opts.keyPath ?? `/etc/pki/containers/${name}.pub`;
  if (!keyPath.startsWith('/'))
    throw new UserError(`keyPath must be absolute on the client, got ${JSON.stringify(keyPath)}`);
  const scope =
    (opts.attachmentsScope ?? 'namespace') === 'namespace' && parts.length > 1
      ? `${ref.registry}/${parts.slice(0, -1).join('/')}`
      : (opts.attachmentsScope ?? 'namespace') === 'namespace'
        ? ref.registry
        : repository;
  const requirement = [{ type: 'sigstoreSigned', keyPath, signedIdentity: { type: 'matchRepository' } }];
  const warnings: string[] = [];

  let policy: Record<string, unknown>;
  if (opts.existingPolicy !== undefined) {
    try {
      policy =
        typeof opts.existingPolicy === 'string'
          ? (JSON.parse(opts.existingPolicy) as Record<string, unknown>)
          : structuredClone(opts.existingPolicy);
    } catch (e) {
      throw new UserError(`the existing policy.json is not valid JSON: ${(e as Error).message}`);
    }
    if (!policy || typeof policy !== 'object' || Array.isArray(policy))
      throw new UserError('the existing policy.json is not a JSON object');
    if (!Array.isArray(policy.default))
      throw new UserError('the existing policy.json has no "default" list (containers-policy.json(5) requires one)');
  } else {
    policy = {
      default: [{ type: 'reject' }],
      transports: {
        docker: opts.acceptOtherRegistries ? { '': ACCEPT } : {},
        ...Object.fromEntries(LOCAL_TRANSPORTS.map((t) => [t, { '': ACCEPT }])),
      },
    };
  }
  const transports = (policy.transports ??= {}) as Record<string, Record<string, unknown>>;
  const docker = (transports.docker ??= {});
  const previous = docker[repository];
  if (previous !== undefined && JSON.stringify(previous) !== JSON.stringify(requirement)) {
    warnings.push(`replaced the existing policy entry for ${repository}: ${JSON.stringify(previous)}`);
  }
  docker[repository] = requirement;
  const dflt = policy.default as { type?: string }[];
  if (dflt.some((r) => r?.type === 'insecureAcceptAnything')) {
    warnings.push(
      'the policy default is insecureAcceptAnything: bootc and rpm-ostree refuse ostree-image-signed: and ' +
        '--enforce-container-sigpolicy with such a default (kept, as it is your choice; use [{"type":"reject"}])',
    );
  }

  const registriesD =
    `# Keel: read cosign signatures (<repo>:sha256-<digest>.sig) for ${scope}.\n` +
    stringify({ docker: { [scope]: { 'use-sigstore-attachments': true } } });
  const registriesDPath = `/etc/containers/registries.d/${name}.yaml`;
  const policyText = `${JSON.stringify(policy, null, 2)}\n`;
  const files: ClientFile[] = [
    { path: '/etc/containers/policy.json', content: policyText, mode: 0o644 },
    { path: registriesDPath, content: registriesD, mode: 0o644 },
  ];
  if (opts.publicKeyPem)
    files.push({
      path: keyPath,
      content: opts.publicKeyPem.endsWith('\n') ? opts.publicKeyPem : `${opts.publicKeyPem}\n`,
      mode: 0o644,
    });

  const tag = opts.tag ?? 'stable';
  const instructions = [
    `### Enforcing signatures for \`${repository}\``,
    '',
    'Ship these files in the image (Containerfile), so a switched client enforces signatures from its first boot:',
    '',
    '```dockerfile',
    `# ${files.map((f) => f.path).join(', ')}`,
    `COPY ${opts.sourceDir ?? 'client-config'}/ /`,
    '```',
    '',
    'Move an existing host onto the signed image (verifies with the host policy on every update):',
    '',
    '```sh',
    `sudo bootc switch --enforce-container-sigpolicy ${repository}:${tag}`,
    `# rpm-ostree hosts:`,
    `sudo rpm-ostree rebase ostree-image-signed:docker://${repository}:${tag}`,
    '```',
    '',
    `The policy \`default\` must not be \`insecureAcceptAnything\` (bootc refuses to enforce with it). ` +
      `Check by hand: \`cosign verify --key ${keyPath} ${repository}@sha256:…\`, or ` +
      `\`skopeo copy docker://${repository}:${tag} dir:/tmp/x\` with this policy (skopeo/podman from a sigstore-enabled build).`,
    '',
  ].join('\n');

  return {
    name,
    repository,
    keyPath,
    policy,
    policyEntry: { [repository]: requirement },
    registriesDPath,
    registriesD,
    files,
    instructions,
    warnings,
  };
}

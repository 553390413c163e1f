import fs from 'node:fs';
import { isMap, LineCounter, parseDocument, type Node } from 'yaml';
import { z } from 'zod';
import { CHECK_IDS, DEFAULT_WARN_CHECKS } from './check-ids.js';
import { UserError } from './errors.js';
import { isValidYmd } from './inputs.js';
import {
  DEBIAN_PACKAGE,
  DEBIAN_PACKAGE_EXPECTED,
  SYSEXT_NAME,
  SYSEXT_NAME_EXPECTED,
  SYSEXT_VERSION,
  SYSEXT_VERSION_EXPECTED,
} from './sysext/naming.js';

/**
 * `declarations/distro.yaml`: one file that describes a distro to Keel (image, tags, base,
 * build, gates, boot test, ISO, Internet Archive item, download site). The workflow
 * generators and the local runner read it; editors complete it from the JSON Schema emitted
 * from this same zod schema (`declarations/distro.schema.json`).
 */
const repoComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

const ImageSpec = z
  .strictObject({
    registry: z
      .string()
      .regex(
        /^[a-z0-9.-]+(?::\d+)?(?:\/[a-z0-9._-]+)*$/,
        'a lowercase registry host with optional namespace, e.g. ghcr.io/my-org',
      )
      .describe('Registry and namespace the image is published to, e.g. ghcr.io/my-org. Lowercase.'),
    name: z.string().regex(repoComponent, 'a lowercase image name').describe('Image (package) name, e.g. my-os.'),
    title: z.string().min(1).describe('Human title (org.opencontainers.image.title).'),
    description: z.string().min(1).describe('org.opencontainers.image.description.'),
    vendor: z.string().min(1).describe('org.opencontainers.image.vendor.'),
    licenses: z.string().min(1).default('Apache-2.0').describe('SPDX expression (org.opencontainers.image.licenses).'),
    source: z.url().optional().describe('Source repository URL; defaults to the GitHub repository of the run.'),
    keywords: z.array(z.string()).default([]).describe('io.artifacthub.package.keywords.'),
  })
  .describe('Where and under which name the OS image is published.');

const OsSpec = z
  .strictObject({
    id: z
      .string()
      .regex(/^[a-z0-9._-]+$/, 'os-release ID characters [a-z0-9._-]')
      .describe('os-release ID.'),
    name: z.string().min(1).describe('os-release NAME.'),
    'pretty-name': z.string().min(1).describe('os-release PRETTY_NAME.'),
    'id-like': z.string().optional().describe('os-release ID_LIKE (e.g. debian, fedora).'),
    'variant-id': z.string().optional().describe('os-release VARIANT_ID.'),
    'home-url': z.url().optional().describe('os-release HOME_URL.'),
  })
  .describe('Identity written to /usr/lib/os-release by the OS identity build stage.');

const TagsSpec = z
  .strictObject({
    candidate: z
      .string()
      .regex(/^[a-z][a-z0-9-]*$/, 'a lowercase tag word')
      .default('candidate'),
    stable: z
      .string()
      .regex(/^[a-z][a-z0-9-]*$/, 'a lowercase tag word')
      .default('stable'),
    'pr-label': z.string().min(1).default('vm-test').describe('PR label that allows a pr-<N> build.'),
  })
  .refine((t) => t.candidate !== t.stable, 'candidate and stable must differ')
  .refine((t) => t.candidate !== 'latest' && t.stable !== 'latest', 'Keel never writes latest')
  .describe('Tag words of the grammar: <candidate>, <candidate>.<date>, pr-<N>, <stable>, <stable>.<date>, <date>.');

const BaseSpec = z
  .strictObject({
    image: z
      .string()
      .min(1)
      .describe('Base image reference the Containerfile builds FROM (resolved to a digest once).'),
    bootstrap: z
      .strictObject({
        tool: z.literal('mmdebstrap').default('mmdebstrap'),
        suite: z.string().min(1).default('trixie'),
        mirror: z.string().optional().describe('Debian mirror URL; default: the machine apt sources.'),
        packages: z.array(z.string().min(1)).min(1),
      })
      .optional()
      .describe('How to create the base locally from distribution packages (no registry needed).'),
  })
  .describe('The base image.');

const SecretSpec = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a secret id of [A-Za-z0-9_.-]'),
  env: z
    .string()
    .regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name')
    .optional(),
  file: z.string().optional(),
  'github-secret': z
    .string()
    .regex(/^[A-Z_][A-Z0-9_]*$/, 'a GitHub secret name')
    .optional(),
});

const BuildSpec = z
  .strictObject({
    containerfile: z.string().default('Containerfile'),
    context: z.string().default('.'),
    'build-args': z.record(z.string(), z.string()).default({}),
    secrets: z.array(SecretSpec).default([]).describe('Build secrets mounted with --secret (never in a layer).'),
    inputs: z
      .array(z.string())
      .default(['Containerfile', 'build_files/**', 'declarations/**'])
      .describe('Paths whose change rebuilds the image (the push trigger allow-list).'),
  })
  .describe('How the image is built.');

const ValidateSpec = z
  .strictObject({
    'min-initramfs-mb': z.number().positive().default(50),
    'require-ostree-module': z.union([z.boolean(), z.literal('auto')]).default('auto'),
    'initramfs-modules': z.array(z.string()).default(['virtio_blk', 'ext4']),
    'repo-globs': z.array(z.string()).optional().describe('Forbidden leftover repository definitions.'),
    checks: z
      .array(z.enum(['all', ...CHECK_IDS]))
      .min(1)
      .default(['all'])
      .describe('The checks that run: all, or a list of check ids (leave one out to skip it).'),
    'warn-checks': z
      .array(z.enum(['none', ...CHECK_IDS]))
      .min(1)
      .default([...DEFAULT_WARN_CHECKS])
      .describe('Checks that only warn when they fail (none: every check gates).'),
    'var-allow': z
      .array(z.string().regex(/^\/?var\/(?!.*(?:^|\/)\.\.(?:\/|$))./, 'a path under /var (no ..)'))
      .default([])
      .describe('Paths under /var allowed without a tmpfiles.d entry.'),
  })
  .describe('Static gates of the validate hop.');

const RechunkSpec = z.strictObject({
  'max-layers': z.number().int().min(2).max(127).default(64),
  enabled: z.boolean().default(true),
});

const SmokeSpec = z
  .strictObject({
    backend: z.enum(['direct', 'uefi', 'bib']).default('direct'),
    memory: z.number().int().min(256).default(2048),
    cpus: z.number().int().min(1).default(2),
    timeout: z.number().int().min(30).default(1800),
    'success-pattern': z.string().optional(),
    'failure-pattern': z.string().optional(),
    'kernel-args': z.string().optional(),
    'update-test': z
      .boolean()
      .default(true)
      .describe(
        'Before promotion, also prove that a machine on stable updates to the candidate, keeps /etc and /var, and rolls back (three boots; skipped while there is no stable).',
      ),
  })
  .describe('The boot gate before promotion.');

const IsoSpec = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, 'a file-name stem')
      .describe('File name stem: <name>-<date>.iso.'),
    label: z.string().regex(/^[A-Z0-9_-]{1,32}$/, 'an ISO volume label (A-Z 0-9 _ -, <= 32)'),
    type: z.enum(['iso', 'qcow2', 'raw']).default('iso'),
    backend: z.enum(['live', 'bib']).default('live'),
    'boot-test': z.boolean().default(true),
    'boot-timeout': z.number().int().min(60).default(1200),
    'publish-untested': z
      .boolean()
      .default(false)
      .describe(
        'Publish media whose boot test did not run (boot-test: false, or the bib backend), marked as not boot-tested. Default: never.',
      ),
  })
  .describe('Install media built from the pinned stable digest.');

const IaSpec = z
  .strictObject({
    identifier: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9._-]*(\{date\})?[A-Za-z0-9._-]*$/,
        'IA identifier characters with an optional {date}',
      )
      .describe('Item identifier template; {date} is the release date.'),
    metadata: z
      .record(
        z.string().regex(/^[a-z][a-z0-9_-]*$/, 'a lowercase metadata key'),
        z.union([z.string(), z.array(z.string())]),
      )
      .default({})
      .describe('Item metadata; {date}, {digest} and {file} are substituted.'),
    'torrent-timeout': z.number().int().min(0).default(3600),
    'require-torrent': z.boolean().default(false),
  })
  .describe('Internet Archive publication.');

const SiteSpec = z
  .strictObject({
    repository: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'owner/name'),
    constants: z
      .array(
        z.strictObject({ name: z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, 'an identifier'), value: z.string() }),
      )
      .min(1)
      .describe('Constants to set; values may use {date} and {file}.'),
    files: z.array(z.string()).default([]).describe('Candidate files (searched first).'),
    base: z.string().default('main'),
    'branch-prefix': z.string().default('keel/release-'),
    'auto-merge': z.boolean().default(true),
  })
  .describe('Download-site bump after a release.');

/** A GitHub environment name (Settings → Environments). */
const EnvironmentName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,254}$/, 'a GitHub environment name');

const PullRequestSigningSpec = z
  .strictObject({
    'public-key': z
      .string()
      .min(1)
      .describe('Path of the public half of the pull-request key pair (never the release key).'),
    environment: EnvironmentName.default('pull-requests').describe(
      'GitHub environment holding COSIGN_PR_PRIVATE_KEY and COSIGN_PR_PASSWORD (must differ from the release environment).',
    ),
  })
  .describe(
    'Optional: sign pr-<N> images with a separate key pair. Without it pull-request images stay unsigned; the release key never signs them.',
  );

const SigningSpec = z
  .strictObject({
    'public-key': z.string().describe('Path of the cosign public key in this repository (shipped to clients).'),
    identity: z.enum(['repository', 'tags']).default('repository'),
    'pull-requests': PullRequestSigningSpec.optional(),
  })
  .refine((s) => s['pull-requests']?.['public-key'] !== s['public-key'], {
    message: 'must not be the release public key',
    path: ['pull-requests', 'public-key'],
  })
  .describe('Image signing.');

const absolutePath = z.string().regex(/^\/(?!.*(?:^|\/)\.\.(?:\/|$)).+$/, 'an absolute path without ".." components');

const SysextSpec = z
  .strictObject({
    name: z.string().regex(SYSEXT_NAME, SYSEXT_NAME_EXPECTED).describe('Extension name: <name>_<version>_<arch>.raw.'),
    packages: z
      .array(z.string().regex(DEBIAN_PACKAGE, DEBIAN_PACKAGE_EXPECTED))
      .min(1)
      .optional()
      .describe('Debian packages installed on the base in a throw-away build (exactly one of packages and tree).'),
    tree: z
      .string()
      .min(1)
      .optional()
      .describe('A prepared tree in this repository holding usr/ (and opt/) (exactly one of packages and tree).'),
    version: z
      .string()
      .regex(SYSEXT_VERSION, SYSEXT_VERSION_EXPECTED)
      .optional()
      .describe('Extension version; required with tree, derived from the first package otherwise.'),
    'probe-command': z.string().optional().describe('Run in the booted guest after the merge; must exit 0.'),
    format: z.enum(['squashfs', 'erofs']).default('squashfs'),
    exclude: z
      .array(absolutePath)
      .default([])
      .describe('Paths a package build wrote outside /usr and /opt that are dropped deliberately.'),
    'allow-overrides': z
      .array(absolutePath.regex(/^\/(usr|opt)\//, 'a path below /usr or /opt'))
      .default([])
      .describe('Base files below /usr or /opt the extension may replace.'),
    'ia-identifier': z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{2,99}$/, 'an Internet Archive identifier')
      .optional()
      .describe(
        'Internet Archive item the extension directory is published to, one item per extension (default: <image name>-sysext-<name>).',
      ),
    'base-url': z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        'Where the published directory is served from (default: the workflow derives it from its publication).',
      ),
  })
  .refine((s) => Boolean(s.packages) !== Boolean(s.tree), 'give exactly one of packages and tree')
  .refine((s) => Boolean(s.packages) || Boolean(s.version), 'version is required with tree')
  .describe('A system extension of the image: built, signed and boot-tested by the sysext hop.');

const VARIANT_NAME = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

const VariantSpec = z
  .strictObject({
    name: z
      .string()
      .regex(VARIANT_NAME, 'a variant name of [a-z0-9-]')
      .describe('Variant name (matrix leg, keel run --variant).'),
    'image-name': z
      .string()
      .regex(repoComponent, 'a lowercase image name')
      .optional()
      .describe('Image (package) name of this variant; default <image.name>-<name> (the first variant: image.name).'),
    'build-args': z
      .record(z.string(), z.string())
      .default({})
      .describe('Build arguments of this variant, over build.build-args.'),
    containerfile: z.string().min(1).optional().describe("Containerfile of this variant; default the build's."),
    target: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a build stage name')
      .optional()
      .describe('Multi-stage build target (stage name).'),
  })
  .describe('An image variant built, booted and promoted on its own (own tags, signature, concurrency group).');

/** Duplicate variant names are refused at the second occurrence's name. */
const VariantList = z
  .array(VariantSpec)
  .min(1)
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((v, i) => {
      if (seen.has(v.name))
        ctx.addIssue({ code: 'custom', message: `duplicate variant name "${v.name}"`, path: [i, 'name'] });
      seen.add(v.name);
    });
  });

export const DistroSchema = z
  .strictObject({
    $schema: z.string().optional(),
    version: z.literal(1).describe('Schema version of this file.'),
    image: ImageSpec,
    os: OsSpec,
    tags: TagsSpec.default({ candidate: 'candidate', stable: 'stable', 'pr-label': 'vm-test' }),
    base: BaseSpec,
    build: BuildSpec.default({
      containerfile: 'Containerfile',
      context: '.',
      'build-args': {},
      secrets: [],
      inputs: ['Containerfile', 'build_files/**', 'declarations/**'],
    }),
    validate: ValidateSpec.default({
      'min-initramfs-mb': 50,
      'require-ostree-module': 'auto',
      'initramfs-modules': ['virtio_blk', 'ext4'],
      checks: ['all'],
      'warn-checks': [...DEFAULT_WARN_CHECKS],
      'var-allow': [],
    }),
    rechunk: RechunkSpec.default({ 'max-layers': 64, enabled: true }),
    'smoke-boot': SmokeSpec.default({ backend: 'direct', memory: 2048, cpus: 2, timeout: 1800, 'update-test': true }),
    iso: IsoSpec.optional(),
    'internet-archive': IaSpec.optional(),
    site: SiteSpec.optional(),
    signing: SigningSpec.optional(),
    environment: EnvironmentName.default('release').describe(
      'GitHub environment of every generated job that reads a release secret (COSIGN_*, IA_*, SITE_BUMP_TOKEN, build secrets) or moves the stable tag. Restrict it to the main branch.',
    ),
    sysexts: z
      .array(SysextSpec)
      .default([])
      .refine((l) => new Set(l.map((x) => x.name)).size === l.length, 'extension names must be unique')
      .describe('System extensions (systemd-sysext) published for the stable image.'),
    variants: VariantList.optional().describe(
      'Image variants (e.g. an nvidia build). The first is the main image. Absent: one image, image.name.',
    ),
    staleness: z
      .strictObject({
        'warn-after-days': z
          .number()
          .int()
          .min(1)
          .default(14)
          .describe('Client-side check shipped in the image: warn when the booted image is older.'),
        'server-days': z
          .number()
          .int()
          .min(1)
          .default(9)
          .describe('The daily watch workflow: stable older than this many days is stale (notified, run red).'),
      })
      .default({ 'warn-after-days': 14, 'server-days': 9 })
      .describe('How old an image may get: on clients, and in the watch workflow.'),
    cleanup: z
      .strictObject({
        'keep-days': z
          .number()
          .int()
          .min(1)
          .default(30)
          .describe(
            'candidate.<date> and pr-<N> images older than this many days are deleted by the cleanup workflow.',
          ),
      })
      .default({ 'keep-days': 30 })
      .describe('Registry retention (the cleanup workflow); released digests are never deleted.'),
  })
  .refine((d) => d.signing?.['pull-requests']?.environment !== d.environment, {
    message: 'must differ from environment (the release environment is for main only)',
    path: ['signing', 'pull-requests', 'environment'],
  })
  .describe('Keel distro declaration (declarations/distro.yaml).');

export type Distro = z.infer<typeof DistroSchema>;

/** A variant with its defaults filled in. */
export interface Variant {
  name: string;
  imageName: string;
  buildArgs: Record<string, string>;
  containerfile: string;
  target?: string;
}

/**
 * The declared variants with defaults: image-name <image.name>-<name> (the first: image.name),
 * containerfile the build's. Empty when the declarations have no `variants:` (one image).
 */
export function resolveVariants(decl: Distro): Variant[] {
  return (decl.variants ?? []).map((v, i) => ({
    name: v.name,
    imageName: v['image-name'] ?? (i === 0 ? decl.image.name : `${decl.image.name}-${v.name}`),
    buildArgs: v['build-args'],
    containerfile: v.containerfile ?? decl.build.containerfile,
    ...(v.target ? { target: v.target } : {}),
  }));
}

/** A declaration error with file, line and column. */
export class DeclarationError extends UserError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly col: number,
    readonly keyPath: string,
    readonly problem: string,
  ) {
    super(`${file}:${line}:${col}: ${keyPath ? `${keyPath}: ` : ''}${problem}`);
    this.name = 'DeclarationError';
  }
}

function describeIssue(issue: z.core.$ZodIssue, value: unknown): string {
  const got = value === undefined ? 'nothing' : JSON.stringify(value);
  switch (issue.code) {
    case 'invalid_type':
      return value === undefined ? `required (expected ${issue.expected})` : `expected ${issue.expected}, got ${got}`;
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${got}`;
    case 'too_small':
      return `${issue.message.replace(/^Too small: /, '')} (got ${got})`;
    case 'too_big':
      return `${issue.message.replace(/^Too big: /, '')} (got ${got})`;
    case 'invalid_format':
      return `expected ${issue.message.replace(/^Invalid string: must match pattern .*$/, 'the documented format')}, got ${got}`;
    default:
      return `${issue.message}${value !== undefined ? ` (got ${got})` : ''}`;
  }
}

/** Parses and validates declaration text; every error carries file:line:col and the key path. */
export function parseDeclarations(text: string, file = 'declarations/distro.yaml'): Distro {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    throw new DeclarationError(file, pos.line, pos.col, '', `YAML syntax: ${e.message.split('\n')[0]}`);
  }
  const data: unknown = doc.toJS();
  const r = DistroSchema.safeParse(data ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const p = issue.path.map((k) => (typeof k === 'symbol' ? String(k) : k));
  // Point at the deepest node that exists (a missing key points at its parent mapping).
  let node: Node | undefined;
  let depth = p.length;
  for (; depth >= 0; depth--) {
    const n = depth === 0 ? (doc.contents as Node | null) : (doc.getIn(p.slice(0, depth), true) as Node | undefined);
    if (n && typeof n === 'object' && 'range' in n) {
      node = n;
      break;
    }
  }
  // For an unknown key, point at the key itself.
  if (issue.code === 'unrecognized_keys' && node && isMap(node)) {
    const pair = node.items.find((it) => issue.keys.includes(String((it.key as { value?: unknown })?.value ?? it.key)));
    const k = pair?.key as Node | undefined;
    if (k?.range) node = k;
  }
  const offset = node?.range?.[0] ?? 0;
  const pos = lc.linePos(offset);
  let value: unknown = data;
  for (const k of p)
    value = value && typeof value === 'object' ? (value as Record<string | number, unknown>)[k] : undefined;
  const keyPath = p
    .map((k) => (typeof k === 'number' ? `[${k}]` : k))
    .join('.')
    .replace(/\.\[/g, '[');
  throw new DeclarationError(file, pos.line, pos.col, keyPath, describeIssue(issue, value));
}

export function loadDeclarations(file: string): Distro {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read declarations ${file}: ${(e as Error).message}`);
  }
  return parseDeclarations(text, file);
}

/** The JSON Schema editors use for completion (generated into declarations/distro.schema.json). */
export function declarationsJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(DistroSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
}

/** Substitutes {date}, {file}, {digest} in declaration templates. */
export function expandTemplate(t: string, vars: { date?: string; file?: string; digest?: string }): string {
  return t.replace(/\{(date|file|digest)\}/g, (m, k: 'date' | 'file' | 'digest') => {
    const v = vars[k];
    if (v === undefined) throw new UserError(`template ${JSON.stringify(t)} uses {${k}} but no ${k} is known here`);
    if (k === 'date' && !isValidYmd(v)) throw new UserError(`release date ${v} is not YYYYMMDD`);
    return v;
  });
}

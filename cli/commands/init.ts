import fs from 'node:fs';
import path from 'node:path';
import { parseDeclarations } from '../../actions/lib/declarations.js';
import { UserError } from '../../actions/lib/errors.js';
import { InvalidReferenceError, parseReference } from '../../actions/lib/oci/reference.js';
import { loadKeelRelease, KEEL_REPO } from '../../workflows-src/pins.js';
import { DECLARATIONS_FILE, keelHome, keelSource } from '../home.js';
import { callerWorkflows } from '../init/callers.js';
import { checklistText } from '../init/checklist.js';
import { baseImageOf, declarationsText, titleOf, type BaseChoice, type DistroNames } from '../init/declarations.js';

/**
 * `keel init`: scaffolds a distro repository Keel can build, test and release: the Containerfile
 * (FROM ${BASE_IMAGE}, the live ISO's dracut module, the /var rules, in build_files/finalize.sh),
 * declarations/distro.yaml (validated by Keel's schema before anything is written), caller
 * workflows for build, smoke-boot and build-disk that run Keel's reusable workflows at a full
 * commit SHA, and KEEL-SETUP.md (secrets, environment, label, branch protection).
 *
 * Every input is checked, and every file rendered, before the first write; an existing file is
 * never overwritten without --force (all of them are named).
 */
export interface InitOptions {
  /** Target directory (created when missing). */
  dir: string;
  /** REGISTRY/OWNER/NAME of the image, e.g. ghcr.io/acme/acme-os. */
  image?: string;
  /** A registry base image (FROM), e.g. quay.io/fedora/fedora-bootc:42. */
  base?: string;
  /** A Debian suite: the base is bootstrapped from Debian packages by the installed Keel. */
  debian?: string;
  force?: boolean;
  /** The Keel commit the callers pin; default: the commit this installation was packed from. */
  keelRef?: string;
  /** Where Keel is installed (its release stamp and templates); default: this installation. */
  home?: string;
}

export interface InitResult {
  dir: string;
  /** Paths written, relative to dir. */
  written: string[];
  checklist: string;
  /** Things the user should know (e.g. a packed tree with uncommitted changes). */
  warnings: string[];
}

/** A refused flag, named with its value and what was expected (before anything is written). */
function flagError(flag: string, value: string, expected: string): UserError {
  return new UserError(`keel init: ${flag}${value ? ` ${JSON.stringify(value)}` : ''}: expected ${expected}`);
}

/** The image as REGISTRY/OWNER/NAME: a registry host, at least one namespace, no tag or digest. */
export function parseImageArg(image: string | undefined): DistroNames {
  const expected = 'REGISTRY/OWNER/NAME without tag or digest, lowercase (e.g. ghcr.io/my-org/my-os)';
  if (!image) throw flagError('--image', '', `${expected} (it is required)`);
  let ref;
  try {
    ref = parseReference(image, { requireTagOrDigest: false });
  } catch (e) {
    throw flagError('--image', image, `${expected} (${(e as InvalidReferenceError).reason ?? String(e)})`);
  }
  const parts = ref.repository.split('/');
  if (ref.tag || ref.digest) throw flagError('--image', image, `${expected}: the tags come from Keel's grammar`);
  if (!image.startsWith(`${ref.registry}/`) || parts.length < 2)
    throw flagError('--image', image, `${expected}: name the registry and at least one namespace`);
  const name = parts.pop()!;
  return {
    registry: `${ref.registry}/${parts.join('/')}`,
    name,
    owner: parts[parts.length - 1]!,
    title: titleOf(name),
  };
}

export function parseBaseArgs(o: Pick<InitOptions, 'base' | 'debian'>): BaseChoice {
  if (Boolean(o.base) === Boolean(o.debian))
    throw flagError(
      '--base/--debian',
      o.base ?? o.debian ?? '',
      'exactly one of --base IMAGE (a bootc base image, e.g. quay.io/fedora/fedora-bootc:42) and --debian SUITE (e.g. trixie)',
    );
  if (o.debian) {
    if (!/^[a-z][a-z0-9-]*$/.test(o.debian)) throw flagError('--debian', o.debian, 'a Debian suite name (e.g. trixie)');
    return { kind: 'debian', suite: o.debian };
  }
  try {
    const r = parseReference(o.base!);
    if (r.tag === 'latest')
      throw new InvalidReferenceError(o.base!, 'latest moves under you: pin a version tag or digest');
  } catch (e) {
    throw flagError(
      '--base',
      o.base!,
      `an image with a version tag or digest (${(e as InvalidReferenceError).reason ?? String(e)})`,
    );
  }
  return { kind: 'image', image: o.base! };
}

function keelCommit(o: InitOptions, home: string, warnings: string[]): string {
  if (o.keelRef !== undefined) {
    if (!/^[0-9a-f]{40}$/.test(o.keelRef))
      throw flagError('--keel-ref', o.keelRef, 'the full 40-hex commit SHA of a Keel release');
    return o.keelRef;
  }
  const src = keelSource(home);
  if (!src.commit)
    throw new UserError(
      `keel init: this Keel (${home}) does not record the commit it was packed from: pass --keel-ref <the full commit SHA of the Keel release whose reusable workflows the callers should run>`,
    );
  if (src.dirty)
    warnings.push(
      `this Keel's files had uncommitted changes when packed (or checked out): the callers pin ${src.commit}, whose reusable workflows may differ from this installation's`,
    );
  return src.commit;
}

function templateText(home: string, rel: string): string {
  return fs.readFileSync(path.join(home, 'templates', 'init', rel), 'utf8');
}

function containerfileText(home: string, names: DistroNames, base: BaseChoice): string {
  const setup =
    base.kind === 'debian'
      ? [
          `# The base is Debian ${base.suite} bootstrapped by Keel (declarations base.bootstrap): systemd, a kernel`,
          '# with a generic initramfs, dracut and dracut-live, ostree; kernel in /usr/lib/modules/<kver>/,',
          '# dpkg database in /usr/lib/sysimage/dpkg, /var empty but for tmpfiles.d-declared entries.',
        ]
      : [
          "# The live ISO needs dracut's dmsquash-live module in the image (package dracut-live).",
          'RUN if command -v dnf >/dev/null; then dnf -y install dracut-live && dnf clean all; \\',
          '    else apt-get update && apt-get install -y --no-install-recommends dracut-live; fi',
        ];
  return templateText(home, 'Containerfile')
    .replace('@@TITLE@@', names.title)
    .replace('@@BASE_IMAGE@@', baseImageOf(names, base))
    .replace('@@BASE_SETUP@@', setup.join('\n'));
}

/** Every file init writes, rendered and checked, relative to the target directory. */
export function renderInit(o: InitOptions): {
  files: Map<string, { text: string; mode: number }>;
  checklist: string;
  warnings: string[];
} {
  const names = parseImageArg(o.image);
  const base = parseBaseArgs(o);
  const home = o.home ?? keelHome;
  const warnings: string[] = [];
  const commit = keelCommit(o, home, warnings);
  const release = loadKeelRelease(home);
  const schemaUrl = `https://raw.githubusercontent.com/${KEEL_REPO}/${commit}/declarations/distro.schema.json`;
  const declText = declarationsText(names, base, schemaUrl);
  const decl = parseDeclarations(declText, DECLARATIONS_FILE);
  const callers = callerWorkflows(decl, { commit, release });
  const checklist = checklistText({
    names,
    base,
    image: `${decl.image.registry}/${decl.image.name}`,
    environment: decl.environment,
    prLabel: decl.tags['pr-label'],
    callers,
    commit,
    version: release.version,
  });
  const files = new Map<string, { text: string; mode: number }>([
    ['Containerfile', { text: containerfileText(home, names, base), mode: 0o644 }],
    ['build_files/finalize.sh', { text: templateText(home, 'build_files/finalize.sh'), mode: 0o755 }],
    [DECLARATIONS_FILE, { text: declText, mode: 0o644 }],
    ...callers.map((c): [string, { text: string; mode: number }] => [
      `.github/workflows/${c.file}`,
      { text: c.text, mode: 0o644 },
    ]),
    ['KEEL-SETUP.md', { text: checklist, mode: 0o644 }],
  ]);
  for (const [rel, f] of files) if (f.text.includes('@@')) throw new Error(`template placeholder left in ${rel}`);
  return { files, checklist, warnings };
}

export function init(o: InitOptions): InitResult {
  const dir = path.resolve(o.dir);
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw flagError('--dir', o.dir, 'a directory');
  const { files, checklist, warnings } = renderInit(o);
  const existing = [...files.keys()].filter((rel) => fs.existsSync(path.join(dir, rel)));
  if (existing.length && !o.force)
    throw new UserError(
      `keel init: ${dir} already has ${existing.join(', ')}: pass --force to replace them (nothing was written)`,
    );
  for (const [rel, f] of files) {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, f.text, { mode: f.mode });
    fs.chmodSync(file, f.mode);
  }
  return { dir, written: [...files.keys()], checklist, warnings };
}

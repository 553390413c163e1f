import type { Distro } from '../actions/lib/declarations.js';
import { settingPath, type SettingName } from '../actions/lib/settings.js';
import { repoRoot } from './action-specs.js';
import { concat, github, input, lit, secret, type Expr, type Value } from './expr.js';
import {
  actionStep,
  keel,
  runStep,
  type Concurrency,
  type KeelStep,
  type ActionSource,
  type ActionStep,
  type CallInput,
  type LocalHint,
  type RunStep,
} from './model.js';
import { loadKeelRelease, pins, type KeelRelease } from './pins.js';

/**
 * What the three generators share: the dogfood/reusable switch (`Params`), the steps every job
 * starts with, and the hand-off between workflows.
 *
 * Dogfood workflows (this repository) take every distro value from declarations/distro.yaml at
 * generation time and run `./actions/<hop>` after checkout. Reusable workflows (`workflow_call`,
 * for other bootc repositories) take the same values as inputs of the call and run the released
 * actions (`keel-project/keel/actions/<hop>@v0`); the caller passes its values from its own
 * declarations (the build hop still reads the caller's declarations file itself for labels,
 * OS identity and build-args).
 */
export type Mode = 'dogfood' | 'reusable';

export interface ParamSpec {
  description: string;
  type?: 'string' | 'number' | 'boolean';
  /** The reusable input's default (generic, never this repository's values). */
  default?: string | number | boolean;
  required?: boolean;
}

/** A setting's reusable input: its description, and whether it is a number (then 0 means "as declared"). */
export interface SettingSpec {
  description: string;
  number?: boolean;
}

/** Id of the settings step in a reusable job. */
export const SETTINGS_STEP = 'settings';

export interface GenerateOptions {
  /** The release the reusable workflows pin Keel's actions to (default: the stamped KEEL_RELEASE_FILE). */
  release?: KeelRelease;
}

export class Params {
  /** The workflow_call inputs the reusable variant declares, in the order first used. */
  readonly callInputs: Record<string, CallInput> = {};
  /** The settings asked for (reusable): the settings step resolves these. */
  private readonly settingNames = new Set<SettingName>();
  constructor(
    readonly mode: Mode,
    private readonly opts: GenerateOptions = {},
  ) {}

  get reusable(): boolean {
    return this.mode === 'reusable';
  }

  /** Dogfood: this checkout's `./actions/<hop>`; reusable: the released actions at the stamped commit. */
  actionSource(): ActionSource {
    return this.reusable ? this.releasedActions() : { kind: 'local' };
  }

  /**
   * The released actions at the stamped commit, in either mode: for a dogfood workflow whose job
   * must not check out the code of the event (a closed pull request's), so it cannot run
   * `./actions/<hop>`. `keel release` re-renders every workflow that uses them.
   */
  releasedActions(): ActionSource {
    return { kind: 'remote', release: this.opts.release ?? loadKeelRelease(repoRoot) };
  }

  /**
   * The GitHub environment of every job that reads a release secret or moves the stable tag.
   * In a reusable workflow it is the caller's environment (the job runs in the caller's
   * repository), so its protection rules and its secrets apply there.
   */
  environment(decl: Distro): Expr {
    return this.v('environment', decl.environment, {
      description:
        'GitHub environment of the jobs that read release secrets or move the stable tag. Restrict it to main; its secrets are the ones these jobs read.',
      default: 'release',
    });
  }

  /** Dogfood: the declarations value, a constant; reusable: `inputs.<name>`. */
  v(name: string, dogfood: string | number | boolean, spec: ParamSpec): Expr {
    if (!this.reusable) return lit(dogfood);
    return this.input(name, spec);
  }

  /**
   * A setting the caller's declarations hold (`SETTINGS` of actions/lib/settings.ts). Dogfood:
   * the declarations value, a constant. Reusable: the settings step's output, which is the
   * caller's declarations value unless the workflow input of the same name overrides it (that
   * input defaults to empty, or 0 for a number, meaning "as declared").
   */
  setting(name: SettingName, dogfood: string | number | boolean, spec: SettingSpec): Expr {
    if (!this.reusable) return lit(dogfood);
    const path = settingPath(name);
    this.input(name, {
      description: `${spec.description} ${spec.number ? '0' : 'Empty'} (the default): your declarations' ${path}.`,
      default: spec.number ? 0 : '',
    });
    this.settingNames.add(name);
    return this.declared(name);
  }

  /** Reusable only: the setting as the caller's declarations hold it (no input overrides it). */
  declared(name: SettingName): Expr {
    if (!this.reusable) throw new Error(`declared('${name}') is for reusable workflows`);
    return { kind: 'step-output', step: SETTINGS_STEP, output: name, hop: 'settings' };
  }

  /**
   * Like setting(), for one the dogfood workflow passes only when the declarations set it: the
   * step input `{ [name]: value }` to spread into a step's inputs, or `{}`.
   */
  optionalSetting<N extends SettingName>(
    name: N,
    dogfood: string | undefined,
    spec: SettingSpec,
  ): Partial<Record<N, Expr>> {
    if (!this.reusable && dogfood === undefined) return {};
    return { [name]: this.setting(name, dogfood ?? '', spec) } as Partial<Record<N, Expr>>;
  }

  /**
   * Reusable: the step (right after checkout) that reads the caller's declarations and resolves
   * the settings asked for so far; dogfood: none. Call it after the job's setting() calls.
   */
  settingsStep(declarations: Expr, required: SettingName[] = []): KeelStep<'settings'> | undefined {
    if (!this.reusable) return undefined;
    const overrides = Object.fromEntries([...this.settingNames].map((n) => [n, input(n)]));
    return keel.settings(
      SETTINGS_STEP,
      { declarations, ...(required.length ? { required: required.join('\n') } : {}), ...overrides },
      { name: 'Settings from your declarations' },
    );
  }

  /** A workflow_call input (reusable only). */
  input(name: string, spec: ParamSpec): Expr {
    const type =
      spec.type ??
      (typeof spec.default === 'number' ? 'number' : typeof spec.default === 'boolean' ? 'boolean' : 'string');
    const prev = this.callInputs[name];
    const next: CallInput = {
      description: spec.description,
      required: spec.required ?? false,
      type,
      ...(spec.default !== undefined ? { default: spec.default } : {}),
    };
    if (prev && JSON.stringify(prev) !== JSON.stringify(next))
      throw new Error(`input '${name}' declared twice, differently`);
    this.callInputs[name] = next;
    return input(name);
  }

  /** The runner label: ubuntu-24.04, or the caller's choice. */
  runsOn(): Expr {
    return this.v('runs-on', RUNNER, {
      description: 'Runner label for every job (needs sudo, KVM helps).',
      default: RUNNER,
    });
  }
}

export const RUNNER = 'ubuntu-24.04';

/** The release signing key: only jobs that never run for a pull request, in the release environment. */
export const RELEASE_SIGNING_SECRETS = { key: 'COSIGN_PRIVATE_KEY', password: 'COSIGN_PASSWORD' } as const;
/** The optional pull-request key pair (declarations signing.pull-requests): never the release key. */
export const PR_SIGNING_SECRETS = { key: 'COSIGN_PR_PRIVATE_KEY', password: 'COSIGN_PR_PASSWORD' } as const;

/** Registry credentials for GHCR: the run's token, never echoed. */
export const registryUser = (): Expr => github('actor');
export const registryToken = (): Expr => secret('GITHUB_TOKEN');

export const skip = (reason: string): LocalHint => ({ local: 'skip', reason });

export function checkout(): ActionStep {
  return actionStep({
    name: 'Check out',
    uses: pins.checkout,
    with: { 'persist-credentials': false },
    local: skip('a local runner works in the checkout it runs from'),
  });
}

/** The run's release date, computed once (UTC YYYYMMDD) and handed to every hop. */
export function releaseDate(): RunStep<'release-date'> {
  return runStep({
    id: 'date',
    name: 'Release date of this run (UTC, computed once)',
    run: 'echo "release-date=$(date -u +%Y%m%d)" >> "$GITHUB_OUTPUT"',
    local: { local: 'release-date' },
    outputs: ['release-date'],
  });
}

/** Lets the runner user open /dev/kvm (GitHub's Linux runners have KVM; TCG is the fallback). */
export function enableKvm(): RunStep {
  return runStep({
    name: 'Let the runner use KVM when the machine has it',
    run: [
      'if [ -e /dev/kvm ]; then',
      `  echo 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"' | sudo tee /etc/udev/rules.d/99-keel-kvm.rules >/dev/null`,
      '  sudo udevadm control --reload-rules',
      '  sudo udevadm trigger --name-match=kvm',
      'else',
      '  echo "no /dev/kvm: the VM hops fall back to TCG"',
      'fi',
    ].join('\n'),
    local: skip("KVM access is the machine owner's business; the hops probe it and fall back to TCG"),
  });
}

/** Host tools the VM and disk hops call (bounded apt, retried: the archive can hang). */
export function aptInstall(packages: string[]): RunStep {
  const list = [...new Set(packages)].sort();
  for (const p of list) if (!/^[a-z0-9][a-z0-9+.-]*$/.test(p)) throw new Error(`bad package name ${p}`);
  return runStep({
    name: 'Install host tools',
    run: [
      `packages=(${list.join(' ')})`,
      'for attempt in 1 2 3; do',
      '  if sudo timeout 600 apt-get update -qq &&',
      '    sudo DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends "${packages[@]}"; then',
      '    exit 0',
      '  fi',
      '  echo "apt-get failed (attempt $attempt), retrying"',
      '  sleep $((attempt * 15))',
      'done',
      'exit 1',
    ].join('\n'),
    local: { local: 'apt-install', packages: list },
  });
}

/** Tools of the smoke-boot hop (direct and uefi backends). */
export const VM_PACKAGES = [
  'qemu-system-x86',
  'qemu-utils',
  'ovmf',
  'swtpm',
  'swtpm-tools',
  'e2fsprogs',
  'fdisk',
  'dosfstools',
  'mtools',
  'zstd',
];
/** Tools of the build-disk hop (live ISO and disks, plus its boot test). */
export const DISK_PACKAGES = [
  ...VM_PACKAGES,
  'xorriso',
  'squashfs-tools',
  'grub-common',
  'grub-efi-amd64-bin',
  'grub-pc-bin',
  'dracut',
  'cpio',
];

// ---------------------------------------------------------------------------------------------
// build → smoke-boot hand-off: the digest of *that* build run, as an artifact of the run

/** Name of the artifact the build run leaves for smoke-boot. */
export const IMAGE_ARTIFACT = 'keel-image';
/** Directory (relative to the workspace) it is written to and read from. */
export const IMAGE_HANDOFF_DIR = 'keel-image';
export const IMAGE_REF_PATTERN = '^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$';
export const DATE_PATTERN = '^[0-9]{8}$';

export function writeHandoff(values: { imageRef: Expr; digest: Expr; releaseDate: Expr }): RunStep {
  return runStep({
    name: 'Record the pushed digest for smoke-boot',
    env: { IMAGE_REF: values.imageRef, DIGEST: values.digest, RELEASE_DATE: values.releaseDate },
    run: [
      `mkdir -p ${IMAGE_HANDOFF_DIR}`,
      `printf '%s\\n' "$IMAGE_REF" > ${IMAGE_HANDOFF_DIR}/image-ref`,
      `printf '%s\\n' "$DIGEST" > ${IMAGE_HANDOFF_DIR}/digest`,
      `printf '%s\\n' "$RELEASE_DATE" > ${IMAGE_HANDOFF_DIR}/release-date`,
    ].join('\n'),
    local: {
      local: 'write-files',
      dir: IMAGE_HANDOFF_DIR,
      files: { 'image-ref': values.imageRef, digest: values.digest, 'release-date': values.releaseDate },
    },
  });
}

export function uploadHandoff(): ActionStep {
  return actionStep({
    name: 'Hand the digest to smoke-boot (artifact of this run)',
    uses: pins.uploadArtifact,
    // overwrite: a re-run of the build job replaces its own hand-off instead of failing on the name.
    with: {
      name: IMAGE_ARTIFACT,
      path: `${IMAGE_HANDOFF_DIR}/`,
      'retention-days': 7,
      'if-no-files-found': 'error',
      overwrite: true,
    },
    local: { local: 'artifact-upload', name: lit(IMAGE_ARTIFACT), paths: [lit(`${IMAGE_HANDOFF_DIR}/`)] },
  });
}

/**
 * Downloads the hand-off of the build run that triggered this workflow_run (`name`: the artifact,
 * keel-image or, in a variant matrix, the leg's keel-image-<variant>).
 */
export function downloadHandoff(cond: Expr, name: Expr = lit(IMAGE_ARTIFACT)): ActionStep {
  const runId = github('event.workflow_run.id');
  return actionStep({
    name: 'Take the digest the triggering build run pushed',
    if: cond,
    uses: pins.downloadArtifact,
    with: { name, path: IMAGE_HANDOFF_DIR, 'run-id': runId, 'github-token': secret('GITHUB_TOKEN') },
    local: { local: 'artifact-download', name, path: IMAGE_HANDOFF_DIR, runId },
  });
}

/** A hand-off of another job or run: where its files are and what its step says when one is bad. */
export interface HandoffSpec {
  /** The step's id and name. */
  id: string;
  name: string;
  if?: Expr;
  dir: string;
  /** Who handed it over, for the error lines (e.g. "the build run"). */
  sender: string;
  /** The release-date rule and the problem named when the file breaks it. */
  date: { pattern: string; problem: string };
}

/** The hand-off of the build run, read by smoke-boot (and a variant's later jobs). */
export const BUILD_HANDOFF: HandoffSpec = {
  id: 'handoff',
  name: 'Read and check the hand-off',
  dir: IMAGE_HANDOFF_DIR,
  sender: 'the build run',
  date: { pattern: DATE_PATTERN, problem: 'no release date' },
};

/**
 * Reads a hand-off's image-ref and release-date files (first lines) into outputs, failing
 * unless the reference is a digest reference and the date matches its pattern. The values are
 * never echoed before they are checked.
 */
export function readHandoff(h: HandoffSpec): RunStep<'image-ref' | 'release-date'> {
  return runStep({
    id: h.id,
    name: h.name,
    ...(h.if ? { if: h.if } : {}),
    run: [
      `ref=$(head -n1 ${h.dir}/image-ref)`,
      `date=$(head -n1 ${h.dir}/release-date)`,
      `if ! [[ $ref =~ ${IMAGE_REF_PATTERN} ]]; then echo "::error::${h.sender} handed over no digest reference"; exit 1; fi`,
      `if ! [[ $date =~ ${h.date.pattern} ]]; then echo "::error::${h.sender} handed over ${h.date.problem}"; exit 1; fi`,
      'echo "image-ref=$ref" >> "$GITHUB_OUTPUT"',
      'echo "release-date=$date" >> "$GITHUB_OUTPUT"',
    ].join('\n'),
    local: {
      local: 'read-files',
      dir: h.dir,
      outputs: {
        'image-ref': { file: 'image-ref', pattern: IMAGE_REF_PATTERN },
        'release-date': { file: 'release-date', pattern: h.date.pattern },
      },
    },
    outputs: ['image-ref', 'release-date'],
  });
}

/** POSIX single-quoting for constants written into a script at generation time. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

// ---------------------------------------------------------------------------------------------
// Image references from outside (a dispatch input, another run's artifact): checked before any
// registry call, so the registry token never goes to a repository other than the distro's.

/** Why `ref` is not `<repository>@sha256:<64 hex>` of exactly `repository` (undefined when it is). */
export function imageRefProblem(ref: string, repository: string): string | undefined {
  const m = /^(.+)@sha256:[0-9a-f]{64}$/s.exec(ref);
  if (!m) return 'the image reference is not <repository>@sha256:<64 hex>';
  if (m[1] !== repository) return `the image reference is not in ${repository}`;
  return undefined;
}

/**
 * A step that fails unless `ref` is a digest reference in `repository` (the repository part
 * compared exactly), the same rule as `imageRefProblem`. The reference itself is never echoed:
 * it is untrusted text and could carry workflow commands.
 */
export function imageRefGuard(spec: { name: string; ref: Expr; repository: Expr; if?: Expr }): RunStep {
  return runStep({
    name: spec.name,
    ...(spec.if ? { if: spec.if } : {}),
    env: { IMAGE_REF: spec.ref, IMAGE: spec.repository },
    run: [
      "re='^(.+)@sha256:[0-9a-f]{64}$'",
      'if ! [[ $IMAGE_REF =~ $re ]]; then',
      '  echo "::error::the image reference is not <repository>@sha256:<64 hex>"',
      '  exit 1',
      'fi',
      'if [[ ${BASH_REMATCH[1]} != "$IMAGE" ]]; then',
      '  echo "::error::the image reference is not in $IMAGE: refused before any registry call"',
      '  exit 1',
      'fi',
    ].join('\n'),
    local: { local: 'check-image-ref', ref: spec.ref, repository: spec.repository },
  });
}

// ---------------------------------------------------------------------------------------------
// Operations: the promotion group, notifications, checked dispatch inputs

/**
 * The one group every job that moves the stable tag of `image` runs in (promotion, rollback):
 * one at a time, never cancelled. Job-level, so a reusable workflow's group cannot deadlock
 * with its caller's.
 */
export function promotionConcurrency(image: Expr): Concurrency {
  return { group: concat(lit('keel-promote-'), image), cancelInProgress: false };
}

/** The ntfy topic URL and access token: secrets of the release environment (the topic URL works like a password). */
export const NOTIFY_SECRETS = { url: 'NTFY_URL', token: 'NTFY_TOKEN' } as const;

/** The run's page on GitHub (the notification's click target). */
export const runUrl = (): Expr =>
  concat(github('server_url'), '/', github('repository'), '/actions/runs/', github('run_id'));

/**
 * A notification through ntfy (the `notify` hop): an empty NTFY_URL skips with a notice, and a
 * failed delivery is a warning, so a notification never fails the run it reports on.
 */
export function notifyStep(
  id: string,
  spec: { name: string; title: Value; message: Value; priority: 1 | 2 | 3 | 4 | 5; tags: string; if?: Expr },
): KeelStep<'notify'> {
  return keel.notify(
    id,
    {
      url: secret(NOTIFY_SECRETS.url),
      token: secret(NOTIFY_SECRETS.token),
      title: spec.title,
      message: spec.message,
      priority: spec.priority,
      tags: spec.tags,
      click: runUrl(),
    },
    { name: spec.name, ...(spec.if ? { if: spec.if } : {}) },
  );
}

export const NOTIFY_CALL_SECRETS = {
  [NOTIFY_SECRETS.url]: {
    description:
      'ntfy topic URL for notifications (empty: none). Normally a secret of the release environment (its value wins over one passed here).',
    required: false,
  },
  [NOTIFY_SECRETS.token]: { description: 'ntfy access token, when the topic needs one.', required: false },
};

/**
 * A step that fails unless `value` is a calendar date YYYYMMDD (GNU date must print it back
 * unchanged, so 20260230 is refused), before anything uses it. The value is never echoed.
 */
export function dateGuard(spec: { name: string; value: Expr; what: string }): RunStep {
  return runStep({
    name: spec.name,
    env: { VALUE: spec.value },
    run: [
      'if ! [[ $VALUE =~ ^[0-9]{8}$ ]] || [[ $(date -u -d "$VALUE" +%Y%m%d 2>/dev/null) != "$VALUE" ]]; then',
      `  echo "::error::${spec.what} must be a calendar date YYYYMMDD"`,
      '  exit 1',
      'fi',
    ].join('\n'),
    local: { local: 'check-date', value: spec.value, name: spec.what },
  });
}

import type { Params } from './common.js';
import { and, eq, runner, type Expr } from './expr.js';
import { runStep, type RunStep } from './model.js';

/**
 * The free-disk step of the jobs that hold images (build, smoke-boot's boot, build-disk's disk):
 * a GitHub-hosted runner guarantees ~14 GB free on `/`, less than a 10 GB image plus its exports
 * need. The step removes the big preinstalled toolchains Keel never uses, prunes docker's
 * images, and puts root's container storage, TMPDIR and the hops' work directories
 * (`KEEL_WORK_DIR`, read by actions/lib/context.ts) on the volume with the most free space
 * (`/mnt` on hosted Ubuntu runners). Only on a GitHub-hosted runner, a disposable machine: on a
 * self-hosted runner or a laptop (`keel run`) it changes nothing, guarded twice (the step's
 * `if:` and the script itself).
 */

/** Preinstalled toolchains removed on a hosted runner (none is used by a Keel job). */
export const FREE_DISK_REMOVED = [
  '/usr/share/dotnet',
  '/usr/local/lib/android',
  '/opt/ghc',
  '/usr/local/.ghcup',
  '/opt/hostedtoolcache/CodeQL',
  '/usr/share/swift',
  '/usr/local/share/boost',
  '/usr/local/share/powershell',
  '/usr/local/share/chromium',
  '/opt/microsoft',
];

/** Where the step puts container storage and temp on the chosen volume: `<mount>/keel-disk`. */
export const FREE_DISK_DIR = 'keel-disk';

/**
 * The script. Tools are called by name (so a test can put stand-ins first on PATH); every change
 * to the machine goes through sudo, after the RUNNER_ENVIRONMENT guard.
 */
export function freeDiskScript(): string {
  return [
    'set -euo pipefail',
    'if [[ ${RUNNER_ENVIRONMENT:-} != github-hosted ]]; then',
    '  echo "::notice title=free-disk::not a GitHub-hosted runner: nothing removed, container storage and TMPDIR left where they are"',
    '  exit 0',
    'fi',
    'show() { df -h -x tmpfs -x devtmpfs -x squashfs -x overlay -x efivarfs 2>/dev/null || df -h; }',
    'echo "Free space before:"',
    'show',
    `sudo rm -rf ${FREE_DISK_REMOVED.join(' ')}`,
    'if command -v docker >/dev/null 2>&1; then timeout 300 docker image prune --all --force >/dev/null || echo "docker image prune failed (ignored)"; fi',
    // The writable local volume with the most free space (never /boot, /snap or a pseudo fs).
    'best=$(df -P -B1 -x tmpfs -x devtmpfs -x squashfs -x overlay -x efivarfs -x vfat 2>/dev/null |',
    '  awk \'NR > 1 && $6 !~ "^/(boot|snap|proc|sys|dev|run)(/|$)" { print $4, $6 }\' | sort -n -k1,1 | tail -n1 | cut -d" " -f2-)',
    'best=${best:-/}',
    'if [[ $best == / ]]; then',
    '  echo "the root volume has the most free space: container storage and TMPDIR stay where they are"',
    'else',
    `  base="$best/${FREE_DISK_DIR}"`,
    // The path is used (and goes to GITHUB_ENV) only as a plain path (no newline can inject a variable).
    '  if ! [[ $base =~ ^/[A-Za-z0-9/._-]+$ ]]; then echo "::error::free-disk: unexpected mount point"; exit 1; fi',
    '  sudo mkdir -p "$base/containers" "$base/tmp" "$base/work"',
    '  sudo chmod 1777 "$base/tmp"',
    // The hops' work directories (exports, disks, boot copies): the runner user's own.
    '  sudo chown "$(id -u):$(id -g)" "$base/work"',
    '  sudo mkdir -p /var/lib/containers',
    '  if ! mountpoint -q /var/lib/containers; then',
    // Whatever root storage already holds moves with it (a fresh runner: nothing, or little).
    '    sudo cp -a /var/lib/containers/. "$base/containers/"',
    '    sudo mount --bind "$base/containers" /var/lib/containers',
    '  fi',
    '  echo "TMPDIR=$base/tmp" >> "$GITHUB_ENV"',
    '  echo "KEEL_WORK_DIR=$base/work" >> "$GITHUB_ENV"',
    '  echo "container storage (/var/lib/containers), TMPDIR and the hops\' work directories now on $best"',
    'fi',
    'echo "Free space after:"',
    'show',
    '{ echo "### free-disk"; echo; echo "Removed unused toolchains; container storage, TMPDIR and the hops\' work directories on \\`$best\\`."; echo; echo "\\`\\`\\`"; show; echo "\\`\\`\\`"; } >> "$GITHUB_STEP_SUMMARY"',
  ].join('\n');
}

/** The guard: a GitHub-hosted runner, and (reusable) the caller left `free-disk` on. */
export function freeDiskCondition(p: Params): Expr {
  const hosted = eq(runner('environment'), 'github-hosted');
  if (!p.reusable) return hosted;
  const wanted = p.input('free-disk', {
    description:
      'Free disk on a GitHub-hosted runner first: remove unused preinstalled toolchains, put container storage and TMPDIR on the largest volume. Never runs on a self-hosted runner.',
    default: true,
  });
  return and(eq(wanted, true), hosted);
}

/** The step, first after checkout in each job that holds images. */
export function freeDiskStep(p: Params): RunStep {
  return runStep({
    name: 'Free disk on a GitHub-hosted runner (container storage and TMPDIR on the largest volume)',
    if: freeDiskCondition(p),
    run: freeDiskScript(),
    local: {
      local: 'skip',
      reason: "a local run never changes the machine's storage (runner.environment is self-hosted)",
    },
  });
}

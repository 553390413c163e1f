import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadDeclarations, type Distro } from '../actions/lib/declarations.js';
import { requireTools } from '../actions/lib/exec.js';
import { memoryLogger } from '../actions/lib/log.js';
import { RegistryClient } from '../actions/lib/oci/client.js';
import { parseReference } from '../actions/lib/oci/reference.js';
import { verifyImage } from '../actions/lib/sign/index.js';
import { parsePublicKeyInput } from '../actions/lib/signature-gate.js';
import { releaseDateOf } from '../actions/lib/tags.js';
import { workflows } from '../workflows-src/index.js';
import type { Workflow } from '../workflows-src/model.js';
import { promotionNotice } from './notifications.js';
import { stableReleaseProblem } from './services/release-check.js';
import { runWorkflow, type RunOptions, type RunRecord } from './runner.js';
import { startLocalServices } from './services/index.js';
import { repoRoot } from './step.js';

/**
 * `npm run demo`: the whole release of the example distro on this machine, through the
 * generated workflows and the committed bundles — base bootstrap → build → validate → rechunk →
 * push → sign → smoke-boot → promote (last week's release), then the same again a week later
 * with the update test (a machine on last week's stable updates to the new build, keeps /etc
 * and /var, rolls back) before promotion → ISO → publish (local IA) → site bump (local GitHub API) →
 * system extensions of the new stable (built, signed, boot-tested, published) → a cleanup dry run —
 * ending with :stable in the loopback registry on the digest that booted, its signature verified.
 */
export const HOST_TOOLS: Record<string, string> = {
  buildah: 'buildah',
  podman: 'podman',
  skopeo: 'skopeo',
  'docker-registry': 'docker-registry',
  mmdebstrap: 'mmdebstrap',
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  swtpm: 'swtpm',
  mke2fs: 'e2fsprogs',
  'mkfs.vfat': 'dosfstools',
  mcopy: 'mtools',
  sfdisk: 'fdisk',
  mksquashfs: 'squashfs-tools',
  xorriso: 'xorriso',
  'grub-mkrescue': 'grub-common',
  zstd: 'zstd',
};

export function localDeclarations(decl: Distro, registryHost: string): Distro {
  return {
    ...decl,
    image: {
      ...decl.image,
      registry: `${registryHost}/${decl.image.registry.split('/').slice(1).join('/') || 'keel'}`,
    },
  };
}

export async function demo(opts: { verbose?: boolean } = {}): Promise<boolean> {
  const t0 = Date.now();
  const stamp = () => {
    const s = Math.round((Date.now() - t0) / 1000);
    return `[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}]`;
  };
  const log = (line: string) =>
    console.log(line.startsWith('\n') ? `\n${stamp()} ${line.slice(1)}` : `${stamp()} ${line}`);
  if (process.getuid?.() !== 0)
    throw new Error(
      'the local pipeline builds and boots images with buildah, mmdebstrap and chroot: run it as root (or through sudo)',
    );
  requireTools(HOST_TOOLS);
  const decl = loadDeclarations(path.join(repoRoot, 'declarations/distro.yaml'));
  const stateDir = path.join(repoRoot, '.keel');
  const runsDir = path.join(stateDir, 'runs');
  fs.mkdirSync(runsDir, { recursive: true });
  log(`Keel local pipeline for ${decl.image.title} (${decl.image.name})`);
  const services = await startLocalServices(decl, stateDir, log);
  const local = localDeclarations(decl, services.registry.host);
  const repository = 'keel-project/keel';
  const releaseDate = releaseDateOf(new Date());
  const wfs = workflows(local, { mode: 'dogfood' });
  const wf = (file: string) => {
    const w = wfs.find((x) => x.file === file);
    if (!w) throw new Error(`no generated workflow ${file}`);
    return w;
  };
  const common = { services, runsDir, releaseDate, repository, log, verbose: opts.verbose };
  const runs: RunRecord[] = [];
  let ok = false;
  try {
    // Last week's release, then this week's: the second is a real update of a machine on the first.
    const lastWeek = await buildAndBoot(
      { ...common, releaseDate: releaseDateOf(new Date(Date.now() - 7 * DAY_MS)) },
      runs,
      wf,
    );
    if (!lastWeek) return false;
    log(`\n━━ last week's stable: ${lastWeek.booted}; now this week's build, updated from it`);
    const thisWeek = await buildAndBoot(common, runs, wf);
    if (!thisWeek) return false;
    const smoke = thisWeek.smoke;
    const disk = await recordRun(runs, { ...common, workflow: wf('build-disk.yml'), event: 'workflow_dispatch' });
    if (!disk.ok) return false;
    if (local.sysexts.length) {
      const sysext = await recordRun(runs, { ...common, workflow: wf('sysext.yml'), event: 'workflow_dispatch' });
      if (!sysext.ok) return false;
    }
    // Week-to-week upkeep, shown and harmless: what retention would delete, deleting nothing.
    const cleanup = await recordRun(runs, {
      ...common,
      workflow: wf('cleanup.yml'),
      event: 'workflow_dispatch',
      inputs: { 'dry-run': 'true' },
    });
    if (!cleanup.ok) return false;

    // The end state, checked independently of the runs' own outputs.
    const booted = smoke.jobs.boot?.outputs['image-ref'] ?? '';
    const stableRef = parseReference(`${local.image.registry}/${local.image.name}:${local.tags.stable}`);
    const client = new RegistryClient({ registry: stableRef.registry, tlsVerify: false });
    const stable = await client.headManifest(stableRef.repository, stableRef.reference);
    const bootedDigest = booted.split('@')[1];
    const sig = await verifyImage(
      client,
      stableRef.withDigest(stable?.digest ?? bootedDigest ?? ''),
      parsePublicKeyInput(services.keys.publicKeyPath).key,
      {
        identity: { type: 'matchRepository' },
        log: memoryLogger(),
      },
    );
    log('\n━━ result');
    log(`  :${local.tags.stable} → ${stable?.digest ?? 'missing'}`);
    log(
      `  booted digest       ${bootedDigest}  ${stable?.digest === bootedDigest ? '(same: promoted exactly what booted)' : '✘ DIFFERENT'}`,
    );
    log(`  signature           ${sig.verified ? `verified (${sig.reason})` : `✘ ${sig.reason}`}`);
    const update = smoke.jobs.boot?.steps.update?.outputs ?? {};
    const updated = update.passed === 'true' && update.skipped === 'false' && lastWeek.booted !== bootedDigest;
    log(`  update test         ${updated ? update.reason : `✘ ${update.reason ?? 'did not run'}`}`);
    const notice = promotionNotice(
      services.ntfy.messages,
      `${local.image.registry}/${local.image.name}`,
      bootedDigest ?? '',
    );
    log(`  notification        ${notice ? `sent: ${notice.title}` : '✘ no promotion notice reached ntfy'}`);
    const releaseNotes = path.join(smoke.dir, 'jobs', 'promote', 'workspace', 'keel-changelog', 'changelog.md');
    const releaseTagName = `${local.tags.stable}.${releaseDate}`;
    const releaseProblem = fs.existsSync(releaseNotes)
      ? stableReleaseProblem(services.github, repository, releaseTagName, releaseNotes)
      : `no changelog at ${releaseNotes}`;
    log(
      `  GitHub Release      ${releaseProblem ? `✘ ${releaseProblem}` : `${releaseTagName}, the changelog as its notes`}`,
    );
    // The sign step names the .sig relative to its job's workspace.
    const sigOut = disk.jobs.publish?.steps.checksums?.outputs['file-signatures'] ?? '';
    const sums = sigOut && path.resolve(disk.dir, 'jobs', 'publish', 'workspace', sigOut);
    const attested = cosignChecks(
      stableRef.withDigest(stable?.digest ?? '').toString(),
      sums,
      services.keys.publicKeyPath,
      stateDir,
    );
    for (const a of attested) log(`  ${`${a.type} (cosign)`.padEnd(19)} ${a.ok ? 'verified' : `✘ ${a.detail}`}`);
    const stableAfter = await client.headManifest(stableRef.repository, stableRef.reference);
    log(`  cleanup dry run     ${stableAfter?.digest === stable?.digest ? 'stable untouched' : '✘ stable moved'}`);
    ok = Boolean(
      stable?.digest &&
      stable.digest === bootedDigest &&
      sig.verified &&
      updated &&
      notice !== undefined &&
      releaseProblem === undefined &&
      attested.every((a) => a.ok) &&
      stableAfter?.digest === stable.digest,
    );
    printSummary(runs, log);
    log(
      ok
        ? `\n✔ local pipeline complete in ${Math.round((Date.now() - t0) / 1000)} s; runs and step summaries under ${runsDir}`
        : '\n✘ the end state does not hold',
    );
    return ok;
  } finally {
    if (!ok) printSummary(runs, log);
    await services.stop();
  }
}

const DAY_MS = 24 * 60 * 60 * 1000;

type RunCommon = Omit<RunOptions, 'workflow' | 'event' | 'eventPayload' | 'inputs'>;

/** Runs a workflow and keeps its record, in order, for the summary. */
async function recordRun(runs: RunRecord[], opts: RunOptions): Promise<RunRecord> {
  const run = await runWorkflow(opts);
  runs.push(run);
  return run;
}

/**
 * One release cycle as GitHub runs it: build.yml on a push to main, then smoke-boot.yml on that
 * run's completion (verify, boot, update test against stable, promote). The booted digest, or
 * undefined when a run failed.
 */
async function buildAndBoot(
  common: RunCommon,
  runs: RunRecord[],
  wf: (file: string) => Workflow,
): Promise<{ booted: string; smoke: RunRecord } | undefined> {
  const build = await recordRun(runs, {
    ...common,
    workflow: wf('build.yml'),
    event: 'push',
    eventPayload: { ref: 'refs/heads/main', repository: { full_name: common.repository } },
  });
  if (!build.ok) return undefined;
  const smoke = await recordRun(runs, {
    ...common,
    workflow: wf('smoke-boot.yml'),
    event: 'workflow_run',
    eventPayload: {
      workflow_run: {
        id: build.id,
        conclusion: 'success',
        event: 'push',
        head_branch: 'main',
        head_repository: { full_name: common.repository },
      },
    },
  });
  if (!smoke.ok) return undefined;
  return { booted: (smoke.jobs.boot?.outputs['image-ref'] ?? '').split('@')[1] ?? '', smoke };
}

/** The attestation types the sign job attaches to every release: the SBOM and the run's provenance. */
const RELEASE_ATTESTATIONS = ['cyclonedx', 'spdxjson', 'slsaprovenance1'];

/**
 * The release checked by the real cosign (Debian's, fetched and verified by
 * scripts/fetch-verifiers.sh), independently of Keel's own verifier, offline, with the run's key:
 * the attestations of the image, and the signature of the published SHA256SUMS (`sumsSig`, its
 * .sig file) the way a downloader checks it.
 */
function cosignChecks(
  imageRef: string,
  sumsSig: string,
  publicKeyPath: string,
  stateDir: string,
): { type: string; ok: boolean; detail: string }[] {
  const fetched = spawnSync('bash', [path.join(repoRoot, 'scripts/fetch-verifiers.sh')], { encoding: 'utf8' });
  const bin = fetched.stdout.trim().split('\n').pop() ?? '';
  if (fetched.status !== 0 || !fs.existsSync(path.join(bin, 'cosign')))
    return [{ type: 'cosign', ok: false, detail: `could not fetch cosign: ${fetched.stderr.trim().slice(-300)}` }];
  const home = fs.mkdtempSync(path.join(stateDir, 'cosign-home-'));
  const cosign = (type: string, args: string[]) => {
    const r = spawnSync(path.join(bin, 'cosign'), [...args, '--key', publicKeyPath, '--insecure-ignore-tlog=true'], {
      encoding: 'utf8',
      env: { ...process.env, HOME: home },
      timeout: 120_000,
    });
    return { type, ok: r.status === 0, detail: `${r.stderr}`.trim().split('\n').slice(-2).join(' ') };
  };
  try {
    return [
      ...RELEASE_ATTESTATIONS.map((type) =>
        cosign(type, ['verify-attestation', '--type', type, '--allow-http-registry', imageRef]),
      ),
      sumsSig
        ? cosign('SHA256SUMS.sig', ['verify-blob', '--signature', sumsSig, sumsSig.replace(/\.sig$/, '')])
        : { type: 'SHA256SUMS.sig', ok: false, detail: 'the publish job signed no SHA256SUMS' },
    ];
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}

export function printSummary(runs: RunRecord[], log: (s: string) => void): void {
  const KEY = [
    'digest',
    'image-ref',
    'tags',
    'passed',
    'reason',
    'boot-seconds',
    'accel',
    'layers',
    'path',
    'sha256',
    'details-url',
    'torrent-ready',
    'result',
    'pr-url',
    'verified',
    'signature-refs',
    'version',
    'planned',
  ];
  log('\n━━ summary');
  for (const r of runs) {
    log(`${r.ok ? '✔' : '✘'} ${r.workflow} (${r.event}) ${(r.ms / 1000).toFixed(0)} s`);
    for (const [jid, j] of Object.entries(r.jobs)) {
      log(`   ${j.result === 'success' ? '✔' : j.result === 'skipped' ? '⏭' : '✘'} ${jid}`);
      for (const sid of j.order) {
        const s = j.steps[sid]!;
        if (!s.hop) continue;
        const outs = KEY.filter((k) => s.outputs[k]).map(
          (k) => `${k}=${s.outputs[k]!.replace(/\n/g, ',').slice(0, 90)}`,
        );
        log(
          `      ${s.result === 'success' ? '✔' : s.result === 'skipped' ? '⏭' : '✘'} ${s.hop.padEnd(11)} ${(s.ms / 1000).toFixed(1).padStart(6)} s  ${outs.join('  ')}${s.error ? `  ${s.error.split('\n')[0]}` : ''}`,
        );
      }
    }
  }
}

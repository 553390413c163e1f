import fs from 'node:fs';
import path from 'node:path';
import type { CommandRunner } from '../../lib/exec.js';
import type { OpenedImage } from '../../lib/image/open.js';
import type { Logger } from '../../lib/log.js';
import {
  CommitLayout,
  commitTree,
  deploy,
  initRepo,
  initSysroot,
  removeSysroot,
  STATEROOT,
  sysrootRepo,
} from '../../lib/ostree.js';
import { theKernel } from '../../lib/rootfs/kernel.js';
import { makeExt4, seededUuid, usageOf, type Usage } from '../../lib/vm/disk.js';
import { Ext4Image } from '../../lib/vm/ext4-image.js';
import { removeTree, unpackRootfs } from '../../lib/vm/unpack.js';
import {
  CANDIDATE_LABEL,
  expectEnv,
  PROBE_DIR,
  PROBE_SCRIPT,
  PROBE_UNIT,
  UNIT_TEXT,
  type ProbeExpect,
} from './probe.js';

/**
 * The machine update-test boots three times: the previous release installed on a fresh disk the
 * way bootc does it (see lib/ostree.ts), with the probe added to its deployment's /etc, and a
 * second disk holding the candidate as an ostree repository (its commit, nothing deployed) for
 * the guest to pull from. Everything lives in `workDir`.
 */
export interface Machine {
  /** The sysroot disk (raw ext4, the whole disk is the filesystem; the guest's writes persist). */
  disk: string;
  /** The candidate's repository (raw ext4 labelled keel-candidate, read-only for the guest). */
  candidateDisk: string;
  previousCommit: string;
  candidateCommit: string;
  /** Kernel arguments of the deployment (what its BLS entry's options start with). */
  kargs: string[];
  expect: ProbeExpect;
  seconds: number;
}

export interface MachineRequest {
  previous: OpenedImage;
  candidate: OpenedImage;
  workDir: string;
  nonce: string;
  token: string;
  rollback: boolean;
  /** Bounds each tool run (the step's remaining time). */
  timeoutMs: () => number;
}

const MiB = 1024 * 1024;

/** An image's filesystem as an ostree commit in `repo`; the unpacked tree is consumed. */
async function commitImage(
  image: OpenedImage,
  role: string,
  repo: string,
  tree: string,
  runner: CommandRunner,
  log: Logger,
  timeoutMs: number,
): Promise<{ commit: string; usage: Usage; kernel: string }> {
  const layout = new CommitLayout(image.layers);
  const index = await layout.index();
  const kernel = theKernel(index, { files: ['vmlinuz', 'initramfs.img'], refusal: `the ${role} cannot be deployed` });
  await layout.check();
  await unpackRootfs(layout, tree, runner, log);
  const commit = await commitTree(
    repo,
    tree,
    `keel/update-test/${role}`,
    `${role} ${image.manifestDigest}`,
    runner,
    timeoutMs,
  );
  await removeTree(tree, runner);
  log.info(`${role} ${image.manifestDigest} → ostree commit ${commit} (kernel ${kernel})`);
  return { commit, usage: usageOf(index), kernel };
}

export async function prepareMachine(req: MachineRequest, runner: CommandRunner, log: Logger): Promise<Machine> {
  const sysroot = path.join(req.workDir, 'sysroot');
  const candidateRoot = path.join(req.workDir, 'candidate-disk');
  try {
    return await build(req, sysroot, candidateRoot, runner, log);
  } finally {
    // The disks hold them now (or the preparation failed): free the space before booting.
    await removeSysroot(sysroot, runner);
    await removeTree(candidateRoot, runner);
    await removeTree(path.join(req.workDir, 'tree'), runner);
  }
}

async function build(
  req: MachineRequest,
  sysroot: string,
  candidateRoot: string,
  runner: CommandRunner,
  log: Logger,
): Promise<Machine> {
  const t0 = Date.now();
  const dir = (n: string) => path.join(req.workDir, n);
  await initSysroot(sysroot, runner);
  const prev = await commitImage(
    req.previous,
    'previous',
    sysrootRepo(sysroot),
    dir('tree'),
    runner,
    log,
    req.timeoutMs(),
  );
  fs.mkdirSync(candidateRoot, { recursive: true });
  await initRepo(path.join(candidateRoot, 'repo'), runner);
  const cand = await commitImage(
    req.candidate,
    'candidate',
    path.join(candidateRoot, 'repo'),
    dir('tree'),
    runner,
    log,
    req.timeoutMs(),
  );

  const rootUuid = seededUuid(`${req.previous.manifestDigest} ${req.candidate.manifestDigest} sysroot`);
  const kargs = [`root=UUID=${rootUuid}`, 'rw'];
  const deployment = await deploy(sysroot, prev.commit, kargs, runner, log, req.timeoutMs());
  log.info(`deployed the previous release: ${deployment} with ${kargs.join(' ')}`);

  // Room for the candidate's objects, its deployment's /etc and /var data; the file is sparse.
  const disk = dir('sysroot.img');
  await makeExt4(sysroot, disk, runner, {
    label: 'keel-sysroot',
    uuid: rootUuid,
    usage: { bytes: prev.usage.bytes + cand.usage.bytes, inodes: 2 * (prev.usage.inodes + cand.usage.inodes) },
    headroomMiB: 1024,
  });
  const candidateDisk = dir('candidate.img');
  await makeExt4(candidateRoot, candidateDisk, runner, { label: CANDIDATE_LABEL, usage: cand.usage, headroomMiB: 64 });

  const expect: ProbeExpect = {
    nonce: req.nonce,
    previous: prev.commit,
    candidate: cand.commit,
    stateroot: STATEROOT,
    token: req.token,
    rollback: req.rollback,
  };
  await installProbe(new Ext4Image(disk, runner), `${deployment}/etc`, expect, dir('probe'));
  const seconds = (Date.now() - t0) / 1000;
  log.info(
    `prepared the machine in ${seconds.toFixed(1)} s: ${disk} (${(fs.statSync(disk).size / MiB).toFixed(0)} MiB, sparse), candidate repository ${candidateDisk}`,
  );
  return { disk, candidateDisk, previousCommit: prev.commit, candidateCommit: cand.commit, kargs, expect, seconds };
}

/**
 * The probe as a local change of the deployment's /etc, written into the disk image (debugfs):
 * nothing of the image's /etc is followed on the runner.
 */
async function installProbe(img: Ext4Image, etc: string, expect: ProbeExpect, scratch: string): Promise<void> {
  const p = (rel: string) => `${etc}${rel}`;
  const inEtc = PROBE_DIR.slice('/etc'.length);
  await img.writeFiles(
    [
      { dest: p(`${inEtc}/probe.sh`), content: PROBE_SCRIPT, mode: 0o755 },
      { dest: p(`${inEtc}/expect.env`), content: expectEnv(expect), mode: 0o644 },
      { dest: p(`/systemd/system/${PROBE_UNIT}`), content: UNIT_TEXT, mode: 0o644 },
    ],
    [{ dest: p(`/systemd/system/multi-user.target.wants/${PROBE_UNIT}`), target: `../${PROBE_UNIT}` }],
    scratch,
  );
}

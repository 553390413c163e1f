import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { withFailureSummary } from '../../lib/action.js';
import { uploadArtifact } from '../../lib/artifact.js';
import { onCleanup } from '../../lib/cleanup.js';
import { errorMessage, UserError } from '../../lib/errors.js';
import { openImage, type OpenedImage } from '../../lib/image/open.js';
import { bool, imageRef, int, oneOf, readInputs, registryInputs, str, type InputDef } from '../../lib/inputs.js';
import type { ActionIO } from '../../lib/io.js';
import { parseReference, type ImageReference } from '../../lib/oci/reference.js';
import { connect, resolveDigest } from '../../lib/registry.js';
import { code, fence, table } from '../../lib/summary.js';
import { removeTree } from '../../lib/vm/unpack.js';
import { runBoots, type BootRecord, type BootsOutcome } from './boots.js';
import { requireSignatureGate, signatureGateInputs } from '../../lib/signature-gate.js';
import { prepareMachine } from './machine.js';

/**
 * `previous-image`: a full reference, or a tag or digest in the candidate's repository; empty
 * means `<repository>:stable` (resolved in run, where the candidate's repository is known).
 */
function previousImage(): InputDef<(candidate: ImageReference) => ImageReference> {
  const expected = 'an image reference, or a tag or sha256 digest in the repository of image-ref';
  return {
    schema: z.string().transform((v, ctx) => {
      const s = v.trim();
      if (s === '') return (c: ImageReference) => c.withTag('stable');
      if (/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(s)) return (c: ImageReference) => c.withTag(s);
      if (/^sha256:[a-f0-9]{64}$/.test(s)) return (c: ImageReference) => c.withDigest(s);
      try {
        const ref = parseReference(s);
        return () => ref;
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `expected ${expected}: ${errorMessage(e)}` });
        return z.NEVER;
      }
    }),
    expected,
  };
}

export const inputs = {
  'image-ref': imageRef(true),
  'previous-image': previousImage(),
  ...signatureGateInputs,
  identity: oneOf(['repository', 'tags'] as const, 'repository'),
  accel: oneOf(['auto', 'kvm', 'tcg'] as const, 'auto'),
  memory: int({ default: 2048, min: 512, max: 65536 }),
  cpus: int({ default: 2, min: 1, max: 64 }),
  timeout: int({ default: 2400, min: 60, max: 86400 }),
  'quiet-timeout': int({ default: 300, min: 0, max: 86400 }),
  rollback: bool(true),
  'artifact-name': str({ pattern: /^[^"/\\:<>|*?\n]*$/, expected: 'an artifact name without / \\ : < > | * ? "' }),
  'kvm-probe-timeout': int({ default: 20, min: 1, max: 600 }),
  ...registryInputs,
};

/** update-test: install the previous release, update it to the candidate, roll back; three real boots. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const gate = await requireSignatureGate(inp, io, 'update-test');
  const started = Date.now();
  const deadline = started + inp.timeout * 1000;
  const candidateRef = inp['image-ref'];
  const previousRef = inp['previous-image'](candidateRef);
  io.setOutput('skipped', 'false');

  const client = connect(candidateRef, inp, io);
  const candidateDigest = await resolveDigest(client, candidateRef);
  const candidate = candidateRef.withDigest(candidateDigest);
  const previousClient = previousRef.registry === candidateRef.registry ? client : connect(previousRef, inp, io);
  const head = await previousClient.headManifest(previousRef.repository, previousRef.reference);
  const skip = async (why: string) => {
    io.setOutput('passed', 'true');
    io.setOutput('skipped', 'true');
    io.setOutput('reason', why);
    io.setOutput('previous-digest', head?.digest ?? '');
    io.setOutput('boots', '[]');
    io.setOutput('serial-log', '');
    io.notice(`update-test skipped: ${why}`);
    await io.summary(`### update-test ⏭️ skipped\n\n${why}\n`);
  };
  if (!head) return skip(`no previous release to update from: ${previousRef.toString()} does not exist`);
  if (previousRef.digest && head.digest !== previousRef.digest)
    throw new Error(`registry answered ${head.digest} for ${previousRef.toString()}`);
  const previous = previousRef.withDigest(head.digest);
  io.setOutput('previous-digest', head.digest);
  if (head.digest === candidateDigest)
    return skip(
      `the candidate ${candidate.toString()} is the previous release (${previousRef.toString()}): nothing to update`,
    );
  io.info(
    `update test: ${previousRef.toString()} → ${previous.toString()}, then ${candidateRef.toString()} → ${candidate.toString()} (resolved once each)`,
  );

  const temp = io.context.runnerTemp;
  const id = candidateDigest.slice(7, 19);
  const logBase = path.join(temp, `keel-update-${id}-serial`);
  const serialLog = `${logBase}.log`;
  let outcome: BootsOutcome | undefined;
  const signatures: string[] = [];
  const runner = io.runner;
  let prepareSeconds = 0;
  const report = async (failure: string | undefined) => {
    io.setOutput('passed', String(outcome?.passed ?? false));
    io.setOutput('reason', outcome?.reason ?? failure ?? 'update-test did not finish');
    io.setOutput('boots', JSON.stringify((outcome?.boots ?? []).map(bootJson)));
    const logs = combineLogs(serialLog, outcome?.boots ?? []);
    io.setOutput('serial-log', logs.length ? serialLog : '');
    let uploaded = '';
    if (inp['artifact-name'] && logs.length) uploaded = await uploadArtifact(inp['artifact-name'], logs, temp, io);
    await io.summary(
      summary({
        previous,
        candidate,
        outcome,
        failure,
        signatures,
        prepareSeconds,
        serialLog,
        uploaded,
      }),
    );
  };
  await withFailureSummary(async () => {
    // Both signatures before anything is pulled.
    await io.group('verify the signatures', async () => {
      signatures.push(`previous: ${await gate.check(previousClient, previous, io, inp.identity)}`);
      signatures.push(`candidate: ${await gate.check(client, candidate, io, inp.identity)}`);
    });
    const work = fs.mkdtempSync(path.join(temp, 'keel-update-'));
    const unregister = onCleanup(() => fs.rmSync(work, { recursive: true, force: true }));
    const opened: OpenedImage[] = [];
    const open = async (ref: ImageReference) => {
      const img = await openImage(
        { kind: 'registry', ref },
        { access: inp, log: io, runner, tmpDir: work, cacheDir: path.join(work, 'blobs') },
      );
      opened.push(img);
      return img;
    };
    try {
      const machine = await io.group('prepare the machine', async () =>
        prepareMachine(
          {
            previous: await open(previous),
            candidate: await open(candidate),
            workDir: work,
            nonce: crypto.randomBytes(4).toString('hex'),
            token: crypto.randomBytes(8).toString('hex'),
            rollback: inp.rollback,
            timeoutMs: () => Math.max(1000, deadline - Date.now()),
          },
          runner,
          io,
        ),
      );
      prepareSeconds = machine.seconds;
      for (const img of opened.splice(0)) img.dispose();
      fs.rmSync(path.join(work, 'blobs'), { recursive: true, force: true });
      outcome = await io.group('boot the machine', () =>
        runBoots(
          {
            machine,
            accel: inp.accel,
            memoryMiB: inp.memory,
            cpus: inp.cpus,
            deadline,
            quietMs: inp['quiet-timeout'] * 1000,
            kvmProbeTimeoutMs: inp['kvm-probe-timeout'] * 1000,
            rollback: inp.rollback,
            workDir: work,
            logBase,
          },
          runner,
          io,
        ),
      );
    } finally {
      for (const img of opened) img.dispose();
      await removeTree(work, runner).catch(() => undefined);
      unregister();
    }
  }, report);
  if (!outcome?.passed) throw new UserError(`update test failed: ${outcome?.reason}`);
  io.info(`passed: ${outcome.reason}`);
}

function bootJson(b: BootRecord) {
  return {
    boot: b.n,
    role: b.role,
    entry: b.entry,
    chosen: b.chosen,
    passed: b.passed,
    reason: b.reason,
    seconds: Number(b.seconds.toFixed(1)),
    'multi-user-seconds': b.multiUserSeconds === undefined ? null : Number(b.multiUserSeconds.toFixed(1)),
    commit: b.report.booted ?? null,
    'os-version': b.report['os-version'] ?? null,
    'image-version': b.report['image-version'] ?? null,
    'failed-units': b.report['failed-units'] ?? null,
    proved: b.proved,
    'serial-log': b.serialLog,
    attempts: b.attempts,
  };
}

/** One console log of all boots (each under a header), plus every boot's own log: the evidence. */
function combineLogs(serialLog: string, boots: BootRecord[]): string[] {
  if (!boots.length) return [];
  fs.writeFileSync(serialLog, '');
  const files: string[] = [serialLog];
  for (const b of boots) {
    for (const f of [...b.keptLogs, b.serialLog]) {
      if (!fs.existsSync(f)) continue;
      fs.appendFileSync(serialLog, `\n===== boot ${b.n} (${b.role}) — ${path.basename(f)} =====\n`);
      fs.appendFileSync(serialLog, fs.readFileSync(f));
      files.push(f);
    }
  }
  return files;
}

function summary(s: {
  previous: ImageReference;
  candidate: ImageReference;
  outcome?: BootsOutcome;
  failure?: string;
  signatures: string[];
  prepareSeconds: number;
  serialLog: string;
  uploaded: string;
}): string {
  const o = s.outcome;
  const passed = o?.passed ?? false;
  const head = `### update-test ${passed ? '✅ passed' : '❌ failed'}\n\n`;
  const what = `${code(s.previous.toString())} → ${code(s.candidate.toString())}\n\n`;
  const rows = (o?.boots ?? []).map((b) => [
    `${b.n}`,
    `${b.role}${b.n === 3 ? ` (${b.chosen})` : ''}`,
    b.passed ? '✅' : `❌ ${b.reason}`,
    b.multiUserSeconds === undefined ? '—' : `${b.multiUserSeconds.toFixed(0)} s`,
    `${b.seconds.toFixed(0)} s${b.attempts > 1 ? ` (${b.attempts} attempts)` : ''}`,
    b.proved.join('; ') || '—',
  ]);
  const boots = rows.length
    ? table(['boot', 'deployment', 'verdict', 'multi-user', 'time', 'what it proved'], rows)
    : '';
  const failedBoot = o?.boots.find((b) => !b.passed);
  const tail = failedBoot
    ? `\nLast ${failedBoot.tail.length} console lines of boot ${failedBoot.n}:\n\n${fence(failedBoot.tail.join('\n'))}`
    : '';
  return `${head}${what}${o ? `**${o.reason}**\n\n` : `**${s.failure ?? 'did not finish'}**\n\n`}${boots}\nSignatures: ${s.signatures.join('; ') || '—'}. ${
    o ? `Accelerator: ${o.accel.toUpperCase()} (${o.accelWhy}). ` : ''
  }Prepared the machine in ${s.prepareSeconds.toFixed(1)} s. Serial log: ${code(s.serialLog)}${
    s.uploaded ? `, uploaded as artifact ${code(s.uploaded)}` : ''
  }.\n${tail}`;
}

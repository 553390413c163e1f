import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { onCleanup } from '../../lib/cleanup.js';
import { errorMessage, UserError } from '../../lib/errors.js';
import { requireSpace, type SpaceCheckOptions } from '../../lib/disk-space.js';
import { openImage } from '../../lib/image/open.js';
import type { ActionIO } from '../../lib/io.js';
import {
  imageRef,
  int,
  oneOf,
  readInputs,
  registryInputs,
  secret,
  spaceInputs,
  str,
  type InputDef,
} from '../../lib/inputs.js';
import { connect, resolveDigest } from '../../lib/registry.js';
import { requireSignatureGate, signatureGateInputs } from '../../lib/signature-gate.js';
import { code, fence, table } from '../../lib/summary.js';
import { BIB_IMAGE, BIB_ROOTFS, requireLoginPairs } from '../../lib/vm/bib.js';
import { removeTree } from '../../lib/vm/unpack.js';
import { DEFAULT_FAILURE, DEFAULT_SUCCESS, VerdictMatcher } from '../../lib/vm/verdict.js';
import { uploadArtifact } from '../../lib/artifact.js';
import { bootImage } from './boot.js';

/** Newline-separated regular expressions; each must compile. */
function patterns(what: string): InputDef<RegExp[]> {
  const expected = `newline-separated regular expressions (${what})`;
  return {
    schema: z.string().transform((v, ctx) => {
      const out: RegExp[] = [];
      for (const line of v
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)) {
        try {
          out.push(new RegExp(line));
        } catch (e) {
          ctx.addIssue({
            code: 'custom',
            message: `${JSON.stringify(line)} is not a valid regular expression: ${errorMessage(e)}`,
          });
          return z.NEVER;
        }
      }
      return out;
    }),
    expected,
  };
}

export const inputs = {
  image: imageRef(true),
  backend: oneOf(['direct', 'uefi', 'bib'] as const, 'direct'),
  accel: oneOf(['auto', 'kvm', 'tcg'] as const, 'auto'),
  memory: int({ default: 2048, min: 256, max: 65536 }),
  cpus: int({ default: 2, min: 1, max: 64 }),
  timeout: int({ default: 1800, min: 10, max: 86400 }),
  'quiet-timeout': int({ default: 300, min: 0, max: 86400 }),
  'success-pattern': patterns('added to the multi-user defaults'),
  'failure-pattern': patterns('added to the panic/emergency defaults'),
  'kernel-args': str({ pattern: /^[^\n]*$/, expected: 'kernel arguments on one line' }),
  'root-wait': int({ default: 90, min: 0, max: 3600 }),
  ...signatureGateInputs,
  identity: oneOf(['repository', 'tags'] as const, 'repository'),
  'artifact-name': str({ pattern: /^[^"/\\:<>|*?\n]*$/, expected: 'an artifact name without / \\ : < > | * ? "' }),
  'kvm-probe-timeout': int({ default: 20, min: 1, max: 600 }),
  'bib-image': str({
    default: BIB_IMAGE,
    pattern: /@sha256:[0-9a-f]{64}$/,
    expected: 'a bootc-image-builder image pinned by digest',
  }),
  'bib-rootfs': oneOf(BIB_ROOTFS, 'btrfs'),
  'bib-username': str({ expected: "a user name for the bootc-image-builder image's registry" }),
  'bib-password': secret(),
  ...registryInputs,
  ...spaceInputs,
};

/** smoke-boot: resolve once, boot that digest for real, decide from the console, show why. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  if (inp.backend === 'bib') requireLoginPairs(inp);
  const gate = await requireSignatureGate(inp, io, 'smoke-boot');
  const ref = inp.image;
  const client = connect(ref, inp, io);
  const digest = await resolveDigest(client, ref);
  const pinned = ref.withDigest(digest);
  io.setOutput('digest', digest);
  io.setOutput('image-ref', pinned.toString());
  io.info(`testing ${ref.toString()} → ${pinned.toString()} (resolved once; everything below uses the digest)`);

  const signature = await io.group('verify the signature', () => gate.check(client, pinned, io, inp.identity));

  const runner = io.runner;
  const space: SpaceCheckOptions = {
    hop: 'smoke-boot',
    margin: inp['space-margin-gib'],
    probe: io.context.freeSpace,
    log: io,
  };
  const temp = io.context.runnerTemp;
  const workDir = fs.mkdtempSync(path.join(temp, 'keel-smoke-'));
  const unregister = onCleanup(() => fs.rmSync(workDir, { recursive: true, force: true }));
  const id = digest.slice(7, 19);
  const serialLog = path.join(temp, `keel-smoke-${id}-serial.log`);
  const screenshot = path.join(temp, `keel-smoke-${id}-screen.png`);
  io.setOutput('serial-log', serialLog);
  const image = await io.group(`download ${pinned.toString()}`, () =>
    openImage(
      { kind: 'registry', ref: pinned },
      {
        access: inp,
        log: io,
        runner,
        tmpDir: workDir,
        beforeDownload: (bytes, dir) => requireSpace([{ dir, bytes, what: 'the image layers' }], space),
      },
    ),
  );
  let outcome;
  try {
    outcome = await io.group(`boot (${inp.backend})`, () =>
      bootImage(
        {
          image,
          pinnedRef: pinned.toString(),
          backend: inp.backend,
          accel: inp.accel,
          memoryMiB: inp.memory,
          cpus: inp.cpus,
          timeoutMs: inp.timeout * 1000,
          quietMs: inp['quiet-timeout'] * 1000,
          // A systemd initrd waits for a missing root device forever ("no limit"): bound the wait
          // for the test boot only, so a missing disk driver fails with "Timed out waiting for device".
          kernelArgs: `${inp['root-wait'] > 0 ? `rd.timeout=${inp['root-wait']} ` : ''}${inp['kernel-args']}`.trim(),
          matcher: new VerdictMatcher(
            [...DEFAULT_SUCCESS, ...inp['success-pattern']],
            [...DEFAULT_FAILURE, ...inp['failure-pattern']],
          ),
          workDir,
          serialLog,
          screenshot,
          kvmProbeTimeoutMs: inp['kvm-probe-timeout'] * 1000,
          bibImage: inp['bib-image'],
          bibRootfs: inp['bib-rootfs'],
          bibLogins: [
            { image: pinned.toString(), username: inp.username, password: inp.password },
            { image: inp['bib-image'], username: inp['bib-username'], password: inp['bib-password'] },
          ],
          space,
        },
        runner,
        io,
      ),
    );
  } finally {
    image.dispose();
    await removeTree(workDir, runner).catch(() => undefined);
    unregister();
  }

  io.setOutput('passed', String(outcome.passed));
  io.setOutput('boot-seconds', outcome.seconds.toFixed(1));
  io.setOutput('reason', outcome.reason);
  io.setOutput('accel', outcome.accel);
  io.setOutput('screenshot', outcome.screenshot ?? '');
  io.setOutput('attempts', String(outcome.attempts));
  const evidence = [serialLog, ...outcome.keptLogs, ...(outcome.screenshot ? [outcome.screenshot] : [])];
  let uploaded = '';
  if (inp['artifact-name']) uploaded = await uploadArtifact(inp['artifact-name'], evidence, temp, io);

  await io.summary(
    `### smoke-boot ${outcome.passed ? '✅ passed' : '❌ failed'}\n\n${table(
      ['image', 'backend', 'accel', 'kernel', 'boot seconds', 'verdict', 'signature'],
      [
        [
          code(pinned.toString()),
          inp.backend,
          `${outcome.accel.toUpperCase()} (${outcome.accelWhy})`,
          code(outcome.kernelVersion),
          outcome.seconds.toFixed(1),
          outcome.reason,
          signature,
        ],
      ],
    )}\nPrepared the disk in ${outcome.prepareSeconds.toFixed(1)} s. Serial log: ${code(serialLog)}${uploaded ? `, uploaded as artifact ${code(uploaded)}` : ''}.\n${
      outcome.retried.length
        ? `\n⚠️ Booted ${outcome.attempts} times: the VM failed before a verdict (not a verdict on the image, but worth a look if it recurs):\n${outcome.retried.map((r) => `- ${r}`).join('\n')}\n`
        : ''
    }${
      outcome.passed
        ? ''
        : `\nLast ${outcome.tail.length} lines of the serial console:\n\n${fence(outcome.tail.join('\n'))}`
    }`,
  );
  if (!outcome.passed) throw new UserError(`boot failed: ${outcome.reason}`);
  io.info(`passed in ${outcome.seconds.toFixed(1)} s: ${outcome.reason}`);
}

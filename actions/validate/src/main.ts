import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../lib/errors.js';
import { processRunner } from '../../lib/exec.js';
import type { ActionIO } from '../../lib/io.js';
import { list, oneOf, positiveNumber, readInputs, registryInputs, str } from '../../lib/inputs.js';
import { code, seconds, table } from '../../lib/summary.js';
import { CHECK_IDS, DEFAULT_REPO_GLOBS, runChecks, type CheckId } from './checks.js';
import { locateInput } from '../../lib/image/open.js';
import { openForChecks } from './open.js';

export const inputs = {
  image: str({
    required: true,
    expected: 'containers-storage:REF, localhost/NAME:TAG, oci:DIR[:TAG], or registry/repo:tag|@digest',
  }),
  checks: list({
    default: 'all',
    expected: `all, or newline-separated check ids (${CHECK_IDS.join(', ')})`,
    item: (c) =>
      c === 'all' || (CHECK_IDS as readonly string[]).includes(c)
        ? undefined
        : `expected all or one of ${CHECK_IDS.join(', ')}`,
  }),
  'min-initramfs-mb': positiveNumber({ default: 50, expected: 'a positive number of megabytes' }),
  'require-ostree-module': oneOf(['auto', 'true', 'false'] as const, 'auto'),
  'initramfs-modules': list({ default: 'virtio_blk\next4', expected: 'newline-separated kernel module names' }),
  'repo-globs': list({
    expected: 'newline-separated globs (!glob exempts); empty: Keel defaults for dnf/COPR, apt and zypper',
  }),
  'var-allow': list({ expected: 'newline-separated /var paths allowed without a tmpfiles.d entry' }),
  'report-path': str({ expected: 'a file path for the JSON report' }),
  ...registryInputs,
};

/** validate: every static check of the built image, all run, fail at the end listing all failures. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const which: CheckId[] = inp.checks.includes('all') ? [...CHECK_IDS] : (inp.checks as CheckId[]);
  const loc = locateInput('image', inp.image);
  const started = Date.now();
  const runner = processRunner(io);
  const opened = await openForChecks(loc, { runner, log: io, tmpDir: io.context.runnerTemp, access: inp });
  let results;
  try {
    io.info(`validating ${inp.image}: ${opened.how}`);
    results = await runChecks(
      {
        fs: opened.fs,
        labels: opened.labels,
        runner,
        log: io,
        opts: {
          minInitramfsMb: inp['min-initramfs-mb'],
          requireOstreeModule:
            inp['require-ostree-module'] === 'auto' ? 'auto' : inp['require-ostree-module'] === 'true',
          initramfsModules: inp['initramfs-modules'],
          repoGlobs: inp['repo-globs'].length ? inp['repo-globs'] : DEFAULT_REPO_GLOBS,
          varAllow: inp['var-allow'],
          localRef: opened.localRef,
        },
      },
      which,
    );
  } finally {
    await opened.dispose();
  }
  const failed = results.filter((r) => r.status === 'fail');
  const passed = failed.length === 0;
  const report = {
    image: inp.image,
    digest: opened.digest,
    passed,
    checks: results,
    seconds: (Date.now() - started) / 1000,
  };
  const reportPath = inp['report-path'] || path.join(io.context.runnerTemp, 'keel-validate-report.json');
  fs.mkdirSync(path.dirname(reportPath), { recursive: true });
  fs.writeFileSync(reportPath, `${JSON.stringify(report, null, 2)}\n`);
  io.setOutput('passed', String(passed));
  io.setOutput('report', reportPath);
  for (const r of results) {
    const line = `${r.status.toUpperCase()} ${r.id}: ${r.evidence}`;
    if (r.status === 'fail') io.error(line);
    else io.info(line);
  }
  const icon = { pass: '✅ pass', fail: '❌ fail', skip: '⏭ skip' } as const;
  await io.summary(
    `### validate ${passed ? '✅' : '❌'}\n\n${code(inp.image)}${opened.digest ? ` (${code(opened.digest)})` : ''}, ${seconds(Date.now() - started)}\n\n${table(
      ['check', 'result', 'evidence'],
      results.map((r) => [`${r.id}: ${r.title}`, icon[r.status], r.evidence]),
    )}`,
  );
  if (!passed) {
    throw new UserError(`${failed.length} check(s) failed: ${failed.map((f) => `${f.id} (${f.evidence})`).join('; ')}`);
  }
}

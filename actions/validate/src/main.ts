import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../lib/errors.js';
import type { ActionIO } from '../../lib/io.js';
import { list, oneOf, positiveNumber, readInputs, registryInputs, spaceInputs, str } from '../../lib/inputs.js';
import { code, seconds, table } from '../../lib/summary.js';
import {
  CHECK_IDS,
  DEFAULT_REPO_GLOBS,
  DEFAULT_WARN_CHECKS,
  runChecks,
  type CheckId,
  type CheckResult,
} from './checks.js';
import { locateInput } from '../../lib/image/open.js';
import { INSTALL_MEDIA } from './install-media.js';
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
  'warn-checks': list({
    default: DEFAULT_WARN_CHECKS.join('\n'),
    expected: `none, or newline-separated check ids (${CHECK_IDS.join(', ')}) that only warn when they fail`,
    item: (c) =>
      c === 'none' || (CHECK_IDS as readonly string[]).includes(c)
        ? undefined
        : `expected none or one of ${CHECK_IDS.join(', ')}`,
  }),
  'min-initramfs-mb': positiveNumber({ default: 50, expected: 'a positive number of megabytes' }),
  'require-ostree-module': oneOf(['auto', 'true', 'false'] as const, 'auto'),
  'initramfs-modules': list({ default: 'virtio_blk\next4', expected: 'newline-separated kernel module names' }),
  'repo-globs': list({
    expected: 'newline-separated globs (!glob exempts); empty: Keel defaults for dnf/COPR, apt and zypper',
  }),
  'var-allow': list({ expected: 'newline-separated /var paths allowed without a tmpfiles.d entry' }),
  'install-media': oneOf(INSTALL_MEDIA, 'none'),
  'report-path': str({ expected: 'a file path for the JSON report' }),
  ...registryInputs,
  ...spaceInputs,
};

/** validate: every static check of the built image, all run, fail at the end listing all failures. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const which: CheckId[] = inp.checks.includes('all') ? [...CHECK_IDS] : (inp.checks as CheckId[]);
  const warnOnly = new Set(inp['warn-checks'].filter((c) => c !== 'none'));
  const loc = locateInput('image', inp.image);
  const started = Date.now();
  const opened = await io.group('open the image', () =>
    openForChecks(loc, {
      runner: io.runner,
      log: io,
      tmpDir: io.context.runnerTemp,
      access: inp,
      space: { hop: 'validate', margin: inp['space-margin-gib'], probe: io.context.freeSpace, log: io },
    }),
  );
  let results: CheckResult[];
  try {
    io.info(`validating ${inp.image}: ${opened.how}`);
    const checked = await io.group('run the checks', () =>
      runChecks(
        {
          fs: opened.fs,
          labels: opened.labels,
          runner: io.runner,
          log: io,
          opts: {
            minInitramfsMb: inp['min-initramfs-mb'],
            requireOstreeModule:
              inp['require-ostree-module'] === 'auto' ? 'auto' : inp['require-ostree-module'] === 'true',
            initramfsModules: inp['initramfs-modules'],
            repoGlobs: inp['repo-globs'].length ? inp['repo-globs'] : DEFAULT_REPO_GLOBS,
            varAllow: inp['var-allow'],
            localRef: opened.localRef,
            installMedia: inp['install-media'],
          },
        },
        which,
      ),
    );
    results = checked.map((r) => (r.status === 'fail' && warnOnly.has(r.id) ? { ...r, status: 'warn' as const } : r));
  } finally {
    await opened.dispose();
  }
  const failed = results.filter((r) => r.status === 'fail');
  const passed = failed.length === 0;
  const reportPath = writeReport(inp['report-path'] || path.join(io.context.runnerTemp, 'keel-validate-report.json'), {
    image: inp.image,
    digest: opened.digest,
    passed,
    warnChecks: [...warnOnly],
    checks: results,
    seconds: (Date.now() - started) / 1000,
  });
  io.setOutput('passed', String(passed));
  io.setOutput('report', reportPath);
  logResults(io, results);
  await io.summary(summary(inp.image, opened.digest, results, passed, Date.now() - started));
  if (!passed) {
    throw new UserError(`${failed.length} check(s) failed: ${failed.map((f) => `${f.id} (${f.evidence})`).join('; ')}`);
  }
}

function writeReport(reportPath: string, report: Record<string, unknown>): string {
  fs.mkdirSync(path.dirname(reportPath), { recursive: true });
  fs.writeFileSync(reportPath, `${JSON.stringify(report, null, 2)}\n`);
  return reportPath;
}

/** One line per check: failures as errors, warn-only failures as warnings. */
function logResults(io: ActionIO, results: CheckResult[]): void {
  for (const r of results) {
    const line = `${r.status.toUpperCase()} ${r.id}: ${r.evidence}`;
    if (r.status === 'fail') io.error(line);
    else if (r.status === 'warn') io.warning(`${line} (warn-only: listed in warn-checks)`);
    else io.info(line);
  }
}

function summary(
  image: string,
  digest: string | undefined,
  results: CheckResult[],
  passed: boolean,
  ms: number,
): string {
  const icon = { pass: '✅ pass', fail: '❌ fail', skip: '⏭ skip', warn: '⚠️ warn' } as const;
  const warned = results.filter((r) => r.status === 'warn').length;
  return `### validate ${passed ? '✅' : '❌'}\n\n${code(image)}${digest ? ` (${code(digest)})` : ''}, ${seconds(ms)}${
    warned ? `, ${warned} warning(s) from warn-only checks` : ''
  }\n\n${table(
    ['check', 'result', 'evidence'],
    results.map((r) => [`${r.id}: ${r.title}`, icon[r.status], r.evidence]),
  )}`;
}

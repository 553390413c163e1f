import { errorMessage } from './errors.js';
import type { Logger } from './log.js';

/**
 * Uploads evidence files (serial logs, screenshots) as a workflow artifact with
 * @actions/artifact. Outside GitHub Actions (no ACTIONS_RUNTIME_TOKEN: the local runner, tests)
 * it says so and returns '' instead of failing the hop. A failed upload is a warning, never
 * the verdict.
 */
export async function uploadArtifact(
  name: string,
  files: string[],
  rootDir: string,
  log: Logger,
  retentionDays = 7,
): Promise<string> {
  if (!process.env.ACTIONS_RUNTIME_TOKEN || !process.env.ACTIONS_RESULTS_URL) {
    log.info(`artifact ${name}: not on a GitHub runner, files kept locally: ${files.join(', ')}`);
    return '';
  }
  try {
    const { DefaultArtifactClient } = await import('@actions/artifact');
    const r = await new DefaultArtifactClient().uploadArtifact(name, files, rootDir, { retentionDays });
    log.info(`uploaded artifact ${name} (${r.size ?? 0} bytes)`);
    return name;
  } catch (e) {
    log.warning(`artifact upload ${name} failed: ${errorMessage(e)}`);
    return '';
  }
}

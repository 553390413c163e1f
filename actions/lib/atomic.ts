import fs from 'node:fs';

/**
 * Writes `data` to `file` through a temporary sibling and a rename: a reader (or a re-run after
 * a crash) sees the old file or the whole new one, never half of it.
 */
export function writeFileAtomically(file: string, data: string | Buffer): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

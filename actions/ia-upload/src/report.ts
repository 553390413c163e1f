import { fmtBytes } from '../../lib/ia/client.js';
import { code, esc, seconds, table } from '../../lib/summary.js';
import type { Prepared } from './prepare.js';
import type { FileOutcome, PublishResult } from './publish.js';

/** The job summary of `ia-upload`: what was uploaded or skipped (and why), the links, the torrent. */
export function renderSummary(r: {
  identifier: string;
  prepared?: Prepared;
  result?: PublishResult;
  files: FileOutcome[];
  urls: { details: string; torrent: string; downloads: string[] };
  failure?: string;
  ms: number;
}): string {
  const parts: string[] = [`### ia-upload: ${code(r.identifier)}\n`];
  if (r.failure) parts.push(`**Failed:** ${esc(r.failure)}\n`);
  const done = new Map(r.files.map((f) => [f.name, f]));
  const rows = (r.prepared?.files ?? []).map((f) => {
    const o = done.get(f.name);
    const what =
      o?.action === 'skipped'
        ? `skipped: ${o.reason ?? 'already on IA'}`
        : o?.action === 'uploaded'
          ? `uploaded (${o.attempts} attempt${o.attempts === 1 ? '' : 's'}, ${seconds(o.ms ?? 0)}${o.ms ? `, ${fmtBytes((f.size * 1000) / o.ms)}/s` : ''})`
          : o
            ? 'upload failed'
            : 'not reached';
    return [f.name, fmtBytes(f.size), code(f.md5), what];
  });
  if (rows.length) parts.push(table(['file', 'size', 'md5', 'result'], rows));
  if (r.prepared?.sums)
    parts.push(
      `\n${code(r.prepared.sums.name)} verified against ${r.prepared.sums.verified.map(code).join(', ')} before any upload.\n`,
    );
  if (r.result) {
    const t = r.result.torrent;
    const skipped = r.result.files.filter((f) => f.action === 'skipped').length;
    parts.push(
      `\n${r.result.itemExisted ? 'Item existed' : 'Item created'}; ${fmtBytes(r.result.bytesSent)} sent` +
        `${skipped ? `; ${skipped} file(s) skipped because IA already has them with the same size and md5` : ''}` +
        `${r.result.waitedForPendingMs ? `; waited ${seconds(r.result.waitedForPendingMs)} for a previous ingest` : ''}.` +
        ` Ingest ${r.result.ingest === 'verified' ? 'verified (IA lists every file with the local md5)' : 'not yet visible in IA metadata'}.\n`,
    );
    parts.push(
      `\nTorrent: **${t.status}**${t.btih ? ` (btih ${code(t.btih)})` : ''}: ${esc(t.detail)}${r.result.deriveSubmitted ? ' (derive submitted)' : ''}\n`,
    );
  }
  parts.push(
    `\n- Details: ${r.urls.details}\n- Torrent: ${r.urls.torrent}\n${r.urls.downloads.map((u) => `- ${u}`).join('\n')}\n`,
  );
  parts.push(`\nTotal time ${seconds(r.ms)}.\n`);
  return parts.join('');
}

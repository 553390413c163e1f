import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { withFailureSummary } from '../../lib/action.js';
import { InputError, UserError, errorMessage } from '../../lib/errors.js';
import { IaClient } from '../../lib/ia/client.js';
import { identifierAdvice, identifierProblem } from '../../lib/ia/identifier.js';
import { parseMetadataLines, type ItemMetadata } from '../../lib/ia/metadata.js';
import {
  bool,
  existingPath,
  httpsUrl,
  int,
  list,
  readInputs,
  secret,
  splitList,
  type InputDef,
} from '../../lib/inputs.js';
import type { ActionIO } from '../../lib/io.js';
import { retryPolicy } from '../../lib/retry.js';
import { prepareFiles, uploadOrder, type Prepared } from './prepare.js';
import { publish, type FileOutcome, type PublishResult } from './publish.js';
import { renderSummary } from './report.js';
import { seconds } from '../../lib/summary.js';

/** A duration in seconds (decimals allowed, so tests can shrink waits), parsed to milliseconds. */
function secondsInput(opts: { default?: string; min?: number } = {}): InputDef<number | undefined> {
  const min = opts.min ?? 0;
  const expected = `a number of seconds >= ${min}`;
  return {
    schema: z.string().transform((v, ctx) => {
      const s = v.trim();
      if (s === '') return undefined;
      if (!/^\d+(\.\d+)?$/.test(s) || Number(s) < min) {
        ctx.addIssue({ code: 'custom', message: `expected ${expected}` });
        return z.NEVER;
      }
      return Math.round(Number(s) * 1000);
    }),
    expected,
    default: opts.default,
  };
}

const identifier: InputDef<string> = {
  schema: z.string().transform((v, ctx) => {
    const s = v.trim();
    const problem = identifierProblem(s);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: `not a valid Internet Archive identifier: ${problem}` });
      return z.NEVER;
    }
    return s;
  }),
  expected: 'an Internet Archive identifier',
  required: true,
};

const metadata: InputDef<ItemMetadata> = {
  schema: z.string().transform((v, ctx) => {
    try {
      return parseMetadataLines(splitList(v));
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: errorMessage(e) });
      return z.NEVER;
    }
  }),
  expected: 'newline-separated key:value lines',
};

const url = (dflt: string) =>
  httpsUrl({ default: dflt, path: 'none', expected: 'an https URL without a path (http only for loopback)' });

const isFile = (p: string) => {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
};

export const inputs = {
  identifier,
  files: {
    ...list({
      item: (p) => (isFile(p) ? undefined : 'expected an existing file'),
      expected: 'newline-separated paths of existing files',
    }),
    required: true,
  },
  metadata,
  'access-key': secret(),
  'secret-key': secret(),
  's3-endpoint': url('https://s3.us.archive.org'),
  'api-endpoint': url('https://archive.org'),
  retries: int({ default: 5, min: 0, max: 100 }),
  'torrent-timeout': secondsInput({ default: '3600' }),
  'require-torrent': bool(false),
  sha256sums: existingPath('file'),
  derive: bool(true),
  'keep-old-version': bool(false),
  'retry-base': secondsInput({ min: 0 }),
  'upload-budget': secondsInput({ default: '14400', min: 0.01 }),
  'stall-floor': int({ default: 10240, min: 0 }),
  'stall-window': secondsInput({ default: '120', min: 0.01 }),
  'poll-interval': secondsInput({ default: '30', min: 0 }),
  'pending-timeout': secondsInput({ default: '900' }),
};

/** ia-upload: publish files to an Internet Archive item, resumably, and wait for a fresh torrent. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const id = inp.identifier;
  if (!inp['access-key'])
    throw new InputError(
      'access-key',
      undefined,
      'it is required to upload (IA S3 keys: https://archive.org/account/s3.php)',
    );
  if (!inp['secret-key'])
    throw new InputError(
      'secret-key',
      undefined,
      'it is required to upload (IA S3 keys: https://archive.org/account/s3.php)',
    );
  io.setSecret(`LOW ${inp['access-key']}:${inp['secret-key']}`);
  for (const w of identifierAdvice(id)) io.warning(w);

  const api = inp['api-endpoint'].replace(/\/+$/, '');
  const download = (name: string) =>
    `${api}/download/${encodeURIComponent(id)}/${name.split('/').map(encodeURIComponent).join('/')}`;
  const out = {
    details: `${api}/details/${encodeURIComponent(id)}`,
    torrent: download(`${id}_archive.torrent`),
    // Known from the inputs alone, so they are set even when a later check fails.
    downloads: uploadOrder(inp.files, inp.sha256sums).list.map((p) => download(path.basename(p))),
  };
  const started = Date.now();
  const state: { prepared?: Prepared; result?: PublishResult; progress: FileOutcome[] } = { progress: [] };
  await withFailureSummary(
    async () => {
      // Everything local first: names, SHA256SUMS verification, hashes. No request before this.
      state.prepared = await io.group('prepare the files', () => prepareFiles(id, inp.files, inp.sha256sums, io));
      const client = new IaClient({
        s3Url: inp['s3-endpoint'],
        apiUrl: inp['api-endpoint'],
        accessKey: inp['access-key'],
        secretKey: inp['secret-key'],
        log: io,
        retry: retryPolicyOf(inp),
        stall:
          inp['stall-floor'] > 0 ? { minBytesPerSec: inp['stall-floor'], windowMs: inp['stall-window']! } : undefined,
      });
      const prepared = state.prepared;
      state.result = await io.group('publish', () =>
        publish({
          client,
          identifier: id,
          files: prepared.files,
          metadata: inp.metadata,
          derive: inp.derive,
          keepOldVersion: inp['keep-old-version'],
          torrentTimeoutMs: inp['torrent-timeout']!,
          pendingTimeoutMs: inp['pending-timeout']!,
          pollIntervalMs: inp['poll-interval']!,
          log: io,
          progress: state.progress,
        }),
      );
      const problem = torrentProblem(state.result.torrent, inp['torrent-timeout']!, api, id, out.torrent);
      if (problem && inp['require-torrent']) throw new UserError(problem);
      if (problem) io.warning(problem);
    },
    async (failure) => {
      const { result } = state;
      const ready = result?.torrent.status === 'ready';
      const files = result?.files ?? state.progress;
      const named = (action: FileOutcome['action']) =>
        files
          .filter((f) => f.action === action)
          .map((f) => f.name)
          .join('\n');
      io.setOutput('details-url', out.details);
      io.setOutput('download-urls', out.downloads.join('\n'));
      io.setOutput('torrent-url', out.torrent);
      io.setOutput('torrent-ready', String(ready));
      io.setOutput('torrent-status', result?.torrent.status ?? 'pending');
      io.setOutput('btih', ready ? (result?.torrent.btih ?? '') : '');
      io.setOutput('uploaded', named('uploaded'));
      io.setOutput('skipped', named('skipped'));
      await io.summary(
        renderSummary({
          identifier: id,
          prepared: state.prepared,
          result,
          files,
          urls: out,
          failure,
          ms: Date.now() - started,
        }),
      );
    },
  );
}

/**
 * The retry policy of uploads and API calls: attempts from `retries`, backoff from `retry-base`
 * (default 30 s, or KEEL_RETRY_BASE_MS when set), capped waits, and the upload budget as deadline.
 */
function retryPolicyOf(inp: { retries: number; 'upload-budget'?: number; 'retry-base'?: number }) {
  const envBase = process.env.KEEL_RETRY_BASE_MS;
  return retryPolicy({
    attempts: inp.retries + 1,
    maxMs: 600_000,
    maxRetryAfterMs: 900_000,
    deadline: Date.now() + inp['upload-budget']!,
    ...(inp['retry-base'] !== undefined ? { baseMs: inp['retry-base'] } : envBase ? {} : { baseMs: 30_000 }),
  });
}

/** Why the torrent is not usable yet (undefined when it is ready). */
function torrentProblem(
  t: PublishResult['torrent'],
  timeoutMs: number,
  api: string,
  id: string,
  torrentUrl: string,
): string | undefined {
  if (t.status === 'ready') return undefined;
  if (t.status === 'disabled') return `no torrent: ${t.detail}`;
  if (t.status === 'error') return `torrent not ready: ${t.detail} (${api}/history/${id})`;
  return `torrent not ready after ${seconds(timeoutMs)}: ${t.detail}. IA's queue can take hours; ${torrentUrl} will work once the derive finishes`;
}

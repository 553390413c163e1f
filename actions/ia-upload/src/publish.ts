import { UserError, errorMessage, isTransient } from '../../lib/errors.js';
import type { IaClient, IaFile, ItemRecord, TaskSummary } from '../../lib/ia/client.js';
import { asList, metadataDifferences, metadataHeaders, type ItemMetadata } from '../../lib/ia/metadata.js';
import { parseTorrent } from '../../lib/ia/torrent.js';
import type { Logger } from '../../lib/log.js';
import { RetryExhaustedError, sleep as realSleep } from '../../lib/retry.js';

/**
 * The publish flow of `ia-upload`, free of runner I/O: preflight (MDAPI, identifier
 * availability), per-file skip decisions (same size and md5 already on IA), waiting for a
 * previous run's ingest instead of duplicating it, sequential uploads (metadata on the first
 * PUT, derive only on the last, size-hint = total), then polling MDAPI until IA lists every
 * file with the right md5 and `<id>_archive.torrent` is fresh: downloaded, decoded, listing
 * every file with its length, its info-hash equal to MDAPI's btih, and newer than the upload.
 */
export interface LocalFile {
  /** Remote name (the basename: IA items are served flat). */
  name: string;
  path: string;
  size: number;
  md5: string;
}

export type TorrentStatus = 'ready' | 'pending' | 'error' | 'disabled';

export interface FileOutcome extends LocalFile {
  action: 'uploaded' | 'skipped' | 'not-uploaded';
  reason?: string;
  attempts?: number;
  bytesSent?: number;
  ms?: number;
}

export interface PublishResult {
  itemExisted: boolean;
  files: FileOutcome[];
  bytesSent: number;
  /** IA lists every file with the local md5. */
  ingest: 'verified' | 'pending';
  torrent: { status: TorrentStatus; btih?: string; detail: string };
  deriveSubmitted: boolean;
  waitedForPendingMs: number;
}

export interface PublishOptions {
  client: IaClient;
  identifier: string;
  /** In upload order (SHA256SUMS last). */
  files: LocalFile[];
  metadata: ItemMetadata;
  derive: boolean;
  keepOldVersion: boolean;
  torrentTimeoutMs: number;
  /** How long to wait for a previous run's pending ingest before uploading anyway. */
  pendingTimeoutMs: number;
  pollIntervalMs: number;
  log: Logger;
  /** Outcomes are pushed here as they happen, so a failure still reports what was done. */
  progress?: FileOutcome[];
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  random?: () => number;
}

/** A failed read while polling: logged, and the poll goes on until its own deadline. */
const pollable = (e: unknown) => isTransient(e) || e instanceof RetryExhaustedError;

const pendingCount = (s: TaskSummary | undefined) => (s ? s.queued + s.running + s.paused : 0);

/** Does MDAPI list this file with the local size and md5? */
export function matches(remote: IaFile | undefined, f: LocalFile): boolean {
  return !!remote && remote.md5 === f.md5 && Number(remote.size) === f.size;
}

function why(remote: IaFile | undefined, f: LocalFile): string {
  if (!remote) return 'not on IA yet';
  if (Number(remote.size) !== f.size) return `IA has ${remote.size} bytes, local ${f.size}`;
  return `IA has md5 ${remote.md5}, local ${f.md5}`;
}

/** What the phases of one publication share. */
interface Publication {
  o: PublishOptions;
  id: string;
  log: Logger;
  now: () => number;
  /** The poll interval (jittered), cut short at `deadline`: no wait crosses the phase's budget. */
  pollWait: (deadline: number) => Promise<void>;
  summaryOf: (ia?: IaClient) => Promise<TaskSummary | undefined>;
}

export async function publish(o: PublishOptions): Promise<PublishResult> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? realSleep;
  const random = o.random ?? Math.random;
  const p: Publication = {
    o,
    id: o.identifier,
    log: o.log,
    now,
    pollWait: (deadline) =>
      sleep(Math.max(0, Math.min(Math.round(o.pollIntervalMs * (0.8 + 0.4 * random())), deadline - now()))),
    summaryOf: async (ia = o.client) => {
      try {
        return await ia.taskSummary(o.identifier);
      } catch (e) {
        o.log.debug(`task summary of ${o.identifier} unavailable: ${errorMessage(e)}`);
        return undefined;
      }
    },
  };
  const outcomes: FileOutcome[] = o.progress ?? [];
  const pre = await preflight(p);
  const { item, todo, waitedForPendingMs } = await decideUploads(p, pre.item);
  for (const f of o.files) {
    if (!todo.includes(f)) {
      outcomes.push({ ...f, action: 'skipped', reason: `already on IA with the same size and md5` });
      p.log.info(`${f.name}: already on IA with the same size and md5; skipped`);
    } else if (pre.itemExisted || waitedForPendingMs) {
      p.log.info(`${f.name}: uploading (${why(remoteOf(item, f.name), f)})`);
    }
  }
  const uploads = await uploadFiles(p, todo, outcomes);
  const proof = await awaitTorrent(p, item, uploads);
  return {
    itemExisted: pre.itemExisted,
    files: outcomes,
    bytesSent: uploads.bytesSent,
    ingest: proof.ingest,
    torrent: proof.torrent,
    deriveSubmitted: proof.deriveSubmitted,
    waitedForPendingMs,
  };
}

const remoteOf = (rec: ItemRecord | undefined, name: string) => rec?.files?.find((f) => f.name === name);

/** MDAPI and identifier availability: refuses a dark item or an identifier that belongs to someone else. */
async function preflight(p: Publication): Promise<{ item: ItemRecord | undefined; itemExisted: boolean }> {
  const { o, id, log } = p;
  const item = await o.client.getItem(id);
  if (item?.is_dark)
    throw new UserError(
      `${id} is a dark (withdrawn) item on IA; it cannot be published to. Choose another identifier.`,
    );
  if (!item) {
    const code = await o.client.checkIdentifier(id).catch((e: unknown) => {
      log.debug(`check_identifier failed: ${errorMessage(e)}`);
      return undefined;
    });
    if (code === 'not_available') {
      const s = await p.summaryOf();
      if (pendingCount(s) === 0) {
        throw new UserError(
          `identifier ${id} is not available on IA (reserved or owned by another account) and shows no public item: choose another identifier`,
        );
      }
      log.info(
        `${id} is not public yet but has ${pendingCount(s)} catalog task(s) pending: a previous upload is still being ingested`,
      );
    }
  } else {
    log.info(`${id} exists on IA (${item.files?.length ?? 0} files)`);
    const diff = metadataDifferences(o.metadata, item.metadata);
    if (diff.length) {
      log.warning(
        `${id} already exists; IA applies upload metadata only when an item is created, so these keys keep their current values: ${diff.join(', ')}`,
      );
    }
  }
  return { item, itemExisted: !!item };
}

/**
 * Ingest tasks (archive.php) queued or running: a previous run's PUT IA has not processed yet.
 * A pending derive alone is no reason to wait. Without a task list, any pending task counts.
 */
async function pendingIngests(p: Publication, rec: ItemRecord | undefined, ia: IaClient): Promise<number> {
  try {
    const rows = await ia.pendingTasks(p.id);
    if (rows) return rows.filter((r) => r.cmd === 'archive.php').length;
  } catch (e) {
    p.log.debug(`catalog tasks of ${p.id} unavailable: ${errorMessage(e)}`);
  }
  const hint = rec?.tasks && (!Array.isArray(rec.tasks) || rec.tasks.length) ? 1 : 0;
  return pendingCount(await p.summaryOf(ia)) || hint;
}

/**
 * The files to upload: those IA does not list with the same size and md5. When a previous run's
 * ingest is still pending, waits for it (up to pending-timeout) instead of uploading twice.
 */
async function decideUploads(
  p: Publication,
  first: ItemRecord | undefined,
): Promise<{ item: ItemRecord | undefined; todo: LocalFile[]; waitedForPendingMs: number }> {
  const { o, id, log, now } = p;
  let item = first;
  let todo = o.files.filter((f) => !matches(remoteOf(item, f.name), f));
  if (!todo.length) return { item, todo, waitedForPendingMs: 0 };
  const pending = await pendingIngests(p, item, o.client);
  if (pending === 0) return { item, todo, waitedForPendingMs: 0 };
  const t0 = now();
  const deadline = t0 + o.pendingTimeoutMs;
  const waiting = o.client.withDeadline(deadline);
  log.info(
    `${id} has ${pending} ingest task(s) pending (a previous upload is still being processed); waiting up to ${(o.pendingTimeoutMs / 1000).toFixed(0)} s before uploading ${todo.map((f) => f.name).join(', ')}`,
  );
  for (;;) {
    if (now() >= deadline) {
      log.warning(
        `${id} still has ingest tasks pending after ${(o.pendingTimeoutMs / 1000).toFixed(0)} s; uploading what IA does not list`,
      );
      break;
    }
    await p.pollWait(deadline);
    try {
      item = (await waiting.getItem(id)) ?? item;
    } catch (e) {
      if (!pollable(e)) throw e;
      log.debug(`metadata poll failed: ${errorMessage(e)}`);
      continue;
    }
    todo = o.files.filter((f) => !matches(remoteOf(item, f.name), f));
    if (!todo.length) break;
    if ((await pendingIngests(p, item, waiting)) === 0) break;
  }
  return { item, todo, waitedForPendingMs: now() - t0 };
}

interface Uploads {
  uploadedAny: boolean;
  bytesSent: number;
  /** Freshness reference for the torrent (seconds): IA's clock at the last PUT, minus a minute of skew. */
  freshAfter?: number;
}

/** Sequential PUTs: metadata on the first, derive queued only on the last, size-hint = the total. */
async function uploadFiles(p: Publication, todo: LocalFile[], outcomes: FileOutcome[]): Promise<Uploads> {
  const { o, id, log, now } = p;
  const total = o.files.reduce((n, f) => n + f.size, 0);
  let bytesSent = 0;
  let lastServerDate: number | undefined;
  for (let i = 0; i < todo.length; i++) {
    const f = todo[i]!;
    const last = i === todo.length - 1;
    const headers: Record<string, string> = {
      'x-archive-auto-make-bucket': '1',
      'x-archive-keep-old-version': o.keepOldVersion ? '1' : '0',
      'x-archive-size-hint': String(total),
      'x-archive-queue-derive': last && o.derive ? '1' : '0',
      ...(i === 0 ? metadataHeaders(o.metadata) : {}),
    };
    log.info(`PUT ${f.name} (${f.size} bytes, md5 ${f.md5})${last && o.derive ? ', derive queued after it' : ''}`);
    const outcome: FileOutcome = { ...f, action: 'not-uploaded' };
    outcomes.push(outcome);
    const r = await o.client.putFile(id, f, headers);
    Object.assign(outcome, { action: 'uploaded', attempts: r.attempts, bytesSent: r.bytesSent, ms: r.ms });
    bytesSent += r.bytesSent;
    lastServerDate = r.serverDate ?? lastServerDate;
    log.info(
      `${f.name}: uploaded in ${(r.ms / 1000).toFixed(1)} s (${r.attempts} attempt${r.attempts === 1 ? '' : 's'})`,
    );
  }
  const uploadedAny = todo.length > 0;
  return {
    uploadedAny,
    bytesSent,
    freshAfter: uploadedAny ? Math.floor(((lastServerDate ?? now()) - 60_000) / 1000) : undefined,
  };
}

interface TorrentProof {
  ingest: PublishResult['ingest'];
  torrent: PublishResult['torrent'];
  deriveSubmitted: boolean;
}

/**
 * Polls MDAPI until IA lists every file with the local md5 and `<id>_archive.torrent` is fresh
 * (downloaded, decoded, listing every file with its length, its info-hash equal to MDAPI's
 * btih, newer than the upload), the catalog shows an error, or torrent-timeout runs out.
 */
async function awaitTorrent(p: Publication, item: ItemRecord | undefined, up: Uploads): Promise<TorrentProof> {
  const { o, id, log, now } = p;
  const wanted = new Map(o.files.map((f) => [f.name, f]));
  const torrentName = `${id}_archive.torrent`;
  const disabled = [...asList(item?.metadata?.noarchivetorrent), ...(o.metadata.get('noarchivetorrent') ?? [])].some(
    (v) => /^(1|true|yes)$/i.test(v.trim()),
  );
  const deadline = now() + o.torrentTimeoutMs;
  // Every read of this phase, retries included, ends by the torrent deadline.
  const polling = o.client.withDeadline(deadline);
  const proof: TorrentProof = { ingest: 'pending', torrent: { status: 'pending', detail: '' }, deriveSubmitted: false };
  let lastBtihChecked: string | undefined;

  for (;;) {
    let files: IaFile[] | undefined;
    try {
      files = await polling.getFiles(id);
    } catch (e) {
      if (!pollable(e)) throw e;
      log.debug(`metadata poll failed: ${errorMessage(e)}`);
    }
    if (files) {
      const byName = new Map(files.map((f) => [f.name, f]));
      const missing = [...wanted.values()].filter((f) => !matches(byName.get(f.name), f));
      if (missing.length === 0) {
        if (proof.ingest !== 'verified') log.info(`IA lists all ${wanted.size} file(s) with the local size and md5`);
        proof.ingest = 'verified';
      } else {
        proof.torrent = {
          status: 'pending',
          detail: `IA does not list ${missing.map((f) => `${f.name} (${why(byName.get(f.name), f)})`).join(', ')} yet`,
        };
      }
      if (proof.ingest === 'verified') {
        if (disabled) {
          proof.torrent = { status: 'disabled', detail: 'the item sets noarchivetorrent: IA makes no torrent' };
          break;
        }
        const row = byName.get(torrentName);
        if (!row) proof.torrent = { status: 'pending', detail: `${torrentName} does not exist yet` };
        else if (up.freshAfter !== undefined && row.mtime && Number(row.mtime) < up.freshAfter) {
          proof.torrent = { status: 'pending', detail: `${torrentName} predates this upload (mtime ${row.mtime})` };
        } else if (!row.btih || row.btih !== lastBtihChecked) {
          lastBtihChecked = row.btih;
          const verdict = await checkTorrent(polling, id, wanted, row.btih).catch((e: unknown) => {
            if (!pollable(e)) throw e;
            return `could not be downloaded (${errorMessage(e)})`;
          });
          if (verdict === undefined) {
            proof.torrent = {
              status: 'ready',
              btih: row.btih,
              detail: `${torrentName} lists every file with its length`,
            };
            log.info(`torrent ready: ${torrentName}${row.btih ? ` (btih ${row.btih})` : ''}`);
            break;
          }
          if (/could not be downloaded/.test(verdict)) lastBtihChecked = undefined;
          proof.torrent = { status: 'pending', detail: `${torrentName} is stale: ${verdict}` };
          log.info(proof.torrent.detail);
        }
      }
    }

    const summary = await p.summaryOf(polling);
    if (summary && summary.error > 0) {
      proof.torrent = {
        status: 'error',
        detail: `IA's catalog shows ${summary.error} task(s) in error for ${id} (derive failed?); see the item's history page`,
      };
      break;
    }
    if (!o.derive && proof.ingest === 'verified') {
      // Without a derive IA does not regenerate the torrent: report what is there, do not wait.
      proof.torrent.detail = `${proof.torrent.detail}; derive is off, so IA will not regenerate the torrent`;
      break;
    }
    // Nothing uploaded (every file skipped) but the torrent is missing or stale: ask for a derive once.
    if (
      o.derive &&
      !up.uploadedAny &&
      !proof.deriveSubmitted &&
      proof.ingest === 'verified' &&
      proof.torrent.status === 'pending' &&
      pendingCount(summary) === 0
    ) {
      proof.deriveSubmitted = true;
      await submitDerive(p, polling);
    }
    if (now() >= deadline) break;
    await p.pollWait(deadline);
  }
  return proof;
}

/** Queues a derive (which regenerates the torrent); a failure is a warning: the files are published. */
async function submitDerive(p: Publication, ia: IaClient): Promise<void> {
  try {
    const r = await ia.submitDerive(p.id);
    p.log.info(
      r === 'queued'
        ? `queued a derive of ${p.id} to regenerate the torrent`
        : `a derive of ${p.id} is already queued or running`,
    );
  } catch (e) {
    p.log.warning(
      `could not queue a derive of ${p.id} (the files are published; only the torrent waits on it): ${errorMessage(e)}`,
    );
  }
}

/** Downloads and decodes the torrent; undefined when it is fresh, else why not. */
async function checkTorrent(
  client: IaClient,
  id: string,
  wanted: Map<string, LocalFile>,
  btih: string | undefined,
): Promise<string | undefined> {
  const bytes = await client.downloadTorrent(id);
  if (!bytes) return 'not downloadable yet (404)';
  let t;
  try {
    t = parseTorrent(bytes);
  } catch (e) {
    return `not a valid torrent (${errorMessage(e)})`;
  }
  if (btih && t.infoHash !== btih.toLowerCase()) return `its info-hash ${t.infoHash} differs from MDAPI's btih ${btih}`;
  const byPath = new Map(t.files.map((f) => [f.path, f.length]));
  for (const f of wanted.values()) {
    const len = byPath.get(f.name);
    if (len === undefined) return `it does not list ${f.name}`;
    if (len !== f.size) return `it lists ${f.name} with ${len} bytes, not ${f.size}`;
  }
  return undefined;
}

import fs from 'node:fs';
import type { getOctokit } from '@actions/github';
import { UserError } from './errors.js';
import { isValidYmd } from './inputs.js';
import type { Logger } from './log.js';
import { releaseTag } from './tags.js';

/**
 * The GitHub Release of a promotion: `stable.<YYYYMMDD>` with the changelog as its notes.
 * Created when missing, updated when its notes differ, left alone when they are the same, so a
 * re-run of the promotion (or a retried request whose first answer was lost) never makes a
 * second release. The Octokit is the caller's (with Keel's retry policy around its requests).
 */
export type Octokit = ReturnType<typeof getOctokit>;

/** GitHub refuses release bodies longer than this. */
export const MAX_RELEASE_BODY = 125_000;

export interface StableReleaseRequest {
  /** owner/name */
  repository: string;
  releaseDate: string;
  /** The stable tag stem (default `stable`). */
  stableTag?: string;
  /** The release notes (the changelog's Markdown). */
  notes: string;
  /** The commit the git tag is created on when it does not exist yet (default: the default branch). */
  targetCommitish?: string;
}

export interface StableRelease {
  tag: string;
  id: number;
  htmlUrl: string;
  action: 'created' | 'updated' | 'unchanged';
}

const statusOf = (err: unknown) => (err as { status?: unknown } | null)?.status;

/** Notes that fit GitHub's limit: cut at a line end, with a note saying so. */
export function fitNotes(notes: string, limit = MAX_RELEASE_BODY): string {
  if (notes.length <= limit) return notes;
  const tail = '\n\n… (truncated: the full changelog is in the changelog artifact of the run)\n';
  const cut = notes.lastIndexOf('\n', limit - tail.length);
  return notes.slice(0, cut > 0 ? cut : limit - tail.length) + tail;
}

export async function publishStableRelease(
  octokit: Octokit,
  req: StableReleaseRequest,
  log: Logger,
): Promise<StableRelease> {
  const [owner, repo] = req.repository.split('/');
  if (!owner || !repo || req.repository.split('/').length !== 2)
    throw new UserError(`the repository must be owner/name, got ${JSON.stringify(req.repository)}`);
  if (!isValidYmd(req.releaseDate))
    throw new UserError(`the release date must be YYYYMMDD, got ${JSON.stringify(req.releaseDate)}`);
  const tag = releaseTag(req.releaseDate, req.stableTag);
  const body = fitNotes(req.notes);
  const done = (r: { id: number; html_url: string }, action: StableRelease['action']): StableRelease => {
    log.info(`GitHub Release ${tag}: ${action} (${r.html_url})`);
    return { tag, id: r.id, htmlUrl: r.html_url, action };
  };
  const existing = await getByTag(octokit, owner, repo, tag);
  if (existing) return done(existing, await updateIfNeeded(octokit, owner, repo, existing, tag, body));
  try {
    const created = await octokit.rest.repos.createRelease({
      owner,
      repo,
      tag_name: tag,
      name: tag,
      body,
      ...(req.targetCommitish ? { target_commitish: req.targetCommitish } : {}),
    });
    return done(created.data, 'created');
  } catch (err) {
    // A concurrent run, or our own earlier attempt whose answer was lost, created it: update that.
    if (statusOf(err) !== 422) throw err;
    const raced = await getByTag(octokit, owner, repo, tag);
    if (!raced) throw err;
    return done(raced, await updateIfNeeded(octokit, owner, repo, raced, tag, body));
  }
}

async function getByTag(octokit: Octokit, owner: string, repo: string, tag: string) {
  try {
    return (await octokit.rest.repos.getReleaseByTag({ owner, repo, tag })).data;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

async function updateIfNeeded(
  octokit: Octokit,
  owner: string,
  repo: string,
  current: { id: number; name: string | null; body?: string | null },
  tag: string,
  body: string,
): Promise<StableRelease['action']> {
  if (current.body === body && current.name === tag) return 'unchanged';
  await octokit.rest.repos.updateRelease({ owner, repo, release_id: current.id, name: tag, body });
  return 'updated';
}

/** Bytes of a notes file read at most: far above what GitHub keeps (fitNotes cuts the rest). */
const MAX_NOTES_READ = 4 * MAX_RELEASE_BODY;

/**
 * The release notes from the changelog's Markdown file. A missing, unreadable or empty file is
 * not a reason to fail a promotion: the notes then say the changelog was not available (and
 * where the run is), and `available` is false so the caller can warn.
 */
export function releaseNotesFrom(file: string, runUrl?: string): { notes: string; available: boolean } {
  let text = '';
  if (file !== '') {
    try {
      const fd = fs.openSync(file, 'r');
      try {
        const buf = Buffer.alloc(MAX_NOTES_READ);
        text = buf.subarray(0, fs.readSync(fd, buf, 0, MAX_NOTES_READ, 0)).toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      text = '';
    }
  }
  if (text.trim() !== '') return { notes: text, available: true };
  const where = runUrl ? ` See the run: ${runUrl}` : '';
  return { notes: `The changelog was not available for this release.${where}\n`, available: false };
}

import { UserError } from './errors.js';
import { isValidYmd } from './inputs.js';
import type { RunContext } from './context.js';

/**
 * Keel's tag grammar — the only place tags are computed (push and promote call it):
 *   push on main / schedule / dispatch → <candidate>, <candidate>.<YYYYMMDD>
 *   pull_request (only with the vm-test label) → pr-<N>, nothing else
 *   promotion (only after a passed boot) → <stable>, <stable>.<YYYYMMDD>, <YYYYMMDD>
 * Never `latest`. The release date is computed once per run and passed along.
 */
export type Stream = 'candidate' | 'pr';

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** UTC YYYYMMDD of an instant. */
export function releaseDateOf(now: Date): string {
  return now.toISOString().slice(0, 10).replace(/-/g, '');
}

/** Checks a tag is syntactically valid and not `latest`; returns the reason when it is not. */
export function tagProblem(tag: string): string | undefined {
  if (!TAG.test(tag)) return 'a tag is 1-128 characters of [A-Za-z0-9_.-], not starting with . or -';
  if (tag === 'latest') return "Keel never writes 'latest' (it hides which build a client runs)";
  return undefined;
}

export function streamFromEvent(eventName: string): Stream {
  switch (eventName) {
    case 'push':
    case 'schedule':
    case 'workflow_dispatch':
    case 'workflow_call':
    case 'workflow_run':
    case 'merge_group':
      return 'candidate';
    case 'pull_request':
    case 'pull_request_target':
      return 'pr';
    default:
      throw new UserError(
        `cannot derive the tag stream from event '${eventName}': set the stream input (candidate or pr)`,
      );
  }
}

export interface PullRequestInfo {
  number: number;
  labels: string[];
}

/** The pull request of a pull_request event payload, if any. */
export function pullRequestOf(ctx: Pick<RunContext, 'event'>): PullRequestInfo | undefined {
  const pr = ctx.event.pull_request as { number?: unknown; labels?: { name?: unknown }[] } | undefined;
  const num =
    typeof pr?.number === 'number' ? pr.number : typeof ctx.event.number === 'number' ? ctx.event.number : undefined;
  if (num === undefined) return undefined;
  const labels = (pr?.labels ?? []).map((l) => String(l.name ?? '')).filter(Boolean);
  return { number: num, labels };
}

export interface BuildTagRequest {
  stream: Stream;
  releaseDate: string;
  candidateTag?: string;
  pr?: PullRequestInfo;
  /** Label a PR must carry to get a pushed pr-<N> image. */
  prLabel?: string;
}

/** Tags written by a build push. Refuses (UserError) a PR without the label, saying why. */
export function buildTags(req: BuildTagRequest): string[] {
  const label = req.prLabel ?? 'vm-test';
  if (req.stream === 'pr') {
    if (!req.pr) throw new UserError('stream is pr but the event carries no pull request number');
    if (!req.pr.labels.includes(label)) {
      throw new UserError(
        `refusing to push: pull request #${req.pr.number} does not carry the '${label}' label ` +
          `(only labelled PRs get a pr-${req.pr.number} image, so unreviewed code never reaches the registry)`,
      );
    }
    return [`pr-${req.pr.number}`];
  }
  const c = req.candidateTag ?? 'candidate';
  const problem = tagProblem(c);
  if (problem) throw new UserError(`candidate tag '${c}': ${problem}`);
  return checked([c, `${c}.${req.releaseDate}`]);
}

/** Tags written by a promotion after a passed boot. */
export function promotionTags(releaseDate: string, stable = 'stable'): string[] {
  return checked([stable, releaseTag(releaseDate, stable), releaseDate]);
}

/** The dated stable tag of a release, `<stable>.<YYYYMMDD>` (also the GitHub Release's tag). */
export function releaseTag(releaseDate: string, stable = 'stable'): string {
  return checked([`${stable}.${releaseDate}`])[0]!;
}

function checked(tags: string[]): string[] {
  for (const t of tags) {
    const p = tagProblem(t);
    if (p) throw new UserError(`tag '${t}': ${p}`);
  }
  return tags;
}

/** The words of a repository's moving tags (defaults: `stable`, `candidate`). */
export interface TagWords {
  stable?: string;
  candidate?: string;
}

/**
 * What a tag found in a repository is, in Keel's grammar:
 *   stable / stable.<date> / <date>     → the released stream
 *   candidate / candidate.<date>        → the candidate stream
 *   pr-<N>                              → a pull request image
 *   sha256-<hex>[.<suffix>]             → cosign's signature/attestation/SBOM tags and the
 *                                         referrers fallback index, all about `subject`
 *   anything else                       → other (never Keel's)
 * Dates must be real calendar days; `candidate.2026x` is "other", not a candidate.
 */
export type ParsedTag =
  | { kind: 'stable' | 'candidate' }
  | { kind: 'stable-dated' | 'candidate-dated' | 'date'; date: string }
  | { kind: 'pr'; pr: number }
  | { kind: 'attachment'; subject: string; suffix: string }
  | { kind: 'other' };

const PR_TAG = /^pr-([1-9]\d{0,9})$/;
const ATTACHMENT_TAG = /^sha256-([a-f0-9]{64})(?:\.([A-Za-z0-9_-]+))?$/;

export function parseTag(tag: string, words: TagWords = {}): ParsedTag {
  const stable = words.stable ?? 'stable';
  const candidate = words.candidate ?? 'candidate';
  if (tag === stable) return { kind: 'stable' };
  if (tag === candidate) return { kind: 'candidate' };
  if (isValidYmd(tag)) return { kind: 'date', date: tag };
  for (const [word, kind] of [
    [stable, 'stable-dated'],
    [candidate, 'candidate-dated'],
  ] as const) {
    const date = tag.startsWith(`${word}.`) ? tag.slice(word.length + 1) : undefined;
    if (date !== undefined && isValidYmd(date)) return { kind, date };
  }
  const pr = PR_TAG.exec(tag);
  if (pr) return { kind: 'pr', pr: Number(pr[1]) };
  const att = ATTACHMENT_TAG.exec(tag);
  if (att) return { kind: 'attachment', subject: `sha256:${att[1]}`, suffix: att[2] ?? '' };
  return { kind: 'other' };
}

/** Whole days from `from` to `to` (both UTC YYYYMMDD); negative when `from` is later. */
export function daysBetween(from: string, to: string): number {
  const ms = (ymd: string) => Date.UTC(Number(ymd.slice(0, 4)), Number(ymd.slice(4, 6)) - 1, Number(ymd.slice(6, 8)));
  return Math.round((ms(to) - ms(from)) / 86_400_000);
}

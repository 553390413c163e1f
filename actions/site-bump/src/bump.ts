import { errorMessage, InputError, UserError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import {
  applyEdits,
  findDefinitions,
  isSearchable,
  mentions,
  valueProblem,
  type ConstantSpec,
  type Definition,
} from './constants.js';
import { api, apiFailure, githubMessage, orMissing, statusOf, type Octokit } from '../../lib/github.js';
import { mapLimit } from '../../lib/pool.js';

/**
 * The site bump over the GitHub API: locate each constant's single definition at the tip of
 * `base`, decide (up-to-date / exists / created), and when something changes write exactly one
 * commit holding exactly the edited files on `<branch-prefix><value>`, open the PR and enable
 * auto-merge. Every decision is made from the repository's state, so a re-run is safe: after a
 * merge it is up-to-date, with the PR still open it is `exists`, after a half-finished run
 * (branch created, PR not) it finishes the job.
 */
export interface BumpRequest {
  owner: string;
  repo: string;
  /** The first is the primary constant (`constant`/`value`), the rest `extra-constants`. */
  constants: (ConstantSpec & { input: string })[];
  /** Candidate paths, searched first; empty: search the repository. */
  files: string[];
  base: string;
  branch: string;
  autoMerge: boolean;
  mergeMethod: 'squash' | 'merge' | 'rebase';
  graphqlUrl: string;
  /** Link to the run that made the release, for the PR body. */
  runUrl?: string;
  /** Upper bound on files read when searching the whole repository. */
  maxSearchFiles?: number;
}

export interface Change {
  name: string;
  path: string;
  line: number;
  from: string;
  to: string;
  changed: boolean;
}

export interface PullRef {
  number: number;
  url: string;
}

export type BumpOutcome =
  | { result: 'up-to-date'; changes: Change[]; baseSha: string }
  | { result: 'exists'; changes: Change[]; baseSha: string; pr: PullRef }
  | {
      result: 'created';
      changes: Change[];
      baseSha: string;
      pr: PullRef;
      commitSha: string;
      autoMerge: 'enabled' | 'refused' | 'off';
      autoMergeMessage?: string;
    };

interface TreeEntry {
  path: string;
  mode: string;
  type: string;
  sha: string;
  size?: number;
}

const where = (d: Definition) => `${d.path}:${d.line}`;

export async function bump(octokit: Octokit, req: BumpRequest, log: Logger): Promise<BumpOutcome> {
  const site = await readBase(octokit, req, log);
  const chosen = chooseDefinitions(site, req, await locateDefinitions(site, req, log), log);
  const { baseSha } = site;
  const changes: Change[] = chosen.map(({ spec, def }) => ({
    name: spec.name,
    path: def.path,
    line: def.line,
    from: def.value,
    to: spec.value,
    changed: def.value !== spec.value,
  }));
  for (const ch of changes)
    log.info(
      `${ch.name} in ${ch.path}:${ch.line} = ${JSON.stringify(ch.from)}${ch.changed ? ` → ${JSON.stringify(ch.to)}` : ' (unchanged)'}`,
    );
  if (!changes.some((c) => c.changed)) {
    log.info(
      `${site.full}@${req.base} already has ${changes.map((c) => `${c.name}=${c.to}`).join(', ')}: nothing to do`,
    );
    return { result: 'up-to-date', changes, baseSha };
  }
  // An open PR from our branch already carries this bump.
  const existing = await findOpenPull(octokit, req.owner, req.repo, req.branch);
  if (existing) {
    log.info(`pull request #${existing.number} from ${req.branch} is already open: ${existing.url}`);
    return { result: 'exists', changes, baseSha, pr: existing };
  }
  const primary = req.constants[0]!;
  const title = pullTitle(changes, primary);
  const commitSha = await writeCommit(site, req, chosen, `${title}\n\n${commitBody(changes, req.runUrl)}`, log);
  await pointBranch(site, req, commitSha, log);
  const pr = await openPull(site, req, title, pullBody(changes, primary, req.runUrl), log);
  const created = { result: 'created' as const, changes, baseSha, pr: strip(pr), commitSha };
  if (!req.autoMerge) return { ...created, autoMerge: 'off' };
  try {
    await enableAutoMerge(octokit, req.graphqlUrl, pr.nodeId, req.mergeMethod);
    log.info(`auto-merge (${req.mergeMethod}) enabled on #${pr.number}`);
    return { ...created, autoMerge: 'enabled' };
  } catch (err) {
    const message = graphqlMessage(err);
    log.warning(
      `could not enable auto-merge on #${pr.number} (${message}); the pull request stays open for a manual merge: ${pr.url}`,
    );
    return { ...created, autoMerge: 'refused', autoMergeMessage: message };
  }
}

/** The site repository at the tip of `base`: every read is pinned to this one commit. */
interface SiteSnapshot {
  octokit: Octokit;
  owner: string;
  repo: string;
  full: string;
  base: string;
  baseSha: string;
  baseTree: string;
  tree: Map<string, TreeEntry>;
  /** The tree listing was cut short (a very large repository): paths not in it may still exist. */
  truncated: boolean;
  /** Every file read so far (undefined: not a file at that path). */
  texts: Map<string, string | undefined>;
}

async function readBase(octokit: Octokit, req: BumpRequest, log: Logger): Promise<SiteSnapshot> {
  const { owner, repo, base } = req;
  const full = `${owner}/${repo}`;
  await api(
    `GET repository ${full}`,
    () => octokit.rest.repos.get({ owner, repo }),
    () => new UserError(`repository ${full} does not exist, or the token cannot read it`),
  );
  const baseRef = await api(
    `GET branch ${base} of ${full}`,
    () => octokit.rest.git.getRef({ owner, repo, ref: `heads/${base}` }),
    () => new UserError(`base branch '${base}' does not exist in ${full}`),
  );
  const baseSha = baseRef.data.object.sha;
  const baseCommit = await api(`GET commit ${baseSha}`, () =>
    octokit.rest.git.getCommit({ owner, repo, commit_sha: baseSha }),
  );
  const baseTree = baseCommit.data.tree.sha;
  log.info(`${full}@${base} is at ${baseSha.slice(0, 12)}`);
  const treeRes = await api(`GET tree of ${full}@${base}`, () =>
    octokit.rest.git.getTree({ owner, repo, tree_sha: baseTree, recursive: 'true' }),
  );
  const tree = new Map<string, TreeEntry>();
  for (const e of treeRes.data.tree) {
    if (e.path && e.sha && e.type)
      tree.set(e.path, { path: e.path, mode: e.mode ?? '100644', type: e.type, sha: e.sha, size: e.size });
  }
  const truncated = Boolean(treeRes.data.truncated);
  if (truncated)
    log.warning(`the tree of ${full}@${base} is too large to list completely; the search may miss files (set 'files')`);
  return { octokit, owner, repo, full, base, baseSha, baseTree, tree, truncated, texts: new Map() };
}

async function readBlob(site: SiteSnapshot, sha: string, path: string): Promise<string> {
  const { octokit, owner, repo } = site;
  const b = await api(`GET blob ${path}`, () => octokit.rest.git.getBlob({ owner, repo, file_sha: sha }));
  return Buffer.from(b.data.content, (b.data.encoding as BufferEncoding) || 'base64').toString('utf8');
}

/** A candidate file's text at the base commit; undefined when there is no file at that path. */
async function readCandidate(site: SiteSnapshot, path: string): Promise<string | undefined> {
  if (site.texts.has(path)) return site.texts.get(path);
  const { octokit, owner, repo } = site;
  const entry = site.tree.get(path);
  let text: string | undefined;
  if (entry && entry.type !== 'blob') text = undefined;
  else if (!entry && !site.truncated) text = undefined;
  else {
    const res = await orMissing(`GET ${path} from ${site.full}@${site.base}`, () =>
      octokit.rest.repos.getContent({ owner, repo, path, ref: site.baseSha }),
    );
    const data = res?.data as { type?: string; content?: string; encoding?: string; sha?: string } | undefined;
    if (!data || Array.isArray(res?.data) || data.type !== 'file') text = undefined;
    else if (data.encoding === 'base64' && data.content !== undefined)
      text = Buffer.from(data.content, 'base64').toString('utf8');
    else if (data.sha) text = await readBlob(site, data.sha, path); // > 1 MB: the contents API omits the content
  }
  site.texts.set(path, text);
  return text;
}

/** Every definition of every constant: in the candidate files first, then (for the rest) the repository. */
async function locateDefinitions(
  site: SiteSnapshot,
  req: BumpRequest,
  log: Logger,
): Promise<Map<string, Definition[]>> {
  const { full, base } = site;
  const defs = new Map<string, Definition[]>();
  for (const c of req.constants) defs.set(c.name, []);
  for (const path of req.files) {
    const text = await readCandidate(site, path);
    if (text === undefined) {
      log.info(`candidate ${path} does not exist in ${full}@${base}`);
      continue;
    }
    for (const c of req.constants)
      if (mentions(text, c.name)) defs.get(c.name)!.push(...findDefinitions(text, c.name, path));
  }
  const missing = req.constants.filter((c) => defs.get(c.name)!.length === 0);
  if (!missing.length) return defs;
  const names = missing.map((c) => c.name);
  if (req.files.length) {
    log.warning(
      `${names.join(', ')} not defined in the candidate files (${req.files.join(', ')}); searching all of ${full}@${base}`,
    );
  }
  const searchable = [...site.tree.values()].filter(
    (e) => e.type === 'blob' && e.mode !== '120000' && !site.texts.has(e.path) && isSearchable(e.path, e.size),
  );
  const max = req.maxSearchFiles ?? 2000;
  if (searchable.length > max) {
    throw new UserError(
      `${full} has ${searchable.length} source files to search for ${names.join(', ')} (limit ${max}): list the file(s) in 'files'`,
    );
  }
  log.info(
    `searching ${searchable.length} file${searchable.length === 1 ? '' : 's'} of ${full}@${base} for ${names.join(', ')}`,
  );
  await mapLimit(searchable, 6, async (e) => {
    const text = await readBlob(site, e.sha, e.path);
    site.texts.set(e.path, text);
    for (const c of missing)
      if (mentions(text, c.name)) defs.get(c.name)!.push(...findDefinitions(text, c.name, e.path));
  });
  for (const c of missing) {
    const found = defs.get(c.name)!;
    if (found.length && req.files.length) {
      log.warning(
        `${c.name} is defined in ${found.map(where).join(', ')}, which is not in 'files': update the candidate list`,
      );
    }
  }
  return defs;
}

type Chosen = { spec: ConstantSpec & { input: string }; def: Definition };

/** Exactly one definition per constant, and a new value that fits what is there. */
function chooseDefinitions(
  site: SiteSnapshot,
  req: BumpRequest,
  defs: Map<string, Definition[]>,
  log: Logger,
): Chosen[] {
  const at = `${site.full}@${site.base}`;
  return req.constants.map((c) => {
    const found = defs.get(c.name)!.sort((a, b) => (a.path === b.path ? a.line - b.line : a.path < b.path ? -1 : 1));
    if (found.length === 0) {
      const scope = req.files.length ? `the candidate files (${req.files.join(', ')}) nor anywhere else in` : '';
      throw new UserError(`${c.name} is not defined in ${scope}${scope ? ' ' : ''}${at}: found no definition`);
    }
    if (found.length > 1) {
      throw new UserError(
        `${c.name} is defined ${found.length} times in ${at}: ${found.map((d) => `${where(d)} (${d.source})`).join(', ')}; exactly one definition is required`,
      );
    }
    const def = found[0]!;
    if (def.value !== c.value || def.problem) {
      const problem = valueProblem(def, c.value);
      if (problem) {
        if (def.problem) throw new UserError(problem);
        throw new InputError(c.input, c.input === 'value' ? c.value : `${c.name}=${c.value}`, problem);
      }
    }
    if (isDate(def.value) && isDate(c.value) && c.value < def.value) {
      log.warning(`${c.name} moves backwards: ${def.value} → ${c.value}`);
    }
    return { spec: c, def };
  });
}

/** One commit on the base holding exactly the edited files; returns its sha. */
async function writeCommit(site: SiteSnapshot, req: BumpRequest, chosen: Chosen[], message: string, log: Logger) {
  const { octokit, owner, repo } = site;
  const byFile = new Map<string, { def: Definition; value: string }[]>();
  for (const { spec, def } of chosen) {
    if (def.value === spec.value) continue;
    byFile.set(def.path, [...(byFile.get(def.path) ?? []), { def, value: spec.value }]);
  }
  const entries = [...byFile.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([path, edits]) => ({
      path,
      mode: (site.tree.get(path)?.mode ?? '100644') as '100644' | '100755',
      type: 'blob' as const,
      content: applyEdits(site.texts.get(path)!, edits),
    }));
  const newTree = await api('POST tree', () =>
    octokit.rest.git.createTree({ owner, repo, base_tree: site.baseTree, tree: entries }),
  );
  const commit = await api('POST commit', () =>
    octokit.rest.git.createCommit({ owner, repo, message, tree: newTree.data.sha, parents: [site.baseSha] }),
  );
  log.info(`commit ${commit.data.sha.slice(0, 12)} changes ${entries.map((e) => e.path).join(', ')}`);
  return commit.data.sha;
}

/** Creates the branch at the commit, or moves a leftover branch of an earlier run there. */
async function pointBranch(site: SiteSnapshot, req: BumpRequest, commitSha: string, log: Logger): Promise<void> {
  const { octokit, owner, repo } = site;
  const { branch } = req;
  try {
    await octokit.rest.git.createRef({ owner, repo, ref: `refs/heads/${branch}`, sha: commitSha });
    log.info(`created branch ${branch}`);
  } catch (err) {
    if (statusOf(err) !== 422 || !/already exists/i.test(githubMessage(err))) {
      apiFailure(`POST ref ${branch}`, err);
    }
    // Left by an earlier run that stopped before opening the PR (no open PR uses it: checked before).
    log.warning(`branch ${branch} already exists without an open pull request; moving it to the new commit`);
    await api(`PATCH ref ${branch}`, () =>
      octokit.rest.git.updateRef({ owner, repo, ref: `heads/${branch}`, sha: commitSha, force: true }),
    );
  }
}

async function openPull(
  site: SiteSnapshot,
  req: BumpRequest,
  title: string,
  body: string,
  log: Logger,
): Promise<PullRef & { nodeId: string }> {
  const { octokit, owner, repo } = site;
  const { branch, base } = req;
  let pr: PullRef & { nodeId: string };
  try {
    const res = await octokit.rest.pulls.create({
      owner,
      repo,
      title,
      body,
      head: branch,
      base,
      maintainer_can_modify: true,
    });
    pr = { number: res.data.number, url: res.data.html_url, nodeId: res.data.node_id };
  } catch (err) {
    // A retried POST whose first attempt did land: the PR exists now, and it is ours.
    const again =
      statusOf(err) === 422 && /already exists/i.test(githubMessage(err))
        ? await findOpenPull(octokit, owner, repo, branch)
        : undefined;
    if (!again) apiFailure(`POST pull request ${branch} → ${base}`, err);
    pr = again;
  }
  log.info(`opened pull request #${pr.number}: ${pr.url}`);
  return pr;
}

const strip = (p: PullRef): PullRef => ({ number: p.number, url: p.url });
const isDate = (s: string) => /^\d{8}$/.test(s);

async function findOpenPull(
  octokit: Octokit,
  owner: string,
  repo: string,
  branch: string,
): Promise<(PullRef & { nodeId: string }) | undefined> {
  const res = await api(`GET pull requests from ${branch}`, () =>
    octokit.rest.pulls.list({ owner, repo, state: 'open', head: `${owner}:${branch}`, per_page: 100 }),
  );
  const pr = res.data.find((p) => p.head.ref === branch && p.state === 'open');
  return pr ? { number: pr.number, url: pr.html_url, nodeId: pr.node_id } : undefined;
}

const AUTO_MERGE = `mutation KeelEnableAutoMerge($pullRequestId: ID!, $mergeMethod: PullRequestMergeMethod!) {
  enablePullRequestAutoMerge(input: { pullRequestId: $pullRequestId, mergeMethod: $mergeMethod }) {
    pullRequest { number autoMergeRequest { mergeMethod enabledAt } }
  }
}`;

async function enableAutoMerge(octokit: Octokit, url: string, pullRequestId: string, method: string): Promise<void> {
  await octokit.graphql({ query: AUTO_MERGE, url, pullRequestId, mergeMethod: method.toUpperCase() });
}

/** The messages of a GraphqlResponseError (or any other failure), one line. */
function graphqlMessage(err: unknown): string {
  const errors = (err as { errors?: { message?: string }[] } | null)?.errors;
  if (Array.isArray(errors) && errors.length) return errors.map((e) => e.message ?? 'unknown error').join('; ');
  return statusOf(err) !== undefined ? `HTTP ${statusOf(err)}: ${githubMessage(err)}` : errorMessage(err);
}

function pullTitle(changes: Change[], primary: ConstantSpec): string {
  const others = changes.filter((c) => c.changed && c.name !== primary.name).map((c) => c.name);
  return `chore(release): bump ${primary.name} to ${primary.value}${others.length ? ` (with ${others.join(', ')})` : ''}`;
}

function changeTable(changes: Change[]): string {
  const rows = changes.map(
    (c) =>
      `| \`${c.name}\` | \`${c.path}:${c.line}\` | \`${c.from}\` | \`${c.to}\`${c.changed ? '' : ' (unchanged)'} |`,
  );
  return ['| constant | file | from | to |', '|---|---|---|---|', ...rows].join('\n');
}

function pullBody(changes: Change[], primary: ConstantSpec, runUrl?: string): string {
  return [
    `Release **${primary.value}**: points the download site at the new release.`,
    '',
    changeTable(changes),
    '',
    runUrl ? `Published by ${runUrl}.` : '',
    '_Opened by Keel `site-bump`: one commit that changes only these values._',
  ]
    .filter((l, i, a) => !(l === '' && a[i - 1] === ''))
    .join('\n');
}

function commitBody(changes: Change[], runUrl?: string): string {
  const lines = changes.filter((c) => c.changed).map((c) => `${c.name}: ${c.from} -> ${c.to} (${c.path})`);
  return [...lines, ...(runUrl ? ['', `Release run: ${runUrl}`] : [])].join('\n');
}

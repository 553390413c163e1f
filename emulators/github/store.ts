import crypto from 'node:crypto';

/**
 * The in-memory repositories behind the GitHub emulator: real git objects (blobs, trees,
 * commits hashed exactly as git hashes them, so a SHA here equals `git hash-object`), refs,
 * and pull requests with their auto-merge state. No HTTP here: the server maps requests onto
 * these methods, and tests read the state directly to assert what a scenario left behind.
 */
export interface GitBlob {
  type: 'blob';
  content: Buffer;
}
export interface GitTreeEntry {
  name: string;
  mode: string;
  type: 'blob' | 'tree' | 'commit';
  sha: string;
}
export interface GitTree {
  type: 'tree';
  entries: GitTreeEntry[];
}
export interface GitPerson {
  name: string;
  email: string;
  date: string;
}
export interface GitCommit {
  type: 'commit';
  tree: string;
  parents: string[];
  message: string;
  author: GitPerson;
  committer: GitPerson;
}
export type GitObject = GitBlob | GitTree | GitCommit;

export type MergeMethod = 'MERGE' | 'SQUASH' | 'REBASE';

export interface PullRequest {
  id: number;
  number: number;
  nodeId: string;
  title: string;
  body: string;
  /** Head branch name (same repository). */
  head: string;
  base: string;
  state: 'open' | 'closed';
  merged: boolean;
  mergeCommitSha?: string;
  /** The commit the base branch was at when the PR was opened (the merge base). */
  baseSha: string;
  autoMerge: { mergeMethod: MergeMethod; enabledAt: string } | null;
  createdAt: string;
  user: string;
}

export interface FileSpec {
  content: string | Buffer;
  mode?: '100644' | '100755' | '120000';
}

export interface RepoSeed {
  /** Files of the first commit on the default branch. */
  files: Record<string, string | FileSpec>;
  defaultBranch?: string;
  /** Repository setting "Allow auto-merge" (GraphQL refuses enablePullRequestAutoMerge when false). */
  allowAutoMerge?: boolean;
  private?: boolean;
}

export interface FlatFile {
  mode: string;
  sha: string;
}

let nextRepoId = 1000;

const BOT: GitPerson = { name: 'keel-emulator', email: 'emulator@keel.invalid', date: '2025-01-01T00:00:00Z' };

export function hashObject(type: string, body: Buffer): string {
  return crypto.createHash('sha1').update(`${type} ${body.length}\0`).update(body).digest('hex');
}

/** Git's tree order: byte order of names, with trees compared as if their name ended in '/'. */
function treeOrder(a: GitTreeEntry, b: GitTreeEntry): number {
  const ka = a.type === 'tree' ? `${a.name}/` : a.name;
  const kb = b.type === 'tree' ? `${b.name}/` : b.name;
  return Buffer.compare(Buffer.from(ka), Buffer.from(kb));
}

function personLine(p: GitPerson): string {
  return `${p.name} <${p.email}> ${Math.floor(Date.parse(p.date) / 1000)} +0000`;
}

export class EmulatedRepo {
  readonly id = nextRepoId++;
  readonly nodeId: string;
  readonly objects = new Map<string, GitObject>();
  /** Full ref name ('refs/heads/main') → commit SHA. */
  readonly refs = new Map<string, string>();
  readonly pulls: PullRequest[] = [];
  defaultBranch: string;
  allowAutoMerge: boolean;
  private: boolean;
  private clock = Date.parse('2025-01-01T00:00:00Z');

  constructor(
    readonly owner: string,
    readonly name: string,
    seed: RepoSeed,
  ) {
    this.nodeId = `R_kgDO${Buffer.from(`repo:${this.id}`).toString('base64url')}`;
    this.defaultBranch = seed.defaultBranch ?? 'main';
    this.allowAutoMerge = seed.allowAutoMerge ?? true;
    this.private = seed.private ?? false;
    const files = new Map<string, FlatFile>();
    for (const [path, spec] of Object.entries(seed.files)) {
      const s: FileSpec = typeof spec === 'string' || Buffer.isBuffer(spec) ? { content: spec } : spec;
      files.set(path, { mode: s.mode ?? '100644', sha: this.writeBlob(Buffer.from(s.content)) });
    }
    const commit = this.writeCommit({ tree: this.writeFlatTree(files), parents: [], message: 'Initial commit\n' });
    this.refs.set(`refs/heads/${this.defaultBranch}`, commit);
  }

  get fullName(): string {
    return `${this.owner}/${this.name}`;
  }

  now(): string {
    this.clock += 1000;
    return new Date(this.clock).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  // ---- objects ----

  writeBlob(content: Buffer): string {
    const sha = hashObject('blob', content);
    this.objects.set(sha, { type: 'blob', content });
    return sha;
  }

  writeTree(entries: GitTreeEntry[]): string {
    const sorted = [...entries].sort(treeOrder);
    const body = Buffer.concat(
      sorted.map((e) =>
        Buffer.concat([Buffer.from(`${e.type === 'tree' ? '40000' : e.mode} ${e.name}\0`), Buffer.from(e.sha, 'hex')]),
      ),
    );
    const sha = hashObject('tree', body);
    this.objects.set(sha, { type: 'tree', entries: sorted });
    return sha;
  }

  writeCommit(c: {
    tree: string;
    parents: string[];
    message: string;
    author?: Partial<GitPerson>;
    committer?: Partial<GitPerson>;
  }): string {
    const date = this.now();
    const author: GitPerson = { ...BOT, date, ...c.author };
    const committer: GitPerson = { ...BOT, date, ...c.committer };
    const text =
      `tree ${c.tree}\n${c.parents.map((p) => `parent ${p}\n`).join('')}` +
      `author ${personLine(author)}\ncommitter ${personLine(committer)}\n\n${c.message}`;
    const sha = hashObject('commit', Buffer.from(text));
    this.objects.set(sha, { type: 'commit', tree: c.tree, parents: c.parents, message: c.message, author, committer });
    return sha;
  }

  blob(sha: string): GitBlob | undefined {
    const o = this.objects.get(sha);
    return o?.type === 'blob' ? o : undefined;
  }
  tree(sha: string): GitTree | undefined {
    const o = this.objects.get(sha);
    return o?.type === 'tree' ? o : undefined;
  }
  commit(sha: string): GitCommit | undefined {
    const o = this.objects.get(sha);
    return o?.type === 'commit' ? o : undefined;
  }

  /** A branch name, a full ref, or a commit SHA → commit SHA. */
  resolve(refish: string): string | undefined {
    if (this.refs.has(refish)) return this.refs.get(refish);
    if (this.refs.has(`refs/heads/${refish}`)) return this.refs.get(`refs/heads/${refish}`);
    if (this.refs.has(`refs/tags/${refish}`)) return this.refs.get(`refs/tags/${refish}`);
    if (/^[0-9a-f]{40}$/.test(refish) && this.commit(refish)) return refish;
    return undefined;
  }

  /** Every file of a tree, path → mode and blob SHA. */
  flatten(treeSha: string, prefix = '', out = new Map<string, FlatFile>()): Map<string, FlatFile> {
    const t = this.tree(treeSha);
    if (!t) throw new Error(`no tree ${treeSha}`);
    for (const e of t.entries) {
      const p = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.type === 'tree') this.flatten(e.sha, p, out);
      else out.set(p, { mode: e.mode, sha: e.sha });
    }
    return out;
  }

  /** Builds nested trees from a flat path → file map. */
  writeFlatTree(files: Map<string, FlatFile>): string {
    const build = (paths: [string, FlatFile][]): string => {
      const here: GitTreeEntry[] = [];
      const dirs = new Map<string, [string, FlatFile][]>();
      for (const [p, f] of paths) {
        const i = p.indexOf('/');
        if (i < 0) here.push({ name: p, mode: f.mode, type: f.mode === '160000' ? 'commit' : 'blob', sha: f.sha });
        else dirs.set(p.slice(0, i), [...(dirs.get(p.slice(0, i)) ?? []), [p.slice(i + 1), f]]);
      }
      for (const [name, sub] of dirs) here.push({ name, mode: '040000', type: 'tree', sha: build(sub) });
      return this.writeTree(here);
    };
    return build([...files.entries()]);
  }

  // ---- conveniences for tests (and the local runner's fixtures) ----

  /** Text of a file at a branch/ref/SHA (undefined when absent). */
  file(refish: string, path: string): string | undefined {
    return this.files(refish)[path];
  }

  /** All files at a branch/ref/SHA, path → text. */
  files(refish: string): Record<string, string> {
    const sha = this.resolve(refish);
    if (!sha) throw new Error(`${this.fullName}: no ref ${refish}`);
    const out: Record<string, string> = {};
    for (const [p, f] of this.flatten(this.commit(sha)!.tree))
      out[p] = this.blob(f.sha)?.content.toString('utf8') ?? '';
    return out;
  }

  /** Paths whose content or mode differ between two commits. */
  changedFiles(fromSha: string, toSha: string): string[] {
    const a = this.flatten(this.commit(fromSha)!.tree);
    const b = this.flatten(this.commit(toSha)!.tree);
    const paths = new Set([...a.keys(), ...b.keys()]);
    return [...paths].filter((p) => a.get(p)?.sha !== b.get(p)?.sha || a.get(p)?.mode !== b.get(p)?.mode).sort();
  }

  /** Commits a change on a branch the way a person pushing would (null deletes a file). */
  commitFiles(branch: string, changes: Record<string, string | null>, message = 'Update files\n'): string {
    const parent = this.resolve(branch);
    if (!parent) throw new Error(`${this.fullName}: no branch ${branch}`);
    const files = this.flatten(this.commit(parent)!.tree);
    for (const [p, content] of Object.entries(changes)) {
      if (content === null) files.delete(p);
      else files.set(p, { mode: files.get(p)?.mode ?? '100644', sha: this.writeBlob(Buffer.from(content)) });
    }
    const sha = this.writeCommit({ tree: this.writeFlatTree(files), parents: [parent], message });
    this.refs.set(`refs/heads/${branch}`, sha);
    return sha;
  }

  /** Commits from a ref back to the root, newest first (first parents). */
  log(refish: string): { sha: string; message: string; parents: string[] }[] {
    const out: { sha: string; message: string; parents: string[] }[] = [];
    for (let sha = this.resolve(refish); sha;) {
      const c = this.commit(sha)!;
      out.push({ sha, message: c.message, parents: c.parents });
      sha = c.parents[0];
    }
    return out;
  }

  branches(): string[] {
    return [...this.refs.keys()]
      .filter((r) => r.startsWith('refs/heads/'))
      .map((r) => r.slice('refs/heads/'.length))
      .sort();
  }

  openPulls(): PullRequest[] {
    return this.pulls.filter((p) => p.state === 'open');
  }

  createPull(p: { title: string; body: string; head: string; base: string; user?: string }): PullRequest {
    const number = this.pulls.length + 1;
    const id = this.id * 1000 + number;
    const pr: PullRequest = {
      id,
      number,
      nodeId: `PR_kwDO${Buffer.from(`pull:${this.id}:${number}`).toString('base64url')}`,
      title: p.title,
      body: p.body,
      head: p.head,
      base: p.base,
      state: 'open',
      merged: false,
      baseSha: this.resolve(p.base)!,
      autoMerge: null,
      createdAt: this.now(),
      user: p.user ?? 'keel-bot',
    };
    this.pulls.push(pr);
    return pr;
  }

  /**
   * Merges a pull request as GitHub's squash (or merge) button would: the files the PR changed
   * relative to its merge base are applied onto the current base, as one new commit.
   */
  mergePull(number: number, method: MergeMethod = 'SQUASH'): string {
    const pr = this.pulls.find((p) => p.number === number);
    if (!pr || pr.state !== 'open') throw new Error(`${this.fullName}: no open pull request #${number}`);
    const head = this.resolve(pr.head)!;
    const baseTip = this.resolve(pr.base)!;
    const mergeBase = pr.baseSha;
    const headFiles = this.flatten(this.commit(head)!.tree);
    const files = this.flatten(this.commit(baseTip)!.tree);
    for (const p of this.changedFiles(mergeBase, head)) {
      const f = headFiles.get(p);
      if (f) files.set(p, f);
      else files.delete(p);
    }
    const parents = method === 'MERGE' ? [baseTip, head] : [baseTip];
    const sha = this.writeCommit({
      tree: this.writeFlatTree(files),
      parents,
      message: `${pr.title} (#${pr.number})\n`,
    });
    this.refs.set(`refs/heads/${pr.base}`, sha);
    pr.state = 'closed';
    pr.merged = true;
    pr.mergeCommitSha = sha;
    pr.autoMerge = null;
    return sha;
  }

  closePull(number: number): void {
    const pr = this.pulls.find((p) => p.number === number);
    if (pr) pr.state = 'closed';
  }
}

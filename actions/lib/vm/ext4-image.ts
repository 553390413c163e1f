import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { UserError } from '../errors.js';
import type { CommandRunner } from '../exec.js';
import { unsafeEntryReason } from '../safe-path.js';

/**
 * An ext4 disk image read and written with debugfs, without mounting it: no root, no loop
 * device, and nothing inside the image is ever resolved on the runner (a symlink the guest wrote
 * leads somewhere else in the same image, never out of it). Used between boots of one disk
 * (update-test): what the guest wrote is hostile, so every path given here is checked, reads are
 * bounded, and names read back are returned for the caller to validate.
 */

/**
 * debugfs parses its request line itself (spaces split arguments, quotes are special): paths in
 * a request are absolute, made of these characters, and have no ".." component.
 */
const REQUEST_PATH = /^\/[A-Za-z0-9._+@:~=,/-]*$/;

export function ext4PathProblem(p: string): string | undefined {
  if (!REQUEST_PATH.test(p)) return 'it must be an absolute path of letters, digits and ._+@:~=,/-';
  if (p.length > 1024) return 'it is longer than 1024 characters';
  return p === '/' ? undefined : unsafeEntryReason(p.slice(1));
}

function checked(p: string): string {
  const problem = ext4PathProblem(p);
  if (problem) throw new UserError(`refusing to look up ${JSON.stringify(p)} in a disk image: ${problem}`);
  return p;
}

export interface Ext4Stat {
  type: 'regular' | 'directory' | 'symlink' | 'other';
  size: number;
  mode: number;
  uid: number;
  gid: number;
  /** The target of a symlink short enough to live in the inode. */
  fastLink?: string;
}

const BANNER = /^debugfs [\d.]+ \(.*\)$/;

export class Ext4Image {
  constructor(
    readonly file: string,
    private readonly runner: CommandRunner,
  ) {}

  /** One read-only request; debugfs exits 0 on most errors, so its stderr is returned too. */
  private async request(req: string, stdout?: Writable) {
    const r = await this.runner.run('debugfs', ['-R', req, this.file], { stdout, timeoutMs: 120_000 });
    const errors = r.stderr
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !BANNER.test(l));
    return { stdout: r.stdout, errors };
  }

  /** The inode at `p` (a symlink itself, not what it points to), or undefined when missing. */
  async stat(p: string): Promise<Ext4Stat | undefined> {
    const { stdout } = await this.request(`stat ${checked(p)}`);
    const text = stdout.toString('utf8');
    const type = /Type: (\w+)/.exec(text)?.[1];
    if (!type) return undefined;
    const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    const fast = /Fast link dest: "(.*)"\s*$/m.exec(text)?.[1];
    return {
      type: type === 'regular' || type === 'directory' || type === 'symlink' ? type : 'other',
      size: num(/Size: (\d+)/),
      mode: parseInt(/Mode: +(\d+)/.exec(text)?.[1] ?? '0', 8),
      uid: num(/User: +(\d+)/),
      gid: num(/Group: +(\d+)/),
      ...(fast !== undefined ? { fastLink: fast } : {}),
    };
  }

  /** A regular file's contents, refused when it is not one or larger than `maxBytes`. */
  async readFile(p: string, maxBytes: number): Promise<Buffer> {
    const st = await this.regular(p, maxBytes);
    const { stdout } = await this.request(`cat ${p}`);
    if (stdout.length !== st.size)
      throw new UserError(`${p} in ${this.file}: read ${stdout.length} of ${st.size} bytes`);
    return stdout;
  }

  /** Copies a regular file out of the image to `dest` (a runner path of the caller's choosing). */
  async copyOut(p: string, dest: string, maxBytes: number): Promise<number> {
    const st = await this.regular(p, maxBytes);
    const out = fs.createWriteStream(dest, { flags: 'w', mode: 0o600 });
    const flushed = new Promise<void>((resolve, reject) => {
      out.once('finish', resolve);
      out.once('error', reject);
    });
    await this.request(`cat ${p}`, out);
    await flushed; // debugfs exited; its output may still be on its way to the file
    const size = fs.statSync(dest).size;
    if (size !== st.size) throw new UserError(`${p} in ${this.file}: copied ${size} of ${st.size} bytes`);
    return size;
  }

  /** The target of the symlink at `p` (not resolved). */
  async readLink(p: string): Promise<string> {
    const st = await this.stat(p);
    if (st?.type !== 'symlink') throw new UserError(`${p} in ${this.file} is not a symlink`);
    if (st.fastLink !== undefined) return st.fastLink;
    if (st.size > 4096) throw new UserError(`${p} in ${this.file}: symlink target longer than 4096 bytes`);
    // A slow symlink keeps its target in a data block: cat prints it.
    const { stdout } = await this.request(`cat ${p}`);
    return stdout.toString('utf8');
  }

  /** Names in the directory `p` (without . and ..), with their inode types. */
  async list(p: string): Promise<{ name: string; type: Ext4Stat['type'] }[]> {
    const { stdout, errors } = await this.request(`ls -p ${checked(p)}`);
    if (errors.length) throw new UserError(`cannot list ${p} in ${this.file}: ${errors.join('; ')}`);
    const out: { name: string; type: Ext4Stat['type'] }[] = [];
    // "/<inode>/<mode octal>/<uid>/<gid>/<name>/<size>/" per entry.
    for (const line of stdout.toString('utf8').split('\n')) {
      const m = /^\/\d+\/(\d+)\/\d+\/\d+\/(.*)\/\d*\/$/.exec(line.trim());
      if (!m || m[2] === '.' || m[2] === '..') continue;
      const kind = parseInt(m[1]!, 8) & 0o170000;
      out.push({
        name: m[2]!,
        type: kind === 0o100000 ? 'regular' : kind === 0o040000 ? 'directory' : kind === 0o120000 ? 'symlink' : 'other',
      });
    }
    return out;
  }

  private async regular(p: string, maxBytes: number): Promise<Ext4Stat> {
    const st = await this.stat(p);
    if (!st) throw new UserError(`${p} does not exist in ${this.file}`);
    if (st.type !== 'regular') throw new UserError(`${p} in ${this.file} is a ${st.type}, not a regular file`);
    if (!(st.size <= maxBytes)) throw new UserError(`${p} in ${this.file} is ${st.size} bytes (at most ${maxBytes})`);
    return st;
  }

  /**
   * Writes files into the image (debugfs -w): each `dest` is created anew (an existing file of
   * that name is removed first), owned by root with the given mode; `symlinks` are created the
   * same way. Parent directories must exist or are created. The result is read back and
   * compared, so a write debugfs silently refused fails here. A parent that is a symlink in the
   * image is refused (a write never follows one).
   */
  async writeFiles(
    files: { dest: string; content: string | Buffer; mode: number }[],
    symlinks: { dest: string; target: string }[],
    scratchDir: string,
  ): Promise<void> {
    fs.mkdirSync(scratchDir, { recursive: true });
    const lines: string[] = [];
    const dirs = new Set<string>();
    const parents = (p: string) => {
      const parts = p.split('/').filter(Boolean).slice(0, -1);
      for (let i = 1; i <= parts.length; i++) dirs.add(`/${parts.slice(0, i).join('/')}`);
    };
    for (const f of [...files, ...symlinks]) parents(checked(f.dest));
    for (const d of [...dirs].sort()) {
      const st = await this.stat(d);
      if (st?.type === 'directory') continue;
      // debugfs would not write through a symlink either; say why instead of failing later.
      if (st) throw new UserError(`refusing to write into ${d} of ${this.file}: it is a ${st.type}, not a directory`);
      lines.push(`mkdir ${d}`, `sif ${d} mode 040755`, `sif ${d} uid 0`, `sif ${d} gid 0`);
    }
    files.forEach((f, i) => {
      // The host side of `write` is a plain name in debugfs's working directory (no quoting needed).
      fs.writeFileSync(path.join(scratchDir, `f${i}`), f.content);
      lines.push(`rm ${f.dest}`, `write f${i} ${f.dest}`);
      lines.push(`sif ${f.dest} mode 0${(0o100000 | (f.mode & 0o7777)).toString(8)}`);
      lines.push(`sif ${f.dest} uid 0`, `sif ${f.dest} gid 0`);
    });
    for (const s of symlinks) {
      if (!/^[A-Za-z0-9._+@:~=,/-]+$/.test(s.target))
        throw new UserError(`symlink target ${JSON.stringify(s.target)} is not plain`);
      lines.push(`rm ${s.dest}`, `symlink ${s.dest} ${s.target}`);
    }
    const script = path.join(scratchDir, 'requests');
    fs.writeFileSync(script, `${lines.join('\n')}\n`);
    await this.runner.run('debugfs', ['-w', '-f', 'requests', this.file], { cwd: scratchDir, timeoutMs: 120_000 });
    for (const f of files) {
      const want = Buffer.from(f.content);
      const got = await this.readFile(f.dest, want.length);
      const st = await this.stat(f.dest);
      if (!got.equals(want) || st?.uid !== 0 || (st.mode & 0o7777) !== (f.mode & 0o7777))
        throw new Error(`debugfs did not write ${f.dest} into ${this.file} as asked`);
    }
    for (const s of symlinks) {
      if ((await this.readLink(s.dest)) !== s.target)
        throw new Error(`debugfs did not create the symlink ${s.dest} → ${s.target} in ${this.file}`);
    }
  }
}

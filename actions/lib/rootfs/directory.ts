import fs from 'node:fs';
import path from 'node:path';
import { joinInside } from '../safe-path.js';
import type { EntryType, TarHeader } from '../tar/reader.js';
import { resolveIn } from './layered.js';
import type { RootfsReader } from './reader.js';

/**
 * A root filesystem that is already a directory (a read-only `podman image mount`): indexed
 * with lstat, files read in place. No copy of the image is made.
 *
 * Safe by construction where a layer is not: names come from readdir (single components, never
 * absolute, `..` or holding NUL) and the walk never follows a symlink (lstat; it descends only
 * into directories), so no entry lies under a symlink. Reads go through `joinInside`, which
 * refuses a path whose components have become symlinks since the walk.
 */
export class DirectoryRootfs implements RootfsReader {
  private final?: Map<string, TarHeader>;
  constructor(readonly root: string) {}

  async index(): Promise<Map<string, TarHeader>> {
    if (this.final) return this.final;
    const out = new Map<string, TarHeader>();
    const walk = (rel: string) => {
      const abs = rel === '.' ? this.root : path.join(this.root, rel);
      const st = fs.lstatSync(abs);
      const type: EntryType = st.isDirectory()
        ? 'dir'
        : st.isSymbolicLink()
          ? 'symlink'
          : st.isCharacterDevice()
            ? 'char'
            : st.isBlockDevice()
              ? 'block'
              : st.isFIFO()
                ? 'fifo'
                : 'file';
      out.set(rel, {
        path: rel,
        type,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        size: type === 'file' ? st.size : 0,
        mtime: Math.floor(st.mtimeMs / 1000),
        linkname: type === 'symlink' ? fs.readlinkSync(abs) : '',
        uname: '',
        gname: '',
        devmajor: 0,
        devminor: 0,
      });
      if (type === 'dir') for (const n of fs.readdirSync(abs).sort()) walk(rel === '.' ? n : `${rel}/${n}`);
    };
    walk('.');
    this.final = out;
    return out;
  }

  async resolve(p: string): Promise<string | undefined> {
    return resolveIn(await this.index(), p);
  }

  async readFiles(paths: string[]): Promise<Map<string, Buffer>> {
    const idx = await this.index();
    const out = new Map<string, Buffer>();
    for (const p of paths) {
      const real = resolveIn(idx, p);
      if (real && idx.get(real)?.type === 'file') out.set(p, fs.readFileSync(joinInside(this.root, real)));
    }
    return out;
  }
}

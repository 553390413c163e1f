import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { decompress } from '../../lib/compress.js';
import { UserError } from '../../lib/errors.js';
import type { LayerRef } from '../../lib/rootfs/layered.js';
import type { ContentEntry } from '../../lib/sysext/content.js';
import { readTar, type EntryType, type TarHeader } from '../../lib/tar/reader.js';
import { writeTar, type WriteEntry } from '../../lib/tar/writer.js';

/**
 * Where the extension's content comes from: a prepared directory tree, or a layer (the top layer
 * of a package build). Either is read twice: headers first (what to ship is decided from them
 * alone), then entries with their bodies, filtered into a tar of exactly what ships.
 */
export interface ContentSource {
  entries(): Promise<ContentEntry[]>;
  /** Every entry with its body (consume each body before asking for the next entry). */
  stream(): AsyncGenerator<WriteEntry & { header: TarHeader }>;
}

function typeOf(st: fs.Stats): EntryType {
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFile()) return 'file';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'fifo'; // FIFOs and sockets: refused as "not a file, directory or symlink"
}

/**
 * A prepared tree: walked with lstat (symlinks are entries, never followed), in name order.
 * Modes are normalised the way git records them (0755 or 0644, directories 0755), so the image
 * does not depend on the umask of the checkout it was built from.
 */
export function treeSource(root: string): ContentSource {
  const walk = function* (): Generator<{ rel: string; abs: string; st: fs.Stats }> {
    const stack: string[] = ['.'];
    while (stack.length) {
      const rel = stack.pop()!;
      const abs = rel === '.' ? root : path.join(root, rel);
      const st = fs.lstatSync(abs);
      yield { rel, abs, st };
      if (st.isDirectory()) {
        const names = fs.readdirSync(abs).sort().reverse();
        for (const n of names) stack.push(rel === '.' ? n : `${rel}/${n}`);
      }
    }
  };
  const header = (rel: string, abs: string, st: fs.Stats): TarHeader => {
    const type = typeOf(st);
    return {
      path: rel,
      type,
      // As a git checkout carries them: executable or not, whatever the umask of the checkout.
      mode: type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : st.mode & 0o111 ? 0o755 : 0o644,
      uid: 0,
      gid: 0,
      size: type === 'file' ? st.size : 0,
      mtime: 0,
      linkname: type === 'symlink' ? fs.readlinkSync(abs) : '',
      uname: '',
      gname: '',
      devmajor: 0,
      devminor: 0,
    };
  };
  return {
    async entries() {
      return [...walk()].map(({ rel, st }) => ({ path: rel, type: typeOf(st) }));
    },
    async *stream() {
      for (const { rel, abs, st } of walk()) {
        const h = header(rel, abs, st);
        yield { header: h, body: h.type === 'file' && h.size > 0 ? fs.createReadStream(abs) : undefined };
      }
    },
  };
}

/** A layer tar (whiteouts stay entries: the decision sees removals). */
export function layerSource(layer: LayerRef): ContentSource {
  const read = () => readTar(decompress(layer.open(), layer.compression));
  return {
    async entries() {
      const out: ContentEntry[] = [];
      for await (const e of read()) out.push({ path: e.header.path, type: e.header.type, linkname: e.header.linkname });
      return out;
    },
    async *stream() {
      for await (const e of read()) {
        const h = { ...e.header, uid: 0, gid: 0 };
        yield { header: h, body: h.type === 'file' && h.size > 0 ? e.body() : undefined };
      }
    },
  };
}

/**
 * A one-layer view of what ships: the source's entries in `ship`, owned by root, plus `extra`
 * files (the extension-release) and the directories they need. Re-readable: LayeredRootfs reads
 * a layer once for its index and once to unpack it.
 */
export function shippingLayer(
  source: ContentSource,
  ship: ReadonlySet<string>,
  extra: { path: string; content: string }[],
): LayerRef {
  const dirHeader = (p: string): TarHeader => ({
    path: p,
    type: 'dir',
    mode: 0o755,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: 0,
    linkname: '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
  });
  async function* entries(): AsyncGenerator<WriteEntry> {
    const seen = new Set<string>();
    for await (const e of source.stream()) {
      if (!ship.has(e.header.path)) continue;
      seen.add(e.header.path);
      yield e;
    }
    for (const x of extra) {
      const parts = x.path.split('/');
      for (let i = 1; i < parts.length; i++) {
        const d = parts.slice(0, i).join('/');
        if (seen.has(d)) continue;
        seen.add(d);
        yield { header: dirHeader(d) };
      }
      if (seen.has(x.path)) throw new UserError(`${x.path} is both in the content and written by Keel`);
      const body = Buffer.from(x.content);
      yield { header: { ...dirHeader(x.path), type: 'file', mode: 0o644, size: body.length }, body };
    }
  }
  return { digest: 'keel-sysext-content', compression: 'none', open: () => Readable.from(writeTar(entries())) };
}

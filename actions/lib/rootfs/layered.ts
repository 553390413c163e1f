import type { Readable } from 'node:stream';
import { decompress, type Compression } from '../compress.js';
import { readTar, type TarHeader } from '../tar/reader.js';

/**
 * The final filesystem of a layered image, computed from its layer tars with OCI whiteout
 * semantics (`.wh.<name>` hides <name> in lower layers, `.wh..wh..opq` hides a directory's
 * lower contents, a non-directory in an upper layer hides a lower directory's subtree).
 *
 * - `index()` scans layers top-down once, metadata only, and says which layer provides each
 *   final entry (no file content is written anywhere).
 * - `flatten()` streams the final entries bottom-up (so hardlink targets and parent
 *   directories come first) with their bodies: the input to rechunking and unpacking.
 * - `readFiles()` extracts selected files (symlinks resolved inside the image), one pass per
 *   layer that holds any of them: what validation needs, without a second copy of the rootfs.
 */
export interface LayerRef {
  digest: string;
  compression: Compression;
  /** Opens the (compressed) layer blob. */
  open(): Readable;
}

export interface FsEntry extends TarHeader {
  /** Index of the layer that provides this entry (0 = bottom). */
  layer: number;
  /** Ordinal of the entry within its layer archive (duplicates: the last wins). */
  seq: number;
}

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '.' : p.slice(0, i);
}
function baseOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}
function join(dir: string, name: string): string {
  return dir === '.' ? name : `${dir}/${name}`;
}

export class LayeredRootfs {
  private final?: Map<string, FsEntry>;

  constructor(readonly layers: LayerRef[]) {}

  private async *entries(k: number) {
    const layer = this.layers[k]!;
    const stream = decompress(layer.open(), layer.compression);
    try {
      let seq = 0;
      for await (const e of readTar(stream)) yield { e, seq: seq++ };
    } finally {
      stream.destroy();
    }
  }

  /** The final view: path → entry (paths normalised, "." is the root). */
  async index(): Promise<Map<string, FsEntry>> {
    if (this.final) return this.final;
    const final = new Map<string, FsEntry>();
    const whiteouts = new Map<string, number>();
    const opaques = new Map<string, number>();
    const hidden = (path: string, k: number): boolean => {
      if ((opaques.get('.') ?? -1) > k && path !== '.') return true;
      const parts = path.split('/');
      let prefix = '';
      for (let i = 0; i < parts.length; i++) {
        prefix = i === 0 ? parts[0]! : `${prefix}/${parts[i]}`;
        if ((whiteouts.get(prefix) ?? -1) > k) return true;
        if (i < parts.length - 1) {
          if ((opaques.get(prefix) ?? -1) > k) return true;
          const f = final.get(prefix);
          if (f && f.layer > k && f.type !== 'dir') return true;
        }
      }
      return false;
    };
    for (let k = this.layers.length - 1; k >= 0; k--) {
      const layerWhiteouts: [string, boolean][] = [];
      for await (const { e, seq } of this.entries(k)) {
        const h = e.header;
        const base = baseOf(h.path);
        if (base.startsWith(WH)) {
          if (base === OPAQUE) layerWhiteouts.push([parentOf(h.path), true]);
          else layerWhiteouts.push([join(parentOf(h.path), base.slice(WH.length)), false]);
          continue;
        }
        if (hidden(h.path, k)) continue;
        const prev = final.get(h.path);
        if (prev && prev.layer > k) continue;
        final.set(h.path, { ...h, layer: k, seq });
      }
      // A layer's whiteouts apply to the layers below it only.
      for (const [p, opaque] of layerWhiteouts) {
        const m = opaque ? opaques : whiteouts;
        m.set(p, Math.max(m.get(p) ?? -1, k));
      }
    }
    this.final = final;
    return final;
  }

  /** Final entries bottom-up with their bodies (consume `body` before the next entry). */
  async *flatten(): AsyncGenerator<{ entry: FsEntry; body?: AsyncIterable<Buffer> }> {
    const final = await this.index();
    const used = new Set([...final.values()].map((f) => f.layer));
    for (let k = 0; k < this.layers.length; k++) {
      if (!used.has(k)) continue;
      for await (const { e, seq } of this.entries(k)) {
        const f = final.get(e.header.path);
        if (!f || f.layer !== k || f.seq !== seq) continue;
        yield { entry: f, body: f.type === 'file' && f.size > 0 ? e.body() : undefined };
      }
    }
  }

  /**
   * Resolves a path inside the image (absolute symlinks are relative to the image root, like a
   * chroot); returns the final path of a non-symlink entry, or undefined.
   */
  async resolve(path: string, maxLinks = 40): Promise<string | undefined> {
    const final = await this.index();
    return resolveIn(final, path, maxLinks);
  }

  /** Reads regular files (symlinks and hardlinks followed). Missing paths are absent from the result. */
  async readFiles(paths: string[]): Promise<Map<string, Buffer>> {
    const final = await this.index();
    const want = new Map<string, string[]>(); // real path → requested paths
    for (const p of paths) {
      let real = resolveIn(final, p);
      let e = real ? final.get(real) : undefined;
      if (e?.type === 'hardlink') {
        real = e.linkname;
        e = final.get(real);
      }
      if (!real || !e || e.type !== 'file') continue;
      want.set(real, [...(want.get(real) ?? []), p]);
    }
    const out = new Map<string, Buffer>();
    const byLayer = new Map<number, Set<string>>();
    for (const real of want.keys()) {
      const k = final.get(real)!.layer;
      byLayer.set(k, (byLayer.get(k) ?? new Set()).add(real));
    }
    for (const [k, set] of byLayer) {
      let left = set.size;
      for await (const { e, seq } of this.entries(k)) {
        const f = final.get(e.header.path);
        if (!set.has(e.header.path) || !f || f.seq !== seq) continue;
        const buf = await e.buffer();
        for (const p of want.get(e.header.path)!) out.set(p, buf);
        if (--left === 0) break;
      }
    }
    return out;
  }
}

/** Follows symlinks component by component inside an entry map (chroot semantics). */
export function resolveIn(final: Map<string, TarHeader>, path: string, maxLinks = 40): string | undefined {
  let pending = path.split('/').filter((c) => c !== '' && c !== '.');
  const cur: string[] = [];
  let links = 0;
  while (pending.length) {
    const comp = pending.shift()!;
    if (comp === '..') {
      cur.pop();
      continue;
    }
    cur.push(comp);
    const p = cur.join('/');
    const e = final.get(p);
    if (!e) return undefined;
    if (e.type === 'symlink') {
      if (++links > maxLinks) return undefined;
      cur.pop();
      const target = e.linkname;
      const parts = target.split('/').filter((c) => c !== '' && c !== '.');
      if (target.startsWith('/')) cur.length = 0;
      pending = [...parts, ...pending];
    }
  }
  return cur.length ? cur.join('/') : '.';
}

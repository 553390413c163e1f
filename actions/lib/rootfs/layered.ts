import type { Readable } from 'node:stream';
import { decompress, type Compression } from '../compress.js';
import { HostileLayerError, UnsafePathError } from '../safe-path.js';
import { readTar, TarFormatError, type EntryType, type TarHeader } from '../tar/reader.js';

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
 *
 * Layers are hostile. The tar reader refuses what one archive entry can get wrong (unsafe names,
 * numbers that do not parse); here every reader error gets the layer digest, and `index()`
 * refuses what takes several entries: an entry whose parent is a symlink or another
 * non-directory, earlier in the same layer or in the final view (an extractor would write
 * through it, out of the tree), and a hardlink whose target goes through one. Every consumer
 * (rechunk, validate, unpacking for disks and boots) starts from `index()`, so nothing is
 * written for an image that is refused.
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
/** The directories an entry is written into, root first: "a/b/c" → ".", "a", "a/b". */
function parentsOf(p: string): string[] {
  if (p === '.') return [];
  const parts = p.split('/');
  return ['.', ...parts.slice(1).map((_, i) => parts.slice(0, i + 1).join('/'))];
}

/** The first parent of `p` that is not a directory (a write into it would go through it). */
function nonDirParent(p: string, typeOf: (p: string) => EntryType | undefined): string | undefined {
  for (const parent of parentsOf(p)) {
    const t = typeOf(parent);
    if (t !== undefined && t !== 'dir') return `${parent === '.' ? 'the root' : parent} is a ${t}`;
  }
  return undefined;
}

/** Why an entry would be written through a non-directory in `typeOf`'s view, or undefined. */
function writeThroughReason(h: TarHeader, typeOf: (p: string) => EntryType | undefined): string | undefined {
  const own = nonDirParent(h.path, typeOf);
  if (own) return `it would be written through a non-directory: ${own}`;
  const target = h.type === 'hardlink' ? nonDirParent(h.linkname, typeOf) : undefined;
  if (target) return `its hardlink target ${JSON.stringify(h.linkname)} goes through a non-directory: ${target}`;
  return undefined;
}

/** A reader refusal, with the layer it came from. */
function hostile(digest: string, err: unknown): unknown {
  if (err instanceof UnsafePathError || err instanceof TarFormatError)
    return new HostileLayerError(digest, err.entry, err.reason);
  return err;
}

/** The view from the top layer down to the one being indexed. */
interface View {
  final: Map<string, FsEntry>;
  /** Path → highest layer that whites it out (or makes it opaque). */
  whiteouts: Map<string, number>;
  opaques: Map<string, number>;
}

/** Whether layer `k`'s entry at `path` is hidden by a layer above (whiteout, opaque, non-directory). */
function hiddenFrom(view: View, path: string, k: number): boolean {
  if ((view.opaques.get('.') ?? -1) > k && path !== '.') return true;
  const parts = path.split('/');
  let prefix = '';
  for (let i = 0; i < parts.length; i++) {
    prefix = i === 0 ? parts[0]! : `${prefix}/${parts[i]}`;
    if ((view.whiteouts.get(prefix) ?? -1) > k) return true;
    if (i < parts.length - 1) {
      if ((view.opaques.get(prefix) ?? -1) > k) return true;
      const f = view.final.get(prefix);
      if (f && f.layer > k && f.type !== 'dir') return true;
    }
  }
  return false;
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
    } catch (err) {
      throw hostile(layer.digest, err);
    } finally {
      stream.destroy();
    }
  }

  /** The final view: path → entry (paths normalised, "." is the root). */
  async index(): Promise<Map<string, FsEntry>> {
    if (this.final) return this.final;
    const view: View = { final: new Map(), whiteouts: new Map(), opaques: new Map() };
    for (let k = this.layers.length - 1; k >= 0; k--) await this.indexLayer(k, view);
    this.refuseWritesThroughFinal(view.final);
    this.final = view.final;
    return view.final;
  }

  /** Adds what layer `k` shows through the layers above it to the view; records its whiteouts. */
  private async indexLayer(k: number, view: View): Promise<void> {
    const layerWhiteouts: [string, boolean][] = [];
    const layerTypes = new Map<string, EntryType>(); // this layer's entries so far
    for await (const { e, seq } of this.entries(k)) {
      const h = e.header;
      const through = writeThroughReason(h, (p) => layerTypes.get(p));
      if (through) throw new HostileLayerError(this.layers[k]!.digest, h.path, `${through} earlier in this layer`);
      layerTypes.set(h.path, h.type);
      const base = baseOf(h.path);
      if (base.startsWith(WH)) {
        if (base === OPAQUE) layerWhiteouts.push([parentOf(h.path), true]);
        else layerWhiteouts.push([join(parentOf(h.path), base.slice(WH.length)), false]);
        continue;
      }
      if (hiddenFrom(view, h.path, k)) continue;
      const prev = view.final.get(h.path);
      if (prev && prev.layer > k) continue;
      view.final.set(h.path, { ...h, layer: k, seq });
    }
    // A layer's whiteouts apply to the layers below it only.
    for (const [p, opaque] of layerWhiteouts) {
      const m = opaque ? view.opaques : view.whiteouts;
      m.set(p, Math.max(m.get(p) ?? -1, k));
    }
  }

  /** A lower-layer symlink under an upper layer's entries: the final view itself is unsafe. */
  private refuseWritesThroughFinal(final: Map<string, FsEntry>): void {
    for (const e of final.values()) {
      const through = writeThroughReason(e, (p) => final.get(p)?.type);
      if (through)
        throw new HostileLayerError(this.layers[e.layer]!.digest, e.path, `${through} in the final filesystem`);
    }
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

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { UserError } from '../errors.js';
import type { CommandRunner } from '../exec.js';
import type { OpenedImage } from '../image/open.js';
import type { Logger } from '../log.js';
import { OciLayout } from '../oci/layout.js';
import { MT, type ImageConfig } from '../oci/media.js';
import { mapLimit } from '../pool.js';
import { LayeredRootfs, type FsEntry, type LayerRef } from '../rootfs/layered.js';
import type { TarHeader } from '../tar/reader.js';
import { writeTar, type WriteEntry } from '../tar/writer.js';
import { assignComponents } from './components.js';
import { ANNOTATION_COMPONENTS, ANNOTATION_LAYER, makePlan, type Plan } from './plan.js';

/**
 * The rechunker: regroups an image's final filesystem into at most `maxLayers` layers by
 * component, deterministically (sorted entries, clamped mtimes, owners/modes/xattrs/links kept,
 * fixed gzip settings), writes a plain OCI image layout, and checks the result file by file
 * against the input before declaring success.
 */
/**
 * What the rechunker reads: the input's labels and config, and its final filesystem. A source
 * that can read file bodies again (`readFiles`: a mounted image) is read in place; otherwise
 * (layers) the bodies are kept in a content-addressed store under the work directory.
 */
export interface RechunkSource {
  labels: Record<string, string>;
  config: ImageConfig;
  /** For the log: where the entries come from ("3 input layer(s)"). */
  describe: string;
  /** The final filesystem, each entry once, with the bodies of regular files. */
  entries(): AsyncIterable<{ entry: TarHeader; body?: AsyncIterable<Buffer> }>;
  /** Bodies of regular files, in the order asked (each consumed before the next). */
  readFiles?(paths: string[]): AsyncIterable<{ path: string; body: AsyncIterable<Buffer> }>;
}

/** A layered image (registry or OCI layout) as a rechunk source: its layers flattened. */
export function layeredSource(img: OpenedImage): RechunkSource {
  return {
    labels: img.labels,
    config: img.config,
    describe: `${img.layers.length} input layer(s)`,
    entries: () => new LayeredRootfs(img.layers).flatten(),
  };
}

export interface RechunkRequest {
  input: RechunkSource;
  outputDir: string;
  tag: string;
  maxLayers: number;
  previous?: { plan?: Plan; layerDigests: Set<string>; source: string };
  extraLabels: Record<string, string>;
  sourceDateEpoch: number;
  largeFileBytes: number;
  workDir: string;
  log: Logger;
  runner: CommandRunner;
  /** gzip level (fixed per run: part of determinism). */
  level?: number;
}

export interface LayerReport {
  id: string;
  digest: string;
  diffId: string;
  size: number;
  uncompressedSize: number;
  files: number;
  components: string[];
  reused?: boolean;
}

export interface RechunkResult {
  manifestDigest: string;
  layers: LayerReport[];
  labels: Record<string, string>;
  kernelVersion?: string;
  planNotes: string[];
  fallbackReason?: string;
  postCheck: { entries: number; mismatches: string[] };
  update?: { reusedLayers: number; newLayers: number; downloadBytes: number; totalBytes: number };
}

export type Meta = Omit<FsEntry, 'layer' | 'seq'> & { hash?: string };

const ROOT = '.';

function ancestors(p: string): string[] {
  const out = [ROOT];
  const parts = p.split('/');
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

/** Reads the input once: metadata in memory, file contents in a content-addressed store. */
export async function flattenToStore(input: OpenedImage, store: string, log: Logger): Promise<Map<string, Meta>> {
  return readInput(layeredSource(input), store, log);
}

/**
 * Reads the input once: metadata (with each file's sha256) in memory; file contents copied into
 * the content-addressed `store` only when given (a source that cannot read them again).
 */
async function readInput(input: RechunkSource, store: string | undefined, log: Logger): Promise<Map<string, Meta>> {
  if (store) fs.mkdirSync(store, { recursive: true });
  const meta = new Map<string, Meta>();
  let bytes = 0;
  for await (const { entry, body } of input.entries()) {
    const { layer: _l, seq: _s, ...m } = entry as FsEntry;
    const rec: Meta = { ...m };
    if (entry.type === 'file') {
      rec.hash = store ? await storeBody(body, store) : await hashBody(body);
      bytes += entry.size;
    }
    meta.set(entry.path, rec);
  }
  log.info(`read ${meta.size} entries (${(bytes / 1048576).toFixed(0)} MiB of file content) from ${input.describe}`);
  return meta;
}

async function hashBody(body: AsyncIterable<Buffer> | undefined): Promise<string> {
  const hash = crypto.createHash('sha256');
  if (body) for await (const c of body) hash.update(c);
  return hash.digest('hex');
}

/** Writes a body into the store under its sha256 (once per content); returns the hash. */
async function storeBody(body: AsyncIterable<Buffer> | undefined, store: string): Promise<string> {
  const tmp = path.join(store, `.in-${process.pid}`);
  const hash = crypto.createHash('sha256');
  if (body) {
    await pipeline(
      Readable.from(body),
      new Transform({
        transform(c: Buffer, _e, cb) {
          hash.update(c);
          cb(null, c);
        },
      }),
      fs.createWriteStream(tmp),
    );
  } else fs.writeFileSync(tmp, '');
  const hex = hash.digest('hex');
  const dest = path.join(store, hex);
  if (fs.existsSync(dest)) fs.rmSync(tmp);
  else fs.renameSync(tmp, dest);
  return hex;
}

function kernelOf(meta: Map<string, Meta>): string | undefined {
  const ks = [...meta.values()]
    .filter((e) => e.type === 'dir' && /^usr\/lib\/modules\/[^/]+$/.test(e.path))
    .map((e) => e.path.split('/')[3]!);
  return ks.length === 1 ? ks[0] : undefined;
}

function finalLabels(
  input: Record<string, string>,
  extra: Record<string, string>,
  kver: string | undefined,
  log: Logger,
): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...input, ...extra })) {
    if (v === '' || v === undefined) log.warning(`label ${k} has an empty value: not published`);
    else labels[k] = v;
  }
  labels['containers.bootc'] = '1';
  if (kver) {
    if (labels['ostree.linux'] && labels['ostree.linux'] !== kver) {
      log.warning(
        `label ostree.linux was ${labels['ostree.linux']}; the image holds kernel ${kver}: recomputed from content`,
      );
    }
    labels['ostree.linux'] = kver;
  } else if (labels['ostree.linux']) {
    log.warning('the image does not hold exactly one kernel: ostree.linux dropped');
    delete labels['ostree.linux'];
  }
  return labels;
}

/** Normalised view of one entry for the equality check (hardlink sets compare as sets). */
function fingerprint(e: TarHeader & { hash?: string }, linkGroup: string | undefined, epoch: number): string {
  const x = e.xattrs
    ? [...e.xattrs]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => `${k}=${v.toString('base64')}`)
        .join(',')
    : '';
  const type = e.type === 'hardlink' ? 'file' : e.type;
  return [
    type,
    (e.mode & 0o7777).toString(8),
    e.uid,
    e.gid,
    type === 'file' ? e.hash : '',
    e.type === 'symlink' ? e.linkname : '',
    Math.min(Math.floor(e.mtime), epoch),
    x,
    linkGroup ?? '',
    e.devmajor,
    e.devminor,
  ].join('|');
}

export async function rechunk(req: RechunkRequest): Promise<RechunkResult> {
  const reread = req.input.readFiles?.bind(req.input);
  const store = reread ? undefined : path.join(req.workDir, 'cas');
  const meta = await readInput(req.input, store, req.log);
  const bodies = reread ?? ((paths: string[]) => storeBodies(paths, meta, store!));
  const content: Content = { meta, bodies, canonicalOf: hardlinkCanonicals(meta), epoch: req.sourceDateEpoch };
  const components = await componentsOf(content, req);
  const { plan, notes, fallbackReason } = planLayers(content, components, req);
  const layout = OciLayout.create(req.outputDir);
  const layers = await writeLayers(layout, plan, components, content, req);
  const kver = kernelOf(meta);
  const labels = finalLabels(req.input.labels, req.extraLabels, kver, req.log);
  const manifestDigest = writeManifest(layout, layers, labels, req);
  const postCheck = await checkOutput(layout, layers, labels, content, req);
  return {
    manifestDigest,
    layers,
    labels,
    kernelVersion: kver,
    planNotes: notes,
    fallbackReason,
    postCheck,
    update: updateAgainst(req.previous, layers),
  };
}

/** The flattened input, as every phase after reading sees it. */
interface Content {
  meta: Map<string, Meta>;
  /** Bodies of regular files by path, in the order asked (the input again, or the store). */
  bodies: (paths: string[]) => AsyncIterable<{ path: string; body: AsyncIterable<Buffer> }>;
  /** Hardlink set member → the set's canonical member. */
  canonicalOf: Map<string, string>;
  /** Mtimes are clamped to this (SOURCE_DATE_EPOCH). */
  epoch: number;
}

/** Bodies from the content-addressed store, by each path's hash. */
async function* storeBodies(
  paths: string[],
  meta: Map<string, Meta>,
  store: string,
): AsyncGenerator<{ path: string; body: AsyncIterable<Buffer> }> {
  for (const p of paths) {
    const body = fs.createReadStream(path.join(store, meta.get(p)!.hash!), { highWaterMark: 1 << 20 });
    yield { path: p, body: body as AsyncIterable<Buffer> };
  }
}

/** Hardlink sets: canonical member = smallest path, stored as the file; the others link to it. */
function hardlinkCanonicals(meta: Map<string, Meta>): Map<string, string> {
  const groups = new Map<string, string[]>();
  for (const e of meta.values())
    if (e.type === 'hardlink') groups.set(e.linkname, [...(groups.get(e.linkname) ?? [e.linkname]), e.path]);
  const canonicalOf = new Map<string, string>();
  for (const members of groups.values()) {
    const c = [...members].sort()[0]!;
    for (const m of members) canonicalOf.set(m, c);
  }
  return canonicalOf;
}

/** Group: path → component (package, kernel, database, directory, volatile build output). */
async function componentsOf(c: Content, req: RechunkRequest): Promise<Map<string, string>> {
  const created = Date.parse(
    String(req.input.labels['org.opencontainers.image.created'] ?? req.input.config.created ?? ''),
  );
  return assignComponents(c.meta, {
    largeFileBytes: req.largeFileBytes,
    // Files written by this build (up to a day before the image's creation time) are the ones that
    // change from build to build.
    volatileSince: Number.isNaN(created) ? undefined : Math.floor(created / 1000) - 86_400,
    log: req.log,
    runner: req.runner,
    readFiles: async (paths) => {
      const out = new Map<string, Buffer>();
      const files = paths.filter((p) => c.meta.get(p)?.type === 'file');
      for await (const { path: p, body } of c.bodies(files)) {
        const parts: Buffer[] = [];
        for await (const chunk of body) parts.push(chunk);
        out.set(p, Buffer.concat(parts));
      }
      return out;
    },
  });
}

/** Plan: components into at most `maxLayers` layers, keeping the previous image's plan where it can. */
function planLayers(
  c: Content,
  components: Map<string, string>,
  req: RechunkRequest,
): { plan: Plan; notes: string[]; fallbackReason?: string } {
  const sizes = new Map<string, number>();
  for (const [p, comp] of components)
    sizes.set(comp, (sizes.get(comp) ?? 0) + (c.meta.get(p)?.type === 'file' ? c.meta.get(p)!.size : 0));
  let fallbackReason: string | undefined;
  if (req.previous && !req.previous.plan) {
    fallbackReason = `the previous image (${req.previous.source}) carries no Keel layer plan: using a fresh plan (this update re-downloads every layer once)`;
    req.log.warning(fallbackReason);
  }
  const { plan, notes } = makePlan(sizes, req.maxLayers, req.previous?.plan);
  for (const n of notes) req.log.info(n);
  return { plan, notes, fallbackReason };
}

/** Write layers: each planned layer's paths, as a deterministic gzip tar, into the layout. */
async function writeLayers(
  layout: OciLayout,
  plan: Plan,
  components: Map<string, string>,
  c: Content,
  req: RechunkRequest,
): Promise<LayerReport[]> {
  const layerOf = new Map<string, string>();
  for (const l of plan.layers) for (const comp of l.components) layerOf.set(comp, l.id);
  const members = new Map<string, string[]>();
  for (const [p, comp] of components) {
    const id = layerOf.get(comp)!;
    const list = members.get(id);
    if (list) list.push(p);
    else members.set(id, [p]);
  }
  const t0 = Date.now();
  const layers = await mapLimit(plan.layers, 4, async (l) => {
    const counted = { files: 0 };
    const entries = layerEntries(members.get(l.id) ?? [], c, counted);
    const blob = await writeLayerBlob(layout, req, l.id, entries);
    return { id: l.id, ...blob, files: counted.files, components: l.components };
  });
  req.log.info(`wrote ${layers.length} layers in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return layers;
}

/** A layer's tar entries: its own paths and their ancestors, root first, hardlink sets kept. */
async function* layerEntries(own: string[], c: Content, counted: { files: number }): AsyncGenerator<WriteEntry> {
  const mine = new Set(own);
  const all = new Set<string>(own);
  for (const p of own) for (const a of ancestors(p)) all.add(a);
  const paths = [...all].sort((a, b) => (a === ROOT ? -1 : b === ROOT ? 1 : a < b ? -1 : a > b ? 1 : 0));
  const entries = paths.flatMap((p) => {
    const e = c.meta.get(p);
    if (!e) return []; // an ancestor the image does not list (tar creates it)
    const canon = c.canonicalOf.get(p);
    const src = canon && e.type === 'hardlink' ? c.meta.get(e.linkname)! : e;
    const link = canon !== undefined && canon !== p;
    return [{ p, src, canon, withBody: !link && src.type === 'file' && src.size > 0 }];
  });
  // One ordered read of every body this layer carries (the file a hardlink set's content is under).
  const bodies = c.bodies(entries.filter((x) => x.withBody).map((x) => x.src.path))[Symbol.asyncIterator]();
  try {
    for (const { p, src, canon, withBody } of entries) {
      const mtime = Math.min(Math.floor(src.mtime), c.epoch);
      if (canon && canon !== p) {
        yield { header: { ...src, path: p, type: 'hardlink', linkname: canon, mtime, size: 0 } };
        continue;
      }
      const isFile = src.type === 'file';
      if (isFile && mine.has(p)) counted.files++;
      let body: AsyncIterable<Buffer> | undefined;
      if (withBody) {
        const next = await bodies.next();
        if (next.done || next.value.path !== src.path)
          throw new Error(`rechunk: the body of ${src.path} did not come back in order`);
        body = next.value.body;
      }
      yield { header: { ...src, path: p, type: isFile ? 'file' : src.type, mtime, size: isFile ? src.size : 0 }, body };
    }
  } finally {
    await bodies.return?.();
  }
}

/** Streams entries through tar and gzip into a layout blob, hashing both sides on the way. */
async function writeLayerBlob(
  layout: OciLayout,
  req: RechunkRequest,
  id: string,
  entries: AsyncIterable<WriteEntry>,
): Promise<{ digest: string; diffId: string; size: number; uncompressedSize: number }> {
  const tmp = path.join(
    req.outputDir,
    'blobs',
    'sha256',
    `.layer-${process.pid}-${id.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 60)}`,
  );
  const diff = crypto.createHash('sha256');
  const comp = crypto.createHash('sha256');
  let raw = 0;
  let size = 0;
  await pipeline(
    Readable.from(writeTar(entries)),
    new Transform({
      transform(chunk: Buffer, _e, cb) {
        diff.update(chunk);
        raw += chunk.length;
        cb(null, chunk);
      },
    }),
    zlib.createGzip({ level: req.level ?? 6, memLevel: 8, windowBits: 15, chunkSize: 1 << 20 }),
    new Transform({
      transform(chunk: Buffer, _e, cb) {
        comp.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    }),
    fs.createWriteStream(tmp),
  );
  const digest = `sha256:${comp.digest('hex')}`;
  layout.adoptFile(tmp, digest);
  return { digest, diffId: `sha256:${diff.digest('hex')}`, size, uncompressedSize: raw };
}

/** Write manifest: the input's config with the final labels and new layers; tagged in the layout. */
function writeManifest(
  layout: OciLayout,
  layers: LayerReport[],
  labels: Record<string, string>,
  req: RechunkRequest,
): string {
  const inCfg = req.input.config as ImageConfig & Record<string, unknown>;
  const createdAt = new Date(req.sourceDateEpoch * 1000).toISOString();
  const config = {
    ...inCfg,
    config: { ...(inCfg.config ?? {}), Labels: labels },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((l) => ({
      created: createdAt,
      created_by: `keel rechunk: ${l.id}`,
      comment: `${l.components.length} component(s)`,
    })),
  };
  const cfgDesc = layout.writeBlob(JSON.stringify(config));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: cfgDesc.digest, size: cfgDesc.size },
      layers: layers.map((l) => ({
        mediaType: MT.ociLayerGzip,
        digest: l.digest,
        size: l.size,
        annotations: { [ANNOTATION_LAYER]: l.id, [ANNOTATION_COMPONENTS]: JSON.stringify(l.components) },
      })),
    }),
  );
  const m = layout.writeBlob(manifest);
  layout.setRef(req.tag, { mediaType: MT.ociManifest, digest: m.digest, size: m.size });
  return m.digest;
}

/** Post-check: the flattened output equals the flattened input file by file; limits and labels held. */
async function checkOutput(
  layout: OciLayout,
  layers: LayerReport[],
  labels: Record<string, string>,
  c: Content,
  req: RechunkRequest,
): Promise<RechunkResult['postCheck']> {
  const postCheck = await verifyOutput(layout, layers, c.meta, c.canonicalOf, c.epoch, req.log);
  if (layers.length > req.maxLayers)
    throw new UserError(`post-check: ${layers.length} layers exceed max-layers ${req.maxLayers}`);
  for (const [k, v] of Object.entries(req.input.labels)) {
    if (v && k !== 'ostree.linux' && labels[k] !== v && !(k in req.extraLabels))
      throw new UserError(`post-check: label ${k} was not preserved`);
  }
  if (postCheck.mismatches.length) {
    throw new UserError(
      `post-check failed: the rechunked filesystem differs from the input in ${postCheck.mismatches.length} place(s): ${postCheck.mismatches.slice(0, 10).join('; ')}`,
    );
  }
  return postCheck;
}

/** What a client holding the previous image downloads for this one (marks reused layers). */
function updateAgainst(previous: RechunkRequest['previous'], layers: LayerReport[]): RechunkResult['update'] {
  if (!previous) return undefined;
  for (const l of layers) l.reused = previous.layerDigests.has(l.digest);
  const fresh = layers.filter((l) => !l.reused);
  return {
    reusedLayers: layers.length - fresh.length,
    newLayers: fresh.length,
    downloadBytes: fresh.reduce((n, l) => n + l.size, 0),
    totalBytes: layers.reduce((n, l) => n + l.size, 0),
  };
}

export async function verifyOutput(
  layout: OciLayout,
  layers: LayerReport[],
  meta: Map<string, Meta>,
  canonicalOf: Map<string, string>,
  epoch: number,
  log: Logger,
): Promise<{ entries: number; mismatches: string[] }> {
  const refs: LayerRef[] = layers.map((l) => ({
    digest: l.digest,
    compression: 'gzip',
    open: () => layout.openBlob(l.digest),
  }));
  const out = new LayeredRootfs(refs);
  const got = new Map<string, string>();
  const outHash = new Map<string, string>();
  const outEntries = new Map<string, TarHeader>();
  for await (const { entry, body } of out.flatten()) {
    let h: string | undefined;
    if (entry.type === 'file') {
      const hash = crypto.createHash('sha256');
      if (body) for await (const c of body) hash.update(c);
      h = hash.digest('hex');
      outHash.set(entry.path, h);
    }
    outEntries.set(entry.path, entry);
  }
  // In the output every hardlink points at its set's canonical member, so a set is "the
  // link target" for links and "the path itself" for a file something links to.
  const linkTargets = new Set([...outEntries.values()].filter((e) => e.type === 'hardlink').map((e) => e.linkname));
  for (const [p, e] of outEntries) {
    const isLink = e.type === 'hardlink';
    const src = isLink ? (outEntries.get(e.linkname) ?? e) : e;
    const hash = isLink ? outHash.get(e.linkname) : outHash.get(p);
    const group = isLink ? e.linkname : linkTargets.has(p) ? p : undefined;
    got.set(p, fingerprint({ ...src, type: isLink ? 'hardlink' : src.type, hash }, group, epoch));
  }
  const mismatches: string[] = [];
  for (const [p, e] of meta) {
    const srcE = e.type === 'hardlink' ? meta.get(e.linkname)! : e;
    const group = canonicalOf.get(p);
    const want = fingerprint({ ...srcE, type: e.type, hash: srcE.hash }, group, epoch);
    const have = got.get(p);
    if (have === undefined) mismatches.push(`${p} missing`);
    else if (have !== want) mismatches.push(`${p} differs`);
  }
  for (const p of got.keys()) if (!meta.has(p)) mismatches.push(`${p} is extra`);
  log.info(
    `post-check: ${meta.size} entries compared (content, mode, owner, xattrs, link targets, hardlink sets): ${mismatches.length} mismatch(es)`,
  );
  return { entries: meta.size, mismatches };
}

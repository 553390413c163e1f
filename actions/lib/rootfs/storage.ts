import crypto from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { asRoot, type CommandRunner, type RunOptions } from '../exec.js';
import { ImageConfigSchema, type ImageConfig } from '../oci/media.js';
import { readTar, type EntryType, type TarEntry, type TarHeader } from '../tar/reader.js';
import { resolveIn } from './layered.js';
import type { RootfsReader } from './reader.js';

/**
 * An image in root's containers-storage (where the build hop puts it), read in place: a
 * read-only `podman image mount` of the image ID, never an export. A hop that is not root
 * cannot open root-owned files under the mount, so every read goes through one root tool at a
 * time (`sudo -n`, see asRoot): `find` lists metadata, `tar` streams file contents, and the
 * bytes come back over a pipe. Nothing is written to disk; validate and rechunk read the same
 * image without a copy between them.
 *
 * Paths handed to the tools come from the image's own listing, resolved with resolveIn (no
 * symlink in any component), and the storage of a mounted image does not change, so a read
 * cannot be steered out of the tree. What comes back is parsed by the hostile-input tar reader
 * and must be the regular file that was asked for.
 */
export interface StorageImage {
  /** The image ID (sha256 of its config): the same image for every reader. */
  id: string;
  /** Manifest digest recorded in storage. */
  digest?: string;
  labels: Record<string, string>;
  /** Uncompressed size, as containers-storage counts it. */
  size: number;
  /** Where the image's filesystem is mounted (read-only). */
  root: string;
  unmount(): Promise<void>;
}

const InspectSchema = z.array(
  z
    .object({
      Id: z.string().regex(/^[0-9a-f]{64}$/),
      Digest: z.string().optional(),
      Labels: z.record(z.string(), z.string()).nullable().optional(),
      Size: z.number().optional(),
    })
    .loose(),
);

async function asRootRun(runner: CommandRunner, cmd: string, args: string[], opts?: RunOptions) {
  const [c, a] = asRoot(cmd, args);
  return runner.run(c, a, opts);
}

/** Mounts a local image read-only by its ID (resolved once from `ref`, so a moved tag cannot race). */
export async function mountStorageImage(ref: string, runner: CommandRunner): Promise<StorageImage> {
  const inspected = InspectSchema.parse(
    JSON.parse(
      (await asRootRun(runner, 'podman', ['image', 'inspect', '--format', 'json', '--', ref])).stdout.toString(),
    ),
  );
  const img = inspected[0];
  if (inspected.length !== 1 || !img) throw new UserError(`containers-storage:${ref} is not exactly one local image`);
  const root = (await asRootRun(runner, 'podman', ['image', 'mount', '--', img.Id])).stdout.toString().trim();
  if (!root.startsWith('/')) throw new Error(`podman image mount ${img.Id} answered ${JSON.stringify(root)}`);
  return {
    id: img.Id,
    digest: img.Digest,
    labels: { ...(img.Labels ?? {}) },
    size: img.Size ?? 0,
    root,
    unmount: async () => {
      await asRootRun(runner, 'podman', ['image', 'unmount', '--', img.Id]).catch(() => undefined);
    },
  };
}

/** The image's OCI config, verified against its ID (containers-storage names an image by its config digest). */
export async function storageConfig(id: string, runner: CommandRunner): Promise<ImageConfig> {
  const raw = (await asRootRun(runner, 'skopeo', ['inspect', '--config', '--raw', '--', `containers-storage:${id}`]))
    .stdout;
  const got = crypto.createHash('sha256').update(raw).digest('hex');
  if (got !== id) throw new UserError(`the config of local image ${id} hashes to ${got}: refusing it`);
  return ImageConfigSchema.parse(JSON.parse(raw.toString()));
}

/** A root tool whose stdout is read as a stream. */
interface ToolStream {
  stdout: AsyncIterable<Buffer>;
  /** After the reader is done: the rest of the output drained, the tool's exit awaited (its failure thrown). */
  finish(): Promise<void>;
  /** On every path: kills the tool when finish did not complete. */
  stop(): Promise<void>;
}

/**
 * Starts a root tool with its stdout as a stream. A reader that stops at the end of what it
 * parses (a tar reader at the end-of-archive blocks) must still see the tool fail: finish()
 * waits for the exit and throws the tool's own error (its stderr) rather than trusting a
 * well-formed but incomplete stream.
 */
function startTool(runner: CommandRunner, cmd: string, args: string[], input?: Buffer): ToolStream {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const abort = new AbortController();
  const [c, a] = asRoot(cmd, args);
  const done = runner.run(c, a, { stdout: out, input, signal: abort.signal }).finally(() => {
    if (!out.writableEnded) out.end();
  });
  done.catch(() => undefined);
  let finished = false;
  return {
    stdout: out,
    async finish() {
      for await (const _rest of out); // padding after the last block; the tool exits once it is read
      await done;
      finished = true;
    },
    async stop() {
      if (finished) return;
      abort.abort();
      out.resume();
      await done.catch(() => undefined);
    },
  };
}

/** The entries of the tar a root tool writes, then the tool's exit checked. */
async function* toolTar(runner: CommandRunner, args: string[], input?: Buffer): AsyncGenerator<TarEntry> {
  const tool = startTool(runner, 'tar', args, input);
  try {
    yield* readTar(tool.stdout);
    await tool.finish();
  } finally {
    await tool.stop();
  }
}

/** GNU tar reading the mounted tree: numeric owners, the xattrs containers-storage keeps in layers. */
const TAR = ['--create', '--file=-', '--format=pax', '--numeric-owner', '--one-file-system'];
const XATTRS = ['--xattrs', '--xattrs-include=security.capability', '--xattrs-include=user.*'];

/**
 * The whole tree as one tar stream, sorted by name: every entry once, hardlinks as links. The
 * mount point itself is left out: its owner and mode come from the storage driver, not from the
 * image (a built image's layers carry no entry for the root), so reading the layers gives none.
 */
export async function* scanTree(
  root: string,
  runner: CommandRunner,
): AsyncGenerator<{ entry: TarHeader; body?: AsyncIterable<Buffer> }> {
  const args = [...TAR, ...XATTRS, '--sort=name', `--directory=${root}`, '.'];
  for await (const e of toolTar(runner, args)) {
    const h = e.header;
    if (h.path === '.') continue;
    yield { entry: h, body: h.type === 'file' && h.size > 0 ? e.body() : undefined };
  }
}

/**
 * The contents of regular files, streamed in the order asked (one `tar` for all of them; each
 * body must be consumed before the next is asked for). Every answer must be the file asked for.
 */
export async function* readTreeFiles(
  root: string,
  paths: string[],
  runner: CommandRunner,
): AsyncGenerator<{ path: string; body: AsyncIterable<Buffer>; size: number }> {
  if (!paths.length) return;
  // NUL-separated names, read verbatim (a name starting with - is a name, never an option).
  const list = Buffer.from(paths.map((p) => `./${p}\0`).join(''));
  // --directory is positional in GNU tar: it must come before the names it applies to.
  const args = [
    ...TAR,
    '--no-recursion',
    '--hard-dereference',
    `--directory=${root}`,
    '--null',
    '--verbatim-files-from',
    '--files-from=-',
  ];
  let i = 0;
  for await (const e of toolTar(runner, args, list)) {
    const want = paths[i++];
    if (e.header.path !== want || e.header.type !== 'file')
      throw new Error(`tar answered ${e.header.type} ${JSON.stringify(e.header.path)} for ${JSON.stringify(want)}`);
    yield { path: want, body: e.body(), size: e.header.size };
  }
  if (i !== paths.length) throw new Error(`tar returned ${i} of ${paths.length} files from ${root}`);
}

const FIND_TYPES: Record<string, EntryType> = { f: 'file', d: 'dir', l: 'symlink', c: 'char', b: 'block', p: 'fifo' };
const FIND_FORMAT = '%y\\0%m\\0%U\\0%G\\0%s\\0%T@\\0%P\\0%l\\0';

/** Parses `find -printf FIND_FORMAT` output as it streams: 8 NUL-terminated fields per entry. */
function findParser(onEntry: (h: TarHeader) => void): Writable {
  let rest = Buffer.alloc(0);
  let fields: string[] = [];
  const take = (f: string[]) => {
    const [y, m, u, g, s, t, p, l] = f;
    const type = FIND_TYPES[y!];
    if (!type) return; // sockets and doors: nothing an image check reads
    onEntry({
      path: p === '' ? '.' : p!,
      type,
      mode: parseInt(m!, 8) & 0o7777,
      uid: Number(u),
      gid: Number(g),
      size: type === 'file' ? Number(s) : 0,
      mtime: Math.floor(Number(t)),
      linkname: type === 'symlink' ? l! : '',
      uname: '',
      gname: '',
      devmajor: 0,
      devminor: 0,
    });
  };
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      let buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
      let z: number;
      while ((z = buf.indexOf(0)) >= 0) {
        fields.push(buf.subarray(0, z).toString('utf8'));
        buf = buf.subarray(z + 1);
        if (fields.length === 8) {
          take(fields);
          fields = [];
        }
      }
      rest = Buffer.from(buf);
      cb();
    },
  });
}

/**
 * A RootfsReader over a mounted tree that this process may not be allowed to read: the listing
 * from one `find` (metadata only, never following symlinks, one filesystem), file contents
 * through `tar`. What validate reads of a local image when the hop is not root.
 */
export class PrivilegedTreeRootfs implements RootfsReader {
  private final?: Map<string, TarHeader>;
  constructor(
    readonly root: string,
    private readonly runner: CommandRunner,
  ) {}

  async index(): Promise<Map<string, TarHeader>> {
    if (this.final) return this.final;
    const out = new Map<string, TarHeader>();
    const parser = findParser((h) => out.set(h.path, h));
    await asRootRun(this.runner, 'find', [this.root, '-xdev', '-printf', FIND_FORMAT], { stdout: parser });
    if (!out.has('.')) throw new Error(`find listed nothing under ${this.root}`);
    this.final = out;
    return out;
  }

  async resolve(p: string): Promise<string | undefined> {
    return resolveIn(await this.index(), p);
  }

  async readFiles(paths: string[]): Promise<Map<string, Buffer>> {
    const idx = await this.index();
    const want = new Map<string, string[]>();
    for (const p of paths) {
      const real = resolveIn(idx, p);
      if (real && idx.get(real)?.type === 'file') want.set(real, [...(want.get(real) ?? []), p]);
    }
    const out = new Map<string, Buffer>();
    for await (const f of readTreeFiles(this.root, [...want.keys()], this.runner)) {
      const parts: Buffer[] = [];
      for await (const c of f.body) parts.push(c);
      for (const p of want.get(f.path)!) out.set(p, Buffer.concat(parts));
    }
    return out;
  }
}

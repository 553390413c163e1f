import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import { sha256 } from './client.js';
import { IndexSchema, MT, type Descriptor, type ImageIndex } from './media.js';

export const REF_ANNOTATION = 'org.opencontainers.image.ref.name';

/**
 * An OCI image layout directory (image-layout spec v1): `oci-layout`, `index.json`,
 * `blobs/sha256/<hex>`. Reading selects one image by its ref-name tag; writing is atomic per
 * blob (temp + rename) so a crash never leaves a half-written blob under its digest.
 */
export class OciLayout {
  constructor(readonly dir: string) {}

  static create(dir: string): OciLayout {
    fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
    const marker = path.join(dir, 'oci-layout');
    if (!fs.existsSync(marker)) fs.writeFileSync(marker, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const idx = path.join(dir, 'index.json');
    if (!fs.existsSync(idx)) {
      fs.writeFileSync(idx, JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] }));
    }
    return new OciLayout(dir);
  }

  static open(dir: string): OciLayout {
    if (!fs.existsSync(path.join(dir, 'oci-layout')) || !fs.existsSync(path.join(dir, 'index.json'))) {
      throw new UserError(`${dir} is not an OCI image layout (oci-layout and index.json expected)`);
    }
    return new OciLayout(dir);
  }

  blobPath(digest: string): string {
    const [alg, hex] = digest.split(':');
    if (alg !== 'sha256' || !hex || !/^[a-f0-9]{64}$/.test(hex)) throw new Error(`unsupported digest ${digest}`);
    return path.join(this.dir, 'blobs', alg, hex);
  }

  hasBlob(digest: string): boolean {
    return fs.existsSync(this.blobPath(digest));
  }

  readBlob(digest: string): Buffer {
    const p = this.blobPath(digest);
    if (!fs.existsSync(p)) throw new UserError(`OCI layout ${this.dir} lacks blob ${digest}`);
    const b = fs.readFileSync(p);
    if (sha256(b) !== digest) throw new UserError(`OCI layout blob ${digest} is corrupt (content hashes differently)`);
    return b;
  }

  blobSize(digest: string): number {
    return fs.statSync(this.blobPath(digest)).size;
  }

  openBlob(digest: string, start = 0): Readable {
    return fs.createReadStream(this.blobPath(digest), { start, highWaterMark: 1024 * 1024 });
  }

  writeBlob(data: Buffer | string): Descriptor & { mediaType: string } {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    const digest = sha256(buf);
    const p = this.blobPath(digest);
    if (!fs.existsSync(p)) {
      const tmp = `${p}.tmp-${process.pid}`;
      fs.writeFileSync(tmp, buf);
      fs.renameSync(tmp, p);
    }
    return { mediaType: '', digest, size: buf.length };
  }

  /** Streams data into a blob, computing its digest; returns digest and size. */
  async writeBlobStream(src: Readable): Promise<{ digest: string; size: number }> {
    const tmp = path.join(this.dir, 'blobs', 'sha256', `.in-${process.pid}-${crypto.randomUUID()}`);
    const hash = crypto.createHash('sha256');
    let size = 0;
    src.on('data', (c: Buffer) => {
      hash.update(c);
      size += c.length;
    });
    await pipeline(src, fs.createWriteStream(tmp));
    const digest = `sha256:${hash.digest('hex')}`;
    const p = this.blobPath(digest);
    if (fs.existsSync(p)) fs.rmSync(tmp);
    else fs.renameSync(tmp, p);
    return { digest, size };
  }

  /** Moves an already-written file into the layout under its digest. */
  adoptFile(file: string, digest: string): void {
    const p = this.blobPath(digest);
    if (fs.existsSync(p)) fs.rmSync(file);
    else fs.renameSync(file, p);
  }

  index(): ImageIndex {
    return IndexSchema.parse(JSON.parse(fs.readFileSync(path.join(this.dir, 'index.json'), 'utf8')));
  }

  /** Points `tag` at `desc` in index.json (replacing a previous entry with that tag). */
  setRef(tag: string, desc: Descriptor): void {
    const idx = this.index();
    const manifests = idx.manifests.filter((m) => m.annotations?.[REF_ANNOTATION] !== tag);
    manifests.push({ ...desc, annotations: { ...(desc.annotations ?? {}), [REF_ANNOTATION]: tag } });
    const out = { schemaVersion: 2, mediaType: MT.ociIndex, manifests };
    const p = path.join(this.dir, 'index.json');
    fs.writeFileSync(`${p}.tmp`, JSON.stringify(out));
    fs.renameSync(`${p}.tmp`, p);
  }

  /** The descriptor for `tag`, or the only image when no tag is given. */
  resolve(tag?: string): Descriptor {
    const ms = this.index().manifests;
    if (tag) {
      const m = ms.find((d) => d.annotations?.[REF_ANNOTATION] === tag);
      if (!m) {
        const known = ms.map((d) => d.annotations?.[REF_ANNOTATION]).filter(Boolean);
        throw new UserError(
          `OCI layout ${this.dir} has no image tagged '${tag}' (tags: ${known.join(', ') || 'none'})`,
        );
      }
      return m;
    }
    if (ms.length === 1 && ms[0]) return ms[0];
    if (ms.length === 0) throw new UserError(`OCI layout ${this.dir} holds no image`);
    throw new UserError(`OCI layout ${this.dir} holds ${ms.length} images: name one as oci:DIR:TAG`);
  }
}

/** Splits `oci:DIR[:TAG]` (the tag is what follows the last ':' after the last '/'). */
export function parseOciRef(ref: string): { dir: string; tag?: string } {
  if (!ref.startsWith('oci:')) throw new Error(`not an oci: reference: ${ref}`);
  const rest = ref.slice(4);
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash && colon > 0) return { dir: rest.slice(0, colon), tag: rest.slice(colon + 1) || undefined };
  return { dir: rest };
}

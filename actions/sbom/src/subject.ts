import crypto from 'node:crypto';
import { PackageURL } from 'packageurl-js';
import type { ImageInventory } from '../../lib/packages/index.js';
import { distroQualifier, type InstalledPackage, type OsRelease } from '../../lib/packages/index.js';

/**
 * What both SBOM formats say, computed once: the image (name, digest, package URL, labels,
 * creation time), the distribution, the kernels and one entry per package with its purl.
 * Everything here is a function of the image alone, so the same image gives the same bytes.
 */
export interface SbomImage {
  /** The repository (registry/ns/name) or, for local images, the best name known. */
  name: string;
  digest: string;
  purl: string;
  /** RFC 3339 creation time from the image's created label or config, when recorded. */
  created?: string;
  labels: Record<string, string>;
  architecture?: string;
}

export interface SbomDocument {
  image: SbomImage;
  os?: OsRelease;
  kernels: { version: string; vmlinuzSha256?: string }[];
  databases: { kind: string; dir: string; packages: number }[];
  packages: (InstalledPackage & { purl: string })[];
  /** urn:uuid derived from the image digest (the same image, the same serial number). */
  serialNumber: string;
  /** The uuid alone (SPDX document namespaces use it). */
  uuid: string;
}

const CREATED_LABEL = 'org.opencontainers.image.created';

/** A name-based (v5-style) UUID from a SHA-256 of the digest: stable per image. */
export function uuidFor(digest: string): string {
  const h = crypto.createHash('sha256').update(`keel-sbom:${digest}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** RFC 3339 UTC without fractions, or undefined for a value that is not a date. */
export function normaliseTime(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** pkg:deb/<id>/<name>@<version>?arch=…&distro=<id>-<version_id>; pkg:rpm likewise (epoch as a qualifier). */
export function packagePurl(p: InstalledPackage, os: OsRelease | undefined): string {
  const id = os?.id ?? (p.type === 'deb' ? 'debian' : 'linux');
  const qualifiers: Record<string, string> = { arch: p.architecture };
  if (p.epoch) qualifiers.epoch = p.epoch;
  if (os) qualifiers.distro = distroQualifier(os);
  return new PackageURL(p.type, id, p.name, p.version, qualifiers, undefined).toString();
}

/** pkg:oci/<name>@<digest>?repository_url=<registry/ns/name>&arch=… (purl-spec oci type). */
export function imagePurl(repository: string | undefined, name: string, digest: string, arch?: string): string {
  const qualifiers: Record<string, string> = {};
  if (arch) qualifiers.arch = arch;
  if (repository) qualifiers.repository_url = repository;
  const last = name.split('/').pop()!.toLowerCase();
  return new PackageURL('oci', undefined, last, digest, qualifiers, undefined).toString();
}

export function buildDocument(img: ImageInventory, repository: string | undefined, displayName: string): SbomDocument {
  const inv = img.inventory;
  const uuid = uuidFor(img.manifestDigest);
  return {
    image: {
      name: repository ?? displayName,
      digest: img.manifestDigest,
      purl: imagePurl(repository, repository ?? displayName, img.manifestDigest, img.architecture),
      created: normaliseTime(img.labels[CREATED_LABEL]) ?? normaliseTime(img.created),
      labels: img.labels,
      architecture: img.architecture,
    },
    os: inv.os,
    kernels: inv.kernels,
    databases: inv.databases,
    packages: inv.packages.map((p) => ({ ...p, purl: packagePurl(p, inv.os) })),
    serialNumber: `urn:uuid:${uuid}`,
    uuid,
  };
}

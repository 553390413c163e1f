import { z } from 'zod';

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

/** What a manifest GET asks for: every single-image and index type Keel understands. */
export const MANIFEST_ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ');

export const isIndexType = (mt: string | undefined) => mt === MT.ociIndex || mt === MT.dockerList;
export const isManifestType = (mt: string | undefined) => mt === MT.ociManifest || mt === MT.dockerManifest;

export const DescriptorSchema = z
  .object({
    mediaType: z.string(),
    digest: z.string().regex(/^sha256:[a-f0-9]{64}$/, 'sha256:<64 hex>'),
    size: z.number().int().nonnegative(),
    annotations: z.record(z.string(), z.string()).optional(),
    platform: z.object({ architecture: z.string(), os: z.string(), variant: z.string().optional() }).loose().optional(),
    artifactType: z.string().optional(),
    urls: z.array(z.string()).optional(),
  })
  .loose();
export type Descriptor = z.infer<typeof DescriptorSchema>;

export const ImageManifestSchema = z
  .object({
    schemaVersion: z.literal(2),
    mediaType: z.string().optional(),
    artifactType: z.string().optional(),
    config: DescriptorSchema,
    layers: z.array(DescriptorSchema),
    subject: DescriptorSchema.optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  })
  .loose();
export type ImageManifest = z.infer<typeof ImageManifestSchema>;

export const IndexSchema = z
  .object({
    schemaVersion: z.literal(2),
    mediaType: z.string().optional(),
    artifactType: z.string().optional(),
    manifests: z.array(DescriptorSchema),
    subject: DescriptorSchema.optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  })
  .loose();
export type ImageIndex = z.infer<typeof IndexSchema>;

export const ImageConfigSchema = z
  .object({
    architecture: z.string().optional(),
    os: z.string().optional(),
    created: z.string().optional(),
    config: z
      .object({
        Labels: z.record(z.string(), z.string()).nullable().optional(),
        Env: z.array(z.string()).nullable().optional(),
        Cmd: z.array(z.string()).nullable().optional(),
        Entrypoint: z.array(z.string()).nullable().optional(),
      })
      .loose()
      .nullable()
      .optional(),
    rootfs: z.object({ type: z.string(), diff_ids: z.array(z.string()) }).loose(),
    history: z.array(z.object({}).loose()).optional(),
  })
  .loose();
export type ImageConfig = z.infer<typeof ImageConfigSchema>;

/** The media type a manifest body declares (falls back to sniffing its shape). */
export function manifestMediaType(body: Buffer | string, contentType?: string): string {
  const j = JSON.parse(body.toString()) as { mediaType?: string; manifests?: unknown; layers?: unknown };
  if (j.mediaType) return j.mediaType;
  const ct = contentType?.split(';')[0]?.trim();
  if (ct && (isIndexType(ct) || isManifestType(ct))) return ct;
  return Array.isArray(j.manifests) ? MT.ociIndex : MT.ociManifest;
}

/** Layer compression from its media type. */
export function layerCompression(mediaType: string): 'gzip' | 'zstd' | 'none' {
  if (mediaType.endsWith('+zstd') || mediaType.endsWith('.zstd')) return 'zstd';
  if (mediaType.endsWith('gzip')) return 'gzip';
  if (mediaType.endsWith('.tar') || mediaType === MT.ociLayerTar) return 'none';
  return 'gzip';
}

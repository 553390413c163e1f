import type { CommandRunner } from '../exec.js';
import { openImage, type ImageLocation, type OpenedImage } from '../image/open.js';
import type { Logger } from '../log.js';
import type { RegistryAccess } from '../registry.js';
import { LayeredRootfs } from '../rootfs/layered.js';
import { readInventory, type Inventory } from './inventory.js';

/** An image's identity (what an SBOM or a changelog says it describes) and its inventory. */
export interface ImageInventory {
  source: string;
  manifestDigest: string;
  /** `created` of the image config, when recorded. */
  created?: string;
  labels: Record<string, string>;
  architecture?: string;
  inventory: Inventory;
}

export interface ImageInventoryOptions {
  access?: RegistryAccess;
  log: Logger;
  runner: CommandRunner;
  tmpDir: string;
}

/** Opens the image through the shared reader (no unpacking) and reads its inventory. */
export async function readImageInventory(loc: ImageLocation, opts: ImageInventoryOptions): Promise<ImageInventory> {
  const img: OpenedImage = await openImage(loc, opts);
  try {
    const inventory = await readInventory(new LayeredRootfs(img.layers), opts);
    return {
      source: img.source,
      manifestDigest: img.manifestDigest,
      created: img.config.created,
      labels: img.labels,
      architecture: img.config.architecture,
      inventory,
    };
  } finally {
    img.dispose();
  }
}

// Subpath imports: the package root also loads the library's validator, which reads its schema
// files from `__dirname` and cannot run inside an ncc bundle (see cyclonedx-schema.ts).
import * as Enums from '@cyclonedx/cyclonedx-library/Enums';
import * as Models from '@cyclonedx/cyclonedx-library/Models';
import * as SPDX from '@cyclonedx/cyclonedx-library/SPDX';
import * as Serialize from '@cyclonedx/cyclonedx-library/Serialize';
import * as Spec from '@cyclonedx/cyclonedx-library/Spec';
import { UserError } from '../../lib/errors.js';
import type { InstalledPackage } from '../../lib/packages/index.js';
import { cyclonedx16Errors } from './cyclonedx-schema.js';
import type { SbomDocument } from './subject.js';

/**
 * CycloneDX 1.6 JSON through the official library (model, normaliser with sorted lists,
 * serialiser) and validated against the official 1.6 JSON schema (the copy the library ships) before
 * anything is written. Properties Keel adds use the `keel:` namespace.
 */

const { ComponentType } = Enums;

function licensesOf(p: InstalledPackage): Models.LicenseRepository {
  const repo = new Models.LicenseRepository();
  for (const name of p.licenses ?? []) {
    repo.add(SPDX.isSupportedSpdxId(name) ? new Models.SpdxLicense(name) : new Models.NamedLicense(name));
  }
  return repo;
}

function properties(entries: [string, string | undefined][]): Models.PropertyRepository {
  const repo = new Models.PropertyRepository();
  for (const [k, v] of entries) if (v !== undefined && v !== '') repo.add(new Models.Property(k, v));
  return repo;
}

function packageComponent(p: SbomDocument['packages'][number]): Models.Component {
  return new Models.Component(ComponentType.Library, p.name, {
    bomRef: p.purl,
    version: p.epoch ? `${p.epoch}:${p.version}` : p.version,
    purl: p.purl,
    licenses: licensesOf(p),
    properties: properties([
      ['keel:package:type', p.type],
      ['keel:package:architecture', p.architecture],
      ['keel:package:source', p.sourceName],
      ['keel:package:source-version', p.sourceVersion],
    ]),
  });
}

/** The BOM model: the image as metadata.component, the distribution, kernels and packages as components. */
export function cyclonedxBom(doc: SbomDocument): Models.Bom {
  const bom = new Models.Bom({ serialNumber: doc.serialNumber });
  if (doc.image.created) bom.metadata.timestamp = new Date(doc.image.created);
  bom.metadata.tools.components.add(new Models.Component(ComponentType.Application, 'keel-sbom', { group: 'keel' }));
  const image = new Models.Component(ComponentType.Container, doc.image.name, {
    bomRef: doc.image.purl,
    version: doc.image.digest,
    purl: doc.image.purl,
    properties: properties([
      ['keel:image:digest', doc.image.digest],
      ['keel:image:architecture', doc.image.architecture],
      [
        'keel:package-databases',
        doc.databases.length ? doc.databases.map((d) => `${d.kind}:${d.dir}`).join(' ') : 'none',
      ],
      ...Object.entries(doc.image.labels).map(([k, v]): [string, string] => [`keel:label:${k}`, v]),
    ]),
  });
  bom.metadata.component = image;
  const parts: Models.Component[] = [];
  if (doc.os) {
    parts.push(
      new Models.Component(ComponentType.OperatingSystem, doc.os.id, {
        bomRef: `os:${doc.os.id}${doc.os.versionId ? `@${doc.os.versionId}` : ''}`,
        version: doc.os.versionId,
        description: doc.os.prettyName,
      }),
    );
  }
  for (const k of doc.kernels) {
    const c = new Models.Component(ComponentType.OperatingSystem, 'linux', {
      bomRef: `kernel:${k.version}`,
      version: k.version,
      description: `Linux kernel in /usr/lib/modules/${k.version}`,
      properties: properties([['keel:kernel:modules-dir', `/usr/lib/modules/${k.version}`]]),
    });
    if (k.vmlinuzSha256) c.hashes.set(Enums.HashAlgorithm['SHA-256'], k.vmlinuzSha256);
    parts.push(c);
  }
  for (const p of doc.packages) parts.push(packageComponent(p));
  for (const c of parts) {
    bom.components.add(c);
    image.dependencies.add(c.bomRef);
  }
  return bom;
}

/** Serialises (sorted lists, 2-space indent) and validates against the CycloneDX 1.6 schema. */
export function cyclonedxJson(doc: SbomDocument): string {
  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));
  const json = serializer.serialize(cyclonedxBom(doc), { sortLists: true, space: 2 });
  validateCyclonedx(json);
  return `${json}\n`;
}

/** Throws when `json` is not a valid CycloneDX 1.6 document (strict schema). */
export function validateCyclonedx(json: string): void {
  const errors = cyclonedx16Errors(json);
  if (errors !== null) {
    throw new UserError(
      `the CycloneDX document does not validate against the 1.6 schema: ${JSON.stringify(errors).slice(0, 2000)}`,
    );
  }
}

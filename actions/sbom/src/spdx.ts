import * as SPDX from '@cyclonedx/cyclonedx-library/SPDX';
import { PackageURL } from 'packageurl-js';
import parseSpdxExpression from 'spdx-expression-parse';
import { UserError } from '../../lib/errors.js';
import type { SbomDocument } from './subject.js';

/**
 * SPDX 2.3 JSON. Written by hand (there is no well-kept SPDX 2.3 model on npm) and checked
 * before it is written: every field the 2.3 specification requires, identifier syntax, that
 * every relationship names an element of the document, that every license field is a valid
 * SPDX license expression (spdx-expression-parse, the parser npm itself uses) or NOASSERTION,
 * and that every purl parses (packageurl-js).
 */

interface SpdxPackage {
  name: string;
  SPDXID: string;
  versionInfo?: string;
  downloadLocation: string;
  filesAnalyzed: false;
  primaryPackagePurpose?: string;
  sourceInfo?: string;
  licenseConcluded: string;
  licenseDeclared: string;
  licenseComments?: string;
  copyrightText: string;
  comment?: string;
  externalRefs?: { referenceCategory: string; referenceType: string; referenceLocator: string }[];
}

interface SpdxRelationship {
  spdxElementId: string;
  relationshipType: string;
  relatedSpdxElement: string;
}

export interface SpdxJson {
  spdxVersion: 'SPDX-2.3';
  dataLicense: 'CC0-1.0';
  SPDXID: 'SPDXRef-DOCUMENT';
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[]; comment?: string };
  documentDescribes: string[];
  packages: SpdxPackage[];
  relationships: SpdxRelationship[];
}

const NOASSERTION = 'NOASSERTION';
const IDSTRING = /^SPDXRef-[A-Za-z0-9.-]+$/;

/** Debian short license names (DEP-5) that are not SPDX identifiers as written. */
const DEBIAN_NAMES: Record<string, string> = {
  expat: 'MIT',
  'public-domain': '',
  'bsd-2-clause': 'BSD-2-Clause',
  'bsd-3-clause': 'BSD-3-Clause',
  'bsd-4-clause': 'BSD-4-Clause',
  zlib: 'Zlib',
  'mpl-1.1': 'MPL-1.1',
  'mpl-2.0': 'MPL-2.0',
};

/** One license token → an SPDX identifier (GPL-2 → GPL-2.0-only, GPL-2+ → GPL-2.0-or-later), or undefined. */
function spdxId(token: string): string | undefined {
  const mapped = DEBIAN_NAMES[token.toLowerCase()];
  if (mapped !== undefined) return mapped || undefined;
  const gnu = /^(A?GPL|LGPL)-(\d)(?:\.(\d))?(\+)?$/i.exec(token);
  if (gnu) {
    const id = `${gnu[1]!.toUpperCase()}-${gnu[2]}.${gnu[3] ?? '0'}-${gnu[4] ? 'or-later' : 'only'}`;
    return SPDX.isSupportedSpdxId(id) ? id : undefined;
  }
  return SPDX.fixupSpdxId(token);
}

/**
 * A license as a database states it → an SPDX expression, or undefined when any part has no
 * SPDX identifier (then the document says NOASSERTION and keeps the original in a comment).
 */
export function spdxExpression(license: string): string | undefined {
  const tokens = license
    .replace(/,/g, ' ')
    .replace(/([()])/g, ' $1 ')
    .split(/\s+/)
    .filter(Boolean);
  const out: string[] = [];
  for (const t of tokens) {
    if (t === '(' || t === ')') out.push(t);
    else if (/^(and|or|with)$/i.test(t)) out.push(t.toUpperCase());
    else {
      const id = spdxId(t);
      if (!id) return undefined;
      out.push(id);
    }
  }
  const expr = out.join(' ').replace(/\( /g, '(').replace(/ \)/g, ')');
  return isSpdxExpression(expr) ? expr : undefined;
}

function isSpdxExpression(s: string): boolean {
  try {
    parseSpdxExpression(s);
    return true;
  } catch {
    return false;
  }
}

function declared(licenses: string[] | undefined): Pick<SpdxPackage, 'licenseDeclared' | 'licenseComments'> {
  if (!licenses?.length) return { licenseDeclared: NOASSERTION };
  const exprs = licenses.map(spdxExpression);
  if (exprs.every((e): e is string => !!e)) {
    return { licenseDeclared: exprs.length === 1 ? exprs[0]! : exprs.map((e) => `(${e})`).join(' AND ') };
  }
  return {
    licenseDeclared: NOASSERTION,
    licenseComments: `licenses as the package database states them: ${licenses.join('; ')}`,
  };
}

/** Unique SPDX identifiers from arbitrary names (characters outside [A-Za-z0-9.-] become '-'). */
function idMaker(): (prefix: string, name: string) => string {
  const used = new Set<string>();
  return (prefix, name) => {
    const base = `SPDXRef-${prefix}-${name.replace(/[^A-Za-z0-9.-]/g, '-')}`;
    let id = base;
    for (let n = 2; used.has(id); n++) id = `${base}-${n}`;
    used.add(id);
    return id;
  };
}

const purlRef = (purl: string) => [
  { referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl },
];

export function spdxDocument(doc: SbomDocument): SpdxJson {
  const id = idMaker();
  const imageId = 'SPDXRef-Image';
  const base = {
    downloadLocation: NOASSERTION,
    filesAnalyzed: false as const,
    licenseConcluded: NOASSERTION,
    copyrightText: NOASSERTION,
  };
  const packages: SpdxPackage[] = [
    {
      ...base,
      name: doc.image.name,
      SPDXID: imageId,
      versionInfo: doc.image.digest,
      primaryPackagePurpose: 'CONTAINER',
      licenseDeclared: NOASSERTION,
      externalRefs: purlRef(doc.image.purl),
      comment: `package databases: ${doc.databases.length ? doc.databases.map((d) => `${d.kind} ${d.dir} (${d.packages} packages)`).join(', ') : 'none found'}`,
    },
  ];
  if (doc.os) {
    packages.push({
      ...base,
      name: doc.os.id,
      SPDXID: id('OperatingSystem', doc.os.id),
      versionInfo: doc.os.versionId,
      primaryPackagePurpose: 'OPERATING-SYSTEM',
      licenseDeclared: NOASSERTION,
      comment: doc.os.prettyName,
    });
  }
  for (const k of doc.kernels) {
    packages.push({
      ...base,
      name: 'linux',
      SPDXID: id('Kernel', k.version),
      versionInfo: k.version,
      primaryPackagePurpose: 'OPERATING-SYSTEM',
      licenseDeclared: NOASSERTION,
      comment: `/usr/lib/modules/${k.version}${k.vmlinuzSha256 ? `; vmlinuz sha256:${k.vmlinuzSha256}` : ''}`,
    });
  }
  for (const p of doc.packages) {
    packages.push({
      ...base,
      name: p.name,
      SPDXID: id(`Package-${p.type}`, `${p.name}-${p.architecture}`),
      versionInfo: p.epoch ? `${p.epoch}:${p.version}` : p.version,
      primaryPackagePurpose: 'LIBRARY',
      ...(p.sourceName ? { sourceInfo: `built package from: ${p.sourceName} ${p.sourceVersion ?? ''}`.trim() } : {}),
      ...declared(p.licenses),
      externalRefs: purlRef(p.purl),
    });
  }
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${doc.image.name}@${doc.image.digest}`,
    documentNamespace: `https://spdx.org/spdxdocs/keel-sbom-${doc.uuid}`,
    creationInfo: {
      // SPDX requires a creation time: the image's, or the epoch when the image records none.
      created: doc.image.created ?? '1970-01-01T00:00:00Z',
      creators: ['Tool: keel-sbom'],
      ...(doc.image.created ? {} : { comment: 'the image records no creation time' }),
    },
    documentDescribes: [imageId],
    packages,
    relationships: [
      { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId },
      ...packages
        .slice(1)
        .map((p) => ({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: p.SPDXID })),
    ],
  };
}

/** The problems of an SPDX 2.3 document (empty when valid by the checks above). */
export function spdxProblems(d: SpdxJson): string[] {
  const p: string[] = [];
  const req = (cond: boolean, what: string) => void (cond || p.push(what));
  req(d.spdxVersion === 'SPDX-2.3', 'spdxVersion must be SPDX-2.3');
  req(d.dataLicense === 'CC0-1.0', 'dataLicense must be CC0-1.0');
  req(d.SPDXID === 'SPDXRef-DOCUMENT', 'the document SPDXID must be SPDXRef-DOCUMENT');
  req(typeof d.name === 'string' && d.name.length > 0, 'name is required');
  req(
    /^[a-z][a-z0-9+.-]*:[^#\s]+$/i.test(d.documentNamespace ?? ''),
    'documentNamespace must be an absolute URI without #',
  );
  req(
    !Number.isNaN(Date.parse(d.creationInfo?.created ?? '')) && /Z$/.test(d.creationInfo.created),
    'creationInfo.created must be a UTC date-time',
  );
  req(
    Array.isArray(d.creationInfo?.creators) &&
      d.creationInfo.creators.length > 0 &&
      d.creationInfo.creators.every((c) => /^(Tool|Organization|Person): \S/.test(c)),
    'creationInfo.creators must list "Tool: …", "Organization: …" or "Person: …"',
  );
  const ids = new Set<string>(['SPDXRef-DOCUMENT']);
  for (const [i, pkg] of (d.packages ?? []).entries()) {
    const at = `packages[${i}] (${pkg.name})`;
    req(typeof pkg.name === 'string' && pkg.name.length > 0, `${at}: name is required`);
    req(IDSTRING.test(pkg.SPDXID), `${at}: SPDXID ${JSON.stringify(pkg.SPDXID)} is not SPDXRef-[A-Za-z0-9.-]+`);
    req(!ids.has(pkg.SPDXID), `${at}: SPDXID ${pkg.SPDXID} is not unique`);
    ids.add(pkg.SPDXID);
    req(
      typeof pkg.downloadLocation === 'string' && pkg.downloadLocation.length > 0,
      `${at}: downloadLocation is required`,
    );
    for (const f of ['licenseConcluded', 'licenseDeclared'] as const) {
      const v = pkg[f];
      req(
        v === NOASSERTION || v === 'NONE' || isSpdxExpression(v),
        `${at}: ${f} ${JSON.stringify(v)} is not an SPDX license expression`,
      );
    }
    for (const r of pkg.externalRefs ?? []) {
      req(
        ['SECURITY', 'PACKAGE-MANAGER', 'PERSISTENT-ID', 'OTHER'].includes(r.referenceCategory),
        `${at}: unknown referenceCategory`,
      );
      if (r.referenceType === 'purl') {
        try {
          PackageURL.fromString(r.referenceLocator);
        } catch (e) {
          p.push(`${at}: purl ${JSON.stringify(r.referenceLocator)} does not parse: ${(e as Error).message}`);
        }
      }
    }
  }
  for (const id of d.documentDescribes ?? []) req(ids.has(id), `documentDescribes names unknown element ${id}`);
  for (const r of d.relationships ?? []) {
    req(
      ids.has(r.spdxElementId) && ids.has(r.relatedSpdxElement),
      `relationship ${r.spdxElementId} ${r.relationshipType} ${r.relatedSpdxElement} names an unknown element`,
    );
  }
  return p;
}

/** The document as bytes, refused when it does not pass the checks. */
export function spdxJson(doc: SbomDocument): string {
  const d = spdxDocument(doc);
  const problems = spdxProblems(d);
  if (problems.length)
    throw new UserError(`the SPDX document is not valid SPDX 2.3: ${problems.slice(0, 10).join('; ')}`);
  return `${JSON.stringify(d, null, 2)}\n`;
}

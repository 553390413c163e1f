// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { cyclonedxJson, validateCyclonedx } from '../../actions/sbom/src/cyclonedx.js';
import { spdxDocument, spdxExpression, spdxJson, spdxProblems } from '../../actions/sbom/src/spdx.js';
import { packagePurl, uuidFor, type SbomDocument } from '../../actions/sbom/src/subject.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

function doc(over: Partial<SbomDocument> = {}): SbomDocument {
  const os = { id: 'debian', versionId: '13', prettyName: 'Debian 13' };
  const pkgs = [
    {
      type: 'deb' as const,
      name: 'bash',
      version: '5.2.37-2',
      architecture: 'amd64',
      sourceName: 'bash',
      sourceVersion: '5.2.37-2',
      licenses: ['GPL-3+'],
    },
    {
      type: 'deb' as const,
      name: 'libstdc++6',
      version: '14.2.0-19',
      architecture: 'amd64',
      licenses: ['GPL-3+ with GCC-exception-3.1', 'weird-license'],
    },
    {
      type: 'rpm' as const,
      name: 'keel-alpha',
      version: '2.1-3.fc40',
      epoch: '4',
      architecture: 'noarch',
      licenses: ['MIT'],
    },
  ];
  return {
    image: {
      name: '127.0.0.1:5000/distro/os',
      digest: DIGEST,
      purl: `pkg:oci/os@${DIGEST}`,
      created: '2026-01-02T03:04:05Z',
      labels: { a: 'b' },
    },
    os,
    kernels: [{ version: '6.12.1-amd64', vmlinuzSha256: 'cd'.repeat(32) }],
    databases: [{ kind: 'dpkg', dir: 'var/lib/dpkg', packages: 2 }],
    packages: pkgs.map((p) => ({ ...p, purl: packagePurl(p, os) })),
    serialNumber: `urn:uuid:${uuidFor(DIGEST)}`,
    uuid: uuidFor(DIGEST),
    ...over,
  };
}

describe('package URLs', () => {
  it('qualify deb and rpm packages with arch, distro and (rpm) epoch', () => {
    const os = { id: 'debian', versionId: '13' };
    expect(packagePurl({ type: 'deb', name: 'libstdc++6', version: '1:2.3-4', architecture: 'amd64' }, os)).toBe(
      'pkg:deb/debian/libstdc%2B%2B6@1:2.3-4?arch=amd64&distro=debian-13',
    );
    expect(
      packagePurl(
        { type: 'rpm', name: 'bash', version: '5.2-3.fc40', epoch: '1', architecture: 'x86_64' },
        { id: 'fedora', versionId: '40' },
      ),
    ).toBe('pkg:rpm/fedora/bash@5.2-3.fc40?arch=x86_64&distro=fedora-40&epoch=1');
  });
});

describe('CycloneDX', () => {
  it('writes a document the official 1.6 schema accepts, with the image, kernel and packages', () => {
    const json = cyclonedxJson(doc());
    const j = JSON.parse(json);
    expect(j).toMatchObject({
      bomFormat: 'CycloneDX',
      specVersion: '1.6',
      serialNumber: `urn:uuid:${uuidFor(DIGEST)}`,
    });
    expect(j.metadata.timestamp).toBe('2026-01-02T03:04:05.000Z');
    expect(j.metadata.component).toMatchObject({ type: 'container', version: DIGEST });
    expect(j.components.map((c: { name: string }) => c.name).sort()).toEqual([
      'bash',
      'debian',
      'keel-alpha',
      'libstdc++6',
      'linux',
    ]);
    const bash = j.components.find((c: { name: string }) => c.name === 'bash');
    expect(bash.purl).toBe('pkg:deb/debian/bash@5.2.37-2?arch=amd64&distro=debian-13');
    expect(bash.licenses).toEqual([{ license: { name: 'GPL-3+' } }]);
    expect(j.components.find((c: { name: string }) => c.name === 'keel-alpha').licenses).toEqual([
      { license: { id: 'MIT' } },
    ]);
    expect(j.components.find((c: { name: string }) => c.name === 'linux').hashes).toEqual([
      { alg: 'SHA-256', content: 'cd'.repeat(32) },
    ]);
    expect(
      j.dependencies.find((d: { ref: string }) => d.ref === j.metadata.component['bom-ref']).dependsOn,
    ).toHaveLength(5);
  });

  it('is byte-identical for the same input, whatever the order packages come in', () => {
    const a = doc();
    const b = doc({ packages: [...a.packages].reverse() });
    expect(cyclonedxJson(b)).toBe(cyclonedxJson(a));
  });

  it('the validator refuses what the schema refuses', () => {
    const good = JSON.parse(cyclonedxJson(doc()));
    good.components[0].type = 'not-a-type';
    expect(() => validateCyclonedx(JSON.stringify(good))).toThrow(/does not validate against the 1.6 schema/);
    expect(() => validateCyclonedx('{"bomFormat":"CycloneDX","specVersion":"1.6","serialNumber":"not-a-urn"}')).toThrow(
      /serialNumber|pattern/,
    );
  });
});

describe('SPDX 2.3', () => {
  it('maps Debian license names to SPDX expressions, or gives up', () => {
    expect(spdxExpression('GPL-2+')).toBe('GPL-2.0-or-later');
    expect(spdxExpression('LGPL-2.1')).toBe('LGPL-2.1-only');
    expect(spdxExpression('GPL-2+ or Artistic-1.0')).toBe('GPL-2.0-or-later OR Artistic-1.0');
    expect(spdxExpression('Expat')).toBe('MIT');
    expect(spdxExpression('bsd-3-clause')).toBe('BSD-3-Clause');
    expect(spdxExpression('GPL-3+ with GCC-exception-3.1')).toBe('GPL-3.0-or-later WITH GCC-exception-3.1');
    expect(spdxExpression('permissive')).toBeUndefined();
    expect(spdxExpression('public-domain')).toBeUndefined();
  });

  it('writes the required fields; licenses it cannot express are NOASSERTION with the original kept', () => {
    const d = spdxDocument(doc());
    expect(spdxProblems(d)).toEqual([]);
    expect(d.documentNamespace).toBe(`https://spdx.org/spdxdocs/keel-sbom-${uuidFor(DIGEST)}`);
    expect(d.creationInfo.created).toBe('2026-01-02T03:04:05Z');
    const byName = (n: string) => d.packages.find((p) => p.name === n)!;
    expect(byName('bash').licenseDeclared).toBe('GPL-3.0-or-later');
    expect(byName('bash').sourceInfo).toBe('built package from: bash 5.2.37-2');
    expect(byName('libstdc++6')).toMatchObject({
      licenseDeclared: 'NOASSERTION',
      SPDXID: 'SPDXRef-Package-deb-libstdc--6-amd64',
    });
    expect(byName('libstdc++6').licenseComments).toMatch(/weird-license/);
    expect(byName('keel-alpha').versionInfo).toBe('4:2.1-3.fc40');
    expect(d.relationships.filter((r) => r.relationshipType === 'CONTAINS')).toHaveLength(d.packages.length - 1);
  });

  it('an image without a creation time still gets a valid document that says so', () => {
    const d = spdxDocument(doc({ image: { ...doc().image, created: undefined } }));
    expect(spdxProblems(d)).toEqual([]);
    expect(d.creationInfo).toMatchObject({
      created: '1970-01-01T00:00:00Z',
      comment: 'the image records no creation time',
    });
  });

  it('the checks find a missing field, a bad identifier, a dangling relationship and a bad license', () => {
    const d = spdxDocument(doc());
    d.packages[1]!.SPDXID = 'SPDXRef-has space';
    d.packages[2]!.licenseDeclared = 'GPL-3+';
    d.relationships.push({
      spdxElementId: 'SPDXRef-Image',
      relationshipType: 'CONTAINS',
      relatedSpdxElement: 'SPDXRef-nope',
    });
    (d as { documentNamespace: string }).documentNamespace = 'no-uri#frag';
    const p = spdxProblems(d);
    expect(p.join('\n')).toMatch(/SPDXID "SPDXRef-has space"/);
    expect(p.join('\n')).toMatch(/licenseDeclared "GPL-3\+" is not an SPDX license expression/);
    expect(p.join('\n')).toMatch(/SPDXRef-nope names an unknown element/);
    expect(p.join('\n')).toMatch(/documentNamespace/);
    expect(JSON.parse(spdxJson(doc())).spdxVersion).toBe('SPDX-2.3');
  });
});

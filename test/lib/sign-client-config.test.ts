// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { policy } from '../../cli/commands/policy.js';
import { renderClientConfig } from '../../actions/lib/sign/client-config.js';
import { tmpdir } from '../harness/tools.js';

const pubPem = () =>
  crypto
    .generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .publicKey.export({ format: 'pem', type: 'spki' })
    .toString();

describe('client configuration (policy.json, registries.d, instructions)', () => {
  it('a new policy: default reject, sigstoreSigned + keyPath + matchRepository for the repository, local transports open', () => {
    const c = renderClientConfig({ image: 'ghcr.io/acme/keel-os:stable' });
    expect(c.name).toBe('keel-os');
    expect(c.keyPath).toBe('/etc/pki/containers/keel-os.pub');
    expect(c.policy.default).toEqual([{ type: 'reject' }]);
    const t = c.policy.transports as Record<string, Record<string, unknown>>;
    expect(t.docker).toEqual({
      'ghcr.io/acme/keel-os': [
        {
          type: 'sigstoreSigned',
          keyPath: '/etc/pki/containers/keel-os.pub',
          signedIdentity: { type: 'matchRepository' },
        },
      ],
    });
    for (const tr of ['containers-storage', 'dir', 'oci', 'oci-archive', 'docker-archive', 'docker-daemon']) {
      expect(t[tr]).toEqual({ '': [{ type: 'insecureAcceptAnything' }] });
    }
    expect(c.warnings).toEqual([]);
    expect(c.registriesDPath).toBe('/etc/containers/registries.d/keel-os.yaml');
    expect(parse(c.registriesD)).toEqual({ docker: { 'ghcr.io/acme': { 'use-sigstore-attachments': true } } });
    expect(c.files.map((f) => f.path)).toEqual([
      '/etc/containers/policy.json',
      '/etc/containers/registries.d/keel-os.yaml',
    ]);
    expect(c.instructions).toContain('sudo bootc switch --enforce-container-sigpolicy ghcr.io/acme/keel-os:stable');
    expect(c.instructions).toContain('ostree-image-signed:docker://ghcr.io/acme/keel-os:stable');
  });

  it('acceptOtherRegistries opens the docker "" scope; a loopback registry with a port is a valid scope', () => {
    const c = renderClientConfig({ image: '127.0.0.1:5000/t/img', acceptOtherRegistries: true });
    expect((c.policy.transports as Record<string, Record<string, unknown>>).docker!['']).toEqual([
      { type: 'insecureAcceptAnything' },
    ]);
    expect(parse(c.registriesD)).toEqual({ docker: { '127.0.0.1:5000/t': { 'use-sigstore-attachments': true } } });
    const single = renderClientConfig({ image: 'reg.local:5000/img', attachmentsScope: 'namespace' });
    expect(parse(single.registriesD)).toEqual({ docker: { 'reg.local:5000': { 'use-sigstore-attachments': true } } });
    const narrow = renderClientConfig({ image: 'ghcr.io/acme/os', attachmentsScope: 'repository' });
    expect(parse(narrow.registriesD)).toEqual({ docker: { 'ghcr.io/acme/os': { 'use-sigstore-attachments': true } } });
  });

  it("merging into an existing policy keeps the user's default and entries, and warns about insecureAcceptAnything", () => {
    const existing = {
      default: [{ type: 'insecureAcceptAnything' }],
      transports: {
        docker: { 'registry.redhat.io': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/x' }] },
        'docker-daemon': { '': [{ type: 'insecureAcceptAnything' }] },
      },
    };
    const c = renderClientConfig({
      image: 'ghcr.io/acme/os',
      existingPolicy: JSON.stringify(existing),
      keyPath: '/usr/share/pki/containers/os.pub',
    });
    expect(c.policy.default).toEqual([{ type: 'insecureAcceptAnything' }]);
    const docker = (c.policy.transports as Record<string, Record<string, unknown>>).docker!;
    expect(docker['registry.redhat.io']).toEqual(existing.transports.docker['registry.redhat.io']);
    expect(docker['ghcr.io/acme/os']).toEqual([
      {
        type: 'sigstoreSigned',
        keyPath: '/usr/share/pki/containers/os.pub',
        signedIdentity: { type: 'matchRepository' },
      },
    ]);
    expect(c.warnings.join('\n')).toMatch(/insecureAcceptAnything: bootc and rpm-ostree refuse/);
    const rejectDefault = renderClientConfig({
      image: 'ghcr.io/acme/os',
      existingPolicy: { default: [{ type: 'reject' }] },
    });
    expect(rejectDefault.warnings).toEqual([]);
    expect(() => renderClientConfig({ image: 'ghcr.io/acme/os', existingPolicy: '{nope' })).toThrow(/not valid JSON/);
    expect(() => renderClientConfig({ image: 'ghcr.io/acme/os', existingPolicy: '{}' })).toThrow(/no "default" list/);
    expect(() => renderClientConfig({ image: 'ghcr.io/acme/os', keyPath: 'relative.pub' })).toThrow(/absolute/);
  });

  it('the policy CLI command writes the files under outDir mirroring client paths, with the key', async () => {
    const dir = tmpdir();
    const pem = pubPem();
    fs.writeFileSync(path.join(dir, 'cosign.pub'), pem);
    const out = path.join(dir, 'client');
    const r = await policy({ image: 'ghcr.io/acme/keel-os', publicKeyPath: path.join(dir, 'cosign.pub'), outDir: out });
    expect(r.files.sort()).toEqual(
      [
        path.join(out, 'etc/containers/policy.json'),
        path.join(out, 'etc/containers/registries.d/keel-os.yaml'),
        path.join(out, 'etc/pki/containers/keel-os.pub'),
      ].sort(),
    );
    expect(fs.readFileSync(path.join(out, 'etc/pki/containers/keel-os.pub'), 'utf8')).toBe(pem);
    const pol = JSON.parse(fs.readFileSync(path.join(out, 'etc/containers/policy.json'), 'utf8')) as {
      transports: { docker: Record<string, unknown> };
    };
    expect(pol.transports.docker['ghcr.io/acme/keel-os']).toBeDefined();
    expect(r.instructions).toContain(`COPY ${out}/ /`);
    fs.writeFileSync(path.join(dir, 'bad.pub'), 'nope');
    await expect(
      policy({ image: 'ghcr.io/acme/keel-os', publicKeyPath: path.join(dir, 'bad.pub'), outDir: out }),
    ).rejects.toThrow(/not a public key/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

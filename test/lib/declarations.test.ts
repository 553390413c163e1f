// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import {
  DeclarationError,
  declarationsJsonSchema,
  expandTemplate,
  loadDeclarations,
  parseDeclarations,
  resolveVariants,
} from '../../actions/lib/declarations.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const good = fs.readFileSync(path.join(root, 'declarations/distro.yaml'), 'utf8');

function errorOf(text: string): DeclarationError {
  try {
    parseDeclarations(text, 'distro.yaml');
  } catch (e) {
    if (e instanceof DeclarationError) return e;
    throw e;
  }
  throw new Error('expected a DeclarationError');
}

describe('declarations', () => {
  it('the repository declaration is valid and gets defaults', () => {
    const d = loadDeclarations(path.join(root, 'declarations/distro.yaml'));
    expect(d.image.name).toBe('keel-os');
    expect(d.tags.candidate).toBe('candidate');
    expect(d['smoke-boot'].backend).toBe('direct');
    expect(d.validate['min-initramfs-mb']).toBe(30);
  });

  it('a wrong type names file, line, column, key path and what was expected', () => {
    const bad = good.replace('  timeout: 900', '  timeout: soon');
    const line = bad.split('\n').findIndex((l) => l.includes('timeout: soon')) + 1;
    const e = errorOf(bad);
    expect(e.message).toBe(`distro.yaml:${line}:12: smoke-boot.timeout: expected number, got "soon"`);
  });

  it('an unknown key (typo) is pointed at', () => {
    const bad = good.replace('  memory: 2048', '  memroy: 2048');
    const line = bad.split('\n').findIndex((l) => l.includes('memroy')) + 1;
    expect(errorOf(bad).message).toBe(`distro.yaml:${line}:3: smoke-boot: unknown key "memroy"`);
  });

  it('a missing required key points at its parent mapping', () => {
    const bad = good.replace(/^ {2}name: keel-os\n/m, '');
    const e = errorOf(bad);
    expect(e.keyPath).toBe('image.name');
    expect(e.problem).toBe('required (expected string)');
    expect(e.line).toBe(bad.split('\n').findIndex((l) => l.startsWith('  registry:')) + 1);
  });

  it('an enum value outside the set lists the allowed values', () => {
    const bad = good.replace('  backend: direct', '  backend: kvm');
    expect(errorOf(bad).message).toMatch(/smoke-boot\.backend: expected one of "direct", "uefi", "bib", got "kvm"/);
  });

  it('a list item error carries its index', () => {
    const bad = good.replace('    - name: LATEST_ISO_FILE', '    - name: 9LATEST');
    expect(errorOf(bad).keyPath).toBe('site.constants[1].name');
  });

  it('YAML syntax errors carry the position', () => {
    const e = errorOf('version: 1\nimage: [unclosed\n');
    expect(e.message).toMatch(/^distro\.yaml:\d+:\d+: YAML syntax/);
  });

  it('declares system extensions: the repository ships one, built from a tree in the repository', () => {
    const d = loadDeclarations(path.join(root, 'declarations/distro.yaml'));
    expect(d.sysexts).toEqual([
      {
        name: 'keel-hello',
        tree: 'sysexts/keel-hello',
        version: '1.0',
        'probe-command': 'keel-hello | grep "hello from a system extension of Keel OS"',
        format: 'squashfs',
        exclude: [],
        'allow-overrides': [],
      },
    ]);
    expect(fs.statSync(path.join(root, d.sysexts[0]!.tree!, 'usr/bin/keel-hello')).mode & 0o111).toBeTruthy();
  });

  it('refuses a system extension that is both or neither a tree and packages, or a tree without version', () => {
    const base = good.replace(/\nsysexts:[\s\S]*$/, '\nsysexts:\n');
    const both = `${base}  - name: x\n    tree: t\n    version: "1"\n    packages: [tree]\n`;
    expect(errorOf(both).message).toMatch(/sysexts\[0\]: give exactly one of packages and tree/);
    expect(errorOf(`${base}  - name: x\n    tree: t\n`).message).toMatch(/sysexts\[0\]: version is required with tree/);
    expect(errorOf(`${base}  - name: x_y\n    packages: [tree]\n`).message).toMatch(/sysexts\[0\]\.name: .*no "_"/);
    expect(errorOf(`${base}  - name: x\n    packages: ["-o"]\n`).message).toMatch(/sysexts\[0\]\.packages\[0\]/);
    const dup = `${base}  - name: x\n    packages: [tree]\n  - name: x\n    packages: [jq]\n`;
    expect(errorOf(dup).message).toMatch(/sysexts: extension names must be unique/);
    expect(parseDeclarations(`${base}  - name: x\n    packages: [jq]\n`).sysexts[0]).toMatchObject({
      name: 'x',
      format: 'squashfs',
    });
  });

  it('variants: the first is the main image, the others <image>-<name>; defaults from the build', () => {
    expect(resolveVariants(parseDeclarations(good))).toEqual([]);
    const d = parseDeclarations(
      `${good}\nvariants:\n  - { name: main, build-args: { DE: gnome } }\n  - { name: nvidia, target: gpu }\n  - { name: kde, image-name: keel-kde, containerfile: Containerfile.kde }\n`,
    );
    expect(resolveVariants(d)).toEqual([
      { name: 'main', imageName: 'keel-os', buildArgs: { DE: 'gnome' }, containerfile: 'Containerfile' },
      { name: 'nvidia', imageName: 'keel-os-nvidia', buildArgs: {}, containerfile: 'Containerfile', target: 'gpu' },
      { name: 'kde', imageName: 'keel-kde', buildArgs: {}, containerfile: 'Containerfile.kde' },
    ]);
  });

  it('variants: a duplicate name is refused at its path and line, a bad name or an empty list too', () => {
    const text = `${good}\nvariants:\n  - { name: main }\n  - { name: nvidia }\n  - { name: main }\n`;
    const line = text.split('\n').length - 1;
    const e = errorOf(text);
    expect(e.keyPath).toBe('variants[2].name');
    expect(e.line).toBe(line);
    expect(e.message).toMatch(/duplicate variant name "main"/);
    expect(errorOf(`${good}\nvariants:\n  - { name: Nvidia_1 }\n`).message).toMatch(
      /variants\[0\]\.name: .*\[a-z0-9-\]/,
    );
    expect(errorOf(`${good}\nvariants: []\n`).keyPath).toBe('variants');
    expect(errorOf(`${good}\nvariants:\n  - { name: a, tag: x }\n`).message).toMatch(/unknown key "tag"/);
  });

  it('the generated JSON Schema is fresh', () => {
    const committed = JSON.parse(fs.readFileSync(path.join(root, 'declarations/distro.schema.json'), 'utf8'));
    expect(committed).toEqual(declarationsJsonSchema());
  });

  it('templates expand {date}, {file}, {digest} and refuse unknown context', () => {
    expect(expandTemplate('keel-os-live-iso-{date}', { date: '20261122' })).toBe('keel-os-live-iso-20261122');
    expect(() => expandTemplate('x-{file}', { date: '20261122' })).toThrow(/uses \{file\}/);
  });
});

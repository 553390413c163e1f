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

  it('the generated JSON Schema is fresh', () => {
    const committed = JSON.parse(fs.readFileSync(path.join(root, 'declarations/distro.schema.json'), 'utf8'));
    expect(committed).toEqual(declarationsJsonSchema());
  });

  it('templates expand {date}, {file}, {digest} and refuse unknown context', () => {
    expect(expandTemplate('keel-os-live-iso-{date}', { date: '20261122' })).toBe('keel-os-live-iso-20261122');
    expect(() => expandTemplate('x-{file}', { date: '20261122' })).toThrow(/uses \{file\}/);
  });
});

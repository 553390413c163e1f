// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { asRoot } from '../../actions/lib/exec.js';
import { recordingIO } from '../../actions/lib/io.js';
import { RPM_PACKAGE_FORMAT } from '../../actions/lib/packages/rpm.js';
import { run } from '../../actions/sbom/src/main.js';
import { seedImage, startFakeRegistry, type FakeRegistry } from '../harness/fake-registry.js';
import { debianFiles, KVER } from '../harness/fake-images.js';
import { fakeRunner, type Call } from '../harness/fake-runner.js';
import { ok, playTools, toolOf } from '../harness/fake-tools.js';
import { makeOciImage } from '../harness/tools.js';

/**
 * sbom's run() through recordingIO and a fake runner: a Debian image (dpkg database, no tool
 * run) from a registry, an OCI layout or containers-storage (exported with skopeo), an rpm image
 * whose database is queried with the rpm tool (played: the argv, the private copy it reads);
 * both documents written only when both render; bad input fails before any command or request.
 */
let reg: FakeRegistry;
let work: string;
let debian: string;
let fedora: string;
const RPMDB = Buffer.from('SQLite format 3\0 (a stand-in rpm database)');
const RPM_OUT =
  'bash\t(none)\t5.2.26\t3.fc40\tx86_64\tbash-5.2.26-3.fc40.src.rpm\tGPL-3.0-or-later\n' +
  'kernel-core\t(none)\t6.9.4\t200.fc40\tx86_64\tkernel-6.9.4-200.fc40.src.rpm\tGPL-2.0-only\n' +
  'gpg-pubkey\t(none)\ta15b79cc\t63d04c2c\t(none)\t(none)\tpubkey\n';

beforeAll(async () => {
  reg = await startFakeRegistry();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-sbom-'));
  debian = await seedImage(reg, 'acme/os', 'candidate', path.join(work, 'debian'), {
    layers: [debianFiles()],
    labels: { 'org.opencontainers.image.title': 'Acme OS' },
  });
  fedora = await seedImage(reg, 'acme/fedora', 'candidate', path.join(work, 'fedora'), {
    layers: [
      {
        'usr/lib/os-release': 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=40\n',
        'usr/lib/sysimage/rpm/rpmdb.sqlite': RPMDB,
        'usr/lib/modules/6.9.4-200.fc40.x86_64/vmlinuz': 'vmlinuz\n',
      },
    ],
  });
});
afterAll(async () => {
  await reg.close();
  fs.rmSync(work, { recursive: true, force: true });
});

/** Plays `rpm --dbpath DIR -qa --qf FORMAT`: checks the copy it is given holds the image's database. */
const rpm = (stdout: string) => (call: Call) => {
  const dbpath = call.args[call.args.indexOf('--dbpath') + 1]!;
  expect(fs.readFileSync(path.join(dbpath, 'rpmdb.sqlite'))).toEqual(RPMDB);
  return stdout;
};

const sbom = (inputs: Record<string, string>, play = playTools({}), tools?: string[]) => {
  const workspace = fs.mkdtempSync(path.join(work, 'ws-'));
  const runner = fakeRunner(play, { tools });
  const io = recordingIO({ 'tls-verify': 'false', ...inputs }, { workspace, runnerTemp: work }, runner);
  return { io, runner, workspace, done: run(io) };
};
const json = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
const componentNames = (cdx: Record<string, unknown>) =>
  (cdx.components as { name: string }[]).map((c) => c.name).sort();

describe('sbom run()', () => {
  it('a Debian image from the registry: CycloneDX and SPDX from its dpkg database, no tool run', async () => {
    const { io, runner, workspace, done } = sbom({
      'image-ref': `${reg.host}/acme/os@${debian}`,
      formats: 'cyclonedx\nspdx',
    });
    await done;
    const out = path.join(workspace, 'sbom-out');
    expect(io.outputs).toEqual({
      cyclonedx: path.join(out, 'sbom.cdx.json'),
      spdx: path.join(out, 'sbom.spdx.json'),
      packages: '3',
      databases: 'dpkg:var/lib/dpkg',
      digest: debian,
    });
    const cdx = json(io.outputs.cyclonedx!);
    expect(cdx.bomFormat).toBe('CycloneDX');
    expect(componentNames(cdx)).toEqual(expect.arrayContaining(['bash', 'libc6', `linux-image-${KVER}`]));
    expect(JSON.stringify(cdx)).toContain('GPL-3+');
    expect(json(io.outputs.spdx!).spdxVersion).toBe('SPDX-2.3');
    expect(io.groups).toEqual([`read the package databases of ${reg.host}/acme/os@${debian}`]);
    expect(io.summaries.join('')).toContain(
      `| \`${reg.host}/acme/os\` | \`${debian}\` | keel 13 | ${KVER} | 3 | cyclonedx, spdx |`,
    );
    expect(runner.calls).toEqual([]);
    // Nothing left in the runner's temp directory.
    expect(fs.readdirSync(work).filter((n) => n.startsWith('keel-sbom-'))).toEqual([]);
  });

  it('the same image from an OCI layout and from containers-storage (exported with skopeo) gives the same packages', async () => {
    const layout = makeOciImage(path.join(work, 'layout'), { tag: 'keel', layers: [debianFiles()] });
    const fromLayout = sbom({ 'image-ref': `oci:${layout.dir}:keel` });
    await fromLayout.done;
    expect(fromLayout.io.outputs).toMatchObject({ packages: '3', digest: layout.digest });
    expect(fromLayout.runner.calls).toEqual([]);

    const skopeo = (call: Call) => {
      const dest = toolOf(call).args.at(-1)!;
      const [, dir, tag] = /^oci:(.*):([^:]+)$/.exec(dest)!;
      makeOciImage(dir!, { tag, layers: [debianFiles()] });
      return ok();
    };
    const fromStorage = sbom({ 'image-ref': 'containers-storage:localhost/acme-os:candidate' }, playTools({ skopeo }));
    await fromStorage.done;
    const [cmd, args] = asRoot('skopeo', ['copy', '--quiet', '--', 'containers-storage:localhost/acme-os:candidate']);
    expect(fromStorage.runner.calls[0]!.cmd).toBe(cmd);
    expect(fromStorage.runner.calls[0]!.args.slice(0, args.length)).toEqual(args);
    expect(fromStorage.runner.calls[0]!.args.at(-1)).toMatch(/^oci:.*\/keel-read-[^/]+:keel$/);
    expect(fromStorage.io.outputs.packages).toBe('3');
    const cdx = json(fromStorage.io.outputs.cyclonedx!);
    expect(JSON.stringify(cdx.metadata)).toContain('localhost/acme-os');
  });

  it('an rpm image: its database copied out and read with rpm --dbpath, gpg-pubkey left out', async () => {
    const { io, runner, done } = sbom(
      { 'image-ref': `${reg.host}/acme/fedora@${fedora}`, formats: 'spdx', 'output-dir': 'out/sbom' },
      playTools({ rpm: rpm(RPM_OUT) }),
    );
    await done;
    expect(runner.calls.map((c) => [c.cmd, ...c.args.filter((a) => !a.includes('keel-rpmdb-'))])).toEqual([
      ['rpm', '--dbpath', '-qa', '--qf', RPM_PACKAGE_FORMAT],
    ]);
    expect(io.outputs).toMatchObject({ packages: '2', databases: 'rpm:usr/lib/sysimage/rpm', digest: fedora });
    expect(io.outputs.cyclonedx).toBeUndefined();
    expect(io.outputs.spdx).toMatch(/\/out\/sbom\/sbom\.spdx\.json$/);
    // The work directory, with the private copy of the database in it, is gone.
    const dbpath = runner.calls[0]!.args[1]!;
    expect(fs.existsSync(dbpath)).toBe(false);
  });

  it.each([
    [
      'rpm is not installed here',
      playTools({}),
      [] as string[],
      /rpm database \(usr\/lib\/sysimage\/rpm\) but the rpm tool is not installed here/,
    ],
    [
      'rpm answers something that is not its record',
      playTools({ rpm: rpm('bash 5.2\n') }),
      undefined,
      /package 1: not the NAME EPOCH VERSION RELEASE ARCH SOURCERPM LICENSE record/,
    ],
  ])('fails when %s, writing nothing', async (_what, play, tools, message) => {
    const { io, workspace, done } = sbom({ 'image-ref': `${reg.host}/acme/fedora@${fedora}` }, play, tools);
    await expect(done).rejects.toThrow(message);
    expect(fs.readdirSync(workspace)).toEqual([]);
    expect(io.outputs).toEqual({});
  });

  it.each([
    ['an unknown format', { formats: 'cyclonedx\nswid' }, /^Input 'formats'.*expected one of: cyclonedx, spdx/],
    ['no image', { 'image-ref': '' }, /^Input 'image-ref'.*required/],
    [
      'an option-like local name',
      { 'image-ref': 'containers-storage:-x' },
      /^Input 'image-ref' has value "containers-storage:-x"/,
    ],
    ['a malformed reference', { 'image-ref': 'Not A Ref' }, /^Input 'image-ref' has value "Not A Ref"/],
  ])('refuses %s before any command, request or file', async (_what, extra, message) => {
    const before = reg.requests.length;
    const { io, runner, workspace, done } = sbom({ 'image-ref': `${reg.host}/acme/os@${debian}`, ...extra });
    await expect(done).rejects.toThrow(message);
    expect(reg.requests.length).toBe(before);
    expect(runner.calls).toEqual([]);
    expect(fs.readdirSync(workspace)).toEqual([]);
    expect(io.outputs).toEqual({});
  });
});

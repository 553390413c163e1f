// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { processRunner } from '../../actions/lib/exec.js';
import { withGpgKey } from '../../actions/lib/gpg.js';
import { formatOsRelease, parseOsRelease } from '../../actions/lib/os-release.js';
import { ContentError, decideContent, type ContentEntry, type ContentRules } from '../../actions/lib/sysext/content.js';
import { fsImageArgv } from '../../actions/lib/sysext/fs-image.js';
import {
  DEBIAN_PACKAGE,
  imageFileName,
  SYSEXT_NAME,
  SYSEXT_VERSION,
  systemdArchitecture,
  versionFromDebian,
} from '../../actions/lib/sysext/naming.js';
import { extensionRelease, extensionReleaseMismatches } from '../../actions/lib/sysext/release.js';
import { baseUrlProblem, featureFile, transferFile } from '../../actions/lib/sysext/sysupdate.js';
import { netUpFunction, probePatterns, probeReport, probeScript } from '../../actions/sysext/src/probe.js';
import { treeSource } from '../../actions/sysext/src/source.js';
import { sh, tmpdir } from '../harness/tools.js';

const base = {
  osRelease: parseOsRelease('NAME="Keel OS"\nID=keel-os\nID_LIKE="debian"\nVERSION_ID="13"\n'),
  architecture: 'x86-64',
};

describe('os-release', () => {
  it('reads quoted, escaped and commented files the way systemd does', () => {
    expect(
      parseOsRelease(
        '# comment\nNAME="Keel \\"OS\\""\nID=keel-os\nPRETTY_NAME=\'single $quoted\'\n bogus line\n9X=1\nVERSION_ID="13"\r\n',
      ),
    ).toEqual({ NAME: 'Keel "OS"', ID: 'keel-os', PRETTY_NAME: 'single $quoted', VERSION_ID: '13' });
  });

  it('writes values back so they parse to the same thing, and refuses line breaks', () => {
    const entries: [string, string][] = [
      ['ID', 'keel-os'],
      ['PRETTY_NAME', 'Keel "OS" $HOME `x` \\'],
    ];
    const text = formatOsRelease(entries);
    expect(text).toBe('ID=keel-os\nPRETTY_NAME="Keel \\"OS\\" \\$HOME \\`x\\` \\\\"\n');
    expect(parseOsRelease(text)).toEqual(Object.fromEntries(entries));
    expect(() => formatOsRelease([['ID', 'a\nVERSION_ID=1']])).toThrow(/line break/);
  });
});

describe('sysext naming', () => {
  it('names images the way sysupdate matches them', () => {
    expect(imageFileName('hello', '1.2', 'x86-64')).toBe('hello_1.2_x86-64.raw');
    expect(systemdArchitecture('amd64')).toBe('x86-64');
    expect(systemdArchitecture('arm64')).toBe('arm64');
    expect(systemdArchitecture('sparc')).toBeUndefined();
  });

  it('keeps "_" out of names and versions (it separates the file name parts)', () => {
    expect(['hello', 'my-tools', 'x1'].every((n) => SYSEXT_NAME.test(n))).toBe(true);
    expect(['my_tools', '-x', 'x-', 'Hello', '', 'a/b'].some((n) => SYSEXT_NAME.test(n))).toBe(false);
    expect(['1', '1.2.3', '257.13-1.deb13u1', '2.0+git1'].every((v) => SYSEXT_VERSION.test(v))).toBe(true);
    expect(['1_2', '1~2', '1:2', '.1', '1 2', ''].some((v) => SYSEXT_VERSION.test(v))).toBe(false);
  });

  it('turns Debian versions into sysupdate versions', () => {
    expect(versionFromDebian('257.13-1~deb13u1')).toBe('257.13-1.deb13u1');
    expect(versionFromDebian('1:2.41-5')).toBe('2.41-5');
    expect(versionFromDebian('2.0~rc1')).toBe('2.0.rc1');
    expect(SYSEXT_VERSION.test(versionFromDebian('1:9.9~beta_2+b1'))).toBe(true);
  });

  it('accepts package names, pins and releases, never an option', () => {
    for (const p of ['tree', 'systemd-container', 'libc6=2.41-12', 'gcc-14/trixie-backports', 'g++'])
      expect([p, DEBIAN_PACKAGE.test(p)]).toEqual([p, true]);
    for (const p of ['-o', '--allow-unauthenticated', 'a b', 'x;rm', 'Tree'])
      expect([p, DEBIAN_PACKAGE.test(p)]).toEqual([p, false]);
  });
});

describe('extension-release', () => {
  it('binds to VERSION_ID, or to SYSEXT_LEVEL when the base declares one', () => {
    const text = extensionRelease(base, { name: 'hello', version: '1.0' });
    expect(parseOsRelease(text)).toEqual({
      ID: 'keel-os',
      VERSION_ID: '13',
      ARCHITECTURE: 'x86-64',
      SYSEXT_ID: 'hello',
      SYSEXT_VERSION_ID: '1.0',
      EXTENSION_RELOAD_MANAGER: '1',
    });
    expect(extensionReleaseMismatches(text, base)).toEqual([]);
    const leveled = { ...base, osRelease: { ...base.osRelease, SYSEXT_LEVEL: '2.1' } };
    const t2 = parseOsRelease(extensionRelease(leveled, { name: 'hello', version: '1.0' }));
    expect([t2.SYSEXT_LEVEL, t2.VERSION_ID]).toEqual(['2.1', undefined]);
  });

  it("names every field systemd would reject, as systemd-sysext's rules decide", () => {
    expect(extensionReleaseMismatches('ID=keel-os\nVERSION_ID=12\n', base)).toEqual([
      'VERSION_ID=12, the base has VERSION_ID=13',
    ]);
    expect(extensionReleaseMismatches('ID=fedora\nVERSION_ID=13\nARCHITECTURE=arm64\n', base)).toEqual([
      'ARCHITECTURE=arm64, the base is x86-64',
      'ID=fedora, the base has ID=keel-os',
    ]);
    expect(extensionReleaseMismatches('ID=keel-os\n', base)).toEqual([
      'it has no VERSION_ID= (the base has VERSION_ID=13)',
    ]);
    expect(extensionReleaseMismatches('VERSION_ID=13\n', base)[0]).toMatch(/no ID=/);
    // _any skips the ID and version checks; a SYSEXT_LEVEL on both sides replaces VERSION_ID.
    expect(extensionReleaseMismatches('ID=_any\n', base)).toEqual([]);
    const leveled = { ...base, osRelease: { ...base.osRelease, SYSEXT_LEVEL: '2' } };
    expect(extensionReleaseMismatches('ID=keel-os\nSYSEXT_LEVEL=2\nVERSION_ID=99\n', leveled)).toEqual([]);
    expect(extensionReleaseMismatches('ID=keel-os\nSYSEXT_LEVEL=3\n', leveled)).toEqual([
      'SYSEXT_LEVEL=3, the base has SYSEXT_LEVEL=2',
    ]);
  });
});

describe('extension content', () => {
  const baseIndex = new Map<string, { type: string }>(
    [
      ['usr', 'dir'],
      ['usr/bin', 'dir'],
      ['usr/bin/ls', 'file'],
      ['usr/lib', 'dir'],
      ['usr/lib/os-release', 'file'],
      ['usr/lib64', 'symlink'],
      ['etc', 'dir'],
      ['etc/systemd', 'dir'],
      ['etc/systemd/system', 'dir'],
      ['var', 'dir'],
      ['var/lib', 'dir'],
      ['tmp', 'dir'],
    ].map(([p, t]) => [p!, { type: t! }]),
  );
  const e = (p: string, type: ContentEntry['type'] = 'file', linkname?: string): ContentEntry => ({
    path: p,
    type,
    linkname,
  });
  const rules: ContentRules = { mode: 'packages', exclude: [], allowOverrides: [], name: 'hello' };
  const refusal = (entries: ContentEntry[], r: Partial<typeof rules> = {}) => {
    try {
      decideContent(entries, baseIndex, { ...rules, ...r });
    } catch (err) {
      if (err instanceof ContentError) return err;
      throw err;
    }
    throw new Error('not refused');
  };

  it('ships /usr and /opt, drops package-manager state, keeps base directories merged', () => {
    const d = decideContent(
      [
        e('.', 'dir'),
        e('usr', 'dir'),
        e('usr/bin', 'dir'),
        e('usr/bin/hello'),
        e('usr/lib/sysimage/dpkg/status'),
        e('etc', 'dir'),
        e('etc/ld.so.cache'),
        e('var', 'dir'),
        e('var/cache/apt/pkgcache.bin'),
        e('var/lib/apt/lists/x'),
        e('var/log/dpkg.log'),
        e('tmp', 'dir'),
        e('opt', 'dir'),
        e('opt/tool/bin/t'),
      ],
      baseIndex,
      rules,
    );
    expect(d.ship.map((x) => x.path)).toEqual(['usr', 'usr/bin', 'usr/bin/hello', 'opt', 'opt/tool/bin/t']);
    expect(d.bookkeeping).toBe(6); // with tmp/, copied up by the build
  });

  it('names every path outside /usr and /opt: what a postinst wrote, new directories', () => {
    const err = refusal([
      e('usr/bin/hello'),
      e('etc', 'dir'),
      e('etc/systemd/system', 'dir'),
      e('etc/systemd/system/multi-user.target.wants', 'dir'),
      e('etc/systemd/system/multi-user.target.wants/machines.target', 'symlink'),
      e('etc/hello.conf'),
      e('var/lib/machines', 'dir'),
    ]);
    expect(err.message).toMatch(
      /3 path\(s\) outside \/usr and \/opt .*: \/etc\/hello\.conf, \/etc\/systemd\/system\/multi-user\.target\.wants\/machines\.target, \/var\/lib\/machines/,
    );
    expect(err.message).not.toMatch(/\/etc,|\/etc\/systemd\/system,/);
  });

  it('drops excluded paths deliberately, with everything below them', () => {
    const d = decideContent(
      [
        e('usr/bin/hello'),
        e('etc/systemd/system/multi-user.target.wants/machines.target', 'symlink'),
        e('var/lib/machines', 'dir'),
        e('var/lib/machines/x', 'dir'),
      ],
      baseIndex,
      { ...rules, exclude: ['/etc/systemd/system/multi-user.target.wants/machines.target', '/var/lib/machines/'] },
    );
    expect(d.excluded).toEqual([
      'etc/systemd/system/multi-user.target.wants/machines.target',
      'var/lib/machines',
      'var/lib/machines/x',
    ]);
    expect(d.ship.map((x) => x.path)).toEqual(['usr/bin/hello']);
  });

  it("in a prepared tree, everything outside is the user's and refused (no bookkeeping)", () => {
    const err = refusal([e('usr/bin/hello'), e('etc', 'dir'), e('etc/hello.conf'), e('var/cache/x')], { mode: 'tree' });
    expect(err.message).toMatch(/2 path\(s\) outside .*: \/etc\/hello\.conf, \/var\/cache\/x/);
    const empty = refusal([e('usr/bin/hello'), e('srv', 'dir')], { mode: 'tree' });
    expect(empty.message).toMatch(/: \/srv$/);
  });

  it('refuses shadowing a base file unless declared, and any removal', () => {
    const err = refusal([e('usr/bin/ls'), e('usr/lib/os-release'), e('usr/lib64', 'dir'), e('usr/bin/.wh.ls')]);
    expect(err.message).toMatch(
      /3 path\(s\) would shadow a file of the base .*: \/usr\/bin\/ls, \/usr\/lib\/os-release, \/usr\/lib64/,
    );
    expect(err.message).toMatch(/1 path\(s\) of the base removed .*: \/usr\/bin\/ls/);
    const d = decideContent([e('usr/bin/ls'), e('usr/bin/hello')], baseIndex, {
      ...rules,
      allowOverrides: ['/usr/bin/ls'],
    });
    expect(d.overrides).toEqual(['usr/bin/ls']);
    // A whiteout of something only the build created is no removal from the base.
    expect(decideContent([e('usr/bin/hello'), e('usr/share/x/.wh.tmp')], baseIndex, rules).ship).toHaveLength(1);
  });

  it('refuses devices, foreign release files, unsafe names and dangling hardlinks', () => {
    const err = refusal([
      e('usr/bin/hello'),
      e('usr/lib/null', 'char'),
      e('usr/lib/extension-release.d/extension-release.other'),
      e('usr/bin/h2', 'hardlink', 'etc/passwd'),
      e('usr/../etc/shadow'),
    ]);
    expect(err.message).toMatch(/usr\/lib\/null \(char\)/);
    expect(err.message).toMatch(/extension-release\.other/);
    expect(err.message).toMatch(/hardlinks to paths that are not shipped: \/usr\/bin\/h2/);
    expect(err.message).toMatch(/unsafe names: \/usr\/\.\.\/etc\/shadow/);
  });

  it('refuses an extension with nothing to ship', () => {
    expect(() => decideContent([e('usr', 'dir'), e('usr/lib/sysimage/dpkg/status')], baseIndex, rules)).toThrow(
      /holds nothing under \/usr or \/opt/,
    );
  });
});

describe('sysupdate client files', () => {
  it('writes a transfer systemd-sysupdate and updex read: url-file source, versioned pattern, signature required', () => {
    const t = transferFile({
      name: 'hello',
      architecture: 'x86-64',
      baseUrl: 'https://archive.org/download/keel-hello/',
    });
    const sections = Object.fromEntries(
      t
        .split(/^(?=\[)/m)
        .filter((s) => s.startsWith('['))
        .map((s) => [
          /^\[(\w+)\]/.exec(s)![1],
          Object.fromEntries(
            s
              .split('\n')
              .slice(1)
              .filter((l) => l.includes('='))
              .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
          ),
        ]),
    );
    expect(sections).toEqual({
      Transfer: { Features: 'hello', Verify: 'yes' },
      Source: {
        Type: 'url-file',
        Path: 'https://archive.org/download/keel-hello',
        MatchPattern: 'hello_@v_x86-64.raw',
      },
      Target: {
        Type: 'regular-file',
        Path: '/var/lib/extensions/',
        MatchPattern: 'hello_@v_x86-64.raw',
        Mode: '0444',
        InstancesMax: '2',
      },
    });
    expect(featureFile({ name: 'hello', description: 'Hello\ntools' })).toBe(
      '[Feature]\nDescription=Hello tools\nEnabled=false\n',
    );
  });

  it('refuses base URLs that could break out of the INI value or be expanded by systemd', () => {
    expect(baseUrlProblem('https://example.org/sysext')).toBeUndefined();
    for (const u of [
      'ftp://x/y',
      'https://x/a b',
      'https://x/%a',
      'https://user@x/',
      'https://x/y?z=1',
      'https://x/\nPath=evil',
      'not a url',
    ])
      expect([u, baseUrlProblem(u)]).toEqual([u, expect.any(String)]);
    expect(() => transferFile({ name: 'h', architecture: 'x86-64', baseUrl: 'https://x/\n[Source]' })).toThrow();
  });
});

describe('the guest probe', () => {
  it('reads its own tagged lines only, and passes only on its own PASS line', () => {
    const { pass, fail } = probePatterns('abc123');
    const lines = [
      '[   20.1] keel-sysext-abc123: START hello 1.0',
      '[   20.2] keel-sysext-abc123: MERGED at boot',
      '[   20.3] keel-sysext-ffffff: PASS forged by the image',
      '[   20.4] keel-sysext-abc123: PROBE-COMMAND ok',
      '[   21.0] keel-sysext-abc123: SYSUPDATE ok: the transfer parsed, SHA256SUMS.gpg verified, version 1.0 listed',
      '[   21.1] keel-sysext-abc123: PASS hello 1.0 merged',
    ];
    const r = probeReport('abc123', lines);
    expect([r.started, r.merged, r.probeCommand, r.sysupdate]).toEqual([
      true,
      'at boot',
      'ok',
      'ok: the transfer parsed, SHA256SUMS.gpg verified, version 1.0 listed',
    ]);
    expect(lines.filter((l) => pass.test(l))).toEqual([lines[5]]);
    expect(fail.test('keel-sysext-abc123: FAIL probe-command exited 1')).toBe(true);
  });

  it('is a valid shell script that quotes what it is given', () => {
    const dir = tmpdir('keel-probe-');
    const f = path.join(dir, 'probe.sh');
    const spec = {
      nonce: 'n',
      name: "it's",
      version: '1',
      file: 'x.raw',
      probeCommand: 'true',
      sysupdate: true,
      signed: true,
    };
    fs.writeFileSync(f, probeScript(spec));
    sh('sh', ['-n', f]);
    expect(probeScript(spec)).toContain(`NAME='it'\\''s'`);
  });
});

/**
 * The guest's network bring-up, run under sh with stand-ins for ip, udevadm and sleep. The ip
 * stand-in plays udev renaming eth0 to enp0s2 while the probe is about to configure it, as the
 * console of a failed run showed ("enp0s2: renamed from eth0 (while UP)", then the probe failed).
 */
describe('the probe brings the guest network up', () => {
  const IP_STAND_IN = `#!/bin/sh
echo "$*" >> "$STATE/ip.log"
case "$*" in
  "link set eth0 up") [ -d "$NET/eth0" ] && mv "$NET/eth0" "$NET/enp0s2"; echo 'Cannot find device "eth0"' >&2; exit 1 ;;
  "link set "*" up") [ -z "$IP_DOWN" ] || { echo "$IP_DOWN" >&2; exit 2; } ;;
  "-o addr show dev "*) cat "$STATE/addr" 2>/dev/null ;;
  "addr add "*) echo "2: $5    inet $3 scope global $5" >> "$STATE/addr" ;;
esac
`;

  function bringUp(devices: string[], env: Record<string, string> = {}) {
    const dir = tmpdir('keel-net-up-');
    const [bin, net, state] = [path.join(dir, 'bin'), path.join(dir, 'net'), path.join(dir, 'state')];
    for (const d of [bin, net, state]) fs.mkdirSync(d);
    for (const d of ['lo', ...devices]) fs.mkdirSync(path.join(net, d));
    fs.writeFileSync(path.join(bin, 'ip'), IP_STAND_IN, { mode: 0o755 });
    for (const tool of ['udevadm', 'sleep']) fs.writeFileSync(path.join(bin, tool), '#!/bin/sh\n', { mode: 0o755 });
    const script = `say() { echo "$*"; }\nfail() { say "FAIL $*"; exit 1; }\n${netUpFunction()}\nnet_up "$NET"\n`;
    const r = spawnSync('sh', ['-c', script], {
      encoding: 'utf8',
      env: { PATH: `${bin}:${process.env.PATH}`, NET: net, STATE: state, ...env },
    });
    const read = (f: string) =>
      fs.existsSync(path.join(state, f)) ? fs.readFileSync(path.join(state, f), 'utf8') : '';
    return { status: r.status, out: r.stdout, ipCalls: read('ip.log').trim().split('\n'), addr: read('addr') };
  }

  it('reads the name again when udev renamed the device under it, and adds the address once', () => {
    const r = bringUp(['eth0']);
    expect(r.out).toBe('');
    expect(r.status).toBe(0);
    expect(r.ipCalls).toEqual([
      'link set eth0 up',
      'link set enp0s2 up',
      '-o addr show dev enp0s2',
      'addr add 10.0.2.15/24 dev enp0s2',
    ]);
    expect(r.addr).toBe('2: enp0s2    inet 10.0.2.15/24 scope global enp0s2\n');
  });

  it('fails naming the device and what ip said when it cannot be configured', () => {
    const r = bringUp(['enp0s2'], { IP_DOWN: 'RTNETLINK answers: Operation not permitted' });
    expect(r.status).toBe(1);
    expect(r.out).toBe('FAIL cannot configure the network device enp0s2: RTNETLINK answers: Operation not permitted\n');
    expect(r.ipCalls).toHaveLength(30);
  });

  it('fails saying so when the guest has no network device', () => {
    const r = bringUp([]);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/^FAIL cannot configure the network device \(none\): no network device in \//);
    expect(r.ipCalls).toEqual(['']);
  });
});

describe('a prepared tree as content', () => {
  it('is read in name order, symlinks not followed, modes as git records them whatever the umask', async () => {
    const d = tmpdir('keel-tree-src-');
    fs.mkdirSync(path.join(d, 'usr/bin'), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(d, 'usr/bin/b'), 'x', { mode: 0o700 });
    fs.writeFileSync(path.join(d, 'usr/bin/a'), 'y', { mode: 0o600 });
    fs.symlinkSync('/etc/shadow', path.join(d, 'usr/bin/c'));
    fs.chmodSync(path.join(d, 'usr'), 0o750);
    const src = treeSource(d);
    expect(await src.entries()).toEqual([
      { path: '.', type: 'dir' },
      { path: 'usr', type: 'dir' },
      { path: 'usr/bin', type: 'dir' },
      { path: 'usr/bin/a', type: 'file' },
      { path: 'usr/bin/b', type: 'file' },
      { path: 'usr/bin/c', type: 'symlink' },
    ]);
    const headers = [];
    for await (const e of src.stream()) {
      if (e.body && !Buffer.isBuffer(e.body)) for await (const _ of e.body) void _;
      headers.push([e.header.path, e.header.mode.toString(8), e.header.uid, e.header.linkname]);
    }
    expect(headers).toEqual([
      ['.', '755', 0, ''],
      ['usr', '755', 0, ''],
      ['usr/bin', '755', 0, ''],
      ['usr/bin/a', '644', 0, ''],
      ['usr/bin/b', '755', 0, ''],
      ['usr/bin/c', '777', 0, '/etc/shadow'],
    ]);
  });
});

describe('image file systems', () => {
  const tree = () => {
    const d = tmpdir('keel-fs-tree-');
    fs.mkdirSync(path.join(d, 'usr/bin'), { recursive: true });
    fs.mkdirSync(path.join(d, 'usr/share/hello'), { recursive: true });
    fs.writeFileSync(path.join(d, 'usr/bin/hello'), '#!/bin/sh\necho hello\n', { mode: 0o755 });
    fs.writeFileSync(path.join(d, 'usr/share/hello/data'), 'x'.repeat(5000));
    fs.symlinkSync('hello', path.join(d, 'usr/bin/hi'));
    return d;
  };

  it.each(['squashfs', 'erofs'] as const)('%s: the same tree gives the same bytes, whatever the mtimes', (format) => {
    const digests = [0, 1].map((i) => {
      const d = tree();
      if (i) fs.utimesSync(path.join(d, 'usr/bin/hello'), new Date(2001, 1, 1), new Date(2001, 1, 1));
      const out = path.join(tmpdir('keel-fs-out-'), 'img.raw');
      const [cmd, args] = fsImageArgv(format, d, out, 'hello/1.0');
      sh(cmd, args);
      return crypto.createHash('sha256').update(fs.readFileSync(out)).digest('hex');
    });
    expect(digests[0]).toBe(digests[1]);
  });
});

describe('gpg signing', () => {
  it('signs in a throw-away home, the signature verifies with gpg and fails after tampering', async () => {
    const dir = tmpdir('keel-gpg-');
    const gen = path.join(dir, 'gen');
    fs.mkdirSync(gen, { mode: 0o700 });
    // A low key-derivation count: protecting the key with the calibrated default takes seconds.
    fs.writeFileSync(path.join(gen, 'gpg-agent.conf'), 's2k-count 65536\n');
    const env = { ...process.env, GNUPGHOME: gen };
    sh(
      'gpg',
      ['--batch', '--passphrase', 'pw', '--quick-gen-key', 'Keel Test <keel@example.org>', 'ed25519', 'sign', 'never'],
      { env },
    );
    const key = sh(
      'gpg',
      [
        '--batch',
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        'pw',
        '--s2k-count',
        '65536',
        '--armor',
        '--export-secret-keys',
      ],
      { env },
    );
    const pub = path.join(dir, 'pub.gpg');
    const file = path.join(dir, 'SHA256SUMS');
    fs.writeFileSync(file, `${'a'.repeat(64)}  hello_1_x86-64.raw\n`);
    const runner = processRunner();
    const fpr = await withGpgKey({ armoredKey: key, passphrase: 'pw', tmpDir: dir, runner }, async (g) => {
      await g.detachSign(file, `${file}.gpg`);
      await g.exportPublic(pub);
      return g.fingerprint;
    });
    expect(fpr).toMatch(/^[0-9A-F]{40}$/);
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('keel-gnupg-'))).toEqual([]);
    // An independent verifier: a fresh keyring holding only the exported public key.
    const verify = () =>
      spawnSync(
        'gpg',
        [
          '--batch',
          '--no-default-keyring',
          '--keyring',
          pub,
          '--trust-model',
          'always',
          '--verify',
          `${file}.gpg`,
          file,
        ],
        { env: { ...process.env, GNUPGHOME: tmpdir('keel-gpg-verify-') }, encoding: 'utf8' },
      );
    expect(verify().status).toBe(0);
    fs.appendFileSync(file, `${'b'.repeat(64)}  evil_2_x86-64.raw\n`);
    expect(verify().status).toBe(1);
    await expect(withGpgKey({ armoredKey: 'not a key', tmpDir: dir, runner }, async () => 'x')).rejects.toThrow(
      /gpg-private-key.*ASCII-armored/,
    );
    expect(key.length).toBeGreaterThan(100);
    // A job temp directory too deep for gpg-agent's socket (keel run's are): the home goes to the
    // system temp directory, the key still imports and signs, and nothing is left behind.
    const deep = path.join(dir, 'd'.repeat(60), 'jobs', 'sysext (keel-hello)', 'temp');
    fs.mkdirSync(deep, { recursive: true });
    const before = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('keel-gnupg-'));
    await withGpgKey({ armoredKey: key, passphrase: 'pw', tmpDir: deep, runner }, (g) =>
      g.detachSign(file, `${file}.deep.gpg`),
    );
    expect(fs.existsSync(`${file}.deep.gpg`)).toBe(true);
    expect(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('keel-gnupg-'))).toEqual(before);
    expect(fs.readdirSync(deep)).toEqual([]);
    sh('gpgconf', ['--kill', 'gpg-agent'], { env });
  });
});

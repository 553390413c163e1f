import fs from 'node:fs';
import type { Writable } from 'node:stream';
import type { CommandRunner, RunResult } from '../../actions/lib/exec.js';
import type { Call } from './fake-runner.js';

export type { Call } from './fake-runner.js';

/** Digests and image IDs the fake buildah answers with. */
export const D_BASE = `sha256:${'1'.repeat(64)}`;
export const ID1 = 'a'.repeat(64);
export const ID2 = 'b'.repeat(64);
export const D_IMG = `sha256:${'2'.repeat(64)}`;

/** Plays buildah: the labels of a built image are the --label flags of the build that made it. */
export function fakeBuildah(opts: {
  rootfs: string;
  baseExists?: boolean;
  print?: string;
  secondPassOtherLayers?: boolean;
  /** Play a Containerfile that builds FROM another image: the base is never pulled. */
  ignoreBase?: boolean;
}) {
  const calls: Call[] = [];
  const images = new Map<string, { labels: Record<string, string>; diff: string[]; digest: string }>();
  if (opts.baseExists ?? true) {
    // A local image answers to its tag and to name@digest.
    const base = { labels: { 'ostree.linux': 'inherited-kver' }, diff: ['sha256:base'], digest: D_BASE };
    images.set('localhost/acme-base:trixie', base);
    images.set(`localhost/acme-base@${D_BASE}`, base);
  }
  let builds = 0;
  const ok = (stdout = ''): RunResult => ({ code: 0, stdout: Buffer.from(stdout), stderr: '' });
  const runner: CommandRunner = {
    async run(cmd, argv, o = {}) {
      calls.push({ cmd, args: argv, opts: o });
      if (cmd === 'git') return ok('c0ffee'.padEnd(40, '0'));
      const args = argv[0] === '--storage-driver' ? argv.slice(2) : argv;
      switch (args[0]) {
        case 'inspect': {
          const name = args.at(-1)!;
          const img = images.get(name);
          if (!img) return { code: 125, stdout: Buffer.alloc(0), stderr: 'Error: image not known' };
          return ok(
            JSON.stringify({
              FromImageID: name.length === 64 ? name : 'f'.repeat(64),
              FromImageDigest: img.digest,
              OCIv1: { config: { Labels: img.labels }, rootfs: { diff_ids: img.diff } },
            }),
          );
        }
        case 'build': {
          builds++;
          // The build pulls the pinned base (BASE_IMAGE) unless asked to build FROM something else.
          const baseArg = args.find((a, i) => args[i - 1] === '--build-arg' && a.startsWith('BASE_IMAGE='));
          if (baseArg && !opts.ignoreBase)
            images.set(baseArg.slice('BASE_IMAGE='.length), { labels: {}, diff: ['sha256:base'], digest: D_BASE });
          const id = builds === 1 ? ID1 : ID2;
          const labels: Record<string, string> = {};
          for (let i = 0; i < args.length; i++) {
            if (args[i] === '--label') {
              const [k, ...v] = args[i + 1]!.split('=');
              labels[k!] = v.join('=');
            }
          }
          const diff =
            builds > 1 && opts.secondPassOtherLayers
              ? ['sha256:other']
              : opts.ignoreBase
                ? ['sha256:elsewhere', 'sha256:stages']
                : ['sha256:base', 'sha256:stages'];
          images.set(id, { labels, diff, digest: D_IMG });
          fs.writeFileSync(args[args.indexOf('--iidfile') + 1]!, `sha256:${id}`);
          const out = o.stdout as Writable;
          if (opts.print) out.write(`${opts.print}\n`);
          out.end();
          (o.stderr as Writable).end();
          return ok();
        }
        case 'mount':
          return ok(`${opts.rootfs}\n`);
        case 'from':
        case 'umount':
        case 'rm':
          return ok();
        default:
          throw new Error(`unexpected buildah call ${argv.join(' ')}`);
      }
    },
  };
  return { runner, calls, images };
}

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { z } from 'zod';
import { UserError } from '../../lib/errors.js';
import type { CommandRunner, RunOptions } from '../../lib/exec.js';
import type { Logger } from '../../lib/log.js';
import { Redactor } from '../../lib/redact.js';
import { buildahGlobal } from './plan.js';

/**
 * The buildah operations of the build hop, over an injected CommandRunner (tests record argv).
 * Reads images through `buildah inspect` and a read-only look at a mounted working container:
 * the rootfs is never copied.
 */
const InspectSchema = z
  .object({
    FromImageID: z.string(),
    FromImageDigest: z.string().optional(),
    ImageAnnotations: z.record(z.string(), z.string()).nullable().optional(),
    OCIv1: z
      .object({
        created: z.string().optional(),
        config: z
          .object({ Labels: z.record(z.string(), z.string()).nullable().optional() })
          .loose()
          .optional(),
        rootfs: z
          .object({ diff_ids: z.array(z.string()).nullable().optional() })
          .loose()
          .optional(),
      })
      .loose(),
  })
  .loose();

export interface ImageInfo {
  id: string;
  digest: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  diffIds: string[];
  created?: string;
}

export interface KernelDir {
  name: string;
  hasVmlinuz: boolean;
  hasInitramfs: boolean;
}

/** A Writable that turns output into log lines (secrets redacted), keeping the last lines. */
export function lineLog(emit: (line: string) => void, secrets: string[] = []): Writable & { tail: () => string[] } {
  let partial = '';
  const last: string[] = [];
  const redactor = new Redactor(secrets);
  const clean = (l: string) => redactor.apply(l.replace(/\r/g, ''));
  const push = (l: string) => {
    const s = clean(l);
    emit(s);
    last.push(s);
    if (last.length > 40) last.shift();
  };
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      partial += chunk.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) push(l);
      cb();
    },
    final(cb) {
      if (partial) push(partial);
      partial = '';
      cb();
    },
  });
  return Object.assign(w, { tail: () => [...last] });
}

/**
 * Whose containers-storage buildah works in:
 *  - `root`: the hop runs as root (a root runner, `sudo node`): buildah directly;
 *  - `sudo`: the hop runs as a user but the pipeline keeps images in root's storage (where the
 *    base bootstrap, which needs root, puts the base, and where later hops read): every buildah
 *    call goes through `sudo -n`, environment secrets through `--preserve-env=<names>`;
 *  - `user`: rootless buildah in the user's own storage.
 */
export type Privilege = 'root' | 'sudo' | 'user';

export function privilegeFor(rootStorage: boolean, uid: number | undefined = process.getuid?.()): Privilege {
  if (uid === 0) return 'root';
  return rootStorage ? 'sudo' : 'user';
}

/** Lists kernel directories of the container named $1 (storage driver $2) as `name\tvmlinuz\tinitramfs` lines. */
const LIST_KERNELS_SCRIPT =
  'set -eu; m=$(buildah --storage-driver "$2" mount "$1"); d="$m/usr/lib/modules"; ' +
  'if [ -d "$d" ]; then for k in "$d"/*/; do [ -d "$k" ] || continue; n=$(basename "$k"); ' +
  'v=-; [ -f "$k/vmlinuz" ] && v=vmlinuz; i=-; [ -f "$k/initramfs.img" ] && i=initramfs; ' +
  'printf "%s\\t%s\\t%s\\n" "$n" "$v" "$i"; done; fi; buildah --storage-driver "$2" umount "$1" >/dev/null';

export class Buildah {
  constructor(
    private readonly runner: CommandRunner,
    private readonly log: Logger,
    readonly storageDriver: string,
    readonly privilege: Privilege = privilegeFor(true),
  ) {}

  /** The command line for `buildah <global flags> <args>` under this privilege. */
  argv(args: string[], preserveEnv: string[] = []): [string, string[]] {
    const full = [...buildahGlobal(this.storageDriver), ...args];
    if (this.privilege !== 'sudo') return ['buildah', full];
    const keep = preserveEnv.length ? [`--preserve-env=${preserveEnv.join(',')}`] : [];
    return ['sudo', ['-n', ...keep, 'buildah', ...full]];
  }

  private run(args: string[], opts: RunOptions = {}) {
    const [cmd, argv] = this.argv(args);
    return this.runner.run(cmd, argv, opts);
  }

  /** Inspects a local image; undefined when it does not exist. */
  async inspect(ref: string): Promise<ImageInfo | undefined> {
    const r = await this.run(['inspect', '--type', 'image', '--', ref], { okCodes: [0, 1, 125] });
    if (r.code !== 0) {
      if (/image not known|not found|unknown|does not exist/i.test(r.stderr)) return undefined;
      throw new UserError(`buildah inspect ${ref} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
    }
    const j = InspectSchema.parse(JSON.parse(r.stdout.toString('utf8')));
    return {
      id: j.FromImageID,
      digest: j.FromImageDigest ?? '',
      labels: j.OCIv1.config?.Labels ?? {},
      annotations: j.ImageAnnotations ?? {},
      diffIds: j.OCIv1.rootfs?.diff_ids ?? [],
      created: j.OCIv1.created,
    };
  }

  /**
   * Runs `buildah build` with the given arguments (after the global flags), streaming its output
   * to the log with secrets redacted; returns the image ID from the iidfile. Environment secrets
   * reach buildah through its environment (`env`), never its argv.
   */
  async build(
    args: string[],
    iidfile: string,
    redact: string[],
    env: Record<string, string | undefined> = {},
  ): Promise<string> {
    const out = lineLog((l) => this.log.info(l), redact);
    const err = lineLog((l) => this.log.info(l), redact);
    const [cmd, argv] = this.argv(args, Object.keys(env));
    try {
      await this.runner.run(cmd, argv, { stdout: out, stderr: err, redact, echo: true, env });
    } finally {
      // The runner pipes the child's streams into these and ends them; end what is still open.
      if (!out.writableEnded) out.end();
      if (!err.writableEnded) err.end();
    }
    const id = fs
      .readFileSync(iidfile, 'utf8')
      .trim()
      .replace(/^sha256:/, '');
    if (!/^[a-f0-9]{64}$/.test(id))
      throw new Error(`buildah wrote no image ID to ${iidfile} (got ${JSON.stringify(id)})`);
    return id;
  }

  /**
   * Kernel directories under /usr/lib/modules of an image, read from a mounted working
   * container (a read-only look, nothing copied). As root the mount is read directly. Otherwise
   * the mount is only visible (and readable) where buildah runs: in `sudo`, or inside
   * `buildah unshare` for rootless storage; a fixed script lists it there, the container name
   * passed as $1, never spliced into the script.
   */
  async kernelDirs(image: string): Promise<KernelDir[]> {
    const name = `keel-kver-${crypto.randomUUID().slice(0, 12)}`;
    await this.run(['from', '--pull=never', '--name', name, '--', image]);
    try {
      if (this.privilege === 'root') {
        const mnt = (await this.run(['mount', name])).stdout.toString('utf8').trim();
        try {
          return listKernelDirs(mnt);
        } finally {
          await this.run(['umount', name]);
        }
      }
      const script = ['sh', '-c', LIST_KERNELS_SCRIPT, 'sh', name, this.storageDriver];
      const r =
        this.privilege === 'sudo'
          ? await this.runner.run('sudo', ['-n', ...script])
          : await this.runner.run('buildah', ['unshare', '--', ...script]);
      return r.stdout
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const [n, v, i] = l.split('\t');
          return { name: n ?? '', hasVmlinuz: v === 'vmlinuz', hasInitramfs: i === 'initramfs' };
        });
    } finally {
      await this.run(['rm', name]).catch((e: unknown) =>
        this.log.warning(`could not remove working container ${name}: ${String(e)}`),
      );
    }
  }
}

export function listKernelDirs(rootfs: string): KernelDir[] {
  const dir = path.join(rootfs, 'usr', 'lib', 'modules');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => ({
      name: e.name,
      hasVmlinuz: fs.existsSync(path.join(dir, e.name, 'vmlinuz')),
      hasInitramfs: fs.existsSync(path.join(dir, e.name, 'initramfs.img')),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The one kernel of a bootc image: exactly one directory under /usr/lib/modules, holding
 * vmlinuz. Anything else fails with what was found (bootc refuses several kernels, and an
 * ostree.linux label naming a missing kernel breaks the deployment).
 */
export function theKernel(dirs: KernelDir[]): string {
  if (dirs.length === 0) {
    throw new UserError(
      'the built image has no kernel: /usr/lib/modules/<kver>/ with vmlinuz is missing (a bootc image ships exactly one)',
    );
  }
  if (dirs.length > 1) {
    throw new UserError(
      `the built image has ${dirs.length} kernel directories under /usr/lib/modules (${dirs.map((d) => d.name).join(', ')}): a bootc image ships exactly one`,
    );
  }
  const k = dirs[0]!;
  if (!k.hasVmlinuz) {
    throw new UserError(
      `/usr/lib/modules/${k.name}/vmlinuz is missing in the built image: bootc reads the kernel there, not from /boot`,
    );
  }
  return k.name;
}

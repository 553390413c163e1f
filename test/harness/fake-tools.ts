import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { CommandError, type RunResult } from '../../actions/lib/exec.js';
import { joinInside } from '../../actions/lib/safe-path.js';
import { readTar } from '../../actions/lib/tar/reader.js';
import type { Call, Play } from './fake-runner.js';

/**
 * Plays of the tools the image hops run (tar, mke2fs, QEMU, …) for the fake runner, so a table
 * test drives a whole `run()` without root, a kernel or a VM. Each play does what the hop relies
 * on (the file the tool writes, the serial lines QEMU prints) and nothing more.
 */

/** The tool a call runs and its own arguments, with the `sudo -n` of a non-root runner taken off. */
export function toolOf(call: Call): { tool: string; args: string[] } {
  if (call.cmd === 'sudo' && call.args[0] === '-n') return { tool: call.args[1]!, args: call.args.slice(2) };
  return { tool: call.cmd, args: call.args };
}

/** Plays each call with the play named after its tool (`toolOf`); any other tool fails the test, naming it. */
export function playTools(plays: Record<string, Play>): Play {
  return (call) => {
    const play = plays[toolOf(call).tool];
    if (!play) throw new Error(`unexpected tool in this table test: ${call.cmd} ${call.args.join(' ')}`);
    return play(call);
  };
}

export const ok = (stdout = ''): RunResult => ({ code: 0, stdout: Buffer.from(stdout), stderr: '' });

/**
 * Plays `tar -x … -f - -C DIR`: reads the whole stream on stdin (as GNU tar does, so the
 * producer's own checks run to the end), writes its directories and regular files under DIR
 * (no owners, modes or special files) and records every entry path in `entries`.
 */
export function tarExtract(entries: string[] = []): Play {
  return async (call) => {
    const { args } = toolOf(call);
    const dest = args[args.indexOf('-C') + 1]!;
    for await (const e of readTar(call.opts.input as Readable)) {
      entries.push(e.header.path);
      if (e.header.type === 'dir') fs.mkdirSync(joinInside(dest, e.header.path), { recursive: true });
      if (e.header.type !== 'file') continue;
      const file = joinInside(dest, e.header.path);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, await e.buffer());
    }
    return ok();
  };
}

/** Plays a tool that writes the file named by its argument at `index` (negative: from the end). */
export function writesFile(
  index: number,
  content: (call: Call) => string | Buffer = () => 'made by a fake tool\n',
): Play {
  return (call) => {
    const { args } = toolOf(call);
    const file = args.at(index)!;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content(call));
    return ok();
  };
}

/** Plays mke2fs: the image file it is given (the argument before the size) exists afterwards. */
export const mke2fs: Play = writesFile(
  -2,
  (call) => `ext4 of ${toolOf(call).args[toolOf(call).args.indexOf('-d') + 1]}\n`,
);

/** Resolves… never: rejects when the call's abort signal fires, the way a killed process ends (SIGTERM). */
export function untilAborted(call: Call): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    const end = () => reject(new CommandError(call.cmd, null, '', 'SIGTERM'));
    if (call.opts.signal?.aborted) end();
    else call.opts.signal?.addEventListener('abort', end, { once: true });
  });
}

/** An 8-bit binary PPM of one dark pixel: what QEMU's screendump writes, smallest. */
const PPM = Buffer.concat([Buffer.from('P6\n1 1\n255\n'), Buffer.from([16, 32, 48])]);

/**
 * Answers QMP on `socket` as QEMU does for the watcher: greeting, qmp_capabilities, and
 * screendump (writes a PPM to the file it names); other commands get an empty return.
 */
function serveQmp(socket: string): net.Server {
  const server = net.createServer((conn) => {
    conn.on('error', () => undefined);
    conn.write(`${JSON.stringify({ QMP: { version: {}, capabilities: [] } })}\n`);
    let buf = '';
    conn.on('data', (d) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const msg = JSON.parse(buf.slice(0, i)) as { execute: string; arguments?: { filename?: string } };
        buf = buf.slice(i + 1);
        if (msg.execute === 'screendump' && msg.arguments?.filename) fs.writeFileSync(msg.arguments.filename, PPM);
        conn.write(`${JSON.stringify({ return: {} })}\n`);
      }
    });
  });
  server.listen(socket);
  return server;
}

export interface QemuPlay {
  /** Lines written to the serial console, in order, one every `everyMs` (default 10). */
  lines: string[];
  everyMs?: number;
  /** Exit like a failing QEMU after the lines instead of running until stopped. */
  exit?: { code: number; stderr: string };
}

/**
 * Plays QEMU: writes the console lines to the serial file its `-chardev file,…,path=` names,
 * answers QMP on its `-qmp` socket, then runs until the watcher stops it (or exits as told).
 * `boots` decides per boot (0, 1, …), for hops that boot more than once.
 */
export function qemu(boots: QemuPlay | ((boot: number, call: Call) => QemuPlay)): Play {
  let n = 0;
  return async (call) => {
    const spec = typeof boots === 'function' ? boots(n++, call) : boots;
    const serial = /path=(.*)$/.exec(call.args[call.args.indexOf('-chardev') + 1]!)![1]!;
    const qmpArg = call.args[call.args.indexOf('-qmp') + 1];
    const qmp = call.args.includes('-qmp') ? serveQmp(/^unix:([^,]+)/.exec(qmpArg!)![1]!) : undefined;
    call.opts.onSpawn?.(process.pid);
    try {
      for (const line of spec.lines) {
        fs.appendFileSync(serial, `${line}\n`);
        await new Promise((r) => setTimeout(r, spec.everyMs ?? 10));
      }
      if (spec.exit) throw new CommandError(call.cmd, spec.exit.code, spec.exit.stderr);
      return await untilAborted(call);
    } finally {
      qmp?.close();
    }
  };
}

/** The argument after `flag` in a call (e.g. the `-kernel` QEMU boots). */
export const argAfter = (call: Call, flag: string): string | undefined => {
  const i = call.args.indexOf(flag);
  return i >= 0 ? call.args[i + 1] : undefined;
};

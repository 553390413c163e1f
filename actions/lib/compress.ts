import { spawn } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { onCleanup } from './cleanup.js';

/**
 * Streaming (de)compression for layers and initramfs segments: gzip in-process, zstd/xz/lz4
 * through their tools (Node 20 has no zstd), with the child killed if the consumer stops.
 */
export type Compression = 'gzip' | 'zstd' | 'xz' | 'lz4' | 'bzip2' | 'none';

/** Pipes `input` through `cmd args` and returns its stdout; a non-zero exit becomes a stream error. */
export function pipeThrough(cmd: string, args: string[], input: Readable): Readable {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const unregister = onCleanup(() => child.kill('SIGKILL'));
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  let err = '';
  child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
  child.stdin.on('error', () => {
    /* the tool may stop reading early; its exit status tells */
  });
  input.on('error', (e) => out.destroy(e));
  input.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  let exited = false;
  child.on('error', (e) => out.destroy(e));
  child.on('close', (code) => {
    exited = true;
    unregister();
    if (code === 0) out.end();
    else if (!out.destroyed) out.destroy(new Error(`${cmd} exited with ${code}: ${err.trim().slice(-300)}`));
  });
  out.on('close', () => {
    if (!exited) child.kill('SIGKILL');
    input.destroy();
  });
  return out;
}

export function decompress(input: Readable, kind: Compression): Readable {
  switch (kind) {
    case 'none':
      return input;
    case 'gzip': {
      const g = zlib.createGunzip({ chunkSize: 1 << 20 });
      input.on('error', (e) => g.destroy(e));
      return input.pipe(g);
    }
    case 'zstd':
      return pipeThrough('zstd', ['-dcq', '--no-progress'], input);
    case 'xz':
      return pipeThrough('xz', ['-dc'], input);
    case 'lz4':
      return pipeThrough('lz4', ['-dc'], input);
    case 'bzip2':
      return pipeThrough('bzip2', ['-dc'], input);
  }
}

/** Recognises a compressed stream by its magic bytes. */
export function sniffCompression(head: Buffer): Compression | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.readUInt32LE(0) === 0x184c2102 || head.readUInt32LE(0) === 0x184d2204) return 'lz4';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return undefined;
}

/**
 * ia-upload benchmark: Keel's native IA client against `curl --upload-file`, both PUTting the
 * same multi-GB sparse file (> 4 GiB, so Content-Length passes 2^32) to the same IA emulator.
 * The emulator runs in its own process (it md5/sha1-hashes every body, as IA does), and so does
 * each uploader, so their peak RSS is measured on its own (`process.resourceUsage().maxRSS` for
 * Keel, GNU time for curl).
 *
 *   npx tsx bench/ia-upload/run.ts [--size-gib 4.5] [--runs 3]
 *
 * Prints throughput per run, the Keel/curl ratio, and peak RSS. No assertions: numbers only.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};

interface Child {
  out: Promise<string>;
  code: Promise<number>;
  kill(): void;
  firstLine: Promise<string>;
}

function start(cmd: string, argv: string[]): Child {
  const c = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let resolveLine!: (s: string) => void;
  const firstLine = new Promise<string>((r) => (resolveLine = r));
  c.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('\n')) resolveLine(out.split('\n')[0]!);
  });
  c.stderr.on('data', (d: Buffer) => void (err += d.toString()));
  const code = new Promise<number>((r) => c.on('close', (x) => r(x ?? 1)));
  return {
    out: code.then((x) => {
      if (x !== 0) throw new Error(`${cmd} ${argv.join(' ')} exited ${x}: ${err.slice(-2000)}`);
      return out;
    }),
    code,
    kill: () => c.kill('SIGTERM'),
    firstLine,
  };
}

/** Re-runs this file in a child with the same tsx loader. */
const child = (role: string, extra: string[]) =>
  start(process.execPath, [...process.execArgv, self, '--role', role, ...extra]);

async function roleEmulator() {
  const { startIaEmulator } = await import('../../emulators/ia/index.js');
  const emu = await startIaEmulator({ ingestDelayMs: 0, deriveDelayMs: 0, lifetimeMs: 60 * 60_000 });
  process.stdout.write(`${JSON.stringify({ s3Url: emu.s3Url, apiUrl: emu.apiUrl })}\n`);
  const stop = async () => {
    const puts = emu.state.journal
      .filter((e) => e.method === 'PUT')
      .map((e) => ({ path: e.path, bytes: e.bodyBytes, md5: e.md5, status: e.status }));
    process.stdout.write(`${JSON.stringify({ puts, maxRssKiB: process.resourceUsage().maxRSS })}\n`);
    await emu.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
}

async function roleKeel() {
  const { IaClient } = await import('../../actions/lib/ia/client.js');
  const { hashFile } = await import('../../actions/lib/checksums.js');
  const { silentLogger } = await import('../../actions/lib/log.js');
  const file = arg('file', '');
  const id = arg('id', 'bench-keel');
  const baselineKiB = process.resourceUsage().maxRSS; // runtime + modules, before any file I/O
  const t0 = Date.now();
  const h = await hashFile(file, ['md5']);
  const t1 = Date.now();
  const cpu0 = process.cpuUsage();
  // RSS sampled through the PUT: a flat client shows the same peak in every quarter.
  const samples: { t: number; rss: number }[] = [];
  const sampler = setInterval(() => samples.push({ t: Date.now(), rss: process.memoryUsage.rss() }), 100);
  const client = new IaClient({
    s3Url: arg('s3', ''),
    apiUrl: arg('api', ''),
    accessKey: 'BENCH',
    secretKey: 'BENCHSECRET',
    log: silentLogger,
    stall: { minBytesPerSec: 10240, windowMs: 120_000 },
  });
  const r = await client.putFile(
    id,
    { name: path.basename(file), path: file, size: h.size, md5: h.md5! },
    { 'x-archive-auto-make-bucket': '1', 'x-archive-queue-derive': '0' },
  );
  const t2 = Date.now();
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  const quarters = [0, 1, 2, 3].map((q) => {
    const inQ = samples.filter((x) => x.t >= t1 + ((t2 - t1) * q) / 4 && x.t <= t1 + ((t2 - t1) * (q + 1)) / 4);
    return Math.round(Math.max(0, ...inQ.map((x) => x.rss)) / 1024);
  });
  process.stdout.write(
    `${JSON.stringify({ hashMs: t1 - t0, putMs: t2 - t1, bytes: r.bytesSent, md5: h.md5, baselineKiB, quarters, cpuS: (cpu.user + cpu.system) / 1e6, maxRssKiB: process.resourceUsage().maxRSS })}\n`,
  );
}

async function runCurl(
  file: string,
  s3: string,
  id: string,
): Promise<{ putMs: number; maxRssKiB: number; cpuS: number }> {
  const timeOut = path.join(os.tmpdir(), `keel-bench-time-${process.pid}-${id}`);
  const t0 = Date.now();
  await start('/usr/bin/time', [
    '-f',
    '%M %U %S',
    '-o',
    timeOut,
    'curl',
    '-sS',
    '-f',
    '-o',
    '/dev/null',
    '-T',
    file,
    '-H',
    'authorization: LOW BENCH:BENCHSECRET',
    '-H',
    'x-archive-auto-make-bucket:1',
    '-H',
    'x-archive-queue-derive:0',
    `${s3}/${id}/${path.basename(file)}`,
  ]).out;
  const putMs = Date.now() - t0;
  const [rss, user, sys] = fs.readFileSync(timeOut, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  fs.rmSync(timeOut, { force: true });
  return { putMs, maxRssKiB: rss!, cpuS: user! + sys! };
}

const fmt = (bytes: number, ms: number) => `${(bytes / 1024 / 1024 / (ms / 1000)).toFixed(0)} MiB/s`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const sizeGiB = Number(arg('size-gib', '4.5'));
  const runs = Number(arg('runs', '3'));
  const size = Math.round(sizeGiB * 1024 ** 3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bench-ia-'));
  const file = path.join(dir, 'bench.iso');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, size); // sparse: no disk space, reads are zeros
  const emu = child('emulator', []);
  try {
    const { s3Url, apiUrl } = JSON.parse(await emu.firstLine) as { s3Url: string; apiUrl: string };
    console.log(
      `ia-upload bench: ${sizeGiB} GiB sparse file (${size} bytes, > 2^32: ${size > 2 ** 32}), ${runs} run(s) each, emulator hashing md5+sha1 in its own process`,
    );
    const keel: {
      hashMs: number;
      putMs: number;
      maxRssKiB: number;
      baselineKiB: number;
      quarters: number[];
      cpuS: number;
    }[] = [];
    const curl: { putMs: number; maxRssKiB: number; cpuS: number }[] = [];
    for (let i = 0; i < runs; i++) {
      const k = JSON.parse(
        (await child('keel', ['--file', file, '--s3', s3Url, '--api', apiUrl, '--id', `bench-keel-${i}`]).out).trim(),
      ) as (typeof keel)[number] & { bytes: number };
      if (k.bytes !== size) throw new Error(`Keel sent ${k.bytes} bytes, expected ${size}`);
      keel.push(k);
      console.log(
        `  run ${i + 1} keel: PUT ${fmt(size, k.putMs)} (${(k.putMs / 1000).toFixed(1)} s, ${k.cpuS.toFixed(1)} CPU s), md5 pass ${fmt(size, k.hashMs)}, peak RSS ${(k.maxRssKiB / 1024).toFixed(0)} MiB (${(k.baselineKiB / 1024).toFixed(0)} MiB before reading the file; RSS peak per quarter of the PUT: ${k.quarters.map((x) => (x / 1024).toFixed(0)).join(', ')} MiB)`,
      );
      const c = await runCurl(file, s3Url, `bench-curl-${i}`);
      curl.push(c);
      console.log(
        `  run ${i + 1} curl: PUT ${fmt(size, c.putMs)} (${(c.putMs / 1000).toFixed(1)} s, ${c.cpuS.toFixed(1)} CPU s), peak RSS ${(c.maxRssKiB / 1024).toFixed(0)} MiB`,
      );
    }
    emu.kill();
    const report = JSON.parse((await emu.out).trim().split('\n').pop()!) as {
      puts: { path: string; bytes: number; md5?: string; status?: number }[];
      maxRssKiB: number;
    };
    const ok = report.puts.filter((p) => p.status === 200 && p.bytes === size);
    const md5s = new Set(ok.map((p) => p.md5));
    const kPut = median(keel.map((k) => k.putMs));
    const cPut = median(curl.map((c) => c.putMs));
    const kE2E = median(keel.map((k) => k.putMs + k.hashMs));
    console.log('');
    console.log(
      `emulator received ${ok.length}/${2 * runs} complete PUTs of ${size} bytes, ${md5s.size} distinct md5 (${[...md5s].join(', ')}); emulator peak RSS ${(report.maxRssKiB / 1024).toFixed(0)} MiB`,
    );
    console.log(
      `throughput (median PUT): keel ${fmt(size, kPut)}, curl ${fmt(size, cPut)}, ratio keel/curl = ${(cPut / kPut).toFixed(2)}`,
    );
    console.log(
      `keel end to end (md5 pass + PUT): ${fmt(size, kE2E)}, ratio vs curl PUT = ${(cPut / kE2E).toFixed(2)}`,
    );
    const growth = Math.max(...keel.map((k) => k.maxRssKiB - k.baselineKiB));
    console.log(
      `peak RSS: keel ${(Math.max(...keel.map((k) => k.maxRssKiB)) / 1024).toFixed(0)} MiB (+${(growth / 1024).toFixed(0)} MiB over its baseline), curl ${(Math.max(...curl.map((c) => c.maxRssKiB)) / 1024).toFixed(0)} MiB, for a ${sizeGiB} GiB file`,
    );
  } finally {
    emu.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const role = arg('role', '');
if (role === 'emulator') await roleEmulator();
else if (role === 'keel') await roleKeel();
else await main();

// bench/push — Keel's push and promote against skopeo, side by side, on the example image,
// into one loopback registry. Each tool talks through its own byte-counting proxy. Prints wall
// time ratios and bytes sent for (a) a first push, (b) a re-push of the unchanged image, and
// (c) a promotion to three tags (Keel: manifests only; skopeo: the anchor's copy per tag).
// Run: npm run bench:push   (prints; asserts nothing)
import { startFaultProxy } from '../../test/harness/fault-proxy.js';
import { ensureExampleImage } from '../../test/harness/example-image.js';
import { runAction } from '../../test/harness/run-action.js';
import { startRegistry } from '../../cli/services/registry.js';
import { processRunner } from '../../actions/lib/exec.js';
import { sh } from '../../test/harness/tools.js';

// skopeo talks to a proxy served by this process: run it without blocking the event loop.
const runner = processRunner();
const skopeo = (args: string[]) => runner.run('skopeo', args);

const img = await ensureExampleImage({ oci: true });
const reg = await startRegistry();
const keelProxy = await startFaultProxy(reg.url);
const skopeoProxy = await startFaultProxy(reg.url);
const rows: string[][] = [];
const mb = (n: number) => (n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);
const time = async <T>(fn: () => Promise<T> | T): Promise<[T, number]> => {
  const t = process.hrtime.bigint();
  const r = await fn();
  return [r, Number(process.hrtime.bigint() - t) / 1e9];
};
const keelPush = () =>
  runAction({
    action: 'push',
    inputs: {
      source: img.ociRef,
      image: `${keelProxy.host}/bench/keel`,
      'tls-verify': 'false',
      'release-date': '20261122',
    },
  });
const skopeoCopy = (dest: string, extra: string[] = []) =>
  skopeo(['copy', '-q', '--dest-tls-verify=false', '--src-tls-verify=false', ...extra, img.ociRef, dest]);
// The anchor's way to push the same two tags: one copy per tag.
const skopeoPushTags = async () => {
  await skopeoCopy(`docker://${skopeoProxy.host}/bench/skopeo:candidate`);
  await skopeoCopy(`docker://${skopeoProxy.host}/bench/skopeo:candidate.20261122`);
};

try {
  // (a) first push: Keel writes candidate + candidate.<date>; skopeo (anchor style) copies once per tag.
  keelProxy.reset();
  skopeoProxy.reset();
  const [k1, tk1] = await time(keelPush);
  if (k1.code !== 0) throw new Error(k1.stdout);
  const [, ts1] = await time(skopeoPushTags);
  rows.push([
    'first push (2 tags)',
    `${tk1.toFixed(1)} s`,
    `${ts1.toFixed(1)} s`,
    (tk1 / ts1).toFixed(2),
    mb(keelProxy.bytesUp()),
    mb(skopeoProxy.bytesUp()),
  ]);

  // (b) re-push of the unchanged image.
  keelProxy.reset();
  skopeoProxy.reset();
  const [, tk2] = await time(keelPush);
  const [, ts2] = await time(skopeoPushTags);
  rows.push([
    're-push, unchanged',
    `${tk2.toFixed(1)} s`,
    `${ts2.toFixed(1)} s`,
    (tk2 / ts2).toFixed(2),
    mb(keelProxy.bytesUp()),
    mb(skopeoProxy.bytesUp()),
  ]);

  // (c) promotion of the pushed digest to stable, stable.<date>, <date>.
  keelProxy.reset();
  skopeoProxy.reset();
  const digest = k1.outputs.digest!;
  const [kp, tk3] = await time(() =>
    runAction({
      action: 'promote',
      inputs: {
        'image-ref': `${keelProxy.host}/bench/keel@${digest}`,
        'tls-verify': 'false',
        'release-date': '20261122',
      },
    }),
  );
  if (kp.code !== 0) throw new Error(kp.stdout);
  const sdigest = sh('skopeo', [
    'inspect',
    '--tls-verify=false',
    '--format',
    '{{.Digest}}',
    `docker://${reg.host}/bench/skopeo:candidate`,
  ]).trim();
  const [, ts3] = await time(async () => {
    for (const t of ['stable', 'stable.20261122', '20261122']) {
      await skopeo([
        'copy',
        '-q',
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        '--preserve-digests',
        `docker://${skopeoProxy.host}/bench/skopeo@${sdigest}`,
        `docker://${skopeoProxy.host}/bench/skopeo:${t}`,
      ]);
    }
  });
  const blobReqs = keelProxy.log.filter((e) => e.path.includes('/blobs/')).length;
  rows.push([
    'promotion (3 tags)',
    `${tk3.toFixed(2)} s`,
    `${ts3.toFixed(2)} s`,
    (tk3 / ts3).toFixed(2),
    `${mb(keelProxy.bytesUp())} (${blobReqs} blob requests)`,
    mb(skopeoProxy.bytesUp()),
  ]);

  console.log(
    `\nbench/push — image ${img.name}, ${mb(Number(sh('du', ['-sb', img.ociDir]).split('\t')[0]))} OCI layout, loopback registry`,
  );
  console.log('Keel times include starting the bundled action (node) per step; skopeo is one process per copy.\n');
  const header = ['case', 'Keel', 'skopeo', 'Keel/skopeo', 'Keel bytes sent', 'skopeo bytes sent'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(line(header));
  for (const r of rows) console.log(line(r));
} finally {
  await keelProxy.close();
  await skopeoProxy.close();
  await reg.stop();
}

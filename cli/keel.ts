import path from 'node:path';
import { loadDeclarations } from '../actions/lib/declarations.js';
import { errorMessage } from '../actions/lib/errors.js';
import { processRunner } from '../actions/lib/exec.js';
import { workflows } from '../workflows-src/index.js';
import { keygen } from './commands/keygen.js';
import { policy } from './commands/policy.js';
import { release } from './commands/release.js';
import { demo, localDeclarations, printSummary } from './demo.js';
import { eventFor } from './events.js';
import { runWorkflow, type RunRecord } from './runner.js';
import { startLocalServices } from './services/index.js';
import { recordRun } from './services/runs.js';
import { repoRoot } from './step.js';
import { flags } from './flags.js';

const USAGE = `keel — the release pipeline for bootc distributions, on this machine

  keel demo [--verbose]                 the whole pipeline of the example distro, locally
  keel run <workflow> [<workflow> ...] [--event E] [--pr N] [--input k=v ...] [--verbose]
                                        generated workflows (build, smoke-boot, build-disk,
                                        rollback, cleanup, watch, sysext) in order, against one
                                        set of local services; a smoke-boot after a build gets
                                        that build's workflow_run event; --event pull_request
                                        is pull request N (default 1): labeled for build,
                                        closed for cleanup
  keel generate                         regenerate .github/workflows and the schemas
  keel release [--version vX.Y.Z] [--no-check]
                                        pin the reusable workflows to HEAD (the commit whose
                                        dist/ they run): clean tree required, then commit + tag
  keel keygen --out-prefix P [--compat] [--force]
                                        cosign-compatible key pair (password: $COSIGN_PASSWORD)
  keel policy --image REG/REPO --public-key F --out DIR [--policy existing.json] [--key-path P] [--name N]
                                        client files: policy.json entry, registries.d, key path
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const { pos, f } = flags(rest);
  const one = (k: string) => f[k]?.[f[k]!.length - 1];
  switch (cmd) {
    case 'demo':
      return (await demo({ verbose: one('verbose') === 'true' })) ? 0 : 1;
    case 'run': {
      const decl = loadDeclarations(path.join(repoRoot, 'declarations/distro.yaml'));
      const known = runnableWorkflows(decl);
      if (!pos.length) throw new Error(`keel run: which workflow(s)? ${known.join(', ')}`);
      const unknown = pos.filter((p) => !known.includes(p));
      if (unknown.length)
        throw new Error(`keel run: unknown workflow ${unknown.join(', ')} (known: ${known.join(', ')})`);
      const inputs = Object.fromEntries(
        (f.input ?? []).map((kv) => {
          const eq = kv.indexOf('=');
          if (eq <= 0) throw new Error(`keel run: --input expects NAME=VALUE (got '${kv}')`);
          return [kv.slice(0, eq), kv.slice(eq + 1)];
        }),
      );
      const stateDir = path.join(repoRoot, '.keel');
      const log = (s: string) => console.log(s);
      const services = await startLocalServices(decl, stateDir, log);
      const repository = 'keel-project/keel';
      const runs: RunRecord[] = [];
      try {
        const local = localDeclarations(decl, services.registry.host);
        const wfs = workflows(local, { mode: 'dogfood' });
        for (const name of pos) {
          const wf = wfs.find((w) => w.file === `${name}.yml`);
          if (!wf)
            throw new Error(
              `no generated workflow ${name}.yml (have: ${wfs
                .filter((w) => !w.file.startsWith('reusable-'))
                .map((w) => w.file.replace(/\.yml$/, ''))
                .join(', ')})`,
            );
          const pr = one('pr') === undefined ? undefined : Number(one('pr'));
          if (pr !== undefined && !(Number.isInteger(pr) && pr > 0))
            throw new Error(`keel run: --pr expects a pull request number (got '${one('pr')}')`);
          const { event, payload } = eventFor(wf, one('event'), { runs, decl, repository, pr });
          const r = await runWorkflow({
            workflow: wf,
            event,
            eventPayload: payload,
            inputs,
            services,
            runsDir: path.join(stateDir, 'runs'),
            repository,
            log,
            verbose: one('verbose') === 'true',
          });
          runs.push(r);
          recordRun(services, repository, r);
          if (!r.ok) break;
        }
        printSummary(runs, log);
        return runs.length === pos.length && runs.every((r) => r.ok) ? 0 : 1;
      } finally {
        await services.stop();
      }
    }
    case 'generate':
      await processRunner().run('npx', ['tsx', 'workflows-src/build.ts'], {
        cwd: repoRoot,
        stdout: 'inherit',
        stderr: 'inherit',
      });
      await processRunner().run('npx', ['tsx', 'scripts/gen-schema.ts'], {
        cwd: repoRoot,
        stdout: 'inherit',
        stderr: 'inherit',
      });
      return 0;
    case 'release': {
      const r = await release({
        root: repoRoot,
        version: one('version'),
        check: one('no-check') !== 'true',
        log: (s) => console.log(s),
      });
      console.log(
        [
          `reusable workflows now run keel-project/keel/actions/<hop>@${r.sha} (${r.version}).`,
          'Next: commit these files alone, tag that commit and move the major tag, e.g.',
          `  git add ${r.written.join(' ')}`,
          `  git commit -m "Release ${r.version}: reusable workflows run the actions of ${r.sha.slice(0, 12)}"`,
          `  git tag -a ${r.version} -m ${r.version} && git tag -f ${r.version.split('.')[0]}`,
        ].join('\n'),
      );
      return 0;
    }
    case 'keygen': {
      const prefix = one('out-prefix');
      if (!prefix)
        throw new Error('keel keygen: --out-prefix is required (e.g. --out-prefix cosign → cosign.key, cosign.pub)');
      const r = await keygen({
        outPrefix: prefix,
        password: process.env.COSIGN_PASSWORD ?? '',
        compat: one('compat') === 'true',
        force: one('force') === 'true',
      });
      console.log(
        `wrote ${r.privateKeyPath} (encrypted, ${r.pemType}, scrypt N=${r.scryptN}) and ${r.publicKeyPath}; fingerprint ${r.fingerprint}`,
      );
      if (!process.env.COSIGN_PASSWORD)
        console.log('warning: COSIGN_PASSWORD was empty: the private key has an empty password');
      return 0;
    }
    case 'policy': {
      const image = one('image');
      const pub = one('public-key');
      const out = one('out');
      if (!image || !pub || !out) throw new Error('keel policy: --image, --public-key and --out are required');
      const r = await policy({
        image,
        publicKeyPath: pub,
        outDir: out,
        existingPolicyPath: one('policy'),
        keyPath: one('key-path'),
        name: one('name'),
      });
      console.log(JSON.stringify(r, null, 2));
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
      console.log(USAGE);
      return 0;
    default:
      console.error(`unknown command ${cmd}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`keel: ${errorMessage(e)}`);
    process.exit(1);
  },
);

/** The dogfood workflows the generators produce (the reusable ones are only called by them). */
function runnableWorkflows(decl: ReturnType<typeof loadDeclarations>): string[] {
  return workflows(decl, { mode: 'dogfood' })
    .map((w) => w.file.replace(/\.yml$/, ''))
    .filter((name) => !name.startsWith('reusable-'));
}

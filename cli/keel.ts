import { errorMessage, UserError } from '../actions/lib/errors.js';
import { processRunner } from '../actions/lib/exec.js';
import { init } from './commands/init.js';
import { keygen } from './commands/keygen.js';
import { policy } from './commands/policy.js';
import { release } from './commands/release.js';
import { runCommand } from './commands/run.js';
import { demo } from './demo.js';
import { flags } from './flags.js';
import { isKeelCheckout, keelHome } from './home.js';

const USAGE = `keel — the release pipeline for bootc distributions, on this machine

In a distro repository (any directory with declarations/distro.yaml):
  keel init --image REGISTRY/OWNER/NAME (--base IMAGE | --debian SUITE) [--dir D] [--force] [--keel-ref SHA]
                                        scaffold a distro: Containerfile, build_files/finalize.sh,
                                        declarations, caller workflows, KEEL-SETUP.md
  keel run <workflow> [<workflow> ...] [--dir D] [--event E] [--pr N] [--variant NAME] [--input k=v ...] [--registry HOST:PORT] [--verbose]
                                        its workflows (build, smoke-boot, build-disk, rollback,
                                        cleanup, watch, sysext), generated from its declarations,
                                        in order against one set of local services; a smoke-boot
                                        after a build gets that build's workflow_run event;
                                        --event pull_request is pull request N (default 1):
                                        labeled for build, closed for cleanup.
                                        --registry: your loopback registry
  keel keygen --out-prefix P [--compat] [--force]
                                        cosign-compatible key pair (password: $COSIGN_PASSWORD)
  keel policy --image REG/REPO --public-key F --out DIR [--policy existing.json] [--key-path P] [--name N]
                                        client files: policy.json entry, registries.d, key path

In a Keel checkout:
  keel demo [--verbose]                 the whole pipeline of the example distro, locally
  keel generate                         regenerate .github/workflows and the schemas
  keel release [--version vX.Y.Z] [--no-check]
                                        pin the reusable workflows to HEAD (the commit whose
                                        dist/ they run): clean tree required, then commit + tag
`;

/** Commands about Keel's own sources (generators, example distro) need a Keel checkout. */
function requireCheckout(cmd: string): void {
  if (!isKeelCheckout())
    throw new UserError(
      `keel ${cmd} works on Keel's own sources: run it in a Keel git checkout (this Keel is installed at ${keelHome})`,
    );
}

function initCommand(f: Record<string, string[]>): number {
  const one = (k: string) => f[k]?.[f[k]!.length - 1];
  const r = init({
    dir: one('dir') ?? process.cwd(),
    image: one('image'),
    base: one('base'),
    debian: one('debian'),
    force: one('force') === 'true',
    keelRef: one('keel-ref'),
  });
  for (const w of r.warnings) console.error(`warning: ${w}`);
  console.log(`wrote in ${r.dir}:\n${r.written.map((f) => `  ${f}`).join('\n')}\n`);
  console.log(r.checklist);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const { pos, f } = flags(rest);
  const one = (k: string) => f[k]?.[f[k]!.length - 1];
  switch (cmd) {
    case 'demo':
      requireCheckout('demo');
      return (await demo({ verbose: one('verbose') === 'true' })) ? 0 : 1;
    case 'run':
      return (await runCommand({
        workflows: pos,
        dir: one('dir'),
        event: one('event'),
        inputs: f.input ?? [],
        registry: one('registry'),
        pr: one('pr'),
        variant: one('variant'),
        verbose: one('verbose') === 'true',
        log: (s) => console.log(s),
      }))
        ? 0
        : 1;
    case 'init':
      return initCommand(f);
    case 'generate':
      requireCheckout('generate');
      await processRunner().run('npx', ['tsx', 'workflows-src/build.ts'], {
        cwd: keelHome,
        stdout: 'inherit',
        stderr: 'inherit',
      });
      await processRunner().run('npx', ['tsx', 'scripts/gen-schema.ts'], {
        cwd: keelHome,
        stdout: 'inherit',
        stderr: 'inherit',
      });
      return 0;
    case 'release': {
      requireCheckout('release');
      const r = await release({
        root: keelHome,
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
          `then, on that tagged commit, npm pack and attach keel-${r.version.slice(1)}.tgz to the release: keel init pins the`,
          'callers it writes to the commit the package was packed from.',
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

import fs from 'node:fs';
import path from 'node:path';
import { loadDeclarations, resolveVariants, type Distro } from '../../actions/lib/declarations.js';
import { UserError } from '../../actions/lib/errors.js';
import { workflows } from '../../workflows-src/index.js';
import { localDeclarations, printSummary } from '../demo.js';
import { loadKeelRelease } from '../../workflows-src/pins.js';
import { DECLARATIONS_FILE, findProjectDir, keelHome } from '../home.js';
import { eventFor } from '../events.js';
import { runWorkflow, type RunRecord } from '../runner.js';
import { startLocalServices } from '../services/index.js';
import { recordRun } from '../services/runs.js';

/**
 * `keel run <workflow>…`: the project's generated workflows (from its own declarations, with
 * the installed Keel's workflow model and hop bundles) run in order against one set of local
 * services. The project is any directory holding declarations/distro.yaml (Keel's checkout is
 * one); its run state goes to <project>/.keel/.
 */
export interface RunCommand {
  workflows: string[];
  dir?: string;
  event?: string;
  inputs: string[];
  registry?: string;
  /** --pr: the pull request number of a pull_request event (default 1). */
  pr?: string;
  /** --variant: build, boot and promote only this image variant (declarations variants:). */
  variant?: string;
  verbose: boolean;
  log: (line: string) => void;
}

/** The dogfood workflows the generators produce for a distro (the reusable ones are only called). */
export function runnableWorkflows(decl: Distro): string[] {
  return workflows(decl, { mode: 'dogfood', release: loadKeelRelease(keelHome) })
    .map((w) => w.file.replace(/\.yml$/, ''))
    .filter((name) => !name.startsWith('reusable-'));
}

/** owner/name of the distro's GitHub repository: image.source, else os.home-url, else <namespace>/<image>. */
export function repositoryOf(decl: Distro): string {
  for (const url of [decl.image.source, decl.os['home-url']]) {
    const m = url && /^https:\/\/github\.com\/([A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+?)(?:\.git)?\/?$/.exec(url);
    if (m) return m[1]!;
  }
  const namespace = decl.image.registry.split('/').slice(1).pop() ?? 'local';
  return `${namespace}/${decl.image.name}`;
}

function parseInputs(kvs: string[]): Record<string, string> {
  return Object.fromEntries(
    kvs.map((kv) => {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new UserError(`keel run: --input expects NAME=VALUE (got '${kv}')`);
      return [kv.slice(0, eq), kv.slice(eq + 1)];
    }),
  );
}

/** The run state directory, ignored by git without touching the project's own .gitignore. */
function stateDirOf(projectDir: string): string {
  const dir = path.join(projectDir, '.keel');
  fs.mkdirSync(dir, { recursive: true });
  const ignore = path.join(dir, '.gitignore');
  if (!fs.existsSync(ignore))
    fs.writeFileSync(ignore, '# keel run state (local keys, runs, artefacts): never committed\n*\n');
  return dir;
}

/** --pr: a pull request number, or undefined when not given. */
function parsePr(given: string | undefined): number | undefined {
  if (given === undefined) return undefined;
  const pr = Number(given);
  if (!(Number.isInteger(pr) && pr > 0))
    throw new UserError(`keel run: --pr expects a pull request number (got '${given}')`);
  return pr;
}

/** --variant: a declared variant's name, checked before anything runs. */
export function checkVariant(decl: Distro, given: string | undefined): string | undefined {
  if (given === undefined) return undefined;
  const known = resolveVariants(decl).map((v) => v.name);
  if (!known.includes(given))
    throw new UserError(
      known.length
        ? `keel run: unknown variant '${given}' (known: ${known.join(', ')})`
        : `keel run: --variant '${given}', but the declarations declare no variants:`,
    );
  return given;
}

export async function runCommand(cmd: RunCommand): Promise<boolean> {
  const projectDir = findProjectDir({ dir: cmd.dir });
  const decl = loadDeclarations(path.join(projectDir, DECLARATIONS_FILE));
  const known = runnableWorkflows(decl);
  if (!cmd.workflows.length) throw new UserError(`keel run: which workflow(s)? ${known.join(', ')}`);
  const unknown = cmd.workflows.filter((p) => !known.includes(p));
  if (unknown.length)
    throw new UserError(`keel run: unknown workflow ${unknown.join(', ')} (known: ${known.join(', ')})`);
  const inputs = parseInputs(cmd.inputs);
  const pr = parsePr(cmd.pr);
  const variant = checkVariant(decl, cmd.variant);
  const stateDir = stateDirOf(projectDir);
  cmd.log(`project: ${projectDir}`);
  const services = await startLocalServices(decl, stateDir, cmd.log, { registry: cmd.registry });
  const repository = repositoryOf(decl);
  const runs: RunRecord[] = [];
  try {
    // The installed Keel's stamp: a dogfood workflow may run released actions (cleanup does).
    const release = loadKeelRelease(keelHome);
    const wfs = workflows(localDeclarations(decl, services.registry.host), { mode: 'dogfood', release });
    for (const name of cmd.workflows) {
      const wf = wfs.find((w) => w.file === `${name}.yml`)!;
      const { event, payload } = eventFor(wf, cmd.event, { runs, decl, repository, pr });
      const r = await runWorkflow({
        workflow: wf,
        event,
        eventPayload: payload,
        inputs,
        services,
        runsDir: path.join(stateDir, 'runs'),
        repository,
        projectDir,
        log: cmd.log,
        verbose: cmd.verbose,
        ...(variant ? { variant } : {}),
      });
      runs.push(r);
      recordRun(services, repository, r);
      if (!r.ok) break;
    }
    printSummary(runs, cmd.log);
    return runs.length === cmd.workflows.length && runs.every((r) => r.ok);
  } finally {
    await services.stop();
  }
}

// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import {
  actionSpecs,
  keelHop,
  needsOf,
  readWorkflow,
  runOutputs,
  strings,
  workflowFiles,
  type YJob,
  type YStep,
} from './helpers.js';

/**
 * Hop wiring, checked on the YAML GitHub reads (the language service does not resolve local
 * actions): every Keel step passes only inputs its action.yml declares and all required ones,
 * every `steps.<id>.outputs.<name>` names an earlier step of the job that has that output, every
 * `needs.<job>.outputs.<name>` a needed job that declares it, every `jobs.<job>.outputs.<name>`
 * (workflow_call outputs) an existing job output.
 */
const specs = actionSpecs();

function stepOutputs(s: YStep): string[] | undefined {
  const hop = keelHop(s.uses);
  if (hop) return Object.keys(specs.get(hop)?.outputs ?? {});
  if (s.run) return runOutputs(s.run);
  return []; // third-party steps: Keel's workflows read none of their outputs
}

function wiringProblems(file: string): string[] {
  const wf = readWorkflow(file);
  const problems: string[] = [];
  const jobIds = Object.keys(wf.jobs);
  for (const [jobId, job] of Object.entries(wf.jobs) as [string, YJob][]) {
    const seen = new Map<string, YStep>();
    const needs = needsOf(job);
    for (const n of needs)
      if (!jobIds.includes(n) || jobIds.indexOf(n) >= jobIds.indexOf(jobId))
        problems.push(`${jobId}: needs unknown or later job ${n}`);
    const checkRefs = (v: unknown, at: string, steps: Map<string, YStep>) => {
      for (const [, text] of strings(v)) {
        for (const m of text.matchAll(/steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)/g)) {
          const s = steps.get(m[1]!);
          if (!s) problems.push(`${at}: ${m[0]}: no earlier step '${m[1]}'`);
          else if (!stepOutputs(s)?.includes(m[2]!))
            problems.push(`${at}: ${m[0]}: step '${m[1]}' has no output '${m[2]}'`);
        }
        for (const m of text.matchAll(/needs\.([A-Za-z0-9_-]+)\.(outputs\.([A-Za-z0-9_-]+)|result)/g)) {
          if (!needs.includes(m[1]!)) problems.push(`${at}: ${m[0]}: job does not need '${m[1]}'`);
          else if (m[3] && !Object.keys(wf.jobs[m[1]!]?.outputs ?? {}).includes(m[3]))
            problems.push(`${at}: ${m[0]}: job '${m[1]}' has no output '${m[3]}'`);
        }
      }
    };
    for (const [i, s] of job.steps.entries()) {
      const at = `${jobId}.steps[${i}] (${s.id ?? s.name})`;
      checkRefs([s.if, s.with, s.env, s.run], at, seen);
      const hop = keelHop(s.uses);
      if (hop) {
        const spec = specs.get(hop);
        if (!spec) {
          problems.push(`${at}: no action actions/${hop}`);
        } else {
          for (const k of Object.keys(s.with ?? {}))
            if (!(k in spec.inputs)) problems.push(`${at}: ${hop} declares no input '${k}'`);
          for (const [k, v] of Object.entries(spec.inputs))
            if (v.required && !(k in (s.with ?? {}))) problems.push(`${at}: ${hop} requires input '${k}'`);
        }
      }
      if (s.id) seen.set(s.id, s);
    }
    checkRefs([job.if, job.outputs, job.concurrency, job['runs-on']], `${jobId} (job level)`, seen);
  }
  const call = (wf.on.workflow_call ?? {}) as { outputs?: Record<string, { value: string }> };
  for (const [name, o] of Object.entries(call.outputs ?? {})) {
    for (const m of o.value.matchAll(/jobs\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)/g)) {
      if (!Object.keys(wf.jobs[m[1]!]?.outputs ?? {}).includes(m[2]!))
        problems.push(`workflow output ${name}: ${m[0]} does not exist`);
    }
  }
  return problems;
}

describe('hop wiring', () => {
  it('there are Keel steps to check, and each names an action of this repository', () => {
    const hops = new Set(
      workflowFiles().flatMap((f) =>
        Object.values(readWorkflow(f).jobs).flatMap((j) => j.steps.map((s) => keelHop(s.uses)).filter(Boolean)),
      ),
    );
    expect(hops.size).toBeGreaterThan(0);
    for (const hop of hops) expect([hop, specs.has(hop!)]).toEqual([hop, true]);
  });

  it.each(workflowFiles())('%s: inputs declared, required inputs passed, referenced outputs exist', (file) => {
    expect(wiringProblems(file)).toEqual([]);
  });

  it('the check finds a misspelt input, a missing required input and a renamed output', () => {
    const wf = readWorkflow('build.yml');
    const steps = wf.jobs.build!.steps;
    const push = steps.find((s) => s.id === 'push')!;
    push.with = { ...push.with, sorce: push.with!.source };
    delete push.with.source;
    const rechunk = steps.find((s) => s.id === 'rechunk')!;
    push.with.sorce = '${{ steps.rechunk.outputs.oci-reference }}';
    expect(rechunk).toBeDefined();
    // Re-run the same checks over the edited document.
    const problems: string[] = [];
    const spec = specs.get('push')!;
    for (const k of Object.keys(push.with)) if (!(k in spec.inputs)) problems.push(`no input ${k}`);
    for (const [k, v] of Object.entries(spec.inputs))
      if (v.required && !(k in push.with)) problems.push(`requires ${k}`);
    for (const [, t] of strings(push.with)) {
      for (const m of t.matchAll(/steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)/g)) {
        if (!stepOutputs(steps.find((s) => s.id === m[1])!)?.includes(m[2]!)) problems.push(`no output ${m[2]}`);
      }
    }
    expect(problems).toEqual(['no input sorce', 'requires source', 'no output oci-reference']);
  });
});

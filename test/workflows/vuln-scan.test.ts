// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { pins, usesText } from '../../workflows-src/pins.js';
import { keelHop, readWorkflow } from './helpers.js';

/**
 * The optional vulnerability scan of issue 16: the pinned Grype action reads Keel's CycloneDX
 * SBOM in the reusable build's sign job, only when the caller asks, and can never gate a release.
 */
describe('reusable-build.yml: the optional vulnerability scan', () => {
  const wf = readWorkflow('reusable-build.yml');
  const steps = wf.jobs.sign!.steps;
  const at = steps.findIndex((s) => s.id === 'vulnerabilities');
  const scan = steps[at]!;

  it('reads the SBOM the sbom step wrote, between the SBOM and the signature', () => {
    expect(at).toBeGreaterThan(steps.findIndex((s) => keelHop(s.uses) === 'sbom'));
    expect(at).toBeLessThan(steps.findIndex((s) => keelHop(s.uses) === 'sign'));
    expect(scan.with!.sbom).toBe('${{ steps.sbom.outputs.cyclonedx }}');
  });

  it('runs the pinned commit, never a tag', () => {
    expect(scan.uses).toBe(usesText(pins.grypeScan));
    expect(scan.uses).toMatch(/^anchore\/scan-action@[0-9a-f]{40}$/);
  });

  it('never gates: off by default, cannot fail the job, and nothing reads its result', () => {
    const call = (wf.on as { workflow_call: { inputs: Record<string, { default?: unknown; type: string }> } })
      .workflow_call;
    expect(call.inputs['vulnerability-scan']).toMatchObject({ type: 'boolean', default: false });
    expect(scan.if).toBe('inputs.vulnerability-scan == true');
    expect(scan.with!['fail-build']).toBe(false);
    expect((scan as Record<string, unknown>)['continue-on-error']).toBe(true);
    expect(JSON.stringify(wf)).not.toMatch(/steps\.vulnerabilities\./);
  });

  it('the dogfood build has no scan', () => {
    expect(JSON.stringify(readWorkflow('build.yml'))).not.toMatch(/anchore\/scan-action/);
  });
});

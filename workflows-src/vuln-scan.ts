import { Params, skip } from './common.js';
import { eq, type Expr } from './expr.js';
import { actionStep, type ActionStep } from './model.js';
import { pins } from './pins.js';

/**
 * The optional vulnerability scan (reusable build workflow, input `vulnerability-scan`): a pinned
 * Grype action reads the CycloneDX SBOM the sbom step wrote. It informs and never gates: it
 * cannot fail the build (`fail-build: false`, and the step continues on error), and it runs only
 * when the caller asks for it. The dogfood workflow has no scan (nothing asks for one).
 */
export function vulnerabilityScan(p: Params, cyclonedx: Expr): ActionStep[] {
  if (!p.reusable) return [];
  const wanted = p.input('vulnerability-scan', {
    description:
      "Scan the image's CycloneDX SBOM with Grype (anchore/scan-action, pinned) after it is written; the result is informational and never fails the build.",
    default: false,
  });
  return [
    actionStep({
      id: 'vulnerabilities',
      name: 'Vulnerability scan of the SBOM (informational, never gates)',
      uses: pins.grypeScan,
      with: { sbom: cyclonedx, 'fail-build': false, 'output-format': 'table' },
      local: skip('the scanner downloads its vulnerability database from the Internet'),
      if: eq(wanted, true),
      continueOnError: true,
    }),
  ];
}

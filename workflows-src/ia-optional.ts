import { and, ne, secret } from './expr.js';
import { runStep, type RunStep } from './model.js';

/**
 * Reusable build-disk: the Internet Archive keys are optional. Without them the publish job
 * skips the upload (and the site bump that would point at it) with a notice instead of failing.
 * Secrets cannot be read in a step's `if:`, so this step turns their presence into an output.
 */
export const IA_KEY_SECRETS = { access: 'IA_ACCESS_KEY', secret: 'IA_SECRET_KEY' } as const;

export function iaConfiguredStep(): RunStep<'configured'> {
  const access = secret(IA_KEY_SECRETS.access);
  const key = secret(IA_KEY_SECRETS.secret);
  return runStep({
    id: 'ia-keys',
    name: 'Are Internet Archive keys configured?',
    env: { IA_ACCESS: access, IA_SECRET: key },
    run: [
      'if [[ -n $IA_ACCESS && -n $IA_SECRET ]]; then',
      '  echo "configured=true" >> "$GITHUB_OUTPUT"',
      'else',
      `  echo "::notice title=Internet Archive::no ${IA_KEY_SECRETS.access}/${IA_KEY_SECRETS.secret}: the upload and the site bump are skipped"`,
      '  echo "configured=false" >> "$GITHUB_OUTPUT"',
      'fi',
    ].join('\n'),
    local: { local: 'expand-templates', vars: {}, templates: { configured: and(ne(access, ''), ne(key, '')) } },
    outputs: ['configured'],
  });
}

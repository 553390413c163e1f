// Jest setup for every test file: short retry waits (the policy's shape is tested on its own),
// and no GitHub runner environment leaking in from the machine running the tests.
process.env.KEEL_RETRY_BASE_MS = process.env.KEEL_RETRY_BASE_MS ?? '20';
for (const k of Object.keys(process.env)) {
  if (k.startsWith('INPUT_') || k === 'GITHUB_OUTPUT' || k === 'GITHUB_STEP_SUMMARY') delete process.env[k];
}

/**
 * Jest 30 + ts-jest in ESM mode (run with NODE_OPTIONS=--experimental-vm-modules, see package.json).
 *
 * Two projects, chosen by the marker on the first line of every test file (test/kinds.js):
 * `unit` (no registry, VM, buildah/podman, root tools or network; `npm run test:unit`) and
 * `integration` (everything else, and every file without a marker; `npm run test:integration`).
 * `npm test` runs both. The integration project first rebuilds the dist/ bundles its tests run
 * when a source they include changed (test/global-setup.js).
 */
import { testFiles } from './test/kinds.js';

const shared = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    // tsconfig's isolatedModules: ts-jest only transpiles; type checking is `npm run lint`.
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: { ignoreCodes: [151002] } }],
  },
  transformIgnorePatterns: ['node_modules/(?!(@actions)/)'],
  setupFiles: ['<rootDir>/test/setup.ts'],
};

export default {
  // Two cores on the reference machine; heavy suites serialise themselves through a lock file.
  maxWorkers: 2,
  // Registries, builds and VMs: a generous default, tests set tighter ones. (A global option:
  // jest-circus ignores a project's testTimeout.)
  testTimeout: 120_000,
  projects: [
    { ...shared, displayName: 'unit', testRegex: testFiles('unit') },
    {
      ...shared,
      displayName: 'integration',
      testRegex: testFiles('integration'),
      globalSetup: '<rootDir>/test/global-setup.js',
    },
  ],
};

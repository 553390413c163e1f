/** Jest 30 + ts-jest in ESM mode (run with NODE_OPTIONS=--experimental-vm-modules, see package.json). */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: { ignoreCodes: [151002] } }],
  },
  transformIgnorePatterns: ['node_modules/(?!(@actions)/)'],
  // Integration tests start registries, builds and VMs: generous default, tests set tighter ones.
  testTimeout: 120000,
  // Two cores on the reference machine; heavy suites serialise themselves through test/harness/lock.ts.
  maxWorkers: 2,
  setupFiles: ['<rootDir>/test/setup.ts'],
};

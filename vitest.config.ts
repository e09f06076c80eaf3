import { defineConfig } from 'vitest/config'

// unit: fast, no network namespaces (BPF_PROG_TEST_RUN and the libbpf layer
// still need root and a real kernel). integration: namespaces, real traffic.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/integration/**', 'test/e2e/**', 'test/bench/**', '**/*.int.test.ts', 'node_modules/**'],
          setupFiles: ['test/support/cleanup.setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts', 'test/bench/**/*.test.ts', 'test/**/*.int.test.ts'],
          setupFiles: ['test/support/cleanup.setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // namespaces and pins are per test file; files run one at a time
          fileParallelism: false,
        },
      },
    ],
  },
})

import { defineConfig } from 'vitest/config';

// Unit tests sit beside the module they test; end-to-end suites in test/ spawn the
// built CLI (dist/) as real processes on 127.0.0.1.
export default defineConfig({
  resolve: { conditions: ['tlsfleet-source'] },
  test: {
    // Two files at a time even on two cores (vitest's default is cores - 1): end-to-end files
    // mostly wait on real processes and certificate lifetimes, and CI runs the whole suite
    // on Node 20 and on Node 24 within 45 minutes.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['*/src/**/*.test.ts'], testTimeout: 20_000 },
      },
      {
        extends: true,
        test: { name: 'e2e', include: ['test/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 },
      },
    ],
  },
});

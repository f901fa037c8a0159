import { defineConfig } from 'vitest/config';

// Unit tests sit beside the module they test; end-to-end suites in test/ spawn the
// built CLI (dist/) as real processes on 127.0.0.1.
export default defineConfig({
  resolve: { conditions: ['tlsfleet-source'] },
  test: {
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

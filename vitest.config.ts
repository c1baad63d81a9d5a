import { defineConfig } from 'vitest/config';

// Four projects, as docs/testing.md describes: unit (no external processes; loopback sockets are fine),
// property (fast-check), integration (real servers and worker threads). Timed assertions belong in bench/.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], pool: 'threads' } },
      { test: { name: 'property', include: ['test/property/**/*.prop.test.ts'], testTimeout: 60_000 } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
    ],
  },
});

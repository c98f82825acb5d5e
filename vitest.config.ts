import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Starts the local stack (or uses KAFKA_BROKERS + SCHEMA_REGISTRY_URL) once for the whole run.
    globalSetup: ['test/global-setup.ts'],
    // Deletes each file's topics and schema subjects after it (test/cleanup.ts).
    setupFiles: ['test/cleanup.ts'],
    // Integration tests wait on a real broker; each file uses its own topics, so files run in parallel.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    // expect.poll waits on a real broker and a real browser too; 1 s (the default) is tight on a loaded 2-core machine.
    expect: { poll: { timeout: 15_000 } },
    pool: 'forks',
    reporters: ['default'],
  },
});

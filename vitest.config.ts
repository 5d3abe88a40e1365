import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globals: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests build network namespaces and run real peers; running test
    // files one at a time keeps them off each other's toes and the figures honest
    // on a 2-core machine.
    fileParallelism: false,
    reporters: process.env.CI ? ['verbose'] : ['default'],
  },
});

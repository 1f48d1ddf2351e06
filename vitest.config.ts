import { defineConfig } from 'vitest/config';

// Privileged suites (BPF, netns, WireGuard, etcd) share kernel state such as
// bpffs pins and namespace names, so files run one process each but never two
// privileged files at once: they live under test/privileged and run in a
// second, serial project.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['**/*.test.ts'],
          exclude: ['node_modules/**', 'dist/**', 'test/privileged/**'],
          testTimeout: 60_000,
          pool: 'forks',
        },
      },
      {
        test: {
          name: 'privileged',
          include: ['test/privileged/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          pool: 'forks',
          fileParallelism: false,
        },
      },
    ],
  },
});

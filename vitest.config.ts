import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// Files that must run alone: they measure (benches, whose figures a neighbour would
// skew), reserve hugepages or run DPDK (nr_hugepages and hugetlbfs are the host's, one
// for all), pin busy work to CPUs, compare the host's whole link or namespace list before
// and after, or run for long under load (chaos, the demo). Everything else names what it
// makes after its own process (netns `vfpt<pid>-…`, simulator prefixes, temp dirs, state
// dirs, sockets) and runs two files at a time first.
const SERIAL = [
  'test/bench/**',
  'test/chaos/**',
  'test/cli/demo.test.ts',
  'test/cli/doctor.test.ts',
  'test/cni/deploy.test.ts',
  'test/cni/spec.test.ts',
  'test/dataplane/daemon-claim.test.ts',
  'test/dataplane/dpdk-config.test.ts',
  'test/dataplane/dpdk-txoffload.test.ts',
  'test/dataplane/multiworker.test.ts',
  'test/dataplane/overlay-dpdk.test.ts',
  'test/dataplane/topology-sweep.test.ts',
  'test/native/dpdk-env.test.ts',
  'test/native/io-afpacket.test.ts',
  'test/native/io-dpdk.test.ts',
  'test/native/loader.test.ts',
];

// An entry that names no file (a test renamed or split) would let the file it meant run
// beside others unnoticed: refuse to start instead.
for (const entry of SERIAL) {
  const path = entry.endsWith('/**') ? entry.slice(0, -3) : entry;
  if (!existsSync(new URL(path, import.meta.url))) throw new Error(`vitest.config.ts: SERIAL names ${entry}, which does not exist; fix the list`);
}

const common = {
  globals: false,
  testTimeout: 60_000,
  hookTimeout: 60_000,
};

export default defineConfig({
  test: {
    reporters: process.env.CI ? ['verbose'] : ['default'],
    projects: [
      {
        test: {
          ...common,
          name: 'shared',
          include: ['test/**/*.test.ts'],
          exclude: SERIAL,
          // Two files at a time on this 2-core machine: most of a file's time is spent
          // waiting on processes, the kernel and timeouts, not on its own CPU.
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...common,
          name: 'alone',
          include: SERIAL,
          // One file at a time, after the shared ones, nothing else running.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});

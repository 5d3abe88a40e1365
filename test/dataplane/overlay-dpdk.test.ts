// The overlay with DPDK uplinks (representors on AF_XDP under it): one and two workers a
// node, ping and TCP. Alone in the suite (vitest.config.ts, SERIAL): the DPDK data planes
// take hugepages, which are the host's. The other backends: overlay-backends.test.ts.
import { describe, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { backendBuilt } from '../helpers/features.js';
import { oneWorker, twoWorkers } from '../helpers/overlay.js';

const NEEDS = { netns: true, commands: ['iperf3', 'ping', '/usr/lib/cni/static'] };
// Skipped locally when the build left DPDK out; CI installs every library (scripts/setup).
const built = backendBuilt('dpdk') || process.env.CI;
const suite = (name: string, fn: () => void) => (built ? describePrivileged(name, NEEDS, fn) : describe.skip(`${name} (not built)`, fn));

suite('overlay with dpdk uplinks', () => {
  it('carries ping and TCP between pods on two nodes, and says how the uplink runs', () => oneWorker('dpdk'), 120_000);
  it('two workers per node: carries ping and four TCP streams between pods on two nodes', () => twoWorkers('dpdk'), 120_000);
});

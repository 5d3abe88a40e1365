// The overlay on the I/O backends that share the host: the same two simulated nodes, the
// uplinks on AF_XDP (one and two workers) and AF_PACKET (two workers), ping and TCP.
// DPDK's cases are in overlay-dpdk.test.ts, which runs alone (hugepages are the host's).
import { describe, expect, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { backendBuilt } from '../helpers/features.js';
import { oneWorker, twoWorkers } from '../helpers/overlay.js';

const NEEDS = { netns: true, commands: ['iperf3', 'ping', '/usr/lib/cni/static'] };
// A backend the build left out is skipped locally; CI installs every library (scripts/setup).
const built = backendBuilt('afxdp') || process.env.CI;
const suite = (name: string, fn: () => void) => (built ? describePrivileged(name, NEEDS, fn) : describe.skip(`${name} (not built)`, fn));

suite('overlay with afxdp uplinks', () => {
  it('carries ping and TCP between pods on two nodes, and says how the uplink runs', () => oneWorker('afxdp'), 120_000);
});

describePrivileged('overlay with two workers per node (two-queue uplinks, one-queue representors)', NEEDS, () => {
  it.each(['afxdp', 'afpacket'] as const)('%s: carries ping and four TCP streams between pods on two nodes', async (backend) => {
    if (backend === 'afxdp' && !backendBuilt('afxdp')) {
      expect(process.env.CI, `CI builds ${backend}: this must run there`).toBeFalsy();
      return;
    }
    await twoWorkers(backend);
  }, 120_000);
});

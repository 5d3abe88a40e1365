// `vfplane bench cni` end to end, briefly: vfplane-cni (served, and with vxlan against a
// data plane it starts) and the reference macvlan plugin, a few runs each; every call
// must succeed and the bench must leave no namespace, simulator or daemon behind. No
// timing assertions beyond "> 0".
import { execFileSync, spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { vfplane } from '../helpers/cli.js';

describePrivileged('vfplane bench cni', { netns: true, commands: ['/usr/lib/cni/macvlan', '/usr/lib/cni/host-local'] }, () => {
  it('measures ADD and DEL of vfplane-cni, with and without vxlan, from a pool, and of macvlan, and cleans up', () => {
    // Past 64 VFs the simulated NIC is an E810 (an X710 PF has 64).
    const r = vfplane(['bench', 'cni', '--runs', '3', '--standalone-runs', '1', '--vxlan', '--pool', '--vfs', '66', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.nic).toEqual({ profile: 'e810', vfs: 66 });
    expect(rep.ratio.poolAddP50).toBeCloseTo(rep.pool.add.p50Ms / rep.macvlan.add.p50Ms, 6);
    expect(rep.poolPhases.add.allocate).toBeGreaterThan(0);
    for (const k of ['vfplane', 'vxlan', 'pool', 'macvlan']) {
      expect(rep[k].add.count, k).toBe(3);
      expect(rep[k].add.p50Ms, k).toBeGreaterThan(0);
      expect(rep[k].del.p50Ms, k).toBeGreaterThan(0);
    }
    expect(rep.ratio.vxlanAddP50).toBeGreaterThan(0);
    // The served ratio's macvlan runs are the served phase's only; the standalone phase's
    // are a series of their own (they were pooled into it).
    expect(rep.standalone.add.count).toBe(1);
    expect(rep.macvlanBesideStandalone.add.count).toBe(1);
    expect(rep.ratio.standaloneAddP50).toBeCloseTo(rep.standalone.add.p50Ms / rep.macvlanBesideStandalone.add.p50Ms, 6);
    expect(rep.vxlanPhases.add.overlay).toBeGreaterThan(0);
    // The bench's pod namespace is bc<pid base 36>-pod; its daemon ran from its work dir.
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toMatch(/^bc[0-9a-z]+-pod\b/m);
    expect(spawnSync('pgrep', ['-f', 'dataplane run --config /tmp/vfplane-bench-cni-']).status).toBe(1); // none
  }, 120_000);
});

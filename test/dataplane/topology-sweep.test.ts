// A process killed while its overlay topology is up (SIGKILL, a test run cut by a closed
// pipe) cannot tear it down: the next topology to come up on the host sweeps what dead
// processes left, by the manifest each writes into its work directory. Here a child
// brings one up (a simulated NIC, namespaces, a data-plane daemon) and is killed; the
// sweep must leave nothing of it on the host, and nothing of a live one.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { sweepDeadTopologies } from '../../src/demo/topology.js';
import { link, netnsId, netnsList } from '../../src/net/ip.js';
import { moduleChild } from '../helpers/child.js';
import { ROOT } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';

const prefix = `s${(process.pid % 46656).toString(36)}`;

/** Processes whose command line names something under dir, as pgrep(1) finds them. */
function naming(dir: string): number[] {
  const r = spawnSync('pgrep', ['-f', `${dir}/`], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

describePrivileged('a topology whose process was killed', { netns: true, commands: ['ip', 'pgrep'] }, () => {
  const live = mkdtempSync(join(tmpdir(), 'vfplane-sweep-live-'));
  let work = '';

  afterAll(() => {
    rmSync(live, { recursive: true, force: true });
    if (work) { // the test failed half-way
      sweepDeadTopologies();
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('is swept by the next one: its daemon, simulated NIC, namespaces and directory; a live one is left alone', async () => {
    work = mkdtempSync(join(tmpdir(), 'vfplane-sweep-'));
    const script = `
      const { Topology } = await import(${JSON.stringify(join(ROOT, 'dist/demo/topology.js'))});
      const topo = new Topology({ prefix: ${JSON.stringify(prefix)}, workDir: ${JSON.stringify(join(work, 'topo'))},
        nodes: [{ name: 'a', vtep: '192.0.2.1' }], kernelNode: null, vfsPerNode: 1 });
      await topo.up();
      console.log('up');
      setInterval(() => { void topo; }, 1000);`;
    const child = await moduleChild(script);
    await child.kill();
    const dir = join(work, 'topo');
    // What the killed process left: its underlay namespace, its node's simulated NIC
    // (the PF netdev on the host), its daemon still running.
    expect(netnsList()).toContain(`${prefix}-ul`);
    expect(link(`${prefix}af0`)).toBeDefined();
    expect(naming(dir).length).toBeGreaterThan(0);
    // A live process's topology (this one's pid) is not touched.
    mkdirSync(join(live, 'topo'));
    writeFileSync(join(live, 'topo', 'topology.json'), JSON.stringify({ pid: process.pid, prefix: `${prefix}x` }));

    // The lock file of the netdev its daemon holds (the PF's, here in this namespace).
    const lock = `netdev-${netnsId().split(':')[1]}-${link(`${prefix}af0`)!.ifindex}.lock`;
    expect(existsSync(join('/run/vfplane', lock))).toBe(true);
    expect(sweepDeadTopologies()).toContain(dir);
    expect(netnsList().filter((n) => n.startsWith(prefix))).toEqual([]);
    expect(link(`${prefix}af0`)).toBeUndefined();
    expect(existsSync(join('/run/vfplane', lock))).toBe(false); // it stayed after the daemon was killed
    expect(naming(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(join(live, 'topo', 'topology.json'))).toBe(true);
    rmSync(work, { recursive: true, force: true });
    work = '';
  }, 120_000);
});

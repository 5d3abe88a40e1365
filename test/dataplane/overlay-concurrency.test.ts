// Pods joining the overlay at once: 10 simultaneous vfplane-cni ADDs with vxlan from one
// pool of 8 VFs on a node whose data plane runs. The overlay attach now runs alongside
// the VF's move, so this is where a race would show: 8 pods must get distinct VFs and
// distinct representor attachments, 2 a clean "try again" (11) with nothing attached,
// the attached pods must reach each other, and the DELs must leave no attachment and no
// allocation behind.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Topology } from '../../src/demo/topology.js';
import { ROOT } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';

const CNI = join(ROOT, 'bin', 'vfplane-cni.js');

interface Call { code: number | null; out: Record<string, unknown> }

describePrivileged('overlay: simultaneous CNI ADDs with vxlan', { netns: true, commands: ['ping', '/usr/lib/cni/static'] }, () => {
  let topo: Topology;
  const prefix = `q${(process.pid % 46656).toString(36)}`;
  const pods = Array.from({ length: 10 }, (_, i) => ({ name: `p${i}`, netns: `${prefix}-p${i}`, ip: `10.100.0.${i + 1}` }));

  beforeAll(async () => {
    topo = new Topology({ prefix, workDir: mkdtempSync(join(tmpdir(), 'vfplane-ovc-')), nodes: [{ name: 'a', vtep: '192.0.2.1' }], vfsPerNode: 8 });
    await topo.up();
    const n = topo.nodes.get('a')!;
    writeFileSync(join(n.stateDir, 'pools.json'), JSON.stringify({ pools: [{ name: 'all', selector: { drivers: ['vfplane_simvf'] } }] }));
    for (const p of pods) spawnSync('ip', ['netns', 'add', p.netns]);
  }, 60_000);

  afterAll(async () => {
    for (const p of pods) spawnSync('ip', ['netns', 'del', p.netns]);
    expect(await topo?.down()).toEqual([]);
  }, 60_000);

  const call = (command: string, p: (typeof pods)[number]): Promise<Call> => new Promise((resolve) => {
    const n = topo.nodes.get('a')!;
    const conf = {
      cniVersion: '1.1.0', name: 'overlay-100', type: 'vfplane-cni', pool: 'all', sysfsRoot: n.sim.root, stateDir: n.stateDir,
      vxlan: { vni: 100 }, ipam: { type: 'static', addresses: [{ address: `${p.ip}/24` }] },
    };
    const c = spawn(process.execPath, [CNI], {
      env: {
        ...process.env, CNI_COMMAND: command, CNI_CONTAINERID: `${prefix}-${p.name}`, CNI_NETNS: `/run/netns/${p.netns}`,
        CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni', CNI_ARGS: `IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${p.name}`,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stdin.end(JSON.stringify(conf));
    c.on('close', (code) => resolve({ code, out: out.trim() ? JSON.parse(out) as Record<string, unknown> : {} }));
  });

  it('8 pods attach on distinct VFs and representors, 2 get "try again", all attached pods talk, DEL leaves nothing', async () => {
    const adds = await Promise.all(pods.map((p) => call('ADD', p)));
    const ok = adds.filter((r) => r.code === 0);
    const refused = adds.filter((r) => r.code !== 0);
    expect(ok.length, JSON.stringify(refused.map((r) => r.out))).toBe(8);
    for (const r of refused) expect(r.out.code, JSON.stringify(r.out)).toBe(11);
    const vfs = ok.map((r) => (r.out.interfaces as { pciID: string }[])[0]!.pciID); // 1.1.0 results carry it
    expect(new Set(vfs).size).toBe(8);
    const st = (await topo.control('a', { op: 'status' })) as { attachments: { representor: string; pci: string; mac: string; vni: number }[] };
    expect(st.attachments.length).toBe(8);
    expect(new Set(st.attachments.map((a) => a.representor)).size).toBe(8);
    expect(new Set(st.attachments.map((a) => a.pci))).toEqual(new Set(vfs));
    // Two attached pods reach each other through the data plane (switched locally).
    const up = pods.filter((_, i) => adds[i]!.code === 0);
    const r = spawnSync('ip', ['netns', 'exec', up[0]!.netns, 'ping', '-c', '3', '-i', '0.2', '-w', '5', up[7]!.ip], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/[1-3] received/);

    const dels = await Promise.all(pods.map((p) => call('DEL', p)));
    for (const d of dels) expect(d.code, JSON.stringify(d.out)).toBe(0);
    const after = (await topo.control('a', { op: 'status' })) as { attachments: unknown[] };
    expect(after.attachments).toEqual([]);
    const held = spawnSync(process.execPath, [join(ROOT, 'bin', 'vfplane.js'), 'vf', 'list', '--allocated', '--json', '--sysfs-root', topo.nodes.get('a')!.sim.root, '--state-dir', topo.nodes.get('a')!.stateDir], { encoding: 'utf8' });
    expect(held.status, held.stderr).toBe(0);
    expect(JSON.parse(held.stdout)).toEqual([]);
  }, 120_000);
});

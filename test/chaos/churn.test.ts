// Pods coming and going under failure, bounded in time: pod actors ADD and DEL through
// vfplane-cni (VXLAN, pool allocation, host-local IPAM) on one simulated node while a
// chaos actor kills and restarts the data plane and runs `vfplane gc`; CNI calls are
// killed mid-way, and pod namespaces deleted without a DEL (lost sandboxes). Throughout,
// no two live pods hold one VF, each ADD's interface is in its pod, and every CNI error
// is a spec error. After the runtime's cleanup (a DEL for every pod it knows, then gc),
// nothing is left: no allocation, no lease, no attachment, every VF netdev home.
// VFPLANE_CHAOS_SECONDS sets the length (default 20; longer soaks find rarer interleavings).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { ROOT } from '../helpers/cli.js';
import { Topology, type Node } from '../../src/demo/topology.js';
import { request } from '../../src/dataplane/control.js';

const PLUGIN = join(ROOT, 'bin', 'vfplane-cni.js');
const CLI = join(ROOT, 'bin', 'vfplane.js');
const prefix = `c${(process.pid % 46656).toString(36)}`;
const SECONDS = Number(process.env.VFPLANE_CHAOS_SECONDS ?? 20);
const VFS = 6;
const ACTORS = 4;

interface Run { code: number | null; signal: NodeJS.Signals | null; out: any; stdout: string }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const parse = (s: string) => {
  try {
    return s.trim() ? JSON.parse(s) : null;
  } catch {
    return null;
  }
};

describePrivileged('churn under failure on one simulated node', { netns: true, commands: ['/usr/lib/cni/host-local'] }, () => {
  let topo: Topology;
  let node: Node;
  let work: string;
  const netnses = new Set<string>();
  const children = new Set<ChildProcess>();

  const conf = () => ({
    cniVersion: '1.1.0', name: 'churn', type: 'vfplane-cni', pool: 'all', poolsFile: join(work, 'pools.json'),
    sysfsRoot: node.sim.root, stateDir: node.stateDir, vxlan: { vni: 100 },
    ipam: { type: 'host-local', subnet: '10.77.0.0/24', dataDir: join(work, 'ipam') },
  });
  /** A process, without blocking the other actors; killed with SIGKILL after `killMs`. */
  const exec = (file: string, args: string[], env: Record<string, string>, input: string | null, killMs?: number) =>
    new Promise<Run>((resolve) => {
      const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'ignore'] });
      children.add(child);
      let stdout = '';
      child.stdout!.on('data', (d) => (stdout += d));
      const t = killMs === undefined ? null : setTimeout(() => child.kill('SIGKILL'), killMs);
      child.on('close', (code, signal) => {
        if (t) clearTimeout(t);
        children.delete(child);
        resolve({ code, signal, out: parse(stdout), stdout });
      });
      child.stdin!.end(input ?? '');
    });
  const cni = (command: string, cid: string, netns: string, killMs?: number) => exec(process.execPath, [PLUGIN], {
    CNI_COMMAND: command, CNI_CONTAINERID: cid, CNI_NETNS: netns ? `/run/netns/${netns}` : '', CNI_IFNAME: 'net1', CNI_PATH: '/usr/lib/cni',
    CNI_ARGS: `IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${cid}`,
  }, JSON.stringify(conf()), killMs);
  const cli = (args: string[]) => exec(process.execPath, [CLI, ...args, '--sysfs-root', node.sim.root, '--state-dir', node.stateDir, '--json'], {}, null);
  const leases = () => (existsSync(join(work, 'ipam', 'churn')) ? readdirSync(join(work, 'ipam', 'churn')).filter((f) => /^\d/.test(f)) : []);
  const netnsAdd = (name: string) => {
    spawnSync('ip', ['netns', 'add', name]);
    netnses.add(name);
  };
  const netnsDel = (name: string) => {
    spawnSync('ip', ['netns', 'del', name]);
    netnses.delete(name);
  };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'vfplane-churn-'));
    writeFileSync(join(work, 'pools.json'), JSON.stringify({ pools: [{ name: 'all', selector: { drivers: ['vfplane_simvf'] } }] }));
    topo = new Topology({ prefix, workDir: join(work, 'topo'), nodes: [{ name: 'a', vtep: '192.0.2.1' }], kernelNode: null, vfsPerNode: VFS });
    try {
      await topo.up();
    } catch (e) {
      await topo.down();
      throw e;
    }
    node = topo.nodes.get('a')!;
  }, 60_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const ns of [...netnses]) netnsDel(ns);
    await topo?.down();
    rmSync(work, { recursive: true, force: true });
  });

  it(`${ACTORS} pod actors, killed CNI calls, lost sandboxes, data-plane kills and gc for ${SECONDS} s: no VF shared, nothing left after cleanup`, async () => {
    const deadline = Date.now() + SECONDS * 1000;
    // The actors go on past the deadline until the churn has been enough (more than 20
    // ADDs done: a loaded machine, 18 in 20 s), up to three times as long.
    const hardDeadline = Date.now() + 3 * SECONDS * 1000;
    const churning = () => Date.now() < deadline || (stats.addOk <= 20 && Date.now() < hardDeadline);
    const violations: string[] = [];
    const stats = { adds: 0, addOk: 0, addKilled: 0, tryAgain: 0, otherErrors: {} as Record<string, number>, dels: 0, delKilled: 0, lost: 0, restarts: 0, gcs: 0 };
    /** Pods whose ADD succeeded and whose sandbox lives: container ID → VF. */
    const live = new Map<string, string>();
    /** Sandboxes deleted without a DEL: the runtime sends their DEL (no netns) at the end. */
    const lost: string[] = [];
    const rand = Math.random;

    const wellFormed = (r: Run, what: string) => {
      if (!r.out || typeof r.out.code !== 'number' || typeof r.out.msg !== 'string') violations.push(`${what}: exit ${r.code}, not a CNI error object: ${r.stdout.slice(0, 200)}`);
    };
    /** DEL until it succeeds, as a runtime retries it. */
    const delUntilDone = async (cid: string, netns: string) => {
      for (let i = 0; i < 5; i++) {
        const d = await cni('DEL', cid, netns);
        stats.dels++;
        if (d.code === 0) return;
        wellFormed(d, `DEL ${cid}`);
        if (i === 4) violations.push(`DEL ${cid} failed 5 times: ${d.stdout.slice(0, 300)}`);
        await sleep(300);
      }
    };

    const actor = async (id: number) => {
      for (let k = 0; churning(); k++) {
        const cid = `churn-${id}-${k}`;
        const ns = `${prefix}-${id}x${k}`;
        netnsAdd(ns);
        const killMs = rand() < 0.15 ? rand() * 400 : undefined;
        const add = await cni('ADD', cid, ns, killMs);
        stats.adds++;
        if (add.signal) stats.addKilled++;
        else if (add.code !== 0) {
          wellFormed(add, `ADD ${cid}`);
          if (add.out?.code === 11) stats.tryAgain++;
          else stats.otherErrors[`${add.out?.code}: ${String(add.out?.msg).slice(0, 90)}`] = (stats.otherErrors[`${add.out?.code}: ${String(add.out?.msg).slice(0, 90)}`] ?? 0) + 1;
        } else {
          stats.addOk++;
          const pci = add.out?.interfaces?.[0]?.pciID as string;
          for (const [other, p] of live) if (p === pci) violations.push(`VF ${pci} given to ${cid} while ${other} holds it`);
          live.set(cid, pci);
          const l = spawnSync('ip', ['-n', ns, '-j', 'link', 'show', 'net1'], { encoding: 'utf8' });
          const mac = l.status === 0 ? (JSON.parse(l.stdout) as { address: string }[])[0]?.address : undefined;
          if (mac !== add.out.interfaces[0].mac) violations.push(`${cid}: net1 in ${ns} is ${l.status === 0 ? `MAC ${mac}` : 'missing'}, ADD said ${add.out.interfaces[0].mac}`);
        }
        await sleep(rand() * 250);
        if (rand() < 0.1) {
          // The sandbox is lost without a DEL (its VF's owner is gone: gc may release it).
          live.delete(cid);
          netnsDel(ns);
          lost.push(cid);
          stats.lost++;
          continue;
        }
        if (rand() < 0.1) {
          await cni('DEL', cid, ns, rand() * 300); // killed mid-way; the runtime tries again
          stats.delKilled++;
        }
        await delUntilDone(cid, ns);
        live.delete(cid);
        netnsDel(ns);
      }
    };

    const chaos = async () => {
      for (let i = 0; Date.now() < deadline - 3000; i++) {
        await sleep(2500 + rand() * 2500);
        if (i % 2 === 0) {
          await topo.stopDaemon(node, rand() < 0.5 ? 'SIGKILL' : 'SIGTERM');
          await sleep(rand() * 1000);
          await topo.startDaemon(node);
          stats.restarts++;
        } else {
          const g = await cli(['gc']);
          stats.gcs++;
          if (g.code !== 0) violations.push(`vfplane gc exit ${g.code}: ${g.stdout.slice(0, 300)}`);
        }
      }
    };

    await Promise.all([...Array.from({ length: ACTORS }, (_, i) => actor(i)), chaos()]);
    if (!node.proc || node.proc.exitCode !== null) await topo.startDaemon(node);

    // The runtime's cleanup: the lost sandboxes' DELs (no netns), then the operator's gc.
    for (const cid of lost) await delUntilDone(cid, '');
    const g = await cli(['gc']);
    expect(g.code, g.stdout).toBe(0);

    // Nothing left (the data plane detaches what was released while it was down within its
    // 2 s beat, or at its start).
    let held: unknown[] = [];
    let atts: unknown[] = [];
    for (let i = 0; i < 50; i++) {
      held = (await cli(['vf', 'list', '--allocated'])).out;
      atts = ((await request(node.socket, { op: 'status' })) as { attachments: unknown[] }).attachments;
      if (held.length === 0 && atts.length === 0) break;
      await sleep(200);
    }
    const summary = JSON.stringify(stats);
    console.log(`churn: ${summary}`);
    expect(violations, summary).toEqual([]);
    expect(held, summary).toEqual([]);
    expect(atts, summary).toEqual([]);
    expect(leases(), summary).toEqual([]);
    // Every VF is back in the host namespace with its netdev, and free.
    const vfs = (await cli(['vf', 'list'])).out as { pci: string; netdev: string | null; allocation: unknown }[];
    expect(vfs.filter((v) => !v.netdev || v.allocation).map((v) => v.pci), summary).toEqual([]);
    expect(vfs).toHaveLength(VFS);
    // The churn did happen, and failures with it.
    expect(stats.addOk, summary).toBeGreaterThan(20);
    expect(stats.restarts, summary).toBeGreaterThan(0);
    expect(stats.lost + stats.addKilled, summary).toBeGreaterThan(0);
  }, (3 * SECONDS + 120) * 1000);
});

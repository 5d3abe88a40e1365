// `vfplane demo`, the README's main job, run as a user runs it: two simulated nodes and a
// kernel vxlan node, pods through vfplane-cni, ping/isolation/TCP checks, the report, and
// nothing left behind afterwards (namespaces, links, the simulators' trees).
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';

describePrivileged('vfplane demo', { netns: true, commands: ['iperf3', 'ping', 'ethtool'] }, () => {
  it('brings the overlay up, passes every check, reports, and tears everything down', () => {
    const r = spawnSync(process.execPath, [BIN, 'demo', '--json', '--seconds', '1'], { encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as {
      ok: boolean;
      failed: number;
      backend: string;
      checks: { what: string; ok: boolean }[];
      tcpGbps: number | null;
      tcpOk: boolean;
      udp64: { encapMpps: number; decapMpps: number; sentPkts: number | null; ringDropsNodeA: number };
      nodes: Record<string, { status: { attachments: { vni: number }[] }; counters: { vnis: { vni: number; encapPkts: number; decapPkts: number }[] } }>;
    };
    expect(rep.backend).toBe('afpacket');
    expect([rep.ok, rep.failed]).toEqual([true, 0]); // the verdict, in the JSON too
    expect(rep.checks.length).toBeGreaterThanOrEqual(5); // two reach, two isolated, the kernel node
    for (const c of rep.checks) expect(c.ok, c.what).toBe(true);
    expect(rep.tcpOk, `TCP ${rep.tcpGbps} Gbit/s`).toBe(true);
    expect(rep.udp64.encapMpps).toBeGreaterThan(0);
    // Where the small packets went: what iperf3 sent, and what node a's rings lost.
    expect(rep.udp64.sentPkts).toBeGreaterThan(0);
    expect(rep.udp64.ringDropsNodeA).toBeGreaterThanOrEqual(0);
    expect(Object.keys(rep.nodes).sort()).toEqual(['a', 'b']);
    for (const n of Object.values(rep.nodes)) {
      expect(n.status.attachments.map((a) => a.vni).sort()).toEqual([100, 200]);
      const v100 = n.counters.vnis.find((v) => v.vni === 100)!;
      expect(v100.encapPkts).toBeGreaterThan(0);
      expect(v100.decapPkts).toBeGreaterThan(0);
    }
    // Its names start with d<pid in base 36> (src/demo/demo.ts): none may remain.
    const prefix = `d${(r.pid % 1_679_616).toString(36)}`;
    const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(prefix));
    expect(netns).toEqual([]);
    const links = spawnSync('ip', ['-br', 'link'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(prefix));
    expect(links).toEqual([]);
  }, 300_000);
});

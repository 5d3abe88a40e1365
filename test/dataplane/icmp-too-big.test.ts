// A pod's packet too big for the underlay (native/core/icmp.c, encap_refused in
// native/worker/dp.c): dropped as mtu_exceeded and answered with ICMP "fragmentation
// needed" / ICMPv6 "packet too big", which the pod's own kernel takes into its path MTU
// (ip route get shows it) and tshark dissects as valid; the frames RFC 1812 and RFC 4443
// say get no error get none; the config switches it off live. Then two nodes over a
// 1500-byte underlay (IPv4, IPv6): TCP between 1500-byte pods by path MTU discovery, and
// the MTU vfplane-cni gives a pod whose config names none (what the overlay carries).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Topology } from '../../src/demo/topology.js';
import { request } from '../../src/dataplane/control.js';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { backendBuilt } from '../helpers/features.js';
import { icmpEcho, udp4, udp6, writePcap } from '../helpers/frames.js';
import { capture, inject } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';
import { POD, uplinkNetns } from '../helpers/underlay.js';

/** The remote pod (behind VTEP 192.0.2.2) and one more behind it. */
const S = '02:00:00:00:7d:02', S2 = '02:00:00:00:7d:03';
const v6 = (last: number) => Uint8Array.from([0xfd, 0x09, ...new Array(13).fill(0), last]);

type Stats = { counters: { drops: Record<string, number>; misc: Record<string, number>; vnis: { vni: number; encapPkts: number }[] } };

describePrivileged('ICMP too big, to a pod over the overlay\'s MTU', { netns: true, commands: ['ping', 'tshark'] }, () => {
  const e = uplinkNetns('icmptb');
  const { up, rep, repp, d } = e;

  async function stats(socket: string): Promise<Stats> {
    return (await request(socket, { op: 'stats' })) as unknown as Stats;
  }
  /** Polls until `pred` holds of the counters (the workers run on their own). */
  async function until(socket: string, pred: (s: Stats) => boolean): Promise<Stats> {
    let s = await stats(socket);
    for (let i = 0; i < 100 && !pred(s); i++) {
      await new Promise((r) => setTimeout(r, 20));
      s = await stats(socket);
    }
    return s;
  }
  /** One echo request; `wait` seconds for its answer (an ICMP error ends it at once). */
  const ping = (args: string[], wait = 2) => spawnSync('ip', ['netns', 'exec', e.n.name, 'ping', '-c', '1', '-W', String(wait), ...args], { encoding: 'utf8' });

  for (const backend of ['afpacket', 'afxdp'] as const) {
    // Skipped locally when the build left AF_XDP out; CI installs every library, so there
    // it runs (and fails if the build lacks it).
    it.skipIf(!backendBuilt(backend) && !process.env.CI)(`${backend}: the pod is told the MTU the overlay carries, and its kernel uses it; what may not be answered is not; off when the config says so`, async () => {
      // The pod: the far end of the representor, with IPv4 and IPv6 addresses and the
      // remote pods' MACs (no ARP/ND across: the test is about size). Every veth has MTU
      // 1500, so the overlay carries inner IP packets of 1450 (1500 − 50).
      e.n.ip(['link', 'set', repp, 'address', POD]);
      e.n.ip(['addr', 'replace', '10.9.0.1/24', 'dev', repp]);
      e.n.ip(['addr', 'replace', 'fd09::1/64', 'dev', repp, 'nodad']);
      for (const [ip4, ip6, m] of [['10.9.0.2', 'fd09::2', S], ['10.9.0.3', 'fd09::3', S2]] as const) {
        e.n.ip(['neigh', 'replace', ip4, 'lladdr', m, 'dev', repp, 'nud', 'permanent']);
        e.n.ip(['-6', 'neigh', 'replace', ip6, 'lladdr', m, 'dev', repp, 'nud', 'permanent']);
      }
      // What an earlier case taught this namespace's kernel goes.
      e.n.ip(['route', 'flush', 'cache']);
      e.n.ip(['-6', 'route', 'flush', 'cache']);
      const config = { backend, metrics: '127.0.0.1:0', peers: [{ vtep: '192.0.2.2', mac: '02:bb:00:00:00:02' }], fdb: [{ vni: 100, mac: S, vtep: '192.0.2.2' }, { vni: 100, mac: S2, vtep: '192.0.2.2' }] };
      const dir = join(d.dir, backend); // a state directory of its own: nothing restored from the other case
      mkdirSync(dir);
      const dp = await dataplaneOn(e.n, up, dir, config);
      try {
        const a = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', rep, '--vni', '100', '--mac', POD, '--netns', e.n.path]);
        expect(a.code, a.stderr).toBe(0);
        const cap = capture(e.n, repp, { count: 3, timeoutS: 15, incoming: true, vlan: true });
        await cap.ready;

        // The kernel's own ping, DF set, an IP packet of 1500 bytes: told 1450.
        const p4 = ping(['-M', 'do', '-s', '1472', '10.9.0.2']);
        expect(p4.stdout, p4.stderr).toContain('From 10.9.0.2 icmp_seq=1 Frag needed and DF set (mtu = 1450)');
        expect(e.n.ip(['route', 'get', '10.9.0.2']), 'the pod\'s kernel keeps the path MTU').toMatch(/\bmtu 1450\b/);
        const p6 = ping(['-6', '-M', 'do', '-s', '1452', 'fd09::2']);
        expect(p6.stdout, p6.stderr).toContain('From fd09::2 icmp_seq=1 Packet too big: mtu=1450');
        expect(e.n.ip(['-6', 'route', 'get', 'fd09::2'])).toMatch(/\bmtu 1450\b/);
        // A tagged inner frame keeps its tag, and is told what its own L2 header leaves.
        const tagged = udp4({ dstMac: S, srcMac: POD, src: '10.9.0.1', dst: '10.9.0.2', sport: 5, dport: 6, payload: new Uint8Array(1472), df: true, vlan: 7 });
        inject(e.n, repp, [tagged]);
        const got = await cap.done;
        expect(got, 'the replies reached the pod\'s side').toHaveLength(3);

        // tshark reads the replies as valid ICMP errors quoting what the pod sent.
        const pcap = join(dir, 'replies.pcap');
        writePcap(pcap, got);
        const F = ['eth.src', 'eth.dst', 'vlan.id', 'ip.src', 'ip.dst', 'ip.ttl', 'ip.checksum.status', 'icmp.type', 'icmp.code', 'icmp.mtu', 'icmp.checksum.status',
          'ipv6.src', 'ipv6.dst', 'icmpv6.type', 'icmpv6.code', 'icmpv6.mtu', 'icmpv6.checksum.status'];
        const rows = execFileSync('tshark', ['-r', pcap, '-o', 'ip.check_checksum:TRUE', '-T', 'fields', '-E', 'separator=|', ...F.flatMap((f) => ['-e', f])], { encoding: 'utf8' })
          .trim().split('\n').map((l) => Object.fromEntries(l.split('|').map((v, i) => [F[i], v])));
        const r4 = rows.find((r) => r['icmp.type']?.startsWith('3') && !r['vlan.id']);
        const r6 = rows.find((r) => r['icmpv6.type']?.startsWith('2'));
        const rt = rows.find((r) => r['vlan.id'] === '7');
        // Repeated fields list the reply's header, then the quoted packet's.
        expect(r4).toMatchObject({ 'eth.src': S, 'eth.dst': POD, 'ip.src': '10.9.0.2,10.9.0.1', 'ip.dst': '10.9.0.1,10.9.0.2', 'icmp.type': '3,8', 'icmp.code': '4,0', 'icmp.mtu': '1450' });
        // The reply's own checksums (tshark: 1 good); the quoted echo's is cut short (2: unverified).
        expect(r4!['ip.checksum.status']!.split(',')[0]).toBe('1');
        expect(r4!['icmp.checksum.status']!.split(',')[0]).toBe('1');
        expect(r4!['ip.ttl']!.split(',')[0]).toBe('64');
        expect(r6).toMatchObject({ 'eth.src': S, 'eth.dst': POD, 'ipv6.src': 'fd09::2,fd09::1', 'ipv6.dst': 'fd09::1,fd09::2', 'icmpv6.mtu': '1450' });
        expect(r6!['icmpv6.type']!.split(',')).toEqual(['2', '128']); // too big, quoting an echo request
        expect(r6!['icmpv6.code']!.split(',')[0]).toBe('0');
        expect(r6!['icmpv6.checksum.status']!.split(',')[0]).toBe('1');
        expect(rt).toMatchObject({ 'eth.src': S, 'eth.dst': POD, 'icmp.mtu': '1446' });
        expect(rt!['icmp.checksum.status']!.split(',')[0]).toBe('1');
        // Each reply quotes as much as the minimum MTU allows: 576 and 1280 bytes of IP.
        expect(got.map((f) => f.length).sort((x, y) => x - y)).toEqual([14 + 576, 18 + 576, 14 + 1280]);

        // The pod's next packets fit: 1450 bytes go out encapsulated.
        const before = await stats(dp.socket);
        const fit = ping(['-M', 'do', '-s', '1422', '10.9.0.2'], 1);
        expect(fit.stdout).not.toContain('Frag needed');
        const enc = (s: Stats) => s.counters.vnis.find((v) => v.vni === 100)?.encapPkts ?? 0;
        const after = await until(dp.socket, (s) => enc(s) > enc(before));
        expect(enc(after), 'an IP packet of 1450 bytes is encapsulated').toBeGreaterThan(enc(before));
        expect(after.counters.misc.icmpTooBig).toBe(3);
        expect(after.counters.drops.mtu_exceeded).toBe(3);

        // Too big too, but no error may be sent about them: no DF (the path may fragment;
        // this one does not), a source that is no host's, an ICMP error, an IPv6 fragment
        // that is not the first, an ICMPv6 error. Dropped and counted, nothing more.
        const noDf = udp4({ dstMac: S, srcMac: POD, src: '10.9.0.1', dst: '10.9.0.2', sport: 5, dport: 6, payload: new Uint8Array(1472) });
        const zeroSrc = udp4({ dstMac: S, srcMac: POD, src: '0.0.0.0', dst: '10.9.0.2', sport: 5, dport: 6, payload: new Uint8Array(1472), df: true });
        const icmpErr = icmpEcho({ dstMac: S, srcMac: POD, src: '10.9.0.1', dst: '10.9.0.2', id: 1, seq: 1, payloadLen: 1472, df: true });
        icmpErr[34] = 3;
        const frag6 = udp6({ dstMac: S, srcMac: POD, src: v6(1), dst: v6(2), sport: 5, dport: 6, payload: new Uint8Array(1452) });
        frag6[20] = 44; // a fragment header where the UDP header was: next 17, offset 8
        frag6.set([17, 0, 0, 8, 0, 0, 0, 9], 54);
        const icmp6Err = udp6({ dstMac: S, srcMac: POD, src: v6(1), dst: v6(2), sport: 5, dport: 6, payload: new Uint8Array(1452) });
        icmp6Err[20] = 58;
        icmp6Err[54] = 1; // destination unreachable
        for (const f of [noDf, zeroSrc, icmpErr, frag6, icmp6Err]) expect(f.length).toBeGreaterThan(1464 + 14);
        inject(e.n, repp, [noDf, zeroSrc, icmpErr, frag6, icmp6Err]);
        const quiet = await until(dp.socket, (s) => s.counters.drops.mtu_exceeded === 8);
        expect(quiet.counters.drops.mtu_exceeded).toBe(8);
        expect(quiet.counters.misc.icmpTooBig, 'none of them answered').toBe(3);
        expect(vfplane(['dataplane', 'stats', '--socket', dp.socket]).stdout).toMatch(/^ICMP too big: 3 sent to pods whose packets were over the overlay's MTU$/m);
        const metrics = await (await fetch(`http://127.0.0.1:${dp.metricsPort}/metrics`)).text();
        expect(metrics).toMatch(/^vfplane_icmp_too_big_total\{node="edge",result="sent"\} 3$/m);
        expect(metrics).toMatch(/^vfplane_icmp_too_big_total\{node="edge",result="limited"\} 0$/m);

        // A pod sending too big a packet over and over is told at most 1000 times a second,
        // in bursts of 50 (Linux's own ICMP limits): 400 sent at once get ~50 replies.
        const many = Array.from({ length: 400 }, () => udp4({ dstMac: S, srcMac: POD, src: '10.9.0.1', dst: '10.9.0.2', sport: 5, dport: 6, payload: new Uint8Array(1472), df: true }));
        inject(e.n, repp, many);
        const burst = await until(dp.socket, (s) => s.counters.drops.mtu_exceeded === 408);
        expect(burst.counters.drops.mtu_exceeded).toBe(408);
        const sent = burst.counters.misc.icmpTooBig! - 3, limited = burst.counters.misc.icmpTooBigLimited!;
        expect(sent + limited).toBe(400);
        expect(sent).toBeGreaterThanOrEqual(50);
        expect(limited, `${sent} sent`).toBeGreaterThan(0);
        expect(vfplane(['dataplane', 'stats', '--socket', dp.socket]).stdout).toMatch(new RegExp(`^ICMP too big: ${sent + 3} sent to pods whose packets were over the overlay's MTU, ${limited} not sent \\(over the workers' ICMP rate limit\\)$`, 'm'));

        // Off, live: the pod's packet is dropped without a word, as before this existed.
        writeFileSync(dp.config, JSON.stringify({ ...JSON.parse(readFileSync(dp.config, 'utf8')), icmpTooBig: false }));
        const rl = vfplane(['dataplane', 'reload', '--socket', dp.socket]);
        expect(rl.code, rl.stderr).toBe(0);
        const off = ping(['-M', 'do', '-s', '1472', '10.9.0.3'], 1);
        expect(off.stdout).not.toContain('Frag needed');
        const offStats = await until(dp.socket, (s) => s.counters.drops.mtu_exceeded === 409);
        expect(offStats.counters.drops.mtu_exceeded).toBe(409);
        expect(offStats.counters.misc.icmpTooBig).toBe(burst.counters.misc.icmpTooBig);
        expect(e.n.ip(['route', 'get', '10.9.0.3'])).not.toMatch(/\bmtu 1450\b/);
      } finally {
        await dp.stop();
      }
    }, 60_000);
  }
});

describePrivileged('path MTU discovery between two nodes\' pods at MTU 1500 over a 1500-byte underlay', { netns: true, commands: ['iperf3', 'ping', '/usr/lib/cni/static'] }, () => {
  let topo: Topology;
  const icmp = async (node: string) => ((await topo.control(node, { op: 'stats' })) as unknown as Stats).counters.misc.icmpTooBig ?? 0;
  /** iperf3 from a1 to b1 (or back, -R) for 2 s: the bytes received, or -1 when it failed. */
  function tcp(port: number, reverse: boolean): number {
    const srv = topo.exec('b1', ['iperf3', '-s', '-1', '-D', '-p', String(port)]);
    expect(srv.code, srv.stderr).toBe(0);
    spawnSync('sleep', ['0.3']);
    const r = topo.exec('a1', ['iperf3', '-c', '10.100.0.2', '-p', String(port), '-t', '2', '-J', ...(reverse ? ['-R'] : [])], 20_000);
    if (r.code !== 0) return -1;
    return (JSON.parse(r.stdout) as { end: { sum_received: { bytes: number } } }).end.sum_received.bytes;
  }

  beforeAll(async () => {
    topo = new Topology({ prefix: `m${(process.pid % 46656).toString(36)}`, workDir: mkdtempSync(join(tmpdir(), 'vfplane-pmtu-')), underlayMtu: 1500, vfsPerNode: 2 });
    await topo.up();
    // MTU 1500 by the CNI config: without it they would get the 1450 the overlay carries.
    await topo.addPod({ name: 'a1', node: 'a', vni: 100, ip: '10.100.0.1/24', mtu: 1500 });
    await topo.addPod({ name: 'b1', node: 'b', vni: 100, ip: '10.100.0.2/24', mtu: 1500 });
  }, 120_000);
  afterAll(async () => {
    expect(await topo.down()).toEqual([]);
  });

  it('a pod whose CNI config gives no MTU gets the one the overlay carries, and its VF its own back at DEL', async () => {
    // CNI 1.1.0: its result carries the interface's MTU, and CHECK holds the pod to it.
    const pod = await topo.addPod({ name: 'a2', node: 'a', vni: 100, ip: '10.100.0.3/24', cniVersion: '1.1.0' });
    try {
      expect(topo.exec('a2', ['cat', '/sys/class/net/eth0/mtu']).stdout.trim()).toBe('1450');
      const p = topo.exec('a2', ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1422', '10.100.0.2']);
      expect(p.stdout, 'a 1450-byte packet crosses').toContain('1 received');
      expect((pod.result.interfaces as { mtu?: number }[])[0]!.mtu).toBe(1450);
      expect(topo.check('a2')).toEqual({ ok: true, output: '' });
      topo.exec('a2', ['ip', 'link', 'set', 'eth0', 'mtu', '1400']);
      expect(topo.check('a2').output).toMatch(/interface eth0 has MTU 1400, not 1450/);
      topo.exec('a2', ['ip', 'link', 'set', 'eth0', 'mtu', '1450']);
      // Nothing to advise: the data plane's log has no MTU warning for it.
      expect(topo.logLines().filter((l) => l.includes(`VF ${pod.pci}`) && l.includes('has MTU'))).toEqual([]);

      // A data plane that lost its state file rebuilds the attachments from the
      // allocation store, saying of each pod's MTU what its ADD said: a2's follows the
      // overlay (no advice), a1's is 1500 by its config (advice, about the pod's MTU).
      const n = topo.nodes.get('a')!;
      const atts = ((await topo.control('a', { op: 'status' })) as { attachments: { representor: string; pci?: string }[] }).attachments;
      const rep2 = atts.find((x) => x.pci === pod.pci)!.representor;
      const pci1 = topo.pods.get('a1')!.pci;
      await topo.stopDaemon(n);
      for (const f of readdirSync(n.stateDir).filter((x) => /^dataplane-.*\.json$/.test(x))) rmSync(join(n.stateDir, f));
      await topo.startDaemon(n);
      const log = n.stderr.join('\n');
      expect(log).toMatch(new RegExp(`re-attached ${rep2} \\(VF ${pod.pci}, VNI 100\\) from the allocation store`));
      expect(log.split('\n').filter((l) => l.includes(rep2) && l.includes('has MTU'))).toEqual([]);
      expect(log).toMatch(new RegExp(`the pod interface of \\S+ \\(VF ${pci1}\\) has MTU 1500`));
      expect(topo.exec('a2', ['ping', '-c', '3', '-i', '0.3', '-W', '2', '10.100.0.2']).stdout).toMatch(/[23] received/);
    } finally {
      await topo.delPod('a2');
    }
    const n = topo.nodes.get('a')!;
    const [vf] = readdirSync(join(n.sim.root, 'bus/pci/devices', pod.pci, 'net'));
    expect(readFileSync(`/sys/class/net/${vf}/mtu`, 'utf8').trim(), 'the VF\'s MTU given back').toBe('1500');
  }, 60_000);

  it('TCP works both ways, each data plane telling its own pod; without it the pod\'s segments are lost', async () => {
    try {
      // Both pods announce an MSS of 1460, so full segments are 1500-byte IP packets, 50
      // over what the underlay carries encapsulated.
      expect(topo.exec('a1', ['cat', '/sys/class/net/eth0/mtu']).stdout.trim()).toBe('1500');
      expect(tcp(5211, false), 'a1 → b1').toBeGreaterThan(1_000_000);
      expect(await icmp('a'), 'node a told a1').toBeGreaterThan(0);
      expect(topo.exec('a1', ['ip', 'route', 'get', '10.100.0.2']).stdout).toMatch(/\bmtu 1450\b/);
      // a1's kernel now advertises the MSS its path MTU leaves (1410): made to forget it,
      // so that b1 sends full segments too.
      topo.exec('a1', ['ip', 'route', 'flush', 'cache']);
      expect(tcp(5212, true), 'b1 → a1').toBeGreaterThan(1_000_000);
      expect(await icmp('b'), 'node b told b1').toBeGreaterThan(0);
      expect(topo.exec('b1', ['ip', 'route', 'get', '10.100.0.1']).stdout).toMatch(/\bmtu 1450\b/);

      // Node a told to stay silent (live), and both pods' kernels made to forget: a1's
      // full segments vanish, and TCP moves next to nothing.
      const n = topo.nodes.get('a')!;
      writeFileSync(n.config, JSON.stringify({ ...JSON.parse(readFileSync(n.config, 'utf8')), icmpTooBig: false }));
      expect(vfplane(['dataplane', 'reload', '--socket', n.socket]).code).toBe(0);
      topo.exec('a1', ['ip', 'route', 'flush', 'cache']);
      topo.exec('b1', ['ip', 'route', 'flush', 'cache']); // else b1 advertises an MSS of 1410
      const before = await icmp('a');
      const lost = tcp(5213, false);
      expect(lost, 'a1 → b1 without ICMP').toBeLessThan(100_000);
      expect(await icmp('a')).toBe(before);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${topo.logLines(20).join('\n')}`);
    }
  }, 90_000);
});

describePrivileged('the same over an IPv6 underlay of 1500 bytes (70 bytes of outer headers)', { netns: true, commands: ['ping', '/usr/lib/cni/static'] }, () => {
  let topo: Topology;
  beforeAll(async () => {
    topo = new Topology({ prefix: `w${(process.pid % 46656).toString(36)}`, workDir: mkdtempSync(join(tmpdir(), 'vfplane-pmtu6-')), underlayMtu: 1500, vfsPerNode: 2,
      nodes: [{ name: 'a', vtep: '2001:db8::1' }, { name: 'b', vtep: '2001:db8::2' }] });
    await topo.up();
    await topo.addPod({ name: 'a1', node: 'a', vni: 100, ip: '10.100.0.1/24', mtu: 1500 });
    await topo.addPod({ name: 'b1', node: 'b', vni: 100, ip: '10.100.0.2/24' });
  }, 120_000);
  afterAll(async () => {
    expect(await topo.down()).toEqual([]);
  });

  it('a pod without an MTU gets 1430 and 1430 bytes cross; a pod at 1500 is told 1430', () => {
    try {
      expect(topo.exec('b1', ['cat', '/sys/class/net/eth0/mtu']).stdout.trim()).toBe('1430');
      // The first echo waits for the peers' neighbour discovery.
      const fit = topo.exec('b1', ['ping', '-c', '3', '-i', '0.3', '-W', '2', '-M', 'do', '-s', '1402', '10.100.0.1']);
      expect(fit.stdout).toMatch(/[1-3] received/);
      const big = topo.exec('a1', ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1472', '10.100.0.2']);
      expect(big.stdout).toContain('Frag needed and DF set (mtu = 1430)');
      expect(topo.exec('a1', ['ip', 'route', 'get', '10.100.0.2']).stdout).toMatch(/\bmtu 1430\b/);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${topo.logLines(20).join('\n')}`);
    }
  }, 60_000);
});

// One bucket of ICMP replies for every pod of a worker let one pod sending too-big
// packets without end use up the replies its neighbours' path MTU discovery needs
// (helper-67): each pod has its own now. Pods A and B are AF_PACKET ports on veths: A's
// pod sends a too-big packet over and over for three seconds, B's sends five meanwhile.
describePrivileged('ICMP too big under another pod\'s flood of too-big packets', { netns: true }, () => {
  it('still reaches a pod while another floods', async () => {
    const { DataPlane } = await import('../../src/dataplane/dp.js');
    const { Netns, ifname, vethPair } = await import('../helpers/netns.js');
    const { resolveTunnel } = await import('../../src/packet/config.js');
    const { parseIp, parseMac } = await import('../../src/util/addr.js');
    const ns = Netns.create('icmpfair'), other = Netns.create('icmpfo');
    const rep = ifname('ir'), pod = ifname('ip'), repA = ifname('ia'), podA = ifname('iq');
    vethPair(ns, rep, other, pod);
    vethPair(ns, repA, other, podA);
    for (const [n, l] of [[ns, rep], [other, pod], [ns, repA], [other, podA]] as const) {
      n.sysctl(`net.ipv6.conf.${l}.disable_ipv6`, '1');
      n.ip(['link', 'set', l, 'up']);
    }
    const A = '02:00:00:00:0a:01', B = '02:00:00:00:0b:01', DST = '02:00:00:00:0c:01';
    const big = (src: string, sport: number) => udp4({ dstMac: DST, srcMac: src, src: '10.9.0.1', dst: '10.9.0.2', sport, dport: 6, payload: new Uint8Array(1472), df: true });
    const dp = new DataPlane({ workers: 1 });
    try {
      const up = dp.openPort('memory-sink', {}, 'uplink');
      const flood = dp.openPort('afpacket', { ifname: repA, netns: ns.path, queues: 1 }, 'podA');
      const b = dp.openPort('afpacket', { ifname: rep, netns: ns.path, queues: 1 }, 'podB');
      dp.commit({
        uplink: up.slot, uplinkMac: parseMac('02:aa:00:00:00:01')!, tunnel: resolveTunnel({ local: '192.0.2.1', remote: '192.0.2.2', mtu: 1500 }),
        peers: [{ vtep: parseIp('192.0.2.2')!.bytes, mac: parseMac('02:bb:00:00:00:02')! }],
        atts: [{ port: flood.slot, vni: 100, mac: parseMac(A)! }, { port: b.slot, vni: 100, mac: parseMac(B)! }],
        fdb: [{ vni: 100, mac: parseMac(DST)!, vtep: parseIp('192.0.2.2')!.bytes }], floods: [], extraVnis: [],
        learn: false, antiSpoof: true, icmpTooBig: true, verifyUdpCsum: false,
      });
      const hex = Buffer.from(big(A, 5)).toString('hex');
      const flooder = spawn('ip', ['netns', 'exec', other.name, '/usr/bin/python3', '-c',
        `import socket, time\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\ns.bind(('${podA}', 0))\nf = bytes.fromhex('${hex}')\nt = time.time()\nwhile time.time() - t < 3:\n    s.send(f)\n`], { stdio: 'ignore' });
      const flooding = new Promise((r) => flooder.once('exit', r));
      // A's flood is under way: more of its packets go unanswered than a bucket holds.
      for (let i = 0; i < 200 && (dp.counters().misc.icmpTooBigLimited ?? 0n) < 2000n; i++) await new Promise((r) => setTimeout(r, 10));
      expect(dp.counters().misc.icmpTooBigLimited).toBeGreaterThanOrEqual(2000n);
      const cap = capture(other, pod, { count: 5, timeoutS: 5, incoming: true });
      await cap.ready;
      for (let i = 0; i < 5; i++) {
        inject(other, pod, [big(B, 100 + i)]);
        await new Promise((r) => setTimeout(r, 30));
      }
      const got = await cap.done;
      await flooding;
      // Each an ICMP fragmentation-needed (type 3 code 4) to B, carrying MTU 1450.
      const icmp = got.filter((f) => f[12] === 0x08 && f[13] === 0x00 && f[23] === 1 && f[34] === 3 && f[35] === 4);
      expect(icmp.map((f) => (f[40]! << 8) | f[41]!)).toEqual([1450, 1450, 1450, 1450, 1450]);
    } finally {
      dp.stop();
      ns.destroy();
      other.destroy();
    }
  });
});

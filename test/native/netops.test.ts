// The in-process rtnetlink batches (native/net/netops.c) against the kernel: a veth
// moved into a namespace, renamed, addressed, routed and announced from a thread that
// alone entered it; failures name the op and leave the ops after it undone.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { Netns, ifname } from '../helpers/netns.js';
import { RX_AGG, linkAddrs, linkByIndex, linkList, netRun, rxAggregation, type PodLink } from '../../src/net/netops.js';
import { hostNetnsPath } from '../../src/net/ip.js';

describePrivileged('netops: link, address, route and sysctl batches in a namespace', { netns: true }, () => {
  let pod: Netns;
  const a = ifname('no');
  const b = ifname('no');
  const c = ifname('no');
  const d = ifname('no');
  const path = () => `/run/netns/${pod.name}`;
  beforeAll(() => {
    pod = Netns.create('netops');
    execFileSync('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    execFileSync('ip', ['link', 'add', c, 'type', 'veth', 'peer', 'name', d]);
  });
  afterAll(() => {
    pod.destroy();
    execFileSync('ip', ['link', 'del', b]);
    execFileSync('ip', ['link', 'del', d]);
  });

  it('moves, renames, sets MAC and MTU, adds addresses and routes, writes per-namespace sysctls', async () => {
    await netRun(null, [{ op: 'set', name: a, netns: path() }]);
    const [, l] = await netRun(path(), [
      { op: 'set', name: a, newName: 'net1', mac: '02:00:00:00:00:42', mtu: 9000 },
      { op: 'get', name: 'net1' },
      { op: 'addr', name: 'net1', address: '10.9.0.2/24' },
      { op: 'addr', name: 'net1', address: 'fd00::2/64', nodad: true },
      { op: 'sysctl', path: 'net/ipv4/conf/net1/arp_notify', value: '1' },
      { op: 'sysctl', path: 'net/ipv6/conf/nosuch/ndisc_notify', value: '1', optional: true },
      { op: 'set', name: 'net1', up: true },
      { op: 'route', name: 'net1', dst: '10.60.0.0/16', gw: '10.9.0.1' },
    ]);
    expect(l).toMatchObject({ mac: '02:00:00:00:00:42', mtu: 9000, up: false });
    const j = JSON.parse(pod.ip(['-j', 'addr', 'show', 'dev', 'net1']))[0];
    expect(j.address).toBe('02:00:00:00:00:42');
    expect(j.flags).toContain('UP');
    expect(j.addr_info.map((x: any) => `${x.local}/${x.prefixlen}`)).toEqual(expect.arrayContaining(['10.9.0.2/24', 'fd00::2/64']));
    expect(pod.ip(['route', 'show'])).toMatch(/10\.60\.0\.0\/16 via 10\.9\.0\.1 dev net1/);
    // the sysctl landed in the pod's namespace, not the host's
    expect(pod.exec('sysctl', ['-n', 'net.ipv4.conf.net1.arp_notify']).trim()).toBe('1');
    expect(execFileSync('sysctl', ['-n', 'net.ipv4.conf.all.arp_notify'], { encoding: 'utf8' }).trim()).toBe('0');
  });

  it('stops at the first failure and says which op it was', async () => {
    await expect(netRun(path(), [
      { op: 'addr', name: 'net1', address: '10.9.0.3/24' },
      { op: 'addr', name: 'net1', address: '10.9.0.2/24' },
      { op: 'addr', name: 'net1', address: '10.9.0.4/24' },
    ])).rejects.toThrow(/adding 10\.9\.0\.2\/24 to net1 in .*: (File exists|Error: ipv4: Address already assigned)/); // native, iproute2
    const have = JSON.parse(pod.ip(['-j', 'addr', 'show', 'dev', 'net1']))[0].addr_info.map((x: any) => x.local);
    expect(have).toContain('10.9.0.3');
    expect(have).not.toContain('10.9.0.4');
    await expect(netRun('/run/netns/vfplane-no-such-ns', [{ op: 'get', name: 'x' }])).rejects.toThrow(/entering \/run\/netns\/vfplane-no-such-ns: no such file; give one such as \/run\/netns\/NAME or \/proc\/PID\/ns\/net/);
    // A directory (or any file that is no namespace): setns says only EINVAL.
    await expect(netRun('/run/netns', [{ op: 'get', name: 'x' }])).rejects.toThrow(/entering \/run\/netns: not a network namespace file; give one such as/);
    expect((await netRun(path(), [{ op: 'get', name: 'nosuch0' }]))[0]).toBeNull();
    // The iproute2 fallback (no addon) names the failing op the same way, with ip's reason.
    vi.resetModules();
    process.env.VFPLANE_NETOPS = 'iproute2';
    try {
      const viaIp = await import('../../src/net/netops.js');
      await expect(viaIp.netRun(path(), [
        { op: 'addr', name: 'net1', address: '10.9.0.2/24' },
        { op: 'addr', name: 'net1', address: '10.9.0.5/24' },
      ])).rejects.toThrow(/adding 10\.9\.0\.2\/24 to net1 in .*: Error: ipv4: Address already assigned/);
      expect(JSON.parse(pod.ip(['-j', 'addr', 'show', 'dev', 'net1']))[0].addr_info.map((x: any) => x.local)).not.toContain('10.9.0.5');
      await expect(viaIp.netRun(path(), [{ op: 'maddr', name: 'net1', mac: '02:00:00:00:00:07', join: true }]))
        .rejects.toThrow(/^joining multicast 02:00:00:00:00:07 on net1 in \S+: Invalid argument \(not a multicast MAC\)$/);
    } finally {
      delete process.env.VFPLANE_NETOPS;
      vi.resetModules();
    }
  });

  it('moves the netdev back to the host namespace under its own name', async () => {
    await netRun(path(), [{ op: 'set', name: 'net1', up: false, newName: a, netns: hostNetnsPath() }]);
    expect(execFileSync('ip', ['-br', 'link', 'show', 'dev', a], { encoding: 'utf8' })).toContain(a);
  });

  it('moves and renames in one request: the new name is checked in the target namespace only', async () => {
    // The new name is the host's own veth peer (b): taken here, free in the pod.
    await netRun(null, [{ op: 'set', name: a, newName: b, mac: '02:00:00:00:00:43', mtu: 8000, up: true, netns: path() }]);
    const j = JSON.parse(pod.ip(['-j', 'link', 'show', 'dev', b]))[0];
    expect(j).toMatchObject({ address: '02:00:00:00:00:43', mtu: 8000 });
    expect(j.flags).toContain('UP');
    expect(execFileSync('ip', ['-br', 'link', 'show', 'dev', b], { encoding: 'utf8' })).toContain(b); // the host's b is untouched
    // A new name taken in the pod fails the request, after the move: the link is in the
    // pod under its own name (where a CNI ADD's undo looks for it).
    await expect(netRun(null, [{ op: 'set', name: c, newName: b, netns: path() }])).rejects.toThrow(/File exists/);
    expect(pod.ip(['-br', 'link', 'show', 'dev', c])).toContain(c);
    await netRun(path(), [{ op: 'set', name: c, netns: hostNetnsPath() }]);
    await netRun(path(), [{ op: 'set', name: b, newName: a, netns: hostNetnsPath() }]);
    expect(execFileSync('ip', ['-br', 'link', 'show', 'dev', a], { encoding: 'utf8' })).toContain(a);
  });

  // linkAddrs reads a link and its addresses without the RTNL lock (one RTM_GETADDR dump
  // per family); iproute2 is the peer that says what is there.
  it('lists a link and its addresses of both families as iproute2 does, and a missing link as null', async () => {
    const ns = Netns.create('addrs');
    try {
      const x = ifname('la'), y = ifname('lb');
      ns.ip(['link', 'add', x, 'type', 'veth', 'peer', 'name', y]);
      ns.ip(['addr', 'add', '10.41.0.1/24', 'dev', x]);
      ns.ip(['addr', 'add', '10.41.1.1/16', 'dev', x]);
      ns.ip(['addr', 'add', 'fd00:41::1/64', 'dev', x, 'nodad']);
      ns.ip(['addr', 'add', '10.42.0.1/24', 'dev', y]); // another link's: not listed
      ns.ip(['link', 'set', x, 'up']);
      const got = await linkAddrs(`/run/netns/${ns.name}`, x);
      const ipj = JSON.parse(ns.ip(['-j', 'addr', 'show', 'dev', x])) as { ifindex: number; address: string; mtu: number; addr_info: { local: string; prefixlen: number; scope: string }[] }[];
      expect(got).not.toBeNull();
      expect(got!.ifindex).toBe(ipj[0]!.ifindex);
      expect(got!.mac).toBe(ipj[0]!.address);
      expect(got!.mtu).toBe(ipj[0]!.mtu);
      const norm = (l: { local: string; prefixlen: number; scope?: string }[]) => l.map((z) => `${z.local}/${z.prefixlen} ${z.scope}`).sort();
      expect(norm(got!.addrs)).toEqual(norm(ipj[0]!.addr_info));
      expect(norm(got!.addrs)).toEqual(expect.arrayContaining(['10.41.0.1/24 global', '10.41.1.1/16 global', 'fd00:41::1/64 global']));
      expect(await linkAddrs(`/run/netns/${ns.name}`, 'vfpnosuch0')).toBeNull();
    } finally {
      ns.destroy();
    }
  });

  // linkList / linkByIndex (CNI DEL's reads of the pod's links and of a veth's host-side
  // peer) from one RTM_GETLINK dump or get; `ip -d -j link show` is the peer.
  it('lists a namespace\'s links, and one by index, with what ip -d -j link show says of them', async () => {
    const ns = Netns.create('links');
    const host = ifname('lh'), inPod = ifname('lp'), dum = ifname('ld'), vl = ifname('lv');
    const hostIdx = 30000 + (process.pid % 2000), podIdx = 777;
    try {
      // A veth whose peer is in the host (the simulator's VF), made with chosen indexes;
      // a veth pair inside the namespace (a peer in the same namespace: no link_index).
      execFileSync('ip', ['link', 'add', host, 'index', String(hostIdx), 'type', 'veth', 'peer', 'name', inPod, 'netns', ns.name, 'index', String(podIdx)]);
      ns.ip(['link', 'add', dum, 'type', 'veth', 'peer', 'name', vl]);
      const pick = (l: PodLink & { link?: string | null }) => ({
        ifindex: l.ifindex, ifname: l.ifname, parentdev: l.parentdev, link_index: l.link_index, link_netnsid: l.link_netnsid, kind: l.linkinfo?.info_kind,
      });
      const ipPod = (JSON.parse(ns.ip(['-d', '-j', 'link', 'show'])) as PodLink[]).map(pick);
      const got = await linkList(`/run/netns/${ns.name}`);
      expect(got.map(pick)).toEqual(ipPod);
      const pv = got.find((l) => l.ifname === inPod)!;
      expect(pv).toMatchObject({ ifindex: podIdx, link_index: hostIdx, linkinfo: { info_kind: 'veth' } });
      expect(pv.link_netnsid).toBeTypeOf('number');
      expect(got.find((l) => l.ifname === vl)).toMatchObject({ linkinfo: { info_kind: 'veth' } });
      expect(got.find((l) => l.ifname === vl)!.link_index).toBeUndefined();
      // The host-side peer, by index in this process's namespace.
      const [ipHost] = (JSON.parse(execFileSync('ip', ['-d', '-j', 'link', 'show', 'dev', host], { encoding: 'utf8' })) as PodLink[]).map(pick);
      const peer = await linkByIndex(null, hostIdx);
      expect(pick(peer!)).toEqual(ipHost);
      expect(peer).toMatchObject({ ifname: host, link_index: podIdx, linkinfo: { info_kind: 'veth' } });
      expect(await linkByIndex(`/run/netns/${ns.name}`, podIdx)).toEqual(pv);
      expect(await linkByIndex(`/run/netns/${ns.name}`, 4242)).toBeNull();
      // The same through iproute2 (no addon).
      vi.resetModules();
      process.env.VFPLANE_NETOPS = 'iproute2';
      try {
        const viaIp = await import('../../src/net/netops.js');
        expect(await viaIp.linkList(`/run/netns/${ns.name}`)).toEqual(got);
        expect(await viaIp.linkByIndex(null, hostIdx)).toEqual(peer);
        expect(await viaIp.linkByIndex(`/run/netns/${ns.name}`, 4242)).toBeNull();
      } finally {
        delete process.env.VFPLANE_NETOPS;
        vi.resetModules();
      }
    } finally {
      ns.destroy();
      try { execFileSync('ip', ['link', 'del', host], { stdio: 'ignore' }); } catch { /* went with the namespace */ }
    }
  });

  it('joins and leaves a multicast group on a link in a namespace; a unicast MAC is refused', async () => {
    await netRun(null, [{ op: 'set', name: c, netns: path() }]);
    const groups = () => pod.ip(['maddr', 'show', 'dev', c]);
    await netRun(path(), [{ op: 'maddr', name: c, mac: '33:33:ff:00:00:07', join: true }]);
    expect(groups()).toContain('link  33:33:ff:00:00:07');
    await netRun(path(), [{ op: 'maddr', name: c, mac: '33:33:ff:00:00:07', join: false }]);
    expect(groups()).not.toContain('33:33:ff:00:00:07');
    await netRun(path(), [{ op: 'maddr', name: c, mac: '33:33:ff:00:00:07', join: false }]); // leaving twice is fine
    await expect(netRun(path(), [{ op: 'maddr', name: c, mac: '02:00:00:00:00:07', join: true }])).rejects.toThrow(/joining multicast 02:00:00:00:00:07 on .*Invalid argument/);
    await netRun(path(), [{ op: 'set', name: c, netns: hostNetnsPath() }]);
  });

  // ethtool is the peer: what it reads after each change is what the kernel holds.
  it('switches receive aggregation (GRO…) on and off in a namespace as ethtool -K does, natively and through ethtool', async () => {
    await netRun(null, [{ op: 'set', name: c, netns: path() }]);
    const gro = () => /^generic-receive-offload: (on|off)/m.exec(pod.exec('ethtool', ['-k', c]))![1];
    const gl = () => /^rx-gro-list: (on|off)/m.exec(pod.exec('ethtool', ['-k', c]))![1];
    try {
      expect(gro()).toBe('off'); // a veth's default
      // veth: LRO and hardware GRO are fixed off; GRO, GRO list and UDP forwarding change.
      const r0 = await rxAggregation(path(), c);
      expect(r0.agg & RX_AGG['rx-gro']).toBe(0);
      expect(r0.fixed).toBe(RX_AGG['rx-lro'] | RX_AGG['rx-gro-hw']);
      expect((await rxAggregation(path(), c, { set: RX_AGG['rx-gro'] | RX_AGG['rx-gro-list'] })).agg & RX_AGG['rx-gro']).toBe(0);
      expect([gro(), gl()]).toEqual(['on', 'on']);
      // What was on before a clear comes back, to be given back later.
      const before = await rxAggregation(path(), c, { clear: 0x1f });
      expect(before.agg & (RX_AGG['rx-gro'] | RX_AGG['rx-gro-list'])).toBe(RX_AGG['rx-gro'] | RX_AGG['rx-gro-list']);
      expect([gro(), gl()]).toEqual(['off', 'off']);
      await expect(rxAggregation(path(), 'vfpnosuch0', { clear: 1 })).rejects.toThrow(/changing the receive aggregation \(GRO, LRO\) of vfpnosuch0 in .*: No such device/);
      // The fallback without the addon's netlink path: ethtool in the namespace.
      vi.resetModules();
      process.env.VFPLANE_NETOPS = 'iproute2';
      try {
        const viaEthtool = await import('../../src/net/netops.js');
        await viaEthtool.rxAggregation(path(), c, { set: RX_AGG['rx-gro'] });
        expect(gro()).toBe('on');
        const r = await viaEthtool.rxAggregation(path(), c, { clear: 0x1f });
        expect(r).toEqual({ agg: RX_AGG['rx-gro'], fixed: RX_AGG['rx-lro'] | RX_AGG['rx-gro-hw'] });
        expect(gro()).toBe('off');
      } finally {
        delete process.env.VFPLANE_NETOPS;
        vi.resetModules();
      }
    } finally {
      await netRun(path(), [{ op: 'set', name: c, netns: hostNetnsPath() }]);
    }
  });
});


// Frames an AF_XDP port loses before the workers see them are counted where `stats`, the
// metrics and the demo look (the backend's drops, by reason): the kernel's rx_ring_full
// (the worker did not keep up) and rx_fill_empty (no fill-ring frame) counts, read from
// the socket. A port no worker polls yet takes frames until its rings are spent, and the
// count of the rest agrees with the netdev's own; once a worker polls it, every frame
// sent is either received or counted lost, none unaccounted.
import { readdirSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataPlane } from '../../src/dataplane/dp.js';
import { resolveTunnel } from '../../src/packet/config.js';
import { parseIp, parseMac } from '../../src/util/addr.js';
import { udp4 } from '../helpers/frames.js';
import { spin } from '../helpers/underlay.js';
import { ifname, inject, Netns, vethPair } from '../helpers/netns.js';
import { backendBuilt } from '../helpers/features.js';
import { describePrivileged } from '../helpers/privileged.js';

describePrivileged('AF_XDP: frames the kernel drops on the way in', { netns: true }, () => {
  let n: Netns, m: Netns;
  const a = ifname('xa'), b = ifname('xb');

  beforeAll(() => {
    if (!backendBuilt('afxdp')) throw new Error('the afxdp backend is not built: apt-get install libxdp-dev libbpf-dev, then npm run build:native');
    n = Netns.create('xdn');
    m = Netns.create('xdm');
    vethPair(n, a, m, b);
    for (const [ns, l] of [[n, a], [m, b]] as const) {
      ns.sysctl(`net.ipv6.conf.${l}.disable_ipv6`, '1');
      ns.ip(['link', 'set', l, 'up']);
    }
  });
  afterAll(() => {
    n?.destroy();
    m?.destroy();
  });

  it('frames a port could not take are counted as the netdev counts them, and every frame is received or counted', async () => {
    const dp = new DataPlane({ workers: 1 });
    try {
      const up = dp.openPort('afxdp', { ifname: a, netns: `/run/netns/${n.name}`, queues: 1, mode: 'native', copy: 'copy', ringSize: 64, frames: 256 }, 'uplink');
      const sent = 600;
      const dstMac = n.mac(a), srcMac = m.mac(b);
      const frames = Array.from({ length: sent }, (_, i) => udp4({ dstMac, srcMac, src: '10.77.0.2', dst: '10.77.0.1', sport: 7000, dport: 20000 + i, payload: new Uint8Array(18) }));
      // No worker polls the port before the commit: 64 frames fill its rx ring.
      inject(m, b, frames.slice(0, 300));
      const lost = (): number => {
        const d = dp.backendCounters(up.slot)?.drops ?? {};
        return (d.rx_ring_full ?? 0) + (d.rx_fill_empty ?? 0);
      };
      // Which runs out first, the rx ring or the fill ring's frames, is the kernel's
      // business (both 64 here): the sum is what was lost, as the netdev's own count has it.
      expect(lost()).toBe(300 - 64);
      const kernelDropped = Number(/RX:.*\n\s*\d+\s+\d+\s+\d+\s+(\d+)/.exec(n.exec('ip', ['-s', 'link', 'show', a]))?.[1]);
      expect(kernelDropped).toBe(300 - 64);
      dp.commit({
        uplink: up.slot, uplinkMac: parseMac(n.mac(a))!, tunnel: resolveTunnel({ local: '192.0.2.1', remote: '192.0.2.2' }),
        peers: [{ vtep: parseIp('192.0.2.2')!.bytes, mac: parseMac('02:bb:00:00:00:02')! }],
        atts: [], fdb: [], floods: [], extraVnis: [], learn: false, antiSpoof: true, icmpTooBig: false, verifyUdpCsum: false,
      });
      inject(m, b, frames.slice(300));
      const received = () => Number(dp.counters().ports.get(up.slot)?.rxPkts ?? 0n);
      for (let i = 0; i < 100 && received() + lost() < sent; i++) await new Promise((r) => setTimeout(r, 20));
      expect(received() + lost()).toBe(sent);
      expect(received()).toBeGreaterThanOrEqual(64);
    } finally {
      dp.stop();
    }
  });

  // Each pod's detach closed its representor's AF_XDP port through libxdp 1.3.1's
  // xdp_program__detach, which leaks the program's fd (and the kernel program and maps
  // it pins): after ~20k pods the daemon was out of descriptors (helper-68).
  it('opening and closing a port, again and again, leaves no BPF program or map open', () => {
    const bpfFds = () => readdirSync('/proc/self/fd').filter((f) => {
      try {
        return /^anon_inode:bpf-(prog|map)$/.test(readlinkSync(`/proc/self/fd/${f}`));
      } catch {
        return false;
      }
    }).length;
    const dp = new DataPlane({ workers: 1 });
    try {
      const sink = dp.openPort('memory-sink', {}, 'uplink');
      const spec = {
        uplink: sink.slot, uplinkMac: parseMac(n.mac(a))!, tunnel: resolveTunnel({ local: '192.0.2.1', remote: '192.0.2.2' }),
        peers: [], atts: [], fdb: [], floods: [], extraVnis: [], learn: false, antiSpoof: true, icmpTooBig: false, verifyUdpCsum: false,
      };
      dp.commit(spec);
      const open = () => dp.openPort('afxdp', { ifname: a, netns: `/run/netns/${n.name}`, queues: 1, mode: 'skb', copy: 'copy', ringSize: 64, frames: 256 }, 'rep');
      const cycle = () => {
        // The last one's socket is closed off the worker (a grace period later): the queue
        // is busy until then.
        let p: ReturnType<typeof open> | undefined;
        for (const until = Date.now() + 3000; !p; ) {
          try {
            p = open();
          } catch (e) {
            if (!/Device or resource busy/.test((e as Error).message) || Date.now() > until) throw e;
            spin(20);
          }
        }
        dp.removePort(p.slot);
        dp.commit(spec); // closes it
      };
      cycle(); // whatever a first open keeps for good (libbpf's feature probes)
      const before = bpfFds();
      for (let i = 0; i < 20; i++) cycle();
      expect(bpfFds()).toBe(before);
    } finally {
      dp.stop();
    }
  });

  // A frame larger than a UMEM frame (a jumbo underlay) was counted as rx_fill_empty,
  // the kernel's rx_dropped read as fill-ring misses (helper-69): rx_oversize now, and the
  // port says the largest frame it carries (the data plane takes its underlay MTU from it).
  it('counts frames larger than a UMEM frame as rx_oversize, not as fill-ring misses, and reports the largest it carries', async () => {
    const c = ifname('xc'), d = ifname('xd');
    vethPair(n, c, m, d);
    for (const [ns, l] of [[n, c], [m, d]] as const) {
      ns.sysctl(`net.ipv6.conf.${l}.disable_ipv6`, '1');
      ns.ip(['link', 'set', l, 'mtu', '9000', 'up']);
    }
    const dp = new DataPlane({ workers: 1 });
    try {
      const port = dp.openPort('afxdp', { ifname: c, netns: `/run/netns/${n.name}`, queues: 1, mode: 'skb', copy: 'copy', ringSize: 64, frames: 256 }, 'uplink');
      expect(port.maxFrame).toBe(4096 - (port.headroom ?? 0));
      const big = (len: number, i: number) => udp4({ dstMac: n.mac(c), srcMac: m.mac(d), src: '10.77.0.2', dst: '10.77.0.1', sport: 7000, dport: 21000 + i, payload: new Uint8Array(len - 42) });
      inject(m, d, [big(port.maxFrame! + 1, 0), big(6000, 1), big(8000, 2), big(port.maxFrame!, 3)]);
      let drops: Record<string, number> = {};
      for (let i = 0; i < 50 && !(drops.rx_oversize === 3); i++) {
        await new Promise((r) => setTimeout(r, 20));
        drops = dp.backendCounters(port.slot)?.drops ?? {};
      }
      expect(drops).toMatchObject({ rx_oversize: 3, rx_fill_empty: 0, rx_ring_full: 0 });
    } finally {
      dp.stop();
    }
  });
});

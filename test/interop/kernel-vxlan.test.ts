// Interop with the Linux kernel's vxlan driver, a real peer. Two namespaces joined by a
// veth: B runs a kernel vxlan device; A is where our engine's frames are injected and
// captured. Our encapsulation must come out of B's vxlan device as the original inner
// frames, and the kernel's encapsulation must decap back to what was sent into it.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { vfplane } from '../helpers/cli.js';
import { arpRequest, hex, icmpEcho, readPcapFrames, udp4, udp6, writePcap } from '../helpers/frames.js';
import { capture, cleanupAll, inject, Netns, sweepStale, vethPair } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';

const A_MAC = '02:aa:00:00:00:01'; // the inner host behind "our" VTEP
const B_MAC = '02:bb:00:00:00:02'; // the kernel's vx0
const VNI = 42;

interface Underlay {
  name: string;
  a: string;
  b: string;
  prefix: number;
  /** Outer overhead, to keep inner frames within the veth MTU of 1500. */
  overhead: number;
}
const V4: Underlay = { name: 'IPv4', a: '192.0.2.1', b: '192.0.2.2', prefix: 24, overhead: 50 };
const V6: Underlay = { name: 'IPv6', a: '2001:db8:1::1', b: '2001:db8:1::2', prefix: 64, overhead: 70 };

function innerFrames(u: Underlay): Uint8Array[] {
  const max = 1500 - (u.overhead - 14);
  const v6a = Uint8Array.from(Buffer.from('fd000000000000000000000000000001', 'hex'));
  const v6b = Uint8Array.from(Buffer.from('fd000000000000000000000000000002', 'hex'));
  return [
    icmpEcho({ dstMac: B_MAC, srcMac: A_MAC, src: '10.99.0.1', dst: '10.99.0.2', id: 0x77, seq: 1 }),
    udp4({ dstMac: B_MAC, srcMac: A_MAC, src: '10.99.0.1', dst: '10.99.0.2', sport: 40000, dport: 9, payload: new Uint8Array(18) }),
    udp4({ dstMac: B_MAC, srcMac: A_MAC, src: '10.99.0.1', dst: '10.99.0.2', sport: 40001, dport: 9, payload: new Uint8Array(max - 42).fill(0xa5), tos: 0x28, df: true }),
    arpRequest({ srcMac: A_MAC, srcIp: '10.99.0.1', targetIp: '10.99.0.2' }),
    udp6({ dstMac: B_MAC, srcMac: A_MAC, src: v6a, dst: v6b, sport: 5000, dport: 6000, payload: new Uint8Array(100).fill(3) }),
  ];
}

interface Topo {
  a: Netns;
  b: Netns;
  aMac: string;
  bMac: string;
}

function topology(u: Underlay, dstPort: number | null): Topo {
  const a = Netns.create('a');
  const b = Netns.create('b');
  vethPair(a, 'ul0', b, 'ul0');
  for (const [ns, addr] of [[a, u.a], [b, u.b]] as const) {
    ns.ip(['addr', 'add', `${addr}/${u.prefix}`, 'dev', 'ul0', ...(u === V6 ? ['nodad'] : [])]);
    ns.ip(['link', 'set', 'ul0', 'up']);
    // veth offloads TX checksums: it hands the peer a packet whose UDP checksum holds only
    // the pseudo-header sum, which the receiving kernel trusts but a capture does not. A
    // wire carries the full checksum, so make the veth compute it.
    ns.exec('ethtool', ['-K', 'ul0', 'tx', 'off']);
  }
  // The kernel peer. Without `dstport` the kernel uses 8472, as flannel does.
  b.ip(['link', 'add', 'vx0', 'address', B_MAC, 'type', 'vxlan', 'id', String(VNI),
    ...(dstPort === null ? [] : ['dstport', String(dstPort)]), 'local', u.b, 'remote', u.a, 'dev', 'ul0']);
  b.sysctl('net.ipv6.conf.vx0.disable_ipv6', '1'); // no router solicitations in the captures
  b.ip(['addr', 'add', '10.99.0.2/24', 'dev', 'vx0']);
  b.ip(['link', 'set', 'vx0', 'up']);
  b.ip(['neigh', 'replace', '10.99.0.1', 'lladdr', A_MAC, 'dev', 'vx0', 'nud', 'permanent']);
  // Resolve the underlay neighbours up front so the first data frames are not held back.
  b.ip(['neigh', 'replace', u.a, 'lladdr', a.mac('ul0'), 'dev', 'ul0', 'nud', 'permanent']);
  return { a, b, aMac: a.mac('ul0'), bMac: b.mac('ul0') };
}

let dir: string;
beforeAll(() => {
  sweepStale();
  dir = mkdtempSync(join(tmpdir(), 'vfplane-kvx-'));
});
afterAll(() => {
  cleanupAll();
  rmSync(dir, { recursive: true, force: true });
});

const cases: { u: Underlay; engine: 'native' | 'ts'; port: number | null }[] = [
  { u: V4, engine: 'native', port: 4789 },
  { u: V6, engine: 'native', port: 4789 },
  { u: V4, engine: 'ts', port: 4789 },
  { u: V6, engine: 'ts', port: 4789 },
  { u: V4, engine: 'native', port: null },
];

describePrivileged('kernel vxlan device as a peer', { netns: true, commands: ['/usr/bin/python3', 'ethtool'] }, () => {
  for (const { u, engine, port } of cases) {
    const label = `${u.name} underlay, ${engine} engine, UDP ${port ?? '8472 (kernel default)'}`;
    const wirePort = port ?? 8472;

    it(`our encap comes out of the kernel vxlan device as the original frames, and ping is answered — ${label}`, async () => {
      const t = topology(u, port);
      try {
        const frames = innerFrames(u);
        const tag = `${u.name}-${engine}-${wirePort}`;
        writePcap(join(dir, `in-${tag}.pcap`), frames);
        const r = vfplane(['pcap', 'encap', '--in', join(dir, `in-${tag}.pcap`), '--out', join(dir, `enc-${tag}.pcap`),
          '--vni', String(VNI), '--local', u.a, '--remote', u.b, '--src-mac', t.aMac, '--dst-mac', t.bMac,
          '--dst-port', String(wirePort), '--engine', engine, '--json']);
        expect(r.code, r.stderr).toBe(0);
        const encapped = readPcapFrames(readFileSync(join(dir, `enc-${tag}.pcap`)));
        expect(encapped).toHaveLength(frames.length);

        const atKernel = capture(t.b, 'vx0', { count: frames.length, timeoutS: 5, incoming: true });
        // The kernel answers: the echo reply, an ARP reply, and port-unreachables for the UDP.
        const replies = capture(t.a, 'ul0', { count: 4, timeoutS: 4, incoming: true, udpDport: wirePort });
        await Promise.all([atKernel.ready, replies.ready]);
        inject(t.a, 'ul0', encapped);
        const got = await atKernel.done;
        expect(got.map(hex)).toEqual(frames.map(hex));

        // The kernel answered the echo request through its vxlan device: decap its reply.
        const back = await replies.done;
        expect(back.length).toBeGreaterThanOrEqual(1);
        writePcap(join(dir, `reply-${tag}.pcap`), back);
        const d = vfplane(['pcap', 'decap', '--in', join(dir, `reply-${tag}.pcap`), '--out', join(dir, `replyd-${tag}.pcap`),
          '--vni', String(VNI), '--dst-port', String(wirePort), '--local', u.a, '--verify-udp-csum', '--engine', engine, '--json']);
        expect(d.code, d.stderr).toBe(0);
        expect(JSON.parse(d.stdout), d.stdout).toMatchObject({ dropped: 0 });
        const decapped = readPcapFrames(readFileSync(join(dir, `replyd-${tag}.pcap`)));
        // Echo reply (type 0) from 10.99.0.2 to 10.99.0.1 with our id and sequence.
        const isEchoReply = (f: Uint8Array) => f.length >= 42 && f[12] === 0x08 && f[13] === 0x00 && f[23] === 1 && f[34] === 0;
        const reply = decapped.find(isEchoReply);
        expect(reply, `decapped ${decapped.map(hex).join(' ')}`).toBeDefined();
        expect(hex(reply!.subarray(0, 12))).toBe(A_MAC.replaceAll(':', '') + B_MAC.replaceAll(':', ''));
        expect(hex(reply!.subarray(26, 34))).toBe('0a6300020a630001');
        expect(hex(reply!.subarray(38, 42))).toBe('00770001');
      } finally {
        t.a.destroy();
        t.b.destroy();
      }
    });

    it(`frames the kernel encapsulates decap back to the originals — ${label}`, async () => {
      const t = topology(u, port);
      try {
        const frames = innerFrames(u);
        const tag = `k-${u.name}-${engine}-${wirePort}`;
        const cap = capture(t.a, 'ul0', { count: frames.length, timeoutS: 5, incoming: true, udpDport: wirePort });
        await cap.ready;
        inject(t.b, 'vx0', frames);
        const outer = await cap.done;
        expect(outer).toHaveLength(frames.length);
        writePcap(join(dir, `${tag}.pcap`), outer);
        const d = vfplane(['pcap', 'decap', '--in', join(dir, `${tag}.pcap`), '--out', join(dir, `${tag}-d.pcap`),
          '--vni', String(VNI), '--dst-port', String(wirePort), '--local', u.a, '--verify-udp-csum', '--engine', engine, '--json']);
        expect(d.code, d.stderr).toBe(0);
        expect(JSON.parse(d.stdout), d.stdout).toMatchObject({ dropped: 0 });
        const inner = readPcapFrames(readFileSync(join(dir, `${tag}-d.pcap`)));
        expect(inner.map(hex)).toEqual(frames.map(hex));
      } finally {
        t.a.destroy();
        t.b.destroy();
      }
    });
  }
});

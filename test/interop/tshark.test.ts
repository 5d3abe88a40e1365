// Wireshark's dissector, an independent peer, reads our encapsulation: VXLAN with the
// right VNI and I flag, outer checksums that tshark itself validates, and the inner frame
// found by tshark where it should be, byte for byte.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { vfplane } from '../helpers/cli.js';
import { arpRequest, hex, icmpEcho, udp4, udp6, writePcap } from '../helpers/frames.js';
import { describePrivileged } from '../helpers/privileged.js';

const v6 = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const frames = [
  icmpEcho({ dstMac: '02:bb:00:00:00:02', srcMac: '02:aa:00:00:00:01', src: '10.0.0.1', dst: '10.0.0.2', id: 1, seq: 9, tos: 0xb8, df: true }),
  udp4({ dstMac: '02:bb:00:00:00:02', srcMac: '02:aa:00:00:00:01', src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 9, payload: new Uint8Array(1000).fill(0x5a), vlan: 300 }),
  arpRequest({ srcMac: '02:aa:00:00:00:01', srcIp: '10.0.0.1', targetIp: '10.0.0.2' }),
  udp6({ dstMac: '02:bb:00:00:00:02', srcMac: '02:aa:00:00:00:01', src: v6('fd00000000000000000000000000000a'), dst: v6('fd00000000000000000000000000000b'), sport: 7, dport: 8, payload: new Uint8Array(33).fill(1), tc: 0x62 }),
  icmpEcho({ dstMac: '02:bb:00:00:00:02', srcMac: '02:aa:00:00:00:01', src: '10.0.0.1', dst: '10.0.0.2', id: 1, seq: 10, tos: 0x03, df: true }),
];
// The ECN field (RFC 3168) each frame carries: what a fixed outer TOS takes (RFC 6040).
const innerEcn = [0, 0, 0, 2, 3];

const configs = [
  { name: 'IPv4, UDP checksum on', vni: 4242, port: 4789, args: ['--local', '192.0.2.1', '--remote', '192.0.2.2', '--udp-csum'] },
  { name: 'IPv6 (checksum always)', vni: 16777215, port: 4789, args: ['--local', '2001:db8::1', '--remote', '2001:db8::2', '--tos', 'inherit'] },
  { name: 'IPv4 port 8472, outer VLAN, DF inherit', vni: 0, port: 8472, args: ['--local', '198.51.100.7', '--remote', '203.0.113.9', '--dst-port', '8472', '--vlan', '100', '--df', 'inherit', '--tos', 'inherit'] },
  { name: 'IPv4, fixed TOS: its DSCP, the inner ECN field', vni: 7, port: 4789, dscp: 10, args: ['--local', '192.0.2.1', '--remote', '192.0.2.2', '--tos', String((10 << 2) | 1)] },
  { name: 'IPv6, fixed traffic class: its DSCP, the inner ECN field', vni: 8, port: 4789, dscp: 46, args: ['--local', '2001:db8::1', '--remote', '2001:db8::2', '--tos', String(46 << 2)] },
];

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vfplane-tshark-'));
  writePcap(join(dir, 'in.pcap'), frames);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Layers = Record<string, any>;
const arr = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

function dissect(file: string): Layers[] {
  const out = execFileSync('tshark', ['-r', file, '-T', 'json', '-x', '--no-duplicate-keys',
    '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-d', 'udp.port==8472,vxlan'],
  { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
  return (JSON.parse(out) as { _source: { layers: Layers } }[]).map((p) => p._source.layers);
}

describePrivileged('tshark decodes our encapsulation', { commands: ['tshark'] }, () => {
  for (const engine of ['native', 'ts'] as const) {
    for (const c of configs) {
      it(`${c.name} — ${engine} engine`, () => {
        const out = join(dir, `out-${engine}-${c.vni}.pcap`);
        const r = vfplane(['pcap', 'encap', '--in', join(dir, 'in.pcap'), '--out', out, '--vni', String(c.vni), ...c.args, '--engine', engine]);
        expect(r.code, r.stderr).toBe(0);
        const pkts = dissect(out);
        expect(pkts).toHaveLength(frames.length);
        pkts.forEach((l, i) => {
          // tshark's expert info at error level (malformed, bad checksum) must be absent.
          expect(l['_ws.malformed'], `packet ${i}: ${JSON.stringify(l['_ws.malformed'])}`).toBeUndefined();
          expect(Number(l.vxlan['vxlan.vni'])).toBe(c.vni);
          expect(l.vxlan['vxlan.flags_tree']['vxlan.flag_i']).toBe('1');
          expect(Number(arr(l.udp)[0]['udp.dstport'])).toBe(c.port);
          // tshark's own checksum verdicts on the outer headers: 1 = good.
          if (!c.args.includes('2001:db8::1')) expect(arr(l.ip)[0]['ip.checksum.status']).toBe('1');
          if (c.args.includes('--udp-csum') || c.args.includes('2001:db8::1')) {
            expect(arr(l.udp)[0]['udp.checksum.status']).toBe('1');
          } else {
            expect(arr(l.udp)[0]['udp.checksum']).toBe('0x0000');
          }
          if (c.args.includes('--vlan')) expect(arr(l.vlan)[0]['vlan.id']).toBe('100');
          if ('dscp' in c) {
            // tshark's reading of the outer DS field: the configured DSCP, the inner ECN.
            const ds = c.args.includes('2001:db8::1') ? arr(l.ipv6)[0]['ipv6.tclass_tree'] : arr(l.ip)[0]['ip.dsfield_tree'];
            const pre = c.args.includes('2001:db8::1') ? 'ipv6.tclass' : 'ip.dsfield';
            expect([Number(ds[`${pre}.dscp`]), Number(ds[`${pre}.ecn`])], `packet ${i}`).toEqual([c.dscp, innerEcn[i]]);
          }
          // Where tshark finds the inner Ethernet header, our original frame follows, intact.
          const raw = l.frame_raw[0] as string;
          const innerEth = arr<[string, number, number]>(l.eth_raw).at(-1)!;
          expect(innerEth[1]).toBeGreaterThanOrEqual(50);
          expect(raw.slice(innerEth[1] * 2)).toBe(hex(frames[i]!));
        });
      });
    }
  }
});

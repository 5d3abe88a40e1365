// Known-answer vectors from scapy: our encapsulation must be byte-identical to the
// frames scapy builds (scapy computes the IP and UDP checksums, the Python side computes
// the source port from its own CRC-32C and flow key), and scapy-built malformed frames
// must be dropped by decap with the reason the contract names.
import { beforeAll, expect, it } from 'vitest';
import { burstFromFrames, packetBytes } from '../../src/packet/burst.js';
import { resolveDecap, resolveTunnel, type DecapSpec, type TunnelSpec } from '../../src/packet/config.js';
import { flowKey } from '../../src/packet/flow.js';
import { tsEngine } from '../../src/packet/model.js';
import { reasonName } from '../../src/packet/reasons.js';
import { describeScapy, hex, runScapy, unhex } from '../helpers/scapy.js';

interface EncapCase {
  name: string;
  spec: TunnelSpec;
  vni: number;
  nextId: number;
  frames: { inner: string; outer: string; key: string; sport: number; innerName: string }[];
}

interface DecapCase {
  name: string;
  opts: DecapSpec;
  frame: string;
  reason: string;
  inner?: string;
  vni?: number;
  vtep?: string;
}

describeScapy('encap matches scapy byte for byte', () => {
  let cases: EncapCase[] = [];
  beforeAll(() => {
    cases = runScapy<EncapCase[]>('encap_vectors.py');
  });

  it('has a meaningful set of vectors', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  it('flow keys equal the keys read off scapy dissections', () => {
    for (const c of cases) {
      for (const f of c.frames) expect(hex(flowKey(unhex(f.inner))), `${c.name} / ${f.innerName}`).toBe(f.key);
    }
  });

  it('every vector encapsulates to the scapy bytes', () => {
    for (const c of cases) {
      const h = tsEngine.createTunnel(resolveTunnel(c.spec));
      const b = burstFromFrames(c.frames.map((f) => unhex(f.inner)));
      const ok = tsEngine.encap(h, c.vni, b);
      expect(ok, c.name).toBe(c.frames.length);
      c.frames.forEach((f, i) => {
        expect(hex(packetBytes(b, i)), `${c.name} / ${f.innerName}`).toBe(f.outer);
      });
      expect(h.nextId, c.name).toBe(c.nextId);
    }
  });

  it('decap of each scapy frame gives back the inner frame, VNI and VTEP', () => {
    for (const c of cases) {
      const t = resolveTunnel(c.spec);
      const d = tsEngine.createDecap(resolveDecap({ dstPort: t.dstPort, verifyUdpCsum: true }));
      const b = burstFromFrames(c.frames.map((f) => unhex(f.outer)));
      expect(tsEngine.decap(d, b), c.name).toBe(c.frames.length);
      c.frames.forEach((f, i) => {
        expect(hex(packetBytes(b, i)), c.name).toBe(f.inner);
        expect(b.vni[i]).toBe(c.vni);
        expect(b.vtepFamily[i]).toBe(t.family);
        expect(hex(b.vtep.subarray(i * 16, i * 16 + t.local.length))).toBe(hex(t.local));
      });
    }
  });
});

describeScapy('decap of scapy-built frames', () => {
  let cases: DecapCase[] = [];
  beforeAll(() => {
    cases = runScapy<DecapCase[]>('decap_vectors.py');
  });

  it('covers every decap reason', () => {
    const seen = new Set(cases.map((c) => c.reason));
    for (const r of ['ok', 'eth_truncated', 'not_ip', 'ip_truncated', 'ip_bad_version', 'ip_bad_ihl', 'ip_bad_checksum',
      'ip_bad_length', 'ip_fragment', 'not_local', 'not_udp', 'udp_bad_length', 'not_vxlan_port', 'udp_bad_checksum',
      'udp_zero_checksum', 'vxlan_truncated', 'vxlan_bad_flags', 'vni_unknown', 'inner_truncated', 'inner_vlan']) {
      expect(seen, r).toContain(r);
    }
  });

  it('each frame gets the expected reason, and good ones the right inner frame', () => {
    for (const c of cases) {
      const d = tsEngine.createDecap(resolveDecap(c.opts));
      const frame = unhex(c.frame);
      const b = burstFromFrames([frame]);
      const ok = tsEngine.decap(d, b);
      expect(reasonName(b.reason[0]!), c.name).toBe(c.reason);
      expect(ok, c.name).toBe(c.reason === 'ok' ? 1 : 0);
      if (c.reason === 'ok') {
        expect(hex(packetBytes(b, 0)), c.name).toBe(c.inner);
        expect(b.vni[0], c.name).toBe(c.vni);
        const fam = b.vtepFamily[0]!;
        expect(hex(b.vtep.subarray(0, fam === 4 ? 4 : 16)), c.name).toBe(c.vtep);
      } else {
        expect(hex(packetBytes(b, 0)), `${c.name}: dropped bytes untouched`).toBe(c.frame);
      }
    }
  });
});

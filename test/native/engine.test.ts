// The native engine through its TypeScript façade: the VxlanEngine interface with the
// resolved configs of src/packet/config.ts, learning on decap, named stats, and the
// benchmark wrappers' bookkeeping (not their speed).
import { describe, expect, it } from 'vitest';
import { burstFromFrames, cloneBurst, packetBytes } from '../../src/packet/burst.js';
import { outerHeaderLength, resolveDecap, resolveTunnel } from '../../src/packet/config.js';
import { NativeFdb, benchDecap, benchEncap, benchFdb, nativeEngine } from '../../src/dataplane/native.js';
import { benchFrames } from '../../src/bench/frames.js';
import { Reason, REASONS } from '../../src/packet/reasons.js';
import { STATS_HEAD, toHex } from './helpers.js';

describe('nativeEngine()', () => {
  const eng = nativeEngine();

  it('is named native and round-trips an IMIX burst through encap and decap', () => {
    const tun = resolveTunnel({ local: '192.0.2.10', remote: '192.0.2.20', vlan: 12, udpCsum: true });
    const frames = benchFrames([64, 576, 1500, 9000, 14], 5);
    const b = burstFromFrames(frames);
    const orig = cloneBurst(b);
    const t = eng.createTunnel(tun);
    expect(eng.name).toBe('native');
    expect(t.tunnel).toBe(tun);
    expect(eng.encap(t, 5000, b)).toBe(frames.length);
    for (let i = 0; i < frames.length; i++) {
      expect(b.off[i]).toBe(orig.off[i]! - outerHeaderLength(tun));
      expect(b.room[i]).toBe(orig.room[i]! - outerHeaderLength(tun));
    }
    const fdb = new NativeFdb(64);
    const d = eng.createDecap(resolveDecap({ vnis: [5000], locals: ['192.0.2.20'], verifyUdpCsum: true }), { fdb, now: 77 });
    expect(eng.decap(d, b)).toBe(frames.length);
    frames.forEach((f, i) => {
      expect(toHex(packetBytes(b, i))).toBe(toHex(f));
      expect(b.vni[i]).toBe(5000);
      expect(b.vtepFamily[i]).toBe(4);
      expect([...b.vtep.slice(16 * i, 16 * i + 4)]).toEqual([192, 0, 2, 10]);
    });
    expect(fdb.count()).toBe(5);
    expect(fdb.get(5000, '02:00:00:00:00:03')).toEqual({ vni: 5000, mac: '02:00:00:00:00:03', type: 'learned', stamp: 77, vtep: '192.0.2.10' });
    d.setNow(90);
    expect(eng.stats(d).learnNew).toBe(5n);
    expect(eng.stats(t)).toMatchObject({ encapPkts: BigInt(frames.length) });
    expect(t.nextIpId).toBe(frames.length);
  });

  it('maps tos inherit, df and an absent VLAN from the resolved tunnel', () => {
    const tun = resolveTunnel({ local: '10.0.0.1', remote: '10.0.0.2', tos: 'inherit', df: 'set' });
    const b = burstFromFrames(benchFrames([100], 1));
    const t = eng.createTunnel(tun);
    eng.encap(t, 1, b);
    const o = packetBytes(b, 0);
    expect((o[12]! << 8) | o[13]!).toBe(0x0800);
    expect((o[20]! << 8) | o[21]!).toBe(0x4000);
  });

  it('names every drop reason in stats', () => {
    const tun = resolveTunnel({ local: '10.0.0.1', remote: '10.0.0.2', mtu: 100 });
    const t = eng.createTunnel(tun);
    eng.encap(t, 1, burstFromFrames(benchFrames([80], 1)));
    const s = eng.stats(t);
    expect(s.drops.mtu_exceeded).toBe(1n);
    expect(Object.keys(s.drops)).toHaveLength(REASONS.length); // every reason (ok too, at 0)
    expect(eng.statsView(t)[STATS_HEAD + Reason.mtu_exceeded]).toBe(1n);
  });
});

describe('benchmark wrappers (bookkeeping, not speed)', () => {
  const tun = resolveTunnel({ local: '10.0.0.1', remote: '10.0.0.2' });

  it('benchEncap moves every packet and counts outer bytes', () => {
    const r = benchEncap({ tunnel: tun, vni: 1, frameSizes: [64, 128, 1500], flows: 3, burst: 32, packets: 3000, warmup: 0 });
    expect(r.packets).toBe(3000);
    expect(r.ok).toBe(3000);
    expect(r.bytesIn).toBe(1000 * (64 + 128 + 1500));
    expect(r.bytesOut).toBe(r.bytesIn + 3000 * 50);
    expect(r.mpps).toBeGreaterThan(0);
    expect(r.drops).toEqual({});
  });

  it('benchEncap reports drops by name', () => {
    const r = benchEncap({ tunnel: resolveTunnel({ local: '10.0.0.1', remote: '10.0.0.2', mtu: 1000 }), vni: 1, frameSizes: [64, 1500], packets: 100, warmup: 0, burst: 10 });
    expect(r.ok).toBe(50);
    expect(r.drops).toEqual({ mtu_exceeded: 50 });
    expect(r.bytesOut).toBe(50 * (64 + 50));
  });

  it('benchEncap pins to a CPU when asked', () => {
    const r = benchEncap({ tunnel: tun, vni: 1, packets: 1000, cpu: 0 });
    expect(r.cpu).toBe(0);
  });

  it('benchDecap decapsulates everything and, once warm, only refreshes', () => {
    const r = benchDecap({ tunnel: tun, vni: 9, frameSizes: [64], flows: 100, packets: 5000, warmup: 1000 });
    expect(r.ok).toBe(5000);
    expect(r.bytesOut).toBe(5000 * 64);
    expect(r.bytesIn).toBe(5000 * (64 + 50));
    expect(r.learn).toEqual({ new: 0, refresh: 5000, moved: 0, full: 0 });
  });

  it('benchFdb finds every key it looks up, at the right VTEP', () => {
    const r = benchFdb({ entries: 5000, lookups: 100000, burst: 32, seed: 3 });
    expect(r.hits).toBe(100000);
    expect(r.wrong).toBe(0);
    expect(r.verified).toBeGreaterThan(0);
    expect(r.primaryFraction).toBeGreaterThan(0.5);
    expect(r.memBytes).toBeGreaterThan(5000 * 16);
  });
});

// Bad arguments at the addon boundary and in the TypeScript façade: each throws a
// TypeError or RangeError that names the argument, and nothing reaches the engine.
import { describe, expect, it } from 'vitest';
import { allocBurst } from '../../src/packet/burst.js';
import { resolveDecap, resolveTunnel } from '../../src/packet/config.js';
import { NativeFdb, benchEncap, benchFdb, nativeEngine } from '../../src/dataplane/native.js';
import { addon, burstOf, innerUdp4, tunnel } from './helpers.js';

const goodBurst = () => burstOf([innerUdp4(1)]);

describe('addon boundary', () => {
  const t = addon.tunnelCreate(tunnel());
  const d = addon.decapCreate({ dstPort: 4789, vnis: null, locals: null, verifyUdpCsum: false, dropInnerVlan: false });
  type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any
  const A = addon as Any;

  const cases: [string, () => unknown, ErrorConstructor, RegExp][] = [
    ['encap without a handle', () => A.encap({}, 1, goodBurst()), TypeError, /tunnel must be a tunnel handle/],
    ['encap with a decap handle', () => A.encap(d, 1, goodBurst()), TypeError, /tunnel must be a tunnel handle/],
    ['decap with a tunnel handle', () => A.decap(t, goodBurst()), TypeError, /decap must be a decap handle/],
    ['a string VNI', () => A.encap(t, '1', goodBurst()), TypeError, /vni must be a number/],
    ['a fractional VNI', () => A.encap(t, 1.5, goodBurst()), TypeError, /vni must be an integer/],
    ['a VNI above 24 bits', () => A.encap(t, 1 << 24, goodBurst()), RangeError, /vni 16777216 is outside 0–16777215/],
    ['a negative VNI', () => A.encap(t, -1, goodBurst()), RangeError, /vni -1/],
    ['no burst', () => A.encap(t, 1, undefined), TypeError, /burst must be a Burst/],
    ['burst.buf not bytes', () => A.encap(t, 1, { ...goodBurst(), buf: [1, 2] }), TypeError, /burst\.buf must be a Uint8Array/],
    ['burst.off of the wrong type', () => A.encap(t, 1, { ...goodBurst(), off: new Int32Array(1) }), TypeError, /burst\.off must be a Uint32Array/],
    ['burst.reason missing', () => A.encap(t, 1, { ...goodBurst(), reason: undefined }), TypeError, /burst\.reason/],
    ['burst.count beyond the arrays', () => A.encap(t, 1, { ...goodBurst(), count: 2 }), RangeError, /burst\.count 2 is outside 0–1/],
    ['a packet past the buffer', () => {
      const b = goodBurst();
      b.len[0] = b.buf.length;
      return A.encap(t, 1, b);
    }, RangeError, /burst packet 0: .* do not fit burst\.buf/],
    ['headroom past the buffer start', () => {
      const b = goodBurst();
      b.room[0] = b.off[0]! + 1;
      return A.encap(t, 1, b);
    }, RangeError, /burst packet 0/],
    ['decap burst without vtep', () => A.decap(d, { ...goodBurst(), vtep: undefined }), TypeError, /burst\.vtep must be a Uint8Array/],
    ['decap burst with short vtep', () => A.decap(d, { ...goodBurst(), vtep: new Uint8Array(15) }), RangeError, /burst\.count 1 is outside 0–0/],
    ['tunnelCreate without cfg', () => A.tunnelCreate(), TypeError, /cfg must be a tunnel config/],
    ['tunnelCreate with a bad local', () => A.tunnelCreate({ ...tunnel(), local: Uint8Array.of(1, 2, 3) }), RangeError, /cfg\.local must hold 4 \(IPv4\) or 16/],
    ['tunnelCreate mixing families', () => A.tunnelCreate({ ...tunnel(), remote: new Uint8Array(16) }), RangeError, /cfg\.remote must be the same family/],
    ['tunnelCreate with a 5-byte MAC', () => A.tunnelCreate({ ...tunnel(), srcMac: new Uint8Array(5) }), RangeError, /cfg\.srcMac must hold 6 bytes/],
    ['tunnelCreate with VLAN 4095', () => A.tunnelCreate({ ...tunnel(), vlan: 4095 }), RangeError, /cfg\.vlan 4095/],
    ['tunnelCreate with srcPortMax < srcPortMin', () => A.tunnelCreate({ ...tunnel(), srcPortMin: 100, srcPortMax: 99 }), RangeError, /cfg\.srcPortMax 99 is outside 100–65535/],
    ['tunnelCreate with mtu 67', () => A.tunnelCreate({ ...tunnel(), mtu: 67 }), RangeError, /cfg\.mtu 67 must be 0 or 68–65535/],
    ['tunnelCreate with udpCsum 1', () => A.tunnelCreate({ ...tunnel(), udpCsum: 1 }), TypeError, /cfg\.udpCsum must be a boolean/],
    ['tunnelCreate with ttl 0', () => A.tunnelCreate({ ...tunnel(), ttl: 0 }), RangeError, /cfg\.ttl 0/],
    ['decapCreate with nine locals', () => A.decapCreate({ dstPort: 4789, vnis: null, verifyUdpCsum: false, dropInnerVlan: false, locals: Array.from({ length: 9 }, () => new Uint8Array(4)) }), RangeError, /cfg\.locals holds 9 addresses; at most 8/],
    ['decapCreate with VNIs as an array', () => A.decapCreate({ dstPort: 4789, vnis: [1], locals: null, verifyUdpCsum: false, dropInnerVlan: false }), TypeError, /cfg\.vnis must be a Uint32Array or null/],
    ['decapCreate with a VNI above 24 bits', () => A.decapCreate({ dstPort: 4789, vnis: Uint32Array.of(1 << 24), locals: null, verifyUdpCsum: false, dropInnerVlan: false }), RangeError, /cfg\.vnis\[0\]/],
    ['decapCreate with something else as FDB', () => A.decapCreate({ dstPort: 4789, vnis: null, locals: null, verifyUdpCsum: false, dropInnerVlan: false }, {}), TypeError, /fdb must be an FDB created by fdbCreate/],
    ['decapSetNow with a negative time', () => A.decapSetNow(d, -1), RangeError, /now -1/],
    ['stats of something else', () => A.stats({}), TypeError, /handle must be a tunnel or decap handle/],
    ['fdbCreate(0)', () => A.fdbCreate(0), RangeError, /capacity 0 is outside 1–16777216/],
    ['fdbCreate("big")', () => A.fdbCreate('big'), TypeError, /capacity must be a number/],
    ['fdb.addStatic with a bad MAC', () => A.fdbCreate(4).addStatic(1, new Uint8Array(5), Uint8Array.of(1, 2, 3, 4)), RangeError, /mac must hold 6 bytes/],
    ['fdb.addStatic with a bad VTEP', () => A.fdbCreate(4).addStatic(1, new Uint8Array(6), 'x'), TypeError, /vtep must be a Uint8Array/],
    ['fdb.learn without now', () => A.fdbCreate(4).learn(1, new Uint8Array(6), Uint8Array.of(1, 2, 3, 4)), TypeError, /now must be a number/],
    ['fdb.lookup with short macs', () => A.fdbCreate(4).lookup(new Uint32Array(2), new Uint8Array(6), new Uint16Array(2)), RangeError, /macs must hold 6 bytes per VNI/],
    ['fdb.floodSet with a bad address', () => A.fdbCreate(4).floodSet(1, [Uint8Array.of(1, 2, 3, 4), new Uint8Array(5)]), RangeError, /vteps\[1\] must hold 4/],
    ['fdb.floodSet without an array', () => A.fdbCreate(4).floodSet(1, 'x'), TypeError, /vteps must be an array/],
    ['crc32c of a string', () => A.crc32c('abc'), TypeError, /bytes must be a Uint8Array/],
    ['crcSelect("fast")', () => A.crcSelect('fast'), TypeError, /impl must be 'auto', 'hw' or 'sw'/],
    ['flowHash of 13 bytes', () => A.flowHash(new Uint8Array(13)), RangeError, /frame must hold at least 14 bytes/],
    ['benchEncap with burst 0', () => A.benchEncap(tunnel(), 1, [innerUdp4(1)], { burst: 0, packets: 1, warmup: 0, cpu: -1, headroom: 128 }), RangeError, /opts\.burst 0/],
    ['benchEncap with frames not bytes', () => A.benchEncap(tunnel(), 1, ['x'], { burst: 1, packets: 1, warmup: 0, cpu: -1, headroom: 128 }), TypeError, /frames\[0\] must be a Uint8Array/],
    ['benchFdb without entries', () => A.benchFdb({}), TypeError, /opts\.entries must be a number/],
  ];
  for (const [name, fn, type, msg] of cases) {
    it(name, () => {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(type);
      expect((err as Error).message).toMatch(msg);
    });
  }

  it('reports a full FDB as -ENOSPC (-28), a result rather than an exception', () => {
    const f = addon.fdbCreate(1);
    let rc = 0;
    for (let i = 0; i < 100 && rc === 0; i++) rc = f.addStatic(1, Uint8Array.of(2, 0, 0, 0, 0, i), Uint8Array.of(1, 2, 3, 4));
    expect(rc).toBe(-28);
  });
});

describe('TypeScript façade', () => {
  const eng = nativeEngine();
  const t = eng.createTunnel(resolveTunnel({ local: '10.0.0.1', remote: '10.0.0.2' }));

  it('validates the VNI', () => {
    expect(() => eng.encap(t, 0x1000000, allocBurst(1, 64))).toThrow(/vni 16777216 is outside/);
    expect(() => eng.encap(t, NaN, allocBurst(1, 64))).toThrow(TypeError);
  });

  it('refuses handles from another engine', () => {
    expect(() => eng.encap({ tunnel: t.tunnel }, 1, allocBurst(1, 64))).toThrow(/not created by the native engine/);
    expect(() => eng.decap({ decap: resolveDecap() }, allocBurst(1, 64))).toThrow(/not created by the native engine/);
    expect(() => eng.stats({ tunnel: t.tunnel })).toThrow(/not created by the native engine/);
  });

  it('validates FDB arguments, naming them', () => {
    const f = new NativeFdb(8);
    expect(() => f.addStatic(1, '02:00:00:00:00', '10.0.0.1')).toThrow(/mac "02:00:00:00:00" is not a MAC address/);
    expect(() => f.addStatic(1, '02:00:00:00:00:01', '10.0.0.300')).toThrow(/vtep "10\.0\.0\.300" is not an IPv4 or IPv6 address/);
    expect(() => f.learn(-1, '02:00:00:00:00:01', '10.0.0.1', 0)).toThrow(RangeError);
    expect(() => f.learn(1, '02:00:00:00:00:01', '10.0.0.1', 1.5)).toThrow(/now must be an integer/);
    expect(() => f.get(1, new Uint8Array(7))).toThrow(/mac must be a MAC address string or 6 bytes/);
    expect(() => f.floodSet(1, ['10.0.0.1', 'nope'])).toThrow(/vteps\[1\] "nope"/);
    expect(() => new NativeFdb(0)).toThrow(/capacity 0 is outside/);
    f.close();
  });

  it('validates benchmark options', () => {
    const tun = resolveTunnel({ local: '10.0.0.1', remote: '10.0.0.2' });
    expect(() => benchEncap({ tunnel: tun, vni: 1, packets: 0 })).toThrow(/packets 0 is outside/);
    expect(() => benchEncap({ tunnel: tun, vni: 1, packets: 10, frameSizes: [13] })).toThrow(/frameSizes\[0\] 13 is outside/);
    expect(() => benchEncap({ tunnel: tun, vni: 1, packets: 10, headroom: 49 })).toThrow(/headroom 49 is smaller than the outer header \(50 bytes\)/);
    expect(() => benchFdb({ entries: 10, lookups: 10, burst: 300 })).toThrow(/burst 300 is outside 1–256/);
  });
});

// The FDB model against docs/vxlan-engine.md §5: static entries, learning (new, refresh,
// move, group MACs ignored, statics protected), ageing with and without a budget, flood
// lists and resolve.
import { describe, expect, it } from 'vitest';
import { FdbModel, type Resolution } from '../../src/packet/fdb-model.js';
import { formatIp, formatMac } from '../../src/util/addr.js';

const M1 = '52:54:00:00:00:01';
const M2 = '52:54:00:00:00:02';
const GROUP = '01:00:5e:00:00:fb';

function show(r: Resolution): string | string[] {
  return r.kind === 'unicast' ? formatIp(r.vtep.family, r.vtep.bytes) : r.vteps.map((v) => formatIp(v.family, v.bytes));
}

function table(f: FdbModel): string[] {
  return f.entries().map((e) => `${e.vni} ${formatMac(e.mac)} ${formatIp(e.vtep.family, e.vtep.bytes)} ${e.isStatic ? 'static' : `@${e.stamp}`}`);
}

describe('FDB model (§5)', () => {
  it('static entries resolve per VNI; unknown and group MACs flood', () => {
    const f = new FdbModel();
    f.addStatic(10, M1, '192.0.2.1');
    f.addStatic(20, M1, '2001:db8::1');
    f.floodAdd(10, '192.0.2.8');
    f.floodAdd(10, '192.0.2.9');
    expect(show(f.resolve(10, M1))).toBe('192.0.2.1');
    expect(show(f.resolve(20, M1))).toBe('2001:db8::1');
    expect(show(f.resolve(10, M2))).toEqual(['192.0.2.8', '192.0.2.9']);
    expect(show(f.resolve(20, M2))).toEqual([]);
    expect(show(f.resolve(10, 'ff:ff:ff:ff:ff:ff'))).toEqual(['192.0.2.8', '192.0.2.9']);
    expect(show(f.resolve(10, GROUP))).toEqual(['192.0.2.8', '192.0.2.9']);
    expect(f.size).toBe(2);
  });

  it('a group MAC cannot be a static entry (it could never be used)', () => {
    expect(() => new FdbModel().addStatic(1, GROUP, '192.0.2.1')).toThrow(/group bit/);
  });

  it('learning: new, refreshed, moved; group and all-zero source MACs ignored', () => {
    const f = new FdbModel();
    expect(f.learnFrom(5, M1, '10.0.0.1', 100)).toBe('new');
    expect(f.learnFrom(5, M1, '10.0.0.1', 110)).toBe('refreshed');
    expect(table(f)).toEqual([`5 ${M1} 10.0.0.1 @110`]);
    expect(f.learnFrom(5, M1, '10.0.0.2', 120)).toBe('moved');
    expect(table(f)).toEqual([`5 ${M1} 10.0.0.2 @120`]);
    expect(f.learnFrom(5, M1, 'fd00::2', 130)).toBe('moved');
    expect(f.learnFrom(5, M1, 'fd00::2', 131)).toBe('refreshed');
    expect(f.learnFrom(5, M1, '10.0.0.2', 140)).toBe('moved'); // IPv6 → IPv4 leaves no stale bytes
    expect(table(f)).toEqual([`5 ${M1} 10.0.0.2 @140`]);
    expect(f.learnFrom(5, GROUP, '10.0.0.1', 150)).toBe('ignored');
    expect(f.learnFrom(5, 'ff:ff:ff:ff:ff:ff', '10.0.0.1', 150)).toBe('ignored');
    // Not a station's address (the kernel's is_valid_ether_addr): never learned.
    expect(f.learnFrom(5, '00:00:00:00:00:00', '10.0.0.1', 150)).toBe('ignored');
    expect(f.size).toBe(1);
  });

  it('learning never overwrites a static entry; a static entry replaces a learned one', () => {
    const f = new FdbModel();
    f.addStatic(5, M1, '10.0.0.9');
    expect(f.learnFrom(5, M1, '10.0.0.1', 100)).toBe('static');
    expect(table(f)).toEqual([`5 ${M1} 10.0.0.9 static`]);
    f.learnFrom(5, M2, '10.0.0.1', 100);
    f.addStatic(5, M2, '10.0.0.7');
    expect(table(f)).toEqual([`5 ${M1} 10.0.0.9 static`, `5 ${M2} 10.0.0.7 static`]);
    expect(f.age(10_000, 1)).toBe(0);
    expect(f.size).toBe(2);
  });

  it('the same MAC in two VNIs is two entries', () => {
    const f = new FdbModel();
    f.learnFrom(1, M1, '10.0.0.1', 1);
    f.learnFrom(2, M1, '10.0.0.2', 1);
    expect(show(f.resolve(1, M1))).toBe('10.0.0.1');
    expect(show(f.resolve(2, M1))).toBe('10.0.0.2');
    expect(f.remove(1, M1)).toBe(true);
    expect(f.remove(1, M1)).toBe(false);
    expect(show(f.resolve(2, M1))).toBe('10.0.0.2');
  });

  it('ageing removes learned entries older than maxAge, not those exactly maxAge old', () => {
    const f = new FdbModel();
    f.learnFrom(1, M1, '10.0.0.1', 100);
    f.learnFrom(1, M2, '10.0.0.1', 200);
    f.addStatic(1, '52:54:00:00:00:03', '10.0.0.3');
    expect(f.age(400, 300)).toBe(0);
    expect(f.age(401, 300)).toBe(1);
    expect(table(f).map((l) => l.split(' ')[1])).toEqual([M2, '52:54:00:00:00:03']);
    f.learnFrom(1, M2, '10.0.0.1', 450); // refreshed: survives an age that would have removed it
    expect(f.age(700, 300)).toBe(0);
    expect(f.age(751, 300)).toBe(1);
    expect(f.size).toBe(1);
    expect(show(f.resolve(1, M2))).toEqual([]);
  });

  it('ageing with a budget looks at no more than the budget and resumes where it stopped', () => {
    const f = new FdbModel();
    const mac = (i: number) => `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`;
    for (let i = 0; i < 10; i++) f.learnFrom(3, mac(i), '10.0.0.1', i % 2 === 0 ? 0 : 1000);
    // five stale entries (even i), five fresh
    expect(f.age(1000, 100, 3)).toBe(2); // i = 0, 1, 2
    expect(f.age(1000, 100, 3)).toBe(1); // i = 3, 4, 5
    expect(f.age(1000, 100, 3)).toBe(2); // i = 6, 7, 8
    expect(f.age(1000, 100, 3)).toBe(0); // i = 9, then wraps to 1, 3
    expect(f.size).toBe(5);
    expect(f.age(1000, 100)).toBe(0);
    expect(f.age(2000, 100, 0)).toBe(0);
    expect(f.age(2000, 100)).toBe(5);
    expect(f.size).toBe(0);
  });

  it('flood lists: per VNI, no duplicates, in order added, removable', () => {
    const f = new FdbModel();
    expect(f.floodAdd(1, '10.0.0.1')).toBe(true);
    expect(f.floodAdd(1, 'fd00::1')).toBe(true);
    expect(f.floodAdd(1, '10.0.0.1')).toBe(false);
    expect(f.floodAdd(2, '10.0.0.1')).toBe(true);
    expect(f.floodList(1).map((v) => formatIp(v.family, v.bytes))).toEqual(['10.0.0.1', 'fd00::1']);
    expect(f.floodRemove(1, '10.0.0.1')).toBe(true);
    expect(f.floodRemove(1, '10.0.0.1')).toBe(false);
    expect(f.floodList(1).map((v) => formatIp(v.family, v.bytes))).toEqual(['fd00::1']);
    expect(f.floodList(2)).toHaveLength(1);
    const copy = f.floodList(2);
    copy[0]!.bytes[0] = 99;
    expect(formatIp(4, f.floodList(2)[0]!.bytes)).toBe('10.0.0.1');
  });

  it('lookup returns copies; bad input is rejected with the value named', () => {
    const f = new FdbModel();
    f.learnFrom(1, M1, '10.0.0.1', 5);
    const e = f.lookup(1, M1)!;
    e.vtep.bytes[0] = 0;
    expect(formatIp(4, f.lookup(1, M1)!.vtep.bytes)).toBe('10.0.0.1');
    expect(f.lookup(1, M2)).toBeNull();
    expect(() => f.addStatic(1 << 24, M1, '10.0.0.1')).toThrow(/VNI 16777216/);
    expect(() => f.addStatic(1, 'zz', '10.0.0.1')).toThrow(/MAC zz/);
    expect(() => f.addStatic(1, M1, 'nope')).toThrow(/VTEP nope/);
  });

  it('entries are ordered by VNI then MAC, and clear empties everything', () => {
    const f = new FdbModel();
    f.learnFrom(9, M2, '10.0.0.1', 1);
    f.learnFrom(9, M1, '10.0.0.1', 1);
    f.addStatic(3, 'ff:54:00:00:00:00'.replace(/^ff/, 'fe'), '10.0.0.1');
    expect(f.entries().map((e) => `${e.vni}/${formatMac(e.mac)}`)).toEqual(['3/fe:54:00:00:00:00', `9/${M1}`, `9/${M2}`]);
    f.floodAdd(9, '10.0.0.5');
    f.clear();
    expect(f.size).toBe(0);
    expect(f.entries()).toEqual([]);
    expect(f.floodList(9)).toEqual([]);
  });
});

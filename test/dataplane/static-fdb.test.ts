// The daemon's static FDB (src/dataplane/static-fdb.ts): entries by VNI and MAC in the
// order they came, and packed for the addon once per change of the table.
import { describe, expect, it } from 'vitest';
import { StaticFdb } from '../../src/dataplane/static-fdb.js';
import { FDB_RECORD_BYTES, packFdbEntry } from '../../src/dataplane/dp.js';
import { parseIp, parseMac } from '../../src/util/addr.js';

const e = (vni: number, m: string, vtep: string) => ({ vni, mac: `02:00:00:00:00:${m}`, vtep });
const rec = (f: { vni: number; mac: string; vtep: string }) => packFdbEntry(f.vni, parseMac(f.mac)!, parseIp(f.vtep)!.bytes);
const records = (t: StaticFdb) => Array.from({ length: t.packed().length / FDB_RECORD_BYTES }, (_, i) => Buffer.from(t.packed().subarray(i * FDB_RECORD_BYTES, (i + 1) * FDB_RECORD_BYTES)).toString('hex'));
const hex = (...fs: { vni: number; mac: string; vtep: string }[]) => fs.map((f) => Buffer.from(rec(f)).toString('hex'));

describe('the static FDB table', () => {
  const a = e(100, '0a', '192.0.2.2'), b = e(100, '0b', '2001:db8::3'), a200 = e(200, '0a', '192.0.2.2');

  it('keys entries by VNI and MAC, a replaced one moving to the end, and packs them in that order', () => {
    const t = new StaticFdb([a, b, a200]);
    expect(t.size).toBe(3);
    expect(t.get({ vni: 100, mac: a.mac })).toBe(a);
    expect(t.has({ vni: 300, mac: a.mac })).toBe(false);
    expect(records(t)).toEqual(hex(a, b, a200));
    const a2 = e(100, '0a', '192.0.2.9');
    t.set(a2);
    expect(t.values()).toEqual([b, a200, a2]);
    expect(records(t)).toEqual(hex(b, a200, a2));
    expect(t.delete({ vni: 200, mac: a.mac })).toBe(true);
    expect(t.delete({ vni: 200, mac: a.mac })).toBe(false);
    expect(records(t)).toEqual(hex(b, a2));
    // The IPv4 record: family 4, the address in the first 4 of its 16 bytes.
    const r = rec(a);
    expect([...r.subarray(0, 12)]).toEqual([100, 0, 0, 0, 2, 0, 0, 0, 0, 0x0a, 4, 0]);
    expect([...r.subarray(12)]).toEqual([192, 0, 2, 2, ...Array(12).fill(0)]);
  });

  it('packs a new entry onto what was packed (past the buffer too), and the same as packing all anew', () => {
    const t = new StaticFdb([a, b]);
    t.packed();
    const more = Array.from({ length: 300 }, (_, i) => e(300 + (i % 5), (i & 255).toString(16).padStart(2, '0'), i % 2 ? '192.0.2.7' : '2001:db8::7'));
    for (const f of more) {
      t.set(f);
      if (more.indexOf(f) % 37 === 0) expect(records(t)).toEqual(hex(a, b, ...more.slice(0, more.indexOf(f) + 1)));
    }
    expect(records(t)).toEqual(hex(a, b, ...more));
    expect(records(t)).toEqual(records(new StaticFdb(t.values())));
    // A replace and a delete after appends: packed anew, in the table's order.
    t.set({ ...a, vtep: '192.0.2.8' });
    t.delete(b);
    expect(records(t)).toEqual(hex(...more, { ...a, vtep: '192.0.2.8' }));
    expect(t.valuesExcept(new Set(more.map((f) => `${f.vni}/${f.mac}`)))).toEqual([{ ...a, vtep: '192.0.2.8' }]);
  });

  it('answers valuesExcept as a filter would, asked again with the same set after adds, replaces and deletes', () => {
    const declared = [a, e(100, '0c', '192.0.2.2'), e(300, '0d', '192.0.2.9')];
    const keys = new Set(declared.map((f) => `${f.vni}/${f.mac}`));
    const t = new StaticFdb(declared);
    const filter = () => t.values().filter((f) => !keys.has(`${f.vni}/${f.mac}`));
    const x = e(100, '0e', '192.0.2.7'), y = e(400, '0f', '192.0.2.7');
    const steps: (() => unknown)[] = [
      () => t.set(b), () => t.set(x), () => t.set(a200), () => t.set({ ...b, vtep: '192.0.2.4' }), // b moves last
      () => t.set({ ...a, vtep: '192.0.2.5' }), // a declared key: replaced, never in the answer
      () => t.delete(x), () => t.delete(declared[1]!), () => t.set(y), () => t.set(x), () => t.delete(e(9, '99', '192.0.2.1')),
    ];
    expect(t.valuesExcept(keys)).toEqual([]);
    for (const step of steps) {
      step();
      expect(t.valuesExcept(keys)).toEqual(filter());
    }
    expect(t.valuesExcept(keys)).toEqual([a200, { ...b, vtep: '192.0.2.4' }, y, x]);
    // Another set: its own answer, from the whole table.
    expect(t.valuesExcept(new Set([`400/${y.mac}`]))).toEqual(t.values().filter((f) => f !== y));
  });

  it('gives the same buffer until the table changes, and a clone changes apart from its original', () => {
    const t = new StaticFdb([a]);
    const p = t.packed();
    expect(t.packed()).toBe(p);
    expect(t.delete({ vni: 1, mac: a.mac })).toBe(false);
    expect(t.packed()).toBe(p); // nothing deleted: nothing to pack again
    const c = t.clone();
    c.set(b);
    expect(records(c)).toEqual(hex(a, b));
    expect(t.packed()).toBe(p);
    expect(records(t)).toEqual(hex(a));
    t.delete(a);
    expect(t.packed().length).toBe(0);
    expect(records(c)).toEqual(hex(a, b));
  });
});

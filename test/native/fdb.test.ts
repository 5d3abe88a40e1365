// The native FDB (docs/vxlan-engine.md §5): static entries, learning, ageing, flood
// lists, resolve, bulk lookup, a million entries, -ENOSPC leaving the table unchanged,
// and random operation sequences against a plain Map model.
import { describe, expect, it } from 'vitest';
import { FdbFullError, NativeFdb, type FdbEntry, type LearnResult } from '../../src/dataplane/native.js';
import { addon, mac as mac6 } from './helpers.js';

const sorted = (es: FdbEntry[]) =>
  es.map((e) => `${e.vni}/${e.mac}/${e.type}/${e.stamp}/${e.vtep}`).sort();

describe('static entries', () => {
  it('adds, gets, replaces and deletes', () => {
    const f = new NativeFdb(100);
    expect(f.get(10, '02:00:00:00:00:01')).toBeNull();
    f.addStatic(10, '02:00:00:00:00:01', '10.0.0.1');
    expect(f.get(10, '02:00:00:00:00:01')).toEqual({ vni: 10, mac: '02:00:00:00:00:01', type: 'static', stamp: 0, vtep: '10.0.0.1' });
    expect(f.get(11, '02:00:00:00:00:01')).toBeNull(); // the VNI is part of the key
    expect(f.count()).toBe(1);
    f.addStatic(10, '02:00:00:00:00:01', '2001:db8::7');
    expect(f.get(10, '02:00:00:00:00:01')?.vtep).toBe('2001:db8::7');
    expect(f.count()).toBe(1);
    expect(f.vtepCount()).toBe(1); // 10.0.0.1 was released
    expect(f.del(10, '02:00:00:00:00:01')).toBe(true);
    expect(f.del(10, '02:00:00:00:00:01')).toBe(false);
    expect(f.count()).toBe(0);
    expect(f.vtepCount()).toBe(0);
  });

  it('keys VNI 0 and the all-zero MAC like any other', () => {
    const f = new NativeFdb(16);
    expect(f.get(0, '00:00:00:00:00:00')).toBeNull(); // an empty slot must not match
    f.addStatic(0, '00:00:00:00:00:00', '10.0.0.1');
    f.addStatic(0xffffff, 'fe:ff:ff:ff:ff:ff', '10.0.0.2');
    expect(f.get(0, '00:00:00:00:00:00')?.vtep).toBe('10.0.0.1');
    expect(f.get(0xffffff, 'fe:ff:ff:ff:ff:ff')?.vtep).toBe('10.0.0.2');
    expect(f.get(0x10000, '00:00:00:00:00:00')).toBeNull(); // high VNI byte is compared too
  });

  it('makes a learned entry static when added again', () => {
    const f = new NativeFdb(16);
    expect(f.learn(1, '02:00:00:00:00:01', '10.0.0.1', 5)).toBe('new');
    f.addStatic(1, '02:00:00:00:00:01', '10.0.0.1');
    expect(f.get(1, '02:00:00:00:00:01')).toMatchObject({ type: 'static', stamp: 0 });
  });
});

describe('learning', () => {
  it('new, refresh, moved, static left alone, group ignored', () => {
    const f = new NativeFdb(16);
    const m = '52:54:00:12:34:56';
    expect(f.learn(5, m, '10.0.0.1', 100)).toBe('new');
    expect(f.get(5, m)).toEqual({ vni: 5, mac: m, type: 'learned', stamp: 100, vtep: '10.0.0.1' });
    expect(f.learn(5, m, '10.0.0.1', 130)).toBe('refresh');
    expect(f.get(5, m)?.stamp).toBe(130);
    expect(f.learn(5, m, 'fd00::1', 140)).toBe('moved');
    expect(f.get(5, m)).toMatchObject({ vtep: 'fd00::1', stamp: 140 });
    expect(f.vtepCount()).toBe(1);
    f.addStatic(5, '52:54:00:00:00:01', '10.9.9.9');
    expect(f.learn(5, '52:54:00:00:00:01', '10.0.0.1', 150)).toBe('static');
    expect(f.get(5, '52:54:00:00:00:01')).toMatchObject({ type: 'static', vtep: '10.9.9.9', stamp: 0 });
    expect(f.learn(5, '01:00:5e:00:00:01', '10.0.0.1', 150)).toBe('ignored');
    expect(f.learn(5, 'ff:ff:ff:ff:ff:ff', '10.0.0.1', 150)).toBe('ignored');
    expect(f.learn(5, '03:00:00:00:00:00', '10.0.0.1', 150)).toBe('ignored');
    expect(f.learn(5, '00:00:00:00:00:00', '10.0.0.1', 150)).toBe('ignored');
    expect(f.count()).toBe(2);
  });
});

describe('ageing', () => {
  it('removes learned entries older than maxAge and keeps static ones', () => {
    const f = new NativeFdb(64);
    f.addStatic(1, '02:00:00:00:00:01', '10.0.0.1');
    f.learn(1, '02:00:00:00:00:02', '10.0.0.2', 100);
    f.learn(1, '02:00:00:00:00:03', '10.0.0.3', 200);
    f.learn(1, '02:00:00:00:00:04', '10.0.0.4', 500); // stamped after "now": kept
    expect(f.age(400, 200)).toBe(1); // 400 - 100 > 200; 400 - 200 = 200 is not older
    expect(f.get(1, '02:00:00:00:00:02')).toBeNull();
    expect(f.get(1, '02:00:00:00:00:03')).not.toBeNull();
    expect(f.age(401, 200)).toBe(1);
    expect(f.count()).toBe(2);
    expect(f.get(1, '02:00:00:00:00:01')?.type).toBe('static');
    expect(f.vtepCount()).toBe(2); // the aged-out VTEPs were freed
  });

  it('scans with a bucket budget, resuming where it stopped', () => {
    const f = new NativeFdb(1000);
    for (let i = 0; i < 800; i++) f.learn(1, `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, '10.0.0.1', 10);
    const buckets = f.slots() / 4;
    let removed = 0, calls = 0;
    while (removed < 800) {
      const r = f.age(1000, 60, 7);
      expect(r).toBeLessThanOrEqual(7 * 4);
      removed += r;
      calls++;
      expect(calls).toBeLessThanOrEqual(Math.ceil(buckets / 7));
    }
    expect(f.count()).toBe(0);
    expect(f.vtepCount()).toBe(0);
    expect(f.age(1000, 60, 0)).toBe(0);
  });
});

describe('flood lists and resolve', () => {
  it('sets, replaces, dedupes and clears a VNI’s list', () => {
    const f = new NativeFdb(16);
    expect(f.floodGet(7)).toEqual([]);
    f.floodSet(7, ['10.0.0.1', '10.0.0.2', '10.0.0.1', 'fd00::1']);
    expect(f.floodGet(7)).toEqual(['10.0.0.1', '10.0.0.2', 'fd00::1']);
    expect(f.floodGet(8)).toEqual([]);
    f.floodSet(7, ['10.0.0.3']);
    expect(f.floodGet(7)).toEqual(['10.0.0.3']);
    expect(f.vtepCount()).toBe(1);
    f.floodSet(7, []);
    expect(f.floodGet(7)).toEqual([]);
    expect(f.vtepCount()).toBe(0);
  });

  it('keeps many VNIs’ lists apart', () => {
    const f = new NativeFdb(16);
    for (let v = 0; v < 300; v++) f.floodSet(v * 1000, [`10.${v >> 8}.${v & 255}.1`, '10.255.0.1']);
    for (let v = 0; v < 300; v++) expect(f.floodGet(v * 1000)).toEqual([`10.${v >> 8}.${v & 255}.1`, '10.255.0.1']);
    for (let v = 0; v < 300; v += 2) f.floodSet(v * 1000, []);
    for (let v = 0; v < 300; v++) expect(f.floodGet(v * 1000)).toEqual(v % 2 ? [`10.${v >> 8}.${v & 255}.1`, '10.255.0.1'] : []);
    expect(f.vtepCount()).toBe(151);
  });

  it('resolves unicast hits to their VTEP, group MACs and misses to the flood list', () => {
    const f = new NativeFdb(16);
    f.floodSet(9, ['10.0.0.8', '10.0.0.9']);
    f.addStatic(9, '02:00:00:00:00:01', '10.0.0.1');
    expect(() => f.addStatic(9, '01:00:5e:00:00:01', '10.0.0.1')).toThrow(/group address/);
    expect(addon.fdbCreate(4).addStatic(9, mac6('01:00:5e:00:00:01'), Uint8Array.of(10, 0, 0, 1))).toBe(-22);
    f.learn(9, '02:00:00:00:00:02', '10.0.0.2', 1);
    expect(f.resolve(9, '02:00:00:00:00:01')).toEqual({ vtep: '10.0.0.1' });
    expect(f.resolve(9, '02:00:00:00:00:02')).toEqual({ vtep: '10.0.0.2' });
    expect(f.resolve(9, '02:00:00:00:00:03')).toEqual({ flood: ['10.0.0.8', '10.0.0.9'] });
    expect(f.resolve(9, 'ff:ff:ff:ff:ff:ff')).toEqual({ flood: ['10.0.0.8', '10.0.0.9'] });
    expect(f.resolve(9, '01:00:5e:00:00:01')).toEqual({ flood: ['10.0.0.8', '10.0.0.9'] });
    expect(f.resolve(10, '02:00:00:00:00:01')).toEqual({ flood: [] });
  });
});

describe('bulk lookup', () => {
  it('returns each key’s VTEP index, and 65535 for misses, across chunks of 256', () => {
    const f = new NativeFdb(2000);
    const n = 1000;
    const vnis = new Uint32Array(n + 10), macs = new Uint8Array((n + 10) * 6);
    for (let i = 0; i < n + 10; i++) {
      vnis[i] = 1 + (i % 7);
      macs.set([2, 0, 0, 0, i >> 8, i & 255], i * 6);
      if (i < n) f.addStatic(vnis[i]!, macs.subarray(i * 6, i * 6 + 6), `10.0.${i % 5}.1`);
    }
    const out = f.lookup(vnis, macs);
    for (let i = 0; i < n; i++) expect(f.vtepAt(out[i]!)).toBe(`10.0.${i % 5}.1`);
    for (let i = n; i < n + 10; i++) expect(out[i]).toBe(65535);
  });
});

describe('a million entries', () => {
  it('holds 1,000,000 entries in a table created for them, and reads every one back', () => {
    const N = 1_000_000;
    const raw = addon.fdbCreate(N);
    const mac = new Uint8Array(6);
    const vteps = Array.from({ length: 64 }, (_, k) => Uint8Array.of(10, 1, 0, k));
    mac[0] = 0x02;
    for (let i = 0; i < N; i++) {
      mac[2] = i >>> 24;
      mac[3] = (i >>> 16) & 255;
      mac[4] = (i >>> 8) & 255;
      mac[5] = i & 255;
      const rc = raw.addStatic(1 + (i % 4093), mac, vteps[i % 64]!);
      if (rc !== 0) throw new Error(`insert ${i} failed: ${rc}`);
    }
    expect(raw.count()).toBe(N);
    expect(raw.vtepCount()).toBe(64);

    // every key by bulk lookup
    const vnis = new Uint32Array(N), macs = new Uint8Array(N * 6), out = new Uint16Array(N);
    for (let i = 0; i < N; i++) {
      vnis[i] = 1 + (i % 4093);
      macs[i * 6] = 2;
      macs[i * 6 + 2] = i >>> 24;
      macs[i * 6 + 3] = (i >>> 16) & 255;
      macs[i * 6 + 4] = (i >>> 8) & 255;
      macs[i * 6 + 5] = i & 255;
    }
    raw.lookup(vnis, macs, out);
    const idxToK = new Map<number, number>();
    for (let i = 0; i < N; i++) {
      const idx = out[i]!;
      let k = idxToK.get(idx);
      if (k === undefined) {
        const a = raw.vtep(idx);
        expect(a).not.toBeNull();
        k = a![3]!;
        idxToK.set(idx, k);
      }
      if (k !== i % 64) throw new Error(`key ${i}: VTEP 10.1.0.${k}, want 10.1.0.${i % 64}`);
    }

    // every entry by walking the table: each inserted key exactly once
    const cols = raw.entries();
    expect(cols.count).toBe(N);
    const seen = new Uint8Array(N);
    for (let e = 0; e < cols.count; e++) {
      const m = cols.mac;
      const i = ((m[e * 6 + 2]! << 24) >>> 0) + (m[e * 6 + 3]! << 16) + (m[e * 6 + 4]! << 8) + m[e * 6 + 5]!;
      if (i >= N || seen[i] || cols.vni[e] !== 1 + (i % 4093) || cols.flags[e] !== 1 || cols.family[e] !== 4 ||
          cols.vtep[e * 16 + 3] !== i % 64) {
        throw new Error(`entry ${e} (key ${i}) is wrong or repeated`);
      }
      seen[i] = 1;
    }
    expect(seen.every((x) => x === 1)).toBe(true);

    // and by single get, for a sample
    for (let i = 0; i < N; i += 997) {
      mac[2] = i >>> 24;
      mac[3] = (i >>> 16) & 255;
      mac[4] = (i >>> 8) & 255;
      mac[5] = i & 255;
      expect(raw.get(1 + (i % 4093), mac)?.vtep).toEqual(vteps[i % 64]);
    }
    raw.close();
  });
});

describe('a full table', () => {
  // A small table filled past its requested capacity until inserts fail: each failure
  // must leave every entry exactly as it was.
  function fillUntilFull(useLearn: boolean) {
    const f = new NativeFdb(64);
    const model = new Map<string, string>();
    let seed = 99, failures = 0, i = 0;
    const rnd = () => (seed = (seed * 1664525 + 1013904223) >>> 0);
    while (failures < 40) {
      const m = `02:${[0, 0, 0, 0, 0].map(() => (rnd() >>> 24).toString(16).padStart(2, '0')).join(':')}`;
      const vni = rnd() & 0xff;
      const vtep = `10.0.${i % 3}.1`;
      const key = `${vni}/${m}`;
      if (model.has(key)) continue;
      i++;
      const before = sorted(f.entries());
      let full: boolean;
      if (useLearn) {
        full = f.learn(vni, m, vtep, 7) === 'full';
      } else {
        try {
          f.addStatic(vni, m, vtep);
          full = false;
        } catch (e) {
          expect(e).toBeInstanceOf(FdbFullError);
          full = true;
        }
      }
      if (full) {
        failures++;
        expect(f.count()).toBe(model.size);
        expect(sorted(f.entries())).toEqual(before);
        expect(f.get(vni, m)).toBeNull();
      } else {
        model.set(key, vtep);
      }
    }
    for (const [key, vtep] of model) {
      const [vni, m] = key.split('/') as [string, string];
      expect(f.get(Number(vni), m)?.vtep).toBe(vtep);
    }
    return { f, model };
  }

  it('addStatic: -ENOSPC leaves count and every entry unchanged', () => {
    const { f, model } = fillUntilFull(false);
    // and no VTEP reference leaked on the failed inserts
    for (const key of model.keys()) {
      const [vni, m] = key.split('/') as [string, string];
      expect(f.del(Number(vni), m)).toBe(true);
    }
    expect(f.vtepCount()).toBe(0);
    for (const [key, vtep] of model) {
      const [vni, m] = key.split('/') as [string, string];
      f.addStatic(Number(vni), m, vtep);
    }
    expect(model.size).toBeGreaterThanOrEqual(64); // at least the capacity it was made for
    expect(model.size).toBeLessThanOrEqual(f.slots());
    expect(model.size / f.slots()).toBeGreaterThan(0.9); // cuckoo displacement works
  });

  it('learn: a full table answers "full" and changes nothing', () => {
    const { f, model } = fillUntilFull(true);
    expect(model.size).toBeGreaterThanOrEqual(64);
    expect(f.age(1000, 0)).toBe(model.size);
    expect(f.vtepCount()).toBe(0);
  });

  // A table of capacity 16 has 20 slots (its buckets rounded up): learning filled them
  // all, and a worker's learnCapacity 16 held 20 learned MACs.
  it('learn stops at the capacity asked for, not at the slots; a freed entry makes room', () => {
    const f = new NativeFdb(16);
    expect(f.slots()).toBeGreaterThan(16);
    const m = (i: number) => `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`;
    const got = Array.from({ length: 100 }, (_, i) => f.learn(1 + (i % 3), m(i), '10.0.0.1', 5));
    expect(got.filter((r) => r === 'new').length).toBe(16);
    expect(got.filter((r) => r === 'full').length).toBe(84);
    expect(f.count()).toBe(16);
    // Known MACs still refresh and move at capacity.
    expect(f.learn(1, m(0), '10.0.0.1', 6)).toBe('refresh');
    expect(f.learn(1, m(0), '10.0.0.2', 7)).toBe('moved');
    expect(f.del(2, m(1))).toBe(true);
    expect(f.learn(1, m(99), '10.0.0.1', 8)).toBe('new');
    expect(f.learn(1, m(98), '10.0.0.1', 8)).toBe('full');
  });

  it('running out of VTEP indexes fails cleanly too', () => {
    const f = new NativeFdb(1); // room for 1 + 1024 VTEPs
    const many = Array.from({ length: 1025 }, (_, k) => `10.${k >> 8}.${k & 255}.1`);
    f.floodSet(1, many);
    expect(f.vtepCount()).toBe(1025);
    f.addStatic(1, '02:00:00:00:00:01', '10.0.0.1'); // an existing VTEP: fine
    expect(() => f.addStatic(1, '02:00:00:00:00:02', '192.168.0.1')).toThrow(FdbFullError);
    expect(f.learn(1, '02:00:00:00:00:03', '192.168.0.1', 1)).toBe('full');
    expect(() => f.floodSet(2, ['10.0.0.1', '192.168.0.1'])).toThrow(FdbFullError);
    expect(f.floodGet(2)).toEqual([]);
    expect(() => f.floodSet(1, ['192.168.0.1', ...many.slice(1)])).toThrow(FdbFullError);
    expect(f.floodGet(1)).toEqual(many); // the old list stays
    expect(f.vtepCount()).toBe(1025);
    expect(f.count()).toBe(1);
    f.floodSet(1, []);
    expect(f.vtepCount()).toBe(1);
    f.addStatic(1, '02:00:00:00:00:02', '192.168.0.1');
  });
});

describe('cuckoo displacement', () => {
  it('keeps every entry findable after each insert into near-full small tables', () => {
    let seed = 4242;
    const rnd = () => (seed = (seed * 1664525 + 1013904223) >>> 0);
    const mac = new Uint8Array(6);
    const vtep = Uint8Array.of(10, 0, 0, 1);
    for (let t = 0; t < 300; t++) {
      const raw = addon.fdbCreate(8 + (t % 57));
      const keys: [number, Uint8Array][] = [];
      let failures = 0;
      while (failures < 8) {
        const k = Uint8Array.of(2, rnd() >>> 24, rnd() >>> 24, rnd() >>> 24, rnd() >>> 24, rnd() >>> 24);
        const vni = rnd() & 3;
        if (raw.get(vni, k)) continue;
        if (raw.addStatic(vni, k, vtep) !== 0) {
          failures++;
          continue;
        }
        keys.push([vni, k]);
        for (const [v, m] of keys) {
          mac.set(m);
          if (!raw.get(v, mac)) throw new Error(`table ${t}: key lost after ${keys.length} inserts`);
        }
      }
      expect(raw.count()).toBe(keys.length);
      raw.close();
    }
  });
});

describe('random operations against a Map model', () => {
  for (const seed of [1, 2, 3]) {
    it(`agrees over 20,000 operations (seed ${seed})`, () => {
      let s = seed * 7919;
      const rnd = (n: number) => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) % n;
      const macs = Array.from({ length: 120 }, (_, i) => i === 3 ? '00:00:00:00:00:00' :
        `${i % 17 === 0 ? '01' : '02'}:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
      const vnis = [0, 1, 2, 0x10000, 0xffffff];
      const vteps = ['10.0.0.1', '10.0.0.2', '10.0.0.3', 'fd00::1', 'fd00::2', '2001:db8::a'];
      const f = new NativeFdb(1024);
      type E = { static: boolean; vtep: string; stamp: number };
      const model = new Map<string, E>();
      const flood = new Map<number, string[]>();
      let now = 1000;
      const key = (v: number, m: string) => `${v}/${m}`;

      for (let op = 0; op < 20000; op++) {
        const v = vnis[rnd(vnis.length)]!, m = macs[rnd(macs.length)]!, t = vteps[rnd(vteps.length)]!;
        const k = key(v, m);
        const r = rnd(100);
        if (r < 15) {
          if (parseInt(m.slice(0, 2), 16) & 1) {
            expect(() => f.addStatic(v, m, t)).toThrow(RangeError);
          } else {
            f.addStatic(v, m, t);
            model.set(k, { static: true, vtep: t, stamp: 0 });
          }
        } else if (r < 27) {
          expect(f.del(v, m)).toBe(model.delete(k));
        } else if (r < 77) {
          now += rnd(3);
          const cur = model.get(k);
          let want: LearnResult;
          if (parseInt(m.slice(0, 2), 16) & 1 || m === '00:00:00:00:00:00') want = 'ignored';
          else if (!cur) want = 'new';
          else if (cur.static) want = 'static';
          else if (cur.vtep === t) want = 'refresh';
          else want = 'moved';
          expect(f.learn(v, m, t, now)).toBe(want);
          if (want === 'new' || want === 'refresh' || want === 'moved') model.set(k, { static: false, vtep: t, stamp: now });
        } else if (r < 90) {
          const e = model.get(k);
          expect(f.get(v, m)).toEqual(e ? { vni: v, mac: m, type: e.static ? 'static' : 'learned', stamp: e.stamp, vtep: e.vtep } : null);
          const res = f.resolve(v, m);
          if (e && !(parseInt(m.slice(0, 2), 16) & 1)) expect(res).toEqual({ vtep: e.vtep });
          else expect(res).toEqual({ flood: flood.get(v) ?? [] });
        } else if (r < 95) {
          const maxAge = rnd(20);
          let want = 0;
          for (const [kk, e] of model) {
            if (!e.static && now > e.stamp && now - e.stamp > maxAge) {
              model.delete(kk);
              want++;
            }
          }
          expect(f.age(now, maxAge)).toBe(want);
        } else {
          const list = [...new Set(Array.from({ length: rnd(4) }, () => vteps[rnd(vteps.length)]!))];
          f.floodSet(v, list);
          if (list.length) flood.set(v, list);
          else flood.delete(v);
        }
        if (op % 1000 === 999) {
          const want = [...model].map(([kk, e]) => {
            const [vv, mm] = kk.split('/') as [string, string];
            return `${vv}/${mm}/${e.static ? 'static' : 'learned'}/${e.stamp}/${e.vtep}`;
          }).sort();
          expect(sorted(f.entries())).toEqual(want);
          const used = new Set([...model.values()].map((e) => e.vtep));
          for (const l of flood.values()) l.forEach((x) => used.add(x));
          expect(f.vtepCount()).toBe(used.size);
          expect(f.count()).toBe(model.size);
        }
      }
    });
  }
});

describe('memory', () => {
  it('reports its size, sized for the requested entries', () => {
    const small = new NativeFdb(1000), big = new NativeFdb(100_000);
    expect(small.capacity()).toBe(1000);
    expect(small.slots()).toBeGreaterThanOrEqual(1000);
    expect(big.slots()).toBeLessThan(100_000 * 1.2);
    // buckets, plus the VTEP table: min(capacity + 1024, 65535) addresses at ≤ 32 bytes each
    expect(big.memBytes()).toBeGreaterThan(big.slots() * 16);
    expect(big.memBytes()).toBeLessThan(big.slots() * 16 + 65535 * 32 + 65536);
    expect(small.memBytes()).toBeLessThan(small.slots() * 16 + 2024 * 32 + 65536);
    small.close();
    big.close();
    expect(() => small.count()).toThrow(/closed/);
  });
});

// vfp_fdb__set_vni_limit: each VNI's learned entries counted in a table of its own
// (linear probing, backward-shift deletion); held against a model over random learns,
// deletions, static replacements and ageing across many VNIs, so probe chains form and
// break.
describe('a cap on each VNI\'s learned entries', () => {
  for (const seed of [1, 2]) {
    it(`learns up to the cap per VNI and counts each VNI right over 30,000 operations (seed ${seed})`, () => {
      let s = seed * 104729;
      const rnd = (n: number) => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) % n;
      const CAP = 3;
      const f = new NativeFdb(65536);
      f.setVniLimit(CAP);
      const vnis = Array.from({ length: 4000 }, (_, i) => (i * 2654435761) % 0xffffff);
      const macOf = (i: number) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      type E = { static: boolean; stamp: number };
      const model = new Map<string, E>();
      const learnedOf = (v: number) => [...model].filter(([k, e]) => !e.static && k.startsWith(`${v}/`)).length;
      let now = 1000;
      for (let op = 0; op < 30000; op++) {
        const v = vnis[rnd(vnis.length)]!, m = macOf(rnd(8)), k = `${v}/${m}`;
        const r = rnd(100);
        if (r < 70) {
          const e = model.get(k);
          const got = f.learn(v, m, '10.0.0.1', now);
          if (e?.static) expect(got).toBe('static');
          else if (e) { expect(got).toBe('refresh'); e.stamp = now; }
          else if (learnedOf(v) >= CAP) expect(got, `VNI ${v} at its cap`).toBe('limited');
          else { expect(got).toBe('new'); model.set(k, { static: false, stamp: now }); }
        } else if (r < 85) {
          expect(f.del(v, m)).toBe(model.delete(k));
        } else if (r < 90) {
          f.addStatic(v, m, '10.0.0.2');
          model.set(k, { static: true, stamp: 0 });
        } else if (r < 97) {
          now += 1;
        } else {
          f.age(now, 5);
          for (const [key, e] of model) if (!e.static && now > e.stamp && now - e.stamp > 5) model.delete(key);
        }
        if (op % 997 === 0) for (const vv of vnis.slice(0, 200)) expect(f.learnedIn(vv), `VNI ${vv}`).toBe(learnedOf(vv));
      }
      for (const v of vnis) expect(f.learnedIn(v), `VNI ${v}`).toBe(learnedOf(v));
      f.close();
    });
  }

  it('counts what was learned before the cap was set; past 12,288 VNIs learning at once a new one waits for a slot', () => {
    const f = new NativeFdb(1 << 16);
    for (let i = 0; i < 5; i++) expect(f.learn(7, `02:00:00:00:00:0${i}`, '10.0.0.1', 1)).toBe('new');
    f.setVniLimit(4);
    expect(f.learnedIn(7)).toBe(5);
    expect(f.learn(7, '02:00:00:00:01:00', '10.0.0.1', 1)).toBe('limited');
    expect(f.learn(7, '02:00:00:00:00:00', '10.0.0.1', 2)).toBe('refresh'); // known MACs still refresh
    const many = Array.from({ length: 12288 }, (_, i) => 1000 + i);
    for (const v of many.slice(1)) expect(f.learn(v, '02:00:00:00:00:01', '10.0.0.1', 1)).toBe('new');
    expect(f.learn(900, '02:00:00:00:00:01', '10.0.0.1', 1)).toBe('limited'); // no slot for a 12,289th VNI
    expect(f.del(1001, '02:00:00:00:00:01')).toBe(true); // VNI 1001 has none left: its slot is free
    expect(f.learn(900, '02:00:00:00:00:01', '10.0.0.1', 1)).toBe('new');
    f.setVniLimit(0);
    expect(f.learnedIn(900)).toBe(0); // no cap, nothing counted
    expect(f.learn(7, '02:00:00:00:01:00', '10.0.0.1', 1)).toBe('new');
    f.close();
  });
});

// The workers' drop capture (native/worker/dp.c, drop_note; `vfplane dataplane drops`):
// off until armed, then the next N dropped frames of each worker, with the port, the
// reason they were counted under and their first bytes; on memory ports, then through
// a running daemon and the CLI on real frames.
import { describe, expect, it } from 'vitest';
import { DataPlane, DROP_HEAD_BYTES } from '../../src/dataplane/dp.js';
import { request } from '../../src/dataplane/control.js';
import { parseMac } from '../../src/util/addr.js';
import { dataplaneOn, vfplane, vfplaneAsync, type CliResult } from '../helpers/cli.js';
import { udp4 } from '../helpers/frames.js';
import { describePrivileged } from '../helpers/privileged.js';
import { fromVtep, nodeSpec, POD, spin, UP, uplinkNetns } from '../helpers/underlay.js';

const mac = (s: string) => parseMac(s)!;

/** A peer's VXLAN frame (fromVtep) whose inner frame is 200 bytes: longer than the
 *  capture keeps of it. */
const big = (vtep: string, innerSrc: string, innerDst = POD, vni = 100) => fromVtep(vtep, innerSrc, innerDst, vni, 158);

/** The same, with its outer IPv4 header checksum broken. */
function badChecksum(vtep: string, innerSrc: string): Uint8Array {
  const f = big(vtep, innerSrc);
  f[24]! ^= 0xff;
  return f;
}

const base = nodeSpec(1);

describe('drop capture on memory ports', () => {
  // The uplink replays a good frame (for the sink pod), one for a VNI nobody has, one
  // with a bad outer checksum; the other pod sends as someone else (spoofed). Nothing is
  // sent out of a generator port (it takes nothing: tx_full).
  const uplinkFrames = [big('192.0.2.2', '02:00:00:00:00:0b', '02:00:00:00:00:02'), big('192.0.2.2', '02:00:00:00:00:0c', POD, 300), badChecksum('192.0.2.2', '02:00:00:00:00:0d')];
  const podFrames = [udp4({ dstMac: '02:00:00:00:00:0b', srcMac: '02:00:00:00:00:66', src: '10.9.0.1', dst: '10.9.0.2', sport: 1, dport: 2, payload: new Uint8Array(30) })];
  function running() {
    const dp = new DataPlane({ workers: 1 });
    const up = dp.openPort('memory-gen', { frames: uplinkFrames, ring: 3 * 64 }, 'uplink');
    const pod = dp.openPort('memory-gen', { frames: podFrames, ring: 64 }, 'pod0');
    const sink = dp.openPort('memory-sink', {}, 'pod1');
    dp.commit({ ...base, uplink: up.slot, atts: [{ port: pod.slot, vni: 100, mac: mac(POD) }, { port: sink.slot, vni: 100, mac: mac('02:00:00:00:00:02') }] });
    return { dp, up, pod };
  }

  it('records nothing until armed, then exactly the frames asked for, with port, reason and bytes; re-arming forgets', () => {
    const { dp, up, pod } = running();
    try {
      spin(100);
      expect(dp.drops(), 'off by default').toEqual([]);
      const t0 = Date.now();
      dp.armDrops(40);
      spin(100);
      const d = dp.drops();
      expect(d).toHaveLength(40); // drops come by the million: the count is exact
      const byReason = new Map<string, number>();
      for (const r of d) byReason.set(r.reason, (byReason.get(r.reason) ?? 0) + 1);
      expect([...byReason.keys()].sort()).toEqual(['ip_bad_checksum', 'spoofed', 'vni_unknown']);
      for (const r of d) {
        const want = r.reason === 'spoofed' ? podFrames[0]! : r.reason === 'vni_unknown' ? uplinkFrames[1]! : uplinkFrames[2]!;
        expect(r.port).toBe(r.reason === 'spoofed' ? pod.slot : up.slot);
        expect(r.dir).toBe('rx');
        expect(r.worker).toBe(0);
        expect(r.len).toBe(want.length);
        expect(Buffer.from(r.head)).toEqual(Buffer.from(want.subarray(0, DROP_HEAD_BYTES)));
        expect(r.unixMs).toBeGreaterThanOrEqual(t0 - 5);
        expect(r.unixMs).toBeLessThanOrEqual(Date.now() + 5);
      }
      // Only the reasons asked for; and arming again starts over.
      dp.armDrops(10, ['vni_unknown']);
      spin(100);
      const v = dp.drops();
      expect(v).toHaveLength(10);
      expect(new Set(v.map((r) => r.reason))).toEqual(new Set(['vni_unknown']));
      // 0 stops it: nothing more is recorded.
      dp.armDrops(0);
      spin(50);
      expect(dp.drops()).toEqual([]);
      // The counters never depended on it.
      expect(dp.counters().drops.spoofed).toBeGreaterThan(1000n);
      expect(() => dp.armDrops(5, ['spoofd'])).toThrow(/spoofd is not a drop reason/);
      expect(() => dp.armDrops(256)).toThrow(RangeError);
    } finally {
      dp.stop();
    }
  });

  it('names every reason the counters have', () => {
    const dp = new DataPlane({ workers: 1 });
    try {
      const r = dp.dropReasons();
      for (const k of ['spoofed', 'tx_full', 'neigh_unresolved', 'vni_unknown', 'ip_bad_checksum', 'mtu_exceeded']) expect(r).toContain(k);
      expect(r).not.toContain('ok');
    } finally {
      dp.stop();
    }
  });
});

describePrivileged('vfplane dataplane drops, on a running data plane', { netns: true }, () => {
  const e = uplinkNetns('drops');
  const { up, rep, d, send } = e;

  /** Runs `vfplane dataplane drops …` while frames keep arriving on the underlay. */
  async function capture(args: string[], frames: Uint8Array[]): Promise<CliResult> {
    let done = false;
    const r = vfplaneAsync(['dataplane', 'drops', ...args]).then((x) => ((done = true), x));
    while (!done) {
      send(frames);
      await new Promise((res) => setTimeout(res, 100));
    }
    return r;
  }

  it('shows the frames the workers drop, why, and what they were; --reason narrows it; a bad name is refused', async () => {
    const S = '02:00:00:00:7c:01';
    const dp = await dataplaneOn(e.n, up, d.dir, { peers: [{ vtep: '192.0.2.2', mac: '02:bb:00:00:00:02' }, { vtep: '192.0.2.3', mac: '02:bb:00:00:00:03' }], fdb: [{ vni: 100, mac: S, vtep: '192.0.2.2' }] });
    try {
      const a = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', rep, '--vni', '100', '--mac', POD, '--netns', e.n.path]);
      expect(a.code, a.stderr).toBe(0);
      const frames = [big('192.0.2.3', S), big('192.0.2.2', '02:00:00:00:7c:02', POD, 300), badChecksum('192.0.2.2', '02:00:00:00:7c:03')];
      // The reasons of these frames only: the underlay has the kernel's own chatter (the
      // peer veth's MLD reports, dropped as nd_other).
      const j = await capture(['--socket', dp.socket, '--count', '6', '--wait', '20000', '--json', '--reason', 'static_elsewhere,vni_unknown,ip_bad_checksum'], frames);
      expect(j.code, j.stderr).toBe(0);
      type Out = { port: string; dir: string; reason: string; len: number; decap?: { vni: number; vtep: string }; summary: string; frame: string };
      const out = JSON.parse(j.stdout) as { drops: Out[] };
      expect(out.drops).toHaveLength(6);
      const seen = new Set(out.drops.map((x) => x.reason));
      for (const x of out.drops) {
        expect(x.port, JSON.stringify(x)).toBe('uplink');
        expect(x.dir).toBe('rx');
        const f = frames[x.reason === 'static_elsewhere' ? 0 : x.reason === 'vni_unknown' ? 1 : 2]!;
        if (x.reason === 'static_elsewhere') {
          // Dropped after decap: the inner frame, and what it came in.
          const inner = f.subarray(50);
          expect(x.decap).toEqual({ vni: 100, vtep: '192.0.2.3' });
          expect(x.frame).toBe(Buffer.from(inner.subarray(0, 128)).toString('hex'));
          expect(x.len).toBe(inner.length);
          expect(x.summary).toBe(`VXLAN VNI 100 from 192.0.2.3: ${S} > ${POD}, IPv4 10.9.0.2 > 10.9.0.1 UDP 7000 > 7001`);
        } else {
          // The engine refused it: the frame as it arrived.
          expect(x.decap).toBeUndefined();
          expect(x.frame).toBe(Buffer.from(f.subarray(0, 128)).toString('hex'));
          expect(x.len).toBe(f.length);
        }
      }
      expect([...seen].every((r) => ['static_elsewhere', 'vni_unknown', 'ip_bad_checksum'].includes(r)), [...seen].join()).toBe(true);
      const vu = out.drops.find((x) => x.reason === 'vni_unknown');
      if (vu) expect(vu.summary).toBe(`02:bb:00:00:00:02 > ${UP}, IPv4 192.0.2.2 > 192.0.2.1 UDP 50000 > 4789, VXLAN VNI 300: 02:00:00:00:7c:02 > ${POD}, IPv4 10.9.0.2 > 10.9.0.1 UDP 7000 > 7001`);

      // Only one reason, in the human table.
      const h = await capture(['--socket', dp.socket, '--count', '2', '--wait', '20000', '--reason', 'vni_unknown'], frames);
      expect(h.code, h.stderr).toBe(0);
      const rows = h.stdout.split('\n').filter((l) => /^│ \d\d:\d\d:\d\d\.\d{3}/.test(l));
      expect(rows.length, h.stdout).toBeGreaterThanOrEqual(2);
      expect(rows.every((l) => l.includes('vni_unknown') && l.includes('uplink')), h.stdout).toBe(true);
      expect(h.stdout).toMatch(/VXLAN VNI 300/);
      expect(h.stdout).toMatch(/^2 frame\(s\) dropped for vni_unknown in [\d.]+ s \(stopped at --count 2\)/m);

      // The counters point at it.
      const st = vfplane(['dataplane', 'stats', '--socket', dp.socket]).stdout;
      expect(st).toMatch(/^drops: .*vni_unknown.* \(which frames: `vfplane dataplane drops \[--reason R\]`\)$/m);
      expect(st).toMatch(/^workers: worker 0 unpinned \d+% of polls busy \(since start; --interval for now\)$/m);
      // With --interval, while frames arrive: each reason's rate, and the workers' over it.
      let done = false;
      const rated = vfplaneAsync(['dataplane', 'stats', '--socket', dp.socket, '--interval', '600']).then((x) => ((done = true), x));
      while (!done) {
        send(frames);
        await new Promise((res) => setTimeout(res, 50));
      }
      const sr = await rated;
      expect(sr.code, sr.stderr).toBe(0);
      expect(sr.stdout).toMatch(/^drops: .*vni_unknown \d+ \([1-9]\d*\/s\)/m);
      expect(sr.stdout).toMatch(/^workers: worker 0 unpinned \d+% of polls busy \(over 600 ms\)$/m);

      // Nothing dropped: said so, after --wait.
      const none = vfplane(['dataplane', 'drops', '--socket', dp.socket, '--wait', '300', '--reason', 'tx_full']);
      expect(none.code, none.stderr).toBe(0);
      expect(none.stdout).toMatch(/^no frame was dropped for tx_full in 0\.\d s/m);

      const bad = vfplane(['dataplane', 'drops', '--socket', dp.socket, '--reason', 'vni_unknwn']);
      expect(bad.code, 'a usage error: the daemon refused the name as invalid').toBe(2);
      expect(bad.stderr).toMatch(/"vni_unknwn" \(did you mean "vni_unknown"\?\) is not a drop reason \(`vfplane dataplane drops --reason`, op drops-arm\); the reasons are .*spoofed/);
      // The capture is off again once the command is done.
      send(frames);
      await new Promise((r) => setTimeout(r, 200));
      expect((await request(dp.socket, { op: 'drops' })).drops).toEqual([]);
    } finally {
      await dp.stop();
    }
  }, 60_000);
});

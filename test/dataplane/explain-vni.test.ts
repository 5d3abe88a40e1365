// explain for a MAC that is a pod of this node on another VNI: "not a local pod" hid the
// usual reason two pods do not reach each other, networks that name different VNIs
// (helper-83). Both directions name the pod and its VNI. And status names the underlay
// VLAN, which an unresolved peer must be on.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { request } from '../../src/dataplane/control.js';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { ifname, inject, Netns, scratchDir, vethIn } from '../helpers/netns.js';
import { arpRequest } from '../helpers/frames.js';
import { describePrivileged } from '../helpers/privileged.js';

describePrivileged('explain across VNIs', { root: true }, () => {
  let n: Netns;
  const up = ifname('h83u'), upp = ifname('h83v'), r1 = ifname('h83a'), r1p = ifname('h83b'), r2 = ifname('h83c'), r2p = ifname('h83d');
  const d = scratchDir('h83x');
  const m1 = '02:83:00:00:01:00', m2 = '02:83:00:00:02:00';

  beforeAll(() => {
    n = Netns.create('h83x');
    vethIn(n, up, upp);
    vethIn(n, r1, r1p);
    vethIn(n, r2, r2p);
  });
  afterAll(() => {
    n?.destroy();
    d.remove();
  });

  it('names the pod on the other VNI, from a pod and from the underlay', async () => {
    const dp = await dataplaneOn(n, up, d.dir, { peers: [{ vtep: '192.0.2.2', mac: '02:83:00:00:00:02' }] });
    try {
      await request(dp.socket, { op: 'attach', representor: r1, vni: 100, mac: m1, netns: n.path });
      await request(dp.socket, { op: 'attach', representor: r2, vni: 200, mac: m2, netns: n.path });
      type X = { verdict: string; steps: string[]; otherVni?: { vni: number; representor: string } };
      const why = new RegExp(`${m2} is a pod on this node \\(representor ${r2}, VNI 200\\), not on VNI 100: pods on different VNIs never reach each other. Check the VNI of each pod's network \\(its vxlan.vni\\)`);
      const fromPod = (await request(dp.socket, { op: 'explain', vni: 100, mac: m2, from: r1 })) as unknown as X;
      expect(fromPod.verdict).toBe('flood');
      expect(fromPod.otherVni).toEqual({ vni: 200, representor: r2 });
      expect(fromPod.steps.join('\n')).toMatch(why);
      expect(fromPod.steps.join('\n')).not.toMatch(/is not a local pod/);
      const fromUplink = (await request(dp.socket, { op: 'explain', vni: 100, mac: m2, from: 'uplink' })) as unknown as X;
      expect(fromUplink.otherVni).toEqual({ vni: 200, representor: r2 });
      expect(fromUplink.steps.join('\n')).toMatch(why);
      // The human form says it too.
      const human = vfplane(['dataplane', 'explain', '--vni', '100', '--mac', m2, '--socket', dp.socket]);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).toMatch(why);
      // On its own VNI it is the local pod, with no such note.
      const own = (await request(dp.socket, { op: 'explain', vni: 200, mac: m2 })) as unknown as X;
      expect(own.verdict).toBe('local');
      expect(own.otherVni).toBeUndefined();
    } finally {
      await dp.stop();
    }
  }, 30_000);

  // A pod with one MAC on two VNIs (two VFs): from the underlay on VNI 100 the verdict was
  // "local" to its VNI-100 representor, while a step said it was on VNI 200, not 100, and
  // never reached.
  it('a pod with one MAC on two VNIs: the other VNI is not named where the MAC is on the asked one', async () => {
    const dir = join(d.dir, 'two');
    mkdirSync(dir, { recursive: true });
    const dp = await dataplaneOn(n, up, dir, { peers: [{ vtep: '192.0.2.2', mac: '02:83:00:00:00:02' }] });
    try {
      await request(dp.socket, { op: 'attach', representor: r1, vni: 100, mac: m1, netns: n.path });
      await request(dp.socket, { op: 'attach', representor: r2, vni: 200, mac: m1, netns: n.path });
      type X = { verdict: string; representor?: string; steps: string[]; otherVni?: unknown };
      for (const from of ['uplink', undefined]) {
        const x = (await request(dp.socket, { op: 'explain', vni: 100, mac: m1, ...(from ? { from } : {}) })) as unknown as X;
        expect(x.verdict, `from ${from ?? 'a pod'}`).toBe('local');
        expect(x.representor).toBe(r1);
        expect(x.otherVni).toBeUndefined();
        expect(x.steps.join('\n'), `from ${from ?? 'a pod'}`).not.toMatch(/on VNI 200|never reach each other/);
      }
      const human = vfplane(['dataplane', 'explain', '--vni', '100', '--mac', m1, '--from', 'uplink', '--socket', dp.socket]);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).not.toMatch(/never reach each other/);
      // Asked on a third VNI: both of its VNIs named (helper-93: the first only).
      const third = (await request(dp.socket, { op: 'explain', vni: 300, mac: m1 })) as unknown as X;
      expect(third.steps.join('\n')).toContain(`(representor ${r1}, VNI 100; representor ${r2}, VNI 200), not on VNI 300`);
    } finally {
      await dp.stop();
    }
  }, 30_000);

  // A tagged underlay was invisible in status: a peer that never answers because it is
  // off that VLAN looked like any other (helper-83).
  it('status shows the underlay VLAN, and an unresolved peer\'s warning says the peer must be on it', async () => {
    const dp = await dataplaneOn(n, up, d.dir, { uplink: { ifname: up, netns: n.path, vtep: '192.0.2.1', vlan: 7 }, peers: [{ vtep: '192.0.2.2' }] });
    try {
      const st = (await request(dp.socket, { op: 'status' })) as { uplink: { vlan: number | null } };
      expect(st.uplink.vlan).toBe(7);
      const human = vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout;
      expect(human).toMatch(/^node edge: .*, VTEP 192\.0\.2\.1 on underlay VLAN 7 \(VXLAN on UDP 4789\), epoch /m);
      expect(human).toMatch(/^warning: peer 192\.0\.2\.2 has not answered \d+ ARP\/ND request\(s\): .*Check that the peer is up on the underlay with that address; this node tags its underlay frames with VLAN 7 \(uplink\.vlan\): the peer must be on that VLAN;/m);
    } finally {
      await dp.stop();
    }
    // Untagged: null, and not said.
    const dp2 = await dataplaneOn(n, up, d.dir, { peers: [{ vtep: '192.0.2.2' }] });
    try {
      expect(((await request(dp2.socket, { op: 'status' })) as { uplink: { vlan: number | null } }).uplink.vlan).toBeNull();
      expect(vfplane(['dataplane', 'status', '--socket', dp2.socket]).stdout).not.toMatch(/VLAN/);
    } finally {
      await dp2.stop();
    }
  }, 30_000);
  // helper-109: a remote pod known on another VNI (two pods on different nodes whose
  // networks name different VNIs) was "not a local pod, and no … entry names it".
  it('a remote MAC known on another VNI (static or learned) is named with its VNI and VTEP', async () => {
    const dir = join(d.dir, 'remote');
    mkdirSync(dir, { recursive: true });
    const dp = await dataplaneOn(n, up, dir, { peers: [{ vtep: '192.0.2.2', mac: '02:83:00:00:00:02' }] });
    try {
      await request(dp.socket, { op: 'attach', representor: r2, vni: 200, mac: m2, netns: n.path });
      await request(dp.socket, { op: 'fdb-add', vni: 100, mac: '02:83:00:00:09:00', vtep: '192.0.2.2' });
      type X = { verdict: string; steps: string[]; otherVni?: unknown };
      const x = (await request(dp.socket, { op: 'explain', vni: 200, mac: '02:83:00:00:09:00', from: r2 })) as unknown as X;
      expect(x.verdict).toBe('flood');
      expect(x.otherVni).toEqual({ vni: 100, vtep: '192.0.2.2' });
      expect(x.steps.join('\n')).toContain('02:83:00:00:09:00 is not a local pod, and no static or learned FDB entry names it on VNI 200; a static FDB entry puts it on VNI 100 behind VTEP 192.0.2.2, not on VNI 200: pods on different VNIs never reach each other. Check the VNI of each pod\'s network (its vxlan.vni)');
      // Unknown everywhere: as before.
      const y = (await request(dp.socket, { op: 'explain', vni: 200, mac: '02:83:00:00:09:01', from: r2 })) as unknown as X;
      expect(y.otherVni).toBeUndefined();
      expect(y.steps.join('\n')).toContain('is not a local pod, and no static or learned FDB entry names it on VNI 200: unknown unicast is flooded');
      // An empty flood list on the pod's VNI: its ARP goes nowhere, and status says so.
      await request(dp.socket, { op: 'flood-set', vni: 200, vteps: [] });
      inject(n, r2p, [arpRequest({ srcMac: m2, srcIp: '10.0.0.2', targetIp: '10.0.0.9' })]);
      let out = '';
      for (let i = 0; i < 20 && !/no_destination/.test(out); i++) {
        await new Promise((r) => setTimeout(r, 100));
        out = vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout;
      }
      expect(out).toMatch(/^warning: VNI 200 has an empty flood list \(`flood set --none`, or the config's floods\) and pods here: .*`vfplane dataplane flood set --vni 200 --all-peers` floods to every peer again/m);
    } finally {
      await dp.stop();
    }
  }, 30_000);
});

// The MTU advice a data plane gives when a representor is attached must be the engine's
// own rule: a pod's IP packet of its MTU leaves as an outer IP packet 50 bytes larger
// (70 over IPv6), and the engine drops larger ones as mtu_exceeded. A real daemon on a
// veth uplink of MTU 1500, representors at the limit and one byte over it.
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { ifname, inject, Netns, scratchDir, vethIn } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';
import { request } from '../../src/dataplane/control.js';

describePrivileged('MTU advice at attach', { netns: true }, () => {
  let ns: Netns;
  const up = ifname('mu'), upPeer = ifname('mp');
  const fits = ifname('mf'), over = ifname('mo'), big = ifname('mb'), big2 = ifname('mc');
  const tmp = scratchDir('mtu');

  /** An AF_XDP data plane on a new uplink veth `xup` in `ns` (at `uplinkMtu`) with a
   *  representor `repTag` whose pod end is in `ns` (both ends at `repMtu`, or the pod
   *  end alone at `podEndMtu`): `body` runs with it, then it is all taken down. */
  async function withAfxdp(xup: string, repTag: string, dirTag: string, o: { uplinkMtu?: number; repMtu?: number; podEndMtu?: number },
    body: (dp: Awaited<ReturnType<typeof dataplaneOn>>, rep: string) => Promise<void>): Promise<void> {
    const xupPeer = `${xup}p`, rep = ifname(repTag);
    vethIn(ns, xup, xupPeer);
    if (o.uplinkMtu) for (const l of [xup, xupPeer]) ns.ip(['link', 'set', l, 'mtu', String(o.uplinkMtu)]);
    const m = o.repMtu ? ['mtu', String(o.repMtu)] : [];
    spawnSync('ip', ['link', 'add', rep, ...m, 'type', 'veth', 'peer', 'name', `${rep}p`, ...m, 'netns', ns.name]);
    if (o.podEndMtu) ns.ip(['link', 'set', `${rep}p`, 'mtu', String(o.podEndMtu)]);
    ns.ip(['link', 'set', `${rep}p`, 'up']);
    const dir = scratchDir(dirTag);
    const dp = await dataplaneOn(ns, xup, dir.dir, { backend: 'afxdp', afxdp: { mode: 'skb', copy: 'copy', frames: 1024 }, peers: [{ vtep: '192.0.2.2', mac: '02:00:00:00:0e:02' }] });
    try {
      await body(dp, rep);
    } finally {
      await dp.stop();
      spawnSync('ip', ['link', 'del', rep]);
      dir.remove();
    }
  }

  beforeAll(() => {
    ns = Netns.create('mtu');
    vethIn(ns, up, upPeer); // MTU 1500
    for (const [r, mtu] of [[fits, 1450], [over, 1451], [big, 1500], [big2, 1500]] as const) {
      spawnSync('ip', ['link', 'add', r, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', `${r}p`, 'mtu', String(mtu), 'netns', ns.name]);
      ns.ip(['link', 'set', `${r}p`, 'up']);
    }
  });
  afterAll(() => {
    for (const r of [fits, over, big, big2]) spawnSync('ip', ['link', 'del', r]);
    ns?.destroy();
    tmp.remove();
  });

  it('warns for a representor whose MTU needs more than the underlay has, with the limit the engine applies (uplink − 50), and not for one at it; the engine sends the one and drops the other', async () => {
    // A peer to flood VNI 100 to, so that a pod's broadcast is encapsulated.
    const dp = await dataplaneOn(ns, up, tmp.dir, { peers: [{ vtep: '192.0.2.2', mac: '02:00:00:00:0e:02' }], vnis: [{ vni: 100, flood: ['192.0.2.2'] }] });
    try {
      const fitsReply = await request(dp.socket, { op: 'attach', representor: fits, vni: 100, mac: '02:00:00:00:0d:01' });
      const overReply = await request(dp.socket, { op: 'attach', representor: over, vni: 100, mac: '02:00:00:00:0d:02' });
      // The reply carries the advice too (the CLI prints a note as a warning), not only the log.
      expect(fitsReply.note).toBeUndefined();
      expect(overReply.note).toBe(`${over} has MTU 1451, which needs an underlay MTU of 1501; the uplink has 1500, so the pod's larger frames are dropped (mtu_exceeded) and answered with ICMP too big, which TCP adapts to at the cost of a round trip a destination (IPv4 packets without DF are lost; IPv6 packets are never fragmented, so each is answered). Give the pod an MTU ≤ 1450 (CNI "mtu") or raise the underlay MTU`);
      await new Promise((r) => setTimeout(r, 100));
      const log = dp.log();
      expect(log).not.toContain(`${fits} has MTU`);
      expect(log).toContain(`${over} has MTU 1451, which needs an underlay MTU of 1501; the uplink has 1500, so the pod's larger frames are dropped (mtu_exceeded) and answered with ICMP too big, which TCP adapts to at the cost of a round trip a destination (IPv4 packets without DF are lost; IPv6 packets are never fragmented, so each is answered). Give the pod an MTU ≤ 1450 (CNI "mtu") or raise the underlay MTU`);
      // A representor keeps its own MTU (1500 on a NIC) whatever the pod's: the pod's MTU,
      // as vfplane-cni sends it, is the one checked.
      await request(dp.socket, { op: 'attach', representor: big, vni: 100, mac: '02:00:00:00:0d:03', mtu: 1450, pci: '0000:5e:02.3' });
      await request(dp.socket, { op: 'attach', representor: big2, vni: 100, mac: '02:00:00:00:0d:04', mtu: 1451, pci: '0000:5e:02.4' });
      await new Promise((r) => setTimeout(r, 100));
      expect(dp.log().split('\n').filter((l) => l.includes(big) && l.includes('MTU'))).toEqual([]);
      expect(dp.log()).toContain(`the pod interface of ${big2} (VF 0000:5e:02.4) has MTU 1451, which needs an underlay MTU of 1501`);
      // And the engine agrees: each pod sends one broadcast IP packet of its MTU.
      const frame = (src: string, ipLen: number) => Uint8Array.from([...Buffer.from(`ffffffffffff${src.replaceAll(':', '')}0800`, 'hex'), 0x45, ...new Array(ipLen - 1).fill(0)]);
      inject(ns, `${fits}p`, [frame('02:00:00:00:0d:01', 1450)]);
      inject(ns, `${over}p`, [frame('02:00:00:00:0d:02', 1451)]);
      type Stats = { counters: { vnis: { vni: number; encapPkts: number }[]; drops: Record<string, number> } };
      let st: Stats | null = null;
      for (let i = 0; i < 50; i++) {
        st = (await request(dp.socket, { op: 'stats' })) as unknown as Stats;
        if (st.counters.drops?.mtu_exceeded) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(st!.counters.drops?.mtu_exceeded, JSON.stringify(st)).toBe(1);
      expect(st!.counters.vnis.find((v) => v.vni === 100)?.encapPkts, JSON.stringify(st)).toBe(1);
      // Status says it while it holds, not only the attach's log line (a walkthrough's
      // pod lost its DF-less packets with status and doctor saying ok): the two over it,
      // with what was dropped; not the two at the limit.
      const human = vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout;
      const warn = human.split('\n').filter((l) => l.includes('the overlay carries ('));
      expect(warn).toEqual([`warning: 2 pod interfaces have MTUs over the 1450 bytes the overlay carries (${over} MTU 1451, ${big2} MTU 1451): 1 frame(s) dropped so far (mtu_exceeded, all pods), 0 answered with ICMP too big. Their packets over 1450 bytes are dropped; IPv4 ones with DF set, and every IPv6 one, are answered with ICMP too big (TCP adapts), IPv4 ones without DF (most UDP, \`ping -M dont\`) are lost without a word. Give the pods an MTU ≤ 1450 (CNI "mtu") or raise the underlay's MTU`]);
      const sj = (await request(dp.socket, { op: 'status' })) as unknown as { attachments: { representor: string; podMtu?: number }[] };
      expect(Object.fromEntries(sj.attachments.map((a) => [a.representor, a.podMtu]))).toEqual({ [fits]: 1450, [over]: 1451, [big]: 1450, [big2]: 1451 });
      // Pods come and go on the same VF with the same config: the advice is given once,
      // and each later attach notes the MTU in its own line.
      for (let i = 0; i < 3; i++) {
        await request(dp.socket, { op: 'detach', representor: big2 });
        await request(dp.socket, { op: 'attach', representor: big2, vni: 100, mac: '02:00:00:00:0d:04', mtu: 1451, pci: '0000:5e:02.4' });
      }
      await new Promise((r) => setTimeout(r, 100));
      expect(dp.log().split('\n').filter((l) => l.includes(`${big2} (VF 0000:5e:02.4) has MTU 1451`))).toHaveLength(1);
      expect(dp.log().split('\n').filter((l) => l.includes(`attached ${big2} (VF 0000:5e:02.4)`) && l.includes('its MTU 1451 is over the 1450 the underlay carries'))).toHaveLength(4);
      // A detached port's counters (its slot's, until a port takes it) are not listed as
      // a nameless slot: stats and metrics show the ports the data plane has.
      await request(dp.socket, { op: 'detach', representor: over });
      const ports = ((await request(dp.socket, { op: 'stats' })) as unknown as { counters: { ports: { name: string }[] } }).counters.ports.map((p) => p.name);
      expect(ports).toContain(fits);
      expect(ports.filter((n) => n === over || /^slot\d+$/.test(n))).toEqual([]);
    } finally {
      await dp.stop();
    }
  });

  // The uplink's MTU was read once at the start: lowered under a running data plane, the
  // pods' larger frames were lost at the uplink unsaid; raised, pods were still told the
  // old (helper-69). It is followed now, up to what the port carries.
  it('follows the uplink netdev\'s MTU changed under it: status, the engine\'s check and the advice use the new one; a raise past the AF_PACKET port\'s slots waits for a restart', async () => {
    const fup = ifname('fu'), fupPeer = ifname('fp'), rep = ifname('fr'), auto = ifname('fa');
    vethIn(ns, fup, fupPeer);
    spawnSync('ip', ['link', 'add', rep, 'mtu', '1500', 'type', 'veth', 'peer', 'name', `${rep}p`, 'mtu', '1500', 'netns', ns.name]);
    ns.ip(['link', 'set', `${rep}p`, 'up']);
    const dir = scratchDir('mtu-follow');
    const dp = await dataplaneOn(ns, fup, dir.dir, { peers: [{ vtep: '192.0.2.2', mac: '02:00:00:00:0e:02' }] });
    const status = async () => (await request(dp.socket, { op: 'status' })) as unknown as { uplink: { mtu?: number; overlayMtu?: number } };
    const until = async (want: number) => {
      for (let i = 0; i < 100 && (await status()).uplink.mtu !== want; i++) await new Promise((r) => setTimeout(r, 100));
      return (await status()).uplink;
    };
    try {
      expect((await status()).uplink).toMatchObject({ mtu: 1500, overlayMtu: 1450 });
      ns.ip(['link', 'set', fup, 'mtu', '1400']);
      expect(await until(1400)).toMatchObject({ mtu: 1400, overlayMtu: 1350 });
      expect(dp.log()).toContain(`uplink ${fup}: MTU 1400 now; the underlay MTU the overlay counts on goes from 1500 to 1400, so it carries pods' packets of up to 1350 bytes`);
      const reply = await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: '02:00:00:00:0d:0b', mtu: 1400, pci: '0000:5e:03.0' }) as { note?: string; overlayMtu?: number };
      expect(reply.overlayMtu).toBe(1350);
      expect(reply.note).toContain('has MTU 1400, which needs an underlay MTU of 1450; the uplink has 1400');
      // The engine checks against it: a pod's packet of 1351 bytes is dropped (and answered).
      inject(ns, `${rep}p`, [Uint8Array.from([...Buffer.from('ffffffffffff020000000d0b0800', 'hex'), 0x45, ...new Array(1350).fill(0)])]);
      let drops: Record<string, number> = {};
      for (let i = 0; i < 50 && !drops.mtu_exceeded; i++) {
        await new Promise((r) => setTimeout(r, 20));
        drops = ((await request(dp.socket, { op: 'stats' })) as unknown as { counters: { drops: Record<string, number> } }).counters.drops ?? {};
      }
      expect(drops.mtu_exceeded).toBe(1);
      // Back up, and past the 1500 its AF_PACKET port opened with.
      ns.ip(['link', 'set', fup, 'mtu', '2000']);
      expect(await until(1500)).toMatchObject({ mtu: 1500, overlayMtu: 1450 });
      for (let i = 0; i < 50 && !dp.log().includes('restart the data plane to carry 2000'); i++) await new Promise((r) => setTimeout(r, 100));
      expect(dp.log()).toContain('its AF_PACKET port was opened for 1500: restart the data plane to carry 2000');
      expect(vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout).toMatch(/^MTU: underlay 1500, so pods' packets of up to 1450 bytes cross the overlay$/m);
      // A pod on mtuAuto (vfplane-cni without "mtu") takes the overlay's MTU when its own
      // is over it: none over now; the underlay lowered under both pods, both are, and
      // status says so (helper-85: the mtuAuto pod lost its DF-less packets unsaid).
      spawnSync('ip', ['link', 'add', auto, 'mtu', '1500', 'type', 'veth', 'peer', 'name', `${auto}p`, 'mtu', '1500', 'netns', ns.name]);
      ns.ip(['link', 'set', `${auto}p`, 'up']);
      await request(dp.socket, { op: 'attach', representor: auto, vni: 100, mac: '02:00:00:00:0d:0c', mtu: 1500, mtuAuto: true, pci: '0000:5e:03.1' });
      const overWarn = () => vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout.split('\n').filter((l) => l.includes('the overlay carries ('));
      expect(overWarn()).toEqual([]);
      ns.ip(['link', 'set', fup, 'mtu', '1400']);
      expect(await until(1400)).toMatchObject({ mtu: 1400, overlayMtu: 1350 });
      expect(overWarn()).toEqual([expect.stringContaining(`warning: 2 pod interfaces have MTUs over the 1350 bytes the overlay carries (${rep} MTU 1400, ${auto} MTU 1450)`)]);
    } finally {
      await dp.stop();
      spawnSync('ip', ['link', 'del', rep]);
      spawnSync('ip', ['link', 'del', auto]);
      dir.remove();
    }
  });

  // An AF_XDP uplink on a 9000 underlay carries one UMEM frame (4096 bytes less its
  // headroom): pods were told 8950 and lost everything between (helper-69).
  it('takes the underlay MTU an AF_XDP uplink carries, not its netdev\'s, and says so', async () => {
    const xup = ifname('xu');
    await withAfxdp(xup, 'xr', 'mtu-afxdp', { uplinkMtu: 9000, repMtu: 9000 }, async (dp, rep) => {
      expect(dp.log()).toMatch(new RegExp(`uplink ${xup}: its afxdp port carries frames of at most (\\d+) bytes, so the underlay MTU taken is (\\d+), not the netdev's 9000`));
      const [, frame, carried] = /carries frames of at most (\d+) bytes, so the underlay MTU taken is (\d+)/.exec(dp.log())!;
      expect(Number(carried)).toBe(Number(frame) - 14);
      const reply = await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: '02:00:00:00:0d:0a', mtu: 8950, pci: '0000:5e:02.7' }) as { note?: string; overlayMtu?: number };
      expect(reply.overlayMtu).toBe(Number(carried) - 50);
      expect(reply.note).toContain(`has MTU 8950, which needs an underlay MTU of 9000; the uplink has ${carried}`);
      // Its representor's port (AF_XDP too) carries no more than the uplink's: the pod's
      // larger packets are lost there, unanswered; said, with the fix (helper-70).
      expect(reply.note).toContain(`the pod interface of ${rep} has MTU 8950, but its afxdp port carries frames of at most ${frame} bytes: the pod's packets over ${Number(frame) - 14} bytes are lost at the port (rx_oversize)`);
    });
  });

  // An AF_XDP port carries one UMEM frame whatever the MTU, and native XDP on a veth
  // takes no MTU over 3506: raising a representor to a jumbo pod's 8950 gained nothing and
  // forced SKB mode (helper-70). The raise stops at 3506.
  it('raises an AF_XDP representor no further than native XDP on a veth takes', async () => {
    await withAfxdp(ifname('zu'), 'zr', 'mtu-afxdp-raise', { podEndMtu: 9000 }, async (dp, rep) => {
      const mtuOf = () => (JSON.parse(execFileSync('ip', ['-j', 'link', 'show', rep], { encoding: 'utf8' })) as { mtu: number }[])[0]!.mtu;
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: '02:00:00:00:0d:0b', mtu: 8950, pci: '0000:5e:02.6' });
      expect(mtuOf()).toBe(3506);
      expect(dp.log()).toContain(`${rep}: MTU 1500 raised to 3506 (its pod interface has 8950; an AF_XDP port carries no more) (given back at detach)`);
      await request(dp.socket, { op: 'detach', representor: rep });
      expect(mtuOf()).toBe(1500);
    });
  });

  // A representor detached a moment ago still has its AF_XDP socket closing: the next
  // attach met a busy queue (63 of 200 immediate re-attaches in SKB mode, helper-70).
  it('attaches an AF_XDP representor again right after its detach, every time', async () => {
    // MTU 9000 on the representor pair: native XDP refuses it, so SKB mode, the slower close.
    await withAfxdp(ifname('yu'), 'yr', 'reattach', { repMtu: 9000 }, async (dp, rep) => {
      for (let i = 0; i < 40; i++) {
        await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: '02:00:00:00:0d:0c' });
        await request(dp.socket, { op: 'detach', representor: rep });
      }
    });
  }, 60_000);

  // A pod given a jumbo MTU (CNI "mtu") behind a representor left at 1500 lost every
  // frame over 1500 at the representor, before the data plane, without a word (helper-69).
  it('raises a representor below its pod interface\'s MTU to it, so the pod\'s large frames reach the engine, and gives the MTU back at detach', async () => {
    const jup = ifname('ju'), jupPeer = ifname('jp'), rep = ifname('jr');
    vethIn(ns, jup, jupPeer);
    ns.ip(['link', 'set', jup, 'mtu', '9000']);
    ns.ip(['link', 'set', jupPeer, 'mtu', '9000']);
    spawnSync('ip', ['link', 'add', rep, 'mtu', '1500', 'type', 'veth', 'peer', 'name', `${rep}p`, 'mtu', '9000', 'netns', ns.name]);
    ns.ip(['link', 'set', `${rep}p`, 'up']);
    const repMtu = () => (JSON.parse(spawnSync('ip', ['-j', 'link', 'show', rep], { encoding: 'utf8' }).stdout) as { mtu: number }[])[0]!.mtu;
    const dir = scratchDir('mtu-jumbo');
    const dp = await dataplaneOn(ns, jup, dir.dir, { peers: [{ vtep: '192.0.2.2', mac: '02:00:00:00:0e:02' }], vnis: [{ vni: 100, flood: ['192.0.2.2'] }] });
    try {
      const reply = await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: '02:00:00:00:0d:09', mtu: 8950, pci: '0000:5e:02.6' });
      expect(reply.note).toBeUndefined(); // 8950 + 50 fits the 9000 underlay
      expect(repMtu()).toBe(8950);
      expect(dp.log()).toContain(`${rep}: MTU 1500 raised to its pod interface's 8950 (given back at detach)`);
      const held = ((await request(dp.socket, { op: 'status' })) as unknown as { held: { netdev: string; givesBack: string[] }[] }).held.find((h) => h.netdev === rep);
      expect(held?.givesBack).toContain('MTU 1500');
      // A broadcast IP packet of the pod's MTU goes out encapsulated.
      inject(ns, `${rep}p`, [Uint8Array.from([...Buffer.from('ffffffffffff020000000d090800', 'hex'), 0x45, ...new Array(8949).fill(0)])]);
      type Stats = { counters: { vnis: { vni: number; encapPkts: number }[]; drops: Record<string, number> } };
      let st: Stats | null = null;
      for (let i = 0; i < 50; i++) {
        st = (await request(dp.socket, { op: 'stats' })) as unknown as Stats;
        if (st.counters.vnis.find((v) => v.vni === 100)?.encapPkts) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(st!.counters.vnis.find((v) => v.vni === 100)?.encapPkts, JSON.stringify(st)).toBe(1);
      await request(dp.socket, { op: 'detach', representor: rep });
      expect(repMtu()).toBe(1500);
    } finally {
      await dp.stop();
      spawnSync('ip', ['link', 'del', rep]);
      dir.remove();
    }
  });
});

// A frame the netdev behind an AF_PACKET port always refuses (here: over the MTU of the
// veth's peer, as a pod's VF under a representor) is dropped alone (helper-87). The
// kernel hands a refused frame back and tries it again at every send: it held the ring,
// and every frame after it, for good, so one oversized frame cut the pod off.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { request } from '../../src/dataplane/control.js';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { capture } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';
import { fromVtep, POD, uplinkNetns } from '../helpers/underlay.js';
import { inject } from '../helpers/netns.js';
import { udp4 } from '../helpers/frames.js';

// AF_XDP (copy mode) is told with EBUSY, the frame consumed; it counted it as
// tx_link_down, and status said nothing of the pod's side: counted as AF_PACKET counts
// it now, tx_device_drops, and warned of the same way.
describePrivileged('a port whose netdev refuses a frame', { netns: true }, () => {
  const e = uplinkNetns('h87r');
  const { up, rep, repp, d, send } = e;

  for (const backend of ['afpacket', 'afxdp'] as const) it(`${backend}: drops that frame alone and keeps sending the rest: one over the pod's MTU does not cut the pod off`, async () => {
    // An underlay that carries the 1492-byte inner frame below in VXLAN.
    // (3000: a veth takes a native XDP program up to about 3.5 KB.)
    for (const dev of [up, e.upp]) e.n.ip(['link', 'set', dev, 'mtu', '3000']);
    e.n.ip(['link', 'set', repp, 'mtu', '1500']);
    mkdirSync(join(d.dir, backend), { recursive: true });
    const dp = await dataplaneOn(e.n, up, join(d.dir, backend), { backend, peers: [{ vtep: '192.0.2.2', mac: '02:bb:00:00:00:02' }] });
    const refused = async () => {
      const ports = ((await request(dp.socket, { op: 'status' })) as unknown as { ports: { name: string; drops?: Record<string, number> }[] }).ports;
      return ports.find((x) => x.name === rep)?.drops?.tx_device_drops ?? 0;
    };
    try {
      const a = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', rep, '--vni', '100', '--mac', POD, '--netns', e.n.path]);
      expect(a.code, a.stderr).toBe(0);
      // The pod's end takes 1400-byte packets; its representor (the port) 1500.
      e.n.ip(['link', 'set', repp, 'mtu', '1400']);
      const cap = capture(e.n, repp, { count: 3, timeoutS: 2, incoming: true });
      await cap.ready;
      // 1450 bytes of UDP payload: a 1492-byte inner frame, over 1400 + 14.
      send([fromVtep('192.0.2.2', '02:00:00:00:87:01', POD, 100, 1450)]);
      await new Promise((r) => setTimeout(r, 300));
      send([fromVtep('192.0.2.2', '02:00:00:00:87:01', POD, 100, 100), fromVtep('192.0.2.2', '02:00:00:00:87:01', POD, 100, 200)]);
      const got = await cap.done;
      expect(got.map((f) => f.length)).toEqual([14 + 20 + 8 + 100, 14 + 20 + 8 + 200]);
      // Counted once, not once a kick.
      await new Promise((r) => setTimeout(r, 500));
      expect(await refused()).toBe(1);
      // And said, naming the pod's side and the way out (helper-88).
      expect(vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout).toMatch(new RegExp(`^warning: the interface behind ${rep} refused 1 frame\\(s\\) sent to it since it was attached, the last \\d+ s ago \\(tx_device_drops\\): frames over its MTU came for it, from a pod of VNI 100 with a larger MTU or a host behind a peer, or it is down\\. Give the pods of VNI 100 one MTU`, 'm'));
      // And the way stays open.
      const again = capture(e.n, repp, { count: 1, timeoutS: 5, incoming: true });
      await again.ready;
      send([fromVtep('192.0.2.2', '02:00:00:00:87:01', POD, 100, 300)]);
      expect((await again.done).map((f) => f.length)).toEqual([14 + 20 + 8 + 300]);
      expect(await refused()).toBe(1);
    } finally {
      await dp.stop();
    }
  }, 30_000);
  // helper-109: a pod whose MTU was raised after the attach (its interface and the
  // representor) lost its larger frames at the port, whose ring slots were sized for the
  // MTU at the attach: said only by stats's port drops (rx_truncated), while status said
  // the overlay carries 8950 bytes.
  it('afpacket: frames from a pod whose MTU was raised after the attach: status names the loss, the MTU the port was sized for and the way back', async () => {
    for (const dev of [up, e.upp]) e.n.ip(['link', 'set', dev, 'mtu', '9000']);
    for (const dev of [rep, repp]) e.n.ip(['link', 'set', dev, 'mtu', '1500']);
    mkdirSync(join(d.dir, 'trunc'), { recursive: true });
    const dp = await dataplaneOn(e.n, up, join(d.dir, 'trunc'), { peers: [{ vtep: '192.0.2.2', mac: '02:bb:00:00:00:02' }] });
    try {
      const a = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', rep, '--vni', '100', '--mac', POD, '--netns', e.n.path]);
      expect(a.code, a.stderr).toBe(0);
      for (const dev of [rep, repp]) e.n.ip(['link', 'set', dev, 'mtu', '4000']);
      inject(e.n, repp, [udp4({ dstMac: '02:00:00:00:87:01', srcMac: POD, src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, payload: new Uint8Array(3000) })]);
      let out = '';
      for (let i = 0; i < 20 && !/rx_truncated/.test(out); i++) {
        await new Promise((r) => setTimeout(r, 100));
        out = vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout;
      }
      expect(out).toMatch(new RegExp(`^warning: 1 frame\\(s\\) from the pod behind ${rep} were longer than its port takes and were lost \\(rx_truncated\\), the last \\d+ s ago: the port's buffers were sized when it was attached, for MTU 1500, and the pod's MTU was raised since\\. Set the pod's MTU back to 1500 \\(in the pod: \`ip link set IFACE mtu 1500\`; and \`ip link set ${rep} mtu 1500\`\\), or re-create the pod`, 'm'));
    } finally {
      await dp.stop();
    }
  }, 30_000);
});

// What `vfplane dataplane status` and doctor warn of is about now: the learned table that
// filled once and has room again (its entries aged out) warned for the daemon's whole
// life, telling the operator to restart it (helper-68).
import { describe, expect, it } from 'vitest';
import { statusWarnings, type StatusReply } from '../../src/cli/dataplane-warnings.js';

const reply = (learning: StatusReply['learning']): StatusReply => ({
  uplink: { name: 'up0', vtep: '192.0.2.1' }, peers: [], attachments: [], learning,
} as unknown as StatusReply);

describe('status warnings about the learned table', () => {
  it('warn while the table turned MACs away lately, and not ten minutes after', () => {
    const lr = { on: true, capacity: 1024, entries: 3, full: 1872, perVni: 8, limited: 40 };
    const now = statusWarnings(reply({ ...lr, fullSecondsAgo: 4, limitedSecondsAgo: 2 })).map((w) => w.text);
    expect(now).toHaveLength(2);
    expect(now[0]).toMatch(/^the learned FDB is full \(1024 entries a worker\): 1872 frames from a MAC it had no room for since the start, the last 4 s ago;/);
    expect(now[1]).toMatch(/^a VNI reached its cap of learned MACs \(learnPerVni: 8\): 40 frames .*, the last 2 s ago;/);
    expect(statusWarnings(reply({ ...lr, fullSecondsAgo: 601, limitedSecondsAgo: 900 }))).toEqual([]);
    expect(statusWarnings(reply({ ...lr, full: 0, limited: 0 }))).toEqual([]);
  });
});

describe('status warnings about the underlay', () => {
  it('IPv6 frames with a zero UDP checksum refused while verifying: names both settings, while recent', () => {
    const r = (secondsAgo: number) => ({ ...reply(undefined), udpZeroChecksum: { frames: 12, secondsAgo } });
    const w = statusWarnings(r(3));
    expect(w).toHaveLength(1);
    expect(w[0]).toMatchObject({ about: 'peers' });
    expect(w[0]!.text).toMatch(/^12 IPv6 VXLAN frame\(s\) with UDP checksum 0 were dropped \(udp_zero_checksum\) since the start, the last 3 s ago: this node verifies outer UDP checksums \(tunnel\.verifyUdpCsum\) and a peer sends none \(a kernel vxlan device made with udp6zerocsumtx\)\. Turn one off/);
    expect(statusWarnings(r(120)).map((x) => x.about)).toEqual(['peers']);
    expect(statusWarnings(r(121))).toEqual([]); // two minutes after the last: fixed (helper-85)
  });
});

describe('status warnings about the overlay\'s MTU', () => {
  // helper-87: an overlay under 1280 bytes took IPv6 off new pods without a word.
  it('an overlay under IPv6\'s 1280: pods get no IPv6, and the underlay MTU that would do', () => {
    const r = (mtu: number, overlayMtu: number) => ({ ...reply(undefined), uplink: { name: 'up0', vtep: '2001:db8::1', mtu, overlayMtu } } as StatusReply);
    const w = statusWarnings(r(1330, 1260));
    expect(w).toEqual([{ about: 'uplink', text: 'the overlay carries packets of up to 1260 bytes, under IPv6\'s minimum link MTU of 1280 (RFC 8200): pods on it get no IPv6 (vfplane-cni refuses an IPv6 address on an interface under 1280), and IPv6 packets of 1261–1280 bytes are dropped without an ICMP packet too big. Raise the underlay\'s MTU to 1350 or more' }]);
    expect(statusWarnings(r(1350, 1280))).toEqual([]);
  });
});

describe('status warnings about a dstPort that differs between nodes', () => {
  const withPeer = (peer: Record<string, unknown>) => ({ ...reply(undefined), dstPort: 4789, peers: [{ vtep: '192.0.2.9', ...peer }] } as unknown as StatusReply);
  it('a peer sending to another port: names the peer and both ports', () => {
    const w = statusWarnings(withPeer({ wrongPort: { port: 8472, frames: 5, secondsAgo: 2 }, portUnreachable: { frames: 3, secondsAgo: 1 } }));
    expect(w.map((x) => x.text)).toEqual([expect.stringMatching(/^peer 192\.0\.2\.9 sends VXLAN to UDP 8472; this node listens on 4789 \(dstPort\): give every node the same dstPort \(Linux's vxlan device uses 8472 when created without dstport\)\. 5 frame\(s\) from it dropped \(not_vxlan_port\), the last 2 s ago$/)]);
  });
  it('a peer answering ours with port unreachable only: nothing listens on our port there', () => {
    const w = statusWarnings(withPeer({ portUnreachable: { frames: 3, secondsAgo: 1 } }));
    expect(w.map((x) => x.text)).toEqual([expect.stringMatching(/^peer 192\.0\.2\.9 has nothing listening on UDP 4789: its host answered this node's VXLAN with 3 ICMP port unreachable, the last 1 s ago/)]);
  });
  it('not two minutes after', () => {
    expect(statusWarnings(withPeer({ wrongPort: { port: 8472, frames: 5, secondsAgo: 121 }, portUnreachable: { frames: 3, secondsAgo: 121 } }))).toEqual([]);
  });
  // A peer's vxlan device restarted for a second answered a few frames with port
  // unreachable, and status told the operator to fix dstPort for ten minutes while the
  // overlay worked (helper-85): once its VXLAN is decapsulated again, each is over.
  it('not once the peer\'s VXLAN is decapsulated again after the last of them', () => {
    const faults = { wrongPort: { port: 8472, frames: 5, secondsAgo: 30 }, portUnreachable: { frames: 3, secondsAgo: 11 }, sentElsewhere: { to: '192.0.2.11', frames: 2, secondsAgo: 20 } };
    expect(statusWarnings(withPeer({ ...faults, lastFrameSecondsAgo: 40 })).map((x) => x.text.slice(0, 40))).toEqual([
      'peer 192.0.2.9 sends VXLAN to UDP 8472; ', 'peer 192.0.2.9 sends VXLAN to 192.0.2.11']);
    expect(statusWarnings(withPeer({ ...faults, lastFrameSecondsAgo: 25 })).map((x) => x.text.slice(0, 40))).toEqual([
      'peer 192.0.2.9 has nothing listening on ', 'peer 192.0.2.9 sends VXLAN to 192.0.2.11']);
    expect(statusWarnings(withPeer({ ...faults, lastFrameSecondsAgo: 2 }))).toEqual([]);
  });
});

describe('status warnings made of dropped frames', () => {
  it('spoofed and static_elsewhere stand two minutes after the last drop, not ten', () => {
    const r = (secondsAgo: number) => ({ ...reply(undefined), spoofed: { frames: 4, secondsAgo }, staticElsewhere: { frames: 2, secondsAgo } } as unknown as StatusReply);
    expect(statusWarnings(r(119)).map((x) => x.about).sort()).toEqual(['attachments', 'learning']);
    expect(statusWarnings(r(121))).toEqual([]);
  });
});

// helper-109: a representor set down (or whose pod side is down) cut the pod off while
// status's table said "ok" and nothing warned.
describe('status warnings about a representor that is down', () => {
  it('down: the command that brings it up; no carrier: the pod\'s side; a gone pod: only the orphan warning', () => {
    const att = (representorState: string, more: Record<string, unknown> = {}) => ({ ...reply(undefined), attachments: [{ representor: 'ens1f0r3', pci: '0000:5e:02.3', vni: 100, mac: '02:00:00:00:00:03', owner: { containerId: 'c1', podNamespace: 'default', podName: 'web' }, representorState, ...more }] } as StatusReply);
    expect(statusWarnings(att('down'))).toEqual([{ about: 'attachments', text: 'representor ens1f0r3 (VF 0000:5e:02.3, pod default/web) is down (set down since it was attached): nothing passes between its pod and the overlay. Bring it up: `ip link set ens1f0r3 up`, or, if `vfplane vf show 0000:5e:02.3` says link state disable, `vfplane vf config 0000:5e:02.3 --link-state auto --force`' }]);
    expect(statusWarnings(att('no-carrier'))[0]!.text).toBe('representor ens1f0r3 (VF 0000:5e:02.3, pod default/web) has no carrier: the pod\'s side of it is down (its interface set down inside the pod, or the VF\'s link state disabled), so nothing passes. Bring the pod\'s interface up, or the VF\'s link (`vfplane vf config 0000:5e:02.3 --link-state auto --force`)');
    expect(statusWarnings(att('no-carrier', { ownerGone: true })).map((w) => w.text)).toEqual([expect.stringMatching(/^the pods of ens1f0r3 are gone/)]);
    expect(statusWarnings(att('ok'))).toEqual([]);
  });
});

// helper-109: an empty flood list on a VNI with pods here cut their ARP off from every
// other node; status showed "VNI 100 → none" and warned of nothing.
describe('status warnings about an empty flood list', () => {
  it('frames that went nowhere lately and a VNI with pods and an empty flood list: the flood set that undoes it', () => {
    const r = (secondsAgo: number, learn = true, vteps: string[] = []) => ({ ...reply({ on: learn, capacity: 1024, entries: 1, full: 0 } as StatusReply['learning']), floods: [{ vni: 100, vteps }], noDestination: { frames: 3, secondsAgo },
      attachments: [{ representor: 'ens1f0r3', vni: 100, mac: '02:00:00:00:00:03' }] } as StatusReply);
    expect(statusWarnings(r(4, false))).toEqual([{ about: 'learning', text: 'VNI 100 has an empty flood list (`flood set --none`, or the config\'s floods) and pods here: their broadcasts, ARP requests among them, and unknown unicast reach no other node; 3 frame(s) went nowhere since the start (no_destination, all VNIs), the last 4 s ago. A pod on another node is reached only through an FDB entry, and learning is off, so only a static one. `vfplane dataplane flood set --vni 100 --all-peers` floods to every peer again (or name the peers with pods on it)' }]);
    expect(statusWarnings(r(4))[0]!.text).toContain('reached only through an FDB entry. `vfplane');
    expect(statusWarnings(r(121))).toEqual([]); // not lately
    expect(statusWarnings(r(4, true, ['192.0.2.2']))).toEqual([]); // a list that names peers
  });
});

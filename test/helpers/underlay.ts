// What the data-plane suites that feed a node's uplink share: the node's addresses, a
// peer's VXLAN frame to it, and one network namespace holding the uplink's and a
// representor's veth pairs, from which frames are sent as the underlay would.
import { afterAll, beforeAll } from 'vitest';
import type { DpSpec } from '../../src/dataplane/dp.js';
import { request } from '../../src/dataplane/control.js';
import { resolveTunnel } from '../../src/packet/config.js';
import { parseIp, parseMac } from '../../src/util/addr.js';
import { sleepSync } from '../../src/util/proc.js';
import { udp4, vxlan4 } from './frames.js';
import { ifname, inject, Netns, scratchDir, vethIn } from './netns.js';

/** Our uplink's MAC (VTEP 192.0.2.1) and the attached pod's MAC. */
export const UP = '02:aa:00:00:00:01', POD = '02:00:00:00:00:01';

/** A data plane's configuration but its ports (uplink and attachments): our VTEP
 *  192.0.2.1 on MAC UP, peers 192.0.2.2… on 02:bb:00:00:00:02…, learning and anti-spoofing
 *  on, no static entry, no ICMP replies. `peers`: how many. */
export function nodeSpec(peers = 1): Omit<DpSpec, 'uplink' | 'atts'> {
  return {
    uplinkMac: parseMac(UP)!,
    tunnel: resolveTunnel({ local: '192.0.2.1', remote: '192.0.2.2' }),
    peers: Array.from({ length: peers }, (_, i) => ({ vtep: parseIp(`192.0.2.${i + 2}`)!.bytes, mac: parseMac(`02:bb:00:00:00:0${i + 2}`)! })),
    fdb: [], floods: [], extraVnis: [], learn: true, antiSpoof: true, icmpTooBig: false, verifyUdpCsum: false,
  };
}

/** Waits (3 s at most) until the daemon at SOCKET has sent both announcements of its
 *  VTEP (at start and a second later): a test that captures on the underlay, or whose
 *  kernel is in duplicate address detection, then sees only what it caused. */
export async function pastAnnouncements(socket: string): Promise<void> {
  for (let i = 0; i < 30; i++) {
    const st = (await request(socket, { op: 'stats' })) as unknown as { counters: { misc: Record<string, number> } };
    if ((st.counters.misc.announcements ?? 0) >= 2) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits `ms` on this thread while the workers run on theirs: the thread blocks (as a
 *  busy wait would, the event loop runs nothing meanwhile; the test's synchronous calls
 *  into the data plane leave it nothing to do) without taking a CPU from the workers and
 *  the other test files. */
export const spin = sleepSync;

/** VXLAN (VNI 100 unless told) from `vtep` (MAC 02:bb:00:00:00:02) to our VTEP
 *  192.0.2.1, carrying a UDP frame (`payload` bytes) from innerSrc to innerDst. */
export function fromVtep(vtep: string, innerSrc: string, innerDst = POD, vni = 100, payload = 18): Uint8Array {
  const inner = udp4({ dstMac: innerDst, srcMac: innerSrc, src: '10.9.0.2', dst: '10.9.0.1', sport: 7000, dport: 7001, payload: new Uint8Array(payload) });
  return vxlan4({ dstMac: UP, srcMac: '02:bb:00:00:00:02', src: vtep, dst: '192.0.2.1', vni, inner });
}

/**
 * For a describe block: a namespace (made before its tests, gone after) with two veth
 * pairs, `up`–`upp` for a data plane's uplink (MAC UP) and `rep`–`repp` for a representor, a
 * scratch directory, and `send`, which puts frames on the uplink from its peer end.
 * `tag`: a word distinct per suite (the namespace and directory; its first letter starts
 * the interface names).
 */
export function uplinkNetns(tag: string) {
  let n: Netns | undefined;
  const f = {
    up: ifname(`${tag[0]}u`), upp: ifname(`${tag[0]}v`), rep: ifname(`${tag[0]}r`), repp: ifname(`${tag[0]}s`),
    d: scratchDir(tag),
    get n(): Netns {
      if (!n) throw new Error('uplinkNetns: used before its beforeAll ran');
      return n;
    },
    send: (frames: Uint8Array[]) => inject(f.n, f.upp, frames),
  };
  beforeAll(() => {
    n = Netns.create(tag);
    vethIn(n, f.up, f.upp);
    // The uplink has our MAC, as a daemon started on it reads it: the frames from
    // fromVtep are addressed to it (a frame to another MAC is dropped, other_host).
    n.ip(['link', 'set', f.up, 'address', UP]);
    vethIn(n, f.rep, f.repp);
  });
  afterAll(() => {
    n?.destroy();
    f.d.remove();
  });
  return f;
}

// Ping the VTEP: the first thing an engineer tries on the underlay. The data plane owns
// the uplink (the host stack never sees its frames), so its workers answer ICMP and
// ICMPv6 echo requests to the VTEP address themselves, as the stack would: the underlay
// peer's own kernel pings it (ARP/ND resolved by the workers too) and gets its replies;
// requests addressed to another host's MAC it does not answer.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { request } from '../../src/dataplane/control.js';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { hex, icmpEcho, udp4, vxlan4 } from '../helpers/frames.js';
import { capture, inject } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';
import { POD, UP, pastAnnouncements, uplinkNetns } from '../helpers/underlay.js';

describePrivileged('ping the VTEP', { netns: true, commands: ['ping'] }, () => {
  const e = uplinkNetns('vtepecho');
  const { up, upp, rep, repp, d } = e;

  it('a request shorter than the Ethernet minimum (a veth delivers it unpadded) is answered at its length, not padded into the receive ring past it (under TPACKET_V3, the next frame\'s header)', async () => {
    const dir = join(d.dir, 'short');
    mkdirSync(dir);
    const dp = await dataplaneOn(e.n, up, dir, { afpacket: { ring: 3 }, peers: [{ vtep: '192.0.2.2', mac: '02:bb:00:00:00:02' }] });
    try {
      const a = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', rep, '--vni', '100', '--mac', POD, '--netns', e.n.path]);
      expect(a.code, a.stderr).toBe(0);
      // A ping with no payload: 42 bytes, the last frame of the workers' first burst of 32
      // (31 VXLAN frames before it), 8 more behind it in the same receive block: the
      // header of the first of them (read by the next burst) is where a reply padded to
      // 60 bytes in place went.
      const ping = icmpEcho({ dstMac: UP, srcMac: '02:bb:00:00:00:02', src: '192.0.2.2', dst: '192.0.2.1', id: 7, seq: 1, payloadLen: 0 });
      expect(ping.length).toBe(42);
      await pastAnnouncements(dp.socket); // the second, a second after start, is no reply

      const inner = Array.from({ length: 39 }, (_, k) => udp4({ dstMac: POD, srcMac: '02:00:00:00:7e:02', src: '10.9.0.2', dst: '10.9.0.1', sport: 7000 + k, dport: 7001, payload: new Uint8Array(18 + k) }));
      const vx = inner.map((f) => vxlan4({ dstMac: UP, srcMac: '02:bb:00:00:00:02', src: '192.0.2.2', dst: '192.0.2.1', vni: 100, inner: f }));
      const podCap = capture(e.n, repp, { count: 40, timeoutS: 4, incoming: true });
      const upCap = capture(e.n, upp, { count: 1, timeoutS: 4, incoming: true });
      await Promise.all([podCap.ready, upCap.ready]);
      inject(e.n, upp, [...vx.slice(0, 31), ping, ...vx.slice(31)]);
      const [got, replies] = await Promise.all([podCap.done, upCap.done]);
      expect(got.map(hex), 'each frame behind the request once, whole').toEqual(inner.map(hex));
      expect(replies).toHaveLength(1);
      expect(replies[0]!.length, 'not padded past what arrived').toBe(42);
      expect(hex(replies[0]!.subarray(34, 35))).toBe('00'); // an echo reply
    } finally {
      await dp.stop();
    }
  });

  for (const family of [4, 6] as const) {
    it(`IPv${family}: the underlay's kernel pings the VTEP and gets every reply; the replies are counted; requests to another MAC are not answered`, async () => {
      const vtep = family === 4 ? '192.0.2.1' : 'fd00:99::1';
      const mine = family === 4 ? '192.0.2.2/24' : 'fd00:99::2/64';
      e.n.ip([...(family === 6 ? ['-6'] : []), 'addr', 'replace', mine, 'dev', upp, ...(family === 6 ? ['nodad'] : [])]);
      e.n.ip(['link', 'set', upp, 'up']);
      const dir = join(d.dir, `v${family}`);
      mkdirSync(dir);
      const dp = await dataplaneOn(e.n, up, dir, { uplink: { ifname: up, netns: e.n.path, vtep }, metrics: '127.0.0.1:0' });
      try {
        const r = spawnSync('ip', ['netns', 'exec', e.n.name, 'ping', `-${family}`, '-c', '3', '-i', '0.2', '-W', '2', '-I', upp, vtep], { encoding: 'utf8' });
        expect(r.stdout, r.stderr).toMatch(/3 packets transmitted, 3 received/);
        expect(r.stdout).toMatch(new RegExp(`bytes from ${vtep.replace(/\./g, '\\.')}: icmp_seq=1 ttl=64`));
        const st = (await request(dp.socket, { op: 'stats' })) as { counters: { misc: Record<string, number> } };
        expect(st.counters.misc.echoReplies).toBe(3);
        const metrics = await (await fetch(`http://127.0.0.1:${dp.metricsPort}/metrics`)).text();
        expect(metrics.split('\n').filter((l) => l.startsWith('vfplane_vtep_echo'))).toEqual(['vfplane_vtep_echo_replies_total{node="edge"} 3']);
        if (family === 4) {
          // A request with IP options (record route): answered without them (RFC 1122
          // §3.2.2.6 allows it), not with the request's echoed as they came.
          const rr = spawnSync('ip', ['netns', 'exec', e.n.name, 'ping', '-4', '-R', '-c', '1', '-W', '2', '-I', upp, vtep], { encoding: 'utf8' });
          expect(rr.stdout, rr.stderr).toMatch(/1 packets transmitted, 1 received/);
          expect(rr.stdout).not.toMatch(/RR:/);
        }

        // With a stale neighbour entry for the VTEP (another host's MAC), the requests
        // reach the uplink (a veth delivers every frame) but are not ours: no reply, as
        // the kernel's IP input would not answer them either, and each counted.
        e.n.ip([`-${family}`, 'neigh', 'replace', vtep, 'lladdr', '02:de:ad:00:00:01', 'dev', upp, 'nud', 'permanent']);
        const stale = spawnSync('ip', ['netns', 'exec', e.n.name, 'ping', `-${family}`, '-c', '3', '-i', '0.2', '-W', '1', '-I', upp, vtep], { encoding: 'utf8' });
        expect(stale.stdout, stale.stderr).toMatch(/3 packets transmitted, 0 received/);
        const st2 = (await request(dp.socket, { op: 'stats' })) as { counters: { misc: Record<string, number>; drops: Record<string, number> } };
        expect(st2.counters.misc.echoReplies).toBe(family === 4 ? 4 : 3);
        expect(st2.counters.drops.other_host).toBe(3);
      } finally {
        spawnSync('ip', ['-n', e.n.name, `-${family}`, 'neigh', 'del', vtep, 'dev', upp]); // gone if the test failed first
        await dp.stop();
        e.n.ip([...(family === 6 ? ['-6'] : []), 'addr', 'del', mine, 'dev', upp]);
      }
    });
  }
});

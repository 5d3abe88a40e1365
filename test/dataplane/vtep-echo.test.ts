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
import { dataplaneOn } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { uplinkNetns } from '../helpers/underlay.js';

describePrivileged('ping the VTEP', { netns: true, commands: ['ping'] }, () => {
  const e = uplinkNetns('vtepecho');
  const { up, upp, d } = e;

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

        // With a stale neighbour entry for the VTEP (another host's MAC), the requests
        // reach the uplink (a veth delivers every frame) but are not ours: no reply, as
        // the kernel's IP input would not answer them either, and each counted.
        e.n.ip([`-${family}`, 'neigh', 'replace', vtep, 'lladdr', '02:de:ad:00:00:01', 'dev', upp, 'nud', 'permanent']);
        const stale = spawnSync('ip', ['netns', 'exec', e.n.name, 'ping', `-${family}`, '-c', '3', '-i', '0.2', '-W', '1', '-I', upp, vtep], { encoding: 'utf8' });
        expect(stale.stdout, stale.stderr).toMatch(/3 packets transmitted, 0 received/);
        const st2 = (await request(dp.socket, { op: 'stats' })) as { counters: { misc: Record<string, number>; drops: Record<string, number> } };
        expect(st2.counters.misc.echoReplies).toBe(3);
        expect(st2.counters.drops.other_host).toBe(3);
      } finally {
        spawnSync('ip', ['-n', e.n.name, `-${family}`, 'neigh', 'del', vtep, 'dev', upp]); // gone if the test failed first
        await dp.stop();
        e.n.ip([...(family === 6 ? ['-6'] : []), 'addr', 'del', mine, 'dev', upp]);
      }
    });
  }
});

// A state file (<stateDir>/dataplane-<node>.json) the daemon cannot use is ignored for
// real: nothing of it reaches the model, the log names the entry and why, and the data
// plane works as if there were none (status, peer add, fdb add, reload).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { request } from '../../src/dataplane/control.js';
import { Netns, ifname, vethIn, scratchDir } from '../helpers/netns.js';

describePrivileged('an unusable state file', { root: true }, () => {
  let n: Netns;
  const up = ifname('u'), upp = ifname('v');

  beforeAll(() => {
    n = Netns.create('st');
    vethIn(n, up, upp);
  });
  afterAll(() => n?.destroy());

  const cases = [
    { what: 'an entry the schema refuses', state: { peers: [{ vtep: '192.0.2.300' }] }, log: /ignoring unreadable state .*dataplane-edge\.json: peers\.0\.vtep: expected an IPv4 or IPv6 address.*"192\.0\.2\.300"/ },
    { what: 'a static entry whose VTEP is no peer', state: { fdb: [{ vni: 5, mac: '02:00:00:00:00:05', vtep: '192.0.2.9' }] }, log: /ignoring unreadable state .*: fdb\.0: VNI 5 MAC 02:00:00:00:00:05 points at VTEP 192\.0\.2\.9, which is not a peer/ },
    { what: 'a peer of the other IP family', state: { peers: [{ vtep: '192.0.2.7' }, { vtep: '2001:db8::7' }] }, log: /ignoring unreadable state .*: peers\.1\.vtep: 2001:db8::7 is not IPv4 like uplink\.vtep 192\.0\.2\.1/ },
  ];
  for (const c of cases) {
    it(`with ${c.what} leaves the model as the config made it`, async () => {
      const d = scratchDir('st');
      try {
        mkdirSync(join(d.dir, 'state'));
        writeFileSync(join(d.dir, 'state', 'dataplane-edge.json'), JSON.stringify({ version: 1, attachments: [], peers: [], fdb: [], floods: [], ...c.state }));
        const dp = await dataplaneOn(n, up, d.dir);
        try {
          expect(dp.log()).toMatch(c.log);
          expect(dp.log()).not.toMatch(/restored \d+ attachment/);
          const st = (await request(dp.socket, { op: 'status' })) as { peers: { vtep: string }[] };
          expect(st.peers).toEqual([]);
          const ops = [
            ['peer', 'add', '192.0.2.2'],
            ['fdb', 'add', '--vni', '5', '--mac', '02:00:00:00:00:06', '--vtep', '192.0.2.2'],
            ['status'],
            ['reload'],
          ];
          for (const op of ops) {
            const r = vfplane(['dataplane', ...op, '--socket', dp.socket]);
            expect(r.code, `${op.join(' ')}: ${r.stderr}`).toBe(0);
          }
          const after = (await request(dp.socket, { op: 'status' })) as { peers: { vtep: string }[] };
          expect(after.peers.map((p) => p.vtep)).toEqual(['192.0.2.2']);
        } finally {
          await dp.stop();
        }
      } finally {
        d.remove();
      }
    });
  }
});

// A state file (<stateDir>/dataplane-<node>.json) the daemon cannot wholly use: an entry
// it would refuse now (an older vfplane took it, or it was edited) costs that entry
// alone, said in the log, and the rest is restored; a file unusable as a whole (not JSON,
// another version) gives nothing, and the data plane works as if there were none. Either
// way the file as it was is copied aside before anything rewrites it.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import Database from 'better-sqlite3';
import { request } from '../../src/dataplane/control.js';
import { DB_FILE } from '../../src/alloc/store.js';
import { Netns, ifname, vethIn, scratchDir } from '../helpers/netns.js';

describePrivileged('a state file not wholly usable, and a store that cannot be read', { root: true }, () => {
  let n: Netns;
  const up = ifname('u'), upp = ifname('v');

  beforeAll(() => {
    n = Netns.create('st');
    vethIn(n, up, upp);
  });
  afterAll(() => n?.destroy());

  /** A data plane started on a state directory `prepare` fills, given to `check`; both
   *  gone after. */
  async function onState(prepare: (state: string) => void, check: (dp: Awaited<ReturnType<typeof dataplaneOn>>, state: string) => Promise<void> | void) {
    const d = scratchDir('st');
    try {
      const state = join(d.dir, 'state');
      mkdirSync(state);
      prepare(state);
      const dp = await dataplaneOn(n, up, d.dir);
      try {
        await check(dp, state);
      } finally {
        await dp.stop();
      }
    } finally {
      d.remove();
    }
  }

  const good = { peers: [{ vtep: '192.0.2.3' }], fdb: [{ vni: 5, mac: '02:00:00:00:aa:09', vtep: '192.0.2.3' }] };
  const cases: { what: string; file: string | object; log: RegExp; peers: string[]; fdb: string[] }[] = [
    {
      what: 'an entry the schema refuses (an older vfplane took a multicast peer and an all-zero MAC), among good ones',
      file: { peers: [{ vtep: '224.0.0.9' }, ...good.peers], fdb: [{ vni: 5, mac: '00:00:00:00:00:00', vtep: '192.0.2.3' }, ...good.fdb] },
      log: /state .*dataplane-edge\.json: peers\.0 \{"vtep":"224\.0\.0\.9"\} not restored: .*expected a unicast address.*; the rest is \(the file as it was is kept as .*dataplane-edge\.json\.unrestored-/,
      peers: ['192.0.2.3'], fdb: ['5 02:00:00:00:aa:09 192.0.2.3'],
    },
    {
      what: 'a static entry whose VTEP is no peer',
      file: { peers: good.peers, fdb: [{ vni: 5, mac: '02:00:00:00:00:05', vtep: '192.0.2.9' }, ...good.fdb] },
      log: /state .*: FDB entry VNI 5 MAC 02:00:00:00:00:05 not restored: it points at VTEP 192\.0\.2\.9, which is not a peer; the rest is/,
      peers: ['192.0.2.3'], fdb: ['5 02:00:00:00:aa:09 192.0.2.3'],
    },
    {
      what: 'a peer of the other IP family',
      file: { peers: [{ vtep: '2001:db8::7' }, ...good.peers], fdb: good.fdb },
      log: /state .*: peer 2001:db8::7 not restored: not IPv4 like uplink\.vtep 192\.0\.2\.1; the rest is/,
      peers: ['192.0.2.3'], fdb: ['5 02:00:00:00:aa:09 192.0.2.3'],
    },
    { what: 'text that is no JSON', file: '{"version": 1, "peers": [', log: /ignoring unreadable state .*dataplane-edge\.json: .*JSON.*; none of it is restored .*the file as it was is kept as .*\.unrestored-/, peers: [], fdb: [] },
    { what: 'another version', file: { version: 2, ...good }, log: /ignoring unreadable state .*: version: expected version 1.*; none of it is restored/, peers: [], fdb: [] },
  ];
  for (const c of cases) {
    it(`with ${c.what}: ${c.peers.length ? 'that alone is dropped, the rest restored' : 'nothing restored'}, the file kept aside; the data plane works on`, async () => {
      const text = typeof c.file === 'string' ? c.file : JSON.stringify({ version: 1, attachments: [], peers: [], fdb: [], floods: [], ...c.file });
      await onState((state) => writeFileSync(join(state, 'dataplane-edge.json'), text), async (dp, state) => {
        expect(dp.log()).toMatch(c.log);
        const st = (await request(dp.socket, { op: 'status' })) as { peers: { vtep: string }[] };
        expect(st.peers.map((p) => p.vtep)).toEqual(c.peers);
        const fdb = (await request(dp.socket, { op: 'fdb-list' })) as { static: { vni: number; mac: string; vtep: string }[] };
        expect(fdb.static.map((f) => `${f.vni} ${f.mac} ${f.vtep}`)).toEqual(c.fdb);
        const aside = readdirSync(state).filter((f) => f.startsWith('dataplane-edge.json.unrestored-'));
        expect(aside).toHaveLength(1);
        expect(readFileSync(join(state, aside[0]!), 'utf8')).toBe(text);
        // Rewritten at once without what was dropped: the next start would otherwise warn
        // and copy it aside again, one copy a start (helper-68).
        const rewritten = JSON.parse(readFileSync(join(state, 'dataplane-edge.json'), 'utf8')) as { peers: { vtep: string }[] };
        expect(rewritten.peers.map((p) => p.vtep)).toEqual(c.peers);
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
        expect(after.peers.map((p) => p.vtep).sort()).toEqual([...c.peers, '192.0.2.2'].sort());
        // The rewritten file holds what the data plane holds; the copy is still the old one.
        const now = JSON.parse(readFileSync(join(state, 'dataplane-edge.json'), 'utf8')) as { peers: { vtep: string }[] };
        expect(now.peers.map((p) => p.vtep).sort()).toEqual([...c.peers, '192.0.2.2'].sort());
        expect(readFileSync(join(state, aside[0]!), 'utf8')).toBe(text);
      });
    });
  }

  it('an allocation store it cannot read (a newer vfplane\'s, after a rollback) is said, not taken for none', async () => {
    await onState((state) => {
      const db = new Database(join(state, DB_FILE));
      db.pragma('user_version = 99');
      db.close();
    }, (dp, state) => {
      expect(dp.log()).toMatch(new RegExp(`the allocation store in ${state.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} could not be read: .*schema version 99, newer than this vfplane knows.*; the state file alone says which of its VFs' attachments come back`));
    });
  });

  it('a file every entry of which is usable is restored whole, and nothing is copied aside', async () => {
    await onState((state) => writeFileSync(join(state, 'dataplane-edge.json'), JSON.stringify({ version: 1, attachments: [], floods: [], ...good })), (dp, state) => {
      expect(dp.log()).toMatch(/restored 0 of 0 attachment\(s\), 1 peer\(s\), 1 FDB entr\(ies\)/);
      expect(readdirSync(state).filter((f) => f.includes('unrestored'))).toEqual([]);
    });
  });
});

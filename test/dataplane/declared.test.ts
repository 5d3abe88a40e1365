// A socket change to what the config file declares (a peer, a static entry, a VNI's
// flood list, an attachment) lasts until the next restart or reload, which apply the
// file again: the reply and the CLI say so, naming what the file declares.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { dataplaneOn, vfplane, vfplaneAsync } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { request } from '../../src/dataplane/control.js';
import { Netns, ifname, vethIn, scratchDir } from '../helpers/netns.js';

describePrivileged('socket changes to what the config file declares', { root: true }, () => {
  let n: Netns;
  const up = ifname('u'), upp = ifname('v');
  const d = scratchDir('decl');

  beforeAll(() => {
    n = Netns.create('decl');
    vethIn(n, up, upp);
  });
  afterAll(() => {
    n?.destroy();
    d.remove();
  });

  it('say they last until the next restart or reload', async () => {
    const cfg = {
      peers: [{ vtep: '192.0.2.2' }],
      vnis: [{ vni: 100, flood: ['192.0.2.2'] }],
      fdb: [{ vni: 100, mac: '02:00:00:00:0d:01', vtep: '192.0.2.2' }],
    };
    const dp = await dataplaneOn(n, up, d.dir, cfg);
    try {
      const add = vfplane(['dataplane', 'peer', 'add', '192.0.2.2', '--mac', '02:00:00:00:00:22', '--socket', dp.socket]);
      expect(add.code, add.stderr).toBe(0);
      expect(add.stderr).toMatch(/warning: the data-plane config declares peer 192\.0\.2\.2: this change lasts until the data plane restarts or reloads its config .*; change the config file to keep it/);
      const jsonRun = vfplane(['dataplane', 'peer', 'add', '192.0.2.2', '--socket', dp.socket, '--json']);
      const json = JSON.parse(jsonRun.stdout) as { note?: string };
      expect(json.note).toMatch(/declares peer 192\.0\.2\.2/);
      expect(jsonRun.stderr).toMatch(/warning: the data-plane config declares peer 192\.0\.2\.2/); // on stderr with --json too
      const fdb = vfplane(['dataplane', 'fdb', 'del', '--vni', '100', '--mac', '02:00:00:00:0d:01', '--socket', dp.socket]);
      expect(fdb.code, fdb.stderr).toBe(0);
      expect(fdb.stderr).toMatch(/declares the static entry for 02:00:00:00:0d:01 on VNI 100/);
      const flood = await request(dp.socket, { op: 'flood-set', vni: 100, vteps: [] });
      expect(flood.note).toMatch(/declares the flood list of VNI 100/);
      const bcast = () => JSON.parse(vfplane(['dataplane', 'explain', '--vni', '100', '--mac', 'ff:ff:ff:ff:ff:ff', '--socket', dp.socket, '--json']).stdout) as { steps: string[]; peers: unknown[] };
      expect(bcast().steps).toContain('VNI 100 has a flood list: empty');
      // Back to every peer, from the CLI; and the CLI wants exactly one way of saying it.
      const all = vfplane(['dataplane', 'flood', 'set', '--vni', '100', '--all-peers', '--socket', dp.socket]);
      expect(all.code, all.stderr).toBe(0);
      expect(bcast()).toMatchObject({ steps: expect.arrayContaining(['VNI 100 has no flood list of its own: every peer gets a copy']), peers: [expect.objectContaining({ vtep: '192.0.2.2' })] });
      const both = vfplane(['dataplane', 'flood', 'set', '--vni', '100', '192.0.2.2', '--none', '--socket', dp.socket]);
      expect([both.code, both.stderr]).toEqual([2, expect.stringMatching(/give the flood list as VTEP addresses, or --none, or --all-peers \(one of them\)/)]);
      expect(vfplane(['dataplane', 'flood', 'set', '--vni', '100', '192.0.2.2', '--socket', dp.socket]).code).toBe(0);
      expect(bcast().steps).toContain('VNI 100 has a flood list: 192.0.2.2');
      // What the file does not declare is kept in the state file: no note.
      const other = vfplane(['dataplane', 'peer', 'add', '192.0.2.3', '--socket', dp.socket]);
      expect(other.code, other.stderr).toBe(0);
      expect(other.stderr).not.toMatch(/warning/);
      expect((await request(dp.socket, { op: 'flood-set', vni: 200, vteps: ['192.0.2.3'] })).note).toBeUndefined();
      // The flood lists in force, in status: each VNI's own, and where the others go.
      expect(vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout).toMatch(/^flood lists: VNI 100 → 192\.0\.2\.2; VNI 200 → 192\.0\.2\.3; other VNIs → every peer$/m);
      expect(JSON.parse(vfplane(['dataplane', 'status', '--socket', dp.socket, '--json']).stdout).floods).toEqual([{ vni: 100, vteps: ['192.0.2.2'] }, { vni: 200, vteps: ['192.0.2.3'] }]);
      // A data plane from before flood lists were reported (a node half-way through an
      // upgrade; stood in for by this one's reply without them): not "none set".
      const { floods: _, ...older } = await request(dp.socket, { op: 'status' });
      const oldSock = `${d.dir}/older.sock`;
      const stand = createServer((c) => c.once('data', () => c.end(JSON.stringify(older) + '\n')));
      await new Promise<void>((r) => stand.listen(oldSock, r));
      try {
        const st = await vfplaneAsync(['dataplane', 'status', '--socket', oldSock]);
        expect(st.code, st.stderr).toBe(0);
        expect(st.stdout).toMatch(/^flood lists: not reported by this data plane \(a vfplane older than this CLI\); its config file says which VNIs have one$/m);
      } finally {
        await new Promise<void>((r) => stand.close(() => r()));
      }
      // A VNI with a flood list and no pod is decapsulated, then has nowhere to go; one
      // with neither is not served: explain says so in both directions, as the counters do.
      const why = (vni: number, from?: string) => (JSON.parse(vfplane(['dataplane', 'explain', '--vni', String(vni), '--mac', 'ff:ff:ff:ff:ff:ff', ...(from ? ['--from', from] : []), '--socket', dp.socket, '--json']).stdout) as { steps: string[]; reason?: string });
      expect(why(200).steps.join('\n')).toMatch(/from the underlay are dropped \(no_local_port\)/);
      expect(why(200, 'uplink').reason).toBe('no_local_port');
      expect(why(300).steps.join('\n')).toMatch(/from the underlay are dropped \(vni_unknown\)/);
      expect(why(300, 'uplink').reason).toBe('vni_unknown');
      await request(dp.socket, { op: 'flood-set', vni: 100, vteps: [] });
      // A reload of the same file sets the declared entry and flood list back, and says
      // so (it said "nothing changed": the file had not).
      const rl = vfplane(['dataplane', 'reload', '--socket', dp.socket]);
      expect(rl.code, rl.stderr).toBe(0);
      expect(rl.stdout).toMatch(/^reloaded: fdb, vnis set back to what the file declares \(undoing control-socket changes\)/);
      expect(bcast().steps).toContain('VNI 100 has a flood list: 192.0.2.2');
      expect(vfplane(['dataplane', 'reload', '--socket', dp.socket]).stdout).toMatch(/^reloaded: nothing changed/);
      await request(dp.socket, { op: 'flood-set', vni: 100, vteps: [] }); // for the restart below
    } finally {
      await dp.stop();
    }
    // A restart applies the file again: the declared VNI's list is the file's, also for a
    // VNI whose list was made over the socket before the file came to declare it; a list
    // made over the socket for a VNI the file does not declare comes back from the state.
    const steps = (sock: string, vni: number) => (JSON.parse(vfplane(['dataplane', 'explain', '--vni', String(vni), '--mac', 'ff:ff:ff:ff:ff:ff', '--socket', sock, '--json']).stdout) as { steps: string[] }).steps;
    const again = await dataplaneOn(n, up, d.dir, cfg);
    try {
      expect(steps(again.socket, 100)).toContain('VNI 100 has a flood list: 192.0.2.2');
      expect(steps(again.socket, 200)).toContain('VNI 200 has a flood list: 192.0.2.3');
    } finally {
      await again.stop();
    }
    const declared = await dataplaneOn(n, up, d.dir, { ...cfg, vnis: [...cfg.vnis, { vni: 200, flood: ['192.0.2.2'] }] });
    try {
      expect(steps(declared.socket, 200)).toContain('VNI 200 has a flood list: 192.0.2.2');
    } finally {
      await declared.stop();
    }
  });

  // A peer leaving takes with it what the socket made with it only when the operator says
  // so: a reload whose file drops a peer that a socket-made static entry or flood list
  // still names is refused, naming each and the command that changes it; `peer del`
  // takes the peer out of the flood lists that name it and says which, warning when one
  // is left empty.
  it('a peer the file drops while socket changes use it is a conflict; peer del says which flood lists it left', async () => {
    const dp = await dataplaneOn(n, up, d.dir, { peers: [{ vtep: '192.0.2.2' }, { vtep: '192.0.2.3' }] });
    try {
      expect((await request(dp.socket, { op: 'fdb-add', vni: 100, mac: '02:00:00:00:0e:01', vtep: '192.0.2.3' })).epoch).toBeGreaterThan(0);
      await request(dp.socket, { op: 'flood-set', vni: 300, vteps: ['192.0.2.2', '192.0.2.3'] });
      const file = JSON.parse(readFileSync(dp.config, 'utf8')) as Record<string, unknown>;
      writeFileSync(dp.config, JSON.stringify({ ...file, peers: [{ vtep: '192.0.2.2' }] }));
      const rl = vfplane(['dataplane', 'reload', '--socket', dp.socket, '--json']);
      expect(rl.code, rl.stdout + rl.stderr).toBe(1);
      const err = (JSON.parse(rl.stdout) as { error: { message: string; kind: string } }).error;
      expect(err.kind).toBe('conflict');
      expect(err.message).toContain('the config no longer has 192.0.2.3 among its peers, which runtime changes still use');
      expect(err.message).toContain('`vfplane dataplane fdb del --vni 100 --mac 02:00:00:00:0e:01`');
      expect(err.message).toContain('the flood list of VNI 300 (set over the control socket) names 192.0.2.3: `vfplane dataplane flood set --vni 300 192.0.2.2`');
      const st = (await request(dp.socket, { op: 'status' })) as { peers: { vtep: string }[] };
      expect(st.peers.map((p) => p.vtep).sort()).toEqual(['192.0.2.2', '192.0.2.3']); // nothing changed
      writeFileSync(dp.config, JSON.stringify(file));
      // peer del: refused while the static entry uses the peer, naming it and the way out;
      // then it leaves VNI 300's list.
      const used = vfplane(['dataplane', 'peer', 'del', '192.0.2.3', '--socket', dp.socket]);
      expect(used.code).toBe(1);
      expect(used.stderr).toContain('1 static FDB entry points at 192.0.2.3 (VNI 100 02:00:00:00:0e:01); delete it first (`vfplane dataplane fdb del --vni 100 --mac 02:00:00:00:0e:01`), or point it at another peer');
      expect(vfplane(['dataplane', 'fdb', 'del', '--vni', '100', '--mac', '02:00:00:00:0e:01', '--socket', dp.socket]).code).toBe(0);
      const del3 = vfplane(['dataplane', 'peer', 'del', '192.0.2.3', '--socket', dp.socket]);
      expect(del3.code, del3.stderr).toBe(0);
      expect(del3.stderr).toContain("note: peer 192.0.2.3 was taken out of VNI 300's flood list (1 VTEP(s) left)");
      const del2 = vfplane(['dataplane', 'peer', 'del', '192.0.2.2', '--socket', dp.socket, '--json']);
      expect(JSON.parse(del2.stdout)).toMatchObject({ floodsTrimmed: [{ vni: 300, left: 0 }] });
      await request(dp.socket, { op: 'peer-add', vtep: '192.0.2.2' });
      await request(dp.socket, { op: 'flood-set', vni: 300, vteps: ['192.0.2.2'] });
      const last = vfplane(['dataplane', 'peer', 'del', '192.0.2.2', '--socket', dp.socket]);
      expect(last.stderr).toMatch(/warning: peer 192\.0\.2\.2 was the last VTEP of VNI 300's flood list: .*reach no other node now/);
    } finally {
      await dp.stop();
    }
  });

  it('fdb add|del --file: many entries in one change, all or none, each refusal naming the entry', async () => {
    const declared = { vni: 100, mac: '02:00:00:00:0f:01', vtep: '192.0.2.2' };
    const dp = await dataplaneOn(n, up, d.dir, { peers: [{ vtep: '192.0.2.2' }, { vtep: '192.0.2.3' }], fdb: [declared] });
    try {
      const hex = (i: number) => `${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      const many = Array.from({ length: 3000 }, (_, i) => ({ vni: 100 + (i % 3), mac: `02:00:00:10:${hex(i)}`, vtep: i % 2 ? '192.0.2.3' : '192.0.2.2' }));
      const file = (name: string, v: unknown, yaml = false) => {
        const f = `${d.dir}/${name}`;
        writeFileSync(f, yaml ? `# yaml\n${JSON.stringify(v)}` : JSON.stringify(v));
        return f;
      };
      const statics = async () => ((await request(dp.socket, { op: 'fdb-list' })) as { static: { vni: number; mac: string; vtep: string }[] }).static;
      const add = vfplane(['dataplane', 'fdb', 'add', '--file', file('add.yaml', [...many, { ...declared, vtep: '192.0.2.3' }], true), '--socket', dp.socket]);
      expect(add.code, add.stderr).toBe(0);
      expect(add.stdout).toMatch(/^fdb-add: 3000 added, 1 replaced \(epoch \d+\)$/m);
      expect(add.stderr).toContain('warning: the data-plane config declares the static entry for 02:00:00:00:0f:01 on VNI 100');
      const after = await statics();
      expect(after).toHaveLength(3001);
      expect(after.find((f) => f.mac === declared.mac)!.vtep).toBe('192.0.2.3');
      expect((await request(dp.socket, { op: 'explain', vni: 102, mac: many[2999]!.mac })) as { verdict: string; vtep: string }).toMatchObject({ vtep: '192.0.2.3', source: 'static' });
      // Refused as a whole, naming what: a VTEP that is no peer, an entry given twice, a
      // malformed one (bad input in a file: exit 1), and nothing changes.
      const refused = (args: string[], code: number, msg: string | RegExp) => {
        const r = vfplane(['dataplane', 'fdb', ...args, '--socket', dp.socket]);
        expect(r.code, r.stderr).toBe(code);
        expect(r.stderr).toMatch(msg);
      };
      const extra = { vni: 7, mac: '02:00:00:20:00:01', vtep: '192.0.2.9' };
      refused(['add', '--file', file('stray.json', [...many.slice(0, 10), extra])], 1, 'VTEP 192.0.2.9 is not a peer; add it first (`vfplane dataplane peer add`, op peer-add); nothing was added');
      refused(['add', '--file', file('twice.json', [many[0], { ...extra, vtep: '192.0.2.2' }, many[0]])], 1, /--file .*twice\.json: entries\.2 names 02:00:00:10:00:00 on VNI 100 again \(also entries\.0\); give each entry once/);
      refused(['add', '--file', file('bad.json', [many[0], many[1], { ...extra, mac: '01:00:5e:00:00:01', vtep: '192.0.2.2' }])], 1, /--file .*bad\.json: fdb-add: entries\.2\.mac: expected a pod's unicast MAC/);
      refused(['add', '--file', file('none.json', { entries: many })], 1, /--file .*none\.json: expected a list of entries \{vni, mac, vtep\}/);
      refused(['add', '--file', file('x.json', many), '--vni', '5'], 2, 'give --vni, --mac and --vtep, or --file (one or the other)');
      refused(['del', '--file', file('gone.json', [...many.slice(0, 5).map(({ vni, mac }) => ({ vni, mac })), { vni: 9, mac: '02:00:00:30:00:01' }])], 1, 'no static FDB entry for 02:00:00:30:00:01 on VNI 9; nothing was deleted');
      expect(await statics()).toEqual(after);
      const del = vfplane(['dataplane', 'fdb', 'del', '--file', file('del.json', many.map(({ vni, mac }) => ({ vni, mac }))), '--socket', dp.socket, '--json']);
      expect(del.code, del.stderr).toBe(0);
      expect(JSON.parse(del.stdout)).toMatchObject({ deleted: 3000 });
      expect((await statics()).map((f) => f.mac)).toEqual([declared.mac]);
    } finally {
      await dp.stop();
    }
  });

  it('past the peers and VNIs a data plane holds, a socket change is a conflict that says the way out, and changes nothing', async () => {
    // The file at the limits (1024 peers; 1023 VNIs with a flood list), which it may be.
    const peers = Array.from({ length: 1024 }, (_, i) => ({ vtep: `10.${100 + (i >> 8)}.${i & 255}.1` }));
    const vnis = Array.from({ length: 1023 }, (_, i) => ({ vni: 1000 + i, flood: [] }));
    const dp = await dataplaneOn(n, up, d.dir, { peers, vnis });
    try {
      const peer = vfplane(['dataplane', 'peer', 'add', '10.200.0.1', '--socket', dp.socket, '--json']);
      expect(peer.code, peer.stderr).toBe(1);
      const pe = (JSON.parse(peer.stdout) as { error: { kind: string; message: string } }).error;
      expect(pe.kind).toBe('conflict');
      expect(pe.message).toBe("1025 peers is more than the 1024 a data plane supports (1 of them added over the control socket, not in the config file: 10.200.0.1; `vfplane dataplane peer del VTEP` takes one away); list the VTEPs of the nodes whose pods share a VNI with this node's, not every node (a VNI floods to its own list: vnis[].flood); nothing was changed");
      const vni = vfplane(['dataplane', 'flood', 'set', '--vni', '5000', '--none', '--socket', dp.socket, '--json']);
      expect(vni.code, vni.stderr).toBe(1);
      const ve = (JSON.parse(vni.stdout) as { error: { kind: string; message: string } }).error;
      expect(ve.kind).toBe('conflict');
      expect(ve.message).toMatch(/^that makes 1024 VNIs attached or with a flood list, more than the 1023 a data plane serves \(flood lists set over the control socket, not in the config file, for 1 of them: VNI 5000\); drop the flood lists of VNIs no pod on this node uses .*--all-peers.*; nothing was changed$/);
      const st = (await request(dp.socket, { op: 'status' })) as { peers: unknown[]; floodLists?: Record<string, unknown> };
      expect(st.peers).toHaveLength(1024);
      // A peer already there is a change, not one more; a VNI's list removed makes room.
      expect(vfplane(['dataplane', 'peer', 'add', peers[0]!.vtep, '--socket', dp.socket]).code).toBe(0);
      expect(vfplane(['dataplane', 'flood', 'set', '--vni', '1000', '--all-peers', '--socket', dp.socket]).code).toBe(0);
      expect(vfplane(['dataplane', 'flood', 'set', '--vni', '5000', '--none', '--socket', dp.socket]).code).toBe(0);
      // Status at this size: VNIs with one list together, as ranges; a table row a line.
      const text = vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout;
      expect(text).toMatch(/^flood lists: VNIs 1001-2022,5000 → none; other VNIs → every peer$/m);
      expect(text.split('\n').filter((l) => l.startsWith('│ 10.1')).length).toBe(1024);
      expect(text).not.toMatch(/^├/m);
      // 1024 peers none of which answers ARP: one warning for all, not one each.
      expect(text.match(/has not answered|have not answered/g)).toHaveLength(1);
      expect(text).toMatch(/^warning: 1024 peers have not answered ARP\/ND \(10\.100\.0\.1, 10\.100\.1\.1, 10\.100\.2\.1, 10\.100\.3\.1, and 1020 more; `--json` lists them\)/m);
      // At a restart, what the state file adds past the limits beside the config's costs
      // itself (logged), not the rest of the state: a socket change to a config peer (its
      // removal lasts until the restart) let a peer in, whose place the config takes back.
      expect(vfplane(['dataplane', 'peer', 'del', peers[5]!.vtep, '--socket', dp.socket]).code).toBe(0);
      expect(vfplane(['dataplane', 'peer', 'add', '10.200.0.1', '--socket', dp.socket]).code).toBe(0);
      expect(vfplane(['dataplane', 'fdb', 'add', '--vni', '1001', '--mac', '02:00:00:00:0c:01', '--vtep', peers[0]!.vtep, '--socket', dp.socket]).code).toBe(0);
    } finally {
      await dp.stop();
    }
    const again = await dataplaneOn(n, up, d.dir, { peers, vnis });
    try {
      expect(again.log()).toMatch(/state .*: peer 10\.200\.0\.1 not restored: the config's peers and those restored before it fill the 1024 a data plane holds; the rest is/);
      expect(again.log()).toMatch(/state .*: the flood list of VNI 5000 not restored: the config's VNIs and those restored before it fill the 1023 a data plane serves; the rest is/);
      const fdb = (await request(again.socket, { op: 'fdb-list' })) as { static: { mac: string }[] };
      expect(fdb.static.map((f) => f.mac)).toContain('02:00:00:00:0c:01');
      expect(((await request(again.socket, { op: 'status' })) as { peers: unknown[] }).peers).toHaveLength(1024);
    } finally {
      await again.stop();
    }
  });
});

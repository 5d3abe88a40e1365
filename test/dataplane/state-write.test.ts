// A change made over the control socket that the state file cannot keep is not made:
// otherwise it would run until the next restart and then vanish, while the command had
// said it failed. With the state directory immutable, peer add and detach fail naming
// the file and the fix, status shows nothing changed, and a restart agrees.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { request } from '../../src/dataplane/control.js';
import { Netns, ifname, vethIn, scratchDir } from '../helpers/netns.js';

type Status = { peers: { vtep: string }[]; attachments: { representor: string }[] };

describePrivileged('a state file that cannot be written', { root: true, commands: ['chattr'] }, () => {
  let n: Netns;
  const up = ifname('u'), upp = ifname('v'), rep = ifname('r'), repp = ifname('s');
  const d = scratchDir('sw');

  beforeAll(() => {
    n = Netns.create('sw');
    vethIn(n, up, upp);
    vethIn(n, rep, repp);
  });
  afterAll(() => {
    spawnSync('chattr', ['-i', join(d.dir, 'state')]);
    n?.destroy();
    d.remove();
  });

  it('undoes peer add and refuses detach, naming the file and the fix', async () => {
    let dp = await dataplaneOn(n, up, d.dir);
    const stateFile = join(dp.stateDir, 'dataplane-edge.json');
    try {
      const att = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', rep, '--vni', '100', '--mac', '02:00:00:00:0b:01', '--netns', n.path]);
      expect(att.code, att.stderr).toBe(0);
      expect(spawnSync('chattr', ['+i', dp.stateDir]).status).toBe(0);
      try {
        const add = vfplane(['dataplane', 'peer', 'add', '192.0.2.2', '--socket', dp.socket]);
        expect(add.code, add.stderr).toBe(1);
        expect(add.stderr).toContain(`the state file ${stateFile} cannot be written`);
        expect(add.stderr).toMatch(/nothing was changed.*make the state directory writable/);
        const det = vfplane(['dataplane', 'detach', '--representor', rep, '--socket', dp.socket]);
        expect(det.code, det.stderr).toBe(1);
        expect(det.stderr).toContain(`the state file ${stateFile} cannot be written`);
        const st = (await request(dp.socket, { op: 'status' })) as Status;
        expect(st.peers).toEqual([]);
        expect(st.attachments.map((a) => a.representor)).toEqual([rep]);
        expect(n.readSysctl(`net.ipv6.conf.${rep}.disable_ipv6`)).toBe('1'); // still the data plane's
        // Once writable, the same changes go through.
      } finally {
        spawnSync('chattr', ['-i', dp.stateDir]);
      }
      expect(vfplane(['dataplane', 'peer', 'add', '192.0.2.3', '--socket', dp.socket]).code).toBe(0);
    } finally {
      await dp.stop();
    }
    // A restart agrees with what status said.
    dp = await dataplaneOn(n, up, d.dir);
    try {
      const st = (await request(dp.socket, { op: 'status' })) as Status;
      expect(st.peers.map((p) => p.vtep)).toEqual(['192.0.2.3']);
      expect(st.attachments.map((a) => a.representor)).toEqual([rep]);
    } finally {
      await dp.stop();
    }
  });
});

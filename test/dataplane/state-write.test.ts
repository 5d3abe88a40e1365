// A change made over the control socket that the state file cannot keep is not made:
// otherwise it would run until the next restart and then vanish, while the command had
// said it failed. With the state directory immutable, peer add and detach fail naming
// the file and the fix, status shows nothing changed, and a restart agrees. Save a pod's
// detach: made, said, and written by the beat once the file can be written.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { request } from '../../src/dataplane/control.js';
import { Netns, ifname, vethIn, scratchDir } from '../helpers/netns.js';
import { dropSim, makeSim } from '../helpers/sim.js';

type Status = { peers: { vtep: string }[]; attachments: { representor: string }[]; stateFile?: { path: string; why: string } };

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
        expect(det.code, det.stderr).toBe(1); // attached by hand: a restart would bring it back
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

  // A pod's detach (vfplane-cni's DEL: the attachment has an owner and its VF is held in a
  // store) is not refused: the DEL would fail and be retried for ever, the pod's VF and
  // address held, while a restart before the file is written drops the attachment again
  // (its VF no longer held for its container). The file is written once it can be
  // (storage-failure walkthrough, helper-81).
  it('detaches a pod\'s attachment all the same, says so in the reply and status, and writes the file once it can', async () => {
    const m = makeSim({ profile: 'x710', pfs: 1, vfs: 1 });
    const own = scratchDir('swpod');
    const store = `${own.dir}/store`;
    const pci = '0000:5e:02.0', r0 = `${m.prefix}f0r0`;
    let dp = await dataplaneOn(n, up, own.dir);
    const stateFile = join(dp.stateDir, 'dataplane-edge.json');
    const listed = () => (JSON.parse(readFileSync(stateFile, 'utf8')) as { attachments: { representor: string }[] }).attachments.map((a) => a.representor);
    try {
      const alloc = vfplane(['vf', 'alloc', '--pci', pci, '--owner', 'default/web', '--container-id', 'c0ffee01', '--ifname', 'net1', '--sysfs-root', m.root, '--state-dir', store]);
      expect(alloc.code, alloc.stderr).toBe(0);
      await request(dp.socket, { op: 'attach', representor: r0, pci, vni: 100, mac: '02:00:00:00:0b:02', owner: { containerId: 'c0ffee01', ifname: 'net1', store } });
      expect(listed()).toEqual([r0]);
      expect(spawnSync('chattr', ['+i', dp.stateDir]).status).toBe(0);
      try {
        const det = (await request(dp.socket, { op: 'detach', representor: r0 })) as { removed: boolean; note?: string };
        expect(det.removed).toBe(true);
        expect(det.note).toContain(`the state file ${stateFile} cannot be written (EPERM): the detach of ${r0} made, and kept in the file once it can be written`);
        let st = (await request(dp.socket, { op: 'status' })) as Status;
        expect(st.attachments).toEqual([]);
        expect(st.stateFile).toMatchObject({ path: stateFile, why: 'EPERM' });
        const human = vfplane(['dataplane', 'status', '--socket', dp.socket]);
        expect(human.stdout).toContain(`warning: the state file ${stateFile} cannot be written (EPERM) since`);
        expect(listed()).toEqual([r0]); // as it was
        expect(dp.log()).toContain(`the state file ${stateFile} cannot be written (EPERM): the detach of ${r0} made`);
        // Still refused: what a restart would undo (a peer of the operator's).
        expect(vfplane(['dataplane', 'peer', 'add', '192.0.2.4', '--socket', dp.socket]).code).toBe(1);
        spawnSync('chattr', ['-i', dp.stateDir]);
        // The 2 s beat writes it.
        for (let i = 0; i < 50 && listed().length; i++) await new Promise((r) => setTimeout(r, 100));
        expect(listed()).toEqual([]);
        st = (await request(dp.socket, { op: 'status' })) as Status;
        expect(st.stateFile).toBeUndefined();
        expect(dp.log()).toContain(`the state file ${stateFile} is written again (it could not be since`);
      } finally {
        spawnSync('chattr', ['-i', dp.stateDir]);
      }
    } finally {
      await dp.stop();
    }
    dp = await dataplaneOn(n, up, own.dir);
    try {
      expect(((await request(dp.socket, { op: 'status' })) as Status).attachments).toEqual([]);
    } finally {
      await dp.stop();
      vfplane(['vf', 'release', pci, '--owner', 'default/web', '--sysfs-root', m.root, '--state-dir', store]);
      dropSim(m.root);
      own.remove();
    }
  });
});

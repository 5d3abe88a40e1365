// The operator CLI (pf, vf, gc, sim) run as a user runs it, against a simulated NIC with
// real netdevs and a real allocation store; bad input is refused and changes nothing.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, readdirSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AllocStore } from '../../src/alloc/store.js';
import { asSchema1, schemaOf } from '../helpers/store.js';
import { BIN, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { Netns } from '../helpers/netns.js';
import { simPrefix, simRoot, sweepStaleSims } from '../helpers/sim.js';
import { simKernel } from '../../src/sim/kernel.js';
import { Sysfs } from '../../src/sriov/sysfs.js';
import { vfListRows, vfShowView } from '../../src/cli/sriov-run.js';

describePrivileged('operator CLI on a simulated NIC', { netns: true }, () => {
  let root: string;
  let state: string;
  let prefix: string;
  let g: string[]; // the global flags every command gets here

  const run = (args: string[]) => vfplane([...args, ...g]);
  const json = (args: string[]) => {
    const r = run([...args, '--json']);
    if (r.code !== 0) throw new Error(`vfplane ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  /** What `vfplane vf show|list --json` prints, read in this process by the same code
   *  (the tree opened as the CLI opens it, the store read as it is on disk): the state a
   *  test looks at before and after the command it is about, without a Node process per
   *  look. Where `vf show` or `vf list` is what a test is about, the CLI runs. */
  const look = (args: ['vf', 'show', string] | ['vf', 'list'] | ['vf', 'list', '--allocated']): any => {
    const o = { sysfsRoot: root, stateDir: state, json: true };
    const sysfs = new Sysfs(root, simKernel(root));
    return JSON.parse(JSON.stringify(args[1] === 'show' ? vfShowView(sysfs, o, args[2]) : vfListRows(sysfs, { ...o, allocated: args[2] === '--allocated' })));
  };
  /** What an operator would see: the VF table and the host's links. */
  const snapshot = () => ({
    vfs: look(['vf', 'list']),
    links: execFileSync('ip', ['-br', 'link', 'show'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith(prefix)).sort(),
  });

  beforeAll(() => {
    sweepStaleSims();
    root = simRoot();
    prefix = simPrefix();
    state = mkdtempSync(join(tmpdir(), 'vfplane-state-'));
    g = ['--sysfs-root', root, '--state-dir', state];
    const c = vfplane(['sim', 'create', '--profile', 'x710', '--pfs', '2', '--vfs', '4', '--root', root, '--prefix', prefix]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toContain(`--sysfs-root ${root}`);
    writeFileSync(join(state, 'pools.json'), JSON.stringify({
      pools: [
        { name: 'pf0', selector: { pfNames: [`${prefix}f0#0-3`] } },
        { name: 'intel', selector: { vendors: ['8086'], drivers: ['iavf'] } },
        { name: 'wide', selector: { pfNames: [`${prefix}f0#0-9`] } },
        // one pool file for nodes with other NICs: here these select nothing
        { name: 'elsewhere', selector: { pfNames: ['ens9f0'] } },
        { name: 'mlx', selector: { vendors: ['15b3'], drivers: ['mlx5_core'] } },
        { name: 'f1-head', selector: { pfNames: [`${prefix}f1#0-1`] } },
        { name: 'f1-first', selector: { pfNames: [`${prefix}f1#0`] } },
      ],
    }));
  });
  afterAll(() => {
    const d = vfplane(['sim', 'destroy', '--root', root]);
    rmSync(state, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
    expect(d.code, d.stderr).toBe(0);
  });

  it('pf list shows both PFs, their profile, tier and eswitch mode, as a table and as JSON', () => {
    const t = run(['pf', 'list']);
    expect(t.code, t.stderr).toBe(0);
    // an X710 has no switchdev mode: legacy, whatever representors the simulator made (†)
    expect(t.stdout).toMatch(/0000:5e:00\.0.*i40e.*8086:1572.*x710.*2.*legacy †.*4\/64.* 4 .*10G/);
    expect(t.stdout).toContain(`† ${prefix}f0: legacy: the representors are made by the simulator: a real x710 has no switchdev mode, so no representors and no vxlan mode`);
    const j = json(['pf', 'list']);
    expect(j.map((p: any) => p.netdev)).toEqual([`${prefix}f0`, `${prefix}f1`]);
    // the simulator gives every VF a representor, as a switchdev PF's driver does, yet an
    // X710 PF is legacy all the same (was: switchdev)
    expect(j.map((p: any) => [p.eswitch, p.representors])).toEqual([['legacy', 4], ['legacy', 4]]);
    expect(j[0].eswitchNote).toContain('made by the simulator: a real x710 has no switchdev mode');
    // the profile commands say which of this node's PFs they describe
    const prof = json(['profile', 'show', 'x710']);
    expect(prof.pfsHere).toEqual(['0000:5e:00.0', '0000:5e:00.1']);
    expect(json(['profile', 'list']).find((p: any) => p.name === 'e810').pfsHere).toEqual([]);
    expect(JSON.parse(vfplane(['sim', 'show', '--sysfs-root', root, '--json']).stdout).prefix).toBe(prefix);
  });

  it('vf alloc from a pool, by address, release by owner; a second owner gets another VF', () => {
    const a = json(['vf', 'alloc', '--pool', 'pf0', '--owner', 'default/web-0', '--container-id', 'c0ffee01', '--ifname', 'net1']);
    expect(a).toMatchObject({ pci: '0000:5e:02.0', pool: 'pf0', owner: { namespace: 'default', name: 'web-0', containerId: 'c0ffee01' } });
    const b = json(['vf', 'alloc', '--pool', 'pf0', '--owner', 'default/web-1']);
    expect(b.pci).toBe('0000:5e:02.1');
    const c = run(['vf', 'alloc', '--pci', '0000:5e:02.0', '--owner', 'default/web-2']);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/0000:5e:02\.0.*web-0/);
    expect(json(['vf', 'list', '--allocated']).map((v: any) => v.pci)).toEqual(['0000:5e:02.0', '0000:5e:02.1']);
    expect(json(['vf', 'list', '--free', '--pf', `${prefix}f0`]).map((v: any) => v.index)).toEqual([2, 3]);
    const show = run(['vf', 'show', `${prefix}f0#0`]);
    expect(show.stdout).toMatch(/default\/web-0/);
    expect(show.stdout).toMatch(new RegExp(`representor\\s*│?\\s*${prefix}f0r0`));
    expect(json(['vf', 'show', `${prefix}f0#0`]).representor).toBe(`${prefix}f0r0`);
    // The same pod interface asking again gets its allocation back, said as such.
    const again = run(['vf', 'alloc', '--pool', 'pf0', '--owner', 'default/web-0', '--container-id', 'c0ffee01', '--ifname', 'net1']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`already holds 0000:5e:02\\.0 .* since ${a.createdAt.replace(/\./g, '\\.')}; allocation ${a.id}, unchanged`));
    expect(json(['vf', 'alloc', '--pool', 'pf0', '--owner', 'default/web-0', '--container-id', 'c0ffee01', '--ifname', 'net1'])).toMatchObject({ id: a.id, existing: true });
    // A VF by its own netdev, as ip link shows it; a PF's netdev is named as such.
    expect(json(['vf', 'show', `${prefix}f0v1`]).pci).toBe('0000:5e:02.1');
    const pfAsVf = run(['vf', 'show', `${prefix}f0`]);
    expect([pfAsVf.code, pfAsVf.stderr]).toEqual([2, expect.stringContaining(`${prefix}f0 is a PF's netdev (0000:5e:00.0), not a VF`)]);
    // A representor's name: the VF it stands for is named.
    const repAsVf = run(['vf', 'show', `${prefix}f0r1`]);
    expect([repAsVf.code, repAsVf.stderr.trim()]).toEqual([2, `vfplane: ${prefix}f0r1 is the representor of VF 0000:5e:02.1 (its port on the NIC's switch, not the VF's netdev): name the VF as 0000:5e:02.1 or ${prefix}f0v1`]);
    const vfAsPf = run(['vf', 'list', '--pf', `${prefix}f0v1`]);
    expect([vfAsPf.code, vfAsPf.stderr]).toEqual([2, expect.stringContaining(`${prefix}f0v1 is the netdev of VF 0000:5e:02.1, not a PF: give its PF, ${prefix}f0 (0000:5e:00.0)`)]);
    const noSuch = run(['vf', 'show', 'nosuchdev0']);
    expect([noSuch.code, noSuch.stderr]).toEqual([1, expect.stringContaining('no VF has the netdev "nosuchdev0"')]);
    // someone else may not release it; its owner may
    const wrong = run(['vf', 'release', '0000:5e:02.0', '--owner', 'default/web-1']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/web-0/);
    expect(json(['vf', 'release', '--container-id', 'c0ffee01'])).toMatchObject([{ pci: '0000:5e:02.0' }]);
    expect(json(['vf', 'release', '0000:5e:02.1', '--owner', 'default/web-1'])).toHaveLength(1);
    expect(json(['vf', 'list', '--allocated'])).toEqual([]);
  });

  it('vf list and vf show only read the store: one an older vfplane keeps (schema 1) stays at its schema; a command that writes takes it up', () => {
    const own = mkdtempSync(join(tmpdir(), 'vfplane-state1-'));
    try {
      const o = ['--sysfs-root', root, '--state-dir', own];
      const made = vfplane(['vf', 'alloc', '--pci', '0000:5e:02.3', '--owner', 'ns/old', ...o, '--json']);
      expect(made.code, made.stderr).toBe(0);
      const pci = JSON.parse(made.stdout).pci as string;
      asSchema1(join(own, 'alloc.db'));
      const version = () => schemaOf(join(own, 'alloc.db'));
      const list = vfplane(['vf', 'list', '--allocated', ...o, '--json']);
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout).map((v: { pci: string }) => v.pci)).toEqual([pci]);
      const show = vfplane(['vf', 'show', pci, ...o, '--json']);
      expect(show.code, show.stderr).toBe(0);
      expect(JSON.parse(show.stdout).allocation.owner).toMatchObject({ namespace: 'ns', name: 'old' });
      expect(version()).toBe(1);
      const rel = vfplane(['vf', 'release', pci, '--owner', 'ns/old', ...o]);
      expect(rel.code, rel.stderr).toBe(0);
      expect(version()).toBe(3);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  it('release restores the settings the holder changed', () => {
    const before = look(['vf', 'show', `${prefix}f1#1`]);
    json(['vf', 'alloc', '--pci', `${prefix}f1#1`, '--pod-uid', '1b7c2d9e-0000-4000-8000-000000000001']);
    // the VF is the pod's now: changing it needs --force
    const refused = run(['vf', 'config', `${prefix}f1#1`, '--mac', '02:00:00:aa:bb:01']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/allocated to pod 1b7c2d9e-0000-4000-8000-000000000001; release it first, or pass --force/);
    expect(look(['vf', 'show', `${prefix}f1#1`]).settings).toEqual(before.settings);
    // 9800: above the fixed 9702 once enforced; the limit is the netdev driver's (veth here).
    const cfg = json(['vf', 'config', `${prefix}f1#1`, '--mac', '02:00:00:aa:bb:01', '--vlan', '42', '--trust', 'on', '--mtu', '9800', '--force']);
    expect(cfg.changed.sort()).toEqual(['mac', 'mtu', 'trust', 'vlan']);
    const rel = json(['vf', 'release', `${prefix}f1#1`, '--pod-uid', '1b7c2d9e-0000-4000-8000-000000000001']);
    // As data, each step an object, in the order done: the VF's netdev given its own MAC
    // and MTU again, and the PF-side settings put back with their values.
    expect(rel).toEqual([{
      pci: before.pci, owner: { uid: '1b7c2d9e-0000-4000-8000-000000000001' }, id: expect.any(Number),
      putBack: [
        { step: 'netdev-tidied', netdev: before.netdev, restored: { mac: before.mac, mtu: 1500 } },
        { step: 'settings', settings: { mac: before.settings.mac, vlan: before.settings.vlan, trust: before.settings.trust } },
      ],
    }]);
    const after = look(['vf', 'show', `${prefix}f1#1`]);
    expect(after.settings).toEqual(before.settings);
    expect(after.mtu).toBe(before.mtu);
  });

  // Rebound to vfio-pci under its holder (forced), the VF has no netdev when the release
  // would tidy it; bound back to its driver, the new netdev gets its own MAC and MTU too.
  it('release of a VF rebound under its holder gives the netdev that comes back its own MAC and MTU', () => {
    const before = look(['vf', 'show', `${prefix}f1#2`]);
    json(['vf', 'alloc', '--pci', `${prefix}f1#2`, '--owner', 'ops/rebound']);
    json(['vf', 'config', `${prefix}f1#2`, '--mac', '02:33:33:33:33:33', '--mtu', '3000', '--force']);
    expect(json(['vf', 'bind', `${prefix}f1#2`, '--driver', 'vfio-pci', '--force'])).toMatchObject({ after: 'vfio-pci' });
    const rel = json(['vf', 'release', `${prefix}f1#2`, '--owner', 'ops/rebound']);
    expect(rel[0].putBack).toEqual([
      { step: 'driver', driver: before.driver },
      { step: 'settings', settings: { mac: before.settings.mac } },
      { step: 'netdev-tidied', netdev: before.netdev, restored: { mac: before.mac, mtu: before.mtu } },
    ]);
    const after = look(['vf', 'show', `${prefix}f1#2`]);
    expect([after.driver, after.netdev, after.mac, after.mtu, after.settings]).toEqual([before.driver, before.netdev, before.mac, before.mtu, before.settings]);
    expect(execFileSync('ip', ['-br', 'link', 'show', before.netdev], { encoding: 'utf8' })).toContain(before.mac);
  });

  it('vf config --vlan 0 clears the QoS too, so it does not come back with the next VLAN', () => {
    const vf = `${prefix}f1#2`;
    expect(json(['vf', 'config', vf, '--vlan', '42', '--qos', '5']).settings).toMatchObject({ vlan: 42, qos: 5 });
    const off = json(['vf', 'config', vf, '--vlan', '0']);
    expect(off.settings).toMatchObject({ vlan: 0, qos: 0 });
    expect(off.changed.sort()).toEqual(['qos', 'vlan']);
    expect(json(['vf', 'config', vf, '--vlan', '7']).settings).toMatchObject({ vlan: 7, qos: 0 });
    expect(json(['vf', 'config', vf, '--vlan', '0']).settings).toMatchObject({ vlan: 0, qos: 0 });
    // Asked for what already is: said so, not reported as set.
    const again = json(['vf', 'config', vf, '--vlan', '0', '--trust', 'on']);
    expect(again.changed).toEqual(['trust']);
    expect(again.unchanged).toContain('vlan');
    const human = run(['vf', 'config', vf, '--trust', 'on']);
    expect(human.stdout.trim()).toMatch(/^0000:5e:\w\w\.\d: nothing changed; already so: trust$/);
    json(['vf', 'config', vf, '--trust', 'off']);
  });

  /** gc's JSON is data: every put-back step an object of the release vocabulary, none of
   *  the table's sentences (its old `restored` and `wouldPutBack` lists). */
  const noProse = (results: any[]) => {
    const steps = ['vf-gone', 'before-boot', 'driver', 'settings', 'mtu', 'netdev-home', 'netdev-tidied', 'overlay', 'ipam', 'held-elsewhere'];
    for (const r of results) {
      expect(r).not.toHaveProperty('restored');
      expect(r).not.toHaveProperty('wouldPutBack');
      expect(r.putBack.map((s: any) => (typeof s === 'object' && steps.includes(s.step) ? 'step' : s))).toEqual(r.putBack.map(() => 'step'));
    }
    expect(JSON.stringify(results)).not.toMatch(/restored |rebound to|would (restore|rebind|free)|nothing to restore|address released/);
  };

  it('gc releases the VFs of owners that are gone and keeps the rest', () => {
    const pod = Netns.create('gc');
    const netns = `/run/netns/${pod.name}`;
    const g = json(['vf', 'alloc', '--pool', 'intel', '--owner', 'ns1/gone', '--netns', netns]);
    json(['vf', 'alloc', '--pool', 'intel', '--owner', 'ns1/alive', '--pid', String(process.pid)]);
    // its holder set a VLAN; forced under the holder, the change is said to last until the release
    const forced = run(['vf', 'config', g.pci, '--vlan', '7', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toContain(`note: VF ${g.pci} is allocated to pod ns1/gone: its release (the pod's CNI DEL, gc or vf release) puts back the settings the VF had when it was allocated, so this change lasts until then`);
    expect(json(['gc', '--dry-run']).filter((r: any) => r.state === 'gone')).toEqual([]);
    pod.destroy();
    const dry = json(['gc', '--dry-run']);
    // The dry run says what the real one puts back (it said nothing), as data: one object
    // per step, `dry: true`; the words are the table's alone.
    expect(dry.find((r: any) => r.state === 'gone')).toEqual({
      pci: g.pci, owner: expect.objectContaining({ name: 'gone' }), state: 'gone', released: false,
      putBack: [{ step: 'settings', settings: { vlan: 0 }, dry: true }],
    });
    expect(dry.find((r: any) => r.state === 'alive')).toEqual({ pci: expect.any(String), owner: expect.objectContaining({ name: 'alive' }), state: 'alive', released: false, putBack: [] });
    noProse(dry);
    expect(look(['vf', 'show', g.pci]).settings.vlan).toBe(7); // changed nothing
    // Without --json: a table of every allocation and what gc does with it.
    const human = run(['gc', '--dry-run']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/│ VF +│ owner +│ gc +│ put back +│/);
    expect(human.stdout).toMatch(/│ 0000:5e:\w\w\.\d │ pod ns1\/gone[^│]*│ would release \(owner gone\) +│ would restore vlan +│/);
    expect(human.stdout).toMatch(/│ 0000:5e:\w\w\.\d │ pod ns1\/alive[^│]*│ kept \(owner alive\) +│ - +│/);
    expect(human.stdout).toContain('gc --dry-run: would release 1 of 2 allocation(s)');
    const res = json(['gc']);
    expect(res.filter((r: any) => r.released).map((r: any) => r.owner.name)).toEqual(['gone']);
    expect(res.find((r: any) => r.released)).toEqual({
      pci: g.pci, owner: expect.objectContaining({ name: 'gone' }), state: 'gone', released: true,
      putBack: [{ step: 'settings', settings: { vlan: 0 } }],
    });
    noProse(res);
    expect(look(['vf', 'show', g.pci]).settings.vlan).toBe(0);
    expect(look(['vf', 'list', '--allocated']).map((v: any) => v.allocation.owner.name)).toEqual(['alive']);
    const rel = run(['vf', 'release', '--owner', 'ns1/alive']);
    expect(rel.code, rel.stderr).toBe(0);
    expect(rel.stdout).toMatch(/│ released +│ from +│ allocation +│ put back +│/);
    expect(rel.stdout).toMatch(/│ 0000:5e:\w\w\.\d │ pod ns1\/alive[^│]*│ \d+ +│ .* +│/);
  });

  it('gc takes a namespace made again at the owner\'s netns path for another sandbox: the owner is gone, and that sandbox\'s netdev of the pod\'s interface name is left alone', () => {
    const pod = Netns.create('gcre');
    const netns = `/run/netns/${pod.name}`;
    json(['vf', 'alloc', '--pool', 'intel', '--owner', 'ns1/remade', '--netns', netns, '--ifname', 'net1']);
    expect(json(['gc', '--dry-run']).find((r: any) => r.owner.name === 'remade')).toMatchObject({ state: 'alive' });
    // The same path, another namespace: one made while the first still lives, so that its
    // inum differs (a namespace made after the first is freed may get the same one back,
    // which a device:inode identity cannot tell apart; docs/notes.md), bound at the path.
    const other = Netns.create('gcre2');
    pod.destroy();
    execFileSync('touch', [netns]);
    execFileSync('mount', ['--bind', `/run/netns/${other.name}`, netns]);
    // The new sandbox has an interface of the old pod's name: not the VF's, not gc's.
    other.ip(['link', 'add', 'net1', 'mtu', '1280', 'address', '02:00:00:00:cc:01', 'type', 'veth', 'peer', 'name', 'peer1']);
    try {
      expect(json(['gc', '--dry-run']).find((r: any) => r.owner.name === 'remade')).toMatchObject({ state: 'gone', released: false, putBack: [] });
      expect(json(['gc']).find((r: any) => r.owner.name === 'remade')).toMatchObject({ released: true, putBack: [] });
      expect(other.ip(['-br', 'link', 'show', 'net1'])).toMatch(/^net1@peer1\s+\S+\s+02:00:00:00:cc:01 /);
    } finally {
      execFileSync('ip', ['netns', 'del', pod.name]); // unmounts and removes the path
      other.destroy();
    }
  });

  it('gc --dry-run lists the netdev steps the real gc takes (home from a live namespace, tidied in the host\'s), and changes nothing', async () => {
    // Two holders whose process is gone: one's namespace lives on, the VF's netdev in it
    // under the pod's name (the real gc brings it home); the other's netdev is in the
    // host's namespace with another MTU (the real gc gives it its own back, and with it
    // the MTU restore has nothing left to do).
    const sleeper = spawn('sleep', ['60']);
    const pod = Netns.create('gcdry');
    const a = json(['vf', 'alloc', '--pool', 'intel', '--owner', 'ns1/moved', '--netns', pod.path, '--pid', String(sleeper.pid), '--ifname', 'net1']);
    const b = json(['vf', 'alloc', '--pool', 'intel', '--owner', 'ns1/renamed', '--pid', String(sleeper.pid)]);
    sleeper.kill('SIGKILL');
    await new Promise((r) => sleeper.once('exit', r)); // both holders are gone now
    const own = { a: look(['vf', 'show', a.pci]).netdev as string, b: look(['vf', 'show', b.pci]).netdev as string };
    try {
      execFileSync('ip', ['link', 'set', own.a, 'netns', pod.name]);
      pod.ip(['link', 'set', own.a, 'name', 'net1']);
      execFileSync('ip', ['link', 'set', own.b, 'mtu', '1400']);
      const steps = (rs: any[], pci: string) => rs.find((r: any) => r.pci === pci);
      const dry = json(['gc', '--dry-run']);
      noProse(dry);
      expect(steps(dry, a.pci)).toEqual({
        pci: a.pci, owner: expect.objectContaining({ name: 'moved' }), state: 'gone', released: false,
        putBack: [{ step: 'netdev-home', netdev: own.a, from: pod.path, dry: true }],
      });
      expect(steps(dry, b.pci)).toEqual({
        pci: b.pci, owner: expect.objectContaining({ name: 'renamed' }), state: 'gone', released: false,
        putBack: [{ step: 'netdev-tidied', netdev: own.b, restored: { mtu: 1500 }, dry: true }],
      });
      const human = run(['gc', '--dry-run']);
      expect(human.stdout).toContain(`would bring netdev ${own.a} back from ${pod.path}`);
      expect(human.stdout).toContain(`netdev ${own.b}: would restore mtu 1500`);
      // Nothing changed: the netdevs where they were, as they were, the VFs still held.
      expect(pod.ip(['-br', 'link', 'show', 'net1'])).toMatch(/^net1@?\S* /);
      expect(execFileSync('ip', ['-o', 'link', 'show', own.b], { encoding: 'utf8' })).toMatch(/ mtu 1400 /);
      expect(look(['vf', 'list', '--allocated']).map((v: any) => v.pci)).toEqual(expect.arrayContaining([a.pci, b.pci]));
      // The real gc takes exactly the steps the dry run listed.
      const res = json(['gc']);
      for (const pci of [a.pci, b.pci]) {
        expect(steps(res, pci)).toMatchObject({ state: 'gone', released: true });
        expect(steps(res, pci).putBack).toEqual(steps(dry, pci).putBack.map(({ dry: _, ...s }: any) => s));
      }
      expect(look(['vf', 'show', a.pci])).toMatchObject({ netdev: own.a, allocation: null });
      expect(look(['vf', 'show', b.pci])).toMatchObject({ netdev: own.b, mtu: 1500, allocation: null });
    } finally {
      // Whatever a failure left: the netdevs home under their own names.
      spawnSync('ip', ['-n', pod.name, 'link', 'set', 'net1', 'name', own.a]);
      spawnSync('ip', ['-n', pod.name, 'link', 'set', own.a, 'netns', '1']);
      spawnSync('ip', ['link', 'set', own.b, 'mtu', '1500']);
      pod.destroy();
      for (const [pci, who] of [[a.pci, 'ns1/moved'], [b.pci, 'ns1/renamed']]) if (look(['vf', 'show', pci]).allocation) run(['vf', 'release', pci, '--owner', who]);
    }
  });

  /** Allocations from the pool `intel` for owners OWNERS, whose process is gone by the
   *  time this returns, each recorded as vfplane-cni records a VF it put on VXLAN 100
   *  through the data plane at SOCKS[i] (through the store, as the plugin does). */
  const overlayOrphans = async (owners: string[], socks: string[]) => {
    const sleeper = spawn('sleep', ['60']);
    const as = owners.map((o) => json(['vf', 'alloc', '--pool', 'intel', '--owner', o, '--pid', String(sleeper.pid)]) as { id: number; pci: string });
    sleeper.kill('SIGKILL');
    await new Promise((r) => sleeper.once('exit', r)); // their holder is gone now
    const store = AllocStore.open(state, { sysfsRoot: root });
    try {
      as.forEach((a, i) => store.setAttachment(a.id, { mode: 'kernel', vxlan: { vni: 100 }, representor: `${prefix}rep${i}`, dataplane: socks[i]! }));
    } finally {
      store.close();
    }
    return as;
  };
  /** vfplane with the global flags, as a child this process does not wait on (its event
   *  loop stays free: a data plane stand-in served here can accept the CLI's connection). */
  const runAsync = (args: string[], env: Record<string, string> = {}) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args, ...g], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    p.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
  const releaseIfHeld = (pci: string, owner: string) => {
    if (look(['vf', 'show', pci]).allocation) run(['vf', 'release', pci, '--owner', owner]);
  };

  it('gc --dry-run says a data plane that is not running (no socket, or nobody listening) would not be asked, as the real gc reports it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'h45-dp-'));
    const none = join(dir, 'none.sock'); // no socket file at all
    const stale = join(dir, 'stale.sock'); // the socket file of a data plane that died: refused
    spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(existsSync(stale)).toBe(true);
    const [a, b] = await overlayOrphans(['ns1/ovl-none', 'ns1/ovl-stale'], [none, stale]);
    try {
      const find = (rs: any[], pci: string) => rs.find((r: any) => r.pci === pci);
      const notRunning = (sock: string, code: string, pci: string) =>
        `data plane not running (no data plane listens on ${sock} (${code}); start it with \`vfplane dataplane run --config FILE\`); it forgets VF ${pci} when it starts`;
      const dry = json(['gc', '--dry-run']);
      noProse(dry);
      // No failure: a data plane that does not run is no reason to doubt the plan.
      expect(find(dry, a!.pci)).toEqual({
        pci: a!.pci, owner: expect.objectContaining({ name: 'ovl-none' }), state: 'gone', released: false,
        putBack: [{ step: 'overlay', detached: false, why: notRunning(none, 'ENOENT', a!.pci), dry: true }],
      });
      expect(find(dry, b!.pci)).toEqual({
        pci: b!.pci, owner: expect.objectContaining({ name: 'ovl-stale' }), state: 'gone', released: false,
        putBack: [{ step: 'overlay', detached: false, why: notRunning(stale, 'ECONNREFUSED', b!.pci), dry: true }],
      });
      const human = run(['gc', '--dry-run']);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).not.toContain('cannot tell');
      expect(human.stdout).toContain(`data plane not running (no data plane listens on ${none} (ENOENT)`);
      // Nothing changed: both still held.
      expect(look(['vf', 'list', '--allocated']).map((v: any) => v.pci)).toEqual(expect.arrayContaining([a!.pci, b!.pci]));
      // The real gc reports the same steps, and releases both VFs.
      const res = json(['gc']);
      for (const pci of [a!.pci, b!.pci]) {
        expect(find(res, pci)).toMatchObject({ state: 'gone', released: true });
        expect(find(res, pci)).not.toHaveProperty('failure');
        expect(find(res, pci).putBack).toEqual(find(dry, pci).putBack.map(({ dry: _, ...s }: any) => s));
        expect(look(['vf', 'show', pci]).allocation).toBeNull();
      }
    } finally {
      releaseIfHeld(a!.pci, 'ns1/ovl-none');
      releaseIfHeld(b!.pci, 'ns1/ovl-stale');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gc --dry-run cannot tell what a data plane that never answers would do: a cannot-tell failure naming its socket, asked for status once, nothing changed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'h45-dp-'));
    const sock = join(dir, 'dp.sock');
    // A data plane stand-in that accepts connections and never replies.
    const conns: Socket[] = [];
    const got: string[][] = []; // what each connection sent
    const srv = createServer((c) => {
      conns.push(c);
      const mine: string[] = [];
      got.push(mine);
      let buf = '';
      c.setEncoding('utf8');
      c.on('error', () => {});
      c.on('data', (d: string) => {
        buf += d;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          mine.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
    });
    await new Promise<void>((r) => srv.listen(sock, r));
    const stop = () => new Promise<void>((r) => {
      for (const c of conns) c.destroy();
      srv.close(() => r());
    });
    const [a, b] = await overlayOrphans(['ns1/ovl-mute1', 'ns1/ovl-mute2'], [sock, sock]);
    // Its replies waited for 2 s, not 10 (and the status probe 2 s, not its 5: the shorter wins).
    const quick = { VFPLANE_CONTROL_TIMEOUT_MS: '2000' };
    try {
      const r = await runAsync(['gc', '--dry-run', '--json'], quick);
      expect(r.code, r.stderr).toBe(0);
      const dry = JSON.parse(r.stdout);
      noProse(dry);
      const why = `would ask the data plane at ${sock} to take it off the overlay`;
      for (const [x, name] of [[a!, 'ovl-mute1'], [b!, 'ovl-mute2']] as const) {
        expect(dry.find((rec: any) => rec.pci === x.pci)).toEqual({
          pci: x.pci, owner: expect.objectContaining({ name }), state: 'gone', released: false,
          putBack: [{ step: 'overlay', detached: false, why, dry: true }],
          failure: 'cannot-tell',
          error: `whether the data plane at ${sock} would take it off the overlay: it did not answer status (the data plane at ${sock} did not answer status within 2000 ms)`,
        });
      }
      // Asked once for both (one connection, one wait), and for its status only.
      expect(got).toEqual([['{"op":"status"}']]);
      // Nothing changed: both still held, still recorded on the overlay.
      for (const [x, name] of [[a!, 'ovl-mute1'], [b!, 'ovl-mute2']] as const) {
        expect(look(['vf', 'show', x.pci]).allocation).toMatchObject({ owner: { name }, attachment: { vxlan: { vni: 100 }, dataplane: sock } });
      }
      // The real gc asks that data plane, as the dry run said it would. It still never
      // answers: one detach and one wait for both VFs, not one per VF; each VF is put back
      // and released, its overlay step saying why it was not taken off.
      got.length = 0;
      const res = await runAsync(['gc', '--json'], quick);
      expect(res.code, res.stderr).toBe(0);
      for (const x of [a!, b!]) {
        expect(JSON.parse(res.stdout).find((rec: any) => rec.pci === x.pci)).toEqual({
          pci: x.pci, owner: expect.any(Object), state: 'gone', released: true,
          putBack: [{ step: 'overlay', detached: false, why: `not taken off the overlay (the data plane at ${sock} did not answer detach within 2000 ms); the data plane drops it at its next start` }],
        });
        expect(look(['vf', 'show', x.pci]).allocation).toBeNull();
      }
      expect(got).toHaveLength(1);
      expect(got[0]!.map((l) => JSON.parse(l).op)).toEqual(['detach']);
    } finally {
      // Stopped first: a release asks a running data plane, which would not answer.
      await stop();
      releaseIfHeld(a!.pci, 'ns1/ovl-mute1');
      releaseIfHeld(b!.pci, 'ns1/ovl-mute2');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('release and gc put a VF back before they mark it free: one whose restore fails stays allocated, and the next try finishes', async () => {
    // The simulator keeps VF settings under its state directory: made immutable, every
    // settings write (the restore's) fails with EPERM, as a refusing driver would.
    const vfDir = join(root, 'vfplane-sim-state', 'vf');
    const held = (pci: string) => look(['vf', 'show', pci]);
    json(['vf', 'alloc', '--pci', '0000:5e:02.3', '--owner', 'ns1/stuck']);
    json(['vf', 'config', '0000:5e:02.3', '--vlan', '33', '--force']);
    const sleeper = spawn('sleep', ['60']);
    json(['vf', 'alloc', '--pci', '0000:5e:02.2', '--owner', 'ns1/dead', '--pid', String(sleeper.pid)]);
    sleeper.kill('SIGKILL');
    await new Promise((r) => sleeper.once('exit', r)); // its owner is gone now
    json(['vf', 'config', '0000:5e:02.2', '--vlan', '34', '--force']);
    execFileSync('chattr', ['+i', vfDir]);
    try {
      const r = run(['vf', 'release', '0000:5e:02.3', '--owner', 'ns1/stuck']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/VF 0000:5e:02\.3 \(pod ns1\/stuck\) stays allocated: putting it back failed .*; fix that and release it again/);
      expect(held('0000:5e:02.3')).toMatchObject({ allocation: { owner: { name: 'stuck' } }, settings: { vlan: 33 } });
      const g1 = run(['gc']);
      expect(g1.code).toBe(1);
      expect(g1.stderr).toMatch(/gc: VF 0000:5e:02\.2 \(pod ns1\/dead.*\) stays allocated: putting it back failed/);
      expect(held('0000:5e:02.2')).toMatchObject({ allocation: { owner: { name: 'dead' } }, settings: { vlan: 34 } });
      // --json: stdout is the error object alone (a table was printed before it).
      const gj = run(['gc', '--json']);
      expect(gj.code).toBe(1);
      expect(JSON.parse(gj.stdout).error).toMatchObject({ message: expect.stringMatching(/stays allocated/), details: { results: expect.any(Array) } });
      expect(JSON.parse(gj.stdout).error.details.results.find((x: any) => x.pci === '0000:5e:02.2'))
        .toMatchObject({ state: 'gone', released: false, putBack: [], failure: 'put-back', error: expect.any(String) });
    } finally {
      execFileSync('chattr', ['-i', vfDir]);
    }
    json(['vf', 'release', '0000:5e:02.3', '--owner', 'ns1/stuck']);
    expect(held('0000:5e:02.3')).toMatchObject({ allocation: null, settings: { vlan: 0 } });
    expect(json(['gc']).filter((x: any) => x.released).map((x: any) => x.pci)).toEqual(['0000:5e:02.2']);
    expect(held('0000:5e:02.2')).toMatchObject({ allocation: null, settings: { vlan: 0 } });
  });

  it('vf config waits for an allocation in progress, then refuses the VF it took (no change between the holder check and the change)', async () => {
    const pci = '0000:5e:02.1';
    const mac = look(['vf', 'show', pci]).settings.mac;
    const go = join(state, 'go-config');
    const started = (args: string[], env: Record<string, string> = {}) => {
      const p = spawn(process.execPath, [BIN, ...args, ...g], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      p.stderr!.on('data', (d) => { err += d; });
      const done = new Promise<{ code: number | null; stderr: string }>((r) => p.on('close', (code) => r({ code, stderr: err })));
      return { p, done };
    };
    // An allocation that sits inside its transaction (the store's test hook) until `go`.
    const alloc = started(['vf', 'alloc', '--pci', pci, '--owner', 'ns1/racer', '--ifname', 'net1'], { VFPLANE_TEST_PAUSE_IN_TXN: go });
    for (let i = 0; i < 1500 && !existsSync(`${go}.in-txn`); i++) await new Promise((r) => setTimeout(r, 10));
    expect(existsSync(`${go}.in-txn`)).toBe(true);
    const config = started(['vf', 'config', pci, '--mac', '02:00:00:00:77:01']);
    const early = await Promise.race([config.done, new Promise((r) => setTimeout(() => r('waiting'), 1500))]);
    expect(early).toBe('waiting'); // it waits for the allocation, not reading the store before it commits
    writeFileSync(go, '');
    expect((await alloc.done).code).toBe(0);
    const c = await config.done;
    expect(c.code, c.stderr).toBe(1);
    expect(c.stderr).toContain(`VF ${pci} is allocated to pod ns1/racer (net1); release it first, or pass --force`);
    expect(look(['vf', 'show', pci]).settings.mac).toBe(mac);
    json(['vf', 'release', pci, '--owner', 'ns1/racer']);
  });

  it('a state directory that cannot be read is an error, not "nothing allocated" (vf config would skip its holder check)', () => {
    const file = join(state, 'not-a-dir');
    writeFileSync(file, 'x\n');
    for (const args of [['vf', 'list', '--allocated'], ['vf', 'config', '0000:5e:02.1', '--vlan', '3'], ['gc']]) {
      const r = vfplane([...args, '--sysfs-root', root, '--state-dir', file]);
      expect({ args, code: r.code }).toEqual({ args, code: 1 });
      expect(r.stderr).toContain(`cannot read the allocation store ${file}/alloc.db: ${file} is not a directory`);
    }
    expect(look(['vf', 'show', '0000:5e:02.1']).settings.vlan).toBe(0);
    // A directory where the store's file goes is named as such (it was called read-only).
    const dir = join(state, 'db-is-dir');
    mkdirSync(join(dir, 'alloc.db'), { recursive: true });
    const r = vfplane(['vf', 'list', '--sysfs-root', root, '--state-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the allocation store ${dir}/alloc.db is a directory, not a database file; move it away`);
  });

  it('a store damaged past its first pages is named damaged by every command, with the command that moves it aside', () => {
    const dir = join(state, 'torn');
    const s = AllocStore.open(dir); // many rows (the table past the header page), then pages 2-9 overwritten
    for (let i = 0; i < 40; i++) s.allocate({ candidates: [{ pci: `0000:77:0${Math.floor(i / 8)}.${i % 8}`, pf: '0000:77:00.0', index: i } as never], owner: { namespace: 'ns', name: `p${i}`, network: 'n'.repeat(200) } });
    s.close();
    const file = join(dir, 'alloc.db');
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(8 * 4096, 0xa5), 0, 8 * 4096, 4096);
    closeSync(fd);
    for (const args of [['vf', 'list'], ['vf', 'alloc', '--pci', '0000:5e:02.0', '--owner', 'default/torn'], ['vf', 'release', '0000:5e:02.1', '--force'], ['gc']]) {
      const r = vfplane([...args, '--sysfs-root', root, '--state-dir', dir]);
      expect({ args, code: r.code }).toEqual({ args, code: 1 });
      expect(r.stderr).toContain(`the allocation store ${file} is damaged (database disk image is malformed), and vfplane cannot repair it; move it aside with its -wal and -shm`);
      expect(r.stderr).toMatch(/`mkdir \S+\/damaged-\d{8}T\d{6}Z && for f in alloc\.db alloc\.db-wal alloc\.db-shm; do \[ ! -e \S+\/"\$f" \] \|\| mv \S+\/"\$f" \S+\/; done`/);
    }
  });

  it('vf list and vf show read a store on a read-only filesystem; a command that writes is refused and changes nothing', () => {
    const mnt = mkdtempSync(join(tmpdir(), 'vfplane-ro-'));
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]).status).toBe(0);
    try {
      const o = ['--sysfs-root', root, '--state-dir', mnt];
      const a = vfplane(['vf', 'alloc', '--pci', '0000:5e:02.3', '--owner', 'default/ro', '--ifname', 'net1', '--json', ...o]);
      expect(a.code, a.stderr).toBe(0);
      expect(readdirSync(mnt).sort()).toEqual(['alloc.db', 'alloc.lock']); // closed: no -wal, no -shm
      expect(spawnSync('mount', ['-o', 'remount,ro', mnt]).status).toBe(0);
      const l = vfplane(['vf', 'list', '--allocated', '--json', ...o]);
      expect(l.code, l.stderr).toBe(0);
      expect(JSON.parse(l.stdout).map((v: { pci: string; allocation: { owner: { name: string } } }) => [v.pci, v.allocation.owner.name])).toEqual([['0000:5e:02.3', 'ro']]);
      const sh = vfplane(['vf', 'show', '0000:5e:02.3', '--json', ...o]);
      expect(sh.code, sh.stderr).toBe(0);
      expect(JSON.parse(sh.stdout).allocation.owner.name).toBe('ro');
      const r = vfplane(['vf', 'release', '0000:5e:02.3', '--force', ...o]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`the allocation store ${mnt}/alloc.db cannot be written`);
      expect(spawnSync('mount', ['-o', 'remount,rw', mnt]).status).toBe(0);
      expect(json(['vf', 'show', '0000:5e:02.3']).allocation).toBeFalsy(); // the suite's own store: not this one
      const back = vfplane(['vf', 'release', '0000:5e:02.3', '--force', '--json', ...o]);
      expect(back.code, back.stderr).toBe(0);
    } finally {
      spawnSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });

  it('bind to vfio-pci and back through the CLI', () => {
    const r = json(['vf', 'bind', `${prefix}f0#3`, '--driver', 'vfio-pci']);
    expect(r).toMatchObject({ after: 'vfio-pci', netdev: null });
    expect(run(['vf', 'list']).stdout).toMatch(new RegExp(`│ - \\(vfio ${r.vfioDevice.split('/').pop()}\\) +│`)); // not in place of a netdev
    expect(json(['vf', 'bind', `${prefix}f0#3`, '--driver', 'kernel'])).toMatchObject({ after: 'iavf', netdev: `${prefix}f0v3` });
  });

  // helper-86: a vfio-pci VF that a DPDK application outside vfplane has open (a pod
  // sriov-cni gave it to, on a node being migrated) was handed out again.
  it('a vfio-pci VF whose VFIO group a process has open (through any path) is not allocated, rebound or destroyed; vf show and list name the process', async () => {
    const r = json(['vf', 'bind', `${prefix}f0#3`, '--driver', 'vfio-pci']);
    expect(existsSync(r.vfioDevice)).toBe(true);
    json(['vf', 'bind', `${prefix}f0#2`, '--driver', 'vfio-pci']);
    json(['vf', 'alloc', '--pci', `${prefix}f0#2`, '--owner', 'ns/first']);
    const pools = join(state, 'dpdk-pools.json');
    writeFileSync(pools, JSON.stringify({ pools: [{ name: 'dpdk', selector: { drivers: ['vfio-pci'] } }] }));
    // Held through another path in a mount namespace of its own, as a container sees its
    // /dev (helper-88: matched by path, it went unseen).
    const mnt = join(state, 'vfio-elsewhere');
    mkdirSync(mnt);
    const file = r.vfioDevice.split('/').pop();
    const holder = spawn('unshare', ['-m', 'sh', '-c', `mount --bind ${r.vfioDevice.slice(0, -file.length - 1)} ${mnt} && exec 9<>${mnt}/${file} && exec sleep 60`], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !json(['vf', 'show', `${prefix}f0#3`]).vfioOpenBy?.comm?.startsWith('sleep'); i++) await new Promise((res) => setTimeout(res, 20));
      expect(json(['vf', 'show', `${prefix}f0#3`]).vfioOpenBy).toEqual({ pid: holder.pid, comm: 'sleep' });
      const shown = run(['vf', 'show', `${prefix}f0#3`]).stdout;
      expect(shown).toContain(`${r.vfioDevice} (open in process ${holder.pid}, sleep)`);
      expect(shown).toMatch(new RegExp(`holder +│ none in vfplane, but in use: its VFIO group is open in process ${holder.pid} \\(sleep\\)`));
      expect(run(['vf', 'list']).stdout).toMatch(new RegExp(`0000:5e:02\\.3 .*│ in use: process ${holder.pid} \\(sleep\\) +│`));
      expect(json(['vf', 'list', '--free']).map((v: { pci: string }) => v.pci)).not.toContain('0000:5e:02.3');
      const before = snapshot();
      // One VF of the pool allocated, the other held: both said, with what to do about each.
      const q = run(['vf', 'alloc', '--pool', 'dpdk', '--pools', pools, '--owner', 'ns/dpdk']);
      expect(q.code, q.stderr).toBe(1);
      expect(q.stderr).toContain('1 VF match, all allocated (0000:5e:02.2 to pod ns/first)');
      expect(q.stderr).toContain(`besides, 1 more of pool "dpdk" cannot be given: 0000:5e:02.3 is bound to vfio-pci and its VFIO group ${r.vfioDevice} is open in process ${holder.pid} (sleep): a DPDK application vfplane did not give it to uses it; it is that process's: stop it (a DPDK application vfplane did not give it to), or use another VF`);
      expect(q.stderr).not.toContain('--force');
      json(['vf', 'release', '--owner', 'ns/first']);
      const only = run(['vf', 'alloc', '--pools', pools, '--pool', 'dpdk', '--owner', 'ns/dpdk']);
      expect(only.code, only.stderr).toBe(0); // 02.2, released just now
      json(['vf', 'release', '--owner', 'ns/dpdk']);
      const p = run(['vf', 'alloc', '--pci', '0000:5e:02.3', '--owner', 'ns/dpdk']);
      expect(p.code, p.stderr).toBe(1);
      expect(p.stderr).toContain(`VF 0000:5e:02.3 is bound to vfio-pci and its VFIO group ${r.vfioDevice} is open in process ${holder.pid} (sleep): a DPDK application vfplane did not give it to uses it, and no allocation explains it`);
      // Nor rebound, nor destroyed with its PF's VFs, without --force (helper-88).
      const b = run(['vf', 'bind', '0000:5e:02.3', '--driver', 'kernel']);
      expect(b.code, b.stderr).toBe(1);
      expect(b.stderr).toContain(`VF 0000:5e:02.3 is bound to vfio-pci and its VFIO group ${r.vfioDevice} is open in process ${holder.pid} (sleep), a DPDK application; rebinding would pull the VF from under it. Stop it first, or pass --force`);
      const n = run(['pf', 'set-numvfs', `${prefix}f0`, '0']);
      expect(n.code, n.stderr).toBe(1);
      expect(n.stderr).toContain(`has VFs whose VFIO groups are open in processes outside vfplane (DPDK applications): 0000:5e:02.3 in ${holder.pid} (sleep); changing the VF count pulls them from under those processes`);
      expect(snapshot().links).toEqual(before.links);
    } finally {
      const gone = new Promise((res) => holder.once('exit', res));
      holder.kill();
      await gone;
    }
    // Closed, it is free to give.
    expect(json(['vf', 'alloc', '--pci', '0000:5e:02.3', '--owner', 'ns/dpdk']).pci).toBe('0000:5e:02.3');
    json(['vf', 'release', '--owner', 'ns/dpdk']);
    expect(json(['vf', 'bind', `${prefix}f0#3`, '--driver', 'kernel'])).toMatchObject({ after: 'iavf', netdev: `${prefix}f0v3` });
    expect(json(['vf', 'bind', `${prefix}f0#2`, '--driver', 'kernel'])).toMatchObject({ after: 'iavf', netdev: `${prefix}f0v2` });
  });

  it('refuses bad input with a clear error and the right exit code, and changes nothing', async () => {
    json(['vf', 'alloc', '--pci', '0000:5e:02.2', '--owner', 'default/holder', '--ifname', 'net1']);
    const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    const bad = join(state, 'bad-pools.json');
    writeFileSync(bad, '{"pools": [');
    const empty = join(state, 'empty-selector.json');
    writeFileSync(empty, JSON.stringify({ pools: [{ name: 'pf0', selector: {} }] }));
    const missing = join(state, 'no-such-pools.json');
    const before = snapshot();
    const cases: [string[], number, RegExp][] = [
      [['vf', 'show', '0000:5e:02'], 2, /malformed: expected DDDD:BB:DD\.F/],
      [['vf', 'show', '0000:5E:02.0x'], 2, /malformed/],
      [['vf', 'show', '5e:02.0'], 2, /VF address "5e:02\.0" is malformed: it lacks the PCI domain; give the full address, such as 0000:5e:02\.0/],
      [['vf', 'show', '../../../etc/passwd'], 2, /malformed/],
      [['vf', 'show', '/sys/bus/pci/devices/0000:5e:02.0'], 2, /malformed/],
      [['vf', 'config', '0000:5e:02.0/../../x', '--vlan', '1'], 2, /malformed/],
      [['pf', 'set-numvfs', '../etc', '1'], 2, /not a valid Linux interface name/],
      [['pf', 'set-numvfs', '5e:00.0', '1'], 2, /PF "5e:00\.0" lacks the PCI domain: name it by its full address, such as 0000:5e:00\.0, or by its netdev/],
      [['pf', 'set-numvfs', `${prefix}f0`, '-1'], 2, /the number of VFs <n> "-1" is out of range/],
      [['vf', 'alloc', '--pci', '0000:5e:02.1', '--pools', '/nonexistent.json', '--owner', 'a/b'], 2, /--pools names the file --pool looks in; with --pci no pool is read/],
      [['vf', 'show', '0000:99:00.0'], 1, /no PCI device 0000:99:00\.0/],
      [['vf', 'show', '0000:5e:00.0'], 2, /is not a VF/],
      [['vf', 'show', `${prefix}f0#99`], 1, /VF index "99" is out of range for PF .*4 VF\(s\), indexes 0–3/],
      [['vf', 'show', `${prefix}f0#-1`], 2, /VF index "-1" .* is malformed/],
      // a pool file's mistakes are bad input, not usage errors: exit 1, the file and the fix named
      [['vf', 'alloc', '--pool', 'wide', '--owner', 'a/b'], 1, /pools\.json: pool wide: pfNames\[0\]: .*: VF index out of range: .*; fix the range or create more VFs$/m],
      [['vf', 'alloc', '--pool', 'pf0', '--owner', 'a/b', '--pools', bad], 1, new RegExp(`${esc(bad)}: not valid JSON: .*; fix ${esc(bad)}, or pass --pools with another file`)],
      [['vf', 'alloc', '--pool', 'pf0', '--owner', 'a/b', '--pools', empty], 1, new RegExp(`${esc(empty)}: pools\\[0\\]\\.selector: \\{\\}: a selector with no criteria .*; fix ${esc(empty)}, or pass --pools with another file`)],
      [['vf', 'alloc', '--pool', 'pf0', '--owner', 'a/b', '--pools', missing], 1, new RegExp(`no pool definitions at ${esc(missing)}; write one \\(see README, "Pools"\\) or pass --pools FILE`)],
      [['vf', 'alloc', '--pool', 'nope', '--owner', 'a/b'], 1, /nope/],
      [['vf', 'alloc', '--pool', 'elsewhere', '--owner', 'a/b'], 1, new RegExp(`no VF on this node matches pool "elsewhere" \\(.*pools\\.json\\): pfNames \\["ens9f0"\\] matches none: this node's PFs with VFs are ${prefix}f0, ${prefix}f1$`, 'm')],
      [['vf', 'alloc', '--pool', 'mlx', '--owner', 'a/b'], 1, /: vendors \["15b3"\] matches none: VFs here have vendor 8086; drivers \["mlx5_core"\] matches none: VFs here are bound to iavf$/m],
      [['pf', 'set-numvfs', `${prefix}f0`, '65'], 1, /supports at most 64 VFs.*65 is above it/],
      [['pf', 'set-numvfs', `${prefix}f0`, '0'], 1, /allocated VFs.*default\/holder/],
      [['pf', 'set-numvfs', `${prefix}f1`, '2'], 1, /only through 0/],
      [['vf', 'release', '0000:5e:02.2', '--owner', 'default/other'], 1, /default\/holder/],
      [['vf', 'release', '0000:5e:02.2'], 1, /held by pod default\/holder.*--force/],
      [['vf', 'release', '0000:5e:02.2', '--ifname', 'net1'], 1, /allocated to pod default\/holder \(net1\); the owner fields given \(ifname\) do not say whose VF.*--force/],
      [['vf', 'release', '0000:5e:02.2', '--netns', '/x'], 1, /allocated to pod default\/holder \(net1\); the owner fields given \(netns\) do not say whose VF/],
      [['vf', 'release', '0000:5e:02.3', '--owner', 'default/holder'], 1, /not allocated|is free|no allocation/],
      [['vf', 'bind', '0000:5e:02.2', '--driver', 'vfio-pci'], 1, /allocated to pod default\/holder/],
      [['vf', 'bind', '0000:5e:02.1', '--driver', 'i40e'], 2, /--driver "i40e" is not one of: vfio-pci, kernel/],
      [['vf', 'bind', '0000:5e:02.1', '--driver', 'iavf'], 2, /--driver "iavf" is not one of: vfio-pci, kernel/],
      [['vf', 'config', '0000:5e:02.2', '--link-state', 'disable'], 1, /VF 0000:5e:02\.2 is allocated to pod default\/holder \(net1\); release it first, or pass --force/],
      [['vf', 'config', '0000:5e:02.2', '--mtu', '9000'], 1, /allocated to pod default\/holder/],
      [['vf', 'config', '0000:5e:02.1', '--vlan', '4095'], 2, /--vlan "4095" is out of range/],
      [['vf', 'config', '0000:5e:02.1', '--mac', '01:00:5e:00:00:01'], 2, /multicast/],
      [['vf', 'config', '0000:5e:02.1'], 2, /nothing to change/],
      // what this X710's driver (i40e) refuses: a fact of the NIC, so exit 1, before any change
      [['vf', 'config', '0000:5e:02.1', '--min-tx-rate', '100'], 1, /min-tx-rate 100: the x710 family's PF driver \(i40e\) has no minimum rate for VFs/],
      [['vf', 'config', '0000:5e:02.1', '--vlan', '5', '--vlan-proto', '802.1ad'], 1, /vlan-proto 802\.1ad: the x710 family's PF driver \(i40e\) takes only 802\.1Q/],
      [['vf', 'config', '0000:5e:02.1', '--max-tx-rate', '40000'], 1, /max-tx-rate 40000 is above the PF's link speed, 10000 Mbit\/s/],
      [['vf', 'alloc', '--pool', 'pf0'], 2, /needs an owner/],
      [['vf', 'alloc', '--pool', 'pf0', '--owner', 'noslash'], 2, /namespace\/name/],
      // gc judges an owner by its netns file: a path trick, or a file that is no netns, would
      // have it released at the next gc
      [['vf', 'alloc', '--pool', 'pf0', '--owner', 'ns/a', '--netns', '/run/netns/../x'], 2, /--netns "\/run\/netns\/\.\.\/x" is not a network namespace file: expected an absolute path without "\.\."/],
      [['vf', 'alloc', '--pool', 'pf0', '--owner', 'ns/a', '--netns', '/tmp'], 2, /--netns \/tmp is not a network namespace \(not a file on nsfs\)/],
      // a namespace, a process that is not there: facts of the host, not usage errors
      [['vf', 'alloc', '--pool', 'pf0', '--owner', 'ns/a', '--netns', '/run/netns/vfplane-no-such-ns'], 1, /--netns \/run\/netns\/vfplane-no-such-ns is not a network namespace \(no such file\)/],
      [['vf', 'alloc', '--pool', 'pf0', '--owner', 'ns/a', '--pid', '4000000'], 1, /--pid 4000000: no such process; give a running process/],
      // a free VF has no owner to ask for
      [['vf', 'release', '0000:5e:02.3'], 1, /VF 0000:5e:02\.3 is not allocated; `vfplane vf list --allocated` shows what is/],
    ];
    // A refusal changes nothing, so they run three at a time (each call is mostly Node
    // starting); the snapshot after all of them shows that none changed anything. Each
    // runs with --json, whose error goes to stderr as without it (one report for both);
    // every fourth without, that the plain form says the same.
    const calls = cases.flatMap(([args], k) => (k % 4 === 0 ? [[...args, '--json'], args] : [[...args, '--json']]));
    const out: Awaited<ReturnType<typeof runAsync>>[] = [];
    let next = 0;
    await Promise.all([0, 1, 2].map(async () => {
      for (let i = next++; i < calls.length; i = next++) out[i] = await runAsync(calls[i]!);
    }));
    let at = 0;
    for (const [k, [args, code, msg]] of cases.entries()) {
      const j = out[at++]!;
      expect({ args, code: j.code }).toEqual({ args, code });
      expect(j.stderr, args.join(' ')).toMatch(msg);
      expect(JSON.parse(j.stdout).error.message).toMatch(msg);
      if (k % 4 !== 0) continue;
      const r = out[at++]!;
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr, args.join(' ')).toMatch(msg);
      expect(r.stdout).toBe('');
    }
    expect(snapshot()).toEqual(before);
    expect(readdirSync(state).sort()).toEqual(expect.arrayContaining(['alloc.db', 'pools.json']));
    json(['vf', 'release', '0000:5e:02.2', '--owner', 'default/holder']);
  });

  it('vf alloc --pool skips, and --pci refuses, a VF whose netdev is in another namespace with no allocation (as vfplane-cni does)', () => {
    // Someone moved VF 0's netdev into a namespace of their own, outside vfplane.
    const other = Netns.create('foreign');
    const netdev = `${prefix}f1v0`;
    execFileSync('ip', ['link', 'set', netdev, 'netns', other.name]);
    try {
      expect(json(['vf', 'show', `${prefix}f1#0`]).netdev).toBeNull();
      // Not listed as free (it was, and `vf alloc` then refused it): said why.
      const shown = json(['vf', 'show', `${prefix}f1#0`]);
      const pci0 = shown.pci as string;
      // vf show --json says it as vf list does (helper-103: only `allocation: null` there).
      expect(shown).toMatchObject({ allocation: null, unusable: 'is bound to iavf with no netdev in the host namespace', fix: expect.stringContaining(`vfplane vf bind ${pci0} --driver kernel --force`) });
      expect(json(['vf', 'list', '--free']).map((v: { pci: string }) => v.pci)).not.toContain(pci0);
      expect(json(['vf', 'list']).find((v: { pci: string }) => v.pci === pci0)).toMatchObject({ allocation: null, unusable: 'is bound to iavf with no netdev in the host namespace', fix: shown.fix });
      expect(run(['vf', 'list', '--pf', `${prefix}f1`]).stdout).toMatch(/not free: its netdev is not here/);
      expect(run(['vf', 'show', `${prefix}f1#0`]).stdout).toMatch(new RegExp(`holder +│ none in vfplane, but not free: it is bound to iavf with no netdev in the host namespace; find who has its netdev, or take it back with \`vfplane vf bind ${pci0.replace(/\./g, '\\.')} --driver kernel --force\``));
      const a = json(['vf', 'alloc', '--pool', 'f1-head', '--owner', 'ns1/skip']);
      expect(a.pci).toBe(look(['vf', 'show', `${prefix}f1#1`]).pci);
      json(['vf', 'release', '--owner', 'ns1/skip']);
      const before = snapshot();
      const r = run(['vf', 'alloc', '--pool', 'f1-first', '--owner', 'ns1/none']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/pool "f1-first": 1 VF matches, none usable: 0000:5e:\w\w\.\d is bound to iavf with no netdev in the host namespace; find who has the netdevs of those bound to a kernel driver, or take them back with `vfplane vf bind PCI --driver kernel --force`/);
      expect(snapshot()).toEqual(before);
      // By address too (it handed the VF out).
      const p = run(['vf', 'alloc', '--pci', `${prefix}f1#0`, '--owner', 'ns1/bypci']);
      expect(p.code, p.stderr).toBe(1);
      expect(p.stderr).toMatch(/VF 0000:5e:\w\w\.\d is bound to iavf but its netdev is not in the host namespace, and no allocation explains it: someone else has it .*`vfplane vf bind 0000:5e:\w\w\.\d --driver kernel --force` rebinds it/);
      expect(snapshot()).toEqual(before);
      // The way out it names: without --force, binding it to the driver it has does
      // nothing; with it, the VF is rebound and its netdev comes back (a new one) here.
      const plain = run(['vf', 'bind', `${prefix}f1#0`, '--driver', 'kernel']);
      expect(plain.code, plain.stderr).toBe(0);
      expect(plain.stdout).toMatch(/is already bound to iavf; its netdev is not in this namespace \(a pod's\? `vfplane vf show 0000:5e:\w\w\.\d` says who holds the VF\): --force takes it back \(that netdev goes, a new one comes up here\)/);
      expect(look(['vf', 'show', `${prefix}f1#0`]).netdev).toBeNull();
      expect(json(['vf', 'bind', `${prefix}f1#0`, '--driver', 'kernel', '--force'])).toMatchObject({ changed: true, after: 'iavf', netdev });
      expect(other.ip(['-br', 'link'])).not.toContain(netdev);
      expect(json(['vf', 'alloc', '--pci', `${prefix}f1#0`, '--owner', 'ns1/back'])).toMatchObject({ pci: expect.any(String) });
      json(['vf', 'release', '--owner', 'ns1/back']);
    } finally {
      if (other.ip(['-br', 'link']).includes(netdev)) other.ip(['link', 'set', netdev, 'netns', `/proc/${process.pid}/ns/net`]);
      other.destroy();
    }
    expect(look(['vf', 'show', `${prefix}f1#0`]).netdev).toBe(netdev);
  });

  it('refused commands make no state directory and no store where there was none', () => {
    const fresh = join(tmpdir(), `vfplane-nostate-${process.pid}`, 'deep');
    const at = ['--sysfs-root', root, '--state-dir', fresh];
    try {
      for (const args of [
        ['pf', 'set-numvfs', `${prefix}f0`, '65'],
        ['vf', 'config', `${prefix}f0#9`, '--mtu', '1500'],
        ['vf', 'config', `${prefix}f0#1`, '--max-tx-rate', '40000'],
        ['vf', 'bind', 'nosuch#0', '--driver', 'kernel'],
        ['vf', 'release', `${prefix}f0#0`],
        ['vf', 'release', `${prefix}f0#0`, '--force'],
        ['vf', 'release', '--owner', 'ns/nobody'],
        ['vf', 'alloc', '--pci', `${prefix}f0#99`, '--owner', 'ns/a'],
      ]) {
        const r = vfplane([...args, ...at]);
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).not.toBe(0);
        expect(existsSync(join(tmpdir(), `vfplane-nostate-${process.pid}`)), args.join(' ')).toBe(false);
      }
      // Nothing to do is no change either.
      expect(vfplane(['pf', 'set-numvfs', `${prefix}f0`, '4', ...at]).stdout).toContain('already has 4 VFs; nothing changed');
      expect(existsSync(join(tmpdir(), `vfplane-nostate-${process.pid}`))).toBe(false);
      expect(vfplane(['vf', 'release', `${prefix}f0#0`, ...at]).stderr).toMatch(/VF 0000:5e:02\.0 is not allocated/);
      expect(vfplane(['vf', 'release', '--owner', 'ns/nobody', ...at]).stderr).toMatch(/no VF is allocated to pod ns\/nobody/);
      // A change that is made opens (and makes) the store for its holder check.
      const ok = vfplane(['vf', 'config', `${prefix}f0#1`, '--trust', 'on', ...at]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(existsSync(join(fresh, 'alloc.db'))).toBe(true);
      vfplane(['vf', 'config', `${prefix}f0#1`, '--trust', 'off', ...at]);
    } finally {
      rmSync(join(tmpdir(), `vfplane-nostate-${process.pid}`), { recursive: true, force: true });
    }
  });

  it('sim destroy on a root that is not a simulator says so and exits 1', () => {
    const r = vfplane(['sim', 'destroy', '--root', state]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no simulated NIC/);
  });
});

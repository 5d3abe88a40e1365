// Attachments written in the data-plane config are the operator's: they are attached at
// every start whatever the allocation store says (the store speaks for what vfplane-cni
// attached), and the store's overlay attachments that nothing else restores are rebuilt
// beside them. A real daemon, a real store, representor veths in a namespace.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDataplane, vfplane, vfplaneAsync } from '../helpers/cli.js';
import { ifname, Netns, vethPair } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';
import { request } from '../../src/dataplane/control.js';
import { AllocStore } from '../../src/alloc/store.js';

describePrivileged('attachments from the data-plane config', { netns: true }, () => {
  let n: Netns, m: Netns;
  const up = ifname('cu'), rep = ifname('cr'), rep2 = ifname('cs');
  const dir = mkdtempSync(join(tmpdir(), 'vfplane-cfgatt-'));

  beforeAll(() => {
    n = Netns.create('can');
    m = Netns.create('cam');
    vethPair(n, up, m, ifname('cp'));
    vethPair(n, rep, m, ifname('cq'));
    vethPair(n, rep2, m, ifname('ct'));
  });

  const many: string[] = Array.from({ length: 6 }, (_, i) => ifname(`cm${i}`));
  beforeAll(() => {
    for (const [i, r] of many.entries()) vethPair(n, r, m, ifname(`cn${i}`));
  });

  afterAll(() => {
    n?.destroy();
    m?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('are attached at start even when the allocation store does not know their VF', async () => {
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir);
    AllocStore.open(stateDir).close(); // a store (as vfplane-cni leaves one) with no allocation
    const socket = join(dir, 'dp.sock');
    const config = join(dir, 'dp.json');
    writeFileSync(config, JSON.stringify({
      node: 'cfgatt', backend: 'afpacket', uplink: { ifname: up, netns: `/run/netns/${n.name}`, vtep: '192.0.2.1' }, stateDir, socket,
      attachments: [{ representor: rep, netns: `/run/netns/${n.name}`, vni: 100, mac: '02:00:00:00:0c:01', pci: '0000:5e:02.3' }],
    }));
    const dp = await startDataplane(config, 'the data plane');
    const log = dp.log;
    try {
      expect(log()).toContain(`control socket ${socket}`);
      const st = (await request(socket, { op: 'status' })) as { attachments: { representor: string; pci?: string }[] };
      expect(st.attachments).toEqual([expect.objectContaining({ representor: rep, pci: '0000:5e:02.3' })]);
      expect(log()).not.toContain('dropping attachment');
      // The operator's CLI attaches a representor in another namespace too (--netns).
      const bad = vfplane(['dataplane', 'attach', '--socket', socket, '--representor', rep2, '--vni', '100', '--mac', '02:00:00:00:0c:02', '--netns', 'run/netns/x']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/netns/);
      const ok = vfplane(['dataplane', 'attach', '--socket', socket, '--representor', rep2, '--vni', '100', '--mac', '02:00:00:00:0c:02', '--netns', `/run/netns/${n.name}`]);
      expect(ok.code, ok.stderr).toBe(0);
      const st2 = (await request(socket, { op: 'status' })) as { attachments: { representor: string }[] };
      expect(st2.attachments.map((a) => a.representor).sort()).toEqual([rep, rep2].sort());
    } finally {
      await dp.stop();
    }
  });

  it('a start restores its attachments several at once; of two that clash, the one first in line (the config\'s) wins, as one after another', async () => {
    const stateDir = join(dir, 'state-many');
    const socket = join(dir, 'dp-many.sock');
    const config = join(dir, 'dp-many.json');
    const ns = `/run/netns/${n.name}`;
    const macOf = (i: number) => `02:00:00:00:0d:${(16 + i).toString(16)}`;
    const base = { node: 'cfgmany', backend: 'afpacket', uplink: { ifname: up, netns: ns, vtep: '192.0.2.1' }, stateDir, socket };
    // First run: the operator attaches the six over the socket; the state file keeps them.
    writeFileSync(config, JSON.stringify(base));
    const first = await startDataplane(config, 'the data plane');
    try {
      for (const [i, r] of many.entries()) {
        const ok = vfplane(['dataplane', 'attach', '--socket', socket, '--representor', r, '--vni', '100', '--mac', macOf(i), '--netns', ns]);
        expect(ok.code, ok.stderr).toBe(0);
      }
    } finally {
      await first.stop();
    }
    // Second run: the config now gives many[0]'s MAC to rep (VNI 100) and many[1] to VNI
    // 200 under another MAC, and names a representor that does not exist with many[2]'s
    // MAC: it waits, so many[2] is restored (helper-74: an attach under way counted as
    // made, and a waiting one took the MAC).
    const ghost = ifname('cg');
    writeFileSync(config, JSON.stringify({
      ...base,
      attachments: [
        { representor: rep, netns: ns, vni: 100, mac: macOf(0) },
        { representor: many[1]!, netns: ns, vni: 200, mac: '02:00:00:00:0d:01' },
        { representor: ghost, netns: ns, vni: 100, mac: macOf(2) },
      ],
    }));
    const dp = await startDataplane(config, 'the data plane');
    try {
      expect(dp.log()).toContain(`control socket ${socket}`);
      const st = (await request(socket, { op: 'status' })) as { attachments: { representor: string; vni: number; mac: string; representorState: string }[] };
      const by = new Map(st.attachments.map((a) => [a.representor, a]));
      // The config's come first: rep holds the MAC, many[1] is on VNI 200.
      expect(by.get(rep)).toMatchObject({ vni: 100, mac: macOf(0) });
      expect(by.get(many[1]!)).toMatchObject({ vni: 200, mac: '02:00:00:00:0d:01' });
      expect(by.get(ghost)).toMatchObject({ representorState: 'waiting' });
      // The state file's clashing two are refused, saying with what they clash.
      expect(by.has(many[0]!)).toBe(false);
      expect(dp.log()).toMatch(new RegExp(`attachment ${many[0]!} \\(VNI 100\\) not restored: MAC ${macOf(0)} is already attached on VNI 100 through ${rep}`));
      expect(dp.log()).toMatch(new RegExp(`attachment ${many[1]!} \\(VNI 100\\) not restored: representor ${many[1]!} is already attached \\(VNI 200`));
      // The other four came back as they were.
      for (const i of [2, 3, 4, 5]) expect(by.get(many[i]!), many[i]).toMatchObject({ vni: 100, mac: macOf(i) });
      // In the list's order, as one after another (the state file's too), the waiting last.
      expect(st.attachments.map((a) => a.representor)).toEqual([rep, many[1], many[2], many[3], many[4], many[5], ghost]);
      // The state file keeps what is not the config's: the four, in order (many[0] lost
      // its MAC to the config's, many[1] is the config's now).
      const saved = JSON.parse(readFileSync(join(stateDir, 'dataplane-cfgmany.json'), 'utf8')) as { attachments: { representor: string }[] };
      expect(saved.attachments.map((a) => a.representor)).toEqual(many.slice(2));
      // Each has its port, and the host stack gets none of its frames (the drop is on).
      const ports = (st as unknown as { ports: { name: string; stackDrop?: boolean }[] }).ports;
      for (const r of [rep, ...many.slice(1)]) expect(ports.find((p) => p.name === r), r).toMatchObject({ stackDrop: true });
      expect(ports.map((p) => p.name)).not.toContain(many[0]);
    } finally {
      await dp.stop();
    }
  });

  it('one netdev under two names (an altname): attached once, by its own name, the first in the list winning; attach and detach by the altname', async () => {
    const ns = `/run/netns/${n.name}`;
    const alias = `${rep2}-alt`;
    n.ip(['link', 'property', 'add', 'dev', rep2, 'altname', alias]);
    const stateDir = join(dir, 'state-alt');
    const socket = join(dir, 'dp-alt.sock');
    const config = join(dir, 'dp-alt.json');
    // The altname first: it wins, as the first of two entries naming one netdev does.
    writeFileSync(config, JSON.stringify({
      node: 'cfgalt', backend: 'afxdp', uplink: { ifname: up, netns: ns, vtep: '192.0.2.1' }, stateDir, socket,
      attachments: [
        { representor: alias, netns: ns, vni: 100, mac: '02:00:00:00:0e:01' },
        { representor: rep2, netns: ns, vni: 200, mac: '02:00:00:00:0e:02' },
      ],
    }));
    type St = { attachments: { representor: string; vni: number }[]; ports: { name: string; kind: string }[] };
    const status = async () => (await request(socket, { op: 'status' })) as unknown as St;
    const attach = (rep: string, vni: number, mac: string) => vfplaneAsync(['dataplane', 'attach', '--socket', socket, '--representor', rep, '--vni', String(vni), '--mac', mac, '--netns', ns]);
    const dp = await startDataplane(config, 'the data plane');
    try {
      expect(dp.log()).toContain(`control socket ${socket}`);
      // Before: its sysctls were written under the altname (no such file), so neither.
      expect((await status()).attachments.map((a) => [a.representor, a.vni])).toEqual([[rep2, 100]]);
      expect((await status()).ports.find((p) => p.name === rep2)).toMatchObject({ kind: 'afxdp' });
      expect(dp.log()).toContain(`attachment ${alias} in ${ns}: an altname of ${rep2}, which it is attached as`);
      expect(dp.log()).toMatch(new RegExp(`attachment ${rep2} \\(VNI 200\\) not restored: representor ${rep2} is already attached \\(VNI 100`));
      // Live, by the altname: refused while attached, detached by it, attached by it.
      const again = await attach(alias, 300, '02:00:00:00:0e:03');
      expect(again.code).not.toBe(0);
      expect(again.stderr).toMatch(new RegExp(`representor ${rep2} is already attached \\(VNI 100`));
      const off = vfplane(['dataplane', 'detach', '--socket', socket, '--representor', alias]);
      expect(off.code, off.stderr).toBe(0);
      expect((await status()).attachments).toEqual([]);
      // Both names at once: one attached (the other refused); before, a failed altname
      // attach left its XSK bound and the other found the queue busy: neither.
      const both = await Promise.all([attach(alias, 300, '02:00:00:00:0e:03'), attach(rep2, 400, '02:00:00:00:0e:04')]);
      expect(both.map((r) => r.code).filter((c) => c === 0), JSON.stringify(both.map((r) => r.stderr))).toHaveLength(1);
      expect((await status()).attachments.map((a) => a.representor)).toEqual([rep2]);
      // An attach whose claim fails once its port is open (the claims journal cannot be
      // written): the port is closed then, so the next attach of the netdev finds its
      // queue free (before: its XSK stayed bound until another change, and the next
      // attach met "Device or resource busy").
      expect(vfplane(['dataplane', 'detach', '--socket', socket, '--representor', rep2]).code).toBe(0);
      const jam = join(stateDir, 'claims-cfgalt.json.tmp');
      mkdirSync(jam);
      const bad = await attach(rep2, 500, '02:00:00:00:0e:05');
      rmSync(jam, { recursive: true });
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/cannot write the claims journal/);
      const ok = await attach(rep2, 500, '02:00:00:00:0e:05');
      expect(ok.code, ok.stderr).toBe(0);
      // The netdev renamed since its attach: under its new name it is the same port's.
      const renamed = `${rep2}n`;
      spawnSync('ip', ['-n', n.name, '-batch', '-'], { input: `link set ${rep2} down\nlink set ${rep2} name ${renamed}\nlink set ${renamed} up\n` });
      try {
        const twice = await attach(renamed, 600, '02:00:00:00:0e:06');
        expect(twice.code).not.toBe(0);
        expect(twice.stderr).toMatch(new RegExp(`representor ${renamed} in ${ns} is netdev \\d+, already attached as ${rep2} \\(VNI 500.*was it renamed\\?`));
      } finally {
        spawnSync('ip', ['-n', n.name, '-batch', '-'], { input: `link set ${renamed} down\nlink set ${renamed} name ${rep2}\nlink set ${rep2} up\n` });
      }
    } finally {
      await dp.stop();
      n.ip(['link', 'property', 'del', 'dev', rep2, 'altname', alias]);
    }
  });
});

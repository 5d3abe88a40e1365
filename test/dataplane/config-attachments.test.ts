// Attachments written in the data-plane config are the operator's: they are attached at
// every start whatever the allocation store says (the store speaks for what vfplane-cni
// attached), and the store's overlay attachments that nothing else restores are rebuilt
// beside them. A real daemon, a real store, representor veths in a namespace.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDataplane, vfplane } from '../helpers/cli.js';
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
});

// Attachments the operator makes by hand (`dataplane attach`, no owner): when the
// representor netdev goes away, `dataplane status` says that `dataplane detach` takes it
// off the overlay (gc never does; a pod's goes with its CNI DEL or GC); and a VF attached
// by hand that no allocation store holds is said to be free for the next pod.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/dataplane/control.js';
import { dataplaneOn, ROOT, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { Netns, ifname, inject, vethIn, scratchDir } from '../helpers/netns.js';
import { udp4, vxlan4 } from '../helpers/frames.js';
import { dropSim, makeSim } from '../helpers/sim.js';

describePrivileged('attachments made by hand', { root: true }, () => {
  let n: Netns;
  const up = ifname('u'), upp = ifname('v');
  const rep = ifname('r'), pod = ifname('p');
  const d = scratchDir('gone');

  beforeAll(() => {
    n = Netns.create('gone');
    vethIn(n, up, upp);
    // In the data plane's own (the host's) namespace: the state of a representor in
    // another namespace is not followed ('unknown').
    execFileSync('ip', ['link', 'add', rep, 'type', 'veth', 'peer', 'name', pod]);
  });
  afterAll(() => {
    try {
      execFileSync('ip', ['link', 'del', rep], { stdio: 'ignore' });
    } catch {
      // deleted by the test
    }
    n?.destroy();
    d.remove();
  });

  it('names `dataplane detach` for an attachment made by hand, and detaching it clears the warning', async () => {
    const dp = await dataplaneOn(n, up, d.dir);
    try {
      const att = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', rep, '--vni', '100', '--mac', '02:00:00:00:0d:01']);
      expect(att.code, att.stderr).toBe(0);
      execFileSync('ip', ['link', 'del', rep]);
      let st = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      for (let i = 0; i < 40 && !st.stdout.includes('is gone'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        st = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      }
      expect(st.code, st.stderr).toBe(0);
      expect(st.stdout).toContain(`warning: representor ${rep} is gone: it is off the overlay; it was attached by hand (config or \`dataplane attach\`), so \`vfplane dataplane detach --representor ${rep}\` detaches it`);
      expect(st.stdout).not.toContain('CNI DEL');
      const det = vfplane(['dataplane', 'detach', '--socket', dp.socket, '--representor', rep]);
      expect(det.code, det.stderr).toBe(0);
      const after = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      expect(after.stdout).toContain('no attachments');
      expect(after.stdout).not.toContain('is gone');
    } finally {
      await dp.stop();
    }
  });

  it('warns that a VF attached by hand is free for the next pod until it is allocated', async () => {
    const m = makeSim({ profile: 'x710', pfs: 1, vfs: 1 });
    const dp = await dataplaneOn(n, up, d.dir);
    const state = `${d.dir}/store`;
    try {
      const pci = '0000:5e:02.0', r0 = `${m.prefix}f0r0`;
      const att = () => vfplane(['dataplane', 'attach', '--socket', dp.socket, '--sysfs-root', m.root, '--representor', r0, '--pci', pci, '--vni', '100', '--mac', '02:00:00:00:0d:02']);
      const free = att();
      expect(free.code, free.stderr).toBe(0);
      expect(free.stderr).toContain(`warning: VF ${pci} is not allocated (\`vfplane vf list\` shows it free): a pod may be given it, and its CNI ADD then replaces this attachment; \`vfplane vf alloc --pci ${pci} --owner NS/NAME\` keeps it yours`);
      expect(vfplane(['dataplane', 'detach', '--socket', dp.socket, '--representor', r0]).code).toBe(0);
      // With --json too: stdout is the reply alone, the warning on stderr (it went unsaid).
      // (The VF named as PF#N, as the vf commands take it, for attach and detach.)
      const freeJson = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--sysfs-root', m.root, '--representor', r0, '--pci', `${m.prefix}f0#0`, '--vni', '100', '--mac', '02:00:00:00:0d:02', '--json']);
      expect(freeJson.code, freeJson.stderr).toBe(0);
      expect(JSON.parse(freeJson.stdout)).toMatchObject({ epoch: expect.any(Number) });
      expect(freeJson.stderr).toContain(`warning: VF ${pci} is not allocated`);
      const byIndex = vfplane(['dataplane', 'detach', '--socket', dp.socket, '--sysfs-root', m.root, '--pci', `${m.prefix}f0#0`]);
      expect([byIndex.code, byIndex.stdout]).toEqual([0, expect.stringMatching(/^detached/)]);
      const badRef = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', r0, '--pci', 'f0#x', '--vni', '100', '--mac', '02:00:00:00:0d:02']);
      expect([badRef.code, badRef.stderr]).toEqual([2, expect.stringMatching(/--pci "f0#x" is malformed: .*; or name the VF as PF#N \(a PF's netdev or address, # and the VF's index, such as ens1f0#0\)/)]);
      const alloc = vfplane(['vf', 'alloc', '--pci', pci, '--owner', 'ops/test', '--sysfs-root', m.root, '--state-dir', state]);
      expect(alloc.code, alloc.stderr).toBe(0);
      const held = att();
      expect(held.code, held.stderr).toBe(0);
      expect(held.stderr).not.toContain('is not allocated');
      expect(vfplane(['dataplane', 'detach', '--socket', dp.socket, '--representor', r0]).code).toBe(0);
      expect(vfplane(['vf', 'release', pci, '--owner', 'ops/test', '--sysfs-root', m.root, '--state-dir', state]).code).toBe(0);
    } finally {
      await dp.stop();
      dropSim(m.root);
    }
  });

  // One data plane serving metrics for the tests of what /metrics and stats show.
  describe('metrics', () => {
    const own = scratchDir('metrics');
    let dp: Awaited<ReturnType<typeof dataplaneOn>>;
    const scrape = async (path = '/metrics') => {
      const r = await fetch(`http://127.0.0.1:${dp.metricsPort}${path}`);
      expect(r.status, path).toBe(200);
      return r.text();
    };
    beforeAll(async () => {
      // :PORT, the usual exporter form: every address.
      dp = await dataplaneOn(n, up, own.dir, { metrics: ':0' });
    });
    afterAll(async () => {
      await dp?.stop();
      own.remove();
    });

    // The workers keep counters only for what moved: an attached pod that has sent nothing
    // yet was missing from `stats` and /metrics (absent() alerts fired, rate() had no
    // series). The metrics address in the log is the one bound (port 0: the kernel's).
    it('an idle attachment has its port and VNI in stats and metrics, at 0; the log names the metrics port bound', async () => {
      const idle = ifname('i'), idlePeer = ifname('j');
      execFileSync('ip', ['link', 'add', idle, 'type', 'veth', 'peer', 'name', idlePeer]); // the peer stays down: nothing arrives
      try {
        expect(dp.log()).toContain(`metrics on every address, port ${dp.metricsPort} (http://ADDRESS:${dp.metricsPort}/metrics)`);
        const att = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', idle, '--vni', '300', '--mac', '02:00:00:00:0d:07']);
        expect(att.code, att.stderr).toBe(0);
        const sj = JSON.parse(vfplane(['dataplane', 'stats', '--socket', dp.socket, '--json']).stdout) as { counters: { ports: { name: string; rxPkts: number; txPkts: number }[]; vnis: { vni: number; encapPkts: number; decapPkts: number }[] } };
        expect(sj.counters.ports.find((p) => p.name === idle)).toMatchObject({ rxPkts: 0, txPkts: 0 });
        expect(sj.counters.vnis.find((v) => v.vni === 300)).toMatchObject({ encapPkts: 0, decapPkts: 0 });
        const text = await scrape();
        expect(text).toMatch(new RegExp(`^vfplane_port_rx_packets_total\\{node="edge",port="${idle}"\\} 0$`, 'm'));
        expect(text).toMatch(/^vfplane_vni_encap_packets_total\{node="edge",vni="300"\} 0$/m);
        // When its counters started: the data plane's start, seconds ago.
        const started = Number(/^vfplane_start_time_seconds\{node="edge"\} (\d+)$/m.exec(text)?.[1]);
        expect(Date.now() / 1000 - started).toBeGreaterThanOrEqual(0);
        expect(Date.now() / 1000 - started).toBeLessThan(120);
        expect(vfplane(['dataplane', 'detach', '--socket', dp.socket, '--representor', idle]).code).toBe(0);
      } finally {
        execFileSync('ip', ['link', 'del', idle]);
      }
    });

    // A scraper's query string (/metrics?x=1) was a 404; `:PORT` (every address, as other
    // exporters take it) was refused by the parser.
    it('serves /metrics whatever its query string, on IPv4 and IPv6 for :PORT, and 404 elsewhere', async () => {
      for (const path of ['/metrics?x=1', '/metrics?']) expect(await scrape(path)).toMatch(/^# TYPE vfplane_drops_total counter$/m);
      const v6 = await fetch(`http://[::1]:${dp.metricsPort}/metrics`);
      expect(v6.status).toBe(200);
      for (const path of ['/', '/metricsx', '/metrics/x', '/other?metrics']) expect((await fetch(`http://127.0.0.1:${dp.metricsPort}${path}`)).status, path).toBe(404);
      // The absolute form of the target, which HTTP/1.1 servers take (a proxy's request).
      const abs = await new Promise<string>((resolve, reject) => {
        let got = '';
        const c = createConnection(dp.metricsPort!, '127.0.0.1', () => c.write(`GET http://127.0.0.1:${dp.metricsPort}/metrics?a=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
        c.on('data', (d) => (got += String(d)));
        c.on('end', () => resolve(got));
        c.on('error', reject);
      });
      expect(abs.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    });

    // The uplink's port is port="uplink" (and stats' portDrops key "uplink"): a representor
    // netdev named uplink gave every vfplane_port_* family two {port="uplink"} series, and
    // Prometheus refused the whole scrape. Refused at attach, by name or by an altname.
    it('refuses a representor named uplink, by its name or an altname, and keeps running with one uplink series', async () => {
      const peer = ifname('k'), alt = ifname('a');
      n.ip(['link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', peer]);
      try {
        const atts = async () => ((await request(dp.socket, { op: 'status' })) as { attachments: unknown[] }).attachments;
        const before = await atts();
        const r = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', 'uplink', '--vni', '100', '--mac', '02:00:00:00:0d:0a', '--netns', n.path]);
        expect(r.code, r.stderr).toBe(2);
        // (The rename done where the netdev is: its namespace, helper-98.)
        expect(r.stderr).toContain(`representor "uplink": "uplink" is the name stats and the metrics give the uplink's port (port="uplink"), so a representor cannot go by it; rename the netdev (nsenter --net=${n.path} ip link set uplink name OTHER) and attach it by the new name`);
        n.ip(['link', 'property', 'add', 'dev', 'uplink', 'altname', alt]);
        await expect(request(dp.socket, { op: 'attach', representor: alt, vni: 100, mac: '02:00:00:00:0d:0a', netns: n.path })).rejects.toThrow(`representor "uplink" (named by its altname ${alt} in ${n.path}): "uplink" is the name`);
        await expect(request(dp.socket, { op: 'attach', representor: alt, vni: 100, mac: '02:00:00:00:0d:0a', netns: n.path })).rejects.toThrow(`(nsenter --net=${n.path} ip link set uplink name OTHER)`);
        expect(await atts()).toEqual(before);
        // Still running and serving, the uplink's port once in each family.
        expect(vfplane(['dataplane', 'status', '--socket', dp.socket]).code).toBe(0);
        const text = await scrape();
        expect(text.match(/^vfplane_port_rx_packets_total\{node="edge",port="uplink"\} \d+$/gm)).toHaveLength(1);
        const sj = JSON.parse(vfplane(['dataplane', 'stats', '--socket', dp.socket, '--json']).stdout) as { counters: { ports: { name: string }[] } };
        expect(sj.counters.ports.filter((p) => p.name === 'uplink')).toHaveLength(1);
      } finally {
        n.ip(['link', 'del', 'uplink']);
      }
    });

    // vfplane_drops_total{reason} had a series only once its reason had counted: an
    // increase() or rate() alert missed the first burst. Every reason is there from the
    // start, at 0; `stats` still lists only the nonzero ones.
    it('has a vfplane_drops_total series for every drop reason from the start, and stats lists only nonzero ones', async () => {
      const refusal = await request(dp.socket, { op: 'drops-arm', count: 0, reasons: ['nope'] }).then(() => '', (e: Error) => e.message);
      const reasons = /the reasons are (.*)$/.exec(refusal)?.[1]?.split(', ') ?? [];
      expect(reasons).toContain('tx_full');
      const text = await scrape();
      const series = [...text.matchAll(/^vfplane_drops_total\{node="edge",reason="([a-z0-9_]+)"\} (\d+)$/gm)];
      expect(series.map((m) => m[1]).sort()).toEqual([...reasons].sort());
      for (const r of ['tx_full', 'spoofed', 'no_attachment', 'mtu_exceeded']) expect(text).toMatch(new RegExp(`^vfplane_drops_total\\{node="edge",reason="${r}"\\} 0$`, 'm'));
      const st = vfplane(['dataplane', 'stats', '--socket', dp.socket]);
      expect(st.code, st.stderr).toBe(0);
      const line = st.stdout.split('\n').find((l) => l.startsWith('drops: '));
      const nonzero = series.filter((m) => m[2] !== '0').map((m) => m[1]!);
      if (nonzero.length === 0) expect(line).toBe('drops: none');
      else for (const r of series.filter((m) => m[2] === '0')) expect(line).not.toMatch(new RegExp(`(^drops: |, )${r[1]} `));
    });

    // docs/dataplane.md's Metrics table is the reference for what the endpoint emits:
    // every family a scrape has is there, with its type and labels, and nothing else.
    it('names every metric family it serves in docs/dataplane.md, with its type and labels', async () => {
      const text = await scrape();
      const served = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, { type: m[2]!, labels: new Set<string>() }]));
      for (const m of text.matchAll(/^(\w+)\{([^}]*)\} /gm)) for (const kv of m[2]!.split(',')) served.get(m[1]!)!.labels.add(kv.slice(0, kv.indexOf('=')));
      const doc = readFileSync(join(ROOT, 'docs', 'dataplane.md'), 'utf8');
      const section = doc.slice(doc.indexOf('\n## Metrics\n'), doc.indexOf('\n## ', doc.indexOf('\n## Metrics\n') + 1));
      const rows = new Map([...section.matchAll(/^\| `(vfplane_\w+)` \| (\w+) \|([^|]*)\|/gm)].map((m) => [m[1]!, { type: m[2]!, labels: [...m[3]!.matchAll(/`(\w+)`/g)].map((l) => l[1]!) }]));
      expect([...rows.keys()].sort()).toEqual([...served.keys()].sort());
      for (const [name, f] of served) {
        expect(rows.get(name)!.type, name).toBe(f.type);
        for (const l of f.labels) if (l !== 'node') expect(rows.get(name)!.labels, name).toContain(l);
      }
    });

    // stats --json had per-port drops and errors and per-VNI bytes and drops that /metrics
    // lacked (docs/dataplane.md: both read the same counters). A pod sends floods (encap to
    // the peer) and spoofed frames (its port's and its VNI's drops); the peer sends it one
    // VXLAN frame (decap).
    it('has each port\'s drops and errors and each VNI\'s bytes and drops, as stats --json has them', async () => {
      const rep = ifname('m'), pod = ifname('o');
      const M = '02:00:00:00:0d:09', PEER_MAC = '02:bb:00:00:00:02';
      n.ip(['link', 'add', rep, 'type', 'veth', 'peer', 'name', pod]);
      for (const d of [rep, pod]) n.sysctl(`net.ipv6.conf.${d}.disable_ipv6`, '1');
      n.ip(['link', 'set', pod, 'address', M, 'up']);
      n.ip(['link', 'set', rep, 'up']);
      await request(dp.socket, { op: 'peer-add', vtep: '192.0.2.2', mac: PEER_MAC });
      try {
        const att = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', rep, '--netns', n.path, '--vni', '301', '--mac', M]);
        expect(att.code, att.stderr).toBe(0);
        const bcast = (src: string, i: number) => udp4({ dstMac: 'ff:ff:ff:ff:ff:ff', srcMac: src, src: '10.3.0.1', dst: '10.3.0.255', sport: 1000 + i, dport: 9, payload: new Uint8Array(32) });
        inject(n, pod, [0, 1, 2].map((i) => bcast(M, i)));
        inject(n, pod, [3, 4].map((i) => bcast('02:00:00:00:0d:66', i)));
        const inner = udp4({ dstMac: M, srcMac: '02:00:00:00:0e:01', src: '10.3.0.9', dst: '10.3.0.1', sport: 7, dport: 9, payload: new Uint8Array(40) });
        inject(n, upp, [vxlan4({ dstMac: n.mac(up), srcMac: PEER_MAC, src: '192.0.2.2', dst: '192.0.2.1', vni: 301, inner })]);
        type Stats = { counters: { ports: { name: string; drops: number; errors: number }[]; vnis: { vni: number; encapBytes: number; decapBytes: number; drops: number }[] } };
        const stats = () => (JSON.parse(vfplane(['dataplane', 'stats', '--socket', dp.socket, '--json']).stdout) as Stats).counters;
        let c = stats();
        for (let i = 0; i < 50; i++) {
          const p = c.ports.find((x) => x.name === rep), v = c.vnis.find((x) => x.vni === 301);
          if (p && v && p.drops >= 2 && v.encapBytes > 0 && v.decapBytes > 0) break;
          await new Promise((r) => setTimeout(r, 100));
          c = stats();
        }
        const text = await scrape();
        const value = (name: string, labels: string) => new RegExp(`^${name}\\{node="edge",${labels}\\} (\\d+)$`, 'm').exec(text)?.[1];
        // Every drop reason, 0 until it counts, as vfplane_drops_total has them (stats
        // listed only those that had counted: a script's key appeared with the first drop).
        const statsDrops = (JSON.parse(vfplane(['dataplane', 'stats', '--socket', dp.socket, '--json']).stdout) as { counters: { drops: Record<string, number> } }).counters.drops;
        const scraped = [...text.matchAll(/^vfplane_drops_total\{node="edge",reason="(\w+)"\} \d+$/gm)].map((x) => x[1]!);
        expect(scraped.length).toBeGreaterThan(20);
        expect(Object.keys(statsDrops).sort()).toEqual(scraped.sort());
        expect(Object.values(statsDrops).filter((x) => x === 0).length).toBeGreaterThan(10);
        for (const [name, type] of [['vfplane_port_drops_total', 'counter'], ['vfplane_port_errors_total', 'counter'], ['vfplane_vni_encap_bytes_total', 'counter'], ['vfplane_vni_decap_bytes_total', 'counter'], ['vfplane_vni_drops_total', 'counter']]) {
          expect(text).toMatch(new RegExp(`^# HELP ${name} \\S`, 'm'));
          expect(text).toContain(`# TYPE ${name} ${type}\n`);
        }
        for (const p of c.ports) {
          expect(value('vfplane_port_drops_total', `port="${p.name}"`), p.name).toBe(String(p.drops));
          expect(value('vfplane_port_errors_total', `port="${p.name}"`), p.name).toBe(String(p.errors));
        }
        const v = c.vnis.find((x) => x.vni === 301)!;
        expect(c.ports.find((x) => x.name === rep)!.drops).toBe(2);
        expect(v.drops).toBe(2);
        expect(v.encapBytes).toBeGreaterThan(0);
        expect(v.decapBytes).toBe(inner.length);
        expect(value('vfplane_vni_encap_bytes_total', 'vni="301"')).toBe(String(v.encapBytes));
        expect(value('vfplane_vni_decap_bytes_total', 'vni="301"')).toBe(String(v.decapBytes));
        expect(value('vfplane_vni_drops_total', 'vni="301"')).toBe(String(v.drops));
        expect(vfplane(['dataplane', 'detach', '--socket', dp.socket, '--representor', rep]).code).toBe(0);
      } finally {
        await request(dp.socket, { op: 'peer-del', vtep: '192.0.2.2' }).catch(() => undefined);
        n.ip(['link', 'del', rep]);
      }
    });
  });

  // Peers are every VNI's: a pod's network config (vxlan.remote, in an attach that
  // vfplane-cni sends with its owner) added one, which then got every tenant's floods and
  // was learned from as a trusted VTEP. Refused now; the operator's own attach adds one
  // only as peer-add would (unicast, not this node's VTEP).
  it('a pod\'s vxlan.remote that is no peer is refused, and an operator\'s remote is checked as peer-add checks it', async () => {
    const r = ifname('q'), rp = ifname('s');
    const own = scratchDir('remote');
    execFileSync('ip', ['link', 'add', r, 'type', 'veth', 'peer', 'name', rp]);
    const dp = await dataplaneOn(n, up, own.dir);
    try {
      const peers = async () => ((await request(dp.socket, { op: 'status' })) as { peers: { vtep: string }[] }).peers.map((p) => p.vtep);
      const before = await peers();
      const attach = (extra: Record<string, unknown>) => request(dp.socket, { op: 'attach', representor: r, vni: 300, mac: '02:00:00:00:0d:08', ...extra });
      await expect(attach({ remote: '192.0.2.77', owner: { containerId: 'tenant01', ifname: 'net1' } })).rejects.toThrow(/vxlan\.remote 192\.0\.2\.77 is not a peer of this data plane, and a pod's network configuration cannot add one/);
      await expect(attach({ remote: '224.1.1.1' })).rejects.toThrow(/peer 224\.1\.1\.1: expected a unicast address/);
      await expect(attach({ remote: '192.0.2.1' })).rejects.toThrow(/192\.0\.2\.1 is this node's own VTEP/);
      expect(await peers()).toEqual(before);
      expect(((await request(dp.socket, { op: 'status' })) as { attachments: unknown[] }).attachments).toEqual([]);
      // The operator's own attach with a new unicast remote adds it, as before.
      await attach({ remote: '192.0.2.78' });
      expect(await peers()).toContain('192.0.2.78');
      expect(vfplane(['dataplane', 'detach', '--socket', dp.socket, '--representor', r]).code).toBe(0);
    } finally {
      await dp.stop();
      execFileSync('ip', ['link', 'del', r]);
      own.remove();
    }
  });

  // The restart's check against the allocation store is for vfplane-cni's attachments (a
  // pod's, which its DEL ends while the data plane is down); one made by hand has no
  // record there to lose and came back from the state file as "released" to nothing.
  it('an attachment made by hand comes back after a restart, its VF allocated by hand or not', async () => {
    const m = makeSim({ profile: 'x710', pfs: 1, vfs: 2 });
    const own = scratchDir('keep');
    let dp = await dataplaneOn(n, up, own.dir);
    try {
      const [r0, r1] = [`${m.prefix}f0r0`, `${m.prefix}f0r1`];
      // A store in the data plane's state directory (where vfplane-cni keeps it), with VF 1 kept by hand.
      const alloc = vfplane(['vf', 'alloc', '--pci', '0000:5e:02.1', '--owner', 'ops/keep', '--sysfs-root', m.root, '--state-dir', dp.stateDir]);
      expect(alloc.code, alloc.stderr).toBe(0);
      for (const [rep, mac] of [[r0, '02:00:00:00:0d:05'], [r1, '02:00:00:00:0d:06']]) {
        const att = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--sysfs-root', m.root, '--representor', rep!, '--vni', '100', '--mac', mac!]);
        expect(att.code, att.stderr).toBe(0);
      }
      await dp.stop();
      dp = await dataplaneOn(n, up, own.dir);
      const st = (await request(dp.socket, { op: 'status' })) as { attachments: { representor: string; pci?: string }[] };
      expect(st.attachments.map((a) => [a.representor, a.pci]).sort()).toEqual([[r0, '0000:5e:02.0'], [r1, '0000:5e:02.1']]);
      expect(dp.log()).toContain('restored 2 of 2 attachment(s)');
      expect(dp.log()).not.toContain('dropping attachment');
      for (const rep of [r0, r1]) expect(vfplane(['dataplane', 'detach', '--socket', dp.socket, '--representor', rep]).code).toBe(0);
    } finally {
      await dp.stop();
      dropSim(m.root);
      own.remove();
    }
  });

  // Without --pci the VF is read from sysfs (the representor it has), so the attachment
  // names its VF as one made with --pci does: `detach --pci` finds it. A --pci that is no
  // VF there is refused before the data plane is asked.
  it('finds the VF of a representor attached without --pci, and refuses a --pci that is no VF', async () => {
    const m = makeSim({ profile: 'x710', pfs: 1, vfs: 2 });
    const dp = await dataplaneOn(n, up, d.dir);
    try {
      const pci = '0000:5e:02.1', r1 = `${m.prefix}f0r1`;
      const atts = async () => ((await request(dp.socket, { op: 'status' })) as { attachments: { representor: string; pci?: string }[] }).attachments;
      const ghost = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--sysfs-root', m.root, '--representor', r1, '--pci', '0000:5e:07.0', '--vni', '100', '--mac', '02:00:00:00:0d:04']);
      expect(ghost.code, ghost.stderr).toBe(2);
      expect(ghost.stderr).toContain(`--pci 0000:5e:07.0 is not a VF under ${m.root}`);
      expect(await atts()).toEqual([]);
      const att = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--sysfs-root', m.root, '--representor', r1, '--vni', '100', '--mac', '02:00:00:00:0d:04']);
      expect(att.code, att.stderr).toBe(0);
      expect(att.stdout).toContain(`attached ${r1} (VF ${pci}) to VNI 100`);
      expect(att.stderr).toContain(`warning: VF ${pci} is not allocated`);
      expect(await atts()).toMatchObject([{ representor: r1, pci }]);
      const det = vfplane(['dataplane', 'detach', '--socket', dp.socket, '--pci', pci]);
      expect(det.code, det.stderr).toBe(0);
      expect(det.stdout).toMatch(/^detached \(epoch \d+\)$/m);
      expect(await atts()).toEqual([]);
    } finally {
      await dp.stop();
      dropSim(m.root);
    }
  });

  it('pf set-numvfs refuses to destroy VFs the data plane forwards for by hand without --force, and says so with it', async () => {
    const m = makeSim({ profile: 'x710', pfs: 1, vfs: 2 });
    const dp = await dataplaneOn(n, up, d.dir);
    try {
      const pci = '0000:5e:02.1', r1 = `${m.prefix}f0r1`;
      const att = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--sysfs-root', m.root, '--representor', r1, '--pci', pci, '--vni', '100', '--mac', '02:00:00:00:0d:03']);
      expect(att.code, att.stderr).toBe(0);
      const env = { VFPLANE_DATAPLANE_SOCKET: dp.socket };
      const set = (args: string[]) => vfplane(['pf', 'set-numvfs', `${m.prefix}f0`, ...args, '--sysfs-root', m.root, '--state-dir', `${d.dir}/store`], { env });
      const refused = set(['0']);
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.stderr).toContain(`the data plane forwards for VFs of ${m.prefix}f0 attached by hand: ${pci} (representor ${r1}, VNI 100); changing the VF count destroys every VF: detach them first (vfplane dataplane detach --representor R), or pass --force`);
      expect(vfplane(['vf', 'list', '--sysfs-root', m.root, '--state-dir', `${d.dir}/store`, '--json']).stdout).toContain(pci); // nothing changed
      const forced = set(['1', '--force']);
      expect(forced.code, forced.stderr).toBe(0);
      expect(forced.stderr).toContain(`warning: the data plane forwarded for ${pci} (representor ${r1}, VNI 100), attached by hand; those VFs are gone`);
      expect(vfplane(['dataplane', 'detach', '--socket', dp.socket, '--representor', r1]).code).toBe(0);
    } finally {
      await dp.stop();
      dropSim(m.root);
    }
  });
});

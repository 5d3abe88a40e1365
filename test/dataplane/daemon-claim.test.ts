// The data plane takes the whole netdev it runs on (XDP redirects, or the AF_PACKET stack
// drop, leave the host stack nothing). A netdev with addresses of its own is the host's:
// `vfplane dataplane run` must refuse it with the address and the fix, and change nothing
// on it (its sysctls stay, no program is attached, the kernel still answers on it).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BIN, vfplane } from '../helpers/cli.js';
import { ifname, Netns, vethPair } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';
import { backendBuilt } from '../helpers/features.js';

describePrivileged('vfplane dataplane run on a netdev the host uses', { netns: true, commands: ['ping'] }, () => {
  let n: Netns, m: Netns;
  const a = ifname('ca'), b = ifname('cb');
  const dir = mkdtempSync(join(tmpdir(), 'vfplane-claim-'));

  beforeAll(() => {
    n = Netns.create('cln');
    m = Netns.create('clm');
    vethPair(n, a, m, b);
    n.ip(['addr', 'add', '10.88.0.1/24', 'dev', a]);
    m.ip(['addr', 'add', '10.88.0.2/24', 'dev', b]);
    n.ip(['link', 'set', a, 'up']);
    m.ip(['link', 'set', b, 'up']);
  });

  afterAll(() => {
    n?.destroy();
    m?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const backend of ['afpacket', 'afxdp'] as const) {
    it(`${backend}: refuses an uplink with an address, naming it and the fix, and leaves it as it was`, () => {
      const config = join(dir, `${backend}.json`);
      writeFileSync(config, JSON.stringify({
        node: 'claim', backend, uplink: { ifname: a, netns: `/run/netns/${n.name}`, vtep: '192.0.2.1' }, stateDir: join(dir, backend),
      }));
      const r = vfplane(['dataplane', 'run', '--config', config]);
      expect(r.code, r.stderr).toBe(2); // invalid input, as for any config error
      expect(r.stderr).toContain(`uplink ${a} carries 10.88.0.1/24`);
      expect(r.stderr).toMatch(/a netdev of its own.*or remove the addresses/);
      expect(n.exec('sysctl', ['-n', `net.ipv6.conf.${a}.disable_ipv6`]).trim()).toBe('0');
      expect(n.ip(['-d', 'link', 'show', a])).not.toMatch(/prog\/xdp/);
      const ping = m.exec('ping', ['-c', '2', '-i', '0.2', '-W', '1', '10.88.0.1']);
      expect(ping).toMatch(/2 received/);
    });
  }

  // No address of its own, and still the host's traffic: a bridge port (the address on
  // the bridge) and the lower link of a macvlan (or a VLAN: no 8021q module on this kernel). Refused before anything on them changes.
  it('refuses an uplink that is a bridge port, or carries a macvlan, naming the master or upper and the fix', () => {
    const port = ifname('cp'), portPeer = ifname('cq'), br = ifname('cbr'), low = ifname('cl'), lowPeer = ifname('cm');
    vethPair(n, port, m, portPeer);
    vethPair(n, low, m, lowPeer);
    n.ip(['link', 'add', br, 'type', 'bridge']);
    n.ip(['link', 'set', port, 'master', br]);
    n.ip(['addr', 'add', '10.89.0.1/24', 'dev', br]);
    n.ip(['link', 'add', 'link', low, 'name', `${low}mv`, 'type', 'macvlan', 'mode', 'bridge']);
    try {
      for (const [dev, msg] of [[port, `uplink ${port} is a port of bridge ${br}`], [low, `uplink ${low} carries macvlan ${low}mv`]] as const) {
        const config = join(dir, `stacked-${dev}.json`);
        writeFileSync(config, JSON.stringify({ node: `st${dev}`, backend: 'afpacket', uplink: { ifname: dev, netns: `/run/netns/${n.name}`, vtep: '192.0.2.1' }, stateDir: join(dir, `st-${dev}`) }));
        const features = n.exec('ethtool', ['-k', dev]);
        const r = vfplane(['dataplane', 'run', '--config', config]);
        expect([r.code, r.stderr], dev).toEqual([2, expect.stringContaining(msg)]);
        expect(n.exec('ethtool', ['-k', dev])).toBe(features);
        expect(n.ip(['-d', 'link', 'show', dev])).not.toMatch(/promisc 1/);
      }
    } finally {
      n.ip(['link', 'del', br]);
      n.ip(['link', 'del', port]);
      n.ip(['link', 'del', low]);
    }
  });

  // tunnel.mtu is for an uplink no netdev tells the MTU of; above the netdev's, encap
  // would pass outer packets the uplink then drops (tx_oversize), the pod never told.
  it('refuses a tunnel.mtu above the uplink netdev\'s MTU before changing anything on it', () => {
    const up = ifname('ct'), upPeer = ifname('cu');
    vethPair(n, up, m, upPeer);
    try {
      const features = n.exec('ethtool', ['-k', up]);
      const config = join(dir, 'mtu.json');
      writeFileSync(config, JSON.stringify({ node: 'claimmtu', backend: 'afpacket', uplink: { ifname: up, netns: `/run/netns/${n.name}`, vtep: '192.0.2.1' }, tunnel: { mtu: 9000 }, stateDir: join(dir, 'mtu') }));
      const r = vfplane(['dataplane', 'run', '--config', config]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`tunnel.mtu 9000 is above the MTU of the uplink ${up} (1500)`);
      expect(r.stderr).toContain('give tunnel.mtu 0 (the uplink\'s) or at most 1500');
      expect(n.exec('ethtool', ['-k', up])).toBe(features);
      expect(n.exec('sysctl', ['-n', `net.ipv6.conf.${up}.disable_ipv6`]).trim()).toBe('0');
    } finally {
      n.ip(['link', 'del', up]);
    }
  });

  // Loopback carries only host-scoped addresses, yet it is the namespace's own: refused
  // before anything on it changes (GRO, IPv6, the stack drop), as `attach` refuses it.
  it('refuses loopback as the uplink before changing anything on it', () => {
    const gro = () => n.exec('ethtool', ['-k', 'lo']).match(/generic-receive-offload: (\w+)/)?.[1];
    const before = gro();
    const config = join(dir, 'lo.json');
    writeFileSync(config, JSON.stringify({ node: 'claimlo', backend: 'afpacket', uplink: { ifname: 'lo', netns: `/run/netns/${n.name}`, vtep: '192.0.2.1' }, stateDir: join(dir, 'lo') }));
    const r = vfplane(['dataplane', 'run', '--config', config]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('uplink lo is the loopback device');
    expect(r.stderr).not.toMatch(/switched|rx-gro/);
    expect(gro()).toBe(before);
    expect(n.exec('sysctl', ['-n', 'net.ipv6.conf.lo.disable_ipv6']).trim()).toBe('0');
    expect(n.exec('ping', ['-c', '1', '-W', '2', '127.0.0.1'])).toMatch(/1 received/);
  });

  /** A veth in the daemon's own namespace carrying CIDR (its peer in m), up: runs
   *  `vfplane dataplane run` with config(h) and hands what it did to `t`; the veth goes
   *  afterwards. */
  function runOnHostLink(tag: string, cidr: string, config: (h: string) => Record<string, unknown>, t: (h: string, r: ReturnType<typeof vfplane>) => void, timeoutMs: number): void {
    const h = ifname(`${tag}h`), peer = ifname(`${tag}p`);
    spawnSync('ip', ['link', 'add', h, 'type', 'veth', 'peer', 'name', peer, 'netns', m.name]);
    try {
      spawnSync('ip', ['addr', 'add', cidr, 'dev', h]);
      spawnSync('ip', ['link', 'set', h, 'up']);
      const file = join(dir, `${tag}.json`);
      writeFileSync(file, JSON.stringify(config(h)));
      t(h, vfplane(['dataplane', 'run', '--config', file], { timeoutMs }));
    } finally {
      spawnSync('ip', ['link', 'del', h]);
    }
  }

  // In the daemon's own namespace, on a link without carrier (whose addresses getifaddrs,
  // as Node reads it, would leave out).
  it('refuses a netdev with an address in its own namespace too, carrier or not', () => {
    runOnHostLink('c', '10.89.0.1/24', (h) => ({ node: 'claimh', backend: 'afpacket', uplink: { ifname: h, vtep: '192.0.2.1' }, stateDir: join(dir, 'host') }), (h, r) => {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`uplink ${h} carries 10.89.0.1/24`);
    }, 20_000);
  });

  // A DPDK vdev on a kernel netdev (net_af_packet, net_af_xdp) takes that netdev too.
  it('dpdk: refuses a net_af_packet uplink on a netdev with an address, naming both', () => {
    if (!backendBuilt('dpdk')) {
      expect(process.env.CI, 'CI builds DPDK: this must run there').toBeFalsy();
      return;
    }
    runOnHostLink('d', '10.90.0.1/24', (h) => ({
      node: 'claimd', backend: 'dpdk', uplink: { dev: `net_af_packet9,iface=${h}`, vtep: '192.0.2.1' }, dpdk: { hugepages: 0 }, stateDir: join(dir, 'dpdk'),
    }), (h, r) => {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`uplink ${h} (under net_af_packet9) carries 10.90.0.1/24`);
      expect(readFileSync(`/proc/sys/net/ipv6/conf/${h}/disable_ipv6`, 'utf8').trim()).toBe('0');
    }, 30_000);
  });

  // A netdev with more rx queues than workers: AF_XDP binds them all (a queue without a
  // socket would pass its frames to the host stack), and the daemon says so and how to
  // match them to the workers. status shows the count.
  it('afxdp: binds every rx queue of a two-queue uplink, says so, and status shows it', async () => {
    const q = Netns.create('clq'), qp = Netns.create('clp');
    const u = ifname('cq'), up = ifname('cr');
    try {
      spawnSync('ip', ['link', 'add', u, 'netns', q.name, 'numtxqueues', '2', 'numrxqueues', '2', 'type', 'veth', 'peer', 'name', up, 'netns', qp.name]);
      q.ip(['link', 'set', u, 'up']);
      qp.ip(['link', 'set', up, 'up']);
      const config = join(dir, 'queues.json');
      const socket = join(dir, 'queues.sock');
      writeFileSync(config, JSON.stringify({ node: 'queues', backend: 'afxdp', uplink: { ifname: u, netns: `/run/netns/${q.name}`, vtep: '192.0.2.1' }, stateDir: join(dir, 'queues'), socket }));
      const { spawn } = await import('node:child_process');
      const d = spawn(process.execPath, [BIN, 'dataplane', 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      d.stderr.on('data', (x) => { err += x; });
      d.stdout.on('data', (x) => { err += x; });
      try {
        for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
        expect(existsSync(socket), err).toBe(true);
        expect(err).toContain(`uplink ${u}: 2 rx queues bound for 1 worker(s)`);
        expect(err).toContain(`ethtool -L ${u} combined 1`);
        const st = JSON.parse(vfplane(['dataplane', 'status', '--socket', socket, '--json']).stdout) as { ports: { name: string; queues: number }[] };
        expect(st.ports.find((p) => p.name === 'uplink')?.queues).toBe(2);
      } finally {
        const closed = new Promise((r) => d.on('close', r));
        d.kill('SIGTERM');
        await closed;
      }
    } finally {
      q.destroy();
      qp.destroy();
    }
  });
});

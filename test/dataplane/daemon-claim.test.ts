// The data plane takes the whole netdev it runs on (XDP redirects, or the AF_PACKET stack
// drop, leave the host stack nothing). A netdev with addresses of its own is the host's:
// `vfplane dataplane run` must refuse it with the address and the fix, and change nothing
// on it (its sysctls stay, no program is attached, the kernel still answers on it).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { vfplane } from '../helpers/cli.js';
import { ifname, Netns, vethPair } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';

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

  // In the daemon's own namespace, on a link without carrier (whose addresses getifaddrs,
  // as Node reads it, would leave out).
  it('refuses a netdev with an address in its own namespace too, carrier or not', () => {
    const h = ifname('ch'), peer = ifname('cp');
    spawnSync('ip', ['link', 'add', h, 'type', 'veth', 'peer', 'name', peer, 'netns', m.name]);
    try {
      spawnSync('ip', ['addr', 'add', '10.89.0.1/24', 'dev', h]);
      spawnSync('ip', ['link', 'set', h, 'up']);
      const config = join(dir, 'host.json');
      writeFileSync(config, JSON.stringify({ node: 'claimh', backend: 'afpacket', uplink: { ifname: h, vtep: '192.0.2.1' }, stateDir: join(dir, 'host') }));
      const r = vfplane(['dataplane', 'run', '--config', config], { timeoutMs: 20_000 });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`uplink ${h} carries 10.89.0.1/24`);
    } finally {
      spawnSync('ip', ['link', 'del', h]);
    }
  });
});

// DPDK tx checksum offload, end to end against the kernel. Our data plane (a child
// process in namespace D) has a pod port (net_af_packet on a veth to the pod namespace P)
// and an uplink on DPDK's tap PMD, which offers IPv4 and UDP checksum offload and fills
// the checksums in its driver as a NIC would. Encap leaves the outer IPv4 header checksum
// at 0 and seeds the UDP checksum with the pseudo-header sum; only if the port sets the
// mbuf's offload flags and lengths right does the kernel in D, receiving on the tap
// netdev, accept the frames (it checks both checksums) and hand them to its vxlan device,
// whose address the pod pings. The replies come back the other way (kernel encap, our
// decap). The kernel's checksum error counters must not move.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DPDK_TX } from '../../src/dataplane/uplink-profile.js';
import { ROOT } from '../helpers/cli.js';
import { Netns, ifname, sweepStale, vethPair } from '../helpers/netns.js';
import { backendBuilt } from '../helpers/features.js';
import { describePrivileged } from '../helpers/privileged.js';

const CHILD = join(ROOT, 'dist', 'bench', 'io-dpdk-child.js');
const built = backendBuilt('dpdk');

const MAC = { pod: '02:00:00:00:0b:01', uplink: '02:00:00:00:0b:02', tap: '02:00:00:00:0b:03', kvx: '02:00:00:00:0b:04' };

interface Ready { uplink: { driver: string; txOffloads: number } }

/** Starts the data-plane child in ns; resolves with it and its ready line. */
function startChild(ns: Netns, cfg: object): Promise<{ child: ChildProcess; ready: Ready; stderr: () => string }> {
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, CHILD, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stderr!.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the DPDK child did not start in 60 s: ${err}`)), 60_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{"ready"'));
      if (line) {
        clearTimeout(t);
        resolve({ child, ready: JSON.parse(line) as Ready, stderr: () => err });
      }
    });
    child.on('close', (code) => {
      clearTimeout(t);
      reject(new Error(`the DPDK child exited ${code}: ${err}`));
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.on('close', () => resolve());
    child.stdin!.end('quit\n');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });
}

/** The kernel's counters of bad checksums in ns: IPv4 header, UDP over IPv4 and IPv6. */
function csumErrors(ns: Netns): Record<string, number> {
  const snmp = ns.exec('cat', ['/proc/net/snmp']).split('\n');
  const field = (proto: string, name: string) => {
    const rows = snmp.filter((l) => l.startsWith(`${proto}:`));
    const i = rows[0]!.split(/\s+/).indexOf(name);
    return Number(rows[1]!.split(/\s+/)[i]);
  };
  const snmp6 = ns.exec('cat', ['/proc/net/snmp6']);
  const f6 = (name: string) => Number(new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(snmp6)?.[1] ?? 0);
  return {
    ipInHdrErrors: field('Ip', 'InHdrErrors'), ipInCsumErrors: field('Ip', 'InCsumErrors') || 0,
    udpInCsumErrors: field('Udp', 'InCsumErrors'), udp6InCsumErrors: f6('Udp6InCsumErrors'),
  };
}

describePrivileged('DPDK tx checksum offload (net_tap uplink) against the kernel', { netns: true, commands: ['ping'] }, () => {
  it('the build has DPDK', () => expect(built).toBe(true));

  for (const family of [4, 6] as const) {
    const v = family === 4
      ? { local: '192.0.2.1', remote: '192.0.2.2', plen: 24, podIp: '10.66.0.1', kIp: '10.66.0.2' }
      : { local: 'fd00:66::1', remote: 'fd00:66::2', plen: 64, podIp: '10.66.0.1', kIp: '10.66.0.2' };

    describe(`IPv${family} underlay`, () => {
      let p: Netns, d: Netns, child: ChildProcess | null = null, ready: Ready;
      const pv = ifname('op'), dv = ifname('od'), tap = ifname('ot'), vx = ifname('ox');
      let before: Record<string, number>;

      beforeAll(async () => {
        sweepStale();
        if (!built || !existsSync(CHILD)) throw new Error(`${CHILD} is missing or the build has no DPDK: npm run build`);
        p = Netns.create('op');
        d = Netns.create('od');
        vethPair(p, pv, d, dv);
        p.ip(['link', 'set', pv, 'address', MAC.pod]);
        p.ip(['addr', 'add', `${v.podIp}/24`, 'dev', pv]);
        p.ip(['link', 'set', pv, 'up']);
        p.ip(['neigh', 'replace', v.kIp, 'lladdr', MAC.kvx, 'dev', pv]);
        d.ip(['link', 'set', dv, 'up']);
        ({ child, ready } = await startChild(d, {
          cpu: 1, vni: 100, vtepLocal: v.local, uplinkMac: MAC.uplink,
          peer: { vtep: v.remote, mac: MAC.tap }, podMac: MAC.pod, fdbMac: MAC.kvx,
          pod: `net_af_packet0,iface=${dv}`, uplink: `net_tap0,iface=${tap},mac=${MAC.tap}`,
          txOffloads: DPDK_TX.ipv4Cksum | DPDK_TX.udpCksum, udpCsum: true, mbufs: 4096,
        }));
        // The kernel's end: the tap netdev carries the peer VTEP, a vxlan device on it the
        // address the pod pings; our VTEP is a static neighbour behind the tap.
        d.ip(['addr', 'add', `${v.remote}/${v.plen}`, 'dev', tap, ...(family === 6 ? ['nodad'] : [])]);
        d.ip(['link', 'set', tap, 'up']);
        d.ip(['neigh', 'replace', v.local, 'lladdr', MAC.uplink, 'dev', tap]);
        d.ip(['link', 'add', vx, 'address', MAC.kvx, 'type', 'vxlan', 'id', '100', 'local', v.remote, 'remote', v.local,
          'dstport', '4789', 'nolearning', ...(family === 4 ? ['udpcsum'] : [])]);
        d.ip(['addr', 'add', `${v.kIp}/24`, 'dev', vx]);
        d.ip(['link', 'set', vx, 'up']);
        d.ip(['neigh', 'replace', v.podIp, 'lladdr', MAC.pod, 'dev', vx]);
        before = csumErrors(d);
      }, 90_000);

      afterAll(async () => {
        if (child) await stopChild(child);
        p?.destroy();
        d?.destroy();
      });

      it('the tap PMD enabled IPv4 and UDP checksum offload on the uplink', () => {
        expect(ready.uplink.driver).toBe('net_tap');
        expect(ready.uplink.txOffloads & DPDK_TX.ipv4Cksum).toBe(DPDK_TX.ipv4Cksum);
        expect(ready.uplink.txOffloads & DPDK_TX.udpCksum).toBe(DPDK_TX.udpCksum);
      });

      it('the pod pings the kernel vxlan device across it, and the kernel counts no bad checksum', () => {
        const out = p.exec('ping', ['-n', '-c', '5', '-i', '0.2', '-W', '2', v.kIp], { timeout: 20_000 });
        expect(out).toMatch(/5 received/);
        expect(csumErrors(d)).toEqual(before);
      });
    });
  }
});

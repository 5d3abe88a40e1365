// The dpdk backend's data plane when its config or the host is not as it should be: what
// vfplane sets in the EAL itself, the CPUs it pins, a vdev under another driver name on
// a netdev the host uses, and what a DPDK vdev changes on its netdev (promiscuous mode).
// Real daemons, real veths, the host's hugepage count and mounts checked after.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startDataplane, vfplane } from '../helpers/cli.js';
import { ifname, Netns } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';
import { parseConfig } from '../../src/dataplane/config.js';

describe('dpdk.eal', () => {
  it('refuses EAL options vfplane sets itself, naming the field they come from', () => {
    const base = { node: 'n', backend: 'dpdk', uplink: { dev: 'net_null0', vtep: '192.0.2.1' } };
    expect(() => parseConfig({ ...base, dpdk: { eal: ['-l', '1'] } })).toThrow(/dpdk\.eal\.0: -l is set by vfplane \(from cpus\); remove it from dpdk\.eal/);
    expect(() => parseConfig({ ...base, dpdk: { eal: ['--log-level=7', '--file-prefix=x'] } })).toThrow(/dpdk\.eal\.1: --file-prefix is set by vfplane/);
    expect(parseConfig({ ...base, dpdk: { eal: ['--log-level', '7'] } }).dpdk.eal).toEqual(['--log-level', '7']);
  });
});

const features = JSON.parse(readFileSync(join(ROOT, 'build', 'Release', 'features.json'), 'utf8')) as Record<string, { built: boolean }>;
const built = features.dpdk?.built || process.env.CI;
(built ? describePrivileged : describe.skip)('a dpdk data plane on a veth', { netns: true }, () => {
  let peer: Netns;
  const up = ifname('du'), upPeer = ifname('dp');
  const dir = mkdtempSync(join(tmpdir(), 'vfplane-dpdkcfg-'));
  let d: ChildProcess | null = null;
  const host = () => ({ pages: readFileSync('/proc/sys/vm/nr_hugepages', 'utf8').trim(), huge: readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(dir)) });
  const promiscuity = () => Number(/promiscuity (\d+)/.exec(spawnSync('ip', ['-d', 'link', 'show', up], { encoding: 'utf8' }).stdout)![1]);
  const config = (name: string, over: Record<string, unknown>) => {
    const f = join(dir, `${name}.json`);
    writeFileSync(f, JSON.stringify({ node: `dc${name}`, backend: 'dpdk', uplink: { dev: `net_af_packet0,iface=${up}`, vtep: '192.0.2.1' }, stateDir: join(dir, name), dpdk: { hugepages: 0 }, ...over }));
    return f;
  };

  beforeAll(() => {
    peer = Netns.create('dcp');
    spawnSync('ip', ['link', 'add', up, 'type', 'veth', 'peer', 'name', upPeer, 'netns', peer.name]);
    spawnSync('ip', ['link', 'set', up, 'up']);
  });
  afterAll(() => {
    d?.kill('SIGKILL');
    spawnSync('ip', ['link', 'del', up]);
    peer?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs with cpus: [-1] (not pinned), and gives the netdev back not promiscuous', async () => {
    expect(promiscuity()).toBe(0);
    const dp = await startDataplane(config('unpinned', { cpus: [-1] }));
    d = dp.proc;
    try {
      expect(dp.log()).toContain('control socket');
      expect(promiscuity()).toBe(1); // the af_packet PMD's promiscuous mode, while it runs
    } finally {
      await dp.stop();
      d = null;
    }
    expect(dp.proc.exitCode, dp.log()).toBe(0);
    expect(promiscuity()).toBe(0);
  }, 60000);

  it('refuses before anything changes: a CPU that is not online, a vdev alias on a netdev the host uses', () => {
    const before = host();
    const cpu = vfplane(['dataplane', 'run', '--config', config('nocpu', { cpus: [4095] })], { timeoutMs: 30000 });
    expect(cpu.code).toBe(2);
    expect(cpu.stderr).toMatch(/cpus: CPU 4095 is not online on this host \(online: [\d,]+\); pin the workers to online CPUs, or -1 for not pinned/);
    spawnSync('ip', ['addr', 'add', '198.51.100.7/24', 'dev', up]);
    try {
      for (const dev of [`eth_af_packet0,iface=${up}`, `net_pcap0,iface=${up}`]) {
        const r = vfplane(['dataplane', 'run', '--config', config('alias', { uplink: { dev, vtep: '192.0.2.1' }, dpdk: { hugepages: 8 } })], { timeoutMs: 30000 });
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toContain(`carries 198.51.100.7/24`);
      }
      const other = vfplane(['dataplane', 'run', '--config', config('other', { uplink: { dev: `net_ring0,iface=${up}`, vtep: '192.0.2.1' } })], { timeoutMs: 30000 });
      expect(other.code).toBe(2);
      expect(other.stderr).toContain(`net_ring0 with iface=${up} would take the netdev ${up} without the checks`);
    } finally {
      spawnSync('ip', ['addr', 'del', '198.51.100.7/24', 'dev', up]);
    }
    expect(host()).toEqual(before);
    expect(promiscuity()).toBe(0);
  }, 60000);
});

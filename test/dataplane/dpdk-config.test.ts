// The dpdk backend's data plane when its config or the host is not as it should be: what
// vfplane sets in the EAL itself, the CPUs it pins, a vdev under another driver name on
// a netdev the host uses, and what a DPDK vdev changes on its netdev (promiscuous mode)
// and on the host (hugepages, a hugetlbfs, the EAL's runtime dir), also when it is killed.
// Real daemons, real veths, the host's hugepage count and mounts checked after.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
    // A short option with its value attached is the same option to the EAL's getopt.
    expect(() => parseConfig({ ...base, dpdk: { eal: ['-l2'] } })).toThrow(/dpdk\.eal\.0: -l is set by vfplane \(from cpus\)/);
    expect(() => parseConfig({ ...base, dpdk: { eal: ['-m', '512', '-l 2'] } })).toThrow(/dpdk\.eal\.2: -l is set by vfplane/);
    expect(() => parseConfig({ ...base, dpdk: { eal: ['-a0000:3b:00.0'] } })).toThrow(/dpdk\.eal\.0: -a is set by vfplane \(from uplink\.dev\)/);
    expect(parseConfig({ ...base, dpdk: { eal: ['-m512'] } }).dpdk.eal).toEqual(['-m512']);
  });
});

describe('dpdk.mbufDataSize', () => {
  const base = { node: 'n', backend: 'dpdk', uplink: { dev: 'net_af_packet0,iface=x', vtep: '192.0.2.1' } };
  // Accepted 0–65535, then failed at the port: 100 named the native field (mbuf_data_size),
  // 1000 said only "rx queue 0 (1024 descriptors): Cannot allocate memory".
  it('refuses a data room that holds no frame, naming the field and the default', () => {
    expect(() => parseConfig({ ...base, dpdk: { mbufDataSize: 100 } }, 'dp.yaml')).toThrow(/^dp\.yaml: dpdk\.mbufDataSize: expected 0 \(DPDK's default, 2176\) or 264–65535: an mbuf holds 128 bytes of headroom and the frame.*\(got 100\)$/);
    expect(() => parseConfig({ ...base, uplink: { dev: '0000:3b:02.1', vtep: '192.0.2.1' }, dpdk: { mbufDataSize: 263 } })).toThrow(/dpdk\.mbufDataSize: expected 0/);
    expect(parseConfig({ ...base, uplink: { dev: '0000:3b:02.1', vtep: '192.0.2.1' }, dpdk: { mbufDataSize: 264 } }).dpdk.mbufDataSize).toBe(264);
  });
  it('refuses a data room a net_af_packet uplink cannot receive its frames into, before anything is claimed', () => {
    expect(() => parseConfig({ ...base, dpdk: { mbufDataSize: 1000 } }, 'dp.yaml')).toThrow(/^dp\.yaml: dpdk\.mbufDataSize: leaves 872 bytes for the frame after the 128-byte headroom, but net_af_packet \(framesz 2048\) receives frames of up to 2016 bytes into one mbuf; give 2144 or more \(or 0, the default 2176\), or a smaller framesz= in uplink\.dev \(got 1000\)$/);
    expect(parseConfig({ ...base, dpdk: { mbufDataSize: 2144 } }).dpdk.mbufDataSize).toBe(2144);
    expect(parseConfig({ ...base, uplink: { dev: 'net_af_packet0,iface=x,framesz=1024', vtep: '192.0.2.1' }, dpdk: { mbufDataSize: 1120 } }).dpdk.mbufDataSize).toBe(1120);
    // The default is too small for a larger framesz.
    expect(() => parseConfig({ ...base, uplink: { dev: 'net_af_packet0,iface=x,framesz=4096', vtep: '192.0.2.1' } }, 'dp.yaml')).toThrow(/dpdk\.mbufDataSize: the default, 2176, leaves 2048 bytes for the frame .* up to 4064 bytes into one mbuf; give 4192 or more, or a smaller framesz= in uplink\.dev/);
  });
});

const features = JSON.parse(readFileSync(join(ROOT, 'build', 'Release', 'features.json'), 'utf8')) as Record<string, { built: boolean }>;
const built = features.dpdk?.built || process.env.CI;
(built ? describePrivileged : describe.skip)('a dpdk data plane on a veth', { netns: true }, () => {
  let peer: Netns;
  const up = ifname('du'), upPeer = ifname('dp');
  // Made in beforeAll: a run that filters these tests out (-t) collects this block without
  // running its hooks, and a directory made here would be left behind.
  let dir = '';
  let d: ChildProcess | null = null;
  const host = () => ({ pages: readFileSync('/proc/sys/vm/nr_hugepages', 'utf8').trim(), huge: readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(dir)) });
  const promiscuity = () => Number(/promiscuity (\d+)/.exec(spawnSync('ip', ['-d', 'link', 'show', up], { encoding: 'utf8' }).stdout)![1]);
  const config = (name: string, over: Record<string, unknown>) => {
    const f = join(dir, `${name}.json`);
    writeFileSync(f, JSON.stringify({ node: `dc${name}`, backend: 'dpdk', uplink: { dev: `net_af_packet0,iface=${up}`, vtep: '192.0.2.1' }, stateDir: join(dir, name), dpdk: { hugepages: 0 }, ...over }));
    return f;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vfplane-dpdkcfg-'));
    peer = Netns.create('dcp');
    spawnSync('ip', ['link', 'add', up, 'type', 'veth', 'peer', 'name', upPeer, 'netns', peer.name]);
    spawnSync('ip', ['link', 'set', up, 'up']);
  });
  afterAll(() => {
    d?.kill('SIGKILL');
    // A failed kill test leaves what it reserved and mounted.
    vfplane(['dataplane', 'unclaim', '--state-dir', join(dir, 'killed')], { timeoutMs: 30000 });
    spawnSync('ip', ['link', 'del', up]);
    peer?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // helper-90: ~100 lines of the EAL's usage, then "usual fixes: hugepages…, root", and
  // nothing naming the config's own argument.
  it('an EAL argument of dpdk.eal the EAL refuses: the error names dpdk.eal, and nothing is left', () => {
    const before = host();
    const r = vfplane(['dataplane', 'run', '--config', config('badeal', { dpdk: { hugepages: 0, eal: ['--no-such-eal-option'] } })], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/EAL arguments: -l \S+ .*--no-such-eal-option/);
    expect(r.stderr).toContain('dpdk.eal added --no-such-eal-option to vfplane\'s own arguments: check those first');
    expect(host()).toEqual(before);
    expect(promiscuity()).toBe(0);
  });

  it('runs with cpus: [-1] (not pinned), and gives the netdev back not promiscuous', async () => {
    expect(promiscuity()).toBe(0);
    const sock = join(dir, 'unpinned.sock');
    const dp = await startDataplane(config('unpinned', { cpus: [-1], socket: sock, dpdk: { hugepages: 0, rxDesc: 100 } }));
    d = dp.proc;
    try {
      expect(dp.log()).toContain('control socket');
      // The descriptors the device took (helper-90: an adjusted rxDesc was not said).
      expect(dp.log()).toMatch(/uplink net_af_packet port \d+: \d+ mbufs, 1 queue\(s\) of 100 rx and 1024 tx descriptors, underlay MTU/);
      expect(promiscuity()).toBe(1); // the af_packet PMD's promiscuous mode, while it runs
      // Registered with the EAL as a non-EAL thread, the worker keeps its own name, and
      // is shown unpinned.
      const tasks = readdirSync(`/proc/${dp.proc.pid}/task`).map((t) => { try { return readFileSync(`/proc/${dp.proc.pid}/task/${t}/comm`, 'utf8').trim(); } catch { return ''; } });
      expect(tasks.filter((n) => n.startsWith('vfp-w')), tasks.join(' ')).toEqual(['vfp-w0']);
      const st = vfplane(['dataplane', 'status', '--socket', sock]);
      expect(st.stdout, st.stderr).toMatch(/, 1 worker\(s\) unpinned \(cpus: -1 or not set\)$/m);
    } finally {
      await dp.stop();
      d = null;
    }
    expect(dp.proc.exitCode, dp.log()).toBe(0);
    expect(promiscuity()).toBe(0);
  }, 60000);

  it('killed: its hugepages, hugetlbfs, EAL runtime dir and promiscuous mode are given back by `dataplane unclaim` or by its next start', async () => {
    const before = host();
    const want = Number(before.pages) + 64; // more than the host has: this run reserves them
    const state = join(dir, 'killed');
    const changed = { pages: String(want), huge: [expect.stringContaining(`${join(state, 'hugepages')} hugetlbfs`)] };
    const kill = async () => {
      const dp = await startDataplane(config('killed', { dpdk: { hugepages: want } }));
      d = dp.proc;
      expect(dp.log()).toContain('control socket');
      await dp.stop('SIGKILL');
      d = null;
      const runtime = `/var/run/dpdk/vfplane-dckilled-${dp.proc.pid}`;
      // What a kill leaves: nothing ran its cleanup.
      expect(host()).toEqual(changed);
      expect(existsSync(runtime)).toBe(true);
      expect(promiscuity()).toBe(1);
      return runtime;
    };

    const first = await kill();
    const doctor = vfplane(['doctor', '--json', '--state-dir', state], { timeoutMs: 60000 });
    const warned = (JSON.parse(doctor.stdout) as { checks: { name: string; detail: string; fix?: string }[] }).checks.find((c) => c.name === 'DPDK host changes of dckilled');
    expect(warned?.detail).toBe(`the DPDK data plane of node dckilled was killed and left ${want - Number(before.pages)} hugepages reserved (nr_hugepages ${before.pages} → ${want}), a hugetlbfs mounted at ${join(state, 'hugepages')}, the EAL runtime directory ${first}`);
    expect(warned?.fix).toBe(`start it again, or \`vfplane dataplane unclaim --node dckilled --state-dir ${state}\``);
    // The netdev the PMD made promiscuous says so (helper-90: only forwarding, IPv6, GRO).
    const netdevs = (JSON.parse(doctor.stdout) as { checks: { name: string; detail: string }[] }).checks.find((c) => c.name === 'netdevs of dckilled');
    expect(netdevs?.detail).toContain('forwarding, IPv6, GRO and promiscuous mode stay as it set them');
    const un = vfplane(['dataplane', 'unclaim', '--node', 'dckilled', '--state-dir', state], { timeoutMs: 30000 });
    expect(un.code, un.stderr).toBe(0);
    expect(un.stdout).toContain(`removed the EAL runtime directory ${first}`);
    expect(un.stdout).toContain(`unmounted the hugetlbfs at ${join(state, 'hugepages')}`);
    expect(un.stdout).toContain(`(nr_hugepages ${want} → ${before.pages})`);
    expect(un.stdout).toMatch(/gave .* back the settings it had before/);
    expect(host()).toEqual(before);
    expect(existsSync(first)).toBe(false);
    expect(promiscuity()).toBe(0);

    // Killed again, then started without hugepages: the start gives back what the
    // killed run reserved (not taking it for the host's), and its own stop the rest.
    const second = await kill();
    const dp = await startDataplane(config('killed', { dpdk: { hugepages: 0 } }));
    d = dp.proc;
    try {
      expect(dp.log()).toContain(`gave back the hugepages a DPDK run (pid ${second.split('-').pop()}`);
      expect(dp.log()).toContain(`unmounted the hugetlbfs at ${join(state, 'hugepages')}`);
      expect(host()).toEqual(before);
      expect(existsSync(second)).toBe(false);
    } finally {
      await dp.stop();
      d = null;
    }
    expect(dp.proc.exitCode, dp.log()).toBe(0);
    expect(host()).toEqual(before);
    expect(promiscuity()).toBe(0);
    expect(existsSync(join(state, 'dpdk-env-dckilled.json'))).toBe(false);
  }, 120000);

  it('refuses fewer mbufs than the uplink\'s rings hold, naming dpdk.mbufs, and gives the netdev back', () => {
    const r = vfplane(['dataplane', 'run', '--config', config('fewmbufs', { dpdk: { hugepages: 0, mbufs: 1000 } })], { timeoutMs: 30000 });
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/dpdk\.mbufs 1000 is fewer than its rings hold \(1 queue\(s\) × \(1024 rx \+ 1024 tx descriptors\) = 2048\); give 0 \(sized from them: \d+\), at least 2048/);
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

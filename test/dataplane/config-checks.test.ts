// What the config file says that cannot work is refused when the file is read, naming
// the field, the value and the fix, before the data plane claims a netdev: a metrics
// port out of range, CPUs that do not match the workers, a VTEP that is not a unicast
// address, a static FDB entry or flood list naming a VTEP that is not a peer; CPUs
// outside the cpuset the daemon runs in (a container's), in a real cgroup.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { parseConfig } from '../../src/dataplane/config.js';
import { dpOptionsOf } from '../../src/dataplane/daemon.js';
import { DataPlane } from '../../src/dataplane/dp.js';

const ok = { uplink: { ifname: 'ens1f0', vtep: '192.0.2.1' } };

describe('data-plane config checks', () => {
  it('range-checks the metrics port', () => {
    expect(() => parseConfig({ ...ok, metrics: '127.0.0.1:99999' }, 'dp.yaml')).toThrow(/^dp\.yaml: metrics: the port is 0–65535 \(0: any free one\).*"127\.0\.0\.1:99999"/);
    expect(parseConfig({ ...ok, metrics: '127.0.0.1:0' }).metrics).toBe('127.0.0.1:0');
    expect(parseConfig({ ...ok, metrics: '[::1]:9465' }).metrics).toBe('[::1]:9465');
    // One message for a malformed one (helper-90: three, joined).
    expect(() => parseConfig({ ...ok, metrics: 'bad' }, 'dp.yaml')).toThrow(/^dp\.yaml: metrics: expected HOST:PORT, e\.g\. 127\.0\.0\.1:9465, or :PORT for every address \(got "bad"\)$/);
    // The usual exporter form: every address (the metrics test serves on one).
    expect(parseConfig({ ...ok, metrics: ':9465' }).metrics).toBe(':9465');
    expect(() => parseConfig({ ...ok, metrics: ':99999' }, 'dp.yaml')).toThrow(/^dp\.yaml: metrics: the port is 0–65535/);
  });

  // The uplink's port is port="uplink" in the metrics and stats' portDrops: a representor
  // netdev of that name gave every vfplane_port_* family two {port="uplink"} series (the
  // scrape refused whole) and portDrops one key for two ports.
  it('refuses an attachment whose representor is named uplink, naming the fix', () => {
    const att = { representor: 'uplink', vni: 100, mac: '02:00:00:00:0d:01' };
    expect(() => parseConfig({ ...ok, attachments: [att] }, 'dp.yaml')).toThrow(/^dp\.yaml: attachments\.0\.representor: representor "uplink": "uplink" is the name stats and the metrics give the uplink's port \(port="uplink"\).*rename the netdev \(ip link set uplink name OTHER\)/);
    expect(parseConfig({ ...ok, attachments: [{ ...att, representor: 'uplink0' }] }).attachments[0]!.representor).toBe('uplink0');
  });

  it('names the values afpacket.ring takes', () => {
    expect(() => parseConfig({ ...ok, afpacket: { ring: 1 } }, 'dp.yaml')).toThrow(/^dp\.yaml: afpacket\.ring: expected 2 \(TPACKET_V2, per-frame rx\) or 3 \(TPACKET_V3, block rx\) \(got 1\)$/);
  });

  it('refuses --metrics with a port out of range before touching anything', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fxd-metrics-'));
    try {
      const config = join(dir, 'dp.json');
      writeFileSync(config, JSON.stringify({ node: 'fxdm', uplink: { ifname: 'fxdnone0', vtep: '192.0.2.1' }, stateDir: join(dir, 'state'), socket: join(dir, 'dp.sock') }));
      const r = vfplane(['dataplane', 'run', '--config', config, '--metrics', '127.0.0.1:99999']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/metrics: the port is 0–65535.*"127\.0\.0\.1:99999"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 1 (a bad file, not a bad command line) on a malformed config file, before touching anything', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fxd-badfile-'));
    try {
      const config = join(dir, 'dp.yaml');
      writeFileSync(config, `uplink: {ifname: fxdnone0, vtep: 192.0.2.1}\nburst: 9999\nstateDir: ${join(dir, 'state')}\n`);
      const r = vfplane(['dataplane', 'run', '--config', config, '--json']);
      expect(r.code, r.stderr).toBe(1);
      expect(JSON.parse(r.stdout)).toEqual({ error: { kind: 'bad-file', exitCode: 1, message: expect.stringMatching(new RegExp(`^${config}: burst: .*256.*9999`)) } });
      expect(r.stdout.trimEnd().split('\n')).toHaveLength(1); // a line, as its ready and stopped lines are
      // So is a usage error commander catches (helper-98).
      const usage = vfplane(['dataplane', 'run', '--config', config, '--json', '--bogus']);
      expect(usage.code).toBe(2);
      expect(usage.stdout.trimEnd().split('\n')).toEqual([JSON.stringify({ error: { message: "unknown option '--bogus'", exitCode: 2, kind: 'invalid' } })]);
      writeFileSync(config, 'uplink: [unclosed');
      const y = vfplane(['dataplane', 'run', '--config', config]);
      expect(y.code, y.stderr).toBe(1);
      expect(y.stderr).toMatch(/dp\.yaml is not valid YAML or JSON/);
      expect(existsSync(join(dir, 'state'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says, before anything is claimed, when two workers share a CPU or learnPerVni is no share of learnCapacity', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fxd-said-'));
    try {
      const config = join(dir, 'dp.json');
      writeFileSync(config, JSON.stringify({ node: 'fxds', uplink: { ifname: 'fxdnone0', vtep: '192.0.2.1' }, workers: 2, cpus: [0, 0], learnCapacity: 100, learnPerVni: 5000, stateDir: join(dir, 'state'), socket: join(dir, 'dp.sock') }));
      const r = vfplane(['dataplane', 'run', '--config', config]);
      expect(r.code).toBe(1); // no such uplink
      expect(r.stderr).toContain('the uplink fxdnone0 does not exist');
      expect(r.stderr).toContain('cpus: CPU 0 is given to more than one worker: workers on one CPU take turns');
      expect(r.stderr).toContain('learnPerVni 5000 is not under learnCapacity 100: no VNI is held to a share of the learned table');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // idleSpins had no maximum here, the addon's was 1e9: 2e9 passed the file and failed at
  // the data plane's creation, naming the addon's field (opts.idleSpins), not the file's.
  it('bounds idleSpins as the addon does, naming the file and the field', () => {
    expect(() => parseConfig({ ...ok, idleSpins: 2_000_000_000 }, 'dp.yaml')).toThrow(/^dp\.yaml: idleSpins: expected 0–1000000000 empty polls \(0: always spin; the default 64 .*\(got 2000000000\)/);
    expect(parseConfig({ ...ok, idleSpins: 1_000_000_000 }).idleSpins).toBe(1_000_000_000);
  });

  // Every option the config passes to the data plane, at each end of its schema's range,
  // is one the addon takes, and one past it is refused by the schema (not the addon).
  it('the schema\'s bounds of the data plane\'s options are within the addon\'s', () => {
    const ends: Record<string, [number, number]> = {
      workers: [1, 16], burst: [1, 256], idleSpins: [0, 1_000_000_000], learnCapacity: [16, 1 << 24],
      learnPerVni: [1, 1 << 24], floodPps: [1, 100_000_000], neighReachableSeconds: [1, 3600],
    };
    for (const [k, [lo, hi]] of Object.entries(ends)) {
      for (const v of [lo, hi]) {
        const opts = dpOptionsOf(parseConfig({ ...ok, [k]: v }));
        const dp = new DataPlane(opts);
        dp.stop(0);
      }
      expect(() => parseConfig({ ...ok, [k]: hi + 1 }, 'dp.yaml'), k).toThrow(new RegExp(`^dp\\.yaml: ${k}: `));
      expect(() => parseConfig({ ...ok, [k]: lo - 1 }, 'dp.yaml'), k).toThrow(new RegExp(`^dp\\.yaml: ${k}: `));
    }
  });

  it('wants one CPU per worker, naming both fields', () => {
    expect(() => parseConfig({ ...ok, workers: 2, cpus: [1] })).toThrow(/cpus: cpus needs one entry per worker \(workers is 2, cpus lists 1\); list 2 CPUs \(-1: not pinned\) or change workers \(got \[1\]\)/);
    expect(parseConfig({ ...ok, workers: 2, cpus: [1, 2] }).cpus).toEqual([1, 2]);
    expect(parseConfig({ ...ok, cpus: [3] }).cpus).toEqual([3]);
  });

  it('takes only a unicast address as our VTEP', () => {
    for (const vtep of ['224.0.0.1', '239.1.2.3', '255.255.255.255', '0.0.0.0', 'ff02::1', '::']) {
      expect(() => parseConfig({ uplink: { ifname: 'ens1f0', vtep } }), vtep).toThrow(/uplink\.vtep: expected a unicast address.*not a multicast, broadcast or unspecified one/);
    }
    expect(parseConfig({ uplink: { ifname: 'ens1f0', vtep: '2001:db8::1' } }).uplink.vtep).toBe('2001:db8::1');
  });

  it('takes a metrics address only with a host it can listen on, and an underlay MTU that carries a packet', () => {
    for (const metrics of ['1.2.3.4.5.6:80', '999.1.1.1:80', 'example.com:80', '[zz]:80']) {
      expect(() => parseConfig({ ...ok, metrics }, 'dp.yaml'), metrics).toThrow(/^dp\.yaml: metrics: expected (HOST:PORT|an IPv4 address, \[IPv6\] or localhost before the port)/);
    }
    for (const metrics of ['127.0.0.1:9465', '[::1]:9465', 'localhost:0', '0.0.0.0:9465']) expect(parseConfig({ ...ok, metrics }).metrics).toBe(metrics);
    for (const mtu of [10, 117]) expect(() => parseConfig({ ...ok, tunnel: { mtu } }, 'dp.yaml'), String(mtu)).toThrow(/^dp\.yaml: tunnel\.mtu: expected 0 \(the uplink's MTU\) or the underlay MTU, 118–65535/);
    expect(parseConfig({ ...ok, tunnel: { mtu: 0 } }).tunnel.mtu).toBe(0);
    expect(parseConfig({ ...ok, tunnel: { mtu: 118 } }).tunnel.mtu).toBe(118);
    expect(() => parseConfig({ uplink: { ifname: 'ens1f0', vtep: '2001:db8::1' }, tunnel: { mtu: 1279 } })).toThrow(/tunnel\.mtu: an IPv6 underlay has an MTU of 1280 at least/);
  });

  it('names every mistake of a file at once (a reload said one per try)', () => {
    let msg = '';
    try {
      parseConfig({ ...ok, ageSeconds: 0, burst: 999, peers: [{ vtep: '224.0.0.1' }] }, 'dp.yaml');
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg.split('; ').map((m) => m.replace(/^dp\.yaml: /, '').split(':')[0])).toEqual(expect.arrayContaining(['ageSeconds', 'burst', 'peers.0.vtep']));
  });

  it('names an unknown key without printing the object around it', () => {
    // (the fields the object has instead, and the likely one; never the values around it)
    expect(() => parseConfig({ ...ok, peerz: [] }, 'dp.yaml')).toThrow(/^dp\.yaml: config: unknown field "peerz" \(did you mean "peers"\?\); config has node, backend, uplink, [a-zA-Z, ]+$/);
    expect(() => parseConfig({ uplink: { ...ok.uplink, foo: 1 } }, 'dp.yaml')).toThrow(/^dp\.yaml: uplink: unknown field "foo"; uplink has ifname, dev, netns, vtep, mac, vlan, gateway, prefixLength$/);
  });

  it('takes only unicast peers, and drops the node itself from a shared peer list', () => {
    for (const vtep of ['224.0.0.1', '255.255.255.255', '0.0.0.0']) {
      expect(() => parseConfig({ ...ok, peers: [{ vtep }] }, 'dp.yaml'), vtep).toThrow(/^dp\.yaml: peers\.0\.vtep: expected a unicast address as a peer VTEP, not a multicast, broadcast or unspecified one/);
    }
    expect(() => parseConfig({ uplink: { ifname: 'ens1f0', vtep: '2001:db8::1' }, peers: [{ vtep: 'ff02::1' }] })).toThrow(/peers\.0\.vtep: expected a unicast address as a peer VTEP/);
    expect(() => parseConfig({ ...ok, peers: [{ vtep: '192.0.2.2', mac: 'ff:ff:ff:ff:ff:ff' }] })).toThrow(/peers\.0\.mac: expected the peer's unicast MAC on the underlay, not a group or all-zero one/);
    // One config for every node of a DaemonSet lists every VTEP, this node's too.
    expect(parseConfig({ ...ok, peers: [{ vtep: '192.0.2.1' }, { vtep: '192.0.2.2', mac: '02:00:00:00:00:02' }] }).peers).toEqual([{ vtep: '192.0.2.2', mac: '02:00:00:00:00:02' }]);
  });

  it('takes only a station\'s MAC for a static FDB entry and an attachment (not a group or all-zero one)', () => {
    const peers = [{ vtep: '192.0.2.2' }];
    for (const mac of ['ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01', '00:00:00:00:00:00']) {
      expect(() => parseConfig({ ...ok, peers, fdb: [{ vni: 5, mac, vtep: '192.0.2.2' }] }, 'dp.yaml'), mac).toThrow(/^dp\.yaml: fdb\.0\.mac: expected a pod's unicast MAC/);
      expect(() => parseConfig({ ...ok, attachments: [{ representor: 'ens1f0r1', vni: 5, mac }] }, 'dp.yaml'), mac).toThrow(/^dp\.yaml: attachments\.0\.mac: expected the pod interface's unicast MAC/);
    }
    expect(parseConfig({ ...ok, peers, fdb: [{ vni: 5, mac: '02:00:00:00:00:05', vtep: '192.0.2.2' }] }).fdb).toHaveLength(1);
  });

  it('refuses a peer, VNI or static entry listed twice, naming both places', () => {
    expect(() => parseConfig({ ...ok, peers: [{ vtep: '192.0.2.2' }, { vtep: '192.0.2.2', mac: '02:00:00:00:00:02' }] }, 'dp.yaml'))
      .toThrow(/^dp\.yaml: peers\.1\.vtep: peer 192\.0\.2\.2 is listed twice \(also peers\.0\); list each peer once/);
    expect(() => parseConfig({ ...ok, vnis: [{ vni: 7, flood: [] }, { vni: 8, flood: [] }, { vni: 7, flood: [] }] }, 'dp.yaml'))
      .toThrow(/^dp\.yaml: vnis\.2\.vni: VNI 7 is listed twice \(also vnis\.0\)/);
    const peers = [{ vtep: '192.0.2.2' }];
    const e = { vni: 5, mac: '02:00:00:00:00:05', vtep: '192.0.2.2' };
    expect(() => parseConfig({ ...ok, peers, fdb: [e, { ...e, mac: '02:00:00:00:00:05'.toUpperCase() }] }, 'dp.yaml'))
      .toThrow(/^dp\.yaml: fdb\.1: the static entry for 02:00:00:00:00:05 on VNI 5 is listed twice \(also fdb\.0\)/);
  });

  it('refuses an attachment whose representor, MAC on its VNI or VF is listed twice, naming both places', () => {
    const a = { representor: 'ens1f0r1', vni: 5, mac: '02:00:00:00:00:05', pci: '0000:5e:02.1' };
    const b = { representor: 'ens1f0r2', vni: 5, mac: '02:00:00:00:00:06', pci: '0000:5e:02.2' };
    expect(() => parseConfig({ ...ok, attachments: [a, b, { ...b, representor: 'ens1f0r1', mac: '02:00:00:00:00:07', pci: '0000:5e:02.3' }] }, 'dp.yaml'))
      .toThrow(/^dp\.yaml: attachments\.2\.representor: representor ens1f0r1 is listed twice \(also attachments\.0\); attach each representor once/);
    expect(() => parseConfig({ ...ok, attachments: [a, { ...b, mac: '02:00:00:00:00:05'.toUpperCase() }] }, 'dp.yaml'))
      .toThrow(/^dp\.yaml: attachments\.1\.mac: MAC 02:00:00:00:00:05 is attached twice on VNI 5 \(also attachments\.0\)/);
    expect(() => parseConfig({ ...ok, attachments: [a, { ...b, pci: a.pci }] }, 'dp.yaml'))
      .toThrow(/^dp\.yaml: attachments\.1\.pci: VF 0000:5e:02\.1 is attached twice \(also attachments\.0\)/);
    // The same name in two namespaces, the same MAC on two VNIs, and no VF named: fine.
    const two = parseConfig({ ...ok, attachments: [{ ...a, netns: '/run/netns/x' }, { ...a, netns: '/run/netns/y', vni: 6, pci: undefined }, { ...b, pci: undefined }] });
    expect(two.attachments).toHaveLength(3);
  });

  it('refuses a static FDB entry or flood list naming a VTEP that is not a peer, naming the entry and the VTEP', () => {
    const peers = [{ vtep: '192.0.2.2' }];
    expect(() => parseConfig({ ...ok, peers, fdb: [{ vni: 5, mac: '02:00:00:00:00:05', vtep: '192.0.2.9' }] }, 'dp.yaml'))
      .toThrow(/^dp\.yaml: fdb\.0\.vtep: the static entry for 02:00:00:00:00:05 on VNI 5 points at VTEP 192\.0\.2\.9, which is not among peers; add it to peers or fix the entry/);
    expect(() => parseConfig({ ...ok, peers, vnis: [{ vni: 7, flood: ['192.0.2.2', '192.0.2.8'] }] }))
      .toThrow(/vnis\.0\.flood\.1: the flood list of VNI 7 names VTEP 192\.0\.2\.8, which is not among peers; add it to peers or drop it from the list/);
    // Spelled differently, still the peer.
    expect(parseConfig({ uplink: { ifname: 'ens1f0', vtep: '2001:db8::1' }, peers: [{ vtep: '2001:db8::2' }], fdb: [{ vni: 5, mac: '02:00:00:00:00:05', vtep: '2001:DB8:0::2' }], vnis: [{ vni: 5, flood: ['2001:db8:0:0::2'] }] }).fdb).toHaveLength(1);
  });
});

/** A cpuset cgroup holding `cpus` (v1's cpuset hierarchy, or v2's with the controller
 *  enabled), the file a process joins it by, and its removal. */
function cpusetCgroup(name: string, cpus: string): { join: string; remove(): void } {
  const v1 = '/sys/fs/cgroup/cpuset';
  if (existsSync(join(v1, 'cpuset.cpus'))) {
    const dir = join(v1, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'cpuset.mems'), readFileSync(join(v1, 'cpuset.mems'), 'utf8'));
    writeFileSync(join(dir, 'cpuset.cpus'), cpus);
    return { join: join(dir, 'tasks'), remove: () => rmdirSync(dir) };
  }
  const v2 = '/sys/fs/cgroup';
  if (!readFileSync(join(v2, 'cgroup.controllers'), 'utf8').includes('cpuset')) throw new Error('no cpuset controller (cgroup v1 or v2) on this host');
  writeFileSync(join(v2, 'cgroup.subtree_control'), '+cpuset');
  const dir = join(v2, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'cpuset.cpus'), cpus);
  return { join: join(dir, 'cgroup.procs'), remove: () => rmdirSync(dir) };
}

describePrivileged('the workers\' CPUs against the cpuset the daemon runs in', { root: true }, () => {
  it('refuses an online CPU outside its cpuset, naming the usable ones, and takes one inside', () => {
    const online = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
    if (!/^0-\d+/.test(online)) throw new Error(`this test needs CPUs 0 and 1 online (online: ${online})`);
    const dir = mkdtempSync(join(tmpdir(), 'fxd-cpuset-'));
    const cg = cpusetCgroup(`vfplane-test-${process.pid}`, '0');
    try {
      const run = (cpu: number) => {
        const config = join(dir, `dp${cpu}.json`);
        writeFileSync(config, JSON.stringify({ node: 'fxdc', cpus: [cpu], uplink: { ifname: 'fxdnone0', vtep: '192.0.2.1' }, stateDir: join(dir, 'state'), socket: join(dir, 'dp.sock') }));
        const r = spawnSync('sh', ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', cg.join, process.execPath, BIN, 'dataplane', 'run', '--config', config], { encoding: 'utf8', timeout: 60000 });
        return { code: r.status, stderr: r.stderr };
      };
      const outside = run(1);
      expect(outside.code, outside.stderr).toBe(2);
      expect(outside.stderr).toMatch(/cpus: CPU 1 is online but outside this process's cpuset \(usable here: 0\).*; pin the workers to usable CPUs, give the container those CPUs, or -1 for not pinned/);
      expect(existsSync(join(dir, 'state'))).toBe(false); // refused before anything was made
      // CPU 0 passes the check: what stops this daemon is the uplink that does not exist.
      const inside = run(0);
      expect(inside.code).not.toBe(0);
      expect(inside.stderr).not.toMatch(/cpuset|CPU 0/);
      expect(inside.stderr).toContain('fxdnone0');
    } finally {
      cg.remove();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

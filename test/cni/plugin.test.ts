// vfplane-cni run exactly as a runtime runs it (environment + stdin, JSON on stdout),
// against a simulated NIC with real network namespaces and the reference IPAM plugins
// (host-local, static) and tuning from Debian's containernetworking-plugins.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { AllocStore } from '../../src/alloc/store.js';
import { request as dataplaneRequest } from '../../src/dataplane/control.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { capture, Netns } from '../helpers/netns.js';
import { dropAllSims, dropSim, makeSim, sweepStaleSims } from '../helpers/sim.js';
import { ROOT } from '../helpers/cli.js';
import { vfplane } from '../helpers/cli.js';
import type { SimManifest } from '../../src/sim/manifest.js';
import { simKernel } from '../../src/sim/kernel.js';
import { Sysfs } from '../../src/sriov/sysfs.js';
import { vfListRows, vfShowView } from '../../src/cli/sriov-run.js';

const PLUGIN = join(ROOT, 'bin', 'vfplane-cni.js');
const REF = '/usr/lib/cni';

interface Call {
  code: number;
  out: any;
  stderr: string;
}

interface Env {
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  extra?: Record<string, string>;
}

function envOf(command: string, e: Env, cniPath: string): Record<string, string> {
  // The runtime's environment lists the temp directory as a log directory: the tests' logFiles are there.
  const env: Record<string, string> = { ...process.env as Record<string, string>, VFPLANE_CNI_LOG_DIRS: tmpdir(), ...(e.extra ?? {}), CNI_COMMAND: command, CNI_PATH: cniPath };
  for (const k of ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS']) delete env[k];
  if (e.containerId) env.CNI_CONTAINERID = e.containerId;
  if (e.netns) env.CNI_NETNS = e.netns;
  if (e.ifname) env.CNI_IFNAME = e.ifname;
  if (e.args) env.CNI_ARGS = e.args;
  return env;
}

function parse(stdout: string): any {
  try {
    return stdout.trim() ? JSON.parse(stdout) : null;
  } catch {
    return stdout;
  }
}

describePrivileged('vfplane-cni on a simulated NIC', { netns: true, commands: ['nsenter', `${REF}/host-local`, `${REF}/static`, `${REF}/tuning`] }, () => {
  let m: SimManifest;
  let state: string;
  let ipamDir: string;
  let cniPath: string;
  const pods: Netns[] = [];

  /** Runs the plugin (or a reference plugin) synchronously. */
  const call = (command: string, conf: unknown, e: Env = {}, bin = PLUGIN): Call => {
    const input = typeof conf === 'string' ? conf : JSON.stringify(conf);
    const r = bin.endsWith('.js')
      ? spawnSync(process.execPath, [bin], { input, env: envOf(command, e, cniPath), encoding: 'utf8', timeout: 60_000 })
      : spawnSync(bin, [], { input, env: envOf(command, e, cniPath), encoding: 'utf8', timeout: 60_000 });
    return { code: r.status ?? -1, out: parse(r.stdout), stderr: r.stderr };
  };
  /** As call, without blocking: the plugin JS (under Node) or BIN (the installed shim). */
  const callAsync = (command: string, conf: unknown, e: Env, bin = PLUGIN): Promise<Call> =>
    new Promise((resolve) => {
      const [file, args] = bin.endsWith('.js') ? [process.execPath, [bin]] : [bin, []];
      const child = spawn(file, args, { env: envOf(command, e, cniPath), stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      child.on('close', (code) => resolve({ code: code ?? -1, out: parse(out), stderr: err }));
      child.stdin.end(JSON.stringify(conf));
    });

  /** A data plane stood in for by a process of its own (the plugin runs synchronously
   *  here): it prints each connection's request as {op, mtuAuto}, then "ready" once it
   *  listens, and answers what `answer` (the source of a function of the request)
   *  returns, or nothing for null. */
  const standInDataplane = (sock: string, answer: string) => spawn(process.execPath, ['-e', `
    const answer = ${answer};
    require('node:net').createServer((c) => {
      let buf = '';
      c.on('error', () => undefined);
      c.on('data', (d) => {
        buf += d;
        if (!buf.includes('\\n')) return;
        const r = JSON.parse(buf.split('\\n')[0]);
        buf = '';
        console.log(JSON.stringify({ op: r.op, mtuAuto: r.mtuAuto }));
        const a = answer(r);
        if (a !== null) c.end(a + '\\n');
      });
    }).listen(process.argv[1], () => console.log('ready'));`, sock], { stdio: ['ignore', 'pipe', 'inherit'] });

  const pod = (tag: string) => {
    const p = Netns.create(tag);
    pods.push(p);
    return p;
  };
  const nsPath = (p: Netns) => `/run/netns/${p.name}`;
  const vfpJson = (args: string[]) => {
    const r = vfplane([...args, '--sysfs-root', m.root, '--state-dir', state, '--json']);
    if (r.code !== 0) throw new Error(`vfplane ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const hostLinks = () => (JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as any[])
    .filter((l) => l.ifname.startsWith(m.prefix)).map((l) => `${l.ifname} ${l.address} ${l.mtu}`).sort();
  const leasedIps = (dir = ipamDir) => (existsSync(join(dir, 'vfnet')) ? readdirSync(join(dir, 'vfnet')).filter((f) => /^\d/.test(f)).sort() : []);
  /** What `vfplane vf show|list --json` prints, read in this process by the same code
   *  (the tree opened as the CLI opens it, the store read as it is on disk): state the
   *  tests look at, without a Node process per look. The CLI itself is run where it is
   *  what a test is about. */
  const look = (args: ['vf', 'show', string] | ['vf', 'list'] | ['vf', 'list', '--allocated'], on: { root: string; state: string } = { root: m.root, state }): any => {
    const o = { sysfsRoot: on.root, stateDir: on.state, json: true };
    const sysfs = new Sysfs(on.root, simKernel(on.root));
    return JSON.parse(JSON.stringify(args[1] === 'show' ? vfShowView(sysfs, o, args[2]) : vfListRows(sysfs, { ...o, allocated: args[2] === '--allocated' })));
  };
  /** What must not change when a request is refused. */
  const hostState = () => ({ links: hostLinks(), vfs: look(['vf', 'list']), ips: leasedIps() });

  const base = (over: Record<string, unknown> = {}) => ({
    cniVersion: '1.0.0',
    name: 'vfnet',
    type: 'vfplane-cni',
    sysfsRoot: m.root,
    stateDir: state,
    ipam: { type: 'host-local', subnet: '10.56.0.0/24', dataDir: ipamDir, routes: [{ dst: '10.60.0.0/16' }], gateway: '10.56.0.1' },
    ...over,
  });
  const podArgs = (name: string, cid: string) => `IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=${cid};K8S_POD_UID=0b5e1d2c-0000-4000-8000-${cid.padStart(12, '0').slice(-12)}`;

  beforeAll(() => {
    sweepStaleSims();
    m = makeSim({ profile: 'x710', pfs: 2, vfs: 8 });
    state = mkdtempSync(join(tmpdir(), 'vfplane-cni-state-'));
    ipamDir = mkdtempSync(join(tmpdir(), 'vfplane-cni-ipam-'));
    // The runtime's CNI_PATH: where vfplane-cni and the reference plugins live.
    cniPath = mkdtempSync(join(tmpdir(), 'vfplane-cni-bin-'));
    const inst = vfplane(['cni', 'install', '--dir', cniPath]);
    expect(inst.code, inst.stderr).toBe(0);
    writeFileSync(join(state, 'pools.json'), JSON.stringify({ pools: [{ name: 'all', selector: { drivers: ['iavf'] } }] }));
    cniPath = `${cniPath}:${REF}`;
  });
  afterAll(() => {
    for (const p of pods) p.destroy();
    dropAllSims();
    for (const d of [state, ipamDir, cniPath.split(':')[0]!]) rmSync(d, { recursive: true, force: true });
  });

  it('VERSION lists 0.4.0, 1.0.0 and 1.1.0, also through the wrapper `vfplane cni install` wrote', () => {
    const r = call('VERSION', { cniVersion: '1.1.0' });
    expect(r.code).toBe(0);
    expect(r.out.supportedVersions).toEqual(expect.arrayContaining(['0.4.0', '1.0.0', '1.1.0']));
    const w = call('VERSION', { cniVersion: '1.1.0' }, {}, join(cniPath.split(':')[0]!, 'vfplane-cni'));
    expect(w.out).toEqual(r.out);
    // Answered in the version asked when the plugin speaks it, else in its newest.
    expect(call('VERSION', { cniVersion: '0.4.0' }).out.cniVersion).toBe('0.4.0');
    expect(call('VERSION', { cniVersion: '2.0.0' }).out.cniVersion).toBe('1.1.0');
    // doctor finds the plugin where it was installed when told the directory.
    const plugin = (dir?: string) => (vfpJson(['doctor', ...(dir ? ['--cni-dir', dir] : [])]) as { checks: { name: string; status: string; detail: string }[] }).checks.find((c) => c.name === 'plugin installed');
    expect(plugin(cniPath.split(':')[0]!)).toMatchObject({ status: 'ok', detail: expect.stringContaining(join(cniPath.split(':')[0]!, 'vfplane-cni')) });
    expect(plugin(`${cniPath.split(':')[0]!}/`)!.detail).toContain(join(cniPath.split(':')[0]!, 'vfplane-cni'));
  });

  it('ADD as Multus calls it: the VF netdev moves into the pod, configured, announced; CHECK passes; DEL puts everything back', async () => {
    const p = pod('web');
    const before = look(['vf', 'show', '0000:5e:02.0']);
    const rep = `${m.prefix}f0r0`;
    const arp = capture(null, rep, { count: 20, timeoutS: 4 });
    await arp.ready;
    const conf = base({
      // Everything an X710's i40e takes (no minimum rate, no 802.1ad: refused below).
      cniVersion: '1.1.0', deviceID: '0000:5e:02.0', vlan: 100, vlanQoS: 2, vlanProto: '802.1Q', spoofchk: 'off', trust: 'on', mtu: 9000,
      mac: '02:00:00:00:aa:01', link_state: 'enable', max_tx_rate: 1000,
    });
    const add = call('ADD', conf, { containerId: 'c0ffee01', netns: nsPath(p), ifname: 'net1', args: podArgs('web-0', 'c0ffee01') });
    expect(add.code, JSON.stringify(add.out) + add.stderr).toBe(0);
    expect(add.out.cniVersion).toBe('1.1.0');
    expect(add.out.interfaces).toEqual([{ name: 'net1', mac: '02:00:00:00:aa:01', mtu: 9000, sandbox: nsPath(p), pciID: '0000:5e:02.0' }]);
    expect(add.out.ips).toEqual([{ address: '10.56.0.2/24', gateway: '10.56.0.1', interface: 0 }]);
    // in the pod, for real
    const l = JSON.parse(p.ip(['-j', 'addr', 'show', 'dev', 'net1']))[0];
    expect(l).toMatchObject({ address: '02:00:00:00:aa:01', mtu: 9000 });
    expect(l.flags).toContain('UP');
    expect(l.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toContain('10.56.0.2/24');
    expect(p.ip(['route', 'show'])).toMatch(/10\.60\.0\.0\/16 via 10\.56\.0\.1 dev net1/);
    // gone from the host; PF-side settings applied
    expect(hostLinks().some((x) => x.startsWith(`${m.prefix}f0v0 `))).toBe(false);
    const during = look(['vf', 'show', '0000:5e:02.0']);
    expect(during.settings).toEqual({ vlan: 100, qos: 2, vlanProto: '802.1Q', spoofchk: false, trust: true, mac: '02:00:00:00:aa:01', linkState: 'enable', minTxRate: 0, maxTxRate: 1000 });
    expect(during.allocation.owner).toMatchObject({ namespace: 'default', name: 'web-0', containerId: 'c0ffee01', ifname: 'net1', network: 'vfnet' });
    // the gratuitous ARP for 10.56.0.2 reached the representor
    const frames = await arp.done;
    const garp = frames.filter((f) => f[12] === 0x08 && f[13] === 0x06 && f.slice(28, 32).join('.') === '10.56.0.2' && f.slice(38, 42).join('.') === '10.56.0.2');
    expect(garp.length).toBeGreaterThan(0);

    const chk = call('CHECK', { ...conf, prevResult: add.out }, { containerId: 'c0ffee01', netns: nsPath(p), ifname: 'net1', args: podArgs('web-0', 'c0ffee01') });
    expect(chk.code, JSON.stringify(chk.out)).toBe(0);
    // CHECK notices a change behind its back
    p.ip(['link', 'set', 'dev', 'net1', 'mtu', '1500']);
    const bad = call('CHECK', { ...conf, prevResult: add.out }, { containerId: 'c0ffee01', netns: nsPath(p), ifname: 'net1' });
    expect(bad.code).not.toBe(0);
    expect(bad.out.msg).toMatch(/MTU 1500, not 9000/);

    const del = call('DEL', conf, { containerId: 'c0ffee01', netns: nsPath(p), ifname: 'net1', args: podArgs('web-0', 'c0ffee01') });
    expect(del.code, JSON.stringify(del.out)).toBe(0);
    const after = look(['vf', 'show', '0000:5e:02.0']);
    expect(after.allocation).toBeNull();
    expect(after.settings).toEqual(before.settings);
    expect({ netdev: after.netdev, mac: after.mac, mtu: after.mtu }).toEqual({ netdev: before.netdev, mac: before.mac, mtu: before.mtu });
    expect(p.ip(['-br', 'link'])).not.toContain('net1');
    expect(leasedIps()).toEqual([]);
    // DEL again: nothing left to do, still success
    expect(call('DEL', conf, { containerId: 'c0ffee01', netns: nsPath(p), ifname: 'net1' }).code).toBe(0);
  });

  it('does the same through iproute2 when the native netlink path is off (VFPLANE_NETOPS=iproute2)', () => {
    const p = pod('iproute');
    const conf = base({ cniVersion: '1.1.0', deviceID: '0000:5e:02.1', mtu: 9000, mac: '02:00:00:00:bb:01' });
    const e = { containerId: 'ipr00001', netns: nsPath(p), ifname: 'net1', extra: { VFPLANE_NETOPS: 'iproute2' } };
    const add = call('ADD', conf, e);
    expect(add.code, JSON.stringify(add.out)).toBe(0);
    expect(add.out.interfaces[0]).toMatchObject({ mac: '02:00:00:00:bb:01', mtu: 9000 });
    expect(p.ip(['-j', 'addr', 'show', 'dev', 'net1'])).toContain('10.56.0.');
    expect(p.exec('sysctl', ['-n', 'net.ipv4.conf.net1.arp_notify']).trim()).toBe('1');
    expect(call('DEL', conf, e).code).toBe(0);
    expect(look(['vf', 'show', '0000:5e:02.1'])).toMatchObject({ netdev: `${m.prefix}f0v1`, allocation: null });
  });

  // The CNI 1.1.0 route fields. Debian's reference IPAM plugins (1.1.1) predate them, so a
  // stand-in IPAM returns them; the kernel's routing tables in the pod are the witness.
  it('installs CNI 1.1.0 routes with their table, metric, MTU, advmss and scope', () => {
    const p = pod('rt11');
    const dir = cniPath.split(':')[0]!;
    const result = {
      cniVersion: '1.1.0',
      // No gateway on the address: a route without gw would get it (as the reference
      // plugins do), and a scope-link route cannot have one.
      ips: [{ address: '10.57.0.5/24' }],
      routes: [
        { dst: '10.70.0.0/16', gw: '10.57.0.1', table: 100, priority: 50, mtu: 1400, advmss: 1360 },
        { dst: '10.71.0.0/16', scope: 253 },
      ],
    };
    const script = join(dir, 'routes11-ipam');
    writeFileSync(script, `#!/bin/sh\ncat >/dev/null\ncase "$CNI_COMMAND" in\n  ADD) echo '${JSON.stringify(result)}' ;;\n  VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}' ;;\nesac\nexit 0\n`, { mode: 0o755 });
    const conf = base({ cniVersion: '1.1.0', deviceID: '0000:5e:02.2', ipam: { type: 'routes11-ipam' } });
    const e = { containerId: 'rt110001', netns: nsPath(p), ifname: 'net1' };
    const add = call('ADD', conf, e);
    expect(add.code, JSON.stringify(add.out) + add.stderr).toBe(0);
    expect(add.out.routes).toEqual(result.routes);
    const t100 = p.ip(['route', 'show', 'table', '100']);
    expect(t100).toMatch(/10\.70\.0\.0\/16 via 10\.57\.0\.1 dev net1 metric 50 mtu 1400 advmss 1360/);
    const main = p.ip(['route', 'show']);
    expect(main).not.toContain('10.70.0.0/16');
    expect(main).toMatch(/10\.71\.0\.0\/16 dev net1 scope link/);
    expect(call('DEL', conf, e).code).toBe(0);
    expect(look(['vf', 'show', '0000:5e:02.2'])).toMatchObject({ allocation: null });
  });

  it('DEL succeeds when the netns is already gone, and still releases the VF and its IP', () => {
    const p = pod('gone');
    const conf = base({ deviceID: '0000:5e:02.1', vlan: 7 });
    const e = { containerId: 'dead0001', netns: nsPath(p), ifname: 'net1' };
    expect(call('ADD', conf, e).code).toBe(0);
    p.destroy();
    const del = call('DEL', conf, e);
    expect(del.code, JSON.stringify(del.out)).toBe(0);
    const vf = look(['vf', 'show', '0000:5e:02.1']);
    expect(vf.allocation).toBeNull();
    expect(vf.settings.vlan).toBe(0);
    expect(vf.netdev).toBe(`${m.prefix}f0v1`);
    expect(leasedIps()).toEqual([]);
  });

  // An ADD killed while its IPAM plugin runs (a runtime's timeout; dhcp or whereabouts can
  // take seconds) leaves the plugin running: it took its lease after the runtime's DEL had
  // released nothing, and the lease stayed. DEL waits for it first (the ADD recorded its pid).
  it('DEL after an ADD killed during a slow IPAM waits for that IPAM plugin, and no lease is left', async () => {
    const slow = join(cniPath.split(':')[0]!, 'slowhl');
    // Slow to ADD only (a DEL as slow would let the orphan finish first, and hide the race).
    writeFileSync(slow, `#!/bin/sh\n[ "$CNI_COMMAND" = ADD ] && sleep 2\nexec ${REF}/host-local\n`, { mode: 0o755 });
    const p = pod('slowipam');
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-slowipam-'));
    const conf = base({ deviceID: '0000:5e:02.5', ipam: { type: 'slowhl', subnet: '10.58.0.0/24', dataDir: dir } });
    const e = { containerId: 'slowip01', netns: nsPath(p), ifname: 'net1' };
    try {
      const child = spawn(process.execPath, [PLUGIN], { env: envOf('ADD', e, cniPath), stdio: ['pipe', 'ignore', 'ignore'] });
      child.stdin.end(JSON.stringify(conf));
      let rec: { pid: number } | undefined;
      for (let i = 0; i < 100 && !rec; i++) {
        await new Promise((r) => setTimeout(r, 50));
        rec = look(['vf', 'show', '0000:5e:02.5']).allocation?.attachment?.ipamPid;
      }
      expect(rec?.pid).toBeGreaterThan(0);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const del = call('DEL', conf, e);
      expect(del.code, JSON.stringify(del.out)).toBe(0);
      // It was waited for: gone, or exited and not yet reaped by whoever adopted it.
      const state = existsSync(`/proc/${rec!.pid}/stat`) ? readFileSync(`/proc/${rec!.pid}/stat`, 'utf8').split(') ')[1]![0] : 'gone';
      expect(['gone', 'Z', 'X']).toContain(state);
      await new Promise((r) => setTimeout(r, 300));
      expect(leasedIps(dir)).toEqual([]);
      expect(look(['vf', 'show', '0000:5e:02.5']).allocation).toBeNull();
    } finally {
      rmSync(slow, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  // An operator names a VF by the netdev `ip link` showed before a pod took it: that name
  // is gone from the host while the pod has it (as net1), and `vf show` said no VF had it.
  it('vf show, config and bind take the host netdev name of a VF whose netdev is in a pod', () => {
    const p = pod('byname');
    const conf = base({ deviceID: '0000:5e:02.4' });
    const e = { containerId: 'byname01', netns: nsPath(p), ifname: 'net1' };
    expect(call('ADD', conf, e).code).toBe(0);
    try {
      const shown = vfpJson(['vf', 'show', `${m.prefix}f0v4`]);
      expect(shown).toMatchObject({ pci: '0000:5e:02.4', netdev: null, allocation: { owner: { containerId: 'byname01' } } });
      const bind = vfplane(['vf', 'bind', `${m.prefix}f0v4`, '--driver', 'vfio-pci', '--sysfs-root', m.root, '--state-dir', state]);
      expect(bind.code).toBe(1);
      expect(bind.stderr).toContain('0000:5e:02.4'); // refused as the VF it is (held), not as an unknown netdev
      expect(bind.stderr).not.toContain('no VF has the netdev');
    } finally {
      expect(call('DEL', conf, e).code).toBe(0);
    }
    // Home again, it is found as before; a name no VF ever had is still refused.
    expect(vfpJson(['vf', 'show', `${m.prefix}f0v4`]).netdev).toBe(`${m.prefix}f0v4`);
    const none = vfplane(['vf', 'show', `${m.prefix}zz`, '--sysfs-root', m.root, '--state-dir', state]);
    expect(none.stderr).toContain(`no VF has the netdev "${m.prefix}zz"`);
  });

  // A runtime that unmounted the namespace and died before removing the path leaves a
  // plain file there: a namespace gone, as ownerAlive has it. DEL failed on it for ever
  // ("not a network namespace file"), with the VF held.
  it('DEL succeeds when the netns path is left as a plain file, and puts the VF back', () => {
    const p = pod('plain');
    const conf = base({ deviceID: '0000:5e:02.7', vlan: 9 });
    const e = { containerId: 'plain001', netns: nsPath(p), ifname: 'net1' };
    expect(call('ADD', conf, e).code).toBe(0);
    execFileSync('umount', [nsPath(p)]);
    try {
      expect(statSync(nsPath(p)).isFile()).toBe(true);
      const del = call('DEL', conf, e);
      expect(del.code, JSON.stringify(del.out)).toBe(0);
      const vf = look(['vf', 'show', '0000:5e:02.7']);
      expect(vf.allocation).toBeNull();
      expect(vf.settings.vlan).toBe(0);
      expect(vf.netdev).toBe(`${m.prefix}f0v7`);
      expect(leasedIps()).toEqual([]);
    } finally {
      rmSync(nsPath(p), { force: true });
    }
  });

  it('DEL with a config edited since ADD into one ADD refuses (sriov-cni took it) still puts the VF back and releases it, and logs what it set aside', () => {
    const p = pod('edited');
    const log = join(state, 'edited.log');
    const conf = base({ deviceID: '0000:5e:02.3', vlan: 7, spoofchk: 'off', logFile: log, logLevel: 'info' });
    const e = { containerId: 'edit0001', netns: nsPath(p), ifname: 'net1' };
    expect(call('ADD', conf, e).code).toBe(0);
    const edited = base({ deviceID: '0000:5e:02.3', vlan: 4095, spoofchk: 'ON', logFile: log, logLevel: 'WARN' });
    const add = call('ADD', edited, { ...e, containerId: 'edit0002', ifname: 'net2' });
    expect([add.code, add.out.code]).toEqual([1, 7]);
    const del = call('DEL', edited, e);
    expect(del.code, JSON.stringify(del.out)).toBe(0);
    const vf = look(['vf', 'show', '0000:5e:02.3']);
    expect(vf.allocation).toBeNull();
    expect([vf.settings.vlan, vf.settings.spoofchk, vf.netdev]).toEqual([0, true, `${m.prefix}f0v3`]);
    expect(leasedIps()).toEqual([]);
    expect(readFileSync(log, 'utf8')).toContain('DEL sets aside what ADD would refuse, in settings it does not act on (it undoes what ADD recorded): vlan: expected an integer 0–4094, got 4095; spoofchk: expected \\"on\\" or \\"off\\", got \\"ON\\"');
  });

  it('DEL with a stateDir that holds no store makes none, and still releases the IPAM lease', () => {
    const none = join(state, 'no-store-here');
    const conf = base({ deviceID: '0000:5e:02.2', stateDir: none });
    const e = { containerId: 'nostore1', netns: '/proc/self/ns/net', ifname: 'net1' };
    // A lease for this attachment (as an ADD that failed half-way, or made under another
    // stateDir, leaves one), straight from the reference plugin.
    expect(call('ADD', conf, e, `${REF}/host-local`).code).toBe(0);
    expect(leasedIps()).toHaveLength(1);
    const before = look(['vf', 'show', '0000:5e:02.2']);
    const del = call('DEL', conf, e);
    expect(del.code, del.stderr).toBe(0);
    expect(existsSync(none)).toBe(false);
    expect(leasedIps()).toEqual([]);
    expect(look(['vf', 'show', '0000:5e:02.2'])).toEqual(before);
  });

  it('a stale DEL never resets a VF that has since gone to another pod', () => {
    const a = pod('a');
    const b = pod('b');
    const conf = base({ deviceID: '0000:5e:02.2' });
    expect(call('ADD', conf, { containerId: 'aaaa0001', netns: nsPath(a), ifname: 'net1' }).code).toBe(0);
    expect(call('DEL', conf, { containerId: 'aaaa0001', netns: nsPath(a), ifname: 'net1' }).code).toBe(0);
    const confB = base({ deviceID: '0000:5e:02.2', vlan: 200 });
    expect(call('ADD', confB, { containerId: 'bbbb0001', netns: nsPath(b), ifname: 'net1' }).code).toBe(0);
    // pod A's DEL again (a retry, or a late one): it must not touch B's VF
    expect(call('DEL', conf, { containerId: 'aaaa0001', netns: nsPath(a), ifname: 'net1' }).code).toBe(0);
    expect(b.ip(['-br', 'link'])).toContain('net1');
    const vf = look(['vf', 'show', '0000:5e:02.2']);
    expect(vf.settings.vlan).toBe(200);
    expect(vf.allocation.owner.containerId).toBe('bbbb0001');
    // a third pod handed the same deviceID while B holds it: try again later, naming B
    const c = pod('c');
    const third = call('ADD', confB, { containerId: 'cccc0001', netns: nsPath(c), ifname: 'net1' });
    expect(third.out).toMatchObject({ code: 11, msg: expect.stringMatching(/0000:5e:02\.2 is still held by .*bbbb0001/) });
    // B's ADD repeated without a DEL: refused, B's attachment untouched
    const again = call('ADD', confB, { containerId: 'bbbb0001', netns: nsPath(b), ifname: 'net1' });
    expect(again.out).toMatchObject({ code: 4, msg: expect.stringMatching(/net1 is already taken/) });
    expect(b.ip(['-br', 'link'])).toContain('net1');
    expect(look(['vf', 'show', '0000:5e:02.2']).allocation.owner.containerId).toBe('bbbb0001');
    expect(call('DEL', confB, { containerId: 'bbbb0001', netns: nsPath(b), ifname: 'net1' }).code).toBe(0);
  });

  it('a DPDK VF (vfio-pci): PF-side settings, IPAM, and a device-info file where Multus reads it, removed on DEL', () => {
    vfpJson(['vf', 'bind', '0000:5e:02.3', '--driver', 'vfio-pci']);
    const p = pod('dpdk');
    const devinfo = join(state, 'devinfo', 'dpdk-net1.json');
    const conf = base({
      cniVersion: '1.1.0',
      deviceID: '0000:5e:02.3', vlan: 300, mac: '02:00:00:00:dd:01',
      ipam: { type: 'static', addresses: [{ address: '10.70.0.5/24' }] },
      runtimeConfig: { CNIDeviceInfoFile: devinfo },
    });
    // The device-info directory is the test's (the plugin's own environment says so).
    const e = { containerId: 'dpdk0001', netns: nsPath(p), ifname: 'net1', extra: { VFPLANE_DEVINFO_ROOT: join(state, 'devinfo') } };
    // A VFIO group another process has open (the DPDK pod sriov-cni gave the VF to, on a
    // node being migrated) is that process's: try again (11), nothing changed (helper-86).
    const vfio = look(['vf', 'show', '0000:5e:02.3']).vfioDevice as string;
    const fd = openSync(vfio, 'r+');
    const holder = spawn('sleep', ['60'], { stdio: ['ignore', 'ignore', 'ignore', fd] });
    closeSync(fd);
    try {
      const busy = call('ADD', conf, e);
      expect(busy.code).toBe(1);
      expect(busy.out).toMatchObject({ code: 11, msg: `deviceID 0000:5e:02.3: VF 0000:5e:02.3 is bound to vfio-pci and its VFIO group ${vfio} is open in process ${holder.pid} (sleep): a DPDK application vfplane did not give it to uses it; the device plugin handed out a VF that is in use` });
      expect(look(['vf', 'show', '0000:5e:02.3'])).toMatchObject({ allocation: null, settings: { vlan: 0 } });
    } finally {
      holder.kill();
    }
    const add = call('ADD', conf, e);
    expect(add.code, JSON.stringify(add.out) + add.stderr).toBe(0);
    expect(add.out.interfaces[0]).toMatchObject({ name: 'net1', pciID: '0000:5e:02.3', sandbox: nsPath(p), mac: '02:00:00:00:dd:01' });
    expect(add.out.ips[0].address).toBe('10.70.0.5/24');
    const info = JSON.parse(readFileSync(devinfo, 'utf8'));
    expect(info).toMatchObject({ type: 'pci', version: '1.1.0', pci: { 'pci-address': '0000:5e:02.3', 'pf-pci-address': '0000:5e:00.0', 'representor-device': `${m.prefix}f0r3` } });
    expect(look(['vf', 'show', '0000:5e:02.3']).settings.vlan).toBe(300);
    expect(p.ip(['-br', 'link']).trim().split('\n')).toHaveLength(1); // lo only: no netdev moved
    // The pod's own DPDK application has the group open while it runs: CHECK and DEL are
    // the pod's, and do not mind.
    const own = openSync(vfio, 'r+');
    const app = spawn('sleep', ['60'], { stdio: ['ignore', 'ignore', 'ignore', own] });
    closeSync(own);
    try {
      expect(call('CHECK', { ...conf, prevResult: add.out }, e).code).toBe(0);
      expect(call('DEL', conf, e).code).toBe(0);
    } finally {
      app.kill();
    }
    expect(existsSync(devinfo)).toBe(false);
    const vf = look(['vf', 'show', '0000:5e:02.3']);
    expect(vf.allocation).toBeNull();
    expect(vf.settings.vlan).toBe(0);
    vfpJson(['vf', 'bind', '0000:5e:02.3', '--driver', 'kernel']);
  });

  // A DEL that failed for a file nothing reads once the pod is gone would be retried by
  // the runtime for ever, the VF and its address held (a storage-failure walkthrough).
  it('a DPDK DEL whose device-info file cannot be removed (read-only filesystem) still gives back the VF and its address, and says so', () => {
    vfpJson(['vf', 'bind', '0000:5e:02.3', '--driver', 'vfio-pci']);
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-cni-devinfo-ro-'));
    let mounted = false;
    try {
      const p = pod('dpro');
      const devinfo = join(dir, 'info', 'dpro-net1.json');
      const conf = base({ cniVersion: '1.1.0', deviceID: '0000:5e:02.3', vlan: 301, ipam: { type: 'host-local', subnet: '10.59.0.0/24', dataDir: dir }, runtimeConfig: { CNIDeviceInfoFile: devinfo } });
      const e = { containerId: 'dpro0001', netns: nsPath(p), ifname: 'net1', extra: { VFPLANE_DEVINFO_ROOT: join(dir, 'info') } };
      const add = call('ADD', conf, e);
      expect(add.code, add.stderr).toBe(0);
      expect(leasedIps(dir)).toEqual(['10.59.0.2']);
      execFileSync('mount', ['--bind', join(dir, 'info'), join(dir, 'info')]);
      mounted = true;
      execFileSync('mount', ['-o', 'remount,bind,ro', join(dir, 'info')]);
      const del = call('DEL', conf, e);
      expect(del.code, JSON.stringify(del.out) + del.stderr).toBe(0);
      expect(del.stderr).toMatch(new RegExp(`DEL: cannot remove device-info file ${devinfo.replace(/[.]/g, '\\.')}: EROFS.*left in place`));
      expect(existsSync(devinfo)).toBe(true);
      const vf = look(['vf', 'show', '0000:5e:02.3']);
      expect(vf.allocation).toBeNull();
      expect(vf.settings.vlan).toBe(0);
      expect(leasedIps(dir)).toEqual([]);
      expect(call('DEL', conf, e).code).toBe(0); // and again, as a runtime may
    } finally {
      if (mounted) execFileSync('umount', [join(dir, 'info')]);
      rmSync(dir, { recursive: true, force: true });
      vfpJson(['vf', 'bind', '0000:5e:02.3', '--driver', 'kernel']);
    }
  });

  // A network config is anyone's who may make a NetworkAttachmentDefinition: one that
  // names a file of the node as its device-info file must not have the plugin (root)
  // replace it on ADD or remove it on DEL.
  it('takes no device-info file outside the device-info directory from the network config, on ADD or DEL', () => {
    vfpJson(['vf', 'bind', '0000:5e:02.4', '--driver', 'vfio-pci']);
    const decoy = join(state, 'decoy.txt');
    writeFileSync(decoy, 'important\n');
    try {
      const p = pod('decoy');
      const e = { containerId: 'decoy001', netns: nsPath(p), ifname: 'net1' };
      const conf = base({ cniVersion: '1.1.0', deviceID: '0000:5e:02.4', ipam: { type: 'static', addresses: [{ address: '10.70.0.9/24' }] }, runtimeConfig: { CNIDeviceInfoFile: decoy } });
      const before = hostState();
      const add = call('ADD', conf, e);
      expect(add.code).toBe(1);
      expect(add.out).toMatchObject({ code: 7, msg: expect.stringContaining(`runtimeConfig.CNIDeviceInfoFile "${decoy}" is outside /var/run/k8s.cni.cncf.io/devinfo/`) });
      expect(add.stderr, 'refused before anything was done to undo').not.toMatch(/undoing|allocated VF/);
      expect(hostState()).toEqual(before);
      // DEL of an attachment never made (no VF held), as a runtime retries: the file stays.
      const del = call('DEL', conf, { ...e, containerId: 'decoy002' });
      expect(del.code).toBe(1);
      expect(readFileSync(decoy, 'utf8')).toBe('important\n');
    } finally {
      vfpJson(['vf', 'bind', '0000:5e:02.4', '--driver', 'kernel']);
    }
  });

  it('a failing IPAM leaves the host as it was: VF home, settings restored, nothing allocated', () => {
    const p = pod('ipamfail');
    const before = hostState();
    const conf = base({ deviceID: '0000:5e:02.4', vlan: 9, trust: 'on', ipam: { type: 'static', addresses: [{ address: 'not-an-ip' }] } });
    const r = call('ADD', conf, { containerId: 'fail0001', netns: nsPath(p), ifname: 'net1' });
    expect(r.code).not.toBe(0);
    expect(r.out).toMatchObject({ code: expect.any(Number), msg: expect.stringMatching(/static/) });
    expect(hostState()).toEqual(before);
    expect(p.ip(['-br', 'link']).trim().split('\n')).toHaveLength(1);
  });

  // Linux takes IPv6 off an interface under 1280 bytes: the ADD set the MTU after the
  // addresses and reported an IPv6 address the pod did not have (helper-87).
  it('refuses an MTU under IPv6\'s 1280 on an interface IPAM gives an IPv6 address, leaving the host as it was', () => {
    const p = pod('v6mtu');
    const before = hostState();
    const conf = base({ deviceID: '0000:5e:02.4', mtu: 1200, ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: '10.56.0.0/24' }], [{ subnet: 'fd00:56::/64' }]] } });
    const r = call('ADD', conf, { containerId: 'v6mtu001', netns: nsPath(p), ifname: 'net1' });
    expect(r.code).toBe(1);
    expect(r.out).toMatchObject({ code: 7, msg: expect.stringMatching(/^net1 would have MTU 1200 under IPv6's minimum of 1280 \(RFC 8200\), and IPAM gave it fd00:56::\S+: Linux takes IPv6 off such an interface$/), details: 'set mtu to 1280 or more, or give this network IPv4 addresses only' });
    expect(hostState()).toEqual(before);
    expect(p.ip(['-br', 'link']).trim().split('\n')).toHaveLength(1);
    // IPv4 only, 1200 is fine.
    const v4 = base({ deviceID: '0000:5e:02.4', mtu: 1200, ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: '10.56.0.0/24' }]] } });
    const e = { containerId: 'v4mtu001', netns: nsPath(p), ifname: 'net1' };
    const ok = call('ADD', v4, e);
    expect(ok.code, JSON.stringify(ok.out)).toBe(0);
    expect(p.ip(['-o', 'link', 'show', 'net1'])).toContain('mtu 1200');
    expect(call('DEL', v4, e).code).toBe(0);
    expect(hostState()).toEqual(before);
  });

  // helper-109: a range exhausted by the leases of pods that are gone (no DEL ran) said only
  // host-local's "no IP addresses available": the way out, `vfplane gc`, was not named.
  it('an IPAM ADD that fails while pods that are gone hold this network\'s leases names them and the gc that frees them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-ipamfull-'));
    const conf = (pci: string) => base({ name: 'tinynet', deviceID: pci, ipam: { type: 'host-local', dataDir: dir, ranges: [[{ subnet: '10.57.0.0/24', rangeStart: '10.57.0.10', rangeEnd: '10.57.0.10' }]] } });
    const gone = pod('ipgone');
    const live = pod('iplive');
    const e1 = { containerId: 'ipgone01', netns: nsPath(gone), ifname: 'net1' };
    const e2 = { containerId: 'iplive01', netns: nsPath(live), ifname: 'net1' };
    try {
      expect(call('ADD', conf('0000:5e:02.5'), e1).code).toBe(0);
      gone.destroy(); // the pod's sandbox goes without its DEL
      const r = call('ADD', conf('0000:5e:02.6'), e2);
      expect(r.code).toBe(1);
      expect(r.out.msg).toMatch(/no IP addresses available/);
      expect(r.out.details).toBe(`1 allocation(s) of network tinynet belong to pods that are gone and still hold their addresses (container ipgone01, net1 with VF 0000:5e:02.5): \`vfplane gc --sysfs-root ${m.root} --state-dir ${state}\` releases them (\`--dry-run\` first shows what it would do)`);
      // The command as said frees the lease, and the next ADD gets it.
      expect(vfplane(['gc', '--sysfs-root', m.root, '--state-dir', state]).code).toBe(0);
      const again = call('ADD', conf('0000:5e:02.6'), e2);
      expect(again.code, JSON.stringify(again.out)).toBe(0);
      expect(call('DEL', conf('0000:5e:02.6'), e2).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // helper-109: an interface renamed inside the pod was "missing", and the VF there under
  // another name not mentioned.
  it('CHECK of an interface renamed inside the pod names the VF under its new name and the command that renames it back', () => {
    const p = pod('renamed');
    const e = { containerId: 'renamed1', netns: nsPath(p), ifname: 'net1' };
    const conf = base({ deviceID: '0000:5e:02.5' });
    const add = call('ADD', conf, e);
    expect(add.code, JSON.stringify(add.out)).toBe(0);
    const mac = add.out.interfaces.find((i: { name: string }) => i.name === 'net1').mac;
    p.ip(['link', 'set', 'net1', 'down']);
    p.ip(['link', 'set', 'net1', 'name', 'podx']);
    p.ip(['link', 'set', 'podx', 'up']);
    const chk = call('CHECK', { ...conf, prevResult: add.out }, e);
    expect(chk.code).toBe(1);
    expect(chk.out).toMatchObject({ code: 5, msg: `interface net1 is missing from ${nsPath(p)}: VF 0000:5e:02.5 is there as podx (MAC ${mac}), renamed inside the pod` });
    const cmd = /`(nsenter [^`]+)`/.exec(chk.out.details)![1]!;
    expect(cmd).toBe(`nsenter --net=${nsPath(p)} ip link set podx down name net1 up`);
    // The command as said, and CHECK passes again (the route through the gateway re-added, as said).
    expect(spawnSync('sh', ['-c', cmd]).status).toBe(0);
    p.ip(['route', 'replace', '10.60.0.0/16', 'via', '10.56.0.1']);
    const again = call('CHECK', { ...conf, prevResult: add.out }, e);
    expect(again.code, JSON.stringify(again.out)).toBe(0);
    expect(call('DEL', conf, e).code).toBe(0);
  });

  it('a step failing after IPAM succeeded gives the address back and the VF home', () => {
    const p = pod('routefail');
    const before = hostState();
    // host-local hands out an address and a route whose gateway is not on the pod's subnet:
    // the route cannot be added, after the netdev moved and the address was reserved
    const conf = base({
      deviceID: '0000:5e:02.4', vlan: 11, trust: 'on',
      ipam: { type: 'host-local', subnet: '10.56.0.0/24', dataDir: ipamDir, routes: [{ dst: '10.61.0.0/16', gw: '192.168.250.1' }] },
    });
    const r = call('ADD', conf, { containerId: 'rfail001', netns: nsPath(p), ifname: 'net1' });
    expect(r.code).not.toBe(0);
    expect(r.out.msg).toMatch(/route 10\.61\.0\.0\/16 via 192\.168\.250\.1/);
    expect(hostState()).toEqual(before);
    expect(p.ip(['-br', 'link']).trim().split('\n')).toHaveLength(1);
  });

  it('refuses bad input with a spec error code and a clear message, changing nothing', () => {
    const p = pod('bad');
    const taken = pod('taken');
    taken.ip(['link', 'add', 'net1', 'type', 'veth', 'peer', 'name', 'net1p']);
    const before = hostState();
    const e = { containerId: 'bad00001', netns: nsPath(p), ifname: 'net1' };
    const cases: [unknown, Env, number, RegExp][] = [
      ['{"cniVersion": "1.0.0", "name": ', e, 6, /JSON/i],
      [base({ deviceID: '0000:5e:02.5', vlan: '12' }), e, 7, /vlan/],
      [base({ deviceID: '0000:5e:02.5', cniVersion: '0.2.0' }), e, 1, /0\.2\.0/],
      [base({ deviceID: '0000:5e:00.0' }), e, 7, /not a VF/],
      [base({ deviceID: '0000:99:00.0' }), e, 7, /0000:99:00\.0/],
      [base({ deviceID: '../../../0000:5e:02.5' }), e, 7, /deviceID/],
      [base({ deviceID: '/sys/bus/pci/devices/0000:5e:02.5' }), e, 7, /deviceID/],
      [base({ deviceID: '0000:5e:02.5' }), { containerId: 'bad00001', ifname: 'net1' }, 4, /CNI_NETNS/],
      [base({ deviceID: '0000:5e:02.5' }), { ...e, netns: '/run/netns/vfplane-no-such-pod' }, 3, /^CNI_NETNS \/run\/netns\/vfplane-no-such-pod does not exist/],
      // a path that cannot be a namespace is not called missing
      [base({ deviceID: '0000:5e:02.5' }), { ...e, netns: '/etc/hostname/ns' }, 5, /^CNI_NETNS \/etc\/hostname\/ns cannot be read: ENOTDIR/],
      [base({ deviceID: '0000:5e:02.5' }), { ...e, netns: nsPath(taken) }, 4, /net1 is already taken/],
      // the plugin's own (the host's) namespace as the pod's: the VF would be renamed on the host
      [base({ deviceID: '0000:5e:02.5' }), { ...e, netns: `/proc/${process.pid}/ns/net` }, 8, /is the plugin's own network namespace, not a pod's/],
      // what the simulated X710's driver (i40e) refuses, said before anything changes, the
      // settings named as the config names them (the CLI's flags in `vf config`'s refusals)
      [base({ deviceID: '0000:5e:02.5', min_tx_rate: 100 }), e, 7, /^min_tx_rate 100: the x710 family's PF driver \(i40e\) has no minimum rate for VFs.*; leave it 0, or cap the VF with max_tx_rate/],
      [base({ deviceID: '0000:5e:02.5', vlan: 5, vlanProto: '802.1ad' }), e, 7, /^vlanProto 802\.1ad: the x710 family's PF driver \(i40e\) takes only 802\.1Q/],
      [base({ deviceID: '0000:5e:02.5', max_tx_rate: 400000 }), e, 7, /^max_tx_rate 400000 is above the PF's link speed, 10000 Mbit\/s/],
    ];
    for (const [conf, env, code, msg] of cases) {
      const r = call('ADD', conf, env);
      expect({ conf, code: r.code === 0 ? 0 : r.out?.code }).toEqual({ conf, code });
      expect(r.out.msg + ' ' + (r.out.details ?? ''), JSON.stringify(conf)).toMatch(msg);
      expect(r.code).not.toBe(0);
    }
    expect(hostState()).toEqual(before);
  });

  it('an E810 (ice): a min_tx_rate that would oversubscribe the PF\'s link is refused by vf config and ADD alike, changing nothing', () => {
    // ice sums the min_tx_rate of all the PF's VFs against the link (25000 Mbit/s here).
    const e8 = makeSim({ profile: 'e810', pfs: 1, vfs: 3 });
    const st = mkdtempSync(join(tmpdir(), 'vfplane-cni-state-'));
    try {
      const g = ['--sysfs-root', e8.root, '--state-dir', st];
      const ok = vfplane(['vf', 'config', `${e8.prefix}f0#0`, '--min-tx-rate', '20000', ...g]);
      expect(ok.code, ok.stderr).toBe(0);
      const snap = () => ({
        vfs: look(['vf', 'list'], { root: e8.root, state: st }),
        links: (JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as any[]).filter((l) => l.ifname.startsWith(e8.prefix)).map((l) => `${l.ifname} ${l.address} ${l.mtu}`).sort(),
      });
      const before = snap();
      expect(before.vfs.map((v: any) => v.settings.minTxRate)).toEqual([20000, 0, 0]);
      const why = /min-tx-rate 6000 would oversubscribe the PF's link: with the 20000 Mbit\/s its other VFs are guaranteed, the min-tx-rates of its VFs would sum to 26000 Mbit\/s, above its link speed, 25000 Mbit\/s; the e810 family's PF driver \(ice\) refuses that \(EINVAL\); give at most 5000, or lower the other VFs' min-tx-rate first/;
      // ADD says the same in the config's words (min_tx_rate, as the NAD has it).
      const whyCni = /^min_tx_rate 6000 would oversubscribe the PF's link: with the 20000 Mbit\/s its other VFs are guaranteed, the min_tx_rates of its VFs would sum to 26000 Mbit\/s, above its link speed, 25000 Mbit\/s; the e810 family's PF driver \(ice\) refuses that \(EINVAL\); give at most 5000, or lower the other VFs' min_tx_rate first/;
      const cfg = vfplane(['vf', 'config', `${e8.prefix}f0#2`, '--min-tx-rate', '30000', ...g]);
      expect(cfg.code).toBe(1);
      expect(cfg.stderr).toMatch(/min-tx-rate 30000 would oversubscribe the PF's link: .* sum to 50000 Mbit\/s, above its link speed, 25000 Mbit\/s; .*give at most 5000/);
      expect(vfplane(['vf', 'config', `${e8.prefix}f0#2`, '--min-tx-rate', '6000', ...g]).stderr).toMatch(why);
      const p = pod('ice');
      const add = call('ADD', base({ sysfsRoot: e8.root, stateDir: st, ipam: {}, deviceID: before.vfs[2].pci, min_tx_rate: 6000 }), { containerId: 'ice00001', netns: nsPath(p), ifname: 'net1' });
      expect(add.code, JSON.stringify(add.out)).not.toBe(0);
      expect(add.out.code).toBe(7);
      expect(add.out.msg).toMatch(whyCni);
      expect(p.ip(['-br', 'link']).trim().split('\n')).toHaveLength(1);
      expect(snap()).toEqual(before);
    } finally {
      dropSim(e8.root);
      rmSync(st, { recursive: true, force: true });
    }
  });

  it('an E810 (ice): a DEL whose min_tx_rate put-back would oversubscribe the link still releases the VF, with what it could not give back said (helper-104)', () => {
    // VF 0 had a 5000 guarantee; its pod ran it at 0, and another pod took the rest of the
    // link meanwhile (25000). Putting 5000 back is what ice refuses (EINVAL): the DEL must
    // not fail for it, or the pod's sandbox can never be removed.
    const e8 = makeSim({ profile: 'e810', pfs: 1, vfs: 3 });
    const st = mkdtempSync(join(tmpdir(), 'vfplane-cni-state-'));
    try {
      const g = ['--sysfs-root', e8.root, '--state-dir', st];
      expect(vfplane(['vf', 'config', `${e8.prefix}f0#0`, '--min-tx-rate', '5000', ...g]).code).toBe(0);
      const vfs = look(['vf', 'list'], { root: e8.root, state: st });
      const p0 = pod('icedel0');
      const p1 = pod('icedel1');
      const c0 = base({ sysfsRoot: e8.root, stateDir: st, ipam: {}, deviceID: vfs[0].pci, min_tx_rate: 0 });
      const add0 = call('ADD', c0, { containerId: 'icedel00', netns: nsPath(p0), ifname: 'net1' });
      expect(add0.code, JSON.stringify(add0.out)).toBe(0);
      const add1 = call('ADD', base({ sysfsRoot: e8.root, stateDir: st, ipam: {}, deviceID: vfs[1].pci, min_tx_rate: 25000 }), { containerId: 'icedel01', netns: nsPath(p1), ifname: 'net1' });
      expect(add1.code, JSON.stringify(add1.out)).toBe(0);
      const del = call('DEL', c0, { containerId: 'icedel00', netns: nsPath(p0), ifname: 'net1' });
      expect(del.code, JSON.stringify(del.out)).toBe(0);
      expect(del.stderr).toContain(`VF ${vfs[0].pci}: min-tx-rate 0, not the 5000 it had: the PF's other VFs are guaranteed 25000 of its 25000 Mbit/s now`);
      const after = look(['vf', 'show', vfs[0].pci], { root: e8.root, state: st });
      expect(after.allocation).toBeNull();
      expect(after.settings.minTxRate).toBe(0);
    } finally {
      dropSim(e8.root);
      rmSync(st, { recursive: true, force: true });
    }
  });

  it('an E810 (ice): a pool ADD with a min_tx_rate takes a VF of a PF with room, not one whose PF the guarantees fill (helper-104)', () => {
    // PF 0's link is all guaranteed to its VF 1 (held); PF 1 has nothing guaranteed. A pool
    // over both gives the first free VF, on PF 0, and the ADD is refused there every time.
    const e8 = makeSim({ profile: 'e810', pfs: 2, vfs: 2 });
    const st = mkdtempSync(join(tmpdir(), 'vfplane-cni-state-'));
    try {
      const g = ['--sysfs-root', e8.root, '--state-dir', st];
      writeFileSync(join(st, 'pools.json'), JSON.stringify({ pools: [{ name: 'all', selector: { drivers: ['iavf'] } }] }));
      expect(vfplane(['vf', 'config', `${e8.prefix}f0#1`, '--min-tx-rate', '25000', ...g]).code).toBe(0);
      const held = vfplane(['vf', 'alloc', '--pci', `${e8.prefix}f0#1`, '--pid', String(process.pid), ...g]);
      expect(held.code, held.stderr).toBe(0);
      const p = pod('icepool');
      const add = call('ADD', base({ sysfsRoot: e8.root, stateDir: st, ipam: {}, pool: 'all', min_tx_rate: 5000 }), { containerId: 'icepool0', netns: nsPath(p), ifname: 'net1' });
      expect(add.code, JSON.stringify(add.out)).toBe(0);
      expect(look(['vf', 'show', `${e8.prefix}f1#0`], { root: e8.root, state: st }).allocation?.owner.containerId).toBe('icepool0');
      // With no PF left with room: said, naming the PFs (code 11: a DEL may free some).
      const full = call('ADD', base({ sysfsRoot: e8.root, stateDir: st, ipam: {}, pool: 'all', min_tx_rate: 21000 }), { containerId: 'icepool1', netns: nsPath(pod('icepool1')), ifname: 'net1' });
      expect(full.out).toMatchObject({ code: 11, msg: expect.stringMatching(new RegExp(`^no free VF in pool "all": .*; besides, 2 free VFs are on ${e8.prefix}f0, ${e8.prefix}f1, whose VFs' guarantees leave no room for min_tx_rate 21000: min_tx_rate 21000 would oversubscribe`)) });
      expect(call('DEL', base({ sysfsRoot: e8.root, stateDir: st, ipam: {}, pool: 'all', min_tx_rate: 5000 }), { containerId: 'icepool0', netns: nsPath(p), ifname: 'net1' }).code).toBe(0);
    } finally {
      dropSim(e8.root);
      rmSync(st, { recursive: true, force: true });
    }
  });

  it('an E810 (ice): two ADDs at once, each within the link but not together: the one refused says why, as one ADD alone does (helper-104)', async () => {
    const e8 = makeSim({ profile: 'e810', pfs: 1, vfs: 3 });
    const st = mkdtempSync(join(tmpdir(), 'vfplane-cni-state-'));
    const gate = join(st, 'gate');
    try {
      const g = ['--sysfs-root', e8.root, '--state-dir', st];
      expect(vfplane(['vf', 'config', `${e8.prefix}f0#0`, '--min-tx-rate', '15000', ...g]).code).toBe(0);
      const vfs = look(['vf', 'list'], { root: e8.root, state: st });
      // Both wait after allocating, before the check, and go on together.
      const adds = [1, 2].map((i) => callAsync('ADD', base({ sysfsRoot: e8.root, stateDir: st, ipam: {}, deviceID: vfs[i].pci, min_tx_rate: 10000 }),
        { containerId: `icerace${i}`, netns: nsPath(pod(`icerace${i}`)), ifname: 'net1', extra: { VFPLANE_TEST_PAUSE_ADD: gate } }));
      const until = Date.now() + 20_000;
      while (!existsSync(`${gate}.in-txn`) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 1500));
      writeFileSync(gate, '');
      const rs = await Promise.all(adds);
      const failed = rs.filter((r) => r.code !== 0);
      expect(failed).toHaveLength(1);
      expect(failed[0]!.out.code, JSON.stringify(failed[0]!.out)).toBe(7);
      expect(failed[0]!.out.msg).toMatch(/min_tx_rate 10000 would oversubscribe the PF's link/);
    } finally {
      dropSim(e8.root);
      rmSync(st, { recursive: true, force: true });
    }
  });

  /** A pod, and VF 0000:5e:02.5 given to it as net1 by an ADD that must succeed. */
  const addOne = (tag: string, over: Record<string, unknown>) => {
    const p = pod(tag);
    const e = { containerId: `${tag}0001`, netns: nsPath(p), ifname: 'net1' };
    const conf = base({ deviceID: '0000:5e:02.5', ...over });
    const add = call('ADD', conf, e);
    expect(add.code, JSON.stringify(add.out)).toBe(0);
    return { p, e, conf, add };
  };

  it('takes "ipam": {} as no IPAM, as sriov-cni does (the sriov-network-operator writes it)', () => {
    const { p, e, conf, add } = addOne('noipam', { ipam: {} });
    expect(add.out.ips ?? []).toEqual([]);
    expect(p.ip(['-br', 'link', 'show', 'net1'])).toContain('net1');
    expect(call('DEL', conf, e).code).toBe(0);
    // Its pod gone without a DEL: gc releases it and says nothing of an address, where it
    // said "no config recorded (an ADD by an older vfplane)" (helper-93).
    const q = pod('noipamgc');
    const eq = { containerId: 'noipamgc01', netns: nsPath(q), ifname: 'net1' };
    expect(call('ADD', conf, eq).code).toBe(0);
    q.destroy();
    const gc = vfplane(['gc', '--sysfs-root', m.root, '--state-dir', state]);
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stdout).toContain('0000:5e:02.5');
    expect(gc.stdout).not.toMatch(/IPAM/);
    // With other fields, a missing type is still a mistake.
    const half = call('ADD', base({ deviceID: '0000:5e:02.5', ipam: { subnet: '10.9.0.0/24' } }), e);
    expect(half.out.code).toBe(7);
    expect(half.out.msg).toMatch(/ipam\.type/);
  });

  it('DEL and CHECK for another network naming the same container and interface leave this network\'s VF alone', () => {
    const { p, e, conf, add } = addOne('othernet', { ipam: {} });
    try {
      const other = { ...conf, name: 'othernet' };
      expect(call('DEL', other, e).code).toBe(0); // nothing of othernet's here: idempotent success
      expect(look(['vf', 'list', '--allocated']).map((v: any) => v.pci)).toEqual(['0000:5e:02.5']);
      expect(p.ip(['-br', 'link', 'show', 'net1'])).toContain('net1');
      const chk = call('CHECK', { ...other, prevResult: add.out }, e);
      expect(chk.out.code).toBe(3);
      expect(chk.out.msg).toContain('on network othernet (it is vfnet\'s)');
    } finally {
      expect(call('DEL', conf, e).code).toBe(0);
    }
    expect(look(['vf', 'list', '--allocated'])).toEqual([]);
  });

  it('CHECK reads a store on a read-only filesystem; DEL there is refused, changing nothing, and works once it is writable', () => {
    const mnt = mkdtempSync(join(tmpdir(), 'vfplane-cni-ro-'));
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', mnt]).status).toBe(0);
    try {
      const { p, e, conf, add } = addOne('chkro', { ipam: {}, stateDir: mnt });
      expect(readdirSync(mnt)).toContain('alloc.db');
      expect(readdirSync(mnt).filter((f) => f.endsWith('-shm'))).toEqual([]); // nobody holds it
      expect(spawnSync('mount', ['-o', 'remount,ro', mnt]).status).toBe(0);
      const chk = call('CHECK', { ...conf, prevResult: add.out }, e);
      expect(chk.code, JSON.stringify(chk.out)).toBe(0);
      const del = call('DEL', conf, e);
      expect(del.code).toBe(1);
      expect(del.out.msg).toContain(`the allocation store ${mnt}/alloc.db cannot be written`);
      expect(p.ip(['-br', 'link', 'show', 'net1'])).toContain('net1'); // left in the pod
      expect(spawnSync('mount', ['-o', 'remount,rw', mnt]).status).toBe(0);
      expect(call('DEL', conf, e).code).toBe(0);
    } finally {
      spawnSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });

  it('ADD and DEL on a store damaged past its first pages fail with the I/O code, naming it damaged and how to move it aside (not 999)', () => {
    const torn = mkdtempSync(join(tmpdir(), 'vfplane-cni-torn-'));
    try {
      const s = AllocStore.open(torn); // rows past the header page, then pages 2-9 overwritten
      for (let i = 0; i < 40; i++) s.allocate({ candidates: [{ pci: `0000:77:0${Math.floor(i / 8)}.${i % 8}`, pf: '0000:77:00.0', index: i } as never], owner: { namespace: 'ns', name: `p${i}`, network: 'n'.repeat(200) } });
      s.close();
      const fd = openSync(join(torn, 'alloc.db'), 'r+');
      writeSync(fd, Buffer.alloc(8 * 4096, 0xa5), 0, 8 * 4096, 4096);
      closeSync(fd);
      const p = pod('torn');
      const e = { containerId: 'torn0001', netns: nsPath(p), ifname: 'net1' };
      const conf = base({ deviceID: '0000:5e:02.5', ipam: {}, stateDir: torn });
      for (const cmd of ['ADD', 'DEL']) {
        const r = call(cmd, conf, e);
        expect({ cmd, code: r.out.code }).toEqual({ cmd, code: 5 });
        expect(r.out.msg).toContain(`the allocation store ${torn}/alloc.db is damaged (database disk image is malformed), and vfplane cannot repair it; move it aside`);
      }
      expect(p.ip(['-br', 'link', 'show'])).not.toContain('net1');
    } finally {
      rmSync(torn, { recursive: true, force: true });
    }
  });

  it('CHECK at 1.0.0 (no MTU in results) lets a later plugin change the MTU or move its routes to another table; at 1.1.0 the result\'s MTU binds', () => {
    const { p, e, conf, add } = addOne('chk10', { mtu: 9000 });
    try {
      expect(add.out.interfaces[0].mtu).toBeUndefined();
      const check = () => call('CHECK', { ...conf, prevResult: add.out }, e);
      expect(check().code, JSON.stringify(check().out)).toBe(0);
      // What sbr does after us: the route goes to a table of its own.
      p.ip(['route', 'del', '10.60.0.0/16']);
      p.ip(['route', 'add', '10.60.0.0/16', 'via', '10.56.0.1', 'dev', 'net1', 'table', '100']);
      expect(check().code, JSON.stringify(check().out)).toBe(0);
      p.ip(['route', 'del', '10.60.0.0/16', 'table', '100']);
      expect(check().out.msg).toMatch(/route to 10\.60\.0\.0\/16 .*is missing/);
      p.ip(['route', 'add', '10.60.0.0/16', 'via', '10.56.0.1', 'dev', 'net1']);
      // What tuning's mtu does after us: the spec has CHECK allow it, and a 1.0.0 result
      // says nothing of the MTU.
      p.ip(['link', 'set', 'net1', 'mtu', '1500']);
      expect(check().code, JSON.stringify(check().out)).toBe(0);
    } finally {
      expect(call('DEL', conf, e).code).toBe(0);
    }
    const v11 = addOne('chk11', { mtu: 9000, cniVersion: '1.1.0' });
    try {
      expect(v11.add.out.interfaces[0].mtu).toBe(9000);
      v11.p.ip(['link', 'set', 'net1', 'mtu', '1500']);
      const mtu = call('CHECK', { ...v11.conf, prevResult: v11.add.out }, v11.e);
      expect(mtu.out.code).toBe(5);
      expect(mtu.out.msg).toBe('interface net1 has MTU 1500, not 9000');
    } finally {
      expect(call('DEL', v11.conf, v11.e).code).toBe(0);
    }
  });

  it('CHECK at 1.1.0 with static IPAM (which speaks 1.0.0 here) hands it a prevResult in the version it speaks', () => {
    const { p, e, conf, add } = addOne('chkst', { cniVersion: '1.1.0', ipam: { type: 'static', addresses: [{ address: '10.57.0.5/24' }] } });
    try {
      expect(add.out.cniVersion).toBe('1.1.0');
      const check = () => call('CHECK', { ...conf, prevResult: add.out }, e);
      const ok = check();
      expect(ok.code, JSON.stringify(ok.out)).toBe(0);
      // and an address gone is still noticed
      p.ip(['addr', 'add', '10.57.0.6/24', 'dev', 'net1']);
      p.ip(['addr', 'del', '10.57.0.5/24', 'dev', 'net1']);
      expect(check().out.msg).toMatch(/^interface net1 lacks address 10\.57\.0\.5\/24/);
    } finally {
      expect(call('DEL', conf, e).code).toBe(0);
    }
  });

  it('CHECK notices PF-side settings changed after ADD (VLAN, trust), and passes once they are set back', () => {
    const { e, conf, add } = addOne('chkpf', { vlan: 5, vlanQoS: 2, trust: 'on', ipam: {} });
    try {
      const check = () => call('CHECK', { ...conf, prevResult: add.out }, e);
      expect(check().code, JSON.stringify(check().out)).toBe(0);
      vfpJson(['vf', 'config', '0000:5e:02.5', '--vlan', '7', '--trust', 'off', '--force']);
      const drift = check();
      expect(drift.code).toBe(1);
      expect(drift.out).toMatchObject({ code: 5, msg: `VF 0000:5e:02.5 has vlan 7, trust off on PF ${m.prefix}f0, where ADD set vlan 5, trust on` });
      // The advice is a command that sets back what drifted (it named none: "nothing to
      // change", exit 2); run as given, CHECK passes.
      const advised = /`vfplane (vf config 0000:5e:02\.5 [^`]*)`/.exec(drift.out.details)?.[1];
      // With the config's sysfsRoot and stateDir (helper-109: without them the command
      // acted on /sys, "no PCI device"; the test added them itself).
      expect(advised).toBe(`vf config 0000:5e:02.5 --vlan 5 --trust on --force --sysfs-root ${m.root} --state-dir ${state}`);
      const r = vfplane([...advised!.split(' ')]);
      expect(r.code, r.stderr).toBe(0);
      expect(check().code, JSON.stringify(check().out)).toBe(0);
      // A setting the config does not ask for, changed on the PF since ADD (it passed:
      // helper-109), is held against what the VF had when ADD took it.
      const had = look(['vf', 'show', '0000:5e:02.5']).allocation.original.settings;
      vfpJson(['vf', 'config', '0000:5e:02.5', '--max-tx-rate', '500', '--spoofchk', had.spoofchk ? 'off' : 'on', '--force']);
      const unasked = check();
      expect(unasked.out).toMatchObject({
        code: 5,
        msg: `VF 0000:5e:02.5 has spoofchk ${had.spoofchk ? 'off' : 'on'}, max_tx_rate 500 on PF ${m.prefix}f0, where it had spoofchk ${had.spoofchk ? 'on' : 'off'}, max_tx_rate ${had.maxTxRate} when ADD took it (the config sets no spoofchk, max_tx_rate)`,
      });
      const back = /`vfplane (vf config 0000:5e:02\.5 [^`]*)`/.exec(unasked.out.details)?.[1];
      expect(back).toBe(`vf config 0000:5e:02.5 --spoofchk ${had.spoofchk ? 'on' : 'off'} --max-tx-rate ${had.maxTxRate} --force --sysfs-root ${m.root} --state-dir ${state}`);
      expect(vfplane([...back!.split(' ')]).code).toBe(0);
      expect(check().code, JSON.stringify(check().out)).toBe(0);
    } finally {
      expect(call('DEL', conf, e).code).toBe(0);
    }
  });

  it('DEL of a VF rebound to vfio-pci under its pod (vf bind --force) finishes: the VF gets its driver back, then is released', () => {
    const { p, e, conf } = addOne('rebind', { ipam: {} });
    vfpJson(['vf', 'bind', '0000:5e:02.5', '--driver', 'vfio-pci', '--force']);
    expect(p.ip(['-br', 'link']).trim().split('\n')).toHaveLength(1); // the netdev went with the driver
    const del = call('DEL', conf, e);
    expect(del.code, JSON.stringify(del.out)).toBe(0);
    const vf = look(['vf', 'show', '0000:5e:02.5']);
    expect(vf).toMatchObject({ allocation: null, driver: 'iavf', netdev: `${m.prefix}f0v5` });
  });

  // `networks: vfplane-kernel, vfplane-kernel`: the second interface's routes are the
  // first's; the reference plugins skip a route already there (the first one wins).
  it('a second interface of the same network in one pod: its routes already there are skipped', () => {
    const p = pod('twonets');
    const route = { dst: '10.61.0.0/16', gw: '10.71.0.1' };
    const confOf = (dev: string, addr: string) => base({ deviceID: dev, ipam: { type: 'static', addresses: [{ address: addr, gateway: '10.71.0.1' }], routes: [route] } });
    const e1 = { containerId: 'twonets1', netns: nsPath(p), ifname: 'net1' };
    const e2 = { ...e1, ifname: 'net2' };
    const c1 = confOf('0000:5e:02.6', '10.71.0.6/24'), c2 = confOf('0000:5e:02.7', '10.71.0.7/24');
    expect(call('ADD', c1, e1).code).toBe(0);
    const second = call('ADD', c2, e2);
    expect(second.code, JSON.stringify(second.out)).toBe(0);
    expect(p.ip(['route', 'show', '10.61.0.0/16'])).toMatch(/^10\.61\.0\.0\/16 via 10\.71\.0\.1 dev net1/);
    expect(p.ip(['-br', 'addr', 'show', 'net2'])).toContain('10.71.0.7/24');
    expect(call('DEL', c2, e2).code).toBe(0);
    expect(call('DEL', c1, e1).code).toBe(0);
  });

  // Before: DEL looked for the netdev by the pod's interface name only, and failed ("was
  // it renamed inside the pod?") until it was renamed back.
  it('DEL of a VF whose netdev was renamed inside the pod brings it home by its index, releases it and its address', () => {
    const { p, e, conf, add } = addOne('renamed', { ipam: { type: 'host-local', subnet: '10.59.0.0/24', dataDir: ipamDir } });
    const ip = add.out.ips[0].address.split('/')[0];
    const own = look(['vf', 'show', '0000:5e:02.5']).allocation.original.netdev;
    p.ip(['link', 'set', 'net1', 'down']);
    p.ip(['link', 'set', 'net1', 'name', 'eth9']);
    const del = call('DEL', conf, e);
    expect(del.code, JSON.stringify(del.out)).toBe(0);
    expect(p.ip(['-br', 'link', 'show'])).not.toContain('eth9');
    expect(look(['vf', 'list', '--allocated'])).toEqual([]);
    expect(leasedIps()).not.toContain(ip);
    expect(look(['vf', 'show', '0000:5e:02.5']).netdev).toBe(own);
  });

  // helper-93: the VF moved to another namespace and a veth made in the pod with its
  // index; DEL took the veth home as the VF (renamed, given the VF's MAC) and marked the VF
  // free while it sat in the other namespace.
  it('DEL takes home only a VF\'s netdev under the recorded index, not a link the pod made with it', () => {
    const { p, e, conf } = addOne('forged', {});
    const q = pod('forgedq');
    const index = (JSON.parse(p.ip(['-j', 'link', 'show', 'net1'])) as { ifindex: number }[])[0]!.ifindex;
    p.ip(['link', 'set', 'net1', 'netns', q.name]);
    p.ip(['link', 'add', 'net1', 'index', String(index), 'type', 'veth', 'peer', 'name', 'forgedp']);
    const del = call('DEL', conf, e);
    expect(del.out.code, JSON.stringify(del.out)).toBe(5);
    expect(del.out.msg).toContain('did the pod move it to another namespace?');
    expect(del.out.details).toBe('it stays allocated; move it back into the pod, or delete the namespace it is in (Linux returns it to the host), and DEL again');
    expect(p.ip(['-br', 'link', 'show', 'net1'])).toContain('net1'); // the pod's veth stays its own
    expect(look(['vf', 'list', '--allocated']).map((v: any) => v.pci)).toEqual(['0000:5e:02.5']);
    // The operator's forced release puts back as DEL does (alloc/put-back.ts): it marked
    // the VF free with its netdev in the other namespace, its next pod's ADD bound to fail.
    const rel = vfplane(['vf', 'release', '0000:5e:02.5', '--force', '--sysfs-root', m.root, '--state-dir', state]);
    expect(rel.code, rel.stdout).toBe(1);
    expect(rel.stderr).toMatch(/VF 0000:5e:02\.5 \(.*\) stays allocated: putting it back failed \(VF 0000:5e:02\.5's netdev is not in \S+ \(index \d+ there is another netdev, or none\), nor back on the host: did the pod move it to another namespace\?\); move it back into the pod, or delete the namespace it is in \(Linux returns it to the host\), and release it again \(or release it as it is, its netdev left where it is: --no-restore\)$/m);
    expect(look(['vf', 'list', '--allocated']).map((v: any) => v.pci)).toEqual(['0000:5e:02.5']);
    // The VF back in the pod (its index free again): DEL finishes.
    p.ip(['link', 'del', 'net1']);
    q.ip(['link', 'set', 'net1', 'netns', p.name]);
    const again = call('DEL', conf, e);
    expect(again.code, JSON.stringify(again.out)).toBe(0);
    expect(look(['vf', 'list', '--allocated'])).toEqual([]);
    expect(look(['vf', 'show', '0000:5e:02.5']).netdev).toBeTruthy();
  });

  // helper-108: the pod moved its VF to another namespace and then its own namespace went;
  // DEL and gc released the VF with its netdev still in the other (live) namespace, under
  // the pod's name and MAC, the VF "free" but unusable.
  it('DEL and gc keep a VF whose netdev is in another live namespace once its pod\'s namespace is gone', () => {
    const { p, e, conf } = addOne('movedon', {});
    const own = look(['vf', 'show', '0000:5e:02.5']).allocation.original.netdev;
    const q = pod('movedonq');
    p.ip(['link', 'set', 'net1', 'netns', q.name]);
    p.destroy();
    const del = call('DEL', conf, e);
    expect(del.out.code, JSON.stringify(del.out)).toBe(5);
    expect(del.out.msg).toContain('did the pod move it to another namespace?');
    expect(del.out.details).toBe('it stays allocated; delete the namespace it is in (Linux returns it to the host), or move it back to the host, and DEL again');
    // gc --dry-run says what the real gc does: it stays allocated.
    const dry = vfplane(['gc', '--dry-run', '--json', '--sysfs-root', m.root, '--state-dir', state]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject([{ pci: '0000:5e:02.5', state: 'gone', released: false, putBack: [], failure: 'put-back', error: expect.stringContaining('did the pod move it to another namespace?') }]);
    const dryTable = vfplane(['gc', '--dry-run', '--sysfs-root', m.root, '--state-dir', state]);
    expect(dryTable.stdout).toContain('would stay allocated: put-back would fail');
    expect(dryTable.stdout).toContain('gc --dry-run: would release 0 of 1 allocation(s)');
    const gcRun = vfplane(['gc', '--sysfs-root', m.root, '--state-dir', state]);
    expect(gcRun.code, gcRun.stdout + gcRun.stderr).toBe(1);
    expect(look(['vf', 'list', '--allocated']).map((v: any) => v.pci)).toEqual(['0000:5e:02.5']);
    // Back on the host (the simulator's VF netdev under its own name): DEL finishes.
    q.ip(['link', 'set', 'net1', 'netns', String(process.pid), 'name', own]);
    const again = call('DEL', conf, e);
    expect(again.code, JSON.stringify(again.out)).toBe(0);
    expect(look(['vf', 'list', '--allocated'])).toEqual([]);
    expect(look(['vf', 'show', '0000:5e:02.5']).netdev).toBeTruthy();
  });

  // helper-89: a network with a fixed MAC given to two pods (a Deployment's replicas) put
  // one MAC on two VFs of one PF, which the NIC's switch delivers to one of them only.
  it('refuses a MAC another VF of the same PF has (code 11, naming the holder), changing nothing; the retry after its DEL succeeds', () => {
    const p1 = pod('samemac1'), p2 = pod('samemac2');
    const e1 = { containerId: 'samemac01', netns: nsPath(p1), ifname: 'net1' };
    const e2 = { containerId: 'samemac02', netns: nsPath(p2), ifname: 'net1' };
    const c1 = base({ deviceID: '0000:5e:02.6', mac: '02:00:00:00:5b:01' });
    const c2 = base({ deviceID: '0000:5e:02.7', mac: '02:00:00:00:5B:01' });
    expect(call('ADD', c1, e1).code).toBe(0);
    const before = hostState();
    const r = call('ADD', c2, e2);
    expect(r.out.code, JSON.stringify(r.out)).toBe(11);
    expect(r.out.msg).toMatch(/^MAC 02:00:00:00:5b:01 is already VF 0000:5e:02\.6's, on the same PF \S+, held by .*samemac01.*: the NIC's switch delivers a MAC to one VF only$/);
    expect(r.out.details).toContain('give each pod interface its own MAC');
    expect(hostState()).toEqual(before);
    expect(p2.ip(['-br', 'link', 'show'])).not.toContain('net1');
    expect(call('DEL', c1, e1).code).toBe(0);
    const again = call('ADD', c2, e2);
    expect(again.code, JSON.stringify(again.out)).toBe(0);
    expect(call('DEL', c2, e2).code).toBe(0);
  });

  // helper-93: the check read the others' records, in which an ADD under way had no MAC
  // yet: two ADDs at once with one MAC both succeeded (3 rounds of 9); and one without a
  // "mac", whose VF's own MAC another pod was given, was not checked at all.
  it('two ADDs at once with one MAC on one PF: one succeeds, the other is told to try again; a VF\'s own MAC counts too', async () => {
    const c1 = base({ deviceID: '0000:5e:02.6', mac: '02:00:00:00:5c:01' });
    const c2 = base({ deviceID: '0000:5e:02.7', mac: '02:00:00:00:5c:01' });
    for (let round = 0; round < 4; round++) {
      const p1 = pod(`race${round}a`), p2 = pod(`race${round}b`);
      const e1 = { containerId: `race${round}01`, netns: nsPath(p1), ifname: 'net1' };
      const e2 = { containerId: `race${round}02`, netns: nsPath(p2), ifname: 'net1' };
      const [r1, r2] = await Promise.all([callAsync('ADD', c1, e1), callAsync('ADD', c2, e2)]);
      expect([r1.code === 0, r2.code === 0].filter(Boolean), `round ${round}: ${JSON.stringify([r1.out, r2.out])}`).toHaveLength(1);
      expect((r1.code === 0 ? r2 : r1).out.code).toBe(11);
      expect(call('DEL', c1, e1).code).toBe(0);
      expect(call('DEL', c2, e2).code).toBe(0);
    }
    // No "mac": the VF's own, which another pod of the PF was given.
    const own = look(['vf', 'show', '0000:5e:02.7']).mac as string;
    const p3 = pod('ownmac3'), p4 = pod('ownmac4');
    const e3 = { containerId: 'ownmac03', netns: nsPath(p3), ifname: 'net1' };
    const e4 = { containerId: 'ownmac04', netns: nsPath(p4), ifname: 'net1' };
    const c3 = base({ deviceID: '0000:5e:02.6', mac: own });
    const c4 = base({ deviceID: '0000:5e:02.7' });
    expect(call('ADD', c3, e3).code).toBe(0);
    const r4 = call('ADD', c4, e4);
    expect(r4.out.code, JSON.stringify(r4.out)).toBe(11);
    expect(r4.out.details).toContain(`this VF's own MAC is ${own}: give this one a mac`);
    expect(call('DEL', c3, e3).code).toBe(0);
  });

  // helper-89: a pod that swapped its two VFs' interface names. DEL of net1 took the
  // netdev then named net1 (the other VF's) home as this VF's, renamed and re-addressed
  // as it, and marked this VF free while its netdev stayed in the pod; the next pod
  // given it got the other VF's netdev.
  it('a pod that swapped two VFs\' interface names: each DEL brings home its own VF\'s netdev, under its own name and MAC', () => {
    const p = pod('swapped');
    const e1 = { containerId: 'swapped01', netns: nsPath(p), ifname: 'net1' };
    const e2 = { ...e1, ifname: 'net2' };
    const c1 = base({ deviceID: '0000:5e:02.6', mac: '02:00:00:00:5a:01' });
    const c2 = base({ deviceID: '0000:5e:02.7', mac: '02:00:00:00:5a:02' });
    const before = look(['vf', 'list']).filter((v: any) => v.pci === '0000:5e:02.6' || v.pci === '0000:5e:02.7').map((v: any) => [v.pci, v.netdev, v.mac]);
    expect(call('ADD', c1, e1).code).toBe(0);
    expect(call('ADD', c2, e2).code).toBe(0);
    for (const [a, b] of [['net1', 'tmpx'], ['net2', 'net1'], ['tmpx', 'net2']]) p.ip(['link', 'set', a!, 'name', b!]);
    const del1 = call('DEL', c1, e1);
    expect(del1.code, JSON.stringify(del1.out)).toBe(0);
    // VF 02.7's netdev (MAC 5a:02), now named net1, is still in the pod; 02.6's went home.
    expect(p.ip(['-br', 'link', 'show', 'net1'])).toContain('02:00:00:00:5a:02');
    expect(p.ip(['-br', 'link', 'show'])).not.toContain('net2');
    expect(look(['vf', 'list', '--allocated']).map((v: any) => v.pci)).toEqual(['0000:5e:02.7']);
    const del2 = call('DEL', c2, e2);
    expect(del2.code, JSON.stringify(del2.out)).toBe(0);
    expect(p.ip(['-br', 'link', 'show'])).not.toMatch(/net1|net2/);
    const after = look(['vf', 'list']).filter((v: any) => v.pci === '0000:5e:02.6' || v.pci === '0000:5e:02.7').map((v: any) => [v.pci, v.netdev, v.mac]);
    expect(after).toEqual(before);
  });

  /** `vfplane cni serve` on SOCKET, once it listens. */
  const startServer = async (socket: string) => {
    // With the runtime's log directories (envOf): a call whose node settings differ from
    // the server's is run by its shim instead.
    const server = spawn(process.execPath, [join(ROOT, 'bin', 'vfplane.js'), 'cni', 'serve', '--socket', socket], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, VFPLANE_CNI_LOG_DIRS: tmpdir() } });
    let log = '';
    await new Promise<void>((res, rej) => {
      server.stderr.on('data', (d) => { log += String(d); if (String(d).includes('listening')) res(); });
      server.once('exit', (c) => rej(new Error(`server exited ${c}`)));
    });
    return {
      log: () => log,
      stop: async () => {
        server.kill('SIGTERM');
        await new Promise((res) => server.once('exit', res));
      },
    };
  };

  const concurrentAdds = async (run: (command: string, conf: unknown, e: Env) => Promise<Call>, tag: string) => {
    const conf = base({ cniVersion: '1.1.0', pool: 'all', ipam: { type: 'host-local', subnet: '10.57.0.0/24', dataDir: ipamDir } });
    const ps = Array.from({ length: 20 }, (_, i) => pod(`${tag}${i}`));
    const envs = ps.map((p, i) => ({ containerId: `${tag}${String(i).padStart(4, '0')}`, netns: nsPath(p), ifname: 'net1', args: podArgs(`p${i}`, `${tag}${i}`) }));
    const results = await Promise.all(envs.map((e) => run('ADD', conf, e)));
    try {
      const ok = results.filter((r) => r.code === 0);
      const failed = results.filter((r) => r.code !== 0);
      expect(ok, JSON.stringify(failed.map((f) => f.out))).toHaveLength(16);
      expect(new Set(ok.map((r) => r.out.interfaces[0].pciID)).size).toBe(16);
      expect(failed.map((r) => r.out.code)).toEqual([11, 11, 11, 11]);
      for (const f of failed) expect(f.out.msg).toMatch(/no free VF/);
      expect(new Set(ok.map((r) => r.out.ips[0].address)).size).toBe(16);
    } finally {
      // DEL everything even when an assertion failed, so later tests start clean.
      const dels = await Promise.all(envs.map((e) => run('DEL', conf, e)));
      expect(dels.map((d) => d.code)).toEqual(Array(20).fill(0));
    }
    expect(look(['vf', 'list', '--allocated'])).toEqual([]);
    expect(leasedIps()).toEqual([]);
    expect(look(['vf', 'list']).filter((v: any) => v.netdev === null)).toEqual([]);
  };

  it('20 simultaneous ADDs on 16 free VFs: 16 get distinct VFs, 4 get "try again" (11); DEL leaves nothing', async () => {
    await concurrentAdds(callAsync, 'conc');
  });

  // Pods racing for one deviceID (the device plugin handed it out twice, or a retry of a
  // lost pod's sandbox): one wins; every other hears "still held, try again" (11), whether
  // it lost at the holder check or at the allocation itself, never the operator's advice
  // to take the VF by force.
  it('8 simultaneous ADDs for one deviceID: one gets it, the others "still held, retry once its DEL has run" (11)', async () => {
    const conf = base({ cniVersion: '1.1.0', deviceID: '0000:5e:02.3', ipam: { type: 'host-local', subnet: '10.57.0.0/24', dataDir: ipamDir } });
    const ps = Array.from({ length: 8 }, (_, i) => pod(`race${i}`));
    const envs = ps.map((p, i) => ({ containerId: `race${String(i).padStart(4, '0')}`, netns: nsPath(p), ifname: 'net1', args: podArgs(`r${i}`, `race${i}`) }));
    const results = await Promise.all(envs.map((e) => callAsync('ADD', conf, e)));
    try {
      expect(results.filter((r) => r.code === 0)).toHaveLength(1);
      const failed = results.filter((r) => r.code !== 0);
      expect(failed.map((r) => r.out.code)).toEqual(Array(7).fill(11));
      for (const f of failed) {
        expect(f.out.msg).toMatch(/^deviceID 0000:5e:02\.3: VF 0000:5e:02\.3 is still held by pod default\/r\d .*; retry once its DEL has run$/);
        expect(f.out.msg).not.toMatch(/--force/);
      }
    } finally {
      const dels = await Promise.all(envs.map((e) => callAsync('DEL', conf, e)));
      expect(dels.map((d) => d.code)).toEqual(Array(8).fill(0));
    }
    expect(look(['vf', 'list', '--allocated'])).toEqual([]);
    expect(leasedIps()).toEqual([]);
  });

  it('the same through the shim and one `vfplane cni serve`, whose calls interleave in one process', async () => {
    const dir = cniPath.split(':')[0]!;
    const socket = join(dir, 'conc.sock');
    const wrapper = join(dir, 'conc', 'vfplane-cni');
    expect(vfplane(['cni', 'install', '--dir', join(dir, 'conc'), '--socket', socket]).code).toBe(0);
    const server = await startServer(socket);
    try {
      await concurrentAdds((command, conf, e) => callAsync(command, conf, e, wrapper), 'srvc');
    } finally {
      await server.stop();
    }
  });

  it('cniVersion 0.4.0 results carry ip versions; GC keeps valid attachments and releases the rest; STATUS', () => {
    const p = pod('old');
    const conf = base({ cniVersion: '0.4.0', deviceID: '0000:5e:02.6' });
    const e = { containerId: 'old00001', netns: nsPath(p), ifname: 'net1' };
    const add = call('ADD', conf, e);
    expect(add.code, JSON.stringify(add.out)).toBe(0);
    expect(add.out.cniVersion).toBe('0.4.0');
    expect(add.out.ips[0]).toMatchObject({ version: '4', address: expect.stringMatching(/^10\.56\.0\./) });
    expect(call('DEL', conf, e).code).toBe(0);
    // 0.3.1, as many SR-IOV NetworkAttachmentDefinitions still say: the same result shape
    const add031 = call('ADD', { ...conf, cniVersion: '0.3.1' }, e);
    expect(add031.code, JSON.stringify(add031.out)).toBe(0);
    expect(add031.out).toMatchObject({ cniVersion: '0.3.1', interfaces: [{ name: 'net1', sandbox: nsPath(p) }], ips: [{ version: '4', interface: 0 }] });
    // GC keeps what the runtime still knows, releases the rest (netdev home, settings back)
    const p2 = pod('old2');
    const e2 = { containerId: 'old00002', netns: nsPath(p2), ifname: 'net1' };
    expect(call('ADD', base({ deviceID: '0000:5e:02.7', vlan: 5 }), e2).code).toBe(0);
    const keep = base({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'old00002', ifname: 'net1' }] });
    const lease031 = add031.out.ips[0].address.split('/')[0];
    expect(leasedIps()).toContain(lease031);
    expect(call('GC', keep).code).toBe(0);
    // Debian's host-local predates GC: the collected attachment's lease went by an IPAM DEL
    expect(leasedIps()).not.toContain(lease031);
    expect(look(['vf', 'show', '0000:5e:02.6']).allocation).toBeNull();
    expect(look(['vf', 'show', '0000:5e:02.6']).netdev).toBe(`${m.prefix}f0v6`);
    expect(look(['vf', 'show', '0000:5e:02.7']).allocation.owner.containerId).toBe('old00002');
    expect(p2.ip(['-br', 'link'])).toContain('net1');
    // a network's GC leaves other networks' attachments alone (null: libcni's empty list)
    expect(call('GC', { ...keep, name: 'othernet', 'cni.dev/valid-attachments': null }).code).toBe(0);
    expect(look(['vf', 'show', '0000:5e:02.7']).allocation).not.toBeNull();
    expect(call('DEL', base({ deviceID: '0000:5e:02.7', vlan: 5 }), e2).code).toBe(0);
    // STATUS: ready while the pool has a free VF, 50 once every VF is taken
    const one = join(state, 'pools-one.json');
    writeFileSync(one, JSON.stringify({ pools: [{ name: 'one', selector: { pciAddresses: ['0000:5e:02.6'] } }] }));
    const status = base({ cniVersion: '1.1.0', pool: 'one', poolsFile: one });
    expect(call('STATUS', status).code).toBe(0);
    const p3 = pod('old3');
    const e3 = { containerId: 'old00003', netns: nsPath(p3), ifname: 'net1' };
    expect(call('ADD', { ...status, cniVersion: '1.0.0' }, e3).code).toBe(0);
    const busy = call('STATUS', status);
    expect(busy.code).toBe(1);
    expect(busy.out).toMatchObject({ code: 50, msg: expect.stringMatching(/no free VF in pool "one"/) });
    expect(call('DEL', { ...status, cniVersion: '1.0.0' }, e3).code).toBe(0);
    // An IPAM plugin that is not installed fails every ADD: not available either.
    const noIpam = call('STATUS', { ...status, ipam: { type: 'no-such-ipam' } });
    expect(noIpam.out).toMatchObject({ code: 50, msg: expect.stringMatching(/^vfplane-cni cannot serve ADD: failed to find IPAM plugin "no-such-ipam" in CNI_PATH/) });
  });

  it('through the installed shim: served by `vfplane cni serve`, and standalone when no server runs', async () => {
    const dir = cniPath.split(':')[0]!;
    const wrapper = join(dir, 'vfplane-cni');
    const socket = join(dir, 'cni.sock');
    expect(vfplane(['cni', 'install', '--dir', dir, '--socket', socket]).code).toBe(0);
    const server = await startServer(socket);
    try {
      const p = pod('served');
      const conf = base({ cniVersion: '1.1.0', deviceID: '0000:5e:02.5' });
      const e = { containerId: 'srv00001', netns: nsPath(p), ifname: 'net1' };
      const add = call('ADD', conf, e, wrapper);
      expect(add.code, JSON.stringify(add.out)).toBe(0);
      expect(add.out.interfaces[0]).toMatchObject({ name: 'net1', pciID: '0000:5e:02.5', sandbox: nsPath(p) });
      expect(p.ip(['-br', 'link'])).toContain('net1');
      // errors come back as the spec says, exit status included
      const bad = call('ADD', base({ deviceID: 'nope' }), e, wrapper);
      expect(bad.code).toBe(1);
      expect(bad.out.code).toBe(7);
      expect(call('DEL', conf, e, wrapper).code).toBe(0);
      expect(look(['vf', 'show', '0000:5e:02.5']).allocation).toBeNull();
      // The server's log has a line per call: what, for whom, how it ended, how long.
      // (The calls above ran with the event loop held: the server's stderr is read now.)
      const lines = () => server.log().split('\n').filter((l) => / container srv00001 /.test(l));
      for (const until = Date.now() + 5000; lines().length < 3 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
      expect(lines()).toEqual([
        expect.stringMatching(/^vfplane cni serve: ADD container srv00001 net1: ok in \d+\.\d ms$/),
        expect.stringMatching(/^vfplane cni serve: ADD container srv00001 net1: failed \(exit 1, code 7\): deviceID: expected a PCI address .* got "nope" in \d+\.\d ms$/),
        expect.stringMatching(/^vfplane cni serve: DEL container srv00001 net1: ok in \d+\.\d ms$/),
      ]);
    } finally {
      await server.stop();
    }
    expect(existsSync(socket)).toBe(false);
    // no server: the shim runs the plugin itself
    const v = call('VERSION', { cniVersion: '1.1.0' }, {}, wrapper);
    expect(v.out.supportedVersions).toContain('1.1.0');
  });

  it('through `vfplane cni serve`, delegates get the runtime\'s environment and their stderr reaches the runtime', async () => {
    const dir = cniPath.split(':')[0]!;
    const wrapper = join(dir, 'vfplane-cni');
    const socket = join(dir, 'cni-env.sock');
    expect(vfplane(['cni', 'install', '--dir', dir, '--socket', socket]).code).toBe(0);
    // An IPAM plugin that says on stderr what it was given, then fails with code 7.
    const fake = mkdtempSync(join(tmpdir(), 'vfplane-cni-fake-'));
    writeFileSync(join(fake, 'saysenv'), '#!/bin/sh\ncat >/dev/null\necho "saysenv: RUNTIME_VAR=$RUNTIME_VAR" >&2\necho \'{"cniVersion":"1.0.0","code":7,"msg":"saysenv refuses"}\'\nexit 1\n', { mode: 0o755 });
    const server = await startServer(socket);
    try {
      const p = pod('envd');
      const e = { containerId: 'envd0001', netns: nsPath(p), ifname: 'net1', extra: { RUNTIME_VAR: 'from-the-runtime' } };
      const conf = base({ deviceID: '0000:5e:0a.4', ipam: { type: 'saysenv' } });
      const r = spawnSync(wrapper, [], { input: JSON.stringify(conf), env: envOf('ADD', e, `${fake}:${cniPath}`), encoding: 'utf8', timeout: 60_000 });
      expect(r.status).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ code: 7, msg: 'IPAM saysenv: saysenv refuses' });
      expect(r.stderr).toContain('saysenv: RUNTIME_VAR=from-the-runtime');
      expect(look(['vf', 'show', '0000:5e:0a.4']).allocation).toBeNull();
    } finally {
      await server.stop();
      rmSync(fake, { recursive: true, force: true });
    }
  });

  it('chains with the reference tuning plugin in a conflist', () => {
    const p = pod('chain');
    const e = { containerId: 'chain001', netns: nsPath(p), ifname: 'net1' };
    const list = { cniVersion: '1.0.0', name: 'vfnet', plugins: [base({ deviceID: '0000:5e:02.7', mtu: 1500 }), { type: 'tuning', promisc: true, mtu: 1400, sysctl: { 'net.ipv4.conf.net1.accept_redirects': '0' } }] };
    // what a runtime does with a conflist: each plugin gets name/cniVersion and the previous result
    const first = call('ADD', { ...list.plugins[0], name: list.name, cniVersion: list.cniVersion }, e);
    expect(first.code, JSON.stringify(first.out)).toBe(0);
    const tuning = call('ADD', { ...list.plugins[1], name: list.name, cniVersion: list.cniVersion, prevResult: first.out }, e, `${REF}/tuning`);
    expect(tuning.code, JSON.stringify(tuning.out) + tuning.stderr).toBe(0);
    expect(tuning.out.interfaces[0].pciID ?? tuning.out.interfaces[0].name).toBeDefined();
    expect(JSON.parse(p.ip(['-j', 'link', 'show', 'dev', 'net1']))[0]).toMatchObject({ flags: expect.arrayContaining(['PROMISC']), mtu: 1400 });
    // tuning changed the MTU after us: our CHECK allows it (spec), as tuning's own does.
    const chk = call('CHECK', { ...list.plugins[0], name: list.name, cniVersion: list.cniVersion, prevResult: tuning.out }, e);
    expect(chk.code, JSON.stringify(chk.out)).toBe(0);
    // DEL runs in reverse order
    expect(call('DEL', { ...list.plugins[1], name: list.name, cniVersion: list.cniVersion, prevResult: tuning.out }, e, `${REF}/tuning`).code).toBe(0);
    expect(call('DEL', { ...list.plugins[0], name: list.name, cniVersion: list.cniVersion }, e).code).toBe(0);
    expect(look(['vf', 'show', '0000:5e:02.7']).netdev).toBe(`${m.prefix}f0v7`);
  });

  // tuning's mac after an overlay ADD: the interface and the chain's result carry the new
  // MAC, the data plane still the one the attach registered, so it drops every frame the
  // pod sends as spoofed. CHECK passed (it compared only the VNI and the representor).
  it('CHECK of an overlay attachment fails when a chained tuning changed the interface\'s MAC under the data plane', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-tunmac-'));
    const sock = join(dir, 'dp.sock');
    // A data plane that lists what it was asked to attach, under the attach's MAC, as the
    // daemon's status does.
    const fake = standInDataplane(sock, `((at, spoofChecked, repState) => (r) => {
      if (r.op === 'attach') { at = r; return '{"ok":true}'; }
      if (r.op === 'rep-state') { repState = r.state; return '{"ok":true}'; }
      if (r.op === 'antispoof-off') { spoofChecked = false; return '{"ok":true}'; }
      if (r.op === 'antispoof-unsaid') { spoofChecked = undefined; return '{"ok":true}'; }
      if (r.op === 'status') return JSON.stringify({ ok: true, ...(spoofChecked === undefined ? {} : { antiSpoof: spoofChecked }), attachments: at ? [{ representor: at.representor, pci: at.pci, vni: at.vni, mac: at.mac, representorState: repState }] : [] });
      if (r.op === 'detach') at = undefined;
      return '{"ok":true}';
    })(undefined, true, 'ok')`);
    let heard = '';
    fake.stdout.on('data', (d) => (heard += d));
    await new Promise<void>((r) => { const t = setInterval(() => heard.includes('ready') && (clearInterval(t), r()), 20); });
    const p = pod('tunmac');
    const e = { containerId: 'tunmac01', netns: nsPath(p), ifname: 'net1' };
    const list = { cniVersion: '1.0.0', name: 'vfnet', plugins: [base({ deviceID: '0000:5e:0a.6', ipam: {}, mac: '02:00:00:00:aa:0a', vxlan: { vni: 100, socket: sock } }), { type: 'tuning', mac: '02:00:00:00:bb:01' }] };
    try {
      const first = call('ADD', { ...list.plugins[0], name: list.name, cniVersion: list.cniVersion }, e);
      expect(first.code, JSON.stringify(first.out) + first.stderr).toBe(0);
      // Before tuning: the interface has the MAC the data plane carries.
      expect(call('CHECK', { ...list.plugins[0], name: list.name, cniVersion: list.cniVersion, prevResult: first.out }, e).code).toBe(0);
      // Its representor set down since (helper-109: CHECK passed while the pod was cut off).
      await dataplaneRequest(sock, { op: 'rep-state', state: 'down' });
      const down = call('CHECK', { ...list.plugins[0], name: list.name, cniVersion: list.cniVersion, prevResult: first.out }, e);
      expect(down.out).toMatchObject({ code: 5, msg: expect.stringMatching(new RegExp(`^the data plane at ${sock} does not forward for VF 0000:5e:0a\\.6: its representor (\\S+) is down$`)), details: expect.stringMatching(/^bring it up: `ip link set \S+ up`$/) });
      await dataplaneRequest(sock, { op: 'rep-state', state: 'ok' });
      const tuning = call('ADD', { ...list.plugins[1], name: list.name, cniVersion: list.cniVersion, prevResult: first.out }, e, `${REF}/tuning`);
      expect(tuning.code, JSON.stringify(tuning.out) + tuning.stderr).toBe(0);
      expect(tuning.out.interfaces[0].mac).toBe('02:00:00:00:bb:01');
      const chk = call('CHECK', { ...list.plugins[0], name: list.name, cniVersion: list.cniVersion, prevResult: tuning.out }, e);
      expect(chk.code).toBe(1);
      expect(chk.out).toMatchObject({
        code: 5,
        msg: `the data plane at ${sock} carries VF 0000:5e:0a.6 on VXLAN 100 with MAC 02:00:00:00:aa:0a, but interface net1 has MAC 02:00:00:00:bb:01: every frame from it is dropped as spoofed (antiSpoof)`,
        details: expect.stringContaining('set the MAC with vfplane-cni\'s own "mac" (or runtimeConfig.mac, or CNI_ARGS MAC=), not a later plugin'),
      });
      // A data plane with antiSpoof off takes the pod's frames: what is wrong is said
      // (helper-93: "dropped as spoofed" while they went through).
      await dataplaneRequest(sock, { op: 'antispoof-off' });
      const chk2 = call('CHECK', { ...list.plugins[0], name: list.name, cniVersion: list.cniVersion, prevResult: tuning.out }, e);
      expect(chk2.out.msg).toMatch(/has MAC 02:00:00:00:bb:01: frames to it are not switched to it \(the data plane knows the pod by 02:00:00:00:aa:0a\), only flooded to it as unknown unicast$/);
      // A data plane older than the field does not say which (helper-94: "dropped as
      // spoofed" from an old daemon running with antiSpoof off).
      await dataplaneRequest(sock, { op: 'antispoof-unsaid' });
      const chk3 = call('CHECK', { ...list.plugins[0], name: list.name, cniVersion: list.cniVersion, prevResult: tuning.out }, e);
      expect(chk3.out.msg).toContain('every frame from it is dropped as spoofed if the data plane has antiSpoof on (its default; this one does not say), else frames to it are not switched');
      expect(call('DEL', { ...list.plugins[1], name: list.name, cniVersion: list.cniVersion, prevResult: tuning.out }, e, `${REF}/tuning`).code).toBe(0);
      expect(call('DEL', { ...list.plugins[0], name: list.name, cniVersion: list.cniVersion }, e).code).toBe(0);
    } finally {
      fake.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  // What an audit against SPEC.md (1.0.0, 1.1.0) and the reference plugins found.
  it('chained after another plugin, ADD keeps its prevResult and adds to it; the config\'s dns is in the result', () => {
    const p = pod('prev');
    const e = { containerId: 'prev0001', netns: nsPath(p), ifname: 'net1' };
    const prevResult = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', mac: '02:00:00:00:99:01', sandbox: nsPath(p) }], ips: [{ address: '192.168.77.5/24', interface: 0 }], routes: [{ dst: '192.168.78.0/24' }], dns: { nameservers: ['192.168.77.53'] } };
    const conf = base({ deviceID: '0000:5e:0a.0', prevResult, dns: { nameservers: ['10.97.0.53'], search: ['svc.local'] } });
    const add = call('ADD', conf, e);
    expect(add.code, JSON.stringify(add.out) + add.stderr).toBe(0);
    expect(add.out.interfaces.map((i: any) => i.name)).toEqual(['eth0', 'net1']);
    expect(add.out.ips).toEqual([{ address: '192.168.77.5/24', interface: 0 }, expect.objectContaining({ address: expect.stringMatching(/^10\.56\.0\.\d+\/24$/), interface: 1 })]);
    expect(add.out.routes).toEqual([{ dst: '192.168.78.0/24' }, { dst: '10.60.0.0/16' }]);
    expect(add.out.dns).toEqual({ nameservers: ['192.168.77.53', '10.97.0.53'], search: ['svc.local'] });
    // Only this plugin's address went onto its interface.
    expect(p.ip(['-br', 'addr', 'show', 'dev', 'net1'])).not.toContain('192.168.77.5');
    // CHECK holds the pod to this plugin's routes only: the earlier plugin's route (not in
    // this pod, whose eth0 that plugin never made) is that plugin's to check.
    const chk = call('CHECK', { ...base({ deviceID: '0000:5e:0a.0' }), prevResult: add.out }, e);
    expect(chk.code, JSON.stringify(chk.out)).toBe(0);
    p.ip(['route', 'del', '10.60.0.0/16']);
    expect(call('CHECK', { ...base({ deviceID: '0000:5e:0a.0' }), prevResult: add.out }, e).out.msg).toMatch(/^route to 10\.60\.0\.0\/16 is missing/);
    expect(call('DEL', base({ deviceID: '0000:5e:0a.0' }), e).code).toBe(0);
    // Without a prevResult the config's dns alone (host-local gives none).
    const p2 = pod('dns');
    const e2 = { containerId: 'dns00001', netns: nsPath(p2), ifname: 'net1' };
    const add2 = call('ADD', base({ deviceID: '0000:5e:0a.0', dns: { nameservers: ['10.97.0.53'] } }), e2);
    expect(add2.out.dns).toEqual({ nameservers: ['10.97.0.53'] });
    expect(call('DEL', base({ deviceID: '0000:5e:0a.0' }), e2).code).toBe(0);
  });

  it('CHECK consults prevResult: it must name this interface, and its addresses and routes must be there', () => {
    const p = pod('chk');
    const e = { containerId: 'chk00001', netns: nsPath(p), ifname: 'net1' };
    const conf = base({ deviceID: '0000:5e:0a.1' });
    const add = call('ADD', conf, e);
    expect(add.code, add.stderr).toBe(0);
    expect(call('CHECK', { ...conf, prevResult: add.out }, e).code).toBe(0);
    // the same namespace under another path is the same sandbox
    expect(call('CHECK', { ...conf, prevResult: { ...add.out, interfaces: [{ ...add.out.interfaces[0], sandbox: `/var/run/netns/${p.name}` }] } }, e).code).toBe(0);
    const none = call('CHECK', conf, e);
    expect(none.out).toMatchObject({ code: 7, msg: expect.stringContaining('CHECK needs prevResult') });
    const other = call('CHECK', { ...conf, prevResult: { ...add.out, interfaces: [{ name: 'other0', sandbox: '/run/netns/elsewhere' }] } }, e);
    expect(other.out).toMatchObject({ code: 7, msg: `prevResult has no interface net1 in ${nsPath(p)}` });
    p.ip(['route', 'del', '10.60.0.0/16']);
    const noRoute = call('CHECK', { ...conf, prevResult: add.out }, e);
    expect(noRoute.code).toBe(1);
    expect(noRoute.out.msg).toBe(`route to 10.60.0.0/16 is missing from ${nsPath(p)}`);
    p.ip(['addr', 'flush', 'dev', 'net1']);
    expect(call('CHECK', { ...conf, prevResult: add.out }, e).out.msg).toMatch(/^interface net1 lacks address 10\.56\.0\.\d+\/24$/);
    // DEL is best-effort: a prevResult it cannot read (an address without its prefix) is set aside
    const odd = { ...add.out, ips: [{ address: '10.56.0.50', interface: 0 }] };
    const del = call('DEL', { ...conf, prevResult: odd, logLevel: 'warning' }, e);
    expect(del.code, JSON.stringify(del.out)).toBe(0);
    expect(del.stderr).toContain('prevResult set aside');
    expect(look(['vf', 'show', '0000:5e:0a.1']).allocation).toBeNull();
  });

  it('CHECK of a DPDK VF asks the IPAM plugin (host-local: the lease must still be held)', () => {
    vfpJson(['vf', 'bind', '0000:5e:0a.2', '--driver', 'vfio-pci']);
    try {
      const p = pod('dchk');
      const dir = mkdtempSync(join(tmpdir(), 'vfplane-cni-ipam-d-'));
      const e = { containerId: 'dchk0001', netns: nsPath(p), ifname: 'net1', extra: { VFPLANE_DEVINFO_ROOT: dir } };
      const conf = base({ cniVersion: '1.1.0', deviceID: '0000:5e:0a.2', ipam: { type: 'host-local', subnet: '10.58.0.0/24', dataDir: dir }, runtimeConfig: { CNIDeviceInfoFile: join(dir, 'devinfo.json') } });
      const add = call('ADD', conf, e);
      expect(add.code, add.stderr).toBe(0);
      expect(call('CHECK', { ...conf, prevResult: add.out }, e).code).toBe(0);
      const lease = join(dir, 'vfnet', add.out.ips[0].address.split('/')[0]);
      rmSync(lease);
      const chk = call('CHECK', { ...conf, prevResult: add.out }, e);
      expect(chk.code).toBe(1);
      expect(chk.out.msg).toMatch(/^IPAM host-local: /);
      expect(call('DEL', conf, e).code).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    } finally {
      vfpJson(['vf', 'bind', '0000:5e:0a.2', '--driver', 'kernel']);
    }
  });

  // A DPDK VF's CHECK looked at the driver and the device-info file only: a prevResult
  // naming another VF, another MAC or another address passed.
  it('CHECK of a DPDK VF holds prevResult to the VF, its PF-side MAC and the addresses ADD gave', () => {
    vfpJson(['vf', 'bind', '0000:5e:0a.7', '--driver', 'vfio-pci']);
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-cni-dchk2-'));
    try {
      const p = pod('dchk2');
      const e = { containerId: 'dchk0002', netns: nsPath(p), ifname: 'net1', extra: { VFPLANE_DEVINFO_ROOT: dir } };
      const conf = base({ cniVersion: '1.1.0', deviceID: '0000:5e:0a.7', mac: '02:00:00:00:dd:07', ipam: { type: 'host-local', subnet: '10.59.0.0/24', dataDir: dir }, runtimeConfig: { CNIDeviceInfoFile: join(dir, 'devinfo.json') } });
      const add = call('ADD', conf, e);
      expect(add.code, add.stderr).toBe(0);
      expect(add.out.interfaces[0]).toMatchObject({ name: 'net1', pciID: '0000:5e:0a.7', mac: '02:00:00:00:dd:07' });
      expect(call('CHECK', { ...conf, prevResult: add.out }, e).code).toBe(0);
      const altered = (f: (r: any) => void) => {
        const r = JSON.parse(JSON.stringify(add.out));
        f(r);
        return call('CHECK', { ...conf, prevResult: r }, e);
      };
      const pci = altered((r) => (r.interfaces[0].pciID = '0000:5e:0a.6'));
      expect(pci.code).toBe(1);
      expect(pci.out).toMatchObject({ code: 5, msg: 'prevResult\'s interface net1 is VF 0000:5e:0a.6, but VF 0000:5e:0a.7 is attached to container dchk0002 as net1' });
      const mac = altered((r) => (r.interfaces[0].mac = '02:00:00:00:dd:99'));
      expect(mac.code).toBe(1);
      expect(mac.out).toMatchObject({ code: 5, msg: expect.stringMatching(/^VF 0000:5e:0a\.7 has MAC 02:00:00:00:dd:07 on PF \S+, not 02:00:00:00:dd:99 as prevResult says$/) });
      const ip = altered((r) => (r.ips[0].address = '10.59.0.200/24'));
      expect(ip.code).toBe(1);
      expect(ip.out).toMatchObject({ code: 5, msg: `prevResult gives net1 address 10.59.0.200/24, which ADD did not: it gave VF 0000:5e:0a.7 ${add.out.ips[0].address}` });
      // And the other way: a prevResult that leaves out an address ADD gave (helper-93).
      const none = altered((r) => (r.ips = []));
      expect(none.out).toMatchObject({ code: 5, msg: `prevResult gives net1 no address ${add.out.ips[0].address}, which ADD gave VF 0000:5e:0a.7` });
      expect(call('DEL', conf, e).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      vfpJson(['vf', 'bind', '0000:5e:0a.7', '--driver', 'kernel']);
    }
  });

  it('GC keeps attachments listed under either key (cni.dev/attachments, cni.dev/valid-attachments) and returns the IPAM plugin\'s GC error', () => {
    const p = pod('gck');
    const e = { containerId: 'gck00001', netns: nsPath(p), ifname: 'net1' };
    expect(call('ADD', base({ deviceID: '0000:5e:0a.3' }), e).code).toBe(0);
    // spec-v1.1.0's own text names the key cni.dev/attachments
    expect(call('GC', base({ cniVersion: '1.1.0', 'cni.dev/attachments': [{ containerID: 'gck00001', ifname: 'net1' }] })).code).toBe(0);
    expect(look(['vf', 'show', '0000:5e:0a.3']).allocation?.owner.containerId).toBe('gck00001');
    expect(p.ip(['-br', 'link'])).toContain('net1');
    // an IPAM plugin whose GC fails: its error (code 5) comes back, after the release
    const fake = mkdtempSync(join(tmpdir(), 'vfplane-cni-fake-'));
    writeFileSync(join(fake, 'gcfail'), '#!/bin/sh\ncat >/dev/null\nif [ "$CNI_COMMAND" = GC ]; then echo \'{"cniVersion":"1.1.0","code":5,"msg":"cannot release"}\'; exit 1; fi\nexit 0\n', { mode: 0o755 });
    try {
      const r = spawnSync(process.execPath, [PLUGIN], { input: JSON.stringify(base({ cniVersion: '1.1.0', ipam: { type: 'gcfail' }, 'cni.dev/valid-attachments': [] })), env: { ...envOf('GC', {}, `${fake}:${REF}`) }, encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ code: 5, msg: 'IPAM gcfail: cannot release' });
      expect(look(['vf', 'show', '0000:5e:0a.3']).allocation).toBeNull(); // released all the same
    } finally {
      rmSync(fake, { recursive: true, force: true });
    }
  });

  // GC put stale attachments back one at a time: ~150 ms each, a node full of them (a
  // runtime's GC after a crash) took 17 s for 110, past what a runtime waits (helper-96).
  // Now several at once: an IPAM DEL that takes 1 s overlaps with the others'.
  it('CNI GC puts several stale attachments back at once, and frees every VF and address', () => {
    const slow = join(cniPath.split(':')[0]!, 'slowdelhl');
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-gcpar-'));
    const times = join(dir, 'times');
    writeFileSync(slow, `#!/bin/sh\nif [ "$CNI_COMMAND" = DEL ]; then echo "S $(date +%s.%N)" >> ${times}; sleep 1; echo "E $(date +%s.%N)" >> ${times}; fi\nexec ${REF}/host-local\n`, { mode: 0o755 });
    const conf = base({ name: 'gcpar', pool: 'all', ipam: { type: 'slowdelhl', subnet: '10.59.0.0/24', dataDir: dir } });
    try {
      for (const i of [1, 2, 3]) {
        const r = call('ADD', conf, { containerId: `gcpar0${i}`, netns: nsPath(pod(`gcpar${i}`)), ifname: 'net1' });
        expect(r.code, JSON.stringify(r.out)).toBe(0);
      }
      const gc = call('GC', { ...conf, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] });
      expect(gc.code, JSON.stringify(gc.out)).toBe(0);
      const ev = readFileSync(times, 'utf8').trim().split('\n').map((l) => l.split(' ')).map(([k, t]) => ({ k, t: Number(t) })).sort((a, b) => a.t - b.t);
      // (Each DEL is asked twice: in 1.1.0, refused by Debian's host-local, then in 1.0.0.)
      expect(ev.filter((e) => e.k === 'S').length).toBeGreaterThanOrEqual(3);
      let now = 0, most = 0;
      for (const e of ev) most = Math.max(most, (now += e.k === 'S' ? 1 : -1));
      expect(most).toBeGreaterThanOrEqual(2);
      expect(look(['vf', 'list', '--allocated']).filter((v: { allocation?: { owner: { network?: string } } }) => v.allocation?.owner.network === 'gcpar')).toEqual([]);
      expect(existsSync(join(dir, 'gcpar')) ? readdirSync(join(dir, 'gcpar')).filter((f) => /^\d/.test(f)) : []).toEqual([]);
    } finally {
      rmSync(slow, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a pool that selects no VF on this node says which criterion no VF here meets, at ADD (code 11) and STATUS (code 50)', () => {
    const f = join(state, 'pools-other.json');
    writeFileSync(f, JSON.stringify({ pools: [{ name: 'other', selector: { pfNames: ['ens9f0#0-3'], drivers: ['iavf'] } }] }));
    const before = hostState();
    const r = call('ADD', base({ pool: 'other', poolsFile: f }), { containerId: 'other001', netns: nsPath(pod('other')), ifname: 'net1' });
    expect(r.code).toBe(1);
    expect(r.out).toMatchObject({ code: 11, msg: `no VF on this node matches pool "other" (${f}): pfNames ["ens9f0#0-3"] matches none: this node's PFs with VFs are ${m.prefix}f0, ${m.prefix}f1` });
    expect(hostState()).toEqual(before);
    const st = call('STATUS', base({ cniVersion: '1.1.0', pool: 'other', poolsFile: f }));
    expect(st.out).toMatchObject({ code: 50, msg: `no VF on this node matches pool "other": pfNames ["ens9f0#0-3"] matches none: this node's PFs with VFs are ${m.prefix}f0, ${m.prefix}f1` });
    // With a deviceID the pool is not asked, but a VF outside it is said (helper-86: a
    // device plugin resource and a pool that disagree went unnoticed).
    const e = { containerId: 'other002', netns: nsPath(pod('other2')), ifname: 'net1' };
    const withDev = base({ pool: 'other', poolsFile: f, deviceID: '0000:5e:02.5' });
    const add = call('ADD', withDev, e);
    expect(add.code, JSON.stringify(add.out)).toBe(0);
    const warned = add.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === 'warning').map((l) => l.msg);
    expect(warned).toEqual([expect.stringMatching(new RegExp(`^deviceID 0000:5e:02\\.5 is not in pool "other" \\(${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\), which this network also names: the VF the device plugin chose is used`))]);
    expect(call('DEL', withDev, e).code).toBe(0);
    expect(hostState()).toEqual(before);
  });

  // gc lists the allocations, then works through them; one VF's data plane may take 10 s
  // to answer its detach. Meanwhile another listed VF's DEL can run and a new pod take
  // that VF: gc must leave it alone, not restore the dead pod's settings over the new pod's.
  it('vfplane gc held up on one VF leaves alone another it listed, once a DEL and a new ADD gave that VF to a live pod', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-hangdp-'));
    const sock = join(dir, 'dp.sock');
    // A data plane that attaches, and never answers a detach (it says "detach" when one
    // comes).
    const fake = standInDataplane(sock, `(r) => (r.op === 'attach' ? '{"ok":true}' : null)`);
    const said = (word: string) => new Promise<void>((r) => fake.stdout.on('data', (d) => String(d).includes(word) && r()));
    const detaching = said('detach');
    await said('ready');
    try {
      const ph = pod('gch');
      const addH = call('ADD', base({ deviceID: '0000:5e:02.0', ipam: {}, mac: '02:00:00:00:aa:01', vxlan: { vni: 100, socket: sock } }), { containerId: 'gch00001', netns: nsPath(ph), ifname: 'net1' });
      expect(addH.code, JSON.stringify(addH.out)).toBe(0);
      const pa = pod('gca');
      const ea = { containerId: 'gca00001', netns: nsPath(pa), ifname: 'net1' };
      const confA = base({ deviceID: '0000:5e:02.1', ipam: {}, vlan: 100 });
      expect(call('ADD', confA, ea).code).toBe(0);
      ph.destroy();
      pa.destroy(); // both owners gone: gc's to collect
      // gc waits 5 s for the detach (10 by default): the DEL and ADD below run meanwhile.
      const gc = spawn(process.execPath, [join(ROOT, 'bin', 'vfplane.js'), 'gc', '--sysfs-root', m.root, '--state-dir', state], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VFPLANE_CONTROL_TIMEOUT_MS: '5000' } });
      let gcOut = '';
      gc.stdout.on('data', (d) => (gcOut += d));
      gc.stderr.on('data', (d) => (gcOut += d));
      const gcDone = new Promise<number | null>((r) => gc.once('exit', r));
      await detaching; // gc now waits on 02.0's data plane
      expect(call('DEL', confA, ea).code).toBe(0);
      const pb = pod('gcb');
      const eb = { containerId: 'gcb00001', netns: nsPath(pb), ifname: 'net1' };
      const confB = base({ deviceID: '0000:5e:02.1', ipam: {}, vlan: 200, trust: 'on' });
      expect(call('ADD', confB, eb).code).toBe(0);
      expect(await gcDone, gcOut).toBe(0);
      const vf = look(['vf', 'show', '0000:5e:02.1']);
      expect(vf.allocation?.owner.containerId).toBe('gcb00001');
      expect(vf.settings).toMatchObject({ vlan: 200, trust: true });
      expect(pb.ip(['-br', 'link'])).toContain('net1');
      expect(look(['vf', 'show', '0000:5e:02.0']).allocation).toBeNull();
      expect(call('DEL', confB, eb).code).toBe(0);
    } finally {
      fake.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  // CNI GC whose data plane does not answer the detach: the VF's PF-side settings (its
  // pod's VLAN, trust) are put back all the same, and the VF stays held, with a failure,
  // for the next GC to finish. It was released half put back: the next pod got the old
  // VLAN and trust on, and its DEL "restored" them as the VF's own.
  it('CNI GC with a data plane that never answers the detach puts the settings back and keeps the VF for the next GC', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-gchang-'));
    const sock = join(dir, 'dp.sock');
    const fake = standInDataplane(sock, `(r) => (r.op === 'attach' ? '{"ok":true}' : null)`);
    let heard = '';
    fake.stdout.on('data', (d) => (heard += d));
    await new Promise<void>((r) => { const t = setInterval(() => heard.includes('ready') && (clearInterval(t), r()), 20); });
    const p = pod('gchang');
    const conf = base({ cniVersion: '1.1.0', deviceID: '0000:5e:02.5', ipam: {}, vlan: 100, trust: 'on', vxlan: { vni: 100, socket: sock } });
    const e = { containerId: 'gchang01', netns: nsPath(p), ifname: 'net1' };
    try {
      expect(call('ADD', conf, e).code).toBe(0);
      expect(look(['vf', 'show', '0000:5e:02.5']).settings).toMatchObject({ vlan: 100, trust: true });
      const gc = call('GC', { ...conf, 'cni.dev/valid-attachments': [] }, { extra: { VFPLANE_CONTROL_TIMEOUT_MS: '1500' } });
      expect(gc.code).toBe(1);
      expect(gc.out).toMatchObject({ code: 5, msg: expect.stringContaining('VF 0000:5e:02.5 (') });
      expect(gc.out.msg).toContain('stays allocated, not put back');
      expect(gc.out.msg).toContain('did not answer detach within 1500 ms');
      const held = look(['vf', 'show', '0000:5e:02.5']);
      expect(held.allocation?.owner.containerId).toBe('gchang01');
      expect(held.settings).toMatchObject({ vlan: 0, trust: false });
      // The data plane gone (nothing to detach from), the next GC finishes.
      fake.kill();
      await new Promise((r) => fake.once('exit', r));
      rmSync(sock, { force: true });
      const again = call('GC', { ...conf, 'cni.dev/valid-attachments': [] });
      expect(again.code, JSON.stringify(again.out)).toBe(0);
      expect(look(['vf', 'show', '0000:5e:02.5']).allocation).toBeNull();
      expect(p.ip(['-br', 'link'])).not.toContain('net1');
    } finally {
      fake.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  // A DEL whose CNI_NETNS leads elsewhere than the pod's namespace (a /proc/PID/ns/net
  // whose PID is a host process's now, a sandbox made again at the path) took the netdev
  // of the pod's interface name from there: a host netdev renamed as the VF's, its MAC and
  // MTU changed. The VF comes home from the namespace the ADD recorded; the other is untouched.
  it('DEL with a CNI_NETNS that is not the pod\'s leaves a netdev of the pod\'s interface name there alone, and brings the VF home from its pod', async () => {
    const p = pod('delns');
    const ifname = `${m.prefix}x1`;
    const decoy = `${m.prefix}y1`;
    const conf = base({ deviceID: '0000:5e:02.6', ipam: {}, mac: '02:00:00:00:aa:06', mtu: 1400 });
    expect(call('ADD', conf, { containerId: 'delns001', netns: nsPath(p), ifname }).code).toBe(0);
    const host = spawn('sleep', ['60']);
    execFileSync('ip', ['link', 'add', ifname, 'mtu', '1280', 'address', '02:00:00:00:bb:01', 'type', 'veth', 'peer', 'name', decoy]);
    try {
      const del = call('DEL', conf, { containerId: 'delns001', netns: `/proc/${host.pid}/ns/net`, ifname });
      expect(del.code, JSON.stringify(del.out)).toBe(0);
      const l = JSON.parse(execFileSync('ip', ['-j', 'link', 'show', ifname], { encoding: 'utf8' }))[0];
      expect([l.address, l.mtu]).toEqual(['02:00:00:00:bb:01', 1280]);
      expect(p.ip(['-br', 'link'])).not.toContain(ifname);
      const vf = look(['vf', 'show', '0000:5e:02.6']);
      expect(vf.allocation).toBeNull();
      expect(vf.netdev).toBe(`${m.prefix}f0v6`);
    } finally {
      host.kill();
      execFileSync('ip', ['link', 'del', decoy]); // and its peer, under whatever name it has
    }
  });

  // A node half-way through an upgrade: this plugin, a data plane from before mtuAuto
  // (one that refuses it as an unknown field, in the words of the two releases before it;
  // stood in for here, as no older build runs in this checkout). The ADD goes through
  // without it, the pod keeping its VF's MTU, and says why; DEL detaches.
  it('an overlay ADD against a data plane older than mtuAuto asks again without it, says so, and the pod keeps its VF\'s MTU', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-olddp-'));
    const sock = join(dir, 'dp.sock');
    // Its detach answers with a note, as a data plane whose state file cannot keep it does.
    const fake = standInDataplane(sock, `(r) => (r.op === 'attach' && 'mtuAuto' in r
      ? JSON.stringify({ ok: false, error: { kind: 'invalid', message: 'attach: config: Unrecognized key: "mtuAuto"' } })
      : r.op === 'detach' ? JSON.stringify({ ok: true, removed: true, note: 'the state file /x/dataplane-n.json cannot be written (EROFS): the detach of r0 made' })
      : '{"ok":true}')`);
    let heard = '';
    fake.stdout.on('data', (d) => (heard += d));
    await new Promise<void>((r) => { const t = setInterval(() => heard.includes('ready') && (clearInterval(t), r()), 20); });
    try {
      const p = pod('olddp');
      const log = join(dir, 'cni.log');
      const conf = base({ deviceID: '0000:5e:02.4', ipam: {}, mac: '02:00:00:00:aa:04', vxlan: { vni: 100, socket: sock }, logFile: log, logLevel: 'info' });
      const e = { containerId: 'olddp001', netns: nsPath(p), ifname: 'net1' };
      const add = call('ADD', conf, e);
      expect(add.code, JSON.stringify(add.out)).toBe(0);
      expect(p.ip(['link', 'show', 'net1'])).toMatch(/ mtu 1500 /); // the VF's own: no overlay MTU came back
      // The stand-in's lines arrive once this (synchronous) test yields.
      const requests = async (n: number) => {
        for (let i = 0; i < 100 && heard.split('\n').filter((l) => l.startsWith('{')).length < n; i++) await new Promise((r) => setTimeout(r, 20));
        return heard.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      };
      expect(await requests(2)).toEqual([{ op: 'attach', mtuAuto: true }, { op: 'attach' }]);
      expect(readFileSync(log, 'utf8')).toContain(`the data plane at ${sock} is older than this vfplane-cni (it does not take mtuAuto): the pod keeps its VF's MTU instead of the overlay's; upgrade the data plane`);
      const del = call('DEL', conf, e);
      expect(del.code, JSON.stringify(del.out)).toBe(0);
      expect((await requests(3))[2]).toEqual({ op: 'detach' });
      expect(look(['vf', 'show', '0000:5e:02.4']).allocation).toBeNull();
      // What the data plane added to its "done" reaches the runtime's log as a warning
      // (helper-85: the DEL said nothing of a detach its state file could not keep).
      expect(readFileSync(log, 'utf8')).toMatch(/"level":"warning","msg":"DEL: the data plane detached VF 0000:5e:02\.4: the state file \/x\/dataplane-n\.json cannot be written \(EROFS\): the detach of r0 made"/);
    } finally {
      fake.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  // The spec lets a runtime run GC alongside another container's ADD; the ADD's
  // attachment is not in the valid list yet (the runtime records it once ADD returns).
  it('GC leaves alone an attachment whose ADD is still under way', async () => {
    const slow = mkdtempSync(join(tmpdir(), 'vfplane-cni-slow-'));
    // The ADD's IPAM waits until GC has returned (the hold file removed), not a fixed 3 s
    // that a GC slower than it on a loaded host would have missed the ADD in.
    const hold = join(slow, 'hold');
    writeFileSync(hold, '');
    writeFileSync(join(slow, 'slowstatic'), `#!/bin/sh\nif [ "$CNI_COMMAND" = ADD ]; then i=0; while [ -e ${hold} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; fi\nexec /usr/lib/cni/static\n`, { mode: 0o755 });
    try {
      const p = pod('gcadd');
      const e = { containerId: 'gcadd001', netns: nsPath(p), ifname: 'net1' };
      const conf = base({ cniVersion: '1.1.0', deviceID: '0000:5e:02.2', ipam: { type: 'slowstatic', addresses: [{ address: '10.79.0.3/24' }] } });
      const child = spawn(process.execPath, [PLUGIN], { env: envOf('ADD', e, `${slow}:${REF}`), stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stdin.end(JSON.stringify(conf));
      const added = new Promise<number | null>((r) => child.once('exit', r));
      for (let i = 0; i < 100 && !look(['vf', 'show', '0000:5e:02.2']).allocation; i++) await new Promise((r) => setTimeout(r, 30));
      const gc = spawnSync(process.execPath, [PLUGIN], { input: JSON.stringify({ ...conf, 'cni.dev/valid-attachments': [] }), env: envOf('GC', {}, `${slow}:${REF}`), encoding: 'utf8' });
      expect(gc.status, gc.stdout).toBe(0);
      rmSync(hold);
      expect(await added, out).toBe(0);
      expect(p.ip(['-br', 'addr', 'show', 'net1'])).toContain('10.79.0.3/24');
      expect(look(['vf', 'show', '0000:5e:02.2']).allocation?.owner.containerId).toBe('gcadd001');
      const del = spawnSync(process.execPath, [PLUGIN], { input: JSON.stringify(conf), env: envOf('DEL', e, `${slow}:${REF}`), encoding: 'utf8' });
      expect(del.status, del.stdout).toBe(0);
    } finally {
      rmSync(slow, { recursive: true, force: true });
    }
  }, 60_000);

  // Without a handler, Node exits at once on SIGTERM/SIGINT: a VF moved but not configured,
  // or (when it landed after the result was written) a success body with exit 143.
  it('a signal mid-ADD lets the ADD finish (exit 0, its result stands); a second stops it at once; DEL puts back what was done', async () => {
    const slow = mkdtempSync(join(tmpdir(), 'vfplane-cni-sig-'));
    const mark = join(slow, 'mark');
    writeFileSync(join(slow, 'slowstatic'), `#!/bin/sh\nif [ "$CNI_COMMAND" = ADD ]; then touch ${mark}.start; sleep 1; fi\n/usr/lib/cni/static\nrc=$?\n[ "$CNI_COMMAND" = ADD ] && touch ${mark}.done\nexit $rc\n`, { mode: 0o755 });
    const waitFor = async (what: () => boolean, label: string) => {
      for (let i = 0; i < 1500 && !what(); i++) await new Promise((r) => setTimeout(r, 10));
      if (!what()) throw new Error(`timed out waiting for ${label}`);
    };
    try {
      for (const [tag, signals] of [['sigonce', 1], ['sigtwice', 2]] as const) {
        rmSync(`${mark}.start`, { force: true });
        rmSync(`${mark}.done`, { force: true });
        const p = pod(tag);
        const before = hostState();
        const e = { containerId: `${tag}01`, netns: nsPath(p), ifname: 'net1' };
        const conf = base({ deviceID: '0000:5e:02.3', vlan: 12, ipam: { type: 'slowstatic', addresses: [{ address: '10.79.0.9/24' }] } });
        const child = spawn(process.execPath, [PLUGIN], { env: envOf('ADD', e, `${slow}:${REF}`), stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        const exited = new Promise<[number | null, string | null]>((r) => child.once('exit', (c, sig) => r([c, sig])));
        child.stdin.end(JSON.stringify(conf));
        await waitFor(() => existsSync(`${mark}.start`), 'the IPAM plugin to start');
        child.kill('SIGTERM');
        if (signals === 2) {
          await waitFor(() => /finishing the ADD/.test(err), 'the plugin to take the first signal');
          child.kill('SIGTERM');
        }
        const [code, sig] = await exited;
        expect(err).toMatch(/vfplane-cni: SIGTERM: finishing the ADD under way, so that nothing is left half-done \(send SIGTERM again to stop at once\)/);
        if (signals === 1) {
          expect([code, sig], err).toEqual([0, null]);
          expect(parse(out)).toMatchObject({ interfaces: [{ name: 'net1', sandbox: nsPath(p) }], ips: [{ address: '10.79.0.9/24' }] });
          expect(p.ip(['-br', 'addr', 'show', 'net1'])).toContain('10.79.0.9/24');
          expect(look(['vf', 'show', '0000:5e:02.3']).allocation?.owner.containerId).toBe(e.containerId);
        } else {
          expect([code, sig], err).toEqual([143, null]);
          await waitFor(() => existsSync(`${mark}.done`), 'the orphaned IPAM plugin to finish');
        }
        // What a runtime does after a failed or abandoned ADD, and at pod removal.
        const del = spawnSync(process.execPath, [PLUGIN], { input: JSON.stringify(conf), env: envOf('DEL', e, `${slow}:${REF}`), encoding: 'utf8' });
        expect(del.status, del.stdout).toBe(0);
        expect(hostState()).toEqual(before);
        expect(p.ip(['-br', 'link']).trim().split('\n')).toHaveLength(1);
      }
    } finally {
      rmSync(slow, { recursive: true, force: true });
    }
  }, 90_000);

  // The spec forbids a runtime two ADDs at once for one container and interface, but a
  // runtime that retries after a timeout can do it. The second used to get the first's
  // allocation back from the store and, failing, its undo released the VF the first was
  // handing over. It is refused now inside the allocation's transaction.
  it('a second ADD for the same interface while the first is under way is refused and leaves the first alone', async () => {
    const p = pod('twice');
    const go = join(state, 'go-twice');
    const conf = base({ deviceID: '0000:5e:0a.7', ipam: { type: 'static', addresses: [{ address: '10.79.0.7/24' }] } });
    const e = { containerId: 'twice001', netns: nsPath(p), ifname: 'net1' };
    try {
      // The first sits inside its allocation's transaction (the store's test hook).
      const first = callAsync('ADD', conf, { ...e, extra: { VFPLANE_TEST_PAUSE_IN_TXN: go } });
      for (let i = 0; i < 1500 && !existsSync(`${go}.in-txn`); i++) await new Promise((r) => setTimeout(r, 10));
      expect(existsSync(`${go}.in-txn`)).toBe(true);
      // It passes the interface check (the first has not touched the pod yet) and queues
      // for the store's lock, which the first holds: it says so (the store's other test
      // hook), however slowly a loaded host starts it. (A fixed wait once let it come
      // after the first had finished, to meet the interface taken instead.)
      const queued = join(state, 'queued-twice');
      const second = callAsync('ADD', conf, { ...e, extra: { VFPLANE_TEST_MARK_WRITE: queued } });
      for (let i = 0; i < 3000 && !existsSync(queued); i++) await new Promise((r) => setTimeout(r, 10));
      expect(existsSync(queued)).toBe(true);
      await new Promise((r) => setTimeout(r, 100)); // from the mark into the lock's wait
      rmSync(queued, { force: true });
      writeFileSync(go, '');
      const [a, b] = await Promise.all([first, second]);
      expect(a.code, JSON.stringify(a.out)).toBe(0);
      expect(b.code).toBe(1);
      expect(b.out).toMatchObject({ code: 7, msg: expect.stringMatching(/already holds VF 0000:5e:0a\.7 as net1 .*an earlier ADD, or one still running; run DEL for this attachment first/) });
      expect(look(['vf', 'show', '0000:5e:0a.7']).allocation?.owner.containerId).toBe('twice001');
      expect(p.ip(['-br', 'addr', 'show', 'net1'])).toContain('10.79.0.7/24');
      expect(call('CHECK', { ...conf, cniVersion: '1.0.0', prevResult: a.out }, e).code).toBe(0);
      expect(call('DEL', conf, e).code).toBe(0);
      expect(look(['vf', 'show', '0000:5e:0a.7']).allocation).toBeNull();
    } finally {
      rmSync(go, { force: true });
      rmSync(`${go}.in-txn`, { force: true });
    }
  }, 60_000);

  it('an ADD whose VF an operator rebinds under it (vf bind --force) says so, code 11, and undoes itself', async () => {
    const pci = '0000:5e:0a.5';
    const was = look(['vf', 'show', pci]);
    const p = pod('rebind');
    const go = join(state, 'go-rebind');
    const conf = base({ deviceID: pci, ipam: { type: 'static', addresses: [{ address: '10.79.0.5/24' }] } });
    const e = { containerId: 'rebind01', netns: nsPath(p), ifname: 'net1' };
    const cli = (args: string[]) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [join(ROOT, 'bin', 'vfplane.js'), ...args, '--sysfs-root', m.root, '--state-dir', state], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr.on('data', (d) => (err += d));
      c.on('close', (code) => resolve({ code, stderr: err }));
    });
    try {
      // The ADD stops once the VF is allocated to it (a test hook), before it touches it;
      // the operator rebinds the VF under it then.
      const add = callAsync('ADD', conf, { ...e, extra: { VFPLANE_TEST_PAUSE_ADD: go } });
      for (let i = 0; i < 1500 && !existsSync(`${go}.in-txn`); i++) await new Promise((r) => setTimeout(r, 10));
      expect(existsSync(`${go}.in-txn`)).toBe(true);
      const b = await cli(['vf', 'bind', pci, '--driver', 'vfio-pci', '--force']);
      expect(b.code, b.stderr).toBe(0);
      writeFileSync(go, '');
      const r = await add;
      expect(r.code).toBe(1);
      expect(r.out).toMatchObject({ code: 11, msg: expect.stringMatching(/^VF 0000:5e:0a\.5 changed while this ADD ran: its driver went from iavf to vfio-pci \(`vfplane vf bind --force`\?\); the step that failed: /) });
      expect(look(['vf', 'show', pci]).allocation).toBeNull();
      expect(p.ip(['-br', 'link']).trim().split('\n')).toHaveLength(1); // lo only
    } finally {
      rmSync(go, { force: true });
      rmSync(`${go}.in-txn`, { force: true });
      await cli(['vf', 'bind', pci, '--driver', 'kernel', '--force']);
    }
    expect(look(['vf', 'show', pci])).toMatchObject({ driver: 'iavf', netdev: was.netdev, allocation: null });
  }, 60_000);

  // After `pf set-numvfs` the kernel binds each new VF's driver, then its netdev appears:
  // an ADD that meets a VF in between waits for it (a second at most).
  it('ADD waits briefly for a VF whose netdev is not in the host namespace yet, and says why when it never comes', async () => {
    const netdev = `${m.prefix}f1v6`;
    const elsewhere = pod('settle-x');
    const p = pod('settle');
    const home = `/proc/${process.pid}/ns/net`;
    execFileSync('ip', ['link', 'set', netdev, 'netns', elsewhere.name]);
    try {
      const logFile = join(state, 'settle.log');
      const conf = base({ deviceID: '0000:5e:0a.6', ipam: { type: 'static', addresses: [{ address: '10.79.0.6/24' }] }, logFile, logLevel: 'info' });
      const e = { containerId: 'settle01', netns: nsPath(p), ifname: 'net1' };
      const add = callAsync('ADD', conf, e);
      // back once the ADD has seen it missing (it logs that it waits)
      for (let i = 0; i < 200 && !(existsSync(logFile) && readFileSync(logFile, 'utf8').includes('waiting up to 1 s')); i++) await new Promise((r) => setTimeout(r, 10));
      expect(readFileSync(logFile, 'utf8')).toContain('VF 0000:5e:0a.6 has no netdev in the host namespace yet; waiting up to 1 s');
      elsewhere.ip(['link', 'set', netdev, 'netns', home]);
      const r = await add;
      expect(r.code, JSON.stringify(r.out)).toBe(0);
      expect(p.ip(['-br', 'addr', 'show', 'net1'])).toContain('10.79.0.6/24');
      expect(call('DEL', conf, e).code).toBe(0);
      // one that stays away is refused, naming where to look
      execFileSync('ip', ['link', 'set', netdev, 'netns', elsewhere.name]);
      const before = hostState();
      const no = call('ADD', conf, { containerId: 'settle02', netns: nsPath(p), ifname: 'net2' });
      expect(no.code).toBe(1);
      expect(no.out).toMatchObject({ code: 7, msg: expect.stringMatching(/VF 0000:5e:0a\.6 is bound to iavf but has no netdev in the host namespace/) });
      expect(hostState()).toEqual(before);
    } finally {
      try {
        elsewhere.ip(['link', 'set', netdev, 'netns', home]);
      } catch {
        /* home already */
      }
    }
    expect(look(['vf', 'show', '0000:5e:0a.6']).netdev).toBe(netdev);
  }, 60_000);

  it('vf release --force of a live pod\'s VF brings its netdev home; gc gives one Linux returned its MAC and MTU back', () => {
    const was = look(['vf', 'show', '0000:5e:02.5']);
    const cli = (args: string[]) => vfplane([...args, '--sysfs-root', m.root, '--state-dir', state]);
    const { p, e, conf, add } = addOne('frel', { ipam: {}, mac: '02:00:00:bb:00:03', mtu: 1400 });
    const r = cli(['vf', 'release', '0000:5e:02.5', '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`netdev ${was.netdev} brought back from ${nsPath(p)}`);
    expect(p.ip(['-br', 'link']).trim().split('\n')).toHaveLength(1); // lo only
    expect(look(['vf', 'show', '0000:5e:02.5'])).toMatchObject({ allocation: null, netdev: was.netdev, mac: was.mac, mtu: was.mtu });
    // The runtime's CHECK is told who took it and when, not "run ADD first".
    const chk = call('CHECK', { ...conf, prevResult: add.out }, e);
    expect(chk.code).toBe(1);
    expect(chk.out).toMatchObject({
      code: 3,
      msg: expect.stringMatching(/^VF 0000:5e:02\.5 is no longer attached to container frel0001 as net1: released at \S+ by `vfplane vf release --force`$/),
      details: expect.stringContaining('re-create the pod'),
    });
    expect(call('DEL', conf, e).code).toBe(0); // the pod's DEL afterwards finds nothing to do
    // A pod whose namespace went without a DEL: Linux returns a physical netdev to the
    // host as it was in the pod (the pod's MAC and MTU). The simulator's veth would die
    // with the namespace instead, so it is moved out first, as the kernel would (under its
    // own name: the simulated tree knows a VF's netdev by that name only).
    const g = addOne('fgc', { ipam: {}, mac: '02:00:00:bb:00:04', mtu: 1400 });
    g.p.ip(['link', 'set', 'net1', 'name', was.netdev]);
    g.p.ip(['link', 'set', was.netdev, 'netns', `/proc/${process.pid}/ns/net`]);
    g.p.destroy();
    expect(look(['vf', 'show', '0000:5e:02.5'])).toMatchObject({ netdev: was.netdev, mac: '02:00:00:bb:00:04', mtu: 1400 });
    const gc = cli(['gc']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stdout).toContain(`netdev ${was.netdev}: restored MAC ${was.mac}, mtu ${was.mtu}`);
    expect(look(['vf', 'show', '0000:5e:02.5'])).toMatchObject({ allocation: null, netdev: was.netdev, mac: was.mac, mtu: was.mtu });
  });

  // gc --dry-run promised "would free its IPAM lease" for a plugin the real gc then did
  // not find where the ADD's CNI_PATH had it (helper-95): the dry run says it would fail.
  it('gc --dry-run says an IPAM plugin gone from the recorded CNI_PATH would keep the lease, as the real gc then reports', () => {
    const link = join(cniPath.split(':')[0]!, 'hlgone');
    symlinkSync(join(REF, 'host-local'), link);
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-hlgone-'));
    const cli = (args: string[]) => vfplane([...args, '--sysfs-root', m.root, '--state-dir', state]);
    try {
      const { p } = addOne('hlgone', { ipam: { type: 'hlgone', subnet: '10.61.0.0/24', dataDir: dir } });
      p.destroy();
      rmSync(link);
      const dryRun = cli(['gc', '--dry-run', '--json']);
      expect(dryRun.code, dryRun.stderr).toBe(0); // a plan, not a failure
      const dry = (JSON.parse(dryRun.stdout) as { pci: string; failure?: string; error?: string; putBack: { step: string }[] }[]).find((x) => x.pci === '0000:5e:02.5')!;
      expect(dry).toMatchObject({ state: 'gone', failure: 'ipam', error: expect.stringMatching(/^would fail: failed to find IPAM plugin "hlgone" in CNI_PATH /) });
      expect(dry.putBack.map((x) => x.step)).not.toContain('ipam');
      expect(cli(['gc', '--dry-run']).stdout).toMatch(/its IPAM lease: would fail: failed to find IPAM plugin "hlgone"/);
      const real = cli(['gc', '--json']);
      expect(real.code).toBe(1);
      expect((JSON.parse(real.stdout).error.details.results as { pci: string }[]).find((x) => x.pci === '0000:5e:02.5')).toMatchObject({ released: true, failure: 'ipam' });
    } finally {
      rmSync(link, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a pool whose VFs match but none can be handed over says why, VF by VF (code 11), and allocates nothing', () => {
    const vf = look(['vf', 'show', '0000:5e:02.4']);
    const other = pod('elsewhere');
    // Someone else's namespace has this VF's netdev, without any allocation in the store.
    execFileSync('ip', ['link', 'set', 'dev', vf.netdev, 'netns', other.name]);
    try {
      const f = join(state, 'pools-gone.json');
      writeFileSync(f, JSON.stringify({ pools: [{ name: 'gone', selector: { pciAddresses: ['0000:5e:02.4'] } }] }));
      const before = leasedIps();
      const r = call('ADD', base({ pool: 'gone', poolsFile: f }), { containerId: 'gone0001', netns: nsPath(pod('gone')), ifname: 'net1' });
      expect(r.code).toBe(1);
      expect(r.out).toMatchObject({ code: 11, msg: expect.stringContaining('pool "gone": 1 VF matches, none usable: 0000:5e:02.4 is bound to iavf with no netdev in the host namespace') });
      expect(r.out.msg).toContain('vfplane vf bind PCI');
      expect(look(['vf', 'show', '0000:5e:02.4']).allocation).toBeNull();
      expect(leasedIps()).toEqual(before);
      const st = call('STATUS', base({ cniVersion: '1.1.0', pool: 'gone', poolsFile: f }), {});
      expect(st.out).toMatchObject({ code: 50, msg: 'no free VF in pool "gone": 1 match, 0 allocated, 1 unusable (no driver, or the netdev is outside the host namespace)' });
      // With another VF of the pool allocated, "all allocated" leaves out none (helper-98:
      // "1 VF match, all allocated" of a pool of two).
      writeFileSync(f, JSON.stringify({ pools: [{ name: 'gone', selector: { pciAddresses: ['0000:5e:02.4', '0000:5e:02.5'] } }] }));
      const e = { containerId: 'gone0002', netns: nsPath(pod('gone2')), ifname: 'net1' };
      expect(call('ADD', base({ deviceID: '0000:5e:02.5' }), e).code).toBe(0);
      const leased = leasedIps();
      const full = call('ADD', base({ pool: 'gone', poolsFile: f }), { containerId: 'gone0003', netns: nsPath(pod('gone3')), ifname: 'net1' });
      expect(full.out).toMatchObject({ code: 11, msg: expect.stringMatching(/^no free VF in pool "gone": 1 VF match, all allocated \(0000:5e:02\.5 to .*gone0002.*\); .*; besides, 1 more of pool "gone" cannot be given: 0000:5e:02\.4 is bound to iavf with no netdev in the host namespace; find who has its netdev, or take it back with `vfplane vf bind 0000:5e:02\.4 --driver kernel --force`/) });
      expect(leasedIps()).toEqual(leased);
      expect(call('DEL', base({ deviceID: '0000:5e:02.5' }), e).code).toBe(0);
      expect(leasedIps()).toEqual(before);
    } finally {
      other.ip(['link', 'set', 'dev', vf.netdev, 'netns', '1']);
    }
  });
});

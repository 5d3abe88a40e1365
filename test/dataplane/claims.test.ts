// A daemon killed while it holds netdevs (SIGKILL, the OOM killer) cannot give them back.
// Its next start must: it claims them again with the settings recorded at the first
// claim (not the ones it finds, which are the killed run's own changes), gives them back
// at a clean stop, and gives back at once the netdevs it no longer uses (an uplink
// changed in the config). Real daemons, real veths, settings read back with sysctl and
// ethtool.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BIN, startDataplane, vfplane } from '../helpers/cli.js';
import { ifname, Netns, vethPair } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';

describePrivileged('netdevs held by a daemon that was killed', { netns: true, commands: ['ethtool', 'sysctl'] }, () => {
  let n: Netns, m: Netns;
  const u1 = ifname('ku'), p1 = ifname('kp'), u2 = ifname('kv'), p2 = ifname('kq');
  const dir = mkdtempSync(join(tmpdir(), 'vfplane-claims-'));
  const socket = join(dir, 'dp.sock');
  const stateDir = join(dir, 'state');
  const journal = join(stateDir, 'claims-kill.json');
  const running: ChildProcess[] = [];

  /** What the data plane changes on a netdev it claims, as the kernel reports it now. */
  const settings = (dev: string) => ({
    gro: /^generic-receive-offload: (on|off)/m.exec(n.exec('ethtool', ['-k', dev]))![1],
    forwarding: n.exec('sysctl', ['-n', `net.ipv4.conf.${dev}.forwarding`]).trim(),
    disableIpv6: n.exec('sysctl', ['-n', `net.ipv6.conf.${dev}.disable_ipv6`]).trim(),
    up: (JSON.parse(n.exec('ip', ['-j', 'link', 'show', 'dev', dev])) as { flags: string[] }[])[0]!.flags.includes('UP'),
  });
  const host = { gro: 'on', forwarding: '1', disableIpv6: '0', up: false }; // what the test set (a new veth is down)
  const claimed = { gro: 'off', forwarding: '0', disableIpv6: '1', up: true }; // what a claim sets

  beforeAll(() => {
    n = Netns.create('kln');
    m = Netns.create('klm');
    for (const [u, p] of [[u1, p1], [u2, p2]] as const) {
      vethPair(n, u, m, p);
      n.exec('ethtool', ['-K', u, 'gro', 'on']); // as on a real NIC; a veth starts with it off
      n.sysctl(`net.ipv4.conf.${u}.forwarding`, '1');
      n.sysctl(`net.ipv6.conf.${u}.disable_ipv6`, '0');
      m.ip(['link', 'set', p, 'up']);
    }
  });

  afterAll(() => {
    for (const d of running) d.kill('SIGKILL');
    n?.destroy();
    m?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts `vfplane dataplane run` on uplink `u`; returns it once started. */
  async function start(u: string, backend = 'afpacket'): Promise<{ d: ChildProcess; log: () => string }> {
    const config = join(dir, `${u}.json`);
    writeFileSync(config, JSON.stringify({ node: 'kill', backend, uplink: { ifname: u, netns: `/run/netns/${n.name}`, vtep: '192.0.2.1' }, stateDir, socket }));
    rmSync(socket, { force: true }); // a killed daemon leaves its socket file behind
    const { proc: d, log } = await startDataplane(config, `the data plane on ${u}`);
    running.push(d);
    expect(log()).toContain(`control socket ${socket}`);
    return { d, log };
  }
  async function end(d: ChildProcess, signal: NodeJS.Signals): Promise<void> {
    const closed = new Promise((r) => d.on('close', r));
    d.kill(signal);
    await closed;
  }
  // The journal goes when nothing is held.
  const journaled = () => (existsSync(journal) ? JSON.parse(readFileSync(journal, 'utf8')) : []) as { ifname: string; forwarding: string; rxAgg: number }[];

  it('a restart gives back what the netdev had before the killed run, not what that run set', async () => {
    expect(settings(u1)).toEqual(host);
    const a = await start(u1);
    expect(settings(u1)).toEqual(claimed);
    // The originals are on disk before the netdev changes.
    expect(journaled()).toEqual([expect.objectContaining({ ifname: u1, forwarding: '1' })]);
    expect(journaled()[0]!.rxAgg).not.toBe(0);
    await end(a.d, 'SIGKILL');
    expect(settings(u1)).toEqual(claimed); // nobody gave it back

    const b = await start(u1);
    expect(b.log()).toMatch(new RegExp(`uplink ${u1}: held since \\S+ by a run that did not give it back`));
    expect(settings(u1)).toEqual(claimed);
    // status says what the data plane holds and what it will give back: the first run's.
    const st = JSON.parse(vfplane(['dataplane', 'status', '--socket', socket, '--json']).stdout) as { held: { netdev: string; givesBack: string[] }[] };
    expect(st.held).toEqual([expect.objectContaining({ netdev: u1, givesBack: ['IPv4 forwarding 1', 'IPv6 on', 'rx-gro on', 'link down'] })]);
    expect(vfplane(['dataplane', 'status', '--socket', socket]).stdout).toContain(`holds ${u1} (in /run/netns/${n.name}): gives back IPv4 forwarding 1, IPv6 on, rx-gro on, link down when released`);
    await end(b.d, 'SIGTERM');
    expect(settings(u1)).toEqual(host);
    expect(journaled()).toEqual([]);
    // The stop says so, as status said it would.
    expect(b.log()).toContain(`gave ${u1} (in /run/netns/${n.name}) back IPv4 forwarding 1, IPv6 on, rx-gro on, link down`);
  });

  it('a restart on another uplink gives the killed run\'s uplink back at once', async () => {
    const a = await start(u1);
    await end(a.d, 'SIGKILL');
    expect(settings(u1)).toEqual(claimed);

    const b = await start(u2);
    expect(settings(u1)).toEqual(host);
    expect(b.log()).toContain(`gave ${u1} in /run/netns/${n.name} back the settings it had before`);
    expect(settings(u2)).toEqual(claimed);
    expect(journaled().map((r) => r.ifname)).toEqual([u2]);
    await end(b.d, 'SIGTERM');
    expect(settings(u2)).toEqual(host);
  });

  it('forgets a killed run\'s netdev that was deleted and made again (another netdev, fresh settings)', async () => {
    const a = await start(u1);
    await end(a.d, 'SIGKILL');
    n.ip(['link', 'del', u1]);
    vethPair(n, u1, m, p1);
    n.sysctl(`net.ipv4.conf.${u1}.forwarding`, '1');
    // doctor makes the start's test too: the journal's u1 is another netdev now, with
    // nothing of the killed run's to give back (as after a reboot).
    const doctor = JSON.parse(vfplane(['doctor', '--json', '--state-dir', stateDir]).stdout) as { checks: { name: string; status: string; detail: string }[] };
    expect(doctor.checks.find((c) => c.name === 'netdevs of kill')).toMatchObject({
      status: 'ok', detail: expect.stringContaining(`names ${u1} (in /run/netns/${n.name}), which no longer exist or are other netdevs now`),
    });
    // The new u1 has GRO off (a veth's default): a restart must record that, not the old
    // netdev's "on".
    const b = await start(u1);
    expect(b.log()).not.toContain('held since');
    await end(b.d, 'SIGTERM');
    expect(settings(u1)).toEqual({ gro: 'off', forwarding: '1', disableIpv6: '0', up: false });
    expect(journaled()).toEqual([]);
    n.exec('ethtool', ['-K', u1, 'gro', 'on']); // as the tests below expect it
  });

  it('refuses a second daemon for the same node before it touches a netdev', async () => {
    const a = await start(u1);
    try {
      const config = join(dir, 'second.json');
      writeFileSync(config, JSON.stringify({ node: 'kill', backend: 'afpacket', uplink: { ifname: u2, netns: `/run/netns/${n.name}`, vtep: '192.0.2.1' }, stateDir, socket: join(dir, 'second.sock') }));
      const r = vfplane(['dataplane', 'run', '--config', config], { timeoutMs: 20_000 });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`a data plane for node kill already runs with the state directory ${stateDir} (pid ${a.d.pid})`);
      expect(settings(u2)).toEqual(host);
      expect(settings(u1)).toEqual(claimed); // the first one's, not given back under it
      expect(journaled().map((x) => x.ifname)).toEqual([u1]);
    } finally {
      await end(a.d, 'SIGTERM');
    }
    expect(settings(u1)).toEqual(host);
  });

  it('unclaim gives a killed run\'s netdevs back, refuses while it runs, and doctor points to it', async () => {
    const a = await start(u1);
    let r = vfplane(['dataplane', 'unclaim', '--state-dir', stateDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the data plane for node kill runs (pid ${a.d.pid})`);
    expect(settings(u1)).toEqual(claimed);
    await end(a.d, 'SIGKILL');

    const doctor = JSON.parse(vfplane(['doctor', '--json', '--state-dir', stateDir]).stdout) as { checks: { name: string; status: string; detail: string; fix?: string }[] };
    const held = doctor.checks.find((c) => c.name === 'netdevs of kill');
    expect(held?.status).toBe('warn');
    expect(held?.detail).toContain(`still holds ${u1} (in /run/netns/${n.name})`);
    expect(held?.fix).toContain(`vfplane dataplane unclaim --node kill --state-dir ${stateDir}\``); // as it must be typed

    expect(vfplane(['dataplane', 'unclaim', '--node', '../kill', '--state-dir', stateDir]).code).toBe(2);
    r = vfplane(['dataplane', 'unclaim', '--node', 'kill', '--state-dir', stateDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`node kill: gave ${u1} in /run/netns/${n.name} back the settings it had before`);
    expect(r.stdout).not.toContain('not used by this one'); // no data plane runs: there is no "this one"
    expect(settings(u1)).toEqual(host);
    expect(existsSync(journal)).toBe(false);
    r = vfplane(['dataplane', 'unclaim', '--state-dir', stateDir]);
    expect(r.stdout).toContain('nothing held by a stopped data plane');
    expect(JSON.parse(vfplane(['doctor', '--json', '--state-dir', stateDir]).stdout).checks.some((c: { name: string }) => c.name === 'netdevs of kill')).toBe(false);
  });

  it('unclaim also detaches the XDP program a killed AF_XDP run left on its uplink', async () => {
    const xdp = (dev: string) => /prog\/xdp/.test(n.ip(['-d', 'link', 'show', dev]));
    const a = await start(u1, 'afxdp');
    expect(xdp(u1)).toBe(true);
    await end(a.d, 'SIGKILL');
    expect(xdp(u1)).toBe(true); // attached by netlink: it outlives the process
    const r = vfplane(['dataplane', 'unclaim', '--state-dir', stateDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`${u1} in /run/netns/${n.name}: detached a stale \\S+ \\(id \\d+, native mode\\)`));
    expect(xdp(u1)).toBe(false);
    expect(settings(u1)).toEqual(host);
  });

  it('a SIGTERM while the daemon starts stops it once started, giving everything back', async () => {
    const config = join(dir, 'early.json');
    writeFileSync(config, JSON.stringify({ node: 'kill', backend: 'afpacket', uplink: { ifname: u1, netns: `/run/netns/${n.name}`, vtep: '192.0.2.1' }, stateDir, socket }));
    const d = spawn(process.execPath, [BIN, 'dataplane', 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.push(d);
    let log = '';
    d.stderr!.on('data', (x) => { log += x; });
    const exited = new Promise<number | null>((r) => d.on('close', (code) => r(code)));
    // The uplink is claimed (its GRO switched off) before the control socket exists.
    for (let i = 0; i < 400 && !log.includes(`uplink ${u1}: switched`) && d.exitCode === null; i++) await new Promise((r) => setTimeout(r, 10));
    expect(log).toContain(`uplink ${u1}: switched`);
    d.kill('SIGTERM');
    expect(await exited, log).toBe(0);
    expect(settings(u1)).toEqual(host);
    expect(journaled()).toEqual([]);
  });

  it('a claim that fails half-way gives back what it changed and leaves nothing in the journal', async () => {
    const { ClaimJournal, claimNetdev } = await import('../../src/dataplane/claims.js');
    const dir2 = join(dir, 'half');
    const j = new ClaimJournal(dir2, 'half');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir2, { recursive: true });
    // A name the kernel does not know: the sysctl write fails after the journal has the
    // record (the originals are always written first).
    await expect(claimNetdev(j, 'vfnosuchdev0', 999_999, `/run/netns/${n.name}`)).rejects.toThrow(/vfnosuchdev0/);
    expect(j.list()).toEqual([]);
    expect(existsSync(join(dir2, 'claims-half.json'))).toBe(false);
  });

  it('a claim is in the journal the moment it is asked for, before anything changes (a kill then leaves it named)', async () => {
    const { ClaimJournal, claimNetdev, releaseNetdev } = await import('../../src/dataplane/claims.js');
    const { mkdirSync } = await import('node:fs');
    const dir3 = join(dir, 'early');
    mkdirSync(dir3, { recursive: true });
    const j = new ClaimJournal(dir3, 'early');
    const x = ifname('ce'), y = ifname('cf');
    vethPair(n, x, m, y);
    try {
      const idx = Number(n.ip(['-o', 'link', 'show', x]).split(':')[0]);
      // The data plane goes on to raise the MTU and open a port once it has asked: the
      // file must name the netdev, and the MTU to give back, before the claim's first pause.
      const claiming = claimNetdev(j, x, idx, `/run/netns/${n.name}`, undefined, { wasUp: false, wasMtu: 1500 });
      const onDisk = JSON.parse(readFileSync(join(dir3, 'claims-early.json'), 'utf8')) as { ifname: string; mtu?: number }[];
      expect(onDisk).toEqual([expect.objectContaining({ ifname: x, mtu: 1500 })]);
      const c = await claiming;
      await releaseNetdev(j, c);
      expect(existsSync(join(dir3, 'claims-early.json'))).toBe(false);
    } finally {
      n.ip(['link', 'del', x]);
    }
  });

  it('a daemon starting while doctor or unclaim looks (holding the lock a moment) waits for it', async () => {
    const { tryNodeLock } = await import('../../src/dataplane/claims.js');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(stateDir, { recursive: true });
    const held = tryNodeLock(stateDir, 'kill');
    if ('heldBy' in held) throw new Error('the lock is taken');
    const t = setTimeout(() => held.release(), 500);
    try {
      const a = await start(u1);
      expect(a.log()).not.toContain('already runs');
      await end(a.d, 'SIGTERM');
    } finally {
      clearTimeout(t);
      held.release();
    }
    expect(settings(u1)).toEqual(host);
  });

  it('an unreadable journal is named: the daemon warns, keeps it aside and starts afresh, unclaim refuses and changes nothing', async () => {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(journal, '{ not json');
    let r = vfplane(['dataplane', 'unclaim', '--state-dir', stateDir, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot read the claims journal ${journal}`);
    expect(readFileSync(journal, 'utf8')).toBe('{ not json');
    const a = await start(u1);
    expect(a.log()).toContain(`ignoring the unreadable claims journal ${journal}`);
    // The only record of what its netdevs had: copied aside before it is written over.
    const aside = new RegExp(`the file as it was is kept as (${journal.replace(/[.]/g, '\\.')}\\.unrestored-\\S+) \\(`).exec(a.log())?.[1];
    expect(aside).toBeTruthy();
    expect(readFileSync(aside!, 'utf8')).toBe('{ not json');
    rmSync(aside!);
    expect(journaled().map((x) => x.ifname)).toEqual([u1]); // written afresh
    await end(a.d, 'SIGTERM');
    expect(settings(u1)).toEqual(host);
    expect(existsSync(journal)).toBe(false);
    r = vfplane(['dataplane', 'unclaim', '--state-dir', stateDir, '--json']);
    expect(JSON.parse(r.stdout)).toEqual({ stateDir, nodes: [] });
  });

  it('an attached representor that was down goes down again at detach; one that was up stays up', async () => {
    const a = await start(u1);
    const rep = ifname('kr'), repp = ifname('ks');
    vethPair(n, rep, m, repp); // down, as a VF's representor is before its pod comes
    const cli = (...args: string[]) => {
      const r = vfplane(['dataplane', ...args, '--socket', socket]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    };
    try {
      cli('attach', '--representor', rep, '--vni', '100', '--mac', '02:00:00:00:0b:01', '--netns', `/run/netns/${n.name}`);
      expect(settings(rep).up).toBe(true);
      const st = JSON.parse(vfplane(['dataplane', 'status', '--socket', socket, '--json']).stdout) as { held: { netdev: string; givesBack: string[] }[] };
      expect(st.held.find((h) => h.netdev === rep)?.givesBack).toContain('link down');
      cli('detach', '--representor', rep);
      expect(settings(rep).up).toBe(false);
      // Up before the attach: left up.
      n.ip(['link', 'set', rep, 'up']);
      cli('attach', '--representor', rep, '--vni', '100', '--mac', '02:00:00:00:0b:01', '--netns', `/run/netns/${n.name}`);
      cli('detach', '--representor', rep);
      expect(settings(rep).up).toBe(true);
    } finally {
      await end(a.d, 'SIGTERM');
      n.ip(['link', 'del', rep]);
    }
    expect(settings(u1)).toEqual(host);
  });

  it('a journal it cannot write stops the claim before any change, naming the file', async () => {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(`${journal}.tmp`, { recursive: true }); // the rename's source cannot be written
    try {
      const config = join(dir, 'nowrite.json');
      writeFileSync(config, JSON.stringify({ node: 'kill', backend: 'afpacket', uplink: { ifname: u1, netns: `/run/netns/${n.name}`, vtep: '192.0.2.1' }, stateDir, socket }));
      const r = vfplane(['dataplane', 'run', '--config', config], { timeoutMs: 20_000 });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot write the claims journal ${journal} (EISDIR)`);
      expect(r.stderr).toContain('make the state directory writable');
      expect(settings(u1)).toEqual(host);
    } finally {
      rmSync(`${journal}.tmp`, { recursive: true, force: true });
    }
  });
});

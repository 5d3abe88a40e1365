// A netdev going down under a port (a VF's link state toggled, a representor deleted)
// sets ENETDOWN on the sockets bound to it. poll() then returns at once for as long as
// that error is pending, so a worker that never read it spun a whole core from then on
// while every counter looked healthy. A real daemon, real veths, the kernel's CPU time.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDataplane, vfplane } from '../helpers/cli.js';
import { ifname, Netns, vethPair } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';
import { request } from '../../src/dataplane/control.js';

describePrivileged('a port whose netdev goes down', { netns: true }, () => {
  let n: Netns, m: Netns;
  const up = ifname('eu'), upPeer = ifname('ep');
  const reps = [ifname('er0'), ifname('er1')];
  const dir = mkdtempSync(join(tmpdir(), 'vfplane-porterr-'));
  let d: ChildProcess | null = null;

  beforeAll(() => {
    n = Netns.create('pen');
    m = Netns.create('pem');
    vethPair(n, up, m, upPeer);
    for (const r of reps) spawnSync('ip', ['link', 'add', r, 'type', 'veth', 'peer', 'name', `${r}p`, 'netns', m.name]);
  });
  afterAll(() => {
    d?.kill('SIGKILL');
    for (const r of reps) spawnSync('ip', ['link', 'del', r]);
    n?.destroy();
    m?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A data plane (node NAME) on uplink U in n, its config and state in `dir`; tracked
   *  in `d` so that afterAll kills it should a test fail half-way. */
  const start = async (name: string, u = up, vtep = '192.0.2.1') => {
    const socket = join(dir, `${name}.sock`);
    const config = join(dir, `${name}.json`);
    writeFileSync(config, JSON.stringify({ node: name, backend: 'afpacket', uplink: { ifname: u, netns: `/run/netns/${n.name}`, vtep }, stateDir: join(dir, name), socket }));
    const dp = await startDataplane(config);
    d = dp.proc;
    return { ...dp, socket };
  };

  /** CPU seconds each thread other than the main (JS) one used: utime + stime, ticks of 10 ms. */
  const threadCpu = (pid: number) => new Map(readdirSync(`/proc/${pid}/task`).filter((t) => t !== String(pid)).map((t) => {
    try {
      const f = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return [t, (Number(f[11]) + Number(f[12])) / 100] as const;
    } catch {
      return [t, 0] as const; // a thread that just ended
    }
  }));
  /** The busiest such thread's share of a CPU over `ms`: a spinning worker is ~1 (less
   *  when the machine is loaded), a sleeping one a few hundredths. */
  const busiest = async (pid: number, ms: number) => {
    const a = threadCpu(pid);
    await new Promise((r) => setTimeout(r, ms));
    let max = 0;
    for (const [t, c] of threadCpu(pid)) max = Math.max(max, (c - (a.get(t) ?? c)) / (ms / 1000));
    return max;
  };

  it('the worker reads the error, counts it on the port and goes back to sleeping (down/up, and deleted)', async () => {
    const dp = await start('porterr');
    const socket = dp.socket;
    try {
      for (const [i, r] of reps.entries()) await request(socket, { op: 'attach', representor: r, vni: 100, mac: `02:00:00:00:0b:0${i + 1}` });
      const idle = await busiest(dp.proc.pid!, 1000);
      spawnSync('ip', ['link', 'set', reps[0]!, 'down']);
      spawnSync('ip', ['link', 'set', reps[0]!, 'up']);
      spawnSync('ip', ['link', 'del', reps[1]!]);
      await new Promise((r) => setTimeout(r, 300));
      const after = await busiest(dp.proc.pid!, 1500);
      expect(after, `busiest worker thread after the netdevs went down: ${after.toFixed(2)} of a CPU (before: ${idle.toFixed(2)})`).toBeLessThan(0.2);
      const st = (await request(socket, { op: 'stats' }) as { counters: { ports: { name: string; errors: number; rxPkts: number }[] } }).counters;
      for (const r of reps) expect(st.ports.find((p) => p.name === r)?.errors, r).toBeGreaterThanOrEqual(1);
      // The port that came back up still carries frames: the kernel re-binds it on UP.
      const before = st.ports.find((p) => p.name === reps[0])!;
      spawnSync('ip', ['netns', 'exec', m.name, 'ip', 'link', 'set', `${reps[0]}p`, 'up']);
      spawnSync('ip', ['link', 'set', reps[0]!, 'up']);
      spawnSync('ip', ['netns', 'exec', m.name, 'ping', '-c', '3', '-i', '0.2', '-W', '1', '-I', `${reps[0]}p`, '-b', '255.255.255.255'], { stdio: 'ignore' });
      const st2 = (await request(socket, { op: 'stats' }) as { counters: { ports: { name: string; rxPkts: number }[] } }).counters;
      expect(st2.ports.find((p) => p.name === reps[0])!.rxPkts).toBeGreaterThan(before.rxPkts);
    } finally {
      await dp.stop();
      d = null;
    }
  }, 60000);

  // helper-109: a representor set down after the attach cut its pod off while status's
  // table said "ok" and nothing warned; CNI CHECK passed.
  it('a representor set down after the attach: status says down, warns with the command that brings it up', async () => {
    const r = ifname('ed');
    spawnSync('ip', ['link', 'add', r, 'type', 'veth', 'peer', 'name', `${r}p`, 'netns', m.name]);
    spawnSync('ip', ['netns', 'exec', m.name, 'ip', 'link', 'set', `${r}p`, 'up']);
    const dp = await start('repdown');
    const state = async () => ((await request(dp.socket, { op: 'status' })) as { attachments: { representor: string; representorState: string }[] }).attachments.find((a) => a.representor === r)?.representorState;
    try {
      await request(dp.socket, { op: 'attach', representor: r, vni: 100, mac: '02:00:00:00:0d:01' });
      expect(await state()).toBe('ok');
      spawnSync('ip', ['link', 'set', r, 'down']);
      expect(await state()).toBe('down');
      const out = vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout;
      expect(out).toContain(`warning: representor ${r} is down (set down since it was attached): nothing passes between its pod and the overlay. Bring it up: \`ip link set ${r} up\``);
      spawnSync('ip', ['link', 'set', r, 'up']);
      expect(await state()).toBe('ok');
      // Up, with the pod's side down: no carrier.
      spawnSync('ip', ['netns', 'exec', m.name, 'ip', 'link', 'set', `${r}p`, 'down']);
      expect(await state()).toBe('no-carrier');
    } finally {
      await dp.stop();
      d = null;
      spawnSync('ip', ['link', 'del', r]);
    }
  }, 30000);

  it('a control socket file removed under the data plane is made again, and CLI calls reach it', async () => {
    const dp = await start('sockrm');
    const socket = dp.socket;
    try {
      const held = createConnection(socket); // a client connected before: it keeps its connection
      await new Promise((r) => held.once('connect', r));
      rmSync(socket);
      expect(vfplane(['dataplane', 'status', '--socket', socket]).code).toBe(1); // gone: nobody can connect
      let code = 1;
      for (let i = 0; i < 40 && code !== 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        code = existsSync(socket) ? vfplane(['dataplane', 'status', '--socket', socket]).code : 1;
      }
      expect(code, dp.log()).toBe(0);
      // Said once it listens again: a CLI call may get in before the line reaches the log.
      const said = `control socket ${socket} was removed while the data plane ran; listening on it again`;
      for (let i = 0; i < 30 && !dp.log().includes(said); i++) await new Promise((r) => setTimeout(r, 100));
      expect(dp.log()).toContain(said);
      expect(statSync(socket).mode & 0o777).toBe(0o600);
      held.write('{"op":"status"}\n');
      const line = await new Promise<string>((r) => held.once('data', (b) => r(String(b))));
      expect(JSON.parse(line).ok).toBe(true);
      held.destroy();
      let out = '';
      dp.proc.stdout!.on('data', (d: string) => (out += d));
      await dp.stop();
      expect(JSON.parse(out.trimEnd().split('\n').at(-1)!)).toMatchObject({ stopped: true, reason: 'SIGTERM', exitCode: 0 });
    } finally {
      await dp.stop();
      d = null;
    }
  }, 30000);

  it('an uplink deleted under the data plane stops it with exit 1 and says why, so that its supervisor restarts it', async () => {
    const u = ifname('gu'), uPeer = ifname('gp');
    vethPair(n, u, m, uPeer);
    // What the claim will give back at the end: forwarding was on.
    n.sysctl(`net.ipv4.conf.${u}.forwarding`, '1');
    const dp = await start('uplinkgone', u, '192.0.2.5');
    const exited = new Promise<number | null>((r) => dp.proc.once('exit', (code) => r(code)));
    let out = '';
    dp.proc.stdout!.on('data', (d: string) => (out += d));
    await new Promise((r) => setTimeout(r, 500));
    expect(dp.proc.exitCode).toBeNull(); // it runs while the uplink is there
    // Deleted and made again at once under its name: another netdev, whose settings the
    // stopping data plane must leave alone.
    n.ip(['link', 'del', u]);
    vethPair(n, u, m, uPeer);
    const fwd = () => n.exec('cat', [`/proc/sys/net/ipv4/conf/${u}/forwarding`]).trim();
    expect(fwd()).toBe('0');
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 10000))]);
    expect(code, dp.log()).toBe(1);
    expect(dp.log()).toMatch(new RegExp(`uplink ${u} in /run/netns/${n.name} is another netdev now \\(ifindex \\d+, was \\d+\\): nothing reaches the overlay through it; stopping \\(exit 1\\)`));
    // --json's last line says why, and the exit status, as a supervisor's line reader takes it.
    if (!dp.proc.stdout!.readableEnded) await new Promise((r) => dp.proc.stdout!.once('end', r));
    expect(JSON.parse(out.trimEnd().split('\n').at(-1)!)).toMatchObject({ stopped: true, reason: 'uplink lost', exitCode: 1 });
    expect(fwd()).toBe('0');
    d = null;
  }, 30000);
});

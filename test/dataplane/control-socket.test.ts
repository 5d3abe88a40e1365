// The control socket's edges, against a real daemon on a veth uplink: what its path may
// name, and what a client that misbehaves (pipelines without reading, holds connections
// idle, opens too many) may cost the daemon and the other clients.
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startDataplane, vfplane, vfplaneAsync } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { request } from '../../src/dataplane/control.js';
import { Netns, ifname, vethIn, scratchDir } from '../helpers/netns.js';

describePrivileged('the data plane control socket', { netns: true, commands: ['python3'] }, () => {
  let ns: Netns;
  const up = ifname('u'), peer = ifname('p');
  const tmp = scratchDir('ctl');
  const dir = tmp.dir;

  beforeAll(() => {
    ns = Netns.create('ctl');
    vethIn(ns, up, peer);
  });
  afterAll(() => {
    ns?.destroy();
    tmp.remove();
  });

  const config = (name: string, o: Record<string, unknown> = {}) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify({ node: name, backend: 'afpacket', uplink: { ifname: up, netns: ns.path, vtep: '192.0.2.1' }, stateDir: join(dir, 'state'), ...o }));
    return file;
  };

  /** The daemon's resident memory now, in bytes. */
  const rss = (pid: number) => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
  const MiB = 1 << 20;

  describe('clients', () => {
    // Before: the daemon read every request at once and queued every reply in memory
    // (111 MB → 1 GB of RSS with 300k stats requests on one connection, against the
    // DaemonSet's 1 GiB limit).
    it('a client that pipelines requests and never reads its replies costs the daemon little memory, and others are still answered', async () => {
      const socket = join(dir, 'pipe.sock');
      const d = await startDataplane(config('pipe', { socket }));
      const c = createConnection(socket);
      try {
        await once(c, 'connect');
        c.pause(); // never reads
        const pid = d.proc.pid!;
        const before = rss(pid);
        const chunk = '{"op":"stats"}\n'.repeat(1000);
        let sent = 0;
        let peak = before;
        const sample = setInterval(() => { peak = Math.max(peak, rss(pid)); }, 50);
        // As fast as the daemon takes them, for 20 s (or until it has grown too much). An
        // unbounded daemon answers some 10k stats a second, with 1.3 KiB of reply each
        // kept: +100 MiB in about 10 s.
        const deadline = Date.now() + 20_000;
        while (sent < 300_000 && peak - before < 120 * MiB && Date.now() < deadline) {
          const more = c.write(chunk);
          sent += 1000;
          // No drain for 3 s: the daemon has stopped reading (before, it never did).
          if (!more && !(await Promise.race([once(c, 'drain').then(() => true), sleep(Math.min(3000, deadline - Date.now())).then(() => false)]))) break;
        }
        await sleep(1000);
        clearInterval(sample);
        const st = await request(socket, { op: 'status' }, 5000);
        expect(st.uplink).toBeTruthy();
        expect((peak - before) / MiB, `${sent} requests sent; RSS ${(before / MiB).toFixed(0)} → ${(peak / MiB).toFixed(0)} MiB`).toBeLessThan(100);
        expect(sent).toBeLessThan(50_000); // it stopped reading
        // The client is only slowed down: what it reads now are its replies, in order.
        c.setEncoding('utf8');
        c.resume();
        let got = '';
        while (!got.includes('\n')) got += (await once(c, 'data'))[0] as string;
        expect(JSON.parse(got.slice(0, got.indexOf('\n')))).toMatchObject({ ok: true, counters: expect.anything() });
      } finally {
        c.destroy();
        await d.stop();
      }
    });
  });

  describe('connections', () => {
    const IDLE_MS = 3000; // 30 s in a daemon that is not told otherwise
    let socket: string;
    let d: Awaited<ReturnType<typeof startDataplane>>;
    beforeAll(async () => {
      socket = join(dir, 'conns.sock');
      process.env.VFPLANE_CONTROL_IDLE_MS = String(IDLE_MS); // read by the daemon at start
      try {
        d = await startDataplane(config('conns', { socket }));
      } finally {
        delete process.env.VFPLANE_CONTROL_IDLE_MS;
      }
    });
    afterAll(async () => {
      await d?.stop();
    });

    /** A connection that sends `send` and then nothing; `line` is the first line it
     *  receives, `closed` when the daemon closes it (with what it received). */
    async function idleClient(send = ''): Promise<{ c: ReturnType<typeof createConnection>; closed: Promise<string>; got: () => string }> {
      const c = createConnection(socket);
      c.setEncoding('utf8');
      let got = '';
      c.on('data', (x: string) => { got += x; });
      const closed = new Promise<string>((r) => c.on('close', () => r(got)));
      try {
        await once(c, 'connect');
      } catch (e) {
        // A full accept queue (the daemon busy under a loaded machine): never connected.
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        await new Promise((r) => setTimeout(r, 20));
        return idleClient(send);
      }
      c.on('error', () => {});
      if (send) c.write(send);
      return { c, closed, got: () => got };
    }

    it('closes a connection that sends nothing, or half a line, for the idle time, saying why', async () => {
      const t0 = Date.now();
      const quiet = await idleClient();
      const half = await idleClient('{"op":"sta');
      const [q, h] = await Promise.all([quiet.closed, half.closed]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(IDLE_MS - 100);
      expect(Date.now() - t0).toBeLessThan(IDLE_MS + 2000);
      expect(JSON.parse(q)).toEqual({ ok: false, error: { kind: 'invalid', message: 'no request for 3 s; the idle connection is closed' } });
      expect(JSON.parse(h).error.message).toBe('an unfinished request (10 bytes without a newline) for 3 s; the connection is closed: end each request with "\\n"');
      // A client that keeps asking is not idle.
      const busy = await idleClient();
      for (let i = 0; i < 3; i++) {
        busy.c.write('{"op":"status"}\n');
        await sleep(IDLE_MS / 2);
      }
      expect(busy.c.destroyed).toBe(false);
      expect(busy.got().trim().split('\n')).toHaveLength(3);
      busy.c.destroy();
    }, 30_000);

    it('answers a request nested thousands deep with an invalid-request error, not a stack overflow, and goes on answering', async () => {
      const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
      for (const line of [`{"op":"attach","vni":${deep(20000)}}`, `{"op":"status","id":${deep(20000)}}`, `{"op":"fdb-add","x":{"a":${deep(5000)}}}`]) {
        const x = await idleClient(`${line}\n`);
        for (let i = 0; i < 200 && !x.got().includes('\n'); i++) await sleep(10);
        x.c.destroy();
        expect(JSON.parse(x.got().split('\n')[0]!)).toEqual({ ok: false, error: { kind: 'invalid', message: 'the request nests deeper than 32 levels; no operation takes that' } });
      }
      const st = vfplane(['dataplane', 'status', '--socket', socket, '--json']);
      expect(st.code, st.stderr).toBe(0);
    });

    it('names a bad request as a request (not "config"), and its field when one is wrong', async () => {
      const err = async (req: Record<string, unknown>) => (await request(socket, req, 5000).then(() => null, (e: Error) => e))?.message;
      expect(await err({ op: 'detach' })).toMatch(/^detach: give representor or pci/);
      expect(await err({ op: 'fdb-add', vni: 100, mac: 'zz', vtep: '192.0.2.2' })).toMatch(/^fdb-add: mac: /);
    });

    it('turns connections past 256 away with an error line, the CLI says why, and answers again once the idle ones are closed', async () => {
      // 1000 clients that connect and never send: the first 256 are held (until idle).
      const clients = await Promise.all(Array.from({ length: 1000 }, () => idleClient()));
      const t0 = Date.now();
      const refused = await Promise.all(clients.slice(256).map((x) => x.closed));
      expect(Date.now() - t0).toBeLessThan(IDLE_MS - 500); // at once, not for being idle
      expect(JSON.parse(refused[0]!).error.message).toContain(`the data plane at ${socket} has 256 control connections open, its limit; try again`);
      expect(clients.slice(0, 256).every((x) => !x.c.destroyed)).toBe(true);
      // The held ones send empty lines (skipped, but activity) while the CLI asks, so
      // that none reaches its idle time however slowly the CLI starts on a loaded host.
      const keep = setInterval(() => { for (const x of clients.slice(0, 256)) x.c.write('\n'); }, 500);
      let r: Awaited<ReturnType<typeof vfplaneAsync>>;
      try {
        r = await vfplaneAsync(['dataplane', 'status', '--socket', socket]);
      } finally {
        clearInterval(keep);
      }
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('has 256 control connections open, its limit');
      expect(r.stderr).not.toContain('EPIPE');
      await Promise.all(clients.slice(0, 256).map((x) => x.closed));
      const st = vfplane(['dataplane', 'status', '--socket', socket, '--json']);
      expect(st.code, st.stderr).toBe(0);
    }, 30_000);
  });

  it('a client that finds the accept queue full (EAGAIN) tries again within its timeout', async () => {
    const { spawn } = await import('node:child_process');
    const socket = join(dir, 'busy.sock');
    // A server with a backlog of 1 whose event loop is blocked for 800 ms after listening:
    // the kernel queues two connections, and refuses the next ones with EAGAIN.
    const src = `const net = require('net');
      const s = net.createServer((c) => c.on('data', () => c.end('{"ok":true,"busy":1}\\n')));
      s.listen({ path: ${JSON.stringify(socket)}, backlog: 1 }, () => {
        process.stdout.write('ready\\n');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 800);
      });`;
    const child = spawn(process.execPath, ['-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((r) => child.stdout.once('data', () => r()));
      const fillers = Array.from({ length: 4 }, () => createConnection(socket).on('error', () => {}));
      await new Promise((r) => setTimeout(r, 50));
      const t0 = Date.now();
      const reply = await request(socket, { op: 'status' }, 5000);
      expect(reply).toMatchObject({ ok: true, busy: 1 });
      expect(Date.now() - t0).toBeGreaterThan(300); // it waited for the queue, not failed at once
      for (const f of fillers) f.destroy();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a client whose daemon closes the connection before answering says so, not "write EPIPE"', async () => {
    const socket = join(dir, 'rude.sock');
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(socket, r));
    try {
      for (let i = 0; i < 5; i++) {
        const e = await request(socket, { op: 'status' }, 5000).then(() => null, (x: Error) => x);
        expect(e?.message).toMatch(new RegExp(`^the data plane at ${socket} closed the connection without answering status \\((EOF|EPIPE|ECONNRESET)\\): it is stopping, or it turned the connection away`));
      }
    } finally {
      server.close();
    }
  });

  describe('its path', () => {
    it('refuses a socket path that names a regular file, naming it and the fix, and leaves the file and the uplink as they were', () => {
      const victim = join(dir, 'alloc.db');
      writeFileSync(victim, 'the allocation store\n');
      for (const args of [['--config', config('file', { socket: victim })], ['--config', config('flag'), '--socket', victim]]) {
        const r = vfplane(['dataplane', 'run', ...args], { timeoutMs: 20_000 });
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toContain(`the control socket path ${victim} is a regular file (21 bytes), which the data plane will not replace`);
        expect(r.stderr).toContain('socket` in the config (or --socket)');
        // Refused before the uplink was claimed and its port opened, not once both were.
        expect(r.stderr).not.toContain('offload tier');
        expect(readFileSync(victim, 'utf8')).toBe('the allocation store\n');
        expect(ns.readSysctl(`net.ipv6.conf.${up}.disable_ipv6`)).toBe('0');
      }
    });

    // /proc takes no new files, root or not: the path is tried before anything is claimed.
    it('refuses a socket path in a directory that takes no files before claiming the uplink, naming the setting', () => {
      const r = vfplane(['dataplane', 'run', '--config', config('proc'), '--socket', '/proc/vfplane-test.sock'], { timeoutMs: 20_000 });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain('cannot listen on the control socket /proc/vfplane-test.sock: /proc does not take new files (EACCES); give `socket` in the config (or --socket) a path in a directory the data plane can create files in');
      expect(r.stderr).not.toContain('offload tier');
      expect(ns.readSysctl(`net.ipv6.conf.${up}.disable_ipv6`)).toBe('0');
    });

    it('a config without stateDir takes VFPLANE_STATE_DIR, where the clients look for its socket; a relative one is refused', async () => {
      const file = join(dir, 'envstate.json');
      writeFileSync(file, JSON.stringify({ node: 'envstate', backend: 'afpacket', uplink: { ifname: up, netns: ns.path, vtep: '192.0.2.1' } }));
      const stateDir = join(dir, 'from-env');
      const bad = vfplane(['dataplane', 'run', '--config', file], { env: { VFPLANE_STATE_DIR: 'relative/dir' }, timeoutMs: 20_000 });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('VFPLANE_STATE_DIR="relative/dir" is not an absolute path; set it to one, or unset it');
      process.env.VFPLANE_STATE_DIR = stateDir;
      let d: Awaited<ReturnType<typeof startDataplane>>;
      try {
        d = await startDataplane(file);
      } finally {
        delete process.env.VFPLANE_STATE_DIR;
      }
      try {
        expect(statSync(join(stateDir, 'dataplane.sock')).isSocket()).toBe(true);
        const st = vfplane(['dataplane', 'status', '--json'], { env: { VFPLANE_STATE_DIR: stateDir } });
        expect(st.code, st.stderr).toBe(0);
        expect(JSON.parse(st.stdout).node).toBe('envstate');
        // The clients take the environment as the daemon does: a relative path is refused
        // (relative to which directory?), not asked as a socket of the caller's cwd.
        for (const [name, value] of [['VFPLANE_STATE_DIR', 'relative/dir'], ['VFPLANE_DATAPLANE_SOCKET', 'dp.sock']] as const) {
          const rel = vfplane(['dataplane', 'status', '--json'], { env: { [name]: value } });
          expect(rel.code, rel.stderr).toBe(2);
          expect(rel.stderr).toContain(`${name}="${value}" is not an absolute path; set it to one, or unset it`);
        }
      } finally {
        await d.stop();
      }
    });

    // Before: the path was tried by listening on it and closing, before the ports were
    // opened: a client waiting for the socket (the DaemonSet script's test, under load)
    // found it, and then found it gone (ENOENT) while the data plane went on starting.
    it('appears once, when the data plane listens: the path is tried under another name beside it', async () => {
      const sub = join(dir, 'once');
      mkdirSync(sub);
      const socket = join(sub, 'dp.sock');
      const renames: string[] = [];
      const w = watch(sub, (ev, name) => { if (ev === 'rename') renames.push(String(name)); });
      const d = await startDataplane(config('once', { socket }));
      try {
        await sleep(200); // the watcher's events delivered
        expect(renames.filter((n) => n === 'dp.sock')).toEqual(['dp.sock']); // made once, never removed
        // The trial socket was made in the same directory (what it tries), and is gone.
        expect(renames.filter((n) => n !== 'dp.sock').length).toBeGreaterThan(0);
        expect(readdirSync(sub)).toEqual(['dp.sock']);
      } finally {
        w.close();
        await d.stop();
      }
    });

    // helper-93: a one-character name in a directory holding the few hidden names of its
    // length was tried at the path itself again.
    it('appears once also with a one-character name beside many hidden files', async () => {
      const sub = join(dir, 'dots');
      mkdirSync(sub);
      for (const c of '0123456789abcdef') writeFileSync(join(sub, `.${c}`), '');
      const renames: string[] = [];
      const w = watch(sub, (ev, name) => { if (ev === 'rename') renames.push(String(name)); });
      const d = await startDataplane(config('dots', { socket: join(sub, 's') }));
      try {
        await sleep(200);
        expect(renames.filter((n) => n === 's')).toEqual(['s']);
      } finally {
        w.close();
        await d.stop();
      }
    });

    // helper-93: with a stale socket there the path was not tried; the uplink was claimed
    // and given back before a bare "EROFS: read-only file system, unlink".
    it('a stale socket in a directory that takes no changes is refused before the uplink is claimed', () => {
      const ro = join(dir, 'ro');
      mkdirSync(ro);
      execFileSync('/usr/bin/python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', join(ro, 'dp.sock')]);
      execFileSync('mount', ['--bind', ro, ro]);
      try {
        execFileSync('mount', ['-o', 'remount,ro,bind', ro]);
        const r = vfplane(['dataplane', 'run', '--config', config('ro', { socket: join(ro, 'dp.sock') })], { timeoutMs: 20_000 });
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toContain(`cannot listen on the control socket ${join(ro, 'dp.sock')}: ${ro} does not take new files (EROFS)`);
        expect(r.stderr).not.toContain('offload tier');
        expect(ns.readSysctl(`net.ipv6.conf.${up}.disable_ipv6`)).toBe('0');
      } finally {
        execFileSync('umount', [ro]);
      }
    });

    // helper-90: a metrics port in use failed the start only once the uplink had been
    // claimed (and given back).
    it('a metrics address in use is refused before the uplink is claimed, naming the setting', async () => {
      const other = createServer();
      await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
      const port = (other.address() as { port: number }).port;
      try {
        const r = vfplane(['dataplane', 'run', '--config', config('metricsbusy', { socket: join(dir, 'mb.sock') }), '--metrics', `127.0.0.1:${port}`], { timeoutMs: 20_000 });
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toContain(`cannot serve metrics on 127.0.0.1:${port}`);
        expect(r.stderr).toContain('give --metrics (or metrics in the config) a free address');
        expect(r.stderr).not.toContain('offload tier');
        expect(r.stderr).not.toMatch(/claimed|uplink afpacket/);
        expect(ns.readSysctl(`net.ipv6.conf.${up}.disable_ipv6`)).toBe('0');
      } finally {
        other.close();
      }
    });

    it('replaces a stale socket file (one nothing answers on)', async () => {
      const socket = join(dir, 'stale.sock');
      // A socket bound and never unlinked, as a killed daemon leaves it.
      execFileSync('/usr/bin/python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', socket]);
      expect(statSync(socket).isSocket()).toBe(true);
      const d = await startDataplane(config('stale', { socket }));
      try {
        expect(JSON.parse(vfplane(['dataplane', 'status', '--socket', socket, '--json']).stdout).uplink).toBeTruthy();
      } finally {
        await d.stop();
      }
    });
  });
});

// What listens on a socket a network config names (vxlan.socket) is not trusted to answer
// in a line: a reply is capped as requests are (it read without end, and rescanned all of
// it at each chunk: 519 MB for 44 MB sent, in helper-66's run).
/** A stand-in for a data plane on a socket in a new temp directory, each connection
 *  given to `onConn`; `close()` stops it and removes the directory. */
async function standIn(tag: string, onConn: (c: Socket) => void) {
  const dir = mkdtempSync(join(tmpdir(), `vfplane-${tag}-`));
  const sock = join(dir, `${tag}.sock`);
  const srv = createServer((c) => {
    c.on('error', () => undefined);
    onConn(c);
  });
  await new Promise<void>((r) => srv.listen(sock, r));
  return { sock, close: () => (srv.close(), rmSync(dir, { recursive: true, force: true })) };
}

describe('a client of the control protocol', () => {
  it('gives up on a reply longer than a line may be, naming the socket', async () => {
    const chunk = Buffer.alloc(64 << 10, 'a');
    const { sock, close } = await standIn('noisy', (c) => {
      const pump = () => { while (!c.destroyed && c.write(chunk)); };
      c.on('drain', pump);
      pump();
    });
    try {
      await expect(request(sock, { op: 'status' })).rejects.toThrow(`${sock} sent more than 1048576 bytes without ending its reply to status: not a vfplane data plane`);
    } finally {
      close();
    }
  });
});

// How long a client waits for a reply: 10 s, or VFPLANE_CONTROL_TIMEOUT_MS.
describe('a client\'s wait for a reply', () => {
  it('is VFPLANE_CONTROL_TIMEOUT_MS when set; a value that is not milliseconds is refused, naming it and the fix, before connecting', async () => {
    let conns = 0;
    const { sock, close } = await standIn('mute', () => conns++); // never answers
    try {
      const t0 = Date.now();
      const r = await vfplaneAsync(['dataplane', 'status', '--socket', sock], { env: { VFPLANE_CONTROL_TIMEOUT_MS: '700' } });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`the data plane at ${sock} did not answer status within 700 ms`);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(conns).toBe(1);
      for (const bad of ['abc', '0', '-5', '1.5', '600001', ' 9']) {
        const b = await vfplaneAsync(['dataplane', 'status', '--socket', sock], { env: { VFPLANE_CONTROL_TIMEOUT_MS: bad } });
        expect(b.code, b.stderr).not.toBe(0);
        expect(b.stderr).toContain(`VFPLANE_CONTROL_TIMEOUT_MS=${JSON.stringify(bad)} is not a number of milliseconds from 1 to 600000; set it to one, or unset it for 10000`);
      }
      expect(conns).toBe(1); // none of those connected
      // Refused when any command starts, not when it first asks a data plane: a command
      // that asks half-way (gc, pf set-numvfs) swallowed it as "no answer" and went on.
      const early = await vfplaneAsync(['profile', 'list'], { env: { VFPLANE_CONTROL_TIMEOUT_MS: '5s' } });
      expect([early.code, early.stdout, early.stderr]).toEqual([2, '', expect.stringContaining('VFPLANE_CONTROL_TIMEOUT_MS="5s" is not a number of milliseconds')]);
      expect((await vfplaneAsync(['--help'], { env: { VFPLANE_CONTROL_TIMEOUT_MS: '5s' } })).code).toBe(0);
      // And by the CNI plugin, as a bad CNI_* variable is (code 4), before it reads its config.
      const cni = spawnSync(process.execPath, [join(ROOT, 'bin', 'vfplane-cni.js')], {
        input: JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'vfplane-cni', deviceID: '0000:5e:02.0' }),
        env: { ...process.env, VFPLANE_CONTROL_TIMEOUT_MS: '5s', CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c0ffee01', CNI_IFNAME: 'net1', CNI_PATH: '/usr/lib/cni' },
        encoding: 'utf8',
      });
      expect(cni.status).toBe(1);
      expect(JSON.parse(cni.stdout)).toMatchObject({ code: 4, msg: expect.stringContaining('VFPLANE_CONTROL_TIMEOUT_MS="5s"') });
    } finally {
      close();
    }
  });
});

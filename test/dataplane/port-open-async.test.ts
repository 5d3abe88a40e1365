// Ports on kernel netdevs opened off the JS thread (DataPlane.openPortAsync, what a
// daemon's attach and its start's restore use): several at once, each a working port
// (frames the kernel delivers to its netdev reach it), the JS thread free meanwhile, and
// a failure a rejection that names the netdev, leaving the data plane as it was.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataPlane } from '../../src/dataplane/dp.js';
import { resolveTunnel } from '../../src/packet/config.js';
import { parseIp, parseMac } from '../../src/util/addr.js';
import { backendBuilt } from '../helpers/features.js';
import { ifname, Netns, vethIn } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';

const NET = `10.${150 + (process.pid % 50)}`;

describePrivileged('ports opened off the JS thread', { netns: true, commands: ['ping'] }, () => {
  let n: Netns;
  const N = 8;
  const reps = Array.from({ length: 2 * N }, (_, i) => ifname(`oa${i}`));
  const peers = Array.from({ length: 2 * N }, (_, i) => ifname(`ob${i}`));

  beforeAll(() => {
    n = Netns.create('poa');
    for (let i = 0; i < 2 * N; i++) {
      vethIn(n, reps[i]!, peers[i]!);
      n.ip(['link', 'set', reps[i]!, 'up']);
      n.ip(['addr', 'add', `${NET}.${20 + i}.1/24`, 'dev', peers[i]!]);
    }
  });

  afterAll(() => {
    n?.destroy();
  });

  /** Opens reps[from..from+N) at once, counting the event loop's turns until all are
   *  open; commits them as pods and checks each receives what the kernel puts on its
   *  netdev (the ARP requests of a ping from its peer's address). */
  async function openAll(backend: 'afpacket' | 'afxdp', from: number, opts: Record<string, unknown>): Promise<void> {
    const dp = new DataPlane({ workers: 1 });
    try {
      let turns = 0, done = false;
      const tick = () => { if (!done) { turns++; setImmediate(tick); } };
      setImmediate(tick);
      const idx = Array.from({ length: N }, (_, k) => from + k);
      const t0 = performance.now();
      const pending = idx.map((i) => dp.openPortAsync(backend, { ifname: reps[i], netns: n.path, ...opts }, reps[i]!));
      const callMs = performance.now() - t0;
      const ports = await Promise.all(pending);
      const allMs = performance.now() - t0;
      done = true;
      // The JS thread ran while the ports opened (each open waits for grace periods); or,
      // on a quiet host where all eight opened within the loop's first turn (CI at
      // 23:08 UTC, 2026-12-07: 0 turns), it was held for the calls, not the opens. Opens
      // made on the JS thread would hold it the whole time: no turn, and calls ≈ all.
      expect(turns > 0 || callMs < allMs / 2, `${turns} turns; the calls took ${callMs.toFixed(1)} of ${allMs.toFixed(1)} ms`).toBe(true);
      expect(new Set(ports.map((p) => p.slot)).size).toBe(N);
      for (const p of ports) expect(p).toMatchObject({ backend, queues: 1 });
      const up = dp.openPort('memory-sink', {}, 'uplink');
      dp.commit({
        uplink: up.slot, uplinkMac: parseMac('02:aa:00:00:00:01')!,
        tunnel: resolveTunnel({ local: '192.0.2.1', remote: '192.0.2.2' }),
        peers: [{ vtep: parseIp('192.0.2.2')!.bytes, mac: parseMac('02:bb:00:00:00:02')! }],
        atts: ports.map((p, k) => ({ port: p.slot, vni: 100, mac: parseMac(`02:00:00:00:01:${(k + 1).toString(16).padStart(2, '0')}`)! })),
        fdb: [], floods: [], extraVnis: [], learn: false, antiSpoof: false, icmpTooBig: false, verifyUdpCsum: false,
      });
      for (const i of idx) spawnSync('ip', ['netns', 'exec', n.name, 'ping', '-n', '-c', '1', '-W', '0.3', `${NET}.${20 + i}.2`]);
      const c = dp.counters();
      for (const p of ports) expect(c.ports.get(p.slot)?.rxPkts ?? 0n, `port ${p.slot}`).toBeGreaterThan(0n);
    } finally {
      dp.stop();
    }
  }

  it('afpacket: eight at once, each receiving, the JS thread serving meanwhile', async () => {
    await openAll('afpacket', 0, { ring: 2, stackDrop: 1 });
  });

  it('afxdp: eight at once (libxdp and the XSKs made on eight threads together)', async () => {
    if (!backendBuilt('afxdp')) throw new Error('the afxdp backend is not built: apt-get install libxdp-dev libbpf-dev, then npm run build:native');
    await openAll('afxdp', N, { mode: 'auto', copy: 'auto', queues: 0, frames: 256 });
    // The stop closed them together (their sockets' releases overlap): every program is
    // off its netdev, as closing them one after another left it.
    for (let i = N; i < 2 * N; i++) {
      const l = n.ip(['-d', 'link', 'show', reps[i]!]);
      expect(l, reps[i]).not.toMatch(/xdp|prog\/xdp/);
    }
  });

  it('a netdev that is not there: a rejection naming it; the data plane opens the next port as before', async () => {
    const dp = new DataPlane({ workers: 1 });
    try {
      await expect(dp.openPortAsync('afpacket', { ifname: 'vfpnosuch0', netns: n.path }, 'x')).rejects.toThrow(/interface vfpnosuch0 not found in netns/);
      await expect(dp.openPortAsync('afpacket', { ifname: reps[0], netns: n.path, stackDrop: 7 }, 'x')).rejects.toThrow(/stackDrop/);
      const p = await dp.openPortAsync('afpacket', { ifname: reps[0], netns: n.path, ring: 2 }, 'ok');
      expect(p.backend).toBe('afpacket');
    } finally {
      dp.stop();
    }
  });

  // A worker thread terminated while its opens are under way: its env goes with the
  // opens' threads still running or their completions queued. Run in a child process, as
  // a crash would end it: every round's ports closed (no XDP program left on a netdev
  // when the child has gone: libxdp's attach outlives the process), the process alive.
  it('a worker thread terminated with opens under way: the process lives on, nothing left on the netdevs', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfp-poa-'));
    try {
      const dpUrl = pathToFileURL(path.resolve('dist/dataplane/dp.js')).href;
      const worker = path.join(dir, 'worker.mjs');
      fs.writeFileSync(worker, `
        import { parentPort, workerData } from 'node:worker_threads';
        import { DataPlane } from ${JSON.stringify(dpUrl)};
        const dp = new DataPlane({ workers: 1 });
        const { backend, reps, netns, opts } = workerData;
        for (const r of reps) dp.openPortAsync(backend, { ifname: r, netns, ...opts }, r).catch(() => {});
        parentPort.postMessage('opening');
      `);
      const main = path.join(dir, 'main.mjs');
      fs.writeFileSync(main, `
        import { Worker } from 'node:worker_threads';
        const [worker, netns, reps] = [process.argv[2], process.argv[3], process.argv.slice(4)];
        const half = reps.length / 2;
        const rounds = [];
        for (const delay of [0, 2, 10, 30, 80]) {
          rounds.push({ backend: 'afpacket', reps: reps.slice(0, half), opts: { ring: 2, stackDrop: 1 }, delay });
          rounds.push({ backend: 'afxdp', reps: reps.slice(half), opts: { mode: 'auto', copy: 'auto', queues: 0, frames: 256 }, delay });
        }
        for (const r of rounds) {
          const w = new Worker(worker, { workerData: { ...r, netns } });
          await new Promise((res, rej) => { w.once('message', res); w.once('error', rej); });
          await new Promise((res) => setTimeout(res, r.delay));
          await w.terminate();
        }
        console.log('alive after', rounds.length, 'rounds');
      `);
      const half = reps.slice(0, N / 2).concat(reps.slice(N, N + N / 2));
      const r = spawnSync(process.execPath, [main, worker, n.path, ...half], { encoding: 'utf8', timeout: 60_000 });
      expect(r.stderr).not.toMatch(/FATAL|Segmentation|Abort/i);
      expect({ status: r.status, signal: r.signal, out: r.stdout.trim() }).toEqual({ status: 0, signal: null, out: 'alive after 10 rounds' });
      for (const rep of half) {
        expect(n.ip(['-d', 'link', 'show', rep]), rep).not.toMatch(/xdp|prog\/xdp/);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

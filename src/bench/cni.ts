// `vfplane bench cni`: ADD and DEL latency of vfplane-cni as a runtime sees it (exec to
// exit), side by side in the same run with the reference macvlan plugin, both with the
// same host-local IPAM, on a simulated NIC (macvlan's master is the simulated PF's
// uplink). vfplane-cni is measured as installed by `vfplane cni install`: served (the C
// shim forwarding to `vfplane cni serve`) and standalone (the shim finds no server and
// runs the Node plugin). Runs alternate between the plugins so host noise falls on all.
// With --vxlan, a third series: vfplane-cni with `vxlan: {vni}` against a running data
// plane (AF_PACKET, on the simulated PF), whose ADD also attaches the VF's representor.
import { onInterrupt, stopChildSync } from '../util/interrupt.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { runProgram } from '../util/spawn.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { createSim, destroySimIfMade } from '../sim/sim.js';
import { hostNetnsPath, ipBatch, netnsAdd, netnsDel } from '../net/ip.js';
import { systemError } from '../util/errors.js';
import { checkInt } from '../util/check.js';
import { summarize } from './stats.js';
import { spawnDataplane } from '../dataplane/spawn.js';

const REF_DIR = '/usr/lib/cni';

export interface CniBenchOptions {
  runs: number;
  standaloneRuns: number;
  json?: boolean;
  refDir?: string;
  /** Also measure ADD/DEL with `vxlan: {vni}` against a running data plane. */
  vxlan?: boolean;
  /** VFs on the simulated NIC (2 by default): what a pool ADD reads grows with them. */
  vfs?: number;
  /** Also measure ADD/DEL with `pool` (allocated from the store) instead of a deviceID. */
  pool?: boolean;
}

interface Stats {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

function stats(ms: number[]): Stats {
  const { count, p50, p99, max, mean } = summarize(ms);
  return { count, p50Ms: p50, p99Ms: p99, maxMs: max, meanMs: mean };
}

// Started with posix_spawn, as a runtime's Go os/exec starts plugins (clone with
// CLONE_VFORK): Node's own spawn forks this process, which would add 10+ ms of page-table
// copying to every call of both plugins and hide their difference.
async function exec(bin: string, args: string[], env: Record<string, string>, input: string): Promise<{ ms: number; code: number; out: string }> {
  const t0 = process.hrtime.bigint();
  const r = await runProgram(bin, { argv: [bin, ...args], env, stdin: input, timeoutMs: 60_000 });
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, code: r.status ?? -1, out: r.stdout };
}

export interface CniBenchResult {
  runs: number;
  vfplane: { add: Stats; del: Stats };
  standalone: { add: Stats; del: Stats } | null;
  /** macvlan's runs beside the standalone ones (the served ratio's are in `macvlan`). */
  macvlanBesideStandalone?: { add: Stats; del: Stats };
  macvlan: { add: Stats; del: Stats };
  /** Served runs with `vxlan: {vni}` (attach to the data plane), when asked for. */
  vxlan: { add: Stats; del: Stats } | null;
  /** Served runs with `pool` instead of a deviceID, when asked for. */
  pool: { add: Stats; del: Stats } | null;
  /** The simulated NIC the runs used. */
  nic: { profile: string; vfs: number };
  ratio: { addP50: number; delP50: number; standaloneAddP50: number | null; vxlanAddP50: number | null; poolAddP50: number | null };
  /** Moving one netdev into a namespace, alone: a floor under any plugin that moves a VF's
   *  netdev (vfplane-cni, sriov-cni); macvlan creates its link inside the pod instead. */
  netnsMove: Stats;
  /** Served runs: the p50 of each phase the plugin logged (ms), per command. */
  phases: { add: Record<string, number>; del: Record<string, number> };
  /** The same for the vxlan runs. */
  vxlanPhases?: { add: Record<string, number>; del: Record<string, number> };
  /** The same for the pool runs. */
  poolPhases?: { add: Record<string, number>; del: Record<string, number> };
  target: { addP50Ratio: number; met: boolean };
}

export async function runCniBench(o: CniBenchOptions): Promise<CniBenchResult> {
  checkInt('--runs', o.runs, 1, 100_000);
  const nVfs = o.vfs ?? 2;
  checkInt('--vfs', nVfs, 2, 256);
  // The X710 the figures have always come from; past its 64 VFs a PF, an E810 (256).
  const profile = nVfs <= 64 ? 'x710' : 'e810';
  if (process.getuid?.() !== 0) throw systemError('bench cni makes network namespaces and a simulated NIC, and moves netdevs between them (as a runtime runs the plugins): run it as root');
  const ref = o.refDir ?? REF_DIR;
  for (const b of ['macvlan', 'host-local']) {
    if (!fs.existsSync(path.join(ref, b))) throw systemError(`${path.join(ref, b)} is missing: install containernetworking-plugins (./scripts/setup does)`);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vfplane-bench-cni-'));
  const prefix = `bc${(process.pid % 46656).toString(36)}`;
  const root = path.join(work, 'sim');
  const ns = `${prefix}-pod`;
  const say = (m: string) => { if (!o.json) process.stderr.write(m + '\n'); };
  const netnsPath = `/run/netns/${ns}`;
  const bin = path.join(work, 'bin');
  const socket = path.join(work, 'cni.sock');
  const vfplaneJs = fileURLToPath(new URL('../../bin/vfplane.js', import.meta.url));
  let server: ChildProcess | undefined;
  let dataplane: ChildProcess | undefined;
  // Interrupted: the same teardown as the finally below, which a signal never reaches
  // (the data plane gives its netdevs back before the simulator goes).
  const off = onInterrupt(() => {
    stopChildSync(server?.pid);
    stopChildSync(dataplane?.pid);
    try {
      netnsDel(ns);
    } catch {
      // already gone
    }
    destroySimIfMade(root);
    fs.rmSync(work, { recursive: true, force: true });
  });
  // Made inside the try, so that the finally (and a signal's teardown) also undoes a
  // half-made start: a Ctrl-C reaches `ip` too, and one killed after it made the
  // namespace fails having made it.
  let m: ReturnType<typeof createSim>;
  try {
    m = createSim({ profile, pfs: 1, vfs: nVfs, root, prefix });
    netnsAdd(ns);
    // Installed as a runtime would find it, then the server it forwards to.
    const inst = spawnSync(process.execPath, [vfplaneJs, 'cni', 'install', '--dir', bin, '--socket', socket], { encoding: 'utf8' });
    if (inst.status !== 0) throw systemError(`vfplane cni install failed: ${inst.stderr}`);
    const wrapper = path.join(bin, 'vfplane-cni');
    // With the calls' log directories (below): a call whose VFPLANE_* settings differ from
    // the server's is run standalone by its shim, which would measure the wrong thing.
    server = spawn(process.execPath, [vfplaneJs, 'cni', 'serve', '--socket', socket], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, VFPLANE_CNI_LOG_DIRS: work } });
    // Each call the server ran is a line on its stderr; one its shim ran itself instead
    // (the server refused it) is said there too.
    let served = 0;
    let notServed = '';
    let partial = '';
    server.stderr!.on('data', (d) => {
      const lines = (partial + String(d)).split('\n');
      partial = lines.pop()!;
      for (const l of lines) {
        if (/^vfplane cni serve: (ADD|DEL) container /.test(l)) served++;
        else if (l.includes('its shim runs the plugin itself')) notServed ||= l;
      }
    });
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(systemError('vfplane cni serve did not start within 20 s')), 20_000);
      server!.stderr!.on('data', (d) => { if (String(d).includes('listening')) { clearTimeout(t); res(); } });
      server!.once('exit', (c) => rej(systemError(`vfplane cni serve exited ${c}`)));
    });
    const env = (command: string, cid: string): Record<string, string> => ({
      PATH: process.env.PATH ?? '/usr/bin:/bin', CNI_COMMAND: command, CNI_CONTAINERID: cid, CNI_NETNS: netnsPath, CNI_IFNAME: 'net1', CNI_PATH: ref,
      CNI_ARGS: 'IgnoreUnknown=true;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod',
      // Its logFile is in the work directory: a log directory for this run, as a node's operator lists one.
      VFPLANE_CNI_LOG_DIRS: work,
    });
    const ipam = (dir: string) => ({ type: 'host-local', subnet: '10.99.0.0/24', dataDir: path.join(work, dir) });
    // At debug level each call logs where its time went (one line at the end); the phases
    // of the served runs are summed up below.
    const logFile = path.join(work, 'vfplane-cni.log');
    const vfplaneConf = (tag: string, deviceID: string, log: string, extra: Record<string, unknown> = {}) => JSON.stringify({
      cniVersion: '1.0.0', name: `bench-${tag}`, type: 'vfplane-cni', deviceID, sysfsRoot: root, stateDir: path.join(work, 'state'),
      ipam: ipam(`ipam-${tag}`), logLevel: 'debug', logFile: log, ...extra,
    });
    const vfInput = vfplaneConf('vf', '0000:5e:02.0', logFile);
    const vxLog = path.join(work, 'vfplane-cni-vxlan.log');
    const vxInput = vfplaneConf('vx', '0000:5e:02.1', vxLog, { vxlan: { vni: 100 } });
    // The pool's VFs: the whole PF, as a device plugin's pfNames selector takes it.
    const poolsFile = path.join(work, 'pools.json');
    fs.writeFileSync(poolsFile, JSON.stringify({ pools: [{ name: 'bench', selector: { pfNames: [m.pfs[0]!.netdev] } }] }));
    const poolLog = path.join(work, 'vfplane-cni-pool.log');
    const poolInput = JSON.stringify({ ...JSON.parse(vfplaneConf('pool', '', poolLog)), deviceID: undefined, pool: 'bench', poolsFile });
    if (o.vxlan) dataplane = await startDataplane(work, m.pfs[0]!.netdev, path.join(work, 'state'));
    const mvInput = JSON.stringify({ cniVersion: '1.0.0', name: 'bench-mv', type: 'macvlan', master: m.pfs[0]!.netdev, mode: 'bridge', ipam: ipam('ipam-mv') });
    const vf = { add: [] as number[], del: [] as number[] };
    const sa = { add: [] as number[], del: [] as number[] };
    const mv = { add: [] as number[], del: [] as number[] };
    const vx = { add: [] as number[], del: [] as number[] };
    const pl = { add: [] as number[], del: [] as number[] };
    say(`vfplane bench cni: ${o.runs} ADD+DEL runs each of vfplane-cni served (shim + vfplane cni serve) and macvlan, ` +
      `${o.standaloneRuns} of vfplane-cni standalone${o.vxlan ? ', and vfplane-cni with vxlan (attached to a running data plane)' : ''}` +
      `${o.pool ? ', and vfplane-cni with a pool (no deviceID)' : ''}; kernel VF on a simulated ${profile} with ${nVfs} VFs, host-local IPAM`);
    const runOne = async (name: string, file: string, args: string[], input: string, into: typeof vf, cid: string) => {
      {
        const a = await exec(file, args, env('ADD', cid), input);
        if (a.code !== 0) throw systemError(`${name} ADD failed (${cid}): ${a.out.trim()}`);
        const d = await exec(file, args, env('DEL', cid), input);
        if (d.code !== 0) throw systemError(`${name} DEL failed (${cid}): ${d.out.trim()}`);
        into.add.push(a.ms);
        into.del.push(d.ms);
      }
    };
    for (let i = 0; i < o.runs; i++) {
      await runOne('vfplane-cni', wrapper, [], vfInput, vf, `bench${i}`);
      await runOne('macvlan', path.join(ref, 'macvlan'), [], mvInput, mv, `bench${i}`);
      if (o.vxlan) await runOne('vfplane-cni (vxlan)', wrapper, [], vxInput, vx, `benchx${i}`);
      if (o.pool) await runOne('vfplane-cni (pool)', wrapper, [], poolInput, pl, `benchp${i}`);
      if (!o.json && (i + 1) % 50 === 0) say(`  ${i + 1}/${o.runs}`);
    }
    // Every served figure must be a served call: else it is the shim's standalone run.
    const wantServed = o.runs * 2 * (1 + (o.vxlan ? 1 : 0) + (o.pool ? 1 : 0));
    for (const until = Date.now() + 2000; served < wantServed && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
    if (served !== wantServed) {
      throw systemError(`only ${served} of the ${wantServed} served calls reached vfplane cni serve${notServed ? ` (${notServed})` : ''}: the rest ran standalone, and their figures would be labelled served`);
    }
    // The kernel's part: a netdev moved into the pod namespace and back, timed alone.
    const moves: number[] = [];
    const { netRun } = await import('../net/netops.js');
    const probe = `${prefix}mv`;
    ipBatch([['link', 'add', probe, 'type', 'veth', 'peer', 'name', `${prefix}mw`]]);
    try {
      for (let i = 0; i < Math.max(20, Math.min(o.runs, 200)); i++) {
        const t0 = process.hrtime.bigint();
        await netRun(null, [{ op: 'set', name: probe, netns: netnsPath }]);
        moves.push(Number(process.hrtime.bigint() - t0) / 1e6);
        await netRun(netnsPath, [{ op: 'set', name: probe, netns: hostNetnsPath() }]);
      }
    } finally {
      ipBatch([['link', 'del', `${prefix}mw`]]);
    }
    const phases = readPhases(logFile);
    const vxPhases = o.vxlan ? readPhases(vxLog) : null;
    const poolPhases = o.pool ? readPhases(poolLog) : null;
    // Standalone: the same wrapper with no server behind the socket.
    server.kill('SIGTERM');
    await new Promise((res) => server!.once('exit', res));
    server = undefined;
    // macvlan again beside them, in a series of its own: the served ratio compares runs
    // of one period (these were once pooled into it, with the server gone).
    const mvSolo = { add: [] as number[], del: [] as number[] };
    for (let i = 0; i < o.standaloneRuns; i++) {
      await runOne('vfplane-cni (standalone)', wrapper, [], vfInput, sa, `solo${i}`);
      await runOne('macvlan', path.join(ref, 'macvlan'), [], mvInput, mvSolo, `solo${i}`);
    }
    const res: CniBenchResult = {
      runs: o.runs,
      vfplane: { add: stats(vf.add), del: stats(vf.del) },
      standalone: sa.add.length ? { add: stats(sa.add), del: stats(sa.del) } : null,
      vxlan: vx.add.length ? { add: stats(vx.add), del: stats(vx.del) } : null,
      pool: pl.add.length ? { add: stats(pl.add), del: stats(pl.del) } : null,
      nic: { profile, vfs: nVfs },
      macvlan: { add: stats(mv.add), del: stats(mv.del) },
      ...(mvSolo.add.length ? { macvlanBesideStandalone: { add: stats(mvSolo.add), del: stats(mvSolo.del) } } : {}),
      ratio: { addP50: 0, delP50: 0, standaloneAddP50: null, vxlanAddP50: null, poolAddP50: null },
      netnsMove: stats(moves),
      phases,
      ...(vxPhases ? { vxlanPhases: vxPhases } : {}),
      ...(poolPhases ? { poolPhases } : {}),
      target: { addP50Ratio: 1.5, met: false },
    };
    res.ratio.addP50 = res.vfplane.add.p50Ms / res.macvlan.add.p50Ms;
    res.ratio.delP50 = res.vfplane.del.p50Ms / res.macvlan.del.p50Ms;
    if (res.standalone) res.ratio.standaloneAddP50 = res.standalone.add.p50Ms / (res.macvlanBesideStandalone ?? res.macvlan).add.p50Ms;
    if (res.vxlan) res.ratio.vxlanAddP50 = res.vxlan.add.p50Ms / res.macvlan.add.p50Ms;
    if (res.pool) res.ratio.poolAddP50 = res.pool.add.p50Ms / res.macvlan.add.p50Ms;
    res.target.met = res.ratio.addP50 <= res.target.addP50Ratio;
    if (o.json) process.stdout.write(JSON.stringify(res, null, 2) + '\n');
    else process.stdout.write(render(res) + '\n');
    return res;
  } finally {
    off();
    server?.kill('SIGTERM');
    if (dataplane) {
      dataplane.kill('SIGTERM');
      if (dataplane.exitCode === null) await new Promise((res) => dataplane!.once('exit', res));
    }
    try {
      netnsDel(ns);
    } catch {
      // already gone
    }
    destroySimIfMade(root);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** A data plane on the simulated PF's netdev (AF_PACKET), its control socket in the CNI
 *  state dir, where vfplane-cni looks for it; resolves once it is ready. */
async function startDataplane(work: string, uplink: string, stateDir: string): Promise<ChildProcess> {
  const config = path.join(work, 'dataplane.json');
  fs.writeFileSync(config, JSON.stringify({ node: 'bench', backend: 'afpacket', uplink: { ifname: uplink, vtep: '192.0.2.1' }, stateDir }));
  return (await spawnDataplane(config, 'the bench\'s data plane')).proc;
}

/** The p50 of each phase over the 'done' lines the plugin logged, per command. */
function readPhases(file: string): { add: Record<string, number>; del: Record<string, number> } {
  const by: Record<string, Record<string, number[]>> = { ADD: {}, DEL: {} };
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  for (const line of text.split('\n')) {
    if (!line.includes('"phasesMs"')) continue;
    const j = JSON.parse(line) as { msg: string; command: string; phasesMs: Record<string, number> };
    const into = by[j.command];
    if (j.msg !== 'done' || !into) continue;
    for (const [k, v] of Object.entries(j.phasesMs)) (into[k] ??= []).push(v);
  }
  const p50 = (m: Record<string, number[]>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, summarize(v).p50]));
  return { add: p50(by.ADD!), del: p50(by.DEL!) };
}

/** "LABEL, ADD p50 per phase: …" for each command that logged phases. */
function phaseLines(label: string, phases: CniBenchResult['phases']): string[] {
  return (['add', 'del'] as const).filter((op) => Object.keys(phases[op]).length).map((op) =>
    `${label}, ${op.toUpperCase()} p50 per phase: ${Object.entries(phases[op]).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')} ms`);
}

const signed = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(1)}`;

function render(r: CniBenchResult): string {
  const t = new Table({ head: ['plugin', 'op', 'runs', 'p50', 'p99', 'max', 'mean'], style: { head: [], border: [] } });
  const f = (x: number) => `${x.toFixed(1)} ms`;
  const rows: [string, { add: Stats; del: Stats }][] = [['vfplane-cni (served)', r.vfplane], ...(r.vxlan ? [['vfplane-cni (served, vxlan)', r.vxlan] as [string, { add: Stats; del: Stats }]] : []), ...(r.pool ? [['vfplane-cni (served, pool)', r.pool] as [string, { add: Stats; del: Stats }]] : []), ...(r.standalone ? [['vfplane-cni (standalone)', r.standalone] as [string, { add: Stats; del: Stats }]] : []), ['macvlan', r.macvlan], ...(r.macvlanBesideStandalone ? [['macvlan (beside standalone)', r.macvlanBesideStandalone] as [string, { add: Stats; del: Stats }]] : [])];
  for (const [name, s] of rows) {
    for (const op of ['add', 'del'] as const) t.push([name, op.toUpperCase(), String(s[op].count), f(s[op].p50Ms), f(s[op].p99Ms), f(s[op].maxMs), f(s[op].meanMs)]);
  }
  return [
    t.toString(),
    `ADD p50 ratio vfplane-cni (served) / macvlan: ${r.ratio.addP50.toFixed(2)}× (target ≤ ${r.target.addP50Ratio}×: ${r.target.met ? 'PASS' : 'MISS'})`,
    `DEL p50 ratio (served): ${r.ratio.delP50.toFixed(2)}×`,
    ...(r.ratio.vxlanAddP50 !== null && r.vxlan ? [`ADD p50 with vxlan (attach to the data plane): ${r.ratio.vxlanAddP50.toFixed(2)}× macvlan, +${(r.vxlan.add.p50Ms - r.vfplane.add.p50Ms).toFixed(1)} ms over a plain ADD`] : []),
    ...(r.ratio.poolAddP50 !== null && r.pool ? [`ADD p50 with a pool (no deviceID; ${r.nic.vfs} VFs on the node): ${r.ratio.poolAddP50.toFixed(2)}× macvlan, ${signed(r.pool.add.p50Ms - r.vfplane.add.p50Ms)} ms against a deviceID ADD`] : []),
    ...(r.ratio.standaloneAddP50 !== null ? [`ADD p50 ratio standalone (no server, Node started per call): ${r.ratio.standaloneAddP50.toFixed(2)}×`] : []),
    ...phaseLines('inside the server', r.phases),
    ...(r.vxlanPhases ? phaseLines('inside the server, with vxlan', r.vxlanPhases) : []),
    ...(r.poolPhases ? phaseLines('inside the server, with a pool', r.poolPhases) : []),
    `kernel floor: moving a netdev into the pod namespace alone takes p50 ${r.netnsMove.p50Ms.toFixed(1)} ms (p99 ${r.netnsMove.p99Ms.toFixed(1)} ms); ` +
      'ADD and DEL each move one, macvlan creates its link in the pod instead',
  ].join('\n');
}

// `vfplane bench cni`: ADD and DEL latency of vfplane-cni as a runtime sees it (exec to
// exit), side by side in the same run with the reference macvlan plugin, both with the
// same host-local IPAM, on a simulated NIC (macvlan's master is the simulated PF's
// uplink). Runs alternate between the two plugins so host noise falls on both.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { createSim, destroySim } from '../sim/sim.js';
import { netnsAdd, netnsDel } from '../net/ip.js';
import { systemError } from '../util/errors.js';
import { checkInt } from '../util/check.js';

const PLUGIN = fileURLToPath(new URL('../../bin/vfplane-cni.js', import.meta.url));
const REF_DIR = '/usr/lib/cni';

export interface CniBenchOptions {
  runs: number;
  json?: boolean;
  refDir?: string;
}

interface Stats {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

function stats(ms: number[]): Stats {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { count: s.length, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: s[s.length - 1]!, meanMs: s.reduce((a, b) => a + b, 0) / s.length };
}

function exec(bin: string, args: string[], env: Record<string, string>, input: string): Promise<{ ms: number; code: number; out: string }> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(bin, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.resume();
    child.on('close', (code) => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, code: code ?? -1, out }));
    child.stdin.end(input);
  });
}

export interface CniBenchResult {
  runs: number;
  vfplane: { add: Stats; del: Stats };
  macvlan: { add: Stats; del: Stats };
  ratio: { addP50: number; delP50: number };
  target: { addP50Ratio: number; met: boolean };
}

export async function runCniBench(o: CniBenchOptions): Promise<CniBenchResult> {
  checkInt('--runs', o.runs, 1, 100_000);
  const ref = o.refDir ?? REF_DIR;
  for (const b of ['macvlan', 'host-local']) {
    if (!fs.existsSync(path.join(ref, b))) throw systemError(`${path.join(ref, b)} is missing: install containernetworking-plugins (./scripts/setup does)`);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vfplane-bench-cni-'));
  const prefix = `bc${(process.pid % 46656).toString(36)}`;
  const root = path.join(work, 'sim');
  const ns = `${prefix}-pod`;
  const say = (m: string) => { if (!o.json) process.stderr.write(m + '\n'); };
  const m = createSim({ profile: 'x710', pfs: 1, vfs: 2, root, prefix });
  netnsAdd(ns);
  const netnsPath = `/run/netns/${ns}`;
  try {
    const env = (command: string, cid: string): Record<string, string> => ({
      PATH: process.env.PATH ?? '/usr/bin:/bin', CNI_COMMAND: command, CNI_CONTAINERID: cid, CNI_NETNS: netnsPath, CNI_IFNAME: 'net1', CNI_PATH: ref,
      CNI_ARGS: 'IgnoreUnknown=true;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod',
    });
    const ipam = (dir: string) => ({ type: 'host-local', subnet: '10.99.0.0/24', dataDir: path.join(work, dir) });
    const vfInput = JSON.stringify({
      cniVersion: '1.0.0', name: 'bench-vf', type: 'vfplane-cni', deviceID: '0000:5e:02.0', sysfsRoot: root, stateDir: path.join(work, 'state'), ipam: ipam('ipam-vf'),
    });
    const mvInput = JSON.stringify({ cniVersion: '1.0.0', name: 'bench-mv', type: 'macvlan', master: m.pfs[0]!.netdev, mode: 'bridge', ipam: ipam('ipam-mv') });
    const vf = { add: [] as number[], del: [] as number[] };
    const mv = { add: [] as number[], del: [] as number[] };
    say(`vfplane bench cni: ${o.runs} ADD+DEL runs each of vfplane-cni (kernel VF, simulated x710) and macvlan, host-local IPAM`);
    for (let i = 0; i < o.runs; i++) {
      const cid = `bench${i}`;
      for (const [name, bin, args, input, into] of [
        ['vfplane-cni', process.execPath, [PLUGIN], vfInput, vf],
        ['macvlan', path.join(ref, 'macvlan'), [], mvInput, mv],
      ] as const) {
        const a = await exec(bin, [...args], env('ADD', cid), input);
        if (a.code !== 0) throw systemError(`${name} ADD failed in run ${i}: ${a.out.trim()}`);
        const d = await exec(bin, [...args], env('DEL', cid), input);
        if (d.code !== 0) throw systemError(`${name} DEL failed in run ${i}: ${d.out.trim()}`);
        into.add.push(a.ms);
        into.del.push(d.ms);
      }
      if (!o.json && (i + 1) % 50 === 0) say(`  ${i + 1}/${o.runs}`);
    }
    const res: CniBenchResult = {
      runs: o.runs,
      vfplane: { add: stats(vf.add), del: stats(vf.del) },
      macvlan: { add: stats(mv.add), del: stats(mv.del) },
      ratio: { addP50: 0, delP50: 0 },
      target: { addP50Ratio: 1.5, met: false },
    };
    res.ratio.addP50 = res.vfplane.add.p50Ms / res.macvlan.add.p50Ms;
    res.ratio.delP50 = res.vfplane.del.p50Ms / res.macvlan.del.p50Ms;
    res.target.met = res.ratio.addP50 <= res.target.addP50Ratio;
    if (o.json) process.stdout.write(JSON.stringify(res, null, 2) + '\n');
    else process.stdout.write(render(res) + '\n');
    return res;
  } finally {
    try {
      netnsDel(ns);
    } catch {
      // already gone
    }
    destroySim(root);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function render(r: CniBenchResult): string {
  const t = new Table({ head: ['plugin', 'op', 'runs', 'p50', 'p99', 'max', 'mean'], style: { head: [], border: [] } });
  const f = (x: number) => `${x.toFixed(1)} ms`;
  for (const [name, s] of [['vfplane-cni', r.vfplane], ['macvlan', r.macvlan]] as const) {
    for (const op of ['add', 'del'] as const) t.push([name, op.toUpperCase(), String(s[op].count), f(s[op].p50Ms), f(s[op].p99Ms), f(s[op].maxMs), f(s[op].meanMs)]);
  }
  return [
    t.toString(),
    `ADD p50 ratio vfplane-cni / macvlan: ${r.ratio.addP50.toFixed(2)}× (target ≤ ${r.target.addP50Ratio}×: ${r.target.met ? 'PASS' : 'MISS'})`,
    `DEL p50 ratio: ${r.ratio.delP50.toFixed(2)}×`,
  ].join('\n');
}

#!/usr/bin/env node
// How the data plane's control path holds up with many static FDB entries: a data plane
// (afpacket, in a network namespace of its own) started from a config with N entries over
// P peers, then K attaches, single fdb-add/fdb-del/peer-add/flood-set, status, a metrics
// scrape, 5000 entries added and deleted in one request each, a reload of the unchanged
// file, a detach, a stop and a restart from the state it left, each timed; the daemon's
// RSS and peak RSS. Root; removes what it made, also on failure or Ctrl-C.
//
//   node scripts/control-scale.mjs [N=100000] [K=8] [P=250]
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const [N, K, P] = [process.argv[2] ?? 100000, process.argv[3] ?? 8, process.argv[4] ?? 250].map(Number);
if (![N, K, P].every((x) => Number.isInteger(x) && x >= 0) || K > 99 || P < 1 || P > 1024) {
  console.error('usage: node scripts/control-scale.mjs [N entries ≥ 0] [K attachments 0–99] [P peers 1–1024]');
  process.exit(2);
}
const { request } = await import(join(repo, 'dist/dataplane/control.js'));
const tag = `vcs${process.pid.toString(36)}`;
const ns = tag, dir = mkdtempSync(join(tmpdir(), 'vfplane-control-scale-'));
let child = null;
const cleanup = () => {
  try { child?.kill('SIGKILL'); } catch {}
  try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch {}
  rmSync(dir, { recursive: true, force: true });
};
process.on('SIGINT', () => (cleanup(), process.exit(130)));
process.on('SIGTERM', () => (cleanup(), process.exit(143)));

try {
  execFileSync('ip', ['netns', 'add', ns]);
  const inNs = (...a) => execFileSync('ip', ['-n', ns, ...a], { stdio: 'pipe' });
  inNs('link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1');
  for (let i = 0; i < K; i++) inNs('link', 'add', `rep${i}`, 'type', 'veth', 'peer', 'name', `pod${i}`);
  const hex = (n) => n.toString(16).padStart(2, '0');
  const peers = Array.from({ length: P }, (_, i) => ({ vtep: `10.98.${i >> 7}.${(i & 127) + 1}` }));
  const fdb = Array.from({ length: N }, (_, i) => ({ vni: 100 + (i % 4), mac: `02:99:${hex((i >> 16) & 255)}:${hex((i >> 8) & 255)}:${hex(i & 255)}:01`, vtep: peers[i % P].vtep }));
  const config = join(dir, 'dp.json'), socket = join(dir, 'dp.sock');
  writeFileSync(config, JSON.stringify({ node: tag, backend: 'afpacket', uplink: { ifname: 'up0', netns: `/run/netns/${ns}`, vtep: '10.99.0.1' }, stateDir: join(dir, 'state'), socket, peers, fdb }));
  let metricsPort = 0;
  const start = () => new Promise((resolve, reject) => {
    const t0 = performance.now();
    child = spawn(process.execPath, [join(repo, 'bin/vfplane.js'), 'dataplane', 'run', '--config', config, '--json', '--metrics', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VFPLANE_RUN_DIR: join(dir, 'run') } });
    let out = '', err = '';
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"ready"'));
      if (line) (metricsPort = JSON.parse(line).metricsPort), resolve(performance.now() - t0);
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (c) => reject(new Error(`the data plane exited ${c}: ${err.slice(-2000)}`)));
  });
  const mem = () => {
    const s = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const kb = (k) => Number(s.match(new RegExp(`${k}:\\s+(\\d+)`))[1]);
    return `RSS ${(kb('VmRSS') / 1024).toFixed(0)} MB, peak ${(kb('VmHWM') / 1024).toFixed(0)} MB`;
  };
  const R = (o) => request(socket, o, 600000);
  const rows = [];
  const time = async (what, fn) => {
    const t = performance.now();
    await fn();
    rows.push([what, performance.now() - t]);
  };
  console.log(`vfplane control-path scale: ${N} static FDB entries over ${P} peers in the config, ${K} attachments`);
  rows.push(['start (to ready)', await start()]);
  console.log(`after start: ${mem()}`);
  for (let i = 0; i < K; i++) await time(`attach ${i + 1}`, () => R({ op: 'attach', representor: `rep${i}`, netns: `/run/netns/${ns}`, vni: 100 + (i % 4), mac: `02:98:00:00:00:${hex(i)}` }));
  for (let i = 0; i < 3; i++) await time(`fdb-add ${i + 1}`, () => R({ op: 'fdb-add', vni: 100, mac: `02:97:00:00:00:${hex(i)}`, vtep: peers[0].vtep }));
  await time('fdb-del', () => R({ op: 'fdb-del', vni: 100, mac: '02:97:00:00:00:00' }));
  const batch = Array.from({ length: 5000 }, (_, i) => ({ vni: 200, mac: `02:96:00:00:${hex(i >> 8)}:${hex(i & 255)}`, vtep: peers[i % P].vtep }));
  await time('fdb-add of 5000 in one request', () => R({ op: 'fdb-add', entries: batch }));
  await time('fdb-del of those 5000', () => R({ op: 'fdb-del', entries: batch.map(({ vni, mac }) => ({ vni, mac })) }));
  if (P < 1024) await time('peer-add', () => R({ op: 'peer-add', vtep: '10.99.2.1' })); // 1024 is the most a data plane holds
  await time('flood-set', () => R({ op: 'flood-set', vni: 6001, vteps: null }));
  await time('status', () => R({ op: 'status' }));
  await time('metrics scrape', async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
  await time('reload (file unchanged)', () => R({ op: 'reload' }));
  if (K) await time('detach', () => R({ op: 'detach', representor: 'rep0' }));
  console.log(`after the requests: ${mem()}`);
  const c = child;
  c.removeAllListeners('exit');
  const t = performance.now();
  c.kill('SIGTERM');
  await new Promise((r) => c.on('exit', r));
  rows.push(['stop (SIGTERM to exit)', performance.now() - t]);
  rows.push(['restart from the state (to ready)', await start()]);
  const st = await R({ op: 'status' });
  console.log(`after the restart: ${mem()}; ${st.attachments.length} attachment(s) restored of ${Math.max(0, K - 1)}`);
  for (const [what, ms] of rows) console.log(`  ${what.padEnd(36)} ${ms.toFixed(0).padStart(7)} ms`);
} finally {
  cleanup();
}

#!/usr/bin/env node
// How long a data plane with N attached VFs takes to start, to stop (SIGTERM: drain,
// close the ports, give the netdevs back) and then to exit: `vfplane dataplane run` on
// AF_PACKET, its uplink and N representor veths in a namespace of its own, the N
// attachments in its config (as a restart restores them). Prints the three times.
//   sudo node scripts/bench-restart.mjs [--backend afpacket|afxdp] [N ...]      (default: afpacket; 1 64 255)
// Everything it makes is named vfprs<pid> and removed on exit, also on failure.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const here = new URL('..', import.meta.url).pathname;
const ns = `vfprs${process.pid}`;
const work = mkdtempSync(path.join(os.tmpdir(), 'vfplane-bench-restart-'));
let child = null;
const cleanup = () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    // not made, or gone
  }
  rmSync(work, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(130); });

/** Resolves with the time (ms since t0) at which LINE first appears on the child's stderr. */
const lineAt = (proc, t0, re) => new Promise((resolve, reject) => {
  let buf = '';
  const on = (d) => {
    buf += d;
    if (re.test(buf)) {
      proc.stderr.off('data', on);
      resolve(performance.now() - t0);
    }
  };
  proc.stderr.on('data', on);
  proc.once('exit', (c) => reject(new Error(`the data plane exited ${c} before ${re}: ${buf.slice(-2000)}`)));
});

async function once(n, backend) {
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const cmds = ['link add u0 type veth peer name u1', 'link set u0 up', 'link set u1 up'];
    for (let i = 0; i < n; i++) cmds.push(`link add r${i} type veth peer name p${i}`, `link set r${i} up`, `link set p${i} up`);
    execFileSync('ip', ['-n', ns, '-batch', '-'], { input: cmds.join('\n') + '\n' });
    const netns = `/run/netns/${ns}`;
    const mac = (i) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const config = path.join(work, 'dp.json');
    writeFileSync(config, JSON.stringify({
      node: ns, backend, stateDir: path.join(work, `state${n}`), socket: path.join(work, `dp${n}.sock`),
      uplink: { ifname: 'u0', netns, vtep: '192.0.2.1' },
      // Pods' MTU within what the 1500-byte underlay carries: no advice logged per attach.
      attachments: Array.from({ length: n }, (_, i) => ({ representor: `r${i}`, netns, vni: 100, mac: mac(i), mtu: 1450 })),
    }));
    const t0 = performance.now();
    child = spawn(process.execPath, [path.join(here, 'bin', 'vfplane.js'), 'dataplane', 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    const started = await lineAt(child, t0, /control socket /);
    const t1 = performance.now();
    const stoppedLine = lineAt(child, t1, /stopped: /);
    const exited = new Promise((r) => child.once('exit', () => r(performance.now() - t1)));
    child.kill('SIGTERM');
    const stopped = await stoppedLine;
    const exit = await exited;
    child = null;
    return { started, stopped, exit };
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

try {
  const args = process.argv.slice(2);
  const bi = args.indexOf('--backend');
  const backend = bi >= 0 ? args.splice(bi, 2)[1] : 'afpacket';
  if (backend !== 'afpacket' && backend !== 'afxdp') throw new Error(`--backend ${backend}: expected afpacket or afxdp`);
  const counts = args.map(Number);
  for (const n of counts.length ? counts : [1, 64, 255]) {
    if (!Number.isInteger(n) || n < 1 || n > 1023) throw new Error(`attachment count ${n}: expected 1–1023`);
    const r = await once(n, backend);
    const s = (ms) => `${(ms / 1000).toFixed(2)} s`;
    console.log(`${backend}, ${n} attached VF(s): started in ${s(r.started)}, stopped ${s(r.stopped)} after SIGTERM, exited ${s(r.exit)} after it (${s(r.exit - r.stopped)} of exit after "stopped")`);
  }
} finally {
  cleanup();
}

#!/usr/bin/env node
// How much CPU an idle data plane takes with N attached ports: one worker (CPU 1, or 0
// on a 1-CPU machine) on N AF_PACKET ports over veths in a namespace of its own, committed
// as an uplink and N-1 attachments, no traffic; prints the process's CPU over 5 s.
//   sudo node scripts/bench-idle.mjs [N ...]      (default: 1 128 255)
// Everything it makes is named vfpidle<pid> and removed on exit, also on failure.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';

const here = new URL('..', import.meta.url).pathname;
const { DataPlane } = await import(`${here}dist/dataplane/dp.js`);
const { resolveTunnel } = await import(`${here}dist/packet/config.js`);
const { parseMac, parseIp } = await import(`${here}dist/util/addr.js`);

const ticks = () => readdirSync('/proc/self/task').reduce((t, id) => {
  const f = readFileSync(`/proc/self/task/${id}/stat`, 'utf8').split(') ')[1].split(' ');
  return t + Number(f[11]) + Number(f[12]);
}, 0);
const hz = 100; // USER_HZ on Linux
const cpu = os.availableParallelism() > 1 ? 1 : 0;

async function idle(n) {
  const ns = `vfpidle${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  let dp;
  try {
    for (let i = 0; i < n; i++) {
      execFileSync('ip', ['-n', ns, 'link', 'add', `i${i}`, 'type', 'veth', 'peer', 'name', `j${i}`]);
      execFileSync('ip', ['-n', ns, 'link', 'set', `i${i}`, 'up']);
      execFileSync('ip', ['-n', ns, 'link', 'set', `j${i}`, 'up']);
    }
    dp = new DataPlane({ workers: 1, cpus: [cpu] });
    const ports = [];
    for (let i = 0; i < n; i++) ports.push(dp.openPort('afpacket', { ifname: `i${i}`, netns: `/run/netns/${ns}`, ring: 2, rxRingMiB: 1, txFrames: 64 }, `p${i}`));
    dp.commit({
      uplink: ports[0].slot, uplinkMac: parseMac('02:aa:00:00:00:01'), tunnel: resolveTunnel({ local: '192.0.2.1', remote: '192.0.2.2' }),
      peers: [{ vtep: parseIp('192.0.2.2').bytes, mac: parseMac('02:bb:00:00:00:02') }], fdb: [], floods: [], extraVnis: [],
      learn: true, antiSpoof: true, icmpTooBig: false, verifyUdpCsum: false,
      atts: ports.slice(1).map((p, i) => ({ port: p.slot, vni: 100, mac: parseMac(`02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`) })),
    });
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = ticks(), w0 = Date.now();
    await new Promise((r) => setTimeout(r, 5000));
    return ((ticks() - t0) / hz) / ((Date.now() - w0) / 1000);
  } finally {
    dp?.stop();
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

const counts = process.argv.slice(2).map(Number);
for (const n of counts.length ? counts : [1, 128, 255]) {
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new Error(`port count ${n}: expected 1–1024`);
  console.log(`${n} AF_PACKET port(s), idle: ${(100 * (await idle(n))).toFixed(1)}% of a core (the process, over 5 s; worker on CPU ${cpu})`);
}

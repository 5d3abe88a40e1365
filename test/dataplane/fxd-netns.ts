// Namespaces and links for the daemon's edge tests (attach guards, state file, socket
// changes): every name starts with `fxd` and this process's id, and what is made here is
// deleted by the test, on exit, and (stale ones of dead processes) at the next start.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pidAlive } from '../../src/util/proc.js';
import { startDataplane } from '../helpers/cli.js';

let counter = 0;
const made = new Set<string>();

const ip = (args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

for (const n of spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout?.split('\n').map((l) => l.split(' ')[0]!) ?? []) {
  const m = /^fxd(\d+)-/.exec(n);
  if (m && !pidAlive(Number(m[1]))) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
}
process.on('exit', () => { for (const n of made) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' }); });

export interface FxdNetns {
  name: string;
  path: string;
  ip(args: string[]): string;
  exec(cmd: string, args: string[]): string;
  sysctl(key: string): string;
  destroy(): void;
}

export function fxdNetns(tag: string): FxdNetns {
  const name = `fxd${process.pid}-${tag}${counter++}`;
  ip(['netns', 'add', name]);
  made.add(name);
  const ns: FxdNetns = {
    name,
    path: `/run/netns/${name}`,
    ip: (args) => ip(['-n', name, ...args]),
    exec: (cmd, args) => execFileSync('ip', ['netns', 'exec', name, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 }),
    sysctl: (key) => execFileSync('ip', ['netns', 'exec', name, 'sysctl', '-n', key], { encoding: 'utf8' }).trim(),
    destroy: () => { spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' }); made.delete(name); },
  };
  ns.ip(['link', 'set', 'lo', 'up']);
  return ns;
}

/** A short interface name (≤ 15 characters) starting with fxd. */
export function fxdIfname(tag: string): string {
  return `fxd${tag}${(process.pid % 10000).toString(36)}${(counter++).toString(36)}`.slice(0, 15);
}

/** A veth pair with both ends in `ns`, the first up. */
export function fxdVeth(ns: FxdNetns, a: string, b: string): void {
  ip(['link', 'add', a, 'netns', ns.name, 'type', 'veth', 'peer', 'name', b, 'netns', ns.name]);
  ns.ip(['link', 'set', b, 'up']);
}

/** A scratch directory for one test (config, state, socket). */
export function fxdDir(tag: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `fxd-${tag}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A data plane on an uplink veth in `ns`: writes its config (extra fields merged in)
 *  and starts it. */
export async function fxdDataplane(ns: FxdNetns, uplink: string, dir: string, extra: Record<string, unknown> = {}) {
  const config = join(dir, 'dp.json');
  const socket = join(dir, 'dp.sock');
  const stateDir = join(dir, 'state');
  writeFileSync(config, JSON.stringify({ node: 'fxd', backend: 'afpacket', uplink: { ifname: uplink, netns: ns.path, vtep: '192.0.2.1' }, stateDir, socket, ...extra }));
  const dp = await startDataplane(config, 'the data plane');
  return { ...dp, config, socket, stateDir };
}

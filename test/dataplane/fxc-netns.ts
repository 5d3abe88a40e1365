// Namespaces and links for the control-socket and netdev-lock tests: every name starts
// with `fxc` and this process's id; what is made here is deleted by the test, on exit,
// and (stale ones of dead processes) at the next start.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pidAlive } from '../../src/util/proc.js';

let counter = 0;
const made = new Set<string>();

const ip = (args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

for (const n of spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout?.split('\n').map((l) => l.split(' ')[0]!) ?? []) {
  const m = /^fxc(\d+)-/.exec(n);
  if (m && !pidAlive(Number(m[1]))) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
}
process.on('exit', () => { for (const n of made) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' }); });

export interface FxcNetns {
  name: string;
  path: string;
  ip(args: string[]): string;
  sysctl(key: string): string;
  destroy(): void;
}

export function fxcNetns(tag: string): FxcNetns {
  const name = `fxc${process.pid}-${tag}${counter++}`;
  ip(['netns', 'add', name]);
  made.add(name);
  const ns: FxcNetns = {
    name,
    path: `/run/netns/${name}`,
    ip: (args) => ip(['-n', name, ...args]),
    sysctl: (key) => execFileSync('ip', ['netns', 'exec', name, 'sysctl', '-n', key], { encoding: 'utf8' }).trim(),
    destroy: () => { spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' }); made.delete(name); },
  };
  ns.ip(['link', 'set', 'lo', 'up']);
  return ns;
}

/** A short interface name (≤ 15 characters) starting with fxc. */
export function fxcIfname(tag: string): string {
  return `fxc${tag}${(process.pid % 10000).toString(36)}${(counter++).toString(36)}`.slice(0, 15);
}

/** A veth pair with both ends in `ns`, the second up (the first is for a data plane). */
export function fxcVeth(ns: FxcNetns, a: string, b: string): void {
  ip(['link', 'add', a, 'netns', ns.name, 'type', 'veth', 'peer', 'name', b, 'netns', ns.name]);
  ns.ip(['link', 'set', b, 'up']);
}

/** A scratch directory for one suite (configs, state, sockets). */
export function fxcDir(tag: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `fxc-${tag}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// Real network namespaces and veth links for integration tests. Every name carries the
// prefix `vfpt` and this process's id, so tests never touch the host's links; everything
// made is deleted after the suite, on process exit, and stale leftovers of dead test
// processes are swept at start.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pidAlive } from '../../src/util/proc.js';

// VFPLANE_TEST_NETNS_PREFIX: a run that must keep its namespaces and links under a prefix of its own.
const PREFIX = process.env.VFPLANE_TEST_NETNS_PREFIX || 'vfpt';
let counter = 0;
const created = new Set<string>();

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Deletes namespaces left behind by test processes that no longer exist. */
export function sweepStale(): void {
  let names: string[] = [];
  try {
    names = ip(['netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
  } catch {
    return;
  }
  for (const n of names) {
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(n);
    if (m && !pidAlive(Number(m[1])) ) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  }
}

export function cleanupAll(): void {
  for (const n of created) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  created.clear();
}

process.on('exit', cleanupAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    cleanupAll();
    process.exit(130);
  });
}

export class Netns {
  private constructor(readonly name: string) {}

  /** Its path, as a CNI runtime or a data-plane config names it. */
  get path(): string {
    return `/run/netns/${this.name}`;
  }

  static create(tag: string): Netns {
    const name = `${PREFIX}${process.pid}-${tag}${counter++}`;
    ip(['netns', 'add', name]);
    created.add(name);
    const ns = new Netns(name);
    ns.ip(['link', 'set', 'lo', 'up']);
    return ns;
  }

  ip(args: string[]): string {
    return ip(['-n', this.name, ...args]);
  }

  /** Runs a program inside the namespace (argv, never a shell string). */
  exec(cmd: string, args: string[], opts: { input?: string; timeout?: number } = {}): string {
    return execFileSync('ip', ['netns', 'exec', this.name, cmd, ...args], {
      encoding: 'utf8', input: opts.input, timeout: opts.timeout ?? 30_000, stdio: ['pipe', 'pipe', 'pipe'],
    });
  }

  sysctl(key: string, value: string): void {
    this.exec('sysctl', ['-qw', `${key}=${value}`]);
  }

  readSysctl(key: string): string {
    return this.exec('sysctl', ['-n', key]).trim();
  }

  mac(dev: string): string {
    const j = JSON.parse(this.ip(['-j', 'link', 'show', 'dev', dev])) as { address: string }[];
    return j[0]!.address;
  }

  destroy(): void {
    spawnSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    created.delete(this.name);
  }
}

/** A short unique interface name (≤ 15 chars). */
export function ifname(tag: string): string {
  return `${process.env.VFPLANE_TEST_NETNS_PREFIX || 'vf'}${tag}${(process.pid % 10000).toString(36)}${(counter++).toString(36)}`.slice(0, 15);
}

/** A veth pair with one end in each namespace. */
export function vethPair(a: Netns, aName: string, b: Netns, bName: string): void {
  ip(['link', 'add', aName, 'netns', a.name, 'type', 'veth', 'peer', 'name', bName, 'netns', b.name]);
}

/** A veth pair with both ends in `ns`, the second up (the first is for a data plane). */
export function vethIn(ns: Netns, a: string, b: string): void {
  vethPair(ns, a, ns, b);
  ns.ip(['link', 'set', b, 'up']);
}

/** A scratch directory for one suite or test (configs, state, sockets). */
/** A temporary directory, made when `dir` is first read: suites declare one at describe
 *  level, whose body vitest collects also when a filter (-t) or a skipped privileged
 *  describe means no test and no hook runs; made eagerly, it was left behind then. */
export function scratchDir(tag: string): { readonly dir: string; remove(): void } {
  let made: string | undefined;
  return {
    get dir() {
      return (made ??= mkdtempSync(join(tmpdir(), `vfplane-${tag}-`)));
    },
    remove: () => {
      if (made) rmSync(made, { recursive: true, force: true });
      made = undefined;
    },
  };
}


const RAWSOCK = fileURLToPath(new URL('./rawsock.py', import.meta.url));
// Debian's python3 (stdlib only is needed; /usr/bin avoids a pyenv python on PATH).
const PY = '/usr/bin/python3';

export interface Capture {
  /** Resolves when the socket is bound and drained: send after this. */
  ready: Promise<void>;
  /** Resolves with the captured frames when COUNT arrived or the timeout passed. */
  done: Promise<Uint8Array[]>;
  /** For each captured frame, in order: when the capture read it (seconds, the capturing
   *  process's monotonic clock) and whether it was leaving the interface. */
  meta: { t: number; outgoing: boolean }[];
}

/** Captures frames arriving on `dev` in `ns` (null: the host namespace) with an AF_PACKET socket. */
export function capture(ns: Netns | null, dev: string, o: { count: number; timeoutS: number; incoming?: boolean; udpDport?: number; vlan?: boolean }): Capture {
  const args = [RAWSOCK, 'capture', dev, String(o.count), String(o.timeoutS)];
  if (o.incoming) args.push('--incoming');
  // The kernel strips a received outer VLAN tag into metadata; vlan puts it back.
  if (o.vlan) args.push('--vlan');
  if (o.udpDport !== undefined) args.push('--udp-dport', String(o.udpDport));
  const child = ns ? spawn('ip', ['netns', 'exec', ns.name, PY, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(PY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  let stderr = '';
  const frames: Uint8Array[] = [];
  const meta: Capture['meta'] = [];
  let onReady!: () => void;
  let onFail!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => { onReady = res; onFail = rej; });
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdout.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === 'READY') onReady();
      else if (line) {
        const j = JSON.parse(line) as { hex: string; t: number; pkttype: number };
        frames.push(Uint8Array.from(Buffer.from(j.hex, 'hex')));
        meta.push({ t: j.t, outgoing: j.pkttype === 4 });
      }
    }
  });
  const done = new Promise<Uint8Array[]>((res, rej) => {
    child.on('close', (code) => {
      if (code === 0) res(frames);
      else {
        const e = new Error(`capture on ${dev} in ${ns?.name ?? 'the host namespace'} exited ${code}: ${stderr}`);
        onFail(e);
        rej(e);
      }
    });
  });
  return { ready, done, meta };
}

/** Sends raw frames out of `dev` in `ns` with an AF_PACKET socket (rawsock.py send), and
 *  checks that every one went. */
export function inject(ns: Netns, dev: string, frames: Uint8Array[]): void {
  const out = ns.exec(PY, [RAWSOCK, 'send', dev], { input: frames.map((f) => Buffer.from(f).toString('hex')).join('\n') + '\n' });
  const sent = (JSON.parse(out) as { sent: number }).sent;
  if (sent !== frames.length) throw new Error(`sent ${sent} of ${frames.length} frames on ${dev}`);
}

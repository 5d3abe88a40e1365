// `vfplane cni serve`: vfplane-cni kept warm. The runtime still execs a plugin per pod
// interface, but what it execs is a small C shim (native/cni-shim) that forwards the call
// here over a Unix socket; this process already has Node, the config schema, the store
// and the discovery code loaded, and runs the very same main() the standalone plugin
// runs, with the runtime's environment, and sends its stdout and stderr back. Without a
// server the shim execs the Node plugin, so nothing depends on it.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { main } from './main.js';
import { keepHandles } from './plugin.js';
import { makeDirs } from '../util/fs.js';
import { systemError } from '../util/errors.js';
import { probe, refuseNonSocket, type SocketOwner } from '../dataplane/control.js';
import { revalidateProfiles } from '../sriov/profile.js';

export const DEFAULT_CNI_SOCKET = '/run/vfplane/cni.sock';
// Version 1 (a shim from before) sent only CNI_* and took back stdout alone; version 2
// sends the whole environment and takes back stderr too.
const MAGIC_V1 = 'VFPCNI1\n';
const MAGIC = 'VFPCNI2\n';
const MAX_REQUEST = 4 << 20; // a network config with a large prevResult is still far below
const MAX_STDERR = 256 << 10;
// "Run the plugin yourself": the server ran nothing (see foreignSettings, readRequest).
const RUN_SELF = 'RUNSELF\n';

/** The CNI server's socket, in refuseNonSocket's words. */
export const CNI_SERVE_SOCKET: SocketOwner = { kind: 'socket', who: '`vfplane cni serve`', setting: '--socket' };

/** The vfplane settings (VFPLANE_*) a call's environment sets to values this server does
 *  not run with. The plugin's library reads them from its process's environment (sysfs
 *  root, state and profile directories, ...), which here is the server's: such a call is
 *  run by the shim itself, as it would be with no server, so that it gets what it asked. */
export function foreignSettings(env: Record<string, string>): string[] {
  return Object.keys(env).filter((k) => k.startsWith('VFPLANE_') && env[k] !== process.env[k]).sort();
}

/** Splits a request: the magic line, NAME=VALUE\0 pairs up to an empty one, then stdin.
 *  Version 1 requests keep only CNI_* (all they carried by design). */
export function parseRequest(buf: Buffer): { env: Record<string, string>; stdin: string; version: 1 | 2 } {
  const magic = buf.subarray(0, MAGIC.length).toString('latin1');
  if (magic !== MAGIC && magic !== MAGIC_V1) throw new Error('not a vfplane-cni shim request');
  const version = magic === MAGIC ? 2 : 1;
  const env: Record<string, string> = {};
  let i = MAGIC.length;
  for (;;) {
    const z = buf.indexOf(0, i);
    if (z < 0) throw new Error('truncated environment');
    if (z === i) {
      i++;
      break;
    }
    const kv = buf.subarray(i, z).toString('utf8');
    const eq = kv.indexOf('=');
    if (eq > 0 && (version === 2 || kv.startsWith('CNI_'))) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    i = z + 1;
  }
  return { env, stdin: buf.subarray(i).toString('utf8'), version };
}

/** The server's own environment without any CNI_* (what a version 1 call runs with,
 *  its own CNI_* on top). */
function baseEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('CNI_')) out[k] = v;
  return out;
}

/** The whole request, or null when it is larger than the server takes: then the shim is
 *  told to run the plugin itself (it has the request), and the connection closed. */
function readRequest(sock: net.Socket): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    sock.on('data', (c: Buffer) => {
      if (size > MAX_REQUEST) return;
      size += c.length;
      if (size > MAX_REQUEST) {
        sock.pause();
        sock.end(RUN_SELF, () => sock.destroy());
        resolve(null);
        return;
      }
      chunks.push(c);
    });
    sock.once('end', () => resolve(Buffer.concat(chunks)));
    sock.once('error', reject);
  });
}

// Calls for one attachment (container ID + interface) run one after another, as the
// spec promises plugins: a runtime that gave up on an ADD (killing the shim) and sent DEL
// must not have the DEL run while this process is still finishing that ADD.
const inFlight = new Map<string, Promise<unknown>>();

async function serialised<T>(key: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (!key) return fn();
  const prev = inFlight.get(key) ?? Promise.resolve();
  const run = prev.catch(() => undefined).then(fn);
  const tail = run.catch(() => undefined);
  inFlight.set(key, tail);
  try {
    return await run;
  } finally {
    if (inFlight.get(key) === tail) inFlight.delete(key);
  }
}

/** One line per call for the server's log: what was asked, for whom, how it ended
 *  (a failure's CNI code and message), and how long it took. */
export function callLine(env: Record<string, string>, code: number, stdout: string, ms: number): string {
  const who = [env.CNI_CONTAINERID ? `container ${env.CNI_CONTAINERID.slice(0, 12)}` : '', env.CNI_IFNAME ?? ''].filter(Boolean).join(' ');
  let how = 'ok';
  if (code !== 0) {
    let e: { code?: unknown; msg?: unknown } = {};
    try {
      e = JSON.parse(stdout) as typeof e;
    } catch {
      // no CNI error object: the exit status says it
    }
    how = `failed (exit ${code}${typeof e.code === 'number' ? `, code ${e.code}` : ''})${typeof e.msg === 'string' ? `: ${e.msg}` : ''}`;
  }
  return `vfplane cni serve: ${env.CNI_COMMAND ?? '(no CNI_COMMAND)'}${who ? ` ${who}` : ''}: ${how} in ${ms.toFixed(1)} ms`;
}

/** How long a connection may take to send its request: the shim sends it in one write
 *  and shuts its side at once, so a connection silent this long is not a shim's. */
export const REQUEST_TIMEOUT_MS = 10_000;

async function handle(sock: net.Socket, log: (m: string) => void, reading: Set<net.Socket>): Promise<void> {
  reading.add(sock);
  sock.setTimeout(REQUEST_TIMEOUT_MS, () => {
    log(`vfplane cni serve: a connection sent no whole request in ${REQUEST_TIMEOUT_MS / 1000} s: closed`);
    sock.destroy();
  });
  let buf: Buffer | null;
  try {
    buf = await readRequest(sock);
  } finally {
    reading.delete(sock);
    sock.setTimeout(0); // the call itself may take long (an attach waiting on its data plane)
  }
  if (buf === null) return void log(`vfplane cni serve: a request larger than ${MAX_REQUEST} bytes: its shim runs the plugin itself`);
  // A liveness probe (doctor, a second server starting) connects and closes: not a call.
  if (buf.length === 0) return void sock.destroy();
  const { env, stdin, version } = parseRequest(buf);
  const foreign = version === 2 ? foreignSettings(env) : [];
  if (foreign.length) {
    log(`vfplane cni serve: ${/^[AEIOU]/.test(env.CNI_COMMAND ?? '') ? 'an' : 'a'} ${env.CNI_COMMAND ?? ''} call sets ${foreign.join(', ')} other than this server runs with: its shim runs the plugin itself`);
    return void sock.end(RUN_SELF);
  }
  // An hw-profile edited since the last call counts from this one, as for a plugin run
  // standalone (which reads them afresh each time).
  revalidateProfiles();
  const key = env.CNI_CONTAINERID && env.CNI_IFNAME ? `${env.CNI_CONTAINERID}\u0000${env.CNI_IFNAME}` : undefined;
  let out = '';
  const err: Buffer[] = [];
  let errBytes = 0;
  const t0 = process.hrtime.bigint();
  const code = await serialised(key, () => main(version === 2 ? env : { ...baseEnv(), ...env }, {
    readStdin: async () => stdin,
    stdout: (t) => (out += t),
    stderr: (t) => {
      // The call's stderr goes back to the runtime (capped: a delegate may be chatty) and
      // into this server's log.
      log(t.trimEnd());
      const b = Buffer.from(t, 'utf8');
      if (errBytes + b.length <= MAX_STDERR) err.push(b), errBytes += b.length;
    },
  }));
  log(callLine(env, code, out, Number(process.hrtime.bigint() - t0) / 1e6));
  if (sock.destroyed) return;
  if (version === 1) return void sock.end(`${code}\n${out}`);
  const e = Buffer.concat(err);
  sock.end(Buffer.concat([Buffer.from(`${code} ${e.length}\n`, 'latin1'), e, Buffer.from(out, 'utf8')]));
}

/** Whether a server on SOCKET answers a VERSION call within TIMEOUTMS, through the
 *  shim's protocol: a stopped or hung server still accepts connections (the kernel does
 *  that), so a connect alone says nothing. Null when it answered; else why not. */
export function askVersion(socket: string, timeoutMs = 2000): Promise<string | null> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    let got = '';
    const done = (why: string | null) => {
      clearTimeout(t);
      c.destroy();
      resolve(why);
    };
    const t = setTimeout(() => done(`no answer to a VERSION call within ${timeoutMs} ms`), timeoutMs);
    c.once('connect', () => c.end(Buffer.concat([Buffer.from(MAGIC, 'latin1'), Buffer.from('CNI_COMMAND=VERSION\0\0{"cniVersion":"1.0.0"}', 'utf8')])));
    c.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\n')) done(/^0 \d+\n/.test(got) ? null : `an unexpected answer to a VERSION call: ${JSON.stringify(got.slice(0, 40))}`);
    });
    c.once('end', () => done(got ? null : 'it closed the connection without an answer'));
    c.once('error', (e) => done(e.message));
  });
}

export interface CniServer {
  socket: string;
  close(): Promise<void>;
}

/** Listens on SOCKET (mode 0600); a stale socket file nobody answers on is replaced. */
export async function serveCni(socket: string = DEFAULT_CNI_SOCKET, log: (m: string) => void = (m) => process.stderr.write(m + '\n')): Promise<CniServer> {
  // Only a socket is replaced: a --socket naming a file must not cost the file.
  const there = refuseNonSocket(socket, CNI_SERVE_SOCKET);
  try {
    makeDirs(path.dirname(socket), 0o755);
  } catch (e) {
    throw systemError(`cannot make the directory of the socket ${socket}: ${(e as Error).message}; give --socket a path in a directory that exists or can be made`);
  }
  if (there) {
    if (await probe(socket)) throw new Error(`another vfplane cni server already listens on ${socket}; stop it or pass --socket`);
    fs.unlinkSync(socket);
  }
  // Store and sysfs handles stay open between calls (checked against their files each time).
  keepHandles(true);
  // allowHalfOpen: the shim shuts its write side to say "that was all"; the answer follows.
  // Connections still sending their request: a stop closes them (a call under way is
  // let finish; one that never sends would keep the server from ever stopping).
  const reading = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    handle(sock, log, reading).catch((err) => {
      log(`vfplane cni serve: ${(err as Error).message}`);
      sock.destroy();
    });
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    // Only root (the runtime) may ask: the socket changes the host's network.
    const old = process.umask(0o177);
    server.listen(socket, () => {
      process.umask(old);
      res();
    });
  });
  return {
    socket,
    close: () => new Promise<void>((res) => {
      server.close(() => {
        keepHandles(false);
        // Ours, unless something replaced it meanwhile: only a socket is removed.
        try {
          if (fs.lstatSync(socket).isSocket()) fs.rmSync(socket, { force: true });
        } catch {
          // gone already
        }
        res();
      });
      for (const sock of reading) sock.destroy();
    }),
  };
}

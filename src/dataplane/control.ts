// The data-plane control socket: a Unix stream socket (mode 0600) carrying one JSON
// object per line each way. A request is {op, ...args, id?}; a reply is {id, ok: true,
// ...} or {id, ok: false, error: {kind, message}}. A malformed line gets an error reply
// and the connection stays open: one bad client never stops the daemon.
import { accessSync, chmodSync, constants as fsConstants, existsSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { VfpError, type ErrorKind, invalid, systemError, unavailable } from '../util/errors.js';
import { nestedDeeperThan } from '../util/json.js';
import { makeDirs } from '../util/fs.js';
import { replyTimeoutMs } from './reply-timeout.js';

export type Handler = (req: Record<string, unknown>) => Promise<Record<string, unknown>> | Record<string, unknown>;

/** The longest request line (and reply line) the socket takes. */
export const MAX_LINE = 1 << 20;
/** Requests read from one connection and not yet answered. A client that pipelines more
 *  waits: the daemon reads no further until it has answered some. */
const MAX_QUEUED = 64;
/** Connections open at once. Each holds a descriptor: clients that connect and never
 *  close (20000 of them ran the daemon out of descriptors, and then every CLI call failed
 *  with a bare EPIPE) are turned away past this, with an error line, instead. */
export const MAX_CONNECTIONS = 256;
/** A connection that sends nothing, or holds an unfinished line, for this long is
 *  closed; so is one whose client has not read a reply for this long. */
export const IDLE_MS = 30_000;
/** How long a refused connection stays open to let its client send its request and
 *  read the refusal (rather than fail to write with EPIPE). */
const REFUSED_GRACE_MS = 250;

const errorLine = (kind: ErrorKind, message: string) => JSON.stringify({ ok: false, error: { kind, message } }) + '\n';

export interface ControlOpts {
  /** IDLE_MS unless given; VFPLANE_CONTROL_IDLE_MS (milliseconds) sets it for tests. */
  idleMs?: number;
  maxConnections?: number;
}

const MAX_DEPTH = 32;

export class ControlServer {
  private server: Server | null = null;
  private readonly conns = new Set<Socket>();
  private readonly idleMs: number;
  private readonly maxConnections: number;

  constructor(readonly path: string, private readonly handler: Handler, opts: ControlOpts = {}) {
    const envIdle = Number(process.env.VFPLANE_CONTROL_IDLE_MS);
    this.idleMs = opts.idleMs ?? (Number.isInteger(envIdle) && envIdle > 0 ? envIdle : IDLE_MS);
    this.maxConnections = opts.maxConnections ?? MAX_CONNECTIONS;
  }

  async listen(): Promise<void> {
    makeDirs(dirname(this.path), 0o700);
    if (refuseNonSocket(this.path)) {
      // A live daemon answers; a stale socket file from a crash does not.
      if (await probe(this.path)) throw new VfpError('conflict', `a data plane already listens on ${this.path}; stop it first or give another --socket`);
      unlinkSync(this.path);
    }
    const server = createServer((s) => this.serve(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(listenError(this.path, e)));
      // Made 0600 (umask 0177 around its creation): a socket made with the process's
      // umask and narrowed after could be connected to meanwhile (a umask 0 service
      // manager), and that connection outlives the chmod.
      const old = process.umask(0o177);
      server.listen(this.path, () => {
        process.umask(old);
        resolve();
      });
    });
    // Once listening, the only errors are failed accepts (EMFILE when the process is out
    // of descriptors): the connection is lost, the daemon must not be.
    server.on('error', () => {});
    chmodSync(this.path, 0o600);
    this.server = server;
  }

  /** The socket file removed under a running daemon (an operator's cleanup, a wiped
   *  directory): no client could reach it again. Listens anew on the path, keeping the
   *  connections already open; true when it did. */
  async relistenIfGone(): Promise<boolean> {
    if (!this.server || existsSync(this.path)) return false;
    const old = this.server;
    this.server = null;
    old.close(); // the listening socket only (Node unlinks the path now, before the new one exists)
    await this.listen();
    return true;
  }

  /** Turns a connection away with an error line. It is read (and what comes ignored) for
   *  a moment, so that its client's request is written and the refusal read. */
  private refuse(s: Socket, message: string): void {
    s.on('error', () => s.destroy());
    s.on('data', () => {});
    s.end(errorLine('system', message)); // not 'unavailable', which callers take for "not running"
    setTimeout(() => s.destroy(), REFUSED_GRACE_MS).unref();
  }

  private serve(s: Socket): void {
    if (this.conns.size >= this.maxConnections) {
      return this.refuse(s, `the data plane at ${this.path} has ${this.conns.size} control connections open, its limit; try again (connections idle for ${this.idleMs / 1000} s are closed), and find the client that holds them open (\`ss -xp src ${this.path}\`)`);
    }
    this.conns.add(s);
    s.on('close', () => this.conns.delete(s));
    s.on('error', () => s.destroy());
    let buf = '';
    let queued = 0;
    let chain = Promise.resolve();
    // Idle: nothing (or half a line) received for idleMs, or a reply the client has not
    // read for that long. A connection whose request the daemon is still working on is
    // not idle (the reply re-arms the timer).
    s.setTimeout(this.idleMs);
    s.on('timeout', () => {
      if (s.writableNeedDrain) return void s.destroy(); // it does not read: no line would reach it
      if (queued > 0) return;
      const secs = this.idleMs / 1000;
      s.end(errorLine('invalid', buf.trim()
        ? `an unfinished request (${buf.length} bytes without a newline) for ${secs} s; the connection is closed: end each request with "\\n"`
        : `no request for ${secs} s; the idle connection is closed`));
      setTimeout(() => s.destroy(), REFUSED_GRACE_MS).unref();
    });
    // Back-pressure: a client that sends faster than it reads its replies must not grow
    // the daemon (every reply it does not read would wait in memory). The connection is
    // not read while MAX_QUEUED requests wait for their answer or while a reply is not
    // yet handed to the kernel; the client's own writes then block.
    const pump = () => {
      let nl: number;
      while (queued < MAX_QUEUED && (nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        queued++;
        // One request at a time per connection, in order.
        chain = chain.then(() => this.answer(s, line)).then(() => {
          queued--;
          pump();
        });
      }
      if (s.destroyed) return;
      if (queued < MAX_QUEUED && !s.writableNeedDrain) s.resume();
      else s.pause();
    };
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE && !buf.includes('\n')) {
        s.end(errorLine('invalid', `request longer than ${MAX_LINE} bytes`));
        return;
      }
      pump();
    });
  }

  private async answer(s: Socket, line: string): Promise<void> {
    let id: unknown;
    let reply: Record<string, unknown>;
    try {
      let req: unknown;
      try {
        req = JSON.parse(line);
      } catch (e) {
        throw new VfpError('invalid', `the request is not JSON: ${(e as Error).message}`);
      }
      if (!req || typeof req !== 'object' || Array.isArray(req)) throw new VfpError('invalid', 'a request is a JSON object like {"op":"status"}');
      // No request nests deeply; one that does would overflow the stack of the checks
      // that walk it (a "Maximum call stack" system error).
      if (nestedDeeperThan(req, MAX_DEPTH)) throw new VfpError('invalid', `the request nests deeper than ${MAX_DEPTH} levels; no operation takes that`);
      id = (req as { id?: unknown }).id;
      if (typeof (req as { op?: unknown }).op !== 'string') throw new VfpError('invalid', 'the request has no "op" string; try {"op":"status"}');
      reply = { ...(await this.handler(req as Record<string, unknown>)), ok: true };
    } catch (e) {
      const kind: ErrorKind = e instanceof VfpError ? e.kind : 'system';
      reply = { ok: false, error: { kind, message: (e as Error).message } };
    }
    if (id !== undefined) reply.id = id;
    if (s.destroyed) return;
    // The next request of this connection waits until this reply is with the kernel.
    if (!s.write(JSON.stringify(reply, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)) + '\n')) {
      s.pause();
      await new Promise<void>((r) => {
        const done = () => (s.off('drain', done), s.off('close', done), r());
        s.on('drain', done);
        s.on('close', done);
      });
    }
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    // Only the socket this server bound goes: a listen() that failed or refused (the path
    // names someone else's file, or another daemon's socket) leaves the path alone.
    if (!this.server) return;
    await new Promise<void>((r) => this.server!.close(() => r()));
    this.server = null;
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

/** Whether a socket file is at `path` (a stale one may be replaced); throws when
 *  something else is there. A socket path that names a regular file (a typo like
 *  `socket: /var/lib/vfplane/alloc.db`) must not cost that file: only a socket is ever
 *  unlinked to listen (not a symbolic link either, wherever it points). */
/** Whose socket a path is for, in refuseNonSocket's words. */
export interface SocketOwner {
  kind: string;    // "control socket"
  who: string;     // "the data plane"
  setting: string; // what to fix
  note?: string;   // what else the setting may be
}

const DATA_PLANE_SOCKET: SocketOwner = {
  kind: 'control socket', who: 'the data plane', setting: '`socket` in the config (or --socket)', note: 'or nothing, for <stateDir>/dataplane.sock',
};

export function refuseNonSocket(path: string, o: SocketOwner = DATA_PLANE_SOCKET): boolean {
  checkSocketPathLength(path, o.setting);
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw systemError(`cannot check the control socket path ${path}: ${(e as Error).message}; is its directory readable by this user?`);
  }
  if (st.isSocket()) return true;
  const what = st.isDirectory() ? 'a directory' : st.isSymbolicLink() ? 'a symbolic link' : st.isFile() ? `a regular file (${st.size} bytes)` : 'not a socket';
  throw invalid(`the ${o.kind} path ${path} is ${what}, which ${o.who} will not replace; fix ${o.setting}: it must name a path of its own${o.note ? ` (${o.note})` : ''}, not an existing file`);
}

/** The longest Unix socket path: sun_path holds 108 bytes with the NUL. Node (libuv)
 *  cuts a longer one short and listens there unsaid, where no client looks. */
export const SOCKET_PATH_MAX = 107;

export function checkSocketPathLength(path: string, setting: string): void {
  const n = Buffer.byteLength(path);
  if (n > SOCKET_PATH_MAX) {
    throw invalid(`the socket path ${path} is ${n} bytes long, and a Unix socket's path is ${SOCKET_PATH_MAX} bytes at most; give ${setting} a shorter path`);
  }
}

/** Why the control socket cannot be made at PATH, in words that say which setting to fix. */
function listenError(path: string, e: Error): VfpError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? `${dirname(path)} does not take new files (${code})` : e.message;
  return systemError(`cannot listen on the control socket ${path}: ${why}; give \`socket\` in the config (or --socket) a path in a directory the data plane can create files in`);
}

/** Makes and removes a socket beside PATH, so that a path it cannot listen on is refused
 *  at the start of a daemon, before anything is claimed, not at its end. The directory is
 *  made as listen() makes it.
 *
 *  The socket tried is not PATH itself: a client that waits for PATH to appear (the
 *  DaemonSet's startup probe, a CNI ADD, a test) would find it, and then find it gone
 *  (ENOENT) or refusing (the daemon still opening its ports), and take that data plane
 *  for one that failed. It is a hidden name in the same directory (what the directory
 *  allows is what is tried; the path's length is checked apart). A stale socket at PATH
 *  is tried past too: listen() unlinks it, which the directory must allow as well. */
export async function trySocketPath(path: string): Promise<void> {
  try {
    makeDirs(dirname(path), 0o700);
  } catch (e) {
    throw listenError(path, e as Error);
  }
  const tryAt = trialPath(path);
  if (!tryAt) {
    // No hidden name fits beside it (a path at the length limit, its own name one
    // character): what the directory allows is asked instead.
    try {
      accessSync(dirname(path), fsConstants.W_OK | fsConstants.X_OK);
    } catch (e) {
      throw listenError(path, e as Error);
    }
    return;
  }
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(listenError(path, e)));
    server.listen(tryAt, () => resolve());
  });
  await new Promise<void>((r) => server.close(() => r())); // unlinks it
}

/** A free hidden name beside PATH for trySocketPath, within a socket path's length (a
 *  random one of 12 characters, or as long as PATH's own, where that fits); null when
 *  none fits or is free. */
function trialPath(path: string): string | null {
  const dir = dirname(path);
  const room = SOCKET_PATH_MAX - Buffer.byteLength(join(dir, '.'));
  const len = Math.min(Math.max(basename(path).length, 12), room);
  const alnum = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  for (let i = 0; len >= 1 && i < 16; i++) {
    const name = `.${[...randomBytes(len)].map((b) => alnum[b % alnum.length]).join('')}`;
    const p = join(dir, name);
    if (!lexists(p)) return p;
  }
  return null;
}

function lexists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** True when something answers on the socket. */
export function probe(path: string, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    const t = setTimeout(() => (s.destroy(), resolve(false)), timeoutMs);
    s.once('connect', () => (clearTimeout(t), s.destroy(), resolve(true)));
    s.once('error', () => (clearTimeout(t), resolve(false)));
  });
}

const refusals = new WeakSet<Error>();
const refusal = (e: VfpError) => (refusals.add(e), e);

/** Whether `request` failed with the daemon's own answer (it ran the request and said
 *  no), not for want of one (no daemon, a timeout, a closed connection). */
export function isRefusal(e: unknown): boolean {
  return e instanceof Error && refusals.has(e);
}

/** One request, one reply, waiting replyTimeoutMs(atMostMs) for it. Throws VfpError
 *  with the daemon's kind and message. */
export function request(path: string, req: Record<string, unknown>, atMostMs?: number): Promise<Record<string, unknown>> {
  let timeoutMs: number;
  try {
    timeoutMs = replyTimeoutMs(atMostMs);
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise((resolve, reject) => {
    let s = createConnection(path);
    let buf = '';
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(t);
      s.destroy();
      f();
    };
    // 'system', not 'unavailable': callers read 'unavailable' as "no data plane running"
    // (detachFromOverlay, gc's plan: it forgets the VF at its next start), which a data
    // plane that is slow to answer has not done.
    const t = setTimeout(() => settle(() => reject(systemError(`the data plane at ${path} did not answer ${String(req.op)} within ${timeoutMs} ms`, { timedOut: true }))), timeoutMs);
    /** The reply, when a whole line arrived; false otherwise. */
    const replied = (): boolean => {
      const nl = buf.indexOf('\n');
      if (nl < 0) return false;
      let r: { ok?: boolean; error?: { kind: ErrorKind; message: string } };
      try {
        r = JSON.parse(buf.slice(0, nl));
      } catch {
        settle(() => reject(systemError(`the data plane at ${path} sent a malformed reply`)));
        return true;
      }
      if (r.ok) settle(() => resolve(r as Record<string, unknown>));
      else settle(() => reject(refusal(new VfpError(r.error?.kind ?? 'system', r.error?.message ?? 'the data plane refused the request'))));
      return true;
    };
    // The daemon closed the connection before its reply (it is stopping, or turned the
    // connection away): said as such rather than as the write's EPIPE or ECONNRESET. Not
    // 'unavailable', which detachFromOverlay takes for a data plane that does not run.
    const closedEarly = (code: string) => settle(() => reject(systemError(
      `the data plane at ${path} closed the connection without answering ${String(req.op)} (${code}): it is stopping, or it turned the connection away (too many open); see its log, and try again`,
      { code, closedEarly: true })));
    const wire = () => {
      s.setEncoding('utf8');
      s.once('connect', () => s.write(JSON.stringify(req) + '\n'));
      s.on('data', (c: string) => {
        buf += c;
        // A reply is a line, and lines are capped (MAX_LINE) as requests are: whatever
        // listens on the socket a network config named cannot fill this process.
        if (buf.length > MAX_LINE && !buf.includes('\n')) {
          s.destroy();
          settle(() => reject(systemError(`${path} sent more than ${MAX_LINE} bytes without ending its reply to ${String(req.op)}: not a vfplane data plane`)));
          return;
        }
        replied();
      });
      s.once('end', () => replied() || closedEarly('EOF'));
      s.once('error', failed);
    };
    const failed = (e: NodeJS.ErrnoException) => {
      if (replied()) return; // a refusal already read is the better message
      if (e.code === 'EAGAIN' && !settled) {
        // The daemon's accept queue is full (a burst of clients, a busy moment): the
        // connection was never made; try again shortly, within the timeout.
        s.destroy();
        setTimeout(() => {
          if (settled) return;
          s = createConnection(path);
          wire();
        }, 20);
        return;
      }
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
        // A path that is no socket at all is a wrong --socket, not a stopped data plane.
        let kind = '';
        try {
          const st = statSync(path);
          if (!st.isSocket()) kind = st.isDirectory() ? 'a directory' : st.isFile() ? 'a regular file' : 'no socket';
        } catch {
          // gone: ENOENT says so
        }
        const why = kind
          ? `${path} is ${kind}${kind === 'no socket' ? '' : ', not a socket'}: no data plane listens there; give the data plane's socket (--socket, or --state-dir of its state directory, where it is dataplane.sock)`
          : `no data plane listens on ${path} (${e.code}); start it with \`vfplane dataplane run --config FILE\``;
        settle(() => reject(unavailable(why, { code: e.code })));
      } else if (e.code === 'EPIPE' || e.code === 'ECONNRESET') closedEarly(e.code);
      else settle(() => reject(systemError(`cannot reach the data plane at ${path}: ${e.message}`)));
    };
    wire();
  });
}

/** What a release says of a VF whose data plane does not run (`request` failed with kind
 *  'unavailable'): it need not be asked. Also the words of `gc --dry-run`'s plan. */
export function notRunning(err: Error, pci: string): string {
  return `data plane not running (${err.message}); it forgets VF ${pci} when it starts`;
}

/** Takes a VF off the overlay of the data plane vfplane-cni attached it through (the
 *  allocation's attachment record: `dataplane` socket, `representor`, `vxlan`); nothing
 *  when it has no overlay attachment. A data plane that is not running is no error: when
 *  it starts again it drops attachments whose VF was released meanwhile. Used by CNI
 *  DEL and GC and by `vfplane gc`. */
export async function detachFromOverlay(att: { vxlan?: unknown; dataplane?: string; representor?: string } | null, pci: string, log?: (m: string, warning?: boolean) => void): Promise<void> {
  if (!att?.vxlan || !att.dataplane) return;
  try {
    const r = await request(att.dataplane, { op: 'detach', ...(att.representor ? { representor: att.representor } : { pci }) });
    // What the data plane adds to "done" (its state file could not keep the detach, the
    // config declares the attachment): a warning, as an attach's note is.
    if (typeof r.note === 'string') log?.(`the data plane detached VF ${pci}: ${r.note}`, true);
  } catch (err) {
    if (err instanceof VfpError && err.kind === 'unavailable') log?.(notRunning(err, pci));
    // Killed or stopping while it answered (or turning connections away): whether it
    // detached is unknown, and need not be known. Once the VF is released the data plane
    // detaches it on its own: its 2 s beat asks the allocation store, and so does a start.
    else if (err instanceof VfpError && err.details?.closedEarly) log?.(`${err.message.replace(/; see its log, and try again$/, '')}; it detaches VF ${pci} itself once the VF is released (its 2 s check of the allocation store, or its next start)`);
    else throw err;
  }
}

/** Where a data plane listens: its `socket`, or dataplane.sock in its state directory.
 *  What the daemon binds and what vfplane-cni and the CLI connect to. */
export function socketPath(c: { socket?: string | undefined; stateDir: string }): string {
  return c.socket ?? `${c.stateDir}/dataplane.sock`;
}

/** The socket a command that only looks for a data plane finds it at (doctor, set-numvfs):
 *  $VFPLANE_DATAPLANE_SOCKET, else the one under the state directory. */
export function localSocketPath(stateDir: string): string {
  return socketPath({ socket: process.env.VFPLANE_DATAPLANE_SOCKET || undefined, stateDir });
}

/** A CNI config's `vxlan` block, as far as the data plane reads it. */
export interface OverlayConf {
  vni: number;
  remote?: string;
  port?: number;
  local?: string;
  ttl?: number;
  learning?: boolean;
  dev?: string;
}

/** The `attach` request that puts a VF's representor on the overlay, from what
 *  vfplane-cni knows: its config's vxlan block and the pod. ADD sends it; a data plane
 *  rebuilds it from the allocation store's record when its state file is lost. */
export function overlayAttachRequest(v: {
  representor: string; pci: string; mac: string; vxlan: OverlayConf; mtu?: number; mtuAuto?: boolean;
  owner: { containerId?: string; ifname?: string; netns?: string; network?: string; podNamespace?: string; podName?: string; store?: string };
}): Record<string, unknown> {
  const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined));
  const { vni, remote, port, local, ttl, learning, dev } = v.vxlan;
  return {
    op: 'attach', representor: v.representor, pci: v.pci, vni, mac: v.mac,
    ...defined({ remote, port, local, ttl, learning, dev, mtu: v.mtu, mtuAuto: v.mtuAuto }), owner: defined(v.owner),
  };
}

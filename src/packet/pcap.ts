// Classic libpcap files (not pcapng): a streaming reader with bounded memory for the
// `pcap encap|decap` commands and tests, and a writer that only ever leaves a complete
// file behind (temp file in the same directory, fsync, rename on commit). Both also
// take a stream: the reader never seeks (a pipe, a FIFO, stdin as `-`), and the writer
// writes a FIFO, a device or stdout as it goes.
import { closeSync, fchmodSync, fchownSync, fsyncSync, lstatSync, openSync, readlinkSync, readSync, realpathSync, renameSync, statSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { Socket } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { sleepSync } from '../util/proc.js';

/** Largest snaplen and captured length accepted (tcpdump's and Wireshark's maximum). */
export const PCAP_MAX_SNAPLEN = 262144;
export const LINKTYPE_ETHERNET = 1;

const HEADER_LEN = 24;
const RECORD_HEADER_LEN = 16;
/** Read chunk; comfortably holds the largest record with its header. */
const CHUNK = 1 << 20;

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
const MAGIC_US_SWAPPED = 0xd4c3b2a1;
const MAGIC_NS_SWAPPED = 0x4d3cb2a1;
const MAGIC_PCAPNG = 0x0a0d0d0a;

/** A malformed or unsupported input file; `offset` is where in the file the fault is. */
export class PcapFormatError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    what: string,
  ) {
    super(`pcap file ${file}, byte offset ${offset}: ${what}`);
    this.name = 'PcapFormatError';
  }
}

export interface PcapHeader {
  littleEndian: boolean;
  nanos: boolean;
  versionMajor: number;
  versionMinor: number;
  /** 0 means unspecified. */
  snaplen: number;
  linktype: number;
}

export interface PcapRecord {
  tsSec: number;
  /** Microseconds or nanoseconds past tsSec, as the header says. */
  tsFrac: number;
  capLen: number;
  origLen: number;
  /** File offset of this record's 16-byte header. */
  offset: number;
  /** The captured bytes; a view into the reader's buffer, valid until the next next(). */
  data: Uint8Array;
}

function hex32(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}

/** The names of this process's own fd `fd` (after `-`): opened anew they would be another
 *  file than the one the fd holds (a socket cannot be opened at all; a redirect target
 *  would be replaced by a renamed temp file), so they are read or written as the fd. */
function namesFd(path: string, fd: 0 | 1): boolean {
  if (path === '-') return true;
  const p = resolve(path);
  return p === (fd === 0 ? '/dev/stdin' : '/dev/stdout') || p === `/dev/fd/${fd}` ||
    p === `/proc/self/fd/${fd}` || p === `/proc/thread-self/fd/${fd}` || p === `/proc/${process.pid}/fd/${fd}`;
}

/** True for `-` and the names of stdin (/dev/stdin, /dev/fd/0, /proc/self/fd/0): PcapReader.open reads fd 0. */
export const isStdin = (path: string): boolean => namesFd(path, 0);
/** True for `-` and the names of stdout (/dev/stdout, /dev/fd/1, /proc/self/fd/1): PcapWriter.create writes fd 1. */
export const isStdout = (path: string): boolean => namesFd(path, 1);

/** A descriptor another part of the process made non-blocking (Node does so to a pipe
 *  on stdout) says EAGAIN instead of waiting: wait for it here, briefly, and retry. */
function retryAgain<T>(op: () => T): T {
  for (;;) {
    try {
      return op();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      sleepSync(1);
    }
  }
}

/** A stream read through its async iterator; `rest` is the part of the last chunk that
 *  did not fit the reader's buffer. */
interface StreamSource {
  stream: Readable;
  chunks: AsyncIterator<Buffer | string>;
  rest: Uint8Array | null;
}

/** Copies the stream's next bytes into buf at off (as many as fit); 0 at its end. */
async function pull(src: StreamSource, buf: Uint8Array, off: number): Promise<number> {
  if (!src.rest) {
    const { value, done } = await src.chunks.next();
    if (done) return 0;
    src.rest = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  }
  const chunk = src.rest;
  const n = Math.min(chunk.length, buf.length - off);
  buf.set(chunk.subarray(0, n), off);
  src.rest = n < chunk.length ? chunk.subarray(n) : null;
  return n;
}

export class PcapReader {
  private fd: number | null;
  private readonly buf = new Uint8Array(CHUNK);
  private readonly view = new DataView(this.buf.buffer);
  /** Unread bytes are buf[start, end); buf[0] is at file offset `base`. */
  private start = 0;
  private end = 0;
  private base = 0;
  private eof = false;
  private readonly le: boolean;
  /** openAsync's stream; null: the fd is read with read(2). */
  private src: StreamSource | null = null;

  private constructor(
    readonly path: string,
    fd: number,
    /** False for stdin: not ours to close. */
    private readonly ownFd: boolean,
    /** openAsync: the stream the input comes from, and its first bytes, read already
     *  (fewer than a header only at its end). */
    streamed?: { first: Uint8Array; src: StreamSource },
  ) {
    this.fd = fd;
    if (streamed) {
      this.src = streamed.src;
      this.buf.set(streamed.first);
      this.end = streamed.first.length;
      this.eof = streamed.first.length < HEADER_LEN;
    }
    this.header = this.readHeader();
    this.le = this.header.littleEndian;
  }

  readonly header: PcapHeader;

  /** Opens and checks the file header; throws PcapFormatError or the fs error. `-` (or
   *  /dev/stdin) reads stdin, which errors then call "stdin" (or the name given). */
  static open(path: string): PcapReader {
    if (isStdin(path)) return new PcapReader(path === '-' ? 'stdin' : path, 0, false);
    const fd = openSync(path, 'r');
    try {
      return new PcapReader(path, fd, true);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /**
   * As open(), for a stream (stdin, a pipe or FIFO) that a writer fills as it goes. It is
   * read as Node reads a pipe (non-blocking, through the event loop), never in a blocking
   * read(): a signal's handler can run while it waits, and the process can exit then (a
   * read() left blocked on libuv's pool would hold process.exit until the writer sent
   * more). Read the records with next(), awaiting readMore() while needsInput() says
   * next() would wait.
   */
  static async openAsync(path: string): Promise<PcapReader> {
    const stdin = isStdin(path);
    // A FIFO's open waits for its writer, as open() does; its reads do not.
    const fd = stdin ? 0 : openSync(path, 'r');
    let stream: Readable;
    try {
      stream = stdin ? process.stdin : new Socket({ fd, readable: true, writable: false });
    } catch (err) {
      if (!stdin) closeSync(fd);
      throw err;
    }
    const src: StreamSource = { stream, chunks: stream[Symbol.asyncIterator](), rest: null };
    try {
      const first = new Uint8Array(HEADER_LEN);
      let got = 0;
      while (got < HEADER_LEN) {
        const n = await pull(src, first, got);
        if (n === 0) break;
        got += n;
      }
      return new PcapReader(stdin ? (path === '-' ? 'stdin' : path) : path, fd, !stdin, { first: first.subarray(0, got), src });
    } catch (err) {
      stream.destroy();
      throw err;
    }
  }

  /** Whether next() would have to read (and so, on a stream, wait for) more input:
   *  the next record is not whole in the buffer and the input has not ended. */
  needsInput(): boolean {
    if (this.eof || this.fd === null) return false;
    const have = this.end - this.start;
    if (have < RECORD_HEADER_LEN) return true;
    const capLen = this.view.getUint32(this.start + 8, this.le);
    // A length next() refuses is refused without waiting for that much input.
    return this.capLenProblem(capLen, this.view.getUint32(this.start + 12, this.le)) === null && have < RECORD_HEADER_LEN + capLen;
  }

  /** Takes in what input has come (at least a byte, or the end). A reader made by
   *  openAsync waits with the event loop free; another reads as next() does. */
  async readMore(): Promise<void> {
    if (this.fd === null) throw new Error(`pcap reader for ${this.path} is closed`);
    if (this.eof) return;
    this.compact();
    const r = this.src ? await pull(this.src, this.buf, this.end) : retryAgain(() => readSync(this.fd!, this.buf, this.end, this.buf.length - this.end, null));
    if (r === 0) this.eof = true;
    this.end += r;
  }

  /** The next record, or null at a clean end of file. */
  next(): PcapRecord | null {
    if (this.fd === null) throw new Error(`pcap reader for ${this.path} is closed`);
    const at = this.base + this.start;
    const got = this.fill(RECORD_HEADER_LEN);
    if (got === 0) return null;
    if (got < RECORD_HEADER_LEN) {
      throw this.error(at, `record header cut short: ${got} of ${RECORD_HEADER_LEN} bytes before the end of the file (truncated file)`);
    }
    const s = this.start;
    const v = this.view;
    const le = this.le;
    const tsSec = v.getUint32(s, le);
    const tsFrac = v.getUint32(s + 4, le);
    const capLen = v.getUint32(s + 8, le);
    const origLen = v.getUint32(s + 12, le);
    // Checked here, where the file and offset are known, rather than in a writer later.
    const fracLimit = this.header.nanos ? 1e9 : 1e6;
    if (tsFrac >= fracLimit) {
      throw this.error(at, `record timestamp fraction ${tsFrac} is not below ${fracLimit} ${this.header.nanos ? 'ns' : 'µs'} (one second; corrupt file?)`);
    }
    const bad = this.capLenProblem(capLen, origLen);
    if (bad) throw this.error(at, `record captured length ${capLen} exceeds ${bad} (corrupt file?)`);
    const have = this.fill(RECORD_HEADER_LEN + capLen);
    if (have < RECORD_HEADER_LEN + capLen) {
      throw this.error(at, `record data cut short: captured length ${capLen} but only ${have - RECORD_HEADER_LEN} bytes before the end of the file (truncated file)`);
    }
    const d = this.start + RECORD_HEADER_LEN;
    this.start = d + capLen;
    return { tsSec, tsFrac, capLen, origLen, offset: at, data: this.buf.subarray(d, d + capLen) };
  }

  close(): void {
    if (this.fd !== null) {
      const fd = this.fd;
      this.fd = null;
      // A stream's fd is its handle's to close (stdin's too: what is left unread is
      // nobody's now, and a handle still reading would keep the process alive).
      if (this.src) this.src.stream.destroy();
      else if (this.ownFd) closeSync(fd);
    }
  }

  private readHeader(): PcapHeader {
    const got = this.fill(HEADER_LEN);
    if (got < HEADER_LEN) {
      throw this.error(0, `the file is ${got} bytes long, shorter than the ${HEADER_LEN}-byte pcap file header`);
    }
    const v = this.view;
    const raw = v.getUint32(0, true);
    let littleEndian: boolean;
    let nanos: boolean;
    if (raw === MAGIC_US || raw === MAGIC_NS) {
      littleEndian = true;
      nanos = raw === MAGIC_NS;
    } else if (raw === MAGIC_US_SWAPPED || raw === MAGIC_NS_SWAPPED) {
      littleEndian = false;
      nanos = raw === MAGIC_NS_SWAPPED;
    } else if (raw === MAGIC_PCAPNG) {
      throw this.error(0, 'this is a pcapng file (block type 0x0a0d0d0a); only classic pcap is read. ' +
        'Convert it with: editcap -F pcap in.pcapng out.pcap');
    } else {
      throw this.error(0, `not a pcap file: magic ${hex32(v.getUint32(0, false))} is neither 0xa1b2c3d4 nor 0xa1b23c4d in either byte order`);
    }
    const versionMajor = v.getUint16(4, littleEndian);
    const versionMinor = v.getUint16(6, littleEndian);
    if (versionMajor !== 2) {
      throw this.error(4, `pcap version ${versionMajor}.${versionMinor} is not supported; expected 2.x`);
    }
    const snaplen = v.getUint32(16, littleEndian);
    if (snaplen > PCAP_MAX_SNAPLEN) {
      throw this.error(16, `snaplen ${snaplen} is larger than the maximum ${PCAP_MAX_SNAPLEN} (corrupt header?)`);
    }
    const lt = v.getUint32(20, littleEndian);
    if (lt !== LINKTYPE_ETHERNET) {
      const extra = lt >>> 16 ? ` with FCS/reserved bits ${hex32(lt & 0xffff0000)}` : '';
      throw this.error(20, `linktype ${lt & 0xffff}${extra} is not supported; only linktype 1 (Ethernet) is`);
    }
    this.start = HEADER_LEN;
    return { littleEndian, nanos, versionMajor, versionMinor, snaplen, linktype: lt };
  }

  /**
   * Makes up to `n` unread bytes available from buf[start]; returns how many are (fewer
   * only at end of file). Moves the unread tail to the front before reading more.
   */
  private fill(n: number): number {
    if (this.end - this.start >= n || this.eof) return Math.min(n, this.end - this.start);
    this.compact();
    // A stream is read by readMore() alone: waiting here would hold the event loop.
    if (this.src) throw new Error(`pcap reader for ${this.path}: await readMore() while needsInput() before next()`);
    while (this.end < n && !this.eof) {
      // From the current position, never a given offset: a pipe cannot seek (ESPIPE), and
      // stdin's position is where its reader is to start.
      const r = retryAgain(() => readSync(this.fd!, this.buf, this.end, this.buf.length - this.end, null));
      if (r === 0) this.eof = true;
      this.end += r;
    }
    return Math.min(n, this.end);
  }

  /** What a record's captured length exceeds (next() refuses it), or null when it fits;
   *  needsInput() asks too, so that a refused length is not waited for. */
  private capLenProblem(capLen: number, origLen: number): string | null {
    if (capLen > PCAP_MAX_SNAPLEN) return `the maximum ${PCAP_MAX_SNAPLEN}`;
    const snap = this.header.snaplen;
    if (snap !== 0 && capLen > snap) return `the file's snaplen ${snap}`;
    if (capLen > origLen) return `its original length ${origLen}`;
    return null;
  }

  /** Moves the unread tail to the front of the buffer. */
  private compact(): void {
    if (this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
      this.base += this.start;
      this.end -= this.start;
      this.start = 0;
    }
  }

  private error(offset: number, what: string): PcapFormatError {
    return new PcapFormatError(this.path, offset, what);
  }
}

export interface PcapWriterOptions {
  /** Nanosecond timestamps (magic 0xa1b23c4d); else microseconds. */
  nanos: boolean;
  snaplen?: number;
  linktype?: number;
}

type WriterState = 'open' | 'committed' | 'aborted';

/** Where a chain of symbolic links ending in nothing points (the file a write through
 *  it makes), or null when PATH is no symbolic link. */
function danglingTarget(path: string): string | null {
  let at = resolve(path);
  for (let hops = 0; hops < 40; hops++) {
    let l: Stats;
    try {
      l = lstatSync(at);
    } catch {
      return hops === 0 ? null : at;
    }
    if (!l.isSymbolicLink()) return hops === 0 ? null : at;
    at = resolve(dirname(at), readlinkSync(at));
  }
  return null; // a loop: open() says ELOOP
}

export class PcapWriter {
  private readonly buf = new Uint8Array(CHUNK);
  private readonly view = new DataView(this.buf.buffer);
  private used = 0;
  private fd: number | null;
  private state: WriterState = 'open';
  private count = 0;
  private readonly fracLimit: number;

  private constructor(
    readonly path: string,
    /** The temp file renamed into place on commit; null when writing into a stream. */
    private readonly tmp: string | null,
    fd: number,
    /** False for stdout: written into, never closed. */
    private readonly ownFd: boolean,
    readonly nanos: boolean,
    readonly snaplen: number,
    readonly linktype: number,
  ) {
    this.fd = fd;
    this.fracLimit = nanos ? 1e9 : 1e6;
    const v = this.view;
    v.setUint32(0, nanos ? MAGIC_NS : MAGIC_US, true);
    v.setUint16(4, 2, true);
    v.setUint16(6, 4, true);
    v.setInt32(8, 0, true); // thiszone: timestamps are UTC
    v.setUint32(12, 0, true); // sigfigs
    v.setUint32(16, snaplen, true);
    v.setUint32(20, linktype, true);
    this.used = HEADER_LEN;
  }

  /**
   * Starts writing `path`. Output goes to `.<name>.<pid>.tmp` beside it and only
   * replaces `path` on commit(), so an interrupted run never leaves a partial file. A
   * `path` that is a symlink to a file replaces the file it names. A FIFO or character
   * device (`/dev/stdout`, a pipe to tshark) is written into as it is, never replaced: a
   * stream has no "whole file" to wait for. Anything else that is not a regular file is
   * refused. `-` and the names of stdout (/dev/stdout, /proc/self/fd/1) write fd 1 as it
   * is, whatever it is: a pipe, a socket, or a redirect's file (written at fd 1's offset,
   * never replaced).
   */
  static create(path: string, opts: PcapWriterOptions): PcapWriter {
    const snaplen = opts.snaplen ?? PCAP_MAX_SNAPLEN;
    if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > PCAP_MAX_SNAPLEN) {
      throw new RangeError(`pcap snaplen ${snaplen} is outside 1–${PCAP_MAX_SNAPLEN}`);
    }
    const linktype = opts.linktype ?? LINKTYPE_ETHERNET;
    if (!Number.isInteger(linktype) || linktype < 0 || linktype > 0xffffffff) {
      throw new RangeError(`pcap linktype ${linktype} is not a 32-bit unsigned integer`);
    }
    if (isStdout(path)) return new PcapWriter(path, null, 1, false, opts.nanos, snaplen, linktype);
    let st: Stats | null = null;
    try {
      st = statSync(path); // follows a symlink: what it names is what is written
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    // A symlink to nothing yet: the file it names is made, the link kept.
    const dangling = st ? null : danglingTarget(path);
    if (st && (st.isFIFO() || st.isCharacterDevice())) {
      return new PcapWriter(path, null, openSync(path, 'w'), true, opts.nanos, snaplen, linktype);
    }
    if (st && !st.isFile()) {
      const what = st.isDirectory() ? 'a directory' : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : 'not a regular file';
      throw new Error(`${path} is ${what}, which vfplane will not overwrite; name a file`);
    }
    const target = st ? realpathSync(path) : dangling ?? path;
    // The name's length is the target's business: a temp name made longer than the
    // longest a directory takes (255 bytes) would fail on a valid target name.
    const name = basename(target);
    const tmp = join(dirname(target), `.${Buffer.byteLength(name) > 200 ? name.slice(0, 64) : name}.${process.pid}.tmp`);
    const fd = openSync(tmp, 'w', 0o644);
    if (st) {
      // A file replaced keeps its mode and owner (a capture made private stays private).
      try {
        fchmodSync(fd, st.mode & 0o7777);
        if (process.getuid?.() === 0) fchownSync(fd, st.uid, st.gid);
      } catch (err) {
        closeSync(fd);
        unlinkSync(tmp);
        throw err;
      }
    }
    return new PcapWriter(target, tmp, fd, true, opts.nanos, snaplen, linktype);
  }

  /** Records written so far. */
  get records(): number {
    return this.count;
  }

  /**
   * Appends a record. Data longer than the snaplen is cut to it, as a capture would,
   * with `origLen` (default: data.length) keeping the full length.
   */
  write(tsSec: number, tsFrac: number, data: Uint8Array, origLen = data.length): void {
    if (this.state !== 'open') throw new Error(`pcap writer for ${this.path} is already ${this.state}`);
    if (!Number.isInteger(tsSec) || tsSec < 0 || tsSec > 0xffffffff) {
      throw new RangeError(`pcap timestamp seconds ${tsSec} is outside 0–4294967295`);
    }
    if (!Number.isInteger(tsFrac) || tsFrac < 0 || tsFrac >= this.fracLimit) {
      throw new RangeError(`pcap timestamp fraction ${tsFrac} is outside 0–${this.fracLimit - 1} ${this.nanos ? 'ns' : 'µs'}`);
    }
    if (!Number.isInteger(origLen) || origLen < data.length || origLen > 0xffffffff) {
      throw new RangeError(`pcap original length ${origLen} is smaller than the data (${data.length} bytes) or not a 32-bit length`);
    }
    const capLen = Math.min(data.length, this.snaplen);
    if (this.used + RECORD_HEADER_LEN + capLen > this.buf.length) this.flush();
    const v = this.view;
    const u = this.used;
    v.setUint32(u, tsSec, true);
    v.setUint32(u + 4, tsFrac, true);
    v.setUint32(u + 8, capLen, true);
    v.setUint32(u + 12, origLen, true);
    this.buf.set(capLen === data.length ? data : data.subarray(0, capLen), u + RECORD_HEADER_LEN);
    this.used = u + RECORD_HEADER_LEN + capLen;
    this.count++;
  }

  /** Flushes, fsyncs and renames the file into place. On failure the temp file is removed. */
  commit(): void {
    if (this.state !== 'open') throw new Error(`pcap writer for ${this.path} is already ${this.state}`);
    try {
      this.flush();
      if (this.tmp === null) {
        if (this.ownFd) closeSync(this.fd!); // a stream: nothing to sync or rename
        this.fd = null;
        this.state = 'committed';
        return;
      }
      fsyncSync(this.fd!);
      closeSync(this.fd!);
      this.fd = null;
      renameSync(this.tmp, this.path);
    } catch (err) {
      this.abort();
      throw err;
    }
    this.state = 'committed';
    // The rename is durable only once the directory is; a failure here leaves a
    // complete file in place, so it is not an error.
    try {
      const dfd = openSync(dirname(this.path), 'r');
      try {
        fsyncSync(dfd);
      } finally {
        closeSync(dfd);
      }
    } catch {
      /* some filesystems refuse fsync on a directory */
    }
  }

  /** Discards the output: closes and removes the temp file. Safe to call twice, or after commit (then it does nothing). */
  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    if (this.fd !== null && this.ownFd) {
      try {
        closeSync(this.fd);
      } catch {
        /* already unusable; removing the file is what matters */
      }
    }
    this.fd = null;
    if (this.tmp === null) return; // a stream: what went out is gone
    try {
      unlinkSync(this.tmp);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  private flush(): void {
    let done = 0;
    while (done < this.used) done += retryAgain(() => writeSync(this.fd!, this.buf, done, this.used - done));
    this.used = 0;
  }
}

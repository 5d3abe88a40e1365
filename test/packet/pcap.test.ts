// Classic pcap reading and writing: round trips, large records across read-buffer refills,
// the writer's temp-file/commit/abort discipline, every malformed-input error with its
// offset, and interop both ways with scapy's pcap writer and reader.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStdin, isStdout, PcapFormatError, PcapReader, PcapWriter, type PcapHeader } from '../../src/packet/pcap.js';
import { describeScapy, hex, runScapy } from '../helpers/scapy.js';

const dir = mkdtempSync(join(tmpdir(), 'vfp-pcap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let seq = 0;
const fresh = (name = 'f') => join(mkdtempSync(join(dir, `${name}-${seq++}-`)), `${name}.pcap`);

interface Rec {
  tsSec: number;
  tsFrac: number;
  origLen: number;
  offset: number;
  hex: string;
}

function readAll(path: string): { header: PcapHeader; records: Rec[] } {
  const r = PcapReader.open(path);
  try {
    const records: Rec[] = [];
    for (let rec = r.next(); rec; rec = r.next()) {
      expect(rec.capLen).toBe(rec.data.length);
      records.push({ tsSec: rec.tsSec, tsFrac: rec.tsFrac, origLen: rec.origLen, offset: rec.offset, hex: hex(rec.data) });
    }
    expect(r.next()).toBeNull();
    return { header: r.header, records };
  } finally {
    r.close();
  }
}

/** A pcap file header, by hand. */
function fileHeader(o: { le?: boolean; magic?: number; major?: number; minor?: number; snaplen?: number; linktype?: number } = {}): Buffer {
  const b = Buffer.alloc(24);
  const le = o.le ?? true;
  const w32 = (v: number, at: number) => (le ? b.writeUInt32LE(v >>> 0, at) : b.writeUInt32BE(v >>> 0, at));
  const w16 = (v: number, at: number) => (le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  w32(o.magic ?? 0xa1b2c3d4, 0);
  w16(o.major ?? 2, 4);
  w16(o.minor ?? 4, 6);
  w32(o.snaplen ?? 65535, 16);
  w32(o.linktype ?? 1, 20);
  return b;
}

function record(data: Uint8Array, o: { le?: boolean; sec?: number; frac?: number; cap?: number; orig?: number } = {}): Buffer {
  const h = Buffer.alloc(16);
  const le = o.le ?? true;
  const w32 = (v: number, at: number) => (le ? h.writeUInt32LE(v, at) : h.writeUInt32BE(v, at));
  w32(o.sec ?? 1, 0);
  w32(o.frac ?? 2, 4);
  w32(o.cap ?? data.length, 8);
  w32(o.orig ?? data.length, 12);
  return Buffer.concat([h, data]);
}

function file(...parts: Buffer[]): string {
  const p = fresh('hand');
  writeFileSync(p, Buffer.concat(parts));
  return p;
}

function formatError(path: string, readRecords = true): PcapFormatError {
  try {
    const r = PcapReader.open(path);
    try {
      while (readRecords && r.next()) {
        /* read to the fault */
      }
    } finally {
      r.close();
    }
  } catch (err) {
    expect(err).toBeInstanceOf(PcapFormatError);
    const e = err as PcapFormatError;
    expect(e.file).toBe(path);
    expect(e.message).toContain(path);
    expect(e.message).toContain(`byte offset ${e.offset}`);
    return e;
  }
  throw new Error(`${path} was read without an error`);
}

const frame = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('pcap writer and reader round trip', () => {
  it('microsecond file: header, records, offsets, timestamps, origLen', () => {
    const p = fresh();
    const w = PcapWriter.create(p, { nanos: false });
    w.write(1700000000, 999999, frame(60));
    w.write(0, 0, frame(1514, 2), 9000);
    w.write(4294967295, 1, new Uint8Array(0));
    expect(w.records).toBe(3);
    w.commit();
    const bytes = readFileSync(p);
    expect(hex(bytes.subarray(0, 24))).toBe('d4c3b2a1020004000000000000000000000004000' + '1000000');
    const { header, records } = readAll(p);
    expect(header).toEqual({ littleEndian: true, nanos: false, versionMajor: 2, versionMinor: 4, snaplen: 262144, linktype: 1 });
    expect(records.map((r) => [r.tsSec, r.tsFrac, r.origLen, r.offset, r.hex.length / 2])).toEqual([
      [1700000000, 999999, 60, 24, 60],
      [0, 0, 9000, 24 + 16 + 60, 1514],
      [4294967295, 1, 0, 24 + 32 + 60 + 1514, 0],
    ]);
    expect(records[1]!.hex).toBe(hex(frame(1514, 2)));
  });

  it('nanosecond file, custom snaplen and linktype in the header; data past the snaplen is cut', () => {
    const p = fresh();
    const w = PcapWriter.create(p, { nanos: true, snaplen: 100, linktype: 1 });
    w.write(5, 999_999_999, frame(150));
    w.commit();
    const { header, records } = readAll(p);
    expect(header).toMatchObject({ nanos: true, snaplen: 100 });
    expect(records).toEqual([{ tsSec: 5, tsFrac: 999_999_999, origLen: 150, offset: 24, hex: hex(frame(100)) }]);
    expect(readFileSync(p).readUInt32LE(0)).toBe(0xa1b23c4d);
  });

  it('records bigger than the rest of the read chunk come through whole (bounded buffer refills)', () => {
    const p = fresh();
    const w = PcapWriter.create(p, { nanos: false });
    const sizes = [262144, 1, 200_000, 262144, 70_000, 262144, 262144, 33, 262144];
    sizes.forEach((n, i) => w.write(i, i, frame(n, i)));
    w.commit();
    const { records } = readAll(p);
    expect(records.map((r) => r.hex.length / 2)).toEqual(sizes);
    records.forEach((r, i) => expect(r.hex === hex(frame(sizes[i]!, i)), `record ${i}`).toBe(true));
  });

  it('an empty capture is just a header', () => {
    const p = fresh();
    PcapWriter.create(p, { nanos: false }).commit();
    expect(readFileSync(p).length).toBe(24);
    expect(readAll(p).records).toEqual([]);
  });

  it('the writer rejects bad timestamps, lengths and options', () => {
    const p = fresh();
    const w = PcapWriter.create(p, { nanos: false });
    expect(() => w.write(1, 1_000_000, frame(10))).toThrow(/fraction 1000000/);
    expect(() => w.write(-1, 0, frame(10))).toThrow(/seconds -1/);
    expect(() => w.write(1, 0, frame(10), 9)).toThrow(/original length 9/);
    w.abort();
    expect(() => PcapWriter.create(fresh(), { nanos: false, snaplen: 262145 })).toThrow(/snaplen 262145/);
  });
});

describe('pcap writer: never a partial file', () => {
  it('writes to a dot-temp file beside the target; commit renames it, leaving exactly one file', () => {
    const p = fresh('out');
    const d = join(p, '..');
    const w = PcapWriter.create(p, { nanos: false });
    w.write(1, 1, frame(64));
    expect(readdirSync(d)).toEqual([`.out.pcap.${process.pid}.tmp`]);
    w.commit();
    expect(readdirSync(d)).toEqual(['out.pcap']);
    w.abort(); // after commit: nothing to undo
    expect(existsSync(p)).toBe(true);
    expect(() => w.write(1, 1, frame(1))).toThrow(/already committed/);
    expect(() => w.commit()).toThrow(/already committed/);
  });

  it('abort removes the temp file and leaves no output, also over an existing file', () => {
    const p = fresh('out');
    const d = join(p, '..');
    writeFileSync(p, 'old');
    const w = PcapWriter.create(p, { nanos: true });
    for (let i = 0; i < 100; i++) w.write(i, 0, frame(20_000, i)); // past the write buffer: data hits the disk
    w.abort();
    w.abort();
    expect(readdirSync(d)).toEqual(['out.pcap']);
    expect(readFileSync(p, 'utf8')).toBe('old');
    expect(() => w.write(1, 1, frame(1))).toThrow(/already aborted/);
  });

  it('commit replaces an existing file', () => {
    const p = fresh('out');
    writeFileSync(p, 'old');
    const w = PcapWriter.create(p, { nanos: false });
    w.write(1, 2, frame(10));
    w.commit();
    expect(readAll(p).records).toHaveLength(1);
    expect(readdirSync(join(p, '..'))).toEqual(['out.pcap']);
  });

  it('fails up front for a directory that does not exist', () => {
    expect(() => PcapWriter.create(join(dir, 'nope', 'x.pcap'), { nanos: false })).toThrow(/ENOENT/);
  });
});

describe('pcap reader: byte order, precision, and bad input', () => {
  it('reads a big-endian nanosecond file made by hand', () => {
    const p = file(fileHeader({ le: false, magic: 0xa1b23c4d, snaplen: 0 }), record(frame(42), { le: false, sec: 0x01020304, frac: 999_999_999, orig: 60 }));
    const { header, records } = readAll(p);
    expect(header).toEqual({ littleEndian: false, nanos: true, versionMajor: 2, versionMinor: 4, snaplen: 0, linktype: 1 });
    expect(records).toEqual([{ tsSec: 0x01020304, tsFrac: 999_999_999, origLen: 60, offset: 24, hex: hex(frame(42)) }]);
  });

  it('accepts any 2.x version and snaplen 0 (unspecified)', () => {
    expect(readAll(file(fileHeader({ minor: 2, snaplen: 0 }), record(frame(5)))).records).toHaveLength(1);
  });

  it('a file shorter than the header: offset 0', () => {
    const e = formatError(file(fileHeader().subarray(0, 23)));
    expect([e.offset, e.message]).toEqual([0, expect.stringMatching(/23 bytes long, shorter than the 24-byte pcap file header/)]);
    expect(formatError(file(Buffer.alloc(0))).offset).toBe(0);
  });

  it('pcapng: says so and how to convert', () => {
    const ng = Buffer.alloc(28);
    ng.writeUInt32LE(0x0a0d0d0a, 0);
    ng.writeUInt32LE(28, 4);
    ng.writeUInt32LE(0x1a2b3c4d, 8);
    const e = formatError(file(ng));
    expect(e.offset).toBe(0);
    expect(e.message).toMatch(/pcapng/);
    expect(e.message).toContain('editcap -F pcap in.pcapng out.pcap');
  });

  it('wrong magic: offset 0, names the magic', () => {
    const e = formatError(file(fileHeader({ magic: 0x12345678, le: false })));
    expect(e.offset).toBe(0);
    expect(e.message).toMatch(/magic 0x12345678/);
  });

  it('version other than 2.x: offset 4', () => {
    const e = formatError(file(fileHeader({ major: 1, minor: 0 })));
    expect(e.offset).toBe(4);
    expect(e.message).toMatch(/version 1\.0/);
  });

  it('snaplen above 262144: offset 16', () => {
    const e = formatError(file(fileHeader({ snaplen: 262145 })));
    expect(e.offset).toBe(16);
    expect(e.message).toMatch(/snaplen 262145/);
  });

  it('a linktype other than Ethernet: offset 20, names the number', () => {
    const e = formatError(file(fileHeader({ linktype: 113, le: false })));
    expect(e.offset).toBe(20);
    expect(e.message).toMatch(/linktype 113 is not supported/);
    expect(formatError(file(fileHeader({ linktype: 0x10000001 }))).message).toMatch(/FCS/);
  });

  it('a record header cut short: the record offset', () => {
    const e = formatError(file(fileHeader(), record(frame(10)), record(frame(3)).subarray(0, 15)));
    expect(e.offset).toBe(24 + 26);
    expect(e.message).toMatch(/record header cut short: 15 of 16 bytes/);
  });

  it('captured length above 262144 even without a snaplen', () => {
    const e = formatError(file(fileHeader({ snaplen: 0 }), record(frame(1)), record(frame(4), { cap: 262145, orig: 300000 })));
    expect(e.offset).toBe(24 + 17);
    expect(e.message).toMatch(/captured length 262145 exceeds the maximum 262144/);
  });

  it('captured length above the snaplen', () => {
    const e = formatError(file(fileHeader({ snaplen: 100, le: false }), record(frame(101), { le: false })));
    expect(e.offset).toBe(24);
    expect(e.message).toMatch(/captured length 101 exceeds the file's snaplen 100/);
  });

  it('captured length above the original length', () => {
    const e = formatError(file(fileHeader(), record(frame(64), { orig: 60 })));
    expect(e.offset).toBe(24);
    expect(e.message).toMatch(/captured length 64 exceeds its original length 60/);
  });

  it('record data cut short: truncated file', () => {
    const e = formatError(file(fileHeader(), record(frame(64)), record(frame(100)).subarray(0, 16 + 99)));
    expect(e.offset).toBe(24 + 80);
    expect(e.message).toMatch(/data cut short: captured length 100 but only 99 bytes/);
  });

  it('a reader cannot be used after close', () => {
    const r = PcapReader.open(file(fileHeader()));
    r.close();
    r.close();
    expect(() => r.next()).toThrow(/closed/);
  });
});

describe('pcap reader on a stream (a FIFO: read as it comes, never seeked)', () => {
  /** A FIFO that `cat` fills with `bytes` (a process of its own: opening the FIFO blocks). */
  const fifoOf = (bytes: Buffer) => {
    const fifo = join(mkdtempSync(join(dir, 'fifo-')), 'in.fifo');
    execFileSync('mkfifo', [fifo]);
    const src = file(bytes);
    const cat = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', src, fifo], { stdio: 'ignore' });
    return { fifo, src, done: once(cat, 'close') };
  };

  it('reads every record, big ones across many short reads, as from the file', async () => {
    const p = fresh();
    const w = PcapWriter.create(p, { nanos: true });
    const sizes = [262144, 1, 200_000, 70_000, 262144, 33];
    sizes.forEach((n, i) => w.write(i, i, frame(n, i)));
    w.commit();
    const { fifo, done } = fifoOf(readFileSync(p));
    expect(readAll(fifo)).toEqual(readAll(p));
    await done;
  });

  it('a malformed stream: the same error at the same offset', async () => {
    const bytes = Buffer.concat([fileHeader(), record(frame(64)), record(frame(100)).subarray(0, 16 + 99)]);
    const { fifo, src, done } = fifoOf(bytes);
    const e = formatError(fifo);
    expect([e.offset, e.message.replace(fifo, 'X')]).toEqual([formatError(src).offset, formatError(src).message.replace(src, 'X')]);
    expect(e.offset).toBe(24 + 80);
    await done;
  });

  // openAsync (`pcap … --in -` and FIFOs): the same records, and the same errors, read
  // through the event loop, next() only once needsInput() says the record is whole.
  async function readAllAsync(path: string): Promise<{ header: PcapHeader; records: Rec[] }> {
    const r = await PcapReader.openAsync(path);
    try {
      const records: Rec[] = [];
      for (;;) {
        while (r.needsInput()) await r.readMore();
        const rec = r.next();
        if (!rec) break;
        records.push({ tsSec: rec.tsSec, tsFrac: rec.tsFrac, origLen: rec.origLen, offset: rec.offset, hex: hex(rec.data) });
      }
      return { header: r.header, records };
    } finally {
      r.close();
    }
  }

  it('openAsync reads every record of a stream as open() reads the file, big ones across many chunks', async () => {
    const p = fresh();
    const w = PcapWriter.create(p, { nanos: true });
    const sizes = [262144, 1, 200_000, 70_000, 262144, 33, 262144, 262144, 262144];
    sizes.forEach((n, i) => w.write(i, i, frame(n, i)));
    w.commit();
    const { fifo, done } = fifoOf(readFileSync(p));
    const got = await readAllAsync(fifo);
    expect(got.records).toHaveLength(sizes.length);
    expect(got).toEqual(readAll(p));
    await done;
  });

  it('openAsync on a malformed stream: the same error at the same offset, and on one cut inside the header', async () => {
    const bytes = Buffer.concat([fileHeader(), record(frame(64)), record(frame(100)).subarray(0, 16 + 99)]);
    const { fifo, src, done } = fifoOf(bytes);
    const e = await readAllAsync(fifo).then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(PcapFormatError);
    expect([(e as PcapFormatError).offset, (e as PcapFormatError).message.replace(fifo, 'X')]).toEqual([formatError(src).offset, formatError(src).message.replace(src, 'X')]);
    await done;
    const cut = fifoOf(fileHeader().subarray(0, 10));
    await expect(readAllAsync(cut.fifo)).rejects.toThrow(/the file is 10 bytes long, shorter than the 24-byte pcap file header/);
    await cut.done;
  });

  it('`-` and the names of stdin and stdout are the process\'s own fds; other paths are not', () => {
    for (const n of ['-', '/dev/stdin', '/dev/fd/0', '/proc/self/fd/0', `/proc/${process.pid}/fd/0`, '/dev//stdin']) expect(isStdin(n), n).toBe(true);
    for (const n of ['-', '/dev/stdout', '/dev/fd/1', '/proc/self/fd/1', `/proc/${process.pid}/fd/1`]) expect(isStdout(n), n).toBe(true);
    for (const n of ['./-', '/dev/stderr', '/proc/1/fd/1', 'stdout', '/dev/stdout.pcap', '/tmp/x.pcap']) {
      expect(isStdin(n) || isStdout(n), n).toBe(false);
    }
  });
});

interface ScapyPcap {
  files: Record<string, { littleEndian: boolean; nanos: boolean; records: { tsSec: number; tsFrac: number; hex: string; origLen: number }[] }>;
  ours: Record<string, { linktype: number; nano: boolean; records: { sec: number; usec: number; caplen: number; wirelen: number; hex: string }[]; dissects: string[] }>;
}

describeScapy('pcap interop with scapy', () => {
  let got: ScapyPcap;
  const sdir = mkdtempSync(join(dir, 'scapy-'));
  beforeAll(() => {
    // Our files first, so the one python run can read them back.
    const us = PcapWriter.create(join(sdir, 'us.ours.pcap'), { nanos: false });
    us.write(1700000000, 123456, frame(60));
    us.write(1700000001, 0, frame(100, 3), 1500);
    us.commit();
    const ns = PcapWriter.create(join(sdir, 'ns.ours.pcap'), { nanos: true });
    ns.write(1, 999_999_999, frame(14));
    ns.commit();
    got = runScapy<ScapyPcap>('pcap_files.py', [sdir]);
  });

  it('reads every file scapy wrote: both byte orders, µs and ns', () => {
    expect(Object.keys(got.files).sort()).toEqual(['be_ns.pcap', 'be_us.pcap', 'le_ns.pcap', 'le_us.pcap']);
    for (const [name, want] of Object.entries(got.files)) {
      const { header, records } = readAll(join(sdir, name));
      expect(header, name).toMatchObject({ littleEndian: want.littleEndian, nanos: want.nanos, linktype: 1 });
      expect(records.map(({ tsSec, tsFrac, origLen, hex }) => ({ tsSec, tsFrac, origLen, hex })), name).toEqual(want.records);
    }
  });

  it('scapy reads the files we wrote', () => {
    const us = got.ours['us.ours.pcap']!;
    expect(us.linktype).toBe(1);
    expect(us.nano).toBe(false);
    expect(us.records).toEqual([
      { sec: 1700000000, usec: 123456, caplen: 60, wirelen: 60, hex: hex(frame(60)) },
      { sec: 1700000001, usec: 0, caplen: 100, wirelen: 1500, hex: hex(frame(100, 3)) },
    ]);
    expect(us.dissects).toHaveLength(2);
    const ns = got.ours['ns.ours.pcap']!;
    expect(ns.nano).toBe(true);
    expect(ns.records).toEqual([{ sec: 1, usec: 999_999_999, caplen: 14, wirelen: 14, hex: hex(frame(14)) }]);
  });
});

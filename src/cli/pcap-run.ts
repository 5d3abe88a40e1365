// The work behind `vfplane pcap encap|decap`: stream records from the input file into
// bursts, run each burst through the chosen engine, and write the survivors. The output
// appears only when the whole input was read and processed (PcapWriter.commit). `-` is
// stdin for --in and stdout for --out; with the records on stdout, the summary goes to
// stderr, so the stream is a pcap and nothing else.
import { accessSync, constants, existsSync, fstatSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { allocBurst, MAX_BURST, type Burst } from '../packet/burst.js';
import { ConfigError, outerHeaderLength, resolveDecap, resolveTunnel, type TunnelSpec } from '../packet/config.js';
import type { EngineName, VxlanEngine } from '../packet/engine.js';
import { isStdin, isStdout, PcapFormatError, PcapReader, PcapWriter } from '../packet/pcap.js';
import { reasonName } from '../packet/reasons.js';
import { loadEngine } from '../dataplane/select.js';
import { RuntimeError, UsageError } from './errors.js';
import { printJson } from './output.js';
import { interrupted, onInterrupt } from '../util/interrupt.js';

/** Frames whose capture was cut short (caplen < len): not processed, counted here. */
export const CAPTURE_TRUNCATED = 'capture_truncated';

const ARENA_BYTES = 4 << 20;

export interface PcapSummary {
  command: 'encap' | 'decap';
  engine: EngineName;
  input: { file: string; packets: number; bytes: number };
  output: { file: string; packets: number; bytes: number };
  dropped: number;
  drops: Record<string, number>;
  seconds: number;
}

const FLAG_OF_FIELD: Record<string, string> = {
  local: '--local', remote: '--remote', srcMac: '--src-mac', dstMac: '--dst-mac', dstPort: '--dst-port',
  srcPortMin: '--src-port-range', srcPortMax: '--src-port-range', ttl: '--ttl', tos: '--tos', df: '--df',
  vlan: '--vlan', vlanPcp: '--vlan-pcp', mtu: '--mtu', vnis: '--vni', locals: '--local',
};

function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new UsageError(`${FLAG_OF_FIELD[err.field] ?? err.field} ${JSON.stringify(err.value)} is invalid: expected ${err.expected}`);
    }
    throw err;
  }
}

/** An --out errno, in words, with what to do. */
const OUT_ERRNO: Record<string, string> = {
  ENOSPC: 'no space left on its file system (ENOSPC); free some, or write elsewhere',
  EDQUOT: 'over the disk quota (EDQUOT); free some, or write elsewhere',
  EACCES: 'this user may not create files in its directory (EACCES); write elsewhere',
  EPERM: 'not permitted (EPERM); write elsewhere',
  EROFS: 'its file system is read-only (EROFS); write elsewhere',
  ENOENT: 'its directory does not take new files (ENOENT: /proc, /sys?); write elsewhere',
  EISDIR: 'it is a directory (EISDIR); name a file',
  ELOOP: 'a loop of symbolic links (ELOOP); name a file',
  EFBIG: 'the file grew over the largest its file system takes (EFBIG); write elsewhere',
  EIO: 'an I/O error on its device (EIO)',
};

/** Written into as it is, with no temp file: stdout, a FIFO, a character device. */
function isStreamOut(output: string): boolean {
  if (isStdout(output)) return true;
  try {
    const st = statSync(output);
    return st.isFIFO() || st.isCharacterDevice();
  } catch {
    return false;
  }
}

/** Checks both files before any work: an output that cannot be written would otherwise
 *  fail only after the whole input was read, with a raw errno on a temp file's name. */
function checkFiles(input: string, output: string): { streamIn: boolean } {
  // A stream is read as it comes (stdin, whatever it is, or a FIFO): no seeking.
  let inStat: ReturnType<typeof statSync> | null = null;
  if (!isStdin(input)) {
    if (!existsSync(input)) throw new RuntimeError(`--in ${input}: no such file; give an existing pcap file, or - for stdin`, undefined, 'not-found');
    inStat = statSync(input);
    if (!inStat.isFile() && !inStat.isFIFO()) {
      const what = inStat.isDirectory() ? 'a directory' : 'not a regular file or a FIFO';
      throw new RuntimeError(`--in ${input} is ${what}; give a pcap file, a FIFO, or - for stdin`, undefined, 'bad-file');
    }
  }
  if (isStdout(output)) {
    // Written into as it is (PcapWriter.create): only `--in f --out - >> f` is to refuse,
    // which would read back what it appends.
    const out = (() => {
      try {
        return fstatSync(1);
      } catch {
        return null; // closed (>&-): the first write says so
      }
    })();
    if (inStat?.isFile() && out?.isFile() && out.dev === inStat.dev && out.ino === inStat.ino) {
      throw new UsageError(`--out ${output} is the input file ${input} (stdout is redirected to it); write to another file`);
    }
    return { streamIn: !inStat?.isFile() };
  }
  const same = inStat !== null && existsSync(output) && realpathSync(output) === realpathSync(input);
  if (same || (inStat !== null && resolve(output) === resolve(input))) {
    throw new UsageError(`--out ${output} is the input file; write to another file`);
  }
  if (existsSync(output) && statSync(output).isDirectory()) {
    throw new RuntimeError(`--out ${output} is a directory; name a file, such as ${join(output, 'out.pcap')}`);
  }
  if (/\/\.{0,2}$/.test(output)) throw new RuntimeError(`--out ${output} names a directory, not a file; name a file, such as ${join(output, 'out.pcap')}`);
  // What kind of file --out may be (a FIFO or device is written into, a socket refused)
  // is PcapWriter.create's to judge; it runs before any record is read.
  if (!existsSync(output) && Buffer.byteLength(basename(output)) > 255) {
    throw new RuntimeError(`--out ${output}: the file name is ${Buffer.byteLength(basename(output))} bytes, longer than a directory entry takes (255); use a shorter name`);
  }
  const dir = dirname(resolve(output));
  if (!existsSync(dir)) throw new RuntimeError(`--out ${output}: directory ${dir} does not exist; create it first or write elsewhere`, undefined, 'not-found');
  if (!statSync(dir).isDirectory()) throw new RuntimeError(`--out ${output}: ${dir} is not a directory; write elsewhere`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new RuntimeError(`--out ${output}: directory ${dir} is not writable; write elsewhere or fix its permissions`);
  }
  return { streamIn: !inStat?.isFile() };
}

interface Job {
  command: 'encap' | 'decap';
  engineName: EngineName;
  input: string;
  output: string;
  headroom: number;
  process: (engine: VxlanEngine) => (b: Burst) => void;
  json: boolean;
}

async function runJob(job: Job): Promise<PcapSummary> {
  // A stream (stdin, a FIFO) is waited on with the event loop free: a blocking read
  // would hold Ctrl-C's handler off until the writer sends more or ends its stream, and
  // the run would then finish the output it was told to drop.
  const { streamIn } = checkFiles(job.input, job.output);
  const engine = await loadEngine(job.engineName);
  const processBurst = job.process(engine);
  const started = performance.now();
  let reader: PcapReader | undefined;
  let writer: PcapWriter | undefined;
  let off: (() => void) | undefined;
  const drops: Record<string, number> = {};
  const summary: PcapSummary = {
    command: job.command,
    engine: job.engineName,
    input: { file: job.input, packets: 0, bytes: 0 },
    output: { file: job.output, packets: 0, bytes: 0 },
    dropped: 0,
    drops,
    seconds: 0,
  };
  const burst = allocBurst(MAX_BURST, ARENA_BYTES);
  const tsSec = new Float64Array(MAX_BURST);
  const tsFrac = new Float64Array(MAX_BURST);
  let pos = 0;

  const flush = () => {
    if (burst.count === 0) return;
    processBurst(burst);
    for (let i = 0; i < burst.count; i++) {
      const r = burst.reason[i]!;
      if (r !== 0) {
        const name = reasonName(r);
        drops[name] = (drops[name] ?? 0) + 1;
        summary.dropped++;
        continue;
      }
      const off = burst.off[i]!;
      const len = burst.len[i]!;
      writer!.write(tsSec[i]!, tsFrac[i]!, burst.buf.subarray(off, off + len));
      summary.output.packets++;
      summary.output.bytes += len;
    }
    burst.count = 0;
    pos = 0;
  };

  try {
    try {
      reader = streamIn ? await PcapReader.openAsync(job.input) : PcapReader.open(job.input);
    } catch (err) {
      throw asRuntime(err, job.input);
    }
    // Ctrl-C or SIGTERM mid-file: the temp file goes too (the loop yields now and then,
    // so the signal's handler gets to run). Hooked before the temp file exists: a signal
    // just after it was made would otherwise kill the process by default and leave it.
    // Not for an output written as it is (stdout, a FIFO, a device): there is no temp file
    // to remove, and opening a FIFO nobody reads, or writing to a reader that stopped,
    // blocks this thread, where a handler never runs: the default action must stop it.
    if (!isStreamOut(job.output)) off = onInterrupt(() => writer?.abort());
    try {
      writer = PcapWriter.create(job.output, { nanos: reader.header.nanos });
    } catch (err) {
      // Its refusals name the path; an errno error (EACCES…) is said as it is.
      throw (err as NodeJS.ErrnoException).code ? err : new RuntimeError(`--out ${(err as Error).message}`);
    }
    for (let n = 1; ; n++) {
      if ((n & 4095) === 0) await new Promise((r) => setImmediate(r));
      let rec;
      try {
        while (streamIn && reader.needsInput()) await reader.readMore();
        rec = reader.next();
      } catch (err) {
        throw asRuntime(err, job.input);
      }
      if (!rec) break;
      summary.input.packets++;
      summary.input.bytes += rec.capLen;
      if (rec.capLen < rec.origLen) {
        drops[CAPTURE_TRUNCATED] = (drops[CAPTURE_TRUNCATED] ?? 0) + 1;
        summary.dropped++;
        continue;
      }
      const need = (job.headroom + rec.capLen + 63) & ~63;
      if (burst.count === MAX_BURST || pos + need > burst.buf.length) flush();
      const i = burst.count++;
      burst.off[i] = pos + job.headroom;
      burst.len[i] = rec.capLen;
      burst.room[i] = job.headroom;
      burst.buf.set(rec.data.subarray(0, rec.capLen), pos + job.headroom);
      tsSec[i] = rec.tsSec;
      tsFrac[i] = rec.tsFrac;
      pos += need;
    }
    flush();
    // A signal that came with the end of the input (the writer stopped by the same
    // Ctrl-C) has its handler run first, which drops the output: not committed here.
    if (await interrupted()) throw new RuntimeError(`interrupted; --out ${job.output} not written`);
    writer.commit();
  } catch (err) {
    writer?.abort();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') {
      throw new RuntimeError(`--out ${job.output}: its reader went away (broken pipe) after at most ${summary.output.packets} packets, so the output is cut short`);
    }
    // The input's errors are RuntimeErrors by now; one with an errno is the output's (its
    // message would name the temp file, not --out).
    if (code && !(err instanceof RuntimeError)) throw new RuntimeError(`--out ${job.output}: cannot write it: ${OUT_ERRNO[code] ?? code}; nothing was written there`);
    throw err;
  } finally {
    off?.();
    reader?.close();
  }
  summary.seconds = Number(((performance.now() - started) / 1000).toFixed(3));
  return summary;
}

function asRuntime(err: unknown, input: string): unknown {
  if (err instanceof PcapFormatError) return new RuntimeError(err.message, { file: err.file, offset: err.offset }, 'bad-file');
  const code = (err as NodeJS.ErrnoException).code;
  if (code) return new RuntimeError(`--in ${input}: cannot read it (${code}: ${(err as Error).message.replace(/^\w+: /, '')})`);
  return err;
}

/** The summary goes to stdout, unless the records do: then to stderr, JSON too. */
function print(summary: PcapSummary, json: boolean): void {
  const toStderr = isStdout(summary.output.file);
  if (json) {
    if (toStderr) process.stderr.write(JSON.stringify(summary, null, 2) + '\n');
    else printJson(summary);
    return;
  }
  const lines = [
    `${summary.command} (${summary.engine} engine): ${summary.input.file} → ${summary.output.file}`,
    `  packets in   ${summary.input.packets}`,
    `  packets out  ${summary.output.packets}`,
    `  dropped      ${summary.dropped}`,
  ];
  for (const [name, n] of Object.entries(summary.drops).sort((a, b) => b[1] - a[1])) {
    lines.push(`    ${name.padEnd(18)} ${n}`);
  }
  (toStderr ? process.stderr : process.stdout).write(lines.join('\n') + '\n');
}

interface EncapOpts {
  in: string; out: string; vni: number; local: string; remote: string; srcMac: string; dstMac?: string;
  dstPort: number; srcPortRange: [number, number]; ttl: number; tos: number | 'inherit';
  df: 'set' | 'unset' | 'inherit'; udpCsum: boolean; vlan?: number; vlanPcp?: number; mtu?: number;
  engine: EngineName; json: boolean;
}

export async function runEncap(o: EncapOpts): Promise<void> {
  // A priority is carried in the VLAN tag: without one it would be dropped unsaid.
  if (o.vlanPcp !== undefined && o.vlan === undefined) {
    throw new UsageError(`--vlan-pcp ${o.vlanPcp} needs --vlan: give the outer VLAN ID too (--vlan 0 for a priority tag alone)`);
  }
  // No --dst-mac: resolveTunnel picks the default, or a multicast --remote's group MAC.
  const spec: TunnelSpec = {
    local: o.local, remote: o.remote, srcMac: o.srcMac, dstMac: o.dstMac, dstPort: o.dstPort,
    srcPortMin: o.srcPortRange[0], srcPortMax: o.srcPortRange[1], ttl: o.ttl, tos: o.tos, df: o.df,
    udpCsum: o.udpCsum, vlan: o.vlan ?? null, vlanPcp: o.vlanPcp ?? 0, mtu: o.mtu ?? 0,
  };
  const tunnel = asUsage(() => resolveTunnel(spec));
  // The data plane resolves its template with remote = local (peers patched in natively);
  // a capture wrapped to its own source is a mistake.
  if (Buffer.compare(tunnel.local, tunnel.remote) === 0) throw new UsageError(`--remote "${o.remote}" is invalid: expected another VTEP than local ${o.local} (a tunnel to itself)`);
  const summary = await runJob({
    command: 'encap', engineName: o.engine, input: o.in, output: o.out, json: o.json,
    headroom: outerHeaderLength(tunnel),
    process: (engine) => {
      const t = engine.createTunnel(tunnel);
      return (b) => engine.encap(t, o.vni, b);
    },
  });
  print(summary, o.json);
}

interface DecapOpts {
  in: string; out: string; vni?: number[]; local?: string[]; dstPort: number; verifyUdpCsum: boolean;
  dropInnerVlan: boolean; engine: EngineName; json: boolean;
}

export async function runDecap(o: DecapOpts): Promise<void> {
  const decap = asUsage(() => resolveDecap({
    dstPort: o.dstPort, vnis: o.vni ?? null, locals: o.local ?? null,
    verifyUdpCsum: o.verifyUdpCsum, dropInnerVlan: o.dropInnerVlan,
  }));
  const summary = await runJob({
    command: 'decap', engineName: o.engine, input: o.in, output: o.out, json: o.json, headroom: 0,
    process: (engine) => {
      const d = engine.createDecap(decap);
      return (b) => engine.decap(d, b);
    },
  });
  print(summary, o.json);
}

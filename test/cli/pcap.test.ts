// `vfplane pcap` as a user runs it: a child process with files, exit codes, stdout.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, createWriteStream, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { arpRequest, icmpEcho, readPcapFrames, udp4, writePcap, writeRepeatedPcap } from '../helpers/frames.js';

let dir: string;
const frames = [
  icmpEcho({ dstMac: '02:aa:00:00:00:02', srcMac: '02:aa:00:00:00:01', src: '10.9.0.1', dst: '10.9.0.2', id: 7, seq: 1 }),
  udp4({ dstMac: '02:aa:00:00:00:02', srcMac: '02:aa:00:00:00:01', src: '10.9.0.1', dst: '10.9.0.2', sport: 1234, dport: 80, payload: new Uint8Array(300).fill(9), vlan: 12 }),
  arpRequest({ srcMac: '02:aa:00:00:00:01', srcIp: '10.9.0.1', targetIp: '10.9.0.2' }),
];
const base = ['--vni', '4242', '--local', '192.0.2.1', '--remote', '192.0.2.2'];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vfplane-pcap-'));
  writePcap(join(dir, 'in.pcap'), frames);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const p = (name: string) => join(dir, name);

describe('pcap encap/decap round trip', () => {
  it('encapsulates, prints a JSON summary, and decap gives the original frames back', () => {
    const enc = vfplane(['pcap', 'encap', '--in', p('in.pcap'), '--out', p('enc.pcap'), ...base, '--json']);
    expect(enc.code, enc.stderr).toBe(0);
    const s = JSON.parse(enc.stdout);
    expect(s).toMatchObject({ command: 'encap', engine: 'native', input: { packets: 3 }, output: { packets: 3 }, dropped: 0 });
    const out = readPcapFrames(readFileSync(p('enc.pcap')));
    expect(out.map((f) => f.length)).toEqual(frames.map((f) => f.length + 50));

    const dec = vfplane(['pcap', 'decap', '--in', p('enc.pcap'), '--out', p('dec.pcap'), '--vni', '4242', '--json']);
    expect(dec.code, dec.stderr).toBe(0);
    expect(JSON.parse(dec.stdout)).toMatchObject({ command: 'decap', output: { packets: 3 }, dropped: 0 });
    expect(readPcapFrames(readFileSync(p('dec.pcap')))).toEqual(frames);
  });

  it('the native engine and the TS model write byte-identical files', () => {
    const args = ['--vlan', '7', '--udp-csum', '--tos', 'inherit', '--df', 'inherit', '--ttl', '9'];
    expect(vfplane(['pcap', 'encap', '--in', p('in.pcap'), '--out', p('n.pcap'), ...base, ...args]).code).toBe(0);
    expect(vfplane(['pcap', 'encap', '--in', p('in.pcap'), '--out', p('t.pcap'), ...base, ...args, '--engine', 'ts']).code).toBe(0);
    expect(readFileSync(p('n.pcap')).equals(readFileSync(p('t.pcap')))).toBe(true);
  });

  it('counts drops by reason: unknown VNI on decap', () => {
    vfplane(['pcap', 'encap', '--in', p('in.pcap'), '--out', p('e2.pcap'), ...base]);
    const r = vfplane(['pcap', 'decap', '--in', p('e2.pcap'), '--out', p('d2.pcap'), '--vni', '1,2', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ output: { packets: 0 }, dropped: 3, drops: { vni_unknown: 3 } });
  });

  it('prints a human summary without --json', () => {
    const r = vfplane(['pcap', 'encap', '--in', p('in.pcap'), '--out', p('h.pcap'), ...base, '--mtu', '100']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/packets in\s+3/);
    expect(r.stdout).toMatch(/mtu_exceeded\s+2/); // the ICMP and the 300 B UDP frame; ARP fits
  });
});

describe('pcap bad input: clear error naming file and offset, exit 1, no output left', () => {
  const header = (o: { magic?: number; snaplen?: number; linktype?: number; major?: number } = {}) => {
    const h = Buffer.alloc(24);
    h.writeUInt32LE(o.magic ?? 0xa1b2c3d4, 0);
    h.writeUInt16LE(o.major ?? 2, 4);
    h.writeUInt16LE(4, 6);
    h.writeUInt32LE(o.snaplen ?? 65535, 16);
    h.writeUInt32LE(o.linktype ?? 1, 20);
    return h;
  };
  const record = (cap: number, orig: number, data: Buffer) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(cap, 8);
    r.writeUInt32LE(orig, 12);
    return Buffer.concat([r, data]);
  };
  const good = Buffer.from(frames[0]!);
  const cases: [string, Buffer, RegExp][] = [
    ['empty file', Buffer.alloc(0), /offset 0/],
    ['short global header', header().subarray(0, 10), /offset 0/],
    ['wrong magic', Buffer.concat([header({ magic: 0xdeadbeef })]), /magic/i],
    ['pcapng', Buffer.concat([Buffer.from([0x0a, 0x0d, 0x0d, 0x0a]), Buffer.alloc(28)]), /pcapng[\s\S]*editcap/i],
    ['unsupported linktype', header({ linktype: 113 }), /linktype[\s\S]*113/i],
    ['absurd snaplen', header({ snaplen: 0x7fffffff }), /snaplen/i],
    ['truncated record header', Buffer.concat([header(), record(good.length, good.length, good), Buffer.alloc(7)]), new RegExp(`offset ${24 + 16 + good.length}`)],
    ['truncated record data', Buffer.concat([header(), record(100, 100, Buffer.alloc(40))]), /offset 24/],
    ['absurd record length', Buffer.concat([header(), record(0x10000000, 0x10000000, Buffer.alloc(8))]), /offset 24/],
    ['record longer than snaplen', Buffer.concat([header({ snaplen: 64 }), record(80, 80, Buffer.alloc(80))]), /offset 24/],
    ['timestamp fraction of a second or more', Buffer.concat([header(), record(good.length, good.length, good), (() => {
      const r = record(good.length, good.length, good);
      r.writeUInt32LE(2_000_000, 4); // ts_usec
      return r;
    })()]), new RegExp(`offset ${24 + 16 + good.length}: record timestamp fraction 2000000 is not below 1000000 µs`)],
  ];
  for (const [name, bytes, pattern] of cases) {
    it(name, () => {
      const input = p(`bad-${name.replace(/\W+/g, '-')}.pcap`);
      const out = p(`bad-out-${name.replace(/\W+/g, '-')}.pcap`);
      writeFileSync(input, bytes);
      const before = readdirSync(dir).length;
      for (const cmd of [['encap', ...base], ['decap']]) {
        const r = vfplane(['pcap', cmd[0]!, '--in', input, '--out', out, ...cmd.slice(1)]);
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toContain(input);
        expect(r.stderr).toMatch(pattern);
        expect(existsSync(out)).toBe(false);
        expect(readdirSync(dir).length).toBe(before); // no temp file left either
      }
      // --json: a script branches on the kind (it had none).
      const j = vfplane(['pcap', 'decap', '--in', input, '--out', out, '--json']);
      expect(JSON.parse(j.stdout).error).toMatchObject({ kind: 'bad-file', exitCode: 1 });
    });
  }

  it('a failed run leaves an existing output file as it was', () => {
    const input = p('trunc2.pcap');
    writeFileSync(input, Buffer.concat([header(), record(good.length, good.length, good), record(100, 100, Buffer.alloc(3))]));
    writeFileSync(p('keep.pcap'), 'keep');
    const r = vfplane(['pcap', 'encap', '--in', input, '--out', p('keep.pcap'), ...base]);
    expect(r.code).toBe(1);
    expect(readFileSync(p('keep.pcap'), 'utf8')).toBe('keep');
  });

  it('a missing input file is a runtime error naming it', () => {
    const r = vfplane(['pcap', 'encap', '--in', p('nope.pcap'), '--out', p('x.pcap'), ...base]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nope.pcap');
    expect(existsSync(p('x.pcap'))).toBe(false);
    const j = vfplane(['pcap', 'encap', '--in', p('nope.pcap'), '--out', p('x.pcap'), ...base, '--json']);
    expect(JSON.parse(j.stdout).error).toMatchObject({ kind: 'not-found', exitCode: 1, message: expect.stringContaining('nope.pcap') });
  });
});

describe('pcap flags out of range: exit 2 naming the flag and the allowed range', () => {
  const cases: [string, string[], RegExp][] = [
    ['vni too big', ['--vni', '16777216', '--local', '192.0.2.1', '--remote', '192.0.2.2'], /--vni[\s\S]*0–16777215/],
    ['vni negative', ['--vni', '-1', '--local', '192.0.2.1', '--remote', '192.0.2.2'], /--vni/],
    ['vni not a number', ['--vni', '12abc', '--local', '192.0.2.1', '--remote', '192.0.2.2'], /--vni[\s\S]*0–16777215/],
    ['bad local', [...base.slice(0, 2), '--local', '192.0.2', '--remote', '192.0.2.2'], /--local[\s\S]*IPv4 or IPv6/],
    ['mixed families', [...base.slice(0, 4), '--remote', '2001:db8::1'], /--remote[\s\S]*IPv4/],
    ['bad mac', [...base, '--src-mac', '02:00:00:00:00'], /--src-mac[\s\S]*MAC/],
    ['multicast outer source', [...base.slice(0, 2), '--local', '224.0.0.1', '--remote', '192.0.2.2'], /--local "224\.0\.0\.1" is invalid: expected a unicast address .*multicast/],
    ['broadcast outer source', [...base.slice(0, 2), '--local', '255.255.255.255', '--remote', '192.0.2.2'], /--local "255\.255\.255\.255" .*broadcast/],
    ['unspecified outer source', [...base.slice(0, 2), '--local', '0.0.0.0', '--remote', '192.0.2.2'], /--local "0\.0\.0\.0" .*unspecified/],
    ['IPv6 multicast outer source', [...base.slice(0, 2), '--local', 'ff02::1', '--remote', '2001:db8::2'], /--local "ff02::1" .*multicast/],
    ['broadcast source MAC', [...base, '--src-mac', 'ff:ff:ff:ff:ff:ff'], /--src-mac "ff:ff:ff:ff:ff:ff" is invalid: expected a unicast MAC/],
    ['multicast source MAC', [...base, '--src-mac', '01:00:5e:00:00:01'], /--src-mac "01:00:5e:00:00:01" is invalid: expected a unicast MAC/],
    ['port zero', [...base, '--dst-port', '0'], /--dst-port[\s\S]*1–65535/],
    ['port too big', [...base, '--dst-port', '65536'], /--dst-port[\s\S]*1–65535/],
    ['ttl zero', [...base, '--ttl', '0'], /--ttl[\s\S]*1–255/],
    ['tos too big', [...base, '--tos', '256'], /--tos[\s\S]*0–255/],
    ['df unknown', [...base, '--df', 'maybe'], /--df[\s\S]*set, unset, inherit/],
    ['vlan 4095', [...base, '--vlan', '4095'], /--vlan[\s\S]*0–4094/],
    ['src port range reversed', [...base, '--src-port-range', '60000-50000'], /--src-port-range/],
    ['engine unknown', [...base, '--engine', 'fpga'], /--engine[\s\S]*native, ts/],
    ['missing vni', ['--local', '192.0.2.1', '--remote', '192.0.2.2'], /--vni/],
    ['unspecified remote', [...base.slice(0, 4), '--remote', '0.0.0.0'], /--remote "0\.0\.0\.0" is invalid: expected a unicast or multicast VTEP address \(this is the unspecified address\)/],
    ['broadcast remote', [...base.slice(0, 4), '--remote', '255.255.255.255'], /--remote "255\.255\.255\.255" .*broadcast/],
    ['IPv6 unspecified remote', [...base.slice(0, 2), '--local', '2001:db8::1', '--remote', '::'], /--remote "::" .*unspecified/],
    ['remote is local', [...base.slice(0, 4), '--remote', '192.0.2.1'], /--remote "192\.0\.2\.1" is invalid: expected another VTEP than local 192\.0\.2\.1/],
  ];
  for (const [name, args, pattern] of cases) {
    it(name, () => {
      const out = p(`flag-${name.replace(/\W+/g, '-')}.pcap`);
      const r = vfplane(['pcap', 'encap', '--in', p('in.pcap'), '--out', out, ...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(pattern);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('a multicast remote (a VXLAN group, RFC 7348 §4.2) is a destination', () => {
    const r = vfplane(['pcap', 'encap', '--in', p('in.pcap'), '--out', p('group.pcap'), ...base.slice(0, 4), '--remote', '239.1.1.1']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('decap: a local address no packet is sent to', () => {
    for (const a of ['0.0.0.0', '255.255.255.255']) {
      const r = vfplane(['pcap', 'decap', '--in', p('in.pcap'), '--out', p('dl.pcap'), '--local', a]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--local "${a}" is invalid: expected an address packets are sent to`);
    }
  });

  it('decap: a VNI list item out of range', () => {
    const r = vfplane(['pcap', 'decap', '--in', p('in.pcap'), '--out', p('dx.pcap'), '--vni', '5,99999999']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--vni[\s\S]*99999999[\s\S]*0–16777215/);
  });

  it('--json errors are JSON on stdout too', () => {
    const r = vfplane(['pcap', 'encap', '--in', p('in.pcap'), '--out', p('j.pcap'), ...base, '--ttl', '300', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error.message).toMatch(/--ttl/);
  });
});

describe('pcap output targets', () => {
  const run = (out: string) => vfplane(['pcap', 'encap', '--in', p('in.pcap'), '--out', out, ...base]);

  it('writes into a FIFO or a character device as it is, never replacing it with a file', () => {
    const fifo = p('out.fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = spawnSync('sh', ['-c', 'cat "$1" > "$2" & "$3" "$4" pcap encap --in "$5" --out "$1" --vni 4242 --local 192.0.2.1 --remote 192.0.2.2; wait', 'sh',
      fifo, p('via-fifo.pcap'), process.execPath, BIN, p('in.pcap')], { encoding: 'utf8', timeout: 30_000 });
    expect(reader.status, reader.stderr).toBe(0);
    expect(statSync(fifo).isFIFO()).toBe(true);
    expect(readPcapFrames(readFileSync(p('via-fifo.pcap'))).map((f) => f.length)).toEqual(frames.map((f) => f.length + 50));
    // A character device: /dev/null's numbers, under a name of our own (root makes it).
    if (process.getuid?.() === 0) {
      const dev = p('null.dev');
      execFileSync('mknod', [dev, 'c', '1', '3']);
      expect(run(dev).code).toBe(0);
      expect(statSync(dev).isCharacterDevice()).toBe(true);
    } else if (process.env.CI) throw new Error('root is needed to make a device node');
  });

  it('refuses a socket as --out, leaving it as it was', () => {
    const sock = p('out.sock');
    execFileSync('/usr/bin/python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', sock]);
    const r = run(sock);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--out ${sock} is a socket, which vfplane will not overwrite; name a file`);
    expect(statSync(sock).isSocket()).toBe(true);
  });

  it('through a symlink, replaces the file it names and keeps the link', () => {
    writeFileSync(p('real.pcap'), 'old');
    symlinkSync('real.pcap', p('link.pcap'));
    expect(run(p('link.pcap')).code).toBe(0);
    expect(lstatSync(p('link.pcap')).isSymbolicLink()).toBe(true);
    expect(readPcapFrames(readFileSync(p('real.pcap')))).toHaveLength(3);
  });

  it('a symlink to no file yet makes the file it names and keeps the link (it was replaced by a file)', () => {
    symlinkSync('made-through-link.pcap', p('dangling.pcap'));
    expect(run(p('dangling.pcap')).code).toBe(0);
    expect(lstatSync(p('dangling.pcap')).isSymbolicLink()).toBe(true);
    expect(readPcapFrames(readFileSync(p('made-through-link.pcap')))).toHaveLength(3);
  });

  it('a file replaced keeps its mode and owner (a private capture became world-readable)', () => {
    writeFileSync(p('private.pcap'), 'old', { mode: 0o600 });
    chmodSync(p('private.pcap'), 0o600);
    if (process.getuid?.() === 0) chownSync(p('private.pcap'), 4242, 4343);
    expect(run(p('private.pcap')).code).toBe(0);
    const st = statSync(p('private.pcap'));
    expect(st.mode & 0o777).toBe(0o600);
    if (process.getuid?.() === 0) expect([st.uid, st.gid]).toEqual([4242, 4343]);
    expect(readPcapFrames(readFileSync(p('private.pcap')))).toHaveLength(3);
  });

  it('an --out that cannot be written is named, with why in words, not a temp file\'s errno', () => {
    const full = run('/dev/full'); // a character device: written as it is, ENOSPC at once
    expect([full.code, full.stderr]).toEqual([1, 'vfplane: --out /dev/full: cannot write it: no space left on its file system (ENOSPC); free some, or write elsewhere; nothing was written there\n']);
    const proc = run('/proc/vfplane-out.pcap');
    expect(proc.code).toBe(1);
    expect(proc.stderr).toContain('--out /proc/vfplane-out.pcap: cannot write it:');
    expect(proc.stderr).not.toContain('.tmp');
  });

  it('SIGINT while it waits for a reader of its FIFO --out (or for one that stopped reading) stops it (it hung until SIGKILL)', async () => {
    const fifo = p('nobody.fifo');
    execFileSync('mkfifo', [fifo]);
    const c = spawn(process.execPath, [BIN, 'pcap', 'encap', '--in', p('in.pcap'), '--out', fifo, ...base], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1500)); // started, blocked in open()
    c.kill('SIGINT');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    const [code, signal] = await once(c, 'exit');
    clearTimeout(timer);
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGINT' });
    expect(statSync(fifo).isFIFO()).toBe(true);
  }, 20_000);

  it('says a trailing slash names a directory, and a name too long for a directory entry, before any work', () => {
    const slash = run(p('newdir/'));
    expect(slash.code).toBe(1);
    expect(slash.stderr).toContain(`--out ${p('newdir/')} names a directory, not a file`);
    const long = run(p('b'.repeat(256)));
    expect(long.code).toBe(1);
    expect(long.stderr).toContain('the file name is 256 bytes, longer than a directory entry takes (255); use a shorter name');
    // 250 bytes is a valid name: its temp file must fit too.
    expect(run(p('a'.repeat(250))).code).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('a reader of the stream that goes away is said plainly (exit 1), and output piped to head is no crash', () => {
    const big = p('mid.pcap');
    writeRepeatedPcap(big, frames[1]!, 10_000);
    // A FIFO of our own with `head` reading it: never a host path such as /dev/stdout,
    // which a regression that replaces streams with files would destroy.
    const fifo = p('head.fifo');
    execFileSync('mkfifo', [fifo]);
    const r = spawnSync('bash', ['-c', 'head -c 24 "$1" >/dev/null & "$2" "$3" pcap encap --in "$4" --out "$1" --vni 4242 --local 192.0.2.1 --remote 192.0.2.2; rc=$?; wait; exit $rc', 'sh', fifo, process.execPath, BIN, big], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^vfplane: --out ${fifo.replaceAll('/', '\\/')}: its reader went away \\(broken pipe\\) after at most \\d+ packets, so the output is cut short\\n$`));
    expect(statSync(fifo).isFIFO()).toBe(true);
  });

  it('finishes its work, quietly, when the reader of its stdout is gone before it writes (`… | head`)', async () => {
    const c = spawn(process.execPath, [BIN, 'pcap', 'encap', '--in', p('in.pcap'), '--out', p('gone-out.pcap'), ...base, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout!.destroy(); // the read end closed long before the child writes: its write gets EPIPE
    let err = '';
    c.stderr!.on('data', (d) => { err += d; });
    const [exit] = await once(c, 'close');
    expect(err).toBe('');
    expect(exit).toBe(0);
    expect(readPcapFrames(readFileSync(p('gone-out.pcap')))).toHaveLength(3);
  });

  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`${sig} mid-file leaves neither the output nor its temp file (exit ${code})`, async () => {
      const big = p(`big-${sig}.pcap`);
      writeRepeatedPcap(big, frames[1]!, 400_000); // ~140 MB: seconds through the TS model
      const out = p(`big-${sig}-out.pcap`);
      const c = spawn(process.execPath, [BIN, 'pcap', 'encap', '--engine', 'ts', '--in', big, '--out', out, ...base], { stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        for (let i = 0; i < 1000 && !readdirSync(dir).some((f) => f.startsWith(`.big-${sig}-out.pcap.`)); i++) await new Promise((r) => setTimeout(r, 10));
        expect(readdirSync(dir).some((f) => f.startsWith(`.big-${sig}-out.pcap.`))).toBe(true);
        c.kill(sig);
        const [exit] = await once(c, 'exit');
        expect(exit).toBe(code);
        expect(existsSync(out)).toBe(false);
        expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      } finally {
        c.kill('SIGKILL');
        rmSync(big, { force: true });
      }
    }, 60_000);
  }
});

describe('Ctrl-C on a stream input', () => {
  // `tcpdump -w - | vfplane pcap encap --in - --out f.pcap`, then Ctrl-C: a read of stdin
  // (or of a FIFO) must not hold the interrupt off until the writer ends its stream, and
  // what was read until then is no output to keep (the same rule as a cut-short file).
  const cases = [['stdin', 2000], ['stdin', 0], ['fifo', 2000]] as const;
  for (const [input, endAfterMs] of cases) it(`SIGINT while ${input} is open removes the partial output and exits 130 (the writer ends its stream ${endAfterMs} ms later)`, async () => {
    writePcap(p('stream-in.pcap'), frames);
    const pcap = readFileSync(p('stream-in.pcap'));
    const name = `stream-${input}-${endAfterMs}`;
    const out = p(`${name}.pcap`);
    const fifo = p(`${name}.fifo`);
    if (input === 'fifo') execFileSync('mkfifo', [fifo]);
    const c = spawn(process.execPath, [BIN, 'pcap', 'encap', '--in', input === 'fifo' ? fifo : '-', '--out', out, ...base], { stdio: ['pipe', 'pipe', 'pipe'] });
    const writer = input === 'fifo' ? createWriteStream(fifo) : c.stdin!;
    let err = '';
    c.stderr!.on('data', (d) => { err += d; });
    const exited = once(c, 'exit');
    try {
      writer.write(pcap); // the header and three whole records; the stream stays open
      const tmp = () => readdirSync(dir).filter((f) => f.startsWith(`.${name}.pcap.`));
      for (let i = 0; i < 1000 && tmp().length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(tmp()).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 300)); // the records read
      c.kill('SIGINT');
      // The writer ends its stream at a record boundary, as tcpdump does on the same
      // Ctrl-C: at once (the end may come before the signal's handler has run), or a
      // while later (by then the run must have stopped, not waited to finish the file).
      let ended = false;
      const late = setTimeout(() => { ended = true; writer.end(); }, endAfterMs);
      const [code, signal] = await exited;
      clearTimeout(late);
      expect({ code, signal, err }).toMatchObject({ code: 130, signal: null, err: expect.stringContaining('SIGINT') });
      if (endAfterMs > 0) expect(ended, 'the run waited for the end of its input').toBe(false);
      expect(existsSync(out)).toBe(false);
      expect(tmp()).toEqual([]);
    } finally {
      c.kill('SIGKILL');
      writer.destroy();
    }
  }, 30_000);
});

describe('the CLI', () => {
  it('--help lists the commands and exits 0', () => {
    const r = vfplane(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/pcap/);
    expect(r.stdout).toMatch(/bench/);
  });
  it('an unknown command is a usage error', () => {
    expect(vfplane(['frobnicate']).code).toBe(2);
  });
});

/** The frames of a pcap stream that must be nothing else: the records end exactly where
 *  the bytes do (a summary printed after them would not). */
function pcapStream(buf: Buffer): Uint8Array[] {
  expect(buf.length).toBeGreaterThanOrEqual(24);
  expect(buf.readUInt32LE(0)).toBe(0xa1b2c3d4);
  let o = 24;
  while (o < buf.length) {
    expect(o + 16, `record header at ${o} cut short`).toBeLessThanOrEqual(buf.length);
    o += 16 + buf.readUInt32LE(o + 8);
  }
  expect(o).toBe(buf.length);
  return readPcapFrames(buf);
}

/** The CLI with raw (binary) stdout and stdin. */
const rawRun = (args: string[], input?: Buffer) =>
  spawnSync(process.execPath, [BIN, ...args], { input, timeout: 60_000, maxBuffer: 256 << 20 });

/** bash -c SCRIPT with $node, $bin, $in (the 3-frame capture) and $dir set. */
const sh = (script: string) => spawnSync('bash', ['-c', `set -o pipefail\n${script}`], {
  encoding: 'utf8', timeout: 60_000, env: { ...process.env, node: process.execPath, bin: BIN, in: p('in.pcap'), dir },
});
const encLens = frames.map((f) => f.length + 50);

describe('pcap on stdout: the records, nothing else; the summary on stderr', () => {
  for (const out of ['-', '/dev/stdout', '/proc/self/fd/1']) {
    it(`--out ${out}`, () => {
      const r = rawRun(['pcap', 'encap', '--in', p('in.pcap'), '--out', out, ...base]);
      expect(r.status, r.stderr.toString()).toBe(0);
      expect(pcapStream(r.stdout).map((f) => f.length)).toEqual(encLens);
      expect(r.stderr.toString()).toMatch(/packets in\s+3\n\s+packets out\s+3/);
    });
  }

  it('--json: the JSON summary on stderr too', () => {
    const r = rawRun(['pcap', 'encap', '--in', p('in.pcap'), '--out', '-', ...base, '--json']);
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(pcapStream(r.stdout)).toHaveLength(3);
    expect(JSON.parse(r.stderr.toString())).toMatchObject({ command: 'encap', output: { file: '-', packets: 3 } });
  });

  it('--json: an error is JSON on stderr, and stdout carries nothing (it is the stream)', () => {
    writeFileSync(p('garbage.pcap'), 'not a pcap file at all, just text');
    for (const args of [['--in', p('garbage.pcap'), '--out', '-', ...base], ['--in', p('in.pcap'), '--out', '-', ...base, '--ttl', '300']]) {
      const r = rawRun(['pcap', 'encap', ...args, '--json']);
      expect(r.status).not.toBe(0);
      expect(r.stdout.length).toBe(0);
      expect(JSON.parse(r.stderr.toString().split('\nvfplane: ')[0]!.replace(/^(error|vfplane): .*\n/, '')).error.message).toBeTruthy();
    }
  });

  it('piped into tshark -r -, which reads every packet and no damage', () => {
    const r = sh('"$node" "$bin" pcap encap --in "$in" --out /dev/stdout --vni 4242 --local 192.0.2.1 --remote 192.0.2.2 --json 2>"$dir/sum.json" | tshark -r - -T fields -e vxlan.vni 2>&1');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').filter((l) => !/^Running as user/.test(l))).toEqual(['4242', '4242', '4242']);
    expect(JSON.parse(readFileSync(join(dir, 'sum.json'), 'utf8'))).toMatchObject({ output: { packets: 3 } });
  });

  it('redirected to a file (> or >>): written into that file as it is, not replaced by a renamed temp file', () => {
    const f = p('redirect.pcap');
    writeFileSync(f, '');
    const ino = statSync(f).ino;
    const r = sh(`"$node" "$bin" pcap encap --in "$in" --out /dev/stdout --vni 4242 --local 192.0.2.1 --remote 192.0.2.2 > "${f}"`);
    expect(r.status, r.stderr).toBe(0);
    expect(statSync(f).ino).toBe(ino);
    expect(pcapStream(readFileSync(f)).map((x) => x.length)).toEqual(encLens);
    expect(r.stderr).toMatch(/packets out\s+3/);
    expect(readdirSync(dir).filter((x) => x.endsWith('.tmp'))).toEqual([]);
    // Appending after what is there already: fd 1's offset is the writer's.
    writeFileSync(f, 'HEAD');
    expect(sh(`"$node" "$bin" pcap encap --in "$in" --out - --vni 4242 --local 192.0.2.1 --remote 192.0.2.2 >> "${f}"`).status).toBe(0);
    const got = readFileSync(f);
    expect(got.subarray(0, 4).toString()).toBe('HEAD');
    expect(pcapStream(got.subarray(4))).toHaveLength(3);
  });

  it('waits for a slow reader of a non-blocking pipe (Node makes stdout one) instead of failing with EAGAIN', () => {
    const big = p('slow-reader.pcap');
    writeRepeatedPcap(big, frames[1]!, 10_000); // ~3.5 MB: far more than a pipe holds
    // The reader starts late, so the pipe fills up: the writer is to wait, not fail.
    const r = sh(`"$node" "$bin" pcap encap --in "${big}" --out - --vni 4242 --local 192.0.2.1 --remote 192.0.2.2 | { sleep 1; cat > "$dir/slow.pcap"; }`);
    expect(r.status, r.stderr).toBe(0);
    expect(pcapStream(readFileSync(p('slow.pcap')))).toHaveLength(10_000);
  });

  it('a stdout that is the input file is refused before anything is written', () => {
    const f = p('self.pcap');
    writeFileSync(f, readFileSync(p('in.pcap')));
    const r = sh(`"$node" "$bin" pcap encap --in "${f}" --out - --vni 4242 --local 192.0.2.1 --remote 192.0.2.2 >> "${f}"`);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`--out - is the input file ${f} (stdout is redirected to it); write to another file`);
    expect(readFileSync(f).equals(readFileSync(p('in.pcap')))).toBe(true);
  });
});

describe('pcap from a stream: --in -, /dev/stdin, a FIFO', () => {
  it('--in - and --in /dev/stdin read a pipe', () => {
    for (const input of ['-', '/dev/stdin']) {
      const out = p(`from-pipe-${input.length}.pcap`);
      const r = sh(`cat "$in" | "$node" "$bin" pcap encap --in ${input} --out "${out}" --vni 4242 --local 192.0.2.1 --remote 192.0.2.2 --json`);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ input: { file: input, packets: 3 }, output: { packets: 3 } });
      expect(readPcapFrames(readFileSync(out)).map((f) => f.length)).toEqual(encLens);
    }
  });

  it('--in - reads whatever stdin is (here a socket), and a stream much larger than the read buffer', () => {
    const big = p('pipe-big.pcap');
    writeRepeatedPcap(big, frames[1]!, 20_000); // ~7 MB: many refills, short reads
    const r = rawRun(['pcap', 'decap', '--in', '-', '--out', '-'], readFileSync(big));
    expect(r.status, r.stderr.toString()).toBe(0);
    // Not VXLAN: every frame is dropped, counted, after being read whole.
    expect(r.stderr.toString()).toMatch(/packets in\s+20000/);
    expect(pcapStream(r.stdout)).toHaveLength(0);
    const enc = rawRun(['pcap', 'encap', '--in', '-', '--out', '-', ...base], readFileSync(big));
    expect(enc.status, enc.stderr.toString()).toBe(0);
    const dec = rawRun(['pcap', 'decap', '--in', '-', '--out', '-', '--vni', '4242'], enc.stdout);
    expect(dec.status, dec.stderr.toString()).toBe(0);
    const got = pcapStream(dec.stdout);
    expect(got).toHaveLength(20_000);
    expect(got.every((f) => Buffer.from(f).equals(Buffer.from(frames[1]!)))).toBe(true);
  });

  it('--in - waits for a non-blocking stdin that has nothing yet instead of failing with EAGAIN', () => {
    const script = [
      'import os, subprocess, sys, time',
      'node, bin, src, out = sys.argv[1:5]',
      'r, w = os.pipe()',
      'os.set_blocking(r, False)  # the file description vfplane gets as fd 0',
      "c = subprocess.Popen([node, bin, 'pcap', 'encap', '--in', '-', '--out', out, '--vni', '4242', '--local', '192.0.2.1', '--remote', '192.0.2.2'], stdin=r)",
      'os.close(r)',
      'data = open(src, "rb").read()',
      'os.write(w, data[:30])',
      'time.sleep(1)  # vfplane reads the header, then finds the pipe empty',
      'os.write(w, data[30:])',
      'os.close(w)',
      'sys.exit(c.wait())',
    ].join('\n');
    const r = spawnSync('/usr/bin/python3', ['-c', script, process.execPath, BIN, p('in.pcap'), p('nonblock.pcap')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(readPcapFrames(readFileSync(p('nonblock.pcap'))).map((f) => f.length)).toEqual(encLens);
  });

  it('a FIFO as --in', () => {
    const fifo = p('in.fifo');
    execFileSync('mkfifo', [fifo]);
    const r = sh(`cat "$in" > "${fifo}" & pid=$!; "$node" "$bin" pcap encap --in "${fifo}" --out "$dir/from-fifo.pcap" --vni 4242 --local 192.0.2.1 --remote 192.0.2.2; rc=$?; kill $pid 2>/dev/null; wait; exit $rc`);
    expect(r.status, r.stderr).toBe(0);
    expect(readPcapFrames(readFileSync(p('from-fifo.pcap'))).map((f) => f.length)).toEqual(encLens);
  });

  it('a malformed stream: the same error naming the offset, exit 1, no output', () => {
    const good = readFileSync(p('in.pcap'));
    const cut = good.subarray(0, good.length - 5);
    const before = readdirSync(dir).length;
    const r = rawRun(['pcap', 'encap', '--in', '-', '--out', p('cut.pcap'), ...base], cut);
    expect(r.status).toBe(1);
    const o = 24 + 16 + frames[0]!.length + 16 + frames[1]!.length;
    expect(r.stderr.toString()).toMatch(new RegExp(`pcap file stdin, byte offset ${o}: record data cut short`));
    expect(existsSync(p('cut.pcap'))).toBe(false);
    expect(readdirSync(dir).length).toBe(before);
    const ng = rawRun(['pcap', 'decap', '--in', '/dev/stdin', '--out', p('cut.pcap')], Buffer.concat([Buffer.from([0x0a, 0x0d, 0x0d, 0x0a]), Buffer.alloc(28)]));
    expect(ng.status).toBe(1);
    expect(ng.stderr.toString()).toMatch(/pcap file \/dev\/stdin, byte offset 0: this is a pcapng file/);
    expect(existsSync(p('cut.pcap'))).toBe(false);
  });

  it('an input that is neither a file nor a stream is refused naming it', () => {
    const r = vfplane(['pcap', 'encap', '--in', dir, '--out', p('d.pcap'), ...base]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--in ${dir} is a directory; give a pcap file, a FIFO, or - for stdin`);
  });
});

describe('pcap encap outer Ethernet and VLAN', () => {
  it('--vlan-pcp without --vlan is a usage error naming the fix, and nothing is written', () => {
    for (const pcp of ['5', '0']) {
      const r = vfplane(['pcap', 'encap', '--in', p('in.pcap'), '--out', p('pcp.pcap'), ...base, '--vlan-pcp', pcp]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--vlan-pcp ${pcp} needs --vlan: give the outer VLAN ID too (--vlan 0 for a priority tag alone)`);
      expect(existsSync(p('pcp.pcap'))).toBe(false);
    }
    const ok = vfplane(['pcap', 'encap', '--in', p('in.pcap'), '--out', p('pcp.pcap'), ...base, '--vlan', '0', '--vlan-pcp', '5']);
    expect(ok.code, ok.stderr).toBe(0);
    for (const f of readPcapFrames(readFileSync(p('pcp.pcap')))) expect(Buffer.from(f).readUInt16BE(14)).toBe(5 << 13);
  });

  describePrivileged('a multicast --remote without --dst-mac gets its group MAC (tshark)', { commands: ['tshark', 'mergecap'] }, () => {
    const cases: [string, string, string][] = [
      ['192.0.2.1', '224.0.0.1', '01:00:5e:00:00:01'],
      ['192.0.2.1', '239.129.254.7', '01:00:5e:01:fe:07'], // the low 23 bits only
      ['2001:db8::1', 'ff02::1', '33:33:00:00:00:01'],
      ['2001:db8::1', 'ff05::1:ab:cdef', '33:33:00:ab:cd:ef'],
      ['192.0.2.1', '192.0.2.2', '02:00:00:00:00:02'], // unicast: the default as before
    ];
    const given = '02:00:00:00:00:09';
    // Each encap runs as a user runs it; tshark then reads all their outputs at once
    // (mergecap -a puts them one after another), not once per file: its start-up is
    // most of what this costs.
    const runs = [
      ...cases.map(([local, remote]) => ({ out: `mc-${remote.replace(/\W/g, '_')}.pcap`, args: ['--local', local, '--remote', remote] })),
      { out: 'mc-given.pcap', args: ['--local', '192.0.2.1', '--remote', '224.0.0.1', '--dst-mac', given] },
    ];
    let encaps: { code: number; stderr: string }[];
    let dsts: string[][];
    beforeAll(() => {
      encaps = runs.map((r) => vfplane(['pcap', 'encap', '--in', p('in.pcap'), '--out', p(r.out), '--vni', '7', ...r.args]));
      const made = runs.filter((_, i) => encaps[i]!.code === 0).map((r) => p(r.out));
      const all = p('mc-all.pcap');
      execFileSync('mergecap', ['-a', '-F', 'pcap', '-w', all, ...made]);
      const rows = execFileSync('tshark', ['-r', all, '-T', 'fields', '-e', 'eth.dst'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .trim().split('\n').map((l) => l.split(',')[0]!);
      // 3 frames per file, in the order the files were given.
      let at = 0;
      dsts = runs.map((r, i) => (encaps[i]!.code === 0 ? rows.slice(at, (at += readPcapFrames(readFileSync(p(r.out))).length)) : []));
    });
    cases.forEach(([, remote, mac], i) => {
      it(`${remote} → ${mac}`, () => {
        expect(encaps[i]!.code, encaps[i]!.stderr).toBe(0);
        expect(dsts[i]).toEqual([mac, mac, mac]);
      });
    });
    it('--dst-mac given is used as it is', () => {
      expect(encaps[cases.length]!.code).toBe(0);
      expect(dsts[cases.length]).toEqual(Array(3).fill(given));
    });
  });
});

describe('pcap list flags with an empty item', () => {
  const cases: [string, string][] = [['--vni', '100,,200'], ['--vni', '100,'], ['--vni', ',100'], ['--local', '192.0.2.1,,192.0.2.9']];
  for (const [flag, value] of cases) {
    it(`decap ${flag} ${value}`, () => {
      const r = vfplane(['pcap', 'decap', '--in', p('in.pcap'), '--out', p('empty-item.pcap'), flag, value]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${flag} ${JSON.stringify(value)} has an empty item:`);
      expect(existsSync(p('empty-item.pcap'))).toBe(false);
    });
  }
});

describe('the README', () => {
  it('its pcap synopsis names every flag the help lists', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const cmd of ['encap', 'decap']) {
      const help = vfplane(['pcap', cmd, '--help']).stdout;
      const flags = [...help.matchAll(/^\s+(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]!).filter((f) => f !== '--help');
      const start = readme.indexOf(`vfplane pcap ${cmd} `);
      expect(start).toBeGreaterThan(0);
      const synopsis = readme.slice(start, readme.indexOf('\n\n', start));
      expect(flags.length).toBeGreaterThan(5);
      for (const f of flags) expect(synopsis, `${cmd} ${f}`).toMatch(new RegExp(`${f}\\b`));
    }
  });
});

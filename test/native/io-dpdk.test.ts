// The DPDK backend on real kernel objects: vfp-io-fwd --backend dpdk forwards between two
// net_af_packet vdevs on veths inside a test netns (H1 ↔ F ↔ H2), so ping crosses it and
// scapy-built frames arrive byte-identical; and a net_null pair forwards at speed.
// Hugepages come from dpdk-env.ts; everything made here is undone after the suite.
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareDpdkEnv, ealRuntimeDir, type DpdkEnv } from '../../src/dataplane/dpdk-env.js';
import { ROOT } from '../helpers/cli.js';
import { Netns, capture, ifname, inject, sweepStale, vethPair } from '../helpers/netns.js';
import { backendBuilt } from '../helpers/features.js';
import { describePrivileged } from '../helpers/privileged.js';
import { SYSTEM_PYTHON, hex } from '../helpers/scapy.js';

const FWD = join(ROOT, 'build', 'Release', 'vfp-io-fwd');
const built = backendBuilt('dpdk');

interface FwdResult {
  mpps: number;
  a_to_b: number;
  b_to_a: number;
  dropped: number;
}

/** Starts vfp-io-fwd; resolves once it printed {"ready":true}. */
function startFwd(argv: string[], netns?: Netns): Promise<{ child: ChildProcess; result: Promise<FwdResult> }> {
  const child = netns ? spawn('ip', ['netns', 'exec', netns.name, FWD, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(FWD, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const result = new Promise<FwdResult>((res, rej) => {
      child.on('close', (code) => {
        const last = out.trim().split('\n').at(-1) ?? '';
        if (code === 0 && last.startsWith('{"seconds"')) res(JSON.parse(last) as FwdResult);
        else rej(new Error(`vfp-io-fwd exited ${code}: ${err}`));
      });
    });
    result.catch(reject);
    child.stderr!.on('data', (d) => { err += d; });
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('{"ready":true}')) resolve({ child, result });
    });
  });
}

function suite(): void {
  let state: string;
  let env: DpdkEnv;
  beforeAll(() => {
    sweepStale();
    state = mkdtempSync(join(tmpdir(), `vfpx${process.pid}-dpdk-`));
    env = prepareDpdkEnv({ cores: '1', stateDir: state, hugepages: 128 });
  });
  afterAll(() => {
    env?.cleanup();
    rmSync(state, { recursive: true, force: true });
  });

  describe('net_af_packet vdevs on veths (H1 ↔ F ↔ H2)', () => {
    let h1: Netns, f: Netns, h2: Netns, fwd: ChildProcess | undefined;
    let result: Promise<FwdResult>;
    const dev = { h1: ifname('h1'), fa: ifname('fa'), fb: ifname('fb'), h2: ifname('h2') };
    beforeAll(async () => {
      [h1, f, h2] = [Netns.create('h1'), Netns.create('f'), Netns.create('h2')];
      for (const ns of [h1, f, h2]) ns.sysctl('net.ipv6.conf.all.disable_ipv6', '1'), ns.sysctl('net.ipv6.conf.default.disable_ipv6', '1');
      vethPair(h1, dev.h1, f, dev.fa);
      vethPair(f, dev.fb, h2, dev.h2);
      h1.ip(['addr', 'add', '10.77.0.1/24', 'dev', dev.h1]);
      h2.ip(['addr', 'add', '10.77.0.2/24', 'dev', dev.h2]);
      for (const [ns, d] of [[h1, dev.h1], [f, dev.fa], [f, dev.fb], [h2, dev.h2]] as const) ns.ip(['link', 'set', d, 'up']);
      const started = await startFwd(['--backend', 'dpdk', '--a', `net_af_packet0,iface=${dev.fa}`, '--b', `net_af_packet1,iface=${dev.fb}`,
        '--opts', `eal=${env.args.join(' ')}`], f);
      fwd = started.child;
      result = started.result;
    });
    afterAll(async () => {
      if (fwd && fwd.exitCode === null) {
        fwd.kill('SIGINT');
        await result.catch(() => undefined);
      }
      for (const ns of [h1, f, h2]) ns?.destroy();
    });

    it('ping H1 → H2 crosses the forwarder', () => {
      const out = h1.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.77.0.2']);
      expect(out).toMatch(/3 received/);
    });

    it('frames of 60, 128 and 1500 bytes and a VLAN-tagged one arrive byte-identical', async () => {
      const py = `
import sys
from scapy.all import Ether, Dot1Q, IP, UDP, Raw
src, dst = sys.argv[1], sys.argv[2]
def f(size, vlan=None):
    l2 = Ether(src=src, dst=dst) / (Dot1Q(vlan=vlan) if vlan else IP(src='10.77.0.1', dst='10.77.0.2'))
    if vlan: l2 = l2 / IP(src='10.77.0.1', dst='10.77.0.2')
    p = l2 / UDP(sport=4000, dport=9999)
    return bytes(p / Raw(bytes((i * 7) & 0xff for i in range(size - len(p)))))
for size, vlan in ((60, None), (128, None), (1500, None), (200, 42)):
    print(f(size, vlan).hex())
`;
      const frames = execFileSync(SYSTEM_PYTHON, ['-c', py, h1.mac(dev.h1), h2.mac(dev.h2)], { encoding: 'utf8' })
        .trim().split('\n').map((l) => Uint8Array.from(Buffer.from(l, 'hex')));
      expect(frames.map((x) => x.length)).toEqual([60, 128, 1500, 200]);
      const cap = capture(h2, dev.h2, { count: frames.length, timeoutS: 10, incoming: true, udpDport: 9999, vlan: true });
      await cap.ready;
      inject(h1, dev.h1, frames);
      const got = await cap.done;
      expect(got.map(hex)).toEqual(frames.map(hex));
    });

    it('stops on SIGINT with counters that saw the traffic both ways', async () => {
      fwd!.kill('SIGINT');
      const r = await result;
      expect(r.a_to_b).toBeGreaterThanOrEqual(3 + 4);
      expect(r.b_to_a).toBeGreaterThanOrEqual(3);
    });
  });

  describe('net_null pair', () => {
    it('forwards both ways at millions of packets per second', async () => {
      const { result } = await startFwd(['--backend', 'dpdk', '--a', 'net_null0', '--b', 'net_null1', '--seconds', '1',
        '--opts', `mbufs=8191,eal=${env.args.join(' ')}`]);
      const r = await result;
      expect(r.a_to_b).toBeGreaterThan(1_000_000);
      expect(r.b_to_a).toBeGreaterThan(1_000_000);
      expect(r.dropped).toBe(0);
    });
  });

  // DPDK's af_packet PMD puts its sockets in PACKET_FANOUT group (its pid ^ the
  // interface's index); a socket of the host's already in that group with another fanout
  // type makes its probe fail, which the EAL's log says in passing. The port's error names
  // the group and the way out. The shell's pid is the forwarder's (`exec`, and `ip netns
  // exec` execs too), so the group is known before the forwarder starts.
  it('a net_af_packet probe that meets another socket in its fanout group names the group', () => {
    const f = Netns.create('fo');
    const fc = ifname('fc'), hc = ifname('hc');
    try {
      execFileSync('ip', ['link', 'add', hc, 'type', 'veth', 'peer', 'name', fc, 'netns', f.name]);
      f.ip(['link', 'set', fc, 'up']);
      const hold = [
        'import socket, sys, time',
        's = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))',
        's.bind((sys.argv[2], 0))',
        'gid = (int(sys.argv[1]) ^ socket.if_nametoindex(sys.argv[2])) & 0xffff',
        's.setsockopt(263, 18, gid | (1 << 16))  # SOL_PACKET, PACKET_FANOUT: PACKET_FANOUT_LB',
        'print(gid, flush=True)',
        'time.sleep(30)',
      ].join('\n');
      const gidFile = join(state, 'fanout-gid');
      const cmd = `ip netns exec ${f.name} ${SYSTEM_PYTHON} -c "$0" $$ ${fc} > ${gidFile} 2>/dev/null & ` +
        `for i in $(seq 50); do [ -s ${gidFile} ] && break; sleep 0.1; done; ` +
        `exec ip netns exec ${f.name} ${FWD} --backend dpdk --a net_af_packet7,iface=${fc} --b net_null7 --seconds 1 --opts "eal=${env.args.join(' ')}"`;
      const r = spawnSync('sh', ['-c', cmd, hold], { encoding: 'utf8', timeout: 60_000 });
      const gid = readFileSync(gidFile, 'utf8').trim();
      expect(gid).toMatch(/^\d+$/);
      expect(r.status, r.stdout + r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(/could not set PACKET_FANOUT on AF_PACKET socket for/); // the collision happened
      expect(r.stderr).toContain(`net_af_packet joins PACKET_FANOUT group ${gid}, its pid xor the interface's index: if the EAL's log says it could not set PACKET_FANOUT, another socket on the host has that group, and a start under another pid gets another`);
    } finally {
      spawnSync('pkill', ['-f', `${fc}$`]); // the holder
      f.destroy();
    }
  });

  // A data room the device cannot receive a frame into (net_af_packet: framesz less 32
  // bytes in one mbuf) failed as "rx queue 0 (1024 descriptors): Cannot allocate memory",
  // DPDK's own log aside; fewer mbufs than the rings hold were taken and stalled.
  it('a data room too small for the device, or fewer mbufs than its rings, is refused naming the setting', () => {
    const f = Netns.create('mr');
    const fc = ifname('mc'), hc = ifname('mh');
    try {
      execFileSync('ip', ['link', 'add', hc, 'type', 'veth', 'peer', 'name', fc, 'netns', f.name]);
      f.ip(['link', 'set', fc, 'up']);
      const run = (opts: string) => spawnSync('ip', ['netns', 'exec', f.name, FWD, '--backend', 'dpdk', '--a', `net_af_packet8,iface=${fc}`, '--b', 'net_null8',
        '--seconds', '1', '--opts', `${opts},eal=${env.args.join(' ')}`], { encoding: 'utf8', timeout: 60_000 });
      const room = run('room=1000');
      expect(room.status, room.stdout + room.stderr).not.toBe(0);
      expect(room.stderr).toMatch(/2016 bytes will not fit in mbuf \(872 bytes\)/); // DPDK's own word
      expect(room.stderr).toContain('rx queue 0 (1024 descriptors): Cannot allocate memory; if the device\'s log above says a frame will not fit in an mbuf, the data room is too small: dpdk.mbufDataSize 1000 leaves 872 bytes for a frame after the 128-byte headroom; give 0 (the default, 2176) or more');
      const few = run('mbufs=1000');
      expect(few.status, few.stdout + few.stderr).not.toBe(0);
      expect(few.stderr).toMatch(/dpdk\.mbufs 1000 is fewer than its rings hold \(1 queue\(s\) × \(1024 rx \+ 1024 tx descriptors\) = 2048\); give 0 \(sized from them: \d+\), at least 2048, or fewer rxDesc\/txDesc/);
    } finally {
      f.destroy();
    }
  });

  it('cleanup removes the EAL runtime dir and the hugetlbfs it mounted', () => {
    const runtime = ealRuntimeDir(env.filePrefix);
    expect(existsSync(runtime)).toBe(true); // the EAL runs above left it
    env.cleanup();
    expect(existsSync(runtime)).toBe(false);
    if (env.hugeDir?.startsWith(state)) expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(env.hugeDir);
  });
}

if (!built && !process.env.CI) {
  describe.skip('DPDK backend (skipped: build/Release/features.json says dpdk is not built)', () => undefined);
} else {
  describePrivileged('DPDK backend (vfp-io-fwd --backend dpdk)', { netns: true, commands: ['ping', 'mount'] }, () => {
    it('is built (features.json)', () => expect(built).toBe(true));
    suite();
  });
}

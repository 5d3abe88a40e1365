// The I/O benchmark's pure parts: topology naming, frame files, rate windows, ping and
// testpmd parsing, ratios/targets and the SVG chart.
import { describe, expect, it } from 'vitest';
import { frameFile, ioFrames, lengthsBetween, medianWindow, parsePing, parseTestpmdTxPps, windowRates, type IoBenchResult, type IoCell } from '../../src/bench/io.js';
import { ioChartSvg, ioRatios, ioTargets } from '../../src/bench/io-report.js';
import { topoNames, topoOwner, topoPrefix } from '../../src/bench/io-topo.js';
import { checkNic } from '../../src/bench/io-nic.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { describePrivileged } from '../helpers/privileged.js';
import { ifname } from '../helpers/netns.js';
import { vfplane } from '../helpers/cli.js';

const cell = (dut: string, op: 'encap' | 'decap', size: number | 'imix', mpps: number): IoCell => ({
  dut, op, size, avgInnerBytes: size === 'imix' ? 353 : size, sinkFrameBytes: 100, sinkFrameLengths: { '100': 1 }, sinkStrayFrames: 0, offeredMpps: mpps * 1.1, mpps, gbps: 1, trialsMpps: [mpps], trialsOfferedMpps: [mpps * 1.1],
});

describe('io bench pure parts', () => {
  it('names the topology under a per-process prefix that fits IFNAMSIZ and maps back to the pid', () => {
    const p = topoPrefix(4194304);
    expect(p).toBe('vb2hwcg'); // pid_max is 4194304 at most: 5 base-36 digits
    const n = topoNames(p);
    for (const l of [n.g, n.dg, n.ds, n.s]) expect(l.length).toBeLessThanOrEqual(15);
    expect(topoOwner(n.nsD)).toBe(4194304);
    expect(topoOwner('vfpt123-x')).toBeNull();
  });

  it('writes frames as [u16 length][bytes] and builds VXLAN frames for decap', () => {
    const f = frameFile([new Uint8Array([1, 2, 3]), new Uint8Array(300)]);
    expect([...f.subarray(0, 5)]).toEqual([0, 3, 1, 2, 3]);
    expect(f.readUInt16BE(5)).toBe(300);
    const enc = ioFrames('encap', 64, 100);
    const dec = ioFrames('decap', 64, 100);
    expect(enc[0]!.length).toBe(64);
    expect(dec[0]!.length).toBe(64 + 50);
    expect(dec[0]![12]).toBe(0x08);
    expect((dec[0]![36]! << 8) | dec[0]![37]!).toBe(4789); // UDP destination port
    expect((dec[0]![46]! << 16) | (dec[0]![47]! << 8) | dec[0]![48]!).toBe(100); // VNI
  });

  it('counts the frames of each length between two sink marks', () => {
    const a = { t_ns: 0, pkts: 5, bytes: 570, lens: { '114': 5 } };
    const b = { t_ns: 1e9, pkts: 108, bytes: 114 * 105 + 148 * 3, lens: { '114': 105, '148': 3 } };
    expect(lengthsBetween(a, b)).toEqual({ '114': 100, '148': 3 });
    expect(lengthsBetween(b, b)).toEqual({});
  });

  it('computes per-window rates and parses ping and testpmd output', () => {
    expect(windowRates([{ t_ns: 0, pkts: 0 }, { t_ns: 1e9, pkts: 2e6 }, { t_ns: 2e9, pkts: 3e6 }])).toEqual([2, 1]);
    const ping = Array.from({ length: 8 }, (_, i) => `64 bytes from 10.99.0.2: icmp_seq=${i} ttl=64 time=0.0${i + 1}0 ms`).join('\n');
    expect(parsePing(ping, 5)).toEqual([60, 70, 80]);
    const tp = `  ######################## NIC statistics for port 1  ########################
  RX-packets: 0
  Throughput (since last show)
  Rx-pps:            0          Rx-bps:            0
  Tx-pps:     31234567          Tx-bps: 1
  ############################################################################`;
    expect(parseTestpmdTxPps(tp, 1)).toEqual([31234567]);
  });

  // The sink's median window against the offered rate over the whole run (or against the
  // offered median, another window) let a cell read more forwarded than offered.
  it('takes a cell\'s sink and offered rates from the same window(s)', () => {
    // Window 2 is the sink's median; the generator slowed in window 3.
    expect(medianWindow([1.0, 2.0, 3.0], [1.05, 2.05, 1.5])).toEqual({ mpps: 2.0, offeredMpps: 2.05 });
    const ok = medianWindow([0.9, 1.9, 1.0], [1.0, 2.0, 1.1]);
    expect(ok.mpps).toBeLessThanOrEqual(ok.offeredMpps);
    expect(ok).toEqual({ mpps: 1.0, offeredMpps: 1.1 });
    // Even count: the two middle windows, each series averaged over them.
    expect(medianWindow([4, 1, 3, 2], [40, 10, 30, 20])).toEqual({ mpps: 2.5, offeredMpps: 25 });
    expect(medianWindow([], [])).toEqual({ mpps: 0, offeredMpps: 0 });
  });

  it('pairs our cells with the kernel\'s and judges the targets', () => {
    const cells = [cell('kernel-vxlan', 'encap', 64, 0.3), cell('vfplane-afxdp', 'encap', 64, 0.9), cell('kernel-vxlan', 'encap', 1500, 0.3), cell('vfplane-afxdp', 'encap', 1500, 0.45)];
    const r = ioRatios(cells);
    expect(r.map((x) => +x.ratio.toFixed(2))).toEqual([3, 1.5]);
    const res = { backend: 'afxdp', cells, nullCompare: { oursMpps: 21, testpmdMpps: 30, ratio: 0.7 } } as unknown as IoBenchResult;
    const t = ioTargets(res, r);
    expect(t[0]!.pass).toBe(false);
    expect(t[0]!.measured).toBe('1.50×');
    expect(t.at(-1)!.pass).toBe(true);
  });

  it('never passes a target on a cell where a DUT forwarded nothing (x / 0 read as ∞ passed)', () => {
    const cells = [cell('kernel-vxlan', 'decap', 64, 0.3), cell('vfplane-afxdp', 'decap', 64, 0.9), cell('kernel-vxlan', 'decap', 1400, 0), cell('vfplane-afxdp', 'decap', 1400, 0)];
    const t = ioTargets({ backend: 'afxdp', cells } as unknown as IoBenchResult, ioRatios(cells));
    expect(t[0]).toMatchObject({ pass: false, measured: 'no comparison: the kernel vxlan DUT forwarded nothing at 1400 B' });
    const ours = [cell('kernel-vxlan', 'encap', 64, 0.3), cell('vfplane-afxdp', 'encap', 64, 0)];
    expect(ioTargets({ backend: 'afxdp', cells: ours } as unknown as IoBenchResult, ioRatios(ours))[0]).toMatchObject({ pass: false, measured: 'no comparison: vfplane-afxdp forwarded nothing at 64 B' });
  });

  it('marks a ratio generator-bound when both DUTs forwarded what was offered', () => {
    const kept = (dut: string, mpps: number): IoCell => ({ ...cell(dut, 'encap', 64, mpps), offeredMpps: mpps });
    const [bound] = ioRatios([kept('kernel-vxlan', 0.2), kept('vfplane-afxdp', 0.3)]);
    expect(bound!.generatorBound).toBe(true);
    const [real] = ioRatios([cell('kernel-vxlan', 'encap', 64, 0.2), kept('vfplane-afxdp', 0.3)]); // the kernel dropped 10%
    expect(real!.generatorBound).toBe(false);
    const t = ioTargets({ backend: 'afxdp' } as unknown as IoBenchResult, [bound!]);
    expect(t[0]!.name).toMatch(/1 of 1 sizes generator-bound .*inconclusive/);
  });

  it('draws one line per DUT and op, imix at its own tick', () => {
    const cells = [64, 512, 1500, 'imix' as const].flatMap((s) => [cell('kernel-vxlan', 'encap', s, 0.3), cell('vfplane-dpdk', 'encap', s, 0.6)]);
    const svg = ioChartSvg(cells, 'a <title>');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    expect(svg).toContain('&lt;title&gt;');
    expect(svg).toContain('>imix<');
    expect(svg).toContain('kernel-vxlan encap');
    // The y axis fits what is drawn: an offered rate 20× the measured one (not plotted)
    // does not squeeze the lines into the bottom.
    const far = cells.map((c) => ({ ...c, offeredMpps: 12 }));
    const ticks = [...ioChartSvg(far, 't').matchAll(/text-anchor="end">([\d.]+)</g)].map((m) => Number(m[1]));
    expect(Math.max(...ticks)).toBeLessThan(1.5);
  });

  it('refuses an absent NIC, naming the value and the fix', () => {
    expect(() => checkNic({ pci: '0000:99:00.7' })).toThrow(/--pci 0000:99:00.7: no such PCI device.*lspci/);
    expect(() => checkNic({ iface: 'vfpnope0' })).toThrow(/--iface vfpnope0: no such network interface/);
  });

  it('refuses a malformed --pci or --iface as a usage error before anything runs (an empty one ran the veth bench)', () => {
    for (const [args, msg] of [
      [['--backend', 'dpdk', '--pci', 'eth0'], /--pci "?eth0"?.*DDDD:BB:DD\.F/],
      [['--backend', 'dpdk', '--pci', ''], /--pci/],
      [['--backend', 'afxdp', '--iface', ''], /--iface/],
      [['--backend', 'afxdp', '--iface', 'eth0/'], /--iface/],
      [['--backend', 'afxdp', '--sizes', '64,1515'], /--sizes 1515: .*MTU 1500.*1514 B at most/],
    ] as const) {
      const r = vfplane(['bench', ...args, '--trials', '1', '--duration', '20']);
      expect([r.code, r.stderr], args.join(' ')).toEqual([2, expect.stringMatching(msg)]);
    }
  });
});

describePrivileged('bench --iface on a netdev the host uses', { root: true }, () => {
  it("is refused, naming its addresses, before any traffic (the host's management NIC was taken)", () => {
    const a = ifname('bh'), b = ifname('bi');
    execFileSync('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    try {
      execFileSync('ip', ['addr', 'add', '198.51.100.77/32', 'dev', a]);
      execFileSync('ip', ['link', 'set', a, 'up']);
      const r = vfplane(['bench', '--backend', 'afxdp', '--iface', a, '--sizes', '64', '--trials', '1', '--duration', '20']);
      expect([r.code, r.stderr]).toEqual([2, expect.stringContaining(`--iface ${a} carries 198.51.100.77/32: the bench takes the whole netdev`)]);
      expect(execFileSync('ip', ['-d', 'link', 'show', a], { encoding: 'utf8' })).not.toMatch(/xdp/);
    } finally {
      execFileSync('ip', ['link', 'del', a]);
    }
  });

  it('is refused when it is a bridge port (the address on the bridge: it ran at line rate on it)', () => {
    const a = ifname('bp'), b = ifname('bq'), br = ifname('bbr');
    execFileSync('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    try {
      execFileSync('ip', ['link', 'add', br, 'type', 'bridge']);
      execFileSync('ip', ['link', 'set', a, 'master', br]);
      execFileSync('ip', ['addr', 'add', '198.51.100.78/32', 'dev', br]);
      const r = vfplane(['bench', '--backend', 'afxdp', '--iface', a, '--sizes', '64', '--trials', '1', '--duration', '20']);
      expect([r.code, r.stderr]).toEqual([2, expect.stringContaining(`--iface ${a} is a port of bridge ${br}: the bench takes the whole netdev`)]);
      expect(execFileSync('ip', ['-d', 'link', 'show', a], { encoding: 'utf8' })).not.toMatch(/xdp/);
    } finally {
      spawnSync('ip', ['link', 'del', br]);
      execFileSync('ip', ['link', 'del', a]);
    }
  });
});

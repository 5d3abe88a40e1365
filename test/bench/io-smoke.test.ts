// The I/O benchmark end to end on real namespaces: a short afpacket run must measure
// both DUTs (kernel vxlan and ours) with traffic arriving, give ping latencies, write
// its chart and leave no namespace behind. No timing assertions beyond "> 0".
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { vfplane } from '../helpers/cli.js';
import { liveFramesRefused } from '../../src/bench/io.js';

describePrivileged('vfplane bench --backend afpacket (veth topology)', { netns: true, commands: ['ping', 'bridge', 'taskset'] }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vfpbench-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('measures the kernel vxlan DUT and ours side by side and cleans up', () => {
    const chart = join(dir, 'c.svg');
    const r = vfplane(['bench', '--backend', 'afpacket', '--sizes', '64', '--duration', '200', '--trials', '1', '--pings', '20', '--gen', 'afpacket', '--chart', chart, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.duts).toEqual(['kernel-vxlan', 'vfplane-afpacket']);
    for (const d of rep.duts) for (const op of ['encap', 'decap']) {
      const c = rep.cells.find((x: any) => x.dut === d && x.op === op);
      expect(c.offeredMpps, `${d} ${op}`).toBeGreaterThan(0);
      expect(c.mpps, `${d} ${op}`).toBeGreaterThan(0);
      const want = op === 'encap' ? 114 : 64;
      // Ours must be exact. The kernel DUT now and then lets one of its own frames (ARP,
      // neighbour discovery) reach the sink, which moves its mean by a hair.
      // The sink's per-length counts say which frames moved the mean, should it move.
      const lens = `${d} ${op}: frames by length ${JSON.stringify(c.sinkFrameLengths)}`;
      expect(c.sinkFrameLengths[String(want)], lens).toBeGreaterThan(0);
      if (d !== 'kernel-vxlan') expect(c.sinkStrayFrames, lens).toBe(0);
      if (d === 'kernel-vxlan') expect(Math.abs(c.sinkFrameBytes - want), lens).toBeLessThan(0.5);
      else expect(c.sinkFrameBytes, lens).toBe(want);
    }
    for (const l of rep.latency) expect(l.received).toBeGreaterThan(0);
    expect(rep.ratios).toHaveLength(2);
    expect(existsSync(chart) && readFileSync(chart, 'utf8').startsWith('<svg')).toBe(true);
    const ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    expect(ns).not.toMatch(/^vb[0-9a-z]+[gds]\b/m);
  }, 60000);

  // The default generator: the kernel sends the frames itself (live frames), into D's
  // veths with NAPI on. Both DUTs must receive from it; ours is AF_XDP here. A kernel
  // that refuses live frames (some do, even to root) gets the AF_XDP generator, said;
  // --gen xdp-live asked for by name is then refused, naming the kernel's reason.
  it('with the default generator (live frames, or AF_XDP where the kernel refuses them, said) both DUTs receive traffic', () => {
    const refused = liveFramesRefused();
    const r = vfplane(['bench', '--backend', 'afxdp', '--sizes', '64', '--duration', '200', '--trials', '1', '--pings', '0', '--chart', join(dir, 'x.svg'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    if (refused) {
      expect(rep.settings.generator).toBe('afxdp');
      expect(rep.settings.generatorFallback).toBe(`this kernel refuses BPF_PROG_RUN live frames: ${refused}`);
      expect(r.stderr).toContain(`vfplane bench: the generator is afxdp, not xdp-live (this kernel refuses BPF_PROG_RUN live frames: ${refused})`);
      const named = vfplane(['bench', '--backend', 'afxdp', '--gen', 'xdp-live', '--sizes', '64', '--chart', join(dir, 'y.svg')]);
      expect([named.code, named.stderr.trim()]).toEqual([1, `vfplane: --gen xdp-live: this kernel refuses to transmit BPF_PROG_RUN live frames (${refused}); use --gen afxdp or --gen afpacket`]);
    } else {
      expect(rep.settings.generator).toBe('xdp-live');
      expect(rep.settings.generatorFallback).toBeUndefined();
    }
    expect(rep.duts).toEqual(['kernel-vxlan', 'vfplane-afxdp']);
    for (const c of rep.cells) {
      expect(c.offeredMpps, `${c.dut} ${c.op}`).toBeGreaterThan(0);
      expect(c.mpps, `${c.dut} ${c.op}`).toBeGreaterThan(0);
    }
  }, 60000);
});

// Long commands interrupted as timeout(1) or a CI runner does it (SIGTERM to the vfplane
// process alone) or as a terminal's Ctrl-C does (SIGINT to its whole process group, its
// children too): what they reserved, mounted and started must be gone after,
// and the exit status says it was a signal (143). A `finally` is not enough: the signal's
// default action ends the process before it runs.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';

const pgrep = (pattern: string) => (spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).stdout ?? '').trim();
const hugeMounts = () => readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes('hugetlbfs') && l.includes('vfplane-bench-'));

/** Starts `vfplane ARGS`, waits until ready() holds, SIGTERMs it (or, with `ctrlC`,
 *  SIGINTs its whole process group, as a terminal's Ctrl-C does), and returns its exit
 *  status and stderr. */
async function interrupt(args: string[], ready: (stderr: string) => boolean, timeoutMs = 60000, ctrlC = false, twice = false): Promise<{ code: number | null; stderr: string; stdout: string; pid: number }> {
  const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: ctrlC });
  let stderr = '';
  let stdout = '';
  p.stderr.on('data', (d) => (stderr += d));
  p.stdout.on('data', (d) => (stdout += d));
  const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  const t0 = Date.now();
  while (!ready(stderr)) {
    if (Date.now() - t0 > timeoutMs || p.exitCode !== null) throw new Error(`never got ready: ${stderr.slice(-500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  if (ctrlC) process.kill(-p.pid!, 'SIGINT');
  else p.kill('SIGTERM');
  if (twice) {
    // As timeout(1) does (the child, then its group), or a second Ctrl-C: once the
    // cleanups have started.
    for (let i = 0; i < 100 && !stderr.includes('cleaning up'); i++) await new Promise((r) => setTimeout(r, 10));
    p.kill('SIGTERM');
  }
  const code = await exited;
  return { code, stderr, stdout, pid: p.pid! };
}

describe.sequential('interrupted long commands clean up', () => {
  describePrivileged('benches', { netns: true, commands: ['dpdk-testpmd', 'pgrep'] }, () => {
    it('bench --backend dpdk: SIGTERM while testpmd runs gives its hugepages and hugetlbfs back', async () => {
      const pages = readFileSync('/proc/sys/vm/nr_hugepages', 'utf8').trim();
      const r = await interrupt(['bench', '--backend', 'dpdk', '--only-null', '--duration', '4000', '--trials', '1', '--pings', '0'],
        () => pgrep('^dpdk-testpmd') !== '' && hugeMounts().length > 0);
      expect(r.code, r.stderr).toBe(143);
      expect(r.stderr).toContain('SIGTERM: cleaning up');
      expect(readFileSync('/proc/sys/vm/nr_hugepages', 'utf8').trim()).toBe(pages);
      expect(hugeMounts()).toEqual([]);
      expect(pgrep('^dpdk-testpmd')).toBe('');
    }, 90000);

    it('bench --backend dpdk: killed outright (SIGKILL) while testpmd runs, the next bench gives its hugepages, mount and EAL directory back', async () => {
      const pages = readFileSync('/proc/sys/vm/nr_hugepages', 'utf8').trim();
      const args = ['bench', '--backend', 'dpdk', '--only-null', '--duration', '1000', '--trials', '1'];
      const p = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' });
      const t0 = Date.now();
      while (!(pgrep('^dpdk-testpmd') !== '' && hugeMounts().length > 0)) {
        if (Date.now() - t0 > 60000 || p.exitCode !== null) throw new Error('testpmd never ran');
        await new Promise((r) => setTimeout(r, 100));
      }
      p.kill('SIGKILL');
      await once(p, 'exit');
      for (let i = 0; i < 100 && pgrep('^dpdk-testpmd') !== ''; i++) await new Promise((r) => setTimeout(r, 100)); // its stdin closed
      expect(hugeMounts()).not.toEqual([]); // what the killed run left
      const next = spawnSync(process.execPath, [BIN, ...args, '--json'], { encoding: 'utf8', timeout: 120000 });
      expect(next.status, next.stderr).toBe(0);
      expect(next.stderr).toMatch(new RegExp(`unmounted the hugetlbfs at \\S+ that a DPDK run \\(pid ${p.pid},`));
      expect(hugeMounts()).toEqual([]);
      expect(readFileSync('/proc/sys/vm/nr_hugepages', 'utf8').trim()).toBe(pages);
      expect(existsSync(join(tmpdir(), `vfplane-bench-${p.pid}`))).toBe(false);
      expect(existsSync('/run/vfplane/bench-dpdk')).toBe(false); // the journals' directory, once empty
    }, 180000);

    it('bench --backend afpacket: SIGTERM mid-measurement removes its frame files and topology', async () => {
      const benchDirs = () => readdirSync(tmpdir()).filter((f) => /^vfplane-bench-[A-Za-z0-9]{6}$/.test(f)).sort();
      const netns = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
      const before = { dirs: benchDirs(), netns: netns() };
      const r = await interrupt(['bench', '--backend', 'afpacket', '--sizes', '1500', '--ops', 'encap', '--duration', '5000', '--trials', '1', '--pings', '0', '--no-kernel', '--chart', join(tmpdir(), `vfplane-int-${process.pid}.svg`)],
        (e) => /encap 1500 B …/.test(e) && benchDirs().length > before.dirs.length, 90000);
      expect(r.code, r.stderr).toBe(143);
      expect(benchDirs()).toEqual(before.dirs);
      expect(netns()).toBe(before.netns);
    }, 120000);

    it.each([
      ['SIGTERM to the bench alone (it was not heard until ping was done, then the full report)', false, 143],
      ['Ctrl-C to its process group (ping died of it, and its replies so far were reported)', true, 130],
    ])('bench --backend afpacket: %s during the latency ping stops it, with no report', async (_, ctrlC, want) => {
      const netns = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
      const before = netns();
      const r = await interrupt(['bench', '--backend', 'afpacket', '--sizes', '64', '--ops', 'encap', '--duration', '50', '--trials', '1', '--pings', '20000', '--no-kernel', '--chart', join(tmpdir(), `vfplane-int-${process.pid}.svg`)],
        (e) => e.includes('latency (20000 pings)') && pgrep('ping -n -c 20005') !== '', 90000, ctrlC);
      expect(r.code, r.stderr).toBe(want);
      expect(r.stdout).toBe('');
      await new Promise((res) => setTimeout(res, 300));
      expect(pgrep('ping -n -c 20005')).toBe('');
      expect(netns()).toBe(before);
    }, 120000);

    it('bench cni: SIGTERM mid-run removes its simulated NIC, namespace, server and data plane', async () => {
      // Ready once it measures: its simulated NIC, server and data plane are up, and the
      // signal lands among the first ADDs.
      const r = await interrupt(['bench', 'cni', '--runs', '500', '--standalone-runs', '0', '--vxlan'], (e) => e.includes('500 ADD+DEL runs each'), 120000);
      expect(r.code, r.stderr).toBe(143);
      const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
      expect(ns).not.toMatch(/^bc[0-9a-z]+-/m);
      expect(spawnSync('ip', ['-br', 'link'], { encoding: 'utf8' }).stdout).not.toMatch(/^bc[0-9a-z]+f0/m);
      expect(pgrep('vfplane-bench-cni-.*/cni\\.sock')).toBe('');
      expect(pgrep('vfplane-bench-cni-.*/dataplane\\.json')).toBe('');
    }, 150000);
  });

  it('bench alloc: SIGTERM mid-run stops its worker processes and removes its directory', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'vfplane-intr-'));
    try {
      const r = await interrupt(['bench', 'alloc', '--procs', '3', '--cycles', '100000', '--state-dir', parent], (e) => e.includes('vfplane bench alloc:') && pgrep(`alloc-worker\\.js .*${parent}`) !== '');
      expect(r.code, r.stderr).toBe(143);
      await new Promise((res) => setTimeout(res, 300));
      expect(pgrep(`alloc-worker\\.js .*${parent}`)).toBe('');
      expect(readdirSync(parent)).toEqual([]);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  }, 60000);

  describePrivileged('demo', { netns: true, commands: ['iperf3', 'pgrep'] }, () => {
    it('SIGTERM during its traffic, twice (as timeout(1) sends it), leaves no iperf3 server or namespace behind, and exits 143', async () => {
      const before = pgrep('iperf3 -s -p 5201');
      const r = await interrupt(['demo', '--seconds', '6'], (e) => e.includes('3. traffic') && pgrep('iperf3 -s -p 5201') !== before, 120000, false, true);
      expect(r.code, r.stderr).toBe(143);
      // The second signal let the teardown finish (it exited at once, leaving the topology).
      expect(r.stderr).toContain('SIGTERM: still cleaning up');
      await new Promise((res) => setTimeout(res, 300));
      expect(pgrep('iperf3 -s -p 5201')).toBe(before);
      const prefix = `d${(r.pid % 1_679_616).toString(36)}`;
      expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(prefix))).toEqual([]);
      expect(spawnSync('ip', ['-br', 'link'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(prefix))).toEqual([]);
    }, 150000);

    // (Seconds of traffic: enough for the poll to see iperf3's client, or the least when
    // the traffic is not where the signal lands.)
    it.each([
      ['while pods get VFs', (e: string) => e.includes('2. pods get VFs'), '1'],
      ['during its TCP traffic', (e: string) => e.includes('3. traffic') && pgrep('iperf3 -c 10.100.0.2') !== '', '4'],
      // (It exited 0, its simulated NIC's links left and its work directory, which the next
      // demo sweeps from, removed, when the signal killed an `ip` of the teardown.)
      ['while it tears down', (e: string) => e.includes('5. tearing down'), '1'],
    ])('Ctrl-C (SIGINT to its process group) %s: exits 130 as interrupted, reports no failure, and leaves no namespace', async (_, ready, seconds) => {
      const r = await interrupt(['demo', '--seconds', seconds], ready, 120000, true);
      expect(r.code, r.stderr).toBe(130);
      expect(r.stderr).toContain('SIGINT: tearing the demo down');
      expect(r.stderr).not.toMatch(/failed|error|FAIL/i);
      const prefix = `d${(r.pid % 1_679_616).toString(36)}`;
      expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(`${prefix}-`))).toEqual([]);
      expect(spawnSync('ip', ['-br', 'link'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(prefix))).toEqual([]);
    }, 150000);
  });
});

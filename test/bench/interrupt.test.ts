// Long commands interrupted as a terminal, timeout(1) or a CI runner does it (SIGTERM to
// the vfplane process alone): what they reserved, mounted and started must be gone after,
// and the exit status says it was a signal (143). A `finally` is not enough: the signal's
// default action ends the process before it runs.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';

const pgrep = (pattern: string) => (spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).stdout ?? '').trim();
const hugeMounts = () => readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes('hugetlbfs') && l.includes('vfplane-bench-'));

/** Starts `vfplane ARGS`, waits until ready() holds, SIGTERMs it, and returns its exit status and stderr. */
async function interrupt(args: string[], ready: (stderr: string) => boolean, timeoutMs = 60000): Promise<{ code: number | null; stderr: string }> {
  const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  const t0 = Date.now();
  while (!ready(stderr)) {
    if (Date.now() - t0 > timeoutMs || p.exitCode !== null) throw new Error(`never got ready: ${stderr.slice(-500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  p.kill('SIGTERM');
  return { code: await exited, stderr };
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

    it('bench cni: SIGTERM mid-run removes its simulated NIC, namespace, server and data plane', async () => {
      const r = await interrupt(['bench', 'cni', '--runs', '500', '--standalone-runs', '0', '--vxlan'], (e) => /\b50\/500\b/.test(e), 120000);
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
    it('SIGTERM during its traffic leaves no iperf3 server behind, and exits 143', async () => {
      const before = pgrep('iperf3 -s -p 5201');
      const r = await interrupt(['demo', '--seconds', '6'], (e) => e.includes('3. traffic') && pgrep('iperf3 -s -p 5201') !== before, 120000);
      expect(r.code, r.stderr).toBe(143);
      await new Promise((res) => setTimeout(res, 300));
      expect(pgrep('iperf3 -s -p 5201')).toBe(before);
    }, 150000);
  });
});

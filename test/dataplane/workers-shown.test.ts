// How the workers are shown. An unpinned worker (cpus -1, or no cpus) was shown on the
// CPU it happened to start on, read once: "2 worker(s) on CPU 0,0" in status, "CPU 0 0%
// of polls busy" in stats, cpu="0" in the metrics, as if pinned there. It is shown
// unpinned now (no cpu label in the metrics: Prometheus reads that as cpu=""), and a
// pinned one still on its CPU. Each worker thread has its own name (vfp-wN), so `top -H`
// and /proc/PID/task/TID/comm tell them apart.
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { Netns, ifname, vethIn, scratchDir } from '../helpers/netns.js';

/** The names of PID's threads (/proc/PID/task/TID/comm). */
function threadNames(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((t) => {
    try {
      return readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
    } catch {
      return ''; // a thread that ended meanwhile
    }
  });
}

describePrivileged('the workers as status, stats and metrics show them', { root: true }, () => {
  let n: Netns;
  const up = ifname('u'), upp = ifname('v');
  const d = scratchDir('workers');

  beforeAll(() => {
    n = Netns.create('wk');
    vethIn(n, up, upp);
  });
  afterAll(() => {
    n?.destroy();
    d.remove();
  });

  it('unpinned workers are shown unpinned, and their threads are named vfp-w0, vfp-w1', async () => {
    const dp = await dataplaneOn(n, up, d.dir, { workers: 2, cpus: [-1, -1], metrics: '127.0.0.1:0' });
    try {
      const st = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      expect(st.code, st.stderr).toBe(0);
      expect(st.stdout).toMatch(/, 2 worker\(s\) unpinned \(cpus: -1 or not set\)$/m);
      expect(st.stdout).not.toMatch(/worker\(s\) on CPU/);
      const sj = JSON.parse(vfplane(['dataplane', 'status', '--socket', dp.socket, '--json']).stdout) as { workers: { cpu: number }[] };
      expect(sj.workers.map((w) => w.cpu)).toEqual([-1, -1]);

      const stats = vfplane(['dataplane', 'stats', '--socket', dp.socket]);
      expect(stats.code, stats.stderr).toBe(0);
      expect(stats.stdout).toMatch(/^workers: worker 0 unpinned \d+% of polls busy, worker 1 unpinned \d+% of polls busy \(since start/m);
      const cj = JSON.parse(vfplane(['dataplane', 'stats', '--socket', dp.socket, '--json']).stdout) as { counters: { workers: { cpu: number }[] } };
      expect(cj.counters.workers.map((w) => w.cpu)).toEqual([-1, -1]);

      const text = await (await fetch(`http://127.0.0.1:${dp.metricsPort}/metrics`)).text();
      expect(text).toMatch(/^vfplane_worker_loops_total\{node="edge",worker="0"\} \d+$/m);
      expect(text).toMatch(/^vfplane_worker_busy_loops_total\{node="edge",worker="1"\} \d+$/m);
      expect(text).not.toMatch(/^vfplane_worker_\w+\{[^}]*cpu=/m);

      const names = threadNames(dp.proc.pid!);
      expect(names.filter((x) => /^vfp-w\d+$/.test(x)).sort(), names.join(' ')).toEqual(['vfp-w0', 'vfp-w1']);
    } finally {
      await dp.stop();
    }
  });

  it('a pinned worker is shown on its CPU, an unpinned one beside it unpinned', async () => {
    const dp = await dataplaneOn(n, up, d.dir, { workers: 2, cpus: [0, -1], metrics: '127.0.0.1:0', burst: 16, idleSpins: 8, floodPps: 500 });
    try {
      const st = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      expect(st.stdout).toMatch(/, 2 worker\(s\) on CPU 0,unpinned$/m);
      // How they poll, which only the config file said (helper-90).
      expect(st.stdout).toContain('polling: bursts of 16 frames, sleeping after 8 empty polls (idleSpins); storm control: 500 flooded frames a second a pod (floodPps)');
      expect(JSON.parse(vfplane(['dataplane', 'status', '--socket', dp.socket, '--json']).stdout).polling).toEqual({ burst: 16, idleSpins: 8, floodPps: 500 });
      const stats = vfplane(['dataplane', 'stats', '--socket', dp.socket]);
      expect(stats.stdout).toMatch(/^workers: CPU 0 \d+% of polls busy, worker 1 unpinned \d+% of polls busy /m);
      const text = await (await fetch(`http://127.0.0.1:${dp.metricsPort}/metrics`)).text();
      expect(text).toMatch(/^vfplane_worker_loops_total\{node="edge",worker="0",cpu="0"\} \d+$/m);
      expect(text).toMatch(/^vfplane_worker_loops_total\{node="edge",worker="1"\} \d+$/m);
    } finally {
      await dp.stop();
    }
  });
});

// Starting a data-plane daemon as a child process, as the demo topology, the tests and
// `bench cni --vxlan` do: `vfplane dataplane run --config FILE --json`, ready once it
// prints its {"ready":true,...} line.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { systemError } from '../util/errors.js';
import { packageRoot } from './addon.js';

export interface DataplaneChild {
  proc: ChildProcess;
  /** The ready line: the metrics port when --metrics was given. */
  ready: { metricsPort: number | null };
}

/** Spawns the daemon on `config` and resolves once it is ready. Its stderr lines are
 *  appended to `stderr` as they come (for the caller to show later). If it exits, or is
 *  not ready within timeoutMs, it is killed and the promise rejects with what it said,
 *  naming it as `what`. One whose DPDK net_af_packet uplink could not join its
 *  PACKET_FANOUT group is started again (twice at most): the PMD takes the group from
 *  its pid xor the netdev's index, so two simulated nodes' daemons on one host can clash
 *  (a fresh-clone run met it), and another pid gets another group. */
export async function spawnDataplane(config: string, what: string, stderr: string[] = [], timeoutMs = 20_000): Promise<DataplaneChild> {
  for (let attempt = 1; ; attempt++) {
    const from = stderr.length;
    try {
      return await spawnOnce(config, what, stderr, timeoutMs);
    } catch (e) {
      if (attempt >= 3 || !stderr.slice(from).some((l) => l.includes('could not set PACKET_FANOUT'))) throw e;
      stderr.push(`(${what}: its net_af_packet's PACKET_FANOUT group is another socket's; starting it again, under another pid)`);
    }
  }
}

function spawnOnce(config: string, what: string, stderr: string[], timeoutMs: number): Promise<DataplaneChild> {
  const p = spawn(process.execPath, [join(packageRoot(), 'bin', 'vfplane.js'), 'dataplane', 'run', '--config', config, '--json'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  p.stderr!.setEncoding('utf8');
  p.stderr!.on('data', (d: string) => stderr.push(...d.split('\n').filter(Boolean)));
  return new Promise((resolve, reject) => {
    const fail = () => {
      clearTimeout(t);
      p.kill('SIGKILL');
      reject(systemError(`${what} did not start:\n${stderr.join('\n')}`));
    };
    const t = setTimeout(fail, timeoutMs);
    p.once('exit', fail);
    let out = '';
    p.stdout!.setEncoding('utf8');
    p.stdout!.on('data', (d: string) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"ready":true'));
      if (!line) return;
      clearTimeout(t);
      p.off('exit', fail);
      resolve({ proc: p, ready: JSON.parse(line) as { metricsPort: number | null } });
    });
  });
}

// Gate for tests that need root, network namespaces or external tools. Locally a
// missing capability skips the suite; in CI (CI set) it fails, so a privileged test
// can never pass by not running.
import { execFileSync } from 'node:child_process';
import { describe, it } from 'vitest';

export interface Need {
  root?: boolean;
  netns?: boolean;
  commands?: string[];
}

function missing(need: Need): string[] {
  const out: string[] = [];
  const isRoot = process.getuid?.() === 0;
  if ((need.root || need.netns) && !isRoot) out.push('root');
  if (need.netns && isRoot) {
    const probe = `vfpprobe${process.pid}`;
    try {
      execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' });
      execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
    } catch {
      out.push('network namespaces (ip netns add failed)');
    }
  }
  for (const c of need.commands ?? []) {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', c], { stdio: 'ignore' });
    } catch {
      out.push(`command ${c}`);
    }
  }
  return out;
}

export function describePrivileged(name: string, need: Need, fn: () => void): void {
  const lacks = missing(need);
  if (lacks.length === 0) {
    describe(name, fn);
  } else if (process.env.CI) {
    describe(name, () => {
      it('has what it needs to run', () => {
        throw new Error(`privileged test cannot run in CI: missing ${lacks.join(', ')}; ` +
          'run CI as root on a machine set up by ./scripts/setup');
      });
    });
  } else {
    describe.skip(`${name} (skipped: missing ${lacks.join(', ')})`, fn);
  }
}

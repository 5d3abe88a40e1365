// The engine never reads past a frame's last byte: vfp-core-guard (native/test/guard.c)
// places every prefix of a valid inner frame and of its VXLAN frame so that it ends at a
// page followed by an inaccessible one, and runs encap, decap and the flow hash on it
// (a read past the end faults: SIGSEGV). The fast paths for untagged IPv4 once loaded
// the EtherType before testing the length, which this catches.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GUARD = join(ROOT, 'build', 'Release', 'vfp-core-guard');

describe('engine reads stay inside the frame', () => {
  it('encap, decap and the flow hash of every prefix of a frame that ends at a guard page', () => {
    expect(existsSync(GUARD), `${GUARD} is built by npm run build`).toBe(true);
    const r = spawnSync(GUARD, { encoding: 'utf8', timeout: 30_000 });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => l.split(' '));
    const encap = lines.filter((l) => l[0] === 'encap');
    const decap = lines.filter((l) => l[0] === 'decap');
    const hash = lines.filter((l) => l[0] === 'hash');
    expect(encap.length).toBeGreaterThanOrEqual(65); // 0..64 bytes, once per CRC implementation
    for (const [, , n, reason] of encap) expect(reason, `encap of ${n} bytes`).toBe(Number(n) < 14 ? 'inner_truncated' : 'ok');
    const outerLen = Math.max(...decap.map((l) => Number(l[2])));
    expect(outerLen).toBe(64 + 50);
    for (const [, , n, , reason] of decap) {
      const len = Number(n);
      if (len < 14) expect(reason, `decap of ${n} bytes`).toBe('eth_truncated');
      else if (len === outerLen) expect(reason, `decap of the whole frame`).toBe('ok');
      else expect(reason, `decap of ${n} bytes`).not.toBe('ok');
    }
    // Where both CRC implementations ran, they agree at every length, short frames too.
    const byImpl = (impl: string) => new Map(hash.filter((l) => l[1] === impl).map((l) => [l[2], `${l[3]} ${l[4]}`]));
    const hw = byImpl('hw');
    const sw = byImpl('sw');
    expect(sw.size).toBe(65);
    for (const [n, v] of hw) expect(v, `hash of ${n} bytes`).toBe(sw.get(n));
  });
});

// The engine's fast paths for the common frame (constant offsets: the flow hash of
// untagged IPv4 inner frames, encap of an untagged IPv4 tunnel, decap of untagged IPv4
// outer frames) against their general twin: vfp-core-sweep runs encap, decap and the
// flow hash over a sweep of edge cases (lengths at every boundary, each header field
// damaged, locals, VNI sets, checksum verification, inner VLANs, MTUs, headroom), and
// vfp-core-sweep-general is the same program built with the fast paths compiled out
// (VFP_NO_FAST_PATHS). Their outputs must be identical, line for line.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const bin = (name: string) => join(ROOT, 'build', 'Release', name);

function run(name: string): string[] {
  expect(existsSync(bin(name)), `${bin(name)} is built by npm run build`).toBe(true);
  const r = spawnSync(bin(name), { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
  expect(r.signal, r.stderr).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split('\n');
}

describe('fast paths ≡ the general path', () => {
  it('give the same result as the build without them on every case of the sweep', () => {
    const fast = run('vfp-core-sweep');
    const general = run('vfp-core-sweep-general');
    expect(fast.length).toBe(general.length);
    const differ = fast.map((l, i) => [l, general[i]] as const).filter(([a, b]) => a !== b);
    expect(differ.slice(0, 5), `${differ.length} of ${fast.length} cases differ (fast, general)`).toEqual([]);
    // The sweep reaches what the fast paths take and what they must refuse.
    const field = (kind: string, i: number) => fast.filter((l) => l.startsWith(`${kind} `)).map((l) => l.split(' ')[i]);
    const decapReasons = new Set(field('D', 6));
    for (const r of ['ok', 'ip_bad_length', 'ip_bad_checksum', 'ip_fragment', 'not_local', 'not_udp', 'not_vxlan_port',
      'udp_bad_length', 'udp_bad_checksum', 'vxlan_bad_flags', 'vni_unknown', 'inner_truncated', 'inner_vlan', 'not_ip']) {
      expect(decapReasons, `decap sweep reaches ${r}`).toContain(r);
    }
    const encapReasons = new Set(field('E', 7));
    for (const r of ['ok', 'inner_truncated', 'no_headroom', 'mtu_exceeded']) expect(encapReasons, `encap sweep reaches ${r}`).toContain(r);
    expect(field('D', 6).filter((r) => r === 'ok').length).toBeGreaterThan(500);
  });
});

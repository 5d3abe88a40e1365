// Inner frames for the benchmarks, the one generator both engines are measured with:
// Ethernet + IPv4 + UDP up to the wanted size, over many distinct flows so the flow hash
// and FDB learning see realistic variety.
import { burstFromFrames, packetBytes } from '../packet/burst.js';
import type { Tunnel } from '../packet/config.js';
import { tsEngine } from '../packet/model.js';
import { checkInt } from '../util/check.js';

export const IMIX_PATTERN: readonly number[] = [64, 64, 576, 64, 64, 576, 64, 1500, 64, 576, 64, 576];
export const IMIX_LABEL = 'imix (7×64, 4×576, 1×1500)';
export const DEFAULT_FLOWS = 256;
const MIN_FRAME = 14;

export type SizeSpec = number | 'imix';

export function sizePattern(s: SizeSpec): number[] {
  return s === 'imix' ? [...IMIX_PATTERN] : [s];
}

export function averageSize(s: SizeSpec): number {
  const p = sizePattern(s);
  return p.reduce((a, b) => a + b, 0) / p.length;
}

/**
 * Frames following the size pattern over `flows` flows (a whole number of patterns, at
 * least `flows` frames). Sizes ≥ 42 are Ethernet + IPv4 + UDP with a valid IPv4
 * checksum; smaller ones are Ethernet frames of type 0x88B5. Flow j has source MAC
 * 02:00:00:00:jj:jj, source 10.1.j.j and UDP source port 1024 + j.
 */
export function benchFrames(frameSizes: readonly number[], flows = DEFAULT_FLOWS): Uint8Array[] {
  if (!Array.isArray(frameSizes) || frameSizes.length === 0) throw new TypeError('frameSizes must be a non-empty array');
  frameSizes.forEach((s, i) => checkInt(`frameSizes[${i}]`, s, MIN_FRAME, 65535 - 36));
  checkInt('flows', flows, 1, 65536);
  const n = Math.ceil(Math.max(flows, frameSizes.length) / frameSizes.length) * frameSizes.length;
  const out: Uint8Array[] = [];
  for (let j = 0; j < n; j++) {
    const size = frameSizes[j % frameSizes.length]!;
    const flow = j % flows;
    const f = new Uint8Array(size);
    const dv = new DataView(f.buffer);
    f.set([0x02, 0, 0, 0, 0, 0xfe, 0x02, 0, 0, 0, flow >> 8, flow & 0xff]);
    if (size < 42) {
      dv.setUint16(12, 0x88b5);
    } else {
      dv.setUint16(12, 0x0800);
      f[14] = 0x45;
      dv.setUint16(16, size - 14);
      f[22] = 64;
      f[23] = 17;
      f.set([10, 1, flow >> 8, flow & 0xff, 10, 2, 0, 1], 26);
      let s = 0;
      for (let k = 14; k < 34; k += 2) s += dv.getUint16(k);
      while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
      dv.setUint16(24, ~s & 0xffff);
      dv.setUint16(34, 1024 + flow);
      dv.setUint16(36, 5001);
      dv.setUint16(38, size - 34);
    }
    out.push(f);
  }
  return out;
}

/** The frames encapsulated for `tunnel` on VNI `vni` by the TS model (a peer's frames,
 *  for the decap generators), in order. */
export function vxlanFrames(inner: readonly Uint8Array[], tunnel: Tunnel, vni: number): Uint8Array[] {
  const t = tsEngine.createTunnel(tunnel);
  const out: Uint8Array[] = [];
  for (let i = 0; i < inner.length; i += 64) {
    const b = burstFromFrames(inner.slice(i, i + 64), 128);
    tsEngine.encap(t, vni, b);
    for (let k = 0; k < b.count; k++) out.push(packetBytes(b, k).slice());
  }
  return out;
}

// Inner frames for benchmarks: Ethernet + IPv4 + UDP with payload up to the wanted
// size, a few distinct flows so the source-port hash sees different inputs.
export const IMIX_PATTERN: readonly number[] = [64, 64, 576, 64, 64, 576, 64, 1500, 64, 576, 64, 576];
export const IMIX_LABEL = 'imix (7×64, 4×576, 1×1500)';

export type SizeSpec = number | 'imix';

export function sizePattern(s: SizeSpec): number[] {
  return s === 'imix' ? [...IMIX_PATTERN] : [s];
}

export function averageSize(s: SizeSpec): number {
  const p = sizePattern(s);
  return p.reduce((a, b) => a + b, 0) / p.length;
}

/** An inner frame of `size` bytes (≥ 42), flow number `flow`. */
export function innerFrame(size: number, flow: number): Uint8Array {
  if (size < 42) throw new RangeError(`bench frame size ${size} is below 42 (Ethernet + IPv4 + UDP)`);
  const f = new Uint8Array(size);
  const dv = new DataView(f.buffer);
  f.set([0x02, 0x00, 0x00, 0x00, 0x10, flow & 0xff], 0); // dst MAC
  f.set([0x02, 0x00, 0x00, 0x00, 0x20, (flow >> 8) & 0xff], 6); // src MAC
  dv.setUint16(12, 0x0800);
  const ipLen = size - 14;
  f[14] = 0x45;
  dv.setUint16(16, ipLen);
  f[22] = 64;
  f[23] = 17;
  f.set([10, 1, 0, 1, 10, 2, 0, 1 + (flow % 200)], 26);
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += dv.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  dv.setUint16(24, ~sum & 0xffff);
  dv.setUint16(34, 10000 + flow);
  dv.setUint16(36, 5201);
  dv.setUint16(38, ipLen - 20);
  for (let i = 42; i < size; i++) f[i] = i & 0xff;
  return f;
}

/** The frames one burst cycles through: `count` frames following the size pattern. */
export function benchFrames(s: SizeSpec, count: number): Uint8Array[] {
  const p = sizePattern(s);
  return Array.from({ length: count }, (_, i) => innerFrame(p[i % p.length]!, i % 16));
}

// A burst: up to MAX_BURST packets that live in one arena buffer, described by parallel
// typed arrays. Both engines (native and the TS model) work on the same arrays in place,
// so a burst crosses into native code with no copying and no per-packet objects.
export const MAX_BURST = 256;
export const DEFAULT_HEADROOM = 128;

export interface Burst {
  /** Arena holding every packet of the burst. */
  buf: Uint8Array;
  /** Number of packets in use (≤ capacity). */
  count: number;
  /** Data offset of each packet in `buf`. */
  off: Uint32Array;
  /** Data length of each packet. */
  len: Uint32Array;
  /** Bytes before `off` that the engine may write (encap prepends there). */
  room: Uint32Array;
  /** Result: 0 = ok, else a reason code (reasons.ts). */
  reason: Uint8Array;
  /** Result of decap: the VNI. */
  vni: Uint32Array;
  /** Result of decap: 4 or 6, the family of the outer source VTEP. */
  vtepFamily: Uint8Array;
  /** Result of decap: the outer source VTEP, 16 bytes per packet (IPv4 in the first 4). */
  vtep: Uint8Array;
}

export function allocBurst(capacity: number, arenaBytes: number): Burst {
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_BURST) {
    throw new RangeError(`burst capacity ${capacity} is outside 1–${MAX_BURST}`);
  }
  return {
    buf: new Uint8Array(arenaBytes),
    count: 0,
    off: new Uint32Array(capacity),
    len: new Uint32Array(capacity),
    room: new Uint32Array(capacity),
    reason: new Uint8Array(capacity),
    vni: new Uint32Array(capacity),
    vtepFamily: new Uint8Array(capacity),
    vtep: new Uint8Array(capacity * 16),
  };
}

/**
 * Packs frames into a new burst, each with `headroom` free bytes before it, and with
 * slots aligned to 64 bytes as a NIC ring would hand them over.
 */
export function burstFromFrames(frames: readonly Uint8Array[], headroom = DEFAULT_HEADROOM): Burst {
  let total = 0;
  for (const f of frames) total += align64(headroom + f.length);
  const b = allocBurst(Math.max(1, frames.length), Math.max(64, total));
  let pos = 0;
  frames.forEach((f, i) => {
    b.off[i] = pos + headroom;
    b.len[i] = f.length;
    b.room[i] = headroom;
    b.buf.set(f, pos + headroom);
    pos += align64(headroom + f.length);
  });
  b.count = frames.length;
  return b;
}

/** A copy of packet i's current bytes. */
export function packetBytes(b: Burst, i: number): Uint8Array {
  const off = b.off[i]!;
  return b.buf.slice(off, off + b.len[i]!);
}

export function cloneBurst(b: Burst): Burst {
  return {
    buf: b.buf.slice(),
    count: b.count,
    off: b.off.slice(),
    len: b.len.slice(),
    room: b.room.slice(),
    reason: b.reason.slice(),
    vni: b.vni.slice(),
    vtepFamily: b.vtepFamily.slice(),
    vtep: b.vtep.slice(),
  };
}

function align64(n: number): number {
  return (n + 63) & ~63;
}

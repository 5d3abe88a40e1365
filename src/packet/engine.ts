// The interface both VXLAN engines implement: the native addon (src/dataplane/native.ts)
// and the TypeScript reference model (src/packet/model.ts). Callers pick one by name.
import type { Burst } from './burst.js';
import type { Decap, Tunnel } from './config.js';

export type EngineName = 'native' | 'ts';

export interface TunnelHandle {
  readonly tunnel: Tunnel;
}
export interface DecapHandle {
  readonly decap: Decap;
}

export interface VxlanEngine {
  readonly name: EngineName;
  createTunnel(t: Tunnel): TunnelHandle;
  /** Encapsulates packets [0, b.count) in place; returns how many were not dropped. */
  encap(t: TunnelHandle, vni: number, b: Burst): number;
  createDecap(d: Decap): DecapHandle;
  /** Decapsulates packets [0, b.count) in place; returns how many were not dropped. */
  decap(d: DecapHandle, b: Burst): number;
}

// The TypeScript VXLAN engine: the reference model the native engine is tested against
// and the portable fallback where the addon is not built. Same interface, same contract
// (docs/vxlan-engine.md), plain loops over the burst arena.
import type { Burst } from './burst.js';
import type { Decap, Tunnel } from './config.js';
import { decapBurst, prepareDecap, type DecapState } from './decap.js';
import { encapBurst, prepareTunnel, type EncapState } from './encap.js';
import type { DecapHandle, TunnelHandle, VxlanEngine } from './engine.js';
import type { FdbModel } from './fdb-model.js';

/** Learning for a decap context: the store, and the clock in seconds (a fixed value or a function). */
export interface LearnOptions {
  fdb: FdbModel;
  now?: number | (() => number);
}

export class TsTunnelHandle implements TunnelHandle {
  /** @internal */ readonly state: EncapState;
  constructor(readonly tunnel: Tunnel) {
    this.state = prepareTunnel(tunnel);
  }
  /** The IPv4 identification the next encapsulated packet takes. */
  get nextId(): number {
    return this.state.nextId;
  }
}

export class TsDecapHandle implements DecapHandle {
  /** @internal */ readonly state: DecapState;
  constructor(readonly decap: Decap, learn?: LearnOptions) {
    this.state = prepareDecap(decap, learn);
  }
  get fdb(): FdbModel | null {
    return this.state.fdb;
  }
}

export interface TsEngine extends VxlanEngine {
  readonly name: 'ts';
  createTunnel(t: Tunnel): TsTunnelHandle;
  createDecap(d: Decap, learn?: LearnOptions): TsDecapHandle;
}

function own<T>(h: unknown, cls: new (...a: never[]) => T, what: string): T {
  if (!(h instanceof cls)) {
    throw new TypeError(`${what} handle was not created by the ts engine; create it with tsEngine.${what === 'tunnel' ? 'createTunnel' : 'createDecap'}`);
  }
  return h;
}

export const tsEngine: TsEngine = {
  name: 'ts',
  createTunnel: (t) => new TsTunnelHandle(t),
  encap: (t: TunnelHandle, vni: number, b: Burst) => encapBurst(own(t, TsTunnelHandle, 'tunnel').state, vni, b),
  createDecap: (d, learn) => new TsDecapHandle(d, learn),
  decap: (d: DecapHandle, b: Burst) => decapBurst(own(d, TsDecapHandle, 'decap').state, b),
};

// The shape of build/Release/vfplane_native.node, exactly as native/addon/addon.cc
// exports it. Nothing here validates or converts: src/dataplane/native.ts does that and
// is the only module that should import these types.
import type { Burst } from '../packet/burst.js';

/** An opaque tunnel or decap context (a type-tagged napi external). */
export interface RawHandle {
  readonly __vfplaneHandle: unique symbol;
}

/** An IP address as bytes: 4 bytes is IPv4, 16 bytes is IPv6. */
export type RawAddr = Uint8Array;

export interface RawTunnelCfg {
  local: RawAddr;
  remote: RawAddr;
  srcMac: Uint8Array;
  dstMac: Uint8Array;
  /** -1: untagged; else 0–4094. */
  vlan: number;
  vlanPcp: number;
  dstPort: number;
  srcPortMin: number;
  srcPortMax: number;
  ttl: number;
  /** 0–255, or 256 for inherit. */
  tos: number;
  /** 0 unset, 1 set, 2 inherit. */
  df: number;
  udpCsum: boolean;
  mtu: number;
  ipId: number;
  /** VFP_TXO_IP_CSUM (1) | VFP_TXO_UDP_CSUM (2): checksums left for the device. */
  txOffload?: number;
}

export interface RawDecapCfg {
  dstPort: number;
  vnis: Uint32Array | null;
  locals: RawAddr[] | null;
  verifyUdpCsum: boolean;
  dropInnerVlan: boolean;
}

export interface RawFdbEntry {
  vni: number;
  mac: Uint8Array;
  /** 1 static, 2 learned. */
  flags: number;
  stamp: number;
  vtep: RawAddr;
}

export interface RawFdbColumns {
  count: number;
  vni: Uint32Array;
  /** 6 bytes per entry. */
  mac: Uint8Array;
  flags: Uint8Array;
  stamp: Uint32Array;
  family: Uint8Array;
  /** 16 bytes per entry, IPv4 in the first 4. */
  vtep: Uint8Array;
}

export interface RawFdb {
  /** 0, or -errno (-28 ENOSPC; -22 EINVAL for a group MAC). */
  addStatic(vni: number, mac: Uint8Array, vtep: RawAddr): number;
  del(vni: number, mac: Uint8Array): boolean;
  /** 1 new, 2 refresh, 3 moved, 4 static, 5 ignored, or -errno (-28 ENOSPC). */
  learn(vni: number, mac: Uint8Array, vtep: RawAddr, now: number): number;
  get(vni: number, mac: Uint8Array): RawFdbEntry | null;
  /** Bulk lookup: 6 MAC bytes per VNI; out[i] is a VTEP index or 65535 (miss). */
  lookup(vnis: Uint32Array, macs: Uint8Array, out: Uint16Array): void;
  vtep(index: number): RawAddr | null;
  resolve(vni: number, mac: Uint8Array): { vtep: RawAddr } | { flood: RawAddr[] };
  /** Visits `budget` buckets from an internal cursor; returns entries removed. */
  age(now: number, maxAge: number, budget: number): number;
  /** 0, or -errno. */
  floodSet(vni: number, vteps: RawAddr[]): number;
  floodGet(vni: number): RawAddr[];
  /** 0, or -errno. */
  setVniLimit(perVni: number): number;
  learnedIn(vni: number): number;
  count(): number;
  capacity(): number;
  slots(): number;
  vtepCount(): number;
  memBytes(): number;
  primaryCount(): number;
  entries(): RawFdbColumns;
  close(): void;
}

export interface RawBenchOpts {
  burst: number;
  packets: number;
  warmup: number;
  cpu: number;
  headroom: number;
  learn?: boolean;
}

export interface RawBenchResult {
  packets: number;
  ok: number;
  ns: number;
  bytesIn: number;
  bytesOut: number;
  cpu: number;
  learnNew: number;
  learnRefresh: number;
  learnMoved: number;
  learnFull: number;
  drops: Record<string, number>;
}

export interface RawFdbBenchOpts {
  entries: number;
  vteps: number;
  lookups: number;
  burst: number;
  seed: number;
  cpu: number;
}

export interface RawFdbBenchResult {
  lookups: number;
  hits: number;
  ns: number;
  keygenNs: number;
  insertNs: number;
  verified: number;
  wrong: number;
  memBytes: number;
  slots: number;
  primary: number;
  cpu: number;
}

export interface RawFlowHash {
  hash: number;
  tos: number;
  df: boolean;
  ip: boolean;
}

export interface RawAddon {
  readonly maxBurst: number;
  readonly noVtep: number;
  reasonNames(): string[];
  /** Names of the BigUint64Array slots stats() returns, in order. */
  statsLayout(): string[];
  cpuFeatures(): { sse42: boolean; avx2: boolean; crc32c: 'sse4.2' | 'table' };
  crc32c(bytes: Uint8Array, impl?: 'auto' | 'hw' | 'sw'): number;
  /** Switches the packet path's CRC implementation (tests); returns the one in use. */
  crcSelect(impl: 'auto' | 'hw' | 'sw'): 'sse4.2' | 'table';
  flowHash(frame: Uint8Array): RawFlowHash;
  tunnelCreate(cfg: RawTunnelCfg): RawHandle;
  tunnelIpId(tunnel: RawHandle): number;
  encap(tunnel: RawHandle, vni: number, burst: Burst): number;
  /** Completes in place the outer checksums `ol` (VFP_TXO_*) left for a device. */
  txFinish(frame: Uint8Array, ol: number, l2Len: number, l3Len: number): void;
  decapCreate(cfg: RawDecapCfg, fdb?: RawFdb | null): RawHandle;
  decapSetNow(decap: RawHandle, now: number): void;
  decap(decap: RawHandle, burst: Burst): number;
  /** Live counters of a tunnel or decap handle (zero copy; the same array each call). */
  stats(handle: RawHandle): BigUint64Array;
  fdbCreate(capacity: number): RawFdb;
  benchEncap(cfg: RawTunnelCfg, vni: number, frames: Uint8Array[], opts: RawBenchOpts): RawBenchResult;
  benchDecap(cfg: RawTunnelCfg, vni: number, frames: Uint8Array[], opts: RawBenchOpts): RawBenchResult;
  benchFdb(opts: RawFdbBenchOpts): RawFdbBenchResult;
  /** A batch of link/address/route/sysctl changes inside a netns (native/net/netops.c). */
  netopsRun(netnsPath: string | null, ops: RawNetOp[]): (RawLinkInfo | null)[];
  /** The same off the JS thread (a netns move waits for RCU grace periods). */
  netopsRunAsync(netnsPath: string | null, ops: RawNetOp[]): Promise<(RawLinkInfo | null)[]>;
  /** 0 when socket(family, type) succeeds here, else -errno. */
  probeSocket(family: number, type: number): number;
  /** enum vfp_dpdk_offload by name (DPDK builds only). */
  dpdkTxOffloadBits?: Record<string, number>;
  /** posix_spawn with three pipes (our ends returned); see native/addon/proc.cc. */
  procSpawn(file: string, argv: string[], env: string[], setsid: boolean): { pid: number; stdin: number; stdout: number; stderr: number };
  /** waitpid(WNOHANG): null while running. */
  procReap(pid: number): { status: number | null; signal: number | null } | null;
  /** The allocation store's writer queue: an exclusive flock on a lock file. */
  lockOpen(path: string): number;
  /** 0, or -errno (-110 ETIMEDOUT after timeoutMs; -11 EWOULDBLOCK at once with timeoutMs 0). */
  lockTake(fd: number, timeoutMs: number, shared?: boolean): number;
  lockGive(fd: number): void;
  /** The CPUs a thread of this process can be pinned to (its cgroup cpuset, not taskset's mask). */
  cpusUsable(): number[];
  /** A whole run, blocking, with this process's environment (file searched in PATH). */
  procRunSync(file: string, argv: string[], input: string, timeoutMs: number): {
    status: number | null; signal: number | null; stdout: string; stderr: string; timedOut: boolean;
  };
}

/** kind: 0 link get, 1 link set, 2 address add, 3 route add, 4 sysctl write. */
export interface RawNetOp {
  /** 0 get, 1 set, 2 addr, 3 route, 4 sysctl, 5 maddr, 6 the link and its addresses,
   *  7 receive aggregation features (aggClear, aggSet → { agg, aggFixed }),
   *  8 the namespace's links, or with ifindex that one (→ { links, more }, null when
   *  there is no link of that index) */
  kind: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;
  ifindex?: number;
  name?: string;
  newName?: string;
  mac?: string;
  mtu?: number;
  up?: -1 | 0 | 1;
  netnsPath?: string;
  addr?: string;
  prefix?: number;
  nodad?: boolean;
  gw?: string;
  path?: string;
  value?: string;
  optional?: boolean;
  aggClear?: number;
  aggSet?: number;
}

export interface RawLinkInfo {
  ifindex: number;
  mac: string;
  mtu: number;
  up: boolean;
}

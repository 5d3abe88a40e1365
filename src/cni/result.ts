// CNI results in and out: one internal shape (the 1.1.0 result), read from a prevResult or
// an IPAM plugin's output in any supported version, and written back in exactly the
// version the config asked for. Field sets per version follow SPEC.md at spec-v0.4.0,
// spec-v1.0.0 and spec-v1.1.0; key order follows the Go library's types, which runtimes use.
import { isIP } from 'node:net';
import { CniError, ERR, isSupportedVersion, SUPPORTED_VERSIONS, versionAtLeast } from './spec.js';

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number; // 1.1.0
  sandbox?: string;
  socketPath?: string; // 1.1.0
  pciID?: string; // 1.1.0
}

export interface CniIpConfig {
  address: string; // CIDR, "10.1.0.5/24"
  gateway?: string;
  interface?: number; // index into interfaces
}

export interface CniRoute {
  dst: string; // CIDR
  gw?: string;
  mtu?: number; // 1.1.0 (mtu … scope)
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

// Results in the supported versions only; 0.3.x has the 0.4.0 shape.
const READABLE = SUPPORTED_VERSIONS as readonly string[];

class Reader {
  constructor(
    readonly where: string,
    readonly code: number,
  ) {}

  fail(path: string, problem: string): never {
    throw new CniError(this.code, `${this.where}: ${path}: ${problem}`);
  }

  obj(v: unknown, path: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, `expected an object, got ${shown(v)}`);
    return v as Record<string, unknown>;
  }

  arr(v: unknown, path: string): unknown[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) this.fail(path, `expected a list, got ${shown(v)}`);
    return v;
  }

  str(v: unknown, path: string, required = false): string | undefined {
    if (v === undefined || v === null || (v === '' && !required)) {
      if (required) this.fail(path, 'missing');
      return undefined;
    }
    if (typeof v !== 'string') this.fail(path, `expected a string, got ${shown(v)}`);
    return v;
  }

  uint(v: unknown, path: string): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(path, `expected a whole number ≥ 0, got ${shown(v)}`);
    return v;
  }

  ip(v: unknown, path: string): string | undefined {
    const s = this.str(v, path);
    if (s !== undefined && isIP(s) === 0) this.fail(path, `expected an IP address, got ${shown(v)}`);
    return s;
  }

  cidr(v: unknown, path: string): string {
    const s = this.str(v, path, true)!;
    const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
    const fam = m ? isIP(m[1]!) : 0;
    if (!m || fam === 0 || Number(m[2]) > (fam === 4 ? 32 : 128)) this.fail(path, `expected an address in CIDR notation like 10.1.0.5/24, got ${shown(v)}`);
    return s;
  }

  strList(v: unknown, path: string): string[] | undefined {
    const a = this.arr(v, path);
    return a?.map((x, i) => this.str(x, `${path}[${i}]`, true)!);
  }
}

function shown(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? typeof v : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function parseDns(r: Reader, v: unknown): CniDns | undefined {
  if (v === undefined || v === null) return undefined;
  const o = r.obj(v, 'dns');
  const d: CniDns = {};
  const ns = r.strList(o.nameservers, 'dns.nameservers');
  if (ns?.length) d.nameservers = ns;
  const domain = r.str(o.domain, 'dns.domain');
  if (domain) d.domain = domain;
  const search = r.strList(o.search, 'dns.search');
  if (search?.length) d.search = search;
  const options = r.strList(o.options, 'dns.options');
  if (options?.length) d.options = options;
  return Object.keys(d).length ? d : undefined;
}

function parseAny(value: unknown, fallbackVersion: string, where: string, code: number): CniResult {
  const r = new Reader(where, code);
  const o = r.obj(value, 'result');
  // A result without cniVersion is taken to be in the config's version, as libcni does
  // (pkg/invoke fixupResultVersion).
  const version = o.cniVersion === undefined || o.cniVersion === '' ? fallbackVersion : o.cniVersion;
  if (typeof version !== 'string' || !READABLE.includes(version)) {
    throw new CniError(ERR.INCOMPATIBLE_VERSION, `${where}: result cniVersion ${shown(version)} is not one vfplane-cni reads (${READABLE.join(', ')})`);
  }
  const out: CniResult = {};

  const ifs = r.arr(o.interfaces, 'interfaces');
  if (ifs) {
    out.interfaces = ifs.map((x, i) => {
      const p = `interfaces[${i}]`;
      const io = r.obj(x, p);
      const itf: CniInterface = { name: r.str(io.name, `${p}.name`, true)! };
      const mac = r.str(io.mac, `${p}.mac`);
      if (mac) itf.mac = mac;
      const mtu = r.uint(io.mtu, `${p}.mtu`);
      if (mtu) itf.mtu = mtu;
      const sandbox = r.str(io.sandbox, `${p}.sandbox`);
      if (sandbox) itf.sandbox = sandbox;
      const socketPath = r.str(io.socketPath, `${p}.socketPath`);
      if (socketPath) itf.socketPath = socketPath;
      const pciID = r.str(io.pciID, `${p}.pciID`);
      if (pciID) itf.pciID = pciID;
      return itf;
    });
  }

  const ips = r.arr(o.ips, 'ips');
  if (ips) {
    out.ips = ips.map((x, i) => {
      const p = `ips[${i}]`;
      const io = r.obj(x, p);
      const ipc: CniIpConfig = { address: r.cidr(io.address, `${p}.address`) };
      const gw = r.ip(io.gateway, `${p}.gateway`);
      if (gw) ipc.gateway = gw;
      const idx = r.uint(io.interface, `${p}.interface`);
      if (idx !== undefined) {
        if (out.interfaces && idx >= out.interfaces.length) r.fail(`${p}.interface`, `index ${idx} is past the ${out.interfaces.length} interface(s) listed`);
        ipc.interface = idx;
      }
      // 0.3.x/0.4.0 spell the family; it must agree with the address (1.x dropped it).
      if (!versionAtLeast(version, '1.0.0') && io.version !== undefined) {
        const fam = String(isIP(ipc.address.split('/')[0]!));
        if (io.version !== fam) r.fail(`${p}.version`, `says ${shown(io.version)} but ${ipc.address} is IPv${fam}`);
      }
      return ipc;
    });
  }

  const routes = r.arr(o.routes, 'routes');
  if (routes) {
    out.routes = routes.map((x, i) => {
      const p = `routes[${i}]`;
      const ro = r.obj(x, p);
      const rt: CniRoute = { dst: r.cidr(ro.dst, `${p}.dst`) };
      const gw = r.ip(ro.gw, `${p}.gw`);
      if (gw) rt.gw = gw;
      for (const k of ['mtu', 'advmss', 'priority'] as const) {
        const n = r.uint(ro[k], `${p}.${k}`);
        if (n) rt[k] = n;
      }
      // table and scope are pointers in the Go types: 0 is a value (scope 0 = global).
      for (const k of ['table', 'scope'] as const) {
        const n = r.uint(ro[k], `${p}.${k}`);
        if (n !== undefined) rt[k] = n;
      }
      return rt;
    });
  }

  const dns = parseDns(r, o.dns);
  if (dns) out.dns = dns;
  return out;
}

/** The config's prevResult (an object), in the config's version unless it names its own. Errors are code 7. */
export function parsePrevResult(json: unknown, cniVersion: string): CniResult {
  return parseAny(json, cniVersion, 'prevResult', ERR.INVALID_CONFIG);
}

/** A delegated IPAM plugin's stdout. Undecodable output is code 6. */
export function parseIpamResult(stdout: string, cniVersion: string, ipamType = 'IPAM plugin'): CniResult {
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch (err) {
    throw new CniError(ERR.DECODE, `${ipamType}: its result is not JSON (${(err as Error).message})`, stdout.slice(0, 200));
  }
  return parseAny(value, cniVersion, ipamType, ERR.DECODE);
}

/**
 * The result as `cniVersion` defines it. 0.4.0 and 1.0.0 have interfaces {name, mac,
 * sandbox} and routes {dst, gw}; 0.4.0 ips carry "version": "4"|"6"; 1.1.0 adds mtu,
 * socketPath and pciID to interfaces and mtu, advmss, priority, table, scope to routes.
 * dns is always present, as the Go types always emit it ("dns": {} when empty).
 */
export function formatResult(r: CniResult, cniVersion: string): Record<string, unknown> {
  if (!isSupportedVersion(cniVersion)) {
    throw new CniError(ERR.INCOMPATIBLE_VERSION, `cannot write a result for cniVersion ${shown(cniVersion)}; vfplane-cni writes ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  const v11 = cniVersion === '1.1.0';
  const v04 = !versionAtLeast(cniVersion, '1.0.0'); // 0.3.x and 0.4.0
  const out: Record<string, unknown> = { cniVersion };
  if (r.interfaces?.length) {
    out.interfaces = r.interfaces.map((i) => {
      const o: Record<string, unknown> = { name: i.name };
      if (i.mac) o.mac = i.mac;
      if (v11 && i.mtu) o.mtu = i.mtu;
      if (i.sandbox) o.sandbox = i.sandbox;
      if (v11 && i.socketPath) o.socketPath = i.socketPath;
      if (v11 && i.pciID) o.pciID = i.pciID;
      return o;
    });
  }
  if (r.ips?.length) {
    out.ips = r.ips.map((ip) => {
      const o: Record<string, unknown> = {};
      if (v04) o.version = String(isIP(ip.address.split('/')[0]!));
      if (ip.interface !== undefined) o.interface = ip.interface;
      o.address = ip.address;
      if (ip.gateway) o.gateway = ip.gateway;
      return o;
    });
  }
  if (r.routes?.length) {
    out.routes = r.routes.map((rt) => {
      const o: Record<string, unknown> = { dst: rt.dst };
      if (rt.gw) o.gw = rt.gw;
      if (v11) {
        if (rt.mtu) o.mtu = rt.mtu;
        if (rt.advmss) o.advmss = rt.advmss;
        if (rt.priority) o.priority = rt.priority;
        if (rt.table !== undefined) o.table = rt.table;
        if (rt.scope !== undefined) o.scope = rt.scope;
      }
      return o;
    });
  }
  const dns: Record<string, unknown> = {};
  if (r.dns?.nameservers?.length) dns.nameservers = r.dns.nameservers;
  if (r.dns?.domain) dns.domain = r.dns.domain;
  if (r.dns?.search?.length) dns.search = r.dns.search;
  if (r.dns?.options?.length) dns.options = r.dns.options;
  out.dns = dns;
  return out;
}

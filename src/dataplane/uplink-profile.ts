// Which hw-profile an uplink belongs to, and what the data plane asks of the backend
// because of it: AF_XDP zero-copy or copy mode, DPDK tx offloads. Every choice carries
// its reason, which the daemon logs and reports in `dataplane status`.
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';
import { pfEswitch } from '../sriov/discover.js';
import { loadProfiles, matchPf, matchVf, runningTier, tierNeedsSwitchdev } from '../sriov/profile.js';
import { Sysfs } from '../sriov/sysfs.js';
import type { HwProfile, OffloadTier } from '../sriov/types.js';
import { invalid } from '../util/errors.js';

export interface UplinkChoice {
  profile: string | null;
  driver: string | null;
  allowedTier?: OffloadTier; // the highest tier the profile (and the eswitch mode) allows (absent: no profile)
  /** Why allowedTier is below the profile's own tier, when it is. */
  tierNote?: string;
  afxdp?: { mode: 'auto' | 'native' | 'skb'; copy: 'auto' | 'copy' | 'zerocopy'; why: string };
  dpdkTxOffloads?: { bits: number; names: string[]; why: string };
}

// enum vfp_dpdk_offload (native/io/dpdk.h); the addon exports it (dpdkTxOffloadBits) and a
// test keeps the two equal.
export const DPDK_TX = {
  ipv4Cksum: 1 << 0,
  udpCksum: 1 << 1,
  outerIpv4Cksum: 1 << 2,
  outerUdpCksum: 1 << 3,
  vxlanTnlTso: 1 << 4,
} as const;

/** Who fills the outer IPv4 header and UDP checksums of what encap sends, from the tx
 *  offloads the uplink's device enabled (the data plane leaves to the device exactly
 *  these two, described as a plain IP/UDP packet; `dataplane status` shows it). */
export function outerChecksums(enabled: number): { ipv4: 'device' | 'software'; udp: 'device' | 'software' } {
  return {
    ipv4: enabled & DPDK_TX.ipv4Cksum ? 'device' : 'software',
    udp: enabled & DPDK_TX.udpCksum ? 'device' : 'software',
  };
}

function read(p: string): string | null {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return null;
  }
}

/** The profile of a PCI function (PF or VF) by its IDs, which of the two it is, and its
 *  bound driver. */
export function profileOfPci(devDir: string, profiles: readonly HwProfile[] = loadProfiles()): { profile: HwProfile | null; fn: 'pf' | 'vf'; driver: string | null } {
  const vendor = read(`${devDir}/vendor`)?.replace(/^0x/, '');
  const device = read(`${devDir}/device`)?.replace(/^0x/, '');
  let driver: string | null = null;
  try {
    driver = basename(readlinkSync(`${devDir}/driver`));
  } catch {
    // unbound
  }
  const fn = existsSync(`${devDir}/physfn`) ? 'vf' : 'pf';
  if (!vendor || !device) return { profile: null, fn, driver };
  return { profile: fn === 'vf' ? matchVf(vendor, device, profiles) : matchPf(vendor, device, profiles), fn, driver };
}

/** Whether the eswitch of the PF behind uplink IFNAME (its device DEV, a PF's or a VF's)
 *  is in switchdev mode, as pfEswitch reads it: representors, not a switch id (ice has
 *  one in legacy mode too). */
function uplinkSwitchdev(dev: string, ifname: string, fn: 'pf' | 'vf', profile: HwProfile, sysRoot: string): boolean {
  try {
    const pfDev = fn === 'vf' ? realpathSync(`${dev}/physfn`) : realpathSync(dev);
    const numVfs = Number(read(`${pfDev}/sriov_numvfs`) ?? 0) || 0;
    return pfEswitch(new Sysfs(sysRoot), { pci: basename(pfDev), netdev: fn === 'pf' ? ifname : null, numVfs, profile: profile.name }, profile).eswitch === 'switchdev';
  } catch {
    return false; // nothing to read: counted as legacy, as before
  }
}

/** The hw-profile and driver of a netdev uplink in the daemon's own namespace (none for
 *  veths and other virtual netdevs: they have no PCI device). */
export function netdevProfile(ifname: string, sysRoot = '/sys'): UplinkChoice & { hw: HwProfile | null; fn: 'pf' | 'vf' } {
  const dev = `${sysRoot}/class/net/${ifname}/device`;
  const { profile, fn, driver } = existsSync(dev) ? profileOfPci(dev) : { profile: null, fn: 'pf' as const, driver: null };
  if (!profile) return { profile: null, driver, hw: null, fn };
  const t = runningTier(profile, !tierNeedsSwitchdev(profile) || uplinkSwitchdev(dev, ifname, fn, profile, sysRoot));
  const note = `its hardware encap/decap (tier 1) works through tc flower in switchdev mode only, and ${ifname} is in legacy mode (devlink dev eswitch set pci/<PF> mode switchdev)`;
  return { profile: profile.name, driver, hw: profile, fn, allowedTier: t.tier, ...(t.legacy ? { tierNote: note } : {}) };
}

/** The VF whose own netdev `ifname` is (its device is a VF: it has a physfn), with its
 *  PF; null for anything else (a representor's device is its PF, a veth has none). The
 *  data plane forwards for a VF through its representor: its own netdev is the pod's. */
export function vfOfNetdev(ifname: string, sysRoot = '/sys'): { vf: string; pf: string } | null {
  const dev = `${sysRoot}/class/net/${ifname}/device`;
  try {
    const pf = basename(readlinkSync(`${dev}/physfn`));
    return { vf: basename(realpathSync(dev)), pf };
  } catch {
    return null;
  }
}

/** The refusal of a VF's own netdev offered as its representor (WHAT names it: the
 *  socket's field or the CLI's flag), by the data plane and by `vfplane dataplane attach`
 *  alike; REPRESENTOR, when the caller found the VF's, is named as the one to give. */
export function ownNetdevRefusal(what: string, own: { vf: string; pf: string }, representor?: string): string {
  const fix = representor ? `give --representor ${representor}` : `give the representor the PF's switchdev mode makes for it (\`vfplane vf show ${own.vf}\` names it)`;
  return `${what} is VF ${own.vf}'s own netdev (a VF of PF ${own.pf}), not its representor; ${fix}`;
}

/** AF_XDP settings for a netdev uplink in the daemon's own namespace. */
export function afxdpChoice(ifname: string, want: { mode: 'auto' | 'native' | 'skb'; copy: 'auto' | 'copy' | 'zerocopy' }, sysRoot = '/sys'): UplinkChoice {
  const { hw: profile, fn, ...base } = netdevProfile(ifname, sysRoot);
  if (want.copy !== 'auto') return { ...base, afxdp: { ...want, why: `copy=${want.copy} set in the config` } };
  // The PF's driver and the VF's differ (i40e and ice have zero-copy, iavf has not).
  const which = fn === 'vf' ? 'VF' : 'PF';
  if (profile && !profile[fn].afxdpZeroCopy) {
    return { ...base, afxdp: { mode: want.mode, copy: 'copy', why: `the ${profile.name} profile's ${which} driver (${base.driver ?? profile[fn].driver}) has no AF_XDP zero-copy, so copy mode` } };
  }
  if (profile) {
    return { ...base, afxdp: { mode: want.mode === 'auto' ? 'native' : want.mode, copy: 'auto', why: `the ${profile.name} profile's ${which} driver (${base.driver ?? profile[fn].driver}) has AF_XDP zero-copy: native mode, zero-copy first, copy if the driver refuses` } };
  }
  return { ...base, afxdp: { mode: want.mode, copy: 'auto', why: 'no hw-profile matches this netdev (veth, virtual or unknown NIC): try native XDP and zero-copy, fall back to SKB mode and copy' } };
}

/** The kernel netdev a DPDK vdev sits on (`net_af_xdp…,iface=X`, `net_af_packet…,iface=X`),
 *  or null: PCI devices and vdevs of no netdev (net_null, net_ring, net_tap, which makes
 *  its own). Such a netdev is the data plane's as much as an AF_XDP uplink is. */
export function vdevNetdev(dev: string): string | null {
  const v = parseVdev(dev);
  if (!v) return null;
  // DPDK registers each of these under an eth_ alias too (RTE_PMD_REGISTER_ALIAS).
  if (/^(net|eth)_af_(xdp|packet)/.test(v.name)) return v.iface;
  if (/^(net|eth)_pcap/.test(v.name)) {
    const rx = v.args.get('iface') ?? v.args.get('rx_iface') ?? v.args.get('rx_iface_in');
    const tx = v.args.get('iface') ?? v.args.get('tx_iface');
    if (rx && tx && rx !== tx) throw invalid(`uplink.dev ${dev}: a pcap vdev that receives on ${rx} and sends on ${tx} is not an uplink vfplane can claim; give iface=${rx}`);
    const name = rx ?? tx;
    return name && /^[A-Za-z0-9_.:@-]{1,15}$/.test(name) ? name : null;
  }
  // Any other vdev naming an existing netdev would take it past every check above.
  for (const k of ['iface', 'rx_iface', 'tx_iface', 'rx_iface_in']) {
    const n = v.args.get(k);
    if (n && /^[A-Za-z0-9_.:@-]{1,15}$/.test(n) && existsSync(`/sys/class/net/${n}`) && !/^(net|eth)_tap/.test(v.name)) {
      throw invalid(`uplink.dev ${dev}: ${v.name} with ${k}=${n} would take the netdev ${n} without the checks and claim vfplane makes (its addresses, its settings, one data plane per netdev); use net_af_xdp or net_af_packet over it`);
    }
  }
  return null;
}

/** A vdev's devargs (`name,k=v,…`): its name, its key-values, and its `iface` when that
 *  is a valid interface name. */
function parseVdev(dev: string): { name: string; args: Map<string, string>; iface: string | null } | null {
  const [name, ...rest] = dev.split(',');
  if (!name) return null;
  const args = new Map(rest.map((a) => a.split('=') as [string, string]));
  const iface = args.get('iface');
  return { name, args, iface: iface && /^[A-Za-z0-9_.:@-]{1,15}$/.test(iface) ? iface : null };
}

/** A net_af_xdp vdev (`net_af_xdp0,iface=X[,start_queue=S][,queue_count=N]`) binds queues
 *  S..S+N-1 of X only (N = 1 by default); frames X receives on its other queues go to the
 *  host stack, past the data plane. The warning to give, or null when it binds them all
 *  (or the netdev cannot be read here). `sysRoot` reads /sys/class/net. */
export function afXdpVdevWarning(dev: string, sysRoot = '/sys'): string | null {
  const v = parseVdev(dev);
  if (!v || !/^net_af_xdp/.test(v.name) || !v.iface) return null;
  const { name, args: kv, iface } = v;
  let rx: number;
  try {
    rx = readdirSync(`${sysRoot}/class/net/${iface}/queues`).filter((q) => q.startsWith('rx-')).length;
  } catch {
    return null;
  }
  const start = Number(kv.get('start_queue') ?? 0), count = Number(kv.get('queue_count') ?? 1);
  if (!(rx > 0) || (start === 0 && count >= rx)) return null;
  return `${iface} receives on ${rx} queues, and ${name} binds ${count === 1 ? `queue ${start}` : `queues ${start}–${start + count - 1}`} only: frames on the others go to the host stack, past the data plane. Give the vdev start_queue=0,queue_count=${rx} (and workers or queues to match), or reduce the netdev's queues (ethtool -L ${iface} combined ${count}, or rx ${count} on a veth)`;
}

/** DPDK tx offloads the uplink's profile says its NIC has; the port enables only those
 *  the device also reports. */
export function dpdkChoice(dev: string, sysRoot = '/sys'): UplinkChoice {
  const pci = /^([0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(dev) ? (dev.includes(':') && dev.split(':').length === 3 ? dev : `0000:${dev}`) : null;
  if (!pci) return { profile: null, driver: null, dpdkTxOffloads: { bits: 0, names: [], why: `${dev.split(',')[0]} is a virtual device: no tx offloads` } };
  const { profile, driver } = profileOfPci(`${sysRoot}/bus/pci/devices/${pci}`);
  if (!profile) return { profile: null, driver, dpdkTxOffloads: { bits: 0, names: [], why: `no hw-profile matches ${pci}: checksums stay in software` } };
  const o = profile.offloads;
  const names: string[] = [];
  let bits = 0;
  const add = (k: keyof typeof DPDK_TX) => ((bits |= DPDK_TX[k]), names.push(k));
  if (o.innerCsum) add('ipv4Cksum'), add('udpCksum');
  if (o.outerIpv4Csum) add('outerIpv4Cksum');
  if (o.outerUdpCsum) add('outerUdpCksum');
  if (o.tso) add('vxlanTnlTso');
  return { profile: profile.name, driver, allowedTier: profile.tier, dpdkTxOffloads: { bits, names, why: `the ${profile.name} profile lists ${names.join(', ') || 'no tx offloads'}` } };
}

export interface TierChoice {
  tier: OffloadTier;            // the tier the data plane runs at
  allowed: OffloadTier | null;  // the highest the uplink's hw-profile allows (null: no profile)
  why: string;
}

/** The offload tier of DESIGN.md the data plane runs at, from what the uplink's device
 *  actually enabled (not what was asked: a device that refuses an offload drops the data
 *  plane to the tier below, and software does the work), with the reason. vfplane
 *  programs no hardware encap (rte_flow VXLAN_ENCAP/DECAP, tc flower) and no VNI steering
 *  rules yet, so tier 1 is never chosen, and tier 2 means checksum offload only. */
export function offloadTier(backend: string, choice: UplinkChoice | null, enabledTxOffloads: number): TierChoice {
  const allowed = choice?.allowedTier ?? null;
  const p = choice?.profile;
  const oc = outerChecksums(enabledTxOffloads);
  const csum = oc.ipv4 === 'device' || oc.udp === 'device';
  const parts: string[] = [];
  if (allowed === null) parts.push('no hw-profile matches the uplink (virtual or unknown NIC), so software only');
  else if (choice?.tierNote) parts.push(`the ${p} profile allows tier ${allowed}: ${choice.tierNote}`);
  else if (allowed === 1) parts.push(`the ${p} profile allows tier 1 (hardware encap/decap through rte_flow or tc flower in switchdev mode), which vfplane does not program yet`);
  let tier: OffloadTier = 3;
  if (csum) {
    tier = 2;
    parts.push('the NIC fills the outer IPv4 header and UDP checksums; encap and decap stay in software (no VNI steering rules yet)');
  } else if (allowed === 1 || allowed === 2) {
    parts.push(backend === 'dpdk'
      ? `the device enabled none of the checksum offloads the ${p} profile lists, so checksums are computed in software`
      : `the ${backend} backend sends through the kernel driver and asks it for no offloads, so checksums are computed in software (the dpdk backend uses the NIC's)`);
  } else if (allowed === 3) {
    parts.push(`the ${p} profile allows software only`);
  }
  return { tier, allowed, why: parts.join('; ') };
}

// PF-side VF settings (MAC, VLAN, QoS, protocol, spoofchk, trust, link state, rates):
// read and changed through netlink on the PF netdev, as `ip link set PF vf N ...` does,
// or through the simulator, which has no netlink VF support to lean on.
import { ip, link, type IpVfInfo } from '../net/ip.js';
import { conflict, invalid, notFound } from '../util/errors.js';
import { parseMac, formatMac } from '../util/addr.js';
import type { Sysfs } from './sysfs.js';
import { MAX_TX_RATE, type HwProfile, type VfSettings } from './types.js';

/** What a VF's PF takes beyond the common ranges: its family's `vfSettings` facts (none
 *  for a PF no profile matches, or a profile without them) and its link speed. */
export interface VfSettingLimits {
  family: string | null;
  driver: string | null;
  linkSpeedMbps: number | null;
  caps: NonNullable<HwProfile['vfSettings']> | null;
  /** The sum of the min_tx_rate of every VF of the PF as they are now (this VF's
   *  included), for a family whose driver keeps the sum within the link
   *  (minTxRateSumUpToLinkSpeed); null when not needed or not known. */
  minTxRateSum?: number | null;
}

export function settingsFromNetlink(v: IpVfInfo): VfSettings {
  const vl = v.vlan_list?.[0];
  return {
    mac: (v.address ?? v.mac ?? '00:00:00:00:00:00').toLowerCase(),
    vlan: vl?.vlan ?? 0,
    qos: vl?.qos ?? 0,
    vlanProto: vl?.protocol === '802.1ad' ? '802.1ad' : '802.1Q',
    spoofchk: v.spoofchk ?? false,
    trust: v.trust ?? false,
    linkState: v.link_state === 'enable' ? 'enable' : v.link_state === 'disable' ? 'disable' : 'auto',
    minTxRate: v.rate?.min_tx ?? 0,
    maxTxRate: v.rate?.max_tx ?? 0,
  };
}

/** Settings of every VF of a PF, by VF index; empty when the PF reports none. */
export function readPfVfSettings(sysfs: Sysfs, pfPci: string, pfNetdev: string | null, numVfs: number): Map<number, VfSettings> {
  const out = new Map<number, VfSettings>();
  if (sysfs.kernel) {
    for (let i = 0; i < numVfs; i++) {
      const s = simVfSettings(sysfs, pfPci, i);
      if (s) out.set(i, s);
    }
    return out;
  }
  if (!pfNetdev) return out;
  const l = link(pfNetdev, undefined, true);
  for (const v of l?.vfinfo_list ?? []) out.set(v.vf, settingsFromNetlink(v));
  return out;
}

/** Settings of VF INDEX of a PF, or null when the PF reports none. */
export function readPfVfSetting(sysfs: Sysfs, pfPci: string, pfNetdev: string | null, index: number): VfSettings | null {
  if (sysfs.kernel) return simVfSettings(sysfs, pfPci, index);
  return readPfVfSettings(sysfs, pfPci, pfNetdev, index + 1).get(index) ?? null;
}

/** The simulator's settings of a VF; null for a VF its PF no longer has (its VF count
 *  changed since it was listed), as netlink leaves such a VF out of the PF's list. */
function simVfSettings(sysfs: Sysfs, pfPci: string, index: number): VfSettings | null {
  try {
    return sysfs.kernel!.vfSettings(pfPci, index);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return null;
    throw err;
  }
}

/** The errnos a PF driver answers a VF setting it refuses with, and the kernel's text for each. */
export const VF_SETTING_ERRNOS = {
  EINVAL: 'Invalid argument',
  EPROTONOSUPPORT: 'Protocol not supported',
} as const;

/** One thing in a proposed change that a PF's driver refuses. */
export interface VfSettingRefusal {
  field: keyof VfSettings;
  errno: keyof typeof VF_SETTING_ERRNOS; // what the driver's ndo_set_vf_* returns
  reason: string; // for a person: what, why (naming the driver as `who`), and what to do
}

/** The PF driver that refuses, for a sentence: "the e810 family's PF driver (ice)". */
export function limitsWho(l: VfSettingLimits): string {
  return `the ${l.family} family's PF driver${l.driver ? ` (${l.driver})` : ''}`;
}

/** What a VF's siblings are guaranteed together (minTxRateSum less OWN, the VF's own rate
 *  now, which a new rate replaces); null where the family does not sum them. */
export function othersMinTxRate(l: VfSettingLimits, own: number): number | null {
  return l.minTxRateSum == null ? null : Math.max(0, l.minTxRateSum - own);
}

/** Why a VF whose own min rate is OWN cannot be given RATE now (its family keeps its VFs'
 *  guarantees within the link), or null: the rule of vfSettingRefusals alone, for a
 *  put-back, a pool's choice and a driver's EINVAL to word. */
export function minTxRateRefusal(l: VfSettingLimits, own: number, rate: number, words = CLI_WORDS): VfSettingRefusal | null {
  return vfSettingRefusals(l.caps, l.linkSpeedMbps, { minTxRate: rate }, limitsWho(l), othersMinTxRate(l, own), words)[0] ?? null;
}

/**
 * What a person calls each VF setting where they gave it, for the refusals: the CLI's
 * flags (`vf config --min-tx-rate`) or a CNI config's keys (`min_tx_rate`), and how to
 * ask them to give one too.
 */
export interface SettingWords {
  name: Record<keyof VfSettings, string>;
  give: (k: keyof VfSettings) => string;
}
const CLI_NAMES: Record<keyof VfSettings, string> = {
  mac: 'mac', vlan: 'vlan', qos: 'qos', vlanProto: 'vlan-proto', spoofchk: 'spoofchk', trust: 'trust',
  linkState: 'link-state', minTxRate: 'min-tx-rate', maxTxRate: 'max-tx-rate',
};
export const CLI_WORDS: SettingWords = { name: CLI_NAMES, give: (k) => `pass --${CLI_NAMES[k]}` };
const CONFIG_NAMES: Record<keyof VfSettings, string> = {
  mac: 'mac', vlan: 'vlan', qos: 'vlanQoS', vlanProto: 'vlanProto', spoofchk: 'spoofchk', trust: 'trust',
  linkState: 'link_state', minTxRate: 'min_tx_rate', maxTxRate: 'max_tx_rate',
};
export const CONFIG_WORDS: SettingWords = { name: CONFIG_NAMES, give: (k) => `set "${CONFIG_NAMES[k]}"` };

/**
 * What the PF's driver refuses in CHANGE, by its family's `vfSettings` facts (none: the
 * kernel alone decides) and the PF's link speed (unknown: no link-speed rule), in the
 * order the checks run. The one place these rules live: checkSettings says the first
 * before anything is touched, and the simulator answers with its errno as the driver does.
 * OTHERS_MIN_TX_RATE is what the PF's other VFs are guaranteed together (min_tx_rate),
 * for the oversubscription rule; unknown (null): no such rule.
 */
export function vfSettingRefusals(
  caps: HwProfile['vfSettings'] | null | undefined,
  linkSpeedMbps: number | null,
  change: Partial<VfSettings>,
  who = "the PF's driver",
  othersMinTxRate: number | null = null,
  { name: n }: SettingWords = CLI_WORDS,
): VfSettingRefusal[] {
  const out: VfSettingRefusal[] = [];
  if (!caps) return out;
  // i40e: "Invalid min tx rate", whatever the VF's max rate.
  if ((change.minTxRate ?? 0) > 0 && !caps.minTxRate) {
    out.push({ field: 'minTxRate', errno: 'EINVAL', reason: `${n.minTxRate} ${change.minTxRate}: ${who} has no minimum rate for VFs and refuses any but 0 (EINVAL); leave it 0, or cap the VF with ${n.maxTxRate}` });
  }
  // i40e and mlx5 test the protocol before the VLAN id, so VLAN 0 does not make it pass.
  if (change.vlanProto === '802.1ad' && !caps.vlanProto8021ad) {
    out.push({ field: 'vlanProto', errno: 'EPROTONOSUPPORT', reason: `${n.vlanProto} 802.1ad: ${who} takes only 802.1Q for a VF's VLAN (EPROTONOSUPPORT); use 802.1Q` });
  }
  if (caps.maxTxRateUpToLinkSpeed && linkSpeedMbps && (change.maxTxRate ?? 0) > linkSpeedMbps) {
    out.push({ field: 'maxTxRate', errno: 'EINVAL', reason: `${n.maxTxRate} ${change.maxTxRate} is above the PF's link speed, ${linkSpeedMbps} Mbit/s; ${who} refuses that (EINVAL); give at most ${linkSpeedMbps}` });
  }
  // ice (ice_min_tx_rate_oversubscribed): the guaranteed rates of all the PF's VFs, this
  // one's new rate in place of its old, must fit in the link. A 0 is left alone: it only
  // takes a guarantee away (and ice is being fixed to let it through for that reason).
  const min = change.minTxRate ?? 0;
  if (caps.minTxRate && caps.minTxRateSumUpToLinkSpeed && linkSpeedMbps && othersMinTxRate !== null && min > 0 && othersMinTxRate + min > linkSpeedMbps) {
    const room = Math.max(0, linkSpeedMbps - othersMinTxRate);
    out.push({
      field: 'minTxRate', errno: 'EINVAL',
      reason: `${n.minTxRate} ${min} would oversubscribe the PF's link: with the ${othersMinTxRate} Mbit/s its other VFs are guaranteed, the ${n.minTxRate}s of its VFs would sum to ${othersMinTxRate + min} Mbit/s, above its link speed, ${linkSpeedMbps} Mbit/s; ${who} refuses that (EINVAL); `
        + (room > 0 ? `give at most ${room}, or lower the other VFs' ${n.minTxRate} first` : `the other VFs' guarantees take the whole link: lower their ${n.minTxRate} first, or leave this one 0`),
    });
  }
  return out;
}

/** Checks a requested change the way the kernel and the drivers do, before anything is
 *  touched: common ranges always, and with `limits` what the PF's driver refuses (its
 *  hw-profile's vfSettings, its link speed). A driver's refusal is a fact of this host,
 *  not a malformed request: exit 1 at the CLI, code 7 under CNI. */
export function checkSettings(c: Partial<VfSettings>, current: VfSettings, limits?: VfSettingLimits | null, words = CLI_WORDS): Partial<VfSettings> {
  const out: Partial<VfSettings> = { ...c };
  const n = words.name;
  if (c.mac !== undefined) {
    const b = parseMac(c.mac);
    if (!b) throw invalid(`${n.mac} ${JSON.stringify(c.mac)} is not a MAC address: expected six hex bytes like 02:00:00:00:00:01`);
    if (b[0]! & 1) throw invalid(`${n.mac} ${c.mac} is a multicast address; a VF needs a unicast MAC (first byte even)`);
    out.mac = formatMac(b);
  }
  const vlan = c.vlan ?? current.vlan;
  if (c.vlan !== undefined && (!Number.isInteger(c.vlan) || c.vlan < 0 || c.vlan > 4094)) {
    throw invalid(`${n.vlan} ${c.vlan} is out of range: 0 (none) to 4094`);
  }
  if (c.qos !== undefined && (!Number.isInteger(c.qos) || c.qos < 0 || c.qos > 7)) throw invalid(`${n.qos} ${c.qos} is out of range: 0–7`);
  if ((c.qos ?? 0) > 0 && vlan === 0) {
    throw invalid(c.vlan === 0
      ? `${n.qos} ${c.qos} needs a VLAN, and ${n.vlan} 0 is none: give a VLAN of 1–4094 (the priority travels in its tag)`
      : `${n.qos} ${c.qos} needs a VLAN: the VF has none; ${words.give('vlan')} (1–4094) as well`);
  }
  // Without a VLAN the kernel is never given the protocol (ip link sends none): it would
  // be reported as set and not be.
  if (c.vlanProto === '802.1ad' && vlan === 0) throw invalid(`${n.vlanProto} 802.1ad needs a VLAN: ${words.give('vlan')} (1–4094) as well`);
  // No VLAN, no priority: `ip link set PF vf N vlan 0` clears QoS too, so an old QoS must
  // not wait as hidden state to come back with the next VLAN.
  if (c.vlan === 0 && current.qos !== 0) out.qos = 0;
  for (const k of ['minTxRate', 'maxTxRate'] as const) {
    const v = c[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > MAX_TX_RATE)) throw invalid(`${n[k]} ${v} is out of range: 0 (unlimited) to ${MAX_TX_RATE} Mbit/s (the kernel's bound; the PF's link speed is checked too)`);
  }
  const min = c.minTxRate ?? current.minTxRate;
  const max = c.maxTxRate ?? current.maxTxRate;
  if (max !== 0 && min > max) throw invalid(`${n.minTxRate} ${min} is above ${n.maxTxRate} ${max}; the kernel refuses that (EINVAL)`);
  if (limits) {
    const [refused] = vfSettingRefusals(limits.caps, limits.linkSpeedMbps, c, limitsWho(limits), othersMinTxRate(limits, current.minTxRate), words);
    if (refused) throw conflict(refused.reason, { cniCode: 7 });
  }
  return out;
}

/** Applies a (checked) change to VF INDEX of the PF. */
export function applyVfSettings(sysfs: Sysfs, pfPci: string, pfNetdev: string | null, index: number, c: Partial<VfSettings>, current: VfSettings): void {
  if (Object.keys(c).length === 0) return;
  if (sysfs.kernel) {
    sysfs.kernel.setVfSettings(pfPci, index, c);
    return;
  }
  if (!pfNetdev) throw notFound(`PF ${pfPci} has no netdev in this namespace; VF settings are made through the PF's netdev`);
  const args = ['link', 'set', 'dev', pfNetdev, 'vf', String(index)];
  if (c.mac !== undefined) args.push('mac', c.mac);
  if (c.vlan !== undefined || c.qos !== undefined || c.vlanProto !== undefined) {
    args.push('vlan', String(c.vlan ?? current.vlan), 'qos', String(c.qos ?? current.qos));
    if ((c.vlan ?? current.vlan) !== 0) args.push('proto', c.vlanProto ?? current.vlanProto);
  }
  if (c.spoofchk !== undefined) args.push('spoofchk', c.spoofchk ? 'on' : 'off');
  if (c.trust !== undefined) args.push('trust', c.trust ? 'on' : 'off');
  if (c.linkState !== undefined) args.push('state', c.linkState);
  if (c.minTxRate !== undefined) args.push('min_tx_rate', String(c.minTxRate));
  if (c.maxTxRate !== undefined) args.push('max_tx_rate', String(c.maxTxRate));
  ip(args);
}

/** `vfplane vf config` flags that set CHANGE: a command to give a person who must set
 *  these values again (CNI CHECK's advice on drift). */
export function vfConfigFlags(c: Partial<VfSettings>): string {
  const flag: Record<keyof VfSettings, string> = {
    mac: '--mac', vlan: '--vlan', qos: '--qos', vlanProto: '--vlan-proto', spoofchk: '--spoofchk', trust: '--trust',
    linkState: '--link-state', minTxRate: '--min-tx-rate', maxTxRate: '--max-tx-rate',
  };
  return (Object.keys(c) as (keyof VfSettings)[]).filter((k) => c[k] !== undefined)
    .map((k) => `${flag[k]} ${typeof c[k] === 'boolean' ? (c[k] ? 'on' : 'off') : String(c[k])}`).join(' ');
}

/** The fields of B that differ from A (to restore exactly what was changed). */
export function settingsDiff(from: VfSettings, to: Partial<VfSettings>): Partial<VfSettings> {
  const out: Partial<VfSettings> = {};
  for (const k of Object.keys(to) as (keyof VfSettings)[]) {
    if (from[k] !== to[k]) (out as Record<string, unknown>)[k] = to[k];
  }
  return out;
}

/** An MTU any netdev can have: IPv4's minimum to the 16-bit IP length. What one VF's
 *  netdev takes is its driver's (checkMtu). */
export const MTU_RANGE = { min: 68, max: 65535 } as const;

/**
 * Refuses an MTU the VF's netdev would not take, before anything changes. The limit is
 * the driver's, as the kernel reports it (IFLA_MIN_MTU/IFLA_MAX_MTU): a fixed number
 * would be wrong somewhere (iavf took 9702 before libie and more since, capped by what
 * the PF allows; mlx5 takes what its firmware says, ~9978).
 */
export function checkMtu(mtu: number, netdev: string, what = `VF netdev ${netdev}`): void {
  const l = link(netdev, undefined, true); // in this namespace, where a VF's netdev is before a pod has it
  if (!l) return; // gone: the change itself will say so
  const min = l.min_mtu || 0, max = l.max_mtu || 0;
  if ((max && mtu > max) || (min && mtu < min)) {
    throw invalid(`mtu ${mtu} is outside what ${what} takes: ${min || MTU_RANGE.min}–${max || MTU_RANGE.max} (its driver's range, as the kernel reports it); give an MTU in it`);
  }
}

// PF-side VF settings off a real NIC come from `ip -d -j link show PF` (vfinfo_list);
// this kernel has no SR-IOV, so the parser is checked against that output's shape as
// iproute2's print_vfinfo() writes it. The checks run before anything is changed.
import { describe, expect, it } from 'vitest';
import { checkMtu, checkSettings, settingsDiff, settingsFromNetlink, vfSettingRefusals, type VfSettingLimits } from '../../src/sriov/vf-settings.js';
import { execFileSync } from 'node:child_process';
import { describePrivileged } from '../helpers/privileged.js';
import { ifname } from '../helpers/netns.js';
import { thrown } from '../helpers/thrown.js';
import { VfpError } from '../../src/util/errors.js';
import { getProfile } from '../../src/sriov/profile.js';
import { DEFAULT_VF_SETTINGS } from '../../src/sim/kernel.js';

describe('VF settings', () => {
  it('reads iproute2 vfinfo_list entries', () => {
    expect(settingsFromNetlink({
      vf: 3, address: '02:AA:BB:CC:DD:EE', vlan_list: [{ vlan: 100, qos: 2, protocol: '802.1ad' }],
      rate: { max_tx: 1000, min_tx: 100 }, spoofchk: true, link_state: 'disable', trust: true,
    })).toEqual({ mac: '02:aa:bb:cc:dd:ee', vlan: 100, qos: 2, vlanProto: '802.1ad', spoofchk: true, trust: true, linkState: 'disable', minTxRate: 100, maxTxRate: 1000 });
    expect(settingsFromNetlink({ vf: 0, address: '00:00:00:00:00:00', link_state: 'auto' })).toMatchObject({ vlan: 0, vlanProto: '802.1Q', linkState: 'auto', maxTxRate: 0 });
  });

  it('refuses what the kernel or the driver would, naming the value', () => {
    const cur = { ...DEFAULT_VF_SETTINGS };
    expect(() => checkSettings({ mac: '03:00:00:00:00:01' }, cur)).toThrow(/03:00:00:00:00:01 is a multicast address/);
    expect(() => checkSettings({ mac: 'zz' }, cur)).toThrow(/mac "zz" is not a MAC address/);
    expect(() => checkSettings({ vlan: 4095 }, cur)).toThrow(/vlan 4095 is out of range/);
    expect(() => checkSettings({ qos: 3 }, cur)).toThrow(/qos 3 needs a VLAN: the VF has none; pass --vlan/);
    expect(() => checkSettings({ minTxRate: 500, maxTxRate: 100 }, cur)).toThrow(/min-tx-rate 500 is above max-tx-rate 100/);
    // Without a VLAN, `ip link` never gives the kernel the protocol.
    expect(() => checkSettings({ vlanProto: '802.1ad' }, cur)).toThrow('vlan-proto 802.1ad needs a VLAN: pass --vlan (1–4094) as well');
    expect(checkSettings({ vlanProto: '802.1ad' }, { ...cur, vlan: 7 })).toEqual({ vlanProto: '802.1ad' });
    expect(checkSettings({ mac: '02:AA:00:00:00:01', vlan: 5, qos: 3 }, cur)).toEqual({ mac: '02:aa:00:00:00:01', vlan: 5, qos: 3 });
  });

  it('clears QoS with the VLAN, as `ip link set PF vf N vlan 0` does', () => {
    const tagged = { ...DEFAULT_VF_SETTINGS, vlan: 100, qos: 3 };
    expect(checkSettings({ vlan: 0 }, tagged)).toEqual({ vlan: 0, qos: 0 });
    expect(checkSettings({ vlan: 200 }, tagged)).toEqual({ vlan: 200 });
    expect(checkSettings({ vlan: 0 }, DEFAULT_VF_SETTINGS)).toEqual({ vlan: 0 });
    expect(() => checkSettings({ vlan: 0, qos: 3 }, tagged)).toThrow(/qos 3 needs a VLAN, and vlan 0 is none: give a VLAN of 1–4094/);
  });

  // One rule set for the operator's check and the simulator's errno, read from each
  // family's hw-profile: i40e refuses a minimum rate, 802.1ad and a max rate above the
  // link; ice takes all three (none is refused ahead of the kernel); mlx5 refuses 802.1ad.
  describe('what a family\'s PF driver refuses (vfSettingRefusals)', () => {
    const LINK = 10_000;
    const minRate = { minTxRate: 100 };
    const qinq = { vlan: 5, vlanProto: '802.1ad' as const };
    const aboveLink = { maxTxRate: LINK + 1 };
    const refusals = (family: string, change: Parameters<typeof vfSettingRefusals>[2], speed: number | null = LINK) =>
      vfSettingRefusals(getProfile(family).vfSettings, speed, change).map((r) => [r.field, r.errno]);

    it('x710 (i40e): no minimum rate, no 802.1ad, no max rate above the link', () => {
      expect(refusals('x710', minRate)).toEqual([['minTxRate', 'EINVAL']]);
      expect(refusals('x710', qinq)).toEqual([['vlanProto', 'EPROTONOSUPPORT']]);
      // i40e looks at the protocol before the VLAN id: VLAN 0 does not let 802.1ad through
      expect(refusals('x710', { vlan: 0, vlanProto: '802.1ad' })).toEqual([['vlanProto', 'EPROTONOSUPPORT']]);
      expect(refusals('x710', aboveLink)).toEqual([['maxTxRate', 'EINVAL']]);
      expect(refusals('x710', { maxTxRate: LINK })).toEqual([]);
      expect(refusals('x710', aboveLink, null)).toEqual([]); // link speed unknown: the kernel decides
      expect(refusals('x710', { minTxRate: 0, vlan: 5, vlanProto: '802.1Q', maxTxRate: 0, trust: true })).toEqual([]);
      // every refusal, in the order the checks run
      expect(refusals('x710', { ...minRate, ...qinq, ...aboveLink })).toEqual([['minTxRate', 'EINVAL'], ['vlanProto', 'EPROTONOSUPPORT'], ['maxTxRate', 'EINVAL']]);
    });

    it('e810 (ice): a minimum rate, 802.1ad and any max rate are the kernel\'s to judge', () => {
      for (const c of [minRate, qinq, aboveLink, { ...minRate, ...qinq, ...aboveLink }]) expect(refusals('e810', c)).toEqual([]);
    });

    it('e810 (ice): the min rates of all the PF\'s VFs must fit in the link, as ice_min_tx_rate_oversubscribed checks', () => {
      const caps = getProfile('e810').vfSettings;
      const ice = (others: number | null, change: Parameters<typeof vfSettingRefusals>[2], speed: number | null = LINK) =>
        vfSettingRefusals(caps, speed, change, "ice", others).map((r) => [r.field, r.errno]);
      expect(ice(0, { minTxRate: LINK })).toEqual([]);
      expect(ice(0, { minTxRate: LINK + 1 })).toEqual([['minTxRate', 'EINVAL']]);
      expect(ice(6000, { minTxRate: 4000 })).toEqual([]); // exactly the link
      expect(ice(6000, { minTxRate: 4001 })).toEqual([['minTxRate', 'EINVAL']]);
      // taking a guarantee away is never refused; the other VFs unknown, or the link: the kernel decides
      expect(ice(LINK * 2, { minTxRate: 0 })).toEqual([]);
      expect(ice(null, { minTxRate: LINK + 1 })).toEqual([]);
      expect(ice(6000, { minTxRate: 4001 }, null)).toEqual([]);
      const [r] = vfSettingRefusals(caps, LINK, { minTxRate: 4001 }, "the e810 family's PF driver (ice)", 6000);
      expect(r!.reason).toBe("min-tx-rate 4001 would oversubscribe the PF's link: with the 6000 Mbit/s its other VFs are guaranteed, the min-tx-rates of its VFs would sum to 10001 Mbit/s, above its link speed, 10000 Mbit/s; the e810 family's PF driver (ice) refuses that (EINVAL); give at most 4000, or lower the other VFs' min-tx-rate first");
      expect(vfSettingRefusals(caps, LINK, { minTxRate: 1 }, 'ice', LINK)[0]!.reason).toMatch(/the other VFs' guarantees take the whole link: lower their min-tx-rate first, or leave this one 0$/);
      // checkSettings: the VF's own old rate is replaced, not added (the sum counts it once)
      const limits: VfSettingLimits = { family: 'e810', driver: 'ice', linkSpeedMbps: LINK, caps: caps!, minTxRateSum: 9000 };
      const cur = { ...DEFAULT_VF_SETTINGS, minTxRate: 3000 };
      expect(checkSettings({ minTxRate: 4000 }, cur, limits)).toEqual({ minTxRate: 4000 }); // 6000 + 4000
      expect(() => checkSettings({ minTxRate: 4001 }, cur, limits)).toThrow(/^min-tx-rate 4001 would oversubscribe the PF's link: with the 6000 Mbit\/s its other VFs are guaranteed, the min-tx-rates of its VFs would sum to 10001 Mbit\/s, above its link speed, 10000 Mbit\/s; the e810 family's PF driver \(ice\) refuses that \(EINVAL\); give at most 4000/);
      // the other families keep no such sum
      for (const family of ['cx5', 'cx6dx', 'sim']) expect(vfSettingRefusals(getProfile(family).vfSettings, LINK, { minTxRate: LINK }, 'x', LINK)).toEqual([]);
    });

    it('connectx (mlx5): a minimum rate and any max rate, but no 802.1ad', () => {
      for (const family of ['cx5', 'cx6dx']) {
        expect(refusals(family, minRate)).toEqual([]);
        expect(refusals(family, aboveLink)).toEqual([]);
        expect(refusals(family, qinq)).toEqual([['vlanProto', 'EPROTONOSUPPORT']]);
        expect(refusals(family, { ...minRate, ...qinq, ...aboveLink })).toEqual([['vlanProto', 'EPROTONOSUPPORT']]);
      }
    });

    it('a profile without vfSettings refuses nothing ahead of the kernel', () => {
      expect(vfSettingRefusals(undefined, LINK, { ...minRate, ...qinq, ...aboveLink })).toEqual([]);
      expect(vfSettingRefusals(null, LINK, { ...minRate, ...qinq, ...aboveLink })).toEqual([]);
    });

    it('says why, naming the driver and its errno; checkSettings refuses with the first reason', () => {
      const x710 = getProfile('x710');
      const limits: VfSettingLimits = { family: 'x710', driver: 'i40e', linkSpeedMbps: LINK, caps: x710.vfSettings! };
      const who = "the x710 family's PF driver (i40e)";
      const all = vfSettingRefusals(limits.caps, LINK, { ...minRate, ...qinq, ...aboveLink }, who);
      expect(all.map((r) => r.reason)).toEqual([
        `min-tx-rate 100: ${who} has no minimum rate for VFs and refuses any but 0 (EINVAL); leave it 0, or cap the VF with max-tx-rate`,
        `vlan-proto 802.1ad: ${who} takes only 802.1Q for a VF's VLAN (EPROTONOSUPPORT); use 802.1Q`,
        `max-tx-rate 10001 is above the PF's link speed, 10000 Mbit/s; ${who} refuses that (EINVAL); give at most 10000`,
      ]);
      for (const r of all) expect(r.reason).toContain(`(${r.errno})`);
      expect(vfSettingRefusals(limits.caps, LINK, minRate)[0]!.reason).toContain("the PF's driver has no minimum rate");
      const cur = { ...DEFAULT_VF_SETTINGS };
      for (const [c, i] of [[{ ...minRate, ...qinq, ...aboveLink }, 0], [{ ...qinq, ...aboveLink }, 1], [aboveLink, 2]] as const) {
        let err: VfpError | undefined;
        try { checkSettings(c, cur, limits); } catch (e) { err = e as VfpError; }
        expect(err).toMatchObject({ kind: 'conflict', message: all[i]!.reason, details: { cniCode: 7 } });
      }
      // no driver bound to the PF: the family alone is named
      expect(() => checkSettings(minRate, cur, { ...limits, driver: null })).toThrow(/^min-tx-rate 100: the x710 family's PF driver has no minimum rate/);
      expect(checkSettings({ maxTxRate: LINK }, cur, limits)).toEqual({ maxTxRate: LINK });
    });
  });

  it('diffs settings so a restore touches only what changed', () => {
    const now = { ...DEFAULT_VF_SETTINGS, vlan: 7, trust: true };
    expect(settingsDiff(now, DEFAULT_VF_SETTINGS)).toEqual({ vlan: 0, trust: false });
  });
});

// The MTU a VF's netdev takes is its driver's, which the kernel reports (IFLA_MAX_MTU):
// no fixed number (9702 was iavf's before libie, low for mlx5's ~9978). A tap netdev has
// a driver maximum below the 65535 any netdev may have: 65521.
describePrivileged('the MTU range of a netdev, as its driver gives it', { root: true }, () => {
  it('refuses above the driver\'s maximum, naming the range, and takes up to it', () => {
    const tap = ifname('mt');
    execFileSync('ip', ['tuntap', 'add', tap, 'mode', 'tap']);
    try {
      const e = thrown(VfpError, () => checkMtu(65530, tap));
      expect(e.kind).toBe('invalid');
      expect(e.message).toBe(`mtu 65530 is outside what VF netdev ${tap} takes: 68–65521 (its driver's range, as the kernel reports it); give an MTU in it`);
      expect(() => checkMtu(65521, tap)).not.toThrow();
      expect(() => checkMtu(9800, tap)).not.toThrow();
    } finally {
      execFileSync('ip', ['link', 'del', tap]);
    }
  });
});

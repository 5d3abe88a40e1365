// PF-side VF settings off a real NIC come from `ip -d -j link show PF` (vfinfo_list);
// this kernel has no SR-IOV, so the parser is checked against that output's shape as
// iproute2's print_vfinfo() writes it. The checks run before anything is changed.
import { describe, expect, it } from 'vitest';
import { checkSettings, settingsDiff, settingsFromNetlink } from '../../src/sriov/vf-settings.js';
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
    expect(() => checkSettings({ qos: 3 }, cur)).toThrow(/qos 3 needs a VLAN/);
    expect(() => checkSettings({ minTxRate: 500, maxTxRate: 100 }, cur)).toThrow(/min-tx-rate 500 is above max-tx-rate 100/);
    expect(checkSettings({ mac: '02:AA:00:00:00:01', vlan: 5, qos: 3 }, cur)).toEqual({ mac: '02:aa:00:00:00:01', vlan: 5, qos: 3 });
  });

  it('clears QoS with the VLAN, as `ip link set PF vf N vlan 0` does', () => {
    const tagged = { ...DEFAULT_VF_SETTINGS, vlan: 100, qos: 3 };
    expect(checkSettings({ vlan: 0 }, tagged)).toEqual({ vlan: 0, qos: 0 });
    expect(checkSettings({ vlan: 200 }, tagged)).toEqual({ vlan: 200 });
    expect(checkSettings({ vlan: 0 }, DEFAULT_VF_SETTINGS)).toEqual({ vlan: 0 });
    expect(() => checkSettings({ vlan: 0, qos: 3 }, tagged)).toThrow(/qos 3 needs a VLAN/);
  });

  it('diffs settings so a restore touches only what changed', () => {
    const now = { ...DEFAULT_VF_SETTINGS, vlan: 7, trust: true };
    expect(settingsDiff(now, DEFAULT_VF_SETTINGS)).toEqual({ vlan: 0, trust: false });
  });
});

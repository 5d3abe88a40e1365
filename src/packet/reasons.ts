// Drop reasons of the VXLAN engine (docs/vxlan-engine.md §6). The native engine
// exports its own table; a test holds the two equal, name for name.
export const REASONS = [
  'ok',
  'inner_truncated',
  'no_headroom',
  'too_big',
  'mtu_exceeded',
  'eth_truncated',
  'not_ip',
  'ip_truncated',
  'ip_bad_version',
  'ip_bad_ihl',
  'ip_bad_checksum',
  'ip_bad_length',
  'ip_fragment',
  'not_local',
  'not_udp',
  'udp_bad_length',
  'not_vxlan_port',
  'udp_bad_checksum',
  'vxlan_truncated',
  'vxlan_bad_flags',
  'vni_unknown',
  'inner_vlan',
  'ce_not_ect',
  'udp_zero_checksum',
] as const;

export type ReasonName = (typeof REASONS)[number];

export const Reason = Object.fromEntries(REASONS.map((name, i) => [name, i])) as {
  readonly [K in ReasonName]: number;
};

export function reasonName(code: number): ReasonName | `unknown_${number}` {
  return REASONS[code] ?? `unknown_${code}`;
}

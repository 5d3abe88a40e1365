// The shapes discovery returns and the allocation store records. Plain data, JSON-safe,
// so the CLI prints them as they are and the store keeps them as they are.

/** The largest VF rate the kernel takes (IFLA_VF_RATE: 32-bit Mbit/s); a driver refuses
 *  more than the PF's link speed, which the settings' checks apply where the PF is known. */
export const MAX_TX_RATE = 4_294_967_295;

/** Offload tiers of DESIGN.md: 1 full hardware encap/decap, 2 steering + csum/TSO, 3 software. */
export type OffloadTier = 1 | 2 | 3;

/** What a NIC family can do; one JSON file per family in hw-profiles/ (see src/sriov/profile.ts). */
export interface HwProfile {
  name: string; // file stem: x710, e810, cx5, cx6dx, virtio, sim
  description: string;
  /** ids as "8086:1572"; afxdpZeroCopy: that function's kernel driver has AF_XDP zero-copy. */
  pf: { ids: string[]; driver: string; afxdpZeroCopy: boolean };
  vf: { ids: string[]; driver: string; afxdpZeroCopy: boolean };
  dpdk: { pmd: string; vfNeedsVfio: boolean; bifurcated: boolean };
  /** maxPortsPerDevice: most ports (PFs, one per port) one device of the family has, where
   *  a source states it; the simulator makes no more PFs than that. */
  limits: { maxVfsPerPf: number; maxVfsPerDevice: number; queuesPerVfDefault: number; queuesPerVfMax: number; maxPortsPerDevice?: number };
  lineRateMbps: number[]; // per port, every speed the family ships in
  offloads: {
    outerIpv4Csum: boolean;
    outerUdpCsum: boolean;
    innerCsum: boolean;
    tso: boolean;
    innerRss: boolean;
    vniSteering: boolean;
    rteFlowEncapDecap: boolean;
    tcFlowerEncapDecap: boolean;
    switchdev: boolean;
  };
  /** What the PF driver's VF settings (ndo_set_vf_*) take beyond the common ones; absent
   *  in an operator's own profile: then nothing is checked ahead of the kernel. */
  vfSettings?: {
    minTxRate: boolean; // a minimum rate (min_tx_rate > 0)
    vlanProto8021ad: boolean; // a VF VLAN with protocol 802.1ad
    maxTxRateUpToLinkSpeed: boolean; // max_tx_rate above the link speed is refused
    minTxRateSumUpToLinkSpeed: boolean; // the PF's VFs' min_tx_rates together must fit in the link (ice)
  };
  tier: OffloadTier; // the highest tier the family allows
  sources: Record<string, string>; // field path → URL (or doc/header path) that states it
  file?: string; // where it was loaded from
}

/** PF-side settings of one VF (what `ip link set PF vf N ...` changes). */
export interface VfSettings {
  mac: string; // administrative MAC, 00:00:00:00:00:00 when unset
  vlan: number; // 0 = none
  qos: number;
  vlanProto: '802.1Q' | '802.1ad';
  spoofchk: boolean;
  trust: boolean;
  linkState: 'auto' | 'enable' | 'disable';
  minTxRate: number; // Mbit/s, 0 = unlimited
  maxTxRate: number;
}

export interface PfInfo {
  pci: string;
  netdev: string | null;
  driver: string | null;
  vendor: string; // "8086"
  device: string; // "1572"
  numaNode: number; // -1 when the platform does not say
  totalVfs: number;
  numVfs: number;
  linkSpeedMbps: number | null;
  profile: string | null; // matching hw-profile name
  tier: OffloadTier | null;
  tierNote?: string; // why tier is below the family's (runningTier)
}

export interface VfInfo {
  pci: string;
  pf: string; // PF PCI address
  pfNetdev: string | null;
  index: number; // virtfnN
  vendor: string;
  device: string;
  driver: string | null; // iavf, mlx5_core, vfio-pci, ... or null when unbound
  netdev: string | null; // when a kernel driver is bound and the netdev is in the host namespace
  mac: string | null; // the netdev's address when there is one
  mtu: number | null;
  iommuGroup: number | null;
  vfioDevice: string | null; // /dev/vfio/N when bound to vfio-pci
  /** A process outside vfplane that has vfioDevice open (a DPDK application): the VF is in use. */
  vfioOpenBy?: { pid: number; comm: string } | null;
  numaNode: number;
  settings: VfSettings | null; // PF-side settings, when the PF reports them
  /** Its RDMA device (the first entry of infiniband/ under its PCI device: a ConnectX VF
   *  on mlx5_core with mlx5_ib loaded, "mlx5_3"); absent when it has none. DPDK's mlx5
   *  PMD reaches the VF through it, and the device plugin's isRdma selects by it. */
  rdmaDevice?: string;
}

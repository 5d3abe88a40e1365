// The top-level commands, in the order `vfplane --help` lists them: each one's name, its
// one-line description, whether it takes options of its own, and the module that
// registers it. main.ts registers only the module of the command being run; for the
// top-level help (and a name that is no command) it makes a stub of each from this
// table, so `vfplane --help` loads no command module. The modules take their
// descriptions from here: one text for both. A test compares the stubs' help with the
// help of the whole tree.
import type { Command } from './commander.js';

export type Group = 'pcap' | 'bench' | 'sriov' | 'profile' | 'cni' | 'doctor' | 'dataplane' | 'demo';

export interface TopCommand {
  readonly description: string;
  /** The command has options of its own (the help's "[options]" after its name). */
  readonly options: boolean;
  readonly group: Group;
}

export const TOP = {
  pcap: { group: 'pcap', options: false, description: 'encapsulate or decapsulate the frames of a pcap file (Ethernet linktype)' },
  bench: { group: 'bench', options: true, description: 'benchmark VXLAN encap/decap (native engine and TS model side by side) and FDB lookups' },
  pf: { group: 'sriov', options: false, description: 'SR-IOV physical functions: list them, set their number of VFs' },
  vf: { group: 'sriov', options: false, description: 'virtual functions: list, show, allocate, release, configure, bind' },
  gc: {
    group: 'sriov',
    options: true,
    description: 'release allocations whose owner is gone (netns removed or process exited): the VF put back, taken off the overlay, and the IPAM address of a CNI attachment released',
  },
  sim: { group: 'sriov', options: false, description: 'the simulated SR-IOV NIC: a sysfs-shaped tree plus real veth netdevs' },
  profile: { group: 'profile', options: false, description: 'hw-profiles: what each NIC family can do (IDs, VF limits, offloads, DPDK driver, offload tier), with sources' },
  cni: { group: 'cni', options: false, description: 'the vfplane-cni plugin: install it where the container runtime finds plugins, serve it warm' },
  doctor: {
    group: 'doctor',
    options: true,
    description: 'what this build has and this host supports: backends, hugepages, vfio/IOMMU, AF_XDP, the CNI server, NICs and their offload tier',
  },
  dataplane: { group: 'dataplane', options: false, description: 'the native VXLAN data plane: run the daemon, inspect and change a running one' },
  demo: {
    group: 'demo',
    options: true,
    description: 'bring up two simulated nodes with vfplane data planes and pods on a VXLAN overlay, run traffic, report, tear down (root)',
  },
} as const satisfies Record<string, TopCommand>;

export type TopName = keyof typeof TOP;

export const isTopName = (name: string): name is TopName => Object.hasOwn(TOP, name);

/** PROGRAM's top-level command NAME, with its description from the table. */
export const topCommand = (program: Command, name: TopName): Command => program.command(name).description(TOP[name].description);

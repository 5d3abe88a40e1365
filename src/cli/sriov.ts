// `vfplane pf|vf|gc|sim`: the operator's view of SR-IOV NICs, VFs and who holds them.
// Flags are declared and checked here; the work is in sriov-run.ts and sim-run.ts,
// loaded only when a command runs.
import { Command, Option } from './commander.js';
import { topCommand } from './commands.js';
import { choiceFlag, intFlag, macFlag, netnsFlag, pathFlag } from './flags.js';
import { UsageError } from './errors.js';
import { MAX_TX_RATE } from '../sriov/types.js';

const onOff = (flag: string) => (v: string): boolean => {
  if (v === 'on') return true;
  if (v === 'off') return false;
  throw new UsageError(`${flag} ${JSON.stringify(v)} is not one of: on, off`);
};

/** --json, --sysfs-root and --state-dir, on every command of these groups. */
function common(c: Command): Command {
  return c
    .option('--sysfs-root <dir>', 'sysfs to read and write: /sys, or a tree made by `vfplane sim create` (env VFPLANE_SYSFS_ROOT)', pathFlag('--sysfs-root'))
    .option('--state-dir <dir>', 'where the allocation store lives (env VFPLANE_STATE_DIR; default /var/lib/vfplane)', pathFlag('--state-dir'))
    .option('--json', 'print JSON on stdout instead of tables', false);
}

/** commander calls an action with (args…, options, command); ours take (options, args…).
 *  Errors propagate to main(), which reports them once for every command. */
function act(fn: (o: any, ...args: any[]) => Promise<void>) {
  return (...args: any[]) => fn((args[args.length - 1] as Command).opts(), ...args.slice(0, -2));
}

const run = () => import('./sriov-run.js');

/** The owner flags: what `vf alloc` records, and what `vf release` matches (there an
 *  owner's VFs are chosen by --owner, --container-id, --pod-uid or --pid; --ifname and
 *  --netns only narrow that down). */
function ownerOptions(c: Command, use: 'record' | 'match' = 'record'): Command {
  const m = use === 'match';
  return c
    .option('--owner <ns/name>', m ? 'release the VFs of this pod: namespace/name' : 'the pod: namespace/name')
    .option('--pod-uid <uid>', m ? 'release the VFs of the pod with this UID' : 'the pod UID')
    .option('--container-id <id>', m ? 'release the VFs of this container (sandbox) ID' : 'the container (sandbox) ID')
    .option('--ifname <name>', m ? 'only the VF given to this interface name (narrows the owner flags)' : 'the interface name in the pod')
    .addOption(new Option('--netns <path>', m ? 'only the VF recorded with this network namespace path (narrows the owner flags)' : 'the pod network namespace path (gc releases the VF when it is gone)').argParser(netnsFlag('--netns')))
    .addOption(new Option('--pid <n>', m ? 'release the VFs held by this process' : 'a process that holds the VF (gc releases it when the process is gone)').argParser(intFlag('--pid', 1, 2 ** 22)));
}

export function registerSriov(program: Command): void {
  const pf = topCommand(program, 'pf');
  common(pf.command('list').description('list SR-IOV capable PFs with their driver, hw-profile, offload tier and VF counts'))
    .action(act(async (o) => (await run()).pfList(o)));
  common(pf.command('set-numvfs').description('create or destroy VFs on a PF (sriov_numvfs)')
    .argument('<pf>', 'PF netdev name or PCI address')
    .argument('<n>', 'number of VFs (0 destroys them all)', intFlag('the number of VFs <n>', 0, 65535))
    .option('--force', 'change a nonzero count by going through 0 (destroys every VF of the PF), also while the data plane forwards for some of them by hand', false))
    .action(act(async (o, pfRef: string, n: number) => (await run()).pfSetNumVfs(o, pfRef, n)));

  const vf = topCommand(program, 'vf');
  common(vf.command('list').description('list VFs with their driver, netdev, settings and holder')
    .option('--pf <pf>', 'only VFs of this PF (netdev name or PCI address)')
    .option('--free', 'only VFs nobody holds', false)
    .option('--allocated', 'only VFs somebody holds', false))
    .action(act(async (o) => (await run()).vfList(o)));
  common(vf.command('show').description('everything about one VF: topology, driver, settings, allocation')
    .argument('<vf>', "VF PCI address (0000:5e:02.0), PF#INDEX (ens1f0#3) or the VF's netdev"))
    .action(act(async (o, ref: string) => (await run()).vfShow(o, ref)));
  ownerOptions(common(vf.command('alloc').description('allocate a VF from a pool or by address, recording its owner and original state')
    .option('--pool <name>', 'pool to allocate from (defined in --pools)')
    .option('--pci <vf>', "allocate this VF (PCI address, PF#INDEX or the VF's netdev)")
    .option('--pools <file>', 'pool definitions (JSON; default STATE_DIR/pools.json)', pathFlag('--pools'))))
    .action(act(async (o) => (await run()).vfAlloc(o)));
  ownerOptions(common(vf.command('release').description('release a VF (by address, or every VF of an owner) and restore its original settings; with a VF given, the owner flags must match its holder (--force releases it from any holder)')
    .argument('[vf]', "VF PCI address, PF#INDEX or the VF's netdev; omit to release by owner")
    .option('--force', 'release even if the owner given does not match', false)
    .option('--no-restore', 'keep the VF settings as they are')), 'match')
    .action(act(async (o, ref?: string) => (await run()).vfRelease(o, ref)));
  common(vf.command('config').description('change PF-side VF settings and the VF MTU')
    .argument('<vf>', "VF PCI address, PF#INDEX or the VF's netdev")
    .addOption(new Option('--mac <mac>', 'administrative MAC').argParser(macFlag('--mac')))
    .addOption(new Option('--vlan <id>', 'VLAN 0 (none)–4094').argParser(intFlag('--vlan', 0, 4094)))
    .addOption(new Option('--qos <n>', 'VLAN priority 0–7').argParser(intFlag('--qos', 0, 7)))
    .addOption(new Option('--vlan-proto <p>', 'VLAN protocol: 802.1Q or 802.1ad').argParser(choiceFlag('--vlan-proto', ['802.1Q', '802.1ad'] as const)))
    .addOption(new Option('--trust <on|off>', 'trusted VF (promiscuous, MAC changes)').argParser(onOff('--trust')))
    .addOption(new Option('--spoofchk <on|off>', 'source MAC anti-spoofing').argParser(onOff('--spoofchk')))
    .addOption(new Option('--link-state <s>', 'VF link: auto (follows the PF), enable or disable').argParser(choiceFlag('--link-state', ['auto', 'enable', 'disable'] as const)))
    .addOption(new Option('--min-tx-rate <mbps>', 'guaranteed rate, Mbit/s (0 = none)').argParser(intFlag('--min-tx-rate', 0, MAX_TX_RATE)))
    .addOption(new Option('--max-tx-rate <mbps>', 'rate limit, Mbit/s (0 = none)').argParser(intFlag('--max-tx-rate', 0, MAX_TX_RATE)))
    .addOption(new Option('--mtu <n>', 'VF netdev MTU, within what its driver takes (the kernel says: ip -d link)').argParser(intFlag('--mtu', 68, 65535)))
    .option('--force', 'change the VF even if it is allocated (under its owner)', false))
    .action(act(async (o, ref: string) => (await run()).vfConfig(o, ref)));
  common(vf.command('bind').description('bind a VF to vfio-pci (for DPDK) or back to its kernel driver')
    .argument('<vf>', "VF PCI address, PF#INDEX or the VF's netdev")
    .addOption(new Option('--driver <d>', 'vfio-pci, or kernel (the VF driver of its hw-profile)').argParser(choiceFlag('--driver', ['vfio-pci', 'kernel'] as const)).makeOptionMandatory())
    .option('--force', 'rebind even if the VF is allocated or its netdev is in a pod', false))
    .action(act(async (o, ref: string) => (await run()).vfBind(o, ref)));

  common(topCommand(program, 'gc')
    .option('--dry-run', 'say what would be released, change nothing', false))
    .action(act(async (o) => (await run()).gc(o)));

  const sim = topCommand(program, 'sim');
  // The root every other command reads as --sysfs-root (env VFPLANE_SYSFS_ROOT), which
  // `sim create` tells the operator to export: show and destroy find the NIC by it too.
  const simRoot = (what: string) => new Option('--root <dir>', what).env('VFPLANE_SYSFS_ROOT').argParser(pathFlag('--root')).default('/run/vfplane/sim');
  sim.command('create').description('build a simulated NIC (needs root for its netdevs)')
    .option('--profile <name>', 'hw-profile to impersonate (vfplane profile list)', 'sim')
    .addOption(new Option('--pfs <n>', 'PFs, 1–8').argParser(intFlag('--pfs', 1, 8)).default(1))
    .addOption(new Option('--vfs <n>', 'VFs created on each PF, 0 to what the profile allows (`vfplane profile show NAME`: limits.maxVfsPerPf, shared over the PFs up to maxVfsPerDevice)').argParser(intFlag('--vfs', 0, 65535, "0 up to the profile's limit (`vfplane profile show NAME`: limits.maxVfsPerPf)")).default(4))
    .addOption(new Option('--uplink-queues <n>', 'queues of each PF uplink veth, 1–16 (several let several data-plane workers receive)').argParser(intFlag('--uplink-queues', 1, 16)).default(1))
    .addOption(simRoot('where to build the tree (pass it to other commands as --sysfs-root)'))
    .option('--sysfs-root <dir>', 'the same as --root', pathFlag('--sysfs-root'))
    .option('--state-dir <dir>', 'accepted for symmetry; the simulator keeps its state inside its root', pathFlag('--state-dir'))
    .option('--prefix <p>', 'netdev name prefix: <prefix>f<pf>, <prefix>f<pf>v<vf>, <prefix>f<pf>r<vf>', 'vfsim')
    .option('--no-netdevs', 'build only the tree (no veths; no root needed)')
    .option('--json', 'print the manifest as JSON', false)
    .action(async (_o, cmd: Command) => (await import('./sim-run.js')).simCreate(cmd.opts() as never, cmd.getOptionValueSource('root') === 'cli'));
  sim.command('destroy').description('remove everything a simulated NIC made, and nothing else')
    .addOption(simRoot('the simulator\'s root'))
    .option('--sysfs-root <dir>', 'the same as --root', pathFlag('--sysfs-root'))
    .option('--state-dir <dir>', 'accepted for symmetry; the simulator keeps its state inside its root', pathFlag('--state-dir'))
    .option('--prefix <p>', 'the prefix it was created with: checked against its manifest (and, with no manifest at --root, what that prefix left on the host is listed)')
    .option('--json', 'print what was removed as JSON', false)
    .action(async (_o, cmd: Command) => (await import('./sim-run.js')).simDestroy(cmd.opts() as never, cmd.getOptionValueSource('root') === 'cli'));
  sim.command('show').description('print a simulated NIC\'s manifest')
    .addOption(simRoot('the simulator\'s root'))
    .option('--sysfs-root <dir>', 'the same as --root', pathFlag('--sysfs-root'))
    .option('--state-dir <dir>', 'accepted for symmetry; the simulator keeps its state inside its root', pathFlag('--state-dir'))
    .option('--prefix <p>', 'the prefix it was created with, checked against its manifest')
    .option('--json', 'print JSON', false)
    .action(async (_o, cmd: Command) => (await import('./sim-run.js')).simShow(cmd.opts() as never, cmd.getOptionValueSource('root') === 'cli'));
}

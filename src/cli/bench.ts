// `vfplane bench`: measure the data plane: the memory backend (engine only), or an I/O
// backend (afxdp, dpdk, afpacket) against the kernel's vxlan device on a veth topology.
import { Command, Option } from './commander.js';
import { topCommand } from './commands.js';
import { choiceFlag, choiceListFlag, ifnameFlag, intFlag, intListFlag, pathFlag, pciFlag, vniFlag } from './flags.js';

export const DEFAULT_SIZES = '64,128,256,512,1024,1500,imix';

export function registerBench(program: Command): void {
  const bench = topCommand(program, 'bench')
    .addOption(new Option('--backend <name>', 'packet I/O backend: memory, afxdp, dpdk or afpacket').argParser(choiceFlag('--backend', ['memory', 'afxdp', 'dpdk', 'afpacket'] as const)).default('memory'))
    .addOption(new Option('--sizes <list>', 'inner frame sizes in bytes, and/or imix').argParser(intListFlag('--sizes', 64, 9000, ['imix'])).default(DEFAULT_SIZES.split(',').map((s) => (s === 'imix' ? s : Number(s))), DEFAULT_SIZES))
    .addOption(new Option('--burst <n>', 'packets per burst, 1–256').argParser(intFlag('--burst', 1, 256)).default(32))
    .addOption(new Option('--engines <list>', 'engines to compare, comma-separated: native, ts').argParser(choiceListFlag('--engines', ['native', 'ts'] as const)).default(['native', 'ts'], 'native,ts'))
    .addOption(new Option('--ops <list>', 'operations, comma-separated: encap, decap').argParser(choiceListFlag('--ops', ['encap', 'decap'] as const)).default(['encap', 'decap'], 'encap,decap'))
    .addOption(new Option('--duration <ms>', 'milliseconds per trial, 20–10000').argParser(intFlag('--duration', 20, 10000)).default(300))
    .addOption(new Option('--trials <n>', 'trials per cell (the median is reported), 1–99').argParser(intFlag('--trials', 1, 99)).default(3))
    .addOption(new Option('--cpu <n>', 'pin native loops to this CPU').argParser(intFlag('--cpu', 0, 4095)))
    .addOption(new Option('--fdb-sizes <list>', 'FDB entry counts to measure lookups at').argParser(intListFlag('--fdb-sizes', 1, 16_000_000)).default([1000, 100_000, 1_000_000], '1000,100000,1000000'))
    .option('--no-fdb', 'skip the FDB lookup measurement')
    .option('--no-learn', 'decap without learning source MACs into the FDB (default: learn, as a VTEP does)')
    .addOption(new Option('--ipv6', 'IPv6 underlay (default IPv4)').default(false))
    .addOption(new Option('--vni <n>', 'VNI to encapsulate with').argParser(vniFlag()).default(100))
    .option('--json', 'print the results as JSON on stdout', false)
    .option('--chart <file>', 'I/O backends: write an SVG chart of Mpps against size here (default ./vfplane-bench-<backend>.svg)', pathFlag('--chart'))
    .option('--no-kernel', 'I/O backends: skip the kernel vxlan DUT')
    .option('--no-null', 'dpdk: skip the net_null comparison with dpdk-testpmd')
    .option('--only-null', 'dpdk: run only the net_null comparison with dpdk-testpmd (no veth topology)', false)
    .addOption(new Option('--gen <backend>', 'I/O backends: the generator\'s tx path, xdp-live, afxdp or afpacket (xdp-live: the kernel sends the frames itself, BPF_PROG_RUN live frames; a kernel that refuses them gets afxdp, said)').argParser(choiceFlag('--gen', ['xdp-live', 'afxdp', 'afpacket'] as const)).default('xdp-live'))
    .addOption(new Option('--pings <n>', 'I/O backends: pings for the latency (0: none)').argParser(intFlag('--pings', 0, 100000)).default(1000))
    .option('--pci <addr>', 'dpdk on a real NIC: a vfio-pci VF as the uplink, a net_null pod port as the source', pciFlag('--pci'))
    .option('--iface <name>', 'afxdp on a real NIC: that netdev as the uplink, a memory generator as the pod', ifnameFlag('--iface'))
    .action(async (o, cmd: Command) => (await import('../bench/run.js')).runBench(o, (k) => cmd.getOptionValueSource(k) === 'cli'));

  // Subcommands are matched before the default action; with positional options (here
  // and on the program) `bench alloc --json` gives --json to alloc, not to bench.
  bench.enablePositionalOptions();
  bench
    .command('alloc')
    .description('the VF allocation store under contention: N processes × M alloc/release cycles against one store')
    .addOption(new Option('--procs <n>', 'concurrent processes, 1–256').argParser(intFlag('--procs', 1, 256)).default(8))
    .addOption(new Option('--cycles <n>', 'alloc/release cycles per process, 1–100000').argParser(intFlag('--cycles', 1, 100_000)).default(250))
    .addOption(new Option('--vfs <n>', 'VFs in the (tree-only) simulated NIC, 1–1024').argParser(intFlag('--vfs', 1, 1024)).default(16))
    .option('--state-dir <dir>', 'parent of the bench\'s own throw-away store (never a real alloc.db); default: the temp dir', pathFlag('--state-dir'))
    .option('--no-writer-queue', 'writers wait in SQLite\'s busy handler only, not queued on the store\'s flock (for comparison)')
    .option('--json', 'print the results as JSON on stdout', false)
    .action(async (o) => {
      await (await import('../bench/alloc.js')).runAllocBench(o);
    });

  bench
    .command('dataplane')
    .description('one data-plane worker end to end on memory ports, pod → uplink (encap) and uplink → pod (decap), as the remote MACs spread and the FDB grows')
    .addOption(new Option('--ops <list>', 'directions, comma-separated: encap (pod → uplink), decap (uplink → pod)').argParser(choiceListFlag('--ops', ['encap', 'decap'] as const)).default(['encap', 'decap'], 'encap,decap'))
    .addOption(new Option('--dests <list>', 'distinct remote MACs, cycled: the pod\'s destinations (encap), the peer\'s senders (decap)').argParser(intListFlag('--dests', 1, 65536)).default([1, 32, 1000], '1,32,1000'))
    .addOption(new Option('--fdb-sizes <list>', 'static FDB entries (each at least the largest --dests)').argParser(intListFlag('--fdb-sizes', 1, 4_000_000)).default([1000, 1_000_000], '1000,1000000'))
    .addOption(new Option('--duration <ms>', 'milliseconds per trial, 20–10000').argParser(intFlag('--duration', 20, 10000)).default(300))
    .addOption(new Option('--trials <n>', 'trials per cell (the median is reported), 1–99').argParser(intFlag('--trials', 1, 99)).default(3))
    .addOption(new Option('--cpu <n>', 'the worker\'s CPU (default: the last)').argParser(intFlag('--cpu', 0, 4095)))
    .addOption(new Option('--vni <n>', 'the pod\'s VNI').argParser(vniFlag()).default(100))
    .option('--learn', 'decap learns the peer\'s senders, as on an overlay without a controller (the static entries are then other MACs); encap is unchanged', false)
    .addOption(new Option('--spread <how>', 'how frames spread over the remote MACs: cycle (each in turn) or zipf (MAC k in proportion to 1/k, a few taking most; every one at least once)').argParser(choiceFlag('--spread', ['cycle', 'zipf'] as const)).default('cycle'))
    .option('--json', 'print the results as JSON on stdout', false)
    .action(async (o) => {
      await (await import('../bench/run.js')).runDataplaneCli(o);
    });

  bench
    .command('cni')
    .description('CNI ADD and DEL latency (exec to exit) of vfplane-cni and the reference macvlan plugin, same IPAM, same run (root)')
    .addOption(new Option('--runs <n>', 'ADD+DEL runs per plugin, 1–100000').argParser(intFlag('--runs', 1, 100_000)).default(200))
    .addOption(new Option('--standalone-runs <n>', 'runs of vfplane-cni without the server (Node started per call), 0–100000').argParser(intFlag('--standalone-runs', 0, 100_000)).default(50))
    .option('--vxlan', 'also measure vfplane-cni with vxlan: {vni} against a running data plane', false)
    .option('--pool', 'also measure vfplane-cni allocating from a pool (no deviceID)', false)
    .addOption(new Option('--vfs <n>', 'VFs on the simulated NIC, 2–256 (an X710 up to 64, an E810 past that)').argParser(intFlag('--vfs', 2, 256)).default(2))
    .option('--json', 'print the results as JSON on stdout', false)
    .action(async (o) => {
      await (await import('../bench/cni.js')).runCniBench(o);
    });
}

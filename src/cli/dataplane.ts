// `vfplane dataplane`: run the data-plane daemon, and talk to a running one over its
// control socket (status, stats, attachments, peers, FDB). Work lives in dataplane-run.ts.
import { Command, Option } from './commander.js';
import { topCommand } from './commands.js';
import { UsageError } from './errors.js';

/** As the daemon's FDB_BATCH_MAX (src/dataplane/daemon.ts), for the help text. */
const FDB_FILE_MAX = 10_000;
import { allowRepeats, ifnameFlag, intFlag, ipFlag, macFlag, netnsFlag, nodeFlag, pathFlag, vfFlag, vniFlag } from './flags.js';

/** explain --from: a representor, or "uplink". */
const fromFlag = (value: string): string => {
  if (value === 'uplink') return value;
  try {
    return ifnameFlag('--from')(value);
  } catch (err) {
    throw new UsageError(`${(err as Error).message}, or "uplink"`);
  }
};

/** drops --reason: names, checked by the data plane (it knows its reasons). */
const reasonsFlag = allowRepeats((value: string, prev?: string[]): string[] => {
  const l = value.split(',').map((x) => x.trim()).filter(Boolean);
  if (!l.length || l.some((x) => !/^[a-z_]{2,40}$/.test(x))) throw new UsageError(`--reason ${JSON.stringify(value)}: expected drop reason names, comma-separated or repeated, such as spoofed,vni_unknown`);
  return [...(prev ?? []), ...l];
});

const common = (c: Command) =>
  c
    .option('--socket <path>', 'the control socket (env VFPLANE_DATAPLANE_SOCKET; default <state-dir>/dataplane.sock)', pathFlag('--socket'))
    .option('--state-dir <dir>', 'the state directory (env VFPLANE_STATE_DIR; default /var/lib/vfplane)', pathFlag('--state-dir'))
    .option('--json', 'print JSON on stdout', false);

const run = async () => import('./dataplane-run.js');

export function registerDataplane(program: Command): void {
  const dp = topCommand(program, 'dataplane');
  dp.enablePositionalOptions();

  dp.command('run')
    .description('run the data-plane daemon in the foreground until SIGTERM/SIGINT (then drain and stop)')
    .requiredOption('--config <file>', 'the data-plane config (YAML or JSON; see docs/dataplane.md)', pathFlag('--config'))
    .option('--metrics <addr>', 'serve Prometheus metrics on HOST:PORT, or :PORT for every address (overrides the config)')
    .option('--socket <path>', 'the control socket (overrides the config; without either, env VFPLANE_DATAPLANE_SOCKET, else <state-dir>/dataplane.sock)', pathFlag('--socket'))
    .option('--state-dir <dir>', 'the state directory (overrides the config; without either, env VFPLANE_STATE_DIR, else /var/lib/vfplane)', pathFlag('--state-dir'))
    .option('--json', 'print one JSON line when ready, and one when stopped', false)
    .action(async (o) => (await run()).dpRun(o));

  common(dp.command('status').description('what the daemon runs: uplink, VTEP, peers, attachments, epoch')).action(async (o) => (await run()).dpStatus(o));
  common(dp.command('stats').description('counters: per port, per VNI, drops by reason, per worker'))
    .addOption(new Option('--interval <ms>', 'sample twice this far apart (100–60000) and print rates').argParser(intFlag('--interval', 100, 60000)))
    .action(async (o) => (await run()).dpStats(o));

  common(dp.command('attach').description('attach a VF representor to a VNI (what vfplane-cni does on ADD with vxlan)'))
    .requiredOption('--representor <ifname>', 'the representor netdev of the VF', ifnameFlag('--representor'))
    .requiredOption('--vni <n>', 'the VNI', vniFlag())
    .requiredOption('--mac <mac>', "the pod interface's MAC", macFlag('--mac'))
    .option('--pci <addr>', 'the VF the representor stands for, by address or as PF#N (found in sysfs when left out), for messages and detach --pci', vfFlag('--pci'))
    .option('--netns <path>', 'the network namespace the representor is in (a file such as /run/netns/NAME); default: the data plane\'s own', netnsFlag('--netns'))
    .option('--sysfs-root <dir>', 'sysfs to check the representor against: /sys, or a tree made by `vfplane sim create` (env VFPLANE_SYSFS_ROOT)', pathFlag('--sysfs-root'))
    .action(async (o) => (await run()).dpAttach(o));
  common(dp.command('detach').description('detach a representor (or the representor of a VF)'))
    .option('--representor <ifname>', 'the representor netdev', ifnameFlag('--representor'))
    .option('--pci <addr>', 'the VF, by address or as PF#N', vfFlag('--pci'))
    .option('--sysfs-root <dir>', 'sysfs to find a PF#N --pci in: /sys, or a tree made by `vfplane sim create` (env VFPLANE_SYSFS_ROOT)', pathFlag('--sysfs-root'))
    .action(async (o) => (await run()).dpDetach(o));

  const peer = dp.command('peer').description('remote VTEPs');
  common(peer.command('add').description('add (or update) a peer VTEP').argument('<vtep>', 'its address', ipFlag('VTEP')))
    .option('--mac <mac>', "its MAC on the underlay (default: resolved by ARP on an IPv4 underlay, neighbour discovery on IPv6)", macFlag('--mac'))
    .action(async (vtep, o) => (await run()).dpOp('peer-add', { vtep, ...(o.mac ? { mac: o.mac } : {}) }, o));
  common(peer.command('del').description('remove a peer VTEP').argument('<vtep>', 'its address', ipFlag('VTEP')))
    .action(async (vtep, o) => (await run()).dpOp('peer-del', { vtep }, o));

  common(dp.command('reload').description('apply the config file again without stopping traffic (peers, vnis, fdb, learn, ageSeconds, antiSpoof, icmpTooBig, tenants); also on SIGHUP'))
    .action(async (o) => (await run()).dpReload(o));
  common(dp.command('explain').description('where a frame a pod sends on VNI to MAC goes, and why: local pod, FDB entry (static or learned) and peer, or flood'))
    .requiredOption('--vni <n>', 'the VNI', vniFlag())
    .requiredOption('--mac <mac>', 'the destination MAC', macFlag('--mac'))
    .option('--from <representor>', 'the sending pod\'s representor (hairpin and anti-spoofing checks), or "uplink" for a frame a peer encapsulated', fromFlag)
    .option('--src <mac>', 'the source MAC (with --from a representor: the anti-spoofing check; with --from uplink: the inner source, whether it is delivered and learned)', macFlag('--src'))
    .option('--vtep <ip>', 'with --from uplink: the VTEP that sent it (the outer source address)', ipFlag('--vtep'))
    .action(async (o) => (await run()).dpExplain(o));

  common(dp.command('drops').description('the frames the workers drop, as they drop them: when, on which port, why, and what each frame was (a capture, off until asked for)'))
    .option('--count <n>', 'stop after this many frames, 1–255 (each worker records at most this many)', intFlag('--count', 1, 255), 20)
    .option('--wait <ms>', 'stop after this long (100–600000), however many came', intFlag('--wait', 100, 600000), 2000)
    .option('--reason <list>', 'only these drop reasons, comma-separated or repeated (the names `vfplane dataplane stats` counts them by: spoofed, vni_unknown, …)', reasonsFlag)
    .action(async (o) => (await run()).dpDrops(o));

  dp.command('unclaim')
    .description('give back what a data plane that was killed still holds (its netdevs\' forwarding, IPv6, GRO and promiscuous mode; a DPDK run\'s hugepages, hugetlbfs mount and EAL runtime dir), when it is not to be started again (a restart gives them back too)')
    .option('--node <name>', 'only this node\'s data plane (default: every one with a journal in the state directory)', nodeFlag('--node'))
    .option('--state-dir <dir>', 'the state directory (env VFPLANE_STATE_DIR; default /var/lib/vfplane)', pathFlag('--state-dir'))
    .option('--json', 'print JSON on stdout', false)
    .action(async (o) => (await run()).dpUnclaim(o));

  const fdb = dp.command('fdb').description('the forwarding database: (VNI, MAC) → VTEP');
  common(fdb.command('list').description('static, learned and local entries')).action(async (o) => (await run()).dpFdbList(o));
  // One entry by its flags, or many from a file in one change (one commit, all or none).
  const oneOrFile = (o: Record<string, unknown>, flags: string[]) => {
    const given = flags.filter((f) => o[f] !== undefined);
    if (o.file !== undefined ? given.length > 0 : given.length < flags.length) {
      throw new UsageError(`give ${flags.map((f) => `--${f}`).join(', ').replace(/, ([^,]*)$/, ' and $1')}, or --file (one or the other)`);
    }
  };
  common(fdb.command('add').description('add a static entry, or many from a file in one change'))
    .option('--vni <n>', 'the VNI', vniFlag())
    .option('--mac <mac>', 'the inner MAC', macFlag('--mac'))
    .option('--vtep <ip>', 'the VTEP (must be a peer)', ipFlag('--vtep'))
    .option('--file <file>', `a JSON or YAML list of {vni, mac, vtep} (up to ${FDB_FILE_MAX} a request): all added in one change, or none`, pathFlag('--file'))
    .action(async (o) => {
      oneOrFile(o, ['vni', 'mac', 'vtep']);
      return o.file !== undefined ? (await run()).dpFdbFile('fdb-add', o.file, o) : (await run()).dpOp('fdb-add', { vni: o.vni, mac: o.mac, vtep: o.vtep }, o);
    });
  common(fdb.command('del').description('remove a static entry, or many from a file in one change'))
    .option('--vni <n>', 'the VNI', vniFlag())
    .option('--mac <mac>', 'the inner MAC', macFlag('--mac'))
    .option('--file <file>', `a JSON or YAML list of {vni, mac} (up to ${FDB_FILE_MAX} a request): all deleted in one change, or none`, pathFlag('--file'))
    .action(async (o) => {
      oneOrFile(o, ['vni', 'mac']);
      return o.file !== undefined ? (await run()).dpFdbFile('fdb-del', o.file, o) : (await run()).dpOp('fdb-del', { vni: o.vni, mac: o.mac }, o);
    });

  const flood = dp.command('flood').description('head-end replication: which VTEPs get a VNI\'s broadcast, multicast and unknown unicast');
  common(flood.command('set').description('set the VNI\'s flood list (each VTEP must be a peer)'))
    .requiredOption('--vni <n>', 'the VNI', vniFlag())
    .argument('[vteps...]', 'the VTEPs', (v: string, prev: string[] = []) => [...prev, ipFlag('VTEP')(v)])
    .option('--none', 'flood to no remote VTEP (local pods only)', false)
    .option('--all-peers', 'drop the VNI\'s own list: every peer gets a copy (as for a VNI with no list)')
    .action(async (vteps: string[] | undefined, o) => {
      const n = (vteps?.length ? 1 : 0) + (o.none ? 1 : 0) + (o.allPeers ? 1 : 0);
      if (n !== 1) {
        const { UsageError } = await import('./errors.js');
        throw new UsageError('give the flood list as VTEP addresses, or --none, or --all-peers (one of them)');
      }
      return (await run()).dpOp('flood-set', { vni: o.vni, vteps: o.allPeers ? null : o.none ? [] : vteps }, o);
    });
}

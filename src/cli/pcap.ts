// `vfplane pcap encap|decap`: run a pcap file through the VXLAN engine. Flags are
// declared and validated here; the work is in pcap-run.ts, loaded when a command runs.
import { Command, Option } from './commander.js';
import { topCommand } from './commands.js';
import {
  choiceFlag, intFlag, ipFlag, ipListFlag, macFlag, pathFlag, portFlag, portRangeFlag, tosFlag, vniFlag, vniListFlag,
} from './flags.js';

const engineOpt = () =>
  new Option('--engine <name>', 'native (the C engine) or ts (the TypeScript reference model)')
    .argParser(choiceFlag('--engine', ['native', 'ts'] as const))
    .default('native');

export function registerPcap(program: Command): void {
  const pcap = topCommand(program, 'pcap');

  pcap
    .command('encap')
    .description('wrap every frame of IN in VXLAN and write the result to OUT')
    .requiredOption('--in <file>', 'input pcap file, a FIFO, or - for stdin', pathFlag('--in'))
    .requiredOption('--out <file>', 'output pcap file (written whole or not at all), a FIFO, or - for stdout (the summary then goes to stderr)', pathFlag('--out'))
    .addOption(new Option('--vni <n>', 'VXLAN network identifier, 0–16777215').argParser(vniFlag()).makeOptionMandatory())
    .addOption(new Option('--local <ip>', 'outer source address (IPv4 or IPv6)').argParser(ipFlag('--local')).makeOptionMandatory())
    .addOption(new Option('--remote <ip>', 'outer destination address, same family').argParser(ipFlag('--remote')).makeOptionMandatory())
    .addOption(new Option('--src-mac <mac>', 'outer source MAC').argParser(macFlag('--src-mac')).default('02:00:00:00:00:01'))
    .addOption(new Option('--dst-mac <mac>', 'outer destination MAC (the underlay next hop); default 02:00:00:00:00:02, or for a multicast --remote its group MAC (01:00:5e:…, 33:33:…)').argParser(macFlag('--dst-mac')))
    .addOption(new Option('--dst-port <port>', 'UDP destination port (8472 for flannel and kernel-default peers)').argParser(portFlag('--dst-port')).default(4789))
    .addOption(new Option('--src-port-range <min-max>', 'UDP source port range for the flow hash').argParser(portRangeFlag('--src-port-range')).default([49152, 65535], '49152-65535'))
    .addOption(new Option('--ttl <n>', 'outer TTL / hop limit, 1–255').argParser(intFlag('--ttl', 1, 255)).default(64))
    .addOption(new Option('--tos <n|inherit>', 'outer TOS / traffic class, 0–255 (its DSCP; the ECN bits are the inner packet\'s, RFC 6040), or inherit from the inner IP header').argParser(tosFlag()).default(0))
    .addOption(new Option('--df <mode>', 'IPv4 DF bit: set, unset, or inherit (from the inner IPv4 header)').argParser(choiceFlag('--df', ['set', 'unset', 'inherit'] as const)).default('unset'))
    .option('--udp-csum', 'compute the UDP checksum over IPv4 (IPv6 always has one)', false)
    .addOption(new Option('--vlan <id>', 'outer 802.1Q VLAN ID, 0–4094').argParser(intFlag('--vlan', 0, 4094)))
    .addOption(new Option('--vlan-pcp <n>', 'outer 802.1Q priority, 0–7 (default 0); needs --vlan').argParser(intFlag('--vlan-pcp', 0, 7)))
    .addOption(new Option('--mtu <n>', 'drop frames whose outer IP packet exceeds this underlay MTU, 68–65535').argParser(intFlag('--mtu', 68, 65535)))
    .addOption(engineOpt())
    .option('--json', 'print the summary as JSON on stdout (on stderr with --out -)', false)
    .action(async (o) => (await import('./pcap-run.js')).runEncap(o));

  pcap
    .command('decap')
    .description('strip VXLAN from every frame of IN and write the inner frames to OUT')
    .requiredOption('--in <file>', 'input pcap file, a FIFO, or - for stdin', pathFlag('--in'))
    .requiredOption('--out <file>', 'output pcap file (written whole or not at all), a FIFO, or - for stdout (the summary then goes to stderr)', pathFlag('--out'))
    .addOption(new Option('--vni <n...>', 'accept only these VNIs (repeat or comma-separate); default: every VNI').argParser(vniListFlag()))
    .addOption(new Option('--local <ip...>', 'accept only these outer destination addresses (repeat or comma-separate)').argParser(ipListFlag('--local')))
    .addOption(new Option('--dst-port <port>', 'UDP destination port of the tunnel').argParser(portFlag('--dst-port')).default(4789))
    .option('--verify-udp-csum', 'drop frames whose non-zero UDP checksum is wrong (and zero checksums over IPv6)', false)
    .option('--drop-inner-vlan', 'drop inner frames that carry a VLAN tag (RFC 7348 §6.1)', false)
    .addOption(engineOpt())
    .option('--json', 'print the summary as JSON on stdout (on stderr with --out -)', false)
    .action(async (o) => (await import('./pcap-run.js')).runDecap(o));
}

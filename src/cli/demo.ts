// `vfplane demo`: the whole product on one machine — two simulated nodes with their own
// data planes, pods given VFs by vfplane-cni, traffic across the VXLAN overlay, a node
// on the kernel's vxlan device — then a report, and everything torn down.
import { Command, Option } from './commander.js';
import { topCommand } from './commands.js';
import { choiceFlag, intFlag } from './flags.js';

export function registerDemo(program: Command): void {
  topCommand(program, 'demo')
    .addOption(new Option('--backend <name>', 'the data planes\' I/O backend: afpacket or afxdp').argParser(choiceFlag('--backend', ['afpacket', 'afxdp'] as const)).default('afpacket'))
    .addOption(new Option('--seconds <n>', 'seconds of TCP and of small-packet traffic, 1–600').argParser(intFlag('--seconds', 1, 600)).default(3))
    .addOption(new Option('--underlay <family>', 'the underlay\'s IP family, ipv4 or ipv6: ipv6 has the VTEPs find each other by neighbour discovery').argParser(choiceFlag('--underlay', ['ipv4', 'ipv6'] as const)).default('ipv4'))
    .option('--no-kernel-node', 'leave out the third node that uses the kernel vxlan device')
    .option('--keep', 'leave the topology up after the report (tear down with Ctrl-C)', false)
    .option('--json', 'print the report as JSON on stdout', false)
    .action(async (o) => (await import('../demo/demo.js')).runDemo(o));
}

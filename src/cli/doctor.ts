// `vfplane doctor`: what this build and this host can do (the work is in doctor-run.ts).
import { pathFlag } from './flags.js';
import { Command } from './commander.js';
import { topCommand } from './commands.js';

export function registerDoctor(program: Command): void {
  topCommand(program, 'doctor')
    .option('--sysfs-root <dir>', 'sysfs to look for NICs in (env VFPLANE_SYSFS_ROOT)', pathFlag('--sysfs-root'))
    .option('--state-dir <dir>', 'the state directory: the data plane\'s socket and what stopped data planes still hold (env VFPLANE_STATE_DIR; default /var/lib/vfplane)', pathFlag('--state-dir'))
    .option('--socket <path>', 'where `vfplane cni serve` listens (default: the socket the installed plugin\'s vfplane-cni.shim in --cni-dir names, else /run/vfplane/cni.sock)', pathFlag('--socket'))
    .option('--cni-dir <dir>', 'the runtime\'s CNI binary directory, where `vfplane cni install --dir` put the plugin', pathFlag('--cni-dir'), '/opt/cni/bin')
    .option('--json', 'print the checks as JSON', false)
    .action(async (o) => (await import('./doctor-run.js')).runDoctor(o));
}

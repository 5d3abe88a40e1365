// `vfplane profile list|show`: the hw-profiles, what each NIC family can do and where
// that is documented. Flags live here; the work (and zod) in profile-run.ts, loaded on use.
import { pathFlag } from './flags.js';
import { Command } from './commander.js';
import { topCommand } from './commands.js';

const DIR_HELP = 'read the profiles from DIR alone (default: the package\'s hw-profiles/ plus $VFPLANE_PROFILES_DIR)';

export function registerProfile(program: Command): void {
  const profile = topCommand(program, 'profile');

  profile
    .command('list')
    .description('list every hw-profile with its drivers, limits, line rates and tier')
    .option('--profiles-dir <dir>', DIR_HELP, pathFlag('--profiles-dir'))
    .option('--sysfs-root <dir>', 'count this node\'s PFs of each profile under this sysfs root (env VFPLANE_SYSFS_ROOT)', pathFlag('--sysfs-root'))
    .option('--state-dir <dir>', 'accepted for symmetry with the other commands; profiles keep no state', pathFlag('--state-dir'))
    .option('--json', 'print the profiles as JSON on stdout', false)
    .action(async (o) => (await import('./profile-run.js')).runList(o));

  profile
    .command('show')
    .description('print every fact of one hw-profile with the source that states it')
    .argument('<name>', 'profile name, e.g. x710 (see `vfplane profile list`)')
    .option('--profiles-dir <dir>', DIR_HELP, pathFlag('--profiles-dir'))
    .option('--sysfs-root <dir>', 'list this node\'s PFs of the profile under this sysfs root (env VFPLANE_SYSFS_ROOT)', pathFlag('--sysfs-root'))
    .option('--state-dir <dir>', 'accepted for symmetry with the other commands; profiles keep no state', pathFlag('--state-dir'))
    .option('--json', 'print the profile as JSON on stdout', false)
    .action(async (name: string, o) => (await import('./profile-run.js')).runShow(name, o));
}

// `vfplane cni install`: put vfplane-cni where a runtime looks for plugins (CNI_PATH,
// usually /opt/cni/bin) as a small wrapper that runs this installation with this Node.
import { Command } from 'commander';
import { reportError } from './output.js';

export function registerCni(program: Command): void {
  const cni = program.command('cni').description('the vfplane-cni plugin: install it where the container runtime finds plugins');
  cni
    .command('install')
    .description('write DIR/vfplane-cni, a wrapper that runs this installation\'s bin/vfplane-cni.js with this Node')
    .option('--dir <dir>', 'the runtime\'s CNI binary directory', '/opt/cni/bin')
    .option('--json', 'print what was written as JSON', false)
    .action(async (o: { dir: string; json?: boolean }) => {
      try {
        const fs = await import('node:fs');
        const path = await import('node:path');
        const { fileURLToPath } = await import('node:url');
        const { printJson } = await import('./output.js');
        const plugin = fileURLToPath(new URL('../../bin/vfplane-cni.js', import.meta.url));
        const dir = path.resolve(o.dir);
        fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
        const file = path.join(dir, 'vfplane-cni');
        const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
        const body = `#!/bin/sh\n# Written by \`vfplane cni install\`: runs vfplane-cni from ${path.dirname(path.dirname(plugin))}.\nexec ${quote(process.execPath)} ${quote(plugin)} "$@"\n`;
        // Write beside and rename: a runtime exec'ing the plugin never sees half a file.
        const tmp = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, body, { mode: 0o755 });
        fs.renameSync(tmp, file);
        if (o.json) printJson({ installed: file, runs: plugin, node: process.execPath });
        else console.log(`installed ${file} (runs ${plugin} with ${process.execPath})`);
      } catch (err) {
        process.exitCode = reportError(err, !!o.json);
      }
    });
}

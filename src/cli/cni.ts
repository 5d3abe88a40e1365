// `vfplane cni install`: put vfplane-cni where a runtime looks for plugins (CNI_PATH,
// usually /opt/cni/bin) as a small wrapper that runs this installation with this Node.
import { Command } from 'commander';

export function registerCni(program: Command): void {
  const cni = program.command('cni').description('the vfplane-cni plugin: install it where the container runtime finds plugins');
  cni
    .command('install')
    .description('write DIR/vfplane-cni, a wrapper that runs this installation\'s bin/vfplane-cni.js with this Node')
    .option('--dir <dir>', 'the runtime\'s CNI binary directory', '/opt/cni/bin')
    .option('--socket <path>', 'where `vfplane cni serve` listens (the shim falls back to running the plugin itself)', '/run/vfplane/cni.sock')
    .option('--json', 'print what was written as JSON', false)
    .action(async (o: { dir: string; socket: string; json?: boolean }) => {
      const fs = await import('node:fs');
      const path = await import('node:path');
      const { fileURLToPath } = await import('node:url');
      const { printJson } = await import('./output.js');
      const plugin = fileURLToPath(new URL('../../bin/vfplane-cni.js', import.meta.url));
      const shim = fileURLToPath(new URL('../../build/Release/vfplane-cni-shim', import.meta.url));
      const dir = path.resolve(o.dir);
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      const file = path.join(dir, 'vfplane-cni');
      const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
      // With the shim: forward to `vfplane cni serve` when it runs, else run the plugin.
      const viaShim = fs.existsSync(shim);
      const run = viaShim
        ? `exec ${quote(shim)} ${quote(path.resolve(o.socket))} ${quote(process.execPath)} ${quote(plugin)}`
        : `exec ${quote(process.execPath)} ${quote(plugin)} "$@"`;
      const body = `#!/bin/sh\n# Written by \`vfplane cni install\`: runs vfplane-cni from ${path.dirname(path.dirname(plugin))}.\n${run}\n`;
      // Write beside and rename: a runtime exec'ing the plugin never sees half a file.
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, body, { mode: 0o755 });
      fs.renameSync(tmp, file);
      const via = viaShim ? { shim, socket: path.resolve(o.socket) } : {};
      if (o.json) printJson({ installed: file, runs: plugin, node: process.execPath, ...via });
      else console.log(`installed ${file} (runs ${plugin} with ${process.execPath}${'shim' in via ? `, through ${via.socket} when \`vfplane cni serve\` runs` : ''})`);
    });

  cni
    .command('serve')
    .description('keep vfplane-cni warm: answer the shim\'s calls on a Unix socket (mode 0600) until SIGTERM')
    .option('--socket <path>', 'where to listen', '/run/vfplane/cni.sock')
    .action(async (o: { socket: string }) => {
      const { serveCni } = await import('../cni/server.js');
      const srv = await serveCni(o.socket);
      process.stderr.write(`vfplane cni serve: listening on ${srv.socket}\n`);
      await new Promise<void>((res) => {
        for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => res());
      });
      await srv.close();
    });
}

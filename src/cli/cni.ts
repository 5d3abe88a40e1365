// `vfplane cni install`: put vfplane-cni where a runtime looks for plugins (CNI_PATH,
// usually /opt/cni/bin): the C shim, with a file naming the server socket, this Node and
// this installation's plugin (or, without a built shim, a shell wrapper).
import { pathFlag } from './flags.js';
import { Command } from './commander.js';
import { topCommand } from './commands.js';
import { makeDirs } from '../util/fs.js';

export function registerCni(program: Command): void {
  const cni = topCommand(program, 'cni');
  cni
    .command('install')
    .description('write DIR/vfplane-cni (the C shim, plus DIR/vfplane-cni.shim naming the server socket, this Node and this installation\'s plugin)')
    .option('--dir <dir>', 'the runtime\'s CNI binary directory', pathFlag('--dir'), '/opt/cni/bin')
    .option('--socket <path>', 'where `vfplane cni serve` listens (the shim falls back to running the plugin itself)', pathFlag('--socket'), '/run/vfplane/cni.sock')
    .option('--json', 'print what was written as JSON', false)
    .action(async (o: { dir: string; socket: string; json?: boolean }) => {
      const fs = await import('node:fs');
      const path = await import('node:path');
      const { fileURLToPath } = await import('node:url');
      const { printJson } = await import('./output.js');
      const plugin = fileURLToPath(new URL('../../bin/vfplane-cni.js', import.meta.url));
      const shim = fileURLToPath(new URL('../../build/Release/vfplane-cni-shim', import.meta.url));
      const dir = path.resolve(o.dir);
      // A socket path the server could not listen on (too long for a Unix socket, or
      // naming a file) would fail every call the runtime makes: refused before anything
      // is written.
      const { refuseNonSocket } = await import('../dataplane/control.js');
      const { CNI_SERVE_SOCKET } = await import('../cni/server.js');
      refuseNonSocket(path.resolve(o.socket), CNI_SERVE_SOCKET);
      const { RuntimeError } = await import('./errors.js');
      let at = dir; // DIR, or the nearest path above it that exists: it must be a directory
      while (!fs.existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
      if (!fs.statSync(at).isDirectory()) {
        throw new RuntimeError(`--dir ${o.dir}${at === dir ? '' : `: ${at}`} is not a directory; give the runtime's CNI binary directory (usually /opt/cni/bin)`);
      }
      try {
        makeDirs(dir, 0o755);
      } catch (err) {
        throw new RuntimeError(`--dir ${o.dir}: cannot create the directory (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check the path above it, or give another --dir`);
      }
      const file = path.join(dir, 'vfplane-cni');
      // With the shim: a copy of it, which reads its paths from vfplane-cni.shim beside it
      // and forwards to `vfplane cni serve` when it runs, else runs the plugin. A runtime
      // execs it directly (no shell in between: ~1.5 ms less per call). Without the shim
      // (not built): a shell wrapper that runs the Node plugin.
      const viaShim = fs.existsSync(shim);
      // Each file is written beside and renamed: a runtime exec'ing the plugin never sees
      // half a file. The paths go first, so the new binary never finds old ones missing.
      const put = (dest: string, write: (tmp: string) => void) => {
        const tmp = `${dest}.${process.pid}.tmp`;
        write(tmp);
        fs.renameSync(tmp, dest);
      };
      if (viaShim) {
        const paths = [['socket', path.resolve(o.socket)], ['node', process.execPath], ['plugin', plugin]];
        const { invalid } = await import('../util/errors.js');
        for (const [k, v] of paths) if (v!.includes('\n')) throw invalid(`the ${k} path ${JSON.stringify(v)} contains a newline; the .shim file holds one path per line: use a path without one`);
        put(`${file}.shim`, (tmp) => fs.writeFileSync(tmp, paths.map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o644 }));
        put(file, (tmp) => {
          fs.copyFileSync(shim, tmp);
          fs.chmodSync(tmp, 0o755);
        });
      } else {
        const { shellArg } = await import('./output.js');
        const body = `#!/bin/sh\n# Written by \`vfplane cni install\`: runs vfplane-cni from ${path.dirname(path.dirname(plugin))}.\nexec ${shellArg(process.execPath)} ${shellArg(plugin)} "$@"\n`;
        put(file, (tmp) => fs.writeFileSync(tmp, body, { mode: 0o755 }));
        fs.rmSync(`${file}.shim`, { force: true });
      }
      // Said also under --json (on stderr): every pod then pays a Node start, and a
      // `cni serve` that runs is never asked.
      if (!viaShim) process.stderr.write(`warning: the compiled shim ${shim} is missing (the native build did not finish, or is under way): installed a shell wrapper that starts Node for every call (~10× slower per pod), and \`vfplane cni serve\` will not be used; build it (\`npm run build\`, or ./scripts/setup) and run \`vfplane cni install\` again\n`);
      const via = viaShim ? { shim, socket: path.resolve(o.socket) } : {};
      if (o.json) printJson({ installed: file, runs: plugin, node: process.execPath, ...via });
      else console.log(`installed ${file} (runs ${plugin} with ${process.execPath}${'shim' in via ? `, through ${via.socket} when \`vfplane cni serve\` runs` : ''})`);
    });

  cni
    .command('serve')
    .description('keep vfplane-cni warm: answer the shim\'s calls on a Unix socket (mode 0600) until SIGTERM')
    .option('--socket <path>', 'where to listen', pathFlag('--socket'), '/run/vfplane/cni.sock')
    .action(async (o: { socket: string }) => {
      // Signals are handled before the server starts: one that arrives meanwhile closes
      // it once it listens, rather than killing the process with its socket file left.
      const stopped = new Promise<void>((res) => {
        // (SIGHUP too: a closed terminal killed it by default, its socket file left.)
        for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(sig, () => res());
      });
      const { serveCni } = await import('../cni/server.js');
      const { resolve } = await import('node:path');
      const srv = await serveCni(resolve(o.socket));
      process.stderr.write(`vfplane cni serve: listening on ${srv.socket}\n`);
      await stopped;
      await srv.close();
    });
}

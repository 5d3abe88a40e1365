// A child Node process running an ES module script, for tests about what a process
// leaves behind when it is killed: started, waited for until it prints its first line
// (it is set up), then SIGKILLed.
import { spawn } from 'node:child_process';

export interface ModuleChild {
  /** The first line the script printed. */
  line: string;
  /** SIGKILLs it and waits until it is gone. */
  kill(): Promise<void>;
}

/** Runs `script` (ES module source) in a child Node; resolves with its first stdout line,
 *  rejects (with its stderr) if it exits first. The caller kills it, also on failure. */
export async function moduleChild(script: string): Promise<ModuleChild> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const closed = new Promise<void>((res) => child.on('close', () => res()));
  const kill = async () => {
    child.kill('SIGKILL');
    await closed;
  };
  let out = '', err = '';
  child.stderr.on('data', (d) => { err += d; });
  try {
    const line = await new Promise<string>((res, rej) => {
      child.stdout.on('data', (d) => {
        out += d;
        const nl = out.indexOf('\n');
        if (nl >= 0) res(out.slice(0, nl));
      });
      child.on('close', (code) => rej(new Error(`child exited ${code}: ${err}`)));
    });
    return { line, kill };
  } catch (e) {
    await kill();
    throw e;
  }
}

// Line-protocol children of the I/O benchmark (vfp-pktgen gen/sink, the DPDK DUT child):
// each prints one JSON line when ready and answers "mark" with a JSON snapshot. The
// caller times the window between two marks, so process start-up never enters a rate.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export class LineChild {
  private readonly lines: string[] = [];
  private waiters: ((l: string | null) => void)[] = [];
  private stderr = '';
  private exited: number | null = null;
  readonly proc: ChildProcess;

  constructor(readonly what: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv) {
    this.proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      const w = this.waiters.shift();
      if (w) w(l);
      else this.lines.push(l);
    });
    this.proc.stderr!.on('data', (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(-4000); });
    this.proc.on('exit', (code) => {
      this.exited = code ?? -1;
      for (const w of this.waiters.splice(0)) w(null);
    });
    this.proc.stdin!.on('error', () => { /* the child is gone; reported by next() */ });
  }

  /** The next JSON line, or an error naming the child and its stderr. */
  async next<T = Record<string, unknown>>(timeoutMs = 20000): Promise<T> {
    const l = this.lines.shift() ?? (this.exited !== null ? null : await new Promise<string | null>((res) => {
      const t = setTimeout(() => res(null), timeoutMs);
      this.waiters.push((x) => { clearTimeout(t); res(x); });
    }));
    if (l === null) {
      throw new Error(`${this.what} ${this.exited !== null ? `exited (${this.exited})` : 'did not answer'}: ${this.stderr.trim() || 'no message'}`);
    }
    try {
      return JSON.parse(l) as T;
    } catch {
      throw new Error(`${this.what} printed "${l}" where JSON was expected; stderr: ${this.stderr.trim()}`);
    }
  }

  async mark<T = Record<string, number>>(): Promise<T> {
    this.proc.stdin!.write('mark\n');
    return this.next<T>();
  }

  get errText(): string {
    return this.stderr.trim();
  }

  /** Asks the child to quit, then kills it if it does not within timeoutMs. */
  async close(timeoutMs = 10000): Promise<void> {
    if (this.exited !== null) return;
    const done = new Promise<void>((res) => this.proc.once('exit', () => res()));
    this.proc.stdin!.end('quit\n');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    await done;
    clearTimeout(t);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// vfplane-cni's entry: read stdin, check the CNI_* environment, answer VERSION at once,
// otherwise validate the config and run the command from plugin.ts. stdout carries only
// the result or the error object; exit 0 on success, 1 on failure. Start-up is measured
// against the reference plugins, so zod (conf.js) and the store (plugin.js) load only
// after VERSION has been answered.
import { Phases } from '../util/phases.js';
import { replyTimeoutMs } from '../dataplane/reply-timeout.js';
import type { NetConf } from './conf.js';
import type { Logger } from './log.js';
import type { CniResult } from './result.js';
import {
  CniError,
  ERR,
  NEWEST_VERSION,
  SUPPORTED_VERSIONS,
  errorObject,
  isSupportedVersion,
  parseEnv,
  toCniError,
  versionAtLeast,
  type CniEnv,
} from './spec.js';

/** What every command function in plugin.ts receives. */
export interface CniContext {
  env: CniEnv;
  conf: NetConf;
  /** The decoded stdin object, unchanged: what IPAM delegation passes on. */
  raw: Record<string, unknown>;
  /** The stdin text as received. */
  stdin: string;
  log: Logger;
  /** Where the time of this call went; logged at debug when the call ends. */
  phases: Phases;
  /** Where delegated plugins' stderr goes: this call's stderr (the runtime's, also when
   *  `vfplane cni serve` runs the call on the shim's behalf). */
  stderr: (chunk: Buffer) => void;
}

export interface PluginModule {
  cmdAdd(ctx: CniContext): Promise<CniResult>;
  cmdDel(ctx: CniContext): Promise<void>;
  cmdCheck(ctx: CniContext): Promise<void>;
  cmdGc(ctx: CniContext): Promise<void>;
  cmdStatus(ctx: CniContext): Promise<void>;
}

export interface MainIo {
  readStdin(maxWaitMs?: number): Promise<string>;
  stdout(text: string): void;
  stderr(text: string): void;
}

const ABOUT = `vfplane-cni: gives pods SR-IOV VFs (kernel netdev or DPDK), a CNI plugin run by the container runtime with CNI_COMMAND set.
CNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}
`;

/** Reads stdin to the end; with maxWaitMs, gives up waiting then and returns what came. */
function readProcessStdin(maxWaitMs?: number): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      if (timer) clearTimeout(timer);
      stdin.removeAllListeners('data');
      stdin.pause();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    if (maxWaitMs !== undefined) {
      timer = setTimeout(done, maxWaitMs);
      timer.unref();
    }
    stdin.on('data', (c: Buffer) => chunks.push(c));
    stdin.once('end', done);
    stdin.once('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
  });
}

const processIo: MainIo = {
  readStdin: readProcessStdin,
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

/** The config's cniVersion if it has one, for error objects written before it is validated. */
function sniffVersion(text: string): string | undefined {
  try {
    const o = JSON.parse(text) as Record<string, unknown> | null;
    // No cniVersion is 0.1.0 (libcni's reading): an error about it says so in its own label.
    if (o && typeof o === 'object' && !Array.isArray(o) && o.cniVersion === undefined) return '0.1.0';
    const v = o?.cniVersion;
    return typeof v === 'string' && /^\d+\.\d+\.\d+$/.test(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

// GC and STATUS came with spec 1.1.0; pkg/skel refuses them for older configs (code 1).
const MIN_VERSION: Partial<Record<string, string>> = { GC: '1.1.0', STATUS: '1.1.0', CHECK: '0.4.0' };

/** The logger of a config that was refused: to its logFile when that is an absolute
 *  path, at error level; none when it names no usable file (stdout's error says it all). */
async function refusedConfigLogger(text: string, env: NodeJS.ProcessEnv, io: MainIo): Promise<Logger | undefined> {
  let file: unknown;
  try {
    const o = JSON.parse(text) as Record<string, unknown> | null;
    file = o && typeof o === 'object' ? Object.entries(o).find(([k]) => k.toLowerCase() === 'logfile')?.[1] : undefined;
  } catch {
    return undefined;
  }
  if (typeof file !== 'string' || !file.startsWith('/')) return undefined;
  const { whyNotLogFile } = await import('./paths.js');
  if (whyNotLogFile(file, env)) return undefined;
  const { createLogger } = await import('./log.js');
  return createLogger({
    level: 'error', file, stderr: io.stderr,
    fields: { command: env.CNI_COMMAND, ...(env.CNI_CONTAINERID ? { containerId: env.CNI_CONTAINERID } : {}), ...(env.CNI_IFNAME ? { ifname: env.CNI_IFNAME } : {}) },
  });
}

export async function main(env: NodeJS.ProcessEnv = process.env, io: MainIo = processIo): Promise<number> {
  const command = env.CNI_COMMAND;
  const phases = new Phases();
  let cniVersion: string = NEWEST_VERSION;
  let log: Logger | undefined;
  // Run by hand without a command: say what this is and exit 0, as the reference
  // plugins (libcni's skel) do; nothing on stdout, stdin not read.
  if (!command) {
    io.stderr(ABOUT);
    return 0;
  }
  let text = '';
  try {
    try {
      // VERSION's stdin is a courtesy ({"cniVersion": …}); do not hang on a runtime that never closes it.
      text = await io.readStdin(command === 'VERSION' ? 2000 : undefined);
    } catch (err) {
      throw new CniError(ERR.IO, `cannot read the network configuration from stdin: ${(err as Error).message}`);
    }
    const sniffed = sniffVersion(text);
    if (sniffed) cniVersion = sniffed;

    if (command === 'VERSION') {
      // In the version asked, when it is one this plugin speaks; else in its newest (as
      // libcni's skel answers): never in a version it does not know.
      const answer = isSupportedVersion(cniVersion) ? cniVersion : NEWEST_VERSION;
      io.stdout(JSON.stringify({ cniVersion: answer, supportedVersions: SUPPORTED_VERSIONS }) + '\n');
      return 0;
    }
    const cniEnv = parseEnv(env);
    // Read half-way through an overlay ADD or DEL (the data plane's reply wait): refused
    // before anything is done, as a CNI_* variable is.
    try {
      replyTimeoutMs();
    } catch (err) {
      throw new CniError(ERR.INVALID_ENV, (err as Error).message);
    }

    const { decodeConf, loadConf } = await import('./conf.js');
    const raw = await decodeConf(text);
    const conf = loadConf(raw, cniEnv.args, cniEnv.command);
    cniVersion = conf.cniVersion;
    const min = MIN_VERSION[cniEnv.command];
    if (min && !versionAtLeast(conf.cniVersion, min)) {
      throw new CniError(ERR.INCOMPATIBLE_VERSION, `cniVersion ${conf.cniVersion} does not have ${cniEnv.command}; it came with ${min}`, `set "cniVersion": "${min}" to use ${cniEnv.command}`);
    }

    // A logFile outside the log directories, or where others than root may write, is not
    // opened (paths.ts): the lines go to stderr, with a warning saying why.
    const { whyNotLogFile } = await import('./paths.js');
    const logRefused = conf.logFile ? whyNotLogFile(conf.logFile, env) : null;
    const { createLogger } = await import('./log.js');
    log = createLogger({
      ...(conf.logLevel ? { level: conf.logLevel } : {}),
      ...(conf.logFile && !logRefused ? { file: conf.logFile } : {}),
      stderr: io.stderr,
      fields: {
        command: cniEnv.command,
        network: conf.name,
        ...(cniEnv.containerId ? { containerId: cniEnv.containerId } : {}),
        ...(cniEnv.ifname ? { ifname: cniEnv.ifname } : {}),
        ...(cniEnv.netns ? { netns: cniEnv.netns } : {}),
      },
    });
    // Said, not refused: a log that cannot be written must not fail the pod (Ubuntu's
    // /var/log is root:syslog 0775, which the rule does not take as root's alone).
    if (logRefused) log.warning(`${logRefused}; logging to stderr (the runtime's log) instead`);
    phases.mark('config');
    const ctx: CniContext = { env: cniEnv, conf, raw, stdin: text, log, phases, stderr: (c) => io.stderr(c.toString('utf8')) };
    log.debug('called', { args: cniEnv.args, deviceID: conf.effective.deviceID });
    if (conf.prevResultIgnored) log.warning(`prevResult set aside (DEL needs none): ${conf.prevResultIgnored}`);
    for (const n of conf.recased ?? []) log.warning(`field ${JSON.stringify(n.field)} read as ${JSON.stringify(n.as)} (names match in any case, as sriov-cni's Go decoder reads them); write it ${n.as}`);
    if (conf.setAside?.length) log.warning(`${cniEnv.command} sets aside what ADD would refuse, in settings it does not act on (it undoes what ADD recorded): ${conf.setAside.join('; ')}`);
    for (const n of conf.nearMisses ?? []) log.warning(`unknown field ${JSON.stringify(n.field)} ignored (a plugin ignores the fields it does not know): did you mean ${JSON.stringify(n.meant)}?`);

    const plugin = (await import('./plugin.js')) as PluginModule;
    switch (cniEnv.command) {
      case 'ADD': {
        const result = await plugin.cmdAdd(ctx);
        if (!result || typeof result !== 'object') throw new CniError(ERR.INTERNAL, 'internal error: ADD produced no result');
        const { formatResult } = await import('./result.js');
        io.stdout(JSON.stringify(formatResult(result, conf.cniVersion), null, 4) + '\n');
        break;
      }
      case 'DEL':
        await plugin.cmdDel(ctx);
        break;
      case 'CHECK':
        await plugin.cmdCheck(ctx);
        break;
      case 'GC':
        await plugin.cmdGc(ctx);
        break;
      case 'STATUS':
        await plugin.cmdStatus(ctx);
        break;
    }
    log.debug('done', { phasesMs: phases.summary() });
    return 0;
  } catch (err) {
    const e = toCniError(err, command);
    // A config refused before its logger was made: the logFile it names (an absolute
    // path) still hears why, as the operator tailing it expects.
    log ??= await refusedConfigLogger(text, env, io);
    log?.error(e.message, { code: e.code, ...(e.details ? { details: e.details } : {}), phasesMs: phases.summary() });
    io.stdout(JSON.stringify(errorObject(e, cniVersion), null, 4) + '\n');
    return 1;
  } finally {
    // Its logFile's descriptor: `cni serve` runs call after call in one process.
    log?.close();
  }
}

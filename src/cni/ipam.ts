// Delegation to an IPAM plugin (SPEC.md section 4): find the binary named by ipam.type in
// CNI_PATH, run it with our environment (CNI_COMMAND replaced) and the complete network
// config on stdin — not just the ipam section, as pkg/invoke DelegateAdd does — and turn
// its output into a result or its error into ours. argv and env only: no shell.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runProgram, type RunResult } from '../util/spawn.js';
import type { Owner } from '../alloc/owner.js';
import type { Logger } from './log.js';
import { formatResult, parseIpamResult, parsePrevResult, type CniResult } from './result.js';
import { CniError, ERR, NEWEST_VERSION, SUPPORTED_VERSIONS, versionAtLeast, type CniArgs, type CniEnv } from './spec.js';

export type IpamCommand = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS';

export interface IpamOptions {
  /** Kill the plugin after this long (default 30 s); the failure is code 11. */
  timeoutMs?: number;
  log?: Logger;
  /** Where the plugin's stderr goes (default: ours, as the spec asks). */
  stderr?: (chunk: Buffer) => void;
  /** Called with the plugin's pid once it runs (each run, for a retried one). */
  onSpawn?: (pid: number) => void;
}

export const DEFAULT_IPAM_TIMEOUT_MS = 30_000;
const MAX_STDOUT = 4 << 20;
const MAX_STDERR = 64 << 10;
// pkg/invoke retries "text file busy" (the binary being replaced) 5 times, a second apart.
const TXTBSY_RETRIES = 5;
const TXTBSY_WAIT_MS = 1000;

/** SPEC.md: ipam.type "must not contain characters disallowed in file paths (e.g. / or \)". */
export function checkPluginName(type: unknown, what = 'ipam.type'): string {
  if (typeof type !== 'string' || type === '' || type === '.' || type === '..' || /[/\\\0]/.test(type) || type.length > 255) {
    throw new CniError(ERR.INVALID_CONFIG, `${what} ${JSON.stringify(type)} is not a plugin name: expected a plain file name like host-local, without "/"`);
  }
  return type;
}

/** The first CNI_PATH entry holding an executable regular file of that name. */
export function findPlugin(type: string, dirs: readonly string[]): string {
  checkPluginName(type);
  if (dirs.length === 0) {
    throw new CniError(ERR.INVALID_ENV, `CNI_PATH is not set; it is needed to find the IPAM plugin ${type}`, 'the runtime passes the directories holding CNI plugins in CNI_PATH, separated by ":"');
  }
  for (const dir of dirs) {
    const file = path.join(dir, type);
    try {
      if (!fs.statSync(file).isFile()) continue;
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // absent or not executable here: try the next directory
    }
  }
  throw new CniError(
    ERR.INVALID_CONFIG,
    `failed to find IPAM plugin ${JSON.stringify(type)} in CNI_PATH ${dirs.join(':')}`,
    `install the ${type} binary in one of those directories, or fix ipam.type`,
  );
}

type Run = RunResult;

function runOnce(file: string, stdin: string, env: Record<string, string>, timeoutMs: number, onStderr: (c: Buffer) => void, onSpawn?: (pid: number) => void): Promise<Run> {
  // posix_spawn, not a fork of this (possibly large, long-running) Node process: the
  // plugin starts while the VF's netdev moves, without holding up the JS thread.
  return runProgram(file, { env, stdin, timeoutMs, maxStdout: MAX_STDOUT, maxStderr: MAX_STDERR, onStderr, ...(onSpawn ? { onSpawn } : {}) });
}

/** The plugin's error object, or a description of why there is none. */
function pluginError(type: string, command: string, r: Run): CniError {
  const tail = r.stderr.trim().slice(-500);
  const text = r.stdout.trim();
  if (text) {
    try {
      const e = JSON.parse(text) as { code?: unknown; msg?: unknown; details?: unknown };
      if (typeof e === 'object' && e !== null && (typeof e.msg === 'string' || typeof e.code === 'number')) {
        const code = typeof e.code === 'number' && Number.isInteger(e.code) ? e.code : ERR.INTERNAL;
        // host-local names itself in its messages ("host-local: Failed to find…"): once.
        const msg = typeof e.msg === 'string' ? (e.msg.startsWith(`${type}: `) ? e.msg.slice(type.length + 2) : e.msg) : '(no message)';
        return new CniError(code, `IPAM ${type}: ${msg}`, typeof e.details === 'string' ? e.details : undefined);
      }
    } catch {
      // not JSON: reported below
    }
    return new CniError(ERR.INTERNAL, `IPAM ${type} failed ${command} (exit ${r.status}) and its output is not a CNI error: ${text.slice(0, 300)}`, tail || undefined);
  }
  const how = r.signal ? `was killed by ${r.signal}` : `exited with status ${r.status}`;
  return new CniError(ERR.INTERNAL, `IPAM ${type} ${how} during ${command} with no error message${tail ? `: ${tail}` : ''}`);
}

/**
 * Runs the IPAM plugin. `conf` is the network configuration exactly as this plugin got it
 * (the stdin text, or its decoded object). ADD returns the plugin's result (in the internal
 * shape); the other commands return nothing. Failures are CniErrors carrying the plugin's
 * own code, with the message prefixed "IPAM <type>: ".
 */
export async function execIpam(command: 'ADD', conf: string | Record<string, unknown>, env: CniEnv, ipamType: string, opts?: IpamOptions): Promise<CniResult>;
export async function execIpam(command: Exclude<IpamCommand, 'ADD'>, conf: string | Record<string, unknown>, env: CniEnv, ipamType: string, opts?: IpamOptions): Promise<void>;
export async function execIpam(command: IpamCommand, conf: string | Record<string, unknown>, env: CniEnv, ipamType: string, opts: IpamOptions = {}): Promise<CniResult | void> {
  const file = findPlugin(ipamType, env.path);
  const stdin = typeof conf === 'string' ? conf : JSON.stringify(conf);
  try {
    return await execPlugin(file, command, stdin, env, ipamType, opts);
  } catch (err) {
    if (!(err instanceof CniError)) throw err;
    // GC and STATUS are 1.1.0 commands: a plugin that predates them answers with a
    // version error or by missing CNI_CONTAINERID. It has nothing to collect or report.
    // One that says it speaks 1.1.0 meant its error: passed on, as the spec asks of a
    // delegate's error (asked only then: its VERSION costs another exec).
    if ((command === 'GC' || command === 'STATUS') && ([ERR.INCOMPATIBLE_VERSION, ERR.UNKNOWN_CONTAINER, ERR.INVALID_ENV] as number[]).includes(err.code)) {
      const theirs = await pluginVersions(file, configVersion(conf), env, opts).catch(() => [] as string[]);
      if (theirs.includes('1.1.0')) throw err;
      opts.log?.debug(`IPAM ${ipamType} does not support ${command} (it speaks ${theirs.join(', ') || 'no version it would name'}); skipped`, { code: err.code });
      return;
    }
    if (err.code !== ERR.INCOMPATIBLE_VERSION) throw err;
    // An older IPAM plugin under a newer network config (Debian 12's plugins speak up to
    // 1.0.0): ask what it speaks and talk to it in the newest version both know. IPAM
    // results did not change between 0.4.0 and 1.1.0 beyond the ip "version" field.
    const want = configVersion(conf);
    const theirs = await pluginVersions(file, want, env, opts);
    const common = SUPPORTED_VERSIONS.filter((v) => theirs.includes(v) && versionAtLeast(want, v) && v !== want).at(-1);
    if (!common) throw err;
    opts.log?.info(`IPAM ${ipamType} does not speak ${want}; delegating in ${common}`);
    const obj = typeof conf === 'string' ? (JSON.parse(conf) as Record<string, unknown>) : { ...conf };
    obj.cniVersion = common;
    // A plugin reading prevResult (static's CHECK) refuses one in a version it lacks.
    if (obj.prevResult && typeof obj.prevResult === 'object') {
      try {
        obj.prevResult = formatResult(parsePrevResult(obj.prevResult, want), common);
      } catch {
        // unreadable: left as it came, for the plugin to judge
      }
    }
    const r = await execPlugin(file, command, JSON.stringify(obj), env, ipamType, opts);
    return r;
  }
}

/** The versions a plugin says it supports (its VERSION command). */
async function pluginVersions(file: string, asking: string, env: CniEnv, opts: IpamOptions): Promise<string[]> {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env.raw)) if (v !== undefined) childEnv[k] = v;
  childEnv.CNI_COMMAND = 'VERSION';
  const r = await runOnce(file, JSON.stringify({ cniVersion: asking }), childEnv, opts.timeoutMs ?? DEFAULT_IPAM_TIMEOUT_MS, () => undefined);
  try {
    const v = (JSON.parse(r.stdout) as { supportedVersions?: unknown }).supportedVersions;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

async function execPlugin(file: string, command: IpamCommand, stdin: string, env: CniEnv, ipamType: string, opts: IpamOptions): Promise<CniResult | void> {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env.raw)) if (v !== undefined) childEnv[k] = v;
  childEnv.CNI_COMMAND = command;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_IPAM_TIMEOUT_MS;
  const onStderr = opts.stderr ?? ((c: Buffer) => void process.stderr.write(c));

  opts.log?.debug(`IPAM ${ipamType} ${command}`, { plugin: file });
  let r: Run | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      r = await runOnce(file, stdin, childEnv, timeoutMs, onStderr, opts.onSpawn);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ETXTBSY' && attempt < TXTBSY_RETRIES) {
        await new Promise((res) => setTimeout(res, TXTBSY_WAIT_MS));
        continue;
      }
      throw new CniError(ERR.IO, `cannot run IPAM plugin ${file}: ${(err as Error).message}`, code === 'EACCES' ? 'make it executable' : undefined);
    }
  }
  if (r.timedOut) {
    throw new CniError(ERR.TRY_AGAIN, `IPAM ${ipamType} did not finish ${command} within ${timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`} and was killed`, r.stderr.trim().slice(-500) || undefined);
  }
  if (r.status !== 0) {
    const e = pluginError(ipamType, command, r);
    opts.log?.debug(`IPAM ${ipamType} ${command} failed`, { code: e.code, msg: e.message });
    throw e;
  }
  if (command !== 'ADD') return;
  return parseIpamResult(r.stdout, configVersion(stdin), `IPAM ${ipamType}`);
}

function configVersion(conf: string | Record<string, unknown>): string {
  let v: unknown;
  if (typeof conf === 'string') {
    try {
      v = (JSON.parse(conf) as Record<string, unknown>).cniVersion;
    } catch {
      v = undefined;
    }
  } else v = conf.cniVersion;
  return typeof v === 'string' && v !== '' ? v : NEWEST_VERSION;
}

/**
 * What an attachment's IPAM DEL needs when no runtime call carries the network config:
 * the operator's `vfplane gc` releasing a VF whose pod is gone (after a reboot, say) must
 * give back its address too, or a plugin that predates GC (host-local up to 1.0.0) keeps
 * the lease for good, since nothing else remembers which container had it. Recorded
 * with the attachment at ADD, before the IPAM plugin runs.
 */
export interface IpamRecord {
  /** The parts of the network config an IPAM plugin reads. */
  netconf: { cniVersion: string; name: string; ipam: { type: string; [k: string]: unknown } };
  /** CNI_PATH of the ADD, where the plugin was found. */
  path: string[];
}

/** IPAM DEL for an attachment other than the calling one's (CNI GC's stale ones, or
 *  `vfplane gc`'s from an IpamRecord), as its runtime's DEL would have run it: HOLDER's
 *  container and interface, its pod's CNI_ARGS, and its namespace only while it exists
 *  (a runtime leaves it out for a lost sandbox). BASE is the environment otherwise. */
export async function ipamDelFor(conf: string | Record<string, unknown>, base: Readonly<Record<string, string | undefined>>, cniPath: string[],
  ipamType: string, holder: Owner, opts: IpamOptions = {}): Promise<void> {
  const args: CniArgs = { IgnoreUnknown: 'true' };
  if (holder.namespace) args.K8S_POD_NAMESPACE = holder.namespace;
  if (holder.name) args.K8S_POD_NAME = holder.name;
  if (holder.uid) args.K8S_POD_UID = holder.uid;
  if (holder.containerId) args.K8S_POD_INFRA_CONTAINER_ID = holder.containerId;
  const netns = holder.netns && fs.existsSync(holder.netns) ? holder.netns : undefined;
  const raw: Record<string, string | undefined> = {
    ...base,
    CNI_COMMAND: 'DEL',
    CNI_CONTAINERID: holder.containerId,
    CNI_IFNAME: holder.ifname,
    CNI_NETNS: netns,
    CNI_PATH: cniPath.join(':'),
    CNI_ARGS: Object.entries(args).map(([k, v]) => `${k}=${v}`).join(';'),
  };
  const env: CniEnv = { command: 'DEL', containerId: holder.containerId, ifname: holder.ifname, netns, args, path: cniPath, raw };
  await execIpam('DEL', conf, env, ipamType, opts);
}

/** IPAM DEL for a recorded attachment, from a process that is no CNI call (`vfplane gc`). */
export function ipamDelRecorded(rec: IpamRecord, holder: Owner, opts: IpamOptions = {}): Promise<void> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CNI_')));
  return ipamDelFor({ ...rec.netconf, type: 'vfplane-cni' }, base, rec.path, rec.netconf.ipam.type, holder, opts);
}

// `vfplane doctor`: what this build has and what this host supports, each check with
// what to do when it is missing: I/O backends, the addon, the CNI shim and server,
// hugepages, vfio and the IOMMU, AF_XDP and AF_PACKET, the SR-IOV NICs with the offload
// tier their hw-profile allows, and what a running data plane's status warns of.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Table from 'cli-table3';
import type { StatusReply } from './dataplane-warnings.js';
import { printJson, shellArg } from './output.js';
import { VfpError } from '../util/errors.js';
import type { HwProfile } from '../sriov/types.js';

type Status = 'ok' | 'warn' | 'missing';

export interface Check {
  area: string;
  name: string;
  status: Status;
  detail: string;
  fix?: string;
}

function read(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

function meminfo(key: string): number | undefined {
  const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(read('/proc/meminfo') ?? '');
  return m ? Number(m[1]) : undefined;
}

async function buildChecks(out: Check[]): Promise<void> {
  const { nativeFeatures, loadAddon } = await import('../dataplane/native.js');
  let features: Record<string, { built: boolean; reason?: string; fix?: string; versions?: Record<string, string> }> = {};
  try {
    features = nativeFeatures();
  } catch (err) {
    out.push({ area: 'build', name: 'native addon', status: 'missing', detail: (err as Error).message, fix: 'run ./scripts/setup (or npm run build)' });
    return;
  }
  for (const [name, f] of Object.entries(features)) {
    const v = f.versions ? Object.entries(f.versions).map(([k, x]) => `${k} ${x}`).join(', ') : '';
    out.push(f.built
      ? { area: 'build', name: `${name} backend`, status: 'ok', detail: v ? `built (${v})` : 'built' }
      : { area: 'build', name: `${name} backend`, status: 'missing', detail: f.reason ?? 'left out of the build', ...(f.fix ? { fix: f.fix } : {}) });
  }
  try {
    const a = loadAddon();
    out.push({ area: 'build', name: 'native addon', status: 'ok', detail: 'loads' });
    const probe = (fam: number, name: string, fix: string) => {
      const r = a.probeSocket(fam, 3 /* SOCK_RAW */);
      out.push(r === 0
        ? { area: 'host', name, status: 'ok', detail: 'the kernel opens the socket' }
        : { area: 'host', name, status: 'missing', detail: `socket() fails: errno ${-r}`, fix });
    };
    probe(44, 'AF_XDP sockets', 'a kernel with CONFIG_XDP_SOCKETS; run as root (CAP_NET_RAW)');
    probe(17, 'AF_PACKET sockets', 'run as root (CAP_NET_RAW)');
  } catch (err) {
    out.push({ area: 'build', name: 'native addon', status: 'missing', detail: (err as Error).message.split('\n')[0]!, fix: 'run ./scripts/setup' });
  }
  const shim = new URL('../../build/Release/vfplane-cni-shim', import.meta.url);
  out.push(fs.existsSync(shim)
    ? { area: 'build', name: 'vfplane-cni shim', status: 'ok', detail: 'built' }
    : { area: 'build', name: 'vfplane-cni shim', status: 'warn', detail: 'not built: vfplane-cni starts Node on every call', fix: 'run npm run build' });
}

/** AF_PACKET ports keep the host stack off the netdevs they own with a tcx ingress
 *  program (docs/dataplane.md, The underlay): Linux 6.6 brought tcx. */
export function tcxCheck(release: string): Check {
  const m = /^(\d+)\.(\d+)/.exec(release);
  const ok = !!m && (Number(m[1]) > 6 || (Number(m[1]) === 6 && Number(m[2]) >= 6));
  return ok
    ? { area: 'host', name: 'tcx (AF_PACKET stack drop)', status: 'ok', detail: 'the host stack gets no copy of what AF_PACKET ports receive' }
    : {
      area: 'host', name: 'tcx (AF_PACKET stack drop)', status: 'warn',
      detail: `kernel ${release} has no tcx: on AF_PACKET ports the host stack also receives, routes and answers every frame, on the workers' CPUs`,
      fix: 'Linux >= 6.6, or the afxdp backend (its XDP program keeps frames from the stack)',
    };
}

async function hostChecks(out: Check[], socket: string, stateDir: string, cniDir: string): Promise<void> {
  out.push({ area: 'host', name: 'kernel', status: 'ok', detail: `${os.release()} (${os.arch()}, ${os.cpus().length} CPUs)` });
  out.push(tcxCheck(os.release()));
  const total = meminfo('HugePages_Total') ?? 0;
  const free = meminfo('HugePages_Free') ?? 0;
  const size = meminfo('Hugepagesize') ?? 0;
  const mounted = (read('/proc/mounts') ?? '').split('\n').filter((l) => l.split(' ')[2] === 'hugetlbfs').map((l) => l.split(' ')[1]);
  out.push(total > 0
    ? { area: 'host', name: 'hugepages', status: 'ok', detail: `${free}/${total} free of ${size} kB${mounted.length ? `, hugetlbfs at ${mounted.join(', ')}` : ', no hugetlbfs mounted (the DPDK data plane mounts its own)'}` }
    // The DPDK data plane reserves dpdk.hugepages and mounts a hugetlbfs itself as root,
    // and gives both back at its stop: none reserved now is no fault. What can fail is
    // the reservation on a host whose memory has fragmented.
    : { area: 'host', name: 'hugepages', status: 'ok', detail: 'none reserved: the DPDK data plane reserves dpdk.hugepages (256 × 2 MiB by default) and mounts a hugetlbfs when it starts, as root; AF_XDP and AF_PACKET need none', fix: 'on a host up for long (memory fragmented), reserve them at boot: hugepages=256 on the kernel command line' });
  const groups = fs.existsSync('/sys/kernel/iommu_groups') ? fs.readdirSync('/sys/kernel/iommu_groups').length : 0;
  out.push(groups > 0
    ? { area: 'host', name: 'IOMMU', status: 'ok', detail: `${groups} IOMMU groups` }
    : { area: 'host', name: 'IOMMU', status: 'warn', detail: 'no IOMMU groups: vfio-pci cannot give VFs to DPDK safely', fix: 'enable VT-d/AMD-Vi in the firmware and boot with intel_iommu=on (or amd_iommu=on) iommu=pt' });
  const vfio = fs.existsSync('/sys/bus/pci/drivers/vfio-pci');
  out.push(vfio
    ? { area: 'host', name: 'vfio-pci', status: 'ok', detail: `driver loaded${fs.existsSync('/dev/vfio/vfio') ? ', /dev/vfio/vfio present' : ''}` }
    : { area: 'host', name: 'vfio-pci', status: 'warn', detail: 'driver not loaded (DPDK mode needs it)',
      // A kernel without loadable modules has no /proc/modules: modprobe cannot help there.
      fix: fs.existsSync('/proc/modules') ? 'modprobe vfio-pci' : 'this kernel loads no modules (no /proc/modules): use one built with CONFIG_VFIO_PCI=y, or run DPDK on vdevs (net_af_xdp, net_af_packet) instead of a VF' });
  const bpffs = (read('/proc/mounts') ?? '').split('\n').some((l) => l.split(' ')[2] === 'bpf');
  out.push(bpffs
    ? { area: 'host', name: 'bpffs', status: 'ok', detail: 'mounted' }
    : { area: 'host', name: 'bpffs', status: 'warn', detail: 'not mounted (libxdp pins its dispatcher there)', fix: 'mount -t bpf bpf /sys/fs/bpf' });
  // A socket file is not a server: one left by a killed server (or any file) answers nothing.
  const { localSocketPath, probe } = await import('../dataplane/control.js');
  const serving = fs.existsSync(socket) && (await probe(socket));
  const { askVersion, DEFAULT_CNI_SOCKET } = await import('../cni/server.js');
  const serveCmd = `vfplane cni serve${socket === DEFAULT_CNI_SOCKET ? '' : ` --socket ${shellArg(socket)}`}`;
  // Connected is not answering: a stopped (SIGSTOP) or hung server still accepts, and
  // every CNI call through the shim then waits on it.
  const silent = serving ? await askVersion(socket) : null;
  out.push(!serving
    ? { area: 'cni', name: 'vfplane cni serve', status: 'warn', detail: `no server ${fs.existsSync(socket) ? 'answers' : 'listens'} on ${socket}${fs.existsSync(socket) ? ' (a file left by one that stopped?)' : ''}: each CNI call starts Node (~10× slower)`, fix: `run \`${serveCmd}\` (the DaemonSet does)` }
    : silent
      ? { area: 'cni', name: 'vfplane cni serve', status: 'missing', detail: `a server accepts connections on ${socket} but gave ${silent}: stopped or hung, and every CNI call through the shim waits on it`, fix: `see its log; send it SIGCONT if it was stopped, or restart \`${serveCmd}\`` }
      : { area: 'cni', name: 'vfplane cni serve', status: 'ok', detail: `answering on ${socket}` });
  // The data plane: its socket under the state directory (or $VFPLANE_DATAPLANE_SOCKET).
  const dpSock = localSocketPath(stateDir);
  if (fs.existsSync(dpSock) && (await probe(dpSock))) {
    out.push({ area: 'dataplane', name: 'data plane', status: 'ok', detail: `answering on ${dpSock} (vfplane dataplane status)` });
    out.push(...(await dataplaneWarnings(dpSock)));
  } else {
    out.push({ area: 'dataplane', name: 'data plane', status: 'warn', detail: `nothing answers on ${dpSock}: VFs with vxlan cannot be attached`, fix: 'run `vfplane dataplane run --config FILE` (docs/dataplane.md)' });
  }
  out.push(...(await heldByStopped(stateDir)));
  out.push(installedPlugin(path.join(cniDir, 'vfplane-cni')));
}

/** What the running data plane's status warns of (`vfplane dataplane status` says the
 *  same beside the rest of its report): each sentence names the cause and what to do. */
async function dataplaneWarnings(socket: string): Promise<Check[]> {
  const { request } = await import('../dataplane/control.js');
  const { statusWarnings } = await import('./dataplane-warnings.js');
  let status: unknown;
  try {
    status = await request(socket, { op: 'status' });
  } catch (e) {
    return [{ area: 'dataplane', name: 'data plane status', status: 'warn', detail: `it answered, then its status request failed: ${(e as Error).message}`, fix: 'run `vfplane dataplane status` to see it again' }];
  }
  const name = { uplink: 'data plane uplink', learning: 'data plane FDB', peers: 'data plane peers', attachments: 'data plane attachments' } as const;
  return statusWarnings(status as StatusReply)
    .map((w): Check => ({ area: 'dataplane', name: name[w.about], status: 'warn', detail: w.text }));
}

/** Netdevs a data plane that is not running (killed) still holds: what it switched off
 *  on them (forwarding, IPv6, GRO; promiscuous mode a DPDK PMD set) stays so until it
 *  starts again or is unclaimed. */
async function heldByStopped(stateDir: string): Promise<Check[]> {
  const out: Check[] = [];
  let claims: typeof import('../dataplane/claims.js');
  try {
    claims = await import('../dataplane/claims.js');
  } catch {
    return out;
  }
  let journals: ReturnType<typeof claims.stateJournals>;
  try {
    journals = claims.stateJournals(stateDir);
  } catch {
    return out; // no addon, or not root: the data plane checks above say so
  }
  const { dpdkLeftovers, readDpdkEnvJournal } = await import('../dataplane/dpdk-env.js');
  // The command as it must be typed: the state directory too, unless it is the default.
  const unclaim = (node: string) => `vfplane dataplane unclaim --node ${node}${stateDir === '/var/lib/vfplane' ? '' : ` --state-dir ${shellArg(stateDir)}`}`;
  for (const { node, journal: j, dpdkEnv, running, lock } of journals) {
    lock?.release();
    if (running) continue; // a running one's are its own
    const env = readDpdkEnvJournal(dpdkEnv);
    const left = env && !('unreadable' in env) ? dpdkLeftovers(env) : [];
    if (env && 'unreadable' in env) out.push({ area: 'dataplane', name: `DPDK host changes of ${node}`, status: 'warn', detail: `unreadable journal ${env.unreadable}`, fix: 'remove it: hugepages or a mount a killed run left stay as they are' });
    if (left.length) out.push({ area: 'dataplane', name: `DPDK host changes of ${node}`, status: 'warn', detail: `the DPDK data plane of node ${node} was killed and left ${left.join(', ')}`, fix: `start it again, or \`${unclaim(node)}\`` });
    // Only a netdev that is still the one claimed (same ifindex) keeps what the run set:
    // after a reboot, or a VF count changed, the names are new netdevs with the kernel's
    // defaults (the start and unclaim make the same test).
    const held: string[] = [];
    const stale: string[] = [];
    let promisc = false; // a DPDK vdev's netdev: its PMD made it promiscuous
    for (const r of j.list()) {
      const same = (await claims.claimedNow(r)) === 'same';
      (same ? held : stale).push(`${r.ifname}${r.netns ? ` (in ${r.netns})` : ''}`);
      if (same && r.promisc === false) promisc = true;
    }
    if (stale.length && !held.length && !j.unreadable) {
      out.push({ area: 'dataplane', name: `netdevs of ${node}`, status: 'ok', detail: `the claims journal of stopped node ${node} names ${stale.join(', ')}, which no longer exist or are other netdevs now (a reboot, or VFs made anew): nothing of theirs to give back; its next start (or \`${unclaim(node)}\`) forgets them` });
      continue;
    }
    if (!held.length && !j.unreadable) continue;
    out.push(j.unreadable
      ? { area: 'dataplane', name: `netdevs of ${node}`, status: 'warn', detail: `unreadable claims journal ${j.unreadable}`, fix: 'remove it: what it held keeps what the killed run set' }
      : { area: 'dataplane', name: `netdevs of ${node}`, status: 'warn', detail: `the data plane of node ${node} is not running and still holds ${held.join(', ')}: forwarding, IPv6${promisc ? ', GRO and promiscuous mode' : ' and GRO'} stay as it set them`, fix: `start it again, or \`${unclaim(node)}\`` });
  }
  return out;
}

/** Whether PATH exists as the host sees it: here, or, in a container of its own mount
 *  namespace that shares the host's PIDs (the DaemonSet's: the .shim names host paths
 *  the container does not have), under /proc/1/root. */
export function existsOnHost(p: string, hostPid = 1): boolean {
  if (fs.existsSync(p)) return true;
  try {
    if (fs.readlinkSync(`/proc/${hostPid}/ns/mnt`) === fs.readlinkSync('/proc/self/ns/mnt')) return false;
    return fs.existsSync(`/proc/${hostPid}/root${p}`);
  } catch {
    return false; // not allowed to look (not root): say what this view has
  }
}

/** The installed plugin: present, and (the shim) naming a node and plugin that exist. */
/** `hostPid`: a process in the host's mount namespace (init; tests give their own). */
export function installedPlugin(file: string, hostPid = 1): Check {
  const name = 'plugin installed';
  const fix = `vfplane cni install --dir ${file.slice(0, file.lastIndexOf('/')) || '/'}`;
  if (!fs.existsSync(file)) return { area: 'cni', name, status: 'warn', detail: `no ${file}`, fix };
  let paths: string;
  try {
    paths = fs.readFileSync(`${file}.shim`, 'utf8');
  } catch {
    // A shell wrapper (an install by an older vfplane, or without the shim built).
    return { area: 'cni', name, status: 'ok', detail: `${file} (a shell wrapper: reinstall to have the runtime exec the shim directly)` };
  }
  const kv = new Map(paths.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const missing = ['node', 'plugin'].filter((k) => !kv.get(k) || !existsOnHost(kv.get(k)!, hostPid)).map((k) => `${k} ${kv.get(k) ?? '(not named)'}`);
  if (!kv.get('socket')) missing.push('socket (not named)');
  return missing.length
    ? { area: 'cni', name, status: 'missing', detail: `${file}.shim names what is not there: ${missing.join(', ')}; every CNI call would fail`, fix }
    : { area: 'cni', name, status: 'ok', detail: `${file} (shim; server socket ${kv.get('socket')})` };
}

async function nicChecks(out: Check[], sysfsRoot: string | undefined): Promise<void> {
  const { openSysfs } = await import('../sriov/sysfs.js');
  const { listPfs, pfEswitch, simRepresentorsNote } = await import('../sriov/discover.js');
  const { getProfile } = await import('../sriov/profile.js');
  let sysfs: Awaited<ReturnType<typeof openSysfs>>;
  try {
    sysfs = await openSysfs(sysfsRoot);
  } catch (e) {
    // One failing check among the others: the rest of the report still helps.
    out.push({ area: 'nic', name: 'sysfs root', status: 'missing', detail: (e as Error).message.replace(/; pass --sysfs-root.*$/, ''), fix: 'pass --sysfs-root (or set VFPLANE_SYSFS_ROOT) to /sys or to a tree made by `vfplane sim create`' });
    return;
  }
  let pfs: ReturnType<typeof listPfs>;
  try {
    pfs = listPfs(sysfs);
  } catch (e) {
    // A broken hw-profile (VFPLANE_PROFILES_DIR) stops every command that matches NICs:
    // one failing check here, with the rest of the report.
    if (!(e instanceof VfpError && (e.kind === 'bad-file' || e.kind === 'not-found'))) throw e;
    out.push({ area: 'nic', name: 'hw-profiles', status: 'missing', detail: e.message, fix: 'fix the file named, or point VFPLANE_PROFILES_DIR elsewhere or unset it' });
    return;
  }
  if (pfs.length === 0) {
    out.push({
      area: 'nic', name: 'SR-IOV PFs', status: 'warn', detail: `none under ${sysfs.root}`,
      fix: 'on a machine without SR-IOV NICs: vfplane sim create, then --sysfs-root (or VFPLANE_SYSFS_ROOT)',
    });
    return;
  }
  dpdkNeeds(out, pfs.map((pf) => {
    try {
      return pf.profile ? getProfile(pf.profile) : null;
    } catch {
      return null; // said by its own check
    }
  }));
  for (const pf of pfs) {
    const tier = (pf.tier === 1 ? 'tier 1: full hardware encap/decap' : pf.tier === 2 ? 'tier 2: VNI steering and checksum offload, software encap' : 'tier 3: software') +
      (pf.tierNote ? ` (${pf.tierNote})` : '');
    // What vfplane-cni's vxlan mode needs: a representor per VF (switchdev mode).
    const reps = pfEswitch(sysfs, pf).representors;
    // The simulator makes representors for every family, so that the overlay runs on
    // any of them; a real one of a family without switchdev (X710) has none.
    let simOnly = false;
    try {
      simOnly = sysfs.isSim && !!pf.profile && getProfile(pf.profile).offloads.switchdev === false;
    } catch {
      // a profile that no longer loads is said by its own check
    }
    const repText = pf.numVfs === 0 ? '' : reps
      ? `; representors for ${reps}/${pf.numVfs} VFs (vxlan mode possible${simOnly ? `; ${simRepresentorsNote(pf.profile!)}` : ''})`
      : `; no VF representors: vfplane-cni's vxlan mode needs the eswitch in switchdev mode (devlink dev eswitch set pci/${pf.pci} mode switchdev, where the family has it)`;
    out.push({
      area: 'nic', name: `PF ${pf.pci}${pf.netdev ? ` (${pf.netdev})` : ''}`, status: pf.profile ? 'ok' : 'warn',
      detail: `${pf.vendor}:${pf.device} ${pf.driver ?? 'no driver'}, ${pf.numVfs}/${pf.totalVfs} VFs, ${pf.profile ? `profile ${pf.profile}, ${tier}${sysfs.isSim && (pf.tier ?? 3) < 3 ? ' as the profile allows; simulated, its veth uplink offloads nothing, so a data plane on it runs at tier 3 (software)' : ''}` : 'no hw-profile matches (treated as tier 3)'}${repText}`,
      ...(pf.profile ? {} : { fix: 'add a hw-profile for this NIC (hw-profiles/README.md)' }),
    });
  }
}

/** What `rdma system show` (iproute2) gave: its output, or why there is none. */
export type RdmaSystemShow = { stdout: string } | { missing: true } | { failed: string };

function rdmaSystemShow(): RdmaSystemShow {
  const r = spawnSync('rdma', ['system', 'show'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) return (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? { missing: true } : { failed: r.error.message };
  if (r.status !== 0) return { failed: (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n')[0]! };
  return { stdout: r.stdout };
}

/**
 * The RDMA subsystem's netns mode (`rdma system show`: netns shared|exclusive), on a node
 * whose NICs DPDK reaches through their RDMA devices (ConnectX). In shared mode (the
 * kernel's default) every namespace sees every RDMA device; in exclusive mode a pod sees
 * only those moved into its namespace, which vfplane-cni does not do (the rdma CNI
 * plugin, chained after it: deploy/README.md, ConnectX and DPDK). Without the tool or the
 * kernel's RDMA netlink there is no telling, and the check says so. LOADS_MODULES: whether
 * this kernel loads modules (/proc/modules), for the fix.
 */
export function rdmaNetnsCheck(r: RdmaSystemShow, fams: string, loadsModules = true): Check {
  const name = 'RDMA netns mode';
  const exclusiveFix = 'chain the rdma CNI plugin after vfplane-cni in the network, which moves the pod\'s RDMA device into its namespace (deploy/README.md, ConnectX and DPDK), or make the mode shared: rdma system set netns shared';
  const cannot = `cannot tell whether the RDMA subsystem is in shared or exclusive netns mode (${fams}: in exclusive mode a DPDK pod's RDMA device must be moved into its namespace, which vfplane-cni does not do)`;
  if ('missing' in r) return { area: 'host', name, status: 'warn', detail: `${cannot}: no \`rdma\` tool here (iproute2)`, fix: 'install iproute2\'s rdma tool and run `rdma system show` (netns shared: nothing to do; exclusive: the rdma CNI plugin)' };
  if ('failed' in r) {
    return {
      area: 'host', name, status: 'warn', detail: `${cannot}: \`rdma system show\` failed (${r.failed}): this kernel's RDMA subsystem (ib_core) is absent or not loaded`,
      fix: loadsModules ? 'load the RDMA stack (modprobe mlx5_ib ib_uverbs, which bring ib_core), then run `rdma system show`' : 'this kernel loads no modules (no /proc/modules): use one built with the RDMA stack (ib_core, mlx5_ib, ib_uverbs), then run `rdma system show`',
    };
  }
  const m = /\bnetns (shared|exclusive)\b/.exec(r.stdout);
  if (!m) return { area: 'host', name, status: 'warn', detail: `${cannot}: \`rdma system show\` printed no netns mode (${JSON.stringify(r.stdout.trim())}); an iproute2 older than 5.3?`, fix: 'update iproute2, then run `rdma system show`' };
  return m[1] === 'shared'
    ? { area: 'host', name, status: 'ok', detail: `netns shared (the kernel's default): every namespace sees every RDMA device, so a ${fams} DPDK pod reaches its VF's with nothing moved` }
    : { area: 'host', name, status: 'warn', detail: `netns exclusive: a pod sees only the RDMA devices moved into its namespace, and vfplane-cni moves the VF's netdev, not its RDMA device: a ${fams} DPDK pod would not find its VF`, fix: exclusiveFix };
}

/**
 * What DPDK needs on this node depends on its NICs: vfio-pci and an IOMMU for the families
 * whose VFs DPDK drives bound to vfio-pci (X710, E810), the RDMA stack for the bifurcated
 * one (ConnectX: mlx5's PMD runs on mlx5_core through mlx5_ib and ib_uverbs). A node whose
 * NICs are all bifurcated was told it needs vfio-pci and an IOMMU, and never what it does
 * need (helper-101). The host checks read the host; the families come from the PFs under
 * the sysfs root.
 */
function dpdkNeeds(out: Check[], fams: (HwProfile | null)[]): void {
  const known = fams.filter((f): f is HwProfile => f !== null);
  if (known.length === 0) return;
  const names = [...new Set(known.map((f) => f.name))].join(', ');
  if (known.length === fams.length && known.every((f) => !f.dpdk.vfNeedsVfio)) {
    for (const c of out) {
      if (c.area !== 'host' || (c.name !== 'IOMMU' && c.name !== 'vfio-pci') || c.status !== 'warn') continue;
      c.status = 'ok';
      c.detail = `${c.detail.replace(/ \(DPDK mode needs it\)$/, '').replace(/: vfio-pci cannot give VFs to DPDK safely$/, '')}; not needed here: this node's NICs (${names}) run DPDK on their kernel driver (bifurcated)`;
      delete c.fix;
    }
  }
  const bif = known.filter((f) => f.dpdk.bifurcated);
  if (bif.length === 0) return;
  // Its own check, after the modules': whether a pod's RDMA device must be moved to it.
  const netns = rdmaNetnsCheck(rdmaSystemShow(), [...new Set(bif.map((f) => f.name))].join(', '), fs.existsSync('/proc/modules'));
  const missing = ['mlx5_ib', 'ib_uverbs'].filter((m) => !fs.existsSync(`/sys/module/${m}`));
  const uverbs = (() => {
    try {
      return fs.readdirSync('/dev/infiniband').filter((n) => n.startsWith('uverbs'));
    } catch {
      return [];
    }
  })();
  const what = `DPDK's ${bif[0]!.dpdk.pmd} PMD (${[...new Set(bif.map((f) => f.name))].join(', ')}) reaches a VF through its RDMA device`;
  if (missing.length || uverbs.length === 0) {
    out.push({
      area: 'host', name: 'RDMA (mlx5 DPDK)', status: 'warn',
      detail: `${what}: ${[...(missing.length ? [`module${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not loaded`] : []), ...(uverbs.length ? [] : ['no /dev/infiniband/uverbs*'])].join(', ')}; kernel-mode pods work without it, DPDK in them does not`,
      fix: fs.existsSync('/proc/modules') ? `modprobe ${['mlx5_ib', 'ib_uverbs'].join(' ')} (rdma-core's udev rules load them at boot)` : 'this kernel loads no modules (no /proc/modules): use one built with mlx5_ib and ib_uverbs',
    });
    out.push(netns);
    return;
  }
  out.push({ area: 'host', name: 'RDMA (mlx5 DPDK)', status: 'ok', detail: `${what}: mlx5_ib and ib_uverbs loaded, ${uverbs.length} uverbs device(s); a pod needs /dev/infiniband (the device plugin mounts it for an isRdma resource), and with the RDMA subsystem in exclusive netns mode its RDMA device moved into the pod (the RDMA netns mode check says which)` });
  out.push(netns);
}

/** The server socket the shim installed as FILE names (`socket=` in FILE.shim), or
 *  undefined: where the runtime's calls go, so where doctor looks for the server. */
export function shimSocket(file: string): string | undefined {
  try {
    const line = fs.readFileSync(`${file}.shim`, 'utf8').split('\n').find((l) => l.startsWith('socket='));
    return line?.slice('socket='.length) || undefined;
  } catch {
    return undefined;
  }
}

export async function runDoctor(o: { sysfsRoot?: string; stateDir?: string; json?: boolean; socket?: string; cniDir: string }): Promise<void> {
  const checks: Check[] = [];
  await buildChecks(checks);
  // Without --socket, the server the installed shim forwards to (`cni install --socket`
  // may have named another than the default): a server there is the one that counts.
  const { DEFAULT_CNI_SOCKET } = await import('../cni/server.js');
  const socket = o.socket ?? shimSocket(path.join(o.cniDir, 'vfplane-cni')) ?? DEFAULT_CNI_SOCKET;
  await hostChecks(checks, socket, o.stateDir ?? (process.env.VFPLANE_STATE_DIR || '/var/lib/vfplane'), o.cniDir);
  await nicChecks(checks, o.sysfsRoot);
  // A sysfs root that cannot be read is the caller's input gone wrong: reported with the
  // rest, and the exit says so.
  if (checks.some((c) => c.name === 'sysfs root' || c.name === 'hw-profiles')) process.exitCode = 1; // what was given (a root, a profile directory) is unusable
  if (o.json) return printJson({ checks });
  const t = new Table({ head: ['area', 'check', 'status', 'detail'], style: { head: [], border: [] }, wordWrap: true, colWidths: [null, 24, null, 70] });
  for (const c of checks) t.push([c.area, c.name, c.status, c.fix ? `${c.detail}\nfix: ${c.fix}` : c.detail]);
  console.log(t.toString());
  const bad = checks.filter((c) => c.status !== 'ok').length;
  console.log(bad ? `${bad} check(s) need attention; vfplane still runs on what is there (the software path and the simulator need none of them)` : 'everything vfplane can use is here');
}

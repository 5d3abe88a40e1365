// The simulated kernel: what Linux does when someone writes to sriov_numvfs, a driver's
// bind/unbind, driver_override or drivers_probe, done to a sysfs-shaped tree and to real
// veth netdevs. It refuses what the kernel refuses, with the kernel's errno:
//   sriov_numvfs  garbage → EINVAL, above sriov_totalvfs → ERANGE, no PF driver → ENOENT,
//                 nonzero → other nonzero → EBUSY (drivers/pci/iov.c sriov_numvfs_store)
//   bind          unknown device or a driver that does not match → ENODEV,
//                 device already bound → EBUSY (drivers/base/bus.c, dd.c)
//   unbind        device not bound to this driver → ENODEV
// Writes are serialised by a lock in the simulator's state directory, as the kernel
// serialises them with the device lock.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ip, ipBatch, link, links, netnsAdd } from '../net/ip.js';
import { pciFromRid, pciRid } from '../sriov/pci.js';
import { errnoError, registerSimKernel, simBootId, Sysfs, type SysfsKernel } from '../sriov/sysfs.js';
import { getProfile } from '../sriov/profile.js';
import type { HwProfile, VfSettings } from '../sriov/types.js';
import { VF_SETTING_ERRNOS, vfSettingRefusals } from '../sriov/vf-settings.js';
import { systemError } from '../util/errors.js';
import { pidAlive, sleepSync } from '../util/proc.js';
import { pidStart } from '../alloc/owner.js';
import { readManifest, vfMac, vfNetdev, vfRepresentor, type SimManifest, type SimPf } from './manifest.js';

export const VFIO_DRIVER = 'vfio-pci';

export const DEFAULT_VF_SETTINGS: VfSettings = {
  mac: '00:00:00:00:00:00',
  vlan: 0,
  qos: 0,
  vlanProto: '802.1Q',
  spoofchk: true,
  trust: false,
  linkState: 'auto',
  minTxRate: 0,
  maxTxRate: 0,
};


/** Identity of one simulated device. */
interface Dev {
  pci: string;
  pf: SimPf;
  vf: number | null; // VF index, or null for the PF itself
}

/** A VF's queue pairs, as the sim profile says (queuesPerVfDefault): one. A veth made
 *  without a count gets one per possible CPU. Both ends of the pair: the VF netdev and
 *  its representor. */
const VF_QUEUES = ['numtxqueues', '1', 'numrxqueues', '1'];

export class SimKernel implements SysfsKernel {
  readonly kind = 'sim' as const;
  readonly m: SimManifest;

  /** `unfinished`: the simulator being made (sim create, before its manifest is final). */
  constructor(readonly root: string, unfinished = false) {
    this.m = readManifest(root, { unfinished });
  }

  get hasNetdevs(): boolean {
    return this.m.netdevs;
  }

  get bootedAt(): number {
    return Date.parse(this.m.createdAt);
  }

  get bootId(): string {
    return simBootId(this.m);
  }

  get devRoot(): string {
    return this.m.devRoot;
  }

  // --- paths --------------------------------------------------------------------

  devDir(pci: string): string {
    return `devices/pci${this.m.pciBus}/${pci}`;
  }

  private abs(rel: string): string {
    return path.join(this.root, rel);
  }

  private symlink(target: string, rel: string): void {
    const p = this.abs(rel);
    fs.rmSync(p, { force: true });
    fs.symlinkSync(target, p);
  }

  /** A relative symlink target from the directory of FROM to TO (both root-relative). */
  private rel(from: string, to: string): string {
    return path.relative(path.dirname(this.abs(from)), this.abs(to));
  }

  private writeFile(rel: string, value: string): void {
    fs.writeFileSync(this.abs(rel), value.endsWith('\n') ? value : value + '\n');
  }

  private readFile(rel: string): string | undefined {
    try {
      return fs.readFileSync(this.abs(rel), 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  vfPci(pf: SimPf, vf: number): string {
    const { domain, rid } = pciRid(pf.pci);
    return pciFromRid(domain, rid + pf.vfOffset + vf * pf.vfStride);
  }

  /** Finds a device of this simulator by PCI address (PFs, and VFs that exist). */
  dev(pci: string): Dev | undefined {
    for (const pf of this.m.pfs) {
      if (pf.pci === pci) return { pci, pf, vf: null };
      const { rid } = pciRid(pf.pci);
      const off = pciRid(pci).rid - rid - pf.vfOffset;
      if (off >= 0 && off % pf.vfStride === 0) {
        const vf = off / pf.vfStride;
        if (vf < this.numVfs(pf) && this.vfPci(pf, vf) === pci) return { pci, pf, vf };
      }
    }
    return undefined;
  }

  numVfs(pf: SimPf): number {
    return Number(this.readFile(`${this.devDir(pf.pci)}/sriov_numvfs`) ?? 0);
  }

  driverOf(pci: string): string | undefined {
    try {
      return path.basename(fs.readlinkSync(this.abs(`${this.devDir(pci)}/driver`)));
    } catch {
      return undefined;
    }
  }

  netdevNames(d: Dev): { name: string; peer: string } {
    return d.vf === null
      ? { name: d.pf.netdev, peer: d.pf.uplinkPeer }
      : { name: vfNetdev(this.m, d.pf.index, d.vf), peer: vfRepresentor(this.m, d.pf.index, d.vf) };
  }

  private iommuGroup(d: Dev): number {
    return d.vf === null ? d.pf.iommuGroup : d.pf.vfIommuBase + d.vf;
  }

  private drivers(): string[] {
    return [...new Set([this.m.pfDriver, this.m.vfDriver, VFIO_DRIVER])];
  }

  // --- the lock -------------------------------------------------------------------

  /**
   * Runs FN holding the simulator's lock: a directory made under a name of its own with
   * the holder's pid in it, then renamed to `lock` (a rename onto a directory that has a
   * file fails), so a lock never exists without its pid. Waiters only read. A lock whose
   * holder died is renamed away by one waiter (the rename is atomic) and removed; so is one
   * with no pid file that is over 5 s old (left by an older vfplane, or by hand).
   */
  locked<T>(fn: () => T): T {
    const dir = this.m.stateDir;
    const lock = path.join(dir, 'lock');
    const deadline = Date.now() + 30_000;
    const unique = () => path.join(dir, `lock.${process.pid}.${Math.random().toString(36).slice(2, 10)}`);
    const mine = unique();
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, 'pid'), `${process.pid} ${pidStart(process.pid) ?? ''}`.trim());
    for (;;) {
      try {
        fs.renameSync(mine, lock);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') {
          fs.rmSync(mine, { recursive: true, force: true });
          throw err;
        }
      }
      const holder = lockHolder(lock);
      const stale = holder === 'gone' ? false : holder === null ? olderThan(lock, 5_000) : !holderAlive(holder);
      if (stale) {
        // One waiter wins the rename; if the lock it took turns out not to be the stale one
        // (taken over and made anew in between), it goes back.
        const away = unique();
        try {
          fs.renameSync(lock, away);
        } catch {
          continue;
        }
        const took = lockHolder(away);
        if (!sameHolder(took, holder) && took !== 'gone' && (took === null || holderAlive(took))) {
          try {
            fs.renameSync(away, lock);
            continue;
          } catch {
            /* a new lock is there already: the one we took is no longer anyone's to hold */
          }
        }
        fs.rmSync(away, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        fs.rmSync(mine, { recursive: true, force: true });
        throw systemError(`the simulator at ${this.root} is locked by pid ${holder === null || holder === 'gone' ? '?' : holder.pid} for over 30 s`);
      }
      sleepSync(2);
    }
    try {
      return fn();
    } finally {
      // Renamed away first, so no waiter ever sees a lock without its pid.
      const away = unique();
      fs.renameSync(lock, away);
      fs.rmSync(away, { recursive: true, force: true });
    }
  }

  // --- writes ---------------------------------------------------------------------

  write(sysfs: Sysfs, rel: string, value: string): boolean {
    const abs = sysfs.abs(rel);
    let dir: string;
    try {
      dir = path.relative(this.root, fs.realpathSync(path.dirname(abs)));
    } catch {
      return false; // let the plain write fail with ENOENT
    }
    const attr = path.basename(abs);
    const v = value.replace(/\n$/, '');
    const devM = /^devices\/pci[0-9a-f:]+\/([0-9a-f:.]+)$/.exec(dir);
    if (devM) {
      const pci = devM[1]!;
      return this.locked(() => this.deviceAttr(pci, attr, v));
    }
    const drvM = /^bus\/pci\/drivers\/([^/]+)$/.exec(dir);
    if (drvM) {
      const drv = drvM[1]!;
      return this.locked(() => {
        if (attr === 'bind') this.bind(v, drv);
        else if (attr === 'unbind') this.unbind(v, drv);
        else if (attr === 'new_id' || attr === 'remove_id') throw errnoError('EINVAL', `the simulator does not model ${attr}; use driver_override`);
        else throw errnoError('EACCES', 'Permission denied');
        return true;
      });
    }
    if (dir === 'bus/pci' && attr === 'drivers_probe') {
      return this.locked(() => {
        this.probe(v);
        return true;
      });
    }
    return false;
  }

  private deviceAttr(pci: string, attr: string, v: string): boolean {
    const d = this.dev(pci);
    if (!d) throw errnoError('ENODEV', 'No such device');
    switch (attr) {
      case 'sriov_numvfs':
        if (d.vf !== null) throw errnoError('EACCES', 'Permission denied');
        this.setNumVfs(d.pf, v);
        return true;
      case 'driver_override':
        // An empty write (or a newline) clears the override, which reads back as "(null)".
        this.writeFile(`${this.devDir(pci)}/driver_override`, v === '' ? '(null)' : v);
        return true;
      case 'sriov_drivers_autoprobe':
        if (d.vf !== null) throw errnoError('EACCES', 'Permission denied');
        if (v !== '0' && v !== '1') throw errnoError('EINVAL', 'Invalid argument');
        this.writeFile(`${this.devDir(pci)}/sriov_drivers_autoprobe`, v);
        return true;
      default:
        // Everything else the simulator builds is read-only, as on real sysfs.
        throw errnoError('EACCES', 'Permission denied');
    }
  }

  private setNumVfs(pf: SimPf, v: string): void {
    // kstrtou16(buf, 0, ...): decimal, 0x hex or 0 octal, nothing else.
    const n = /^(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)$/i.test(v) ? Number(v.startsWith('0') && !/^0x/i.test(v) && v.length > 1 ? parseInt(v, 8) : v) : NaN;
    if (!Number.isInteger(n) || n > 0xffff) throw errnoError('EINVAL', 'Invalid argument');
    if (n > pf.totalVfs) throw errnoError('ERANGE', 'Numerical result out of range');
    const cur = this.numVfs(pf);
    if (n === cur) return;
    if (!this.driverOf(pf.pci)) throw errnoError('ENOENT', 'No such file or directory');
    if (n === 0) return this.destroyVfs(pf);
    if (cur !== 0) throw errnoError('EBUSY', 'Device or resource busy');
    this.createVfs(pf, n);
  }

  // --- VFs ------------------------------------------------------------------------

  private createVfs(pf: SimPf, n: number): void {
    const m = this.m;
    const pfDir = this.devDir(pf.pci);
    const autoprobe = this.readFile(`${pfDir}/sriov_drivers_autoprobe`) !== '0';
    const lines: string[][] = [];
    if (m.netdevs) {
      // A name taken already (a netdev made by hand, or left by another tool) would stop
      // the batch part-way: said first, naming it, with nothing changed.
      const taken = new Set([...links().map((l) => l.ifname), ...links(m.parkNetns!).map((l) => l.ifname)]);
      for (let j = 0; j < n; j++) {
        const { name, peer } = this.netdevNames({ pci: this.vfPci(pf, j), pf, vf: j });
        for (const x of [peer, name]) {
          if (taken.has(x)) throw errnoError('EEXIST', `netdev ${x} already exists (${x === peer ? 'on the host' : `in ${m.parkNetns}`}), and the simulator names VF ${j}'s ${x === peer ? 'representor' : 'netdev'} so: remove it (ip link del ${x}) or make the simulator with another --prefix`);
        }
      }
    }
    for (let j = 0; j < n; j++) {
      const d: Dev = { pci: this.vfPci(pf, j), pf, vf: j };
      const dir = this.devDir(d.pci);
      fs.mkdirSync(this.abs(dir), { recursive: true });
      this.writeFile(`${dir}/vendor`, `0x${m.vfVendor}`);
      this.writeFile(`${dir}/device`, `0x${m.vfDevice}`);
      this.writeFile(`${dir}/class`, '0x020000');
      this.writeFile(`${dir}/numa_node`, String(m.numaNode));
      this.writeFile(`${dir}/driver_override`, '(null)');
      this.symlink(`../${pf.pci}`, `${dir}/physfn`);
      this.symlink(`../${d.pci}`, `${pfDir}/virtfn${j}`);
      this.symlink(this.rel(`bus/pci/devices/${d.pci}`, dir), `bus/pci/devices/${d.pci}`);
      const g = `kernel/iommu_groups/${this.iommuGroup(d)}`;
      fs.mkdirSync(this.abs(`${g}/devices`), { recursive: true });
      this.symlink(this.rel(`${g}/devices/${d.pci}`, dir), `${g}/devices/${d.pci}`);
      this.symlink(this.rel(`${dir}/iommu_group`, g), `${dir}/iommu_group`);
      if (m.netdevs) {
        const { name, peer } = this.netdevNames(d);
        // The VF end starts out of sight (no driver yet); the representor stays on the host.
        lines.push(['link', 'add', name, 'address', vfMac(m, pf.index, j), 'netns', m.parkNetns!, ...VF_QUEUES, 'type', 'veth', 'peer', 'name', peer, ...VF_QUEUES]);
        lines.push(['link', 'set', peer, 'up']);
      }
    }
    try {
      ipBatch(lines);
    } catch (err) {
      // All or nothing, as the kernel's write: the pairs made before the failure go too.
      this.undoVfs(pf, 0, n);
      throw err;
    }
    if (m.netdevs) {
      vfOffloadsOff(Array.from({ length: n }, (_, j) => vfNetdev(m, pf.index, j)), m.parkNetns!);
      hostNetdevsLikeNic(Array.from({ length: n }, (_, j) => vfRepresentor(m, pf.index, j)));
    }
    if (m.netdevs) {
      // As a switchdev PF's driver lays them out: a netdev per VF under the PF's device,
      // named by its port (pf<PCI function>vf<index>). vfRepresentor finds them so.
      const fn = pf.pci.slice(pf.pci.lastIndexOf('.') + 1);
      for (let j = 0; j < n; j++) {
        const rep = vfRepresentor(m, pf.index, j);
        fs.mkdirSync(this.abs(`${pfDir}/net/${rep}`), { recursive: true });
        this.writeFile(`${pfDir}/net/${rep}/phys_port_name`, `pf${fn}vf${j}`);
        this.symlink(this.rel(`class/net/${rep}`, `${pfDir}/net/${rep}`), `class/net/${rep}`);
      }
    }
    this.writeFile(`${pfDir}/sriov_numvfs`, String(n));
    if (autoprobe) for (let j = 0; j < n; j++) this.probe(this.vfPci(pf, j));
  }

  private destroyVfs(pf: SimPf): void {
    const n = this.numVfs(pf);
    if (this.m.netdevs) {
      // Deleting the representor takes its peer with it, in whatever namespace it is.
      const lines: string[][] = [];
      for (let j = 0; j < n; j++) {
        const peer = vfRepresentor(this.m, pf.index, j);
        if (link(peer)) lines.push(['link', 'del', peer]);
      }
      try {
        ipBatch(lines);
      } catch (e) {
        // One went meanwhile (its VF's pod namespace was being deleted: the kernel takes
        // the pair down a moment later): the rest one by one, the gone ones skipped.
        for (const [, , peer] of lines) {
          try {
            ip(['link', 'del', peer!]);
          } catch (e2) {
            if (link(peer!)) throw e2;
          }
        }
        void e;
      }
    }
    this.removeVfTree(pf, n);
    this.writeFile(`${this.devDir(pf.pci)}/sriov_numvfs`, '0');
  }

  /** Removes VFs [from, to) of PF that a create did not finish: their netdev pairs (by
   *  the representor, which takes its peer wherever it is) and their tree entries. */
  private undoVfs(pf: SimPf, from: number, to: number): void {
    if (this.m.netdevs) {
      const here = new Set(links().map((l) => l.ifname));
      const reps = Array.from({ length: to - from }, (_, k) => vfRepresentor(this.m, pf.index, from + k)).filter((r) => here.has(r));
      ipBatch(reps.map((r) => ['link', 'del', r]));
    }
    this.removeVfTree(pf, to, from);
  }

  private removeVfTree(pf: SimPf, n: number, from = 0): void {
    for (let j = from; j < n; j++) {
      const d: Dev = { pci: this.vfPci(pf, j), pf, vf: j };
      const drv = this.driverOf(d.pci);
      if (drv) fs.rmSync(this.abs(`bus/pci/drivers/${drv}/${d.pci}`), { force: true });
      if (this.m.netdevs) {
        fs.rmSync(this.abs(`class/net/${vfNetdev(this.m, pf.index, j)}`), { force: true });
        const rep = vfRepresentor(this.m, pf.index, j);
        fs.rmSync(this.abs(`class/net/${rep}`), { force: true });
        fs.rmSync(this.abs(`${this.devDir(pf.pci)}/net/${rep}`), { recursive: true, force: true });
      }
      fs.rmSync(this.abs(`${this.devDir(pf.pci)}/virtfn${j}`), { force: true });
      fs.rmSync(this.abs(`bus/pci/devices/${d.pci}`), { force: true });
      fs.rmSync(this.abs(`kernel/iommu_groups/${this.iommuGroup(d)}`), { recursive: true, force: true });
      fs.rmSync(path.join(this.m.devRoot, 'vfio', String(this.iommuGroup(d))), { force: true });
      fs.rmSync(path.join(this.m.stateDir, 'vf', `${d.pci}.json`), { force: true });
      fs.rmSync(this.abs(this.devDir(d.pci)), { recursive: true, force: true });
    }
  }

  // --- drivers --------------------------------------------------------------------

  /** The driver the device would get on a probe: its override, else the one whose ID table has it. */
  private matchDriver(d: Dev): string | undefined {
    const override = this.readFile(`${this.devDir(d.pci)}/driver_override`);
    if (override && override !== '(null)') return this.drivers().includes(override) ? override : undefined;
    return d.vf === null ? this.m.pfDriver : this.m.vfDriver;
  }

  private bind(pci: string, drv: string): void {
    const d = this.dev(pci);
    if (!d || !this.drivers().includes(drv) || this.matchDriver(d) !== drv) throw errnoError('ENODEV', 'No such device');
    if (this.driverOf(pci)) throw errnoError('EBUSY', 'Device or resource busy');
    this.attach(d, drv);
  }

  private unbind(pci: string, drv: string): void {
    const d = this.dev(pci);
    if (!d || this.driverOf(pci) !== drv) throw errnoError('ENODEV', 'No such device');
    this.detach(d, drv);
  }

  private probe(pci: string): void {
    const d = this.dev(pci);
    if (!d) throw errnoError('ENODEV', 'No such device');
    if (this.driverOf(pci)) return; // already bound: nothing to do, as device_attach()
    const drv = this.matchDriver(d);
    if (drv) this.attach(d, drv);
  }

  private isNetDriver(d: Dev, drv: string): boolean {
    return drv === (d.vf === null ? this.m.pfDriver : this.m.vfDriver);
  }

  private attach(d: Dev, drv: string): void {
    const dir = this.devDir(d.pci);
    this.symlink(this.rel(`${dir}/driver`, `bus/pci/drivers/${drv}`), `${dir}/driver`);
    this.symlink(this.rel(`bus/pci/drivers/${drv}/${d.pci}`, dir), `bus/pci/drivers/${drv}/${d.pci}`);
    if (drv === VFIO_DRIVER) {
      fs.mkdirSync(path.join(this.m.devRoot, 'vfio'), { recursive: true });
      fs.writeFileSync(path.join(this.m.devRoot, 'vfio', 'vfio'), '');
      fs.writeFileSync(path.join(this.m.devRoot, 'vfio', String(this.iommuGroup(d))), '');
    } else if (this.isNetDriver(d, drv) && this.m.netdevs) {
      const { name } = this.netdevNames(d);
      // The kernel driver brings the netdev back: out of the park, into the host namespace.
      if (!link(name)) ip(['link', 'set', name, 'netns', String(process.pid)], this.m.parkNetns!);
      fs.mkdirSync(this.abs(`${dir}/net/${name}`), { recursive: true });
      if (d.vf === null) this.writeFile(`${dir}/net/${name}/speed`, String(this.m.linkSpeedMbps));
      this.symlink(this.rel(`class/net/${name}`, `${dir}/net/${name}`), `class/net/${name}`);
      if (d.vf !== null) this.applyEffects(d, this.readSettings(d));
    }
    // A bifurcated family's kernel driver (mlx5_core, with mlx5_ib) gives each VF an RDMA
    // device, which DPDK's mlx5 PMD reaches it through: infiniband/mlx5_N under the PCI
    // device, as the device plugin's isRdma and the device-info's rdma-device read it.
    if (d.vf !== null && this.isNetDriver(d, drv) && this.bifurcated()) {
      fs.mkdirSync(this.abs(`${dir}/infiniband/mlx5_${this.m.pfs.length + d.pf.index * d.pf.totalVfs + d.vf}`), { recursive: true });
    }
  }

  private detach(d: Dev, drv: string): void {
    const dir = this.devDir(d.pci);
    if (drv === VFIO_DRIVER) {
      fs.rmSync(path.join(this.m.devRoot, 'vfio', String(this.iommuGroup(d))), { force: true });
    } else if (this.isNetDriver(d, drv)) {
      if (d.vf === null) this.destroyVfs(d.pf); // a PF driver takes its VFs with it
      if (this.m.netdevs) {
        const { name, peer } = this.netdevNames(d);
        if (link(name)) {
          ip(['link', 'set', name, 'down']);
          ip(['link', 'set', name, 'netns', this.m.parkNetns!]);
        } else if (!link(name, this.m.parkNetns!)) {
          // The netdev is in some other namespace (a pod's): the kernel would destroy it
          // there, so do the same and start a fresh one, out of sight.
          ip(['link', 'del', peer]);
          const mac = d.vf === null ? undefined : vfMac(this.m, d.pf.index, d.vf);
          ip(['link', 'add', name, ...(mac ? ['address', mac] : []), 'netns', this.m.parkNetns!, ...VF_QUEUES, 'type', 'veth', 'peer', 'name', peer, ...VF_QUEUES]);
          ip(['link', 'set', peer, 'up']);
          vfOffloadsOff([name], this.m.parkNetns!);
          hostNetdevsLikeNic([peer]);
        }
        fs.rmSync(this.abs(`${dir}/net`), { recursive: true, force: true });
        fs.rmSync(this.abs(`class/net/${name}`), { force: true });
      }
    }
    fs.rmSync(this.abs(`${dir}/infiniband`), { recursive: true, force: true });
    fs.rmSync(this.abs(`${dir}/driver`), { force: true });
    fs.rmSync(this.abs(`bus/pci/drivers/${drv}/${d.pci}`), { force: true });
  }

  // --- netns teardown ---------------------------------------------------------------

  /**
   * When a network namespace is deleted, Linux hands its physical netdevs back to the
   * host namespace, but deletes virtual ones: a simulated VF's veth dies with the pod's
   * namespace, and its representor with it. This puts such VFs back as the kernel would
   * (in the host namespace under the VF's own name when a kernel driver is bound, parked
   * otherwise). Run on every open of the tree.
   */
  reconcile(): void {
    // Repairs need root (netdevs, and the lock in the tree): a user's read sees the tree
    // as it is, and root's next command puts it right.
    if (process.getuid?.() !== 0) return;
    this.finishHalfMade();
    if (!this.m.netdevs) return;
    // The namespace where VF netdevs without a driver wait, deleted by hand: made again
    // (the netdevs in it went with it, and their representors: put back below).
    const park = this.m.parkNetns!;
    if (!fs.existsSync(`/run/netns/${park}`)) {
      this.locked(() => {
        if (!fs.existsSync(`/run/netns/${park}`)) netnsAdd(park);
      });
    }
    // Representors never leave the host namespace, so the host's /sys/class/net says
    // which are gone without asking netlink (this runs on every open).
    const missing: Dev[] = [];
    for (const pf of this.m.pfs) {
      for (let j = 0; j < this.numVfs(pf); j++) {
        if (!fs.existsSync(`/sys/class/net/${vfRepresentor(this.m, pf.index, j)}`)) missing.push({ pci: this.vfPci(pf, j), pf, vf: j });
      }
    }
    if (missing.length === 0) return;
    this.locked(() => {
      // One ip batch and one ethtool pass for all of them: a node whose pods' namespaces
      // all went (a drain, a reboot) has a hundred to make, a few processes each before
      // (8–10 s for 128, in whatever command opened the tree first: helper-96).
      const made: Dev[] = [], batch: string[][] = [], inHost: string[] = [], parked: string[] = [], peers: string[] = [];
      for (const d of missing) {
        const { name, peer } = this.netdevNames(d);
        // Under the lock, look again: another process may have put it back, or removed
        // the VF altogether (sriov_numvfs=0) since the list was made.
        if (!this.dev(d.pci) || link(peer)) continue;
        const drv = this.driverOf(d.pci);
        const here = drv !== undefined && this.isNetDriver(d, drv);
        const where = here ? [] : ['netns', this.m.parkNetns!];
        batch.push(
          ['link', 'add', name, 'address', vfMac(this.m, d.pf.index, d.vf!), ...where, ...VF_QUEUES, 'type', 'veth', 'peer', 'name', peer, ...VF_QUEUES],
          ['link', 'set', peer, 'up'],
        );
        (here ? inHost : parked).push(name);
        peers.push(peer);
        made.push(d);
      }
      // A batch that fails part-way made the pairs before the failing line: those get
      // their offloads and settings still (the next open skips a VF whose pair is there).
      let failed: unknown;
      try {
        ipBatch(batch);
      } catch (e) {
        failed = e;
      }
      const there = (n: string) => failed === undefined || link(n) !== undefined;
      vfOffloadsOff(inHost.filter((n) => there(n)), null);
      vfOffloadsOff(parked.filter((n) => failed === undefined || link(n, this.m.parkNetns!) !== undefined), this.m.parkNetns!);
      hostNetdevsLikeNic(peers.filter(there));
      for (const d of made) if (there(this.netdevNames(d).peer)) this.applyEffects(d, this.readSettings(d));
      if (failed !== undefined) throw failed;
    });
  }

  /**
   * A VF count write killed part-way (SIGKILL, or a signal the writer did not handle)
   * leaves VFs past sriov_numvfs: their tree entries (made first) and netdev pairs. The
   * kernel's write is all or nothing, so they are removed, as if it had never begun: the
   * count stays what the file says, and the next write works. A stat per PF when there
   * are none.
   */
  private finishHalfMade(): void {
    const past = (pf: SimPf) => {
      try {
        fs.lstatSync(this.abs(`${this.devDir(pf.pci)}/virtfn${this.numVfs(pf)}`));
        return true;
      } catch {
        return false;
      }
    };
    const half = this.m.pfs.filter(past);
    if (!half.length) return;
    this.locked(() => {
      for (const pf of half) {
        if (!past(pf)) continue; // put right by another process meanwhile
        const n = this.numVfs(pf);
        let end = n;
        while (end < pf.totalVfs && fs.existsSync(this.abs(this.devDir(this.vfPci(pf, end))))) end++;
        this.undoVfs(pf, n, Math.max(end, n + 1));
      }
    });
  }

  // --- PF-side VF settings (what netlink IFLA_VF_* would carry) ----------------------

  private settingsFile(d: Dev): string {
    return path.join(this.m.stateDir, 'vf', `${d.pci}.json`);
  }

  private readSettings(d: Dev): VfSettings {
    try {
      return { ...DEFAULT_VF_SETTINGS, ...(JSON.parse(fs.readFileSync(this.settingsFile(d), 'utf8')) as Partial<VfSettings>) };
    } catch {
      return { ...DEFAULT_VF_SETTINGS };
    }
  }


  vfSettings(pfPci: string, index: number): VfSettings {
    const pf = this.m.pfs.find((p) => p.pci === pfPci);
    if (!pf || index >= this.numVfs(pf)) throw errnoError('EINVAL', 'Invalid argument');
    return this.readSettings({ pci: this.vfPci(pf, index), pf, vf: index });
  }

  /**
   * Sets PF-side VF settings. Effects that veth can show for real are applied: the
   * administrative MAC reaches the VF netdev when it is in sight, and link-state disable
   * takes the carrier away (the representor goes down). The rest is recorded.
   */
  setVfSettings(pfPci: string, index: number, change: Partial<VfSettings>): VfSettings {
    return this.locked(() => {
      const pf = this.m.pfs.find((p) => p.pci === pfPci);
      if (!pf || index >= this.numVfs(pf)) throw errnoError('EINVAL', 'Invalid argument');
      const d: Dev = { pci: this.vfPci(pf, index), pf, vf: index };
      const next = { ...this.readSettings(d), ...change };
      // What the simulated family's PF driver refuses, with its errno (the rules that
      // `vf config` and vfplane-cni check first), so that everything above the simulator
      // meets the driver's answers.
      const caps = this.vfCaps();
      // ice sums the guarantees of all the PF's VFs, this one's old rate left out.
      let others: number | null = null;
      if (caps?.minTxRateSumUpToLinkSpeed) {
        others = 0;
        for (let i = 0; i < this.numVfs(pf); i++) {
          if (i !== index) others += this.readSettings({ pci: this.vfPci(pf, i), pf, vf: i }).minTxRate;
        }
      }
      const [refused] = vfSettingRefusals(caps, this.m.linkSpeedMbps, change, undefined, others);
      if (refused) throw errnoError(refused.errno, VF_SETTING_ERRNOS[refused.errno]);
      // IFLA_VF_VLAN sets VLAN and QoS together (IFLA_VF_VLAN_LIST the protocol too),
      // and a VF without a VLAN has no priority, and its protocol reads back 802.1Q
      // (iproute2 sends none with vlan 0; the kernel's default).
      if (next.vlan === 0) {
        next.qos = 0;
        next.vlanProto = '802.1Q';
      }
      fs.mkdirSync(path.dirname(this.settingsFile(d)), { recursive: true });
      const tmp = `${this.settingsFile(d)}.${process.pid}`;
      fs.writeFileSync(tmp, JSON.stringify(next));
      fs.renameSync(tmp, this.settingsFile(d));
      this.applyEffects(d, next, change);
      return next;
    });
  }

  /** Whether the simulated family's DPDK PMD is bifurcated (mlx5). */
  private bifurcated(): boolean {
    try {
      return getProfile(this.m.profile).dpdk.bifurcated;
    } catch {
      return false;
    }
  }

  private vfCaps(): HwProfile['vfSettings'] | null {
    try {
      return getProfile(this.m.profile).vfSettings ?? null;
    } catch {
      return null; // the simulated family's profile is gone: take everything, as before
    }
  }

  private applyEffects(d: Dev, s: VfSettings, change: Partial<VfSettings> = s): void {
    if (!this.m.netdevs || d.vf === null) return;
    const { name, peer } = this.netdevNames(d);
    if (change.mac !== undefined && s.mac !== '00:00:00:00:00:00') {
      for (const ns of [undefined, this.m.parkNetns!]) {
        if (link(name, ns)) {
          ip(['link', 'set', name, 'address', s.mac], ns);
          break;
        }
      }
    }
    if (change.linkState !== undefined) ip(['link', 'set', peer, s.linkState === 'disable' ? 'down' : 'up']);
  }
}

const kernels = new Map<string, SimKernel>();

export function simKernel(root: string, o: { unfinished?: boolean } = {}): SimKernel {
  const abs = path.resolve(root);
  let k = kernels.get(abs);
  if (!k) {
    k = new SimKernel(abs, o.unfinished);
    // Kept once finished: the kernel of a simulator being made is its create's alone.
    if (!o.unfinished) kernels.set(abs, k);
  }
  // Every open: a long-running process (vfplane cni serve) must see pod namespaces that
  // were deleted since its last call.
  k.reconcile();
  return k;
}

registerSimKernel(simKernel);

/**
 * A real VF checksums and segments in hardware, so its representor and the wire see
 * finished, MTU-sized frames. A veth passes the sender's unfinished work along instead
 * (partial checksums, 64 KiB TSO frames), which a data plane reading the representor
 * with AF_PACKET or AF_XDP would forward broken. Switching tx offload off on the VF end
 * makes the kernel finish both in software before the frame leaves, as hardware would.
 * Without ethtool the simulator still works, minus TCP through the data plane.
 */
function vfOffloadsOff(names: string[], netns: string | null): void {
  ethtoolK(names, netns, ['tx', 'off', 'tso', 'off'], 'TCP through a data plane on this simulated NIC will fail');
}

/**
 * A real NIC's netdevs, its switchdev representors included, come up with GRO on (the
 * kernel's default for every netdev); a veth alone starts with it off. The simulator's
 * representors and PF netdevs get it on, so that the simulated NIC hands a data plane
 * what a real one does: merged frames, unless the data plane switches GRO off.
 */
export function hostNetdevsLikeNic(names: string[]): void {
  ethtoolK(names, null, ['gro', 'on'], 'its representors and PF netdevs keep the veth default, GRO off');
}

function ethtoolK(names: string[], netns: string | null, change: string[], consequence: string): void {
  if (names.length === 0) return;
  const script = `for d; do ethtool -K "$d" ${change.join(' ')} >/dev/null 2>&1 || echo "$d"; done`;
  const cmd = netns ? ['ip', 'netns', 'exec', netns, 'sh', '-c', script, 'sh', ...names] : ['sh', '-c', script, 'sh', ...names];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 30_000 });
  // Killed by a signal: Ctrl-C reached the process group, and the command is being
  // interrupted (its cleanup says so); ethtool is not what went wrong.
  if (r.signal && !r.error) return;
  if (r.error || r.status !== 0 || r.stdout.trim()) {
    process.stderr.write(`vfplane sim: could not run ethtool -K ${change.join(' ')} on ${r.stdout.trim() || names.join(' ')} (is ethtool installed?); ${consequence}\n`);
  }
}

/** A simulator lock's holder: its pid and, when recorded, the process's start time (so
 *  that a pid the kernel gave to another process since does not look like the holder). */
interface LockHolder {
  pid: number;
  start?: string;
}

/** The holder of a simulator lock; null when it names none, 'gone' when the lock is gone. */
function lockHolder(lock: string): LockHolder | null | 'gone' {
  try {
    const [pid, start] = fs.readFileSync(path.join(lock, 'pid'), 'utf8').trim().split(/\s+/);
    const n = Number(pid);
    if (!Number.isInteger(n) || n <= 0) return null;
    return start ? { pid: n, start } : { pid: n };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return fs.existsSync(lock) ? null : 'gone';
  }
}

function holderAlive(h: LockHolder): boolean {
  if (!pidAlive(h.pid)) return false;
  return h.start === undefined || pidStart(h.pid) === undefined || pidStart(h.pid) === h.start;
}

function sameHolder(a: LockHolder | null | 'gone', b: LockHolder | null | 'gone'): boolean {
  if (a === null || a === 'gone' || b === null || b === 'gone') return a === b;
  return a.pid === b.pid && a.start === b.start;
}

function olderThan(p: string, ms: number): boolean {
  try {
    return Date.now() - fs.statSync(p).mtimeMs > ms;
  } catch {
    return false;
  }
}

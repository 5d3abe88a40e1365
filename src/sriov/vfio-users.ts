// Which processes hold VFIO group devices open. A VF bound to vfio-pci whose group some
// process has open is in use by a DPDK application — a pod sriov-cni and the SR-IOV
// device plugin gave it to (a node being migrated), a data plane on it, testpmd — even
// though no allocation of vfplane's says so. Handing it to a pod would give one VF to
// two users; on real hardware the second cannot even open the group (EBUSY), and its
// pod fails with an error about the device rather than about who has it.
import * as fs from 'node:fs';

export interface VfioUser {
  pid: number;
  comm: string;
}

/**
 * Every open file under a `vfio/` directory (/dev/vfio/N; a simulated NIC's is in its
 * tree), by the path it was opened as (the kernel's canonical path), with the first
 * process found holding it. This process's own files are not counted. One pass over
 * /proc/PID/fd (a few hundred entries on a quiet node, ~10 ms on thousands).
 */
export function vfioUsers(): Map<string, VfioUser> {
  const out = new Map<string, VfioUser>();
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const p of pids) {
    const pid = Number(p);
    if (pid === process.pid) continue;
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${p}/fd`);
    } catch {
      continue; // gone, or a kernel thread
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = fs.readlinkSync(`/proc/${p}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!target.includes('/vfio/') || out.has(target)) continue;
      let comm = '?';
      try {
        comm = fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      } catch {
        // gone meanwhile
      }
      out.set(target, { pid, comm });
    }
  }
  return out;
}

/** The path a VFIO group device is open as in /proc/PID/fd: its real path (a simulated
 *  NIC's devRoot may be given through a symlink or with `..`). */
export function vfioKey(device: string): string {
  try {
    return fs.realpathSync(device);
  } catch {
    return device;
  }
}

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

/** What identifies the file a path or an open file is: a device by its number (a
 *  container's /dev/vfio/N is its own node for the host's device), anything else (a
 *  simulated NIC's group files) by filesystem and inode: whatever path, mount namespace
 *  or bind mount a process opened it through (helper-88). */
function identity(st: fs.Stats): string {
  return st.isCharacterDevice() ? `c${st.rdev}` : `f${st.dev}:${st.ino}`;
}

/**
 * Who has each open file that could be a VFIO group open, by identity, with the first
 * process found holding it. This process's own files are not counted. One pass over
 * /proc/PID/fd: sockets, pipes and anonymous inodes are passed over by their link text,
 * the rest stat'ed (a few hundred on a quiet node, a few ms).
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
      let st: fs.Stats;
      try {
        if (!fs.readlinkSync(`/proc/${p}/fd/${fd}`).startsWith('/')) continue;
        st = fs.statSync(`/proc/${p}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!st.isCharacterDevice() && !st.isFile()) continue;
      const id = identity(st);
      if (out.has(id)) continue;
      let comm = '?';
      try {
        comm = fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      } catch {
        // gone meanwhile
      }
      out.set(id, { pid, comm });
    }
  }
  return out;
}

/** The identity vfioUsers keys a VFIO group device by; null when it cannot be read. */
export function vfioKey(device: string): string | null {
  try {
    return identity(fs.statSync(device));
  } catch {
    return null;
  }
}

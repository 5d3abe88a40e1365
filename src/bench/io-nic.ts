// `vfplane bench --pci ADDR` (DPDK on a vfio-pci VF) and `--iface NAME` (AF_XDP on a
// netdev): encap throughput onto a real NIC. The uplink is the NIC; the pod side is a
// generator in memory (memory-gen for AF_XDP, net_null for DPDK), so the figure is what
// our worker puts on the wire: the uplink's tx packets per second. Frames go to a
// static peer MAC (02:00:00:00:02:01, VTEP 192.0.2.2): on a shared segment, use a VF on
// an isolated VLAN or a cable to a port that drops them.
import { existsSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveTunnel } from '../packet/config.js';
import { parseIp, parseMac } from '../util/addr.js';
import { RuntimeError } from '../cli/errors.js';
import { benchFrames, sizePattern, type SizeSpec } from './frames.js';
import { ADDR } from './io-topo.js';
import { LineChild, sleep } from './io-proc.js';
import { median } from './memory.js';
import { portTxRates } from './dataplane.js';

export interface NicBenchOptions {
  backend: 'dpdk' | 'afxdp';
  pci?: string;
  iface?: string;
  sizes: SizeSpec[];
  vni: number;
  cpu: number;
  durationMs: number;
  trials: number;
  onProgress?: (m: string) => void;
}

/** Checks the device before anything starts; the error names the value and the fix. */
export function checkNic(o: { pci?: string; iface?: string }, sys = '/sys'): void {
  if (o.pci) {
    // (The CLI parsed it: DDDD:BB:DD.F, lower-case.)
    const dev = `${sys}/bus/pci/devices/${o.pci}`;
    if (!existsSync(dev)) throw new RuntimeError(`--pci ${o.pci}: no such PCI device on this machine (${dev} is missing); list VFs with lspci -D | grep -i 'virtual function'`, undefined, 'not-found');
    const drv = existsSync(`${dev}/driver`) ? basename(readlinkSync(`${dev}/driver`)) : 'none';
    if (drv !== 'vfio-pci') throw new RuntimeError(`--pci ${o.pci} is bound to ${drv}, not vfio-pci; fix: modprobe vfio-pci && dpdk-devbind.py -b vfio-pci ${o.pci}`, undefined, 'conflict');
  }
  if (o.iface && !existsSync(`${sys}/class/net/${o.iface}`)) {
    throw new RuntimeError(`--iface ${o.iface}: no such network interface in this netns (${sys}/class/net/${o.iface} is missing); give the netdev of a VF (ip link)`, undefined, 'not-found');
  }
}

/** The host's own netdev (its management interface, with its addresses and default
 *  route) is never a bench's: the afxdp trial takes the whole netdev and transmits at line
 *  rate. Refused as the data plane refuses it. */
export async function refuseHostIface(iface: string): Promise<void> {
  const { linkAddrs, refuseHostNetdev, refuseStackedNetdev } = await import('../net/netops.js');
  const l = await linkAddrs(null, iface);
  if (!l) return;
  refuseHostNetdev(l, `--iface ${iface}`, 'the bench');
  refuseStackedNetdev(null, iface, `--iface ${iface}`, 'the bench');
}

export async function runNicBench(o: NicBenchOptions) {
  checkNic(o);
  if (o.iface) await refuseHostIface(o.iface);
  const say = o.onProgress ?? (() => {});
  const cells: { size: SizeSpec; mpps: number; trialsMpps: number[] }[] = [];
  const vtep = parseIp(ADDR.vtepS)!.bytes;
  for (const size of o.sizes) {
    say(`  ${o.pci ?? o.iface} encap ${size} …`);
    let trials: number[] = [];
    if (o.backend === 'afxdp') {
      const { DataPlane } = await import('../dataplane/dp.js');
      const dp = new DataPlane({ workers: 1, cpus: [o.cpu], idleSpins: 0 });
      try {
        const pod = dp.openPort('memory-gen', { frames: benchFrames(sizePattern(size), 200) }, 'gen');
        const up = dp.openPort('afxdp', { ifname: o.iface! }, 'uplink');
        dp.commit({
          uplink: up.slot, uplinkMac: parseMac(ADDR.dsMac)!, tunnel: resolveTunnel({ local: ADDR.vtepD, remote: ADDR.vtepS }),
          peers: [{ vtep, mac: parseMac(ADDR.sMac)! }], atts: [{ port: pod.slot, vni: o.vni, mac: parseMac(ADDR.gMac)! }],
          fdb: [{ vni: o.vni, mac: parseMac(ADDR.remoteMac)!, vtep }], floods: [], extraVnis: [], learn: false, antiSpoof: false, icmpTooBig: false, verifyUdpCsum: false,
        });
        trials = await portTxRates(dp, up.slot, 300, o.trials, o.durationMs);
      } finally {
        dp.stop();
      }
    } else {
      const js = fileURLToPath(new URL('./io-dpdk-child.js', import.meta.url));
      const c = new LineChild('the DPDK DUT', process.execPath, [js, JSON.stringify({
        cpu: o.cpu, vni: o.vni, vtepLocal: ADDR.vtepD, peer: { vtep: ADDR.vtepS, mac: ADDR.sMac }, podMac: ADDR.gMac,
        fdbMac: '00:00:00:00:00:00', pci: [o.pci], pod: `net_null0,size=${size === 'imix' ? 64 : size}`, uplink: o.pci,
      })]);
      try {
        await c.next(60000);
        await sleep(300);
        let a = await c.mark<{ t_ns: number; upTx: number }>();
        for (let t = 0; t < o.trials; t++) {
          await sleep(o.durationMs);
          const b = await c.mark<{ t_ns: number; upTx: number }>();
          trials.push(((b.upTx - a.upTx) / (b.t_ns - a.t_ns)) * 1e3);
          a = b;
        }
      } finally {
        await c.close();
      }
    }
    cells.push({ size, mpps: median(trials), trialsMpps: trials });
  }
  return { backend: o.backend, device: o.pci ?? o.iface, op: 'encap', measured: 'uplink tx packets per second', cells };
}

// The DPDK DUT of `vfplane bench --backend dpdk`, in a process of its own: the EAL starts
// once per process and its vdevs (net_af_xdp on a veth) bind in the process's netns, so
// the bench runs this child inside D (`ip netns exec`). Line protocol as io-proc.ts:
// {"ready":...}, then "mark" → counters, "quit" → stop, undo the EAL environment, exit.
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { DataPlane } from '../dataplane/dp.js';
import { prepareDpdkEnv } from '../dataplane/dpdk-env.js';
import { benchDpdkJournal, dropBenchDpdkDir } from './dpdk-journal.js';
import { resolveTunnel } from '../packet/config.js';
import { parseIp, parseMac } from '../util/addr.js';

export interface DpdkChildConfig {
  cpu: number;
  pod: string;          // devargs of the pod port
  uplink: string;       // devargs of the uplink
  pci?: string[];
  mbufs?: number;
  vni: number;
  uplinkMac?: string;   // default: the uplink's own MAC
  vtepLocal: string;
  peer: { vtep: string; mac: string };
  podMac: string;       // the attachment's MAC
  fdbMac: string;       // inner destination sent to the peer
  txOffloads?: number;  // DPDK_TX bits asked of the uplink (default none)
  udpCsum?: boolean;    // outer UDP checksum on IPv4 (IPv6 always has one)
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2]!) as DpdkChildConfig;
  const stateDir = join(tmpdir(), `vfplane-bench-${process.pid}`);
  const env = prepareDpdkEnv({
    cores: String(c.cpu), stateDir, hugepages: 256,
    filePrefix: `vfpbench${process.pid}`, pci: c.pci, warn: (m) => process.stderr.write(`warning: ${m}\n`),
    journal: benchDpdkJournal('dut'), // for the next bench, should this child be killed
  });
  let dp: DataPlane | null = null;
  const finish = (code: number) => {
    try { dp?.stop(); } finally { env.cleanup(); dropBenchDpdkDir(); rmSync(stateDir, { recursive: true, force: true }); }
    process.exit(code);
  };
  process.on('SIGTERM', () => finish(143));
  process.on('SIGINT', () => finish(130));
  try {
    DataPlane.dpdkInit(env.args);
    dp = new DataPlane({ workers: 1, cpus: [c.cpu], idleSpins: 0 });
    const mb = c.mbufs ? { mbufs: c.mbufs } : {};
    const pod = dp.openPort('dpdk', { dev: c.pod, ...mb }, 'pod');
    const up = dp.openPort('dpdk', { dev: c.uplink, ...mb, ...(c.txOffloads ? { txOffloads: c.txOffloads } : {}) }, 'uplink');
    const ip = (s: string) => parseIp(s)!.bytes;
    const mac = (s: string) => parseMac(s)!;
    const vtep = ip(c.peer.vtep);
    dp.commit({
      uplink: up.slot,
      uplinkMac: c.uplinkMac ? mac(c.uplinkMac) : up.mac!,
      tunnel: resolveTunnel({ local: c.vtepLocal, remote: c.peer.vtep, udpCsum: c.udpCsum ?? false }),
      peers: [{ vtep, mac: mac(c.peer.mac) }],
      atts: [{ port: pod.slot, vni: c.vni, mac: mac(c.podMac) }],
      fdb: [{ vni: c.vni, mac: mac(c.fdbMac), vtep }],
      floods: [], extraVnis: [], learn: false, antiSpoof: false, icmpTooBig: false, verifyUdpCsum: false,
    });
    process.stdout.write(JSON.stringify({ ready: true, pod: { driver: pod.driver, slot: pod.slot }, uplink: { driver: up.driver, slot: up.slot, txOffloads: up.txOffloads ?? 0 } }) + '\n');
    const rl = createInterface({ input: process.stdin });
    for await (const line of rl) {
      if (line.startsWith('quit')) break;
      if (line.startsWith('mark')) {
        const k = dp.counters();
        const p = k.ports.get(pod.slot), u = k.ports.get(up.slot);
        process.stdout.write(JSON.stringify({
          t_ns: Number(process.hrtime.bigint()), podRx: Number(p?.rxPkts ?? 0n), podTx: Number(p?.txPkts ?? 0n),
          upRx: Number(u?.rxPkts ?? 0n), upTx: Number(u?.txPkts ?? 0n),
          drops: Object.fromEntries(Object.entries(k.drops).map(([a, b]) => [a, Number(b)])),
        }) + '\n');
      }
    }
    finish(0);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    finish(1);
  }
}

void main();

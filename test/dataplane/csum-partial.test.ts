// A pod whose interface leaves its TCP and UDP checksums to the device (a veth with tx
// checksum offload on, the kernel's default: CHECKSUM_PARTIAL): the AF_PACKET port sees
// them marked unfinished and finishes them as the device would, so what reaches the
// underlay carries inner checksums that verify (tshark's verdict), and status says so.
// Without it, such a pod's TCP never connected across the overlay while ping worked.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { writePcap } from '../helpers/frames.js';
import { capture } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';
import { POD, uplinkNetns } from '../helpers/underlay.js';

const S = '02:00:00:00:7e:02'; // the remote pod, behind VTEP 192.0.2.2

describePrivileged('checksums a pod left to the device (AF_PACKET)', { netns: true, commands: ['tshark', 'ethtool'] }, () => {
  const e = uplinkNetns('csump');
  const { up, upp, rep, repp, d } = e;

  it('are finished by the port: the inner UDP and TCP checksums on the underlay verify', async () => {
    // The pod sends only what the test has it send: no IPv6 (its MLD reports and router
    // solicitations are flooded to the peer too, and were once among the two frames captured).
    e.n.sysctl(`net.ipv6.conf.${repp}.disable_ipv6`, '1');
    e.n.ip(['link', 'set', repp, 'address', POD]);
    e.n.ip(['addr', 'replace', '10.9.0.1/24', 'dev', repp]);
    e.n.ip(['neigh', 'replace', '10.9.0.2', 'lladdr', S, 'dev', repp, 'nud', 'permanent']);
    e.n.exec('ethtool', ['-K', repp, 'tx', 'on']);
    expect(e.n.exec('ethtool', ['-k', repp])).toMatch(/^tx-checksumming: on/m);
    const dir = join(d.dir, 'afpacket');
    mkdirSync(dir);
    const dp = await dataplaneOn(e.n, up, dir, { backend: 'afpacket', peers: [{ vtep: '192.0.2.2', mac: '02:bb:00:00:00:02' }], fdb: [{ vni: 100, mac: S, vtep: '192.0.2.2' }] });
    try {
      const a = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', rep, '--vni', '100', '--mac', POD, '--netns', e.n.path]);
      expect(a.code, a.stderr).toBe(0);
      const cap = capture(e.n, upp, { count: 2, timeoutS: 15, incoming: true, udpDport: 4789 });
      await cap.ready;
      // The pod's own kernel sends: a UDP datagram, and a TCP SYN (a connect nobody answers).
      const py = 'import socket\n' +
        's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"x" * 101, ("10.9.0.2", 9))\n' +
        't = socket.socket(); t.setblocking(False)\n' +
        'try:\n    t.connect(("10.9.0.2", 8080))\nexcept BlockingIOError:\n    pass\n' +
        'import time; time.sleep(0.3)\n';
      const r = spawnSync('ip', ['netns', 'exec', e.n.name, '/usr/bin/python3', '-c', py], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const got = await cap.done;
      expect(got).toHaveLength(2);
      const pcap = join(dir, 'out.pcap');
      writePcap(pcap, got);
      const F = ['vxlan.vni', 'udp.checksum.status', 'tcp.checksum.status', 'tcp.flags.syn'];
      const rows = execFileSync('tshark', ['-r', pcap, '-o', 'udp.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-T', 'fields', '-E', 'separator=|', ...F.flatMap((f) => ['-e', f])], { encoding: 'utf8' })
        .trim().split('\n').map((l) => Object.fromEntries(l.split('|').map((v, i) => [F[i], v])));
      // Repeated fields: the outer UDP's, then the inner's. Outer UDP checksum 0 (off):
      // tshark says 3 (not present); the inner ones: 1, good.
      const udp = rows.find((x) => !x['tcp.flags.syn']);
      const tcp = rows.find((x) => x['tcp.flags.syn']);
      expect(udp!['vxlan.vni']).toBe('100');
      expect(udp!['udp.checksum.status']!.split(',')).toEqual(['3', '1']);
      expect(tcp!['tcp.checksum.status']).toBe('1');
      const st = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      expect(st.stdout).toMatch(new RegExp(`^${rep}: 2 frame\\(s\\) arrived with their TCP/UDP checksum left to the device .*finished here; \`ethtool -K <the pod's interface> tx off\` saves the pass$`, 'm'));
    } finally {
      await dp.stop();
    }
  });
});

// MACs and IP addresses are canonicalised where they enter (the config file, the control
// socket): lower-case colon MACs, RFC 5952 IPv6. Every comparison after that is between
// canonical texts, so "02-00-00-00-01-02" is the pod's MAC 02:00:00:00:01:02, and
// 2001:DB8:0::12 is the peer 2001:db8::12.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { request } from '../../src/dataplane/control.js';
import { parseConfig } from '../../src/dataplane/config.js';
import { Netns, ifname, vethIn, scratchDir } from '../helpers/netns.js';

describe('the data-plane config canonicalises addresses', () => {
  it('MACs to lower-case with colons, IPs to their canonical text', () => {
    const c = parseConfig({
      uplink: { ifname: 'ens1f0', vtep: '2001:DB8:0:0::1', mac: '02-AB-00-00-00-01' },
      peers: [{ vtep: '2001:db8:0::2', mac: '02:AB:00:00:00:02' }],
      vnis: [{ vni: 5, flood: ['2001:DB8::2'] }],
      fdb: [{ vni: 5, mac: 'AA-BB-CC-00-00-01', vtep: '2001:0db8::2' }],
      attachments: [{ representor: 'r0', vni: 5, mac: '02-00-00-00-01-02', remote: '2001:DB8::2' }],
    });
    expect(c.uplink).toMatchObject({ vtep: '2001:db8::1', mac: '02:ab:00:00:00:01' });
    expect(c.peers).toEqual([{ vtep: '2001:db8::2', mac: '02:ab:00:00:00:02' }]);
    expect(c.vnis).toEqual([{ vni: 5, flood: ['2001:db8::2'] }]);
    expect(c.fdb).toEqual([{ vni: 5, mac: 'aa:bb:cc:00:00:01', vtep: '2001:db8::2' }]);
    expect(c.attachments[0]).toMatchObject({ mac: '02:00:00:00:01:02', remote: '2001:db8::2' });
  });
});

describePrivileged('the control socket compares canonical addresses', { root: true }, () => {
  let n: Netns;
  const up = ifname('u'), upp = ifname('v'), rep = ifname('r'), repp = ifname('s');
  const d = scratchDir('canon');

  beforeAll(() => {
    n = Netns.create('canon');
    vethIn(n, up, upp);
    vethIn(n, rep, repp);
  });
  afterAll(() => {
    n?.destroy();
    d.remove();
  });

  it('stores a dashed MAC canonically, and finds IPv6 peers whatever their spelling', async () => {
    const dp = await dataplaneOn(n, up, d.dir, { uplink: { ifname: up, netns: n.path, vtep: '2001:db8::1' } });
    const cli = (...args: string[]) => {
      const r = vfplane(['dataplane', ...args, '--socket', dp.socket]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    try {
      cli('attach', '--representor', rep, '--vni', '100', '--mac', '02-00-00-00-01-02', '--netns', n.path);
      let st = (await request(dp.socket, { op: 'status' })) as { attachments: { mac: string }[]; peers: { vtep: string; mac?: string }[] };
      expect(st.attachments.map((a) => a.mac)).toEqual(['02:00:00:00:01:02']);
      // explain and anti-spoofing agree with the stored MAC.
      const toPod = JSON.parse(cli('explain', '--vni', '100', '--mac', '02:00:00:00:01:02', '--json')) as { verdict: string; representor?: string };
      expect(toPod).toMatchObject({ verdict: 'local', representor: rep });
      // The VNI's only pod, no peer yet: its broadcast passes anti-spoofing (the dashed MAC
      // was stored canonically) and then has nowhere to go.
      const explainFromPod = () =>
        JSON.parse(cli('explain', '--vni', '100', '--mac', 'ff:ff:ff:ff:ff:ff', '--from', rep, '--src', '02:00:00:00:01:02', '--json')) as { verdict: string; reason?: string };
      expect(explainFromPod()).toMatchObject({ verdict: 'drop', reason: 'no_destination' });

      cli('peer', 'add', '2001:db8::12');
      expect(explainFromPod().verdict).toBe('flood');
      cli('peer', 'add', '2001:DB8:0::12', '--mac', '02:00:00:00:00:12'); // an update, not a second peer
      st = (await request(dp.socket, { op: 'status' })) as typeof st;
      expect(st.peers).toEqual([expect.objectContaining({ vtep: '2001:db8::12', mac: '02:00:00:00:00:12' })]);
      // Updated again without --mac: the MAC goes, and the CLI says so.
      const again = vfplane(['dataplane', 'peer', 'add', '2001:db8::12', '--socket', dp.socket]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain('note: peer 2001:db8::12 had the underlay MAC 02:00:00:00:00:12, set by hand; without --mac it is resolved by ARP/ND now');
      st = (await request(dp.socket, { op: 'status' })) as typeof st;
      expect(st.peers[0]!.mac).toBeUndefined();
      cli('peer', 'add', '2001:db8::12', '--mac', '02:00:00:00:00:12');
      cli('fdb', 'add', '--vni', '100', '--mac', '02:00:00:00:09:09', '--vtep', '2001:DB8::12');
      cli('fdb', 'del', '--vni', '100', '--mac', '02-00-00-00-09-09');
      // A static entry for a local pod's MAC is kept, and said to send nothing while the
      // pod is here (local pods come first).
      const shadow = vfplane(['dataplane', 'fdb', 'add', '--vni', '100', '--mac', '02:00:00:00:01:02', '--vtep', '2001:db8::12', '--socket', dp.socket]);
      expect(shadow.code, shadow.stderr).toBe(0);
      expect(shadow.stderr).toContain(`warning: 02:00:00:00:01:02 on VNI 100 is the MAC of the pod attached on ${rep}: its frames go to that pod (local pods come before the FDB), not to 2001:db8::12, until it is detached`);
      expect((JSON.parse(cli('explain', '--vni', '100', '--mac', '02:00:00:00:01:02', '--json')) as { verdict: string }).verdict).toBe('local');
      cli('fdb', 'del', '--vni', '100', '--mac', '02:00:00:00:01:02');
      // Socket changes are in the daemon's log, as SIGHUP's are; so is a refused one.
      expect(vfplane(['dataplane', 'fdb', 'add', '--vni', '100', '--mac', '02:00:00:00:09:0a', '--vtep', '2001:db8::99', '--socket', dp.socket]).code).toBe(1);
      for (let i = 0; i < 200 && !dp.log().includes('refused:'); i++) await new Promise((r) => setTimeout(r, 10)); // its stderr, read as it comes
      const log = dp.log();
      expect(log).toMatch(/control socket: peer-add 2001:db8::12 \(MAC 02:00:00:00:00:12\), epoch \d+/);
      expect(log).toMatch(/control socket: fdb-del VNI 100 02:00:00:00:09:09, epoch \d+/);
      expect(log).toMatch(/control socket: fdb-add VNI 100 02:00:00:00:09:0a → 2001:db8::99 refused: VTEP 2001:db8::99 is not a peer/);
      // A client refused in a loop fills the log no more than 20 lines of it in 10 s
      // (helper-72: 460 lines in 20 s); the rest are counted, said with the next logged.
      for (let i = 0; i < 60; i++) await request(dp.socket, { op: 'fdb-add', vni: 100, mac: '02:00:00:00:09:0b', vtep: '2001:db8::98' }).catch(() => undefined);
      for (let i = 0; i < 200 && (dp.log().match(/fdb-add VNI 100 02:00:00:00:09:0b → 2001:db8::98 refused/g) ?? []).length < 19; i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 200));
      expect(dp.log().match(/fdb-add VNI 100 02:00:00:00:09:0b → 2001:db8::98 refused/g)).toHaveLength(19); // and the one above: 20
      cli('peer', 'del', '2001:db8:0::12');
      st = (await request(dp.socket, { op: 'status' })) as typeof st;
      expect(st.peers).toEqual([]);
    } finally {
      await dp.stop();
    }
  });
});

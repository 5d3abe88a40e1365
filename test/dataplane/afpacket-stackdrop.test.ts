// An AF_PACKET port with stackDrop (what the daemon and the bench open for the netdevs
// the data plane owns): the worker still receives every frame, the host stack on that
// interface gets none (the kernel answers no ping there), and the drop goes away with
// the port (its tcx link stays on the netdev for the next port, switched off). The
// kernel's own ICMP stack is the witness on both sides.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataPlane } from '../../src/dataplane/dp.js';
import { resolveTunnel } from '../../src/packet/config.js';
import { parseIp, parseMac } from '../../src/util/addr.js';
import { moduleChild } from '../helpers/child.js';
import { ROOT } from '../helpers/cli.js';
import { ifname, Netns, vethPair } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';

const NET = `10.${150 + (process.pid % 50)}.7`;

describePrivileged('afpacket port: the host stack gets no copy with stackDrop', { netns: true, commands: ['ping'] }, () => {
  let n: Netns, m: Netns;
  const p = ifname('sp'), q = ifname('sq');

  beforeAll(() => {
    n = Netns.create('sdn');
    m = Netns.create('sdm');
    vethPair(n, p, m, q);
    n.ip(['addr', 'add', `${NET}.1/24`, 'dev', p]);
    m.ip(['addr', 'add', `${NET}.2/24`, 'dev', q]);
    n.ip(['link', 'set', p, 'up']);
    m.ip(['link', 'set', q, 'up']);
  });

  afterAll(() => {
    n?.destroy();
    m?.destroy();
  });

  /** Pings N's address from M; returns the replies. */
  const ping = (count = 4): number => {
    const r = spawnSync('ip', ['netns', 'exec', m.name, 'ping', '-n', '-c', String(count), '-i', '0.1', '-W', '1', `${NET}.1`], { encoding: 'utf8' });
    return Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0);
  };

  function withPort(stackDrop: 0 | 1, fn: (dp: DataPlane, slot: number) => void): void {
    const dp = new DataPlane({ workers: 1 });
    try {
      const up = dp.openPort('afpacket', { ifname: p, netns: `/run/netns/${n.name}`, ring: 2, stackDrop }, 'uplink');
      const pod = dp.openPort('memory-sink', {}, 'pod0');
      dp.commit({
        uplink: up.slot, uplinkMac: parseMac('02:aa:00:00:00:01')!,
        tunnel: resolveTunnel({ local: '192.0.2.1', remote: '192.0.2.2' }),
        peers: [{ vtep: parseIp('192.0.2.2')!.bytes, mac: parseMac('02:bb:00:00:00:02')! }],
        atts: [{ port: pod.slot, vni: 100, mac: parseMac('02:00:00:00:00:01')! }],
        fdb: [], floods: [], extraVnis: [], learn: false, antiSpoof: true, icmpTooBig: false, verifyUdpCsum: false,
      });
      fn(dp, up.slot);
    } finally {
      dp.stop();
    }
  }

  it('the kernel answers pings on the interface before, and with a port without stackDrop', () => {
    expect(ping()).toBeGreaterThanOrEqual(3);
    withPort(0, (dp, slot) => {
      expect(ping()).toBeGreaterThanOrEqual(3);
      expect(dp.backendCounters(slot)?.stackDrop).toBe(false);
    });
  });

  it('with stackDrop the port receives every ping and the kernel answers none; closing the port undoes it', () => {
    // The kernel's neighbour entry stays, so M keeps sending the echo requests to N's MAC.
    withPort(1, (dp, slot) => {
      const c = dp.backendCounters(slot)!;
      expect(c.stackDrop, c.stackDropNote).toBe(true);
      const before = c.rxPkts;
      expect(ping(5)).toBe(0);
      // The worker got them (and dropped them: not VXLAN for this node).
      expect(dp.backendCounters(slot)!.rxPkts - before).toBeGreaterThanOrEqual(5);
    });
    expect(ping()).toBeGreaterThanOrEqual(3);
  });

  it('a process killed while holding the port leaves no drop behind', async () => {
    // The child keeps its data plane reachable: one that nothing refers to is collected,
    // and its finalizer closes the port and switches the drop off (V8 may drop a module's
    // top-level binding once evaluation ends if no closure uses it), which would let the
    // kernel answer before the kill this test is about.
    const script = `
      const { DataPlane } = await import(${JSON.stringify(join(ROOT, 'dist/dataplane/dp.js'))});
      const dp = new DataPlane({ workers: 1 });
      const up = dp.openPort('afpacket', { ifname: ${JSON.stringify(p)}, netns: ${JSON.stringify(`/run/netns/${n.name}`)}, stackDrop: 1 }, 'uplink');
      console.log(JSON.stringify(dp.backendCounters(up.slot)));
      setInterval(() => { dp.backendCounters(up.slot); }, 1000);`;
    const child = await moduleChild(script);
    try {
      expect(JSON.parse(child.line).stackDrop).toBe(true);
      // Past the child's first collections too: the drop holds while the process lives.
      await new Promise((r) => setTimeout(r, 1500));
      expect(ping(3)).toBe(0);
    } finally {
      await child.kill();
    }
    expect(ping()).toBeGreaterThanOrEqual(3);
  });

  // A port removed while the data plane runs (a CNI DEL's detach) closes on a thread of
  // its own, so the DEL waits for none of its grace periods. The netdev can take a new
  // port at once (a pod's VF given to the next pod), and the old drop goes soon after.
  it('a port removed at runtime: a new one opens on the netdev at once, and the old drop goes by itself', async () => {
    const dp = new DataPlane({ workers: 1 });
    try {
      const open = () => dp.openPort('afpacket', { ifname: p, netns: `/run/netns/${n.name}`, ring: 2, stackDrop: 1 }, 'rep');
      const pod = dp.openPort('memory-sink', {}, 'pod0');
      const spec = (slot: number) => ({
        uplink: slot, uplinkMac: parseMac('02:aa:00:00:00:01')!,
        tunnel: resolveTunnel({ local: '192.0.2.1', remote: '192.0.2.2' }),
        peers: [{ vtep: parseIp('192.0.2.2')!.bytes, mac: parseMac('02:bb:00:00:00:02')! }],
        atts: [{ port: pod.slot, vni: 100, mac: parseMac('02:00:00:00:00:01')! }],
        fdb: [], floods: [], extraVnis: [], learn: false, antiSpoof: true, icmpTooBig: false, verifyUdpCsum: false,
      });
      const first = open();
      dp.commit(spec(first.slot));
      dp.removePort(first.slot);
      const second = open(); // while the first may still be closing
      dp.commit(spec(second.slot));
      const c = dp.backendCounters(second.slot)!;
      expect(c.stackDrop, c.stackDropNote).toBe(true);
      const before = c.rxPkts;
      expect(ping(3)).toBe(0);
      expect(dp.backendCounters(second.slot)!.rxPkts - before).toBeGreaterThanOrEqual(3);
      dp.removePort(second.slot);
      dp.commit({ ...spec(second.slot), uplink: -1 }); // no uplink
      // No port on the netdev now: once the background close is done the kernel answers.
      let got = 0;
      for (let i = 0; i < 20 && got < 3; i++) {
        await new Promise((r) => setTimeout(r, 100));
        got = ping();
      }
      expect(got).toBeGreaterThanOrEqual(3);
    } finally {
      dp.stop();
    }
  });

  // The drop's tcx link stays on the netdev between ports (attaching and detaching one
  // waits for a grace period under RTNL); a port switches it on and off. A netdev that is
  // deleted and made again under the same name is another netdev: its drop is new.
  it('a netdev made again under the same name gets a drop of its own', () => {
    withPort(1, () => expect(ping(2)).toBe(0));
    expect(ping()).toBeGreaterThanOrEqual(3);
    n.ip(['link', 'del', p]);
    vethPair(n, p, m, q);
    n.ip(['addr', 'add', `${NET}.1/24`, 'dev', p]);
    m.ip(['addr', 'add', `${NET}.2/24`, 'dev', q]);
    n.ip(['link', 'set', p, 'up']);
    m.ip(['link', 'set', q, 'up']);
    expect(ping()).toBeGreaterThanOrEqual(3);
    withPort(1, (dp, slot) => {
      expect(dp.backendCounters(slot)?.stackDrop).toBe(true);
      expect(ping(3)).toBe(0);
    });
    expect(ping()).toBeGreaterThanOrEqual(3);
  });
});

// The data plane's outer UDP checksum check on decap (tunnel.verifyUdpCsum): off by
// default (RFC 7348 §4 lets a decapsulator skip it), on it drops a frame whose nonzero
// checksum does not verify, as Linux's UDP receive path does, and passes the good ones.
// Memory ports: a peer's frames replayed on the uplink, the pod a sink.
import { describe, expect, it } from 'vitest';
import { DataPlane } from '../../src/dataplane/dp.js';
import { burstFromFrames, packetBytes } from '../../src/packet/burst.js';
import { resolveTunnel } from '../../src/packet/config.js';
import { tsEngine } from '../../src/packet/model.js';
import { parseMac } from '../../src/util/addr.js';
import { udp4 } from '../helpers/frames.js';
import { nodeSpec, POD, spin, UP } from '../helpers/underlay.js';

const mac = (s: string) => parseMac(s)!;

/** A peer's (192.0.2.2) VXLAN frame to us with a UDP checksum computed by the TS model. */
function withChecksum(seq: number): Uint8Array {
  const inner = udp4({ dstMac: POD, srcMac: '02:00:00:00:00:0b', src: '10.9.0.2', dst: '10.9.0.1', sport: 7000, dport: 7001, payload: new Uint8Array(40).fill(seq) });
  const t = tsEngine.createTunnel(resolveTunnel({ local: '192.0.2.2', remote: '192.0.2.1', srcMac: '02:bb:00:00:00:02', dstMac: UP, udpCsum: true }));
  const b = burstFromFrames([inner], 64);
  expect(tsEngine.encap(t, 100, b)).toBe(1);
  return packetBytes(b, 0);
}

describe('decap with tunnel.verifyUdpCsum', () => {
  const good = withChecksum(1);
  const bad = withChecksum(2);
  bad[14 + 20 + 6]! ^= 0x5a; // the UDP checksum field, nonzero and wrong
  expect((bad[40]! << 8) | bad[41]!).not.toBe(0);

  function run(verify: boolean) {
    const dp = new DataPlane({ workers: 1 });
    try {
      const up = dp.openPort('memory-gen', { frames: [good, bad], ring: 128 }, 'uplink');
      const sink = dp.openPort('memory-sink', {}, 'pod0');
      dp.commit({ ...nodeSpec(1), verifyUdpCsum: verify, uplink: up.slot, atts: [{ port: sink.slot, vni: 100, mac: mac(POD) }] });
      spin(150);
      const c = dp.counters();
      return { bad: c.drops.udp_bad_checksum ?? 0n, decap: c.engine.decapPkts! };
    } finally {
      dp.stop();
    }
  }

  it('off (the default): both frames are decapsulated, nothing is checked', () => {
    const r = run(false);
    expect(r.bad).toBe(0n);
    expect(r.decap).toBeGreaterThan(1000n);
  });

  it('on: the frame whose checksum does not verify is dropped (udp_bad_checksum), the good one passes', () => {
    const r = run(true);
    expect(r.bad).toBeGreaterThan(500n);
    expect(r.decap).toBeGreaterThan(500n);
    // one good for each bad: the replay alternates them
    expect(Number(r.decap) / Number(r.bad)).toBeGreaterThan(0.8);
    expect(Number(r.decap) / Number(r.bad)).toBeLessThan(1.25);
  });
});

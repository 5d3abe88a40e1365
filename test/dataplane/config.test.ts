// The data-plane config file at the edge: every error names the field and the value, and
// the defaults are what docs/dataplane.md says.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, MAX_PEERS, MAX_VNIS, parseConfig, socketPath, tenancyRefusal } from '../../src/dataplane/config.js';
import { DPDK_TX, afXdpVdevWarning, afxdpChoice, dpdkChoice, netdevProfile, offloadTier, outerChecksums, vfOfNetdev } from '../../src/dataplane/uplink-profile.js';
import { loadAddon, nativeFeatures } from '../../src/dataplane/native.js';
import { dropSim, makeSim } from '../helpers/sim.js';
import { tcFlowerOnlyTier1, withOperatorProfile } from '../helpers/profiles.js';
import { ifname } from '../helpers/netns.js';
import type { VfpError } from '../../src/util/errors.js';
import { describePrivileged } from '../helpers/privileged.js';

const ok = { uplink: { ifname: 'ens1f0', vtep: '192.0.2.1' } };

/** A netdev in a tree-only simulator's class/net whose device is PCI function `pci`, as
 *  /sys/class/net shows a NIC's netdev. */
function treeNetdev(root: string, name: string, pci: string): void {
  mkdirSync(join(root, 'class/net', name), { recursive: true });
  symlinkSync(join(root, 'bus/pci/devices', pci), join(root, 'class/net', name, 'device'));
}

describe('data-plane config', () => {
  it('skips the node\'s own VTEP among peers and flood lists, so one config serves every node', () => {
    const c = parseConfig({
      ...ok, uplink: { ifname: 'ens1f0', vtep: '192.0.2.1' }, peers: [{ vtep: '192.0.2.1' }, { vtep: '192.0.2.2' }], vnis: [{ vni: 100, flood: ['192.0.2.1', '192.0.2.2'] }],
      fdb: [{ vni: 100, mac: '02:00:00:00:00:01', vtep: '192.0.2.1' }, { vni: 100, mac: '02:00:00:00:00:02', vtep: '192.0.2.2' }],
    });
    expect(c.peers.map((p) => p.vtep)).toEqual(['192.0.2.2']);
    expect(c.vnis[0]!.flood).toEqual(['192.0.2.2']);
    expect(c.fdb.map((e) => e.mac)).toEqual(['02:00:00:00:00:02']);
    const v6 = parseConfig({ ...ok, uplink: { ifname: 'ens1f0', vtep: '2001:db8::1' }, peers: [{ vtep: '2001:DB8:0::1' }, { vtep: '2001:db8::2' }] });
    expect(v6.peers.map((p) => p.vtep)).toEqual(['2001:db8::2']);
  });

  it('fills the documented defaults', () => {
    const c = parseConfig(ok);
    expect(c).toMatchObject({ backend: 'afpacket', dstPort: 4789, learn: true, antiSpoof: true, icmpTooBig: true, ageSeconds: 300, workers: 1, idleSpins: 64, stateDir: '/var/lib/vfplane' });
    expect(c.tunnel).toEqual({ ttl: 64, tos: 'inherit', df: 'unset', udpCsum: false, verifyUdpCsum: false, srcPortMin: 49152, srcPortMax: 65535, mtu: 0 });
    expect(socketPath(c)).toBe('/var/lib/vfplane/dataplane.sock');
    // A representor carries one pod: its rings are a quarter of the uplink's.
    expect(c.afpacket).toEqual({ ring: 2, rxRingMiB: 16, representorRxRingMiB: 4, txFrames: 2048, representorTxFrames: 512 });
    expect(c.afxdp).toEqual({ mode: 'auto', copy: 'auto', frames: 4096, representorFrames: 1024 });
    expect(() => parseConfig({ ...ok, afxdp: { representorFrames: 64 } })).toThrow(/afxdp\.representorFrames/);
  });

  it('names the field and the value it refuses', () => {
    expect(() => parseConfig({ uplink: { ifname: 'ens1f0', vtep: '300.1.1.1' } })).toThrow(/uplink\.vtep: .*IPv4 or IPv6.*"300\.1\.1\.1"/);
    expect(() => parseConfig({ ...ok, peers: [{ vtep: '192.0.2.2', mac: 'nope' }] })).toThrow(/peers\.0\.mac: .*MAC.*"nope"/);
    expect(() => parseConfig({ ...ok, fdb: [{ vni: 1 << 24, mac: '02:00:00:00:00:01', vtep: '192.0.2.2' }] })).toThrow(/fdb\.0\.vni: .*24 bits/);
    expect(() => parseConfig({ ...ok, frobnicate: 1 })).toThrow(/frobnicate/);
    expect(() => parseConfig({ ...ok, uplink: { ifname: 'a-name-that-is-too-long', vtep: '192.0.2.1' } })).toThrow(/uplink\.ifname/);
    expect(() => parseConfig({ ...ok, peers: [{ vtep: '2001:db8::2' }] })).toThrow(/not IPv4 like uplink\.vtep/);
    expect(() => parseConfig({ ...ok, backend: 'dpdk' })).toThrow(/uplink\.dev/);
    // The afpacket uplink opens a queue (fanout socket) per worker.
    expect(parseConfig({ ...ok, workers: 2 }).workers).toBe(2);
    expect(() => parseConfig({ ...ok, workers: 17 })).toThrow(/workers: .*16/);
    // One-queue AF_PACKET representors under several workers: the others hand over.
    expect(parseConfig({ ...ok, backend: 'dpdk', uplink: { dev: 'net_null0', vtep: '192.0.2.1' }, representors: 'afpacket', workers: 4 }).workers).toBe(4);
    expect(parseConfig({ ...ok, backend: 'dpdk', uplink: { dev: 'net_null0', vtep: '192.0.2.1' }, representors: 'afxdp', workers: 4 }).workers).toBe(4);
    expect(() => parseConfig({ ...ok, representors: 'afxdp' })).toThrow(/representors: afxdp is for the dpdk backend/);
    expect(parseConfig({ ...ok, backend: 'afxdp', workers: 2 }).workers).toBe(2);
    expect(() => parseConfig({ ...ok, tunnel: { srcPortMin: 60000, srcPortMax: 50000 } })).toThrow(/srcPortMax 50000 is below srcPortMin 60000/);
    expect(() => parseConfig({ ...ok, metrics: 'everywhere' })).toThrow(/metrics: .*HOST:PORT/);
    expect(() => parseConfig({ ...ok, node: "../etc/x" })).toThrow(/node: expected a node name.*names files in stateDir/);
  });

  it('answers an unknown field with the fields its object has, and the one it looks like a typo of', () => {
    const err = (c: Record<string, unknown>) => {
      try {
        parseConfig(c);
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(err({ ...ok, ageSecs: 30 })).toMatch(/^config: unknown field "ageSecs" \(did you mean "ageSeconds"\?\); the top level has node, backend, uplink, .*ageSeconds.*metrics$/);
    expect(err({ ...ok, uplink: { ifname: 'ens1f0', vtep: '192.0.2.1', vtpe: 'x' } })).toBe('config: uplink: unknown field "vtpe" (did you mean "vtep"?); uplink has ifname, dev, netns, vtep, mac, vlan, gateway, prefixLength');
    // Nothing near: the list alone; several in one object: each named.
    expect(err({ ...ok, frobnicate: 1, Learn: true })).toMatch(/^config: unknown fields "frobnicate", "Learn" \(did you mean "learn"\?\); the top level has /);
    expect(err({ ...ok, peers: [{ vtep: '192.0.2.2', mak: '02:00:00:00:00:01' }] })).toBe('config: peers.0: unknown field "mak" (did you mean "mac"?); peers.0 has vtep, mac');
    // A required field left out is said to be missing (not "expected array, received
    // undefined"); one whose schema says what it is keeps that.
    expect(err({ ...ok, peers: [{ vtep: '192.0.2.2' }], vnis: [{ vni: 100 }] })).toBe('config: vnis.0.flood: missing (a list is required here)');
    expect(err({ ...ok, uplink: { ifname: 'ens1f0' } })).toMatch(/^config: uplink\.vtep: expected an IP address/);
  });

  it('reads YAML and JSON files, and says which file is wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-dpcfg-'));
    try {
      writeFileSync(join(dir, 'a.yaml'), 'uplink:\n  ifname: ens1f0\n  vtep: 192.0.2.1\npeers:\n  - vtep: 192.0.2.2\n');
      expect(loadConfig(join(dir, 'a.yaml')).peers).toEqual([{ vtep: '192.0.2.2' }]);
      writeFileSync(join(dir, 'b.json'), JSON.stringify({ ...ok, workers: 0 }));
      expect(() => loadConfig(join(dir, 'b.json'))).toThrow(new RegExp(`${dir}/b\\.json: workers`));
      writeFileSync(join(dir, 'c.yaml'), 'uplink: [unclosed');
      expect(() => loadConfig(join(dir, 'c.yaml'))).toThrow(/c\.yaml is not valid YAML or JSON/);
      expect(() => loadConfig(join(dir, 'missing.yaml'))).toThrow(`cannot read the data-plane config ${join(dir, 'missing.yaml')}: no such file: write one (docs/dataplane.md, "Config file", has a full example), or give --config the path of yours`);
      expect(() => loadConfig(dir)).toThrow(`cannot read the data-plane config ${dir}: it is a directory: give --config the config file in it`);
      // A malformed file is bad input (exit 1), not a bad command line (exit 2).
      const kind = (f: string) => { try { loadConfig(join(dir, f)); } catch (e) { return (e as VfpError).kind; } return 'none'; };
      expect([kind('b.json'), kind('c.yaml'), kind('missing.yaml')]).toEqual(['bad-file', 'bad-file', 'not-found']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses more peers or VNIs than a data plane holds, by field, with the way out', () => {
    const err = (c: Record<string, unknown>) => {
      try {
        parseConfig(c, 'config');
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    // The limits are the addon's (native/worker/dp.h; VNI slot 0 is for VNIs past them).
    const layout = (loadAddon() as unknown as { dpStatsLayout(): { maxPeers: number; maxVnis: number } }).dpStatsLayout();
    expect([MAX_PEERS, MAX_VNIS]).toEqual([layout.maxPeers, layout.maxVnis - 1]);
    const peers = Array.from({ length: 1025 }, (_, i) => ({ vtep: `10.${100 + (i >> 8)}.${i & 255}.1` }));
    expect(err({ ...ok, peers })).toContain("config: peers.1024: 1025 peers is more than the 1024 a data plane supports; list the VTEPs of the nodes whose pods share a VNI with this node's, not every node (a VNI floods to its own list: vnis[].flood)");
    expect(() => parseConfig({ ...ok, peers: peers.slice(0, 1024) }, 'config')).not.toThrow();
    // A VNI counts once whether it has a flood list, attachments, or both.
    const vnis = Array.from({ length: 1023 }, (_, i) => ({ vni: 1000 + i, flood: [] }));
    const att = (vni: number, i: number) => ({ representor: `rep${i}`, vni, mac: `02:00:00:00:01:${String(i).padStart(2, '0')}` });
    expect(() => parseConfig({ ...ok, vnis, attachments: [att(1000, 1), att(1001, 2)] }, 'config')).not.toThrow();
    expect(err({ ...ok, vnis, attachments: [att(7, 1)] })).toMatch(/^config: attachments\.0\.vni: vnis and attachments name 1024 VNIs, more than the 1023 a data plane serves; drop the flood lists of VNIs no pod on this node uses from vnis\[\], or spread the VNIs over more nodes/);
    expect(err({ ...ok, vnis: [...vnis, { vni: 9, flood: [] }] })).toMatch(/^config: vnis\.1023\.vni: vnis and attachments name 1024 VNIs/);
    // A deeply nested file is refused before the YAML parser (which recursed until the
    // stack overflowed, and a second parse then aborted the process).
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-dpcfg-'));
    try {
      writeFileSync(join(dir, 'deep.yaml'), `# yaml\n{"uplink": {"ifname": "ens1f0", "vtep": "192.0.2.1"}, "x": ${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}}`);
      for (let i = 0; i < 2; i++) expect(() => loadConfig(join(dir, 'deep.yaml'))).toThrow(/deep\.yaml is not valid YAML or JSON: it nests \[ and \{ more than 64 deep/);
      // Brackets in strings and comments are not nesting.
      writeFileSync(join(dir, 'flat.yaml'), `# ${'['.repeat(100)}\nuplink: {ifname: ens1f0, vtep: 192.0.2.1}\npeers: [{vtep: "192.0.2.2"}] # ${'{'.repeat(100)}\n`);
      expect(loadConfig(join(dir, 'flat.yaml')).peers).toEqual([{ vtep: '192.0.2.2' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a JSON file as YAML would: the same config, and a key given twice refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-dpcfg-'));
    try {
      const cfg = {
        ...ok, peers: [{ vtep: '192.0.2.2' }, { vtep: '192.0.2.3', mac: '02:00:00:00:00:03' }],
        fdb: [{ vni: 100, mac: '02:00:00:00:AA:01', vtep: '192.0.2.2' }], vnis: [{ vni: 100, flood: ['192.0.2.3'] }],
        tunnel: { ttl: 32, tos: 'inherit' }, note: 'a "quoted" {brace}, [bracket]',
      };
      const { note: _n, ...good } = cfg;
      // JSON goes to JSON.parse; a first line that is a YAML comment sends the same text
      // through the YAML parser: both give the same config.
      const text = JSON.stringify(good, null, 1);
      writeFileSync(join(dir, 'a.json'), text);
      writeFileSync(join(dir, 'a.yaml'), `# yaml\n${text}`);
      expect(loadConfig(join(dir, 'a.json'))).toEqual(loadConfig(join(dir, 'a.yaml')));
      // JSON.parse keeps the last of two equal keys unsaid; the file is refused as YAML
      // refuses it, wherever the key repeats (a string holding braces and quotes first).
      const twice = `{"note": ${JSON.stringify(cfg.note)}, "uplink": {"ifname": "ens1f0", "vtep": "192.0.2.1", "vtep": "192.0.2.9"}}`;
      writeFileSync(join(dir, 'b.json'), twice);
      expect(() => loadConfig(join(dir, 'b.json'))).toThrow(/b\.json is not valid YAML or JSON: Map keys must be unique/);
      writeFileSync(join(dir, 'c.json'), `{"uplink": {"ifname": "ens1f0", "vtep": "192.0.2.1"}, "peers": [{"vtep": "192.0.2.2"}], "\\u0070eers": []}`);
      expect(() => loadConfig(join(dir, 'c.json'))).toThrow(/c\.json is not valid YAML or JSON: Map keys must be unique/);
      // Equal keys in different objects are no repeat.
      writeFileSync(join(dir, 'd.json'), JSON.stringify({ ...ok, peers: [{ vtep: '192.0.2.2' }, { vtep: '192.0.2.3' }] }));
      expect(loadConfig(join(dir, 'd.json')).peers).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('admits pods to VNIs by Kubernetes namespace when tenants are configured, and says why not', () => {
    const open = parseConfig(ok);
    expect(open.tenants).toEqual([]);
    expect(tenancyRefusal(open, undefined, 100)).toBeNull(); // no tenants: anyone, anywhere
    const c = parseConfig({ ...ok, tenants: [{ namespaces: ['team-a'], vnis: '100-199, 250' }, { namespaces: ['team-b', 'team-a'], vnis: '300' }] });
    expect(c.tenants[0]!.vnis).toEqual([[100, 199], [250, 250]]);
    for (const v of [100, 150, 199, 250, 300]) expect(tenancyRefusal(c, 'team-a', v), String(v)).toBeNull();
    expect(tenancyRefusal(c, 'team-b', 300)).toBeNull();
    expect(tenancyRefusal(c, 'team-a', 200)).toMatch(/^VNI 200 is not open to pods of Kubernetes namespace team-a \(it may use 100-199,250,300\); .*add 200 to its entry under tenants/);
    expect(tenancyRefusal(c, 'team-b', 100)).toMatch(/namespace team-b \(it may use 300\)/);
    expect(tenancyRefusal(c, 'other', 100)).toBe('VNI 100 is not open to pods of Kubernetes namespace other (no tenants entry lists it, so it may use no VNI); add an entry for it under tenants in the data-plane config (namespaces: [other], vnis: "100"), or run the pod in a namespace that has one');
    expect(tenancyRefusal(c, undefined, 100)).toMatch(/names none \(K8S_POD_NAMESPACE missing/);
    expect(() => parseConfig({ ...ok, tenants: [{ namespaces: ['team-a'], vnis: '199-100' }] })).toThrow(/tenants\.0\.vnis: "199-100" is not a VNI or a range/);
    expect(() => parseConfig({ ...ok, tenants: [{ namespaces: ['team-a'], vnis: '16777216' }] })).toThrow(/"16777216" is not a VNI/);
    expect(() => parseConfig({ ...ok, tenants: [{ namespaces: ['Team_A'], vnis: '1' }] })).toThrow(/tenants\.0\.namespaces\.0: expected a Kubernetes namespace name/);
    expect(() => parseConfig({ ...ok, tenants: [{ namespaces: [], vnis: '1' }] })).toThrow(/tenants\.0\.namespaces/);
  });

  it('asks a virtual DPDK device for no tx offloads, and says why', () => {
    expect(dpdkChoice('net_null0')).toMatchObject({ profile: null, dpdkTxOffloads: { bits: 0, why: expect.stringMatching(/virtual device/) } });
    expect(dpdkChoice('0000:ff:1f.7').dpdkTxOffloads!.why).toMatch(/no hw-profile matches 0000:ff:1f\.7/);
  });

  it('names the DPDK tx offload bits as native/io/dpdk.h does', () => {
    if (!nativeFeatures().dpdk?.built) {
      // Without DPDK in the build there is nothing to drift from; CI always builds it.
      expect(process.env.CI, 'CI builds DPDK: the bits must be compared there').toBeFalsy();
      return;
    }
    const bits = loadAddon().dpdkTxOffloadBits!;
    for (const [name, bit] of Object.entries(DPDK_TX)) expect(bits[name], name).toBe(bit);
  });

  it('asks an X710 VF for the tx offloads its hw-profile lists', () => {
    const m = makeSim({ profile: 'x710', netdevs: false });
    try {
      const vf = '0000:5e:02.0';
      const c = dpdkChoice(vf, m.root);
      expect(c.profile).toBe('x710');
      expect(c.dpdkTxOffloads!.names).toEqual(expect.arrayContaining(['ipv4Cksum', 'udpCksum', 'outerIpv4Cksum']));
      // The X710's VF has no outer UDP checksum offload (iavf gives it to every MAC but the XL710's).
      expect(c.dpdkTxOffloads!.names).not.toContain('outerUdpCksum');
      // The two encap leaves to the NIC once the device enables them.
      expect(outerChecksums(c.dpdkTxOffloads!.bits)).toEqual({ ipv4: 'device', udp: 'device' });
      expect(outerChecksums(c.dpdkTxOffloads!.bits & ~DPDK_TX.udpCksum)).toEqual({ ipv4: 'device', udp: 'software' });
    } finally {
      dropSim(m.root);
    }
  });
});

// DESIGN.md: the orchestrator picks the highest offload tier the profile and the device
// allow and says which and why. The tier follows what the device enabled, not what was
// asked, so a device that refuses an offload drops the data plane a tier.
describe('the offload tier the data plane runs at', () => {
  it('is tier 2 on an X710 whose device enabled the checksum offloads, tier 3 when it refused them', () => {
    const m = makeSim({ profile: 'x710', netdevs: false });
    try {
      const c = dpdkChoice('0000:5e:02.0', m.root);
      expect(c.allowedTier).toBe(2);
      const on = offloadTier('dpdk', c, c.dpdkTxOffloads!.bits);
      expect(on).toMatchObject({ tier: 2, allowed: 2 });
      expect(on.why).toMatch(/NIC fills the outer IPv4 header and UDP checksums/);
      const refused = offloadTier('dpdk', c, 0);
      expect(refused).toMatchObject({ tier: 3, allowed: 2 });
      expect(refused.why).toMatch(/device enabled none of the checksum offloads the x710 profile lists/);
      // One of the two is enough for the NIC to do checksum work.
      expect(offloadTier('dpdk', c, DPDK_TX.ipv4Cksum).tier).toBe(2);
      expect(offloadTier('dpdk', c, DPDK_TX.outerIpv4Cksum | DPDK_TX.vxlanTnlTso).tier).toBe(3);
    } finally {
      dropSim(m.root);
    }
  });

  it('says tier 1 is not programmed on a ConnectX-6 Dx, and why a netdev backend is tier 3', () => {
    const m = makeSim({ profile: 'cx6dx', netdevs: false });
    try {
      const pf = m.pfs[0]!.pci;
      // A netdev uplink on that PF, as /sys/class/net shows one.
      treeNetdev(m.root, 'vfpup0', pf);
      const c = netdevProfile('vfpup0', m.root);
      expect(c).toMatchObject({ profile: 'cx6dx', allowedTier: 1 });
      const t = offloadTier('afpacket', c, 0);
      expect(t).toMatchObject({ tier: 3, allowed: 1 });
      expect(t.why).toMatch(/allows tier 1 .*which vfplane does not program yet/);
      expect(t.why).toMatch(/afpacket backend sends through the kernel driver .*checksums are computed in software/);
      expect(offloadTier('dpdk', dpdkChoice(pf, m.root), DPDK_TX.ipv4Cksum | DPDK_TX.udpCksum)).toMatchObject({ tier: 2, allowed: 1 });
    } finally {
      dropSim(m.root);
    }
  });

  it('allows a tc-flower-only family tier 1 only in switchdev mode (its VFs have representors; a switch id alone is no sign), tier 2 in legacy mode', async () => {
    await withOperatorProfile('e810', tcFlowerOnlyTier1, () => {
      const m = makeSim({ profile: 'e810', netdevs: false });
      try {
        treeNetdev(m.root, 'vfpe0', m.pfs[0]!.pci);
        const legacy = netdevProfile('vfpe0', m.root);
        expect(legacy).toMatchObject({ profile: 'e810', allowedTier: 2 });
        const t = offloadTier('afxdp', legacy, 0);
        expect(t).toMatchObject({ tier: 3, allowed: 2 });
        expect(t.why).toMatch(/the e810 profile allows tier 2: .*tc flower in switchdev mode only, and vfpe0 is in legacy mode \(devlink dev eswitch set/);
        // ice gives its PF netdev a switch id in legacy mode too: VFs without representors
        // are legacy all the same (was: tier 1, for the switch id)
        writeFileSync(join(m.root, 'class/net/vfpe0/phys_switch_id'), '0123456789abcdef\n');
        expect(netdevProfile('vfpe0', m.root)).toMatchObject({ profile: 'e810', allowedTier: 2 });
        // switchdev mode: a representor per VF under the PF's device
        for (let j = 0; j < 4; j++) { // makeSim gives it 4 VFs
          const rep = join(m.root, 'bus/pci/devices', m.pfs[0]!.pci, 'net', `vfpe0pf0vf${j}`);
          mkdirSync(rep, { recursive: true });
          writeFileSync(join(rep, 'phys_port_name'), `pf0vf${j}\n`);
        }
        expect(netdevProfile('vfpe0', m.root)).toMatchObject({ profile: 'e810', allowedTier: 1 });
      } finally {
        dropSim(m.root);
      }
    });
  });

  it('allows the shipped E810 tier 2 in either eswitch mode, without a switchdev note', () => {
    const m = makeSim({ profile: 'e810', netdevs: false });
    try {
      treeNetdev(m.root, 'vfpe1', m.pfs[0]!.pci);
      const legacy = netdevProfile('vfpe1', m.root);
      expect(legacy).toMatchObject({ profile: 'e810', allowedTier: 2 });
      expect(legacy.tierNote).toBeUndefined();
      writeFileSync(join(m.root, 'class/net/vfpe1/phys_switch_id'), '0123456789abcdef\n');
      expect(netdevProfile('vfpe1', m.root)).toMatchObject({ profile: 'e810', allowedTier: 2 });
    } finally {
      dropSim(m.root);
    }
  });

  // An X710's PF driver (i40e) has AF_XDP zero-copy, its VF driver (iavf) has not: an
  // AF_XDP uplink follows the function its netdev is, not the family as a whole.
  it('gives an X710 PF uplink zero-copy first and an X710 VF uplink copy mode, saying why', () => {
    const m = makeSim({ profile: 'x710', netdevs: false });
    try {
      const pf = m.pfs[0]!.pci;
      const vf = basename(readlinkSync(join(m.root, 'bus/pci/devices', pf, 'virtfn0')));
      for (const [name, dev] of [['vfpzpf', pf], ['vfpzvf', vf]] as const) {
        treeNetdev(m.root, name, dev);
      }
      const want = { mode: 'auto', copy: 'auto' } as const;
      expect(afxdpChoice('vfpzpf', want, m.root).afxdp).toEqual({ mode: 'native', copy: 'auto', why: expect.stringMatching(/x710 profile's PF driver \(.*\) has AF_XDP zero-copy: native mode, zero-copy first/) });
      expect(afxdpChoice('vfpzvf', want, m.root).afxdp).toEqual({ mode: 'auto', copy: 'copy', why: expect.stringMatching(/x710 profile's VF driver \(.*\) has no AF_XDP zero-copy, so copy mode/) });
      // What the config asks for stands.
      expect(afxdpChoice('vfpzvf', { mode: 'native', copy: 'zerocopy' }, m.root).afxdp).toMatchObject({ copy: 'zerocopy', why: 'copy=zerocopy set in the config' });
    } finally {
      dropSim(m.root);
    }
  });

  // The data plane refuses a VF's own netdev as a representor; it knows one by its device
  // being a VF (physfn). On the tree-only simulator, as /sys/class/net shows such netdevs.
  it('tells a VF\'s own netdev (its device has a physfn) from a representor and a veth', () => {
    const m = makeSim({ profile: 'cx6dx', netdevs: false });
    try {
      const pf = m.pfs[0]!.pci;
      const vf = basename(readlinkSync(join(m.root, 'bus/pci/devices', pf, 'virtfn2')));
      treeNetdev(m.root, 'vfpvf2', vf);
      treeNetdev(m.root, 'vfprep2', pf);
      expect(vfOfNetdev('vfpvf2', m.root)).toEqual({ vf, pf });
      expect(vfOfNetdev('vfprep2', m.root)).toBeNull();
      expect(vfOfNetdev('lo')).toBeNull();
      expect(vfOfNetdev('nosuchdev0', m.root)).toBeNull();
    } finally {
      dropSim(m.root);
    }
  });

  it('is tier 3 with no profile for virtual devices and veths', () => {
    expect(offloadTier('dpdk', dpdkChoice('net_null0'), 0)).toEqual({ tier: 3, allowed: null, why: expect.stringMatching(/no hw-profile matches the uplink/) });
    expect(netdevProfile('lo')).toMatchObject({ profile: null, hw: null });
    expect(offloadTier('afxdp', null, 0)).toMatchObject({ tier: 3, allowed: null });
  });
});

// A net_af_xdp vdev binds queue_count queues (1 by default) of its netdev: on a netdev
// with more, the daemon warns that the others' frames go past the data plane. Read from
// a real two-queue veth's /sys/class/net entry.
describePrivileged('the net_af_xdp vdev queue check', { netns: true }, () => {
  it('warns for a vdev that binds fewer queues than its netdev has, and only then', () => {
    const a = ifname('qa'), b = ifname('qb');
    execFileSync('ip', ['link', 'add', a, 'numtxqueues', '2', 'numrxqueues', '2', 'type', 'veth', 'peer', 'name', b]);
    try {
      expect(afXdpVdevWarning(`net_af_xdp0,iface=${a}`)).toMatch(new RegExp(`${a} receives on 2 queues, and net_af_xdp0 binds queue 0 only.*queue_count=2`));
      expect(afXdpVdevWarning(`net_af_xdp0,iface=${a},start_queue=1`)).toMatch(/binds queue 1 only/);
      expect(afXdpVdevWarning(`net_af_xdp0,iface=${a},queue_count=2`)).toBeNull();
      expect(afXdpVdevWarning(`net_af_packet0,iface=${a}`)).toBeNull();
      expect(afXdpVdevWarning('net_af_xdp0,iface=vfpnosuch0')).toBeNull();
    } finally {
      execFileSync('ip', ['link', 'del', a]);
    }
  });
});

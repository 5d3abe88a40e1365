// The CNI spec layer: environment per command, CNI_ARGS, the network config (decode,
// version, validation, effective values), results in every supported version, the error
// mapping, and the executable's exact stdout and exit code for VERSION and bad input.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, vfplane } from '../helpers/cli.js';
import { dropSim, makeSim } from '../helpers/sim.js';
import { decodeConf, loadConf, parseConf } from '../../src/cni/conf.js';
import { formatResult, parseIpamResult, parsePrevResult, type CniResult } from '../../src/cni/result.js';
import { CniError, ERR, parseCniArgs, parseEnv, SUPPORTED_VERSIONS, toCniError } from '../../src/cni/spec.js';
import { conflict, invalid, notFound, systemError, unavailable } from '../../src/util/errors.js';
import { rejected, thrown } from '../helpers/thrown.js';

const PLUGIN = join(ROOT, 'bin', 'vfplane-cni.js');

const cniErr = (fn: () => unknown) => thrown(CniError, fn);

const cniErrAsync = (p: Promise<unknown>) => rejected(CniError, p);

const base = { cniVersion: '1.0.0', name: 'vfnet', type: 'vfplane-cni' };
const attach = { CNI_CONTAINERID: 'c0ffee01', CNI_NETNS: '/var/run/netns/cni-1', CNI_IFNAME: 'net1', CNI_PATH: '/opt/cni/bin:/usr/lib/cni' };
const MULTUS_ARGS = 'IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=4f2a9c1e8d1b;K8S_POD_UID=3f2a9c1e-8d1b-4b0e-9f65-0c7e2a1d4b11';

describe('parseEnv', () => {
  it('takes a full ADD environment', () => {
    const e = parseEnv({ CNI_COMMAND: 'ADD', ...attach, CNI_ARGS: MULTUS_ARGS });
    expect(e.command).toBe('ADD');
    expect(e.containerId).toBe('c0ffee01');
    expect(e.netns).toBe('/var/run/netns/cni-1');
    expect(e.ifname).toBe('net1');
    expect(e.path).toEqual(['/opt/cni/bin', '/usr/lib/cni']);
    expect(e.args).toEqual({
      IgnoreUnknown: 'true', K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'web-0',
      K8S_POD_INFRA_CONTAINER_ID: '4f2a9c1e8d1b', K8S_POD_UID: '3f2a9c1e-8d1b-4b0e-9f65-0c7e2a1d4b11',
    });
    expect(e.raw.CNI_COMMAND).toBe('ADD');
  });

  it('requires CNI_NETNS on ADD and CHECK, but not on DEL', () => {
    for (const cmd of ['ADD', 'CHECK']) {
      const e = cniErr(() => parseEnv({ CNI_COMMAND: cmd, ...attach, CNI_NETNS: undefined }));
      expect(e.code).toBe(4);
      expect(e.message).toContain('CNI_NETNS');
    }
    const del = parseEnv({ CNI_COMMAND: 'DEL', ...attach, CNI_NETNS: undefined });
    expect(del.netns).toBeUndefined();
    expect(del.containerId).toBe('c0ffee01');
  });

  it('names every missing variable', () => {
    const e = cniErr(() => parseEnv({ CNI_COMMAND: 'ADD' }));
    expect(e.code).toBe(4);
    expect(e.message).toContain('CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME');
    expect(cniErr(() => parseEnv({ CNI_COMMAND: 'DEL', CNI_IFNAME: 'net1' })).message).toContain('CNI_CONTAINERID');
  });

  it('requires CNI_PATH for GC only; STATUS needs nothing', () => {
    expect(cniErr(() => parseEnv({ CNI_COMMAND: 'GC' })).message).toContain('CNI_PATH');
    expect(parseEnv({ CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' }).path).toEqual(['/opt/cni/bin']);
    expect(parseEnv({ CNI_COMMAND: 'STATUS' }).command).toBe('STATUS');
    expect(parseEnv({ CNI_COMMAND: 'VERSION' }).command).toBe('VERSION');
  });

  it('refuses a missing or unknown CNI_COMMAND', () => {
    expect(cniErr(() => parseEnv({})).message).toContain('CNI_COMMAND');
    const e = cniErr(() => parseEnv({ CNI_COMMAND: 'add' }));
    expect(e.code).toBe(4);
    expect(e.message).toContain('"add"');
  });

  it('validates the container ID, the interface name and the netns path', () => {
    for (const [k, v] of [['CNI_CONTAINERID', '-abc'], ['CNI_CONTAINERID', 'a/b'], ['CNI_IFNAME', 'a/b'], ['CNI_IFNAME', 'waytoolonginterfacename'], ['CNI_IFNAME', '..'], ['CNI_NETNS', 'relative/ns']] as const) {
      const e = cniErr(() => parseEnv({ CNI_COMMAND: 'ADD', ...attach, [k]: v }));
      expect(e.code, `${k}=${v}`).toBe(4);
      expect(e.message).toContain(k);
    }
  });
});

describe('parseCniArgs', () => {
  it('parses K=V pairs, keeping "=" inside values', () => {
    expect(parseCniArgs('IgnoreUnknown=1;FOO=a=b')).toEqual({ IgnoreUnknown: '1', FOO: 'a=b' });
    expect(parseCniArgs('')).toEqual({});
    expect(parseCniArgs(undefined)).toEqual({});
  });

  it('refuses unknown keys unless IgnoreUnknown is set, as libcni does', () => {
    const e = cniErr(() => parseCniArgs('FOO=bar;K8S_POD_NAME=x'));
    expect(e.code).toBe(4);
    expect(e.message).toContain('FOO');
    expect(parseCniArgs('IgnoreUnknown=true;FOO=bar').FOO).toBe('bar');
  });

  it('refuses malformed pairs and values', () => {
    expect(cniErr(() => parseCniArgs('justakey')).message).toContain('KEY=VALUE');
    expect(cniErr(() => parseCniArgs('K8S_POD_NAME=bad/name')).message).toContain('K8S_POD_NAME');
    expect(cniErr(() => parseCniArgs('MAC=zz:00:00:00:00:01')).message).toContain('MAC');
    expect(cniErr(() => parseCniArgs('MAC=01:00:5e:00:00:01')).message).toContain('unicast');
    expect(cniErr(() => parseCniArgs('IgnoreUnknown=maybe')).message).toContain('IgnoreUnknown');
  });

  it('canonicalises MAC and drops empty values', () => {
    expect(parseCniArgs('MAC=02-AA-BB-CC-DD-EE;K8S_POD_UID=')).toEqual({ MAC: '02:aa:bb:cc:dd:ee' });
  });
});

describe('network config', () => {
  it('decodes JSON, or says where it broke (code 6)', async () => {
    const e = await cniErrAsync(decodeConf('{\n  "cniVersion": "1.0.0",\n  "name": }'));
    expect(e.code).toBe(6);
    expect(e.message).toContain('line 3 column 11');
    expect((await cniErrAsync(decodeConf(''))).code).toBe(6);
    expect((await cniErrAsync(decodeConf('[1,2]'))).message).toContain('a list');
  });

  it('refuses cniVersion 0.2.0 and a missing one with code 1, listing the supported versions', () => {
    const e = cniErr(() => loadConf({ ...base, cniVersion: '0.2.0' }));
    expect(e.code).toBe(1);
    expect(e.message).toContain('"0.2.0"');
    expect(e.message).toContain('0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0');
    // 0.3.1, what many SR-IOV NetworkAttachmentDefinitions say, is taken
    expect(loadConf({ ...base, cniVersion: '0.3.1' }).cniVersion).toBe('0.3.1');
    expect(cniErr(() => loadConf({ name: 'n', type: 'x' })).code).toBe(1);
  });

  it('names the field and the value of a wrong type (code 7)', () => {
    const e = cniErr(() => loadConf({ ...base, vlan: '12' }));
    expect(e.code).toBe(7);
    expect(e.message).toBe('vlan: expected an integer 0–4094, got "12"');
    const cases: [Record<string, unknown>, string][] = [
      [{ vlan: 4095 }, 'vlan: expected an integer 0–4094, got 4095'],
      [{ vlanQoS: 8, vlan: 1 }, 'vlanQoS: expected an integer 0–7, got 8'],
      [{ vlanProto: '802.1x', vlan: 1 }, 'vlanProto: expected "802.1Q" or "802.1ad", got "802.1x"'],
      [{ spoofchk: true }, 'spoofchk: expected "on" or "off", got true'],
      [{ link_state: 'up' }, 'link_state: expected "auto", "enable" or "disable", got "up"'],
      [{ mtu: 65536 }, 'mtu: expected an integer 68–65535, got 65536'],
      [{ max_tx_rate: -1 }, 'max_tx_rate:'],
      [{ max_tx_rate: 4294967296 }, 'max_tx_rate: expected a whole number of Mbit/s, 0–4294967295 (0 = no limit), got 4294967296'],
      [{ mac: '01:00:5e:00:00:01' }, 'mac: expected a unicast MAC'],
      [{ logLevel: 'loud' }, 'logLevel: expected one of "panic"'],
      [{ logFile: 'rel/log' }, 'logFile: expected an absolute path'],
      [{ stateDir: '/var/lib/../etc' }, 'stateDir: expected an absolute path without ".."'],
      [{ ipam: { subnet: '10.0.0.0/24' } }, 'ipam.type: missing'],
      [{ ipam: { type: '../../bin/sh' } }, 'ipam.type: expected a plain file name'],
      [{ vxlan: { vni: 16777216 } }, 'vxlan.vni: expected an integer 0–16777215'],
      [{ vxlan: {} }, 'vxlan.vni: missing'],
      [{ vxlan: { vni: 5, colour: 'red' } }, 'vxlan: unknown field "colour" (known: vni, group'],
      [{ vxlan: { vnii: 5 } }, 'vxlan: unknown field "vnii" (did you mean "vni"?) (known: vni, group'],
      [{ vxlan: { vni: 5, group: '10.0.0.1' } }, 'vxlan.group: expected a multicast address'],
      [{ vxlan: { vni: 5, group: '239.1.1.1', remote: '10.0.0.2' } }, 'either group'],
      [{ 'cni.dev/valid-attachments': [{ containerID: 'a' }] }, 'cni.dev/valid-attachments[0].ifname: missing'],
      [{ name: 'bad name' }, 'name: expected a network name'],
    ];
    for (const [over, text] of cases) {
      const err = cniErr(() => loadConf({ ...base, ...over }));
      expect(err.code, JSON.stringify(over)).toBe(7);
      expect(err.message, JSON.stringify(over)).toContain(text);
    }
  });

  it('ignores unknown top-level fields as CNI plugins do, and notes those that look like a typo of its own', () => {
    const c = loadConf({ ...base, vxaln: { vni: 100 }, devicID: '0000:5e:02.0', linkState: 'enable', master: 'eth0', 'k8s.v1.cni.cncf.io/x': 1 });
    expect(c.vxlan).toBeUndefined();
    expect(c.nearMisses).toEqual([
      { field: 'vxaln', meant: 'vxlan' }, { field: 'devicID', meant: 'deviceID' }, { field: 'linkState', meant: 'link_state' },
    ]);
    // Not a near miss when the field it looks like is set too (then it is something else).
    expect(loadConf({ ...base, vlan: 5, vlam: 1 }).nearMisses).toBeUndefined();
    expect(loadConf(base).nearMisses).toBeUndefined();
  });

  it('reads a field in another case as its own, as sriov-cni\'s Go decoder does, and refuses it given in two spellings', () => {
    const c = loadConf({ ...base, VLAN: 200, vlanQos: 3, spoofChk: 'off', deviceId: '0000:5e:02.0' });
    expect([c.vlan, c.vlanQoS, c.spoofchk, c.effective.deviceID]).toEqual([200, 3, 'off', '0000:5e:02.0']);
    expect(c.recased).toEqual([{ field: 'VLAN', as: 'vlan' }, { field: 'vlanQos', as: 'vlanQoS' }, { field: 'spoofChk', as: 'spoofchk' }, { field: 'deviceId', as: 'deviceID' }]);
    expect(c.nearMisses).toBeUndefined();
    // Checked as its own: a bad value names the field's own spelling.
    expect(cniErr(() => loadConf({ ...base, VLAN: 5000 })).message).toBe('vlan: expected an integer 0–4094, got 5000');
    const two = cniErr(() => loadConf({ ...base, vlan: 100, VLAN: 200 }));
    expect(two.code).toBe(7);
    expect(two.message).toBe('VLAN and vlan are both given, and name one field (field names match in any case, as a Go plugin such as sriov-cni reads them): keep vlan');
    expect(loadConf({ ...base, vlan: 100, VLAN: 200 }, {}, 'DEL').vlan).toBe(100); // DEL acts on neither
  });

  it('takes null as unset, as Go reads it (GC\'s attachment lists keep theirs), and logLevel in any case', () => {
    const c = loadConf({ ...base, vlan: null, vlanQoS: null, mac: null, spoofchk: null, ipam: null, logLevel: null, runtimeConfig: { mac: null, deviceID: null } });
    expect([c.vlan, c.vlanQoS, c.mac, c.spoofchk, c.ipam, c.logLevel, c.effective]).toEqual([undefined, undefined, undefined, undefined, undefined, undefined, {}]);
    expect(cniErr(() => loadConf({ ...base, name: null })).message).toContain('name: missing');
    expect(loadConf({ ...base, logLevel: 'WARN' }).logLevel).toBe('warning');
    expect(loadConf({ ...base, max_tx_rate: 800000 }).max_tx_rate).toBe(800000); // an 800G port's; the PF's speed is checked at ADD
    expect(loadConf({ ...base, logLevel: 'Debug' }).logLevel).toBe('debug');
    expect(cniErr(() => loadConf({ ...base, logLevel: 'trace' })).message).toBe('logLevel: expected one of "panic", "error", "warning", "info", "debug", "verbose", got "trace"');
  });

  it('DEL and GC set aside what ADD would refuse in the settings they do not act on; what they need stays checked', () => {
    const edited = { ...base, spoofchk: 'ON', trust: true, vlan: 4095, vlanQoS: 3, logLevel: 'loud', logFile: 'rel.log', mtu: 5, runtimeConfig: { mac: 'nope' }, min_tx_rate: 9, max_tx_rate: 1 };
    expect(cniErr(() => loadConf(edited, {}, 'ADD')).code).toBe(7);
    expect(cniErr(() => loadConf(edited, {}, 'CHECK')).code).toBe(7);
    for (const cmd of ['DEL', 'GC']) {
      const c = loadConf(edited, {}, cmd);
      expect([c.spoofchk, c.trust, c.vlan, c.logLevel, c.logFile, c.mtu, c.runtimeConfig.mac], cmd).toEqual([undefined, undefined, undefined, undefined, undefined, undefined, undefined]);
      expect(c.setAside!.join('; '), cmd).toBe('runtimeConfig.mac: expected a MAC address like 02:00:00:00:00:01, got "nope"; vlan: expected an integer 0–4094, got 4095; spoofchk: expected "on" or "off", got "ON"; trust: expected "on" or "off", got true; mtu: expected an integer 68–65535, got 5; logLevel: expected one of "panic", "error", "warning", "info", "debug", "verbose", got "loud"; logFile: expected an absolute path without ".." (a file the plugin appends to), got "rel.log"');
      expect(c.vlanQoS, 'kept: valid alone, its rule with vlan is ADD\'s').toBe(3);
      // What DEL acts on is still refused: the store, the VF, the IPAM plugin.
      for (const bad of [{ stateDir: 'rel' }, { deviceID: '../x' }, { ipam: { type: '../sh' } }]) {
        expect(cniErr(() => loadConf({ ...edited, ...bad }, {}, cmd)).code, JSON.stringify(bad)).toBe(7);
      }
    }
    expect(loadConf(base, {}, 'DEL').setAside).toBeUndefined();
  });

  it('applies sriov-cni\'s cross-field rules', () => {
    expect(cniErr(() => loadConf({ ...base, vlanQoS: 3 })).message).toContain('needs vlan');
    expect(cniErr(() => loadConf({ ...base, vlanProto: '802.1ad' })).message).toContain('needs vlan');
    expect(cniErr(() => loadConf({ ...base, vlan: 0, vlanQoS: 3 })).message).toContain('non-zero vlan');
    expect(cniErr(() => loadConf({ ...base, vlan: 0, vlanProto: '802.1ad' })).message).toContain('non-zero vlan');
    expect(cniErr(() => loadConf({ ...base, min_tx_rate: 200, max_tx_rate: 100 })).message).toContain('min_tx_rate');
    expect(loadConf({ ...base, min_tx_rate: 200, max_tx_rate: 0 }).min_tx_rate).toBe(200);
  });

  it('refuses a deviceID that is a path, not a PCI address', () => {
    for (const bad of ['../../0000:5e:02.0', '/sys/bus/pci/devices/0000:5e:02.0', '0000:5e:02.0/../..', '0000:5e:2.0']) {
      for (const conf of [{ ...base, deviceID: bad }, { ...base, runtimeConfig: { deviceID: bad } }]) {
        const e = cniErr(() => loadConf(conf));
        expect(e.code, bad).toBe(7);
        expect(e.message).toContain('deviceID: expected a PCI address');
        expect(e.message).toContain(JSON.stringify(bad));
      }
    }
  });

  it('reads a Multus-shaped config: top-level deviceID, pciBusID, CNI_ARGS with IgnoreUnknown', async () => {
    const env = parseEnv({ CNI_COMMAND: 'ADD', ...attach, CNI_ARGS: MULTUS_ARGS });
    const text = JSON.stringify({
      cniVersion: '1.0.0', name: 'sriov-kernel', type: 'vfplane-cni', deviceID: '0000:5E:02.1', pciBusID: '0000:5E:02.1',
      vlan: 100, spoofchk: 'on', trust: 'off', ipam: { type: 'host-local', subnet: '10.56.0.0/24' },
      runtimeConfig: { deviceID: '0000:5e:02.1', CNIDeviceInfoFile: '/var/run/k8s.cni.cncf.io/devinfo/cni/default-sriov-kernel-c0ffee01_net1', portMappings: [] },
    });
    const conf = await parseConf(text, env.args);
    expect(conf.effective.deviceID).toBe('0000:5e:02.1');
    expect(conf.deviceID).toBe('0000:5e:02.1');
    expect(conf.vlan).toBe(100);
    expect(conf.ipam).toEqual({ type: 'host-local', subnet: '10.56.0.0/24' });
    expect(conf.runtimeConfig.CNIDeviceInfoFile).toBe('/var/run/k8s.cni.cncf.io/devinfo/cni/default-sriov-kernel-c0ffee01_net1');
    expect(conf.runtimeConfig.portMappings).toEqual([]);
    expect((conf as unknown as Record<string, unknown>).pciBusID).toBe('0000:5E:02.1');
  });

  it('takes deviceID from runtimeConfig when there is no top-level one, and "" as unset', () => {
    expect(loadConf({ ...base, runtimeConfig: { deviceID: '0000:3b:02.1' } }).effective.deviceID).toBe('0000:3b:02.1');
    expect(loadConf({ ...base, deviceID: '0000:3b:02.2', runtimeConfig: { deviceID: '0000:3b:02.1' } }).effective.deviceID).toBe('0000:3b:02.2');
    const c = loadConf({ ...base, deviceID: '', mac: '', spoofchk: '' });
    expect(c.effective).toEqual({});
  });

  it('picks the MAC as sriov-cni does: runtimeConfig.mac > CNI_ARGS MAC > mac', () => {
    const args = parseCniArgs('IgnoreUnknown=1;MAC=02:00:00:00:00:02');
    const all = { ...base, mac: '02:00:00:00:00:03', runtimeConfig: { mac: '02:00:00:00:00:01' } };
    expect(loadConf(all, args).effective.mac).toBe('02:00:00:00:00:01');
    expect(loadConf({ ...base, mac: '02:00:00:00:00:03' }, args).effective.mac).toBe('02:00:00:00:00:02');
    expect(loadConf({ ...base, mac: '02:00:00:00:00:03' }).effective.mac).toBe('02:00:00:00:00:03');
    expect(loadConf({ ...base, mac: '02:AA:BB:CC:DD:EE' }).effective.mac).toBe('02:aa:bb:cc:dd:ee');
  });

  it('normalises vlanProto and keeps unknown top-level fields', () => {
    const c = loadConf({ ...base, vlan: 5, vlanProto: '802.1q', somethingElse: { x: 1 } });
    expect(c.vlanProto).toBe('802.1Q');
    expect((c as unknown as Record<string, unknown>).somethingElse).toEqual({ x: 1 });
  });

  it('parses prevResult and GC\'s valid attachments', () => {
    const c = loadConf({
      ...base,
      prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'net1', sandbox: '/var/run/netns/x' }], ips: [{ address: '10.1.0.5/24', interface: 0 }] },
      'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'net1' }],
    });
    expect(c.prevResult).toEqual({ interfaces: [{ name: 'net1', sandbox: '/var/run/netns/x' }], ips: [{ address: '10.1.0.5/24', interface: 0 }] });
    expect(c['cni.dev/valid-attachments']).toEqual([{ containerID: 'c1', ifname: 'net1' }]);
    // libcni marshals an empty list of valid attachments as null
    expect(loadConf({ ...base, 'cni.dev/valid-attachments': null })['cni.dev/valid-attachments']).toBeNull();
    const e = cniErr(() => loadConf({ ...base, prevResult: { ips: [{ address: '10.1.0.5' }] } }));
    expect(e.code).toBe(7);
    expect(e.message).toContain('prevResult: ips[0].address: expected an address in CIDR notation');
  });

  it('says a configuration list is not a plugin configuration', () => {
    expect(cniErr(() => loadConf({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'vfplane-cni' }] })).message).toContain('configuration list');
  });
});

describe('results', () => {
  const full: CniResult = {
    interfaces: [{ name: 'net1', mac: '02:00:00:00:00:01', mtu: 9000, sandbox: '/var/run/netns/p', pciID: '0000:3b:02.1', socketPath: '/run/x.sock' }],
    ips: [{ address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 0 }, { address: 'fd00::5/64', interface: 0 }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 }],
    dns: { nameservers: ['10.1.0.1'], search: ['svc.local'] },
  };

  it('writes 1.1.0 with every field', () => {
    expect(formatResult(full, '1.1.0')).toEqual({
      cniVersion: '1.1.0',
      interfaces: [{ name: 'net1', mac: '02:00:00:00:00:01', mtu: 9000, sandbox: '/var/run/netns/p', socketPath: '/run/x.sock', pciID: '0000:3b:02.1' }],
      ips: [{ interface: 0, address: '10.1.0.5/24', gateway: '10.1.0.1' }, { interface: 0, address: 'fd00::5/64' }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 }],
      dns: { nameservers: ['10.1.0.1'], search: ['svc.local'] },
    });
  });

  it('writes 1.0.0 without the fields 1.1.0 added', () => {
    expect(JSON.stringify(formatResult(full, '1.0.0'))).toBe(JSON.stringify({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'net1', mac: '02:00:00:00:00:01', sandbox: '/var/run/netns/p' }],
      ips: [{ interface: 0, address: '10.1.0.5/24', gateway: '10.1.0.1' }, { interface: 0, address: 'fd00::5/64' }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
      dns: { nameservers: ['10.1.0.1'], search: ['svc.local'] },
    }));
  });

  it('writes 0.4.0 with "version" on each IP', () => {
    const r = formatResult(full, '0.4.0') as { ips: unknown[] };
    expect(r.ips).toEqual([
      { version: '4', interface: 0, address: '10.1.0.5/24', gateway: '10.1.0.1' },
      { version: '6', interface: 0, address: 'fd00::5/64' },
    ]);
    expect(Object.keys(r.ips[0] as object)).toEqual(['version', 'interface', 'address', 'gateway']);
  });

  it('always writes dns, as the Go types do', () => {
    expect(formatResult({}, '1.0.0')).toEqual({ cniVersion: '1.0.0', dns: {} });
  });

  it('round-trips each version', () => {
    for (const v of SUPPORTED_VERSIONS) {
      const out = formatResult(full, v);
      const back = parsePrevResult(out, v);
      expect(formatResult(back, v), v).toEqual(out);
    }
    // 1.1.0 keeps everything.
    expect(parsePrevResult(formatResult(full, '1.1.0'), '1.1.0')).toEqual(full);
  });

  it('reads host-local\'s 0.4.0 and 1.0.0 output', () => {
    const v04 = '{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.9.0.3/24","gateway":"10.9.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}';
    expect(parseIpamResult(v04, '0.4.0')).toEqual({ ips: [{ address: '10.9.0.3/24', gateway: '10.9.0.1' }], routes: [{ dst: '0.0.0.0/0' }] });
    const v10 = '{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.2/24","gateway":"10.9.0.1"}],"dns":{}}';
    expect(parseIpamResult(v10, '1.0.0')).toEqual({ ips: [{ address: '10.9.0.2/24', gateway: '10.9.0.1' }] });
    // No cniVersion: the config's, as libcni assumes.
    expect(parseIpamResult('{"ips":[{"address":"10.9.0.2/24"}]}', '1.0.0').ips).toHaveLength(1);
  });

  it('refuses results it cannot read', () => {
    expect(cniErr(() => parseIpamResult('not json', '1.0.0')).code).toBe(6);
    expect(cniErr(() => parseIpamResult('{"cniVersion":"0.2.0","ip4":{}}', '1.0.0')).code).toBe(1);
    expect(cniErr(() => parseIpamResult('{"ips":[{"address":"10.0.0.1/24","version":"6"}]}', '0.4.0')).message).toContain('version');
    expect(cniErr(() => parsePrevResult({ interfaces: [], ips: [{ address: '10.0.0.1/24', interface: 2 }] }, '1.0.0')).message).toContain('index 2');
    expect(cniErr(() => formatResult({}, '0.2.0')).code).toBe(1);
    // 0.3.x results have the 0.4.0 shape: ips spell their version
    expect(formatResult({ ips: [{ address: '10.0.0.1/24', interface: 0 }], interfaces: [{ name: 'net1' }] }, '0.3.1')).toMatchObject({ cniVersion: '0.3.1', ips: [{ version: '4', interface: 0, address: '10.0.0.1/24' }] });
  });
});

describe('toCniError', () => {
  it('maps VfpError kinds to spec codes, and cniCode overrides', () => {
    expect(toCniError(invalid('x')).code).toBe(7);
    expect(toCniError(notFound('x')).code).toBe(7);
    expect(toCniError(conflict('x')).code).toBe(11);
    expect(toCniError(unavailable('x')).code).toBe(11);
    expect(toCniError(systemError('x')).code).toBe(5);
    expect(toCniError(unavailable('x'), 'STATUS').code).toBe(50);
    expect(toCniError(systemError('x'), 'STATUS').code).toBe(50);
    const e = toCniError(notFound('netns gone', { cniCode: 3, cniDetails: 'no cleanup needed' }));
    expect([e.code, e.message, e.details]).toEqual([3, 'netns gone', 'no cleanup needed']);
  });

  it('passes CniErrors through and calls anything else internal (999)', () => {
    const c = new CniError(4, 'x');
    expect(toCniError(c)).toBe(c);
    const e = toCniError(new TypeError('boom'));
    expect(e.code).toBe(999);
    expect(e.message).toContain('boom');
    expect(ERR.TRY_AGAIN).toBe(11);
  });
});

describe('the vfplane-cni executable', () => {
  const run = (env: Record<string, string | undefined>, input?: string) => {
    const e: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('CNI_')) e[k] = v;
    for (const [k, v] of Object.entries(env)) if (v !== undefined) e[k] = v;
    const r = spawnSync(process.execPath, [PLUGIN], { env: e, input: input ?? '', encoding: 'utf8', timeout: 30_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  // Node 20's recursive mkdirSync loops for ever under procfs (mkdir /proc/x: ENOENT with
  // /proc there); the plugin must answer rather than hang the runtime.
  it('answers with an error, not a hang, when stateDir cannot be made (under /proc)', () => {
    const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'n1', type: 'vfplane-cni', stateDir: '/proc/vfplane-no-such-dir', sysfsRoot: '/sys' });
    const r = run({ CNI_COMMAND: 'CHECK', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'net1', CNI_NETNS: '/proc/self/ns/net' }, conf);
    expect(r.code).toBe(1); // a hang is killed by run()'s 30 s timeout: no exit code
    // A path through /proc is refused before anything is made (its links lead into other
    // processes' views of the filesystem); makeDirs' own guard stays for the CLI's flags.
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 7, msg: expect.stringMatching(/^stateDir \/proc\/vfplane-no-such-dir: \/proc\/vfplane-no-such-dir goes through \/proc/) });
    // DEL makes no store: with none there, nothing was allocated in it.
    expect(run({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'net1', CNI_NETNS: '' }, conf).code).toBe(0);
  });

  it('STATUS names poolsFile when the pool definitions are missing, as ADD does', () => {
    const m = makeSim({ netdevs: false, vfs: 2 });
    const dir = mkdtempSync(join(tmpdir(), 'vfp-cni-pool-'));
    try {
      const conf = { cniVersion: '1.1.0', name: 'n1', type: 'vfplane-cni', pool: 'fast', stateDir: dir, sysfsRoot: m.root };
      // (ADD takes the pool through the same function, confPool, and gives the same words)
      const r = run({ CNI_COMMAND: 'STATUS', CNI_PATH: '/usr/lib/cni' }, JSON.stringify(conf));
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ code: 7, msg: `pool "fast": no pool definitions at ${join(dir, 'pools.json')}; write them there, or set poolsFile in the network configuration to where they are` });
    } finally {
      rmSync(dir, { recursive: true, force: true });
      dropSim(m.root);
    }
  });

  // Without logFile the lines go to stderr, which the runtime logs: warnings by default
  // (they were at error level there, so no one saw one), none with logLevel "error".
  it('logs a likely typo of its own fields as a warning, by default on stderr, and carries on', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfp-cni-typo-'));
    try {
      const conf = { cniVersion: '1.0.0', name: 'n1', type: 'vfplane-cni', stateDir: dir, sysfsRoot: '/sys', vxaln: { vni: 100 } };
      const r = run({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'net1', CNI_NETNS: '' }, JSON.stringify(conf));
      expect(r.code, r.stdout).toBe(0);
      const warned = r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: string; msg: string });
      expect(warned).toContainEqual(expect.objectContaining({ level: 'warning', msg: 'unknown field "vxaln" ignored (a plugin ignores the fields it does not know): did you mean "vxlan"?' }));
      expect(warned.filter((w) => w.level === 'info' || w.level === 'debug')).toEqual([]);
      const quiet = run({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'net1', CNI_NETNS: '' }, JSON.stringify({ ...conf, logLevel: 'error' }));
      expect(quiet.code, quiet.stdout).toBe(0);
      expect(quiet.stderr).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Paths a network config names are opened as root: a logFile that is a FIFO blocked the
  // call (and `cni serve` with it) until someone read it, one behind a symlink was written
  // through it, and a poolsFile of /dev/zero filled memory. Refused now, and the call goes on.
  it('a logFile that is a FIFO or a symlink, and a poolsFile that is a device, are refused without blocking or following', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfp-cni-paths-'));
    try {
      const fifo = join(dir, 'fifo.log');
      execFileSync('mkfifo', [fifo]);
      const victim = join(dir, 'victim');
      writeFileSync(victim, 'precious\n', { mode: 0o600 });
      symlinkSync(victim, join(dir, 'link.log'));
      // The directory is a log directory (VFPLANE_CNI_LOG_DIRS), so what is refused is the file.
      for (const [logFile, why] of [[fifo, `logFile ${fifo} is not written: ${fifo} is not a regular file`], [join(dir, 'link.log'), `cannot open logFile ${join(dir, 'link.log')}`]] as const) {
        const r = run({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'net1', CNI_NETNS: '', VFPLANE_CNI_LOG_DIRS: dir }, JSON.stringify({ ...base, stateDir: dir, logFile, logLevel: 'info' }));
        expect(r.code, r.stdout).toBe(0);
        expect(r.stderr).toContain(why);
      }
      expect(readFileSync(victim, 'utf8')).toBe('precious\n');
      const { loadPools } = await import('../../src/alloc/pool.js');
      expect(() => loadPools('/dev/zero')).toThrow('cannot read pool file /dev/zero: not a regular file');
      expect(() => loadPools(fifo)).toThrow(`cannot read pool file ${fifo}: not a regular file`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // A config refused at once (before its logger exists) still tells the logFile it names.
  it('writes why a config was refused to the logFile it names', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfp-cni-refused-'));
    try {
      const logFile = join(dir, 'cni.log');
      const r = run({ CNI_COMMAND: 'ADD', ...attach, VFPLANE_CNI_LOG_DIRS: dir }, JSON.stringify({ ...base, vlan: '12', logFile }));
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ code: 7, msg: 'vlan: expected an integer 0–4094, got "12"' });
      const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toEqual([expect.objectContaining({ level: 'error', msg: 'vlan: expected an integer 0–4094, got "12"', code: 7, command: 'ADD', containerId: attach.CNI_CONTAINERID })]);
      // A relative one is no file to write to: nothing is made, the answer is the same.
      const rel = run({ CNI_COMMAND: 'ADD', ...attach, VFPLANE_CNI_LOG_DIRS: dir }, JSON.stringify({ ...base, vlan: '12', logFile: 'cni.log' }));
      expect(rel.code).toBe(1);
      expect(existsSync(join(process.cwd(), 'cni.log'))).toBe(false);
      // Nor is one outside the log directories (the plugin is root; the config is anyone's).
      const outside = join(dir, 'elsewhere.log');
      const out = run({ CNI_COMMAND: 'ADD', ...attach }, JSON.stringify({ ...base, vlan: '12', logFile: outside }));
      expect(JSON.parse(out.stdout)).toMatchObject({ code: 7, msg: 'vlan: expected an integer 0–4094, got "12"' });
      expect(existsSync(outside)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers VERSION with the input cniVersion and the supported list', () => {
    const r = run({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n');
    const none = run({ CNI_COMMAND: 'VERSION' });
    expect(JSON.parse(none.stdout)).toEqual({ cniVersion: '1.1.0', supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });
  });

  it('prints the error object and exits 1 on bad input', () => {
    const cases: [Record<string, string>, string, object][] = [
      [{ CNI_COMMAND: 'ADD', ...attach, CNI_NETNS: '' }, JSON.stringify(base),
        { cniVersion: '1.0.0', code: 4, msg: 'required environment variable CNI_NETNS missing for ADD' }],
      [{ CNI_COMMAND: 'ADD', ...attach }, JSON.stringify({ ...base, vlan: '12' }),
        { cniVersion: '1.0.0', code: 7, msg: 'vlan: expected an integer 0–4094, got "12"' }],
      [{ CNI_COMMAND: 'ADD', ...attach }, JSON.stringify({ ...base, cniVersion: '0.2.0' }),
        { cniVersion: '0.2.0', code: 1, msg: 'cniVersion "0.2.0" is not supported; vfplane-cni supports 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0', details: 'set "cniVersion": "1.0.0" (or another supported version) in the network configuration' }],
      // A version of the wrong type names none: a malformed config, not a version lacking.
      [{ CNI_COMMAND: 'ADD', ...attach }, JSON.stringify({ ...base, cniVersion: 1 }),
        { cniVersion: '1.1.0', code: 7, msg: 'cniVersion 1 is not a version: expected a string such as "1.0.0"' }],
      [{ CNI_COMMAND: 'CHECK', ...attach }, JSON.stringify({ ...base, cniVersion: '0.3.1' }),
        { cniVersion: '0.3.1', code: 1, msg: 'cniVersion 0.3.1 does not have CHECK; it came with 0.4.0', details: 'set "cniVersion": "0.4.0" to use CHECK' }],
      [{ CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' }, JSON.stringify(base),
        { cniVersion: '1.0.0', code: 1, msg: 'cniVersion 1.0.0 does not have GC; it came with 1.1.0', details: 'set "cniVersion": "1.1.0" to use GC' }],
      // Without the list every attachment would look stale; libcni always sends the key.
      [{ CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' }, JSON.stringify({ ...base, cniVersion: '1.1.0' }),
        { cniVersion: '1.1.0', code: 7, msg: 'GC needs "cni.dev/valid-attachments": the attachments of this network the runtime still has', details: 'the runtime sends it; by hand, list the attachments to keep ([] releases every VF of this network)' }],
      [{ CNI_COMMAND: 'ADD', ...attach }, '{"cniVersion": "1.0.0", "name": ',
        { cniVersion: '1.1.0', code: 6 }],
      // Nested thousands deep: was code 999 "internal error: Maximum call stack size exceeded".
      [{ CNI_COMMAND: 'ADD', ...attach }, JSON.stringify(base).replace(/}$/, `,"ipam":${'['.repeat(20000)}${']'.repeat(20000)}}`),
        { cniVersion: '1.0.0', code: 6, msg: 'network configuration nests deeper than 64 levels; no CNI configuration does' }],
      [{ CNI_COMMAND: 'ADD', ...attach }, JSON.stringify({ ...base, deviceID: '../../0000:5e:02.0' }),
        { cniVersion: '1.0.0', code: 7, msg: 'deviceID: expected a PCI address DDDD:BB:DD.F like 0000:3b:02.1 (the VF the device plugin allocated), got "../../0000:5e:02.0"' }],
    ];
    for (const [env, input, want] of cases) {
      const r = run(env, input);
      expect(r.code, input.slice(0, 200)).toBe(1);
      expect(JSON.parse(r.stdout), input.slice(0, 200)).toMatchObject(want);
      if ('msg' in want) expect(JSON.parse(r.stdout)).toEqual(want);
    }
  });

  it('without CNI_COMMAND says what it is on stderr and exits 0 with nothing on stdout, as the reference plugins do', () => {
    for (const env of [{}, { CNI_COMMAND: '' }]) {
      const r = run(env, '{"cniVersion":"1.0.0","name":"n1","type":"vfplane-cni"}');
      expect(r.code).toBe(0);
      expect(r.stderr).toContain('CNI protocol versions supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0');
      expect(r.stdout).toBe('');
    }
    const ref = spawnSync('/usr/lib/cni/macvlan', [], { env: { PATH: process.env.PATH }, input: '', encoding: 'utf8' });
    if (ref.status !== null) expect(ref.status).toBe(0); // the same as macvlan (libcni's skel)
  });

  it('a config without cniVersion (0.1.0, which it does not speak) gets code 1 in an error labelled 0.1.0', () => {
    const r = run({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'net1', CNI_NETNS: '' }, '{"name":"n1","type":"vfplane-cni"}');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: '0.1.0', code: 1, msg: expect.stringMatching(/no cniVersion \(which means 0\.1\.0\)/) });
  });

  it('GC and STATUS take no CNI_ARGS: a stray unknown key does not fail them', () => {
    const conf = JSON.stringify({ cniVersion: '1.1.0', name: 'n1', type: 'vfplane-cni', sysfsRoot: '/nonexistent-vfplane-root', 'cni.dev/valid-attachments': [] });
    const r = run({ CNI_COMMAND: 'STATUS', CNI_ARGS: 'FOO=bar' }, conf);
    expect(r.stdout).not.toMatch(/CNI_ARGS/);
    const add = run({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'net1', CNI_NETNS: '/proc/self/ns/net', CNI_ARGS: 'FOO=bar' }, conf);
    expect(JSON.parse(add.stdout)).toMatchObject({ code: 4, msg: expect.stringMatching(/CNI_ARGS has unknown key FOO/) });
  });
});

describe('the shim protocol', () => {
  it('splits a request into the environment and stdin (version 1, from an older shim: CNI_* only)', async () => {
    const { parseRequest } = await import('../../src/cni/server.js');
    const req = Buffer.concat([Buffer.from('VFPCNI1\n'), Buffer.from('CNI_COMMAND=ADD\0CNI_ARGS=A=1;B=2\0PATH=/other\0\0'), Buffer.from('{"x":1}')]);
    expect(parseRequest(req)).toEqual({ env: { CNI_COMMAND: 'ADD', CNI_ARGS: 'A=1;B=2' }, stdin: '{"x":1}', version: 1 });
    const v2 = Buffer.concat([Buffer.from('VFPCNI2\n'), Buffer.from('CNI_COMMAND=ADD\0CNI_ARGS=A=1;B=2\0PATH=/other\0\0'), Buffer.from('{"x":1}')]);
    expect(parseRequest(v2)).toEqual({ env: { CNI_COMMAND: 'ADD', CNI_ARGS: 'A=1;B=2', PATH: '/other' }, stdin: '{"x":1}', version: 2 });
    expect(() => parseRequest(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(/not a vfplane-cni shim request/);
    expect(() => parseRequest(Buffer.from('VFPCNI1\nCNI_COMMAND=ADD'))).toThrow(/truncated/);
  });

  // A connection that sends nothing (not a shim: it sends at once) kept a stopping server
  // from ever stopping, and held a slot for good. A stop closes it; left alone, the server
  // closes it after REQUEST_TIMEOUT_MS.
  it('the server stops while a connection has sent no request, closing it', async () => {
    const { serveCni } = await import('../../src/cni/server.js');
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-cni-idle-'));
    const srv = await serveCni(join(dir, 'cni.sock'), () => undefined);
    try {
      const c = connect(srv.socket);
      await once(c, 'connect');
      const closed = once(c, 'close');
      await srv.close(); // (it never returned: the test's timeout)
      await closed;
      expect(existsSync(srv.socket)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the server takes a connection closed without a request (a liveness probe, as doctor makes) quietly, and still logs a garbled one', async () => {
    const { serveCni } = await import('../../src/cni/server.js');
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-cni-probe-'));
    const logged: string[] = [];
    const srv = await serveCni(join(dir, 'cni.sock'), (m) => logged.push(m));
    const send = (data: string | null) => new Promise<void>((resolve) => {
      const c = connect(srv.socket, () => (data === null ? c.end() : c.end(data)));
      c.on('close', () => resolve());
      c.on('error', () => resolve());
      c.resume();
    });
    try {
      await send(null);
      await send(null);
      await new Promise((r) => setTimeout(r, 50));
      expect(logged).toEqual([]);
      await send('GET / HTTP/1.1\r\n');
      await new Promise((r) => setTimeout(r, 50));
      expect(logged).toEqual(['vfplane cni serve: not a vfplane-cni shim request']);
    } finally {
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serve and install refuse a socket path that names a file (serve deleted it) or is too long for a Unix socket (served elsewhere, cut short)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-cni-sockpath-'));
    try {
      const file = join(dir, 'precious.txt');
      writeFileSync(file, 'keep me\n');
      mkdirSync(join(dir, 'adir'));
      const long = join(dir, 'x'.repeat(110), 'c.sock');
      for (const [args, msg] of [
        [['serve', '--socket', file], `the socket path ${file} is a regular file (8 bytes), which \`vfplane cni serve\` will not replace; fix --socket`],
        [['serve', '--socket', join(dir, 'adir')], 'is a directory, which `vfplane cni serve` will not replace'],
        [['serve', '--socket', long], `the socket path ${long} is ${Buffer.byteLength(long)} bytes long, and a Unix socket's path is 107 bytes at most; give --socket a shorter path`],
        [['install', '--dir', join(dir, 'bin'), '--socket', long], 'a Unix socket\'s path is 107 bytes at most'],
        [['install', '--dir', join(dir, 'bin'), '--socket', file], 'which `vfplane cni serve` will not replace'],
      ] as const) {
        const r = vfplane(['cni', ...args]);
        expect([r.code, r.stderr], args.join(' ')).toEqual([2, expect.stringContaining(msg)]);
      }
      expect(readFileSync(file, 'utf8')).toBe('keep me\n');
      expect(existsSync(join(dir, 'x'.repeat(110)))).toBe(false);
      expect(readdirSync(dir).sort()).toEqual(['adir', 'precious.txt']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('install without the compiled shim (a build not finished) writes the shell wrapper, and says what that costs and how to mend it', () => {
    // An installation of vfplane without build/: its JavaScript alone.
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-cni-noshim-'));
    try {
      for (const d of ['bin', 'dist', 'hw-profiles', 'package.json']) cpSync(join(ROOT, d), join(dir, d), { recursive: true });
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
      const r = spawnSync(process.execPath, [join(dir, 'bin', 'vfplane.js'), 'cni', 'install', '--dir', join(dir, 'out')], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(join(dir, 'out', 'vfplane-cni'), 'utf8')).toMatch(/^#!\/bin\/sh\n/);
      expect(existsSync(join(dir, 'out', 'vfplane-cni.shim'))).toBe(false);
      expect(r.stderr).toContain(`warning: the compiled shim ${join(dir, 'build', 'Release', 'vfplane-cni-shim')} is missing`);
      expect(r.stderr).toContain('starts Node for every call (~10× slower per pod), and `vfplane cni serve` will not be used; build it (`npm run build`, or ./scripts/setup) and run `vfplane cni install` again');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a shim meeting a server from before version 2 (it hangs up on the request) asks again in version 1 and relays that answer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-shimv1-'));
    const sock = join(dir, 'cni.sock');
    const seen: string[] = [];
    // What a version-1 server did: parse "VFPCNI1\n", CNI_* and stdin; answer "CODE\n" and
    // stdout; anything else is not its request, and it hangs up.
    const server = createServer({ allowHalfOpen: true }, (c) => {
      const chunks: Buffer[] = [];
      c.on('data', (d: Buffer) => chunks.push(d));
      c.on('end', () => {
        const req = Buffer.concat(chunks);
        const magic = req.subarray(0, 8).toString('latin1');
        seen.push(magic.trim());
        if (magic !== 'VFPCNI1\n') return void c.destroy();
        const stdin = req.subarray(req.indexOf('\0\0') + 2).toString();
        c.end(`3\n{"v1":true,"stdin":${JSON.stringify(stdin)}}`);
      });
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const shim = spawn(join(ROOT, 'build/Release/vfplane-cni-shim'), [sock, '/nonexistent', '/nonexistent'], { env: { CNI_COMMAND: 'VERSION' } });
      let out = '';
      shim.stdout.on('data', (d) => (out += d));
      shim.stdin.end('{"cniVersion":"1.0.0"}');
      const code = await new Promise<number | null>((r) => shim.on('close', r));
      expect(seen).toEqual(['VFPCNI2', 'VFPCNI1']);
      expect(code).toBe(3);
      expect(JSON.parse(out)).toEqual({ v1: true, stdin: '{"cniVersion":"1.0.0"}' });
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** Runs the built shim against SOCK with PLUGIN (run by PROG) as its fallback; resolves
   *  with its exit status, stdout and stderr. `during` runs once it has started. */
  const shimCall = (sock: string, prog: string, plugin: string, env: Record<string, string>, stdin: string | Buffer, during?: (pid: number) => void) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const shim = spawn(join(ROOT, 'build/Release/vfplane-cni-shim'), [sock, prog, plugin], { env });
      let out = '';
      let err = '';
      shim.stdout.on('data', (d) => (out += d));
      shim.stderr.on('data', (d) => (err += d));
      shim.stdin.on('error', () => undefined);
      shim.stdin.end(stdin);
      during?.(shim.pid!);
      shim.on('close', (code) => resolve({ code, out, err }));
    });

  it('cni serve stops on SIGHUP as on SIGTERM, removing its socket (a closed terminal killed it, the file left)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-serve-hup-'));
    const sock = join(dir, 'c.sock');
    const p = spawn(process.execPath, [join(ROOT, 'bin/vfplane.js'), 'cni', 'serve', '--socket', sock], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      let err = '';
      p.stderr.on('data', (d) => (err += d));
      for (let i = 0; i < 200 && !err.includes('listening'); i++) await new Promise((r) => setTimeout(r, 50));
      expect(existsSync(sock)).toBe(true);
      p.kill('SIGHUP');
      const [code, signal] = await new Promise<[number | null, string | null]>((r) => p.on('exit', (c, sg) => r([c, sg])));
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(existsSync(sock)).toBe(false);
    } finally {
      p.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a server answering RUNSELF has the shim run the plugin itself, with the stdin it had read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-shim-self-'));
    const sock = join(dir, 'cni.sock');
    const server = createServer({ allowHalfOpen: true }, (c) => {
      c.resume();
      c.on('end', () => c.end('RUNSELF\n'));
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const script = join(dir, 'plugin.sh');
      writeFileSync(script, 'printf "self %s:" "$CNI_COMMAND"; cat\n');
      const r = await shimCall(sock, '/bin/sh', script, { CNI_COMMAND: 'ADD' }, '{"cniVersion":"1.0.0","name":"x"}');
      expect(r).toEqual({ code: 0, out: 'self ADD:{"cniVersion":"1.0.0","name":"x"}', err: '' });
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('vfplane cni serve leaves a call that sets other VFPLANE_* settings, or is over its size limit, to the shim, which runs the plugin itself (served, the server\'s settings applied)', async () => {
    const { serveCni } = await import('../../src/cni/server.js');
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-shim-foreign-'));
    const logged: string[] = [];
    const srv = await serveCni(join(dir, 'cni.sock'), (m) => logged.push(m));
    try {
      const plugin = join(ROOT, 'bin/vfplane-cni.js');
      const conf = '{"cniVersion":"1.0.0","name":"n","type":"vfplane-cni"}';
      const served = await shimCall(srv.socket, process.execPath, plugin, { CNI_COMMAND: 'VERSION' }, conf);
      expect(served.code, served.out).toBe(0);
      expect(logged).toEqual([expect.stringMatching(/^vfplane cni serve: VERSION: ok in \d+\.\d ms$/)]); // served: its line
      logged.length = 0;
      const own = await shimCall(srv.socket, process.execPath, plugin, { CNI_COMMAND: 'VERSION', VFPLANE_SYSFS_ROOT: join(dir, 'sys') }, conf);
      expect(own.code, own.out).toBe(0);
      expect(JSON.parse(own.out)).toEqual(JSON.parse(served.out));
      expect(logged).toEqual(['vfplane cni serve: a VERSION call sets VFPLANE_SYSFS_ROOT other than this server runs with: its shim runs the plugin itself']);
      // 5 MiB of config (a huge prevResult, say): over the server's 4 MiB.
      const big = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'vfplane-cni', pad: 'x'.repeat(5 << 20) });
      const large = await shimCall(srv.socket, process.execPath, plugin, { CNI_COMMAND: 'VERSION' }, big);
      expect(large.code, large.out).toBe(0);
      expect(JSON.parse(large.out)).toEqual(JSON.parse(served.out));
      expect(logged.at(-1)).toMatch(/a request larger than 4194304 bytes: its shim runs the plugin itself/);
    } finally {
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the shim keeps the plugin\'s signal contract: a first SIGTERM lets the call finish and its answer stand, said on stderr; a second stops waiting', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-shim-sig-'));
    const sock = join(dir, 'cni.sock');
    const server = createServer({ allowHalfOpen: true }, (c) => {
      c.resume();
      c.on('end', () => setTimeout(() => c.end('0 0\n{"cniVersion":"1.0.0","done":true}'), 1200));
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const once1 = await shimCall(sock, '/nonexistent', '/nonexistent', { CNI_COMMAND: 'ADD' }, '{}', (pid) => setTimeout(() => process.kill(pid, 'SIGTERM'), 300));
      expect(once1.code).toBe(0);
      expect(JSON.parse(once1.out)).toEqual({ cniVersion: '1.0.0', done: true });
      expect(once1.err).toBe('vfplane-cni: SIGTERM: finishing the call under way; its answer stands (a second signal stops waiting for it)\n');
      const twice = await shimCall(sock, '/nonexistent', '/nonexistent', { CNI_COMMAND: 'ADD' }, '{}', (pid) => {
        setTimeout(() => process.kill(pid, 'SIGINT'), 300);
        setTimeout(() => process.kill(pid, 'SIGINT'), 500);
      });
      expect(twice).toMatchObject({ code: 130, out: '' });
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

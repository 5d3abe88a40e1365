// Device-info files: the spec's JSON, written atomically, named as Multus names them,
// removed idempotently, and never written outside an absolute, ".."-free path.
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_DEVINFO_DIR,
  deviceInfoFileName,
  deviceInfoPath,
  dropDeviceInfo,
  readDeviceInfo,
  removeDeviceInfo,
  writeDeviceInfo,
} from '../../src/cni/devinfo.js';
import { CniError } from '../../src/cni/spec.js';
import { thrown } from '../helpers/thrown.js';

const cniErr = (fn: () => unknown) => thrown(CniError, fn);

describe('device-info files', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'vfplane-devinfo-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('names the file as Multus does, in the spec\'s directory', () => {
    expect(DEFAULT_DEVINFO_DIR).toBe('/var/run/k8s.cni.cncf.io/devinfo/cni');
    expect(deviceInfoFileName('default/sriov-net', 'c0ffee01', 'net1')).toBe('default-sriov-net-c0ffee01_net1');
    const conf = { name: 'sriov-net', runtimeConfig: {} };
    expect(deviceInfoPath(conf, { containerId: 'c0ffee01', ifname: 'net1' })).toBe('/var/run/k8s.cni.cncf.io/devinfo/cni/sriov-net-c0ffee01_net1');
    expect(deviceInfoPath(conf, { containerId: 'c0ffee01', ifname: 'net1' }, root)).toBe(join(root, 'sriov-net-c0ffee01_net1'));
  });

  it('prefers runtimeConfig.CNIDeviceInfoFile, under the device-info directory only', () => {
    const file = '/var/run/k8s.cni.cncf.io/devinfo/cni/default-sriov-net-c0ffee01_net1';
    expect(deviceInfoPath({ name: 'sriov-net', runtimeConfig: { CNIDeviceInfoFile: file } }, {})).toBe(file);
    expect(deviceInfoPath({ name: 'n', runtimeConfig: { CNIDeviceInfoFile: '/run/k8s.cni.cncf.io/devinfo/cni/x' } }, {})).toBe('/run/k8s.cni.cncf.io/devinfo/cni/x');
    for (const outside of ['/etc/passwd', '/var/run/k8s.cni.cncf.io/devinfo', '/var/run/k8s.cni.cncf.io/devinfoX/y']) {
      const e = cniErr(() => deviceInfoPath({ name: 'n', runtimeConfig: { CNIDeviceInfoFile: outside } }, {}));
      expect([e.code, e.message], outside).toEqual([7, expect.stringContaining('is outside /var/run/k8s.cni.cncf.io/devinfo/')]);
    }
  });

  it('refuses relative and ".." paths', () => {
    for (const bad of ['devinfo/x', '../x', '/var/run/k8s.cni.cncf.io/devinfo/cni/../../../etc/passwd', '/var/run/x/', '']) {
      if (bad === '') continue; // "" means unset
      const e = cniErr(() => deviceInfoPath({ name: 'n', runtimeConfig: { CNIDeviceInfoFile: bad } }, {}));
      expect(e.code, bad).toBe(7);
      expect(cniErr(() => writeDeviceInfo(bad, { pci: '0000:3b:02.1' })).code).toBe(7);
      expect(cniErr(() => removeDeviceInfo(bad)).code).toBe(7);
    }
    expect(cniErr(() => deviceInfoPath({ name: 'n' }, { ifname: 'net1' })).code).toBe(4);
  });

  it('writes the spec\'s JSON (type pci, version 1.1.0), creating the directory', () => {
    const file = join(root, 'a', 'b', 'net-c1_net1');
    writeDeviceInfo(file, { pci: '0000:3B:02.1', pfPci: '0000:3b:00.0', representor: 'ens1f0r1' });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      type: 'pci',
      version: '1.1.0',
      pci: { 'pci-address': '0000:3b:02.1', 'pf-pci-address': '0000:3b:00.0', 'representor-device': 'ens1f0r1' },
    });
    expect(statSync(join(root, 'a', 'b')).mode & 0o777).toBe(0o755);
    expect(statSync(file).mode & 0o777).toBe(0o444);
    expect(readDeviceInfo(file)?.pci?.['pci-address']).toBe('0000:3b:02.1');
  });

  it('replaces a file already there (Multus\'s copy of the device plugin\'s) atomically, leaving no temp files', () => {
    const dir = join(root, 'replace');
    const file = join(dir, 'net-c2_net1');
    writeDeviceInfo(file, { pci: '0000:3b:02.2' });
    writeFileSync(join(dir, 'other'), 'x');
    writeDeviceInfo(file, { pci: '0000:3b:02.3', pfPci: '0000:3b:00.0' });
    expect(readDeviceInfo(file)).toEqual({ type: 'pci', version: '1.1.0', pci: { 'pci-address': '0000:3b:02.3', 'pf-pci-address': '0000:3b:00.0' } });
    expect(readdirSync(dir).sort()).toEqual(['net-c2_net1', 'other']);
  });

  it('refuses a malformed PCI address', () => {
    expect(cniErr(() => writeDeviceInfo(join(root, 'bad'), { pci: '../0000:3b:02.1' })).code).toBe(7);
    expect(existsSync(join(root, 'bad'))).toBe(false);
  });

  it('removes idempotently', () => {
    const file = join(root, 'rm-c3_net1');
    writeDeviceInfo(file, { pci: '0000:3b:02.4' });
    removeDeviceInfo(file);
    expect(existsSync(file)).toBe(false);
    removeDeviceInfo(file);
    expect(readDeviceInfo(file)).toBeNull();
  });

  // helper-108: a dangling symlink at the path was "gone already" (existsSync follows it)
  // and left for the next ADD at that path to meet.
  it('a releaser\'s dropDeviceInfo removes a file, a symlink (not its target) and a dangling one; says a missing one is gone', () => {
    const file = join(root, 'drop-c4_net1');
    writeDeviceInfo(file, { pci: '0000:3b:02.4' });
    expect(dropDeviceInfo(file)).toEqual({ step: 'device-info', file, removed: true });
    expect(dropDeviceInfo(file)).toEqual({ step: 'device-info', file, removed: false, why: 'gone already' });
    const target = join(root, 'drop-target');
    writeFileSync(target, '{}');
    symlinkSync(target, file);
    expect(dropDeviceInfo(file)).toMatchObject({ removed: true });
    expect(existsSync(target)).toBe(true);
    symlinkSync(join(root, 'no-such-target'), file);
    expect(dropDeviceInfo(file)).toMatchObject({ removed: true });
    expect(() => lstatSync(file)).toThrow(/ENOENT/);
  });
});

// Owners: is the holder of an allocation still there? Real processes and real files.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { describeOwner, ownerAlive, ownerMatches, parseOwner, pidStart } from '../../src/alloc/owner.js';

describe('ownerAlive', () => {
  it('is unknown with neither a netns nor a pid recorded', () => {
    expect(ownerAlive({ namespace: 'default', name: 'web-0', containerId: 'abc' })).toBe('unknown');
  });

  it('follows a process: alive while it runs, gone once it exits or its PID means another process', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    await once(child, 'spawn');
    const pid = child.pid!;
    const start = pidStart(pid);
    expect(start).toMatch(/^\d+$/);
    expect(ownerAlive({ pid, pidStart: start })).toBe('alive');
    expect(ownerAlive({ pid })).toBe('alive');
    // Same PID, other start time: a recycled PID, not our owner.
    expect(ownerAlive({ pid, pidStart: String(Number(start) + 1) })).toBe('gone');
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(pidStart(pid)).toBeUndefined();
    expect(ownerAlive({ pid, pidStart: start })).toBe('gone');
  });

  it('follows a netns path, and either sign of death is enough', () => {
    // A namespace is a file on nsfs: /proc/self/ns/net is one, no root needed.
    const ns = '/proc/self/ns/net';
    expect(ownerAlive({ netns: ns })).toBe('alive');
    expect(ownerAlive({ netns: ns, pid: process.pid, pidStart: pidStart(process.pid) })).toBe('alive');
    expect(ownerAlive({ netns: ns, pid: 2 ** 22 + 1 })).toBe('gone');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfplane-owner-'));
    try {
      // What `ip netns del` (or a runtime) leaves when it unmounts but does not remove:
      // a plain file where the namespace was bind-mounted. The sandbox is gone.
      const stub = path.join(dir, 'cni-1234');
      fs.writeFileSync(stub, '');
      expect(ownerAlive({ netns: stub })).toBe('gone');
      fs.unlinkSync(stub);
      expect(ownerAlive({ netns: stub })).toBe('gone');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('owners', () => {
  it('match on every given field and only those', () => {
    const o = { namespace: 'default', name: 'web-0', containerId: 'abc', ifname: 'net1' };
    expect(ownerMatches(o, { containerId: 'abc' })).toBe(true);
    expect(ownerMatches(o, { namespace: 'default', name: 'web-0', ifname: 'net1' })).toBe(true);
    expect(ownerMatches(o, { namespace: 'default', name: 'web-1' })).toBe(false);
    expect(ownerMatches(o, { uid: 'x' })).toBe(false);
  });

  it('are described as an operator knows them', () => {
    expect(describeOwner({ namespace: 'default', name: 'web-0', containerId: '4f2a9c1e77d0b3aa55', ifname: 'net1' })).toBe('pod default/web-0 (container 4f2a9c1e77d0…, net1)');
    expect(describeOwner({ pid: 42 })).toBe('process 42');
    expect(describeOwner({ containerId: 'abc' })).toBe('container abc');
  });

  it('are validated field by field', () => {
    expect(parseOwner({ namespace: 'kube-system', name: 'coredns-5d78c9869d-abcde', netns: '/var/run/netns/cni-1', pid: 1 })).toMatchObject({ pid: 1 });
    expect(() => parseOwner({ netns: 'relative/path', containerId: 'a' }, 'CNI args')).toThrow('CNI args: netns "relative/path" is not valid: an absolute path');
    expect(() => parseOwner({ pid: 0 })).toThrow('owner: pid 0 is not valid');
    expect(() => parseOwner({ namespace: 'default' })).toThrow('does not identify anyone');
    expect(parseOwner({ ifname: 'net1' }, 'pattern', true)).toEqual({ ifname: 'net1' });
  });
});

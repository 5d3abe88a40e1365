// IPAM delegation against the real reference plugins (host-local, static from Debian's
// containernetworking-plugins in /usr/lib/cni), plus small stand-in plugins for the
// failure shapes the reference ones do not produce on demand.
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execIpam, findPlugin } from '../../src/cni/ipam.js';
import { CniError, parseEnv, type CniEnv } from '../../src/cni/spec.js';
import { rejected } from '../helpers/thrown.js';

const REF = '/usr/lib/cni';
const haveRef = existsSync(join(REF, 'host-local')) && existsSync(join(REF, 'static'));

const cniErr = (p: Promise<unknown>) => rejected(CniError, p);

describe.skipIf(!haveRef)('execIpam with the reference plugins', () => {
  let dir: string; // holds stand-in plugins, first in CNI_PATH
  let dataDir: string; // host-local's leases
  const quiet = { stderr: () => undefined };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vfplane-ipam-bin-'));
    dataDir = mkdtempSync(join(tmpdir(), 'vfplane-ipam-data-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  const envFor = (command: string, containerId = 'c0ffee01', extra: Record<string, string> = {}): CniEnv =>
    parseEnv({ CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: '/proc/self/ns/net', CNI_IFNAME: 'net1', CNI_PATH: `${dir}:${REF}`, ...extra });

  const hostLocal = (version = '1.0.0') => ({
    cniVersion: version,
    name: 'vfnet',
    type: 'vfplane-cni',
    vlan: 100, // the whole config goes to IPAM; it ignores what is not its own
    ipam: { type: 'host-local', subnet: '10.77.0.0/24', dataDir, routes: [{ dst: '10.78.0.0/16' }] },
  });
  const leases = () => (existsSync(join(dataDir, 'vfnet')) ? readdirSync(join(dataDir, 'vfnet')).filter((f) => /^\d/.test(f)).sort() : []);

  it('host-local ADD gives an address from the subnet; DEL releases it', async () => {
    const r = await execIpam('ADD', hostLocal(), envFor('ADD'), 'host-local', quiet);
    expect(r.ips).toHaveLength(1);
    expect(r.ips![0]!.address).toMatch(/^10\.77\.0\.\d+\/24$/);
    expect(r.ips![0]!.gateway).toBe('10.77.0.1');
    expect(r.routes).toEqual([{ dst: '10.78.0.0/16' }]);
    const ip = r.ips![0]!.address.split('/')[0]!;
    expect(leases()).toEqual([ip]);
    expect(readFileSync(join(dataDir, 'vfnet', ip), 'utf8')).toContain('c0ffee01');

    await execIpam('DEL', hostLocal(), envFor('DEL'), 'host-local', quiet);
    expect(leases()).toEqual([]);
    // DEL is idempotent.
    await execIpam('DEL', hostLocal(), envFor('DEL'), 'host-local', quiet);
  });

  it('takes the config as stdin text as well, and reads a 0.4.0 result', async () => {
    const r = await execIpam('ADD', JSON.stringify(hostLocal('0.4.0')), envFor('ADD', 'c0ffee04'), 'host-local', quiet);
    expect(r.ips![0]!.address).toMatch(/^10\.77\.0\.\d+\/24$/);
    await execIpam('DEL', hostLocal('0.4.0'), envFor('DEL', 'c0ffee04'), 'host-local', quiet);
    expect(leases()).toEqual([]);
  });

  it('propagates the plugin\'s error code and message on a second ADD', async () => {
    await execIpam('ADD', hostLocal(), envFor('ADD', 'c0ffee02'), 'host-local', quiet);
    const e = await cniErr(execIpam('ADD', hostLocal(), envFor('ADD', 'c0ffee02'), 'host-local', quiet));
    // host-local reports this through skel's generic error: code 999.
    expect(e.code).toBe(999);
    expect(e.message).toMatch(/^IPAM host-local: failed to allocate for range 0: 10\.77\.0\.\d+ has been allocated to c0ffee02, duplicate allocation is not allowed$/);
    await execIpam('DEL', hostLocal(), envFor('DEL', 'c0ffee02'), 'host-local', quiet);
    expect(leases()).toEqual([]);
  });

  it('talks to an older IPAM plugin in the newest version both know (Debian\'s stop at 1.0.0)', async () => {
    const r = await execIpam('ADD', hostLocal('1.1.0'), envFor('ADD', 'c0ffee03'), 'host-local', quiet);
    expect(r.ips?.[0]?.address).toMatch(/\/\d+$/);
    await execIpam('DEL', hostLocal('1.1.0'), envFor('DEL', 'c0ffee03'), 'host-local', quiet);
    // GC and STATUS, which it predates, are skipped rather than failed
    await execIpam('STATUS', hostLocal('1.1.0'), envFor('STATUS'), 'host-local', quiet);
  });

  it('static returns the configured address, routes and DNS', async () => {
    const conf = {
      cniVersion: '1.0.0', name: 'vfnet', type: 'vfplane-cni',
      ipam: { type: 'static', addresses: [{ address: '10.1.1.5/24', gateway: '10.1.1.1' }], routes: [{ dst: '0.0.0.0/0' }], dns: { nameservers: ['10.1.1.53'] } },
    };
    const r = await execIpam('ADD', conf, envFor('ADD'), 'static', quiet);
    expect(r).toEqual({ ips: [{ address: '10.1.1.5/24', gateway: '10.1.1.1' }], routes: [{ dst: '0.0.0.0/0' }], dns: { nameservers: ['10.1.1.53'] } });
  });

  it('says clearly when the IPAM plugin is not in CNI_PATH', async () => {
    const e = await cniErr(execIpam('ADD', hostLocal(), envFor('ADD'), 'no-such-ipam', quiet));
    expect(e.code).toBe(7);
    expect(e.message).toBe(`failed to find IPAM plugin "no-such-ipam" in CNI_PATH ${dir}:${REF}`);
    const noPath = parseEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/x', CNI_IFNAME: 'net1' });
    const e2 = await cniErr(execIpam('ADD', hostLocal(), noPath, 'host-local', quiet));
    expect(e2.code).toBe(4);
    expect(e2.message).toContain('CNI_PATH');
  });

  it('refuses an ipam type that is a path', async () => {
    for (const t of ['../host-local', '/usr/lib/cni/host-local', '..', '']) {
      const e = await cniErr(execIpam('ADD', hostLocal(), envFor('ADD'), t, quiet));
      expect(e.code, t).toBe(7);
    }
  });

  it('finds the first executable of that name along CNI_PATH', () => {
    const plain = join(dir, 'host-local');
    writeFileSync(plain, 'not executable');
    try {
      expect(findPlugin('host-local', [dir, REF])).toBe(join(REF, 'host-local'));
    } finally {
      rmSync(plain);
    }
  });

  describe('stand-in plugins', () => {
    const script = (name: string, body: string) => {
      const f = join(dir, name);
      writeFileSync(f, `#!/bin/sh\n${body}\n`);
      chmodSync(f, 0o755);
    };

    it('runs with our environment, CNI_COMMAND replaced, and the whole config on stdin', async () => {
      const seen = join(dir, 'seen');
      script('echo-ipam', `cat > ${seen}.stdin; env > ${seen}.env; echo '{"cniVersion":"1.0.0","ips":[{"address":"192.0.2.9/24"}]}'`);
      const conf = { ...hostLocal(), ipam: { type: 'echo-ipam', extra: 1 } };
      const env = envFor('ADD', 'c0ffee05', { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web-0' });
      for (const cmd of ['CHECK', 'ADD'] as const) {
        const r = await execIpam(cmd as 'ADD', conf, env, 'echo-ipam', quiet);
        const vars = readFileSync(`${seen}.env`, 'utf8');
        expect(vars).toContain(`CNI_COMMAND=${cmd}\n`);
        expect(vars).toContain('CNI_CONTAINERID=c0ffee05\n');
        expect(vars).toContain('CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=web-0\n');
        expect(JSON.parse(readFileSync(`${seen}.stdin`, 'utf8'))).toEqual(conf);
        if (cmd === 'ADD') expect(r).toEqual({ ips: [{ address: '192.0.2.9/24' }] });
        else expect(r).toBeUndefined();
      }
    });

    it('rethrows the plugin\'s error object with its code, prefixed msg and details', async () => {
      script('err-ipam', `echo '{"cniVersion":"1.0.0","code":11,"msg":"pool exhausted","details":"10.0.0.0/30 is full"}'; exit 1`);
      const e = await cniErr(execIpam('ADD', hostLocal(), envFor('ADD'), 'err-ipam', quiet));
      expect([e.code, e.message, e.details]).toEqual([11, 'IPAM err-ipam: pool exhausted', '10.0.0.0/30 is full']);
      // A plugin that names itself in its message (host-local does) is named once.
      script('self-ipam', `echo '{"cniVersion":"1.0.0","code":7,"msg":"self-ipam: Failed to find address"}'; exit 1`);
      expect((await cniErr(execIpam('ADD', hostLocal(), envFor('ADD'), 'self-ipam', quiet))).message).toBe('IPAM self-ipam: Failed to find address');
    });

    it('reports a crash without an error object, with its stderr, and passes stderr on', async () => {
      script('crash-ipam', `echo 'panic: nil map' >&2; exit 2`);
      const chunks: string[] = [];
      const e = await cniErr(execIpam('DEL', hostLocal(), envFor('DEL'), 'crash-ipam', { stderr: (c) => chunks.push(c.toString()) }));
      expect(e.code).toBe(999);
      expect(e.message).toBe('IPAM crash-ipam exited with status 2 during DEL with no error message: panic: nil map');
      expect(chunks.join('')).toBe('panic: nil map\n');
    });

    it('refuses a success that is not a result (code 6)', async () => {
      script('junk-ipam', `echo 'hello'`);
      const e = await cniErr(execIpam('ADD', hostLocal(), envFor('ADD'), 'junk-ipam', quiet));
      expect(e.code).toBe(6);
      expect(e.message).toContain('IPAM junk-ipam');
    });

    // GC and STATUS are 1.1.0's: an older plugin's version error (or its complaint about
    // CNI_CONTAINERID) means "not supported", and is skipped; one that says it speaks
    // 1.1.0 meant the error, which is passed on (spec: a delegate's error is returned).
    it('skips GC/STATUS errors of a plugin that predates them, and passes on those of one that speaks 1.1.0', async () => {
      const body = (versions: string) =>
        `if [ "$CNI_COMMAND" = VERSION ]; then echo '{"cniVersion":"1.0.0","supportedVersions":[${versions}]}'; exit 0; fi\n` +
        `echo '{"cniVersion":"1.1.0","code":4,"msg":"fake failure"}'; exit 1`;
      script('new-ipam', body('"1.0.0","1.1.0"'));
      script('old-ipam', body('"0.4.0","1.0.0"'));
      const conf = (type: string) => ({ ...hostLocal('1.1.0'), ipam: { type } });
      for (const cmd of ['GC', 'STATUS'] as const) {
        const e = await cniErr(execIpam(cmd, conf('new-ipam'), envFor(cmd), 'new-ipam', quiet));
        expect([e.code, e.message], cmd).toEqual([4, 'IPAM new-ipam: fake failure']);
        await expect(execIpam(cmd, conf('old-ipam'), envFor(cmd), 'old-ipam', quiet), cmd).resolves.toBeUndefined();
      }
    });

    it('kills a plugin that hangs (code 11)', async () => {
      script('slow-ipam', `sleep 30`);
      const t0 = Date.now();
      const e = await cniErr(execIpam('ADD', hostLocal(), envFor('ADD'), 'slow-ipam', { ...quiet, timeoutMs: 300 }));
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(e.code).toBe(11);
      expect(e.message).toContain('did not finish ADD');
    });
  });
});

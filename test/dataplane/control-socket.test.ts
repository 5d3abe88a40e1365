// The control socket's edges, against a real daemon on a veth uplink: what its path may
// name, and what a client that misbehaves (pipelines without reading, holds connections
// idle, opens too many) may cost the daemon and the other clients.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDataplane, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { fxcDir, fxcIfname, fxcNetns, fxcVeth, type FxcNetns } from './fxc-netns.js';

describePrivileged('the data plane control socket', { netns: true, commands: ['python3'] }, () => {
  let ns: FxcNetns;
  const up = fxcIfname('u'), peer = fxcIfname('p');
  const tmp = fxcDir('ctl');
  const dir = tmp.dir;

  beforeAll(() => {
    ns = fxcNetns('ctl');
    fxcVeth(ns, up, peer);
  });
  afterAll(() => {
    ns?.destroy();
    tmp.remove();
  });

  const config = (name: string, o: Record<string, unknown> = {}) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify({ node: name, backend: 'afpacket', uplink: { ifname: up, netns: ns.path, vtep: '192.0.2.1' }, stateDir: join(dir, 'state'), ...o }));
    return file;
  };

  describe('its path', () => {
    it('refuses a socket path that names a regular file, naming it and the fix, and leaves the file and the uplink as they were', () => {
      const victim = join(dir, 'alloc.db');
      writeFileSync(victim, 'the allocation store\n');
      for (const args of [['--config', config('file', { socket: victim })], ['--config', config('flag'), '--socket', victim]]) {
        const r = vfplane(['dataplane', 'run', ...args], { timeoutMs: 20_000 });
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toContain(`the control socket path ${victim} is a regular file (21 bytes), which the data plane will not replace`);
        expect(r.stderr).toContain('socket` in the config (or --socket)');
        expect(readFileSync(victim, 'utf8')).toBe('the allocation store\n');
        expect(ns.sysctl(`net.ipv6.conf.${up}.disable_ipv6`)).toBe('0');
      }
    });

    it('replaces a stale socket file (one nothing answers on)', async () => {
      const socket = join(dir, 'stale.sock');
      // A socket bound and never unlinked, as a killed daemon leaves it.
      execFileSync('/usr/bin/python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', socket]);
      expect(statSync(socket).isSocket()).toBe(true);
      const d = await startDataplane(config('stale', { socket }));
      try {
        expect(JSON.parse(vfplane(['dataplane', 'status', '--socket', socket, '--json']).stdout).uplink).toBeTruthy();
      } finally {
        await d.stop();
      }
    });
  });
});

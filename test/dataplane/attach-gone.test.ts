// An attachment whose representor netdev went away: `dataplane status` says who can take
// it off the overlay. A pod's goes with its CNI DEL (or GC); one the operator made by hand
// (`dataplane attach`, no owner) only with `dataplane detach`, which gc never does.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { Netns, ifname, vethIn, scratchDir } from '../helpers/netns.js';

describePrivileged('dataplane status on an attachment whose representor is gone', { root: true }, () => {
  let n: Netns;
  const up = ifname('u'), upp = ifname('v');
  const rep = ifname('r'), pod = ifname('p');
  const d = scratchDir('gone');

  beforeAll(() => {
    n = Netns.create('gone');
    vethIn(n, up, upp);
    // In the data plane's own (the host's) namespace: the state of a representor in
    // another namespace is not followed ('unknown').
    execFileSync('ip', ['link', 'add', rep, 'type', 'veth', 'peer', 'name', pod]);
  });
  afterAll(() => {
    try {
      execFileSync('ip', ['link', 'del', rep], { stdio: 'ignore' });
    } catch {
      // deleted by the test
    }
    n?.destroy();
    d.remove();
  });

  it('names `dataplane detach` for an attachment made by hand, and detaching it clears the warning', async () => {
    const dp = await dataplaneOn(n, up, d.dir);
    try {
      const att = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', rep, '--vni', '100', '--mac', '02:00:00:00:0d:01']);
      expect(att.code, att.stderr).toBe(0);
      execFileSync('ip', ['link', 'del', rep]);
      let st = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      for (let i = 0; i < 40 && !st.stdout.includes('is gone'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        st = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      }
      expect(st.code, st.stderr).toBe(0);
      expect(st.stdout).toContain(`warning: representor ${rep} is gone: it is off the overlay; it was attached by hand (config or \`dataplane attach\`), so \`vfplane dataplane detach --representor ${rep}\` detaches it`);
      expect(st.stdout).not.toContain('CNI DEL');
      const det = vfplane(['dataplane', 'detach', '--socket', dp.socket, '--representor', rep]);
      expect(det.code, det.stderr).toBe(0);
      const after = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      expect(after.stdout).toContain('no attachments');
      expect(after.stdout).not.toContain('is gone');
    } finally {
      await dp.stop();
    }
  });
});

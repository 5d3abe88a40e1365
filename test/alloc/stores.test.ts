// Two allocation stores on one node (the CNI config's stateDir and the CLI's --state-dir
// naming different directories) must not hand one VF to two owners: each store registers
// in the node's registry when it allocates, and allocation skips what another holds.
// Without the registry each store sees every VF as free, and both give out the first.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AllocStore } from '../../src/alloc/store.js';
import { SIM_REGISTRY } from '../../src/alloc/registry.js';
import { listVfs } from '../../src/sriov/discover.js';
import { openSysfs } from '../../src/sriov/sysfs.js';
import type { VfInfo } from '../../src/sriov/types.js';
import { VfpError } from '../../src/util/errors.js';
import { vfplane } from '../helpers/cli.js';
import { dropSim, makeSim } from '../helpers/sim.js';
import { thrown } from '../helpers/thrown.js';
import { describePrivileged } from '../helpers/privileged.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const STORE_JS = pathToFileURL(path.join(ROOT, 'dist/alloc/store.js')).href;

beforeAll(() => {
  const src = path.join(ROOT, 'src/alloc/store.ts');
  const out = path.join(ROOT, 'dist/alloc/store.js');
  if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(src).mtimeMs) {
    throw new Error('dist/alloc/store.js is missing or older than src/alloc/store.ts: run npm run build first');
  }
});

describe('allocation stores of one node', () => {
  let root: string;
  let tmp: string;
  let vfs: VfInfo[];
  const dirA = () => path.join(tmp, 'a');
  const dirB = () => path.join(tmp, 'b');

  beforeEach(async () => {
    root = makeSim({ pfs: 1, vfs: 8, netdevs: false }).root;
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vfplane-stores-'));
    vfs = listVfs(await openSysfs(root));
  });
  afterEach(() => {
    dropSim(root);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('never hand one VF to two owners, and say which store holds it', () => {
    const a = AllocStore.open(dirA(), { sysfsRoot: root });
    const b = AllocStore.open(dirB(), { sysfsRoot: root });
    try {
      const first = a.allocate({ candidates: vfs, owner: { namespace: 'net', name: 'pod-a', containerId: 'ca', ifname: 'net1' } });
      expect(first.pci).toBe(vfs[0]!.pci);
      expect(b.allocate({ candidates: vfs, owner: { containerId: 'cb', ifname: 'net1' } }).pci).toBe(vfs[1]!.pci);
      // By address: refused, naming the holder, the other store and the fix.
      const e = thrown(VfpError, () => b.allocatePci({ vf: vfs[0]!, owner: { containerId: 'cc', ifname: 'net1' } }));
      expect(e.kind).toBe('conflict');
      expect(e.message).toContain(`another allocation store of this node, ${dirA()}`);
      expect(e.message).toContain('net/pod-a');
      expect(e.message).toContain(`--state-dir ${dirA()}`);
      expect(b.get(vfs[0]!.pci)).toBeUndefined();
      // Exhausted: the message counts what the other store holds.
      for (let i = 2; i < vfs.length; i++) a.allocate({ candidates: vfs, owner: { containerId: `a${i}`, ifname: 'net1' } });
      const x = thrown(VfpError, () => b.allocate({ candidates: vfs, owner: { containerId: 'cd', ifname: 'net1' } }));
      expect(x.kind).toBe('unavailable');
      expect(x.message).toMatch(new RegExp(`7 of them in another allocation store of this node \\(${dirA()}\\)`));
      expect(b.heldElsewhere(vfs[0]!.pci)).toMatchObject({ dir: dirA(), owner: { name: 'pod-a' } });
      expect(a.heldElsewhere(vfs[0]!.pci)).toBeUndefined();
      // Released there, it is free here.
      a.release(vfs[0]!.pci, { id: first.id });
      expect(b.allocatePci({ vf: vfs[0]!, owner: { containerId: 'cc', ifname: 'net1' } }).pci).toBe(vfs[0]!.pci);
    } finally {
      a.close();
      b.close();
    }
    // The registry lives in the simulated node's tree; a store whose directory is gone
    // leaves it at the next allocation.
    const reg = path.join(root, SIM_REGISTRY);
    expect(fs.readdirSync(reg).filter((n) => n.endsWith('.store'))).toHaveLength(2);
    fs.rmSync(dirA(), { recursive: true });
    const c = AllocStore.open(path.join(tmp, 'c'), { sysfsRoot: root });
    try {
      expect(c.allocate({ candidates: vfs, owner: { containerId: 'ce', ifname: 'net1' } }).pci).toBe(vfs[2]!.pci); // vfs[0] and vfs[1] are B's
    } finally {
      c.close();
    }
    expect(fs.readdirSync(reg).filter((n) => n.endsWith('.store')).map((n) => fs.readFileSync(path.join(reg, n), 'utf8').trim()).sort())
      .toEqual([dirB(), path.join(tmp, 'c')].sort());
  });

  it('processes allocating at once through two stores get distinct VFs', async () => {
    for (const d of [dirA(), dirB()]) AllocStore.open(d, { sysfsRoot: root }).close();
    const go = path.join(tmp, 'go');
    const kids = Array.from({ length: 8 }, (_, i) => {
      const code = `
        import * as fs from 'node:fs';
        import { AllocStore } from ${JSON.stringify(STORE_JS)};
        const s = AllocStore.open(${JSON.stringify(i % 2 ? dirB() : dirA())}, { sysfsRoot: ${JSON.stringify(root)} });
        while (!fs.existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 2));
        const a = s.allocate({ candidates: ${JSON.stringify(vfs)}, owner: { containerId: 'k${i}', ifname: 'net1' } });
        process.stdout.write(a.pci);
        s.close();`;
      const p = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      return once(p, 'exit').then(([c]) => ({ code: c as number, out, err }));
    });
    await new Promise((r) => setTimeout(r, 700)); // every child waiting at the barrier
    fs.writeFileSync(go, '');
    const res = await Promise.all(kids);
    for (const r of res) expect(r.code, r.err).toBe(0);
    const got = res.map((r) => r.out);
    expect(new Set(got).size).toBe(8);
  });

  it('vf list and vf show count another store\'s VFs as held, also from a state directory with no store yet', () => {
    const a = AllocStore.open(dirA(), { sysfsRoot: root });
    try {
      a.allocate({ candidates: vfs, owner: { namespace: 'net', name: 'pod-a', containerId: 'ca', ifname: 'net1' } });
    } finally {
      a.close();
    }
    const list = (dir: string, ...flags: string[]) => {
      const r = vfplane(['vf', 'list', ...flags, '--sysfs-root', root, '--state-dir', dir, '--json']);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { pci: string; allocation: unknown; heldElsewhere?: { dir: string } }[];
    };
    for (const dir of [dirB(), path.join(tmp, 'none-yet')]) {
      expect(list(dir).filter((v) => !v.allocation && !v.heldElsewhere).map((v) => v.pci)).toEqual(vfs.slice(1).map((v) => v.pci));
      expect(list(dir, '--free')).toEqual([]); // a tree without netdevs has no VF to give (vf alloc refuses each)
      expect(list(dir, '--allocated')).toEqual([expect.objectContaining({ pci: vfs[0]!.pci, allocation: null, heldElsewhere: expect.objectContaining({ dir: dirA() }) })]);
    }
    // vf show says the same of that VF, also from a state directory with no store yet.
    for (const dir of [dirB(), path.join(tmp, 'none-yet')]) {
      const r = vfplane(['vf', 'show', vfs[0]!.pci, '--sysfs-root', root, '--state-dir', dir, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout), dir).toMatchObject({ allocation: null, heldElsewhere: { dir: dirA(), owner: { name: 'pod-a' } } });
    }
    expect(vfplane(['vf', 'show', vfs[0]!.pci, '--sysfs-root', root, '--state-dir', path.join(tmp, 'none-yet')]).stdout)
      .toContain(`in another allocation store of this node: ${dirA()}`);
    expect(fs.existsSync(path.join(tmp, 'none-yet'))).toBe(false); // a listing makes no store
    // Taking it by address from there is refused, naming the store that holds it, and
    // makes no store (nor enters one in the node's registry).
    const take = vfplane(['vf', 'alloc', '--pci', vfs[0]!.pci, '--owner', 'net/pod-x', '--sysfs-root', root, '--state-dir', path.join(tmp, 'none-yet')]);
    expect(take.code).toBe(1);
    expect(take.stderr).toContain(`is allocated to pod net/pod-a (container ca, net1) since`);
    expect(take.stderr).toContain(`in another allocation store of this node, ${dirA()}`);
    expect(fs.existsSync(path.join(tmp, 'none-yet'))).toBe(false);
    expect(fs.readdirSync(path.join(root, SIM_REGISTRY)).filter((n) => n.endsWith('.store'))).toHaveLength(1);
    const human = vfplane(['vf', 'list', '--sysfs-root', root, '--state-dir', dirB()]);
    expect(human.stdout).toContain(`pod net/pod-a (container ca, net1) (store ${dirA()})`);
    // A release from the other store names the store that holds it (it said "not
    // allocated", while vf list showed it), and changes nothing.
    for (const flags of [['--force'], ['--owner', 'net/pod-a']]) {
      const rel = vfplane(['vf', 'release', vfs[0]!.pci, ...flags, '--sysfs-root', root, '--state-dir', dirB()]);
      expect(rel.code).toBe(1);
      expect(rel.stderr).toContain(`another allocation store of this node holds it (pod net/pod-a (container ca, net1), in ${dirA()}); release it there: vfplane vf release ${vfs[0]!.pci} --state-dir ${dirA()}`);
    }
    expect(list(dirB(), '--allocated')).toEqual([expect.objectContaining({ pci: vfs[0]!.pci, heldElsewhere: expect.objectContaining({ dir: dirA() }) })]);
  });

  it('a VF another store took across a reboot is released without being put back (vfplane gc)', async () => {
    const g = (dir: string) => ['--sysfs-root', root, '--state-dir', dir, '--json'];
    const cli = (args: string[], dir: string) => {
      const r = vfplane([...args, ...g(dir)]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return JSON.parse(r.stdout);
    };
    const pci = vfs[0]!.pci;
    // Before the reboot: A's pod (its namespace now gone) held the VF.
    const pod = spawn('sleep', ['60']);
    // (A tree-only simulator's VFs have no netdev in this namespace: only a VF for
    // userspace can be handed over.)
    cli(['vf', 'bind', pci, '--driver', 'vfio-pci'], dirA());
    cli(['vf', 'alloc', '--pci', pci, '--owner', 'net/old', '--pid', String(pod.pid)], dirA());
    pod.kill('SIGKILL');
    await once(pod, 'exit');
    // The reboot clears the registry (it lives under /run on a real node); B, first to
    // allocate after it, takes the VF for a new pod and sets its MAC.
    fs.rmSync(path.join(root, SIM_REGISTRY), { recursive: true });
    cli(['vf', 'alloc', '--pci', pci, '--owner', 'net/new'], dirB());
    cli(['vf', 'config', pci, '--mac', '02:00:00:00:0b:01', '--force'], dirB());
    // A's gc releases its stale allocation and leaves the VF as its new holder has it.
    const out = cli(['gc'], dirA());
    // As data (the table says "not put back: pod net/new holds it now, in the store ..."):
    expect(out).toEqual([expect.objectContaining({ pci, state: 'gone', released: true, putBack: [{ step: 'held-elsewhere', owner: expect.objectContaining({ name: 'new' }), store: dirB() }] })]);
    expect(cli(['vf', 'show', pci], dirB())).toMatchObject({ allocation: { owner: { name: 'new' } }, settings: { mac: '02:00:00:00:0b:01' } });
    expect(cli(['vf', 'list', '--allocated'], dirA())).toEqual([expect.objectContaining({ pci, allocation: null, heldElsewhere: expect.objectContaining({ dir: dirB() }) })]);
    // Seen from A, the VF is B's, not free.
    expect(cli(['vf', 'show', pci], dirA())).toMatchObject({ allocation: null, heldElsewhere: { dir: dirB(), owner: { name: 'new' } } });
    const human = vfplane(['vf', 'show', pci, '--sysfs-root', root, '--state-dir', dirA()]);
    expect(human.stdout).toContain(`in another allocation store of this node: ${dirB()}`);
  });
});

// Another store's filesystem full: reading a store nobody has open makes its WAL index,
// which needs room. Refused then, saying so (it read "disk I/O error; repair it, or remove
// it from the registry", a store that is neither damaged nor unused); read as it is while
// someone has it open (a read-only connection, its index there).
describePrivileged('a store of the node on a full filesystem', { root: true }, () => {
  it('is read while someone has it open, and otherwise refused naming the full filesystem', async () => {
    const root = makeSim({ pfs: 1, vfs: 4, netdevs: false }).root;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vfplane-fullstore-'));
    const small = path.join(tmp, 'small');
    fs.mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=400k', 'tmpfs', small]);
    let holder: ReturnType<typeof spawn> | undefined;
    try {
      const vfs = listVfs(await openSysfs(root));
      const b = AllocStore.open(small, { sysfsRoot: root });
      try {
        const got = b.allocate({ candidates: vfs, owner: { containerId: 'cb', ifname: 'net1' } }); // registered in the node's registry
        b.release(got.pci, { id: got.id });
      } finally {
        b.close();
      }
      const fill = () => execFileSync('sh', ['-c', `dd if=/dev/zero of=${small}/filler bs=4k 2>/dev/null || true`]);
      fill();
      const a = AllocStore.open(path.join(tmp, 'a'), { sysfsRoot: root });
      try {
        const e = thrown(VfpError, () => a.allocate({ candidates: vfs, owner: { containerId: 'ca', ifname: 'net1' } }));
        expect(e.message).toMatch(new RegExp(`cannot read the allocation store ${small}/alloc\\.db, .*: the filesystem holding ${small} is full \\(\\d+ KiB free\\)`));
        expect(e.message).not.toContain('repair it');
        // Its owner has it open (made its index before the filesystem filled).
        fs.rmSync(path.join(small, 'filler'));
        holder = spawn(process.execPath, ['-e', `const s = new (require('better-sqlite3'))(${JSON.stringify(path.join(small, 'alloc.db'))}); s.prepare('SELECT 1 FROM allocations').all(); console.log('open'); setInterval(() => {}, 1000);`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
        await once(holder.stdout!, 'data');
        fill();
        expect(a.allocate({ candidates: vfs, owner: { containerId: 'ca', ifname: 'net1' } }).pci).toBe(vfs[0]!.pci);
      } finally {
        a.close();
      }
    } finally {
      holder?.kill();
      if (holder) await once(holder, 'exit');
      execFileSync('umount', ['-l', small]); // lazily: a failure above may leave a handle open
      dropSim(root);
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

// A store that can be read but not written (its filesystem filled while someone holds it
// open): `vf release` puts the VF back and then cannot record the release. It said
// "putting it back failed" (helper-81), sending the operator after a put-back that worked.
describePrivileged('a release the store cannot record', { root: true }, () => {
  it('says the VF was put back and its release not recorded; it stays allocated, and a release once there is room frees it', async () => {
    const root = makeSim({ pfs: 1, vfs: 2 }).root;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vfplane-norecord-'));
    const small = path.join(tmp, 'small');
    fs.mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=400k', 'tmpfs', small]);
    let holder: ReturnType<typeof spawn> | undefined;
    const o = ['--sysfs-root', root, '--state-dir', small];
    try {
      const pci = listVfs(await openSysfs(root))[0]!.pci;
      const made = vfplane(['vf', 'alloc', '--pci', pci, '--owner', 'ops/keep', ...o]);
      expect(made.code, made.stderr).toBe(0);
      holder = spawn(process.execPath, ['-e', `const s = new (require('better-sqlite3'))(${JSON.stringify(path.join(small, 'alloc.db'))}); s.prepare('SELECT 1 FROM allocations').all(); console.log('open'); setInterval(() => {}, 1000);`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      await once(holder.stdout!, 'data');
      execFileSync('sh', ['-c', `dd if=/dev/zero of=${small}/filler bs=4k 2>/dev/null || true`]);
      const rel = vfplane(['vf', 'release', pci, '--owner', 'ops/keep', ...o]);
      expect(rel.code).toBe(1);
      expect(rel.stderr).toContain(`VF ${pci} (pod ops/keep) stays allocated: it was put back, but its release could not be recorded (`);
      expect(rel.stderr).not.toContain('putting it back failed');
      const js = vfplane(['vf', 'release', pci, '--owner', 'ops/keep', ...o, '--json']);
      expect(js.code).toBe(1);
      expect(JSON.stringify(JSON.parse(js.stdout))).toContain('"failure":"not-recorded"');
      expect(JSON.parse(vfplane(['vf', 'show', pci, ...o, '--json']).stdout).allocation?.owner).toMatchObject({ namespace: 'ops', name: 'keep' });
      fs.rmSync(path.join(small, 'filler'));
      expect(vfplane(['vf', 'release', pci, '--owner', 'ops/keep', ...o]).code).toBe(0);
      expect(JSON.parse(vfplane(['vf', 'show', pci, ...o, '--json']).stdout).allocation).toBeNull();
    } finally {
      holder?.kill();
      if (holder) await once(holder, 'exit');
      execFileSync('umount', ['-l', small]);
      dropSim(root);
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

// `vfplane profile list|show` as a user runs it: a child process, exit codes, stdout and stderr.
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, vfplane } from '../helpers/cli.js';

let dir: string;
const x710 = () => JSON.parse(readFileSync(join(ROOT, 'hw-profiles', 'x710.json'), 'utf8'));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vfplane-cli-profiles-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function brokenDir(name: string, content: string, file = 'x710.json'): string {
  const d = mkdtempSync(join(dir, `${name}-`));
  writeFileSync(join(d, file), content);
  return d;
}

describe('vfplane profile list', () => {
  it('prints a table of every shipped profile', () => {
    const r = vfplane(['profile', 'list']);
    expect(r.code, r.stderr).toBe(0);
    for (const h of ['name', 'NIC', 'drivers', 'VFs/PF', 'queues/VF', 'line rate', 'tier', 'AF_XDP ZC', 'PFs here']) expect(r.stdout).toContain(h);
    expect(r.stdout).toMatch(/│ x710 +│.*│ PF i40e +│ 64 +│ 4, ≤ 16 +│ 1G–40G +│ 2 +│ PF yes +│/);
    expect(r.stdout).toMatch(/│ +│.*│ VF iavf +│ +│.*│ VF no +│/);
    expect(r.stdout).toMatch(/│ cx6dx +│.*│ PF mlx5_core +│ 127 +│/);
    // It fits a terminal: no line wider than 120 columns (`profile show` has the rest).
    for (const l of r.stdout.split('\n')) expect([...l].length, l).toBeLessThanOrEqual(120);
    expect(r.stderr).toBe('');
  });

  it('prints only JSON with --json', () => {
    const r = vfplane(['profile', 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const ps = JSON.parse(r.stdout);
    expect(ps.map((p: { name: string }) => p.name)).toEqual(['cx5', 'cx6dx', 'e810', 'sim', 'virtio', 'x710']);
    expect(ps.find((p: { name: string }) => p.name === 'e810')).toMatchObject({ vf: { ids: ['8086:1889'], driver: 'iavf' }, tier: 2 });
  });
});

describe('vfplane profile show', () => {
  it('prints every fact with its source', () => {
    const r = vfplane(['profile', 'show', 'x710']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^x710: Intel Ethernet 700 Series/);
    expect(r.stdout).toMatch(/^vf\.ids +8086:154c 8086:1889$/m);
    expect(r.stdout).toMatch(/^ +source: https:\/\/github\.com\/torvalds\/linux\/blob\/master\/drivers\/net\/ethernet\/intel\/iavf\/iavf_devids\.h/m);
    expect(r.stdout).toMatch(/^offloads\.rteFlowEncapDecap +no$/m);
    expect(r.stdout).toMatch(/^tier +2$/m);
    expect(r.stdout).toMatch(/^vfSettings\.minTxRate +no$/m);
    expect(r.stdout).toMatch(/^pf\.afxdpZeroCopy +yes$/m);
    expect(r.stdout).toMatch(/^vf\.afxdpZeroCopy +no$/m);
    expect(r.stdout).toMatch(/^offloads\.outerIpv4Csum +yes$/m);
    expect(r.stdout).toMatch(/^offloads\.outerUdpCsum +no$/m);
    expect(r.stdout.match(/^ +source: /gm)?.length).toBe(29);
    expect(r.stdout).toMatch(/^limits\.maxPortsPerDevice +4$/m);
  });

  it('prints the profile as JSON with --json', () => {
    const r = vfplane(['profile', 'show', 'cx6dx', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'cx6dx', pf: { ids: ['15b3:101d'] }, vf: { ids: ['15b3:101e'] }, sources: { 'vf.ids': expect.any(String) } });
  });

  it('an unknown name exits 1 and lists the known ones', () => {
    const r = vfplane(['profile', 'show', 'x999']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/vfplane: no hw-profile named "x999"; known profiles: cx5, cx6dx, e810, sim, virtio, x710/);
  });

  it('a missing name, or one that is no profile name (a path), is a usage error', () => {
    expect(vfplane(['profile', 'show']).code).toBe(2);
    for (const name of ['../x710', '/etc/passwd', 'X710']) {
      const r = vfplane(['profile', 'show', name]);
      expect([r.code, r.stderr], name).toEqual([2, expect.stringContaining(`${JSON.stringify(name)} is not a hw-profile name`)]);
    }
  });
});

describe('own profiles (VFPLANE_PROFILES_DIR)', () => {
  it('profile show prints one that leaves vfSettings out (it crashed reading vfSettings.minTxRate)', () => {
    const p = x710();
    delete p.vfSettings;
    for (const k of Object.keys(p.sources)) if (k.startsWith('vfSettings.')) delete p.sources[k];
    const d = brokenDir('novfs', JSON.stringify(p));
    const r = vfplane(['profile', 'show', 'x710'], { env: { VFPLANE_PROFILES_DIR: d } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/vfSettings\.minTxRate +– \(vfSettings left out: the kernel decides\)/);
    expect(r.stdout).toContain('limits.maxVfsPerPf');
    // an optional fact no source states for the family
    expect(vfplane(['profile', 'show', 'virtio']).stdout).toMatch(/^limits\.maxPortsPerDevice +– \(no source states it for this family\)$/m);
  });

  it('names a broken file by its absolute path when run from / (as a runtime runs the plugin), not as "tmp/…"', () => {
    const d = brokenDir('fromroot', '{');
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/vfplane.js'), 'profile', 'list'], { cwd: '/', env: { ...process.env, VFPLANE_PROFILES_DIR: d }, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`\n  ${join(d, 'x710.json')}: invalid JSON`);
  });

  it('a PF ID an own profile shares with a shipped one is named in the own file, whatever the names\' order', () => {
    for (const name of ['aaa', 'zzz']) {
      const p = x710();
      p.name = name;
      const d = brokenDir(`clash-${name}`, JSON.stringify(p), `${name}.json`);
      const r = vfplane(['profile', 'list'], { env: { VFPLANE_PROFILES_DIR: d } });
      expect(r.code, name).toBe(1);
      expect(r.stderr).toContain(`${join(d, `${name}.json`)}: pf.ids: "8086:1572" is also a PF ID of x710`);
      expect(r.stderr).toContain('point VFPLANE_PROFILES_DIR');
    }
  });

  it('a file nested thousands deep or far too large is named, not a stack overflow or a 200 MB read; doctor still reports the rest', () => {
    const deep = brokenDir('deep', '['.repeat(200_000), 'deep.json');
    const deepValid = brokenDir('deepv', `{"name": ${'['.repeat(20_000)}${']'.repeat(20_000)}}`, 'deepv.json');
    const big = brokenDir('big', `{"name": "big", "description": "${'x'.repeat(2 << 20)}"}`, 'big.json');
    for (const [d, f, msg] of [[deep, 'deep.json', 'nested too deeply'], [deepValid, 'deepv.json', 'nested too deeply'], [big, 'big.json', 'a hw-profile is a few KiB']] as const) {
      const r = vfplane(['profile', 'list'], { env: { VFPLANE_PROFILES_DIR: d } });
      expect([r.code, r.stderr], f).toEqual([1, expect.stringContaining(`${join(d, f)}: `)]);
      expect(r.stderr).toContain(msg);
      expect(r.stderr).not.toMatch(/call stack/);
    }
    const doc = vfplane(['doctor', '--json', '--sysfs-root', mkdtempSync(join(dir, 'sys-'))], { env: { VFPLANE_PROFILES_DIR: deep } });
    expect(doc.code).toBe(1); // the profile directory given is unusable, as a bad sysfs root
    const { checks } = JSON.parse(doc.stdout) as { checks: { name: string; status: string; detail: string }[] };
    expect(checks.find((c) => c.name === 'hw-profiles')).toMatchObject({ status: 'missing', detail: expect.stringContaining('nested too deeply') });
    expect(checks.length).toBeGreaterThan(5); // the build and host checks are there too
  });
});

describe('broken profiles through --profiles-dir', () => {
  // A broken file is bad input, not a bad command line: exit 1, as for an unknown name
  // (README: 2 is for usage errors alone).
  it('a wrong type exits 1 naming file and field on stderr', () => {
    const p = x710();
    p.limits.maxVfsPerPf = '64';
    const d = brokenDir('type', JSON.stringify(p));
    const r = vfplane(['profile', 'list', '--profiles-dir', d]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^vfplane: a hw-profile is invalid \(fix the file, or point --profiles-dir elsewhere\)/);
    expect(r.stderr).toContain(`${join(d, 'x710.json')}: limits.maxVfsPerPf: expected a positive integer, got "64"`);
  });

  it('with --json the error is a JSON object on stdout', () => {
    const p = x710();
    delete p.sources['dpdk.pmd'];
    p.extra = 1;
    const d = brokenDir('json', JSON.stringify(p));
    const r = vfplane(['profile', 'show', 'x710', '--profiles-dir', d, '--json']);
    expect(r.code).toBe(1);
    const { error } = JSON.parse(r.stdout);
    expect(error).toMatchObject({ exitCode: 1, kind: 'bad-file' });
    expect(error.message).toMatch(/x710\.json: extra: unknown field/);
    expect(error.details.issues).toEqual([{ file: join(d, 'x710.json'), path: 'extra', message: 'unknown field' }]);
    expect(r.stderr).toMatch(/^vfplane: a hw-profile is invalid/);
  });

  it('a missing source, a name that is not the file stem and invalid JSON each exit 1', () => {
    const p = x710();
    delete p.sources['vf.ids'];
    let r = vfplane(['profile', 'list', '--profiles-dir', brokenDir('src', JSON.stringify(p))]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/x710\.json: sources: missing a source for "vf\.ids"/);

    r = vfplane(['profile', 'list', '--profiles-dir', brokenDir('stem', JSON.stringify(x710()), 'intel.json')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/intel\.json: name: expected "intel" \(the file stem\), got "x710"/);

    r = vfplane(['profile', 'list', '--profiles-dir', brokenDir('syntax', '{"name": "x710",\n "tier": }')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/x710\.json: invalid JSON at line 2 column 10/);
  });

  it('a profile whose name ends in .JSON is named, not skipped unsaid (alone, or beside good ones)', () => {
    const alone = brokenDir('upper', JSON.stringify(x710()), 'x710.JSON');
    const beside = brokenDir('upper2', JSON.stringify(x710()), 'x710.Json');
    writeFileSync(join(beside, 'sim.json'), readFileSync(join(ROOT, 'hw-profiles', 'sim.json')));
    for (const [d, n] of [[alone, 'x710.JSON'], [beside, 'x710.Json']] as const) {
      const r = vfplane(['profile', 'list', '--profiles-dir', d]);
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 1, stdout: '' });
      expect(r.stderr).toContain(`${join(d, n)}: is not read: hw-profiles end in .json, in lower case; rename it to x710.json`);
    }
  });

  it('a broken profile in VFPLANE_PROFILES_DIR stops pf list and profile list with exit 1, naming the file and the variable', () => {
    const p = x710();
    p.name = 'mine';
    p.tier = 7;
    const d = brokenDir('env', JSON.stringify(p), 'mine.json');
    const sys = mkdtempSync(join(dir, 'sys-')); // no NICs: the profiles are read all the same
    const fix = `fix the file, or point VFPLANE_PROFILES_DIR (${d}) elsewhere or unset it`;
    for (const args of [['pf', 'list', '--sysfs-root', sys], ['profile', 'list']]) {
      const r = vfplane(args, { env: { VFPLANE_PROFILES_DIR: d } });
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 1, stdout: '' });
      expect(r.stderr).toContain(`vfplane: a hw-profile is invalid (${fix}):`);
      expect(r.stderr).toContain(`${join(d, 'mine.json')}: tier: expected tier 1, 2 or 3, got 7`);
      const j = vfplane([...args, '--json'], { env: { VFPLANE_PROFILES_DIR: d } });
      expect(j.code).toBe(1);
      expect(JSON.parse(j.stdout).error).toMatchObject({ exitCode: 1, kind: 'bad-file', details: { issues: [{ file: join(d, 'mine.json'), path: 'tier' }] } });
    }
  });

  it('--profiles-dir with --sysfs-root matches the PFs against that directory\'s profiles', () => {
    const root = join(dir, 'own-sys');
    const made = vfplane(['sim', 'create', '--profile', 'x710', '--pfs', '2', '--vfs', '0', '--no-netdevs', '--root', root]);
    expect(made.code, made.stderr).toBe(0);
    const p = x710();
    p.name = 'mine';
    const d = brokenDir('own', JSON.stringify(p), 'mine.json');
    const list = vfplane(['profile', 'list', '--profiles-dir', d, '--sysfs-root', root, '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).map((x: { name: string; pfsHere: string[] }) => [x.name, x.pfsHere.length])).toEqual([['mine', 2]]);
    const show = vfplane(['profile', 'show', 'mine', '--profiles-dir', d, '--sysfs-root', root, '--json']);
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout).pfsHere).toHaveLength(2);
    const human = vfplane(['profile', 'list', '--profiles-dir', d, '--sysfs-root', root]);
    expect(human.stdout).toMatch(/│ mine +│.*│ 2 +│$/m);
  });

  it('sim create refuses more PFs than a card of the family has, naming the limit and its source, and makes nothing', () => {
    for (const [profile, pfs, max, src] of [['cx6dx', 4, 2, /MCX623106AN-CDAT \(2x100G\)/], ['cx5', 3, 2, /cx5vpisd/], ['x710', 5, 4, /X710-DA4 \(4x10G\)/]] as const) {
      const root = join(dir, `ports-${profile}`);
      const r = vfplane(['sim', 'create', '--profile', profile, '--pfs', String(pfs), '--vfs', '0', '--no-netdevs', '--root', root]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`--pfs ${pfs} is more than profile ${profile} allows: a card of the family has at most ${max} ports (PFs) per device, per `);
      expect(r.stderr).toMatch(src);
      expect(r.stderr).toContain(`give --pfs 1–${max}, or another --profile`);
      expect(existsSync(root)).toBe(false);
    }
    // up to the limit is fine; a profile that states none (virtio) keeps the simulator's 1–8
    for (const [profile, pfs] of [['cx6dx', 2], ['e810', 8], ['virtio', 8]] as const) {
      const root = join(dir, `ports-ok-${profile}`);
      const r = vfplane(['sim', 'create', '--profile', profile, '--pfs', String(pfs), '--vfs', '0', '--no-netdevs', '--root', root]);
      expect(r.code, r.stderr).toBe(0);
      expect(vfplane(['sim', 'destroy', '--root', root]).code).toBe(0);
    }
  });

  it('a directory without profiles exits 1', () => {
    const r = vfplane(['profile', 'list', '--profiles-dir', join(dir, 'does-not-exist')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot read the hw-profiles directory .*ENOENT/);
  });
});

// The build validates the shipped files (dist/sriov/hw-profiles.validated.json), and a
// command takes a file whose text is one of them as validated: the same profiles as
// validation gives, and nothing let through that validation would refuse.
describe('the shipped profiles as the build validated them', () => {
  it('are what validating them now gives', async () => {
    const { loadProfiles, clearProfileCache } = await import('../../src/sriov/profile.js');
    clearProfileCache();
    const now = loadProfiles().map(({ file: _, ...p }) => p); // validated here: vitest runs src/, which has no build's file
    const r = vfplane(['profile', 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const listed = (JSON.parse(r.stdout) as Record<string, unknown>[]).map(({ file: _, pfsHere: __, ...p }) => p);
    expect(listed).toEqual(now);
    const built = JSON.parse(readFileSync(join(ROOT, 'dist', 'sriov', 'hw-profiles.validated.json'), 'utf8')) as { profiles: { text: string }[] };
    expect(built.profiles.map((b) => JSON.parse(b.text).name).sort()).toEqual(now.map((p) => p.name).sort());
  });

  it('are used only with the profile.js they were made with: after a tsc alone, every file is validated again', () => {
    // A copy of the package's dist/ and hw-profiles/, whose list says x710 is tier 1 (a
    // list made by another schema): taken while the stamp is profile.js's, not after.
    const root = mkdtempSync(join(dir, 'stamp-'));
    cpSync(join(ROOT, 'dist'), join(root, 'dist'), { recursive: true });
    cpSync(join(ROOT, 'hw-profiles'), join(root, 'hw-profiles'), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(root, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    const list = join(root, 'dist', 'sriov', 'hw-profiles.validated.json');
    const built = JSON.parse(readFileSync(list, 'utf8')) as { profiles: { text: string; profile: { name: string; tier: number } }[] };
    for (const p of built.profiles) if (p.profile.name === 'x710') p.profile.tier = 1;
    writeFileSync(list, JSON.stringify(built));
    const tier = () => {
      const r = spawnSync(process.execPath, [join(root, 'bin', 'vfplane.js'), 'profile', 'show', 'x710', '--json'], { encoding: 'utf8', env: { ...process.env, VFPLANE_PROFILES_DIR: '' } });
      expect(r.status, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { tier: number }).tier;
    };
    cpSync(join(ROOT, 'bin'), join(root, 'bin'), { recursive: true });
    expect(tier()).toBe(1); // the list, as the build left it
    appendFileSync(join(root, 'dist', 'sriov', 'profile.js'), '\n// emitted anew\n'); // as a tsc alone after a change
    expect(tier()).toBe(2); // validated from the file
  });

  it('a shipped file copied as it is under another name is still refused for its stem; one edited is validated', () => {
    const text = readFileSync(join(ROOT, 'hw-profiles', 'x710.json'), 'utf8');
    let r = vfplane(['profile', 'list', '--profiles-dir', brokenDir('copy', text, 'intel.json')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/intel\.json: name: expected "intel" \(the file stem\), got "x710"/);
    r = vfplane(['profile', 'list', '--profiles-dir', brokenDir('edited', text.replace('"maxVfsPerPf": 64', '"maxVfsPerPf": "64"'))]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('x710.json: limits.maxVfsPerPf: expected a positive integer, got "64"');
  });
});

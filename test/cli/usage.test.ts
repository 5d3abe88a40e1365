// Usage errors of the operator CLI, as a user meets them: a child process run in a
// scratch working directory, exit 2, a message naming the flag (as JSON too with
// --json), and nothing made or changed. No root needed: the input is refused first.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, ROOT } from '../helpers/cli.js';

const cwd = mkdtempSync(join(tmpdir(), 'vfplane-usage-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs ARGS plain and with --json: exit 2 both times, MSG in stderr and in the JSON error. */
function refused(args: string[], msg: RegExp): void {
  const r = run(args);
  expect({ args, code: r.code, stderr: r.stderr }).toMatchObject({ args, code: 2, stderr: expect.stringMatching(msg) });
  const j = run([...args, '--json']);
  expect({ args, code: j.code }).toEqual({ args, code: 2 });
  const out = JSON.parse(j.stdout);
  expect(out.error.exitCode).toBe(2);
  expect(out.error.message).toMatch(msg);
}

describe('empty path values', () => {
  const cases: [string[], string][] = [
    [['vf', 'alloc', '--pci', '0000:5e:02.0', '--owner', 'a/b', '--state-dir', ''], '--state-dir'],
    [['vf', 'list', '--sysfs-root', ''], '--sysfs-root'],
    [['vf', 'alloc', '--pool', 'p', '--owner', 'a/b', '--pools', ''], '--pools'],
    [['gc', '--state-dir', ''], '--state-dir'],
    [['pf', 'list', '--sysfs-root', ' '], '--sysfs-root'],
    [['cni', 'install', '--dir', ''], '--dir'],
    [['cni', 'install', '--dir', 'bin', '--socket', ''], '--socket'],
    [['dataplane', 'status', '--socket', ''], '--socket'],
    [['dataplane', 'unclaim', '--state-dir', ''], '--state-dir'],
    [['dataplane', 'run', '--config', ''], '--config'],
    [['sim', 'show', '--root', ''], '--root'],
    [['sim', 'destroy', '--sysfs-root', ''], '--sysfs-root'],
    [['profile', 'list', '--profiles-dir', ''], '--profiles-dir'],
    [['doctor', '--socket', ''], '--socket'],
    [['pcap', 'decap', '--in', '', '--out', 'x.pcap'], '--in'],
    [['pcap', 'encap', '--in', 'x.pcap', '--out', '', '--vni', '1', '--local', '10.0.0.1', '--remote', '10.0.0.2'], '--out'],
  ];
  for (const [args, flag] of cases) {
    it(`vfplane ${args.join(' ')}: ${flag} is a usage error that names the flag`, () => {
      refused(args, new RegExp(`${flag} "\\s*" is empty: give a file or directory path`));
      expect(readdirSync(cwd)).toEqual([]);
    });
  }
});

describe('empty path variables', () => {
  // An environment variable set to "" is unset (as ${VAR:-default} reads it), not the
  // current directory: a script's empty $STATE must not point the CLI at its cwd.
  it('VFPLANE_STATE_DIR="" and VFPLANE_DATAPLANE_SOCKET="" mean the defaults', () => {
    const env = { ...process.env, VFPLANE_STATE_DIR: '', VFPLANE_DATAPLANE_SOCKET: '' };
    const st = spawnSync(process.execPath, [BIN, 'dataplane', 'status'], { cwd, env, encoding: 'utf8', timeout: 60_000 });
    expect(st.stderr).toContain('/var/lib/vfplane/dataplane.sock');
    const un = spawnSync(process.execPath, [BIN, 'dataplane', 'unclaim', '--node', 'nosuchnode'], { cwd, env, encoding: 'utf8', timeout: 60_000 });
    expect(un.stdout + un.stderr).toContain('in /var/lib/vfplane');
    expect(readdirSync(cwd)).toEqual([]);
  });
});

describe('empty filter lists', () => {
  // An empty list would be no filter at all: every VNI, every address accepted.
  const cases: [string[], RegExp][] = [
    [['pcap', 'decap', '--in', 'in.pcap', '--out', 'out.pcap', '--vni', ','], /--vni "," is empty: expected one or more VNIs/],
    [['pcap', 'decap', '--in', 'in.pcap', '--out', 'out.pcap', '--vni', ''], /--vni "" is empty/],
    [['pcap', 'decap', '--in', 'in.pcap', '--out', 'out.pcap', '--vni', '100', '--vni', ', '], /--vni ", " is empty/],
    [['pcap', 'decap', '--in', 'in.pcap', '--out', 'out.pcap', '--local', ','], /--local "," is empty: expected one or more addresses/],
    [['pcap', 'decap', '--in', 'in.pcap', '--out', 'out.pcap', '--local', ''], /--local "" is empty/],
  ];
  for (const [args, msg] of cases) {
    it(`vfplane ${args.join(' ')} is a usage error`, () => {
      refused(args, msg);
      expect(readdirSync(cwd)).toEqual([]);
    });
  }
});

describe('a count below zero', () => {
  it('vfplane sim create --vfs -1 names the range that matters: the profile\'s, not the parser\'s', () => {
    refused(['sim', 'create', '--profile', 'x710', '--vfs', '-1', '--root', join(cwd, 'sim')], /--vfs "-1" is out of range: expected 0 up to the profile's limit \(`vfplane profile show NAME`: limits\.maxVfsPerPf\)/);
    expect(readdirSync(cwd)).toEqual([]);
  });
});

describe('usage errors commander catches', () => {
  const cases: [string[], RegExp][] = [
    [['vf', 'list', '--bogus'], /unknown option '--bogus'/],
    [['vf', 'show'], /missing required argument 'vf'/],
    [['pcap', 'encap', '--in', 'in.pcap'], /required option '--out <file>' not specified/],
    [['dataplane', 'explain', '--mac', '02:00:00:00:00:01'], /required option '--vni <n>' not specified/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    // A flag's value the CLI's own parser refuses (a UsageError, not commander's): the same.
    [['vf', 'config', '0000:3b:02.0', '--vlan', '5000'], /--vlan.*5000/],
  ];
  for (const [args, msg] of cases) {
    it(`vfplane ${args.join(' ')}: exit 2, and with --json the JSON error object`, () => {
      const r = run(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).toMatch(/^vfplane: /); // in the words of every other error, not commander's "error: "
      const j = run([...args, '--json']);
      expect(j.code).toBe(2);
      expect(JSON.parse(j.stdout)).toEqual({ error: { message: expect.stringMatching(msg), exitCode: 2, kind: 'invalid' } }); // the shape of every other error
    });
  }

  it('a command group without its command shows usage and exits 2; --help exits 0', () => {
    for (const [args, msg] of [
      [[], /vfplane needs a command: one of pcap, bench, pf, vf/],
      [['pf'], /vfplane pf needs a command: one of list, set-numvfs \(run `vfplane pf --help`\)/],
      [['dataplane', 'peer'], /vfplane dataplane peer needs a command: one of add, del/],
    ] as [string[], RegExp][]) {
      const r = run(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(/Usage: vfplane/);
      expect(r.stderr).toMatch(msg);
      expect(r.stdout).toBe('');
      const h = run([...args, '--help']);
      expect({ args, code: h.code }).toEqual({ args, code: 0 });
      expect(h.stdout).toMatch(/Usage: vfplane/);
    }
  });
});

describe('the top-level help, from the stubs commands.ts makes', () => {
  // `vfplane --help` registers no command module: each top-level command is a stub made
  // from the table in src/cli/commands.ts. Its help must be the help of the whole tree,
  // every group registered (descriptions, order, the "[options]" markers).
  const whole = spawnSync(process.execPath, ['--input-type=module', '-e',
    `const m = await import(${JSON.stringify(join(ROOT, 'dist/cli/main.js'))}); process.stdout.write((await m.buildProgram([], { all: true })).helpInformation());`,
  ], { cwd, encoding: 'utf8', timeout: 60_000 });

  it('is the help of the whole tree', () => {
    expect(whole.stderr).toBe('');
    expect(whole.stdout).toMatch(/Commands:\n {2}pcap [\s\S]*\n {2}bench \[options\]/);
    for (const args of [['--help'], ['-h', 'pf'], ['help']]) {
      const r = run(args);
      expect({ args, stdout: r.stdout }).toEqual({ args, stdout: whole.stdout });
    }
    // A name that is no command: the same stubs, the same help after the error.
    const n = run(['help', 'nope']);
    expect(n.code).toBe(2);
    expect(n.stdout + n.stderr).toContain(whole.stdout);
  });

  it('a misspelt command is still matched against every command', () => {
    expect(run(['dataplan']).stderr).toMatch(/unknown command 'dataplan'\n\(Did you mean dataplane\?\)/);
  });
});

describe('dataplane attach|detach|explain check their flags before connecting', () => {
  // No data plane listens on this socket: a flag that got past the edge would be exit 1.
  const sock = ['--socket', 'no-dataplane.sock'];
  const att = ['dataplane', 'attach', '--vni', '100', '--mac', '02:00:00:00:00:01', ...sock];
  const cases: [string[], RegExp][] = [
    [[...att, '--representor', 'abcdefghijklmnop'], /--representor "abcdefghijklmnop" is not a valid Linux interface name/],
    [[...att, '--representor', 'a/b'], /--representor "a\/b" is not a valid Linux interface name/],
    [[...att, '--representor', 'a b'], /--representor "a b" is not a valid Linux interface name/],
    [[...att, '--representor', '..'], /--representor "\.\." is not a valid Linux interface name/],
    [[...att, '--representor', 'r0', '--pci', '0000:5e:02'], /--pci "0000:5e:02" is malformed: expected DDDD:BB:DD\.F/],
    [[...att, '--representor', 'r0', '--netns', '../../x'], /--netns "\.\.\/\.\.\/x" is not a network namespace file/],
    [[...att, '--representor', 'r0', '--netns', '/run/netns/../../etc/x'], /--netns .* is not a network namespace file/],
    [['dataplane', 'detach', '--representor', 'x/y', ...sock], /--representor "x\/y" is not a valid Linux interface name/],
    [['dataplane', 'detach', '--pci', '5e:02.0', ...sock], /--pci "5e:02\.0" is malformed/],
    [['dataplane', 'explain', '--vni', '1', '--mac', '02:00:00:00:00:01', '--from', 'x y', ...sock], /--from "x y" is not a valid Linux interface name.*or "uplink"/],
  ];
  for (const [args, msg] of cases) {
    it(`vfplane ${args.join(' ')} is a usage error`, () => refused(args, msg));
  }

  it('well-formed flags get as far as the socket', () => {
    const r = run([...att, '--representor', 'r0', '--pci', '0000:5E:02.0', '--netns', '/run/netns/pod']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no data plane listens on/);
    const e = run(['dataplane', 'explain', '--vni', '1', '--mac', '02:00:00:00:00:01', '--from', 'uplink', ...sock]);
    expect(e.code).toBe(1);
  });

  it('a --socket that names a regular file or a directory is said to be no socket, not a stopped data plane', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfp-nosock-'));
    try {
      const file = join(dir, 'file');
      writeFileSync(file, '');
      for (const [path, kind] of [[file, 'a regular file'], [dir, 'a directory']] as const) {
        const r = run(['dataplane', 'status', '--socket', path]);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`${path} is ${kind}, not a socket: no data plane listens there; give the data plane's socket (--socket, or --state-dir of its state directory, where it is dataplane.sock)`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('numbers: not a number at all is told from one out of range', () => {
  const cases: [string[], RegExp][] = [
    [['vf', 'config', '0000:5e:02.1', '--vlan', 'abc'], /--vlan "abc" is not a whole number: expected an integer in 0–4094/],
    [['pcap', 'encap', '--in', 'a', '--out', 'b', '--vni', '0x10', '--local', '192.0.2.1', '--remote', '192.0.2.2'], /--vni "0x10" is not a whole number/],
    [['pcap', 'encap', '--in', 'a', '--out', 'b', '--vni', '1', '--local', '192.0.2.1', '--remote', '192.0.2.2', '--tos', 'high'], /--tos "high" is not a whole number: expected an integer in 0–255 or "inherit"/],
    [['vf', 'config', '0000:5e:02.1', '--vlan', '5000'], /--vlan "5000" is out of range: expected an integer in 0–4094/],
    [['bench', '--sizes', '64,,128'], /--sizes "64,,128" has an empty item/],
    [['bench', '--sizes', '64,big'], /--sizes item "big" is not a whole number/],
  ];
  for (const [args, msg] of cases) {
    it(`vfplane ${args.join(' ')} is a usage error`, () => refused(args, msg));
  }
});

describe('bench: flags the chosen bench does not read, and a chart it could not write, are refused before the run', () => {
  const cases: [string[], RegExp][] = [
    [['bench', '--chart', 'x.svg'], /--chart is for the I\/O backends .*the memory bench does not read it/],
    [['bench', '--pings', '5', '--no-kernel'], /--pings, --no-kernel are for the I\/O backends/],
    [['bench', '--backend', 'afpacket', '--burst', '16', '--no-learn'], /--burst, --no-learn are for the memory bench \(--backend memory\); --backend afpacket does not read them/],
    [['bench', '--backend', 'afpacket', '--chart', '/nonexistent-vfp/x.svg'], /--chart \/nonexistent-vfp\/x\.svg: directory \/nonexistent-vfp does not exist/],
    [['bench', '--backend', 'afpacket', '--chart', 'x.png'], /--chart x\.png: the chart is SVG; give a file name ending in \.svg/],
    [['bench', '--backend', 'afxdp', '--iface', 'lo', '--chart', 'x.svg'], /--chart is drawn for the simulated topology only/],
    [['bench', 'alloc', '--state-dir', '/nonexistent-vfp/q', '--procs', '1', '--cycles', '1'], /--state-dir \/nonexistent-vfp\/q does not exist; give an existing directory/],
    // A real NIC's bench and the net_null comparison alone do not run the veth topology.
    [['bench', '--backend', 'afxdp', '--iface', 'lo', '--ops', 'decap'], /--ops is for the simulated veth topology; a real NIC's bench \(--iface\) measures encap with its own traffic and does not read it/],
    [['bench', '--backend', 'dpdk', '--pci', '0000:00:01.0', '--pings', '3', '--gen', 'afxdp', '--no-kernel'], /--gen, --pings are for the simulated veth topology; a real NIC's bench \(--pci\)/],
    [['bench', '--backend', 'dpdk', '--only-null', '--sizes', '64,128'], /--sizes is for the simulated veth topology; --only-null runs the net_null comparison alone/],
    [['bench', '--backend', 'dpdk', '--only-null', '--chart', 'x.svg'], /--chart is for the simulated veth topology; --only-null/],
  ];
  for (const [args, msg] of cases) {
    it(`vfplane ${args.join(' ')} is a usage error`, () => refused(args, msg));
  }
});

describe('a flag with one value given twice', () => {
  const cases: [string[], RegExp][] = [
    [['vf', 'release', '--owner', 'ns/a', '--owner', 'ns/b'], /--owner is given twice \("ns\/a" and "ns\/b"\); give it once/],
    [['vf', 'config', '0000:5e:02.1', '--mac', '02:00:00:00:00:01', '--mac=02:00:00:00:00:02'], /--mac is given twice \("02:00:00:00:00:01" and "02:00:00:00:00:02"\)/],
    [['bench', '--duration', '20', '--duration', '30'], /--duration is given twice \("20" and "30"\)/],
  ];
  for (const [args, msg] of cases) {
    it(`vfplane ${args.join(' ')} is a usage error, not the last one winning`, () => refused(args, msg));
  }
});

describe('list flags given more than once', () => {
  it('add up, and replace the default rather than add to it (--sizes, --ops)', () => {
    const r = run(['bench', '--sizes', '64', '--sizes', '128', '--engines', 'native', '--ops', 'encap', '--ops', 'decap', '--duration', '20', '--trials', '1', '--no-fdb', '--json']);
    expect(r.code).toBe(0);
    const cells = (JSON.parse(r.stdout).cells as { op: string; size: number; engine: string }[]).map((c) => `${c.op} ${c.size} ${c.engine}`);
    expect(cells.sort()).toEqual(['decap 128 native', 'decap 64 native', 'encap 128 native', 'encap 64 native']);
  });
});

describe('a reader of stderr that goes away', () => {
  it('leaves the exit code the command\'s own (2 for a usage error), not 1 for the broken pipe', () => {
    // stderr is a pipe whose read end is closed before the child writes: EPIPE.
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${BIN}" vf show 0000:5e:02 2>&1 | head -c 0; echo "rc=\${PIPESTATUS[0]}"`], { cwd, encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout.trim()).toBe('rc=2');
  });
});

// Files and directories a command is told to write are checked before the work starts:
// a file where a directory belongs, a missing directory, a directory where a file
// belongs. The message names the flag and the value (exit 1); nothing is written.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { vfplane } from '../helpers/cli.js';
import { icmpEcho, writePcap } from '../helpers/frames.js';

const dir = mkdtempSync(join(tmpdir(), 'vfplane-paths-'));
const file = join(dir, 'a-file');
writeFileSync(file, 'not a directory\n');
const outDir = join(dir, 'out-dir');
mkdirSync(outDir);
writePcap(join(dir, 'in.pcap'), [icmpEcho({ dstMac: '02:aa:00:00:00:02', srcMac: '02:aa:00:00:00:01', src: '10.9.0.1', dst: '10.9.0.2', id: 7, seq: 1 })]);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Exit 1, MSG on stderr and in the JSON error, no raw errno, and DIR as it was. */
function fails(args: string[], msg: RegExp): void {
  const before = readdirSync(dir).sort();
  const r = vfplane(args);
  expect({ args, code: r.code }).toEqual({ args, code: 1 });
  expect(r.stderr).toMatch(msg);
  expect(r.stderr).not.toMatch(/ENOTDIR|EEXIST|ENOENT|EISDIR/);
  const j = vfplane([...args, '--json']);
  expect(j.code).toBe(1);
  expect(JSON.parse(j.stdout).error.message).toMatch(msg);
  // Every error has a kind for a script to branch on (these had none).
  expect(['not-found', 'bad-file', 'conflict', 'unavailable', 'system']).toContain(JSON.parse(j.stdout).error.kind);
  expect(readdirSync(dir).sort()).toEqual(before);
  expect(readdirSync(outDir)).toEqual([]);
}

describe('output paths are checked before the work', () => {
  it('sim create --root on a file, or under one', () => {
    fails(['sim', 'create', '--no-netdevs', '--root', file], new RegExp(`--root ${file}: it is not a directory`));
    fails(['sim', 'create', '--no-netdevs', '--root', join(file, 'sim')], new RegExp(`--root ${file}/sim: ${file} is not a directory`));
  });

  it('cni install --dir on a file, or under one', () => {
    fails(['cni', 'install', '--dir', file], new RegExp(`--dir ${file} is not a directory`));
    fails(['cni', 'install', '--dir', join(file, 'bin')], new RegExp(`--dir ${file}/bin: ${file} is not a directory`));
  });

  for (const cmd of ['encap', 'decap'] as const) {
    const args = (out: string) => ['pcap', cmd, '--in', join(dir, 'in.pcap'), '--out', out, '--engine', 'ts',
      ...(cmd === 'encap' ? ['--vni', '1', '--local', '192.0.2.1', '--remote', '192.0.2.2'] : [])];
    it(`pcap ${cmd} --out in a missing directory, on a directory, under a file`, () => {
      fails(args('/nonexistent-fxb/dir/x.pcap'), /--out \/nonexistent-fxb\/dir\/x\.pcap: directory \/nonexistent-fxb\/dir does not exist/);
      fails(args(outDir), new RegExp(`--out ${outDir} is a directory; name a file`));
      fails(args(join(file, 'x.pcap')), new RegExp(`--out ${file}/x.pcap: ${file} is not a directory`));
    });
  }

  it('pcap --in that does not exist names the flag', () => {
    fails(['pcap', 'decap', '--in', join(dir, 'nope.pcap'), '--out', join(dir, 'x.pcap'), '--engine', 'ts'], /--in .*nope\.pcap: no such file/);
  });
});

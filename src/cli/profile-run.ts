// The work behind `vfplane profile list|show`: load and validate the hw-profiles, then
// print them as tables (humans) or as the profiles themselves (--json).
import Table from 'cli-table3';
import { factPaths, getProfile, loadProfiles } from '../sriov/profile.js';
import type { HwProfile } from '../sriov/types.js';
import { printJson } from './output.js';

export interface ProfileOpts {
  json?: boolean;
  profilesDir?: string;
  sysfsRoot?: string;
}

/** PCI addresses of this node's PFs that match each of PROFILES (under --sysfs-root). */
async function pfsHere(o: ProfileOpts, profiles: HwProfile[]): Promise<Map<string, string[]>> {
  const { openSysfs } = await import('../sriov/sysfs.js');
  const { listPfs } = await import('../sriov/discover.js');
  const out = new Map<string, string[]>();
  let pfs: { pci: string; profile: string | null }[] = [];
  try {
    pfs = listPfs(await openSysfs(o.sysfsRoot), undefined, profiles);
  } catch (err) {
    // Only an explicitly named root that is missing is an error; /sys without PFs is fine.
    if (o.sysfsRoot) throw err;
  }
  for (const pf of pfs) if (pf.profile) out.set(pf.profile, [...(out.get(pf.profile) ?? []), pf.pci]);
  return out;
}

const plain = { style: { head: [], border: [] } };
const yesNo = (b: boolean) => (b ? 'yes' : 'no');

function fmtRate(mbps: number): string {
  return mbps % 1000 === 0 ? `${mbps / 1000}G` : `${mbps}M`;
}

/** "1G–40G" for the list (`show` gives every rate). */
function fmtRateRange(mbps: number[]): string {
  const lo = Math.min(...mbps), hi = Math.max(...mbps);
  return lo === hi ? fmtRate(lo) : `${fmtRate(lo)}–${fmtRate(hi)}`;
}

function fmtQueues(p: HwProfile): string {
  return `${p.limits.queuesPerVfDefault}, ≤ ${p.limits.queuesPerVfMax}`;
}

export async function runList(o: ProfileOpts): Promise<void> {
  const profiles = loadProfiles(o.profilesDir);
  const here = await pfsHere(o, profiles);
  if (o.json) {
    printJson(profiles.map((p) => ({ ...p, pfsHere: here.get(p.name) ?? [] })));
    return;
  }
  // Narrow enough for a terminal: the description wraps, line rates show as a range, and
  // everything else is in `profile show NAME`.
  const t = new Table({
    head: ['name', 'NIC', 'drivers', 'VFs/PF', 'queues/VF', 'line rate', 'tier', 'AF_XDP ZC', 'PFs here'],
    colWidths: [null, 26, null, null, null, null, null, null, null],
    wordWrap: true,
    ...plain,
  });
  for (const p of profiles) {
    t.push([
      p.name, firstSentence(p.description), `PF ${p.pf.driver}\nVF ${p.vf.driver}`, String(p.limits.maxVfsPerPf),
      fmtQueues(p),
      fmtRateRange(p.lineRateMbps), String(p.tier), `PF ${yesNo(p.pf.afxdpZeroCopy)}\nVF ${yesNo(p.vf.afxdpZeroCopy)}`, String(here.get(p.name)?.length ?? 0),
    ]);
  }
  process.stdout.write(t.toString() + '\n');
}

/** The description up to its first full stop, for the list; `show` prints it whole. */
function firstSentence(s: string): string {
  const m = /^(.+?\.)(\s|$)/s.exec(s);
  return m ? m[1]! : s;
}

function valueAt(p: HwProfile, path: string): unknown {
  // An optional section left out (vfSettings in an own profile) has no values under it.
  return path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], p);
}

function fmtValue(path: string, v: unknown): string {
  if (typeof v === 'boolean') return yesNo(v);
  if (Array.isArray(v)) return path === 'lineRateMbps' ? v.map((x) => fmtRate(x as number)).join(' ') : v.join(' ');
  return String(v);
}

export async function runShow(name: string, o: ProfileOpts): Promise<void> {
  const p = getProfile(name, o.profilesDir);
  const here = (await pfsHere(o, loadProfiles(o.profilesDir))).get(p.name) ?? [];
  if (o.json) {
    printJson({ ...p, pfsHere: here });
    return;
  }
  // Not a table: sources are long URLs, and a table cell would break them where they can no longer be copied.
  const width = Math.max(...factPaths().map((f) => f.length)) + 2;
  const out: string[] = [`${p.name}: ${p.description}`, `file: ${p.file}`, `PFs on this node: ${here.join(', ') || 'none'}`, ''];
  for (const path of factPaths()) {
    const v = valueAt(p, path);
    if (v === undefined) {
      const section = path.split('.')[0]!;
      out.push(path.padEnd(width) + ((p as unknown as Record<string, unknown>)[section] === undefined
        ? `– (${section} left out: the kernel decides)`
        : '– (no source states it for this family)'));
      continue;
    }
    out.push(path.padEnd(width) + fmtValue(path, v));
    out.push(' '.repeat(width) + `source: ${p.sources[path] ?? '–'}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

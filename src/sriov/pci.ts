// PCI addresses and interface names are checked here, once, at the edge: anything that
// later becomes part of a sysfs path must have passed one of these.
import { invalid } from '../util/errors.js';

/** Domain:bus:device.function, e.g. 0000:3b:02.1 (device 0–1f, function 0–7). */
const PCI_RE = /^([0-9a-f]{4}):([0-9a-f]{2}):([01][0-9a-f])\.([0-7])$/;

export function isPci(value: string): boolean {
  return PCI_RE.test(value.toLowerCase());
}

/** Returns the canonical (lower-case) address or throws naming the value. */
export function parsePci(value: unknown, what = 'PCI address'): string {
  // lspci's short form (no domain), the most common near miss: say what to add.
  if (typeof value === 'string' && /^[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/.test(value)) {
    throw invalid(`${what} ${JSON.stringify(value)} is malformed: it lacks the PCI domain; give the full address, such as 0000:${value.toLowerCase()}`, { value });
  }
  // The right shape with a field out of range: say which (device 0–1f, function 0–7).
  const near = typeof value === 'string' ? /^[0-9a-f]{4}:[0-9a-f]{2}:([0-9a-f]{2})\.([0-9a-f])$/.exec(value.toLowerCase()) : null;
  if (near && !PCI_RE.test((value as string).toLowerCase())) {
    const bad = parseInt(near[1]!, 16) > 0x1f ? `device ${near[1]} is above 1f` : `function ${near[2]} is above 7`;
    throw invalid(`${what} ${JSON.stringify(value)} is malformed: its ${bad} (a PCI address is DDDD:BB:DD.F, device 00–1f, function 0–7)`, { value });
  }
  if (typeof value !== 'string' || !PCI_RE.test(value.toLowerCase())) {
    throw invalid(
      `${what} ${JSON.stringify(value)} is malformed: expected DDDD:BB:DD.F in hex, like 0000:3b:02.1 ` +
        '(run `vfplane vf list` to see the addresses on this node)',
      { value },
    );
  }
  return value.toLowerCase();
}

/** Routing ID (bus << 8 | devfn) of an address, and back; VFs sit at PF + offset + i × stride. */
export function pciRid(addr: string): { domain: number; rid: number } {
  const m = PCI_RE.exec(addr)!;
  return { domain: parseInt(m[1]!, 16), rid: (parseInt(m[2]!, 16) << 8) | (parseInt(m[3]!, 16) << 3) | parseInt(m[4]!, 16) };
}

export function pciFromRid(domain: number, rid: number): string {
  const bus = (rid >> 8) & 0xff;
  const dev = (rid >> 3) & 0x1f;
  const fn = rid & 7;
  return `${domain.toString(16).padStart(4, '0')}:${bus.toString(16).padStart(2, '0')}:${dev.toString(16).padStart(2, '0')}.${fn}`;
}

/** Linux interface names: 1–15 bytes, no '/', whitespace or ':'; not '.' or '..'. */
const IFNAME_RE = /^[A-Za-z0-9_.@-]{1,15}$/;

export function parseIfname(value: unknown, what = 'interface name'): string {
  if (typeof value !== 'string' || !IFNAME_RE.test(value) || value === '.' || value === '..') {
    throw invalid(
      `${what} ${JSON.stringify(value)} is not a valid Linux interface name: 1–15 characters from A–Z a–z 0–9 _ . - @`,
      { value },
    );
  }
  return value;
}

/** Drivers that hand a VF to userspace I/O (DPDK): a VF bound to one has no netdev. */
export const USERSPACE_DRIVERS: ReadonlySet<string> = new Set(['vfio-pci', 'uio_pci_generic', 'igb_uio']);

// Runs the scapy scripts under test/packet/scapy with the system python, which has scapy
// (the python3 first on PATH may not). Without scapy a suite skips locally and fails in
// CI, like describePrivileged, so the known-answer tests can never pass by not running.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';

export const SYSTEM_PYTHON = '/usr/bin/python3';

let cached: string | null | undefined;

/** Why scapy cannot be used, or null when it can. */
export function scapyMissing(): string | null {
  if (cached !== undefined) return cached;
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', 'import scapy.all'], { stdio: 'ignore', timeout: 60_000 });
    cached = null;
  } catch {
    cached = `scapy for ${SYSTEM_PYTHON} (apt-get install python3-scapy)`;
  }
  return cached;
}

export function describeScapy(name: string, fn: () => void): void {
  const lacks = scapyMissing();
  if (lacks === null) {
    describe(name, fn);
  } else if (process.env.CI) {
    describe(name, () => {
      it('has what it needs to run', () => {
        throw new Error(`known-answer test cannot run in CI: missing ${lacks}`);
      });
    });
  } else {
    describe.skip(`${name} (skipped: missing ${lacks})`, fn);
  }
}

/** Runs test/packet/scapy/<script> with `args` and parses its stdout as JSON. */
export function runScapy<T>(script: string, args: string[] = []): T {
  const path = fileURLToPath(new URL(`../packet/scapy/${script}`, import.meta.url));
  const out = execFileSync(SYSTEM_PYTHON, [path, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 120_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out) as T;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function unhex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}

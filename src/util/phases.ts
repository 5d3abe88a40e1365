// Wall-clock phases of one operation, for a debug log line that says where the time went
// (a CNI ADD's allocation, netdev move, IPAM wait…) and for the bench that sums them.

export class Phases {
  private last: number;
  private readonly start: number;
  readonly ms: Record<string, number> = {};

  constructor(start = performance.now()) {
    this.start = start;
    this.last = start;
  }

  /** Charges the time since the previous mark to `name` (added up if it repeats). */
  mark(name: string): void {
    const now = performance.now();
    this.ms[name] = round((this.ms[name] ?? 0) + now - this.last);
    this.last = now;
  }

  /** The marks so far, plus `total` since the start. */
  summary(): Record<string, number> {
    return { ...this.ms, total: round(performance.now() - this.start) };
  }
}

const round = (x: number) => Math.round(x * 100) / 100;

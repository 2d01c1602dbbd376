/**
 * A seeded pseudo-random source (mulberry32): the same seed replays the same run, so a failure the
 * fuzzer prints can be reproduced with LABRIG_FUZZ_SEED. Not for anything secret.
 */
export class Random {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[Math.floor(this.next() * items.length)] as T;
  }

  /** Picks by weight: `[["a", 3], ["b", 1]]` gives "a" three times as often. */
  weighted<T>(choices: readonly (readonly [T, number])[]): T {
    const total = choices.reduce((sum, [, w]) => sum + w, 0);
    let at = this.next() * total;
    for (const [value, weight] of choices) {
      at -= weight;
      if (at < 0) return value;
    }
    return (choices[choices.length - 1] as readonly [T, number])[0];
  }

  /** A length that is usually small: most generated arrays and strings stay readable and cheap. */
  smallLength(min: number, max: number): number {
    const cap = Math.min(max, min + this.pick([0, 1, 2, 3, 4, 8]));
    return this.int(min, Math.max(min, cap));
  }

  /** A seed for a child source, so one part of a run can change without shifting the others. */
  fork(): Random {
    return new Random(this.int(0, 0xffffffff));
  }
}

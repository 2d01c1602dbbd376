/** Entries kept before expired ones are pruned; bounds memory under a scan from many addresses. */
const MAX_TRACKED = 10_000;

interface Window {
  failures: number;
  resetAtMs: number;
}

/**
 * Counts failed authentications per client address in fixed windows. Once an address reaches the
 * limit, every authenticated request from it is refused until the window ends, valid credentials
 * included (otherwise a guesser would still learn when it guessed right). Successes never count.
 */
export class AuthFailureLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until `address` may try again, or null when it is not blocked. */
  blockedFor(address: string): number | null {
    const w = this.windows.get(address);
    const now = this.now();
    if (!w) return null;
    if (w.resetAtMs <= now) {
      this.windows.delete(address);
      return null;
    }
    return w.failures >= this.limit ? Math.max(1, Math.ceil((w.resetAtMs - now) / 1000)) : null;
  }

  /**
   * Records one failed authentication from `address` and says how to log it: the first failure of a
   * window and the one that blocks the address at warn, the others at debug, so a scan or an agent
   * retrying with a wrong token does not flood the log.
   */
  fail(address: string): "warn" | "debug" {
    const now = this.now();
    const w = this.windows.get(address);
    if (w && w.resetAtMs > now) {
      w.failures++;
      return w.failures === this.limit ? "warn" : "debug";
    }
    if (this.windows.size >= MAX_TRACKED) this.prune(now);
    this.windows.set(address, { failures: 1, resetAtMs: now + this.windowMs });
    return "warn";
  }

  private prune(now: number): void {
    for (const [address, w] of this.windows) if (w.resetAtMs <= now) this.windows.delete(address);
    // Still full: drop the oldest windows (Map keeps insertion order).
    for (const address of this.windows.keys()) {
      if (this.windows.size < MAX_TRACKED) break;
      this.windows.delete(address);
    }
  }
}

/**
 * Exponential backoff with full jitter: delay = random() * min(maxMs, baseMs * 2^attempt).
 * Full jitter spreads a fleet of sidecars reconnecting to a restarted control plane.
 */
export interface BackoffOptions {
  /** Ceiling of the first delay. Default 500 ms. */
  baseMs?: number;
  /** Largest ceiling. Default 30 s. */
  maxMs?: number;
}

export class Backoff {
  private attempt = 0;
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(opts: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.baseMs = opts.baseMs ?? 500;
    this.maxMs = opts.maxMs ?? 30_000;
    if (!(this.baseMs > 0) || !(this.maxMs >= this.baseMs)) throw new RangeError(`backoff: need 0 < baseMs <= maxMs, got ${this.baseMs}, ${this.maxMs}`);
  }

  /** The next delay; each call doubles the ceiling (up to maxMs). */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 52));
    this.attempt++;
    return this.random() * ceiling;
  }

  reset(): void { this.attempt = 0; }

  get attempts(): number { return this.attempt; }
}

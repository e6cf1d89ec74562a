/**
 * A token bucket, as Envoy's local_ratelimit filter runs one (envoy.type.v3.TokenBucket):
 * - it starts full, with `maxTokens` tokens;
 * - every whole `fillIntervalMs` adds `tokensPerFill` tokens, never beyond `maxTokens`;
 * - a request takes one token, or is refused when none is left.
 *
 * No timers: the refill is computed lazily on each call from the time passed in, counting the
 * whole intervals elapsed since the last fill (a partial interval adds nothing, and its elapsed
 * part carries over to the next call, as with Envoy's fill timer). Time is whatever clock the
 * caller reads (Clock.now(), milliseconds); if it goes backwards the fill phase restarts from the
 * earlier time, without adding tokens. No allocation per call.
 *
 * Not shared across proxies: each sidecar has its own buckets ("local" rate limiting).
 */
export class TokenBucket {
  private left: number;
  private lastFillMs: number;

  /**
   * @param maxTokens capacity and initial content; 0 refuses everything (as recent Envoy versions do)
   * @param tokensPerFill tokens added per whole interval, >= 1 (Envoy's default is 1)
   * @param fillIntervalMs >= 1 (Envoy itself requires >= 50)
   * @param nowMs the time the bucket is created (and last filled)
   */
  constructor(
    readonly maxTokens: number,
    readonly tokensPerFill: number,
    readonly fillIntervalMs: number,
    nowMs: number,
  ) {
    if (!Number.isSafeInteger(maxTokens) || maxTokens < 0) throw new RangeError(`TokenBucket: maxTokens must be an integer >= 0, got ${maxTokens}`);
    if (!Number.isSafeInteger(tokensPerFill) || tokensPerFill < 1) throw new RangeError(`TokenBucket: tokensPerFill must be an integer >= 1, got ${tokensPerFill}`);
    if (!Number.isFinite(fillIntervalMs) || fillIntervalMs < 1) throw new RangeError(`TokenBucket: fillIntervalMs must be >= 1, got ${fillIntervalMs}`);
    this.left = maxTokens;
    this.lastFillMs = nowMs;
  }

  /** Takes one token if there is one (after refilling up to `nowMs`); false means rate limited. */
  tryTake(nowMs: number): boolean {
    this.refill(nowMs);
    if (this.left < 1) return false;
    this.left--;
    return true;
  }

  /** The tokens left at `nowMs` (refills, takes nothing). */
  tokens(nowMs: number): number {
    this.refill(nowMs);
    return this.left;
  }

  private refill(nowMs: number): void {
    const elapsed = nowMs - this.lastFillMs;
    if (!(elapsed >= this.fillIntervalMs)) { // also NaN
      if (elapsed < 0) this.lastFillMs = nowMs;
      return;
    }
    const intervals = Math.floor(elapsed / this.fillIntervalMs);
    this.lastFillMs += intervals * this.fillIntervalMs;
    if (this.left < this.maxTokens) this.left = Math.min(this.maxTokens, this.left + intervals * this.tokensPerFill);
  }
}

import type { Clock } from '../../../shared/src/clock';
import { LatencyHistogram } from './latency-histogram';
import type { SignificantDigits } from './latency-histogram';

export interface RollingWindowOptions {
  /** Window length in whole seconds. Default 10. */
  seconds?: number;
  /** Histogram precision per bucket. Default 2 (1%): ~14 KB per bucket, cheap to merge. */
  significantDigits?: SignificantDigits;
}

/** Traffic over the last `seconds` seconds. Latencies in ms; rates rounded to 3 decimals. */
export interface WindowSummary {
  seconds: number;
  /** Requests in the window, and how many of them succeeded. */
  count: number;
  success: number;
  /** Requests per second over the covered span (see RollingWindow). */
  rps: number;
  /** success / count, or null with no requests. */
  successRate: number | null;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * Request rate, success rate and latency percentiles over the last W seconds.
 *
 * A ring of W one-second buckets, each holding a count, a success count and a histogram. A
 * bucket is tagged with the epoch second it holds; `record` finds its bucket by
 * `second mod W` and, if the tag is stale, resets it (one typed-array fill, at most once per
 * second) before counting. So recording is a few arithmetic ops plus one histogram record,
 * with no allocation and no timer. Reading merges the live buckets into a scratch histogram
 * (cost ~ W x histogram size, paid by the admin reader, not by requests).
 *
 * The window is the current (partial) second and the W-1 whole seconds before it. `rps`
 * divides by the span really covered: from the window start, or from creation if later, to
 * now, and at least 1 s. So a steady load reads the same early or late in a second, and a
 * window created 2 s ago is not diluted by 8 empty seconds.
 */
export class RollingWindow {
  readonly seconds: number;
  private readonly secs: Float64Array;
  private readonly counts: Float64Array;
  private readonly successes: Float64Array;
  private readonly hists: LatencyHistogram[];
  private readonly scratch: LatencyHistogram;
  private readonly createdAt: number;

  constructor(private readonly clock: Clock, opts: RollingWindowOptions = {}) {
    const seconds = opts.seconds ?? 10;
    if (!Number.isInteger(seconds) || seconds < 1) throw new RangeError(`RollingWindow: seconds must be a positive integer, got ${seconds}`);
    const digits = opts.significantDigits ?? 2;
    this.seconds = seconds;
    this.secs = new Float64Array(seconds).fill(Number.NEGATIVE_INFINITY);
    this.counts = new Float64Array(seconds);
    this.successes = new Float64Array(seconds);
    this.hists = Array.from({ length: seconds }, () => new LatencyHistogram(digits));
    this.scratch = new LatencyHistogram(digits);
    this.createdAt = clock.now();
  }

  /** Counts one finished request. Pass `now` (ms) when the caller already read the clock. */
  record(success: boolean, latencyUs: number, now: number = this.clock.now()): void {
    const sec = Math.floor(now / 1000);
    const i = ((sec % this.seconds) + this.seconds) % this.seconds;
    if (this.secs[i] !== sec) {
      this.secs[i] = sec;
      this.counts[i] = 0;
      this.successes[i] = 0;
      this.hists[i]!.reset();
    }
    this.counts[i]!++;
    if (success) this.successes[i]!++;
    this.hists[i]!.record(latencyUs);
  }

  summary(now: number = this.clock.now()): WindowSummary {
    const nowSec = Math.floor(now / 1000);
    const firstSec = nowSec - this.seconds + 1;
    const merged = this.scratch;
    merged.reset();
    let count = 0;
    let success = 0;
    for (let i = 0; i < this.seconds; i++) {
      const s = this.secs[i]!;
      if (s < firstSec || s > nowSec || this.counts[i] === 0) continue;
      count += this.counts[i]!;
      success += this.successes[i]!;
      merged.merge(this.hists[i]!);
    }
    const spanS = Math.max(1, (now - Math.max(firstSec * 1000, this.createdAt)) / 1000);
    const p = merged.percentiles();
    return {
      seconds: this.seconds,
      count,
      success,
      rps: round3(count / spanS),
      successRate: count === 0 ? null : round3(success / count),
      p50: p.p50,
      p95: p.p95,
      p99: p.p99,
      max: p.max,
      mean: p.mean,
    };
  }
}

function round3(x: number): number { return Math.round(x * 1000) / 1000; }

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

/** Requests of whole seconds, added up off the hot path (the route stats report's interval). */
export interface IntervalTotals {
  count: number;
  success: number;
  /** Same precision as the window's buckets. */
  readonly latency: LatencyHistogram;
}

/** A route's window for one destination cluster: route name, cluster name, window. */
export type BackendWindow = readonly [route: string, cluster: string, window: RollingWindow];

/** One scratch histogram per precision, shared by every window: summary() is synchronous. */
const scratches = new Map<SignificantDigits, LatencyHistogram>();
function scratchFor(digits: SignificantDigits): LatencyHistogram {
  let h = scratches.get(digits);
  if (h === undefined) { h = new LatencyHistogram(digits); scratches.set(digits, h); }
  return h;
}

/** The ring, allocated on the first record. */
interface Ring {
  readonly secs: Float64Array;
  readonly counts: Float64Array;
  readonly successes: Float64Array;
  readonly hists: LatencyHistogram[];
}

/**
 * Request rate, success rate and latency percentiles over the last W seconds.
 *
 * A ring of W one-second buckets, each holding a count, a success count and a histogram. A
 * bucket is tagged with the epoch second it holds; `record` finds its bucket by
 * `second mod W` and, if the tag is stale, resets it (one typed-array fill, at most once per
 * second) before counting. So recording is a few arithmetic ops plus one histogram record,
 * with no allocation and no timer. Reading merges the live buckets into a scratch histogram
 * shared by all windows (cost ~ W x histogram size, paid by the admin reader, not by requests).
 *
 * Memory: nothing but the object until the first record; then the ring, whose bucket
 * histograms allocate their counts on their first sample (~14 KB each at 2 digits). A window
 * that never sees traffic (an idle cluster's or route's) costs a few dozen bytes. destroy()
 * releases the ring.
 *
 * The window is the current (partial) second and the W-1 whole seconds before it. `rps`
 * divides by the span really covered: from the window start, or from creation if later, to
 * now, and at least 1 s. So a steady load reads the same early or late in a second, and a
 * window created 2 s ago is not diluted by 8 empty seconds.
 */
export class RollingWindow {
  readonly seconds: number;
  private readonly digits: SignificantDigits;
  private ring: Ring | undefined = undefined;
  private readonly createdAt: number;

  constructor(private readonly clock: Clock, opts: RollingWindowOptions = {}) {
    const seconds = opts.seconds ?? 10;
    if (!Number.isInteger(seconds) || seconds < 1) throw new RangeError(`RollingWindow: seconds must be a positive integer, got ${seconds}`);
    this.digits = opts.significantDigits ?? 2;
    this.seconds = seconds;
    this.createdAt = clock.now();
  }

  /** Whether the ring is allocated (for tests). */
  get allocated(): boolean { return this.ring !== undefined; }

  private makeRing(): Ring {
    const n = this.seconds;
    const ring: Ring = {
      secs: new Float64Array(n).fill(Number.NEGATIVE_INFINITY),
      counts: new Float64Array(n),
      successes: new Float64Array(n),
      hists: Array.from({ length: n }, () => new LatencyHistogram(this.digits)),
    };
    this.ring = ring;
    return ring;
  }

  /** Counts one finished request. Pass `now` (ms) when the caller already read the clock. */
  record(success: boolean, latencyUs: number, now: number = this.clock.now()): void {
    const r = this.ring ?? this.makeRing();
    const sec = Math.floor(now / 1000);
    const i = ((sec % this.seconds) + this.seconds) % this.seconds;
    if (r.secs[i] !== sec) {
      r.secs[i] = sec;
      r.counts[i] = 0;
      r.successes[i] = 0;
      r.hists[i]!.reset();
    }
    r.counts[i]!++;
    if (success) r.successes[i]!++;
    r.hists[i]!.record(latencyUs);
  }

  summary(now: number = this.clock.now()): WindowSummary {
    const nowSec = Math.floor(now / 1000);
    const firstSec = nowSec - this.seconds + 1;
    const merged = scratchFor(this.digits);
    merged.reset();
    let count = 0;
    let success = 0;
    const r = this.ring;
    if (r !== undefined) {
      for (let i = 0; i < this.seconds; i++) {
        const s = r.secs[i]!;
        if (s < firstSec || s > nowSec || r.counts[i] === 0) continue;
        count += r.counts[i]!;
        success += r.successes[i]!;
        merged.merge(r.hists[i]!);
      }
    }
    const spanS = Math.max(1, (now - Math.max(firstSec * 1000, this.createdAt)) / 1000);
    const p = merged.percentiles();
    merged.reset();
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

  /** The precision of the bucket histograms. */
  get significantDigits(): SignificantDigits { return this.digits; }

  /**
   * Adds the buckets of the epoch seconds `fromSec` (inclusive) to `toSec` (exclusive) that the
   * ring still holds to `into`, and returns how many of those seconds it no longer holds (older
   * than the window: lost to the caller). Reads only: recording goes on as before. A second is
   * complete once the clock is past it, so a caller that stops at the current second reads each
   * second once and whole.
   */
  collect(fromSec: number, toSec: number, into: IntervalTotals, nowSec: number = Math.floor(this.clock.now() / 1000)): number {
    const oldest = nowSec - this.seconds + 1;
    const lost = Math.max(0, Math.min(toSec, oldest) - fromSec);
    const r = this.ring;
    if (r === undefined) return lost;
    for (let i = 0; i < this.seconds; i++) {
      const s = r.secs[i]!;
      if (s < fromSec || s >= toSec || s < oldest || r.counts[i] === 0) continue;
      into.count += r.counts[i]!;
      into.success += r.successes[i]!;
      into.latency.merge(r.hists[i]!);
    }
    return lost;
  }

  /** Forgets every sample and releases the ring (allocated again on the next record). */
  destroy(): void {
    if (this.ring !== undefined) for (const h of this.ring.hists) h.destroy();
    this.ring = undefined;
  }
}

function round3(x: number): number { return Math.round(x * 1000) / 1000; }

import { build, JsHistogram } from 'hdr-histogram-js';

/** Highest latency a histogram tracks, in µs (1 hour). Larger values are clamped to it. */
export const MAX_LATENCY_US = 3_600_000_000;

export type SignificantDigits = 1 | 2 | 3 | 4 | 5;

/** Latency summary in milliseconds, rounded to whole µs (3 decimals). All 0 when count is 0. */
export interface LatencyPercentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

const EMPTY: LatencyPercentiles = Object.freeze({ count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0 });

function ms(us: number): number { return Math.round(us) / 1000; }

/**
 * A latency histogram in µs on top of HdrHistogram (pure-JS build, 32-bit counts, range
 * 1 µs .. 1 h, no auto-resize).
 *
 * Hot path: `record` computes the counts index itself with Math.clz32 (values are clamped
 * below 2^32) and calls the histogram's typed per-index methods. That is the same index
 * `countsArrayIndex` computes with log2/pow (a test pins the two together), at about 5 ns
 * instead of about 120 ns, and it allocates nothing.
 *
 * Precision: `significantDigits` (default 3) bounds the relative error of a percentile
 * (3 digits: 0.1%). Footprint: ~94 KB at 3 digits, ~14 KB at 2. Count, sum and max are also
 * kept exactly, so `max` and `mean` are exact and no percentile is reported above `max`.
 * A single sub-bucket wraps after 2^31 samples; that is days of traffic at one exact latency.
 */
export class LatencyHistogram {
  /** Samples recorded. */
  count = 0;
  /** Exact sum and maximum of the recorded values, in µs. */
  sumUs = 0;
  maxUs = 0;
  private readonly h: JsHistogram;
  private readonly bucketShift: number;
  private readonly unitMagnitude: number;
  private readonly halfCount: number;

  constructor(readonly significantDigits: SignificantDigits = 3) {
    const h = build({
      bitBucketSize: 32,
      autoResize: false,
      useWebAssembly: false,
      lowestDiscernibleValue: 1,
      highestTrackableValue: MAX_LATENCY_US,
      numberOfSignificantValueDigits: significantDigits,
    });
    if (!(h instanceof JsHistogram)) throw new Error('hdr-histogram-js: expected the pure-JS histogram');
    this.h = h;
    this.unitMagnitude = h.unitMagnitude;
    this.bucketShift = h.subBucketHalfCountMagnitude + h.unitMagnitude;
    this.halfCount = h.subBucketHalfCount;
  }

  /** Records one latency in µs. Rounded to whole µs; negative or NaN counts as 0, above 1 h as 1 h. */
  record(us: number): void {
    const v = us >= 0 ? (us < MAX_LATENCY_US ? Math.round(us) : MAX_LATENCY_US) : 0;
    this.count++;
    this.sumUs += v;
    if (v > this.maxUs) this.maxUs = v;
    let bucket = 31 - Math.clz32(v) - this.bucketShift;
    if (bucket < 0) bucket = 0;
    const h = this.h;
    h.incrementCountAtIndex((bucket + 1) * this.halfCount + (v >>> (bucket + this.unitMagnitude)) - this.halfCount);
    h.updateMinAndMax(v);
    h.incrementTotalCount();
  }

  /** The value at percentile `p` (0..100), in ms; 0 when empty. */
  percentile(p: number): number {
    return this.count === 0 ? 0 : ms(Math.min(this.h.getValueAtPercentile(p), this.maxUs));
  }

  percentiles(): LatencyPercentiles {
    if (this.count === 0) return { ...EMPTY };
    return {
      count: this.count,
      p50: this.percentile(50),
      p95: this.percentile(95),
      p99: this.percentile(99),
      max: ms(this.maxUs),
      mean: ms(this.sumUs / this.count),
    };
  }

  /** Adds `other`'s samples to this one. Both must have the same significantDigits. */
  merge(other: LatencyHistogram): void {
    if (other.count === 0) return;
    this.h.add(other.h);
    this.count += other.count;
    this.sumUs += other.sumUs;
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs;
  }

  reset(): void {
    if (this.count === 0) return;
    this.h.reset();
    this.count = 0;
    this.sumUs = 0;
    this.maxUs = 0;
  }

  /** Samples in `us`'s bucket, located by HdrHistogram's own index math (pins `record`'s). */
  countAtValue(us: number): number { return this.h.getCountAtIndex(this.h.countsArrayIndex(us)); }
}

import type { JsHistogram } from 'hdr-histogram-js';
import { buildLatencyHistogram as buildHistogram, encodeLatencyHistogram, MAX_LATENCY_US, percentileMs } from '../../../shared/src/stats/latency-codec';
import type { SignificantDigits } from '../../../shared/src/stats/latency-codec';

export { MAX_LATENCY_US } from '../../../shared/src/stats/latency-codec';
export type { SignificantDigits } from '../../../shared/src/stats/latency-codec';

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

/** The index math of a histogram with these digits, shared by every histogram (no allocation). */
interface Layout { bucketShift: number; unitMagnitude: number; halfCount: number }
const layouts = new Map<SignificantDigits, Layout>();

function layoutOf(digits: SignificantDigits): Layout {
  let l = layouts.get(digits);
  if (l === undefined) {
    const h = buildHistogram(digits);
    l = { unitMagnitude: h.unitMagnitude, bucketShift: h.subBucketHalfCountMagnitude + h.unitMagnitude, halfCount: h.subBucketHalfCount };
    h.destroy();
    layouts.set(digits, l);
  }
  return l;
}

/**
 * A latency histogram in µs on top of HdrHistogram (pure-JS build, 32-bit counts, range
 * 1 µs .. 1 h, no auto-resize).
 *
 * Memory: the HdrHistogram (its counts array: ~94 KB at 3 digits, ~14 KB at 2) is allocated on
 * the first sample, not before: an object that never sees traffic (an idle cluster or route)
 * costs a few dozen bytes. destroy() lets it go (and would free a WASM histogram's memory,
 * which the garbage collector cannot see); the registry calls it when it drops a removed
 * object's stats. The pure-JS build is used on purpose: its memory is an ordinary typed array,
 * while the WASM and packed variants hold memory until destroyed and cost more per record.
 *
 * Hot path: `record` computes the counts index itself with Math.clz32 (values are clamped
 * below 2^32) and calls the histogram's typed per-index methods. That is the same index
 * `countsArrayIndex` computes with log2/pow (a test pins the two together), at about 5 ns
 * instead of about 120 ns, and it allocates nothing (after the first sample).
 *
 * Precision: `significantDigits` (default 3) bounds the relative error of a percentile
 * (3 digits: 0.1%). Count, sum and max are also kept exactly, so `max` and `mean` are exact
 * and no percentile is reported above `max`. A single sub-bucket wraps after 2^31 samples;
 * that is days of traffic at one exact latency.
 */
export class LatencyHistogram {
  /** Samples recorded. */
  count = 0;
  /** Exact sum and maximum of the recorded values, in µs. */
  sumUs = 0;
  maxUs = 0;
  /** Allocated on the first sample (or merge of a non-empty histogram). */
  private h: JsHistogram | undefined = undefined;
  private readonly layout: Layout;

  constructor(readonly significantDigits: SignificantDigits = 3) {
    this.layout = layoutOf(significantDigits);
  }

  /** Whether the counts array is allocated (for tests and /memory figures). */
  get allocated(): boolean { return this.h !== undefined; }

  private counts(): JsHistogram { return (this.h ??= buildHistogram(this.significantDigits)); }

  /** Records one latency in µs. Rounded to whole µs; negative or NaN counts as 0, above 1 h as 1 h. */
  record(us: number): void {
    const v = us >= 0 ? (us < MAX_LATENCY_US ? Math.round(us) : MAX_LATENCY_US) : 0;
    this.count++;
    this.sumUs += v;
    if (v > this.maxUs) this.maxUs = v;
    const l = this.layout;
    let bucket = 31 - Math.clz32(v) - l.bucketShift;
    if (bucket < 0) bucket = 0;
    const h = this.h ?? this.counts();
    h.incrementCountAtIndex((bucket + 1) * l.halfCount + (v >>> (bucket + l.unitMagnitude)) - l.halfCount);
    h.updateMinAndMax(v);
    h.incrementTotalCount();
  }

  /** The value at percentile `p` (0..100), in ms; 0 when empty. */
  percentile(p: number): number {
    return this.count === 0 || this.h === undefined ? 0 : percentileMs(this.h, p, this.maxUs);
  }

  /**
   * The counts in HdrHistogram's V2 compressed encoding, base64 (shared/src/stats/latency-codec.ts):
   * what the route stats report carries, merged losslessly by the control plane. Off the hot path.
   */
  encode(): string { return encodeLatencyHistogram(this.counts()); }

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
    if (other.count === 0 || other.h === undefined) return;
    this.counts().add(other.h);
    this.count += other.count;
    this.sumUs += other.sumUs;
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs;
  }

  reset(): void {
    if (this.count === 0) return;
    this.h?.reset();
    this.count = 0;
    this.sumUs = 0;
    this.maxUs = 0;
  }

  /** Empties the histogram and releases its counts array (allocated again on the next sample). */
  destroy(): void {
    this.h?.destroy();
    this.h = undefined;
    this.count = 0;
    this.sumUs = 0;
    this.maxUs = 0;
  }

  /** Samples in `us`'s bucket, located by HdrHistogram's own index math (pins `record`'s). */
  countAtValue(us: number): number { return this.h === undefined ? 0 : this.h.getCountAtIndex(this.h.countsArrayIndex(us)); }
}

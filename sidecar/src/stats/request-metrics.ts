/**
 * The sidecar's Prometheus request metrics (skein_requests_total, skein_request_duration_milliseconds),
 * recorded on the request path into pre-resolved cells, exposed by stats/prometheus.ts at scrape time.
 *
 * Labels (all bounded, none taken from a request):
 *   direction            outbound | inbound (the listener)
 *   route                the route's name from config; '' for a request no route took (no_route,
 *                        malformed, draining), which also has destination_service ''
 *   destination_service  outbound: the cluster's service (`svc` of cluster `svc` or `svc/subset`);
 *                        inbound: the local service; '' when the request reached no cluster
 *   destination_version  outbound: the subset of a `svc/subset` cluster, else ''; inbound: the
 *                        local version (--version)
 *   response_code        the HTTP status, '0' when there was no response (reset, timeout)
 *   grpc_status          the gRPC status code as a number, '' for a non-gRPC answer
 *
 * Hot path: a RouteTarget is resolved once per listener x route x cluster (kept in the route's
 * stats bundle); the (response_code, grpc_status) cell is one Map lookup by a small integer,
 * made on the first request with that pair and reused after. record() is a binary search over
 * the bucket bounds and a few field writes; no allocation. An exemplar is three field writes
 * (the request's trace header string, the value, the time), only when the request has one;
 * the trace id is parsed out of it only when an OpenMetrics scrape reads it.
 */
import { headerTraceContext } from './access-log';

/**
 * Default bucket upper bounds (ms): 0.1, 0.25, 0.5, 0.75, 0.91 (1 ms / 1.1), then from 1 ms a geometric series of ratio
 * at most 1.1 (each bound 1.1 x the previous, rounded down to 3 significant digits) up to the
 * first bound >= 10 s. Prometheus's histogram_quantile interpolates linearly inside a bucket, so
 * its answer and the true quantile lie in the same bucket (a, b]: the relative error is at most
 * b/a - 1 = 10% whatever the distribution (test/sidecar/stats/request-metrics.test.ts checks it
 * over 1 ms .. 10 s). A ratio of 1.2 is within 10% only for smooth distributions (a constant
 * latency just above a bound reads ~20% high). 105 bounds, the last 10600.
 */
export const DEFAULT_BUCKETS_MS: readonly number[] = Object.freeze(defaultBuckets());

function defaultBuckets(): number[] {
  const out = [0.1, 0.25, 0.5, 0.75, 0.91, 1];
  while (out[out.length - 1]! < 10_000) out.push(floor3(out[out.length - 1]! * 1.1));
  return out;
}

/** Rounded down to 3 significant digits (and made exact in decimal). */
function floor3(v: number): number {
  const e = Math.floor(Math.log10(v)) - 2;
  const scale = 10 ** e;
  return Number((Math.floor(v / scale + 1e-9) * scale).toPrecision(3));
}

/** Parses --metrics-buckets: a comma-separated list of increasing positive finite ms values. */
export function parseBuckets(s: string): number[] | { error: string } {
  const parts = s.split(',').map((p) => p.trim());
  const out: number[] = [];
  for (const p of parts) {
    const v = Number(p);
    if (p === '' || !Number.isFinite(v) || v <= 0) return { error: `"${p}" is not a positive number of milliseconds` };
    if (out.length > 0 && v <= out[out.length - 1]!) return { error: `bounds must increase: ${v} follows ${out[out.length - 1]}` };
    out.push(v);
  }
  if (out.length === 0) return { error: 'give at least one bound' };
  if (out.length > 500) return { error: `at most 500 bounds, got ${out.length}` };
  return out;
}

export interface TargetLabels {
  readonly direction: string;
  readonly route: string;
  readonly destinationService: string;
  readonly destinationVersion: string;
}

/** One label set: a request histogram (+ requests_total, its count). */
export class MetricCell {
  count = 0;
  sumMs = 0;
  /** Per bound (not cumulative); the last slot counts values above every bound (+Inf). */
  readonly buckets: Float64Array;
  /** Per bucket, the last request with a trace header: that header's value, its latency, the time (epoch ms). */
  readonly exemplarTrace: (string | undefined)[];
  readonly exemplarValue: Float64Array;
  readonly exemplarAt: Float64Array;

  constructor(readonly target: RouteTarget, readonly responseCode: number, readonly grpcStatus: number, private readonly bounds: Float64Array) {
    this.buckets = new Float64Array(bounds.length + 1);
    this.exemplarTrace = new Array<string | undefined>(bounds.length + 1).fill(undefined);
    this.exemplarValue = new Float64Array(bounds.length + 1);
    this.exemplarAt = new Float64Array(bounds.length + 1);
  }

  /** One request of `ms`; `trace`: its trace header's value (headerTraceContext), if any; `now`: epoch ms. */
  record(ms: number, trace: string | undefined, now: number): void {
    const b = this.bounds;
    let lo = 0;
    let hi = b.length;
    // First bound >= ms (Prometheus buckets are `le`: upper bounds inclusive).
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (b[mid]! < ms) lo = mid + 1; else hi = mid; }
    this.buckets[lo]!++;
    this.count++;
    this.sumMs += ms;
    if (trace !== undefined) { this.exemplarTrace[lo] = trace; this.exemplarValue[lo] = ms; this.exemplarAt[lo] = now; }
  }
}

/** The cells of one listener x route x cluster, by (response code, grpc status). */
export class RouteTarget {
  private readonly byCode = new Map<number, MetricCell>();
  /** Cells in creation order, for the scrape. */
  readonly cells: MetricCell[] = [];

  constructor(readonly labels: TargetLabels, private readonly bounds: Float64Array) {}

  /**
   * Records one finished request: HTTP status (0: no response), gRPC status (-1: none). The
   * exemplar's trace: `traceId` (the sidecar's own sampled span's, when tracing made one), else
   * the request's trace header.
   */
  record(status: number, grpcStatus: number, ms: number, headers: Readonly<Record<string, unknown>> | undefined, now: number, traceId?: string): void {
    const key = status * 32 + grpcStatus + 1;
    let cell = this.byCode.get(key);
    if (cell === undefined) {
      cell = new MetricCell(this, status, grpcStatus, this.bounds);
      this.byCode.set(key, cell);
      this.cells.push(cell);
    }
    cell.record(ms, traceId ?? (headers === undefined ? undefined : headerTraceContext(headers)), now);
  }
}

/** Who the sidecar is: the inbound side's destination. */
export interface LocalWorkload { service: string; version: string }

/**
 * Every RouteTarget of the sidecar. Targets are looked up at config time or on a route's first
 * request (a string key, never per request after); forget() drops those of routes that left the
 * config, so the series of a removed route stop being listed.
 */
export class RequestMetrics {
  readonly bounds: Float64Array;
  private readonly targets = new Map<string, RouteTarget>();

  constructor(buckets: readonly number[] = DEFAULT_BUCKETS_MS, private readonly local: LocalWorkload = { service: '', version: '' }) {
    this.bounds = Float64Array.from(buckets);
  }

  /** The cells of `direction` x `route` x `cluster` (undefined: the request reached no cluster). */
  target(direction: string, route: string, cluster: string | undefined): RouteTarget {
    const key = `${direction}\u0000${route}\u0000${cluster ?? ''}`;
    let t = this.targets.get(key);
    if (t === undefined) {
      t = new RouteTarget({ direction, route, ...this.destinationOf(direction, cluster) }, this.bounds);
      this.targets.set(key, t);
    }
    return t;
  }

  /** Drops the targets of `direction`'s routes not in `live` (the unrouted target stays). */
  forget(direction: string, live: ReadonlySet<string>): void {
    for (const [k, t] of this.targets) if (t.labels.direction === direction && t.labels.route !== '' && !live.has(t.labels.route)) this.targets.delete(k);
  }

  all(): Iterable<RouteTarget> { return this.targets.values(); }

  private destinationOf(direction: string, cluster: string | undefined): { destinationService: string; destinationVersion: string } {
    if (cluster === undefined) return { destinationService: '', destinationVersion: '' };
    if (direction === 'inbound') return { destinationService: this.local.service, destinationVersion: this.local.version };
    const slash = cluster.indexOf('/');
    return slash < 0 ? { destinationService: cluster, destinationVersion: '' } : { destinationService: cluster.slice(0, slash), destinationVersion: cluster.slice(slash + 1) };
  }
}

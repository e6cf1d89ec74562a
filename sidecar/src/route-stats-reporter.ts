/**
 * Reports the outbound listener's per route × destination version stats to the control plane
 * (skein.stats.v1.RouteStats/Report, proto/skein/stats/v1/route_stats.proto) on one long-lived
 * gRPC stream, over the same mTLS channel settings as registration and xDS.
 *
 * Nothing is recorded twice: requests already land in each route's per-backend RollingWindow
 * (stat-bundles.ts, RouteStats.backend), one-second buckets with a count, a success count and a
 * histogram. A timer (never the request path) reads each second once it is complete
 * (RollingWindow.collect) into this interval's totals, and every `intervalMs` encodes their
 * histograms (HdrHistogram V2 compressed, base64) and writes one report. The timer reads at least
 * every half window, so a report interval longer than the window loses nothing.
 *
 * The stream reconnects with jittered backoff; while it is down, totals keep adding up and go out
 * with the next report. Nothing here can fail or slow a request.
 */
import * as grpc from '@grpc/grpc-js';
import type { Clock, TimerHandle } from '../../shared/src/clock';
import type { Logger } from '../../shared/src/log';
import { ROUTE_STATS_SERVICE, skeinService } from '../../shared/src/grpc/skein-services';
import type { WireReportSummary, WireRouteStatsReport, WireRouteVersionStats } from '../../shared/src/grpc/skein-services';
import { Backoff } from './xds/backoff';
import { LatencyHistogram } from './stats/latency-histogram';
import type { BackendWindow, IntervalTotals } from './stats/rolling-window';

/** Default --stats-report-interval (ms). */
export const DEFAULT_STATS_REPORT_INTERVAL_MS = 5000;

export interface RouteStatsReporterOptions {
  /** host:port of the control plane's TLS port. */
  server: string;
  credentials: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  node: string;
  intervalMs: number;
  /** The windows to read (the outbound connection manager's), at each tick. */
  windows: () => Iterable<BackendWindow>;
  clock: Clock;
  log: Logger;
  /** Reconnect backoff (default 500 ms doubling to 30 s, full jitter). */
  backoff?: Backoff;
}

type ReportClient = grpc.Client & {
  Report(md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: WireReportSummary) => void): grpc.ClientWritableStream<WireRouteStatsReport>;
};

interface Totals extends IntervalTotals { readonly route: string; readonly cluster: string }

export class RouteStatsReporter {
  private readonly client: ReportClient;
  private readonly backoff: Backoff;
  private stream: grpc.ClientWritableStream<WireRouteStatsReport> | undefined;
  /** The control plane answered the open stream's headers: reports written now reach it. */
  private ready = false;
  private timer: TimerHandle | undefined;
  private reconnectTimer: TimerHandle | undefined;
  private stopped = false;
  /** Seconds before this one have been read; the open interval started at `intervalStartSec`. */
  private readSec: number;
  private intervalStartSec: number;
  private lastSendAt: number;
  /** This interval's totals by route and cluster. */
  private totals = new Map<string, Totals>();
  /** Reports written, and failed streams (for tests and logs). */
  sent = 0;
  failures = 0;

  constructor(private readonly o: RouteStatsReporterOptions) {
    const Ctor = skeinService(ROUTE_STATS_SERVICE);
    this.client = new Ctor(o.server, o.credentials, { ...o.channelOptions }) as unknown as ReportClient;
    this.backoff = o.backoff ?? new Backoff();
    this.readSec = this.intervalStartSec = Math.floor(o.clock.now() / 1000);
    this.lastSendAt = o.clock.now();
  }

  start(): void {
    this.open();
    this.schedule();
  }

  /** Stops reporting; a last report of the complete seconds goes out first when the stream is up. */
  stop(): void {
    if (this.stopped) return;
    this.read();
    this.send();
    this.stopped = true;
    this.timer?.cancel();
    this.reconnectTimer?.cancel();
    this.stream?.end();
    this.stream = undefined;
    this.client.close();
  }

  private schedule(): void {
    if (this.stopped) return;
    // At least every half window (5 s for the default 10 s), so no second leaves the ring unread.
    const tick = Math.max(200, Math.min(this.o.intervalMs, this.halfWindowMs()));
    this.timer = this.o.clock.setTimer(tick, () => this.onTick());
  }

  private halfWindowMs(): number {
    let min = Infinity;
    for (const [, , w] of this.o.windows()) min = Math.min(min, w.seconds);
    return min === Infinity ? 5000 : Math.max(1, Math.floor(min / 2)) * 1000;
  }

  private onTick(): void {
    try {
      this.read();
      if (this.o.clock.now() - this.lastSendAt >= this.o.intervalMs - 100) this.send();
    } catch (e) {
      this.o.log.warn({ err: (e as Error).message }, 'route stats: report failed');
    }
    this.schedule();
  }

  /** Adds every complete second not read yet to this interval's totals. */
  private read(): void {
    const nowSec = Math.floor(this.o.clock.now() / 1000);
    if (nowSec <= this.readSec) return;
    let lost = 0;
    for (const [route, cluster, w] of this.o.windows()) {
      const key = `${route}\u0000${cluster}`;
      let t = this.totals.get(key);
      if (t === undefined) {
        t = { route, cluster, count: 0, success: 0, latency: new LatencyHistogram(w.significantDigits) };
        this.totals.set(key, t);
      }
      lost = Math.max(lost, w.collect(this.readSec, nowSec, t, nowSec));
    }
    if (lost > 0) this.o.log.warn({ seconds: lost }, 'route stats: the report timer ran late; seconds older than the stats window were not reported');
    this.readSec = nowSec;
  }

  /** Writes the interval's report when the stream is up; otherwise the totals wait for the next. */
  private send(): void {
    const s = this.stream;
    if (s === undefined || !this.ready || this.readSec <= this.intervalStartSec) return;
    const stats: WireRouteVersionStats[] = [];
    for (const t of this.totals.values()) {
      if (t.count === 0) continue;
      stats.push({
        route: t.route, cluster: t.cluster, requests: String(t.count), successes: String(t.success),
        latency_histogram: t.latency.encode(), latency_sum_us: String(t.latency.sumUs), latency_max_us: String(t.latency.maxUs),
      });
      t.latency.destroy();
    }
    s.write({ node: this.o.node, interval_start_ms: String(this.intervalStartSec * 1000), interval_end_ms: String(this.readSec * 1000), stats });
    this.sent++;
    this.totals = new Map();
    this.intervalStartSec = this.readSec;
    this.lastSendAt = this.o.clock.now();
  }

  private open(): void {
    if (this.stopped) return;
    let ended = false;
    const stream = this.client.Report(new grpc.Metadata(), {}, (err) => {
      if (ended) return;
      ended = true;
      if (this.stream === stream) { this.stream = undefined; this.ready = false; }
      if (this.stopped) return;
      this.failures++;
      const denied = err !== null && (err.code === grpc.status.PERMISSION_DENIED || err.code === grpc.status.UNAUTHENTICATED || err.code === grpc.status.INVALID_ARGUMENT);
      const delay = this.backoff.next();
      const fields = { err: err?.details ?? 'stream ended', server: this.o.server, retryInMs: Math.round(delay) };
      if (denied) this.o.log.error(fields, 'route stats: the control plane refused the report stream; retrying');
      else this.o.log.warn(fields, 'route stats: report stream ended; reconnecting');
      this.reconnectTimer = this.o.clock.setTimer(delay, () => this.open());
    });
    stream.on('error', () => undefined);
    this.stream = stream;
    this.ready = false;
    // The control plane sends its headers when it accepts the stream (the caller's certificate
    // checked): reports go out from then on, and the backoff starts over.
    stream.once('metadata', () => {
      if (this.stream !== stream) return;
      this.ready = true;
      this.backoff.reset();
    });
  }
}

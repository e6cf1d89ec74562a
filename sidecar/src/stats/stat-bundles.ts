/**
 * Per-object bundles of stats, built once per listener / route / cluster when config is
 * applied, so the request path holds one object and touches plain fields. Building a bundle
 * twice for the same name yields the same underlying stats (the registry dedupes by name).
 * Stat names follow the scheme in stats.ts.
 */
import type { Clock } from '../../../shared/src/clock';
import { GRPC_STATUS_NAMES, grpcStatusIndex, requestSucceeded } from './grpc-status';
import type { Counter, Gauge, LatencyHistogram, RollingWindow, Stats } from './stats';

/** Why the proxy answered a routed request itself. One counter each, created up front. */
export const LOCAL_REPLY_REASONS = [
  'no_healthy_upstream',
  'cluster_not_found',
  'upstream_overflow',
  'upstream_timeout',
  'deadline_exceeded',
  'upstream_per_try_timeout',
  'upstream_reset',
  'upstream_connect_failure',
  'app_unavailable',
  'circuit_breaker_max_connections',
  'circuit_breaker_max_pending_requests',
  'circuit_breaker_max_requests',
  'circuit_breaker_max_retries',
  'retry_budget_exhausted',
  'proxy_draining',
  'stream_idle_timeout',
  'fault_abort',
  'rate_limited',
  'unauthorized',
  'internal',
] as const;
export type LocalReplyReason = (typeof LOCAL_REPLY_REASONS)[number];

/**
 * Request counters shared by routes and clusters. Success follows grpc-status.ts: a gRPC answer
 * by its grpc-status (server failures: UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
 * UNAVAILABLE, DATA_LOSS), anything else by its HTTP status (100..499); status 0 stands for "no
 * response" (reset, local failure) and counts as an error. The HTTP classes count the HTTP status;
 * a gRPC answer also counts `<rq>grpc_<CODE>` (e.g. `route.r.rq_grpc_UNAVAILABLE`).
 */
abstract class RequestStats {
  readonly rqTotal: Counter;
  readonly rqSuccess: Counter;
  readonly rqError: Counter;
  readonly rq1xx: Counter;
  readonly rq2xx: Counter;
  readonly rq3xx: Counter;
  readonly rq4xx: Counter;
  readonly rq5xx: Counter;
  readonly rqRetry: Counter;
  readonly rqTimeout: Counter;
  /** Request latency, µs in. */
  readonly rqTime: LatencyHistogram;
  /** Rate, success rate and latency over the last few seconds. */
  readonly window: RollingWindow;
  protected readonly clock: Clock;
  /**
   * `<rq>grpc_<CODE>` by gRPC status code: a fixed array, each counter resolved on the first
   * answer with its code (so HTTP-only routes and clusters list none), then an index per request.
   */
  private readonly grpc: (Counter | undefined)[] = new Array(GRPC_STATUS_NAMES.length).fill(undefined);
  private readonly registry: Stats;
  private readonly prefix: string;

  /** Stats are named `<scope>.<rq><stat>`, e.g. `cluster.x.` + `upstream_rq_` + `total`. */
  constructor(stats: Stats, scope: string, rq: string) {
    const prefix = `${scope}.${rq}`;
    this.prefix = prefix;
    this.registry = stats;
    this.clock = stats.clock;
    this.rqTotal = stats.counter(`${prefix}total`);
    this.rqSuccess = stats.counter(`${prefix}success`);
    this.rqError = stats.counter(`${prefix}error`);
    this.rq1xx = stats.counter(`${prefix}1xx`);
    this.rq2xx = stats.counter(`${prefix}2xx`);
    this.rq3xx = stats.counter(`${prefix}3xx`);
    this.rq4xx = stats.counter(`${prefix}4xx`);
    this.rq5xx = stats.counter(`${prefix}5xx`);
    this.rqRetry = stats.counter(`${prefix}retry`);
    this.rqTimeout = stats.counter(`${prefix}timeout`);
    this.rqTime = stats.histogram(`${prefix}time`);
    this.window = stats.window(`${scope}.window`);
  }

  /** Counts one finished request (`grpcStatus` -1: none); returns whether it was a success. */
  protected count(status: number, latencyUs: number, now: number, grpcStatus: number): boolean {
    this.rqTotal.value++;
    if (status >= 500) this.rq5xx.value++;
    else if (status >= 400) this.rq4xx.value++;
    else if (status >= 300) this.rq3xx.value++;
    else if (status >= 200) this.rq2xx.value++;
    else if (status >= 100) this.rq1xx.value++;
    if (grpcStatus >= 0) {
      const i = grpcStatusIndex(grpcStatus);
      (this.grpc[i] ??= this.registry.counter(`${this.prefix}grpc_${GRPC_STATUS_NAMES[i]}`)).value++;
    }
    const ok = requestSucceeded(status, grpcStatus);
    if (ok) this.rqSuccess.value++;
    else this.rqError.value++;
    this.rqTime.record(latencyUs);
    this.window.record(ok, latencyUs, now);
    return ok;
  }
}

/** `route.<name>.*`: what the router records for each request a route matched. */
export class RouteStats extends RequestStats {
  readonly localReply: Readonly<Record<LocalReplyReason, Counter>>;
  /** Upstream attempts made for this route's requests (first tries and retries). */
  readonly rqAttempts: Counter;

  constructor(private readonly stats: Stats, readonly name: string) {
    super(stats, `route.${name}`, 'rq_');
    this.rqAttempts = stats.counter(`route.${name}.rq_attempts`);
    const lr = {} as Record<LocalReplyReason, Counter>;
    for (const r of LOCAL_REPLY_REASONS) lr[r] = stats.counter(`route.${name}.local_reply.${r}`);
    this.localReply = lr;
  }

  /**
   * The window for one backend (weighted cluster, i.e. version) of this route:
   * `route.<name>.window{backend=<cluster>}`. Look it up at config time, with the route.
   */
  backend(cluster: string): RollingWindow {
    return this.stats.window(`route.${this.name}.window`, { backend: cluster });
  }

  /**
   * One finished request: its HTTP status (0: no response), latency, and grpc-status (-1: none,
   * or not a gRPC answer); `backend` from backend().
   */
  record(status: number, latencyUs: number, backend?: RollingWindow, now: number = this.clock.now(), grpcStatus = -1): void {
    const ok = this.count(status, latencyUs, now, grpcStatus);
    if (backend !== undefined) backend.record(ok, latencyUs, now);
  }
}

/** `cluster.<name>.upstream_*`: one upstream attempt each (a retried request counts twice). */
export class ClusterStats extends RequestStats {
  readonly cxTotal: Counter;
  readonly cxActive: Gauge;
  readonly cxConnectFail: Counter;
  readonly rqActive: Gauge;
  /** Refused by a circuit breaker (ResourceManager): max_pending_requests, max_requests, max_connections. */
  readonly rqPendingOverflow: Counter;
  readonly rqOverflow: Counter;
  readonly cxOverflow: Counter;
  /** Retries that ended in a success; retries refused by the budget or max_retries; per-try timeouts. */
  readonly rqRetrySuccess: Counter;
  readonly rqRetryOverflow: Counter;
  readonly rqRetryLimitExceeded: Counter;
  readonly rqPerTryTimeout: Counter;

  constructor(stats: Stats, readonly name: string) {
    super(stats, `cluster.${name}`, 'upstream_rq_');
    const p = `cluster.${name}.upstream_`;
    this.cxTotal = stats.counter(`${p}cx_total`);
    this.cxActive = stats.gauge(`${p}cx_active`);
    this.cxConnectFail = stats.counter(`${p}cx_connect_fail`);
    this.rqActive = stats.gauge(`${p}rq_active`);
    this.rqPendingOverflow = stats.counter(`${p}rq_pending_overflow`);
    this.rqOverflow = stats.counter(`${p}rq_overflow`);
    this.cxOverflow = stats.counter(`${p}cx_overflow`);
    this.rqRetrySuccess = stats.counter(`${p}rq_retry_success`);
    this.rqRetryOverflow = stats.counter(`${p}rq_retry_overflow`);
    this.rqRetryLimitExceeded = stats.counter(`${p}rq_retry_limit_exceeded`);
    this.rqPerTryTimeout = stats.counter(`${p}rq_per_try_timeout`);
  }

  /** One finished attempt: HTTP status (0: no response), latency, grpc-status (-1: none). */
  record(status: number, latencyUs: number, now: number = this.clock.now(), grpcStatus = -1): void {
    this.count(status, latencyUs, now, grpcStatus);
  }
}

/** `listener.<name>.*`. */
export class ListenerStats {
  readonly cxTotal: Counter;
  readonly cxActive: Gauge;
  readonly rqTotal: Counter;
  /**
   * Forwarded requests not yet finished (Envoy's downstream_rq_active): from routing to the end
   * of the response, through fault delays, retry backoffs and every attempt. The drain waits on it.
   */
  readonly rqActive: Gauge;
  /** Requests that matched no virtual host or route (answered 404 before any RouteStats). */
  readonly noRoute: Counter;
  /**
   * Requests refused as malformed before routing: an HTTP/2 header field with a byte RFC 9113
   * 8.2.1 forbids (RST_STREAM PROTOCOL_ERROR), an HTTP/1.1 request with two Host headers or a
   * head Node's parser rejects (400 bad_request).
   */
  readonly rqMalformed: Counter;
  /** Requests the client reset (HTTP/2 RST_STREAM) or abandoned (closed its connection) before their response ended. */
  readonly rqRxReset: Counter;
  /** Of those, requests reset before any upstream request was started for them: never forwarded. */
  readonly rqRxResetUnforwarded: Counter;
  /** HTTP/2 connections closed with GOAWAY ENHANCE_YOUR_CALM for too many premature resets (rapid reset, CVE-2023-44487). */
  readonly cxRapidReset: Counter;
  /**
   * HTTP/2 connections closed with GOAWAY PROTOCOL_ERROR for a connection error of the peer's
   * (including a HEADERS beyond SETTINGS_MAX_CONCURRENT_STREAMS).
   */
  readonly cxProtocolError: Counter;
  /** Requests ended by the stream idle timeout. */
  readonly rqIdleTimeout: Counter;
  /** HTTP/1.1 connections closed (408) because a request head was not complete within the request headers timeout. */
  readonly rqHeaderTimeout: Counter;
  /** HTTP/1.1 keep-alive connections closed by the idle timeout. */
  readonly cxIdleTimeout: Counter;

  constructor(stats: Stats, readonly name: string) {
    const p = `listener.${name}.`;
    this.cxTotal = stats.counter(`${p}downstream_cx_total`);
    this.cxActive = stats.gauge(`${p}downstream_cx_active`);
    this.rqTotal = stats.counter(`${p}downstream_rq_total`);
    this.rqActive = stats.gauge(`${p}downstream_rq_active`);
    this.noRoute = stats.counter(`${p}no_route`);
    this.rqMalformed = stats.counter(`${p}downstream_rq_malformed`);
    this.rqRxReset = stats.counter(`${p}downstream_rq_rx_reset`);
    this.rqRxResetUnforwarded = stats.counter(`${p}downstream_rq_rx_reset_unforwarded`);
    this.cxRapidReset = stats.counter(`${p}downstream_cx_rapid_reset`);
    this.cxProtocolError = stats.counter(`${p}downstream_cx_protocol_error`);
    this.rqIdleTimeout = stats.counter(`${p}downstream_rq_idle_timeout`);
    this.rqHeaderTimeout = stats.counter(`${p}downstream_rq_header_timeout`);
    this.cxIdleTimeout = stats.counter(`${p}downstream_cx_idle_timeout`);
  }
}

/**
 * Per-object bundles of stats, built once per listener / route / cluster when config is
 * applied, so the request path holds one object and touches plain fields. Building a bundle
 * twice for the same name yields the same underlying stats (the registry dedupes by name).
 * Stat names follow the scheme in stats.ts. Route and cluster bundles live in their object's
 * scope (`route.<name>`, `cluster.<name>`), which the registry drops when the object leaves the
 * config; their keys are the constant strings below, so a bundle allocates no names.
 */
import type { Clock } from '../../../shared/src/clock';
import { GRPC_STATUS_NAMES, grpcStatusIndex, requestSucceeded } from './grpc-status';
import type { Counter, Gauge, LatencyHistogram, RollingWindow, StatScope, Stats } from './stats';

/** The keys of RequestStats under one prefix (`rq_` or `upstream_rq_`), built once per prefix. */
interface RequestKeys {
  total: string; success: string; error: string; c1xx: string; c2xx: string; c3xx: string; c4xx: string; c5xx: string;
  retry: string; timeout: string; time: string; grpc: readonly string[];
}
const requestKeysByPrefix = new Map<string, RequestKeys>();
function requestKeys(rq: string): RequestKeys {
  let k = requestKeysByPrefix.get(rq);
  if (k === undefined) {
    k = {
      total: `${rq}total`, success: `${rq}success`, error: `${rq}error`, c1xx: `${rq}1xx`, c2xx: `${rq}2xx`, c3xx: `${rq}3xx`,
      c4xx: `${rq}4xx`, c5xx: `${rq}5xx`, retry: `${rq}retry`, timeout: `${rq}timeout`, time: `${rq}time`,
      grpc: GRPC_STATUS_NAMES.map((n) => `${rq}grpc_${n}`),
    };
    requestKeysByPrefix.set(rq, k);
  }
  return k;
}

const LOCAL_REPLY_KEYS = new Map<string, string>();
function localReplyKey(reason: string): string {
  let k = LOCAL_REPLY_KEYS.get(reason);
  if (k === undefined) { k = `local_reply.${reason}`; LOCAL_REPLY_KEYS.set(reason, k); }
  return k;
}

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
  /** The object's scope (`route.<name>`, `cluster.<name>`). */
  protected readonly scope: StatScope;
  private readonly keys: RequestKeys;

  /** Stats are named `<scope>.<rq><stat>`, e.g. `cluster.x` + `.` + `upstream_rq_` + `total`. */
  constructor(stats: Stats, scope: string, rq: string) {
    const s = stats.scope(scope);
    const k = requestKeys(rq);
    this.scope = s;
    this.keys = k;
    this.clock = stats.clock;
    this.rqTotal = s.counter(k.total);
    this.rqSuccess = s.counter(k.success);
    this.rqError = s.counter(k.error);
    this.rq1xx = s.counter(k.c1xx);
    this.rq2xx = s.counter(k.c2xx);
    this.rq3xx = s.counter(k.c3xx);
    this.rq4xx = s.counter(k.c4xx);
    this.rq5xx = s.counter(k.c5xx);
    this.rqRetry = s.counter(k.retry);
    this.rqTimeout = s.counter(k.timeout);
    this.rqTime = s.histogram(k.time);
    this.window = s.window('window');
  }

  /** The registry dropped this bundle's stats (its object left the config): build a new bundle to be listed again. */
  get released(): boolean { return this.scope.released; }

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
      (this.grpc[i] ??= this.scope.counter(this.keys.grpc[i]!)).value++;
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
  /** Why the proxy answered a routed request itself: one counter per reason, created up front. */
  readonly localReply: Readonly<Record<string, Counter>>;
  /** Upstream attempts made for this route's requests (first tries and retries). */
  readonly rqAttempts: Counter;

  /** `localReplyReasons`: every reason (http/local-reply.ts LOCAL_REPLY_REASONS, the one list). */
  constructor(stats: Stats, readonly name: string, localReplyReasons: readonly string[] = []) {
    super(stats, `route.${name}`, 'rq_');
    this.rqAttempts = this.scope.counter('rq_attempts');
    const lr: Record<string, Counter> = Object.create(null) as Record<string, Counter>;
    for (const r of localReplyReasons) lr[r] = this.scope.counter(localReplyKey(r));
    this.localReply = lr;
  }

  /**
   * The window for one backend (weighted cluster, i.e. version) of this route:
   * `route.<name>.window{backend=<cluster>}`. Look it up at config time, with the route.
   */
  backend(cluster: string): RollingWindow {
    return this.scope.window('window', { backend: cluster });
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
    const s = this.scope;
    this.cxTotal = s.counter('upstream_cx_total');
    this.cxActive = s.gauge('upstream_cx_active');
    this.cxConnectFail = s.counter('upstream_cx_connect_fail');
    this.rqActive = s.gauge('upstream_rq_active');
    this.rqPendingOverflow = s.counter('upstream_rq_pending_overflow');
    this.rqOverflow = s.counter('upstream_rq_overflow');
    this.cxOverflow = s.counter('upstream_cx_overflow');
    this.rqRetrySuccess = s.counter('upstream_rq_retry_success');
    this.rqRetryOverflow = s.counter('upstream_rq_retry_overflow');
    this.rqRetryLimitExceeded = s.counter('upstream_rq_retry_limit_exceeded');
    this.rqPerTryTimeout = s.counter('upstream_rq_per_try_timeout');
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

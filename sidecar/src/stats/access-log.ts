/**
 * Optional JSON access logs (pino), one line per request a listener finished: off by default
 * (--access-log), sampled when on (--access-log-sample). Each line: time, listener, trace id (W3C
 * traceparent, else B3), request id, method, route, cluster, upstream host, status, gRPC status,
 * duration, attempts, local reply reason, and the caller's SPIFFE ID (inbound over mTLS).
 * Header values are never logged (beyond the trace and request ids), so no credential can be.
 * When off, a request pays one field read.
 */
import pino from 'pino';

/** What a finished request tells the access log (ActiveStream implements it). */
export interface LoggedRequest {
  readonly method: string;
  readonly route: { readonly name: string };
  readonly requestHeaders: Readonly<Record<string, unknown>>;
  readonly downstreamHeaders: Readonly<Record<string, string | string[] | undefined>>;
  readonly attempts: number;
  readonly upstreamHost: string | undefined;
  readonly replyReason: string | undefined;
  readonly downstreamPeer: { readonly spiffeId: string } | undefined;
}

export interface AccessLogSettings {
  /** A file path, or '-' for standard output. */
  destination: string;
  /** The share of requests logged, 0 < ratio <= 1. */
  sampleRatio: number;
}

export class AccessLog {
  private readonly out: pino.Logger;

  constructor(private readonly settings: AccessLogSettings, private readonly random: () => number = Math.random) {
    const dest = settings.destination === '-' ? pino.destination({ fd: 1, sync: false }) : pino.destination({ dest: settings.destination, sync: false, mkdir: true });
    this.out = pino({ base: undefined, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'msg' }, dest);
  }

  /**
   * Logs `r` (if sampled) as it ends with `status` (0: no response) and `grpcStatus` (-1: none).
   * `durationUs` is the latency the route's stats recorded (the same measurement, so a line's
   * durationMs is the sample the route stats report carries), rounded to whole µs.
   */
  record(listener: string, r: LoggedRequest, cluster: string | undefined, status: number, grpcStatus: number, durationUs: number): void {
    if (this.settings.sampleRatio < 1 && this.random() >= this.settings.sampleRatio) return;
    const line: Record<string, unknown> = {
      listener, traceId: traceIdOf(r.downstreamHeaders), requestId: r.requestHeaders['x-request-id'],
      method: r.method, route: r.route.name, status, durationMs: Math.round(durationUs) / 1000, attempts: r.attempts,
    };
    if (cluster !== undefined) line['cluster'] = cluster;
    if (r.upstreamHost !== undefined) line['upstreamHost'] = r.upstreamHost;
    if (grpcStatus >= 0) line['grpcStatus'] = grpcStatus;
    if (r.replyReason !== undefined) line['reason'] = r.replyReason;
    if (r.downstreamPeer !== undefined) line['peer'] = r.downstreamPeer.spiffeId;
    this.out.info(line);
  }

  flush(): void { this.out.flush(); }
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/;
const B3_TRACE_ID = /^([0-9a-f]{16}|[0-9a-f]{32})$/;
const B3_SINGLE = /^([0-9a-f]{16}|[0-9a-f]{32})-/;
const ZERO_TRACE = '00000000000000000000000000000000';

/** The trace id of a request's context: W3C traceparent, else B3 (multi, then single header). */
export function traceIdOf(h: Readonly<Record<string, string | string[] | undefined>>): string | undefined {
  const tp = h['traceparent'];
  if (typeof tp === 'string') {
    const m = TRACEPARENT.exec(tp);
    if (m !== null && m[1] !== ZERO_TRACE) return m[1];
  }
  const b3 = h['x-b3-traceid'];
  if (typeof b3 === 'string' && B3_TRACE_ID.test(b3)) return b3;
  const single = h['b3'];
  if (typeof single === 'string') {
    const m = B3_SINGLE.exec(single);
    if (m !== null) return m[1];
  }
  return undefined;
}

/**
 * The raw value of the first trace header a request has (traceparent, x-b3-traceid, b3), with no
 * parsing: what the metrics keep per histogram bucket (a field write), for traceIdOfContext to
 * parse only when an OpenMetrics scrape asks for exemplars.
 */
export function headerTraceContext(h: Readonly<Record<string, unknown>>): string | undefined {
  const v = h['traceparent'] ?? h['x-b3-traceid'] ?? h['b3'];
  return typeof v === 'string' ? v : undefined;
}

/** The trace id in a headerTraceContext value (any of the three forms), if it is well formed. */
export function traceIdOfContext(v: string): string | undefined {
  const tp = TRACEPARENT.exec(v);
  if (tp !== null) return tp[1] === ZERO_TRACE ? undefined : tp[1];
  if (B3_TRACE_ID.test(v)) return v;
  const single = B3_SINGLE.exec(v);
  return single === null ? undefined : single[1];
}

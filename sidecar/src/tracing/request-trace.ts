/**
 * One sampled request's spans: the request's span (SERVER on the inbound listener, CLIENT on the
 * outbound one) and, when the request is retried, one child span per attempt (CLIENT), whose
 * context is what goes upstream; a retry's reason is an event on the attempt it starts. A route
 * with a retry policy gets attempt spans from its first attempt; a route without one is retried
 * only when nothing reached the upstream (a failed connect, a refused stream), so its first
 * attempt's span is made when the second starts, from the times noted.
 *
 * Unsampled requests have no RequestTrace: they cost the sampling decision and, for a new trace,
 * a traceparent with the sampled flag off (tracer.ts).
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Attributes, HrTime, Span, Tracer } from '@opentelemetry/api';
import { traceparent } from './trace-context';

/** What the request trace reads of a request when it ends (ActiveStream implements it). */
export interface EndedRequest {
  readonly attempts: number;
  readonly upstreamHost: string | undefined;
  readonly replyReason: string | undefined;
  readonly downstreamPeer: { readonly spiffeId: string } | undefined;
}

type MutableHeaders = Record<string, string | string[] | number | undefined>;

/** The gRPC codes a server span reports as errors (OTel semconv for RPC). */
const SERVER_GRPC_ERRORS = new Set([2, 4, 12, 13, 14, 15]);

export class RequestTrace {
  private attemptSpan: Span | undefined;
  /** Whether every attempt gets its own span (a route with a retry policy, or after a first retry). */
  private perAttempt: boolean;
  private firstStart: HrTime | undefined;
  private firstEnd: HrTime | undefined;
  private firstHost = '';
  private firstStatus = 0;
  /** Why the next attempt is made (set when a retry is decided). */
  retryReason: string | undefined = undefined;

  constructor(
    private readonly tracer: Tracer,
    readonly span: Span,
    readonly kind: SpanKind,
    private readonly name: string,
    retries: boolean,
    private readonly version: string | undefined,
  ) {
    this.perAttempt = retries;
  }

  /** The traceparent of `span` (what the upstream gets). */
  static header(span: Span): string {
    const sc = span.spanContext();
    return traceparent(sc.traceId, sc.spanId, true);
  }

  /** Attempt `n` starts to `host`: its span (when attempts have spans) and the upstream's traceparent. */
  onAttempt(n: number, host: string, headers: MutableHeaders): void {
    if (!this.perAttempt) {
      if (n === 1) { this.firstStart = hrNow(); this.firstHost = host; return; }
      // A hidden retry (connect failure, refused stream): attempt 1 gets its span now.
      this.perAttempt = true;
      if (this.firstStart !== undefined) {
        const first = this.startAttempt(1, this.firstHost, this.firstStart);
        endAttemptSpan(first, this.firstStatus, this.firstEnd ?? hrNow());
      }
    }
    const s = this.startAttempt(n, host, undefined);
    if (this.retryReason !== undefined) { s.addEvent('retry', { 'skein.retry.reason': this.retryReason }); this.retryReason = undefined; }
    this.attemptSpan = s;
    headers['traceparent'] = RequestTrace.header(s);
  }

  /** The current attempt ended with HTTP `status` (0: no response). */
  onAttemptEnd(status: number): void {
    const s = this.attemptSpan;
    if (s === undefined) {
      if (!this.perAttempt && this.firstEnd === undefined) { this.firstEnd = hrNow(); this.firstStatus = status; }
      return;
    }
    this.attemptSpan = undefined;
    endAttemptSpan(s, status, undefined);
  }

  private startAttempt(n: number, host: string, startTime: HrTime | undefined): Span {
    const attrs: Attributes = { 'skein.attempt': n, 'skein.upstream_host': host, 'network.peer.address': hostOnly(host) };
    if (n > 1) attrs['http.request.resend_count'] = n - 1;
    return this.tracer.startSpan(this.name, { kind: SpanKind.CLIENT, attributes: attrs, ...(startTime === undefined ? {} : { startTime }) }, trace.setSpan(ROOT_CONTEXT, this.span));
  }

  /** The request ended: HTTP `status` (0: none), gRPC status (-1: none), the cluster it went to. */
  end(r: EndedRequest, status: number, grpcStatus: number, cluster: string | undefined): void {
    const a = this.attemptSpan;
    if (a !== undefined) { this.attemptSpan = undefined; endAttemptSpan(a, status, undefined); }
    const s = this.span;
    if (status > 0) s.setAttribute('http.response.status_code', status);
    if (grpcStatus >= 0) s.setAttribute('rpc.grpc.status_code', grpcStatus);
    if (cluster !== undefined) {
      s.setAttribute('skein.cluster', cluster);
      const slash = cluster.indexOf('/');
      if (slash >= 0) s.setAttribute('skein.version', cluster.slice(slash + 1));
    }
    if (this.version !== undefined) s.setAttribute('skein.version', this.version);
    if (r.upstreamHost !== undefined) {
      s.setAttribute('skein.upstream_host', r.upstreamHost);
      if (this.kind === SpanKind.CLIENT) s.setAttribute('network.peer.address', hostOnly(r.upstreamHost));
    }
    s.setAttribute('skein.attempts', r.attempts);
    if (r.replyReason !== undefined) s.setAttribute('skein.reason', r.replyReason);
    if (r.downstreamPeer !== undefined) s.setAttribute('skein.peer_identity', r.downstreamPeer.spiffeId);
    const error = status === 0 || (this.kind === SpanKind.SERVER
      ? status >= 500 || SERVER_GRPC_ERRORS.has(grpcStatus)
      : status >= 400 || grpcStatus > 0);
    if (error) s.setStatus({ code: SpanStatusCode.ERROR, ...(r.replyReason !== undefined ? { message: r.replyReason } : {}) });
    s.end();
  }
}

function endAttemptSpan(s: Span, status: number, at: HrTime | undefined): void {
  if (status > 0) s.setAttribute('http.response.status_code', status);
  if (status === 0 || status >= 400) s.setStatus({ code: SpanStatusCode.ERROR });
  s.end(at);
}

function hrNow(): HrTime {
  const ms = performance.timeOrigin + performance.now();
  const s = Math.floor(ms / 1000);
  return [s, Math.min(999_999_999, Math.floor((ms - s * 1000) * 1e6))];
}

/** `10.0.0.1:8080` -> `10.0.0.1`, `[::1]:80` -> `::1`. */
function hostOnly(hostPort: string): string {
  const i = hostPort.lastIndexOf(':');
  const h = i > 0 ? hostPort.slice(0, i) : hostPort;
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

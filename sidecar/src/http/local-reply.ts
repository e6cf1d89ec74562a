import type * as http from 'node:http';
import type * as http2 from 'node:http2';
import type { MeshError } from '../../../shared/src/errors';
import { BreakerOpenError } from '../upstream/resources';

/**
 * Replies the proxy makes itself, each with a stable reason. Mapped once, here, to an HTTP
 * status or (for gRPC requests) a gRPC status carried in a trailers-only response, plus
 * `x-skein-reason` so a caller can tell the proxy's answer from the upstream's. Whether a request
 * is gRPC is route/grpc-content-type.ts's call (grpc-web is not).
 */
export interface LocalReply { readonly reason: string; readonly http: number; readonly grpc: number }

export const LOCAL_REPLIES = {
  noRoute: { reason: 'no_route', http: 404, grpc: 12 /* UNIMPLEMENTED */ },
  clusterNotFound: { reason: 'cluster_not_found', http: 503, grpc: 14 /* UNAVAILABLE */ },
  noHealthyUpstream: { reason: 'no_healthy_upstream', http: 503, grpc: 14 },
  upstreamConnectFailure: { reason: 'upstream_connect_failure', http: 503, grpc: 14 },
  /**
   * Inbound only: the local app could not be reached, so the request provably never got to it.
   * Over HTTP/2 the caller gets RST_STREAM REFUSED_STREAM instead (RFC 9113 8.7: not processed),
   * which every client may retry elsewhere; over HTTP/1.1 this 503.
   */
  appUnavailable: { reason: 'app_unavailable', http: 503, grpc: 14 },
  upstreamOverflow: { reason: 'upstream_overflow', http: 503, grpc: 14 },
  upstreamReset: { reason: 'upstream_reset', http: 503, grpc: 14 },
  upstreamTimeout: { reason: 'upstream_timeout', http: 504, grpc: 4 /* DEADLINE_EXCEEDED */ },
  /** The caller's own deadline (grpc-timeout) passed. */
  deadlineExceeded: { reason: 'deadline_exceeded', http: 504, grpc: 4 },
  upstreamPerTryTimeout: { reason: 'upstream_per_try_timeout', http: 504, grpc: 4 },
  maxConnections: { reason: 'circuit_breaker_max_connections', http: 503, grpc: 14 },
  maxPendingRequests: { reason: 'circuit_breaker_max_pending_requests', http: 503, grpc: 14 },
  maxRequests: { reason: 'circuit_breaker_max_requests', http: 503, grpc: 14 },
  maxRetries: { reason: 'circuit_breaker_max_retries', http: 503, grpc: 14 },
  retryBudgetExhausted: { reason: 'retry_budget_exhausted', http: 503, grpc: 14 },
  rateLimited: { reason: 'rate_limited', http: 429, grpc: 8 /* RESOURCE_EXHAUSTED */ },
  badRequest: { reason: 'bad_request', http: 400, grpc: 13 /* INTERNAL */ },
  draining: { reason: 'proxy_draining', http: 503, grpc: 14 },
  /** The route's fault filter aborted the request; the statuses come from its HTTPFault (filters/fault.ts). */
  faultAbort: { reason: 'fault_abort', http: 503, grpc: 14 },
  /** The inbound listener's RBAC filter (filters/rbac.ts) denied the caller: the app never sees the request. */
  rbacDenied: { reason: 'rbac_denied', http: 403, grpc: 7 /* PERMISSION_DENIED */ },
  internal: { reason: 'internal', http: 500, grpc: 13 },
  /** The request saw no activity either way for the listener's stream idle timeout (Envoy answers 408 too). */
  streamIdleTimeout: { reason: 'stream_idle_timeout', http: 408, grpc: 4 /* DEADLINE_EXCEEDED */ },
} as const satisfies Record<string, LocalReply>;

/**
 * Every local reply reason, derived from the table (never listed twice): the route stats create
 * one `local_reply.<reason>` counter each.
 */
export const LOCAL_REPLY_REASONS: readonly string[] = Object.freeze([...new Set(Object.values(LOCAL_REPLIES).map((r) => r.reason))]);

/**
 * The one mapping from an upstream failure (a pool or an attempt's MeshError) to the reply the
 * proxy makes for it. `null` (no stream, no error) is a connect failure.
 */
export function localReplyForError(err: MeshError | null): LocalReply {
  if (err instanceof BreakerOpenError) return err.breaker === 'max_connections' ? LOCAL_REPLIES.maxConnections : err.breaker === 'max_requests' ? LOCAL_REPLIES.maxRequests : LOCAL_REPLIES.maxPendingRequests;
  switch (err?.code) {
    case 'SKEIN_ERR_UPSTREAM_OVERFLOW': return LOCAL_REPLIES.upstreamOverflow;
    case undefined:
    case 'SKEIN_ERR_UPSTREAM_CONNECT_FAILURE':
    case 'SKEIN_ERR_UPSTREAM_CONNECT_TIMEOUT':
    case 'SKEIN_ERR_POOL_CLOSED': return LOCAL_REPLIES.upstreamConnectFailure;
    default: return LOCAL_REPLIES.upstreamReset;
  }
}

/** Whether an error comes from the pool before any stream existed (a breaker, overflow, no connection). */
export function isPoolError(err: MeshError): boolean {
  const code = err.code;
  return err instanceof BreakerOpenError || code === 'SKEIN_ERR_UPSTREAM_OVERFLOW' || code === 'SKEIN_ERR_UPSTREAM_CONNECT_FAILURE' ||
    code === 'SKEIN_ERR_UPSTREAM_CONNECT_TIMEOUT' || code === 'SKEIN_ERR_POOL_CLOSED';
}

/**
 * Percent-encodes a grpc-message as the gRPC spec requires: only '%' and UTF-8 bytes outside
 * 0x20-0x7E. (encodeURIComponent would also encode ':' '/' '?' etc., which grpc-js's decodeURI
 * leaves encoded: the caller would read "no_route%3A ...".)
 */
export function grpcMessage(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b < 16 ? '0' : ''}${b.toString(16).toUpperCase()}`;
  return out;
}

/** The response header that tells how many upstream attempts a request took (retries + 1). */
export const ATTEMPT_COUNT_HEADER = 'x-skein-attempt-count';

/** `attempts` > 0 adds x-skein-attempt-count (the reply came after that many upstream attempts). */
export function replyH2(stream: http2.ServerHttp2Stream, grpc: boolean, r: LocalReply, detail: string, attempts = 0): void {
  if (stream.destroyed || stream.closed || stream.headersSent) { if (!stream.destroyed) stream.close(http2Cancel); return; }
  const msg = `${r.reason}: ${detail}`;
  try {
    if (grpc) {
      const h: http2.OutgoingHttpHeaders = { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(r.grpc), 'grpc-message': grpcMessage(msg), 'x-skein-reason': r.reason };
      if (attempts > 0) h[ATTEMPT_COUNT_HEADER] = String(attempts);
      stream.respond(h, { endStream: true });
    } else {
      const h: http2.OutgoingHttpHeaders = { ':status': r.http, 'content-type': 'text/plain; charset=utf-8', 'x-skein-reason': r.reason };
      if (attempts > 0) h[ATTEMPT_COUNT_HEADER] = String(attempts);
      stream.respond(h);
      stream.end(`${msg}\n`);
    }
  } catch { stream.destroy(); }
}

export function replyH1(res: http.ServerResponse, grpc: boolean, r: LocalReply, detail: string, attempts = 0): void {
  if (res.headersSent || res.destroyed) { res.destroy(); return; }
  const msg = `${r.reason}: ${detail}`;
  const h: http.OutgoingHttpHeaders = grpc
    ? { 'content-type': 'application/grpc', 'grpc-status': String(r.grpc), 'grpc-message': grpcMessage(msg), 'x-skein-reason': r.reason }
    : { 'content-type': 'text/plain; charset=utf-8', 'x-skein-reason': r.reason };
  if (attempts > 0) h[ATTEMPT_COUNT_HEADER] = String(attempts);
  res.writeHead(grpc ? 200 : r.http, h);
  res.end(grpc ? undefined : `${msg}\n`);
}

const http2Cancel = 0x8;

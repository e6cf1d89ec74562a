import type * as http from 'node:http';
import type * as http2 from 'node:http2';

/**
 * Replies the proxy makes itself, each with a stable reason. Mapped once, here, to an HTTP
 * status or (for gRPC requests) a gRPC status carried in a trailers-only response, plus
 * `x-skein-reason` so a caller can tell the proxy's answer from the upstream's.
 */
export interface LocalReply { readonly reason: string; readonly http: number; readonly grpc: number }

export const LOCAL_REPLIES = {
  noRoute: { reason: 'no_route', http: 404, grpc: 12 /* UNIMPLEMENTED */ },
  clusterNotFound: { reason: 'cluster_not_found', http: 503, grpc: 14 /* UNAVAILABLE */ },
  noHealthyUpstream: { reason: 'no_healthy_upstream', http: 503, grpc: 14 },
  upstreamConnectFailure: { reason: 'upstream_connect_failure', http: 503, grpc: 14 },
  upstreamOverflow: { reason: 'upstream_overflow', http: 503, grpc: 14 },
  upstreamReset: { reason: 'upstream_reset', http: 503, grpc: 14 },
  upstreamTimeout: { reason: 'upstream_timeout', http: 504, grpc: 4 /* DEADLINE_EXCEEDED */ },
  badRequest: { reason: 'bad_request', http: 400, grpc: 13 /* INTERNAL */ },
  draining: { reason: 'proxy_draining', http: 503, grpc: 14 },
} as const satisfies Record<string, LocalReply>;

export function isGrpcContentType(ct: string | string[] | undefined): boolean {
  return typeof ct === 'string' && ct.startsWith('application/grpc');
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

export function replyH2(stream: http2.ServerHttp2Stream, grpc: boolean, r: LocalReply, detail: string): void {
  if (stream.destroyed || stream.closed || stream.headersSent) { if (!stream.destroyed) stream.close(http2Cancel); return; }
  const msg = `${r.reason}: ${detail}`;
  try {
    if (grpc) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(r.grpc), 'grpc-message': grpcMessage(msg), 'x-skein-reason': r.reason }, { endStream: true });
    } else {
      stream.respond({ ':status': r.http, 'content-type': 'text/plain; charset=utf-8', 'x-skein-reason': r.reason });
      stream.end(`${msg}\n`);
    }
  } catch { stream.destroy(); }
}

export function replyH1(res: http.ServerResponse, grpc: boolean, r: LocalReply, detail: string): void {
  if (res.headersSent || res.destroyed) { res.destroy(); return; }
  const msg = `${r.reason}: ${detail}`;
  if (grpc) {
    res.writeHead(200, { 'content-type': 'application/grpc', 'grpc-status': String(r.grpc), 'grpc-message': grpcMessage(msg), 'x-skein-reason': r.reason });
    res.end();
  } else {
    res.writeHead(r.http, { 'content-type': 'text/plain; charset=utf-8', 'x-skein-reason': r.reason });
    res.end(`${msg}\n`);
  }
}

const http2Cancel = 0x8;

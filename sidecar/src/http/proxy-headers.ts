import { randomUUID } from 'node:crypto';
import type * as http from 'node:http';

/** Connection-specific headers that never cross a proxy (RFC 9110 7.6.1, RFC 9113 8.2.2). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'proxy-authenticate', 'proxy-authorization']);

export interface ForwardPolicy {
  /**
   * Whether an incoming x-forwarded-for is believed. Outbound (from the local app): yes, the
   * app is the origin. Inbound (from the network): no, until peers are authenticated by mTLS;
   * the header is replaced with the peer address so an outsider cannot spoof it.
   */
  trustForwardedFor: boolean;
}

/**
 * The upstream request headers: the downstream ones minus hop-by-hop headers (and any header a
 * `Connection` header names), with x-forwarded-for / -proto and x-request-id set.
 * `te: trailers` is kept: gRPC needs it.
 */
export function upstreamHeaders(src: http.IncomingHttpHeaders, peer: string | undefined, policy: ForwardPolicy): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  const conn = src['connection'];
  const named = typeof conn === 'string' && conn !== '' ? conn.toLowerCase().split(/\s*,\s*/) : undefined;
  for (const k in src) {
    if (HOP_BY_HOP.has(k) || (named !== undefined && named.includes(k))) continue;
    if (k === 'te') { if (src[k] === 'trailers') out[k] = 'trailers'; continue; }
    if (k === 'host') continue; // becomes :authority (or stays in the h1 request line target)
    out[k] = src[k];
  }
  const xff = src['x-forwarded-for'];
  if (peer !== undefined) out['x-forwarded-for'] = policy.trustForwardedFor && typeof xff === 'string' && xff !== '' ? `${xff}, ${peer}` : peer;
  else if (!policy.trustForwardedFor) delete out['x-forwarded-for'];
  if (out['x-forwarded-proto'] === undefined || !policy.trustForwardedFor) out['x-forwarded-proto'] = 'http';
  if (typeof src['x-request-id'] !== 'string' || src['x-request-id'] === '') out['x-request-id'] = randomUUID();
  return out;
}

/** Response headers back to the client: hop-by-hop removed. */
export function downstreamHeaders(src: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const k in src) if (!HOP_BY_HOP.has(k)) out[k] = src[k];
  return out;
}

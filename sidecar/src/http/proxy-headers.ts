import { randomUUID } from 'node:crypto';
import type * as http from 'node:http';

/** Connection-specific headers that never cross a proxy (RFC 9110 7.6.1, RFC 9113 8.2.2). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'proxy-authenticate', 'proxy-authorization']);

/**
 * Headers that claim who the caller is, or where it came from, on behalf of a proxy in front.
 * From outside the mesh (inbound, untrusted) they are forged as easily as any header, and an app
 * that believes them (client-certificate identity, client IP) can be fooled, so the inbound
 * listener removes them: `x-forwarded-client-cert` (Envoy's XFCC: the peer's certificate; the
 * mTLS work will set it from the verified peer), `forwarded` (RFC 7239) and `x-real-ip`.
 * `x-forwarded-for` and `x-forwarded-proto` are replaced instead (below).
 */
export const UNTRUSTED_IDENTITY_HEADERS: readonly string[] = ['x-forwarded-client-cert', 'forwarded', 'x-real-ip'];

export interface ForwardPolicy {
  /**
   * Whether an incoming x-forwarded-for is believed. Outbound (from the local app): yes, the
   * app is the origin. Inbound (from the network): no, until peers are authenticated by mTLS;
   * the header is replaced with the peer address so an outsider cannot spoof it, and the
   * UNTRUSTED_IDENTITY_HEADERS are removed.
   */
  trustForwardedFor: boolean;
}

/**
 * The upstream request headers: the downstream ones minus hop-by-hop headers (and any header a
 * `Connection` header names), with x-forwarded-for / -proto and x-request-id set.
 * `te: trailers` is kept: gRPC needs it. `expect` is not forwarded: the listener answered a
 * `100-continue` itself (as Envoy does by default), so the body is already on its way.
 */
export function upstreamHeaders(src: http.IncomingHttpHeaders, peer: string | undefined, policy: ForwardPolicy): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  const conn = src['connection'];
  const named = typeof conn === 'string' && conn !== '' ? conn.toLowerCase().split(/\s*,\s*/) : undefined;
  for (const k in src) {
    if (HOP_BY_HOP.has(k) || (named !== undefined && named.includes(k))) continue;
    if (k === 'te') { if (src[k] === 'trailers') out[k] = 'trailers'; continue; }
    if (k === 'host' || k === 'expect') continue; // host becomes :authority (or stays in the h1 request line target)
    out[k] = src[k];
  }
  if (!policy.trustForwardedFor) for (const h of UNTRUSTED_IDENTITY_HEADERS) if (out[h] !== undefined) delete out[h];
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

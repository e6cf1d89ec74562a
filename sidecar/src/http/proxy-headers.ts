import { randomUUID } from 'node:crypto';
import type * as http from 'node:http';

/** Connection-specific headers that never cross a proxy (RFC 9110 7.6.1, RFC 9113 8.2.2). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'proxy-authenticate', 'proxy-authorization']);

/**
 * Headers that claim who the caller is, or where it came from, on behalf of a proxy in front.
 * From outside the mesh (inbound, untrusted) they are forged as easily as any header, and an app
 * that believes them (client-certificate identity, client IP) can be fooled, so the inbound
 * listener removes them: `x-forwarded-client-cert` (Envoy's XFCC: the peer's certificate; it is
 * removed in both directions and set from the verified mTLS peer only), `forwarded` (RFC 7239)
 * and `x-real-ip`.
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

const UNTRUSTED: ReadonlySet<string> = new Set(UNTRUSTED_IDENTITY_HEADERS);

/**
 * The upstream request headers: the downstream ones minus hop-by-hop headers (and any header a
 * `Connection` header names), with x-forwarded-for / -proto and x-request-id set.
 * `clientCert`: the x-forwarded-client-cert of the verified mTLS peer (inbound), set after any
 * incoming one is dropped. `te: trailers` is kept: gRPC needs it. `expect` is not forwarded: the listener answered a
 * `100-continue` itself (as Envoy does by default), so the body is already on its way.
 *
 * One pass, no deletes (a delete turns the object into a slow dictionary). `raw`, when given, is
 * Node's raw HTTP/2 header list of the same request (name, value, name, value...: the 'stream'
 * event's fourth argument): the names are walked from it, since for-in over `src` (a
 * dictionary-mode object) first builds and sorts a key array. Values are always read from `src`,
 * where Node already joined repeated fields, so a repeated name only writes the same value again.
 */
export function upstreamHeaders(src: http.IncomingHttpHeaders, peer: string | undefined, policy: ForwardPolicy, raw?: readonly string[], clientCert?: string): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  const trust = policy.trustForwardedFor;
  const conn = src['connection'];
  const named = typeof conn === 'string' && conn !== '' ? conn.toLowerCase().split(/\s*,\s*/) : undefined;
  if (raw !== undefined) for (let i = 0; i < raw.length; i += 2) copyField(out, src, raw[i]!, named, trust, peer);
  else for (const k in src) copyField(out, src, k, named, trust, peer);
  if (peer !== undefined && out['x-forwarded-for'] === undefined) out['x-forwarded-for'] = peer;
  if (clientCert !== undefined) out['x-forwarded-client-cert'] = clientCert;
  if (out['x-forwarded-proto'] === undefined) out['x-forwarded-proto'] = 'http';
  const rid = src['x-request-id'];
  if (typeof rid !== 'string' || rid === '') out['x-request-id'] = randomUUID();
  return out;
}

/** One downstream field into the upstream headers (upstreamHeaders' loop body). */
function copyField(out: http.OutgoingHttpHeaders, src: http.IncomingHttpHeaders, k: string, named: string[] | undefined, trust: boolean, peer: string | undefined): void {
  if (k.charCodeAt(0) === 58 /* ':' */) { out[k] = src[k]; return; } // a pseudo-header: kept (an h2 attempt sets its own, an h1 one drops them)
  if (HOP_BY_HOP.has(k) || (named !== undefined && named.includes(k))) return;
  switch (k) {
    case 'te': if (src[k] === 'trailers') out[k] = 'trailers'; return;
    case 'host': case 'expect': return; // host becomes :authority (or stays in the h1 request line target)
    case 'x-forwarded-for': {
      // Trusted: appended to; untrusted: replaced by the peer (or dropped when there is none).
      const xff = src[k];
      if (peer !== undefined) out[k] = trust && typeof xff === 'string' && xff !== '' ? `${xff}, ${peer}` : peer;
      else if (trust) out[k] = xff;
      return;
    }
    case 'x-forwarded-proto': out[k] = trust ? src[k] : 'http'; return;
    // Set only by an inbound listener, from the peer its mTLS handshake verified (`clientCert`);
    // one from the app or from outside is never passed on (Envoy's SANITIZE_SET).
    case 'x-forwarded-client-cert': return;
  }
  if (!trust && UNTRUSTED.has(k)) return;
  out[k] = src[k];
}

/** Response headers back to the client: hop-by-hop removed. */
export function downstreamHeaders(src: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const k in src) if (!HOP_BY_HOP.has(k)) out[k] = src[k];
  return out;
}

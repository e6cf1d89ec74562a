/**
 * Checks that make a downstream request malformed before it is routed (the listener refuses it:
 * 400 for HTTP/1.1, RST_STREAM PROTOCOL_ERROR for HTTP/2). Plain loops over what Node already
 * parsed, no allocation.
 */

/**
 * RFC 9112 3.2: a request with more than one Host header line is answered 400. Node keeps the
 * first and drops the others from `headers`, so the raw list is what tells.
 */
export function hasDuplicateHost(rawHeaders: readonly string[]): boolean {
  let seen = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const k = rawHeaders[i]!;
    if (k.length === 4 && (k === 'host' || k === 'Host' || k.toLowerCase() === 'host')) {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

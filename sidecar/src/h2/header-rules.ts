/**
 * The rules a received header list must pass (RFC 9113 8.1.1, 8.2, 8.3), on flat
 * [name, value, ...] arrays. Each check returns undefined when the list is well-formed, else a
 * short stable reason; the connection resets the stream with PROTOCOL_ERROR (a malformed
 * message is a stream error). One pass over the list, no allocation.
 * - pseudo-header fields come before every regular field, each at most once, only those the
 *   message kind defines (requests: :method :scheme :path :authority; responses: :status;
 *   trailers: none); a request has :method, and :scheme and a non-empty :path unless it is a
 *   CONNECT (which has :authority and neither :scheme nor :path; extended CONNECT is not offered);
 * - field names are lowercase tokens; values have no NUL, CR or LF (8.2.1), nor any other
 *   control byte but HTAB (RFC 9110 5.5, as nghttp2), and no leading or trailing space or tab;
 * - connection-specific fields (connection, keep-alive, proxy-connection, transfer-encoding,
 *   upgrade) are forbidden, and TE may only be "trailers" (8.2.2);
 * - content-length, when present, is one decimal number (repeats must agree).
 */

const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** tchar (RFC 9110 5.6.2) without uppercase letters, indexed by char code below 128. */
const NAME_CHAR: Uint8Array = (() => {
  const t = new Uint8Array(128);
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") t[c.charCodeAt(0)] = 1;
  return t;
})();

function badName(name: string, from: number): boolean {
  if (name.length <= from) return true;
  for (let i = from; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || NAME_CHAR[c] === 0) return true;
  }
  return false;
}

function badValue(v: string): boolean {
  const n = v.length;
  if (n === 0) return false;
  const first = v.charCodeAt(0);
  const last = v.charCodeAt(n - 1);
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return true;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    // NUL, CR, LF (RFC 9113 8.2.1), and the other control bytes but HTAB, as nghttp2 refuses them (RFC 9110 5.5 field-content).
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/** The regular fields from index `from` on. */
function checkRegular(h: readonly string[], from: number): string | undefined {
  for (let i = from; i < h.length; i += 2) {
    const name = h[i]!;
    if (name.charCodeAt(0) === 58 /* ':' */) return 'pseudo-after-regular';
    if (badName(name, 0)) return 'field-name';
    if (badValue(h[i + 1]!)) return 'field-value';
    if (CONNECTION_SPECIFIC.has(name)) return 'connection-specific';
    if (name === 'te' && h[i + 1] !== 'trailers') return 'te';
  }
  return undefined;
}

/** Where the pseudo-header fields end (the index of the first regular name). */
function pseudoEnd(h: readonly string[]): number {
  let i = 0;
  while (i < h.length && h[i]!.charCodeAt(0) === 58) i += 2;
  return i;
}

export function checkRequestHead(h: readonly string[]): string | undefined {
  const end = pseudoEnd(h);
  let method: string | undefined;
  let scheme: string | undefined;
  let path: string | undefined;
  let authority: string | undefined;
  for (let i = 0; i < end; i += 2) {
    const v = h[i + 1]!;
    switch (h[i]) {
      case ':method': if (method !== undefined) return 'pseudo-repeated'; method = v; break;
      case ':scheme': if (scheme !== undefined) return 'pseudo-repeated'; scheme = v; break;
      case ':path': if (path !== undefined) return 'pseudo-repeated'; path = v; break;
      case ':authority': if (authority !== undefined) return 'pseudo-repeated'; authority = v; break;
      default: return 'pseudo-unknown';
    }
    if (badValue(v)) return 'field-value';
  }
  if (method === undefined || method === '') return 'pseudo-missing';
  if (method === 'CONNECT') {
    if (scheme !== undefined || path !== undefined) return 'connect-pseudo';
    if (authority === undefined) return 'pseudo-missing';
  } else if (scheme === undefined || path === undefined || path === '') return 'pseudo-missing';
  return checkRegular(h, end);
}

/** A response head (final or 1xx). */
export function checkResponseHead(h: readonly string[]): string | undefined {
  const end = pseudoEnd(h);
  if (end !== 2) return end === 0 ? 'pseudo-missing' : 'pseudo-repeated';
  if (h[0] !== ':status') return 'pseudo-unknown';
  const s = h[1]!;
  if (s.length !== 3 || !(s >= '100' && s <= '999')) return 'status';
  return checkRegular(h, 2);
}

export function checkTrailers(h: readonly string[]): string | undefined {
  return checkRegular(h, 0);
}

/** The :status of a checked response head. */
export function statusOf(h: readonly string[]): number {
  return Number(h[1]);
}

/** The content-length a list declares: -1 when absent, -2 when invalid (not a number, or repeats that differ). */
export function contentLengthOf(h: readonly string[]): number {
  let found = -1;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] !== 'content-length') continue;
    const v = h[i + 1]!;
    if (!/^[0-9]{1,15}$/.test(v)) return -2;
    const n = Number(v);
    if (found >= 0 && found !== n) return -2;
    found = n;
  }
  return found;
}

/** The value of the first field named `name`, if any. */
export function headerValue(h: readonly string[], name: string): string | undefined {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}

/**
 * The skein HTTP/2 engine's flat header lists ([name, value, name, value...], as HPACK decodes
 * and encodes them) to and from the pipeline's header objects (HeaderBag, shaped as Node's
 * http2 headers), for both sides of the proxy.
 */
import type { HeaderBag } from '../route/header-ops';

/**
 * The regular fields of `bag` appended to `out` (pseudo-headers skipped: the caller puts its own
 * first; undefined values skipped; arrays as repeated fields).
 */
export function headerList(out: string[], bag: Readonly<HeaderBag>): string[] {
  for (const k in bag) {
    if (k.charCodeAt(0) === 58 /* ':' */) continue;
    const v = bag[k];
    if (v === undefined) continue;
    if (typeof v === 'string') out.push(k, v);
    else if (typeof v === 'number') out.push(k, String(v));
    else for (let i = 0; i < v.length; i++) out.push(k, v[i]!);
  }
  return out;
}

/**
 * A received flat list as the pipeline's header object, shaped as Node's http2 headers:
 * `:status` a number, repeated set-cookie an array, repeated cookie joined with "; " (RFC 9113
 * 8.2.3), other repeated fields joined with ", ".
 */
export function headerBag(list: readonly string[]): HeaderBag {
  const bag: HeaderBag = {};
  for (let i = 0; i < list.length; i += 2) {
    const k = list[i]!;
    const v = list[i + 1]!;
    const prev = bag[k];
    if (prev === undefined) bag[k] = k === 'set-cookie' ? [v] : v;
    else if (Array.isArray(prev)) prev.push(v);
    else bag[k] = `${prev as string}${k === 'cookie' ? '; ' : ', '}${v}`;
  }
  const status = bag[':status'];
  if (status !== undefined) bag[':status'] = Number(status);
  return bag;
}

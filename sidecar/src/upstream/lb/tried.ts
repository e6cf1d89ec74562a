/**
 * Retry helpers: pickers avoid hosts the request already tried, when another host is available
 * (Envoy's retry host predicate `previous_hosts`). Only the retry path calls these.
 */
import type { Host } from '../host';

/** The first host at or after `start` (wrapping) that is not in `tried`, or undefined. */
export function firstUntried(hosts: readonly Host[], start: number, tried: ReadonlySet<Host>): Host | undefined {
  const n = hosts.length;
  for (let k = 0; k < n; k++) {
    const h = hosts[(start + k) % n];
    if (!tried.has(h)) return h;
  }
  return undefined;
}

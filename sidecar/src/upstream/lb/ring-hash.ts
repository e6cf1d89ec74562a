/**
 * ring_hash: Envoy's RingHashLoadBalancer (ketama-style consistent hashing, Karger et al.).
 * Build (update path): each host gets points in proportion to its weight (see pointCounts),
 * between minRingSize and maxRingSize in total. Point i of a host is hashKey(`${host.key}_${i}`)
 * (FNV-1a + fmix32, see hash.ts), so a host's points do not depend on the other hosts. Points
 * are sorted by hash into two typed arrays (hash, owner index).
 * Pick (hot path): the first point whose hash is >= ctx.hash (wrapping to 0), by binary
 * search; an undefined ctx.hash picks a random point. A tried host walks the ring forward to
 * the next point owned by an untried host (Envoy's hash_balance retry behaviour).
 */
import { validationError } from '../../../../shared/src/errors';
import type { Host, LoadBalancer, PickContext, Picker } from '../host';
import { EMPTY_PICKER } from './empty-picker';
import { hashKey } from './hash';
import type { LbConfig } from './lb-config';
import { hostWeight, LB_DEFAULTS, numberOption } from './lb-config';

export { hashKey } from './hash';

/** Host indexes are packed under the hash in a float64 for sorting: hash * 2^21 + index < 2^53. */
const INDEX_BITS = 2 ** 21;

/**
 * Points per host: ceil(scale * weight), scale = the smallest power of two (possibly < 1) with
 * scale * totalWeight >= minRingSize, lowered if needed so the ring stays <= maxRingSize.
 * A host's count depends only on its own weight and the scale, and the scale only moves when
 * minRingSize / totalWeight crosses a power of two (at the default 1024, 4 to 7 equal hosts
 * share scale 256), so most membership changes move only the keys of the hosts added or
 * removed; a change that halves or doubles the scale drops or adds half of every host's points. (Envoy instead rescales every host on every change, moving about
 * 1/n extra keys between surviving hosts.) Deterministic in the host set, so every proxy
 * builds the same ring.
 */
export function pointCounts(hosts: readonly Host[], minRingSize: number, maxRingSize: number): Int32Array {
  const n = hosts.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += hostWeight(hosts[i]);
  let scale = 2 ** Math.ceil(Math.log2(minRingSize / total));
  while (scale * total < minRingSize) scale *= 2; // guard against log2 rounding
  // ceil() adds < 1 point per host: keep scale * total + n within the maximum when possible.
  while (scale * total + n > maxRingSize && scale * total > 1) scale /= 2;
  const counts = new Int32Array(n);
  for (let i = 0; i < n; i++) counts[i] = Math.ceil(scale * hostWeight(hosts[i]));
  return counts;
}

export class RingHashPicker implements Picker {
  private readonly hosts: readonly Host[];
  /** Sorted point hashes (uint32) and the index of the host owning each point. */
  private readonly hashes: Uint32Array;
  private readonly owners: Int32Array;

  constructor(hosts: readonly Host[], minRingSize: number, maxRingSize: number, private readonly random: () => number) {
    this.hosts = hosts.slice();
    const n = this.hosts.length;
    if (n >= INDEX_BITS) throw validationError([{ resource: '', path: 'hosts', message: `ring_hash supports at most ${INDEX_BITS - 1} hosts` }]);
    const counts = pointCounts(this.hosts, minRingSize, maxRingSize);
    let points = 0;
    for (let i = 0; i < n; i++) points += counts[i];
    const packed = new Float64Array(points);
    let p = 0;
    for (let i = 0; i < n; i++) {
      const key = this.hosts[i].key;
      for (let k = 0; k < counts[i]; k++) packed[p++] = hashKey(`${key}_${k}`) * INDEX_BITS + i;
    }
    packed.sort();
    this.hashes = new Uint32Array(points);
    this.owners = new Int32Array(points);
    for (let j = 0; j < points; j++) {
      const v = packed[j];
      const hash = Math.floor(v / INDEX_BITS);
      this.hashes[j] = hash;
      this.owners[j] = v - hash * INDEX_BITS;
    }
  }

  /** Number of points on the ring. */
  get size(): number {
    return this.hashes.length;
  }

  pick(ctx: PickContext): Host | undefined {
    const hashes = this.hashes;
    const len = hashes.length;
    if (len === 0) return undefined;
    let i: number;
    if (ctx.hash === undefined) {
      i = Math.floor(this.random() * len);
      if (i >= len) i = len - 1;
    } else {
      const target = ctx.hash >>> 0;
      let lo = 0;
      let hi = len;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (hashes[mid] < target) lo = mid + 1;
        else hi = mid;
      }
      i = lo === len ? 0 : lo;
    }
    const h = this.hosts[this.owners[i]];
    const tried = ctx.tried;
    if (tried === undefined || !tried.has(h)) return h;
    return this.walk(i, tried) ?? h;
  }

  /** Retry path: the owner of the next point after `i` that is not tried, if any host is untried. */
  private walk(i: number, tried: ReadonlySet<Host>): Host | undefined {
    let anyUntried = false;
    for (const h of this.hosts) if (!tried.has(h)) { anyUntried = true; break; }
    if (!anyUntried) return undefined;
    const len = this.hashes.length;
    for (let k = 1; k < len; k++) {
      const h = this.hosts[this.owners[(i + k) % len]];
      if (!tried.has(h)) return h;
    }
    return undefined;
  }
}

export class RingHashLoadBalancer implements LoadBalancer {
  private readonly minRingSize: number;
  private readonly maxRingSize: number;
  private readonly random: () => number;
  private current: Picker = EMPTY_PICKER;

  constructor(config: LbConfig = { policy: 'ring_hash' }) {
    const max = LB_DEFAULTS.maxRingSize;
    this.maxRingSize = numberOption('maxRingSize', config.maxRingSize, max, 1, max, true);
    this.minRingSize = numberOption('minRingSize', config.minRingSize, Math.min(LB_DEFAULTS.minRingSize, this.maxRingSize), 1, this.maxRingSize, true);
    this.random = config.random ?? Math.random;
  }

  get picker(): Picker {
    return this.current;
  }

  update(hosts: readonly Host[]): void {
    this.current = hosts.length === 0 ? EMPTY_PICKER : new RingHashPicker(hosts, this.minRingSize, this.maxRingSize, this.random);
  }
}

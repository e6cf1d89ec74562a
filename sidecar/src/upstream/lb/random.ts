/**
 * random: Envoy's RandomLoadBalancer, weighted. Equal weights pick hosts[floor(r * n)];
 * otherwise a binary search over the cumulative weights picks host i with probability
 * weight_i / total. A tried host is replaced by the next untried one in order (retry path only).
 */
import type { Host, LoadBalancer, PickContext, Picker } from '../host';
import { EMPTY_PICKER } from './empty-picker';
import type { LbConfig } from './lb-config';
import { weightsOf } from './lb-config';
import { firstUntried } from './tried';

export class RandomPicker implements Picker {
  private readonly hosts: readonly Host[];
  /** Cumulative weights (cum[i] = w_0 + ... + w_i); undefined when all weights are equal. */
  private readonly cumulative: Float64Array | undefined;

  constructor(hosts: readonly Host[], private readonly random: () => number) {
    this.hosts = hosts.slice();
    const w = weightsOf(this.hosts);
    if (w !== undefined) for (let i = 1; i < w.length; i++) w[i] += w[i - 1];
    this.cumulative = w;
  }

  pick(ctx: PickContext): Host | undefined {
    const hosts = this.hosts;
    const n = hosts.length;
    if (n === 0) return undefined;
    const r = this.random();
    const cum = this.cumulative;
    let i: number;
    if (cum === undefined) {
      i = Math.floor(r * n);
    } else {
      // First i with cum[i] > target.
      const target = r * cum[n - 1];
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cum[mid] > target) hi = mid;
        else lo = mid + 1;
      }
      i = lo;
    }
    if (i >= n) i = n - 1; // a random() that returns 1
    const h = hosts[i];
    const tried = ctx.tried;
    if (tried === undefined || !tried.has(h)) return h;
    return firstUntried(hosts, i + 1, tried) ?? h;
  }
}

export class RandomLoadBalancer implements LoadBalancer {
  private readonly random: () => number;
  private current: Picker = EMPTY_PICKER;

  constructor(config: LbConfig = { policy: 'random' }) {
    this.random = config.random ?? Math.random;
  }

  get picker(): Picker {
    return this.current;
  }

  update(hosts: readonly Host[]): void {
    this.current = hosts.length === 0 ? EMPTY_PICKER : new RandomPicker(hosts, this.random);
  }
}

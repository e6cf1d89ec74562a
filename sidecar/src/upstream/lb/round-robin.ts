/**
 * round_robin: smooth weighted round robin, as in nginx (ngx_http_upstream_get_peer, 2012).
 * Each pick adds every host's weight to its current weight, takes the host with the highest
 * current weight (lowest index on ties) and subtracts the total from it. Over one cycle of
 * sum(weights) picks each host is chosen exactly `weight` times, interleaved (3:1 gives
 * a a b a, not a a a b). Equal weights take an O(1) index rotation instead; weighted picks are
 * O(hosts). Deterministic: each new picker starts its rotation at the first host.
 *
 * The picker is an immutable snapshot; its rotation state (a counter, or the current weights)
 * is a small mutable object it owns. A pick allocates nothing.
 */
import type { Host, LoadBalancer, PickContext, Picker } from '../host';
import { EMPTY_PICKER } from './empty-picker';
import type { LbConfig } from './lb-config';
import { weightsOf } from './lb-config';
import { firstUntried } from './tried';

export class RoundRobinPicker implements Picker {
  private readonly hosts: readonly Host[];
  /** Snapshot of the weights; undefined when all are equal. */
  private readonly weights: Float64Array | undefined;
  private readonly total: number;
  /** Rotation state: next index (unweighted) and current weights (weighted). */
  private readonly state: { next: number; current: Float64Array };

  constructor(hosts: readonly Host[]) {
    this.hosts = hosts.slice();
    this.weights = weightsOf(this.hosts);
    let total = 0;
    if (this.weights !== undefined) for (const w of this.weights) total += w;
    this.total = total;
    this.state = { next: 0, current: new Float64Array(this.weights === undefined ? 0 : this.hosts.length) };
  }

  pick(ctx: PickContext): Host | undefined {
    const hosts = this.hosts;
    const n = hosts.length;
    if (n === 0) return undefined;
    const i = this.weights === undefined ? this.nextUnweighted(n) : this.nextWeighted(this.weights, n);
    const h = hosts[i];
    const tried = ctx.tried;
    if (tried === undefined || !tried.has(h)) return h;
    return firstUntried(hosts, i + 1, tried) ?? h;
  }

  private nextUnweighted(n: number): number {
    const i = this.state.next;
    this.state.next = i + 1 === n ? 0 : i + 1;
    return i;
  }

  private nextWeighted(weights: Float64Array, n: number): number {
    const cur = this.state.current;
    let best = 0;
    let bestW = -Infinity;
    for (let i = 0; i < n; i++) {
      const c = cur[i] + weights[i];
      cur[i] = c;
      if (c > bestW) {
        bestW = c;
        best = i;
      }
    }
    cur[best] -= this.total;
    return best;
  }
}

export class RoundRobinLoadBalancer implements LoadBalancer {
  private current: Picker = EMPTY_PICKER;

  constructor(_config?: LbConfig) {}

  get picker(): Picker {
    return this.current;
  }

  update(hosts: readonly Host[]): void {
    this.current = hosts.length === 0 ? EMPTY_PICKER : new RoundRobinPicker(hosts);
  }
}

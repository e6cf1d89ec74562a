/**
 * least_request: Envoy's LeastRequestLoadBalancer, power of N choices (choice_count, default 2).
 * Sample N distinct hosts at random and take the one with the fewest active requests. With
 * unequal weights the comparison uses Envoy's weighted formula with active_request_bias 1:
 * the lowest (activeRequests + 1) / weight wins (same as the highest weight / (active + 1)).
 * Unlike Envoy, weighted mode stays P2C rather than EDF, so at zero load a heavier sampled host
 * always beats a lighter one; load then evens the ratio out. Hosts in ctx.tried are avoided.
 */
import type { Host, LoadBalancer, PickContext, Picker } from '../host';
import { EMPTY_PICKER } from './empty-picker';
import type { LbConfig } from './lb-config';
import { LB_DEFAULTS, numberOption, weightsOf } from './lb-config';
import type { CostModel } from './p2c';
import { identityPermutation, p2cPick } from './p2c';

export class LeastRequestPicker implements Picker, CostModel {
  private readonly hosts: readonly Host[];
  private readonly weights: Float64Array | undefined;
  /** Scratch for distinct sampling; mutated by pick, never observable. */
  private readonly perm: Int32Array;

  constructor(hosts: readonly Host[], private readonly choiceCount: number, private readonly random: () => number) {
    this.hosts = hosts.slice();
    this.weights = weightsOf(this.hosts);
    this.perm = identityPermutation(this.hosts.length);
  }

  pick(ctx: PickContext): Host | undefined {
    return p2cPick(this.hosts, this.perm, this.choiceCount, this.random, ctx, this);
  }

  cost(index: number): number {
    const active = this.hosts[index].activeRequests;
    return this.weights === undefined ? active : (active + 1) / this.weights[index];
  }
}

export class LeastRequestLoadBalancer implements LoadBalancer {
  private readonly choiceCount: number;
  private readonly random: () => number;
  private current: Picker = EMPTY_PICKER;

  constructor(config: LbConfig = { policy: 'least_request' }) {
    this.choiceCount = numberOption('choiceCount', config.choiceCount, LB_DEFAULTS.choiceCount, 1, 2 ** 31 - 1, true);
    this.random = config.random ?? Math.random;
  }

  get picker(): Picker {
    return this.current;
  }

  update(hosts: readonly Host[]): void {
    this.current = hosts.length === 0 ? EMPTY_PICKER : new LeastRequestPicker(hosts, this.choiceCount, this.random);
  }
}

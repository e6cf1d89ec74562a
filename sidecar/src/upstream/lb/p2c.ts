/**
 * Power of N choices (Mitzenmacher; Envoy's least_request, Linkerd's P2C balancer): sample N
 * distinct hosts at random and keep the cheapest. Ties go to the first sampled, so they break
 * at random. Distinct samples come from a partial Fisher-Yates shuffle over a scratch index
 * array owned by the picker: any permutation is a valid start state, so it is never reset and
 * a pick allocates nothing. Hosts in ctx.tried lose to any untried host; if all N samples were
 * tried, sampling continues until an untried host turns up (or the hosts run out).
 */
import type { Host, PickContext } from '../host';

/** Cost of host `index` at time `now`; lower is better. Implemented by the picker itself. */
export interface CostModel {
  cost(index: number, now: number): number;
}

/** Scratch permutation [0, n) for p2cPick. */
export function identityPermutation(n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return p;
}

export function p2cPick(hosts: readonly Host[], perm: Int32Array, choiceCount: number, random: () => number, ctx: PickContext, model: CostModel): Host | undefined {
  const n = hosts.length;
  if (n === 0) return undefined;
  if (n === 1) return hosts[0];
  const tried = ctx.tried;
  let best = -1;
  let bestCost = 0;
  let bestTried = true;
  for (let k = 0; k < n; k++) {
    if (k >= choiceCount && !bestTried) break;
    let j = k + Math.floor(random() * (n - k));
    if (j >= n) j = n - 1; // a random() that returns 1
    const idx = perm[j];
    perm[j] = perm[k];
    perm[k] = idx;
    const isTried = tried !== undefined && tried.has(hosts[idx]);
    if (isTried && !bestTried) continue;
    const c = model.cost(idx, ctx.now);
    if (best < 0 || (bestTried && !isTried) || c < bestCost) {
      best = idx;
      bestCost = c;
      bestTried = isTried;
    }
  }
  return hosts[best];
}

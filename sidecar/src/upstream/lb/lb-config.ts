/**
 * Load-balancer config: the policy name plus the few knobs the built-in policies read.
 * Defaults follow Envoy's cluster.proto (choice_count 2, min_ring_size 1024,
 * max_ring_size 8M) and Linkerd's peak-EWMA decay (10 s).
 */
import { validationError } from '../../../../shared/src/errors';
import type { Host } from '../host';

export type LbPolicy = 'round_robin' | 'least_request' | 'ring_hash' | 'random' | 'peak_ewma';

export interface LbConfig {
  policy: LbPolicy;
  /** least_request / peak_ewma: hosts sampled per pick. Default 2 (P2C). Integer >= 1. */
  choiceCount?: number;
  /** ring_hash: lower bound on ring entries. Default 1024. */
  minRingSize?: number;
  /** ring_hash: upper bound on ring entries. Default 8388608 (Envoy's maximum). */
  maxRingSize?: number;
  /** peak_ewma: time constant (ms) of the latency decay. Default 10000. */
  decayMs?: number;
  /** Source of randomness in [0, 1); injectable for deterministic tests. Default Math.random. */
  random?: () => number;
}

export const LB_DEFAULTS = {
  choiceCount: 2,
  minRingSize: 1024,
  maxRingSize: 8388608,
  decayMs: 10_000,
} as const;

/** Reads an optional numeric knob; throws a SKEIN_ERR_VALIDATION naming the field when out of range. */
export function numberOption(field: keyof LbConfig, value: number | undefined, dflt: number, min: number, max: number, integer: boolean): number {
  if (value === undefined) return dflt;
  if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    const kind = integer ? 'an integer' : 'a number';
    throw validationError([{ resource: '', path: field, message: `must be ${kind} in [${min}, ${max}], got ${value}` }]);
  }
  return value;
}

/** EDS weights are >= 1; anything not positive and finite is treated as 1. */
export function hostWeight(h: Host): number {
  const w = h.weight;
  return w > 0 && Number.isFinite(w) ? w : 1;
}

/** Snapshot of the hosts' weights, or undefined when all are equal (the unweighted fast path). */
export function weightsOf(hosts: readonly Host[]): Float64Array | undefined {
  const w = new Float64Array(hosts.length);
  let equal = true;
  for (let i = 0; i < hosts.length; i++) {
    w[i] = hostWeight(hosts[i]);
    if (w[i] !== w[0]) equal = false;
  }
  return equal ? undefined : w;
}

/**
 * Load-balancer registry by policy name, after grpc-js's load-balancer registry
 * (registerLoadBalancerType / createLoadBalancer). The five built-ins register on import.
 * An unknown policy is a SKEIN_ERR_VALIDATION naming it and listing the known ones.
 */
import { validationError } from '../../../../shared/src/errors';
import type { LoadBalancer } from '../host';
import type { LbConfig } from './lb-config';
import { LeastRequestLoadBalancer } from './least-request';
import { PeakEwmaLoadBalancer } from './peak-ewma';
import { RandomLoadBalancer } from './random';
import { RingHashLoadBalancer } from './ring-hash';
import { RoundRobinLoadBalancer } from './round-robin';

export type { LbConfig, LbPolicy } from './lb-config';
export { LB_DEFAULTS } from './lb-config';

export type LoadBalancerFactory = (config: LbConfig) => LoadBalancer;

const factories = new Map<string, LoadBalancerFactory>();

/** Registers (or replaces) the factory for a policy name. */
export function registerLoadBalancer(name: string, factory: LoadBalancerFactory): void {
  factories.set(name, factory);
}

export function isLoadBalancerRegistered(name: string): boolean {
  return factories.has(name);
}

/** Registered policy names, sorted. */
export function registeredLoadBalancers(): string[] {
  return [...factories.keys()].sort();
}

/** A new balancer for `config.policy`; throws SKEIN_ERR_VALIDATION for an unknown policy or bad knob. */
export function createLoadBalancer(config: LbConfig): LoadBalancer {
  const policy: string = config.policy;
  const factory = factories.get(policy);
  if (factory === undefined) {
    const known = registeredLoadBalancers().join(', ');
    throw validationError([{ resource: '', path: 'policy', message: `unknown load balancing policy "${policy}" (known: ${known})` }]);
  }
  return factory(config);
}

registerLoadBalancer('round_robin', (c) => new RoundRobinLoadBalancer(c));
registerLoadBalancer('least_request', (c) => new LeastRequestLoadBalancer(c));
registerLoadBalancer('ring_hash', (c) => new RingHashLoadBalancer(c));
registerLoadBalancer('random', (c) => new RandomLoadBalancer(c));
registerLoadBalancer('peak_ewma', (c) => new PeakEwmaLoadBalancer(c));

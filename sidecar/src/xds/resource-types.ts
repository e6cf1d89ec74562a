/**
 * The resource types the sidecar decodes, in one place. RouteConfiguration decoding lives with
 * the router (sidecar/src/route/); its ResourceType is passed in, so this module does not
 * depend on the router.
 */
import type { ResourceType } from './resource-type';
import { clusterType } from './cluster-type';
import { endpointsType } from './endpoints-type';
import { listenerType } from './listener-type';

export type { DecodeResult, PackedResource, ResourceType } from './resource-type';
export type { HttpFilterConfig, ListenerConfig } from './listener-type';
export type { CircuitBreakerConfig, ClusterConfig, ClusterLbPolicy, RetryBudgetConfig } from './cluster-type';
export type { EndpointHealth, EndpointHost, EndpointsConfig } from './endpoints-type';
export { clusterType, endpointsType, listenerType };

/** A typeUrl -> ResourceType map for XdsClient: LDS, CDS and EDS built in, plus any extra (RDS). */
export function resourceTypeMap(...extra: ResourceType<unknown>[]): Map<string, ResourceType<unknown>> {
  const all: ResourceType<unknown>[] = [listenerType, clusterType, endpointsType, ...extra];
  return new Map(all.map((t) => [t.typeUrl, t]));
}

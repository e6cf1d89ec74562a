/**
 * The resource types the sidecar decodes, in one place. RouteConfiguration decoding lives with
 * the router (sidecar/src/route/); its ResourceType is passed in, so this module does not
 * depend on the router.
 */
import type { ResourceType } from './resource-type';
import { clusterType } from './cluster-type';
import { endpointsType } from './endpoints-type';
import { listenerTypeFor } from './listener-type';
import type { ListenerConfig } from './listener-type';

export type { DecodeResult, PackedResource, ResourceType } from './resource-type';
export type { HttpFilterConfig, ListenerConfig } from './listener-type';
export type { CircuitBreakerConfig, ClusterConfig, ClusterLbPolicy, RetryBudgetConfig } from './cluster-type';
export type { EndpointHealth, EndpointHost, EndpointsConfig } from './endpoints-type';
export { clusterType, endpointsType, listenerTypeFor };

/** A typeUrl -> ResourceType map for XdsClient: the Listener type given (pipeline.ts), CDS and EDS, plus any extra (RDS). */
export function resourceTypeMap(listenerType: ResourceType<ListenerConfig>, ...extra: ResourceType<unknown>[]): Map<string, ResourceType<unknown>> {
  const all: ResourceType<unknown>[] = [listenerType as ResourceType<unknown>, clusterType, endpointsType, ...extra];
  return new Map(all.map((t) => [t.typeUrl, t]));
}

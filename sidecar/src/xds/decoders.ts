/**
 * The registry of the sidecar's decoders, one per xDS kind. The Listener and RouteConfiguration
 * decoders depend on the http filters the sidecar runs, so pipeline.ts makes them (with the
 * filter registry) and passes them in; this module does not depend on the filters or the routes.
 */
import type { ResourceDecoder } from './resource-decoder';
import { clusterType } from './cluster-type';
import { endpointsType } from './endpoints-type';
import { listenerTypeFor } from './listener-type';
import type { ListenerConfig } from './listener-type';

export type { DecodeResult, PackedResource, ResourceDecoder } from './resource-decoder';
export type { HttpFilterConfig, ListenerConfig } from './listener-type';
export type { CircuitBreakerConfig, ClusterConfig, ClusterLbPolicy, RetryBudgetConfig } from './cluster-type';
export type { EndpointHealth, EndpointHost, EndpointsConfig } from './endpoints-type';
export { clusterType, endpointsType, listenerTypeFor };

/** A typeUrl -> decoder map for XdsClient: the Listener decoder given (pipeline.ts), CDS and EDS, plus any extra (RDS). */
export function decoderMap(listenerType: ResourceDecoder<ListenerConfig>, ...extra: ResourceDecoder<unknown>[]): Map<string, ResourceDecoder<unknown>> {
  const all: ResourceDecoder<unknown>[] = [listenerType as ResourceDecoder<unknown>, clusterType, endpointsType, ...extra];
  return new Map(all.map((t) => [t.kind.typeUrl, t]));
}

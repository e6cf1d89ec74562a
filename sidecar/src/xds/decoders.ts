/**
 * The registry of the sidecar's decoders, one per xDS kind. RouteConfiguration decoding lives
 * with the router (sidecar/src/router/); its decoder (route-type.ts) is passed in, so this module
 * does not depend on the router's table.
 */
import type { ResourceDecoder } from './resource-decoder';
import { clusterType } from './cluster-type';
import { endpointsType } from './endpoints-type';
import { listenerType } from './listener-type';

export type { DecodeResult, PackedResource, ResourceDecoder } from './resource-decoder';
export type { HttpFilterConfig, ListenerConfig } from './listener-type';
export type { CircuitBreakerConfig, ClusterConfig, ClusterLbPolicy, RetryBudgetConfig } from './cluster-type';
export type { EndpointHealth, EndpointHost, EndpointsConfig } from './endpoints-type';
export { clusterType, endpointsType, listenerType };

/** A typeUrl -> decoder map for XdsClient: LDS, CDS and EDS built in, plus any extra (RDS). */
export function decoderMap(...extra: ResourceDecoder<unknown>[]): Map<string, ResourceDecoder<unknown>> {
  const all: ResourceDecoder<unknown>[] = [listenerType, clusterType, endpointsType, ...extra];
  return new Map(all.map((t) => [t.kind.typeUrl, t]));
}

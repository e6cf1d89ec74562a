/**
 * xDS resources as plain objects in Envoy's proto3 JSON shape, with snake_case field names as
 * in the .proto files, enums as strings, durations as {seconds, nanos}, wrappers as {value},
 * and embedded Any messages as objects carrying '@type'. The snapshot cache encodes them.
 *
 * The translator writes them typed: the interfaces are generated from proto/
 * (shared/src/xds/generated/xds-types.ts, `npm run gen:xds`), so a misspelled field, a wrong
 * enum name or an Any of a type not in TYPE_URLS is a compile error. The names below are the
 * messages the translator writes, by their short names.
 */
import type { envoy, google } from '../../../shared/src/xds/generated/xds-types';

/** Any xDS message as an untyped object, for code that walks resources generically. */
export type XdsObject = { [field: string]: unknown };

export type Listener = envoy.config.listener.v3.Listener;
export type HttpFilter = envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
export type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;
export type VirtualHost = envoy.config.route.v3.VirtualHost;
export type Route = envoy.config.route.v3.Route;
export type RouteMatch = envoy.config.route.v3.RouteMatch;
export type RouteAction = envoy.config.route.v3.RouteAction;
export type HashPolicy = envoy.config.route.v3.RouteAction.HashPolicy;
export type RetryPolicy = envoy.config.route.v3.RetryPolicy;
export type HeaderMatcher = envoy.config.route.v3.HeaderMatcher;
export type HeaderValueOption = envoy.config.core.v3.HeaderValueOption;
export type HTTPFault = envoy.extensions.filters.http.fault.v3.HTTPFault;
export type Cluster = envoy.config.cluster.v3.Cluster;
export type LoadBalancingPolicy = envoy.config.cluster.v3.LoadBalancingPolicy;
export type TypedExtensionConfig = envoy.config.core.v3.TypedExtensionConfig;
export type CircuitBreakerThresholds = envoy.config.cluster.v3.CircuitBreakers.Thresholds;
export type OutlierDetection = envoy.config.cluster.v3.OutlierDetection;
export type HealthCheck = envoy.config.core.v3.HealthCheck;
export type HttpProtocolOptions = envoy.extensions.upstreams.http.v3.HttpProtocolOptions;
export type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;
export type LbEndpoint = envoy.config.endpoint.v3.LbEndpoint;
export type ConfigSource = envoy.config.core.v3.ConfigSource;
export type Metadata = envoy.config.core.v3.Metadata;
export type TransportSocketMatch = envoy.config.cluster.v3.Cluster.TransportSocketMatch;
export type FilterChain = envoy.config.listener.v3.FilterChain;
export type HttpConnectionManager = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
export type Secret = envoy.extensions.transport_sockets.tls.v3.Secret;
export type SdsSecretConfig = envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
export type CommonTlsContext = envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
export type UpstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
export type DownstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;
export type Struct = google.protobuf.Struct;
export type FractionalPercent = envoy.type.v3.FractionalPercent;
export type Duration = google.protobuf.Duration;
export type UInt32Value = google.protobuf.UInt32Value;
/** An embedded Any, inline: {'@type': url, ...fields} (pack.ts packs it). */
export type Any = google.protobuf.Any;

export function duration(ms: number): Duration {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

export function u32(value: number): UInt32Value { return { value }; }

/** type.v3.FractionalPercent from a percentage (0 to 100, steps of 0.0001): per million, which is exact for those steps. */
export function perMillion(percent: number): FractionalPercent {
  return { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

export const ADS_CONFIG_SOURCE: ConfigSource = { ads: {}, resource_api_version: 'V3' };

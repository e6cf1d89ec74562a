/**
 * xDS resources as plain objects in Envoy's proto3 JSON shape, with snake_case field names as
 * in the .proto files, enums as strings, durations as {seconds, nanos}, wrappers as {value},
 * and embedded Any messages as objects carrying '@type'. The snapshot cache encodes them.
 */
export type XdsObject = { [field: string]: unknown };

export const TYPE = {
  HCM: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  ROUTER: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  FAULT: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
  LOCAL_RATELIMIT: 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
  /** envoy.config.route.v3.FilterConfig: wraps a typed_per_filter_config entry to mark it is_optional. */
  FILTER_CONFIG: 'type.googleapis.com/envoy.config.route.v3.FilterConfig',
  HTTP_PROTOCOL_OPTIONS: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  LB_ROUND_ROBIN: 'type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin',
  LB_WRR_LOCALITY: 'type.googleapis.com/envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality',
  LB_LEAST_REQUEST: 'type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest',
  LB_RANDOM: 'type.googleapis.com/envoy.extensions.load_balancing_policies.random.v3.Random',
  LB_PEAK_EWMA: 'type.googleapis.com/skein.lb.v1.PeakEwma',
} as const;

export function duration(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

export function u32(value: number): { value: number } { return { value }; }

/** type.v3.FractionalPercent from a percentage (0 to 100, steps of 0.0001): per million, which is exact for those steps. */
export function perMillion(percent: number): { numerator: number; denominator: 'MILLION' } {
  return { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

export const ADS_CONFIG_SOURCE = { ads: {}, resource_api_version: 'V3' } as const;

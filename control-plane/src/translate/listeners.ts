import type { Route, Service } from '../../../shared/src/config/types';
import { apiListenerNames, OUTBOUND, OUTBOUND_DEFAULT_PORT, routeConfigName } from './names';
import { TYPE_URLS as TYPE } from '../../../shared/src/xds/protos';
import { ADS_CONFIG_SOURCE } from './xds-json';
import type { HttpFilter, Listener } from './xds-json';
import { DEFAULT_TRACE_SAMPLING_PERCENT } from '../../../shared/src/config/types';
import type { envoy } from '../../../shared/src/xds/generated/xds-types';
type HttpConnectionManager_Tracing = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing;

/** HttpFilter names; a Route's typed_per_filter_config is keyed by these. */
export const HTTP_FILTER = {
  FAULT: 'envoy.filters.http.fault',
  LOCAL_RATELIMIT: 'envoy.filters.http.local_ratelimit',
  ROUTER: 'envoy.filters.http.router',
} as const;

/** stat_prefix of the listener-level local_ratelimit filter (Envoy requires one). */
export const LOCAL_RATELIMIT_STAT_PREFIX = 'local_rate_limit';

/**
 * The http filter chain of an HttpConnectionManager that serves `routes`: fault injection, then
 * the local rate limit, then the router (always last). A filter is listed only when some rule of
 * `routes` uses it, so meshes without faults or rate limits send exactly what they sent before
 * (and proxyless clients run no extra filter per call). Listed filters do nothing on their own:
 * HTTPFault without delay/abort and LocalRateLimit without a token bucket (filter_enabled unset,
 * i.e. 0%); each route turns them on in its typed_per_filter_config (routes.ts).
 *
 * local_ratelimit is marked is_optional: proxyless gRPC (grpc-js-xds) has no such filter and would
 * NACK the Listener otherwise; it skips an optional unknown filter. The fault filter it implements.
 */
export function httpFilters(routes: readonly Route[]): HttpFilter[] {
  const out: HttpFilter[] = [];
  const rules = routes.flatMap((r) => r.spec.rules);
  if (rules.some((r) => r.fault !== undefined)) out.push({ name: HTTP_FILTER.FAULT, typed_config: { '@type': TYPE.FAULT } });
  if (rules.some((r) => r.localRateLimit !== undefined)) {
    out.push({
      name: HTTP_FILTER.LOCAL_RATELIMIT,
      typed_config: { '@type': TYPE.LOCAL_RATELIMIT, stat_prefix: LOCAL_RATELIMIT_STAT_PREFIX },
      is_optional: true,
    });
  }
  out.push({ name: HTTP_FILTER.ROUTER, typed_config: { '@type': TYPE.ROUTER } });
  return out;
}

/**
 * One api_listener per name a proxyless client may ask for. It holds an HttpConnectionManager
 * that fetches the service's RouteConfiguration over ADS, with Router as the last http filter.
 * `filters` is httpFilters() of the routes attached to the service (default: the router only).
 */
export function apiListeners(service: Service, filters: HttpFilter[] = httpFilters([])): Listener[] {
  const name = service.metadata.name;
  return apiListenerNames(name, service.spec.ports.map((p) => p.port)).map((listenerName) => ({
    name: listenerName,
    api_listener: {
      api_listener: {
        '@type': TYPE.HCM,
        stat_prefix: name,
        rds: { route_config_name: routeConfigName(name), config_source: ADS_CONFIG_SOURCE },
        http_filters: filters,
      },
    },
  }));
}

/**
 * The sidecar's outbound listener: the local app sends requests here (h2c or HTTP/1.1) and the
 * route table picks the service by :authority / Host. Any xDS client with a wildcard LDS
 * subscription (Envoy, the skein sidecar) receives it; proxyless clients ask by name and do not.
 * `filters` is httpFilters() of every route in the mesh (default: the router only);
 * `samplingPercent` the mesh's trace sampling (Telemetry; route rules may override it).
 */
export function outboundListener(filters: HttpFilter[] = httpFilters([]), samplingPercent = DEFAULT_TRACE_SAMPLING_PERCENT): Listener {
  return {
    name: OUTBOUND,
    address: { socket_address: { address: '127.0.0.1', port_value: OUTBOUND_DEFAULT_PORT } },
    traffic_direction: 'OUTBOUND',
    filter_chains: [{
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: {
          '@type': TYPE.HCM,
          stat_prefix: 'outbound',
          codec_type: 'AUTO',
          rds: { route_config_name: OUTBOUND, config_source: ADS_CONFIG_SOURCE },
          http_filters: filters,
          tracing: hcmTracing(samplingPercent),
        },
      }],
    }],
  };
}

/**
 * HttpConnectionManager.tracing of the sidecars' listeners: the share of requests without a
 * sampled context that start a trace. Proxyless clients' api_listeners carry none.
 */
export function hcmTracing(samplingPercent: number): HttpConnectionManager_Tracing {
  return { random_sampling: { value: samplingPercent } };
}

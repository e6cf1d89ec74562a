import type { Service } from '../../../shared/src/config/types';
import { apiListenerNames, OUTBOUND, OUTBOUND_DEFAULT_PORT, routeConfigName } from './names';
import { ADS_CONFIG_SOURCE, TYPE } from './xds-json';
import type { XdsObject } from './xds-json';

/**
 * One api_listener per name a proxyless client may ask for. It holds an HttpConnectionManager
 * that fetches the service's RouteConfiguration over ADS, with Router as the last http filter.
 */
export function apiListeners(service: Service): XdsObject[] {
  const name = service.metadata.name;
  return apiListenerNames(name, service.spec.ports.map((p) => p.port)).map((listenerName) => ({
    name: listenerName,
    api_listener: {
      api_listener: {
        '@type': TYPE.HCM,
        stat_prefix: name,
        rds: { route_config_name: routeConfigName(name), config_source: ADS_CONFIG_SOURCE },
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TYPE.ROUTER } }],
      },
    },
  }));
}

/**
 * The sidecar's outbound listener: the local app sends requests here (h2c or HTTP/1.1) and the
 * route table picks the service by :authority / Host. Any xDS client with a wildcard LDS
 * subscription (Envoy, the skein sidecar) receives it; proxyless clients ask by name and do not.
 */
export function outboundListener(): XdsObject {
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
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TYPE.ROUTER } }],
        },
      }],
    }],
  };
}

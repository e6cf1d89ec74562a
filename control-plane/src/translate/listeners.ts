import type { Service } from '../../../shared/src/config/types';
import { apiListenerNames, routeConfigName } from './names';
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

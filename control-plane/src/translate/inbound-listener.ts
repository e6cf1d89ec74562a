import type { MtlsMode, Service } from '../../../shared/src/config/types';
import { TYPE_URLS as TYPE } from '../../../shared/src/xds/protos';
import { downstreamTransportSocket } from './mtls';
import { INBOUND, INBOUND_DEFAULT_PORT, inboundListenerName } from './names';
import type { FilterChain, HttpConnectionManager, Listener } from './xds-json';

/**
 * The HCM of an inbound chain: everything to the local app (cluster skein.inbound, which the
 * sidecar makes itself), with the client's verified URI SAN in x-forwarded-client-cert and any
 * such header from the client replaced (SANITIZE_SET).
 */
function inboundHcm(): FilterChain['filters'] {
  const hcm: HttpConnectionManager = {
    stat_prefix: 'inbound',
    route_config: { name: INBOUND, virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: INBOUND } }] }] },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TYPE.ROUTER } }],
    forward_client_cert_details: 'SANITIZE_SET',
    set_current_client_cert_details: { uri: true },
  };
  return [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': TYPE.HCM, ...hcm } }];
}

function mtlsChain(): FilterChain {
  return { name: 'mtls', filter_chain_match: { transport_protocol: 'tls' }, transport_socket: downstreamTransportSocket(), filters: inboundHcm() };
}

function plaintextChain(): FilterChain {
  return { name: 'plaintext', filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: inboundHcm() };
}

/** The chains of each mode, in order: the sidecar reads its mode from which chains exist. */
const CHAINS: Record<MtlsMode, () => FilterChain[]> = {
  STRICT: () => [mtlsChain()],
  PERMISSIVE: () => [mtlsChain(), plaintextChain()],
  DISABLE: () => [plaintextChain()],
};

/**
 * The inbound listener of a service's sidecars, skein.inbound.<service>: who may connect, per
 * spec.mtls. Any client with a wildcard LDS subscription (Envoy, the skein sidecar) receives it;
 * proxyless clients ask by name and do not.
 */
export function inboundListener(service: Service): Listener {
  return {
    name: inboundListenerName(service.metadata.name),
    address: { socket_address: { address: '0.0.0.0', port_value: INBOUND_DEFAULT_PORT } },
    filter_chains: CHAINS[service.spec.mtls](),
  };
}

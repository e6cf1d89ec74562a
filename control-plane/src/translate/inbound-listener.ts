import type { AuthorizationPolicy, MtlsMode, Service } from '../../../shared/src/config/types';
import { rbacFilters } from './authorization';
import { TYPE_URLS as TYPE } from '../../../shared/src/xds/protos';
import { downstreamTransportSocket } from './mtls';
import { INBOUND, INBOUND_DEFAULT_PORT, inboundListenerName } from './names';
import { hcmTracing } from './listeners';
import { DEFAULT_TRACE_SAMPLING_PERCENT } from '../../../shared/src/config/types';
import type { FilterChain, HttpConnectionManager, HttpFilter, Listener } from './xds-json';

/**
 * The HCM of an inbound chain: everything to the local app (cluster skein.inbound, which the
 * sidecar makes itself), with the client's verified URI SAN in x-forwarded-client-cert and any
 * such header from the client replaced (SANITIZE_SET). The service's AuthorizationPolicies
 * (authorization.ts: RBAC filters) run before the router.
 */
function inboundHcm(rbac: readonly HttpFilter[], samplingPercent: number): FilterChain['filters'] {
  const hcm: HttpConnectionManager = {
    stat_prefix: 'inbound',
    route_config: { name: INBOUND, virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: INBOUND } }] }] },
    http_filters: [...rbac, { name: 'envoy.filters.http.router', typed_config: { '@type': TYPE.ROUTER } }],
    forward_client_cert_details: 'SANITIZE_SET',
    set_current_client_cert_details: { uri: true },
    tracing: hcmTracing(samplingPercent),
  };
  return [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': TYPE.HCM, ...hcm } }];
}

function mtlsChain(rbac: readonly HttpFilter[], sampling: number): FilterChain {
  return { name: 'mtls', filter_chain_match: { transport_protocol: 'tls' }, transport_socket: downstreamTransportSocket(), filters: inboundHcm(rbac, sampling) };
}

function plaintextChain(rbac: readonly HttpFilter[], sampling: number): FilterChain {
  return { name: 'plaintext', filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: inboundHcm(rbac, sampling) };
}

/** The chains of each mode, in order: the sidecar reads its mode from which chains exist. */
const CHAINS: Record<MtlsMode, (rbac: readonly HttpFilter[], sampling: number) => FilterChain[]> = {
  STRICT: (rbac, s) => [mtlsChain(rbac, s)],
  PERMISSIVE: (rbac, s) => [mtlsChain(rbac, s), plaintextChain(rbac, s)],
  DISABLE: (rbac, s) => [plaintextChain(rbac, s)],
};

/**
 * The inbound listener of a service's sidecars, skein.inbound.<service>: who may connect, per
 * spec.mtls, and who may call, per the service's AuthorizationPolicies (`authorization`, by
 * name). Any client with a wildcard LDS subscription (Envoy) receives it; the skein sidecar asks
 * for its own by name; proxyless clients do not.
 */
export function inboundListener(service: Service, authorization: readonly AuthorizationPolicy[] = [], samplingPercent = DEFAULT_TRACE_SAMPLING_PERCENT): Listener {
  return {
    name: inboundListenerName(service.metadata.name),
    address: { socket_address: { address: '0.0.0.0', port_value: INBOUND_DEFAULT_PORT } },
    filter_chains: CHAINS[service.spec.mtls](rbacFilters(authorization), samplingPercent),
  };
}

/**
 * ClusterLoadAssignment -> EndpointsConfig: every locality flattened into one host list (each
 * host keeps its locality's zone). Defaults, as in Envoy's endpoint_components.proto:
 *  - load_balancing_weight: 1 (0 is invalid);
 *  - health_status: UNKNOWN (which load balancers treat as healthy).
 * Not supported (rejected, naming the field): pipe addresses, named ports, named endpoints,
 * priorities other than 0 (failover tiers would otherwise get traffic as if primary).
 * Locality weights are not applied: endpoint weights alone decide. Other fields this decoder does
 * not implement are rejected (checkFields), except hostnames. Of an endpoint's metadata only
 * filter_metadata['envoy.transport_socket_match'].tlsMode = 'skein' is read: the endpoint has a
 * sidecar, so the cluster's mTLS settings apply to it (cluster-type.ts); the rest is ignored.
 */
import { checkFields, fieldSpec } from '../../../shared/src/xds/fields';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';
import { ENDPOINT_KIND } from '../../../shared/src/xds/resource-kind';
import { decodeWith } from './resource-decoder';
import type { PackedResource, ResourceDecoder } from './resource-decoder';
import type { EndpointHealth, EndpointHost, EndpointsConfig } from '../upstream/endpoints-config';

/** The decoded shape is owned by the upstream, which uses it. */
export type { EndpointHealth, EndpointHost, EndpointsConfig } from '../upstream/endpoints-config';

const HEALTH: ReadonlySet<string> = new Set(['HEALTHY', 'UNHEALTHY', 'DRAINING', 'UNKNOWN', 'TIMEOUT', 'DEGRADED']);

/* Wire shapes (decodeAny output); only what we read. */
interface WireAddress { socket_address?: { address?: string; port_value?: number; named_port?: string }; pipe?: { path?: string } }
interface WireLbEndpoint {
  endpoint?: { address?: WireAddress };
  endpoint_name?: string;
  health_status?: string;
  load_balancing_weight?: { value?: number };
  metadata?: { filter_metadata?: Record<string, WireStruct> };
}
/** google.protobuf.Struct as protobufjs decodes it. */
export interface WireStruct { fields?: Record<string, { stringValue?: string; numberValue?: number; boolValue?: boolean }> }

/** Where Envoy looks for the keys a cluster's transport_socket_matches select on. */
export const TRANSPORT_SOCKET_MATCH = 'envoy.transport_socket_match';
interface WireLocality {
  locality?: { region?: string; zone?: string; sub_zone?: string };
  lb_endpoints?: WireLbEndpoint[];
  load_balancer_endpoints?: { lb_endpoints?: WireLbEndpoint[] };
  priority?: number;
}
export interface WireLoadAssignment { cluster_name?: string; endpoints?: WireLocality[]; policy?: object }

const CLUSTER_LOAD_ASSIGNMENT = fieldSpec(['cluster_name', 'endpoints', 'policy']);
const POLICY = fieldSpec([], ['overprovisioning_factor', 'endpoint_stale_after', 'weighted_priority_health']);
const LOCALITY_LB_ENDPOINTS = fieldSpec(['locality', 'lb_endpoints', 'load_balancer_endpoints', 'priority'], ['load_balancing_weight', 'metadata'], ['lb_config']);
const LB_ENDPOINT = fieldSpec(['endpoint', 'endpoint_name', 'health_status', 'load_balancing_weight', 'metadata'], [], ['host_identifier']);
const ENDPOINT = fieldSpec(['address'], ['hostname']);
const ADDRESS = fieldSpec(['socket_address', 'pipe'], [], ['address']);
const SOCKET_ADDRESS = fieldSpec(['address', 'port_value', 'named_port'], [], ['port_specifier'], { protocol: 'TCP' });

/** Decodes a (possibly embedded) load assignment; `at` prefixes every issue path ('' or 'load_assignment.'). */
export function decodeLoadAssignment(cla: WireLoadAssignment, clusterName: string, at: string, issues: Issues): EndpointsConfig {
  const hosts: EndpointHost[] = [];
  checkFields(cla as XdsMessage, CLUSTER_LOAD_ASSIGNMENT, at.replace(/\.$/, ''), issues);
  if (cla.policy !== undefined) checkFields(cla.policy as XdsMessage, POLICY, `${at}policy`, issues);
  (cla.endpoints ?? []).forEach((loc, i) => {
    const lp = `${at}endpoints[${i}]`;
    checkFields(loc as XdsMessage, LOCALITY_LB_ENDPOINTS, lp, issues);
    if ((loc.priority ?? 0) !== 0) issues.add(`${lp}.priority`, `only priority 0 is supported, got ${loc.priority}`);
    const zone = loc.locality?.zone ?? '';
    const list = loc.lb_endpoints ?? loc.load_balancer_endpoints?.lb_endpoints ?? [];
    const listField = loc.lb_endpoints === undefined && loc.load_balancer_endpoints !== undefined ? 'load_balancer_endpoints.lb_endpoints' : 'lb_endpoints';
    list.forEach((lbe, j) => {
      const host = decodeLbEndpoint(lbe, zone, `${lp}.${listField}[${j}]`, issues);
      if (host !== undefined) hosts.push(host);
    });
  });
  return { clusterName, hosts };
}

function decodeLbEndpoint(lbe: WireLbEndpoint, zone: string, p: string, issues: Issues): EndpointHost | undefined {
  if (!checkFields(lbe as XdsMessage, LB_ENDPOINT, p, issues)) return undefined;
  if (lbe.endpoint !== undefined && !checkFields(lbe.endpoint as XdsMessage, ENDPOINT, `${p}.endpoint`, issues)) return undefined;
  const a = lbe.endpoint?.address;
  if (a !== undefined && !checkFields(a as XdsMessage, ADDRESS, `${p}.endpoint.address`, issues)) return undefined;
  if (a?.socket_address !== undefined && !checkFields(a.socket_address as XdsMessage, SOCKET_ADDRESS, `${p}.endpoint.address.socket_address`, issues)) return undefined;
  if (lbe.endpoint === undefined) {
    issues.add(lbe.endpoint_name !== undefined ? `${p}.endpoint_name` : `${p}.endpoint`, lbe.endpoint_name !== undefined ? 'named endpoints are not supported' : 'is required');
    return undefined;
  }
  const addr = lbe.endpoint.address;
  const ap = `${p}.endpoint.address`;
  if (addr?.pipe !== undefined) { issues.add(`${ap}.pipe`, 'pipe addresses are not supported'); return undefined; }
  const sa = addr?.socket_address;
  if (sa === undefined) { issues.add(`${ap}.socket_address`, 'is required'); return undefined; }
  if (sa.named_port !== undefined) { issues.add(`${ap}.socket_address.named_port`, 'named ports are not supported; use port_value'); return undefined; }
  const port = sa.port_value ?? 0;
  let ok = true;
  if (!sa.address) { issues.add(`${ap}.socket_address.address`, 'is required'); ok = false; }
  if (port < 1 || port > 65535) { issues.add(`${ap}.socket_address.port_value`, `must be in [1, 65535], got ${port}`); ok = false; }
  const weight = lbe.load_balancing_weight === undefined ? 1 : (lbe.load_balancing_weight.value ?? 0);
  if (weight < 1) { issues.add(`${p}.load_balancing_weight`, `must be >= 1, got ${weight}`); ok = false; }
  const health = lbe.health_status ?? 'UNKNOWN';
  if (!HEALTH.has(health)) { issues.add(`${p}.health_status`, `unknown value ${health}`); ok = false; }
  if (!ok) return undefined;
  const host: EndpointHost = { address: sa.address!, port, weight, zone, health: health as EndpointHealth };
  if (lbe.metadata?.filter_metadata?.[TRANSPORT_SOCKET_MATCH]?.fields?.['tlsMode']?.stringValue === 'skein') host.tls = true;
  return host;
}

export const endpointsType: ResourceDecoder<EndpointsConfig> = {
  kind: ENDPOINT_KIND,
  decode(any: PackedResource) {
    return decodeWith<WireLoadAssignment, EndpointsConfig>(ENDPOINT_KIND, any, (m, name, issues) => decodeLoadAssignment(m, name, '', issues));
  },
};

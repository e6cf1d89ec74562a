import type { Service } from '../../../shared/src/config/types';
import type { EndpointView } from '../registry/endpoint-registry';
import { SIDECAR_ENDPOINT_METADATA } from './mtls';
import { u32 } from './xds-json';
import type { ClusterLoadAssignment, LbEndpoint } from './xds-json';

/**
 * A ClusterLoadAssignment: endpoints grouped into localities by zone. Every locality carries a
 * load_balancing_weight (the sum of its endpoints' weights), because grpc-js-xds silently drops
 * a locality without one. An empty cluster is still sent, so clients learn it has no endpoints.
 * An endpoint with an identity (registered by its sidecar) carries the metadata that the
 * cluster's transport_socket_match selects for mTLS (mtls.ts).
 */
export function loadAssignment(clusterName: string, endpoints: readonly EndpointView[]): ClusterLoadAssignment {
  const zones = new Map<string, EndpointView[]>();
  for (const e of endpoints) {
    const list = zones.get(e.zone);
    if (list === undefined) zones.set(e.zone, [e]);
    else list.push(e);
  }
  const localities = [...zones.keys()].sort().map((zone) => {
    const eps = zones.get(zone)!.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port));
    return {
      locality: zone === '' ? {} : { zone },
      load_balancing_weight: u32(eps.reduce((s, e) => s + e.weight, 0)),
      lb_endpoints: eps.map(lbEndpoint),
    };
  });
  return { cluster_name: clusterName, endpoints: localities };
}

function lbEndpoint(e: EndpointView): LbEndpoint {
  const out: LbEndpoint = {
    endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
    health_status: e.health,
    load_balancing_weight: u32(e.weight),
  };
  if (e.identity !== undefined) out.metadata = SIDECAR_ENDPOINT_METADATA;
  return out;
}

/** Static endpoints from the Service plus live registry endpoints; a live one wins on the same address. */
export function serviceEndpoints(service: Service, live: readonly EndpointView[]): EndpointView[] {
  const name = service.metadata.name;
  const byAddr = new Map<string, EndpointView>();
  for (const e of service.spec.endpoints) byAddr.set(`${e.address}|${e.port}`, { service: name, ...e });
  for (const e of live) if (e.service === name) byAddr.set(`${e.address}|${e.port}`, e);
  return [...byAddr.values()];
}

export function inSubset(e: EndpointView, selector: Record<string, string>): boolean {
  for (const k in selector) if (e.labels[k] !== selector[k]) return false;
  return true;
}

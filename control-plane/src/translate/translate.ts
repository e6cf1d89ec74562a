import type { MeshConfig } from '../../../shared/src/config/mesh';
import type { EndpointView } from '../registry/endpoint-registry';
import { cluster } from './clusters';
import { inSubset, loadAssignment, serviceEndpoints } from './endpoints';
import { apiListeners, httpFilters, outboundListener } from './listeners';
import { OUTBOUND, serviceClusterName, subsetClusterName } from './names';
import { effectivePolicies } from './policies';
import { attachedRoutes, serviceRouteConfig } from './routes';
import type { XdsResourceKind } from '../../../shared/src/xds/resource-kind';
import type { Cluster, ClusterLoadAssignment, Listener, RouteConfiguration } from './xds-json';

export interface XdsResourceSet {
  listeners: Listener[];
  routes: RouteConfiguration[];
  clusters: Cluster[];
  endpoints: ClusterLoadAssignment[];
}

/** A resource of any kind the translator writes. */
export type XdsResource = Listener | RouteConfiguration | Cluster | ClusterLoadAssignment;

/** The resources of one kind (LDS, RDS, CDS or EDS) in a set. */
export function resourcesOfKind(set: XdsResourceSet, kind: XdsResourceKind): readonly XdsResource[] {
  switch (kind.service) {
    case 'LDS': return set.listeners;
    case 'RDS': return set.routes;
    case 'CDS': return set.clusters;
    case 'EDS': return set.endpoints;
  }
}

/**
 * The control plane's one pure function: declared config plus live endpoints in, xDS v3
 * resources out. Deterministic: the same input always gives the same output, in the same order,
 * so resource versions (content hashes) are stable across restarts.
 */
export function translate(mesh: MeshConfig, live: readonly EndpointView[]): XdsResourceSet {
  const out: XdsResourceSet = { listeners: [], routes: [], clusters: [], endpoints: [] };
  const policies = effectivePolicies(mesh);
  const names = [...mesh.services.keys()].sort();
  for (const name of names) {
    const service = mesh.services.get(name)!;
    out.listeners.push(...apiListeners(service, httpFilters(attachedRoutes(mesh, name))));
    out.routes.push(serviceRouteConfig(mesh, service, policies));
    const eps = serviceEndpoints(service, live);
    out.clusters.push(cluster(serviceClusterName(name), service, policies.forCluster(name)));
    out.endpoints.push(loadAssignment(serviceClusterName(name), eps));
    for (const subset of service.spec.subsets) {
      const cname = subsetClusterName(name, subset.name);
      out.clusters.push(cluster(cname, service, policies.forCluster(name, subset.name)));
      out.endpoints.push(loadAssignment(cname, eps.filter((e) => inSubset(e, subset.labels))));
    }
  }
  out.listeners.push(outboundListener(httpFilters(mesh.routes)));
  out.routes.push({ name: OUTBOUND, virtual_hosts: out.routes.flatMap((rc) => rc.virtual_hosts ?? []) });
  return out;
}

import type { MeshConfig } from '../../../shared/src/config/mesh';
import type { EndpointView } from '../registry/endpoint-registry';
import { cluster } from './clusters';
import { inSubset, loadAssignment, serviceEndpoints } from './endpoints';
import { apiListeners, httpFilters, outboundListener } from './listeners';
import { OUTBOUND, serviceClusterName, subsetClusterName } from './names';
import { effectivePolicies } from './policies';
import type { EffectivePolicies } from './policies';
import type { Slicer } from '../../../shared/src/slicer';
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
    case 'SDS': return [];
  }
}

/**
 * The control plane's one pure function: declared config plus live endpoints in, xDS v3
 * resources out. Deterministic: the same input always gives the same output, in the same order,
 * so resource versions (content hashes) are stable across restarts.
 */
export function translate(mesh: MeshConfig, live: readonly EndpointView[]): XdsResourceSet {
  const t = new Translation(mesh, live);
  for (const name of t.names) t.service(name);
  return t.finish();
}

/** translate, yielding to the event loop between services (`slicer`): for the control plane's event loop. */
export async function translateSliced(mesh: MeshConfig, live: readonly EndpointView[], slicer: Slicer): Promise<XdsResourceSet> {
  const t = new Translation(mesh, live);
  for (const name of t.names) {
    t.service(name);
    await slicer.point();
  }
  return t.finish();
}

class Translation {
  readonly out: XdsResourceSet = { listeners: [], routes: [], clusters: [], endpoints: [] };
  readonly names: string[];
  private readonly policies: EffectivePolicies;

  constructor(private readonly mesh: MeshConfig, private readonly live: readonly EndpointView[]) {
    this.policies = effectivePolicies(mesh);
    this.names = [...mesh.services.keys()].sort();
  }

  service(name: string): void {
    const { mesh, out, policies } = this;
    const service = mesh.services.get(name)!;
    out.listeners.push(...apiListeners(service, httpFilters(attachedRoutes(mesh, name))));
    out.routes.push(serviceRouteConfig(mesh, service, policies));
    const eps = serviceEndpoints(service, this.live);
    out.clusters.push(cluster(serviceClusterName(name), service, policies.forCluster(name)));
    out.endpoints.push(loadAssignment(serviceClusterName(name), eps));
    for (const subset of service.spec.subsets) {
      const cname = subsetClusterName(name, subset.name);
      out.clusters.push(cluster(cname, service, policies.forCluster(name, subset.name)));
      out.endpoints.push(loadAssignment(cname, eps.filter((e) => inSubset(e, subset.labels))));
    }
  }

  finish(): XdsResourceSet {
    const { out } = this;
    out.listeners.push(outboundListener(httpFilters(this.mesh.routes)));
    out.routes.push({ name: OUTBOUND, virtual_hosts: out.routes.flatMap((rc) => rc.virtual_hosts ?? []) });
    return out;
  }
}

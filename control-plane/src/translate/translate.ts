import type { MeshConfig } from '../../../shared/src/config/mesh';
import type { EndpointView } from '../registry/endpoint-registry';
import { cluster } from './clusters';
import { inSubset, loadAssignment, serviceEndpoints } from './endpoints';
import { apiListeners, httpFilters, outboundListener } from './listeners';
import { inboundListener } from './inbound-listener';
import { rootCaSecret, transportSocketMatches } from './mtls';
import type { MeshTrust } from './mtls';
import { OUTBOUND, serviceClusterName, subsetClusterName } from './names';
import { effectivePolicies } from './policies';
import type { EffectivePolicies } from './policies';
import type { Slicer } from '../../../shared/src/slicer';
import type { AuthorizationPolicy, Service } from '../../../shared/src/config/types';
import { DEFAULT_TRACE_SAMPLING_PERCENT } from '../../../shared/src/config/types';
import { attachedRoutes, serviceRouteConfig } from './routes';
import type { XdsResourceKind } from '../../../shared/src/xds/resource-kind';
import { scopesOf } from './scope';
import type { Scope } from './scope';
import type { Cluster, ClusterLoadAssignment, Listener, RouteConfiguration, Secret, TransportSocketMatch } from './xds-json';

export type { MeshTrust } from './mtls';

export interface XdsResourceSet {
  listeners: Listener[];
  routes: RouteConfiguration[];
  clusters: Cluster[];
  endpoints: ClusterLoadAssignment[];
  secrets: Secret[];
  /** The declared dependencies (spec.dependsOn) of each service that has them (scope.ts). */
  scopes: Map<string, Scope>;
}

/** A resource of any kind the translator writes. */
export type XdsResource = Listener | RouteConfiguration | Cluster | ClusterLoadAssignment | Secret;

/** What translation needs besides config and endpoints: the mesh's identity (control-plane.ts reads it from the CA). */
export interface TranslateOptions {
  trust: MeshTrust;
}

/** The resources of one kind (LDS, RDS, CDS, EDS or SDS) in a set. */
export function resourcesOfKind(set: XdsResourceSet, kind: XdsResourceKind): readonly XdsResource[] {
  switch (kind.service) {
    case 'LDS': return set.listeners;
    case 'RDS': return set.routes;
    case 'CDS': return set.clusters;
    case 'EDS': return set.endpoints;
    case 'SDS': return set.secrets;
  }
}

/**
 * The control plane's one pure function: declared config plus live endpoints in, xDS v3
 * resources out. Deterministic: the same input always gives the same output, in the same order,
 * so resource versions (content hashes) are stable across restarts.
 */
export function translate(mesh: MeshConfig, live: readonly EndpointView[], opts: TranslateOptions): XdsResourceSet {
  const t = new Translation(mesh, live, opts);
  for (const name of t.names) t.service(name);
  return t.finish();
}

/** translate, yielding to the event loop between services (`slicer`): for the control plane's event loop. */
export async function translateSliced(mesh: MeshConfig, live: readonly EndpointView[], opts: TranslateOptions, slicer: Slicer): Promise<XdsResourceSet> {
  const t = new Translation(mesh, live, opts);
  for (const name of t.names) {
    t.service(name);
    await slicer.point();
  }
  return t.finish();
}

/**
 * The ClusterLoadAssignments of one service (its cluster's, then each subset's, as translate
 * writes them) from its static endpoints and `live`, the registry's endpoints of that service.
 * What an endpoint change re-translates, alone (control-plane.ts).
 */
export function serviceLoadAssignments(service: Service, live: readonly EndpointView[]): ClusterLoadAssignment[] {
  const name = service.metadata.name;
  const eps = serviceEndpoints(service, live);
  const out = [loadAssignment(serviceClusterName(name), eps)];
  for (const subset of service.spec.subsets) out.push(loadAssignment(subsetClusterName(name, subset.name), eps.filter((e) => inSubset(e, subset.labels))));
  return out;
}

class Translation {
  readonly out: XdsResourceSet;
  readonly names: string[];
  private readonly policies: EffectivePolicies;
  /** AuthorizationPolicies by target service, in name order. */
  private readonly authorization = new Map<string, AuthorizationPolicy[]>();
  /** The live endpoints by service. */
  private readonly live = new Map<string, EndpointView[]>();

  constructor(private readonly mesh: MeshConfig, live: readonly EndpointView[], private readonly opts: TranslateOptions) {
    for (const e of live) {
      const list = this.live.get(e.service);
      if (list === undefined) this.live.set(e.service, [e]);
      else list.push(e);
    }
    this.out = { listeners: [], routes: [], clusters: [], endpoints: [], secrets: [], scopes: scopesOf(mesh) };
    this.policies = effectivePolicies(mesh);
    for (const p of mesh.authorizationPolicies) {
      const list = this.authorization.get(p.spec.targetRef.name);
      if (list === undefined) this.authorization.set(p.spec.targetRef.name, [p]);
      else list.push(p);
    }
    this.names = [...mesh.services.keys()].sort();
  }

  service(name: string): void {
    const { mesh, out, policies } = this;
    const service = mesh.services.get(name)!;
    out.listeners.push(...apiListeners(service, httpFilters(attachedRoutes(mesh, name))), inboundListener(service, this.authorization.get(name), meshSampling(mesh)));
    out.routes.push(serviceRouteConfig(mesh, service, policies));
    const tls = transportSocketMatches(service, this.opts.trust);
    out.clusters.push(withTls(cluster(serviceClusterName(name), service, policies.forCluster(name)), tls));
    for (const subset of service.spec.subsets) {
      out.clusters.push(withTls(cluster(subsetClusterName(name, subset.name), service, policies.forCluster(name, subset.name)), tls));
    }
    out.endpoints.push(...serviceLoadAssignments(service, this.live.get(name) ?? []));
  }

  finish(): XdsResourceSet {
    const { out } = this;
    out.listeners.push(outboundListener(httpFilters(this.mesh.routes), meshSampling(this.mesh)));
    out.routes.push({ name: OUTBOUND, virtual_hosts: out.routes.flatMap((rc) => rc.virtual_hosts ?? []) });
    out.secrets.push(rootCaSecret(this.opts.trust));
    return out;
  }
}

/** The mesh's trace sampling: its Telemetry's, else the default (1%). */
function meshSampling(mesh: MeshConfig): number {
  return mesh.telemetry?.spec.tracing.samplingPercent ?? DEFAULT_TRACE_SAMPLING_PERCENT;
}

/** A cluster with the service's mTLS settings (none for a DISABLE service). */
function withTls(c: Cluster, matches: TransportSocketMatch[] | undefined): Cluster {
  if (matches !== undefined) c.transport_socket_matches = matches;
  return c;
}

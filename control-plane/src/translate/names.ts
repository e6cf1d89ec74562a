/** Resource naming, in one place. Service names are DNS labels, so '/' and '.' never collide. */

/** The cluster that holds every endpoint of a service. */
export function serviceClusterName(service: string): string { return service; }

/** The cluster that holds one subset's endpoints. */
export function subsetClusterName(service: string, subset: string): string { return `${service}/${subset}`; }

export function backendClusterName(b: { name: string; subset?: string }): string {
  return b.subset === undefined ? serviceClusterName(b.name) : subsetClusterName(b.name, b.subset);
}

/** Proxyless clients ask for LDS named after their target: xds:///<service> or xds:///<service>:<port>. */
export function apiListenerNames(service: string, ports: readonly number[]): string[] {
  return [service, ...ports.map((p) => `${service}:${p}`)];
}

export function routeConfigName(service: string): string { return service; }

/** The sidecar's outbound listener and its route table: every service's virtual host. */
export const OUTBOUND = 'skein.outbound';
/** Where a sidecar's outbound listener binds unless its own flags say otherwise. */
export const OUTBOUND_DEFAULT_PORT = 15001;

/** The inbound listener of a service's sidecars: where other sidecars connect (mTLS per spec.mtls). */
export function inboundListenerName(service: string): string { return `skein.inbound.${service}`; }
/** Where a sidecar's inbound listener binds unless its own flags say otherwise. */
export const INBOUND_DEFAULT_PORT = 15006;
/** The inbound listener's route table and the cluster it routes to: the sidecar's local app. */
export const INBOUND = 'skein.inbound';

/** SDS secret names. 'default' is the workload's own certificate, which the sidecar supplies to itself: never served. */
export const SDS_WORKLOAD_CERT = 'default';
/** The mesh's trust bundle (validation context), served over SDS. */
export const SDS_ROOT_CA = 'ROOTCA';

/**
 * A cluster's endpoints, as the upstream uses them (Cluster.updateEndpoints): every locality
 * flattened into one host list. Decoded from EDS (or a STATIC cluster's inline load_assignment)
 * by xds/endpoints-type.ts, which documents the defaults and what it rejects.
 */
import type { HostHealth } from './host';

/** Envoy's core.v3.HealthStatus names: a Host's EDS health. */
export type EndpointHealth = HostHealth;

export interface EndpointHost {
  address: string;
  port: number;
  weight: number;
  zone: string;
  health: EndpointHealth;
  /**
   * The endpoint has a sidecar that takes mTLS: its metadata matches the cluster's mTLS
   * transport_socket_matches entry (filter_metadata['envoy.transport_socket_match'].tlsMode = 'skein').
   */
  tls?: boolean;
}

export interface EndpointsConfig {
  clusterName: string;
  hosts: EndpointHost[];
}

/**
 * What outlier detection and active health checks see of an upstream host, and nothing more (as
 * Envoy's DetectorHostMonitor sees a HostDescription). upstream/host.ts's Host implements it; this
 * module never imports the upstream one, which builds the detectors and gives them its hosts.
 */
import type { HostMonitor } from './outlier-detector';

export interface MonitoredHost {
  /** "address:port"; unique within a cluster (logs, /clusters). */
  readonly key: string;
  /** Where active health checks connect. */
  readonly address: string;
  readonly port: number;
  /** Set by outlier detection while the host is ejected. */
  ejected: boolean;
  /** Set by active health checks while the host fails them. */
  hcFailed: boolean;
  /** Outlier detection's per-host data sink; set and cleared by the cluster's detector. */
  outlier: HostMonitor | undefined;
}

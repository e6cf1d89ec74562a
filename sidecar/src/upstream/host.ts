/**
 * One upstream endpoint of a cluster. Host objects live as long as the endpoint stays in EDS:
 * the cluster keeps the same object across updates (keyed by address:port), so load-balancer
 * state (active requests, latency EWMA) survives endpoint churn.
 *
 * Hot path: fields are plain numbers mutated in place; no allocation per request.
 */
import type { MonitoredHost } from '../resilience/monitored-host';
import type { HostMonitor } from '../resilience/outlier-detector';

export type HostHealth = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'UNKNOWN' | 'TIMEOUT' | 'DEGRADED';

/** Outlier detection and active health checks see it as a MonitoredHost (resilience/monitored-host.ts). */
export class Host implements MonitoredHost {
  /** "address:port"; unique within a cluster. */
  readonly key: string;
  /** Requests currently in flight to this host (least_request, peak_ewma, /clusters). */
  activeRequests = 0;
  /** Peak-EWMA latency estimate in ms, and when it was last updated (ms). */
  ewmaMs = 0;
  ewmaAt = 0;
  /** Totals for /clusters. */
  requestsTotal = 0;
  failuresTotal = 0;
  /**
   * Health beyond EDS. A host is routable when EDS says HEALTHY/UNKNOWN/DEGRADED, it is not
   * ejected by outlier detection, and it has not failed active health checks (unless the
   * cluster is in panic: see host-set.ts).
   */
  ejected = false;
  hcFailed = false;
  /** Outlier detection's per-host data sink (resilience/outlier-detector.ts); set by the cluster's detector. */
  outlier: HostMonitor | undefined = undefined;
  /** The host has a sidecar: the cluster's mTLS settings (ClusterConfig.tls) apply to it. */
  tls = false;

  constructor(
    readonly address: string,
    readonly port: number,
    public weight: number,
    public zone: string,
    public health: HostHealth,
  ) {
    this.key = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
  }
}

/** What a picker may use. One object per request, reused across retries. */
export interface PickContext {
  /** Hash for ring_hash (from the route's hash_policy); undefined picks randomly. */
  hash: number | undefined;
  /** Hosts already tried by this request; pickers avoid them when they can. */
  tried: ReadonlySet<Host> | undefined;
  /** Current time in ms (for peak-EWMA decay), from the injected clock. */
  now: number;
}

/** An immutable, synchronous choice over one snapshot of hosts (as in grpc-js). */
export interface Picker {
  pick(ctx: PickContext): Host | undefined;
}

/** Stateful balancer: takes host-set updates, publishes a new Picker each time. */
export interface LoadBalancer {
  update(hosts: readonly Host[]): void;
  readonly picker: Picker;
  /**
   * An attempt on `host` ended after `latencyMs` (`now`: the clock's ms). Policies that learn from
   * latency (peak_ewma) record it here; the others leave it out (grpc-js's onCallEnded).
   */
  onCallEnded?(host: Host, latencyMs: number, now: number): void;
}

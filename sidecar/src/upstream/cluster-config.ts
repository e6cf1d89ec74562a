/**
 * A cluster's settings, as the upstream uses them (upstream/cluster.ts, resources.ts). Decoded
 * from CDS by xds/cluster-type.ts, which documents the defaults and what it rejects.
 */
import type { HealthCheckConfig } from '../resilience/health-check-config';
import type { OutlierConfig } from '../resilience/outlier-config';
import type { EndpointsConfig } from './endpoints-config';

export type ClusterLbPolicy = 'round_robin' | 'least_request' | 'ring_hash' | 'random' | 'peak_ewma';

export interface RetryBudgetConfig { budgetPercent: number; minRetryConcurrency: number }

/** The DEFAULT-priority circuit breaker thresholds (upstream/resources.ts). */
export interface CircuitBreakerConfig {
  maxConnections?: number;
  maxPendingRequests?: number;
  maxRequests?: number;
  maxRetries?: number;
  retryBudget?: RetryBudgetConfig;
}

/**
 * Mesh mTLS to the cluster's endpoints that have a sidecar (EndpointHost.tls), with the
 * workload's certificate (xds/tls-context.ts decodes it from transport_socket_matches).
 */
export interface UpstreamTlsConfig {
  /** The SPIFFE IDs the server may present (URI SAN matchers); empty: any certificate from the mesh's roots. */
  allowedIds: readonly { matches(s: string): boolean }[];
  /** ALPN to offer (e.g. ['h2']); empty: by the cluster's protocol. */
  alpn: string[];
  /** TLS SNI; '' sends none. */
  sni: string;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
}

export interface ClusterConfig {
  name: string;
  type: 'EDS' | 'STATIC';
  /** The ClusterLoadAssignment name to subscribe to over EDS (for EDS clusters). */
  edsServiceName: string;
  lbPolicy: ClusterLbPolicy;
  choiceCount?: number;
  minRingSize?: number;
  maxRingSize?: number;
  /** peak_ewma: latency estimate decay (ms). */
  decayMs?: number;
  connectTimeoutMs: number;
  protocol: 'h1' | 'h2';
  maxConcurrentStreams?: number;
  idleTimeoutMs?: number;
  maxRequestsPerConnection?: number;
  circuitBreakers?: CircuitBreakerConfig;
  /**
   * common_lb_config.healthy_panic_threshold (percent, default 50): below this share of healthy
   * hosts the balancer uses every host (panic) rather than failing requests. 0 disables panic.
   */
  panicThresholdPercent?: number;
  /** outlier_detection, with Envoy's defaults filled in (resilience/outlier-config.ts). */
  outlierDetection?: OutlierConfig;
  /** health_checks[0] (resilience/health-check-config.ts). */
  healthChecks?: HealthCheckConfig;
  /** STATIC clusters only: the inline load_assignment. */
  staticEndpoints?: EndpointsConfig;
  /** mTLS to endpoints with a sidecar; the others are plaintext. Absent: all plaintext. */
  tls?: UpstreamTlsConfig;
}

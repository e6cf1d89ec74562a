import type { Service } from '../../../shared/src/config/types';
import type { PolicySections } from './policies';
import { TYPE_URLS as TYPE } from '../../../shared/src/xds/protos';
import { ADS_CONFIG_SOURCE, duration, u32 } from './xds-json';
import type { Any, CircuitBreakerThresholds, Cluster, HealthCheck, HttpProtocolOptions, LoadBalancingPolicy, OutlierDetection, TypedExtensionConfig } from './xds-json';

/**
 * How each balancer is said on the wire, chosen so that every xDS client accepts the Cluster:
 * - round_robin and ring_hash: the lb_policy enum, which every client reads (gRPC supports both).
 * - least_request, random, peak_ewma: load_balancing_policy, an ordered list from which each
 *   client takes the first policy it implements, ending with locality-weighted round robin; and
 *   lb_policy ROUND_ROBIN for clients that predate load_balancing_policy. Envoy (which prefers
 *   load_balancing_policy) and the skein sidecar apply the policy; proxyless gRPC (grpc-js-xds
 *   >= 1.9, grpc-go, grpc-java) skips to round robin, and older gRPC releases read lb_policy.
 *   Sending lb_policy LEAST_REQUEST or RANDOM instead would make every gRPC client NACK the
 *   Cluster ("unsupported lb_policy").
 */
const ENUM_POLICY = { round_robin: 'ROUND_ROBIN', ring_hash: 'RING_HASH' } as const;

function policyListWithFallback(first: TypedExtensionConfig): LoadBalancingPolicy {
  return {
    policies: [
      { typed_extension_config: first },
      { typed_extension_config: { name: 'envoy.load_balancing_policies.wrr_locality', typed_config: {
        '@type': TYPE.LB_WRR_LOCALITY,
        endpoint_picking_policy: { policies: [{ typed_extension_config: { name: 'envoy.load_balancing_policies.round_robin', typed_config: { '@type': TYPE.LB_ROUND_ROBIN } } }] },
      } } },
    ],
  };
}

function extensiblePolicy(lb: NonNullable<PolicySections['loadBalancer']>): TypedExtensionConfig | undefined {
  switch (lb.policy) {
    case 'peak_ewma':
      return { name: 'skein.lb.peak_ewma', typed_config: { '@type': TYPE.LB_PEAK_EWMA, decay: duration(lb.decayMs ?? 10_000) } };
    case 'least_request': {
      const cfg: Any = { '@type': TYPE.LB_LEAST_REQUEST };
      if (lb.choiceCount !== undefined) cfg.choice_count = u32(lb.choiceCount);
      return { name: 'envoy.load_balancing_policies.least_request', typed_config: cfg };
    }
    case 'random':
      return { name: 'envoy.load_balancing_policies.random', typed_config: { '@type': TYPE.LB_RANDOM } };
    default:
      return undefined;
  }
}

/**
 * An EDS cluster (endpoints over ADS) carrying the BackendPolicy in Envoy's own fields, so any
 * xDS client understands it. Only what the policy sets is emitted, except where Envoy's default
 * would silently enable behaviour the user did not ask for (outlier enforcement, route timeout).
 */
export function cluster(name: string, service: Service, p: PolicySections): Cluster {
  const out: Cluster = {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_CONFIG_SOURCE, service_name: name },
    lb_policy: 'ROUND_ROBIN',
  };
  const lb = p.loadBalancer;
  const extensible = lb === undefined ? undefined : extensiblePolicy(lb);
  if (extensible !== undefined) out.load_balancing_policy = policyListWithFallback(extensible);
  else if (lb !== undefined) out.lb_policy = ENUM_POLICY[lb.policy as keyof typeof ENUM_POLICY];
  if (lb?.policy === 'ring_hash') {
    const ring: NonNullable<Cluster['ring_hash_lb_config']> = { hash_function: 'XX_HASH' };
    if (lb.minRingSize !== undefined) ring.minimum_ring_size = { value: lb.minRingSize };
    if (lb.maxRingSize !== undefined) ring.maximum_ring_size = { value: lb.maxRingSize };
    out.ring_hash_lb_config = ring;
  }
  const cp = p.connectionPool;
  if (cp?.connectTimeoutMs !== undefined) out.connect_timeout = duration(cp.connectTimeoutMs);
  out.typed_extension_protocol_options = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': protocolOptions(service, p) };
  out.circuit_breakers = { thresholds: [circuitBreakerThresholds(p)] };
  out.outlier_detection = outlierDetection({ ...DEFAULT_OUTLIER_DETECTION, ...p.outlierDetection });
  if (p.healthCheck !== undefined) out.health_checks = [healthCheck(p.healthCheck)];
  if (p.healthyPanicThreshold !== undefined) out.common_lb_config = { healthy_panic_threshold: { value: p.healthyPanicThreshold } };
  return out;
}

function protocolOptions(service: Service, p: PolicySections): Any {
  const cp = p.connectionPool;
  const common: HttpProtocolOptionsCommon = {};
  if (cp?.idleTimeoutMs !== undefined) common.idle_timeout = duration(cp.idleTimeoutMs);
  if (cp?.maxRequestsPerConnection !== undefined) common.max_requests_per_connection = u32(cp.maxRequestsPerConnection);
  const explicit: NonNullable<HttpProtocolOptions['explicit_http_config']> = service.spec.protocol === 'grpc'
    ? { http2_protocol_options: cp?.maxConcurrentStreams === undefined ? {} : { max_concurrent_streams: u32(cp.maxConcurrentStreams) } }
    : { http_protocol_options: {} };
  const out: HttpProtocolOptions = { explicit_http_config: explicit };
  if (Object.keys(common).length > 0) out.common_http_protocol_options = common;
  return { '@type': TYPE.HTTP_PROTOCOL_OPTIONS, ...out };
}

type HttpProtocolOptionsCommon = NonNullable<HttpProtocolOptions['common_http_protocol_options']>;

/** The retry budget every cluster gets without a `retryBudget` section (issue 4: on by default). */
const DEFAULT_RETRY_BUDGET = { budgetPercent: 20, minRetryConcurrency: 3 };

/**
 * Always present: the retry budget is on by default, and it is carried in Envoy's field so that
 * every xDS client budgets retries, not only the skein sidecar. (Envoy ignores max_retries when a
 * budget is set; the skein sidecar applies both.)
 */
function circuitBreakerThresholds(p: PolicySections): CircuitBreakerThresholds {
  const cb = p.circuitBreaker;
  const t: CircuitBreakerThresholds = { priority: 'DEFAULT' };
  if (cb?.maxConnections !== undefined) t.max_connections = u32(cb.maxConnections);
  if (cb?.maxPendingRequests !== undefined) t.max_pending_requests = u32(cb.maxPendingRequests);
  if (cb?.maxRequests !== undefined) t.max_requests = u32(cb.maxRequests);
  if (cb?.maxRetries !== undefined) t.max_retries = u32(cb.maxRetries);
  const budget = p.retryBudget ?? DEFAULT_RETRY_BUDGET;
  t.retry_budget = { budget_percent: { value: budget.budgetPercent }, min_retry_concurrency: u32(budget.minRetryConcurrency) };
  return t;
}

/**
 * Failure accrual on by default (issue 14): a host whose connections are refused or time out,
 * or that resets before any byte, 3 times in a row is ejected, at most half of a cluster's hosts
 * at once. A policy's outlierDetection section overrides each field (0 turns the trigger off).
 */
export const DEFAULT_OUTLIER_DETECTION = { consecutiveLocalOriginFailure: 3, maxEjectionPercent: 50 } as const;

function outlierDetection(od: NonNullable<PolicySections['outlierDetection']>): OutlierDetection {
  // Envoy enables consecutive-5xx, local-origin and success-rate ejection by default, and
  // grpc-js-xds treats an unset enforcing_success_rate as 100%. Each trigger here is on only
  // when the policy sets it, so every enforcement field is explicit.
  const out: OutlierDetection = {
    enforcing_consecutive_5xx: u32(od.consecutive5xx !== undefined ? 100 : 0),
    enforcing_consecutive_gateway_failure: u32(od.consecutiveGatewayFailure !== undefined ? 100 : 0),
    enforcing_consecutive_local_origin_failure: u32(od.consecutiveLocalOriginFailure !== undefined && od.consecutiveLocalOriginFailure > 0 ? 100 : 0),
    enforcing_success_rate: u32(od.successRate !== undefined ? 100 : 0),
    // With split_external_local_origin_errors, Envoy also runs local-origin success-rate ejection,
    // enforced at 100% unless told otherwise: it follows successRate like the external one.
    enforcing_local_origin_success_rate: u32(od.successRate !== undefined ? 100 : 0),
    enforcing_failure_percentage: u32(od.failurePercentage !== undefined ? 100 : 0),
  };
  if (od.consecutive5xx !== undefined) out.consecutive_5xx = u32(od.consecutive5xx);
  if (od.consecutiveGatewayFailure !== undefined) out.consecutive_gateway_failure = u32(od.consecutiveGatewayFailure);
  if (od.consecutiveLocalOriginFailure !== undefined) {
    out.consecutive_local_origin_failure = u32(od.consecutiveLocalOriginFailure);
    out.split_external_local_origin_errors = true;
  }
  if (od.intervalMs !== undefined) out.interval = duration(od.intervalMs);
  if (od.baseEjectionTimeMs !== undefined) out.base_ejection_time = duration(od.baseEjectionTimeMs);
  if (od.maxEjectionTimeMs !== undefined) out.max_ejection_time = duration(od.maxEjectionTimeMs);
  if (od.maxEjectionPercent !== undefined) out.max_ejection_percent = u32(od.maxEjectionPercent);
  const sr = od.successRate;
  if (sr?.minimumHosts !== undefined) out.success_rate_minimum_hosts = u32(sr.minimumHosts);
  if (sr?.requestVolume !== undefined) out.success_rate_request_volume = u32(sr.requestVolume);
  if (sr?.stdevFactor !== undefined) out.success_rate_stdev_factor = u32(Math.round(sr.stdevFactor * 1000));
  const fp = od.failurePercentage;
  if (fp?.threshold !== undefined) out.failure_percentage_threshold = u32(fp.threshold);
  if (fp?.minimumHosts !== undefined) out.failure_percentage_minimum_hosts = u32(fp.minimumHosts);
  if (fp?.requestVolume !== undefined) out.failure_percentage_request_volume = u32(fp.requestVolume);
  // Always explicit: Envoy's default (true) lets a passing health endpoint cancel every ejection
  // at the next check (envoy#28303); skein's default is false.
  out.successful_active_health_check_uneject_host = { value: od.unejectOnHealthCheckSuccess ?? false };
  return out;
}

function healthCheck(hc: NonNullable<PolicySections['healthCheck']>): HealthCheck {
  const out: HealthCheck = {
    timeout: duration(hc.timeoutMs),
    interval: duration(hc.intervalMs),
    healthy_threshold: u32(hc.healthyThreshold),
    unhealthy_threshold: u32(hc.unhealthyThreshold),
  };
  if (hc.http) out.http_health_check = { path: hc.http.path, expected_statuses: hc.http.expectedStatuses.map((s) => ({ start: s, end: s + 1 })) };
  if (hc.grpc) out.grpc_health_check = hc.grpc.service === '' ? {} : { service_name: hc.grpc.service };
  return out;
}

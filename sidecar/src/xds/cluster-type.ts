/**
 * Cluster -> ClusterConfig. Accepted discovery types: EDS (eds_config over ads or self) and
 * STATIC (with an inline load_assignment, whose hosts are returned as `staticEndpoints`).
 * Defaults, as in Envoy's cluster.proto:
 *  - lb_policy: ROUND_ROBIN; connect_timeout: 5s;
 *  - eds_cluster_config.service_name: the cluster name;
 *  - protocol: h1 unless HttpProtocolOptions.explicit_http_config says http2;
 *  - retry_budget: budget_percent 20, min_retry_concurrency 3 (when retry_budget is set).
 * Circuit breakers: the first DEFAULT-priority thresholds (HIGH and per-host ones are ignored).
 * load_balancing_policy, when set, wins over lb_policy (as in Envoy); see decodePolicyList.
 * Fields this decoder does not implement are rejected (shared/src/xds/fields.ts checkFields), except
 * those with no effect on traffic listed as ignored below (stats names, metadata, DNS settings).
 * Rejected, naming the field: other discovery types, MAGLEV / CLUSTER_PROVIDED /
 * LOAD_BALANCING_POLICY_CONFIG in lb_policy, a load_balancing_policy list with no policy this
 * proxy implements, TLS (transport_socket), auto/downstream protocol selection, unknown
 * typed_extension_protocol_options keys.
 */
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { decodeLoadAssignment } from './endpoints-type';
import { decodeOutlierDetection } from '../resilience/outlier-config';
import { decodeHealthChecks } from '../resilience/health-check-config';
import type { WireLoadAssignment } from './endpoints-type';
import type { CircuitBreakerConfig, ClusterConfig, ClusterLbPolicy, UpstreamTlsConfig } from '../upstream/cluster-config';
import { checkFields, durationToMs, fieldSpec, wrapped } from '../../../shared/src/xds/fields';
import { decodeUpstreamTls } from './tls-context';
import type { WireStruct } from './endpoints-type';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';
import { CLUSTER_KIND } from '../../../shared/src/xds/resource-kind';
import { configSourceKind, decodeWith, unpack } from './resource-decoder';
import type { PackedResource, ResourceDecoder } from './resource-decoder';

/** The decoded shape is owned by the upstream, which uses it. */
export type { CircuitBreakerConfig, ClusterConfig, ClusterLbPolicy, RetryBudgetConfig } from '../upstream/cluster-config';

const HPO_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const LB: Readonly<Record<string, ClusterLbPolicy>> = { ROUND_ROBIN: 'round_robin', LEAST_REQUEST: 'least_request', RING_HASH: 'ring_hash', RANDOM: 'random' };
const MAX_RING_SIZE = 8_388_608;

type U32 = { value?: number };
interface WireThresholds {
  priority?: string;
  max_connections?: U32; max_pending_requests?: U32; max_requests?: U32; max_retries?: U32;
  retry_budget?: { budget_percent?: { value?: number }; min_retry_concurrency?: U32 };
}
interface WireHpo {
  common_http_protocol_options?: { idle_timeout?: { seconds?: string; nanos?: number }; max_requests_per_connection?: U32 };
  explicit_http_config?: { http_protocol_options?: object; http2_protocol_options?: { max_concurrent_streams?: U32 } };
  use_downstream_protocol_config?: object;
  auto_config?: object;
}
interface WireCluster {
  name?: string;
  type?: string;
  cluster_type?: { name?: string };
  eds_cluster_config?: { eds_config?: { ads?: object; self?: object }; service_name?: string };
  connect_timeout?: { seconds?: string; nanos?: number };
  lb_policy?: string;
  least_request_lb_config?: { choice_count?: U32 };
  ring_hash_lb_config?: { minimum_ring_size?: { value?: string }; maximum_ring_size?: { value?: string } };
  load_balancing_policy?: object;
  load_assignment?: WireLoadAssignment;
  typed_extension_protocol_options?: Record<string, PackedResource>;
  circuit_breakers?: { thresholds?: WireThresholds[] };
  outlier_detection?: Record<string, unknown>;
  health_checks?: Record<string, unknown>[];
  transport_socket?: object;
  transport_socket_matches?: { name?: string; match?: WireStruct; transport_socket?: { name?: string; typed_config?: PackedResource } }[];
  common_lb_config?: { healthy_panic_threshold?: { value?: number } } & Record<string, unknown>;
}

const CLUSTER = fieldSpec(
  ['name', 'type', 'cluster_type', 'eds_cluster_config', 'connect_timeout', 'lb_policy', 'least_request_lb_config', 'ring_hash_lb_config',
    'load_balancing_policy', 'load_assignment', 'typed_extension_protocol_options', 'circuit_breakers', 'outlier_detection', 'health_checks',
    'transport_socket', 'transport_socket_matches', 'common_lb_config'],
  ['alt_stat_name', 'metadata', 'per_connection_buffer_limit_bytes', 'dns_refresh_rate', 'dns_failure_refresh_rate', 'respect_dns_ttl',
    'dns_lookup_family', 'typed_dns_resolver_config', 'wait_for_warm_on_init', 'cleanup_interval', 'track_cluster_stats'],
  ['cluster_discovery_type', 'lb_config'],
  { type: 'STATIC', lb_policy: 'ROUND_ROBIN', dns_lookup_family: 'AUTO' },
);
const EDS_CLUSTER_CONFIG = fieldSpec(['eds_config', 'service_name']);
const THRESHOLDS = fieldSpec(['priority', 'max_connections', 'max_pending_requests', 'max_requests', 'max_retries', 'retry_budget'], ['track_remaining'], [], { priority: 'DEFAULT' });
const RETRY_BUDGET = fieldSpec(['budget_percent', 'min_retry_concurrency']);
const HTTP_PROTOCOL_OPTIONS = fieldSpec(['common_http_protocol_options', 'explicit_http_config', 'use_downstream_protocol_config', 'auto_config'], [], ['upstream_protocol_options']);
const COMMON_HTTP_PROTOCOL_OPTIONS = fieldSpec(['idle_timeout', 'max_requests_per_connection'], [], [], { headers_with_underscores_action: 'ALLOW' });

function decodeCluster(c: WireCluster, issues: Issues): ClusterConfig {
  const name = c.name!;
  checkFields(c as XdsMessage, CLUSTER, '', issues);
  if (c.eds_cluster_config !== undefined) checkFields(c.eds_cluster_config as XdsMessage, EDS_CLUSTER_CONFIG, 'eds_cluster_config', issues);
  const out: ClusterConfig = { name, type: 'EDS', edsServiceName: name, lbPolicy: 'round_robin', connectTimeoutMs: 5000, protocol: 'h1' };
  decodeDiscovery(c, out, issues);
  decodeLb(c, out, issues);
  const timeout = durationToMs(c.connect_timeout);
  if (timeout !== undefined) {
    if (timeout <= 0) issues.add('connect_timeout', 'must be > 0');
    else out.connectTimeoutMs = timeout;
  }
  decodeProtocol(c.typed_extension_protocol_options ?? {}, out, issues);
  decodeCommonLb(c, out, issues);
  const cb = decodeCircuitBreakers(c.circuit_breakers?.thresholds ?? [], issues);
  if (cb !== undefined) out.circuitBreakers = cb;
  if (c.outlier_detection !== undefined) out.outlierDetection = decodeOutlierDetection(c.outlier_detection, issues);
  if (c.health_checks !== undefined && c.health_checks.length > 0) {
    const hc = decodeHealthChecks(c.health_checks, issues);
    if (hc !== undefined) out.healthChecks = hc;
  }
  if (c.transport_socket !== undefined) issues.add('transport_socket', 'is not supported: mesh mTLS is set per endpoint through transport_socket_matches (tlsMode: skein)');
  const tls = decodeTransportSocketMatches(c.transport_socket_matches ?? [], issues);
  if (tls !== undefined) out.tls = tls;
  return out;
}

const TRANSPORT_SOCKET_MATCH_ENTRY = fieldSpec(['name', 'match', 'transport_socket']);

/**
 * transport_socket_matches: exactly one entry, selecting endpoints whose
 * filter_metadata['envoy.transport_socket_match'] has tlsMode 'skein' (they have a sidecar), with
 * mesh mTLS (tls-context.ts). Endpoints it does not select stay plaintext. Entries that select on
 * anything else are rejected: the sidecar would not know which endpoints they mean.
 */
function decodeTransportSocketMatches(list: NonNullable<WireCluster['transport_socket_matches']>, issues: Issues): UpstreamTlsConfig | undefined {
  if (list.length === 0) return undefined;
  if (list.length > 1) { issues.add('transport_socket_matches', `at most one entry (tlsMode: skein) is supported, got ${list.length}`); return undefined; }
  const m = list[0]!;
  checkFields(m as XdsMessage, TRANSPORT_SOCKET_MATCH_ENTRY, 'transport_socket_matches[0]', issues);
  const keys = Object.keys(m.match?.fields ?? {});
  if (keys.length !== 1 || m.match?.fields?.['tlsMode']?.stringValue !== 'skein') {
    issues.add('transport_socket_matches[0].match', `must be exactly {tlsMode: "skein"} (endpoints with a sidecar), got {${keys.join(', ')}}`);
    return undefined;
  }
  return decodeUpstreamTls(m.transport_socket, 'transport_socket_matches[0].transport_socket', issues);
}

function decodeCommonLb(c: WireCluster, out: ClusterConfig, issues: Issues): void {
  const common = c.common_lb_config;
  if (common === undefined) return;
  for (const key of Object.keys(common)) {
    if (key !== 'healthy_panic_threshold') issues.add(`common_lb_config.${key}`, 'is not supported by the skein sidecar');
  }
  const t = common.healthy_panic_threshold;
  if (t === undefined) return;
  const v = t.value ?? 0;
  if (!(v >= 0 && v <= 100)) issues.add('common_lb_config.healthy_panic_threshold', `must be a percent in [0, 100], got ${v}`);
  else out.panicThresholdPercent = v;
}

function decodeDiscovery(c: WireCluster, out: ClusterConfig, issues: Issues): void {
  if (c.cluster_type !== undefined) { issues.add('cluster_type', `custom cluster types are not supported (${c.cluster_type.name ?? ''})`); return; }
  const type = c.type ?? 'STATIC';
  if (type === 'EDS') {
    out.type = 'EDS';
    const kind = configSourceKind(c.eds_cluster_config?.eds_config);
    if (kind === 'missing') issues.add('eds_cluster_config.eds_config', 'is required for an EDS cluster');
    else if (kind === 'other') issues.add('eds_cluster_config.eds_config', 'must be ads or self');
    out.edsServiceName = c.eds_cluster_config?.service_name || c.name!;
  } else if (type === 'STATIC') {
    out.type = 'STATIC';
    if (c.load_assignment === undefined) { issues.add('load_assignment', 'is required for a STATIC cluster'); return; }
    out.staticEndpoints = decodeLoadAssignment(c.load_assignment, c.name!, 'load_assignment.', issues);
  } else {
    issues.add('type', `${type} is not supported; must be EDS or STATIC`);
  }
}

type WirePolicyList = { policies?: { typed_extension_config?: { name?: string; typed_config?: { type_url: string; value: Buffer } } }[] };

/**
 * load_balancing_policy: an ordered list; the first policy this proxy implements wins, as in
 * Envoy and gRPC. Known: skein.lb.v1.PeakEwma, Envoy's LeastRequest (choice_count), Random and
 * RoundRobin, and WrrLocality around one of those (locality weights are already folded into endpoint weights here).
 */
function decodePolicyList(list: WirePolicyList, at: string, out: ClusterConfig, issues: Issues, depth = 0): boolean {
  for (const [i, p] of (list.policies ?? []).entries()) {
    const tc = p.typed_extension_config?.typed_config;
    if (tc === undefined) continue;
    const path = `${at}.policies[${i}].typed_extension_config.typed_config`;
    if (tc.type_url === TYPE_URLS.LB_PEAK_EWMA) {
      const cfg = unpack<{ decay?: { seconds?: string; nanos?: number } }>(tc, TYPE_URLS.LB_PEAK_EWMA, path, issues);
      out.lbPolicy = 'peak_ewma';
      const decay = durationToMs(cfg?.decay);
      if (decay !== undefined) { if (decay <= 0) issues.add(`${path}.decay`, 'must be > 0'); else out.decayMs = decay; }
      return true;
    }
    if (tc.type_url === TYPE_URLS.LB_ROUND_ROBIN) { out.lbPolicy = 'round_robin'; return true; }
    if (tc.type_url === TYPE_URLS.LB_RANDOM) { out.lbPolicy = 'random'; return true; }
    if (tc.type_url === TYPE_URLS.LB_LEAST_REQUEST) {
      const cfg = unpack<{ choice_count?: U32 }>(tc, TYPE_URLS.LB_LEAST_REQUEST, path, issues);
      out.lbPolicy = 'least_request';
      const n = wrapped(cfg?.choice_count);
      if (n !== undefined) { if (n < 2) issues.add(`${path}.choice_count`, `must be >= 2, got ${n}`); else out.choiceCount = n; }
      return true;
    }
    if (tc.type_url === TYPE_URLS.LB_WRR_LOCALITY && depth < 4) {
      const w = unpack<{ endpoint_picking_policy?: WirePolicyList }>(tc, TYPE_URLS.LB_WRR_LOCALITY, path, issues);
      if (w?.endpoint_picking_policy !== undefined && decodePolicyList(w.endpoint_picking_policy, `${path}.endpoint_picking_policy`, out, issues, depth + 1)) return true;
    }
  }
  return false;
}

function decodeLb(c: WireCluster, out: ClusterConfig, issues: Issues): void {
  if (c.load_balancing_policy !== undefined) {
    if (!decodePolicyList(c.load_balancing_policy as WirePolicyList, 'load_balancing_policy', out, issues)) {
      issues.add('load_balancing_policy.policies', 'none of the listed policies is supported (skein.lb.v1.PeakEwma, LeastRequest, Random, RoundRobin, WrrLocality)');
    }
    return;
  }
  const wire = c.lb_policy ?? 'ROUND_ROBIN';
  const policy = LB[wire];
  if (policy === undefined) { issues.add('lb_policy', `${wire} is not supported (ROUND_ROBIN, LEAST_REQUEST, RING_HASH or RANDOM)`); return; }
  out.lbPolicy = policy;
  if (policy === 'least_request' && c.least_request_lb_config?.choice_count !== undefined) {
    const n = wrapped(c.least_request_lb_config.choice_count)!;
    if (n < 2) issues.add('least_request_lb_config.choice_count', `must be >= 2, got ${n}`);
    else out.choiceCount = n;
  }
  if (policy === 'ring_hash' && c.ring_hash_lb_config !== undefined) {
    const min = wrapped(c.ring_hash_lb_config.minimum_ring_size);
    const max = wrapped(c.ring_hash_lb_config.maximum_ring_size);
    if (min !== undefined && (min < 1 || min > MAX_RING_SIZE)) issues.add('ring_hash_lb_config.minimum_ring_size', `must be in [1, ${MAX_RING_SIZE}], got ${min}`);
    else if (min !== undefined) out.minRingSize = min;
    if (max !== undefined && (max < 1 || max > MAX_RING_SIZE)) issues.add('ring_hash_lb_config.maximum_ring_size', `must be in [1, ${MAX_RING_SIZE}], got ${max}`);
    else if (max !== undefined) out.maxRingSize = max;
    if (out.minRingSize !== undefined && out.maxRingSize !== undefined && out.minRingSize > out.maxRingSize) {
      issues.add('ring_hash_lb_config', `minimum_ring_size (${out.minRingSize}) must be <= maximum_ring_size (${out.maxRingSize})`);
    }
  }
}

function decodeProtocol(opts: Record<string, PackedResource>, out: ClusterConfig, issues: Issues): void {
  for (const key of Object.keys(opts)) {
    if (key !== HPO_KEY) issues.add(`typed_extension_protocol_options['${key}']`, `unknown extension; only ${HPO_KEY} is supported`);
  }
  const at = `typed_extension_protocol_options['${HPO_KEY}']`;
  if (!Object.hasOwn(opts, HPO_KEY)) return; // Envoy's default: HTTP/1.1 upstream
  const hpo = unpack<WireHpo>(opts[HPO_KEY], TYPE_URLS.HTTP_PROTOCOL_OPTIONS, at, issues);
  if (hpo === undefined) return;
  checkFields(hpo as XdsMessage, HTTP_PROTOCOL_OPTIONS, at, issues);
  if (hpo.common_http_protocol_options !== undefined) checkFields(hpo.common_http_protocol_options as XdsMessage, COMMON_HTTP_PROTOCOL_OPTIONS, `${at}.common_http_protocol_options`, issues);
  if (hpo.use_downstream_protocol_config !== undefined) issues.add(`${at}.use_downstream_protocol_config`, 'is not supported; use explicit_http_config');
  if (hpo.auto_config !== undefined) issues.add(`${at}.auto_config`, 'is not supported; use explicit_http_config');
  const explicit = hpo.explicit_http_config;
  if (explicit !== undefined) {
    if (explicit.http2_protocol_options !== undefined) {
      out.protocol = 'h2';
      const streams = wrapped(explicit.http2_protocol_options.max_concurrent_streams);
      if (streams !== undefined && streams < 1) issues.add(`${at}.explicit_http_config.http2_protocol_options.max_concurrent_streams`, 'must be >= 1');
      else if (streams !== undefined) out.maxConcurrentStreams = streams;
    } else if (explicit.http_protocol_options !== undefined) {
      out.protocol = 'h1';
    } else {
      issues.add(`${at}.explicit_http_config`, 'must set http_protocol_options or http2_protocol_options');
    }
  }
  const common = hpo.common_http_protocol_options;
  const idle = durationToMs(common?.idle_timeout);
  if (idle !== undefined) out.idleTimeoutMs = idle;
  const maxReq = wrapped(common?.max_requests_per_connection);
  if (maxReq !== undefined) out.maxRequestsPerConnection = maxReq;
}

function decodeCircuitBreakers(thresholds: WireThresholds[], issues: Issues): CircuitBreakerConfig | undefined {
  const i = thresholds.findIndex((x) => (x.priority ?? 'DEFAULT') === 'DEFAULT');
  if (i < 0) return undefined;
  const t = thresholds[i]!;
  checkFields(t as XdsMessage, THRESHOLDS, `circuit_breakers.thresholds[${i}]`, issues);
  if (t.retry_budget !== undefined) checkFields(t.retry_budget as XdsMessage, RETRY_BUDGET, `circuit_breakers.thresholds[${i}].retry_budget`, issues);
  const cb: CircuitBreakerConfig = {};
  if (t.max_connections !== undefined) cb.maxConnections = wrapped(t.max_connections)!;
  if (t.max_pending_requests !== undefined) cb.maxPendingRequests = wrapped(t.max_pending_requests)!;
  if (t.max_requests !== undefined) cb.maxRequests = wrapped(t.max_requests)!;
  if (t.max_retries !== undefined) cb.maxRetries = wrapped(t.max_retries)!;
  if (t.retry_budget !== undefined) {
    cb.retryBudget = {
      budgetPercent: t.retry_budget.budget_percent === undefined ? 20 : (t.retry_budget.budget_percent.value ?? 0),
      minRetryConcurrency: wrapped(t.retry_budget.min_retry_concurrency, 3)!,
    };
  }
  return cb;
}

export const clusterType: ResourceDecoder<ClusterConfig> = {
  kind: CLUSTER_KIND,
  decode(any: PackedResource) {
    return decodeWith<WireCluster, ClusterConfig>(CLUSTER_KIND, any, (m, _name, issues) => decodeCluster(m, issues));
  },
};

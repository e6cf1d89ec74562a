/**
 * The user-facing config model: declarative resources in the shape people know from the
 * Kubernetes Gateway API (apiVersion, kind, metadata.name, spec).
 *
 * These are the *validated* forms: every duration is already in milliseconds, every default
 * is filled in. The accepted input shape and each field's default are documented in
 * docs/config.md; `validate.ts` turns raw input into these types.
 */
export const API_VERSION = 'skein.dev/v1alpha1';

export type Kind = 'Service' | 'HTTPRoute' | 'GRPCRoute' | 'BackendPolicy' | 'AuthorizationPolicy' | 'Telemetry';
export const KINDS: readonly Kind[] = ['Service', 'HTTPRoute', 'GRPCRoute', 'BackendPolicy', 'AuthorizationPolicy', 'Telemetry'];

export interface Metadata {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

interface ResourceBase<K extends Kind, S> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: Metadata;
  spec: S;
}

export type Protocol = 'grpc' | 'http';
/** Who may connect to a service's sidecars (docs/config.md, spec.mtls). */
export const MTLS_MODES = ['STRICT', 'PERMISSIVE', 'DISABLE'] as const;
export type MtlsMode = (typeof MTLS_MODES)[number];
export type EndpointHealth = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING';

export interface ServicePort { name: string; port: number }
export interface Subset { name: string; labels: Record<string, string> }
export interface StaticEndpoint {
  address: string;
  port: number;
  labels: Record<string, string>;
  zone: string;
  weight: number;
  health: EndpointHealth;
}
export interface ServiceSpec {
  protocol: Protocol;
  ports: ServicePort[];
  subsets: Subset[];
  endpoints: StaticEndpoint[];
  /**
   * The service account whose workload identity (spiffe://<td>/ns/<ns>/sa/<this>) may register
   * endpoints for this service. Unset: the service's own name.
   */
  serviceAccount?: string;
  /**
   * Who may connect to the service's sidecars: STRICT only mTLS from mesh workloads; PERMISSIVE
   * mTLS or plaintext on the same port; DISABLE plaintext only (client sidecars send no TLS).
   */
  mtls: MtlsMode;
  /**
   * The Services this service's sidecars may call: they are sent only those services' clusters,
   * endpoints, route table entries and api_listeners (a delta xDS client can still subscribe to
   * any other by name, on demand). Unset: every service.
   */
  dependsOn?: string[];
}
export type Service = ResourceBase<'Service', ServiceSpec>;

export type StringMatchType = 'Exact' | 'PathPrefix' | 'RegularExpression';
export interface PathMatch { type: 'Exact' | 'PathPrefix' | 'RegularExpression'; value: string }
export interface HeaderMatch { name: string; type: 'Exact' | 'RegularExpression' | 'Present'; value: string; invert: boolean }
export interface GrpcMethodMatch { type: 'Exact' | 'RegularExpression'; service: string; method: string }
export interface RouteMatch {
  path?: PathMatch;
  headers: HeaderMatch[];
  /** HTTP method, e.g. GET (HTTPRoute only). */
  method?: string;
  /** gRPC service / method (GRPCRoute only). */
  grpc?: GrpcMethodMatch;
}
export interface BackendRef { name: string; subset?: string; weight: number }
export interface HeaderModifier {
  set: { name: string; value: string }[];
  add: { name: string; value: string }[];
  remove: string[];
}
export const RETRY_ON = [
  'connect-failure', 'refused-stream', 'reset', '5xx', 'gateway-error', 'retriable-status-codes',
  'cancelled', 'deadline-exceeded', 'resource-exhausted', 'internal', 'unavailable',
] as const;
export type RetryOn = (typeof RETRY_ON)[number];
export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  retryOn: RetryOn[];
  perTryTimeoutMs: number;
  retriableStatusCodes: number[];
  backoff: { baseMs: number; maxMs: number };
}
/**
 * Fault injection on a rule (filter type `Fault`): Envoy's envoy.filters.http.fault. At least one
 * of delay and abort is set. Percentages are 0 to 100 in steps of 0.0001 (per million on the wire).
 */
export interface FaultSettings {
  /** Holds the request for `fixedDelayMs` (1 ms to 1 h) before it is forwarded, for `percentage` % (default 100) of requests. */
  delay?: { fixedDelayMs: number; percentage: number };
  /**
   * Answers the request locally instead of forwarding it, for `percentage` % (default 100) of requests:
   * with `httpStatus` (200 to 599) or with `grpcStatus` (0 to 16), exactly one of them.
   */
  abort?: { httpStatus: number; percentage: number } | { grpcStatus: number; percentage: number };
}
/**
 * A local (per proxy) token bucket on a rule (filter type `LocalRateLimit`): Envoy's
 * envoy.filters.http.local_ratelimit. Starts full; every `fillIntervalMs` adds `tokensPerFill`
 * tokens, never more than `maxTokens`; a request takes one token or is refused (429 / RESOURCE_EXHAUSTED).
 */
export interface LocalRateLimitSettings {
  /** 1 to 1000000. */
  maxTokens: number;
  /** 1 to maxTokens; default maxTokens. */
  tokensPerFill: number;
  /** 50 ms (Envoy's minimum) to 24 h. */
  fillIntervalMs: number;
}
export interface RouteRule {
  name: string;
  matches: RouteMatch[];
  backendRefs: BackendRef[];
  /** Route timeout; 0 means none. */
  timeoutMs: number;
  retry?: RetryPolicy;
  requestHeaders?: HeaderModifier;
  responseHeaders?: HeaderModifier;
  /** Absent: no fault injection. */
  fault?: FaultSettings;
  /** Absent: no local rate limit. */
  localRateLimit?: LocalRateLimitSettings;
  /** Absent: the mesh's (Telemetry). */
  tracing?: TracingSettings;
}
export interface RouteSpec {
  /** The services whose traffic this route governs. */
  parentRefs: { name: string }[];
  /** Extra authorities (Host / :authority values) that select these services' routes. */
  hostnames: string[];
  rules: RouteRule[];
}
export type HTTPRoute = ResourceBase<'HTTPRoute', RouteSpec>;
export type GRPCRoute = ResourceBase<'GRPCRoute', RouteSpec>;
export type Route = HTTPRoute | GRPCRoute;

export const LB_POLICIES = ['round_robin', 'least_request', 'ring_hash', 'random', 'peak_ewma'] as const;
export type LbPolicyName = (typeof LB_POLICIES)[number];
export interface LoadBalancerSettings {
  policy: LbPolicyName;
  /** least_request: how many hosts to sample (power of N choices). */
  choiceCount?: number;
  /** ring_hash: what to hash on. */
  hashOn?: { header: string } | { cookie: string };
  minRingSize?: number;
  maxRingSize?: number;
  /** peak_ewma: how fast the latency estimate decays (ms). */
  decayMs?: number;
}
export interface CircuitBreakerSettings {
  maxConnections?: number;
  maxPendingRequests?: number;
  maxRequests?: number;
  maxRetries?: number;
}
export interface RetryBudgetSettings { budgetPercent: number; minRetryConcurrency: number }
export interface OutlierDetectionSettings {
  consecutive5xx?: number;
  consecutiveGatewayFailure?: number;
  consecutiveLocalOriginFailure?: number;
  intervalMs?: number;
  baseEjectionTimeMs?: number;
  maxEjectionTimeMs?: number;
  maxEjectionPercent?: number;
  successRate?: { minimumHosts?: number; requestVolume?: number; stdevFactor?: number };
  failurePercentage?: { threshold?: number; minimumHosts?: number; requestVolume?: number };
  /**
   * Return an ejected host as soon as an active health check passes (Envoy's
   * successful_active_health_check_uneject_host). skein's default is false: an ejection is
   * evidence from real traffic, which a passing health endpoint does not disprove.
   */
  unejectOnHealthCheckSuccess?: boolean;
}
export interface HealthCheckSettings {
  intervalMs: number;
  timeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  http?: { path: string; expectedStatuses: number[] };
  grpc?: { service: string };
}
export interface ConnectionPoolSettings {
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxRequestsPerConnection?: number;
  maxConcurrentStreams?: number;
}
export interface BackendPolicySpec {
  targetRef: { kind: 'Service'; name: string; subset?: string };
  loadBalancer?: LoadBalancerSettings;
  circuitBreaker?: CircuitBreakerSettings;
  retryBudget?: RetryBudgetSettings;
  outlierDetection?: OutlierDetectionSettings;
  healthCheck?: HealthCheckSettings;
  connectionPool?: ConnectionPoolSettings;
  /**
   * Percent of healthy hosts below which callers balance over every host (panic) instead of
   * failing requests. Default 50 (Envoy's); 0 disables panic mode.
   */
  healthyPanicThreshold?: number;
}
export type BackendPolicy = ResourceBase<'BackendPolicy', BackendPolicySpec>;

/** What an authorization rule, or a policy when no rule matches, does with a request. */
export const AUTHORIZATION_ACTIONS = ['ALLOW', 'DENY'] as const;
export type AuthorizationAction = (typeof AUTHORIZATION_ACTIONS)[number];
/** A gRPC method (`/<service>/<method>`), or every method of a service when `method` is unset. */
export interface AuthorizationGrpcMethod { service: string; method?: string }
/**
 * Which requests a rule covers. Each list is one condition (a request meets it when it matches
 * any item of the list); a request is covered when it meets every list that is set.
 */
export interface AuthorizationTarget {
  /** Path prefixes (the path without its query). */
  paths?: string[];
  /** HTTP methods, exactly (GET, POST, ...). */
  methods?: string[];
  grpc?: AuthorizationGrpcMethod[];
}
export interface AuthorizationRule {
  action: AuthorizationAction;
  /**
   * Callers, by the SPIFFE ID of their verified mTLS certificate: exact IDs, prefixes (a
   * trailing `*`), or `*` (any authenticated caller). A plaintext caller matches none.
   */
  from: string[];
  /** Absent: every request. */
  to?: AuthorizationTarget;
}
/**
 * Who may call a service (issue 11): enforced by the service's own sidecars (the inbound
 * listener's RBAC filters). DENY rules are evaluated before ALLOW rules; a request no rule
 * matches gets `defaultAction`. Several policies for one service combine their rules and must
 * agree on `defaultAction`.
 */
export interface AuthorizationPolicySpec {
  targetRef: { kind: 'Service'; name: string };
  /** Default DENY: a policy lists who may call. */
  defaultAction: AuthorizationAction;
  rules: AuthorizationRule[];
}
export type AuthorizationPolicy = ResourceBase<'AuthorizationPolicy', AuthorizationPolicySpec>;

/** Trace sampling: the percent of requests without a sampled context that start a trace (0 to 100). */
export interface TracingSettings { samplingPercent: number }
/** The mesh's trace sampling when no Telemetry is applied, and for routes that set none. */
export const DEFAULT_TRACE_SAMPLING_PERCENT = 1;
/**
 * Mesh-wide telemetry settings (one per mesh, named `mesh`): the share of requests sidecars trace
 * (HttpConnectionManager.tracing of their listeners); a route rule's `tracing` overrides it.
 */
export interface TelemetrySpec { tracing: TracingSettings }
export type Telemetry = ResourceBase<'Telemetry', TelemetrySpec>;
/** The one name a Telemetry may have. */
export const MESH_TELEMETRY_NAME = 'mesh';

export type Resource = Service | HTTPRoute | GRPCRoute | BackendPolicy | AuthorizationPolicy | Telemetry;

/** `Kind/name`: the identity of a resource. Names are unique per kind. */
export function resourceKey(r: { kind: string; metadata: { name: string } }): string {
  return `${r.kind}/${r.metadata.name}`;
}

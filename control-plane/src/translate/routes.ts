import { createHash } from 'node:crypto';
import type { MeshConfig } from '../../../shared/src/config/mesh';
import type { BackendRef, FaultSettings, HeaderMatch, HeaderModifier, LocalRateLimitSettings, Route, RouteMatch, RouteRule, Service } from '../../../shared/src/config/types';
import { HTTP_FILTER } from './listeners';
import { backendClusterName, routeConfigName, serviceClusterName } from './names';
import { TYPE_URLS as TYPE } from '../../../shared/src/xds/protos';
import { duration, perMillion, u32 } from './xds-json';
import type { Any, HashPolicy, HeaderMatcher, HeaderValueOption, HTTPFault, RouteAction, RouteConfiguration, RouteMatch as EnvoyRouteMatch, Route as EnvoyRoute, RetryPolicy, VirtualHost } from './xds-json';
import type { EffectivePolicies } from './policies';

/**
 * The RouteConfiguration for one service: one virtual host whose domains are the service's
 * names (and any hostnames its routes add). Routes attached to the service through parentRefs
 * are evaluated in order (route name, then rule order, then match order), first match wins.
 * With no attached route, every request goes to the whole service.
 */
export function serviceRouteConfig(mesh: MeshConfig, service: Service, policies: EffectivePolicies): RouteConfiguration {
  const name = service.metadata.name;
  const attached = attachedRoutes(mesh, name);
  const domains = new Set<string>([name, ...service.spec.ports.map((p) => `${name}:${p.port}`)]);
  for (const r of attached) for (const h of r.spec.hostnames) domains.add(h);
  const routes: EnvoyRoute[] = attached.length === 0
    ? [{ name: DEFAULT_ROUTE_NAME, match: { prefix: '/' }, route: defaultRouteAction(name, policies) }]
    : attached.flatMap((r) => r.spec.rules.flatMap((rule) => rule.matches.map((m, mi) => envoyRoute(r, rule, m, mi, policies))));
  const vhost: VirtualHost = { name, domains: [...domains], routes };
  const marker = perFilterConfigMarker(routes);
  if (marker !== undefined) vhost.metadata = marker;
  return {
    name: routeConfigName(name),
    virtual_hosts: [vhost],
  };
}

/** VirtualHost.metadata.filter_metadata key holding PER_FILTER_DIGEST_FIELD. */
export const SKEIN_METADATA_KEY = 'skein.dev';
export const PER_FILTER_DIGEST_FIELD = 'per_filter_config_digest';

/**
 * A digest of the virtual host's typed_per_filter_config entries, in VirtualHost.metadata; none
 * when no route has any. A workaround for grpc-js-xds 1.14: it compares an update with its cached
 * resource by walking only the cached object's keys (xds-resource-type.js deepEqual), so an entry
 * *added* to a typed_per_filter_config map (a Fault put on an existing route) looks unchanged: the
 * update is ACKed but never applied. This field goes from unset to set, or changes value, with
 * every such change, which it does see. Envoy and the skein sidecar ignore it.
 */
function perFilterConfigMarker(routes: readonly EnvoyRoute[]): VirtualHost['metadata'] {
  const configs = routes.filter((r) => r.typed_per_filter_config !== undefined).map((r) => [r.name, r.typed_per_filter_config]);
  if (configs.length === 0) return undefined;
  const digest = createHash('sha256').update(JSON.stringify(configs)).digest('hex').slice(0, 16);
  return { filter_metadata: { [SKEIN_METADATA_KEY]: { fields: { [PER_FILTER_DIGEST_FIELD]: { stringValue: digest } } } } };
}

/** The routes that govern traffic to `service` (their parentRefs name it), in mesh order. */
export function attachedRoutes(mesh: MeshConfig, service: string): Route[] {
  return mesh.routes.filter((r) => r.spec.parentRefs.some((p) => p.name === service));
}

/** The catch-all action to the whole service; a ring-hash service still needs its hash policy. */
function defaultRouteAction(service: string, policies: EffectivePolicies): RouteAction {
  const out: RouteAction = { cluster: serviceClusterName(service), timeout: duration(0) };
  const hash = hashPolicy([{ name: service, weight: 1 }], policies);
  if (hash.length > 0) out.hash_policy = hash;
  return out;
}

/** The RDS name of a rule's match: <kind>/<route>/<rule>, plus /<match index> when the rule has several. */
export function envoyRouteName(route: Route, rule: RouteRule, matchIndex: number): string {
  return `${route.kind}/${route.metadata.name}/${rule.name}${rule.matches.length > 1 ? `/${matchIndex}` : ''}`;
}

/** The RDS name of a service's catch-all route (no Route attached to it). */
export const DEFAULT_ROUTE_NAME = 'default';

function envoyRoute(route: Route, rule: RouteRule, m: RouteMatch, matchIndex: number, policies: EffectivePolicies): EnvoyRoute {
  const out: EnvoyRoute = {
    name: envoyRouteName(route, rule, matchIndex),
    match: routeMatch(route.kind, m),
    route: routeAction(rule, policies),
  };
  if (rule.requestHeaders) Object.assign(out, headerOps(rule.requestHeaders, 'request'));
  if (rule.responseHeaders) Object.assign(out, headerOps(rule.responseHeaders, 'response'));
  if (rule.tracing) out.tracing = { random_sampling: perMillion(rule.tracing.samplingPercent) };
  const perFilter: Record<string, Any> = {};
  if (rule.fault) perFilter[HTTP_FILTER.FAULT] = faultConfig(rule.fault);
  if (rule.localRateLimit) perFilter[HTTP_FILTER.LOCAL_RATELIMIT] = localRateLimitConfig(rule.localRateLimit, `${route.kind}.${route.metadata.name}.${rule.name}`);
  if (Object.keys(perFilter).length > 0) out.typed_per_filter_config = perFilter;
  return out;
}

/**
 * The rule's HTTPFault. Left bare, not wrapped in a FilterConfig: grpc-js-xds (1.14) hands the
 * wrapper itself to its fault parser, which then rejects it, so a wrapped fault would be NACKed.
 */
function faultConfig(f: FaultSettings): Any {
  const out: HTTPFault = {};
  if (f.delay) out.delay = { fixed_delay: duration(f.delay.fixedDelayMs), percentage: perMillion(f.delay.percentage) };
  if (f.abort) {
    const status = 'httpStatus' in f.abort ? { http_status: f.abort.httpStatus } : { grpc_status: f.abort.grpcStatus };
    out.abort = { ...status, percentage: perMillion(f.abort.percentage) };
  }
  return { '@type': TYPE.FAULT, ...out };
}

/**
 * The rule's LocalRateLimit: its token bucket, enabled and enforced for 100% of requests (Envoy's
 * default is 0% of both), answering gRPC with RESOURCE_EXHAUSTED as the skein sidecar does (Envoy's
 * default maps its 429 to UNAVAILABLE, which gRPC clients retry). Wrapped in a FilterConfig marked
 * is_optional, so clients without the filter (proxyless gRPC) accept the route and skip it.
 */
function localRateLimitConfig(l: LocalRateLimitSettings, statPrefix: string): Any {
  const all = { default_value: { numerator: 100, denominator: 'HUNDRED' } } as const;
  return {
    '@type': TYPE.FILTER_CONFIG,
    config: {
      '@type': TYPE.LOCAL_RATELIMIT,
      stat_prefix: statPrefix,
      token_bucket: { max_tokens: l.maxTokens, tokens_per_fill: u32(l.tokensPerFill), fill_interval: duration(l.fillIntervalMs) },
      filter_enabled: all,
      filter_enforced: all,
      rate_limited_as_resource_exhausted: true,
    },
    is_optional: true,
  };
}

export function routeMatch(kind: Route['kind'], m: RouteMatch): EnvoyRouteMatch {
  const out: EnvoyRouteMatch = {};
  if (m.grpc !== undefined) Object.assign(out, grpcPath(m.grpc));
  else if (m.path === undefined) out.prefix = '/';
  else if (m.path.type === 'PathPrefix') out.prefix = m.path.value;
  else if (m.path.type === 'Exact') out.path = m.path.value;
  else out.safe_regex = { regex: m.path.value };
  const headers = m.headers.map(headerMatcher);
  if (m.method !== undefined) headers.unshift({ name: ':method', exact_match: m.method });
  if (headers.length > 0) out.headers = headers;
  if (kind === 'GRPCRoute') out.grpc = {};
  return out;
}

/** gRPC method matches become path matches on /<service>/<method>. */
function grpcPath(g: NonNullable<RouteMatch['grpc']>): EnvoyRouteMatch {
  if (g.type === 'RegularExpression') {
    return { safe_regex: { regex: `/${g.service === '' ? '[^/]+' : `(?:${g.service})`}/${g.method === '' ? '[^/]+' : `(?:${g.method})`}` } };
  }
  if (g.service !== '' && g.method !== '') return { path: `/${g.service}/${g.method}` };
  if (g.service !== '') return { prefix: `/${g.service}/` };
  return { safe_regex: { regex: `/[^/]+/${escapeRegex(g.method)}` } };
}

function escapeRegex(s: string): string { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

/**
 * Header matches use the original HeaderMatcher fields (exact_match, safe_regex_match,
 * present_match), not string_match: every v3 client reads those, while clients that predate
 * string_match (older Envoy and proxyless gRPC releases) NACK the whole RouteConfiguration
 * on it. string_match is needed only for what the older fields cannot say (ignore_case, contains),
 * which the config model does not offer. (An exact value is never empty: validation refuses it,
 * and Envoy would read exact_match "" as "present".)
 */
function headerMatcher(h: HeaderMatch): HeaderMatcher {
  const out: HeaderMatcher = { name: h.name };
  if (h.type === 'Present') out.present_match = true;
  else if (h.type === 'Exact') out.exact_match = h.value;
  else out.safe_regex_match = { regex: h.value };
  if (h.invert) out.invert_match = true;
  return out;
}

function routeAction(rule: RouteRule, policies: EffectivePolicies): RouteAction {
  const live = rule.backendRefs.filter((b) => b.weight > 0);
  const out: RouteAction = live.length === 1
    ? { cluster: backendClusterName(live[0]!) }
    : { weighted_clusters: { clusters: live.map((b) => ({ name: backendClusterName(b), weight: u32(b.weight) })) } };
  // Envoy's default route timeout is 15s; 0 disables it, which is what an unset timeout means here.
  out.timeout = duration(rule.timeoutMs);
  if (rule.timeoutMs > 0) out.max_stream_duration = { max_stream_duration: duration(rule.timeoutMs) };
  if (rule.retry) {
    const r = rule.retry;
    const policy: RetryPolicy = {
      retry_on: r.retryOn.join(','),
      num_retries: u32(r.retries),
      retry_back_off: { base_interval: duration(r.backoff.baseMs), max_interval: duration(r.backoff.maxMs) },
    };
    if (r.perTryTimeoutMs > 0) policy.per_try_timeout = duration(r.perTryTimeoutMs);
    if (r.retriableStatusCodes.length > 0) policy.retriable_status_codes = r.retriableStatusCodes;
    out.retry_policy = policy;
  }
  const hash = hashPolicy(live, policies);
  if (hash.length > 0) out.hash_policy = hash;
  return out;
}

/** Ring-hash clusters hash on what their BackendPolicy names; the route carries it, as in Envoy. */
function hashPolicy(backends: readonly BackendRef[], policies: EffectivePolicies): HashPolicy[] {
  const seen = new Set<string>();
  const out: HashPolicy[] = [];
  for (const b of backends) {
    const lb = policies.forCluster(b.name, b.subset).loadBalancer;
    if (lb?.policy !== 'ring_hash' || lb.hashOn === undefined) continue;
    const key = JSON.stringify(lb.hashOn);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push('header' in lb.hashOn ? { header: { header_name: lb.hashOn.header } } : { cookie: { name: lb.hashOn.cookie } });
  }
  return out;
}

function headerOps(m: HeaderModifier, dir: 'request' | 'response'): EnvoyRoute {
  const add: HeaderValueOption[] = [
    ...m.set.map((h): HeaderValueOption => ({ header: { key: h.name, value: h.value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
    ...m.add.map((h): HeaderValueOption => ({ header: { key: h.name, value: h.value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' })),
  ];
  const out: EnvoyRoute = {};
  if (add.length > 0) out[`${dir}_headers_to_add`] = add;
  if (m.remove.length > 0) out[`${dir}_headers_to_remove`] = m.remove;
  return out;
}

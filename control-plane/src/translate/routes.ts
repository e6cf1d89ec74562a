import type { MeshConfig } from '../../../shared/src/config/mesh';
import type { BackendRef, HeaderMatch, HeaderModifier, Route, RouteMatch, RouteRule, Service } from '../../../shared/src/config/types';
import { backendClusterName, routeConfigName, serviceClusterName } from './names';
import { duration, u32 } from './xds-json';
import type { XdsObject } from './xds-json';
import type { EffectivePolicies } from './policies';

/**
 * The RouteConfiguration for one service: one virtual host whose domains are the service's
 * names (and any hostnames its routes add). Routes attached to the service through parentRefs
 * are evaluated in order (route name, then rule order, then match order), first match wins.
 * With no attached route, every request goes to the whole service.
 */
export function serviceRouteConfig(mesh: MeshConfig, service: Service, policies: EffectivePolicies): XdsObject {
  const name = service.metadata.name;
  const attached = mesh.routes.filter((r) => r.spec.parentRefs.some((p) => p.name === name));
  const domains = new Set<string>([name, ...service.spec.ports.map((p) => `${name}:${p.port}`)]);
  for (const r of attached) for (const h of r.spec.hostnames) domains.add(h);
  const routes = attached.length === 0
    ? [{ name: 'default', match: { prefix: '/' }, route: defaultRouteAction(name, policies) }]
    : attached.flatMap((r) => r.spec.rules.flatMap((rule) => rule.matches.map((m, mi) => envoyRoute(r, rule, m, mi, policies))));
  return {
    name: routeConfigName(name),
    virtual_hosts: [{ name, domains: [...domains], routes }],
  };
}

/** The catch-all action to the whole service; a ring-hash service still needs its hash policy. */
function defaultRouteAction(service: string, policies: EffectivePolicies): XdsObject {
  const out: XdsObject = { cluster: serviceClusterName(service), timeout: duration(0) };
  const hash = hashPolicy([{ name: service, weight: 1 }], policies);
  if (hash.length > 0) out['hash_policy'] = hash;
  return out;
}

function envoyRoute(route: Route, rule: RouteRule, m: RouteMatch, matchIndex: number, policies: EffectivePolicies): XdsObject {
  const out: XdsObject = {
    name: `${route.kind}/${route.metadata.name}/${rule.name}${rule.matches.length > 1 ? `/${matchIndex}` : ''}`,
    match: routeMatch(route.kind, m),
    route: routeAction(rule, policies),
  };
  if (rule.requestHeaders) Object.assign(out, headerOps(rule.requestHeaders, 'request'));
  if (rule.responseHeaders) Object.assign(out, headerOps(rule.responseHeaders, 'response'));
  return out;
}

export function routeMatch(kind: Route['kind'], m: RouteMatch): XdsObject {
  const out: XdsObject = {};
  if (m.grpc !== undefined) Object.assign(out, grpcPath(m.grpc));
  else if (m.path === undefined) out['prefix'] = '/';
  else if (m.path.type === 'PathPrefix') out['prefix'] = m.path.value;
  else if (m.path.type === 'Exact') out['path'] = m.path.value;
  else out['safe_regex'] = { regex: m.path.value };
  const headers = m.headers.map(headerMatcher);
  if (m.method !== undefined) headers.unshift({ name: ':method', string_match: { exact: m.method } });
  if (headers.length > 0) out['headers'] = headers;
  if (kind === 'GRPCRoute') out['grpc'] = {};
  return out;
}

/** gRPC method matches become path matches on /<service>/<method>. */
function grpcPath(g: NonNullable<RouteMatch['grpc']>): XdsObject {
  if (g.type === 'RegularExpression') {
    return { safe_regex: { regex: `/${g.service === '' ? '[^/]+' : `(?:${g.service})`}/${g.method === '' ? '[^/]+' : `(?:${g.method})`}` } };
  }
  if (g.service !== '' && g.method !== '') return { path: `/${g.service}/${g.method}` };
  if (g.service !== '') return { prefix: `/${g.service}/` };
  return { safe_regex: { regex: `/[^/]+/${escapeRegex(g.method)}` } };
}

function escapeRegex(s: string): string { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

function headerMatcher(h: HeaderMatch): XdsObject {
  const out: XdsObject = { name: h.name };
  if (h.type === 'Present') out['present_match'] = true;
  else if (h.type === 'Exact') out['string_match'] = { exact: h.value };
  else out['string_match'] = { safe_regex: { regex: h.value } };
  if (h.invert) out['invert_match'] = true;
  return out;
}

function routeAction(rule: RouteRule, policies: EffectivePolicies): XdsObject {
  const live = rule.backendRefs.filter((b) => b.weight > 0);
  const out: XdsObject = live.length === 1
    ? { cluster: backendClusterName(live[0]!) }
    : { weighted_clusters: { clusters: live.map((b) => ({ name: backendClusterName(b), weight: u32(b.weight) })) } };
  // Envoy's default route timeout is 15s; 0 disables it, which is what an unset timeout means here.
  out['timeout'] = duration(rule.timeoutMs);
  if (rule.timeoutMs > 0) out['max_stream_duration'] = { max_stream_duration: duration(rule.timeoutMs) };
  if (rule.retry) {
    const r = rule.retry;
    const policy: XdsObject = {
      retry_on: r.retryOn.join(','),
      num_retries: u32(r.retries),
      retry_back_off: { base_interval: duration(r.backoff.baseMs), max_interval: duration(r.backoff.maxMs) },
    };
    if (r.perTryTimeoutMs > 0) policy['per_try_timeout'] = duration(r.perTryTimeoutMs);
    if (r.retriableStatusCodes.length > 0) policy['retriable_status_codes'] = r.retriableStatusCodes;
    out['retry_policy'] = policy;
  }
  const hash = hashPolicy(live, policies);
  if (hash.length > 0) out['hash_policy'] = hash;
  return out;
}

/** Ring-hash clusters hash on what their BackendPolicy names; the route carries it, as in Envoy. */
function hashPolicy(backends: readonly BackendRef[], policies: EffectivePolicies): XdsObject[] {
  const seen = new Set<string>();
  const out: XdsObject[] = [];
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

function headerOps(m: HeaderModifier, dir: 'request' | 'response'): XdsObject {
  const add = [
    ...m.set.map((h) => ({ header: { key: h.name, value: h.value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
    ...m.add.map((h) => ({ header: { key: h.name, value: h.value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' })),
  ];
  const out: XdsObject = {};
  if (add.length > 0) out[`${dir}_headers_to_add`] = add;
  if (m.remove.length > 0) out[`${dir}_headers_to_remove`] = m.remove;
  return out;
}

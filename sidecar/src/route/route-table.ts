/**
 * The sidecar's route table: one decoded envoy.config.route.v3.RouteConfiguration, validated and
 * compiled once by RouteTable.build, then matched per request without allocating.
 *
 *   match(authority, path, method, headers)
 *     -> virtual host by authority (domain-index.ts)
 *     -> first route whose match holds, in order (route-match.ts)
 *     -> its immutable RouteEntry, or undefined (NO_ROUTE)
 *
 * build() throws a SKEIN_ERR_VALIDATION MeshError whose message is `<field path>: <problem>`
 * (the NACK's error_detail) for anything invalid or unimplemented; unimplemented fields are
 * rejected rather than ignored, so the sidecar never routes differently from what was asked.
 *
 * Header mutations of a route are flattened at build time: route level, then virtual host, then
 * route configuration (Envoy's order, in which the less specific level's overwrite wins), or the
 * reverse with most_specific_header_mutations_wins. Removals are the union of all levels.
 *
 * typed_per_filter_config (filter-config.ts) is resolved at build time too: the route's entry for a
 * filter wins over the virtual host's. Each route with its own local rate limit gets its own
 * TokenBucket; routes that inherit the virtual host's share that one bucket (in Envoy the per-filter
 * config object, and so its bucket, belongs to the level that declares it). A table rebuilt from
 * an update keeps the previous table's bucket (tokens and fill phase) wherever the same virtual
 * host and route (by name, or by position when unnamed) declare the same bucket settings, so
 * config pushes (a canary weight shift) do not refill a rate limit; other buckets start full.
 * The entries apply only if the listener's http filter chain has the filter, as in Envoy: the
 * sidecar serves `withHttpFilters(listedHttpFilters(listener))`, a copy of the table without the
 * settings of filters the listener lacks (computed once per filter set, at config time; the copy
 * shares the buckets). Such settings are ignored, not NACKed, as Envoy ignores them: the
 * RouteConfiguration and the Listener are separate resources (one route configuration may serve
 * listeners with different chains, and either may arrive first), so neither is wrong on its own.
 * The caller is told (`onIgnored`) so the sidecar can log it.
 */
import { readableMessage } from '../../../shared/src/xds/pack';
import { TokenBucket } from '../resilience/token-bucket';
import type { FaultPolicy } from '../resilience/fault';
import { DomainIndex } from './domain-index';
import { FAULT_FILTER, LOCAL_RATELIMIT_FILTER, parsePerFilterConfig } from './filter-config';
import type { PerFilterConfig, TokenBucketSpec } from './filter-config';
import type { RequestHeaders } from './header-matcher';
import { parseHeadersToAdd, parseHeadersToRemove } from './header-ops';
import type { HeaderToAdd } from './header-ops';
import { RouteAction, parseRouteAction } from './route-action';
import { RouteMatcher, parseRouteMatch, pathEnd } from './route-match';
import { parseRetryPolicy } from './retry-policy';
import type { RetryPolicy } from './retry-policy';
import { at, bool, checkFields, fail, fieldSpec, list, message, oneofCase, optMessage, str, u32, wrappedU32 } from './xds-fields';
import type { XdsMessage } from './xds-fields';

export type { RequestHeaders } from './header-matcher';
export type { HeaderToAdd } from './header-ops';
export { RouteAction } from './route-action';
export type { HashPolicy } from './route-action';
export type { RetryPolicy } from './retry-policy';
export type { FaultPolicy } from '../resilience/fault';
export type { TokenBucket } from '../resilience/token-bucket';

/** What a request matched. Immutable; shared by every request that matches the same route. */
export interface RouteEntry {
  /** Route.name ('' when unnamed). */
  readonly name: string;
  readonly virtualHost: string;
  /** undefined for a direct_response route. */
  readonly route: RouteAction | undefined;
  readonly directResponse?: { readonly status: number; readonly body: string };
  readonly requestHeadersToAdd: readonly HeaderToAdd[];
  readonly requestHeadersToRemove: readonly string[];
  readonly responseHeadersToAdd: readonly HeaderToAdd[];
  readonly responseHeadersToRemove: readonly string[];
  /** Fault injection (envoy.filters.http.fault), or undefined for none. */
  readonly fault: FaultPolicy | undefined;
  /** The local rate limit's bucket (envoy.filters.http.local_ratelimit), or undefined for none. Mutable state, shared by every request on the route. */
  readonly rateLimit: TokenBucket | undefined;
}

/** Which of the per-route filters a listener's http filter chain lists. */
export interface HttpFilterSet { readonly fault: boolean; readonly rateLimit: boolean }

interface CompiledRoute { readonly matcher: RouteMatcher; readonly entry: RouteEntry }
interface CompiledVirtualHost { readonly name: string; readonly routes: readonly CompiledRoute[] }

/** Envoy's default for RouteConfiguration.max_direct_response_body_size_bytes. */
export const DEFAULT_MAX_DIRECT_RESPONSE_BODY_BYTES = 4096;

export class RouteTable {
  private constructor(
    /** RouteConfiguration.name. */
    readonly name: string,
    private readonly hosts: DomainIndex<CompiledVirtualHost>,
    /** Local rate-limit buckets by owner and settings, for the next build to carry over. */
    private readonly buckets: ReadonlyMap<string, TokenBucket>,
    /** The decoded RouteConfiguration this table was compiled from (for /config_dump). */
    private readonly source: unknown,
  ) {
    Object.freeze(this);
  }

  /** Copies of this table for listeners that lack some filter, by HttpFilterSet key. */
  private readonly variants = new Map<number, RouteTable>();

  /**
   * The table as a listener whose http filter chain is `has` sees it: the fault and local rate
   * limit settings of filters it does not list are dropped. This table itself when nothing is
   * dropped; otherwise a copy, made once per filter set (config time, never per request), with
   * the same route actions and buckets. `onIgnored` hears about each filter whose settings were
   * dropped (only when the copy is made).
   */
  withHttpFilters(has: HttpFilterSet, onIgnored?: (message: string) => void): RouteTable {
    const key = (has.fault ? 1 : 0) | (has.rateLimit ? 2 : 0);
    if (key === 3) return this;
    const cached = this.variants.get(key);
    if (cached !== undefined) return cached;
    const dropped = { fault: new Set<string>(), rateLimit: new Set<string>() };
    const hosts = this.hosts.map((vh) => Object.freeze({
      name: vh.name,
      routes: Object.freeze(vh.routes.map((r) => {
        const e = r.entry;
        const dropFault = !has.fault && e.fault !== undefined;
        const dropRl = !has.rateLimit && e.rateLimit !== undefined;
        if (!dropFault && !dropRl) return r;
        const label = `${vh.name}/${e.name === '' ? '(unnamed)' : e.name}`;
        if (dropFault) dropped.fault.add(label);
        if (dropRl) dropped.rateLimit.add(label);
        return Object.freeze({ matcher: r.matcher, entry: Object.freeze({ ...e, fault: dropFault ? undefined : e.fault, rateLimit: dropRl ? undefined : e.rateLimit }) });
      })),
    }));
    const table = dropped.fault.size + dropped.rateLimit.size === 0 ? this : new RouteTable(this.name, hosts, this.buckets, this.source);
    this.variants.set(key, table);
    for (const [filter, routes] of [[FAULT_FILTER, dropped.fault], [LOCAL_RATELIMIT_FILTER, dropped.rateLimit]] as const) {
      if (routes.size > 0) onIgnored?.(`route configuration ${this.name}: ${filter} settings of ${[...routes].join(', ')} are ignored: the listener's http_filters do not list ${filter}`);
    }
    return table;
  }

  /** The names of every route (RouteEntry.name, '' for unnamed ones), for stats retention. Config time. */
  routeNames(): Set<string> {
    const out = new Set<string>();
    this.hosts.forEachValue((vh) => { for (const r of vh.routes) out.add(r.entry.name); });
    return out;
  }

  /**
   * JSON (admin /config_dump): the RouteConfiguration as received, in Envoy's JSON shape
   * (embedded Anys unpacked, with '@type'); the compiled lookup structures would serialize as
   * empty objects. Built on demand, never on the request path.
   */
  toJSON(): unknown { return readableMessage(this.source); }

  /**
   * Validates and compiles a decoded RouteConfiguration. Throws MeshError(VALIDATION) `<path>: <problem>`.
   * `nowMs` (default 0) is when new local rate limit buckets start, full; only the phase of
   * their fill intervals depends on it. `previous` is the table this one replaces: its buckets
   * carry over where the owner and settings are unchanged.
   */
  static build(rc: unknown, nowMs = 0, previous?: RouteTable): RouteTable {
    const { name, hosts, buckets } = compile(message(rc, ''), nowMs, previous?.buckets);
    return new RouteTable(name, hosts, buckets, rc);
  }

  /**
   * The first route of the virtual host selected by `authority` that matches, or undefined.
   * `path` may carry a query string, which path matching ignores. `headers` are Node's
   * IncomingHttpHeaders (lower-case names); `:method`, `:authority` and `:path` header matchers
   * read `method`, `authority` and `path`. No allocation on the hot path (see domain-index.ts
   * and route-match.ts for the rare exceptions: first sight of an authority, a safe_regex path
   * matched against a path with a query, a header sent more than once).
   */
  match(authority: string, path: string, method: string, headers: RequestHeaders): RouteEntry | undefined {
    const vh = this.hosts.find(authority);
    if (vh === undefined) return undefined;
    const end = pathEnd(path);
    const routes = vh.routes;
    for (let i = 0; i < routes.length; i++) {
      if (routes[i].matcher.matches(path, end, method, authority, headers)) return routes[i].entry;
    }
    return undefined;
  }
}

const ROUTE_CONFIGURATION = fieldSpec(
  ['name', 'virtual_hosts', 'request_headers_to_add', 'request_headers_to_remove', 'response_headers_to_add',
    'response_headers_to_remove', 'most_specific_header_mutations_wins', 'max_direct_response_body_size_bytes',
    'ignore_port_in_host_matching'],
  ['validate_clusters', 'metadata'],
);
const VIRTUAL_HOST = fieldSpec(
  ['name', 'domains', 'routes', 'request_headers_to_add', 'request_headers_to_remove', 'response_headers_to_add',
    'response_headers_to_remove', 'retry_policy', 'typed_per_filter_config'],
  ['per_request_buffer_limit_bytes', 'metadata'],
  [],
  { require_tls: 'NONE' },
);
const ROUTE = fieldSpec(
  ['name', 'match', 'route', 'direct_response', 'request_headers_to_add', 'request_headers_to_remove',
    'response_headers_to_add', 'response_headers_to_remove', 'typed_per_filter_config'],
  ['metadata', 'decorator', 'stat_prefix', 'per_request_buffer_limit_bytes'],
  ['action'],
);
const DIRECT_RESPONSE = fieldSpec(['status', 'body']);
const DATA_SOURCE = fieldSpec(['inline_string', 'inline_bytes'], [], ['specifier']);

/** One level's header mutations. */
interface HeaderOps {
  readonly reqAdd: readonly HeaderToAdd[];
  readonly reqRemove: readonly string[];
  readonly respAdd: readonly HeaderToAdd[];
  readonly respRemove: readonly string[];
}

interface TableContext {
  readonly global: HeaderOps;
  readonly mostSpecificWins: boolean;
  readonly maxBodyBytes: number;
  readonly nowMs: number;
  /** The previous table's buckets by bucketKey, to carry over. */
  readonly previousBuckets: ReadonlyMap<string, TokenBucket> | undefined;
  /** This table's buckets by bucketKey. */
  readonly buckets: Map<string, TokenBucket>;
}

/** A virtual host's per-filter settings, its bucket built once for the routes that inherit it. */
interface VhostFilters { readonly fault: FaultPolicy | null | undefined; readonly rateLimit: TokenBucket | null | undefined }

interface Compiled { name: string; hosts: DomainIndex<CompiledVirtualHost>; buckets: ReadonlyMap<string, TokenBucket> }

function compile(rc: XdsMessage, nowMs: number, previousBuckets: ReadonlyMap<string, TokenBucket> | undefined): Compiled {
  checkFields(rc, ROUTE_CONFIGURATION, '');
  const ctx: TableContext = {
    global: headerOps(rc, ''),
    mostSpecificWins: bool(rc, 'most_specific_header_mutations_wins', ''),
    maxBodyBytes: wrappedU32(rc, 'max_direct_response_body_size_bytes', '') ?? DEFAULT_MAX_DIRECT_RESPONSE_BODY_BYTES,
    nowMs,
    previousBuckets,
    buckets: new Map(),
  };
  const hosts = new DomainIndex<CompiledVirtualHost>(bool(rc, 'ignore_port_in_host_matching', ''));
  list(rc, 'virtual_hosts', '').forEach((raw, i) => {
    const path = at('virtual_hosts', i);
    const vh = message(raw, path);
    checkFields(vh, VIRTUAL_HOST, path);
    const name = str(vh, 'name', path);
    if (name === '') fail(at(path, 'name'), 'is required');
    const domains = list(vh, 'domains', path);
    if (domains.length === 0) fail(at(path, 'domains'), 'must list at least one domain');
    const retry = vh['retry_policy'] === undefined ? undefined : parseRetryPolicy(vh['retry_policy'], at(path, 'retry_policy'));
    const ops = headerOps(vh, path);
    const filters = vhostFilters(parsePerFilterConfig(vh, path), name, ctx);
    const routes = list(vh, 'routes', path).map((r, ri) => buildRoute(r, at(at(path, 'routes'), ri), ri, name, ops, retry, filters, ctx));
    hosts.add(domains, Object.freeze({ name, routes: Object.freeze(routes) }), at(path, 'domains'));
  });
  return { name: str(rc, 'name', ''), hosts, buckets: ctx.buckets };
}

function buildRoute(
  raw: unknown, path: string, index: number, vhost: string, vhostOps: HeaderOps,
  vhostRetry: RetryPolicy | undefined, vhostFilters: VhostFilters, ctx: TableContext,
): CompiledRoute {
  const r = message(raw, path);
  checkFields(r, ROUTE, path);
  if (optMessage(r, 'match', path) === undefined) fail(at(path, 'match'), 'is required');
  const matcher = parseRouteMatch(r['match'], at(path, 'match'));
  const which = oneofCase(r, 'action', ['route', 'direct_response', 'redirect', 'filter_action', 'non_forwarding_action'], path);
  let route: RouteAction | undefined;
  let directResponse: RouteEntry['directResponse'];
  if (which === 'route') route = parseRouteAction(r['route'], at(path, 'route'), vhostRetry);
  else if (which === 'direct_response') directResponse = parseDirectResponse(r['direct_response'], at(path, 'direct_response'), ctx.maxBodyBytes);
  else if (which === undefined) fail(path, 'action is required: route or direct_response');
  else fail(at(path, which), 'is not supported by the skein sidecar');
  const levels = ctx.mostSpecificWins ? [ctx.global, vhostOps, headerOps(r, path)] : [headerOps(r, path), vhostOps, ctx.global];
  const own = parsePerFilterConfig(r, path);
  const fault = own.fault !== undefined ? own.fault : vhostFilters.fault;
  const name = str(r, 'name', path);
  const rateLimit = own.rateLimit !== undefined ? bucketOf(own.rateLimit, `route\0${vhost}\0${name === '' ? `#${index}` : name}`, ctx) : vhostFilters.rateLimit;
  const entry: RouteEntry = {
    name,
    virtualHost: vhost,
    route,
    ...(directResponse === undefined ? {} : { directResponse }),
    requestHeadersToAdd: frozenConcat(levels.map((l) => l.reqAdd)),
    requestHeadersToRemove: frozenUnion(levels.map((l) => l.reqRemove)),
    responseHeadersToAdd: frozenConcat(levels.map((l) => l.respAdd)),
    responseHeadersToRemove: frozenUnion(levels.map((l) => l.respRemove)),
    fault: fault ?? undefined,
    rateLimit: rateLimit ?? undefined,
  };
  return Object.freeze({ matcher, entry: Object.freeze(entry) });
}

function parseDirectResponse(raw: unknown, path: string, maxBodyBytes: number): { status: number; body: string } {
  const o = message(raw, path);
  checkFields(o, DIRECT_RESPONSE, path);
  const status = u32(o['status'] ?? 0, at(path, 'status'));
  if (status < 200 || status > 599) fail(at(path, 'status'), `must be in [200, 599], got ${status}`);
  let body = '';
  const src = optMessage(o, 'body', path);
  if (src !== undefined) {
    const bp = at(path, 'body');
    checkFields(src, DATA_SOURCE, bp);
    const which = oneofCase(src, 'specifier', ['inline_string', 'inline_bytes', 'filename', 'environment_variable'], bp);
    if (which === 'inline_string') body = str(src, which, bp);
    else if (which === 'inline_bytes') {
      const b = src[which];
      if (!(b instanceof Uint8Array)) fail(at(bp, which), 'must be bytes');
      body = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
    } else if (which !== undefined) fail(at(bp, which), 'is not supported by the skein sidecar');
    const size = Buffer.byteLength(body);
    if (size > maxBodyBytes) fail(bp, `is ${size} bytes, over max_direct_response_body_size_bytes (${maxBodyBytes})`);
  }
  return Object.freeze({ status, body });
}

function vhostFilters(c: PerFilterConfig, vhost: string, ctx: TableContext): VhostFilters {
  return { fault: c.fault, rateLimit: c.rateLimit === undefined ? undefined : bucketOf(c.rateLimit, `vhost\0${vhost}`, ctx) };
}

/**
 * The bucket for `spec` declared at `owner` (a virtual host, or one of its routes): the previous
 * table's if it had one there with the same settings, else a new, full one.
 */
function bucketOf(spec: TokenBucketSpec | null, owner: string, ctx: TableContext): TokenBucket | null {
  if (spec === null) return null;
  const key = `${owner}\0${spec.maxTokens}/${spec.tokensPerFill}/${spec.fillIntervalMs}`;
  const b = ctx.previousBuckets?.get(key) ?? new TokenBucket(spec.maxTokens, spec.tokensPerFill, spec.fillIntervalMs, ctx.nowMs);
  ctx.buckets.set(key, b);
  return b;
}

function headerOps(o: XdsMessage, path: string): HeaderOps {
  return {
    reqAdd: parseHeadersToAdd(o, 'request_headers_to_add', path),
    reqRemove: parseHeadersToRemove(o, 'request_headers_to_remove', path),
    respAdd: parseHeadersToAdd(o, 'response_headers_to_add', path),
    respRemove: parseHeadersToRemove(o, 'response_headers_to_remove', path),
  };
}

const NONE: readonly never[] = Object.freeze([]);

function frozenConcat<T>(parts: readonly (readonly T[])[]): readonly T[] {
  const all = parts.flat() as T[];
  return all.length === 0 ? NONE : Object.freeze(all);
}

function frozenUnion(parts: readonly (readonly string[])[]): readonly string[] {
  const all = [...new Set(parts.flat())];
  return all.length === 0 ? NONE : Object.freeze(all);
}

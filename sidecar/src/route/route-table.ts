/**
 * The sidecar's route table: one decoded envoy.config.route.v3.RouteConfiguration, validated and
 * compiled once by RouteTable.build, then matched per request without allocating.
 *
 *   match(authority, path, method, headers)
 *     -> virtual host by authority (domain-index.ts)
 *     -> first route whose match holds, in order (route-match.ts)
 *     -> its immutable RouteEntry, or undefined (NO_ROUTE)
 *
 * decode() collects every problem with its field path (shared/src/xds/issues.ts), e.g.
 * `virtual_hosts[0].routes[2].match: path_specifier is required`, and yields no table when it
 * found any; RDS (xds/route-type.ts) NACKs with all of them. Unimplemented fields are rejected
 * rather than ignored (checkFields), so the sidecar never routes differently from what was
 * asked. build() is the same for callers outside xDS (tests, the inbound table): it throws a
 * SKEIN_ERR_VALIDATION MeshError whose message is the problems joined with '; '.
 *
 * Header mutations of a route are flattened at build time: route level, then virtual host, then
 * route configuration (Envoy's order, in which the less specific level's overwrite wins), or the
 * reverse with most_specific_header_mutations_wins. Removals are the union of all levels.
 *
 * typed_per_filter_config (filter-config.ts) is resolved at build time too, through the http
 * filters the caller passes (filters/registry.ts): the route's entry for a filter wins over the
 * virtual host's, and each filter finds its settings in RouteEntry.perFilter[its slot]. State a
 * filter keeps across requests (a local rate limit's token bucket) belongs to the level that
 * declares it: routes that inherit the virtual host's share its one bucket. A table rebuilt from
 * an update keeps the previous table's state (PerRouteContext.carry) wherever the same virtual
 * host and route (by name, or by position when unnamed) declare the same settings, so config
 * pushes (a canary weight shift) do not refill a rate limit.
 * Which filters the table turns on, and where, is kept (filterUses) so that a RouteConfiguration
 * naming a filter its listener does not list is NACKed (xds/http-filter-check.ts).
 */
import { readableMessage } from '../../../shared/src/xds/pack';
import { DomainIndex } from './domain-index';
import { NO_PER_ROUTE_FILTERS, parsePerFilterConfig } from './filter-config';
import type { PerFilterConfig, PerRouteContext, PerRouteFilterConfigs } from './filter-config';
import type { RequestHeaders } from './header-matcher';
import { parseHeadersToAdd, parseHeadersToRemove } from './header-ops';
import type { HeaderToAdd } from './header-ops';
import { RouteAction, parseRouteAction } from './route-action';
import { RouteMatcher, parseRouteMatch, pathEnd } from './route-match';
import { parseRetryPolicy } from './retry-policy';
import { parseRouteTracing } from './route-tracing';
import type { RouteTracing } from './route-tracing';
import type { RetryPolicy } from './retry-policy';
import { at, bool, bytes, checkFields, fieldSpec, has, list, message, oneofCase, optMessage, str, u32, wrappedU32 } from '../../../shared/src/xds/fields';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import { decodeOrThrow } from '../../../shared/src/xds/issues';
import type { Issues } from '../../../shared/src/xds/issues';

export type { RequestHeaders } from './header-matcher';
export type { HeaderToAdd } from './header-ops';
export { RouteAction } from './route-action';
export type { HashPolicy } from './route-action';
export type { RetryPolicy } from './retry-policy';
export type { PerRouteFilterConfigs } from './filter-config';

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
  /**
   * Per-route settings of the http filters, by the filter's slot (filters/registry.ts); undefined
   * where the route has none. A filter's state in it (a token bucket) is shared by every request
   * on the route.
   */
  readonly perFilter: readonly unknown[];
  /** Route.tracing: this route's share of new traces (undefined: the listener's). */
  readonly tracing: RouteTracing | undefined;
}

/** Where a table turns a filter on: its name and the `virtual host/route` labels. */
export interface FilterUse { readonly name: string; readonly where: readonly string[] }

interface CompiledRoute { readonly matcher: RouteMatcher; readonly entry: RouteEntry }
interface CompiledVirtualHost { readonly name: string; readonly routes: readonly CompiledRoute[] }

/** Envoy's default for RouteConfiguration.max_direct_response_body_size_bytes. */
export const DEFAULT_MAX_DIRECT_RESPONSE_BODY_BYTES = 4096;

export class RouteTable {
  private constructor(
    /** RouteConfiguration.name. */
    readonly name: string,
    private readonly hosts: DomainIndex<CompiledVirtualHost>,
    /** Filter state by owner and settings (PerRouteContext.carry), for the next build to carry over. */
    private readonly carried: ReadonlyMap<string, unknown>,
    /** The decoded RouteConfiguration this table was compiled from (for /config_dump). */
    private readonly source: unknown,
    /** The filters the table turns on, by the filter's typed_config type URL. */
    readonly filterUses: ReadonlyMap<string, FilterUse>,
  ) {
    Object.freeze(this);
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
   * Validates and compiles a decoded RouteConfiguration, adding every problem to `issues`
   * (`<path>: <problem>`); undefined when it added any. `filters` reads typed_per_filter_config
   * (NO_PER_ROUTE_FILTERS: none, so any entry is rejected unless optional). `nowMs` is when new
   * filter state starts (a full token bucket; only the phase of its fill interval depends on
   * it). `previous` is the table this one replaces: its filter state carries over where the
   * owner and settings are unchanged (it is only read).
   */
  static decode(rc: unknown, filters: PerRouteFilterConfigs, nowMs: number, previous: RouteTable | undefined, issues: Issues): RouteTable | undefined {
    const m = message(rc, '', issues);
    if (m === undefined) return undefined;
    const before = issues.count;
    const { name, hosts, carried, uses } = compile(m, filters, nowMs, previous?.carried, issues);
    return issues.count === before ? new RouteTable(name, hosts, carried, rc, uses) : undefined;
  }

  /**
   * decode() for callers outside xDS (tests, the inbound table): the table, or a thrown
   * MeshError(VALIDATION) whose message lists every problem (`<path>: <problem>; ...`).
   */
  static build(rc: unknown, filters: PerRouteFilterConfigs = NO_PER_ROUTE_FILTERS, nowMs = 0, previous?: RouteTable): RouteTable {
    return decodeOrThrow('RouteConfiguration', (issues) => RouteTable.decode(rc, filters, nowMs, previous, issues));
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
    'response_headers_to_add', 'response_headers_to_remove', 'typed_per_filter_config', 'tracing'],
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
  readonly filters: PerRouteFilterConfigs;
  /** The previous table's filter state by carry key. */
  readonly previousCarried: ReadonlyMap<string, unknown> | undefined;
  /** This table's filter state by carry key. */
  readonly carried: Map<string, unknown>;
  /** Filters turned on, by type URL. */
  readonly uses: Map<string, { name: string; where: string[] }>;
}

interface Compiled { name: string; hosts: DomainIndex<CompiledVirtualHost>; carried: ReadonlyMap<string, unknown>; uses: ReadonlyMap<string, FilterUse> }

function compile(rc: XdsMessage, filters: PerRouteFilterConfigs, nowMs: number, previousCarried: ReadonlyMap<string, unknown> | undefined, issues: Issues): Compiled {
  checkFields(rc, ROUTE_CONFIGURATION, '', issues);
  const readMax = issues.count;
  const maxBodyBytes = wrappedU32(rc, 'max_direct_response_body_size_bytes', '', issues) ?? DEFAULT_MAX_DIRECT_RESPONSE_BODY_BYTES;
  const ctx: TableContext = {
    global: headerOps(rc, '', issues),
    mostSpecificWins: bool(rc, 'most_specific_header_mutations_wins', '', issues),
    // An invalid limit is reported once; bodies are then not measured against a stand-in.
    maxBodyBytes: issues.count === readMax ? maxBodyBytes : Infinity,
    nowMs,
    filters,
    previousCarried,
    carried: new Map(),
    uses: new Map(),
  };
  const hosts = new DomainIndex<CompiledVirtualHost>(bool(rc, 'ignore_port_in_host_matching', '', issues));
  list(rc, 'virtual_hosts', '', issues).forEach((raw, i) => {
    const path = at('virtual_hosts', i);
    const vh = message(raw, path, issues);
    if (vh === undefined) return;
    checkFields(vh, VIRTUAL_HOST, path, issues);
    const readName = issues.count;
    const name = str(vh, 'name', path, issues);
    if (name === '' && issues.count === readName) issues.add(at(path, 'name'), 'is required');
    const readDomains = issues.count;
    const domains = list(vh, 'domains', path, issues);
    if (domains.length === 0 && issues.count === readDomains) issues.add(at(path, 'domains'), 'must list at least one domain');
    const retry = has(vh, 'retry_policy') ? parseRetryPolicy(vh['retry_policy'], at(path, 'retry_policy'), issues) : undefined;
    const ops = headerOps(vh, path, issues);
    const filters = perFilter(vh, path, `vhost\0${name}`, name, ctx, issues);
    const routes: CompiledRoute[] = [];
    list(vh, 'routes', path, issues).forEach((r, ri) => {
      const route = buildRoute(r, at(at(path, 'routes'), ri), ri, name, ops, retry, filters, ctx, issues);
      if (route !== undefined) routes.push(route);
    });
    hosts.add(domains, Object.freeze({ name, routes: Object.freeze(routes) }), at(path, 'domains'), issues);
  });
  return { name: str(rc, 'name', '', issues), hosts, carried: ctx.carried, uses: ctx.uses };
}

/** One route, compiled; undefined when it added an issue. */
function buildRoute(
  raw: unknown, path: string, index: number, vhost: string, vhostOps: HeaderOps,
  vhostRetry: RetryPolicy | undefined, vhostFilters: PerFilterConfig, ctx: TableContext, issues: Issues,
): CompiledRoute | undefined {
  const r = message(raw, path, issues);
  if (r === undefined) return undefined;
  const before = issues.count;
  checkFields(r, ROUTE, path, issues);
  const matcher = has(r, 'match') ? parseRouteMatch(r['match'], at(path, 'match'), issues) : undefined;
  if (!has(r, 'match')) issues.add(at(path, 'match'), 'is required');
  const which = oneofCase(r, 'action', ['route', 'direct_response', 'redirect', 'filter_action', 'non_forwarding_action'], path, issues);
  let route: RouteAction | undefined;
  let directResponse: RouteEntry['directResponse'];
  if (which === 'route') route = parseRouteAction(r['route'], at(path, 'route'), vhostRetry, issues);
  else if (which === 'direct_response') directResponse = parseDirectResponse(r['direct_response'], at(path, 'direct_response'), ctx.maxBodyBytes, issues);
  else if (which === undefined) issues.add(path, 'action is required: route or direct_response');
  else issues.add(at(path, which), 'is not supported by the skein sidecar');
  const own = headerOps(r, path, issues);
  const levels = ctx.mostSpecificWins ? [ctx.global, vhostOps, own] : [own, vhostOps, ctx.global];
  const name = str(r, 'name', path, issues);
  const tracing = has(r, 'tracing') ? parseRouteTracing(r['tracing'], at(path, 'tracing'), issues) : undefined;
  const filters = perFilter(r, path, `route\0${vhost}\0${name === '' ? `#${index}` : name}`, `${vhost}/${name === '' ? '(unnamed)' : name}`, ctx, issues);
  if (matcher === undefined || issues.count !== before) return undefined;
  const entry: RouteEntry = {
    name,
    virtualHost: vhost,
    route,
    ...(directResponse === undefined ? {} : { directResponse }),
    requestHeadersToAdd: frozenConcat(levels.map((l) => l.reqAdd)),
    requestHeadersToRemove: frozenUnion(levels.map((l) => l.reqRemove)),
    responseHeadersToAdd: frozenConcat(levels.map((l) => l.respAdd)),
    responseHeadersToRemove: frozenUnion(levels.map((l) => l.respRemove)),
    perFilter: mergePerFilter(filters, vhostFilters),
    tracing,
  };
  return Object.freeze({ matcher, entry: Object.freeze(entry) });
}

/** A direct_response action, or undefined when it added an issue. */
function parseDirectResponse(raw: unknown, path: string, maxBodyBytes: number, issues: Issues): { status: number; body: string } | undefined {
  const o = message(raw, path, issues);
  if (o === undefined) return undefined;
  const before = issues.count;
  checkFields(o, DIRECT_RESPONSE, path, issues);
  const status = u32(o['status'] ?? 0, at(path, 'status'), issues);
  if (status !== undefined && (status < 200 || status > 599)) issues.add(at(path, 'status'), `must be in [200, 599], got ${status}`);
  let body = '';
  const src = optMessage(o, 'body', path, issues);
  if (src !== undefined) {
    const bp = at(path, 'body');
    checkFields(src, DATA_SOURCE, bp, issues);
    const which = oneofCase(src, 'specifier', ['inline_string', 'inline_bytes', 'filename', 'environment_variable'], bp, issues);
    if (which === 'inline_string') body = str(src, which, bp, issues);
    else if (which === 'inline_bytes') {
      const b = bytes(src, which, bp, issues);
      if (b !== undefined) body = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
    } else if (which !== undefined) issues.add(at(bp, which), 'is not supported by the skein sidecar');
    const size = Buffer.byteLength(body);
    if (size > maxBodyBytes) issues.add(bp, `is ${size} bytes, over max_direct_response_body_size_bytes (${maxBodyBytes})`);
  }
  return status === undefined || issues.count !== before ? undefined : Object.freeze({ status, body });
}

/** One level's typed_per_filter_config, its state carried over under `owner`; records which filters it turns on. */
function perFilter(o: XdsMessage, path: string, owner: string, label: string, ctx: TableContext, issues: Issues): PerFilterConfig {
  const pctx: PerRouteContext = {
    owner,
    nowMs: ctx.nowMs,
    carry<T>(key: string, make: () => T): T {
      const k = `${owner}\0${key}`;
      const v = (ctx.previousCarried?.get(k) as T | undefined) ?? make();
      ctx.carried.set(k, v);
      return v;
    },
  };
  const c = parsePerFilterConfig(o, path, ctx.filters, pctx, issues);
  for (const f of c.used) {
    let u = ctx.uses.get(f.typeUrl);
    if (u === undefined) { u = { name: f.name, where: [] }; ctx.uses.set(f.typeUrl, u); }
    u.where.push(label);
  }
  return c;
}

/** The route's settings per filter, else the virtual host's; null (off) and unset become undefined. */
function mergePerFilter(own: PerFilterConfig, vhost: PerFilterConfig): readonly unknown[] {
  if (own.values === undefined && vhost.values === undefined) return NONE;
  const n = (own.values ?? vhost.values)!.length;
  const out: unknown[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const v = own.values?.[i] !== undefined ? own.values[i] : vhost.values?.[i];
    out[i] = v === null ? undefined : v;
  }
  return Object.freeze(out);
}

function headerOps(o: XdsMessage, path: string, issues: Issues): HeaderOps {
  return {
    reqAdd: parseHeadersToAdd(o, 'request_headers_to_add', path, issues),
    reqRemove: parseHeadersToRemove(o, 'request_headers_to_remove', path, issues),
    respAdd: parseHeadersToAdd(o, 'response_headers_to_add', path, issues),
    respRemove: parseHeadersToRemove(o, 'response_headers_to_remove', path, issues),
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

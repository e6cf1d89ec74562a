/**
 * HTTP filter registry, by the filter's canonical name and its typed_config type URL (as the
 * load balancers' upstream/lb/registry.ts registers policies by name). The built-ins register on
 * import: fault, local rate limit, RBAC (the inbound listener's authorization).
 *
 * A registered filter is read three ways:
 * - the Listener's http_filters (xds/listener-type.ts): `parseListenerConfig` validates its
 *   typed_config; a type not registered is rejected unless is_optional;
 * - a RouteConfiguration's typed_per_filter_config (route/route-table.ts, through HTTP_FILTERS):
 *   `parsePerRoute` turns an entry into what the filter reads per request from
 *   RouteEntry.perFilter[slot];
 * - the listener's chain (pipeline.ts): `create` makes the filter once per listener config.
 */
import { validationError } from '../../../shared/src/errors';
import type { HttpFilter } from '../http/http-filter';
import type { HttpFilterTypes, PerRouteContext, PerRouteFilter } from '../route/filter-config';
import type { RouteEntry } from '../route/route-table';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';
import type { Logger } from '../../../shared/src/log';
import type { Stats } from '../stats/stats';
import type { RateLimitedLog } from '../runtime/rate-limited-log';
import { faultFilter } from './fault';
import { localRateLimitFilter } from './local-rate-limit';
import { rbacFilter } from './rbac';

/** What a filter gets from its listener: where to count and log (sidecar.ts makes one per listener). */
export interface FilterEnv {
  readonly stats: Stats;
  /** The listener's stats prefix, e.g. `listener.inbound.`. */
  readonly statPrefix: string;
  readonly log: Logger;
  /** Warnings a caller can cause at will go through it (at most one line per key every 10s). */
  readonly warnings: RateLimitedLog;
}

/** A FilterEnv, and where in its chain the filter sits. */
export interface FilterCreateContext extends FilterEnv {
  /** No later filter of the chain has this filter's type (e.g. the last of several RBAC filters). */
  readonly lastOfType: boolean;
}

/**
 * What a filter module exports to be registered. Parsers collect their problems in `issues`
 * (`<path>: <problem>`, shared/src/xds/issues.ts), never throw, and return undefined when they
 * added any.
 */
export interface HttpFilterDefinition<L = unknown> {
  /** Canonical name: the key routes use in typed_per_filter_config. */
  readonly name: string;
  /** The typed_config type of the filter (and of its per-route config). */
  readonly typeUrl: string;
  /** A listener typed_config with which the filter does nothing until a route turns it on. */
  readonly inertListenerConfig: XdsMessage;
  /** The listener's typed_config, validated: what `create` gets (undefined when it added an issue). */
  parseListenerConfig(config: XdsMessage, path: string, issues: Issues): L | undefined;
  /** One level's per-route settings (null: never applies). Absent: the filter takes none. */
  parsePerRoute?(config: XdsMessage, path: string, ctx: PerRouteContext, issues: Issues): unknown;
  /** The filter of one listener; its per-route settings are at RouteEntry.perFilter[slot]. */
  create(config: L, slot: number, ctx: FilterCreateContext): HttpFilter;
}

/** A registered filter: its definition and its slot in RouteEntry.perFilter. */
export interface RegisteredHttpFilter extends PerRouteFilter {
  readonly definition: HttpFilterDefinition;
}

const byName = new Map<string, RegisteredHttpFilter>();
const byTypeUrl = new Map<string, RegisteredHttpFilter>();

/** Registers a filter (a name or type URL already registered is an error: slots never move). */
export function registerHttpFilter<L>(def: HttpFilterDefinition<L>): RegisteredHttpFilter {
  if (byName.has(def.name) || byTypeUrl.has(def.typeUrl)) throw validationError([{ resource: '', path: 'http_filters', message: `http filter ${def.name} (${def.typeUrl}) is already registered` }]);
  const d = def as HttpFilterDefinition;
  const r: RegisteredHttpFilter = Object.freeze({
    name: def.name,
    typeUrl: def.typeUrl,
    slot: byName.size,
    definition: d,
    parsePerRoute: (config: XdsMessage, path: string, ctx: PerRouteContext, issues: Issues) => (d.parsePerRoute === undefined ? null : d.parsePerRoute(config, path, ctx, issues)),
  });
  byName.set(def.name, r);
  byTypeUrl.set(def.typeUrl, r);
  return r;
}

/** The filter whose typed_config has this type, or undefined. */
export function httpFilterByTypeUrl(typeUrl: string): RegisteredHttpFilter | undefined { return byTypeUrl.get(typeUrl); }

/** Registered filters, in registration order (slot order). */
export function registeredHttpFilters(): RegisteredHttpFilter[] { return [...byName.values()]; }

/** The registry as the xDS decoders read it: the route table's typed_per_filter_config, the Listener's http_filters. */
export const HTTP_FILTERS: HttpFilterTypes = {
  perRoute: (name) => byName.get(name),
  byTypeUrl: (typeUrl) => { const r = byTypeUrl.get(typeUrl); return r === undefined ? undefined : { name: r.name, parseListenerConfig: (c, p, i) => r.definition.parseListenerConfig(c, p, i) }; },
  get slots() { return byName.size; },
  get names() { return [...byName.keys()]; },
};

/** A route's settings for the filter named `name` (tests, admin), or undefined. */
export function perRouteConfig<T>(entry: RouteEntry, name: string): T | undefined {
  const r = byName.get(name);
  return r === undefined ? undefined : entry.perFilter[r.slot] as T | undefined;
}

registerHttpFilter(faultFilter);
registerHttpFilter(localRateLimitFilter);
registerHttpFilter(rbacFilter);

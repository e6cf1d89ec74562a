/**
 * typed_per_filter_config of a VirtualHost or Route: per-route settings of the http filters that
 * run before the router. The route table does not know the filters: it reads each entry through
 * `PerRouteFilterConfigs` (filters/registry.ts implements it), keyed by the filter's canonical
 * name (e.g. `envoy.filters.http.fault`), and keeps the result in RouteEntry.perFilter[slot].
 *
 * An entry may be wrapped in an envoy.config.route.v3.FilterConfig: `disabled: true` turns the
 * filter off at this level; `is_optional: true` lets an entry for a filter the sidecar does not
 * know be skipped (otherwise an unknown key is rejected, as Envoy rejects an unknown config type).
 *
 * A level's result per filter: undefined when the level says nothing (inherit), null when it sets
 * the filter off, else the settings. The route's entry wins over the virtual host's whole.
 */
import { decodeAny } from '../../../shared/src/xds/protos';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { at, bool, bytes, checkFields, fieldSpec, has, message, optMessage } from '../../../shared/src/xds/fields';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';

/** One filter's per-route reader (a registered http filter). */
export interface PerRouteFilter {
  /** Its canonical name: the typed_per_filter_config key. */
  readonly name: string;
  /** The type its per-route config must be packed as. */
  readonly typeUrl: string;
  /** Its index in RouteEntry.perFilter. */
  readonly slot: number;
  /**
   * Validates one level's settings: the value the filter reads per request, or null (never
   * applies). Problems are added to `issues` with their paths (the result is then unused).
   */
  parsePerRoute(config: XdsMessage, path: string, ctx: PerRouteContext, issues: Issues): unknown;
}

/** The http filters that take per-route settings. */
export interface PerRouteFilterConfigs {
  /** The filter named `name`, or undefined when the sidecar has none. */
  perRoute(name: string): PerRouteFilter | undefined;
  /** The length of RouteEntry.perFilter. */
  readonly slots: number;
  /** Every name, for error messages. */
  readonly names: readonly string[];
}

/**
 * The http filters as the xDS decoders see them (filters/registry.ts HTTP_FILTERS): per-route
 * settings by name, and a Listener's http_filters entry by its typed_config type.
 */
export interface HttpFilterTypes extends PerRouteFilterConfigs {
  /** The filter whose typed_config has this type, or undefined (unsupported). */
  byTypeUrl(typeUrl: string): ListenerHttpFilter | undefined;
}

/** A filter as a Listener lists it. */
export interface ListenerHttpFilter {
  readonly name: string;
  /** Validates the listener's typed_config, adding problems to `issues`; the result is what the filter is made with. */
  parseListenerConfig(config: XdsMessage, path: string, issues: Issues): unknown;
}

/** What a filter's per-route parser may use while a table is built. */
export interface PerRouteContext {
  /** Who declares the settings (a virtual host, or one of its routes), stable across updates. */
  readonly owner: string;
  /** When the table is built (the clock's ms): when new state starts (a full token bucket). */
  readonly nowMs: number;
  /**
   * The object the table being replaced kept under `key` (for this owner), else `make()`: state
   * that must survive a config push unchanged (a rate limit's token bucket).
   */
  carry<T>(key: string, make: () => T): T;
}

/** No http filters (the inbound table). */
export const NO_PER_ROUTE_FILTERS: HttpFilterTypes = Object.freeze({ perRoute: () => undefined, byTypeUrl: () => undefined, slots: 0, names: Object.freeze([]) });

/** One level's settings by slot (undefined: inherit, null: off), and the filters it turns on (for the listener check). */
export interface PerFilterConfig {
  readonly values: readonly unknown[] | undefined;
  readonly used: readonly PerRouteFilter[];
}

const NOTHING: PerFilterConfig = Object.freeze({ values: undefined, used: Object.freeze([]) });
const FILTER_CONFIG = fieldSpec(['config', 'is_optional', 'disabled']);

type PackedAny = { type_url: string; value: Uint8Array };

/**
 * Reads `typed_per_filter_config` of a VirtualHost or Route at `path`. An entry with a problem
 * adds an issue and is left out; the other entries are still read.
 */
export function parsePerFilterConfig(o: XdsMessage, path: string, filters: PerRouteFilterConfigs, ctx: PerRouteContext, issues: Issues): PerFilterConfig {
  const map = optMessage(o, 'typed_per_filter_config', path, issues);
  if (map === undefined) return NOTHING;
  const base = at(path, 'typed_per_filter_config');
  const values: unknown[] = new Array(filters.slots).fill(undefined);
  const used: PerRouteFilter[] = [];
  for (const [key, raw] of Object.entries(map)) {
    const p = `${base}[${JSON.stringify(key)}]`;
    const entry = parseEntry(raw, p, issues);
    if (entry === undefined) continue;
    const f = filters.perRoute(key);
    if (f === undefined) {
      if (!entry.optional && !entry.disabled) issues.add(p, `unsupported http filter (the skein sidecar runs ${filters.names.join(', ')}); wrap it in a FilterConfig with is_optional: true to skip it`);
      continue;
    }
    if (entry.disabled) { values[f.slot] = null; continue; }
    const config = unpackAs(entry.any!, f.typeUrl, entry.anyPath, issues);
    if (config === undefined) continue;
    const before = issues.count;
    const value = f.parsePerRoute(config, entry.anyPath, ctx, issues);
    if (issues.count !== before) continue;
    used.push(f);
    values[f.slot] = value;
  }
  return { values, used };
}

/** One entry: its settings (an Any, unwrapped from a FilterConfig), or undefined when it added an issue. */
function parseEntry(raw: unknown, p: string, issues: Issues): { any?: PackedAny; anyPath: string; optional: boolean; disabled: boolean } | undefined {
  const any = packed(raw, p, issues);
  if (any === undefined) return undefined;
  if (any.type_url !== TYPE_URLS.FILTER_CONFIG) return { any, anyPath: p, optional: false, disabled: false };
  const fc = unpackAny(any, p, issues);
  if (fc === undefined) return undefined;
  const before = issues.count;
  checkFields(fc, FILTER_CONFIG, p, issues);
  const optional = bool(fc, 'is_optional', p, issues);
  const disabled = bool(fc, 'disabled', p, issues);
  if (disabled) return issues.count === before ? { anyPath: p, optional, disabled } : undefined;
  const cp = at(p, 'config');
  if (!has(fc, 'config')) { issues.add(cp, 'is required unless disabled is true'); return undefined; }
  const inner = packed(fc['config'], cp, issues);
  return inner === undefined || issues.count !== before ? undefined : { any: inner, anyPath: cp, optional, disabled };
}

function packed(v: unknown, path: string, issues: Issues): PackedAny | undefined {
  const m = message(v, path, issues);
  if (m === undefined) return undefined;
  const before = issues.count;
  const typeUrl = m['type_url'];
  if (typeof typeUrl !== 'string' || typeUrl === '') issues.add(at(path, 'type_url'), 'is required');
  const value = bytes(m, 'value', path, issues);
  return issues.count === before ? { type_url: typeUrl as string, value: value ?? new Uint8Array(0) } : undefined;
}

function unpackAny(any: PackedAny, path: string, issues: Issues): XdsMessage | undefined {
  try {
    return decodeAny<XdsMessage>(any);
  } catch (e) {
    issues.add(path, `cannot decode ${any.type_url}: ${(e as Error).message}`);
    return undefined;
  }
}

function unpackAs(any: PackedAny, typeUrl: string, path: string, issues: Issues): XdsMessage | undefined {
  if (any.type_url === typeUrl) return unpackAny(any, path, issues);
  issues.add(path, `must be ${typeUrl.slice(typeUrl.lastIndexOf('.') + 1)}, got ${any.type_url}`);
  return undefined;
}

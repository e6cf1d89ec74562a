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
import { at, bool, checkFields, fail, fieldSpec, message, optMessage } from './xds-fields';
import type { XdsMessage } from './xds-fields';

/** One filter's per-route reader (a registered http filter). */
export interface PerRouteFilter {
  /** Its canonical name: the typed_per_filter_config key. */
  readonly name: string;
  /** The type its per-route config must be packed as. */
  readonly typeUrl: string;
  /** Its index in RouteEntry.perFilter. */
  readonly slot: number;
  /** Validates one level's settings: the value the filter reads per request, or null (never applies). Throws `fail()`. */
  parsePerRoute(config: XdsMessage, path: string, ctx: PerRouteContext): unknown;
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
  /** Validates the listener's typed_config (throws `fail()`); the result is what the filter is made with. */
  parseListenerConfig(config: XdsMessage, path: string): unknown;
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

/** Reads `typed_per_filter_config` of a VirtualHost or Route at `path`. */
export function parsePerFilterConfig(o: XdsMessage, path: string, filters: PerRouteFilterConfigs, ctx: PerRouteContext): PerFilterConfig {
  const map = optMessage(o, 'typed_per_filter_config', path);
  if (map === undefined) return NOTHING;
  const base = at(path, 'typed_per_filter_config');
  const values: unknown[] = new Array(filters.slots).fill(undefined);
  const used: PerRouteFilter[] = [];
  for (const [key, raw] of Object.entries(map)) {
    const p = `${base}[${JSON.stringify(key)}]`;
    let any = packed(raw, p);
    let anyPath = p;
    let optional = false;
    let disabled = false;
    if (any.type_url === TYPE_URLS.FILTER_CONFIG) {
      const fc = unpackAny(any, p);
      checkFields(fc, FILTER_CONFIG, p);
      optional = bool(fc, 'is_optional', p);
      disabled = bool(fc, 'disabled', p);
      if (!disabled) {
        if (optMessage(fc, 'config', p) === undefined) fail(at(p, 'config'), 'is required unless disabled is true');
        any = packed(fc['config'], at(p, 'config'));
        anyPath = at(p, 'config');
      }
    }
    const f = filters.perRoute(key);
    if (f === undefined) {
      if (!optional && !disabled) fail(p, `unsupported http filter (the skein sidecar runs ${filters.names.join(' and ')}); wrap it in a FilterConfig with is_optional: true to skip it`);
      continue;
    }
    if (disabled) { values[f.slot] = null; continue; }
    used.push(f);
    values[f.slot] = f.parsePerRoute(unpackAs(any, f.typeUrl, anyPath), anyPath, ctx);
  }
  return { values, used };
}

function packed(v: unknown, path: string): { type_url: string; value: Uint8Array } {
  const m = message(v, path);
  const typeUrl = m['type_url'];
  const value = m['value'];
  if (typeof typeUrl !== 'string' || typeUrl === '') fail(at(path, 'type_url'), 'is required');
  if (value !== undefined && !(value instanceof Uint8Array)) fail(at(path, 'value'), 'must be bytes');
  return { type_url: typeUrl, value: value ?? new Uint8Array(0) };
}

function unpackAny(any: { type_url: string; value: Uint8Array }, path: string): XdsMessage {
  try {
    return decodeAny<XdsMessage>(any);
  } catch (e) {
    return fail(path, `cannot decode ${any.type_url}: ${(e as Error).message}`);
  }
}

function unpackAs(any: { type_url: string; value: Uint8Array }, typeUrl: string, path: string): XdsMessage {
  if (any.type_url !== typeUrl) fail(path, `must be ${typeUrl.slice(typeUrl.lastIndexOf('.') + 1)}, got ${any.type_url}`);
  return unpackAny(any, path);
}

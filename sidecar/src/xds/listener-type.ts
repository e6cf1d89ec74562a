/**
 * Listener -> ListenerConfig. Accepted shapes:
 *  - a socket listener with exactly one filter chain whose only network filter is an
 *    HttpConnectionManager (the sidecar's `skein.outbound`);
 *  - an api_listener holding an HttpConnectionManager (what proxyless clients read);
 *  - an inbound listener (`skein.inbound.<service>`): filter chains matched by transport
 *    protocol, tls and/or raw_buffer: the inbound port's mTLS mode, and its http filters (the
 *    RBAC of the service's AuthorizationPolicies) (inbound-listener.ts).
 * The HCM must take its routes over RDS from ADS (inline route_config is not supported yet), and
 * its last http filter must be the router. Defaults: stat_prefix empty -> the listener name;
 * codec_type AUTO. Rejected (outside inbound listeners): TLS, several filter chains or network filters,
 * pipe addresses, unknown http filters that are not is_optional, and every other field this decoder
 * does not implement (checkFields), except those with no effect on traffic (stats names, metadata,
 * socket tuning), which are ignored.
 *
 * Http filters before the router: those of the registry (filters/registry.ts: fault, local rate
 * limit, rbac), each validated by its parseListenerConfig (fault and local rate limit are inert at
 * this level: routes switch them on through typed_per_filter_config; RBAC is configured here). The sidecar runs the listed filters, in order
 * (pipeline.ts); a route that turns on a filter its listener does not list is NACKed
 * (xds/http-filter-check.ts). A filter counts as listed by its type, whatever its name, and also
 * when it is `disabled` (the routes that configure it turn it on).
 */
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import type { HttpFilterTypes, ListenerHttpFilter } from '../route/filter-config';
import { checkFields, fieldSpec } from '../../../shared/src/xds/fields';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';
import { LISTENER_KIND } from '../../../shared/src/xds/resource-kind';
import { configSourceKind, decodeWith, shortType, unpack } from './resource-decoder';
import { decodeInboundChains, isInboundListener } from './inbound-listener';
import type { InboundListenerConfig, WireHttpFilter, WireInboundChain } from './inbound-listener';
import type { PackedResource, ResourceDecoder } from './resource-decoder';
import { decodeHcmTracing } from './hcm-tracing';
import type { ListenerTracing } from './hcm-tracing';

export interface HttpFilterConfig {
  name: string;
  typeUrl: string;
  /** Disabled by default; a route may enable it (typed_per_filter_config). */
  disabled: boolean;
  /** The decoded typed_config (plain object, per shared/src/xds/protos.ts conventions). */
  config: Record<string, unknown>;
}

export interface ListenerConfig {
  name: string;
  /** Where to bind; absent for an api_listener. */
  address?: { host: string; port: number };
  routeConfigName: string;
  statPrefix: string;
  direction?: 'INBOUND' | 'OUTBOUND';
  codecType: 'AUTO' | 'HTTP1' | 'HTTP2';
  /** The http filters before the router, in order (the router itself is implied, last). */
  httpFilters: HttpFilterConfig[];
  /** An inbound listener (skein.inbound.<service>): what the inbound port accepts (inbound-listener.ts). */
  inbound?: InboundListenerConfig;
  /** HttpConnectionManager.tracing (xds/hcm-tracing.ts); absent: the listener makes no spans. */
  tracing?: ListenerTracing;
}

interface WireHcm {
  codec_type?: string;
  stat_prefix?: string;
  rds?: { config_source?: { ads?: object; self?: object }; route_config_name?: string };
  route_config?: object;
  http_filters?: WireHttpFilter[];
}
interface WireListener {
  name?: string;
  address?: { socket_address?: { address?: string; port_value?: number; named_port?: string }; pipe?: object };
  traffic_direction?: string;
  filter_chains?: WireInboundChain[];
  api_listener?: { api_listener?: PackedResource };
}

const LISTENER = fieldSpec(
  ['name', 'address', 'filter_chains', 'traffic_direction', 'api_listener'],
  ['stat_prefix', 'metadata', 'per_connection_buffer_limit_bytes', 'drain_type', 'enable_reuse_port', 'tcp_backlog_size', 'tcp_fast_open_queue_length',
    'max_connections_to_accept_per_socket_event', 'ignore_global_conn_limit', 'bypass_overload_manager', 'listener_filters_timeout',
    'continue_on_listener_filters_timeout', 'freebind'],
  ['listener_specifier'],
  { traffic_direction: 'UNSPECIFIED', drain_type: 'DEFAULT' },
);
const FILTER_CHAIN = fieldSpec(['filters', 'transport_socket'], ['name', 'metadata', 'transport_socket_connect_timeout']);
const FILTER = fieldSpec(['name', 'typed_config'], [], ['config_type']);
const HCM = fieldSpec(
  ['codec_type', 'stat_prefix', 'rds', 'route_config', 'http_filters', 'tracing'],
  ['server_name', 'server_header_transformation', 'access_log_options', 'generate_request_id', 'preserve_external_request_id',
    'always_set_request_id_in_response', 'request_id_extension'],
  ['route_specifier', 'strip_port_mode'],
  { codec_type: 'AUTO', forward_client_cert_details: 'SANITIZE', path_with_escaped_slashes_action: 'IMPLEMENTATION_SPECIFIC_DEFAULT' },
);
const RDS = fieldSpec(['config_source', 'route_config_name']);
const HTTP_FILTER = fieldSpec(['name', 'typed_config', 'is_optional', 'disabled'], [], ['config_type']);

function decodeListener(l: WireListener, issues: Issues, filters: HttpFilterTypes): ListenerConfig {
  checkFields(l as XdsMessage, LISTENER, '', issues);
  const chains = l.filter_chains ?? [];
  if (isInboundListener(chains)) {
    const out: ListenerConfig = { name: l.name!, routeConfigName: '', statPrefix: l.name!, codecType: 'AUTO', httpFilters: [], direction: 'INBOUND' };
    const address = decodeAddress(l, true, issues);
    if (address !== undefined) out.address = address;
    const inbound = decodeInboundChains(chains, issues, (f, at, i) => decodeHttpFilters(f, at, i, filters));
    if (inbound !== undefined) out.inbound = inbound;
    return out;
  }
  chains.forEach((c, i) => {
    checkFields(c as XdsMessage, FILTER_CHAIN, `filter_chains[${i}]`, issues);
    (c.filters ?? []).forEach((f, j) => checkFields(f as XdsMessage, FILTER, `filter_chains[${i}].filters[${j}]`, issues));
  });
  let hcmAny: PackedResource | undefined;
  let hcmPath: string;
  if (chains.length > 0) {
    if (l.api_listener !== undefined) issues.add('api_listener', 'must not be set together with filter_chains');
    if (chains.length > 1) issues.add('filter_chains', `exactly one filter chain is supported, got ${chains.length}`);
    const chain = chains[0]!;
    if (chain.transport_socket !== undefined) issues.add('filter_chains[0].transport_socket', 'TLS listeners are not supported yet');
    const filters = chain.filters ?? [];
    if (filters.length !== 1) issues.add('filter_chains[0].filters', `must hold exactly one filter (an HttpConnectionManager), got ${filters.length}`);
    hcmAny = filters[0]?.typed_config;
    hcmPath = 'filter_chains[0].filters[0].typed_config';
  } else if (l.api_listener !== undefined) {
    hcmAny = l.api_listener.api_listener;
    hcmPath = 'api_listener.api_listener';
  } else {
    issues.add('filter_chains', 'must hold an HttpConnectionManager (or set api_listener)');
    return { name: l.name!, routeConfigName: '', statPrefix: l.name!, codecType: 'AUTO', httpFilters: [] };
  }
  const address = decodeAddress(l, chains.length > 0, issues);
  const hcm = unpack<WireHcm>(hcmAny, TYPE_URLS.HCM, hcmPath, issues);
  const out: ListenerConfig = { name: l.name!, routeConfigName: '', statPrefix: l.name!, codecType: 'AUTO', httpFilters: [] };
  if (address !== undefined) out.address = address;
  if (l.traffic_direction === 'INBOUND' || l.traffic_direction === 'OUTBOUND') out.direction = l.traffic_direction;
  if (hcm === undefined) return out;
  checkFields(hcm as XdsMessage, HCM, hcmPath, issues);
  if (hcm.rds !== undefined) checkFields(hcm.rds as XdsMessage, RDS, `${hcmPath}.rds`, issues);
  if (hcm.stat_prefix) out.statPrefix = hcm.stat_prefix;
  const codec = hcm.codec_type ?? 'AUTO';
  if (codec === 'AUTO' || codec === 'HTTP1' || codec === 'HTTP2') out.codecType = codec;
  else issues.add(`${hcmPath}.codec_type`, `${codec} is not supported (AUTO, HTTP1 or HTTP2)`);
  out.routeConfigName = decodeRds(hcm, hcmPath, issues);
  out.httpFilters = decodeHttpFilters(hcm.http_filters ?? [], `${hcmPath}.http_filters`, issues, filters);
  const tracing = decodeHcmTracing(hcm as XdsMessage, hcmPath, issues);
  if (tracing !== undefined) out.tracing = tracing;
  return out;
}

function decodeAddress(l: WireListener, required: boolean, issues: Issues): ListenerConfig['address'] {
  const a = l.address;
  if (a === undefined) {
    if (required) issues.add('address', 'is required for a listener with filter_chains');
    return undefined;
  }
  if (a.pipe !== undefined) { issues.add('address.pipe', 'pipe addresses are not supported'); return undefined; }
  const sa = a.socket_address;
  if (sa === undefined) { issues.add('address.socket_address', 'is required'); return undefined; }
  if (sa.named_port !== undefined) { issues.add('address.socket_address.named_port', 'named ports are not supported; use port_value'); return undefined; }
  const port = sa.port_value ?? 0;
  if (!sa.address) { issues.add('address.socket_address.address', 'is required'); return undefined; }
  if (port > 65535) { issues.add('address.socket_address.port_value', `must be in [0, 65535], got ${port}`); return undefined; }
  return { host: sa.address, port };
}

function decodeRds(hcm: WireHcm, at: string, issues: Issues): string {
  if (hcm.route_config !== undefined) { issues.add(`${at}.route_config`, 'inline route_config is not supported yet; use rds'); return ''; }
  if (hcm.rds === undefined) { issues.add(`${at}.rds`, 'is required'); return ''; }
  const kind = configSourceKind(hcm.rds.config_source);
  if (kind === 'missing') issues.add(`${at}.rds.config_source`, 'is required');
  else if (kind !== 'ads') issues.add(`${at}.rds.config_source`, 'must be ads');
  const name = hcm.rds.route_config_name ?? '';
  if (name === '') issues.add(`${at}.rds.route_config_name`, 'is required');
  return name;
}

function decodeHttpFilters(filters: readonly WireHttpFilter[], at: string, issues: Issues, known: HttpFilterTypes): HttpFilterConfig[] {
  const last = filters.length - 1;
  if (last < 0 || filters[last]!.typed_config?.type_url !== TYPE_URLS.ROUTER) {
    const got = last < 0 ? 'none' : (filters[last]!.typed_config?.type_url ?? filters[last]!.name ?? '?');
    issues.add(at, `the last http filter must be the router (${shortType(TYPE_URLS.ROUTER)}), got ${got}`);
  }
  const out: HttpFilterConfig[] = [];
  filters.forEach((f, i) => {
    const p = `${at}[${i}]`;
    checkFields(f as XdsMessage, HTTP_FILTER, p, issues);
    const typeUrl = f.typed_config?.type_url;
    if (typeUrl === undefined) { issues.add(`${p}.typed_config`, 'is required'); return; }
    if (typeUrl === TYPE_URLS.ROUTER) {
      if (i !== last) issues.add(p, 'the router must be the last http filter');
      return;
    }
    const filter = known.byTypeUrl(typeUrl);
    if (filter === undefined) {
      if (!f.is_optional) issues.add(`${p}.typed_config`, `unsupported http filter ${typeUrl} (mark it is_optional to skip it)`);
      return;
    }
    const config = unpack<Record<string, unknown>>(f.typed_config, typeUrl, `${p}.typed_config`, issues);
    if (config === undefined || !listenerLevelOk(filter, config, `${p}.typed_config`, issues)) return;
    out.push({ name: f.name ?? '', typeUrl, disabled: f.disabled ?? false, config });
  });
  return out;
}

/** A known filter's listener-level config: valid, and inert (see the header). */
function listenerLevelOk(filter: ListenerHttpFilter, config: Record<string, unknown>, at: string, issues: Issues): boolean {
  const before = issues.count;
  filter.parseListenerConfig(config, at, issues);
  return issues.count === before;
}

/** The Listener type for a sidecar running `filters` (pipeline.ts: the registry's). */
export function listenerTypeFor(filters: HttpFilterTypes): ResourceDecoder<ListenerConfig> {
  return {
    kind: LISTENER_KIND,
    decode(any: PackedResource) {
      return decodeWith<WireListener, ListenerConfig>(LISTENER_KIND, any, (m, _name, issues) => decodeListener(m, issues, filters));
    },
  };
}

/**
 * The inbound Listener the control plane sends for the sidecar's own service
 * (`skein.inbound.<service>`): which connections the inbound port accepts. Its filter chains are
 * told apart by `filter_chain_match.transport_protocol`:
 *  - `tls`: mesh mTLS (a DownstreamTlsContext requiring a client certificate, tls-context.ts);
 *  - `raw_buffer`: plaintext.
 * Both chains: PERMISSIVE (the first byte decides); `tls` only: STRICT; `raw_buffer` only: DISABLE.
 * Each chain holds one HttpConnectionManager. The sidecar routes every inbound request to its
 * local app (`--app`): the HCM must say exactly that (checkInboundHcm) — every route to cluster
 * skein.inbound, XFCC SANITIZE_SET with uri, codec AUTO — or the Listener is NACKed;
 * x-forwarded-client-cert is always set from the verified peer (Envoy's SANITIZE_SET). Its
 * http_filters are decoded as the outbound listener's are (listener-type.ts: the registry's
 * filters, the router last): the RBAC filters of the service's AuthorizationPolicies
 * (filters/rbac.ts). The sidecar serves both chains with one connection manager, so every chain
 * must list the same filters.
 */
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { checkFields, fieldSpec } from '../../../shared/src/xds/fields';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';
import type { InboundMode } from '../listener/sniffing-server';
import { decodeDownstreamTls } from './tls-context';
import { unpack } from './resource-decoder';
import type { PackedResource } from './resource-decoder';
import type { HttpFilterConfig } from './listener-type';
import { decodeHcmTracing, sameTracing } from './hcm-tracing';
import type { ListenerTracing } from './hcm-tracing';

export interface InboundListenerConfig {
  mode: InboundMode;
  /** The lowest TLS version the mTLS chain accepts. */
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** The http filters before the router (the same in every chain), in order. */
  httpFilters: HttpFilterConfig[];
  /** HttpConnectionManager.tracing (the same in every chain); absent: no spans. */
  tracing?: ListenerTracing;
}

/** Decodes an HCM's http_filters at `path` (listener-type.ts's decoder, with the sidecar's filters). */
export type HttpFiltersDecoder = (filters: readonly WireHttpFilter[], path: string, issues: Issues) => HttpFilterConfig[];
export interface WireHttpFilter { name?: string; typed_config?: PackedResource; is_optional?: boolean; disabled?: boolean }

export interface WireInboundChain {
  name?: string;
  filter_chain_match?: { transport_protocol?: string } & Record<string, unknown>;
  transport_socket?: { name?: string; typed_config?: PackedResource };
  filters?: { name?: string; typed_config?: PackedResource }[];
}

const CHAIN = fieldSpec(['filter_chain_match', 'transport_socket', 'filters'], ['name', 'metadata', 'transport_socket_connect_timeout']);
const CHAIN_MATCH = fieldSpec(['transport_protocol']);
const HCM = fieldSpec(['route_config', 'http_filters', 'forward_client_cert_details', 'set_current_client_cert_details', 'codec_type', 'tracing'],
  ['stat_prefix', 'server_name', 'generate_request_id'], ['route_specifier'], { codec_type: 'AUTO', forward_client_cert_details: 'SANITIZE' });

/** The cluster the sidecar sends every inbound request to: its local app. */
const INBOUND_CLUSTER = 'skein.inbound';
/** The ALPN the inbound port offers over mTLS (listener/sniffing-server.ts). */
const INBOUND_ALPN = ['h2', 'http/1.1'];

interface WireInboundHcm {
  codec_type?: string;
  forward_client_cert_details?: string;
  set_current_client_cert_details?: Record<string, unknown>;
  route_config?: { virtual_hosts?: { routes?: { route?: { cluster?: string } }[] }[] };
}

/**
 * What the inbound HCM may say: exactly what the sidecar does, so no setting is taken and then
 * ignored. It serves h2 and HTTP/1.1 (codec AUTO); it sets x-forwarded-client-cert from the
 * verified peer with its URI (and By and Hash), dropping any incoming one (SANITIZE_SET, uri);
 * and it sends every request to its app (cluster skein.inbound).
 */
function checkInboundHcm(h: WireInboundHcm, at: string, issues: Issues): void {
  if ((h.codec_type ?? 'AUTO') !== 'AUTO') issues.add(`${at}.codec_type`, `must be AUTO: the inbound port serves h2 and HTTP/1.1, got ${h.codec_type}`);
  if (h.forward_client_cert_details !== 'SANITIZE_SET') issues.add(`${at}.forward_client_cert_details`, `must be SANITIZE_SET: the skein sidecar sets x-forwarded-client-cert from the verified peer and drops any incoming one, got ${h.forward_client_cert_details ?? 'SANITIZE (unset)'}`);
  const set = h.set_current_client_cert_details ?? {};
  const on = Object.entries(set).filter(([, v]) => v === true || (typeof v === 'object' && v !== null && (v as { value?: unknown }).value === true)).map(([k]) => k);
  if (on.length !== 1 || on[0] !== 'uri') issues.add(`${at}.set_current_client_cert_details`, `must set exactly uri (the sidecar's XFCC carries By, Hash and URI), got {${on.join(', ')}}`);
  const routes = (h.route_config?.virtual_hosts ?? []).flatMap((v) => v.routes ?? []);
  if (routes.length === 0 || routes.some((r) => r.route?.cluster !== INBOUND_CLUSTER)) {
    issues.add(`${at}.route_config`, `every route must go to cluster ${INBOUND_CLUSTER}: the skein sidecar sends every inbound request to its app (--app)`);
  }
}

/** Whether a listener is an inbound one (filter chains selected by transport protocol). */
export function isInboundListener(chains: readonly WireInboundChain[]): boolean {
  return chains.some((c) => c.filter_chain_match !== undefined || c.transport_socket !== undefined);
}

export function decodeInboundChains(chains: readonly WireInboundChain[], issues: Issues, decodeHttpFilters: HttpFiltersDecoder): InboundListenerConfig | undefined {
  let tls: InboundListenerConfig['minVersion'] | undefined;
  let plaintext = false;
  let httpFilters: HttpFilterConfig[] | undefined;
  let firstFilters: readonly WireHttpFilter[] = [];
  let tracing: ListenerTracing | undefined;
  let tracingSeen = false;
  if (chains.length > 2) issues.add('filter_chains', `at most two chains (tls and raw_buffer), got ${chains.length}`);
  chains.forEach((c, i) => {
    const at = `filter_chains[${i}]`;
    checkFields(c as XdsMessage, CHAIN, at, issues);
    if (c.filter_chain_match !== undefined) checkFields(c.filter_chain_match as XdsMessage, CHAIN_MATCH, `${at}.filter_chain_match`, issues);
    const proto = c.filter_chain_match?.transport_protocol ?? '';
    if (proto === 'tls') {
      if (tls !== undefined) issues.add(`${at}.filter_chain_match.transport_protocol`, 'a second tls chain');
      const ctx = decodeDownstreamTls(c.transport_socket, `${at}.transport_socket`, issues);
      tls = ctx?.minVersion ?? 'TLSv1.2';
      if (ctx !== undefined && (ctx.alpn.length !== INBOUND_ALPN.length || !INBOUND_ALPN.every((p) => ctx.alpn.includes(p)))) {
        issues.add(`${at}.transport_socket.typed_config.common_tls_context.alpn_protocols`, `must be ${JSON.stringify(INBOUND_ALPN)}: the inbound port offers both over mTLS, got ${JSON.stringify(ctx.alpn)}`);
      }
    } else if (proto === 'raw_buffer') {
      if (plaintext) issues.add(`${at}.filter_chain_match.transport_protocol`, 'a second raw_buffer chain');
      if (c.transport_socket !== undefined) issues.add(`${at}.transport_socket`, 'must be unset on the raw_buffer (plaintext) chain');
      plaintext = true;
    } else {
      issues.add(`${at}.filter_chain_match.transport_protocol`, `must be tls or raw_buffer, got ${JSON.stringify(proto)}`);
    }
    const filters = c.filters ?? [];
    if (filters.length !== 1) { issues.add(`${at}.filters`, `must hold exactly one HttpConnectionManager, got ${filters.length}`); return; }
    const hcmPath = `${at}.filters[0].typed_config`;
    const hcm = unpack<Record<string, unknown>>(filters[0]!.typed_config, TYPE_URLS.HCM, hcmPath, issues);
    if (hcm === undefined) return;
    checkFields(hcm as XdsMessage, HCM, hcmPath, issues);
    checkInboundHcm(hcm as WireInboundHcm, hcmPath, issues);
    const t = decodeHcmTracing(hcm as XdsMessage, hcmPath, issues);
    if (!tracingSeen) { tracing = t; tracingSeen = true; } else if (!sameTracing(t, tracing)) issues.add(`${hcmPath}.tracing`, 'must be the same in every filter chain');
    const wire = Array.isArray(hcm['http_filters']) ? hcm['http_filters'] as WireHttpFilter[] : [];
    if (httpFilters === undefined) {
      httpFilters = decodeHttpFilters(wire, `${hcmPath}.http_filters`, issues);
      firstFilters = wire;
    } else if (!sameFilters(wire, firstFilters)) {
      issues.add(`${hcmPath}.http_filters`, 'must be the same in every filter chain (the skein sidecar serves all of them with one filter chain)');
    }
  });
  if (tls === undefined && !plaintext) return undefined;
  return { mode: tls !== undefined ? (plaintext ? 'PERMISSIVE' : 'STRICT') : 'DISABLE', minVersion: tls ?? 'TLSv1.2', httpFilters: httpFilters ?? [], ...(tracing === undefined ? {} : { tracing }) };
}

/** Same filters: names, flags and typed_config bytes. */
function sameFilters(a: readonly WireHttpFilter[], b: readonly WireHttpFilter[]): boolean {
  return a.length === b.length && a.every((f, i) => {
    const g = b[i]!;
    const x = f.typed_config;
    const y = g.typed_config;
    return f.name === g.name && Boolean(f.is_optional) === Boolean(g.is_optional) && Boolean(f.disabled) === Boolean(g.disabled) &&
      x?.type_url === y?.type_url && (x === undefined || y === undefined || Buffer.from(x.value).equals(Buffer.from(y.value)));
  });
}

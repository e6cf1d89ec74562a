/**
 * The TLS contexts skein's sidecar implements, decoded from xDS: mesh mTLS with the workload's
 * own certificate and the mesh's roots, both named by SDS.
 *
 *  - The certificate: `tls_certificate_sds_secret_configs: [{name: 'default'}]`. The control
 *    plane never sends it (private keys never leave workloads): the sidecar supplies its own.
 *  - The roots: `validation_context_sds_secret_config: {name: 'ROOTCA'}` (on its own, or in a
 *    `combined_validation_context` whose default_validation_context holds the SAN matchers), an
 *    SDS Secret served on the ADS stream (xds/secret-type.ts).
 *  - `tls_params.tls_minimum_protocol_version`: TLSv1_2 or TLSv1_3 (default TLSv1_2, as Envoy);
 *    a maximum below it, cipher lists and curves are rejected, not ignored.
 *  - UpstreamTlsContext: `sni`, and `match_typed_subject_alt_names` of type URI: the SPIFFE IDs
 *    the server may have (none: any certificate from the mesh's roots).
 *  - DownstreamTlsContext: `require_client_certificate` must be true (mutual TLS).
 * Anything else (inline certificates, other secret names, certificate providers, session
 * tickets, OCSP) is rejected with its path.
 */
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { checkFields, fieldSpec } from '../../../shared/src/xds/fields';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';
import { parseStringMatcher } from '../route/string-matcher';
import type { UpstreamTlsConfig } from '../upstream/cluster-config';
import { configSourceKind, unpack } from './resource-decoder';
import type { PackedResource } from './resource-decoder';

/** The SDS names skein uses (as Istio's): the workload's certificate, and the mesh's roots. */
export const SDS_WORKLOAD_CERT = 'default';
export const SDS_ROOT_CA = 'ROOTCA';

export const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';

interface WireSds { name?: string; sds_config?: Record<string, unknown> }
interface WireValidation { match_typed_subject_alt_names?: { san_type?: string; matcher?: unknown }[] }
interface WireCommon {
  tls_params?: { tls_minimum_protocol_version?: string; tls_maximum_protocol_version?: string };
  tls_certificate_sds_secret_configs?: WireSds[];
  validation_context_sds_secret_config?: WireSds;
  combined_validation_context?: { default_validation_context?: WireValidation; validation_context_sds_secret_config?: WireSds };
  alpn_protocols?: string[];
}
interface WireUpstream { common_tls_context?: WireCommon; sni?: string }
interface WireDownstream { common_tls_context?: WireCommon; require_client_certificate?: { value?: boolean } }

const COMMON = fieldSpec(['tls_params', 'tls_certificate_sds_secret_configs', 'validation_context_sds_secret_config', 'combined_validation_context', 'alpn_protocols'], [], ['validation_context_type']);
const TLS_PARAMS = fieldSpec(['tls_minimum_protocol_version', 'tls_maximum_protocol_version'], [], [], { tls_minimum_protocol_version: 'TLS_AUTO', tls_maximum_protocol_version: 'TLS_AUTO' });
const SDS = fieldSpec(['name', 'sds_config']);
const COMBINED = fieldSpec(['default_validation_context', 'validation_context_sds_secret_config']);
const VALIDATION = fieldSpec(['match_typed_subject_alt_names']);
const SAN_MATCHER = fieldSpec(['san_type', 'matcher'], [], [], { san_type: 'SAN_TYPE_UNSPECIFIED' });
const UPSTREAM = fieldSpec(['common_tls_context', 'sni'], ['max_session_keys']);
const DOWNSTREAM = fieldSpec(['common_tls_context', 'require_client_certificate'], ['disable_stateless_session_resumption', 'disable_stateful_session_resumption']);
const TRANSPORT_SOCKET = fieldSpec(['name', 'typed_config'], [], ['config_type']);

/** An SDS reference: its name was checked by the caller; it must come over ADS (where the sidecar takes ROOTCA, and supplies `default` itself). */
function checkSds(ref: WireSds, at: string, issues: Issues): void {
  checkFields(ref as XdsMessage, SDS, at, issues);
  const kind = configSourceKind(ref.sds_config);
  if (kind !== 'ads' && kind !== 'self') issues.add(`${at}.sds_config`, `must be ads (the skein sidecar takes its secrets on the ADS stream), got ${kind === 'missing' ? 'none' : 'another config source'}`);
}

export interface CommonTls {
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  alpn: string[];
  sanMatchers: { matches(s: string): boolean }[];
}

function decodeCommon(c: WireCommon | undefined, at: string, issues: Issues): CommonTls | undefined {
  if (c === undefined) { issues.add(at, 'is required'); return undefined; }
  const before = issues.count;
  checkFields(c as XdsMessage, COMMON, at, issues);
  const out: CommonTls = { minVersion: 'TLSv1.2', alpn: [...(c.alpn_protocols ?? [])], sanMatchers: [] };
  if (c.tls_params !== undefined) {
    checkFields(c.tls_params as XdsMessage, TLS_PARAMS, `${at}.tls_params`, issues);
    const min = c.tls_params.tls_minimum_protocol_version ?? 'TLS_AUTO';
    if (min === 'TLSv1_3') out.minVersion = 'TLSv1.3';
    else if (min !== 'TLSv1_2' && min !== 'TLS_AUTO') issues.add(`${at}.tls_params.tls_minimum_protocol_version`, `${min} is not supported (TLSv1_2 or TLSv1_3)`);
    const max = c.tls_params.tls_maximum_protocol_version ?? 'TLS_AUTO';
    if (max !== 'TLS_AUTO' && max !== 'TLSv1_3') issues.add(`${at}.tls_params.tls_maximum_protocol_version`, `${max} is not supported (leave it unset)`);
  }
  const certs = c.tls_certificate_sds_secret_configs ?? [];
  if (certs.length !== 1 || certs[0]!.name !== SDS_WORKLOAD_CERT) {
    issues.add(`${at}.tls_certificate_sds_secret_configs`, `must name exactly the SDS secret "${SDS_WORKLOAD_CERT}" (the workload's own certificate), got ${JSON.stringify(certs.map((x) => x.name ?? ''))}`);
  } else checkSds(certs[0]!, `${at}.tls_certificate_sds_secret_configs[0]`, issues);
  let roots: WireSds | undefined;
  let rootsAt = `${at}.validation_context_sds_secret_config`;
  if (c.combined_validation_context !== undefined) {
    const cv = c.combined_validation_context;
    checkFields(cv as XdsMessage, COMBINED, `${at}.combined_validation_context`, issues);
    roots = cv.validation_context_sds_secret_config;
    rootsAt = `${at}.combined_validation_context.validation_context_sds_secret_config`;
    const dv = cv.default_validation_context;
    if (dv !== undefined) {
      const dp = `${at}.combined_validation_context.default_validation_context`;
      checkFields(dv as XdsMessage, VALIDATION, dp, issues);
      (dv.match_typed_subject_alt_names ?? []).forEach((m, i) => {
        const mp = `${dp}.match_typed_subject_alt_names[${i}]`;
        checkFields(m as XdsMessage, SAN_MATCHER, mp, issues);
        if (m.san_type !== 'URI') { issues.add(`${mp}.san_type`, `only URI (a SPIFFE ID) is supported, got ${m.san_type ?? 'SAN_TYPE_UNSPECIFIED'}`); return; }
        const sm = parseStringMatcher(m.matcher, `${mp}.matcher`, issues);
        if (sm !== undefined) out.sanMatchers.push(sm);
      });
    }
  } else roots = c.validation_context_sds_secret_config;
  if (roots === undefined || roots.name !== SDS_ROOT_CA) issues.add(rootsAt, `must name the SDS secret "${SDS_ROOT_CA}" (the mesh's roots), got ${JSON.stringify(roots?.name ?? null)}`);
  else checkSds(roots, rootsAt, issues);
  return issues.count === before ? out : undefined;
}

/** A transport_socket that must be `envoy.transport_sockets.tls` with an UpstreamTlsContext. */
export function decodeUpstreamTls(ts: { name?: string; typed_config?: PackedResource } | undefined, at: string, issues: Issues): UpstreamTlsConfig | undefined {
  if (ts === undefined) { issues.add(at, 'is required'); return undefined; }
  checkFields(ts as XdsMessage, TRANSPORT_SOCKET, at, issues);
  const ctx = unpack<WireUpstream>(ts.typed_config, TYPE_URLS.UPSTREAM_TLS_CONTEXT, `${at}.typed_config`, issues);
  if (ctx === undefined) return undefined;
  checkFields(ctx as XdsMessage, UPSTREAM, `${at}.typed_config`, issues);
  const common = decodeCommon(ctx.common_tls_context, `${at}.typed_config.common_tls_context`, issues);
  if (common === undefined) return undefined;
  return { allowedIds: common.sanMatchers, alpn: common.alpn, sni: ctx.sni ?? '', minVersion: common.minVersion };
}

/** A filter chain's transport_socket: mutual TLS with a DownstreamTlsContext. */
export function decodeDownstreamTls(ts: { name?: string; typed_config?: PackedResource } | undefined, at: string, issues: Issues): CommonTls | undefined {
  if (ts === undefined) { issues.add(at, 'is required'); return undefined; }
  checkFields(ts as XdsMessage, TRANSPORT_SOCKET, at, issues);
  const ctx = unpack<WireDownstream>(ts.typed_config, TYPE_URLS.DOWNSTREAM_TLS_CONTEXT, `${at}.typed_config`, issues);
  if (ctx === undefined) return undefined;
  checkFields(ctx as XdsMessage, DOWNSTREAM, `${at}.typed_config`, issues);
  if (ctx.require_client_certificate?.value !== true) issues.add(`${at}.typed_config.require_client_certificate`, 'must be true: the sidecar serves mutual TLS only');
  return decodeCommon(ctx.common_tls_context, `${at}.typed_config.common_tls_context`, issues);
}

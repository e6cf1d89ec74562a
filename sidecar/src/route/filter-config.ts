/**
 * typed_per_filter_config of a VirtualHost or Route, for the two http filters the sidecar runs
 * before its router. Keys are the filters' canonical names:
 * - `envoy.filters.http.fault`: extensions.filters.http.fault.v3.HTTPFault -> FaultPolicy.
 *   delay.fixed_delay and abort.http_status (200 to 599) / grpc_status, each with a percentage
 *   (FractionalPercent; unset is 0%, as in Envoy). Header-controlled faults, max_active_faults,
 *   upstream_cluster, headers, downstream_nodes and response_rate_limit are rejected; the
 *   *_runtime keys are ignored (no runtime layer: the configured values apply, as in Envoy
 *   when the runtime lacks the key). An HTTPFault with neither delay nor abort means no fault.
 * - `envoy.filters.http.local_ratelimit`: extensions.filters.http.local_ratelimit.v3.LocalRateLimit
 *   -> a token bucket spec. stat_prefix is required and token_bucket too (as in Envoy, per route);
 *   fill_interval >= 50ms (Envoy's minimum); tokens_per_fill defaults to 1. filter_enabled and
 *   filter_enforced default to 0% (Envoy's default: off) and must be 0% or 100%; the limit applies
 *   only when both are 100%. status must be unset or 429. The sidecar answers a refused gRPC
 *   request with RESOURCE_EXHAUSTED whatever rate_limited_as_resource_exhausted says (Envoy
 *   answers UNAVAILABLE unless it is true; the control plane always sets it). Descriptors and the
 *   other options are rejected.
 * Either may be wrapped in an envoy.config.route.v3.FilterConfig: `disabled: true` turns the filter
 * off at this level; `is_optional: true` lets an entry for a filter the sidecar does not know be
 * skipped (otherwise an unknown key is rejected, as Envoy rejects an unknown config type).
 *
 * A level's result per filter: undefined when the level says nothing (inherit), null when it sets
 * the filter off, else the settings. The route's entry wins over the virtual host's whole.
 */
import { decodeAny, TYPE_URLS } from '../../../shared/src/xds/protos';
import { FaultPolicy, PER_MILLION } from '../resilience/fault';
import type { FaultPolicyInit } from '../resilience/fault';
import { at, bool, checkFields, durationMs, fail, fieldSpec, message, oneofCase, optMessage, str, u32, wrappedU32 } from './xds-fields';
import type { XdsMessage } from './xds-fields';

export const FAULT_FILTER = 'envoy.filters.http.fault';
export const LOCAL_RATELIMIT_FILTER = 'envoy.filters.http.local_ratelimit';
/** Envoy refuses faster fills ("local rate limit token bucket fill timer must be >= 50ms"). */
export const MIN_FILL_INTERVAL_MS = 50;

export interface TokenBucketSpec { readonly maxTokens: number; readonly tokensPerFill: number; readonly fillIntervalMs: number }

export interface PerFilterConfig {
  readonly fault: FaultPolicy | null | undefined;
  readonly rateLimit: TokenBucketSpec | null | undefined;
}

const NOTHING: PerFilterConfig = Object.freeze({ fault: undefined, rateLimit: undefined });

const FILTER_CONFIG = fieldSpec(['config', 'is_optional', 'disabled']);
const HTTP_FAULT = fieldSpec(['delay', 'abort'], [
  'delay_percent_runtime', 'abort_percent_runtime', 'delay_duration_runtime', 'abort_http_status_runtime',
  'abort_grpc_status_runtime', 'max_active_faults_runtime', 'response_rate_limit_percent_runtime',
  'disable_downstream_cluster_stats', 'filter_metadata',
]);
const FAULT_DELAY = fieldSpec(['fixed_delay', 'percentage'], [], ['fault_delay_secifier']);
const FAULT_ABORT = fieldSpec(['http_status', 'grpc_status', 'percentage'], [], ['error_type']);
const FRACTIONAL_PERCENT = fieldSpec(['numerator', 'denominator'], [], [], { denominator: 'HUNDRED' });
const RUNTIME_FRACTIONAL_PERCENT = fieldSpec(['default_value'], ['runtime_key']);
const LOCAL_RATE_LIMIT = fieldSpec(['stat_prefix', 'status', 'token_bucket', 'filter_enabled', 'filter_enforced'], ['always_consume_default_token_bucket', 'rate_limited_as_resource_exhausted']);
const HTTP_STATUS = fieldSpec(['code']);
const TOKEN_BUCKET = fieldSpec(['max_tokens', 'tokens_per_fill', 'fill_interval']);
const DENOMINATORS: Readonly<Record<string, number>> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: PER_MILLION };

/** Reads `typed_per_filter_config` of a VirtualHost or Route at `path`. */
export function parsePerFilterConfig(o: XdsMessage, path: string): PerFilterConfig {
  const map = optMessage(o, 'typed_per_filter_config', path);
  if (map === undefined) return NOTHING;
  const base = at(path, 'typed_per_filter_config');
  let fault: PerFilterConfig['fault'];
  let rateLimit: PerFilterConfig['rateLimit'];
  for (const [key, raw] of Object.entries(map)) {
    const p = `${base}[${JSON.stringify(key)}]`;
    let any = packed(raw, p);
    let anyPath = p;
    let optional = false;
    if (any.type_url === TYPE_URLS.FILTER_CONFIG) {
      const fc = unpackAny(any, p);
      checkFields(fc, FILTER_CONFIG, p);
      optional = bool(fc, 'is_optional', p);
      if (bool(fc, 'disabled', p)) {
        if (key === FAULT_FILTER) fault = null;
        else if (key === LOCAL_RATELIMIT_FILTER) rateLimit = null;
        continue;
      }
      if (optMessage(fc, 'config', p) === undefined) fail(at(p, 'config'), 'is required unless disabled is true');
      any = packed(fc['config'], at(p, 'config'));
      anyPath = at(p, 'config');
    }
    if (key === FAULT_FILTER) fault = parseHttpFault(unpackAs(any, TYPE_URLS.FAULT, anyPath), anyPath);
    else if (key === LOCAL_RATELIMIT_FILTER) rateLimit = parseLocalRateLimit(unpackAs(any, TYPE_URLS.LOCAL_RATELIMIT, anyPath), anyPath, true);
    else if (!optional) fail(p, `unsupported http filter (the skein sidecar runs ${FAULT_FILTER} and ${LOCAL_RATELIMIT_FILTER}); wrap it in a FilterConfig with is_optional: true to skip it`);
  }
  return fault === undefined && rateLimit === undefined ? NOTHING : { fault, rateLimit };
}

/** HTTPFault -> a policy, or null when it can never hit (no delay/abort, or 0%). */
export function parseHttpFault(f: XdsMessage, path: string): FaultPolicy | null {
  checkFields(f, HTTP_FAULT, path);
  const init: { delay?: FaultPolicyInit['delay']; abort?: FaultPolicyInit['abort'] } = {};
  const delay = optMessage(f, 'delay', path);
  if (delay !== undefined) {
    const p = at(path, 'delay');
    checkFields(delay, FAULT_DELAY, p);
    const which = oneofCase(delay, 'fault_delay_secifier', ['fixed_delay', 'header_delay'], p);
    if (which === undefined) fail(p, 'fault_delay_secifier is required: fixed_delay');
    if (which !== 'fixed_delay') fail(at(p, which), 'is not supported by the skein sidecar');
    const ms = durationMs(delay, 'fixed_delay', p) ?? 0;
    if (ms < 1) fail(at(p, 'fixed_delay'), 'must be at least 1ms');
    init.delay = { fixedDelayMs: ms, perMillion: fractionalPercent(delay, 'percentage', p) };
  }
  const abort = optMessage(f, 'abort', path);
  if (abort !== undefined) {
    const p = at(path, 'abort');
    checkFields(abort, FAULT_ABORT, p);
    const which = oneofCase(abort, 'error_type', ['http_status', 'grpc_status', 'header_abort'], p);
    const perMillion = fractionalPercent(abort, 'percentage', p);
    if (which === 'http_status') {
      const status = u32(abort['http_status'] ?? 0, at(p, which));
      if (status < 200 || status > 599) fail(at(p, which), `must be in [200, 599], got ${status}`);
      init.abort = { httpStatus: status, perMillion };
    } else if (which === 'grpc_status') {
      init.abort = { grpcStatus: u32(abort['grpc_status'] ?? 0, at(p, which)), perMillion };
    } else if (which === undefined) {
      fail(p, 'error_type is required: http_status or grpc_status');
    } else {
      fail(at(p, which), 'is not supported by the skein sidecar');
    }
  }
  const policy = new FaultPolicy(init);
  return policy.inert ? null : policy;
}

/**
 * LocalRateLimit -> a token bucket spec, or null when it never refuses (filter_enabled or
 * filter_enforced 0%). `perRoute` false (the listener's filter): a token bucket is rejected, as
 * the sidecar has no listener-wide bucket; the result is then null.
 */
export function parseLocalRateLimit(l: XdsMessage, path: string, perRoute: boolean): TokenBucketSpec | null {
  checkFields(l, LOCAL_RATE_LIMIT, path);
  if (str(l, 'stat_prefix', path) === '') fail(at(path, 'stat_prefix'), 'is required');
  const status = optMessage(l, 'status', path);
  if (status !== undefined) {
    checkFields(status, HTTP_STATUS, at(path, 'status'));
    const code = status['code'];
    if (code !== undefined && code !== 'Empty' && code !== 'TooManyRequests' && code !== 429) {
      fail(at(at(path, 'status'), 'code'), `only 429 (TooManyRequests) is supported by the skein sidecar, got ${String(code)}`);
    }
  }
  const enabled = enabledOrOff(l, 'filter_enabled', path);
  const enforced = enabledOrOff(l, 'filter_enforced', path);
  const bucket = optMessage(l, 'token_bucket', path);
  if (!perRoute) {
    if (bucket !== undefined) fail(at(path, 'token_bucket'), 'a listener-wide token bucket is not supported by the skein sidecar; set one per route (typed_per_filter_config)');
    return null;
  }
  if (bucket === undefined) fail(at(path, 'token_bucket'), 'is required in a per-route config');
  const p = at(path, 'token_bucket');
  checkFields(bucket, TOKEN_BUCKET, p);
  const maxTokens = u32(bucket['max_tokens'] ?? 0, at(p, 'max_tokens'));
  const tokensPerFill = wrappedU32(bucket, 'tokens_per_fill', p) ?? 1;
  if (tokensPerFill < 1) fail(at(p, 'tokens_per_fill'), 'must be > 0');
  const fillIntervalMs = durationMs(bucket, 'fill_interval', p);
  if (fillIntervalMs === undefined) fail(at(p, 'fill_interval'), 'is required');
  if (fillIntervalMs < MIN_FILL_INTERVAL_MS) fail(at(p, 'fill_interval'), `must be >= ${MIN_FILL_INTERVAL_MS}ms (Envoy's minimum), got ${fillIntervalMs}ms`);
  return enabled && enforced ? Object.freeze({ maxTokens, tokensPerFill, fillIntervalMs }) : null;
}

/** type.v3.FractionalPercent per million; unset is 0 (Envoy's default); above 100% is capped. */
function fractionalPercent(o: XdsMessage, key: string, path: string): number {
  const fp = optMessage(o, key, path);
  if (fp === undefined) return 0;
  const p = at(path, key);
  checkFields(fp, FRACTIONAL_PERCENT, p);
  const denominator = fp['denominator'] ?? 'HUNDRED';
  const base = typeof denominator === 'string' ? DENOMINATORS[denominator] : undefined;
  if (base === undefined) fail(at(p, 'denominator'), `must be HUNDRED, TEN_THOUSAND or MILLION, got ${String(denominator)}`);
  const n = u32(fp['numerator'] ?? 0, at(p, 'numerator'));
  return Math.min(PER_MILLION, n * (PER_MILLION / base));
}

/** A RuntimeFractionalPercent that must be 0% (false; also when unset) or 100% (true). */
function enabledOrOff(o: XdsMessage, key: string, path: string): boolean {
  const r = optMessage(o, key, path);
  if (r === undefined) return false;
  const p = at(path, key);
  checkFields(r, RUNTIME_FRACTIONAL_PERCENT, p);
  const share = fractionalPercent(r, 'default_value', p);
  if (share !== 0 && share !== PER_MILLION) fail(at(p, 'default_value'), 'only 0% and 100% are supported by the skein sidecar');
  return share === PER_MILLION;
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

/**
 * envoy.filters.http.fault: per route, a fixed delay and/or an abort, each for a share of
 * requests (the policy is resilience/fault.ts). Envoy's order: the delay first; when it ends, the
 * abort is drawn (and the filters after this one run only then, so the local rate limit is
 * checked after the delay too).
 *
 * Config (extensions.filters.http.fault.v3.HTTPFault):
 * - per route (typed_per_filter_config): delay.fixed_delay and abort.http_status (200 to 599) /
 *   grpc_status, each with a percentage (FractionalPercent; unset is 0%, as in Envoy).
 *   Header-controlled faults, max_active_faults, upstream_cluster, headers, downstream_nodes and
 *   response_rate_limit are rejected; the *_runtime keys are ignored (no runtime layer: the
 *   configured values apply, as in Envoy when the runtime lacks the key). An HTTPFault with
 *   neither delay nor abort means no fault.
 * - on the listener: validated the same way, and must be inert (no delay, no abort): routes turn
 *   it on.
 */
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { FaultPolicy, PER_MILLION } from '../resilience/fault';
import type { FaultPolicyInit } from '../resilience/fault';
import { at, checkFields, durationMs, fail, fieldSpec, oneofCase, optMessage, u32 } from '../route/xds-fields';
import type { XdsMessage } from '../route/xds-fields';
import type { FilterCallbacks, FilterStatus, HttpFilter } from '../http/http-filter';
import type { HttpFilterDefinition } from './registry';

export const FAULT_FILTER = 'envoy.filters.http.fault';

const HTTP_FAULT = fieldSpec(['delay', 'abort'], [
  'delay_percent_runtime', 'abort_percent_runtime', 'delay_duration_runtime', 'abort_http_status_runtime',
  'abort_grpc_status_runtime', 'max_active_faults_runtime', 'response_rate_limit_percent_runtime',
  'disable_downstream_cluster_stats', 'filter_metadata',
]);
const FAULT_DELAY = fieldSpec(['fixed_delay', 'percentage'], [], ['fault_delay_secifier']);
const FAULT_ABORT = fieldSpec(['http_status', 'grpc_status', 'percentage'], [], ['error_type']);
const FRACTIONAL_PERCENT = fieldSpec(['numerator', 'denominator'], [], [], { denominator: 'HUNDRED' });
const DENOMINATORS: Readonly<Record<string, number>> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: PER_MILLION };

/** The fault filter of one listener; `slot` is where routes keep their FaultPolicy. */
class FaultFilter implements HttpFilter {
  readonly name = FAULT_FILTER;
  constructor(private readonly slot: number) {}

  onRequestHeaders(cb: FilterCallbacks): FilterStatus {
    const policy = cb.route.perFilter[this.slot] as FaultPolicy | undefined;
    if (policy === undefined) return 'continue';
    const delayMs = policy.delayMs(cb.random());
    if (delayMs > 0) { cb.delay(delayMs); return 'stop'; }
    return abort(policy, cb, 'fault injected by the route');
  }

  onDelayEnd(cb: FilterCallbacks): FilterStatus {
    return abort(cb.route.perFilter[this.slot] as FaultPolicy, cb, 'fault injected by the route (after its delay)');
  }
}

function abort(policy: FaultPolicy, cb: FilterCallbacks, detail: string): FilterStatus {
  const reply = policy.abort(cb.random());
  if (reply === undefined) return 'continue';
  cb.sendLocalReply(reply, detail);
  return 'stop';
}

export const faultFilter: HttpFilterDefinition<null> = {
  name: FAULT_FILTER,
  typeUrl: TYPE_URLS.FAULT,
  inertListenerConfig: Object.freeze({}),
  parseListenerConfig(config: XdsMessage, path: string): null {
    parseHttpFault(config, path);
    for (const k of ['delay', 'abort']) {
      if (config[k] !== undefined && config[k] !== null) fail(at(path, k), 'a listener-wide fault is not supported by the skein sidecar; set it per route (typed_per_filter_config)');
    }
    return null;
  },
  parsePerRoute: (config, path) => parseHttpFault(config, path),
  create: (_config, slot) => new FaultFilter(slot),
};

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
  const abortMsg = optMessage(f, 'abort', path);
  if (abortMsg !== undefined) {
    const p = at(path, 'abort');
    checkFields(abortMsg, FAULT_ABORT, p);
    const which = oneofCase(abortMsg, 'error_type', ['http_status', 'grpc_status', 'header_abort'], p);
    const perMillion = fractionalPercent(abortMsg, 'percentage', p);
    if (which === 'http_status') {
      const status = u32(abortMsg['http_status'] ?? 0, at(p, which));
      if (status < 200 || status > 599) fail(at(p, which), `must be in [200, 599], got ${status}`);
      init.abort = { httpStatus: status, perMillion };
    } else if (which === 'grpc_status') {
      init.abort = { grpcStatus: u32(abortMsg['grpc_status'] ?? 0, at(p, which)), perMillion };
    } else if (which === undefined) {
      fail(p, 'error_type is required: http_status or grpc_status');
    } else {
      fail(at(p, which), 'is not supported by the skein sidecar');
    }
  }
  const policy = new FaultPolicy(init);
  return policy.inert ? null : policy;
}

/** type.v3.FractionalPercent per million; unset is 0 (Envoy's default); above 100% is capped. */
export function fractionalPercent(o: XdsMessage, key: string, path: string): number {
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

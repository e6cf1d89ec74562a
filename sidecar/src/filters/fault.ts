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
import { FaultPolicy } from '../resilience/fault';
import type { FaultPolicyInit } from '../resilience/fault';
import { at, checkFields, durationMs, fieldSpec, has, oneofCase, optMessage, u32 } from '../../../shared/src/xds/fields';
import { fractionalPercent } from '../../../shared/src/xds/percent';
export { fractionalPercent } from '../../../shared/src/xds/percent';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';
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
  parseListenerConfig(config: XdsMessage, path: string, issues: Issues): null | undefined {
    const before = issues.count;
    parseHttpFault(config, path, issues);
    for (const k of ['delay', 'abort']) {
      if (has(config, k)) issues.add(at(path, k), 'a listener-wide fault is not supported by the skein sidecar; set it per route (typed_per_filter_config)');
    }
    return issues.count === before ? null : undefined;
  },
  parsePerRoute: (config, path, _ctx, issues) => parseHttpFault(config, path, issues),
  create: (_config, slot) => new FaultFilter(slot),
};

/** HTTPFault -> a policy, or null when it can never hit (no delay/abort, or 0%); undefined when it added an issue. */
export function parseHttpFault(f: XdsMessage, path: string, issues: Issues): FaultPolicy | null | undefined {
  const before = issues.count;
  checkFields(f, HTTP_FAULT, path, issues);
  const init: { delay?: FaultPolicyInit['delay']; abort?: FaultPolicyInit['abort'] } = {};
  const delay = optMessage(f, 'delay', path, issues);
  if (delay !== undefined) {
    const p = at(path, 'delay');
    checkFields(delay, FAULT_DELAY, p, issues);
    const which = oneofCase(delay, 'fault_delay_secifier', ['fixed_delay', 'header_delay'], p, issues);
    const perMillion = fractionalPercent(delay, 'percentage', p, issues);
    if (which === undefined) issues.add(p, 'fault_delay_secifier is required: fixed_delay');
    else if (which !== 'fixed_delay') issues.add(at(p, which), 'is not supported by the skein sidecar');
    else {
      const read = issues.count;
      const ms = durationMs(delay, 'fixed_delay', p, issues) ?? 0;
      if (issues.count === read && ms < 1) issues.add(at(p, 'fixed_delay'), 'must be at least 1ms');
      else if (perMillion !== undefined) init.delay = { fixedDelayMs: ms, perMillion };
    }
  }
  const abortMsg = optMessage(f, 'abort', path, issues);
  if (abortMsg !== undefined) {
    const p = at(path, 'abort');
    checkFields(abortMsg, FAULT_ABORT, p, issues);
    const which = oneofCase(abortMsg, 'error_type', ['http_status', 'grpc_status', 'header_abort'], p, issues);
    const perMillion = fractionalPercent(abortMsg, 'percentage', p, issues) ?? 0;
    if (which === 'http_status') {
      const status = u32(abortMsg['http_status'] ?? 0, at(p, which), issues);
      if (status !== undefined && (status < 200 || status > 599)) issues.add(at(p, which), `must be in [200, 599], got ${status}`);
      else if (status !== undefined) init.abort = { httpStatus: status, perMillion };
    } else if (which === 'grpc_status') {
      const status = u32(abortMsg['grpc_status'] ?? 0, at(p, which), issues);
      if (status !== undefined) init.abort = { grpcStatus: status, perMillion };
    } else if (which === undefined) {
      issues.add(p, 'error_type is required: http_status or grpc_status');
    } else {
      issues.add(at(p, which), 'is not supported by the skein sidecar');
    }
  }
  if (issues.count !== before) return undefined;
  const policy = new FaultPolicy(init);
  return policy.inert ? null : policy;
}


/**
 * Cluster.health_checks (envoy.config.core.v3.HealthCheck, as decoded by protobufjs toObject:
 * snake_case keys, Durations `{seconds: '10', nanos: 0}`, UInt32Value `{value: n}`, Int64 as
 * decimal strings, enums as names) -> HealthCheckConfig.
 *
 * Exactly one HealthCheck per cluster is supported. Fields, as in Envoy's health_check.proto:
 *  - timeout (required, > 0): time to wait for one check's answer; expiry is a failure.
 *  - interval (required, > 0): time between the end of one check and the start of the next.
 *  - unhealthy_threshold (required, >= 1): consecutive failures that mark a host failed.
 *  - healthy_threshold (required, >= 1): consecutive successes that bring a failed host back.
 *  - reuse_connection: only true (Envoy's default) is supported: connections stay open
 *    between checks; false is rejected.
 *  - initial_jitter, interval_jitter: only 0 (the default: no jitter) is accepted.
 *  - exactly one of:
 *    - http_health_check: GET `path` (required, starts with '/', no spaces or control
 *      characters); `host` (default: the cluster name, filled in by the HealthChecker) is the
 *      Host / :authority header; expected_statuses (default [200, 201)): half-open Int64Ranges,
 *      each with 100 <= start < end <= 600; codec_client_type HTTP1 (default) or HTTP2 (h2c,
 *      prior knowledge); method GET (the default; METHOD_UNSPECIFIED means GET).
 *    - grpc_health_check: grpc.health.v1.Health/Check over h2c; service_name (default '':
 *      the server's overall health); authority (default: the cluster name).
 *    - tcp_health_check: connect only (a connection that is accepted passes, then is closed);
 *      `send` and `receive` payloads are rejected.
 * Everything else that is set is rejected with an issue naming its exact path, never ignored:
 * custom_health_check, alt_port, no_traffic_interval,
 * no_traffic_healthy_interval, unhealthy_interval, unhealthy_edge_interval,
 * healthy_edge_interval, interval_jitter_percent, event_logger, always_log_health_check_*,
 * tls_options, transport_socket_match_criteria; in http_health_check: send, receive,
 * response_buffer_size, request_headers_to_add/remove, retriable_statuses,
 * service_name_matcher, methods other than GET; in grpc_health_check: initial_metadata.
 * Unknown keys (fields this decoder does not know) are rejected the same way.
 */
import { durationToMs, wrapped } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';

export interface HttpHealthCheckConfig {
  kind: 'http';
  /** Request path (starts with '/'). */
  path: string;
  /** Host / :authority header. Undefined: the cluster name. */
  host: string | undefined;
  /** Half-open [start, end) status ranges; a status in any of them is a success. Default [[200, 201]]. */
  expectedStatuses: readonly (readonly [number, number])[];
  /** Default 'http1'. 'http2': h2c with prior knowledge. */
  codec: 'http1' | 'http2';
}

export interface GrpcHealthCheckConfig {
  kind: 'grpc';
  /** HealthCheckRequest.service. Default '' (the server as a whole). */
  serviceName: string;
  /** :authority of the check. Undefined: the cluster name. */
  authority: string | undefined;
}

/** Envoy's TcpHealthCheck with no payloads: the check passes when a connection is accepted. */
export interface TcpHealthCheckConfig {
  kind: 'tcp';
}

export interface HealthCheckConfig {
  timeoutMs: number;
  intervalMs: number;
  unhealthyThreshold: number;
  healthyThreshold: number;
  check: HttpHealthCheckConfig | GrpcHealthCheckConfig | TcpHealthCheckConfig;
}

type Wire = Record<string, unknown>;
type Duration = { seconds?: string | number; nanos?: number };

/** Keys of HealthCheck this decoder reads; `health_checker` is protobufjs's virtual oneof key. */
const HANDLED = new Set(['timeout', 'interval', 'unhealthy_threshold', 'healthy_threshold', 'reuse_connection',
  'initial_jitter', 'interval_jitter', 'http_health_check', 'grpc_health_check', 'tcp_health_check', 'health_checker']);
const HTTP_HANDLED = new Set(['host', 'path', 'expected_statuses', 'codec_client_type', 'method']);
const GRPC_HANDLED = new Set(['service_name', 'authority']);
const REASONS: Readonly<Record<string, string>> = {
  custom_health_check: 'custom health checkers are not supported; use http_health_check, grpc_health_check or tcp_health_check',
};
const TCP_REASONS: Readonly<Record<string, string>> = {
  send: 'payloads are not supported: a TCP health check is connect-only',
  receive: 'payloads are not supported: a TCP health check is connect-only',
};
/** A path: '/' then visible ASCII; a host/authority: visible ASCII. */
const PATH_RE = /^\/[\x21-\x7e]*$/;
const HOST_RE = /^[\x21-\x7e]+$/;

/** Decodes `wire` (a Cluster's health_checks list); undefined when the list is empty or invalid. */
export function decodeHealthChecks(wire: Record<string, unknown>[], issues: Issues, path = 'health_checks'): HealthCheckConfig | undefined {
  if (wire.length === 0) return undefined;
  if (wire.length > 1) { issues.add(path, `exactly one HealthCheck is supported, got ${wire.length}`); return undefined; }
  const before = issues.list.length;
  const at = `${path}[0]`;
  const hc = wire[0]!;
  rejectUnhandled(hc, HANDLED, at, issues);
  const timeoutMs = positiveDuration(hc, 'timeout', at, issues);
  const intervalMs = positiveDuration(hc, 'interval', at, issues);
  const unhealthyThreshold = threshold(hc, 'unhealthy_threshold', at, issues);
  const healthyThreshold = threshold(hc, 'healthy_threshold', at, issues);
  for (const k of ['initial_jitter', 'interval_jitter']) {
    const ms = durationToMs(hc[k] as Duration | undefined);
    if (ms !== undefined && ms !== 0) issues.add(`${at}.${k}`, 'jitter is not supported; must be unset or 0');
  }
  const reuse = hc['reuse_connection'] as { value?: boolean } | undefined;
  if (isSet(reuse) && reuse.value !== true) issues.add(`${at}.reuse_connection`, 'only true (the default) is supported');
  let check: HealthCheckConfig['check'] | undefined;
  if (isSet(hc['http_health_check'])) check = decodeHttp(hc['http_health_check'] as Wire, `${at}.http_health_check`, issues);
  else if (isSet(hc['grpc_health_check'])) check = decodeGrpc(hc['grpc_health_check'] as Wire, `${at}.grpc_health_check`, issues);
  else if (isSet(hc['tcp_health_check'])) { rejectUnhandled(hc['tcp_health_check'] as Wire, new Set(), `${at}.tcp_health_check`, issues, TCP_REASONS); check = { kind: 'tcp' }; }
  else if (!isSet(hc['custom_health_check'])) issues.add(at, 'one of http_health_check, grpc_health_check or tcp_health_check is required');
  if (issues.list.length !== before || check === undefined) return undefined;
  return { timeoutMs: timeoutMs!, intervalMs: intervalMs!, unhealthyThreshold: unhealthyThreshold!, healthyThreshold: healthyThreshold!, check };
}

function decodeHttp(w: Wire, at: string, issues: Issues): HttpHealthCheckConfig | undefined {
  rejectUnhandled(w, HTTP_HANDLED, at, issues);
  const path = w['path'];
  if (typeof path !== 'string' || path === '') issues.add(`${at}.path`, 'is required');
  else if (!PATH_RE.test(path)) issues.add(`${at}.path`, "must start with '/' and hold no spaces or control characters");
  const host = w['host'];
  if (host !== undefined && host !== '' && (typeof host !== 'string' || !HOST_RE.test(host))) issues.add(`${at}.host`, 'must hold no spaces or control characters');
  const method = w['method'];
  if (method !== undefined && method !== 'GET' && method !== 'METHOD_UNSPECIFIED' && method !== 0 && method !== 1) {
    issues.add(`${at}.method`, `only GET is supported, got ${String(method)}`);
  }
  let codec: 'http1' | 'http2' = 'http1';
  const cc = w['codec_client_type'];
  if (cc === 'HTTP2' || cc === 1) codec = 'http2';
  else if (cc !== undefined && cc !== 'HTTP1' && cc !== 0) issues.add(`${at}.codec_client_type`, `must be HTTP1 or HTTP2, got ${String(cc)}`);
  const expectedStatuses: [number, number][] = [];
  const ranges = w['expected_statuses'];
  if (isSet(ranges)) {
    if (!Array.isArray(ranges)) issues.add(`${at}.expected_statuses`, 'must be a list of Int64Range');
    else {
      for (const [i, r] of (ranges as { start?: string | number; end?: string | number }[]).entries()) {
        const start = Number(r?.start ?? 0);
        const end = Number(r?.end ?? 0);
        if (!(start >= 100 && end <= 600 && start < end)) {
          issues.add(`${at}.expected_statuses[${i}]`, `must satisfy 100 <= start < end <= 600 (half-open), got [${start}, ${end})`);
        } else expectedStatuses.push([start, end]);
      }
    }
  }
  if (expectedStatuses.length === 0) expectedStatuses.push([200, 201]);
  return { kind: 'http', path: path as string, host: typeof host === 'string' && host !== '' ? host : undefined, expectedStatuses, codec };
}

function decodeGrpc(w: Wire, at: string, issues: Issues): GrpcHealthCheckConfig | undefined {
  rejectUnhandled(w, GRPC_HANDLED, at, issues);
  const serviceName = w['service_name'];
  if (serviceName !== undefined && typeof serviceName !== 'string') issues.add(`${at}.service_name`, 'must be a string');
  const authority = w['authority'];
  if (authority !== undefined && authority !== '' && (typeof authority !== 'string' || !HOST_RE.test(authority))) {
    issues.add(`${at}.authority`, 'must hold no spaces or control characters');
  }
  return {
    kind: 'grpc',
    serviceName: typeof serviceName === 'string' ? serviceName : '',
    authority: typeof authority === 'string' && authority !== '' ? authority : undefined,
  };
}

/** Every set key of `w` not in `handled` is an issue at `<at>.<key>`. */
function rejectUnhandled(w: Wire, handled: ReadonlySet<string>, at: string, issues: Issues, reasons = REASONS): void {
  for (const [k, v] of Object.entries(w)) {
    if (handled.has(k) || !isSet(v)) continue;
    issues.add(`${at}.${k}`, reasons[k] ?? 'is not supported by skein health checks');
  }
}

/** protobufjs omits unset fields; null and empty lists count as unset too. */
function isSet(v: unknown): v is object | string | number | boolean {
  return v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);
}

function positiveDuration(w: Wire, key: string, at: string, issues: Issues): number | undefined {
  const ms = durationToMs(w[key] as Duration | undefined);
  if (ms === undefined) { issues.add(`${at}.${key}`, 'is required'); return undefined; }
  if (!Number.isFinite(ms) || ms <= 0) { issues.add(`${at}.${key}`, 'must be at least 1ms'); return undefined; }
  return ms;
}

function threshold(w: Wire, key: string, at: string, issues: Issues): number | undefined {
  const raw = w[key] as { value?: number } | undefined;
  if (raw === undefined) { issues.add(`${at}.${key}`, 'is required'); return undefined; }
  const n = wrapped(raw)!;
  if (!Number.isInteger(n) || n < 1) { issues.add(`${at}.${key}`, `must be >= 1, got ${n}`); return undefined; }
  return n;
}

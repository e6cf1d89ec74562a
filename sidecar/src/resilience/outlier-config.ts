/**
 * envoy.config.cluster.v3.OutlierDetection -> OutlierConfig: typed, validated, every absent field
 * filled with Envoy's documented default (outlier_detection.proto; DetectorConfig in Envoy's
 * outlier_detection_impl.cc). Times are whole milliseconds; percents are 0..100.
 *
 * Input is the snake_case object protobufjs `toObject` gives (Durations `{seconds: '10', nanos}`,
 * wrappers `{value}`, plain bools; zero values may be omitted). Decoding never throws: problems
 * are added to `issues` under `<path>.<field>`, e.g. `outlier_detection.max_ejection_percent`.
 *
 * Rejected (an issue, never silently ignored):
 *  - `monitors` (extension monitors): not implemented;
 *  - any field name that is not in OutlierDetection;
 *  - percents above 100, non-positive interval / base_ejection_time / max_ejection_time,
 *    negative max_ejection_time_jitter, and max_ejection_time < base_ejection_time (Envoy
 *    rejects the cluster for that too).
 * Everything else the proto has is implemented by OutlierDetector, including
 * max_ejection_time_jitter, always_eject_one_host and successful_active_health_check_uneject_host
 * (the cluster's HealthChecker calls `onActiveHealthCheckSuccess` after each passing check).
 */
import { durationToMs } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';

export interface OutlierConfig {
  /** Consecutive 5xx (any status >= 500) before a consecutive-5xx ejection. Default 5; 0 never ejects. */
  consecutive5xx: number;
  /** Time between analysis sweeps (success rate, failure percentage, backoff decay). Default 10000ms. */
  intervalMs: number;
  /** Ejection time = base × times ejected, capped at maxEjectionTimeMs. Default 30000ms. */
  baseEjectionTimeMs: number;
  /** At most floor(this × hosts / 100) hosts are ejected at once. Default 10. */
  maxEjectionPercent: number;
  /** % chance a detected consecutive-5xx outlier is ejected. Default 100. */
  enforcingConsecutive5xx: number;
  /** % chance a detected success-rate outlier is ejected. Default 100. */
  enforcingSuccessRate: number;
  /** Hosts with enough volume needed for success-rate detection. Default 5. */
  successRateMinimumHosts: number;
  /** Requests in one interval for a host to count in success-rate detection. Default 100. */
  successRateRequestVolume: number;
  /** Threshold = mean - stdev × (this / 1000). Default 1900 (1.9). */
  successRateStdevFactor: number;
  /** Consecutive 502/503/504 before a gateway-failure ejection. Default 5; 0 never ejects. */
  consecutiveGatewayFailure: number;
  /** % chance a detected gateway-failure outlier is ejected. Default 0. */
  enforcingConsecutiveGatewayFailure: number;
  /**
   * false (default): connect failures, timeouts and resets count as 503/504 responses.
   * true: they have their own counters (consecutive local-origin failure, local-origin success rate).
   */
  splitExternalLocalOriginErrors: boolean;
  /** Consecutive local-origin failures before ejection (split only). Default 5; 0 never ejects. */
  consecutiveLocalOriginFailure: number;
  /** % chance a detected consecutive local-origin outlier is ejected. Default 100. */
  enforcingConsecutiveLocalOriginFailure: number;
  /** % chance a detected local-origin success-rate outlier is ejected. Default 100. */
  enforcingLocalOriginSuccessRate: number;
  /** Eject when a host's failure % in one interval is >= this. Default 85. */
  failurePercentageThreshold: number;
  /** % chance a detected failure-percentage outlier is ejected. Default 0. */
  enforcingFailurePercentage: number;
  /** % chance a detected local-origin failure-percentage outlier is ejected. Default 0. */
  enforcingFailurePercentageLocalOrigin: number;
  /** Hosts with enough volume needed for failure-percentage detection. Default 5. */
  failurePercentageMinimumHosts: number;
  /** Requests in one interval for a host to count in failure-percentage detection. Default 50. */
  failurePercentageRequestVolume: number;
  /** Cap on one ejection's length. Default 300000ms, or baseEjectionTimeMs if that is larger. */
  maxEjectionTimeMs: number;
  /** A random 0..this ms is added to each ejection. Default 0. */
  maxEjectionTimeJitterMs: number;
  /** A passing active health check returns an ejected host at once. Default true. */
  successfulActiveHealthCheckUnejectHost: boolean;
  /** Allow one ejection even when max_ejection_percent allows none. Default false. */
  alwaysEjectOneHost: boolean;
}

export const DEFAULT_OUTLIER_CONFIG: Readonly<OutlierConfig> = Object.freeze({
  consecutive5xx: 5,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionPercent: 10,
  enforcingConsecutive5xx: 100,
  enforcingSuccessRate: 100,
  successRateMinimumHosts: 5,
  successRateRequestVolume: 100,
  successRateStdevFactor: 1900,
  consecutiveGatewayFailure: 5,
  enforcingConsecutiveGatewayFailure: 0,
  splitExternalLocalOriginErrors: false,
  consecutiveLocalOriginFailure: 5,
  enforcingConsecutiveLocalOriginFailure: 100,
  enforcingLocalOriginSuccessRate: 100,
  failurePercentageThreshold: 85,
  enforcingFailurePercentage: 0,
  enforcingFailurePercentageLocalOrigin: 0,
  failurePercentageMinimumHosts: 5,
  failurePercentageRequestVolume: 50,
  maxEjectionTimeMs: 300_000,
  maxEjectionTimeJitterMs: 0,
  successfulActiveHealthCheckUnejectHost: true,
  alwaysEjectOneHost: false,
});

type NumberKey = { [K in keyof OutlierConfig]: OutlierConfig[K] extends number ? K : never }[keyof OutlierConfig];

/** UInt32Value fields: wire name -> config key, and whether the value is a percent (<= 100). */
const UINT32: readonly (readonly [string, NumberKey, boolean])[] = [
  ['consecutive_5xx', 'consecutive5xx', false],
  ['max_ejection_percent', 'maxEjectionPercent', true],
  ['enforcing_consecutive_5xx', 'enforcingConsecutive5xx', true],
  ['enforcing_success_rate', 'enforcingSuccessRate', true],
  ['success_rate_minimum_hosts', 'successRateMinimumHosts', false],
  ['success_rate_request_volume', 'successRateRequestVolume', false],
  ['success_rate_stdev_factor', 'successRateStdevFactor', false],
  ['consecutive_gateway_failure', 'consecutiveGatewayFailure', false],
  ['enforcing_consecutive_gateway_failure', 'enforcingConsecutiveGatewayFailure', true],
  ['consecutive_local_origin_failure', 'consecutiveLocalOriginFailure', false],
  ['enforcing_consecutive_local_origin_failure', 'enforcingConsecutiveLocalOriginFailure', true],
  ['enforcing_local_origin_success_rate', 'enforcingLocalOriginSuccessRate', true],
  ['failure_percentage_threshold', 'failurePercentageThreshold', true],
  ['enforcing_failure_percentage', 'enforcingFailurePercentage', true],
  ['enforcing_failure_percentage_local_origin', 'enforcingFailurePercentageLocalOrigin', true],
  ['failure_percentage_minimum_hosts', 'failurePercentageMinimumHosts', false],
  ['failure_percentage_request_volume', 'failurePercentageRequestVolume', false],
];

const DURATIONS = ['interval', 'base_ejection_time', 'max_ejection_time', 'max_ejection_time_jitter'] as const;
const BOOL_VALUES = ['successful_active_health_check_uneject_host', 'always_eject_one_host'] as const;
const KNOWN: ReadonlySet<string> = new Set<string>([
  ...UINT32.map(([w]) => w), ...DURATIONS, ...BOOL_VALUES, 'split_external_local_origin_errors', 'monitors',
]);
const MAX_U32 = 4_294_967_295;

export function decodeOutlierDetection(wire: Record<string, unknown>, issues: Issues, path = 'outlier_detection'): OutlierConfig {
  const out: OutlierConfig = { ...DEFAULT_OUTLIER_CONFIG };
  for (const key of Object.keys(wire)) if (!KNOWN.has(key)) issues.add(`${path}.${key}`, 'unknown field');

  for (const [field, key, percent] of UINT32) {
    const w = wire[field];
    if (w === undefined) continue;
    const n = wrapperValue(w);
    if (n === undefined || !Number.isInteger(n) || n < 0 || n > MAX_U32) { issues.add(`${path}.${field}`, 'must be a UInt32Value'); continue; }
    if (percent && n > 100) { issues.add(`${path}.${field}`, `must be <= 100, got ${n}`); continue; }
    out[key] = n;
  }

  const interval = duration(wire, 'interval', path, issues);
  if (interval !== undefined) { if (interval <= 0) issues.add(`${path}.interval`, 'must be > 0 (at least 1ms)'); else out.intervalMs = interval; }
  const base = duration(wire, 'base_ejection_time', path, issues);
  if (base !== undefined) { if (base <= 0) issues.add(`${path}.base_ejection_time`, 'must be > 0 (at least 1ms)'); else out.baseEjectionTimeMs = base; }
  const max = duration(wire, 'max_ejection_time', path, issues);
  if (max === undefined) out.maxEjectionTimeMs = Math.max(DEFAULT_OUTLIER_CONFIG.maxEjectionTimeMs, out.baseEjectionTimeMs);
  else if (max <= 0) issues.add(`${path}.max_ejection_time`, 'must be > 0 (at least 1ms)');
  else if (max < out.baseEjectionTimeMs) issues.add(`${path}.max_ejection_time`, `must be >= base_ejection_time (${out.baseEjectionTimeMs}ms), got ${max}ms`);
  else out.maxEjectionTimeMs = max;
  const jitter = duration(wire, 'max_ejection_time_jitter', path, issues);
  if (jitter !== undefined) { if (jitter < 0) issues.add(`${path}.max_ejection_time_jitter`, 'must be >= 0'); else out.maxEjectionTimeJitterMs = jitter; }

  const split = wire['split_external_local_origin_errors'];
  if (split !== undefined) { if (typeof split !== 'boolean') issues.add(`${path}.split_external_local_origin_errors`, 'must be a bool'); else out.splitExternalLocalOriginErrors = split; }
  const uneject = boolValue(wire, 'successful_active_health_check_uneject_host', path, issues);
  if (uneject !== undefined) out.successfulActiveHealthCheckUnejectHost = uneject;
  const one = boolValue(wire, 'always_eject_one_host', path, issues);
  if (one !== undefined) out.alwaysEjectOneHost = one;

  const monitors = wire['monitors'];
  if (monitors !== undefined && !(Array.isArray(monitors) && monitors.length === 0)) issues.add(`${path}.monitors`, 'extension monitors are not supported');
  return out;
}

function wrapperValue(w: unknown): number | undefined {
  if (typeof w !== 'object' || w === null) return undefined;
  const v = (w as { value?: unknown }).value;
  if (v === undefined) return 0; // proto3 default omitted by toObject
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return undefined;
}

function duration(wire: Record<string, unknown>, field: string, path: string, issues: Issues): number | undefined {
  const d = wire[field];
  if (d === undefined) return undefined;
  if (typeof d !== 'object' || d === null) { issues.add(`${path}.${field}`, 'must be a Duration'); return undefined; }
  const ms = durationToMs(d as { seconds?: string | number; nanos?: number });
  if (ms === undefined || !Number.isFinite(ms)) { issues.add(`${path}.${field}`, 'must be a Duration'); return undefined; }
  return ms;
}

function boolValue(wire: Record<string, unknown>, field: string, path: string, issues: Issues): boolean | undefined {
  const w = wire[field];
  if (w === undefined) return undefined;
  const v = typeof w === 'object' && w !== null ? (w as { value?: unknown }).value ?? false : undefined;
  if (typeof v !== 'boolean') { issues.add(`${path}.${field}`, 'must be a BoolValue'); return undefined; }
  return v;
}

/**
 * envoy.config.route.v3.RetryPolicy, parsed once. Defaults are Envoy's:
 * - num_retries: 1 when absent;
 * - per_try_timeout: none (0);
 * - retry_back_off absent: base 25 ms, max 10x base (250 ms); max_interval absent: 10x base.
 *   base_interval is required (> 0) when retry_back_off is set, and max_interval >= base_interval.
 * retry_on is a comma-separated list; unknown conditions are rejected (Envoy ignores them,
 * which hides typos), as are host predicates, priorities, rate-limited back-off and
 * retriable headers, which the sidecar does not implement.
 */
import { at, checkFields, durationMs, fail, fieldSpec, list, message, optMessage, str, u32, wrappedU32 } from './xds-fields';

export interface RetryPolicy {
  readonly retryOn: ReadonlySet<string>;
  /** Retries after the first attempt. */
  readonly numRetries: number;
  /** 0: none (each attempt is bounded by the route timeout only). */
  readonly perTryTimeoutMs: number;
  readonly baseIntervalMs: number;
  readonly maxIntervalMs: number;
  readonly retriableStatusCodes: readonly number[];
}

export const RETRY_DEFAULTS = { numRetries: 1, baseIntervalMs: 25, maxIntervalFactor: 10 } as const;

/** The conditions Envoy's router (x-envoy-retry-on and x-envoy-retry-grpc-on) knows. */
export const RETRY_CONDITIONS: ReadonlySet<string> = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx',
  'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);

const RETRY_POLICY = fieldSpec(['retry_on', 'num_retries', 'per_try_timeout', 'retriable_status_codes', 'retry_back_off'], ['host_selection_retry_max_attempts']);
const BACK_OFF = fieldSpec(['base_interval', 'max_interval']);

export function parseRetryPolicy(raw: unknown, path: string): RetryPolicy {
  const o = message(raw, path);
  checkFields(o, RETRY_POLICY, path);
  const retryOn = new Set<string>();
  for (const part of str(o, 'retry_on', path).split(',')) {
    const c = part.trim();
    if (c === '') continue;
    if (!RETRY_CONDITIONS.has(c)) fail(at(path, 'retry_on'), `unknown retry condition ${JSON.stringify(c)} (known: ${[...RETRY_CONDITIONS].join(', ')})`);
    retryOn.add(c);
  }
  const codes = list(o, 'retriable_status_codes', path).map((c, i) => {
    const p = at(at(path, 'retriable_status_codes'), i);
    const n = u32(c, p);
    if (n < 100 || n > 599) fail(p, `must be an HTTP status in [100, 599], got ${n}`);
    return n;
  });
  let baseIntervalMs: number = RETRY_DEFAULTS.baseIntervalMs;
  let maxIntervalMs = baseIntervalMs * RETRY_DEFAULTS.maxIntervalFactor;
  const backOff = optMessage(o, 'retry_back_off', path);
  if (backOff !== undefined) {
    const bp = at(path, 'retry_back_off');
    checkFields(backOff, BACK_OFF, bp);
    const base = durationMs(backOff, 'base_interval', bp);
    if (base === undefined || base <= 0) fail(at(bp, 'base_interval'), base === undefined ? 'is required' : 'must be at least 1ms');
    const max = durationMs(backOff, 'max_interval', bp);
    if (max !== undefined && max < base) fail(at(bp, 'max_interval'), `must be >= base_interval (${base}ms), got ${max}ms`);
    baseIntervalMs = base;
    maxIntervalMs = max ?? base * RETRY_DEFAULTS.maxIntervalFactor;
  }
  return Object.freeze({
    retryOn,
    numRetries: wrappedU32(o, 'num_retries', path) ?? RETRY_DEFAULTS.numRetries,
    perTryTimeoutMs: durationMs(o, 'per_try_timeout', path) ?? 0,
    baseIntervalMs,
    maxIntervalMs,
    retriableStatusCodes: Object.freeze(codes),
  });
}

/**
 * envoy.config.route.v3.RetryPolicy, parsed once. Defaults are Envoy's:
 * - num_retries: 1 when absent;
 * - per_try_timeout: none (0);
 * - retry_back_off absent: base 25 ms, max 10x base (250 ms); max_interval absent: 10x base.
 *   base_interval is required (> 0) when retry_back_off is set, and max_interval >= base_interval.
 * retry_on is a comma-separated list; unknown conditions are rejected (Envoy ignores them,
 * which hides typos), as are host predicates, priorities and rate-limited back-off, which the
 * sidecar does not implement. Every accepted condition has an effect (RetryState.matches):
 * - retriable-4xx: a 409 response (Envoy's definition: 409 only);
 * - reset-before-request: a connect failure, or a reset before any request byte went out
 *   (an HTTP/1.1 request undici had not yet written to a connection);
 * - envoy-ratelimited: a response carrying `x-envoy-ratelimited`, whatever its status;
 * - retriable-headers: a response matching any of `retriable_headers` (HeaderMatchers on the
 *   response headers, whatever the status). It requires a non-empty retriable_headers, and
 *   retriable_headers requires it; pseudo-headers (`:status`) are rejected: use
 *   retriable_status_codes.
 * - http3-post-connect-failure is rejected: the sidecar never speaks HTTP/3, so it could not
 *   have an effect.
 */
import { parseHeaderMatcher } from './header-matcher';
import type { HeaderMatcher } from './header-matcher';
import { at, checkFields, durationMs, fieldSpec, list, message, optMessage, str, u32, wrappedU32 } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';

export interface RetryPolicy {
  readonly retryOn: ReadonlySet<string>;
  /** Retries after the first attempt. */
  readonly numRetries: number;
  /** 0: none (each attempt is bounded by the route timeout only). */
  readonly perTryTimeoutMs: number;
  readonly baseIntervalMs: number;
  readonly maxIntervalMs: number;
  readonly retriableStatusCodes: readonly number[];
  /** retriable_headers: a response matching any of these is retried under retriable-headers. */
  readonly retriableHeaders: readonly HeaderMatcher[];
  /**
   * Whether some condition may retry a response that is neither 5xx nor a non-OK grpc-status
   * (retriable-4xx, envoy-ratelimited, retriable-headers, retriable-status-codes): the router
   * asks RetryState about other responses only when this is set.
   */
  readonly retriesResponses: boolean;
}

export const RETRY_DEFAULTS = { numRetries: 1, baseIntervalMs: 25, maxIntervalFactor: 10 } as const;

/** The conditions Envoy's router (x-envoy-retry-on and x-envoy-retry-grpc-on) knows. */
export const RETRY_CONDITIONS: ReadonlySet<string> = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx',
  'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);

/** Known conditions that can have no effect in the sidecar, and why (rejected). */
const NO_EFFECT: Readonly<Record<string, string>> = { 'http3-post-connect-failure': 'the skein sidecar does not speak HTTP/3' };

const RETRY_POLICY = fieldSpec(['retry_on', 'num_retries', 'per_try_timeout', 'retriable_status_codes', 'retry_back_off', 'retriable_headers'], ['host_selection_retry_max_attempts']);
const BACK_OFF = fieldSpec(['base_interval', 'max_interval']);

/** A RetryPolicy, or undefined when it added an issue. */
export function parseRetryPolicy(raw: unknown, path: string, issues: Issues): RetryPolicy | undefined {
  const o = message(raw, path, issues);
  if (o === undefined) return undefined;
  const before = issues.count;
  checkFields(o, RETRY_POLICY, path, issues);
  const retryOn = new Set<string>();
  const readRetryOn = issues.count;
  for (const part of str(o, 'retry_on', path, issues).split(',')) {
    const c = part.trim();
    if (c === '') continue;
    const why = NO_EFFECT[c];
    if (!RETRY_CONDITIONS.has(c)) issues.add(at(path, 'retry_on'), `unknown retry condition ${JSON.stringify(c)} (known: ${[...RETRY_CONDITIONS].join(', ')})`);
    else if (why !== undefined) issues.add(at(path, 'retry_on'), `${JSON.stringify(c)} cannot have an effect: ${why}`);
    else retryOn.add(c);
  }
  const retryOnOk = issues.count === readRetryOn;
  const hp = at(path, 'retriable_headers');
  const headerList = list(o, 'retriable_headers', path, issues);
  const retriableHeaders: HeaderMatcher[] = [];
  headerList.forEach((h, i) => {
    const m = parseHeaderMatcher(h, at(hp, i), issues);
    if (m === undefined) return;
    if (m.name.startsWith(':')) issues.add(at(at(hp, i), 'name'), 'pseudo-headers are not supported here (use retriable_status_codes for :status)');
    else retriableHeaders.push(m);
  });
  if (retryOn.has('retriable-headers') && headerList.length === 0) issues.add(hp, 'is required (non-empty) with retry_on "retriable-headers"');
  if (!retryOn.has('retriable-headers') && headerList.length > 0 && retryOnOk) issues.add(hp, 'has no effect without retry_on "retriable-headers"');
  const codes: number[] = [];
  list(o, 'retriable_status_codes', path, issues).forEach((c, i) => {
    const p = at(at(path, 'retriable_status_codes'), i);
    const n = u32(c, p, issues);
    if (n === undefined) return;
    if (n < 100 || n > 599) issues.add(p, `must be an HTTP status in [100, 599], got ${n}`);
    else codes.push(n);
  });
  let baseIntervalMs: number = RETRY_DEFAULTS.baseIntervalMs;
  let maxIntervalMs = baseIntervalMs * RETRY_DEFAULTS.maxIntervalFactor;
  const backOff = optMessage(o, 'retry_back_off', path, issues);
  if (backOff !== undefined) {
    const bp = at(path, 'retry_back_off');
    checkFields(backOff, BACK_OFF, bp, issues);
    const read = issues.count;
    const base = durationMs(backOff, 'base_interval', bp, issues);
    const max = durationMs(backOff, 'max_interval', bp, issues);
    if (base === undefined) {
      if (issues.count === read) issues.add(at(bp, 'base_interval'), 'is required');
    } else if (base <= 0) {
      issues.add(at(bp, 'base_interval'), 'must be at least 1ms');
    } else if (max !== undefined && max < base) {
      issues.add(at(bp, 'max_interval'), `must be >= base_interval (${base}ms), got ${max}ms`);
    } else {
      baseIntervalMs = base;
      maxIntervalMs = max ?? base * RETRY_DEFAULTS.maxIntervalFactor;
    }
  }
  const numRetries = wrappedU32(o, 'num_retries', path, issues) ?? RETRY_DEFAULTS.numRetries;
  const perTryTimeoutMs = durationMs(o, 'per_try_timeout', path, issues) ?? 0;
  if (issues.count !== before) return undefined;
  return Object.freeze({
    retryOn,
    numRetries,
    perTryTimeoutMs,
    baseIntervalMs,
    maxIntervalMs,
    retriableStatusCodes: Object.freeze(codes),
    retriableHeaders: Object.freeze(retriableHeaders),
    retriesResponses: retryOn.has('retriable-4xx') || retryOn.has('envoy-ratelimited') || retryOn.has('retriable-headers') || (retryOn.has('retriable-status-codes') && codes.length > 0),
  });
}

/**
 * envoy.filters.http.local_ratelimit: per route, a token bucket (resilience/token-bucket.ts); a
 * request finding it empty gets 429 / RESOURCE_EXHAUSTED (`rate_limited`). The bucket belongs to
 * the level that declares it (route or virtual host) and survives config pushes that keep its
 * settings (PerRouteContext.carry).
 *
 * Config (extensions.filters.http.local_ratelimit.v3.LocalRateLimit): stat_prefix is required
 * and, per route, token_bucket too; fill_interval >= 50ms (Envoy's minimum); tokens_per_fill
 * defaults to 1. filter_enabled and filter_enforced default to 0% (Envoy's default: off) and must
 * be 0% or 100%; the limit applies only when both are 100%. status must be unset or 429. The
 * sidecar answers a refused gRPC request with RESOURCE_EXHAUSTED whatever
 * rate_limited_as_resource_exhausted says (Envoy answers UNAVAILABLE unless it is true; the control
 * plane always sets it). Descriptors and the other options are rejected. On the listener a token
 * bucket is rejected (no listener-wide bucket): routes turn the filter on.
 */
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { TokenBucket } from '../resilience/token-bucket';
import { PER_MILLION } from '../resilience/fault';
import { at, checkFields, durationMs, fieldSpec, has, optMessage, str, u32, wrappedU32 } from '../../../shared/src/xds/fields';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';
import type { PerRouteContext } from '../route/filter-config';
import type { FilterCallbacks, FilterStatus, HttpFilter } from '../http/http-filter';
import { LOCAL_REPLIES } from '../http/local-reply';
import { fractionalPercent } from './fault';
import type { HttpFilterDefinition } from './registry';

export const LOCAL_RATELIMIT_FILTER = 'envoy.filters.http.local_ratelimit';
/** Envoy refuses faster fills ("local rate limit token bucket fill timer must be >= 50ms"). */
export const MIN_FILL_INTERVAL_MS = 50;

export interface TokenBucketSpec { readonly maxTokens: number; readonly tokensPerFill: number; readonly fillIntervalMs: number }

const LOCAL_RATE_LIMIT = fieldSpec(['stat_prefix', 'status', 'token_bucket', 'filter_enabled', 'filter_enforced'], ['always_consume_default_token_bucket', 'rate_limited_as_resource_exhausted']);
const HTTP_STATUS = fieldSpec(['code']);
const TOKEN_BUCKET = fieldSpec(['max_tokens', 'tokens_per_fill', 'fill_interval']);
const RUNTIME_FRACTIONAL_PERCENT = fieldSpec(['default_value'], ['runtime_key']);

class LocalRateLimitFilter implements HttpFilter {
  readonly name = LOCAL_RATELIMIT_FILTER;
  constructor(private readonly slot: number) {}

  onRequestHeaders(cb: FilterCallbacks): FilterStatus {
    const bucket = cb.route.perFilter[this.slot] as TokenBucket | undefined;
    if (bucket === undefined || bucket.tryTake(cb.clock.now())) return 'continue';
    cb.sendLocalReply(LOCAL_REPLIES.rateLimited, 'the route\'s local rate limit is exhausted');
    return 'stop';
  }
}

export const localRateLimitFilter: HttpFilterDefinition<null> = {
  name: LOCAL_RATELIMIT_FILTER,
  typeUrl: TYPE_URLS.LOCAL_RATELIMIT,
  inertListenerConfig: Object.freeze({ stat_prefix: 'local_rate_limit' }),
  parseListenerConfig(config: XdsMessage, path: string, issues: Issues): null | undefined {
    return parseLocalRateLimit(config, path, false, issues) === undefined ? undefined : null;
  },
  parsePerRoute(config: XdsMessage, path: string, ctx: PerRouteContext, issues: Issues): TokenBucket | null | undefined {
    const spec = parseLocalRateLimit(config, path, true, issues);
    if (spec === undefined || spec === null) return spec;
    return ctx.carry(`${spec.maxTokens}/${spec.tokensPerFill}/${spec.fillIntervalMs}`, () => new TokenBucket(spec.maxTokens, spec.tokensPerFill, spec.fillIntervalMs, ctx.nowMs));
  },
  create: (_config, slot) => new LocalRateLimitFilter(slot),
};

/**
 * LocalRateLimit -> a token bucket spec, or null when it never refuses (filter_enabled or
 * filter_enforced 0%); undefined when it added an issue. `perRoute` false (the listener's
 * filter): a token bucket is rejected, as the sidecar has no listener-wide bucket; the result
 * is then null.
 */
export function parseLocalRateLimit(l: XdsMessage, path: string, perRoute: boolean, issues: Issues): TokenBucketSpec | null | undefined {
  const before = issues.count;
  checkFields(l, LOCAL_RATE_LIMIT, path, issues);
  const readPrefix = issues.count;
  if (str(l, 'stat_prefix', path, issues) === '' && issues.count === readPrefix) issues.add(at(path, 'stat_prefix'), 'is required');
  const status = optMessage(l, 'status', path, issues);
  if (status !== undefined) {
    checkFields(status, HTTP_STATUS, at(path, 'status'), issues);
    const code = status['code'];
    if (code !== undefined && code !== 'Empty' && code !== 'TooManyRequests' && code !== 429) {
      issues.add(at(at(path, 'status'), 'code'), `only 429 (TooManyRequests) is supported by the skein sidecar, got ${String(code)}`);
    }
  }
  const enabled = enabledOrOff(l, 'filter_enabled', path, issues);
  const enforced = enabledOrOff(l, 'filter_enforced', path, issues);
  const tp = at(path, 'token_bucket');
  const bucket = optMessage(l, 'token_bucket', path, issues);
  if (!perRoute) {
    if (bucket !== undefined) issues.add(tp, 'a listener-wide token bucket is not supported by the skein sidecar; set one per route (typed_per_filter_config)');
    return issues.count === before ? null : undefined;
  }
  if (bucket === undefined) {
    if (!has(l, 'token_bucket')) issues.add(tp, 'is required in a per-route config');
    return undefined;
  }
  checkFields(bucket, TOKEN_BUCKET, tp, issues);
  const maxTokens = u32(bucket['max_tokens'] ?? 0, at(tp, 'max_tokens'), issues);
  const readFill = issues.count;
  const tokensPerFill = wrappedU32(bucket, 'tokens_per_fill', tp, issues) ?? 1;
  if (issues.count === readFill && tokensPerFill < 1) issues.add(at(tp, 'tokens_per_fill'), 'must be > 0');
  const readInterval = issues.count;
  const fillIntervalMs = durationMs(bucket, 'fill_interval', tp, issues);
  if (fillIntervalMs === undefined) {
    if (issues.count === readInterval) issues.add(at(tp, 'fill_interval'), 'is required');
  } else if (fillIntervalMs < MIN_FILL_INTERVAL_MS) {
    issues.add(at(tp, 'fill_interval'), `must be >= ${MIN_FILL_INTERVAL_MS}ms (Envoy's minimum), got ${fillIntervalMs}ms`);
  }
  if (issues.count !== before || maxTokens === undefined || fillIntervalMs === undefined) return undefined;
  return enabled && enforced ? Object.freeze({ maxTokens, tokensPerFill, fillIntervalMs }) : null;
}

/** A RuntimeFractionalPercent that must be 0% (false; also when unset) or 100% (true); false with an issue otherwise. */
function enabledOrOff(o: XdsMessage, key: string, path: string, issues: Issues): boolean {
  const r = optMessage(o, key, path, issues);
  if (r === undefined) return false;
  const p = at(path, key);
  checkFields(r, RUNTIME_FRACTIONAL_PERCENT, p, issues);
  const share = fractionalPercent(r, 'default_value', p, issues);
  if (share === undefined) return false;
  if (share !== 0 && share !== PER_MILLION) issues.add(at(p, 'default_value'), 'only 0% and 100% are supported by the skein sidecar');
  return share === PER_MILLION;
}

/**
 * envoy.config.route.v3.RouteAction: where a matched request goes and under which policies.
 *
 * - cluster or weighted_clusters (cumulative weights; the sum must be in [1, 2^32-1], a
 *   zero-weight cluster is never picked). cluster_header and cluster_specifier_plugin are rejected.
 * - timeoutMs: max_stream_duration.max_stream_duration when set (0 disables), else `timeout`
 *   (0 disables), else Envoy's default route timeout of 15 s. (Envoy keeps these as two timers;
 *   like grpc-js-xds we fold them into one deadline per request.)
 * - retry_policy: the route's own, else the virtual host's (Envoy: the route's wins whole).
 * - hash_policy: header and cookie (name only); other kinds are rejected.
 * Rewrites, mirrors, hedging, upgrades and the like are rejected, not ignored.
 */
import { parseRetryPolicy } from './retry-policy';
import type { RetryPolicy } from './retry-policy';
import { at, checkFields, durationMs, fieldSpec, has, list, message, oneofCase, optMessage, str, wrappedU32 } from '../../../shared/src/xds/fields';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';

export type HashPolicy = { readonly header: string } | { readonly cookie: string };

export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;

export class RouteAction {
  readonly perTryTimeoutMs: number;

  constructor(
    readonly clusters: readonly string[],
    /** cumulativeWeights[i] = sum of weights of clusters[0..i]. */
    readonly cumulativeWeights: readonly number[],
    readonly totalWeight: number,
    /** 0: no timeout. */
    readonly timeoutMs: number,
    readonly retryPolicy: RetryPolicy | undefined,
    readonly hashPolicy: readonly HashPolicy[],
  ) {
    this.perTryTimeoutMs = retryPolicy?.perTryTimeoutMs ?? 0;
    Object.freeze(this);
  }

  /** The cluster for a uniform random r in [0, 1): Envoy's `random % total` walk over cumulative weights. */
  pickCluster(r: number): string {
    const clusters = this.clusters;
    if (clusters.length === 1) return clusters[0];
    let target = Math.floor(r * this.totalWeight);
    if (!(target >= 0)) target = 0;
    else if (target >= this.totalWeight) target = this.totalWeight - 1;
    const cw = this.cumulativeWeights;
    for (let i = 0; i < cw.length; i++) if (target < cw[i]) return clusters[i];
    return clusters[clusters.length - 1];
  }
}

const ROUTE_ACTION = fieldSpec(
  ['cluster', 'weighted_clusters', 'timeout', 'max_stream_duration', 'retry_policy', 'hash_policy'],
  [],
  ['cluster_specifier', 'host_rewrite_specifier'],
  { cluster_not_found_response_code: 'SERVICE_UNAVAILABLE', priority: 'DEFAULT' },
);
const WEIGHTED_CLUSTER = fieldSpec(['clusters'], ['runtime_key_prefix'], ['random_value_specifier']);
const CLUSTER_WEIGHT = fieldSpec(['name', 'weight'], [], ['host_rewrite_specifier']);
const MAX_STREAM_DURATION = fieldSpec(['max_stream_duration']);
const HASH_POLICY = fieldSpec(['header', 'cookie'], [], ['policy_specifier']);
const HASH_HEADER = fieldSpec(['header_name']);
const HASH_COOKIE = fieldSpec(['name']);

/** `vhostRetry`: the virtual host's retry policy, used when the route has none. Undefined when it added an issue. */
export function parseRouteAction(raw: unknown, path: string, vhostRetry: RetryPolicy | undefined, issues: Issues): RouteAction | undefined {
  const o = message(raw, path, issues);
  if (o === undefined) return undefined;
  const before = issues.count;
  checkFields(o, ROUTE_ACTION, path, issues);
  const which = oneofCase(o, 'cluster_specifier', ['cluster', 'weighted_clusters', 'cluster_header', 'cluster_specifier_plugin'], path, issues);
  let picks: { clusters: string[]; weights: number[] } | undefined;
  if (which === 'cluster') {
    const read = issues.count;
    const name = str(o, 'cluster', path, issues);
    if (name !== '') picks = { clusters: [name], weights: [1] };
    else if (issues.count === read) issues.add(at(path, 'cluster'), 'must not be empty');
  } else if (which === 'weighted_clusters') {
    picks = parseWeightedClusters(o['weighted_clusters'], at(path, 'weighted_clusters'), issues);
  } else if (which === undefined) {
    issues.add(path, 'cluster_specifier is required: cluster or weighted_clusters');
  } else {
    issues.add(at(path, which), 'is not supported by the skein sidecar');
  }
  const cumulative: number[] = [];
  let total = 0;
  if (picks !== undefined) {
    for (const w of picks.weights) cumulative.push((total += w));
    const wp = at(path, 'weighted_clusters');
    if (total === 0) issues.add(wp, 'sum of weights is 0');
    if (total > 0xffffffff) issues.add(wp, `sum of weights ${total} exceeds 4294967295`);
  }
  const ownRetry = has(o, 'retry_policy') ? parseRetryPolicy(o['retry_policy'], at(path, 'retry_policy'), issues) : undefined;
  const hash = list(o, 'hash_policy', path, issues).map((h, i) => parseHashPolicy(h, at(at(path, 'hash_policy'), i), issues));
  const timeoutMs = timeoutOf(o, path, issues);
  if (picks === undefined || issues.count !== before) return undefined;
  return new RouteAction(Object.freeze(picks.clusters), Object.freeze(cumulative), total, timeoutMs, ownRetry ?? vhostRetry, Object.freeze(hash as HashPolicy[]));
}

/** The clusters and their weights, or undefined when it added an issue. */
function parseWeightedClusters(raw: unknown, path: string, issues: Issues): { clusters: string[]; weights: number[] } | undefined {
  const o = message(raw, path, issues);
  if (o === undefined) return undefined;
  const before = issues.count;
  checkFields(o, WEIGHTED_CLUSTER, path, issues);
  const items = list(o, 'clusters', path, issues);
  if (items.length === 0 && issues.count === before) issues.add(at(path, 'clusters'), 'must list at least one cluster');
  const clusters: string[] = [];
  const weights: number[] = [];
  items.forEach((item, i) => {
    const p = at(at(path, 'clusters'), i);
    const c = message(item, p, issues);
    if (c === undefined) return;
    checkFields(c, CLUSTER_WEIGHT, p, issues);
    const read = issues.count;
    const name = str(c, 'name', p, issues);
    if (name === '' && issues.count === read) issues.add(at(p, 'name'), 'is required');
    clusters.push(name);
    weights.push(wrappedU32(c, 'weight', p, issues) ?? 0);
  });
  return issues.count === before ? { clusters, weights } : undefined;
}

/** The route's deadline in ms (see the header); Envoy's default when neither field is set. */
function timeoutOf(o: XdsMessage, path: string, issues: Issues): number {
  const msd = optMessage(o, 'max_stream_duration', path, issues);
  if (msd !== undefined) {
    const mp = at(path, 'max_stream_duration');
    checkFields(msd, MAX_STREAM_DURATION, mp, issues);
    const ms = durationMs(msd, 'max_stream_duration', mp, issues);
    if (ms !== undefined) return ms;
  }
  return durationMs(o, 'timeout', path, issues) ?? DEFAULT_ROUTE_TIMEOUT_MS;
}

/** One hash_policy entry, or undefined when it added an issue. */
function parseHashPolicy(raw: unknown, path: string, issues: Issues): HashPolicy | undefined {
  const o = message(raw, path, issues);
  if (o === undefined) return undefined;
  const before = issues.count;
  checkFields(o, HASH_POLICY, path, issues);
  const which = oneofCase(o, 'policy_specifier', ['header', 'cookie', 'connection_properties', 'query_parameter', 'filter_state'], path, issues);
  let out: HashPolicy | undefined;
  if (which === 'header') {
    const name = requiredName(o, 'header', HASH_HEADER, 'header_name', path, issues)?.toLowerCase();
    if (name !== undefined) out = Object.freeze({ header: name });
  } else if (which === 'cookie') {
    const name = requiredName(o, 'cookie', HASH_COOKIE, 'name', path, issues);
    if (name !== undefined) out = Object.freeze({ cookie: name });
  } else if (which === undefined) {
    issues.add(path, 'policy_specifier is required: header or cookie');
  } else {
    issues.add(at(path, which), 'is not supported by the skein sidecar');
  }
  return issues.count === before ? out : undefined;
}

/** The non-empty string `field` of the message `key` of `o` (a hash policy's header or cookie), or undefined with an issue. */
function requiredName(o: XdsMessage, key: string, spec: typeof HASH_HEADER, field: string, path: string, issues: Issues): string | undefined {
  const p = at(path, key);
  const m = message(o[key], p, issues);
  if (m === undefined) return undefined;
  checkFields(m, spec, p, issues);
  const read = issues.count;
  const name = str(m, field, p, issues);
  if (name !== '') return name;
  if (issues.count === read) issues.add(at(p, field), 'is required');
  return undefined;
}

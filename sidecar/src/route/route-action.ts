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
import { at, checkFields, durationMs, fail, fieldSpec, list, message, oneofCase, optMessage, str, wrappedU32 } from './xds-fields';
import type { XdsMessage } from './xds-fields';

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

/** `vhostRetry`: the virtual host's retry policy, used when the route has none. */
export function parseRouteAction(raw: unknown, path: string, vhostRetry: RetryPolicy | undefined): RouteAction {
  const o = message(raw, path);
  checkFields(o, ROUTE_ACTION, path);
  const which = oneofCase(o, 'cluster_specifier', ['cluster', 'weighted_clusters', 'cluster_header', 'cluster_specifier_plugin'], path);
  let clusters: string[];
  let weights: number[];
  if (which === 'cluster') {
    const name = str(o, 'cluster', path);
    if (name === '') fail(at(path, 'cluster'), 'must not be empty');
    clusters = [name];
    weights = [1];
  } else if (which === 'weighted_clusters') {
    ({ clusters, weights } = parseWeightedClusters(o['weighted_clusters'], at(path, 'weighted_clusters')));
  } else if (which === undefined) {
    return fail(path, 'cluster_specifier is required: cluster or weighted_clusters');
  } else {
    return fail(at(path, which), 'is not supported by the skein sidecar');
  }
  const cumulative: number[] = [];
  let total = 0;
  for (const w of weights) cumulative.push((total += w));
  const wp = at(path, 'weighted_clusters');
  if (total === 0) fail(wp, 'sum of weights is 0');
  if (total > 0xffffffff) fail(wp, `sum of weights ${total} exceeds 4294967295`);
  const ownRetry = o['retry_policy'] === undefined ? undefined : parseRetryPolicy(o['retry_policy'], at(path, 'retry_policy'));
  const hash = list(o, 'hash_policy', path).map((h, i) => parseHashPolicy(h, at(at(path, 'hash_policy'), i)));
  return new RouteAction(Object.freeze(clusters), Object.freeze(cumulative), total, timeoutOf(o, path), ownRetry ?? vhostRetry, Object.freeze(hash));
}

function parseWeightedClusters(raw: unknown, path: string): { clusters: string[]; weights: number[] } {
  const o = message(raw, path);
  checkFields(o, WEIGHTED_CLUSTER, path);
  const items = list(o, 'clusters', path);
  if (items.length === 0) fail(at(path, 'clusters'), 'must list at least one cluster');
  const clusters: string[] = [];
  const weights: number[] = [];
  items.forEach((item, i) => {
    const p = at(at(path, 'clusters'), i);
    const c = message(item, p);
    checkFields(c, CLUSTER_WEIGHT, p);
    const name = str(c, 'name', p);
    if (name === '') fail(at(p, 'name'), 'is required');
    clusters.push(name);
    weights.push(wrappedU32(c, 'weight', p) ?? 0);
  });
  return { clusters, weights };
}

function timeoutOf(o: XdsMessage, path: string): number {
  const msd = optMessage(o, 'max_stream_duration', path);
  if (msd !== undefined) {
    const mp = at(path, 'max_stream_duration');
    checkFields(msd, MAX_STREAM_DURATION, mp);
    const ms = durationMs(msd, 'max_stream_duration', mp);
    if (ms !== undefined) return ms;
  }
  return durationMs(o, 'timeout', path) ?? DEFAULT_ROUTE_TIMEOUT_MS;
}

function parseHashPolicy(raw: unknown, path: string): HashPolicy {
  const o = message(raw, path);
  checkFields(o, HASH_POLICY, path);
  const which = oneofCase(o, 'policy_specifier', ['header', 'cookie', 'connection_properties', 'query_parameter', 'filter_state'], path);
  if (which === 'header') {
    const hp = at(path, 'header');
    const h = message(o['header'], hp);
    checkFields(h, HASH_HEADER, hp);
    const name = str(h, 'header_name', hp).toLowerCase();
    if (name === '') fail(at(hp, 'header_name'), 'is required');
    return Object.freeze({ header: name });
  }
  if (which === 'cookie') {
    const cp = at(path, 'cookie');
    const c = message(o['cookie'], cp);
    checkFields(c, HASH_COOKIE, cp);
    const name = str(c, 'name', cp);
    if (name === '') fail(at(cp, 'name'), 'is required');
    return Object.freeze({ cookie: name });
  }
  if (which === undefined) return fail(path, 'policy_specifier is required: header or cookie');
  return fail(at(path, which), 'is not supported by the skein sidecar');
}

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
import { at, checkFields, durationMs, fieldSpec, has, list, message, oneofCase, optMessage, str, wrappedU32 } from '../../../shared/src/xds/fields';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';
import { parseRetryPolicy } from './retry-policy';
import type { RetryPolicy } from './retry-policy';

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

/** `vhostRetry`: the virtual host's retry policy, used when the route has none. undefined (with issues) when invalid. */
export function parseRouteAction(raw: unknown, path: string, vhostRetry: RetryPolicy | undefined, issues: Issues): RouteAction | undefined {
  const o = message(raw, path, issues);
  if (o === undefined) return undefined;
  const before = issues.count;
  checkFields(o, ROUTE_ACTION, path, issues);
  const which = oneofCase(o, 'cluster_specifier', ['cluster', 'weighted_clusters', 'cluster_header', 'cluster_specifier_plugin'], path, issues);
  let clusters: string[] = [];
  let weights: number[] = [];
  if (which === 'cluster') {
    const name = str(o, 'cluster', path, issues);
    if (name === '') issues.add(at(path, 'cluster'), 'must not be empty');
    clusters = [name];
    weights = [1];
  } else if (which === 'weighted_clusters') {
    const wc = parseWeightedClusters(o['weighted_clusters'], at(path, 'weighted_clusters'), issues);
    if (wc !== undefined) ({ clusters, weights } = wc);
  } else if (which === undefined) {
    issues.add(path, 'cluster_specifier is required: cluster or weighted_clusters');
  } else {
    issues.add(at(path, which), 'is not supported by the skein sidecar');
  }
  const cumulative: number[] = [];
  let total = 0;
  for (const w of weights) cumulative.push((total += w));
  const wp = at(path, 'weighted_clusters');
  if (clusters.length > 0 && total === 0) issues.add(wp, 'sum of weights is 0');
  if (total > 0xffffffff) issues.add(wp, `sum of weights ${total} exceeds 4294967295`);
  const ownRetry = has(o, 'retry_policy') ? parseRetryPolicy(o['retry_policy'], at(path, 'retry_policy'), issues) : undefined;
  const hash: HashPolicy[] = [];
  list(o, 'hash_policy', path, issues).forEach((h, i) => {
    const p = parseHashPolicy(h, at(at(path, 'hash_policy'), i), issues);
    if (p !== undefined) hash.push(p);
  });
  const timeoutMs = timeoutOf(o, path, issues);
  if (issues.count !== before) return undefined;
  return new RouteAction(Object.freeze(clusters), Object.freeze(cumulative), total, timeoutMs, ownRetry ?? vhostRetry, Object.freeze(hash));
}

function parseWeightedClusters(raw: unknown, path: string, issues: Issues): { clusters: string[]; weights: number[] } | undefined {
  const o = message(raw, path, issues);
  if (o === undefined) return undefined;
  checkFields(o, WEIGHTED_CLUSTER, path, issues);
  const items = list(o, 'clusters', path, issues);
  if (items.length === 0) { issues.add(at(path, 'clusters'), 'must list at least one cluster'); return undefined; }
  const clusters: string[] = [];
  const weights: number[] = [];
  items.forEach((item, i) => {
    const p = at(at(path, 'clusters'), i);
    const c = message(item, p, issues);
    if (c === undefined) return;
    checkFields(c, CLUSTER_WEIGHT, p, issues);
    const name = str(c, 'name', p, issues);
    if (name === '') issues.add(at(p, 'name'), 'is required');
    clusters.push(name);
    weights.push(wrappedU32(c, 'weight', p, issues) ?? 0);
  });
  return { clusters, weights };
}

function timeoutOf(o: XdsMessage, path: string, issues: Issues): number {
  const msd = optMessage(o, 'max_stream_duration', path, issues);
  const timeout = durationMs(o, 'timeout', path, issues);
  if (msd !== undefined) {
    const mp = at(path, 'max_stream_duration');
    checkFields(msd, MAX_STREAM_DURATION, mp, issues);
    const ms = durationMs(msd, 'max_stream_duration', mp, issues);
    if (ms !== undefined) return ms;
  }
  return timeout ?? DEFAULT_ROUTE_TIMEOUT_MS;
}

function parseHashPolicy(raw: unknown, path: string, issues: Issues): HashPolicy | undefined {
  const o = message(raw, path, issues);
  if (o === undefined) return undefined;
  checkFields(o, HASH_POLICY, path, issues);
  const which = oneofCase(o, 'policy_specifier', ['header', 'cookie', 'connection_properties', 'query_parameter', 'filter_state'], path, issues);
  if (which === 'header') {
    const hp = at(path, 'header');
    const h = message(o['header'], hp, issues);
    if (h === undefined) return undefined;
    checkFields(h, HASH_HEADER, hp, issues);
    const name = str(h, 'header_name', hp, issues).toLowerCase();
    if (name === '') { issues.add(at(hp, 'header_name'), 'is required'); return undefined; }
    return Object.freeze({ header: name });
  }
  if (which === 'cookie') {
    const cp = at(path, 'cookie');
    const c = message(o['cookie'], cp, issues);
    if (c === undefined) return undefined;
    checkFields(c, HASH_COOKIE, cp, issues);
    const name = str(c, 'name', cp, issues);
    if (name === '') { issues.add(at(cp, 'name'), 'is required'); return undefined; }
    return Object.freeze({ cookie: name });
  }
  if (which === undefined) issues.add(path, 'policy_specifier is required: header or cookie');
  else issues.add(at(path, which), 'is not supported by the skein sidecar');
  return undefined;
}

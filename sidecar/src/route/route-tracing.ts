/**
 * Route.tracing (envoy.config.route.v3.Tracing): a route's own share of new traces, overriding
 * the listener's (HttpConnectionManager.tracing, xds/hcm-tracing.ts). random_sampling and
 * overall_sampling (FractionalPercent) are read; client_sampling (x-client-trace-id forced
 * traces) is not supported and is rejected, as is every other field (checkFields).
 */
import { checkFields, fieldSpec, has, message } from '../../../shared/src/xds/fields';
import { PER_MILLION, fractionalPercent } from '../../../shared/src/xds/percent';
import type { Issues } from '../../../shared/src/xds/issues';

/** A route's sampling ratios in [0, 1]; undefined: the listener's. */
export interface RouteTracing {
  readonly randomSampling: number | undefined;
  readonly overallSampling: number | undefined;
}

const TRACING = fieldSpec(['random_sampling', 'overall_sampling']);

/** Decodes Route.tracing at `path`; undefined when it added an issue. */
export function parseRouteTracing(raw: unknown, path: string, issues: Issues): RouteTracing | undefined {
  const o = message(raw, path, issues);
  if (o === undefined) return undefined;
  const before = issues.count;
  checkFields(o, TRACING, path, issues);
  const random = has(o, 'random_sampling') ? fractionalPercent(o, 'random_sampling', path, issues) : undefined;
  const overall = has(o, 'overall_sampling') ? fractionalPercent(o, 'overall_sampling', path, issues) : undefined;
  if (issues.count !== before) return undefined;
  return Object.freeze({
    randomSampling: random === undefined ? undefined : random / PER_MILLION,
    overallSampling: overall === undefined ? undefined : overall / PER_MILLION,
  });
}

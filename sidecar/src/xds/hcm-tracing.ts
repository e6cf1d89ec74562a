/**
 * HttpConnectionManager.tracing: whether a listener traces, and the share of new traces. Present
 * (even `{}`): the listener makes spans (when the sidecar has an exporter, --trace-exporter);
 * absent: it makes none and only passes the caller's context on. As in Envoy, random_sampling
 * (the share of requests without a sampled context that start a trace) and overall_sampling (a
 * further share of those) default to 100%; skein's control plane sets random_sampling (default
 * 1%, docs/config.md). max_path_tag_length (default 256) bounds the url.path attribute. verbose
 * (Envoy's extra span annotations) and client_sampling (x-client-trace-id) are not implemented:
 * set, they are rejected with the other unknown fields (checkFields), not decoded and ignored.
 */
import { at, checkFields, fieldSpec, has, optMessage, wrappedU32 } from '../../../shared/src/xds/fields';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import { percentRatio } from '../../../shared/src/xds/percent';
import type { Issues } from '../../../shared/src/xds/issues';

export interface ListenerTracing {
  /** Ratios in [0, 1]. */
  readonly randomSampling: number;
  readonly overallSampling: number;
  readonly maxPathTagLength: number;
}

/** Envoy's default max_path_tag_length. */
export const DEFAULT_MAX_PATH_TAG_LENGTH = 256;

const TRACING = fieldSpec(['random_sampling', 'overall_sampling', 'max_path_tag_length']);

/** The HCM's tracing at `path` (the HCM's); undefined when absent or when it added an issue. */
export function decodeHcmTracing(hcm: XdsMessage, path: string, issues: Issues): ListenerTracing | undefined {
  if (!has(hcm, 'tracing')) return undefined;
  const t = optMessage(hcm, 'tracing', path, issues);
  if (t === undefined) return undefined;
  const p = at(path, 'tracing');
  const before = issues.count;
  checkFields(t, TRACING, p, issues);
  const randomSampling = percentRatio(t, 'random_sampling', 1, p, issues);
  const overallSampling = percentRatio(t, 'overall_sampling', 1, p, issues);
  const max = wrappedU32(t, 'max_path_tag_length', p, issues);
  if (randomSampling === undefined || overallSampling === undefined || issues.count !== before) return undefined;
  return Object.freeze({ randomSampling, overallSampling, maxPathTagLength: max === undefined || max === 0 ? DEFAULT_MAX_PATH_TAG_LENGTH : max });
}

/** Whether two listeners' tracing settings are the same (inbound chains must agree). */
export function sameTracing(a: ListenerTracing | undefined, b: ListenerTracing | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.randomSampling === b.randomSampling && a.overallSampling === b.overallSampling && a.maxPathTagLength === b.maxPathTagLength;
}

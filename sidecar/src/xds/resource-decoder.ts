/**
 * How the sidecar turns a packed resource of one xDS kind (shared/src/xds/resource-kind.ts: type
 * URL, full state or per name, name field, equality) into typed, validated config. A decoder
 * plugs into its kind and never throws: it collects every problem (shared/src/xds/issues.ts)
 * with its field path, e.g. `filter_chains[0].filters[0].typed_config.rds.config_source: must
 * be ads`, and the resource is rejected with all of them.
 */
import { decodeAny } from '../../../shared/src/xds/protos';
import { Issues } from '../../../shared/src/xds/issues';
import type { XdsResourceKind } from '../../../shared/src/xds/resource-kind';

export interface PackedResource {
  type_url: string;
  value: Buffer;
}

/** A decoded resource, or why it was rejected. `name` is '' when even the name could not be read. */
export type DecodeResult<T> = { name: string; value: T } | { name: string; error: string };

export interface ResourceDecoder<T> {
  readonly kind: XdsResourceKind;
  /**
   * `previous(name)` is the value currently accepted under that name, for decoders that carry
   * state across updates (the route table's rate-limit buckets). Decoders must not change it.
   */
  decode(any: PackedResource, previous?: (name: string) => T | undefined): DecodeResult<T>;
}

/**
 * Shared decode frame: checks the type URL, unpacks the Any, reads the name (the kind's name
 * field), runs `body`, and turns collected issues (or an unexpected throw) into a DecodeResult.
 * `body` may return undefined once it has recorded an issue.
 */
export function decodeWith<M, T>(
  kind: XdsResourceKind,
  any: PackedResource,
  body: (msg: M, name: string, issues: Issues) => T | undefined,
): DecodeResult<T> {
  if (any?.type_url !== kind.typeUrl) return { name: '', error: `type_url: expected ${kind.typeUrl}, got ${String(any?.type_url)}` };
  let msg: M;
  try {
    msg = decodeAny<M>(any);
  } catch (e) {
    return { name: '', error: `cannot decode ${shortType(kind.typeUrl)}: ${(e as Error).message}` };
  }
  const name = kind.nameOf(msg as object);
  if (name === '') return { name, error: `${kind.nameField}: is required` };
  const issues = new Issues();
  let value: T | undefined;
  try {
    value = body(msg, name, issues);
  } catch (e) {
    issues.add('', `internal decoder error: ${(e as Error).message}`);
    return { name, error: issues.toString() };
  }
  if (issues.ok && value === undefined) issues.add('', 'internal decoder error: no value');
  return issues.ok ? { name, value: value! } : { name, error: issues.toString() };
}

/** Unpacks a nested Any expected to hold `typeUrl`; records an issue and returns undefined if not. */
export function unpack<M>(any: { type_url: string; value: Uint8Array } | undefined, typeUrl: string, path: string, issues: Issues): M | undefined {
  if (any === undefined) { issues.add(path, `is required (${shortType(typeUrl)})`); return undefined; }
  if (any.type_url !== typeUrl) { issues.add(path, `must be ${shortType(typeUrl)}, got ${any.type_url || '(empty type_url)'}`); return undefined; }
  try {
    return decodeAny<M>(any);
  } catch (e) {
    issues.add(path, `cannot decode ${shortType(typeUrl)}: ${(e as Error).message}`);
    return undefined;
  }
}

export function shortType(typeUrl: string): string { return typeUrl.slice(typeUrl.lastIndexOf('.') + 1); }

/** A ConfigSource we can follow: ADS, or `self` (the stream the referring resource came on, which is ADS too). */
export function configSourceKind(cs: { ads?: object; self?: object; path_config_source?: object } | undefined): 'ads' | 'self' | 'other' | 'missing' {
  if (cs === undefined) return 'missing';
  if (cs.ads !== undefined) return 'ads';
  if (cs.self !== undefined) return 'self';
  return 'other';
}

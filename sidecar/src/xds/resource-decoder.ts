/**
 * One xDS resource type as the sidecar sees it: how to turn a packed Any into typed,
 * validated config (as in grpc-js-xds's XdsResourceType). Decoders never throw: every problem
 * becomes an error string naming its field path, e.g.
 * `filter_chains[0].filters[0].typed_config.rds.config_source: must be ads`.
 */
import { decodeAny } from '../../../shared/src/xds/protos';

export interface PackedResource {
  type_url: string;
  value: Buffer;
}

/** A decoded resource, or why it was rejected. `name` is '' when even the name could not be read. */
export type DecodeResult<T> = { name: string; value: T } | { name: string; error: string };

export interface ResourceType<T> {
  readonly typeUrl: string;
  /**
   * `previous(name)` is the value currently accepted under that name, for decoders that carry
   * state across updates (the route table's rate-limit buckets). Decoders must not change it.
   */
  decode(any: PackedResource, previous?: (name: string) => T | undefined): DecodeResult<T>;
}

/** Collects path-prefixed problems while a decoder walks one resource. */
export class Issues {
  readonly list: string[] = [];
  add(path: string, message: string): void { this.list.push(path === '' ? message : `${path}: ${message}`); }
  get ok(): boolean { return this.list.length === 0; }
  toString(): string { return this.list.join('; '); }
}

/**
 * Shared decode frame: checks the type URL, unpacks the Any, reads the name, runs `body`, and turns
 * collected issues (or an unexpected throw) into a DecodeResult. `body` may return undefined
 * once it has recorded an issue.
 */
export function decodeWith<M, T>(
  typeUrl: string,
  any: PackedResource,
  nameOf: (msg: M) => unknown,
  nameField: string,
  body: (msg: M, issues: Issues) => T | undefined,
): DecodeResult<T> {
  if (any?.type_url !== typeUrl) return { name: '', error: `type_url: expected ${typeUrl}, got ${String(any?.type_url)}` };
  let msg: M;
  try {
    msg = decodeAny<M>(any);
  } catch (e) {
    return { name: '', error: `cannot decode ${shortType(typeUrl)}: ${(e as Error).message}` };
  }
  const rawName = nameOf(msg);
  const name = typeof rawName === 'string' ? rawName : '';
  if (name === '') return { name, error: `${nameField}: is required` };
  const issues = new Issues();
  let value: T | undefined;
  try {
    value = body(msg, issues);
  } catch (e) {
    issues.add('', `internal decoder error: ${(e as Error).message}`);
    return { name, error: issues.toString() };
  }
  if (issues.ok && value === undefined) issues.add('', 'internal decoder error: no value');
  return issues.ok ? { name, value: value! } : { name, error: issues.toString() };
}

/** Unpacks a nested Any expected to hold `typeUrl`; records an issue and returns undefined if not. */
export function unpack<M>(any: PackedResource | undefined, typeUrl: string, path: string, issues: Issues): M | undefined {
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

/** google.protobuf.Duration ({seconds: string, nanos}) to whole milliseconds. */
export function durationMs(d: { seconds?: string | number; nanos?: number } | undefined): number | undefined {
  if (d === undefined) return undefined;
  return Number(d.seconds ?? 0) * 1000 + Math.floor((d.nanos ?? 0) / 1_000_000);
}

/** A wrapper ({value}) as a number; UInt64Value values arrive as decimal strings. */
export function wrapped(w: { value?: number | string } | undefined, dflt?: number): number | undefined {
  if (w === undefined) return dflt;
  return Number(w.value ?? 0);
}

/** A ConfigSource we can follow: ADS, or `self` (the stream the referring resource came on, which is ADS too). */
export function configSourceKind(cs: { ads?: object; self?: object; path_config_source?: object } | undefined): 'ads' | 'self' | 'other' | 'missing' {
  if (cs === undefined) return 'missing';
  if (cs.ads !== undefined) return 'ads';
  if (cs.self !== undefined) return 'self';
  return 'other';
}

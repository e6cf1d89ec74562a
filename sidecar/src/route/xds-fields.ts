/**
 * Hand-written readers for decoded xDS messages (shared/src/xds/protos.ts conventions: snake_case
 * keys, enums as strings, int64 as strings, Duration {seconds, nanos}, wrappers {value}, oneof
 * virtual keys, unset fields absent). Every failure throws a SKEIN_ERR_VALIDATION MeshError whose
 * message is `<path>: <problem>`, e.g. `virtual_hosts[0].routes[2].match: path_specifier is
 * required`; that message becomes the sidecar's NACK error_detail.
 *
 * A field that an encoder wrote with its default value (protobufjs writes explicit zeros, Envoy's
 * C++ encoder does not) means the same as an absent one, so `isSet` treats false, 0, '0', '' and
 * [] as unset. A present message (even `{}`) is set.
 */
import { ErrorCodes, MeshError } from '../../../shared/src/errors';

export type XdsMessage = Readonly<Record<string, unknown>>;

export function fail(path: string, problem: string): never {
  throw new MeshError(ErrorCodes.VALIDATION, path === '' ? problem : `${path}: ${problem}`, {
    details: [{ resource: 'RouteConfiguration', path, message: problem }],
  });
}

/** `a.b`, `a[3]`, or just `b` at the root. */
export function at(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

export function isSet(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '' || v === '0') return false;
  return !(Array.isArray(v) && v.length === 0);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

export function message(v: unknown, path: string): XdsMessage {
  if (!isPlainObject(v)) fail(path, `must be a message, got ${describe(v)}`);
  return v;
}

export function optMessage(o: XdsMessage, key: string, path: string): XdsMessage | undefined {
  const v = o[key];
  return v === undefined || v === null ? undefined : message(v, at(path, key));
}

export function list(o: XdsMessage, key: string, path: string): readonly unknown[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(at(path, key), `must be a list, got ${describe(v)}`);
  return v;
}

export function str(o: XdsMessage, key: string, path: string): string {
  const v = o[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') fail(at(path, key), `must be a string, got ${describe(v)}`);
  return v;
}

export function bool(o: XdsMessage, key: string, path: string): boolean {
  const v = o[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') fail(at(path, key), `must be a bool, got ${describe(v)}`);
  return v;
}

export function u32(v: unknown, path: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) fail(path, `must be a uint32, got ${describe(v)}`);
  return n;
}

/** google.protobuf.UInt32Value: undefined when absent, 0 for `{}`. */
export function wrappedU32(o: XdsMessage, key: string, path: string): number | undefined {
  const w = optMessage(o, key, path);
  if (w === undefined) return undefined;
  return w['value'] === undefined || w['value'] === null ? 0 : u32(w['value'], at(at(path, key), 'value'));
}

/** google.protobuf.BoolValue: undefined when absent, false for `{}`. */
export function wrappedBool(o: XdsMessage, key: string, path: string): boolean | undefined {
  const w = optMessage(o, key, path);
  return w === undefined ? undefined : bool(w, 'value', at(path, key));
}

/** google.protobuf.Duration in whole milliseconds (truncated, as Envoy's durationToMilliseconds); undefined when absent. */
export function durationMs(o: XdsMessage, key: string, path: string): number | undefined {
  const d = optMessage(o, key, path);
  if (d === undefined) return undefined;
  const p = at(path, key);
  const rawSeconds = d['seconds'] ?? 0;
  const seconds = typeof rawSeconds === 'string' && /^-?\d+$/.test(rawSeconds) ? Number(rawSeconds) : rawSeconds;
  const nanos = d['nanos'] ?? 0;
  if (typeof seconds !== 'number' || !Number.isSafeInteger(seconds)) fail(at(p, 'seconds'), `must be an integer, got ${describe(rawSeconds)}`);
  if (typeof nanos !== 'number' || !Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) fail(at(p, 'nanos'), `must be an integer in [0, 999999999], got ${describe(nanos)}`);
  if (seconds < 0) fail(p, 'must not be negative');
  return seconds * 1000 + Math.floor(nanos / 1_000_000);
}

/**
 * Which member of a oneof is set: the decoder's virtual key when present (so `prefix: ''` is
 * told apart from an unset path_specifier), else the one member key present.
 */
export function oneofCase(o: XdsMessage, oneof: string, members: readonly string[], path: string): string | undefined {
  const named = o[oneof];
  if (typeof named === 'string' && named !== '') return named;
  const present = members.filter((m) => o[m] !== undefined && o[m] !== null);
  if (present.length > 1) fail(path, `${oneof}: only one of ${present.join(', ')} may be set`);
  return present[0];
}

/** What a message may carry: fields we read, fields we knowingly ignore, oneof virtual keys. */
export interface FieldSpec {
  readonly read: ReadonlySet<string>;
  readonly ignore: ReadonlySet<string>;
  readonly oneofs: ReadonlySet<string>;
  /** Enum fields whose zero value may be present (it means unset). */
  readonly enumZero: Readonly<Record<string, string>>;
}

export function fieldSpec(read: readonly string[], ignore: readonly string[] = [], oneofs: readonly string[] = [], enumZero: Record<string, string> = {}): FieldSpec {
  return { read: new Set(read), ignore: new Set(ignore), oneofs: new Set(oneofs), enumZero };
}

/**
 * Rejects every set field the sidecar does not implement: ignoring one silently would route
 * differently from what the control plane asked for. New upstream fields are rejected too.
 */
export function checkFields(o: XdsMessage, spec: FieldSpec, path: string): void {
  for (const key of Object.keys(o)) {
    if (spec.read.has(key) || spec.ignore.has(key) || spec.oneofs.has(key)) continue;
    const v = o[key];
    if (!isSet(v) || spec.enumZero[key] === v) continue;
    fail(at(path, key), 'is not supported by the skein sidecar');
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return typeof v === 'object' ? 'an object' : String(v);
}

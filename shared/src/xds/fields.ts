/**
 * Readers for decoded xDS messages (protos.ts conventions: snake_case keys, enums as strings,
 * int64 as strings, Duration {seconds, nanos}, wrappers {value}, oneof virtual keys, unset fields
 * absent), for decoders that collect issues (issues.ts). A reader never throws: a value of the
 * wrong shape adds an issue `<path>: <problem>` and the reader returns a stand-in ('' / false /
 * undefined / []), so decoding carries on and reports every problem of the resource at once. A
 * decoder's result is used only when no issue was added, so stand-ins never reach the proxy.
 *
 * Unknown fields are rejected (checkFields): every set field a decoder neither reads nor lists
 * as knowingly ignored is an issue, because ignoring it silently would make the proxy behave
 * differently from what the control plane asked for.
 *
 * A field that an encoder wrote with its default value (protobufjs writes explicit zeros, Envoy's
 * C++ encoder does not) means the same as an absent one, so `isSet` treats false, 0, '0', '' and
 * [] as unset. A present message (even `{}`) is set.
 */
import type { Issues } from './issues';

export type XdsMessage = Readonly<Record<string, unknown>>;

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

/** Whether `o[key]` holds a value (null counts as absent, as protobufjs's fromObject reads it). */
export function has(o: XdsMessage, key: string): boolean {
  return o[key] !== undefined && o[key] !== null;
}

/** `v` as a message, or undefined (with an issue) when it is not one. */
export function message(v: unknown, path: string, issues: Issues): XdsMessage | undefined {
  if (isPlainObject(v)) return v;
  issues.add(path, `must be a message, got ${describe(v)}`);
  return undefined;
}

/** The message field `key` of `o`: undefined when absent, or (with an issue) not a message. */
export function optMessage(o: XdsMessage, key: string, path: string, issues: Issues): XdsMessage | undefined {
  return has(o, key) ? message(o[key], at(path, key), issues) : undefined;
}

export function list(o: XdsMessage, key: string, path: string, issues: Issues): readonly unknown[] {
  if (!has(o, key)) return [];
  const v = o[key];
  if (Array.isArray(v)) return v;
  issues.add(at(path, key), `must be a list, got ${describe(v)}`);
  return [];
}

export function str(o: XdsMessage, key: string, path: string, issues: Issues): string {
  if (!has(o, key)) return '';
  const v = o[key];
  if (typeof v === 'string') return v;
  issues.add(at(path, key), `must be a string, got ${describe(v)}`);
  return '';
}

export function bool(o: XdsMessage, key: string, path: string, issues: Issues): boolean {
  if (!has(o, key)) return false;
  const v = o[key];
  if (typeof v === 'boolean') return v;
  issues.add(at(path, key), `must be a bool, got ${describe(v)}`);
  return false;
}

/** A bytes field: undefined when absent, or (with an issue) not bytes. */
export function bytes(o: XdsMessage, key: string, path: string, issues: Issues): Uint8Array | undefined {
  if (!has(o, key)) return undefined;
  const v = o[key];
  if (v instanceof Uint8Array) return v;
  issues.add(at(path, key), 'must be bytes');
  return undefined;
}

/** A uint32 (a decimal string is accepted too), or undefined with an issue. */
export function u32(v: unknown, path: string, issues: Issues): number | undefined {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff) return n;
  issues.add(path, `must be a uint32, got ${describe(v)}`);
  return undefined;
}

/** google.protobuf.UInt32Value: undefined when absent (or invalid, with an issue), 0 for `{}`. */
export function wrappedU32(o: XdsMessage, key: string, path: string, issues: Issues): number | undefined {
  const w = optMessage(o, key, path, issues);
  if (w === undefined) return undefined;
  return has(w, 'value') ? u32(w['value'], at(at(path, key), 'value'), issues) : 0;
}

/** google.protobuf.BoolValue: undefined when absent, false for `{}`. */
export function wrappedBool(o: XdsMessage, key: string, path: string, issues: Issues): boolean | undefined {
  const w = optMessage(o, key, path, issues);
  return w === undefined ? undefined : bool(w, 'value', at(path, key), issues);
}

/**
 * google.protobuf.Duration in whole milliseconds (truncated, as Envoy's durationToMilliseconds);
 * undefined when absent, or (with an issue) invalid or negative.
 */
export function durationMs(o: XdsMessage, key: string, path: string, issues: Issues): number | undefined {
  const d = optMessage(o, key, path, issues);
  if (d === undefined) return undefined;
  const p = at(path, key);
  const rawSeconds = d['seconds'] ?? 0;
  const seconds = typeof rawSeconds === 'string' && /^-?\d+$/.test(rawSeconds) ? Number(rawSeconds) : rawSeconds;
  const nanos = d['nanos'] ?? 0;
  let ok = true;
  if (typeof seconds !== 'number' || !Number.isSafeInteger(seconds)) { issues.add(at(p, 'seconds'), `must be an integer, got ${describe(rawSeconds)}`); ok = false; }
  if (typeof nanos !== 'number' || !Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) { issues.add(at(p, 'nanos'), `must be an integer in [0, 999999999], got ${describe(nanos)}`); ok = false; }
  if (!ok) return undefined;
  if ((seconds as number) < 0) { issues.add(p, 'must not be negative'); return undefined; }
  return (seconds as number) * 1000 + Math.floor((nanos as number) / 1_000_000);
}

/**
 * Which member of a oneof is set: the decoder's virtual key when present (so `prefix: ''` is
 * told apart from an unset path_specifier), else the one member key present. Several present:
 * an issue, and the first is returned.
 */
export function oneofCase(o: XdsMessage, oneof: string, members: readonly string[], path: string, issues: Issues): string | undefined {
  const named = o[oneof];
  if (typeof named === 'string' && named !== '') return named;
  const present = members.filter((m) => has(o, m));
  if (present.length > 1) issues.add(path, `${oneof}: only one of ${present.join(', ')} may be set`);
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
 * Adds an issue for every set field the decoder does not implement (see the header). New
 * upstream fields are rejected too. Returns false if it added any.
 */
export function checkFields(o: XdsMessage, spec: FieldSpec, path: string, issues: Issues): boolean {
  const before = issues.count;
  for (const key of Object.keys(o)) {
    if (spec.read.has(key) || spec.ignore.has(key) || spec.oneofs.has(key)) continue;
    const v = o[key];
    if (!isSet(v) || spec.enumZero[key] === v) continue;
    issues.add(at(path, key), 'is not supported by the skein sidecar');
  }
  return issues.count === before;
}

/** google.protobuf.Duration ({seconds: string, nanos}) to whole milliseconds, unchecked (undefined when absent). */
export function durationToMs(d: { seconds?: string | number; nanos?: number } | undefined): number | undefined {
  if (d === undefined) return undefined;
  return Number(d.seconds ?? 0) * 1000 + Math.floor((d.nanos ?? 0) / 1_000_000);
}

/** A wrapper ({value}) as a number, unchecked; UInt64Value values arrive as decimal strings. */
export function wrapped(w: { value?: number | string } | undefined, dflt?: number): number | undefined {
  if (w === undefined) return dflt;
  return Number(w.value ?? 0);
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return typeof v === 'object' ? 'an object' : String(v);
}

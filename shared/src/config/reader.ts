import type { FieldIssue } from '../errors';
import { parseDuration } from './duration';
import { compileRe2 } from '../re2';
import { CONFIG_LIMITS } from './limits';

/**
 * A cursor over untrusted input that records every problem with its field path and never
 * throws. Validators read with it and build typed values; the caller checks `issues` at the end.
 * The style follows grpc-js's hand-written config validation: explicit, path-prefixed messages.
 */
export class FieldReader {
  constructor(readonly issues: FieldIssue[], readonly resource: string) {}

  fail(path: string, message: string): undefined {
    this.issues.push({ resource: this.resource, path, message });
    return undefined;
  }

  /** An object with only the given keys; unknown keys are errors (they are usually typos). */
  object(v: unknown, path: string, allowed: readonly string[]): Record<string, unknown> | undefined {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return this.fail(path, `must be an object, got ${describe(v)}`);
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) this.fail(join(path, k), `unknown field (allowed: ${allowed.join(', ')})`);
    }
    return o;
  }

  array(v: unknown, path: string, opts: { min?: number; max?: number } = {}): unknown[] | undefined {
    if (!Array.isArray(v)) return this.fail(path, `must be a list, got ${describe(v)}`);
    if (opts.min !== undefined && v.length < opts.min) return this.fail(path, `must have at least ${opts.min} item${opts.min === 1 ? '' : 's'}`);
    if (opts.max !== undefined && v.length > opts.max) return this.fail(path, `must have at most ${opts.max} items`);
    return v;
  }

  string(v: unknown, path: string, opts: { pattern?: RegExp; patternHint?: string; maxLength?: number; minLength?: number } = {}): string | undefined {
    if (typeof v !== 'string') return this.fail(path, `must be a string, got ${describe(v)}`);
    const min = opts.minLength ?? 1;
    if (v.length < min) return this.fail(path, 'must not be empty');
    if (opts.maxLength !== undefined && v.length > opts.maxLength) return this.fail(path, `must be at most ${opts.maxLength} characters`);
    if (opts.pattern !== undefined && !opts.pattern.test(v)) return this.fail(path, `"${v}" ${opts.patternHint ?? `must match ${opts.pattern}`}`);
    return v;
  }

  oneOf<T extends string>(v: unknown, path: string, values: readonly T[]): T | undefined {
    if (typeof v !== 'string' || !values.includes(v as T)) return this.fail(path, `must be one of ${values.join(', ')}, got ${describe(v)}`);
    return v as T;
  }

  int(v: unknown, path: string, opts: { min?: number; max?: number } = {}): number | undefined {
    if (typeof v !== 'number' || !Number.isInteger(v)) return this.fail(path, `must be an integer, got ${describe(v)}`);
    if (opts.min !== undefined && v < opts.min) return this.fail(path, `must be >= ${opts.min}`);
    if (opts.max !== undefined && v > opts.max) return this.fail(path, `must be <= ${opts.max}`);
    return v;
  }

  number(v: unknown, path: string, opts: { min?: number; max?: number } = {}): number | undefined {
    if (typeof v !== 'number' || !Number.isFinite(v)) return this.fail(path, `must be a number, got ${describe(v)}`);
    if (opts.min !== undefined && v < opts.min) return this.fail(path, `must be >= ${opts.min}`);
    if (opts.max !== undefined && v > opts.max) return this.fail(path, `must be <= ${opts.max}`);
    return v;
  }

  bool(v: unknown, path: string): boolean | undefined {
    if (typeof v !== 'boolean') return this.fail(path, `must be true or false, got ${describe(v)}`);
    return v;
  }

  /** A duration string ("250ms", "5s"), returned in milliseconds. */
  duration(v: unknown, path: string, opts: { minMs?: number; maxMs?: number } = {}): number | undefined {
    if (typeof v !== 'string') return this.fail(path, `must be a duration string like "250ms" or "5s", got ${describe(v)}`);
    const ms = parseDuration(v);
    if (typeof ms !== 'number') return this.fail(path, ms.error);
    if (opts.minMs !== undefined && ms < opts.minMs) return this.fail(path, `must be at least ${opts.minMs}ms`);
    if (opts.maxMs !== undefined && ms > opts.maxMs) return this.fail(path, `must be at most ${opts.maxMs}ms`);
    return ms;
  }

  /**
   * A map of string to string, e.g. labels, of at most `maxEntries` entries (checked before any
   * entry is read), with keys and values within their lengths.
   */
  stringMap(v: unknown, path: string, limits: { maxEntries: number; maxKeyLength: number; maxValueLength: number }, keyPattern?: RegExp): Record<string, string> | undefined {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return this.fail(path, `must be a map of strings, got ${describe(v)}`);
    const keys = Object.keys(v);
    if (keys.length > limits.maxEntries) return this.fail(path, `must have at most ${limits.maxEntries} entries, got ${keys.length}`);
    const out: Record<string, string> = {};
    for (const k of keys) {
      const val = (v as Record<string, unknown>)[k];
      if (k.length > limits.maxKeyLength) { this.fail(join(path, describe(k).slice(1, -1)), `key must be at most ${limits.maxKeyLength} characters`); continue; }
      if (keyPattern !== undefined && !keyPattern.test(k)) { this.fail(join(path, k), `key "${k}" must match ${keyPattern}`); continue; }
      if (typeof val !== 'string') { this.fail(join(path, k), `must be a string, got ${describe(val)}`); continue; }
      if (val.length > limits.maxValueLength) { this.fail(join(path, k), `must be at most ${limits.maxValueLength} characters`); continue; }
      out[k] = val;
    }
    return out;
  }

  /** A regular expression: RE2 syntax, within RE2's program-size cap (shared/src/re2.ts), as every proxy will compile it. */
  regex(v: unknown, path: string): string | undefined {
    const s = this.string(v, path, { maxLength: 1024 });
    if (s === undefined) return undefined;
    const re = compileRe2(s);
    if ('error' in re) return this.fail(path, re.error);
    return s;
  }
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}...` : v}"`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

/** DNS-1123 label: lower-case alphanumerics and '-', at most 63 characters. Used for all names. */
export const NAME_PATTERN = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const NAME_HINT = "must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";
/** Labels maps (metadata, subset and endpoint labels): their size and key and value lengths. */
export const LABEL_MAP = { maxEntries: CONFIG_LIMITS.labels, maxKeyLength: CONFIG_LIMITS.labelKeyLength, maxValueLength: CONFIG_LIMITS.labelValueLength } as const;
/** metadata.annotations. */
export const ANNOTATION_MAP = { maxEntries: CONFIG_LIMITS.annotations, maxKeyLength: CONFIG_LIMITS.labelKeyLength, maxValueLength: CONFIG_LIMITS.annotationValueLength } as const;
/** Label keys: Kubernetes-style, optional prefix. */
export const LABEL_KEY_PATTERN = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** HTTP header names (lower-case token characters; pseudo-headers like :method allowed). */
export const HEADER_NAME_PATTERN = /^:?[a-z0-9!#$%&'*+.^_`|~-]+$/;

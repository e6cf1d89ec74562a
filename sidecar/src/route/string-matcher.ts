/**
 * envoy.type.matcher.v3.StringMatcher and RegexMatcher, compiled once at config time.
 *
 * - safe_regex is RE2 in Envoy and must match the WHOLE string. We compile it with RE2 semantics
 *   (shared/src/re2.ts: linear-time matching, so no pattern can hang the proxy; RE2's syntax, so
 *   lookaround and backreferences are NACKed as Envoy would; a program-size cap like Envoy's
 *   max_program_size, 100).
 * - ignore_case is ASCII-only, as Envoy's (absl::AsciiStrToLower), and compares without
 *   allocating. It has no effect on safe_regex, as in Envoy.
 */
import { at, checkFields, fieldSpec, message, oneofCase, str } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';
import { compileRe2 } from '../../../shared/src/re2';
import type { FullMatchRegex } from '../../../shared/src/re2';

export type StringMatchKind = 'exact' | 'prefix' | 'suffix' | 'contains' | 'safe_regex';

export class StringMatcher {
  /** `value` is lower-cased when ignoreCase. */
  constructor(
    readonly kind: StringMatchKind,
    readonly value: string,
    readonly ignoreCase: boolean,
    readonly regex: FullMatchRegex | undefined,
  ) {
    Object.freeze(this);
  }

  matches(s: string): boolean {
    const v = this.value;
    switch (this.kind) {
      case 'exact': return this.ignoreCase ? s.length === v.length && regionEqualsLower(s, 0, v) : s === v;
      case 'prefix': return this.ignoreCase ? s.length >= v.length && regionEqualsLower(s, 0, v) : s.startsWith(v);
      case 'suffix': return this.ignoreCase ? s.length >= v.length && regionEqualsLower(s, s.length - v.length, v) : s.endsWith(v);
      case 'contains': return this.ignoreCase ? containsLower(s, v) : s.includes(v);
      case 'safe_regex': return this.regex!.test(s);
    }
  }
}

const STRING_MATCHER = fieldSpec(['exact', 'prefix', 'suffix', 'contains', 'safe_regex', 'ignore_case'], [], ['match_pattern']);
const PATTERNS = ['exact', 'prefix', 'suffix', 'contains', 'safe_regex'] as const;

/** A StringMatcher, or undefined when it added an issue. */
export function parseStringMatcher(raw: unknown, path: string, issues: Issues): StringMatcher | undefined {
  const o = message(raw, path, issues);
  if (o === undefined) return undefined;
  const before = issues.count;
  checkFields(o, STRING_MATCHER, path, issues);
  const kind = oneofCase(o, 'match_pattern', PATTERNS, path, issues) as StringMatchKind | undefined;
  if (kind === undefined) { issues.add(path, 'match_pattern is required: one of exact, prefix, suffix, contains, safe_regex'); return undefined; }
  if (!(PATTERNS as readonly string[]).includes(kind)) { issues.add(at(path, kind), 'is not supported by the skein sidecar'); return undefined; }
  const ignoreCase = o['ignore_case'] === true;
  let matcher: StringMatcher | undefined;
  if (kind === 'safe_regex') {
    const re = compileRegex(o['safe_regex'], at(path, 'safe_regex'), issues);
    if (re !== undefined) matcher = new StringMatcher(kind, '', false, re);
  } else {
    const read = issues.count;
    const value = str(o, kind, path, issues);
    if (issues.count !== read) return undefined;
    if (value === '' && kind !== 'exact') issues.add(at(path, kind), 'must not be empty');
    else matcher = new StringMatcher(kind, ignoreCase ? asciiLower(value) : value, ignoreCase, undefined);
  }
  return issues.count === before ? matcher : undefined;
}

const REGEX_MATCHER = fieldSpec(['regex']);

/** envoy.type.matcher.v3.RegexMatcher -> a full-match RE2 pattern, or undefined when it added an issue. */
export function compileRegex(raw: unknown, path: string, issues: Issues): FullMatchRegex | undefined {
  const o = message(raw, path, issues);
  if (o === undefined) return undefined;
  const before = issues.count;
  checkFields(o, REGEX_MATCHER, path, issues);
  const read = issues.count;
  const source = str(o, 'regex', path, issues);
  if (source === '') {
    if (issues.count === read) issues.add(at(path, 'regex'), 'must not be empty');
    return undefined;
  }
  const re = compileRe2(source);
  if ('error' in re) { issues.add(at(path, 'regex'), re.error); return undefined; }
  return issues.count === before ? re : undefined;
}

export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** s[from, from + lower.length) equals `lower` ignoring ASCII case; `lower` is already lower-case. */
export function regionEqualsLower(s: string, from: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = s.charCodeAt(from + i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

function containsLower(s: string, lower: string): boolean {
  for (let from = 0; from + lower.length <= s.length; from++) if (regionEqualsLower(s, from, lower)) return true;
  return false;
}

/**
 * envoy.type.matcher.v3.StringMatcher and RegexMatcher, compiled once at config time.
 *
 * - safe_regex is RE2 in Envoy and must match the WHOLE string; we compile it to a JS RegExp
 *   anchored as `^(?:re)$`. RE2 rejects lookaround and backreferences, so we reject them too
 *   (a config Envoy would NACK is NACKed here as well), and we reject RE2-only escapes that JS
 *   would silently read as literals (\A \z \Q \E \C \p \P).
 * - ignore_case is ASCII-only, as Envoy's (absl::AsciiStrToLower), and compares without
 *   allocating. It has no effect on safe_regex, as in Envoy.
 */
import { at, checkFields, fail, fieldSpec, message, oneofCase, str } from './xds-fields';
import type { XdsMessage } from './xds-fields';

export type StringMatchKind = 'exact' | 'prefix' | 'suffix' | 'contains' | 'safe_regex';

export class StringMatcher {
  /** `value` is lower-cased when ignoreCase. */
  constructor(
    readonly kind: StringMatchKind,
    readonly value: string,
    readonly ignoreCase: boolean,
    readonly regex: RegExp | undefined,
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

export function parseStringMatcher(raw: unknown, path: string): StringMatcher {
  const o = message(raw, path);
  checkFields(o, STRING_MATCHER, path);
  const kind = oneofCase(o, 'match_pattern', PATTERNS, path) as StringMatchKind | undefined;
  if (kind === undefined) fail(path, 'match_pattern is required: one of exact, prefix, suffix, contains, safe_regex');
  if (!(PATTERNS as readonly string[]).includes(kind)) fail(at(path, kind), 'is not supported by the skein sidecar');
  const ignoreCase = o['ignore_case'] === true;
  if (kind === 'safe_regex') return new StringMatcher(kind, '', false, compileRegex(o['safe_regex'], at(path, 'safe_regex')));
  const value = str(o, kind, path);
  if (value === '' && kind !== 'exact') fail(at(path, kind), 'must not be empty');
  return new StringMatcher(kind, ignoreCase ? asciiLower(value) : value, ignoreCase, undefined);
}

const REGEX_MATCHER = fieldSpec(['regex']);

/** envoy.type.matcher.v3.RegexMatcher -> a full-match RegExp. */
export function compileRegex(raw: unknown, path: string): RegExp {
  const o: XdsMessage = message(raw, path);
  checkFields(o, REGEX_MATCHER, path);
  const source = str(o, 'regex', path);
  if (source === '') fail(at(path, 'regex'), 'must not be empty');
  const problem = re2Problem(source);
  if (problem !== undefined) fail(at(path, 'regex'), `${problem} (RE2 syntax): ${JSON.stringify(source)}`);
  try {
    return new RegExp(`^(?:${source})$`);
  } catch (e) {
    return fail(at(path, 'regex'), `invalid regex ${JSON.stringify(source)}: ${(e as Error).message}`);
  }
}

/** Constructs RE2 does not accept, or reads differently from JS. */
function re2Problem(re: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < re.length; i++) {
    const c = re[i];
    if (c === '\\') {
      const n = re[i + 1];
      if (n === undefined) return 'trailing backslash';
      if (!inClass && n >= '1' && n <= '9') return 'backreferences are not supported';
      if (!inClass && n === 'k' && re[i + 2] === '<') return 'named backreferences are not supported';
      if ('AzZQECpP'.includes(n)) return `\\${n} is not supported`;
      i++;
    } else if (inClass) {
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
      if (re[i + 1] === '^') i++;
      if (re[i + 1] === ']') i++;
    } else if (c === '(' && re[i + 1] === '?') {
      const n = re[i + 2];
      if (n === '=' || n === '!') return 'lookahead is not supported';
      if (n === '<' && (re[i + 3] === '=' || re[i + 3] === '!')) return 'lookbehind is not supported';
    }
  }
  return undefined;
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

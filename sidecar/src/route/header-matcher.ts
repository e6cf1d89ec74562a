/**
 * envoy.config.route.v3.HeaderMatcher, compiled once. Semantics follow Envoy's HeaderUtility:
 *
 * - The name is lower-cased. `:method`, `:authority` and `:path` read the request's method,
 *   authority and full path (query included); other names read the request headers. A header
 *   sent several times is matched as its values joined with ','.
 * - A MISSING header never matches a value matcher, even inverted, unless
 *   treat_missing_header_as_empty (then it is matched as ''). present_match: X matches when
 *   (header is present) == X; invert_match flips that, so inverted present_match: true means
 *   "absent".
 * - No specifier at all means present_match: true, as in Envoy.
 * - The deprecated exact_match / safe_regex_match / prefix_match / suffix_match / contains_match
 *   are accepted (our proto subset no longer carries them, other encoders may); a legacy
 *   exact_match of '' matches any present value, as in Envoy. range_match is rejected.
 */
import { StringMatcher, compileRegex, parseStringMatcher } from './string-matcher';
import { at, bool, checkFields, fieldSpec, message, oneofCase, str } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';
import type { XdsMessage } from '../../../shared/src/xds/fields';

/** Request headers as Node gives them (IncomingHttpHeaders): lower-case names. */
export type RequestHeaders = { readonly [name: string]: string | string[] | undefined };

const FROM_HEADERS = 0;
const FROM_METHOD = 1;
const FROM_AUTHORITY = 2;
const FROM_PATH = 3;

export class HeaderMatcher {
  constructor(
    readonly name: string,
    private readonly source: number,
    /** undefined: a presence matcher. */
    readonly string: StringMatcher | undefined,
    readonly present: boolean,
    readonly invert: boolean,
    readonly treatMissingAsEmpty: boolean,
  ) {
    Object.freeze(this);
  }

  matches(method: string, authority: string, path: string, headers: RequestHeaders): boolean {
    let value: string | undefined;
    switch (this.source) {
      case FROM_METHOD: value = method; break;
      case FROM_AUTHORITY: value = authority; break;
      case FROM_PATH: value = path; break;
      default: {
        const v = headers[this.name];
        value = v === undefined || typeof v === 'string' ? v : v.join(',');
      }
    }
    if (this.string === undefined) return ((value !== undefined) === this.present) !== this.invert;
    if (value === undefined) {
      if (!this.treatMissingAsEmpty) return false;
      value = '';
    }
    return this.string.matches(value) !== this.invert;
  }
}

const HEADER_MATCHER = fieldSpec(
  ['name', 'present_match', 'string_match', 'invert_match', 'treat_missing_header_as_empty',
    'exact_match', 'safe_regex_match', 'prefix_match', 'suffix_match', 'contains_match'],
  [],
  ['header_match_specifier'],
);
const SPECIFIERS = ['present_match', 'string_match', 'range_match', 'exact_match', 'safe_regex_match', 'prefix_match', 'suffix_match', 'contains_match'] as const;
const TOKEN = /^:?[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** A HeaderMatcher, or undefined when it added an issue. */
export function parseHeaderMatcher(raw: unknown, path: string, issues: Issues): HeaderMatcher | undefined {
  const o = message(raw, path, issues);
  if (o === undefined) return undefined;
  const before = issues.count;
  checkFields(o, HEADER_MATCHER, path, issues);
  const read = issues.count;
  const name = str(o, 'name', path, issues).toLowerCase();
  if (issues.count === read && !TOKEN.test(name)) issues.add(at(path, 'name'), name === '' ? 'is required' : `${JSON.stringify(name)} is not a valid header name`);
  const source = name === ':method' ? FROM_METHOD : name === ':authority' ? FROM_AUTHORITY : name === ':path' ? FROM_PATH : FROM_HEADERS;
  const invert = bool(o, 'invert_match', path, issues);
  const treatMissing = bool(o, 'treat_missing_header_as_empty', path, issues);
  const which = oneofCase(o, 'header_match_specifier', SPECIFIERS, path, issues);
  const made = specifier(o, which, path, issues);
  if (made === undefined || issues.count !== before) return undefined;
  return new HeaderMatcher(name, source, made.string, made.present, invert, treatMissing);
}

/** What the header_match_specifier `which` matches: a string matcher, or presence. */
function specifier(o: XdsMessage, which: string | undefined, path: string, issues: Issues): { string?: StringMatcher; present: boolean } | undefined {
  switch (which) {
    case undefined: return { present: true };
    case 'present_match': return { present: bool(o, 'present_match', path, issues) };
    case 'string_match': {
      const m = parseStringMatcher(o['string_match'], at(path, 'string_match'), issues);
      return m === undefined ? undefined : { string: m, present: true };
    }
    case 'exact_match': {
      const v = str(o, which, path, issues);
      return { string: v === '' ? new StringMatcher('prefix', '', false, undefined) : new StringMatcher('exact', v, false, undefined), present: true };
    }
    case 'prefix_match':
    case 'suffix_match':
    case 'contains_match': {
      const read = issues.count;
      const v = str(o, which, path, issues);
      if (issues.count !== read) return undefined;
      if (v === '') { issues.add(at(path, which), 'must not be empty'); return undefined; }
      return { string: new StringMatcher(which.slice(0, -'_match'.length) as 'prefix' | 'suffix' | 'contains', v, false, undefined), present: true };
    }
    case 'safe_regex_match': {
      const re = compileRegex(o[which], at(path, which), issues);
      return re === undefined ? undefined : { string: new StringMatcher('safe_regex', '', false, re), present: true };
    }
    default:
      issues.add(at(path, which), 'is not supported by the skein sidecar');
      return undefined;
  }
}

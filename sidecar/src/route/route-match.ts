/**
 * envoy.config.route.v3.RouteMatch, compiled once. All conditions must hold:
 * - the path specifier, on the path without its query string and fragment:
 *   prefix, path (exact), safe_regex (full match), path_separated_prefix (the path equals the
 *   prefix or continues with '/'); case_sensitive (default true) applies to all but safe_regex;
 * - every header matcher (header-matcher.ts);
 * - grpc: the request's content-type is application/grpc, optionally followed by '+' or ';'
 *   (isGrpcContentType, Envoy's Grpc::Common::hasGrpcContentType; application/grpc-web does not match).
 * query_parameters, runtime_fraction, tls_context, connect_matcher and path_match_policy are
 * rejected.
 */
import type { FullMatchRegex } from '../../../shared/src/re2';
import { isGrpcContentType } from './grpc-content-type';
import { HeaderMatcher, parseHeaderMatcher } from './header-matcher';
import type { RequestHeaders } from './header-matcher';
import { asciiLower, compileRegex, regionEqualsLower } from './string-matcher';
import { at, checkFields, fieldSpec, has, list, message, oneofCase, str, wrappedBool } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';

const PREFIX = 0;
const EXACT = 1;
const REGEX = 2;
const SEPARATED_PREFIX = 3;

export class RouteMatcher {
  constructor(
    private readonly kind: number,
    /** Lower-cased when !caseSensitive. */
    private readonly value: string,
    private readonly caseSensitive: boolean,
    private readonly regex: FullMatchRegex | undefined,
    private readonly headers: readonly HeaderMatcher[],
    private readonly grpc: boolean,
  ) {
    Object.freeze(this);
  }

  /** `end`: where the path proper ends (the first '?' or '#', else path.length). */
  matches(path: string, end: number, method: string, authority: string, headers: RequestHeaders): boolean {
    if (!this.pathMatches(path, end)) return false;
    if (this.grpc && !isGrpcContentType(headers['content-type'])) return false;
    const hs = this.headers;
    for (let i = 0; i < hs.length; i++) if (!hs[i].matches(method, authority, path, headers)) return false;
    return true;
  }

  private pathMatches(path: string, end: number): boolean {
    const v = this.value;
    switch (this.kind) {
      case PREFIX: return v.length <= end && this.startsWith(path, v);
      case EXACT: return v.length === end && this.startsWith(path, v);
      case SEPARATED_PREFIX: return v.length <= end && (v.length === end || path.charCodeAt(v.length) === 47 /* / */) && this.startsWith(path, v);
      default: return this.regex!.test(end === path.length ? path : path.slice(0, end));
    }
  }

  private startsWith(path: string, v: string): boolean {
    return this.caseSensitive ? path.startsWith(v) : regionEqualsLower(path, 0, v);
  }
}

/** Where the path ends: the first '?' or '#'; no allocation. */
export function pathEnd(path: string): number {
  const q = path.indexOf('?');
  const h = path.indexOf('#');
  if (q < 0) return h < 0 ? path.length : h;
  return h < 0 || q < h ? q : h;
}

const ROUTE_MATCH = fieldSpec(['prefix', 'path', 'safe_regex', 'path_separated_prefix', 'case_sensitive', 'headers', 'grpc'], [], ['path_specifier']);
const PATH_SPECIFIERS = ['prefix', 'path', 'safe_regex', 'path_separated_prefix', 'connect_matcher', 'path_match_policy'] as const;
const GRPC_OPTIONS = fieldSpec([]);

/** A RouteMatcher, or undefined when it added an issue. */
export function parseRouteMatch(raw: unknown, path: string, issues: Issues): RouteMatcher | undefined {
  const o = message(raw, path, issues);
  if (o === undefined) return undefined;
  const before = issues.count;
  checkFields(o, ROUTE_MATCH, path, issues);
  const which = oneofCase(o, 'path_specifier', PATH_SPECIFIERS, path, issues);
  const caseSensitive = wrappedBool(o, 'case_sensitive', path, issues) ?? true;
  const headers = list(o, 'headers', path, issues).map((h, i) => parseHeaderMatcher(h, at(at(path, 'headers'), i), issues));
  if (has(o, 'grpc')) {
    const gp = at(path, 'grpc');
    const g = message(o['grpc'], gp, issues);
    if (g !== undefined) checkFields(g, GRPC_OPTIONS, gp, issues);
  }
  let kind: number | undefined;
  let value = '';
  let regex: FullMatchRegex | undefined;
  switch (which) {
    case 'prefix': kind = PREFIX; value = str(o, which, path, issues); break;
    case 'path': kind = EXACT; value = str(o, which, path, issues); break;
    case 'safe_regex': kind = REGEX; regex = compileRegex(o[which], at(path, which), issues); break;
    case 'path_separated_prefix': {
      kind = SEPARATED_PREFIX;
      const read = issues.count;
      value = str(o, which, path, issues);
      if (issues.count === read && !/^[^?#]*[^?#/]$/.test(value)) issues.add(at(path, which), `${JSON.stringify(value)} must be non-empty, contain no '?' or '#', and not end with '/'`);
      break;
    }
    case undefined: issues.add(path, 'path_specifier is required: prefix, path, safe_regex or path_separated_prefix'); break;
    default: issues.add(at(path, which), 'is not supported by the skein sidecar');
  }
  if (kind === undefined || issues.count !== before) return undefined;
  const grpc = has(o, 'grpc');
  return new RouteMatcher(kind, caseSensitive || kind === REGEX ? value : asciiLower(value), caseSensitive, regex, Object.freeze(headers as HeaderMatcher[]), grpc);
}

/**
 * Envoy's RBAC rules (envoy.config.rbac.v3.RBAC), decoded and compiled into an immutable matcher
 * tree, and the decision for one request. The decoder takes `(…, path, issues)` like every xDS
 * decoder and rejects, naming the field, what it does not implement: action LOG, audit logging,
 * conditions, and principal and permission kinds other than those below.
 *
 * Principals: any; authenticated (principal_name unset: any verified peer; else a string matcher
 * on the peer's SPIFFE ID, its URI SAN); and_ids, or_ids, not_id. A plaintext connection has no
 * peer: it matches `any` and nothing else (a not_id of something it does not match).
 * Permissions: any; url_path (a string matcher on the path without its query); header `:method`
 * with string_match; and_rules, or_rules, not_rule.
 * String matchers: exact, prefix, suffix, contains (ignore_case and safe_regex are rejected).
 *
 * Policies are evaluated in lexicographic order of their names (as Envoy does); the first that
 * matches decides. Evaluation walks the tree without allocating.
 */
import { at, checkFields, fieldSpec, has, list, message, oneofCase, optMessage, str } from '../../../shared/src/xds/fields';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';

export type StringMatch = { readonly kind: 'exact' | 'prefix' | 'suffix' | 'contains'; readonly value: string };

export type Principal =
  | { readonly kind: 'any' }
  | { readonly kind: 'authenticated'; readonly name: StringMatch | undefined }
  | { readonly kind: 'and' | 'or'; readonly ids: readonly Principal[] }
  | { readonly kind: 'not'; readonly id: Principal };

export type Permission =
  | { readonly kind: 'any' }
  | { readonly kind: 'path'; readonly match: StringMatch }
  | { readonly kind: 'method'; readonly match: StringMatch }
  | { readonly kind: 'and' | 'or'; readonly rules: readonly Permission[] }
  | { readonly kind: 'not'; readonly rule: Permission };

export interface RbacPolicy {
  readonly name: string;
  readonly permissions: readonly Permission[];
  readonly principals: readonly Principal[];
}

/** One RBAC filter's rules: ALLOW (a request is allowed iff a policy matches) or DENY (denied iff one does). */
export interface RbacRules {
  readonly action: 'ALLOW' | 'DENY';
  /** In lexicographic order of name. */
  readonly policies: readonly RbacPolicy[];
}

/**
 * The first policy (by name) that matches a request, or -1: `path` is :path as received (with
 * its query), `principal` the verified peer's SPIFFE ID (undefined for a plaintext connection).
 */
export function matchingPolicy(rules: RbacRules, method: string, path: string, principal: string | undefined): number {
  const end = pathEnd(path);
  const policies = rules.policies;
  for (let i = 0; i < policies.length; i++) {
    const p = policies[i]!;
    if (anyPrincipal(p.principals, principal) && anyPermission(p.permissions, method, path, end)) return i;
  }
  return -1;
}

/** Where the path ends: before its query or fragment. */
function pathEnd(path: string): number {
  const q = path.indexOf('?');
  const h = path.indexOf('#');
  if (q < 0) return h < 0 ? path.length : h;
  return h < 0 || q < h ? q : h;
}

function anyPrincipal(ids: readonly Principal[], principal: string | undefined): boolean {
  for (let i = 0; i < ids.length; i++) if (principalMatches(ids[i]!, principal)) return true;
  return false;
}

function principalMatches(p: Principal, principal: string | undefined): boolean {
  switch (p.kind) {
    case 'any': return true;
    case 'authenticated': return principal !== undefined && (p.name === undefined || stringMatches(p.name, principal, principal.length));
    case 'or': return anyPrincipal(p.ids, principal);
    case 'and':
      for (let i = 0; i < p.ids.length; i++) if (!principalMatches(p.ids[i]!, principal)) return false;
      return true;
    case 'not': return !principalMatches(p.id, principal);
  }
}

function anyPermission(rules: readonly Permission[], method: string, path: string, end: number): boolean {
  for (let i = 0; i < rules.length; i++) if (permissionMatches(rules[i]!, method, path, end)) return true;
  return false;
}

function permissionMatches(p: Permission, method: string, path: string, end: number): boolean {
  switch (p.kind) {
    case 'any': return true;
    case 'path': return stringMatches(p.match, path, end);
    case 'method': return stringMatches(p.match, method, method.length);
    case 'or': return anyPermission(p.rules, method, path, end);
    case 'and':
      for (let i = 0; i < p.rules.length; i++) if (!permissionMatches(p.rules[i]!, method, path, end)) return false;
      return true;
    case 'not': return !permissionMatches(p.rule, method, path, end);
  }
}

/** Matches `s.slice(0, end)` without slicing. */
function stringMatches(m: StringMatch, s: string, end: number): boolean {
  const v = m.value;
  switch (m.kind) {
    case 'exact': return end === v.length && s.startsWith(v);
    case 'prefix': return v.length <= end && s.startsWith(v);
    case 'suffix': return v.length <= end && s.endsWith(v, end);
    case 'contains': { const i = s.indexOf(v); return i >= 0 && i + v.length <= end; }
  }
}

// --- decoding -----------------------------------------------------------------------------------

const RBAC = fieldSpec(['action', 'policies'], [], [], { action: 'ALLOW' });
const POLICY = fieldSpec(['permissions', 'principals'], [], ['expression_specifier']);
const PRINCIPAL_KINDS = ['and_ids', 'or_ids', 'any', 'authenticated', 'not_id'] as const;
const PRINCIPAL = fieldSpec(PRINCIPAL_KINDS, [], ['identifier']);
const PRINCIPAL_SET = fieldSpec(['ids']);
const AUTHENTICATED = fieldSpec(['principal_name']);
const PERMISSION_KINDS = ['and_rules', 'or_rules', 'any', 'header', 'url_path', 'not_rule'] as const;
const PERMISSION = fieldSpec(PERMISSION_KINDS, [], ['rule']);
const PERMISSION_SET = fieldSpec(['rules']);
const PATH_MATCHER = fieldSpec(['path'], [], ['rule']);
const HEADER_MATCHER = fieldSpec(['name', 'string_match'], [], ['header_match_specifier']);
const STRING_KINDS = ['exact', 'prefix', 'suffix', 'contains'] as const;
const STRING_MATCHER = fieldSpec(STRING_KINDS, [], ['match_pattern']);
/** Nesting of and/or/not sets: plenty for any real policy, and a bound on the evaluation's recursion. */
const MAX_DEPTH = 16;

/** envoy.config.rbac.v3.RBAC -> RbacRules, or undefined when it added an issue. */
export function decodeRbacRules(r: XdsMessage, path: string, issues: Issues): RbacRules | undefined {
  const before = issues.count;
  checkFields(r, RBAC, path, issues);
  const action = r['action'] ?? 'ALLOW';
  if (action !== 'ALLOW' && action !== 'DENY') issues.add(at(path, 'action'), `only ALLOW and DENY are supported by the skein sidecar, got ${String(action)}`);
  const out: RbacPolicy[] = [];
  const raw = optMessage(r, 'policies', path, issues) ?? {};
  for (const name of Object.keys(raw).sort()) {
    const p = message(raw[name], at(at(path, 'policies'), name), issues);
    if (p !== undefined) {
      const policy = decodePolicy(name, p, `${path}.policies[${JSON.stringify(name)}]`, issues);
      if (policy !== undefined) out.push(policy);
    }
  }
  if (issues.count !== before) return undefined;
  return Object.freeze({ action: action as RbacRules['action'], policies: Object.freeze(out) });
}

function decodePolicy(name: string, p: XdsMessage, path: string, issues: Issues): RbacPolicy | undefined {
  const before = issues.count;
  checkFields(p, POLICY, path, issues);
  const permissions = list(p, 'permissions', path, issues).map((v, i) => permission(v, at(at(path, 'permissions'), i), 0, issues));
  const principals = list(p, 'principals', path, issues).map((v, i) => principal(v, at(at(path, 'principals'), i), 0, issues));
  if (permissions.length === 0 && !has(p, 'permissions')) issues.add(at(path, 'permissions'), 'must have at least 1 item');
  if (principals.length === 0 && !has(p, 'principals')) issues.add(at(path, 'principals'), 'must have at least 1 item');
  if (issues.count !== before) return undefined;
  return Object.freeze({ name, permissions: Object.freeze(permissions as Permission[]), principals: Object.freeze(principals as Principal[]) });
}

function principal(v: unknown, path: string, depth: number, issues: Issues): Principal | undefined {
  const p = message(v, path, issues);
  if (p === undefined) return undefined;
  if (depth > MAX_DEPTH) { issues.add(path, `nested deeper than ${MAX_DEPTH} levels`); return undefined; }
  if (!checkFields(p, PRINCIPAL, path, issues)) return undefined;
  const kind = oneofCase(p, 'identifier', PRINCIPAL_KINDS, path, issues);
  switch (kind) {
    case 'any': return p['any'] === true ? ANY : (issues.add(at(path, 'any'), 'must be true'), undefined);
    case 'authenticated': {
      const a = optMessage(p, 'authenticated', path, issues);
      if (a === undefined || !checkFields(a, AUTHENTICATED, at(path, 'authenticated'), issues)) return undefined;
      if (!has(a, 'principal_name')) return Object.freeze({ kind, name: undefined });
      const name = stringMatch(a['principal_name'], at(at(path, 'authenticated'), 'principal_name'), issues);
      return name === undefined ? undefined : Object.freeze({ kind, name });
    }
    case 'and_ids':
    case 'or_ids': {
      const set = optMessage(p, kind, path, issues);
      if (set === undefined || !checkFields(set, PRINCIPAL_SET, at(path, kind), issues)) return undefined;
      const ids = list(set, 'ids', at(path, kind), issues).map((x, i) => principal(x, at(at(at(path, kind), 'ids'), i), depth + 1, issues));
      if (ids.length === 0) { issues.add(at(at(path, kind), 'ids'), 'must have at least 1 item'); return undefined; }
      return ids.every((x) => x !== undefined) ? Object.freeze({ kind: kind === 'and_ids' ? 'and' : 'or', ids: Object.freeze(ids as Principal[]) }) : undefined;
    }
    case 'not_id': {
      const id = principal(p['not_id'], at(path, 'not_id'), depth + 1, issues);
      return id === undefined ? undefined : Object.freeze({ kind: 'not', id });
    }
    default: issues.add(path, `identifier is required: one of ${PRINCIPAL_KINDS.join(', ')}`); return undefined;
  }
}

function permission(v: unknown, path: string, depth: number, issues: Issues): Permission | undefined {
  const p = message(v, path, issues);
  if (p === undefined) return undefined;
  if (depth > MAX_DEPTH) { issues.add(path, `nested deeper than ${MAX_DEPTH} levels`); return undefined; }
  if (!checkFields(p, PERMISSION, path, issues)) return undefined;
  const kind = oneofCase(p, 'rule', PERMISSION_KINDS, path, issues);
  switch (kind) {
    case 'any': return p['any'] === true ? ANY : (issues.add(at(path, 'any'), 'must be true'), undefined);
    case 'url_path': {
      const m = optMessage(p, 'url_path', path, issues);
      const mp = at(path, 'url_path');
      if (m === undefined || !checkFields(m, PATH_MATCHER, mp, issues)) return undefined;
      if (!has(m, 'path')) { issues.add(at(mp, 'path'), 'is required'); return undefined; }
      const match = stringMatch(m['path'], at(mp, 'path'), issues);
      return match === undefined ? undefined : Object.freeze({ kind: 'path', match });
    }
    case 'header': {
      const h = optMessage(p, 'header', path, issues);
      const hp = at(path, 'header');
      if (h === undefined || !checkFields(h, HEADER_MATCHER, hp, issues)) return undefined;
      const name = str(h, 'name', hp, issues);
      if (name !== ':method') { issues.add(at(hp, 'name'), `only :method is supported by the skein sidecar, got ${JSON.stringify(name)}`); return undefined; }
      if (!has(h, 'string_match')) { issues.add(at(hp, 'string_match'), 'is required (the only header matcher supported by the skein sidecar)'); return undefined; }
      const match = stringMatch(h['string_match'], at(hp, 'string_match'), issues);
      return match === undefined ? undefined : Object.freeze({ kind: 'method', match });
    }
    case 'and_rules':
    case 'or_rules': {
      const set = optMessage(p, kind, path, issues);
      if (set === undefined || !checkFields(set, PERMISSION_SET, at(path, kind), issues)) return undefined;
      const rules = list(set, 'rules', at(path, kind), issues).map((x, i) => permission(x, at(at(at(path, kind), 'rules'), i), depth + 1, issues));
      if (rules.length === 0) { issues.add(at(at(path, kind), 'rules'), 'must have at least 1 item'); return undefined; }
      return rules.every((x) => x !== undefined) ? Object.freeze({ kind: kind === 'and_rules' ? 'and' : 'or', rules: Object.freeze(rules as Permission[]) }) : undefined;
    }
    case 'not_rule': {
      const rule = permission(p['not_rule'], at(path, 'not_rule'), depth + 1, issues);
      return rule === undefined ? undefined : Object.freeze({ kind: 'not', rule });
    }
    default: issues.add(path, `rule is required: one of ${PERMISSION_KINDS.join(', ')}`); return undefined;
  }
}

function stringMatch(v: unknown, path: string, issues: Issues): StringMatch | undefined {
  const m = message(v, path, issues);
  if (m === undefined || !checkFields(m, STRING_MATCHER, path, issues)) return undefined;
  const kind = oneofCase(m, 'match_pattern', STRING_KINDS, path, issues);
  if (kind === undefined || !(STRING_KINDS as readonly string[]).includes(kind)) {
    issues.add(path, `match_pattern is required: one of ${STRING_KINDS.join(', ')}`);
    return undefined;
  }
  const value = str(m, kind, path, issues);
  if (value === '' && kind !== 'exact') { issues.add(at(path, kind), 'must not be empty'); return undefined; }
  return Object.freeze({ kind: kind as StringMatch['kind'], value });
}

const ANY = Object.freeze({ kind: 'any' as const });

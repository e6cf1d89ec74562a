/**
 * The RBAC decision (filters/rbac-policy.ts), table-driven: caller identity x path x method x
 * gRPC method, DENY before ALLOW (Istio's two filters), prefix globs, '*' = any authenticated
 * caller, defaultAction; and the decoder, which rejects what the sidecar does not implement,
 * naming the field. The rules go through the wire encoding, as the sidecar receives them.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAny, encodeAny, TYPE_URLS } from '../../../shared/src/xds/protos';
import { Issues } from '../../../shared/src/xds/issues';
import { matchingPolicy } from '../../../sidecar/src/filters/rbac-policy';
import type { RbacRules } from '../../../sidecar/src/filters/rbac-policy';
import { rbacFilter } from '../../../sidecar/src/filters/rbac';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Msg = Record<string, any>;

const TD = 'spiffe://skein.local/ns';
const FRONTEND = `${TD}/default/sa/frontend`;
const BATCH = `${TD}/default/sa/batch`;
const PROD_API = `${TD}/prod/sa/api`;
const GREETER = '/skein.demo.v1.Greeter';

const exact = (id: string) => ({ authenticated: { principal_name: { exact: id } } });
const prefix = (p: string) => ({ authenticated: { principal_name: { prefix: p } } });
const anyAuthenticated = { authenticated: {} };
const grpcMethod = (m: string) => ({ url_path: { path: { exact: `${GREETER}/${m}` } } });
const method = (m: string) => ({ header: { name: ':method', string_match: { exact: m } } });
const pathPrefix = (p: string) => ({ url_path: { path: { prefix: p } } });
const and = (...rules: Msg[]) => ({ and_rules: { rules } });

/** An RBAC filter's typed_config, encoded and decoded as on the wire, then its rules compiled. */
function compile(config: Msg): RbacRules | null {
  const wire = decodeAny(encodeAny(TYPE_URLS.RBAC, config));
  const issues = new Issues();
  const out = rbacFilter.parseListenerConfig(wire, 'rbac', issues);
  assert.deepEqual(issues.list, []);
  assert.notEqual(out, undefined);
  return out!;
}
const rules = (action: 'ALLOW' | 'DENY', policies: Record<string, { principals: Msg[]; permissions?: Msg[] }>): RbacRules =>
  compile({ rules: { action, policies: Object.fromEntries(Object.entries(policies).map(([k, p]) => [k, { permissions: [{ any: true }], ...p }])) } })!;

/**
 * The filters the control plane sends for one policy with defaultAction DENY:
 *  DENY  batch may not call SayGoodbye; nobody in ns/test may call anything
 *  ALLOW frontend (everything), ns/prod/* (GET under /api/), any authenticated caller (SayHello)
 */
const DENY_FILTER = rules('DENY', {
  'p/rules[0]': { principals: [exact(BATCH)], permissions: [and(grpcMethod('SayGoodbye'))] },
  'p/rules[1]': { principals: [prefix(`${TD}/test/`)] },
});
const ALLOW_FILTER = rules('ALLOW', {
  'p/rules[2]': { principals: [exact(FRONTEND)] },
  'p/rules[3]': { principals: [prefix(`${TD}/prod/`)], permissions: [and(pathPrefix('/api/'), method('GET'))] },
  'p/rules[4]': { principals: [anyAuthenticated], permissions: [and(grpcMethod('SayHello'))] },
});

/** Istio's chain: the DENY filter, then (defaultAction DENY) the ALLOW filter. Returns the deciding policy or 'allowed'. */
function decide(chain: readonly RbacRules[], caller: string | undefined, m: string, path: string): string {
  for (const r of chain) {
    const i = matchingPolicy(r, m, path, caller);
    if (r.action === 'DENY' && i >= 0) return `denied by ${r.policies[i]!.name}`;
    if (r.action === 'ALLOW' && i < 0) return 'denied by default';
  }
  return 'allowed';
}

describe('the RBAC decision: identity x path x method x gRPC method', () => {
  const DEFAULT_DENY = [DENY_FILTER, ALLOW_FILTER];
  const DEFAULT_ALLOW = [DENY_FILTER];
  const CASES: [string, readonly RbacRules[], string | undefined, string, string, string][] = [
    ['frontend may call anything', DEFAULT_DENY, FRONTEND, 'POST', `${GREETER}/SayGoodbye`, 'allowed'],
    ['frontend, an HTTP path too', DEFAULT_DENY, FRONTEND, 'DELETE', '/admin', 'allowed'],
    ['batch may call SayHello (any authenticated caller)', DEFAULT_DENY, BATCH, 'POST', `${GREETER}/SayHello`, 'allowed'],
    ['batch may not call SayGoodbye: DENY before ALLOW', DEFAULT_DENY, BATCH, 'POST', `${GREETER}/SayGoodbye`, 'denied by p/rules[0]'],
    ['batch, another method no rule allows: default deny', DEFAULT_DENY, BATCH, 'POST', `${GREETER}/SayHelloAgain`, 'denied by default'],
    ['an exact gRPC method is not a prefix', DEFAULT_DENY, BATCH, 'POST', `${GREETER}/SayHello/x`, 'denied by default'],
    ['ns/test/* is denied even for what anyone may call', DEFAULT_DENY, `${TD}/test/sa/x`, 'POST', `${GREETER}/SayHello`, 'denied by p/rules[1]'],
    ['the prefix glob needs the whole prefix', DEFAULT_DENY, `${TD}/testing/sa/x`, 'POST', `${GREETER}/SayHello`, 'allowed'],
    ['ns/prod/*: GET under /api/', DEFAULT_DENY, PROD_API, 'GET', '/api/v1/items', 'allowed'],
    ['ns/prod/*: the query is not part of the path', DEFAULT_DENY, PROD_API, 'GET', '/api/?q=1', 'allowed'],
    ['ns/prod/*: a query does not make a path prefix', DEFAULT_DENY, PROD_API, 'GET', '/ap?i/', 'denied by default'],
    ['ns/prod/*: POST under /api/ is not allowed', DEFAULT_DENY, PROD_API, 'POST', '/api/v1/items', 'denied by default'],
    ['ns/prod/*: GET elsewhere is not allowed', DEFAULT_DENY, PROD_API, 'GET', '/apix', 'denied by default'],
    ['methods are exact (case-sensitive)', DEFAULT_DENY, PROD_API, 'get', '/api/', 'denied by default'],
    ['a plaintext caller matches no rule, not even any authenticated: default deny', DEFAULT_DENY, undefined, 'POST', `${GREETER}/SayHello`, 'denied by default'],
    ['defaultAction ALLOW: a plaintext caller is allowed', DEFAULT_ALLOW, undefined, 'POST', `${GREETER}/SayGoodbye`, 'allowed'],
    ['defaultAction ALLOW: what no rule denies is allowed', DEFAULT_ALLOW, PROD_API, 'DELETE', '/anything', 'allowed'],
    ['defaultAction ALLOW: a DENY rule still denies', DEFAULT_ALLOW, BATCH, 'POST', `${GREETER}/SayGoodbye`, 'denied by p/rules[0]'],
  ];
  for (const [name, chain, caller, m, path, expected] of CASES) {
    test(`${name}: ${caller ?? 'plaintext'} ${m} ${path} -> ${expected}`, () => assert.equal(decide(chain, caller, m, path), expected));
  }

  test('an ALLOW filter without policies denies every request; a DENY one without policies allows every request', () => {
    assert.equal(decide([rules('ALLOW', {})], FRONTEND, 'GET', '/'), 'denied by default');
    assert.equal(decide([rules('DENY', {})], undefined, 'GET', '/'), 'allowed');
  });

  test('policies are tried in lexicographic order of name: the first match decides', () => {
    const r = rules('DENY', { 'b/rules[0]': { principals: [anyAuthenticated] }, 'a/rules[9]': { principals: [exact(FRONTEND)] } });
    assert.deepEqual(r.policies.map((p) => p.name), ['a/rules[9]', 'b/rules[0]']);
    assert.equal(decide([r], FRONTEND, 'GET', '/'), 'denied by a/rules[9]');
    assert.equal(decide([r], BATCH, 'GET', '/'), 'denied by b/rules[0]');
  });

  test('or_ids, and_ids, not_id, or_rules, not_rule, any, suffix and contains', () => {
    const r = rules('ALLOW', {
      p: {
        principals: [{ or_ids: { ids: [exact(FRONTEND), { and_ids: { ids: [prefix(`${TD}/prod/`), { not_id: exact(PROD_API) }] } }] } }],
        permissions: [{ or_rules: { rules: [{ url_path: { path: { suffix: '.json' } } }, and({ url_path: { path: { contains: '/v2/' } } }, { not_rule: method('DELETE') })] } }],
      },
    });
    assert.equal(decide([r], FRONTEND, 'GET', '/x/data.json?y=1'), 'allowed');
    assert.equal(decide([r], FRONTEND, 'GET', '/x/data?y=.json'), 'denied by default');
    assert.equal(decide([r], `${TD}/prod/sa/web`, 'PUT', '/a/v2/b'), 'allowed');
    assert.equal(decide([r], `${TD}/prod/sa/web`, 'DELETE', '/a/v2/b'), 'denied by default');
    assert.equal(decide([r], PROD_API, 'GET', '/a.json'), 'denied by default');
    assert.equal(decide([rules('ALLOW', { p: { principals: [{ any: true }] } })], undefined, 'GET', '/'), 'allowed');
  });

  test('no `rules`: the filter enforces nothing', () => assert.equal(compile({}), null));
});

describe('the RBAC decoder rejects what the sidecar does not implement, naming the field', () => {
  const policy = (p: Msg) => ({ rules: { action: 'DENY', policies: { p: { principals: [{ any: true }], permissions: [{ any: true }], ...p } } } });
  const CASES: [string, Msg, string[]][] = [
    ['shadow rules', { shadow_rules: { action: 'DENY' } }, ['rbac.shadow_rules: is not supported by the skein sidecar']],
    ['a matcher tree', { matcher: {} }, ['rbac.matcher: is not supported by the skein sidecar']],
    ['action LOG', { rules: { action: 'LOG' } }, ['rbac.rules.action: only ALLOW and DENY are supported by the skein sidecar, got LOG']],
    ['audit logging', { rules: { audit_logging_options: { audit_condition: 'ON_DENY' } } }, ['rbac.rules.audit_logging_options: is not supported by the skein sidecar']],
    ['a condition', policy({ condition: {} }), ['rbac.rules.policies["p"].condition: is not supported by the skein sidecar']],
    ['a checked condition', policy({ checked_condition: {} }), ['rbac.rules.policies["p"].checked_condition: is not supported by the skein sidecar']],
    ['a source IP principal', policy({ principals: [{ direct_remote_ip: { address_prefix: '10.0.0.0' } }] }), ['rbac.rules.policies["p"].principals[0].direct_remote_ip: is not supported by the skein sidecar']],
    ['a metadata principal', policy({ principals: [{ metadata: {} }] }), ['rbac.rules.policies["p"].principals[0].metadata: is not supported by the skein sidecar']],
    ['a header principal', policy({ principals: [{ header: { name: 'x-user' } }] }), ['rbac.rules.policies["p"].principals[0].header: is not supported by the skein sidecar']],
    ['a regex principal name', policy({ principals: [{ authenticated: { principal_name: { safe_regex: { regex: '.*' } } } }] }), ['rbac.rules.policies["p"].principals[0].authenticated.principal_name.safe_regex: is not supported by the skein sidecar']],
    ['ignore_case', policy({ principals: [{ authenticated: { principal_name: { exact: 'a', ignore_case: true } } }] }), ['rbac.rules.policies["p"].principals[0].authenticated.principal_name.ignore_case: is not supported by the skein sidecar']],
    ['a destination port permission', policy({ permissions: [{ destination_port: 80 }] }), ['rbac.rules.policies["p"].permissions[0].destination_port: is not supported by the skein sidecar']],
    ['a server name permission', policy({ permissions: [{ requested_server_name: { exact: 'a' } }] }), ['rbac.rules.policies["p"].permissions[0].requested_server_name: is not supported by the skein sidecar']],
    ['a header other than :method', policy({ permissions: [{ header: { name: 'x-user', string_match: { exact: 'a' } } }] }), ['rbac.rules.policies["p"].permissions[0].header.name: only :method is supported by the skein sidecar, got "x-user"']],
    ['an inverted header match', policy({ permissions: [{ header: { name: ':method', string_match: { exact: 'GET' }, invert_match: true } }] }), ['rbac.rules.policies["p"].permissions[0].header.invert_match: is not supported by the skein sidecar']],
    ['a policy without principals or permissions', { rules: { policies: { p: {} } } }, ['rbac.rules.policies["p"].permissions: must have at least 1 item', 'rbac.rules.policies["p"].principals: must have at least 1 item']],
    ['an empty and_rules', policy({ permissions: [{ and_rules: {} }] }), ['rbac.rules.policies["p"].permissions[0].and_rules.rules: must have at least 1 item']],
    [
      'every problem at once',
      { shadow_rules: {}, rules: { policies: { a: { principals: [{ remote_ip: {} }], permissions: [{ metadata: {} }] }, b: { principals: [{ any: true }], permissions: [{ url_path: { path: { safe_regex: { regex: 'x' } } } }] } } } },
      ['rbac.shadow_rules: is not supported by the skein sidecar', 'rbac.rules.policies["a"].permissions[0].metadata: is not supported by the skein sidecar',
        'rbac.rules.policies["a"].principals[0].remote_ip: is not supported by the skein sidecar', 'rbac.rules.policies["b"].permissions[0].url_path.path.safe_regex: is not supported by the skein sidecar'],
    ],
  ];
  for (const [name, config, expected] of CASES) {
    test(name, () => {
      const issues = new Issues();
      assert.equal(rbacFilter.parseListenerConfig(decodeAny(encodeAny(TYPE_URLS.RBAC, config)), 'rbac', issues), undefined);
      assert.deepEqual(issues.list, expected);
    });
  }

  test('a per-route RBACPerRoute is rejected', () => {
    const issues = new Issues();
    rbacFilter.parsePerRoute!({ rbac: {} }, 'typed_per_filter_config["envoy.filters.http.rbac"]', undefined as never, issues);
    assert.deepEqual(issues.list, ['typed_per_filter_config["envoy.filters.http.rbac"]: per-route RBAC (RBACPerRoute) is not supported by the skein sidecar']);
  });

  test('rules_stat_prefix and track_per_rule_stats only shape stats: accepted', () => {
    assert.notEqual(compile({ rules_stat_prefix: 'x.', track_per_rule_stats: true, rules: { action: 'DENY' } }), null);
  });
});

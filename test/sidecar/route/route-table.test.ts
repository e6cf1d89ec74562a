/**
 * RouteTable (sidecar/src/router): built from RouteConfigurations that went through the real
 * protobuf encode/decode (so shapes are exactly what the xDS client hands the sidecar), either
 * translated by the control plane from small meshes or hand-written in Envoy's shape.
 * Table-driven: virtual host selection, path/header/grpc matching, weighted picks, validation
 * messages (the NACK text), timeouts, retry policies and header mutations.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { buildMesh } from '../../../shared/src/config/mesh';
import { translate } from '../../../control-plane/src/translate/translate';
import { OUTBOUND } from '../../../control-plane/src/translate/names';
import { encodeResource } from '../../../shared/src/xds/pack';
import { decodeAny, TYPE_URLS } from '../../../shared/src/xds/protos';
import { MeshError } from '../../../shared/src/errors';
import { RouteTable } from '../../../sidecar/src/route/route-table';
import type { RouteEntry, RequestHeaders } from '../../../sidecar/src/route/route-table';
import { applyHeaderOps } from '../../../sidecar/src/route/header-ops';
import type { HeaderBag, HeaderToAdd } from '../../../sidecar/src/route/header-ops';
import { HTTP_FILTERS, perRouteConfig } from '../../../sidecar/src/filters/registry';
import { routeType } from '../../../sidecar/src/pipeline';
import { Issues } from '../../../shared/src/xds/issues';
import { DEFAULT_LIMITS, TypeSubscription } from '../../../sidecar/src/xds/type-subscription';
import type { FaultPolicy } from '../../../sidecar/src/resilience/fault';
import type { TokenBucket } from '../../../sidecar/src/resilience/token-bucket';
import { TEST_TRANSLATE } from '../../support/mesh-trust';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = Record<string, any>;

/** Through the real protos: encode as the control plane would, decode as the sidecar does. */
const decoded = (rc: Doc): Doc => decodeAny(encodeResource(TYPE_URLS.ROUTE, rc));
const build = (rc: Doc): RouteTable => RouteTable.build(decoded(rc), HTTP_FILTERS);
const rc = (virtual_hosts: Doc[], more: Doc = {}): Doc => ({ name: 'test', virtual_hosts, ...more });
const vhost = (name: string, domains: string[], routes: Doc[], more: Doc = {}): Doc => ({ name, domains, routes, ...more });
const route = (name: string, match: Doc, more: Doc = {}): Doc => ({ name, match, route: { cluster: name }, ...more });
const d = (seconds: number, nanos = 0) => ({ seconds, nanos });
const ms = (n: number) => d(Math.floor(n / 1000), (n % 1000) * 1_000_000);

function matchName(t: RouteTable, authority: string, path = '/', method = 'GET', headers: RequestHeaders = {}): string | undefined {
  return t.match(authority, path, method, headers)?.name;
}

function only(rcDoc: Doc): RouteEntry {
  const e = build(rcDoc).match('any', '/', 'GET', {});
  assert.ok(e, 'expected the catch-all route to match');
  return e;
}

/** A one-route table whose route action carries `action` fields. */
const withAction = (action: Doc, vhostMore: Doc = {}): Doc =>
  rc([vhost('v', ['*'], [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'c', ...action } }], vhostMore)]);

// ---------------------------------------------------------------- meshes via the control plane

const V = 'skein.dev/v1alpha1';
const reviews = (): Doc => ({
  apiVersion: V, kind: 'Service', metadata: { name: 'reviews' },
  spec: { ports: [{ name: 'grpc', port: 50051 }], subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
});
const web = (): Doc => ({ apiVersion: V, kind: 'Service', metadata: { name: 'web' }, spec: { protocol: 'http', ports: [{ name: 'http', port: 8080 }] } });
const meshRoute = (kind: 'HTTPRoute' | 'GRPCRoute', name: string, parent: string, rules: Doc[], spec: Doc = {}): Doc =>
  ({ apiVersion: V, kind, metadata: { name }, spec: { parentRefs: [{ name: parent }], rules, ...spec } });

/** The sidecar's outbound RouteConfiguration (every service's virtual host) for a mesh. */
function outbound(docs: Doc[]): RouteTable {
  const routes = translate(buildMesh(docs), [], TEST_TRANSLATE).routes;
  const found = routes.find((r) => r['name'] === OUTBOUND);
  assert.ok(found);
  return build(found);
}

const GRPC: IncomingHttpHeaders = { 'content-type': 'application/grpc' };

describe('route tables translated from meshes', () => {
  const table = outbound([
    reviews(), web(),
    meshRoute('GRPCRoute', 'split', 'reviews', [
      { name: 'get', matches: [{ method: { service: 'reviews.Reviews', method: 'Get' } }], backendRefs: [{ name: 'reviews', subset: 'v1', weight: 90 }, { name: 'reviews', subset: 'v2', weight: 10 }], timeout: '2s' },
      { name: 'rest', backendRefs: [{ name: 'reviews' }], retry: {} },
    ]),
    meshRoute('HTTPRoute', 'api', 'web', [{
      name: 'api', matches: [{ path: { type: 'PathPrefix', value: '/api' }, method: 'POST', headers: [{ name: 'x-canary', value: 'yes' }] }],
      backendRefs: [{ name: 'web' }],
      filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-s', value: '1' }], add: [{ name: 'x-a', value: '2' }], remove: ['x-r'] } }],
    }], { hostnames: ['web.example.com'] }),
  ]);

  const cases: { name: string; authority: string; path: string; method?: string; headers?: IncomingHttpHeaders; route: string | undefined }[] = [
    { name: 'grpc method path on service:port', authority: 'reviews:50051', path: '/reviews.Reviews/Get', headers: GRPC, route: 'GRPCRoute/split/get' },
    { name: 'bare service name', authority: 'reviews', path: '/reviews.Reviews/Get', headers: GRPC, route: 'GRPCRoute/split/get' },
    { name: 'other grpc method falls to the next rule', authority: 'reviews', path: '/reviews.Reviews/List', headers: GRPC, route: 'GRPCRoute/split/rest' },
    { name: 'GRPCRoute needs a grpc content-type', authority: 'reviews', path: '/reviews.Reviews/Get', headers: { 'content-type': 'application/json' }, route: undefined },
    { name: 'HTTPRoute prefix + method + header', authority: 'web:8080', path: '/api/users?x=1', method: 'POST', headers: { 'x-canary': 'yes' }, route: 'HTTPRoute/api/api' },
    { name: 'route hostname selects the service', authority: 'WEB.example.com', path: '/api', method: 'POST', headers: { 'x-canary': 'yes' }, route: 'HTTPRoute/api/api' },
    { name: 'wrong method: no route (no default once a route is attached)', authority: 'web', path: '/api', method: 'GET', headers: { 'x-canary': 'yes' }, route: undefined },
    { name: 'missing header: no route', authority: 'web', path: '/api', method: 'POST', route: undefined },
    { name: 'unknown authority: NO_ROUTE', authority: 'nope', path: '/', route: undefined },
  ];
  for (const c of cases) {
    test(c.name, () => assert.equal(matchName(table, c.authority, c.path, c.method ?? 'GET', c.headers ?? {}), c.route));
  }

  test('weighted split, timeout and retry defaults as translated', () => {
    const get = table.match('reviews', '/reviews.Reviews/Get', 'POST', GRPC)!.route!;
    assert.deepEqual([get.clusters, get.cumulativeWeights, get.totalWeight, get.timeoutMs, get.retryPolicy], [['reviews/v1', 'reviews/v2'], [90, 100], 100, 2000, undefined]);
    const rest = table.match('reviews', '/x/y', 'POST', GRPC)!.route!;
    assert.equal(rest.timeoutMs, 0, 'an unset rule timeout is translated to timeout: 0 (none)');
    const p = rest.retryPolicy!;
    assert.deepEqual([[...p.retryOn], p.numRetries, p.baseIntervalMs, p.maxIntervalMs, p.perTryTimeoutMs], [['connect-failure', 'refused-stream', 'unavailable'], 2, 25, 250, 0]);
  });

  test('header modifiers: set overwrites, add appends, remove', () => {
    const e = table.match('web', '/api', 'POST', { 'x-canary': 'yes' })!;
    assert.deepEqual(e.requestHeadersToAdd, [
      { key: 'x-s', value: '1', append: false, action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { key: 'x-a', value: '2', append: true, action: 'APPEND_IF_EXISTS_OR_ADD' },
    ]);
    assert.deepEqual(e.requestHeadersToRemove, ['x-r']);
  });

  test('a service with no routes gets the default route to its cluster', () => {
    const t = outbound([web()]);
    const e = t.match('web:8080', '/anything', 'GET', {})!;
    assert.deepEqual([e.name, e.route!.clusters, e.route!.timeoutMs], ['default', ['web'], 0]);
  });
});

// ---------------------------------------------------------------- virtual host selection

describe('virtual host selection by authority', () => {
  const r = (name: string) => route(name, { prefix: '/' });
  const hosts = [
    vhost('exact', ['api.foo.com', 'svc:8080'], [r('exact')]),
    vhost('svc', ['svc'], [r('svc')]),
    vhost('suffix', ['*.foo.com'], [r('suffix')]),
    vhost('suffix-longer', ['*-x.foo.com'], [r('suffix-longer')]),
    vhost('prefix', ['foo.*'], [r('prefix')]),
    vhost('prefix-longer', ['foo.bar.*'], [r('prefix-longer')]),
  ];
  const withDefault = build(rc([...hosts, vhost('default', ['*'], [r('default')])]));
  const noDefault = build(rc(hosts));
  const cases: [authority: string, withDefault: string, noDefault: string | undefined][] = [
    ['api.foo.com', 'exact', 'exact'],
    ['API.Foo.COM', 'exact', 'exact'],
    ['x.foo.com', 'suffix', 'suffix'],
    ['a.b.foo.com', 'suffix', 'suffix'],
    ['a-x.foo.com', 'suffix-longer', 'suffix-longer'],
    ['foo.foo.com', 'suffix', 'suffix'], // suffix wildcards before prefix wildcards
    ['.foo.com', 'default', undefined], // a wildcard matches at least one character
    ['foo.com', 'prefix', 'prefix'],
    ['foo.bar.com', 'prefix-longer', 'prefix-longer'],
    ['foo.com:80', 'prefix', 'prefix'], // as given: foo.* matches with the port
    ['svc:8080', 'exact', 'exact'], // exact with port first
    ['SVC:8080', 'exact', 'exact'],
    ['svc:9090', 'svc', 'svc'], // then without the port
    ['api.foo.com:443', 'exact', 'exact'],
    ['x.foo.com:443', 'suffix', 'suffix'],
    ['svc:http', 'default', undefined], // not a port
    ['other', 'default', undefined],
    ['', 'default', undefined],
  ];
  for (const [authority, expected, expectedNoDefault] of cases) {
    test(`${JSON.stringify(authority)} -> ${expected} / ${expectedNoDefault}`, () => {
      for (let i = 0; i < 2; i++) { // the second lookup is served by the memo
        assert.equal(matchName(withDefault, authority), expected);
        assert.equal(matchName(noDefault, authority), expectedNoDefault);
      }
    });
  }

  test('ignore_port_in_host_matching strips the port before matching', () => {
    const hosts2 = [vhost('bare', ['svc'], [r('bare')]), vhost('ported', ['svc:8080'], [r('ported')])];
    assert.equal(matchName(build(rc(hosts2)), 'svc:8080'), 'ported');
    assert.equal(matchName(build(rc(hosts2, { ignore_port_in_host_matching: true })), 'svc:8080'), 'bare');
  });
});

// ---------------------------------------------------------------- path matching and order

describe('path matching', () => {
  const table = build(rc([vhost('v', ['*'], [
    route('exact', { path: '/exact' }),
    route('prefix-ci', { prefix: '/CI/', case_sensitive: { value: false } }),
    route('exact-ci', { path: '/Exact-CI', case_sensitive: { value: false } }),
    route('regex', { safe_regex: { regex: '/items/[0-9]+' } }),
    route('sep', { path_separated_prefix: '/sep' }),
    route('first', { prefix: '/a' }),
    route('second', { prefix: '/a/b' }),
    route('catchall', { prefix: '' }),
  ])]));
  const cases: [path: string, expected: string][] = [
    ['/exact', 'exact'],
    ['/exact?x=1', 'exact'],
    ['/exact#frag', 'exact'],
    ['/exact/', 'catchall'],
    ['/EXACT', 'catchall'],
    ['/exactly', 'catchall'],
    ['/ci/x', 'prefix-ci'],
    ['/Ci/X?q=1', 'prefix-ci'],
    ['/exact-ci', 'exact-ci'],
    ['/EXACT-CI?z', 'exact-ci'],
    ['/items/42', 'regex'],
    ['/items/42?page=2', 'regex'],
    ['/items/42x', 'catchall'], // safe_regex must match the whole path
    ['/x/items/42', 'catchall'],
    ['/sep', 'sep'],
    ['/sep/more', 'sep'],
    ['/sep?q', 'sep'],
    ['/sepx', 'catchall'],
    ['/a/b', 'first'], // first match in order, not the longest
    ['/b', 'catchall'],
  ];
  for (const [path, expected] of cases) {
    test(`${path} -> ${expected}`, () => assert.equal(matchName(table, 'h', path), expected));
  }
});

// ---------------------------------------------------------------- headers, :method, grpc

describe('header matchers', () => {
  type Case = { name: string; matcher: Doc; headers?: IncomingHttpHeaders; method?: string; matches: boolean };
  const cases: Case[] = [
    { name: 'exact: equal', matcher: { name: 'x-a', string_match: { exact: 'v' } }, headers: { 'x-a': 'v' }, matches: true },
    { name: 'exact: different', matcher: { name: 'x-a', string_match: { exact: 'v' } }, headers: { 'x-a': 'V' }, matches: false },
    { name: 'exact: missing', matcher: { name: 'x-a', string_match: { exact: 'v' } }, matches: false },
    { name: 'exact ignore_case', matcher: { name: 'x-a', string_match: { exact: 'VaL', ignore_case: true } }, headers: { 'x-a': 'vAl' }, matches: true },
    { name: 'exact: empty pattern matches only empty', matcher: { name: 'x-a', string_match: { exact: '' } }, headers: { 'x-a': 'v' }, matches: false },
    { name: 'matcher name is lower-cased', matcher: { name: 'X-Upper', string_match: { exact: 'v' } }, headers: { 'x-upper': 'v' }, matches: true },
    { name: 'several values are joined with ","', matcher: { name: 'x-a', string_match: { exact: 'a,b' } }, headers: { 'x-a': ['a', 'b'] }, matches: true },
    { name: 'regex: full match', matcher: { name: 'x-a', string_match: { safe_regex: { regex: 'b+' } } }, headers: { 'x-a': 'bbb' }, matches: true },
    { name: 'regex: partial is no match', matcher: { name: 'x-a', string_match: { safe_regex: { regex: 'b+' } } }, headers: { 'x-a': 'abbb' }, matches: false },
    { name: 'regex: anchors inside are fine', matcher: { name: 'x-a', string_match: { safe_regex: { regex: '^b+$' } } }, headers: { 'x-a': 'bb' }, matches: true },
    // Catastrophic backtracking for a backtracking engine (seconds for 30 characters, growing 2x
    // per character): RE2 matches it in linear time, so this case finishes at once.
    { name: 'regex: (a+)+$ on 60 a\'s and a "!" is linear (RE2), not exponential', matcher: { name: 'x-a', string_match: { safe_regex: { regex: '(a+)+$' } } }, headers: { 'x-a': `${'a'.repeat(60)}!` }, matches: false },
    { name: 'regex: (a+)+$ still matches what it should', matcher: { name: 'x-a', string_match: { safe_regex: { regex: '(a+)+$' } } }, headers: { 'x-a': 'a'.repeat(60) }, matches: true },
    { name: 'prefix', matcher: { name: 'x-a', string_match: { prefix: 'ab' } }, headers: { 'x-a': 'abc' }, matches: true },
    { name: 'prefix: no', matcher: { name: 'x-a', string_match: { prefix: 'ab' } }, headers: { 'x-a': 'cab' }, matches: false },
    { name: 'prefix ignore_case', matcher: { name: 'x-a', string_match: { prefix: 'AB', ignore_case: true } }, headers: { 'x-a': 'abc' }, matches: true },
    { name: 'suffix', matcher: { name: 'x-a', string_match: { suffix: 'bc' } }, headers: { 'x-a': 'abc' }, matches: true },
    { name: 'suffix: no', matcher: { name: 'x-a', string_match: { suffix: 'bc' } }, headers: { 'x-a': 'bca' }, matches: false },
    { name: 'suffix ignore_case', matcher: { name: 'x-a', string_match: { suffix: 'BC', ignore_case: true } }, headers: { 'x-a': 'abc' }, matches: true },
    { name: 'contains', matcher: { name: 'x-a', string_match: { contains: 'b' } }, headers: { 'x-a': 'abc' }, matches: true },
    { name: 'contains ignore_case', matcher: { name: 'x-a', string_match: { contains: 'B', ignore_case: true } }, headers: { 'x-a': 'abc' }, matches: true },
    { name: 'contains: no', matcher: { name: 'x-a', string_match: { contains: 'z' } }, headers: { 'x-a': 'abc' }, matches: false },
    { name: 'present: present', matcher: { name: 'x-a', present_match: true }, headers: { 'x-a': '' }, matches: true },
    { name: 'present: missing', matcher: { name: 'x-a', present_match: true }, matches: false },
    { name: 'present_match false: missing matches', matcher: { name: 'x-a', present_match: false }, matches: true },
    { name: 'present_match false: present does not', matcher: { name: 'x-a', present_match: false }, headers: { 'x-a': '1' }, matches: false },
    { name: 'no specifier means present', matcher: { name: 'x-a' }, headers: { 'x-a': '1' }, matches: true },
    { name: 'no specifier: missing', matcher: { name: 'x-a' }, matches: false },
    { name: 'invert exact: other value matches', matcher: { name: 'x-a', string_match: { exact: 'no' }, invert_match: true }, headers: { 'x-a': 'yes' }, matches: true },
    { name: 'invert exact: same value does not', matcher: { name: 'x-a', string_match: { exact: 'no' }, invert_match: true }, headers: { 'x-a': 'no' }, matches: false },
    { name: 'invert exact: missing never matches (Envoy)', matcher: { name: 'x-a', string_match: { exact: 'no' }, invert_match: true }, matches: false },
    { name: 'invert + treat_missing_header_as_empty: missing matches', matcher: { name: 'x-a', string_match: { exact: 'no' }, invert_match: true, treat_missing_header_as_empty: true }, matches: true },
    { name: 'invert present: missing matches', matcher: { name: 'x-a', present_match: true, invert_match: true }, matches: true },
    { name: 'invert present: present does not', matcher: { name: 'x-a', present_match: true, invert_match: true }, headers: { 'x-a': '1' }, matches: false },
    { name: ':method reads the method', matcher: { name: ':method', string_match: { exact: 'POST' } }, method: 'POST', matches: true },
    { name: ':method: other method', matcher: { name: ':method', string_match: { exact: 'POST' } }, method: 'GET', headers: { ':method': 'POST' }, matches: false },
    { name: ':authority reads the authority', matcher: { name: ':authority', string_match: { suffix: '.internal' } }, matches: true },
    { name: ':path reads the path with its query', matcher: { name: ':path', string_match: { contains: 'debug=1' } }, matches: true },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const t = build(rc([vhost('v', ['*'], [route('r', { prefix: '/', headers: [c.matcher] })])]));
      assert.equal(matchName(t, 'svc.internal', '/p?debug=1', c.method ?? 'GET', c.headers ?? {}) === 'r', c.matches);
    });
  }

  test('all header matchers of a route must hold', () => {
    const t = build(rc([vhost('v', ['*'], [route('r', { prefix: '/', headers: [{ name: 'a', present_match: true }, { name: 'b', present_match: true }] })])]));
    assert.deepEqual([matchName(t, 'h', '/', 'GET', { a: '1' }), matchName(t, 'h', '/', 'GET', { a: '1', b: '2' })], [undefined, 'r']);
  });

  // The original HeaderMatcher fields, which the control plane sends (every v3 client reads them;
  // string_match is newer) and other control planes may send: through the real protos, as on the wire.
  const legacy: { name: string; matcher: Doc; value?: string; matches: boolean }[] = [
    { name: 'exact_match: equal', matcher: { exact_match: 'a' }, value: 'a', matches: true },
    { name: 'exact_match: different', matcher: { exact_match: 'a' }, value: 'b', matches: false },
    { name: 'exact_match: missing', matcher: { exact_match: 'a' }, matches: false },
    { name: 'exact_match "": any present value (Envoy)', matcher: { exact_match: '' }, value: 'anything', matches: true },
    { name: 'exact_match "": missing', matcher: { exact_match: '' }, matches: false },
    { name: 'prefix_match', matcher: { prefix_match: 'ab' }, value: 'abc', matches: true },
    { name: 'prefix_match: no', matcher: { prefix_match: 'ab' }, value: 'cab', matches: false },
    { name: 'suffix_match', matcher: { suffix_match: 'bc' }, value: 'abc', matches: true },
    { name: 'suffix_match: no', matcher: { suffix_match: 'bc' }, value: 'bca', matches: false },
    { name: 'contains_match', matcher: { contains_match: 'b' }, value: 'abc', matches: true },
    { name: 'contains_match: no', matcher: { contains_match: 'z' }, value: 'abc', matches: false },
    { name: 'safe_regex_match: full match', matcher: { safe_regex_match: { regex: 'a.c' } }, value: 'abc', matches: true },
    { name: 'safe_regex_match: partial is no match', matcher: { safe_regex_match: { regex: 'a' } }, value: 'abc', matches: false },
    { name: 'safe_regex_match: RE2, linear on (a+)+$', matcher: { safe_regex_match: { regex: '(a+)+$' } }, value: `${'a'.repeat(60)}!`, matches: false },
    { name: 'exact_match inverted', matcher: { exact_match: 'a', invert_match: true }, value: 'b', matches: true },
    { name: 'exact_match inverted: same value', matcher: { exact_match: 'a', invert_match: true }, value: 'a', matches: false },
  ];
  for (const c of legacy) {
    test(`original field ${c.name}`, () => {
      const t = build(rc([vhost('v', ['*'], [route('r', { prefix: '/', headers: [{ name: 'x', ...c.matcher }] })])]));
      assert.equal(matchName(t, 'h', '/', 'GET', c.value === undefined ? {} : { x: c.value }) === 'r', c.matches);
    });
  }

  const grpcCases: [contentType: string | undefined, matches: boolean][] = [
    ['application/grpc', true],
    ['application/grpc+proto', true],
    ['application/grpc;charset=utf-8', true],
    ['application/grpc-web', false],
    ['application/json', false],
    [undefined, false],
  ];
  for (const [ct, expected] of grpcCases) {
    test(`grpc match with content-type ${ct ?? '(none)'}: ${expected}`, () => {
      const t = build(rc([vhost('v', ['*'], [route('r', { prefix: '/', grpc: {} })])]));
      assert.equal(matchName(t, 'h', '/pkg.S/M', 'POST', ct === undefined ? {} : { 'content-type': ct }) === 'r', expected);
    });
  }
});

// ---------------------------------------------------------------- weighted clusters

describe('weighted cluster pick', () => {
  const action = (clusters: [string, number][]) =>
    only(withAction({ cluster: undefined, weighted_clusters: { clusters: clusters.map(([name, w]) => ({ name, weight: { value: w } })) } })).route!;
  const split = action([['v1', 90], ['v2', 10]]);
  const withZero = action([['a', 1], ['zero', 0], ['c', 1]]);
  const cases: [label: string, pick: () => string, expected: string][] = [
    ['90/10 at r=0', () => split.pickCluster(0), 'v1'],
    ['90/10 just below the boundary (r=0.8999)', () => split.pickCluster(0.8999), 'v1'],
    ['90/10 at the boundary (r=0.9)', () => split.pickCluster(0.9), 'v2'],
    ['90/10 at r=0.999', () => split.pickCluster(0.999), 'v2'],
    ['zero weight is never picked (r=0.5 -> c)', () => withZero.pickCluster(0.5), 'c'],
    ['zero weight is never picked (r=0.499 -> a)', () => withZero.pickCluster(0.499), 'a'],
    ['single cluster', () => only(withAction({})).route!.pickCluster(0.7), 'c'],
  ];
  for (const [label, pick, expected] of cases) test(label, () => assert.equal(pick(), expected));

  test('cumulative weights and total', () => {
    assert.deepEqual([split.cumulativeWeights, split.totalWeight, withZero.cumulativeWeights, withZero.totalWeight], [[90, 100], 100, [1, 1, 2], 2]);
  });
});

// ---------------------------------------------------------------- validation (NACK messages)

describe('validation rejects with a field path', () => {
  const R = 'virtual_hosts[0].routes[0]';
  const one = (r: Doc, vhostMore: Doc = {}, rcMore: Doc = {}) => rc([vhost('v', ['*'], [r], vhostMore)], rcMore);
  const cases: { name: string; rc: Doc; message: string | RegExp }[] = [
    {
      name: 'weighted_clusters summing to 0',
      rc: rc([vhost('v', ['*'], [route('ok', { prefix: '/ok' }), { match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: { value: 0 } }, { name: 'b' }] } } }])]),
      message: 'virtual_hosts[0].routes[1].route.weighted_clusters: sum of weights is 0',
    },
    { name: 'empty weighted_clusters', rc: one({ match: { prefix: '/' }, route: { weighted_clusters: {} } }), message: `${R}.route.weighted_clusters.clusters: must list at least one cluster` },
    { name: 'connect_matcher path specifier', rc: one(route('r', { connect_matcher: {} })), message: `${R}.match.connect_matcher: is not supported by the skein sidecar` },
    { name: 'no path specifier', rc: one(route('r', {})), message: `${R}.match: path_specifier is required: prefix, path, safe_regex or path_separated_prefix` },
    { name: 'range_match header matcher', rc: one(route('r', { prefix: '/', headers: [{ name: 'a' }, { name: 'b', range_match: { start: 1, end: 5 } }] })), message: `${R}.match.headers[1].range_match: is not supported by the skein sidecar` },
    { name: 'string_match without a pattern', rc: one(route('r', { prefix: '/', headers: [{ name: 'a', string_match: { ignore_case: true } }] })), message: `${R}.match.headers[0].string_match: match_pattern is required: one of exact, prefix, suffix, contains, safe_regex` },
    { name: 'empty prefix string_match', rc: one(route('r', { prefix: '/', headers: [{ name: 'a', string_match: { prefix: '' } }] })), message: `${R}.match.headers[0].string_match.prefix: must not be empty` },
    { name: 'header matcher without a name', rc: one(route('r', { prefix: '/', headers: [{ present_match: true }] })), message: `${R}.match.headers[0].name: is required` },
    { name: 'invalid regex', rc: one(route('r', { safe_regex: { regex: '(' } })), message: /^virtual_hosts\[0\]\.routes\[0\]\.match\.safe_regex\.regex: invalid RE2 regular expression "\(": / },
    { name: 'lookahead (not RE2)', rc: one(route('r', { safe_regex: { regex: '(?=a)a' } })), message: /match\.safe_regex\.regex: invalid RE2 regular expression "\(\?=a\)a": .*unsupported Perl syntax/ },
    { name: 'backreference (not RE2)', rc: one(route('r', { safe_regex: { regex: '(a)\\1' } })), message: /match\.safe_regex\.regex: invalid RE2 regular expression .*invalid escape sequence/ },
    { name: 'a program over the size cap (max_program_size 100)', rc: one(route('r', { safe_regex: { regex: 'x{200}' } })), message: /match\.safe_regex\.regex: regular expression "x\{200\}" is too complex: RE2 program size \d+ is over the limit of 100/ },
    { name: 'query_parameters', rc: one(route('r', { prefix: '/', query_parameters: [{ name: 'q', present_match: true }] })), message: `${R}.match.query_parameters: is not supported by the skein sidecar` },
    { name: 'path_separated_prefix ending in /', rc: one(route('r', { path_separated_prefix: '/a/' })), message: `${R}.match.path_separated_prefix: "/a/" must be non-empty, contain no '?' or '#', and not end with '/'` },
    { name: 'redirect action', rc: one({ match: { prefix: '/' }, redirect: { host_redirect: 'x' } }), message: `${R}.redirect: is not supported by the skein sidecar` },
    { name: 'no action', rc: one({ match: { prefix: '/' } }), message: `${R}: action is required: route or direct_response` },
    { name: 'no match', rc: one({ route: { cluster: 'c' } }), message: `${R}.match: is required` },
    { name: 'no cluster specifier', rc: one({ match: { prefix: '/' }, route: { timeout: d(1) } }), message: `${R}.route: cluster_specifier is required: cluster or weighted_clusters` },
    { name: 'cluster_header', rc: one({ match: { prefix: '/' }, route: { cluster_header: 'x-c' } }), message: `${R}.route.cluster_header: is not supported by the skein sidecar` },
    { name: 'prefix_rewrite', rc: one(route('r', { prefix: '/' }, { route: { cluster: 'c', prefix_rewrite: '/v2' } })), message: `${R}.route.prefix_rewrite: is not supported by the skein sidecar` },
    { name: 'hash on connection properties', rc: one(route('r', { prefix: '/' }, { route: { cluster: 'c', hash_policy: [{ connection_properties: { source_ip: true } }] } })), message: `${R}.route.hash_policy[0].connection_properties: is not supported by the skein sidecar` },
    { name: 'unknown retry condition', rc: one(route('r', { prefix: '/' }, { route: { cluster: 'c', retry_policy: { retry_on: '5xx,5xxx' } } })), message: /^virtual_hosts\[0\]\.routes\[0\]\.route\.retry_policy\.retry_on: unknown retry condition "5xxx" \(known: 5xx, / },
    { name: 'back-off max below base', rc: one(route('r', { prefix: '/' }, { route: { cluster: 'c', retry_policy: { retry_back_off: { base_interval: ms(100), max_interval: ms(50) } } } })), message: `${R}.route.retry_policy.retry_back_off.max_interval: must be >= base_interval (100ms), got 50ms` },
    { name: 'back-off without base', rc: one(route('r', { prefix: '/' }, { route: { cluster: 'c', retry_policy: { retry_back_off: { max_interval: ms(50) } } } })), message: `${R}.route.retry_policy.retry_back_off.base_interval: is required` },
    { name: 'virtual host retry policy with host predicates', rc: one(route('r', { prefix: '/' }), { retry_policy: { retry_host_predicate: [{ name: 'p' }] } }), message: 'virtual_hosts[0].retry_policy.retry_host_predicate: is not supported by the skein sidecar' },
    { name: 'adding a pseudo-header', rc: one(route('r', { prefix: '/' }, { request_headers_to_add: [{ header: { key: ':path', value: '/x' } }] })), message: `${R}.request_headers_to_add[0].header.key: ":path": pseudo-headers and host may not be modified` },
    { name: 'removing host', rc: one(route('r', { prefix: '/' }), { request_headers_to_remove: ['Host'] }), message: 'virtual_hosts[0].request_headers_to_remove[0]: "Host": pseudo-headers and host may not be modified' },
    { name: 'substitution formatter', rc: one(route('r', { prefix: '/' }), {}, { response_headers_to_add: [{ header: { key: 'x', value: '%REQ(x)%' } }] }), message: 'response_headers_to_add[0].header.value: "%REQ(x)%": substitution formatters (%...%) are not supported; write %% for a literal %' },
    { name: 'duplicate domain across virtual hosts', rc: rc([vhost('a', ['x.com', 'A.com'], []), vhost('b', ['a.COM'], [])]), message: 'virtual_hosts[1].domains[0]: duplicate domain "a.COM" (also at virtual_hosts[0].domains[1]); a domain may select one virtual host only' },
    { name: 'two * virtual hosts', rc: rc([vhost('a', ['*'], []), vhost('b', ['*'], [])]), message: 'virtual_hosts[1].domains[0]: duplicate domain "*" (also at virtual_hosts[0].domains[0]); a domain may select one virtual host only' },
    { name: 'virtual host without domains', rc: rc([vhost('a', [], [])]), message: 'virtual_hosts[0].domains: must list at least one domain' },
    { name: 'virtual host without a name', rc: rc([{ domains: ['a'] }]), message: 'virtual_hosts[0].name: is required' },
    { name: 'require_tls', rc: one(route('r', { prefix: '/' }), { require_tls: 'ALL' }), message: 'virtual_hosts[0].require_tls: is not supported by the skein sidecar' },
    { name: 'request mirroring at the top level', rc: one(route('r', { prefix: '/' }), {}, { request_mirror_policies: [{ cluster: 'm' }] }), message: 'request_mirror_policies: is not supported by the skein sidecar' },
    { name: 'direct_response status out of range', rc: one({ match: { prefix: '/' }, direct_response: { status: 99 } }), message: `${R}.direct_response.status: must be in [200, 599], got 99` },
    {
      name: 'direct_response body over max_direct_response_body_size_bytes',
      rc: one({ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'hello' } } }, {}, { max_direct_response_body_size_bytes: { value: 4 } }),
      message: `${R}.direct_response.body: is 5 bytes, over max_direct_response_body_size_bytes (4)`,
    },
    { name: 'direct_response body from a file', rc: one({ match: { prefix: '/' }, direct_response: { status: 200, body: { filename: '/etc/passwd' } } }), message: `${R}.direct_response.body.filename: is not supported by the skein sidecar` },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const input = decoded(c.rc);
      assert.throws(() => RouteTable.build(input, HTTP_FILTERS), (err: unknown) => {
        assert.ok(err instanceof MeshError);
        assert.equal(err.code, 'SKEIN_ERR_VALIDATION');
        if (typeof c.message === 'string') assert.equal(err.message, c.message);
        else assert.match(err.message, c.message);
        return true;
      });
    });
  }

  test('fields present with their default values are accepted (protobufjs writes explicit zeros)', () => {
    const t = build(one(
      route('r', { prefix: '/', case_sensitive: { value: true } }, {
        route: { cluster: 'c', priority: 'DEFAULT', cluster_not_found_response_code: 'SERVICE_UNAVAILABLE', prefix_rewrite: '', append_x_forwarded_host: false },
      }),
      { require_tls: 'NONE', include_request_attempt_count: false },
      { most_specific_header_mutations_wins: false, validate_clusters: { value: true } },
    ));
    assert.equal(matchName(t, 'h'), 'r');
  });
});

// ---------------------------------------------------------------- timeouts

describe('route timeout', () => {
  const cases: [label: string, action: Doc, timeoutMs: number][] = [
    ['absent: Envoy default 15s', {}, 15_000],
    ['timeout 0: none', { timeout: d(0) }, 0],
    ['timeout 2.5s', { timeout: d(2, 500_000_000) }, 2500],
    ['max_stream_duration wins over timeout', { timeout: d(0), max_stream_duration: { max_stream_duration: d(3) } }, 3000],
    ['max_stream_duration 0 disables, even with a timeout', { timeout: d(5), max_stream_duration: { max_stream_duration: d(0) } }, 0],
    ['max_stream_duration without its duration: timeout applies', { timeout: d(4), max_stream_duration: {} }, 4000],
    ['max_stream_duration without its duration, no timeout: default', { max_stream_duration: {} }, 15_000],
    ['sub-millisecond nanos truncate', { timeout: d(0, 1_999_999) }, 1],
  ];
  for (const [label, action, expected] of cases) {
    test(label, () => assert.equal(only(withAction(action)).route!.timeoutMs, expected));
  }
});

// ---------------------------------------------------------------- retry policy

describe('retry policy', () => {
  type Parsed = { retryOn: string[]; numRetries: number; perTryTimeoutMs: number; baseIntervalMs: number; maxIntervalMs: number; retriableStatusCodes: readonly number[]; retriableHeaders: readonly unknown[]; retriesResponses: boolean };
  const parsed = (e: RouteEntry): Parsed | undefined => {
    const p = e.route!.retryPolicy;
    return p && { ...p, retryOn: [...p.retryOn].sort() };
  };
  const base: Parsed = { retryOn: [], numRetries: 1, perTryTimeoutMs: 0, baseIntervalMs: 25, maxIntervalMs: 250, retriableStatusCodes: [], retriableHeaders: [], retriesResponses: false };
  const cases: [label: string, action: Doc, vhostMore: Doc, expected: Parsed | undefined][] = [
    ['none', {}, {}, undefined],
    ['empty: Envoy defaults (1 retry, 25ms base, 10x max)', { retry_policy: {} }, {}, base],
    ['retry_on split and trimmed', { retry_policy: { retry_on: ' 5xx, reset,,connect-failure , unavailable' } }, {}, { ...base, retryOn: ['5xx', 'connect-failure', 'reset', 'unavailable'] }],
    ['num_retries 0 is 0, not the default', { retry_policy: { num_retries: { value: 0 } } }, {}, { ...base, numRetries: 0 }],
    ['num_retries and per_try_timeout', { retry_policy: { num_retries: { value: 3 }, per_try_timeout: ms(250) } }, {}, { ...base, numRetries: 3, perTryTimeoutMs: 250 }],
    ['base_interval only: max is 10x base', { retry_policy: { retry_back_off: { base_interval: ms(100) } } }, {}, { ...base, baseIntervalMs: 100, maxIntervalMs: 1000 }],
    ['base and max', { retry_policy: { retry_back_off: { base_interval: ms(10), max_interval: d(1) } } }, {}, { ...base, baseIntervalMs: 10, maxIntervalMs: 1000 }],
    ['retriable status codes', { retry_policy: { retry_on: 'retriable-status-codes', retriable_status_codes: [503, 504] } }, {}, { ...base, retryOn: ['retriable-status-codes'], retriableStatusCodes: [503, 504], retriesResponses: true }],
    ['virtual host policy when the route has none', {}, { retry_policy: { num_retries: { value: 4 } } }, { ...base, numRetries: 4 }],
    ['route policy replaces the virtual host policy whole', { retry_policy: { retry_on: '5xx' } }, { retry_policy: { num_retries: { value: 4 } } }, { ...base, retryOn: ['5xx'] }],
  ];
  for (const [label, action, vhostMore, expected] of cases) {
    test(label, () => assert.deepEqual(parsed(only(withAction(action, vhostMore))), expected));
  }

  test('RouteAction.perTryTimeoutMs mirrors the retry policy', () => {
    assert.deepEqual(
      [only(withAction({ retry_policy: { per_try_timeout: ms(700) } })).route!.perTryTimeoutMs, only(withAction({})).route!.perTryTimeoutMs],
      [700, 0],
    );
  });

  test('hash policy: header (lower-cased) and cookie', () => {
    const e = only(withAction({ hash_policy: [{ header: { header_name: 'X-User' } }, { cookie: { name: 'sid' } }] }));
    assert.deepEqual(e.route!.hashPolicy, [{ header: 'x-user' }, { cookie: 'sid' }]);
  });
});

// ---------------------------------------------------------------- header mutations

describe('header mutations', () => {
  const add = (key: string, value: string, append_action?: string, more: Doc = {}) => ({ header: { key, value }, ...(append_action ? { append_action } : {}), ...more });
  const three = (more: Doc = {}) => rc([vhost('v', ['*'], [route('r', { prefix: '/' }, {
    request_headers_to_add: [add('X-Route', 'r', 'OVERWRITE_IF_EXISTS_OR_ADD'), add('x-empty', ''), add('x-kept', '', undefined, { keep_empty_value: true })],
    request_headers_to_remove: ['x-gone', 'X-Both'],
    response_headers_to_add: [add('x-pct', '100%%', 'ADD_IF_ABSENT')],
  })], {
    request_headers_to_add: [add('x-vhost', 'v', 'APPEND_IF_EXISTS_OR_ADD')],
    request_headers_to_remove: ['x-both'],
    response_headers_to_remove: ['server'],
  })], { request_headers_to_add: [add('x-global', 'g', 'OVERWRITE_IF_EXISTS')], ...more });

  test('route, then virtual host, then route configuration; removals unioned; empty values dropped unless kept', () => {
    const e = only(three());
    assert.deepEqual(e.requestHeadersToAdd.map((h) => [h.key, h.value, h.append, h.action]), [
      ['x-route', 'r', false, 'OVERWRITE_IF_EXISTS_OR_ADD'],
      ['x-kept', '', true, 'APPEND_IF_EXISTS_OR_ADD'],
      ['x-vhost', 'v', true, 'APPEND_IF_EXISTS_OR_ADD'],
      ['x-global', 'g', false, 'OVERWRITE_IF_EXISTS'],
    ]);
    assert.deepEqual(e.requestHeadersToRemove, ['x-gone', 'x-both']);
    assert.deepEqual(e.responseHeadersToAdd, [{ key: 'x-pct', value: '100%', append: false, action: 'ADD_IF_ABSENT' }]);
    assert.deepEqual(e.responseHeadersToRemove, ['server']);
  });

  test('most_specific_header_mutations_wins reverses the order', () => {
    const e = only(three({ most_specific_header_mutations_wins: true }));
    assert.deepEqual(e.requestHeadersToAdd.map((h) => h.key), ['x-global', 'x-vhost', 'x-route', 'x-kept']);
  });

  const h = (key: string, action: HeaderToAdd['action'], value = 'new'): HeaderToAdd => ({ key, value, action, append: action === 'APPEND_IF_EXISTS_OR_ADD' });
  const applyCases: [label: string, before: HeaderBag, add: HeaderToAdd[], remove: string[], after: HeaderBag][] = [
    ['append to absent adds', {}, [h('x', 'APPEND_IF_EXISTS_OR_ADD')], [], { x: 'new' }],
    ['append to present makes a list', { x: 'old' }, [h('x', 'APPEND_IF_EXISTS_OR_ADD')], [], { x: ['old', 'new'] }],
    ['append to a list extends it', { x: ['a', 'b'] }, [h('x', 'APPEND_IF_EXISTS_OR_ADD')], [], { x: ['a', 'b', 'new'] }],
    ['add-if-absent keeps present', { x: 'old' }, [h('x', 'ADD_IF_ABSENT')], [], { x: 'old' }],
    ['add-if-absent adds absent', {}, [h('x', 'ADD_IF_ABSENT')], [], { x: 'new' }],
    ['overwrite-or-add replaces', { x: ['a', 'b'] }, [h('x', 'OVERWRITE_IF_EXISTS_OR_ADD')], [], { x: 'new' }],
    ['overwrite-if-exists skips absent', {}, [h('x', 'OVERWRITE_IF_EXISTS')], [], {}],
    ['overwrite-if-exists replaces present', { x: 1 }, [h('x', 'OVERWRITE_IF_EXISTS')], [], { x: 'new' }],
    ['removals before additions', { x: 'old', y: 'y' }, [h('x', 'APPEND_IF_EXISTS_OR_ADD')], ['x', 'y', 'z'], { x: 'new' }],
  ];
  for (const [label, before, adds, removes, after] of applyCases) {
    test(`applyHeaderOps: ${label}`, () => {
      const bag = { ...before }; // shallow: a list value is shared with `before`, as with a request's headers
      applyHeaderOps(bag, adds, removes);
      assert.deepEqual(bag, after);
      if (Array.isArray(before['x'])) assert.deepEqual(before['x'], ['a', 'b'], 'a shared list value is never mutated');
    });
  }
});

// ---------------------------------------------------------------- entries

describe('route entries', () => {
  test('direct_response: status and body, no route action', () => {
    const e = only(rc([vhost('v', ['*'], [{ name: 'dr', match: { prefix: '/' }, direct_response: { status: 403, body: { inline_string: 'denied' } } }])]));
    assert.deepEqual([e.route, e.directResponse], [undefined, { status: 403, body: 'denied' }]);
    const bytes = only(rc([vhost('v', ['*'], [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_bytes: Buffer.from('hé') } } }])]));
    assert.deepEqual(bytes.directResponse, { status: 200, body: 'hé' });
  });

  test('a route action entry has no directResponse key and knows its virtual host', () => {
    const e = only(withAction({}));
    assert.deepEqual([e.name, e.virtualHost, 'directResponse' in e, e.route!.clusters], ['r', 'v', false, ['c']]);
  });

  test('entries are frozen and shared across matches (nothing is built per request)', () => {
    const t = build(withAction({ weighted_clusters: { clusters: [{ name: 'a', weight: { value: 1 } }] }, cluster: undefined, retry_policy: { retry_on: '5xx' } }));
    const a = t.match('x', '/a?q=1', 'GET', {})!;
    const b = t.match('y', '/b', 'POST', { z: '1' })!;
    assert.equal(a, b);
    assert.ok([a, a.route, a.route!.clusters, a.route!.cumulativeWeights, a.route!.retryPolicy, a.requestHeadersToAdd].every(Object.isFrozen));
    assert.throws(() => { (a.route!.clusters as string[]).push('evil'); }, TypeError);
  });

  test('an empty route configuration routes nothing', () => {
    assert.equal(build({ name: 'empty' }).match('a', '/', 'GET', {}), undefined);
    assert.equal(build({ name: 'empty' }).name, 'empty');
  });
});

// ---------------------------------------------------------------- typed_per_filter_config: fault and local rate limit

describe('typed_per_filter_config: fault injection and local rate limit', () => {
  const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
  const LRL = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
  const FILTER_CONFIG = 'type.googleapis.com/envoy.config.route.v3.FilterConfig';
  const F = 'envoy.filters.http.fault';
  const L = 'envoy.filters.http.local_ratelimit';
  const pct = (numerator: number, denominator = 'HUNDRED') => ({ numerator, denominator });
  const all = { default_value: pct(100) };
  const fault = (more: Doc) => ({ '@type': FAULT, ...more });
  const limit = (bucket: Doc, more: Doc = {}) => ({ '@type': LRL, stat_prefix: 'rl', token_bucket: bucket, filter_enabled: all, filter_enforced: all, ...more });
  const bucket = (max: number, perFill?: number, fillMs = 1000) => ({ max_tokens: max, ...(perFill === undefined ? {} : { tokens_per_fill: { value: perFill } }), fill_interval: ms(fillMs) });
  const wrap = (config: Doc | undefined, more: Doc = {}) => ({ '@type': FILTER_CONFIG, ...(config ? { config } : {}), ...more });
  /** A one-virtual-host table: routes r0.. with per-filter configs, the vhost's own per-filter config. */
  const table = (routeConfigs: (Doc | undefined)[], vhostConfig?: Doc) =>
    build(rc([vhost('v', ['*'], routeConfigs.map((c, i) => ({
      name: `r${i}`, match: { prefix: `/r${i}` }, route: { cluster: 'c' }, ...(c ? { typed_per_filter_config: c } : {}),
    })), vhostConfig ? { typed_per_filter_config: vhostConfig } : {})]));
  const entry = (t: RouteTable, i: number): RouteEntry => t.match('h', `/r${i}`, 'GET', {})!;
  const faultOf = (e: RouteEntry) => perRouteConfig<FaultPolicy>(e, F);
  const limitOf = (e: RouteEntry) => perRouteConfig<TokenBucket>(e, L);
  const shape = (e: RouteEntry) => ({
    fault: faultOf(e) && { delayMs: faultOf(e)!.fixedDelayMs, delay: faultOf(e)!.delayPerMillion, abort: faultOf(e)!.abortPerMillion, status: faultOf(e)!.abortStatus },
    rateLimit: limitOf(e) && [limitOf(e)!.maxTokens, limitOf(e)!.tokensPerFill, limitOf(e)!.fillIntervalMs],
  });

  test('translated from a mesh: each rule\'s policy and bucket; rules without filters have neither', () => {
    const t = outbound([
      reviews(),
      meshRoute('GRPCRoute', 'faulty', 'reviews', [
        {
          name: 'both', matches: [{ method: { service: 'a.A' } }, { method: { service: 'b.B' } }], backendRefs: [{ name: 'reviews' }],
          filters: [
            { type: 'Fault', fault: { delay: { fixedDelay: '100ms', percentage: 10 }, abort: { grpcStatus: 14, percentage: 5 } } },
            { type: 'LocalRateLimit', localRateLimit: { maxTokens: 3, tokensPerFill: 1, fillInterval: '2s' } },
          ],
        },
        { name: 'http-abort', matches: [{ method: { service: 'c.C' } }], backendRefs: [{ name: 'reviews' }], filters: [{ type: 'Fault', fault: { abort: { httpStatus: 503 } } }] },
        { name: 'plain', backendRefs: [{ name: 'reviews' }] },
      ]),
    ]);
    const at = (path: string) => t.match('reviews', path, 'POST', GRPC)!;
    const [a, b, c, plain] = [at('/a.A/M'), at('/b.B/M'), at('/c.C/M'), at('/z.Z/M')];
    assert.deepEqual([a.name, b.name, c.name, plain.name], ['GRPCRoute/faulty/both/0', 'GRPCRoute/faulty/both/1', 'GRPCRoute/faulty/http-abort', 'GRPCRoute/faulty/plain']);
    assert.deepEqual(shape(a), { fault: { delayMs: 100, delay: 100_000, abort: 50_000, status: { reason: 'fault_abort', http: 200, grpc: 14 } }, rateLimit: [3, 1, 2000] });
    assert.deepEqual(shape(c), { fault: { delayMs: 0, delay: 0, abort: 1_000_000, status: { reason: 'fault_abort', http: 503, grpc: 14 } }, rateLimit: undefined });
    assert.deepEqual(shape(plain), { fault: undefined, rateLimit: undefined });
    assert.ok(limitOf(a) !== limitOf(b), 'each Envoy route (one per match) has its own bucket');
    assert.ok(Object.isFrozen(a) && Object.isFrozen(faultOf(a)) && Object.isFrozen(faultOf(a)!.abortStatus));
  });

  const shares: [label: string, percentage: Doc | undefined, perMillion: number | undefined][] = [
    ['HUNDRED 50 -> 500000', pct(50), 500_000],
    ['TEN_THOUSAND 25 -> 2500', pct(25, 'TEN_THOUSAND'), 2500],
    ['MILLION 1 -> 1', pct(1, 'MILLION'), 1],
    ['numerator above the denominator is capped at 100%', pct(250), 1_000_000],
    ['unset percentage is 0% (Envoy): the fault can never hit, so the route has none', undefined, undefined],
    ['0%: none', pct(0), undefined],
  ];
  for (const [label, percentage, perMillion] of shares) {
    test(`abort percentage: ${label}`, () => {
      const e = entry(table([{ [F]: fault({ abort: { http_status: 404, ...(percentage ? { percentage } : {}) } }) }]), 0);
      assert.deepEqual(faultOf(e) && [faultOf(e)!.abortPerMillion, faultOf(e)!.abortStatus], perMillion === undefined ? undefined : [perMillion, { reason: 'fault_abort', http: 404, grpc: 12 }]);
    });
  }

  test('an HTTPFault with neither delay nor abort means no fault', () => {
    assert.equal(faultOf(entry(table([{ [F]: fault({}) }]), 0)), undefined);
  });

  test('tokens_per_fill defaults to 1; a FilterConfig wrapper (is_optional or not) is unwrapped', () => {
    const t = table([{ [L]: limit(bucket(5)) }, { [L]: wrap(limit(bucket(6, 2, 60_000)), { is_optional: true }) }, { [F]: wrap(fault({ delay: { fixed_delay: ms(7), percentage: pct(100) } })) }]);
    assert.deepEqual([shape(entry(t, 0)).rateLimit, shape(entry(t, 1)).rateLimit, faultOf(entry(t, 2))?.fixedDelayMs], [[5, 1, 1000], [6, 2, 60_000], 7]);
  });

  test('local rate limit applies only when filter_enabled and filter_enforced are both 100% (Envoy defaults both to 0%)', () => {
    const t = table([
      { [L]: limit(bucket(5), { filter_enabled: undefined, filter_enforced: undefined }) },
      { [L]: limit(bucket(5), { filter_enforced: undefined }) },
      { [L]: limit(bucket(5), { filter_enabled: { default_value: pct(1_000_000, 'MILLION'), runtime_key: 'k' }, filter_enforced: { default_value: pct(0) } }) },
      { [L]: limit(bucket(5), { filter_enabled: { default_value: pct(10_000, 'TEN_THOUSAND') } }) },
    ]);
    assert.deepEqual([0, 1, 2, 3].map((i) => shape(entry(t, i)).rateLimit), [undefined, undefined, undefined, [5, 1, 1000]]);
  });

  test('the route\'s entry wins over the virtual host\'s; FilterConfig disabled turns a filter off at that level', () => {
    const vh = { [F]: fault({ abort: { grpc_status: 13, percentage: pct(100) } }), [L]: limit(bucket(9)) };
    const t = table([
      undefined,
      { [F]: fault({ abort: { grpc_status: 4, percentage: pct(100) } }) },
      { [F]: fault({}) },
      { [F]: wrap(undefined, { disabled: true }), [L]: wrap(undefined, { disabled: true }) },
      { [L]: limit(bucket(2)) },
      undefined,
    ], vh);
    const grpc = (i: number) => faultOf(entry(t, i))?.abortStatus?.grpc;
    assert.deepEqual([0, 1, 2, 3, 4, 5].map(grpc), [13, 4, undefined, undefined, 13, 13]);
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => limitOf(entry(t, i))?.maxTokens), [9, 9, 9, undefined, 2, 9]);
    assert.equal(limitOf(entry(t, 0)), limitOf(entry(t, 5)), 'routes inheriting the virtual host\'s limit share its bucket (as in Envoy)');
    assert.notEqual(limitOf(entry(t, 4)), limitOf(entry(t, 0)));
  });

  test('an unknown filter is skipped when its FilterConfig is is_optional (also disabled); known filters are still validated', () => {
    const other = { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' };
    const t = table([{ 'envoy.filters.http.cors': wrap(other, { is_optional: true }), 'x.unknown': wrap(undefined, { disabled: true }), [F]: fault({ delay: { fixed_delay: ms(1), percentage: pct(1) } }) }]);
    assert.equal(faultOf(entry(t, 0))?.delayPerMillion, 10_000);
  });

  test('a rebuilt table starts with full buckets; nowMs sets when they start', () => {
    const conf = rc([vhost('v', ['*'], [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'c' }, typed_per_filter_config: { [L]: limit(bucket(2, 1, 1000)) } }])]);
    const t1 = RouteTable.build(decoded(conf), HTTP_FILTERS, 10_000);
    const b1 = limitOf(t1.match('h', '/', 'GET', {})!)!;
    assert.deepEqual([b1.tryTake(10_000), b1.tryTake(10_000), b1.tryTake(10_999), b1.tryTake(11_000)], [true, true, false, true]);
    const b2 = limitOf(RouteTable.build(decoded(conf), HTTP_FILTERS, 11_000).match('h', '/', 'GET', {})!)!;
    assert.deepEqual([b2.tokens(11_000), b1.tokens(11_000)], [2, 0]);
  });

  const R = 'virtual_hosts[0].routes[0].typed_per_filter_config';
  const bad: [label: string, config: Doc, message: string][] = [
    ['an unknown filter', { 'envoy.filters.http.cors': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
      `${R}["envoy.filters.http.cors"]: unsupported http filter (the skein sidecar runs envoy.filters.http.fault, envoy.filters.http.local_ratelimit, envoy.filters.http.rbac); wrap it in a FilterConfig with is_optional: true to skip it`],
    ['an unknown filter in a FilterConfig that is not optional', { 'x.y': wrap({ '@type': FAULT }) },
      `${R}["x.y"]: unsupported http filter (the skein sidecar runs envoy.filters.http.fault, envoy.filters.http.local_ratelimit, envoy.filters.http.rbac); wrap it in a FilterConfig with is_optional: true to skip it`],
    ['the fault key holding another type', { [F]: limit(bucket(1)) }, `${R}["${F}"]: must be HTTPFault, got ${LRL}`],
    ['a FilterConfig without config', { [F]: wrap(undefined, { is_optional: true }) }, `${R}["${F}"].config: is required unless disabled is true`],
    ['header_delay', { [F]: fault({ delay: { header_delay: {}, percentage: pct(1) } }) }, `${R}["${F}"].delay.header_delay: is not supported by the skein sidecar`],
    ['delay without fixed_delay', { [F]: fault({ delay: { percentage: pct(1) } }) }, `${R}["${F}"].delay: fault_delay_secifier is required: fixed_delay`],
    ['fixed_delay under 1ms', { [F]: fault({ delay: { fixed_delay: d(0, 999_999) } }) }, `${R}["${F}"].delay.fixed_delay: must be at least 1ms`],
    ['abort http_status 600', { [F]: fault({ abort: { http_status: 600 } }) }, `${R}["${F}"].abort.http_status: must be in [200, 599], got 600`],
    ['abort http_status 100', { [F]: fault({ abort: { http_status: 100 } }) }, `${R}["${F}"].abort.http_status: must be in [200, 599], got 100`],
    ['abort without a status', { [F]: fault({ abort: { percentage: pct(1) } }) }, `${R}["${F}"].abort: error_type is required: http_status or grpc_status`],
    ['header_abort', { [F]: fault({ abort: { header_abort: {} } }) }, `${R}["${F}"].abort.header_abort: is not supported by the skein sidecar`],
    ['max_active_faults', { [F]: fault({ abort: { http_status: 503 }, max_active_faults: { value: 3 } }) }, `${R}["${F}"].max_active_faults: is not supported by the skein sidecar`],
    ['upstream_cluster', { [F]: fault({ abort: { http_status: 503 }, upstream_cluster: 'c' }) }, `${R}["${F}"].upstream_cluster: is not supported by the skein sidecar`],
    ['response_rate_limit', { [F]: fault({ response_rate_limit: { fixed_limit: { limit_kbps: 1 } } }) }, `${R}["${F}"].response_rate_limit: is not supported by the skein sidecar`],
    ['local rate limit without stat_prefix', { [L]: wrap(limit(bucket(1), { stat_prefix: '' })) }, `${R}["${L}"].config.stat_prefix: is required`],
    ['local rate limit without a token bucket', { [L]: limit(undefined as never) }, `${R}["${L}"].token_bucket: is required in a per-route config`],
    ['fill_interval under 50ms', { [L]: limit(bucket(1, 1, 49)) }, `${R}["${L}"].token_bucket.fill_interval: must be >= 50ms (Envoy's minimum), got 49ms`],
    ['no fill_interval', { [L]: limit({ max_tokens: 1 }) }, `${R}["${L}"].token_bucket.fill_interval: is required`],
    ['tokens_per_fill 0', { [L]: limit(bucket(1, 0)) }, `${R}["${L}"].token_bucket.tokens_per_fill: must be > 0`],
    ['filter_enabled 50%', { [L]: limit(bucket(1), { filter_enabled: { default_value: pct(50) } }) }, `${R}["${L}"].filter_enabled.default_value: only 0% and 100% are supported by the skein sidecar`],
    ['filter_enforced 99.99%', { [L]: limit(bucket(1), { filter_enforced: { default_value: pct(9999, 'TEN_THOUSAND') } }) }, `${R}["${L}"].filter_enforced.default_value: only 0% and 100% are supported by the skein sidecar`],
    ['a status other than 429', { [L]: limit(bucket(1), { status: { code: 'ServiceUnavailable' } }) }, `${R}["${L}"].status.code: only 429 (TooManyRequests) is supported by the skein sidecar, got ServiceUnavailable`],
    ['response_headers_to_add', { [L]: limit(bucket(1), { response_headers_to_add: [{ header: { key: 'x', value: 'y' } }] }) }, `${R}["${L}"].response_headers_to_add: is not supported by the skein sidecar`],
    ['per-connection buckets', { [L]: limit(bucket(1), { local_rate_limit_per_downstream_connection: true }) }, `${R}["${L}"].local_rate_limit_per_downstream_connection: is not supported by the skein sidecar`],
  ];
  for (const [label, config, message] of bad) {
    test(`rejects ${label}`, () => {
      const input = decoded(rc([vhost('v', ['*'], [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'c' }, typed_per_filter_config: config }])]));
      assert.throws(() => RouteTable.build(input, HTTP_FILTERS), (err: unknown) => {
        assert.ok(err instanceof MeshError);
        assert.equal(err.code, 'SKEIN_ERR_VALIDATION');
        assert.equal(err.message, message);
        return true;
      });
    });
  }

  test('rejects with the virtual host\'s path, and on a weighted cluster', () => {
    const vh = rc([vhost('v', ['*'], [route('r', { prefix: '/' })], { typed_per_filter_config: { [F]: fault({ abort: { http_status: 42 } }) } })]);
    assert.throws(() => build(vh), { message: `virtual_hosts[0].typed_per_filter_config["${F}"].abort.http_status: must be in [200, 599], got 42` });
    const wc = withAction({ cluster: undefined, weighted_clusters: { clusters: [{ name: 'a', weight: { value: 1 }, typed_per_filter_config: { [F]: fault({}) } }] } });
    assert.throws(() => build(wc), { message: 'virtual_hosts[0].routes[0].route.weighted_clusters.clusters[0].typed_per_filter_config: is not supported by the skein sidecar' });
  });
});

// ---------------------------------------------------------------- every problem in one NACK

describe('a RouteConfiguration is NACKed with every problem, each with its field path', () => {
  const LIMIT = {
    'envoy.filters.http.local_ratelimit': {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
      stat_prefix: 'rl', token_bucket: { max_tokens: 1, fill_interval: d(60) },
      filter_enabled: { default_value: { numerator: 100 } }, filter_enforced: { default_value: { numerator: 100 } },
    },
  };
  const limited = { name: 'limited', match: { prefix: '/limited' }, route: { cluster: 'c' }, typed_per_filter_config: LIMIT };
  const good = rc([vhost('a', ['a'], [limited, route('a1', { prefix: '/' })]), vhost('b', ['*'], [route('b0', { prefix: '/x' }), route('b1', { prefix: '/' })])]);
  /** `good` with a bad status in a's first route and no path specifier in b's second: two independent problems. */
  const twoProblems = rc([
    vhost('a', ['a'], [limited, { name: 'a1', match: { prefix: '/' }, direct_response: { status: 99 } }]),
    vhost('b', ['*'], [route('b0', { prefix: '/x' }), route('b1', {})]),
  ]);
  const STATUS = 'virtual_hosts[0].routes[1].direct_response.status: must be in [200, 599], got 99';
  const MATCH = 'virtual_hosts[1].routes[1].match: path_specifier is required: prefix, path, safe_regex or path_separated_prefix';

  test('two problems in two routes: one NACK names both; the accepted table (and its filter state) stays and lends it on', () => {
    const rds = new TypeSubscription(routeType, DEFAULT_LIMITS);
    rds.setNames(['test']);
    const push = (doc: Doc, v: string) => rds.apply({ version_info: v, nonce: v, resources: [encodeResource(TYPE_URLS.ROUTE, doc)] }, 0);
    const bucket = () => perRouteConfig<TokenBucket>((rds.resources.get('test') as RouteTable).match('a', '/limited', 'GET', {})!, 'envoy.filters.http.local_ratelimit')!;
    assert.equal(push(good, '1').kind, 'accepted');
    const first = bucket();
    assert.equal(first.tryTake(0), true);

    const r = push(twoProblems, '2');
    assert.deepEqual(r, { kind: 'rejected', errors: [`test: ${STATUS}; ${MATCH}`], message: `test: ${STATUS}; ${MATCH}` });
    assert.deepEqual(rds.request().error_detail, { code: 3, message: `test: ${STATUS}; ${MATCH}` }, 'the NACK\'s error_detail carries both');
    assert.equal(bucket(), first, 'the rejected configuration left the accepted table in place');

    assert.equal(push(rc([vhost('a', ['a'], [limited, route('a1', { prefix: '/a' })]), vhost('b', ['*'], [route('b1', { prefix: '/' })])]), '3').kind, 'accepted');
    assert.equal(bucket(), first, 'the next good table still takes the previous table\'s bucket');
    assert.equal(bucket().tryTake(0), false, 'a push does not refill the rate limit');
  });

  test('RouteTable.build (callers outside xDS) throws one VALIDATION error listing both, with their paths in details', () => {
    assert.throws(() => build(twoProblems), (err: unknown) => {
      assert.ok(err instanceof MeshError);
      assert.equal(err.code, 'SKEIN_ERR_VALIDATION');
      assert.equal(err.message, `${STATUS}; ${MATCH}`);
      assert.deepEqual(err.details.map((i) => [i.resource, i.path]), [
        ['RouteConfiguration', 'virtual_hosts[0].routes[1].direct_response.status'],
        ['RouteConfiguration', 'virtual_hosts[1].routes[1].match'],
      ]);
      return true;
    });
  });

  test('an unknown field in a route is rejected with its path; the rest of the route is still checked', () => {
    // A field beyond the sidecar's proto subset, as a decoder with Envoy's full protos would hand it over.
    const input = decoded(rc([vhost('v', ['*'], [route('ok', { prefix: '/ok' }), route('r', {})])]));
    input['virtual_hosts'][0].routes[1].cors = { allow_credentials: { value: true } };
    const issues = new Issues();
    assert.equal(RouteTable.decode(input, HTTP_FILTERS, 0, undefined, issues), undefined);
    assert.deepEqual(issues.entries, [
      { path: 'virtual_hosts[0].routes[1].cors', message: 'is not supported by the skein sidecar' },
      { path: 'virtual_hosts[0].routes[1].match', message: 'path_specifier is required: prefix, path, safe_regex or path_separated_prefix' },
    ]);
  });

  test('an action the sidecar does not implement, through the wire: one NACK line with its path', () => {
    const r = routeType.decode(encodeResource(TYPE_URLS.ROUTE, rc([vhost('v', ['*'], [route('ok', { prefix: '/ok' }), { name: 'nf', match: { prefix: '/' }, non_forwarding_action: {} }])])));
    assert.deepEqual(r, { name: 'test', error: 'virtual_hosts[0].routes[1].non_forwarding_action: is not supported by the skein sidecar' });
  });
});

describe('Route.tracing', () => {
  test('a rule\'s tracing.samplingPercent from translate() is the route\'s random_sampling; a rule without it inherits (undefined)', () => {
    const t = outbound([reviews(), meshRoute('GRPCRoute', 'r', 'reviews', [
      { name: 'traced', matches: [{ method: { service: 'reviews.Reviews', method: 'Get' } }], backendRefs: [{ name: 'reviews' }], tracing: { samplingPercent: 12.5 } },
      { name: 'rest', backendRefs: [{ name: 'reviews' }] },
    ])]);
    assert.deepEqual(t.match('reviews:50051', '/reviews.Reviews/Get', 'POST', GRPC)?.tracing, { randomSampling: 0.125, overallSampling: undefined });
    assert.equal(t.match('reviews:50051', '/reviews.Reviews/List', 'POST', GRPC)?.tracing, undefined);
  });

  test('Route.tracing: random and overall sampling read; client_sampling and bad percents NACKed by path', () => {
    const tr = (tracing: Doc) => rc([vhost('v', ['*'], [route('any', { prefix: '/' }, { tracing })])]);
    assert.deepEqual(only(tr({ random_sampling: { numerator: 5, denominator: 'TEN_THOUSAND' }, overall_sampling: { numerator: 50 } })).tracing, { randomSampling: 0.0005, overallSampling: 0.5 });
    assert.deepEqual(routeType.decode(encodeResource(TYPE_URLS.ROUTE, tr({ client_sampling: { numerator: 1 } }))), { name: 'test', error: 'virtual_hosts[0].routes[0].tracing.client_sampling: is not supported by the skein sidecar' });
  });
});

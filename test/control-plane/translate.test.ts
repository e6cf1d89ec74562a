/**
 * translate(): pins the exact xDS v3 JSON each config produces (listeners, route configs,
 * clusters, load assignments), table-driven, plus determinism and proto encodability.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMesh } from '../../shared/src/config/mesh';
import { translate } from '../../control-plane/src/translate/translate';
import type { XdsResourceSet } from '../../control-plane/src/translate/translate';
import type { XdsObject } from '../../control-plane/src/translate/xds-json';
import type { EndpointView } from '../../control-plane/src/registry/endpoint-registry';
import { SnapshotCache } from '../../control-plane/src/discovery/snapshot-cache';
import { decodeAny, TYPE_URLS } from '../../shared/src/xds/protos';
import { encodeResource } from '../../shared/src/xds/pack';
import { NO_YIELD } from '../../shared/src/slicer';
import { transportSocketMatches } from '../../control-plane/src/translate/mtls';
import { TEST_TRANSLATE } from '../support/mesh-trust';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = Record<string, any>;

const V = 'skein.dev/v1alpha1';
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const LOCAL_RATELIMIT = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
const FILTER_CONFIG = 'type.googleapis.com/envoy.config.route.v3.FilterConfig';
const HPO_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const HPO = `type.googleapis.com/${HPO_KEY}`;
const ADS = { ads: {}, resource_api_version: 'V3' };

const d = (seconds: number, nanos = 0) => ({ seconds, nanos });
const u = (value: number) => ({ value });

/** Service 'reviews': grpc, port 50051, subsets v1/v2 by label version, one static endpoint. */
function reviews(spec: Doc = {}): Doc {
  return {
    apiVersion: V, kind: 'Service', metadata: { name: 'reviews' },
    spec: {
      ports: [{ name: 'grpc', port: 50051 }],
      subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }],
      endpoints: [{ address: '10.0.0.1', port: 50051, labels: { version: 'v1' }, zone: 'zone-a' }],
      ...spec,
    },
  };
}
const web = (): Doc => ({ apiVersion: V, kind: 'Service', metadata: { name: 'web' }, spec: { protocol: 'http', ports: [{ name: 'http', port: 8080 }] } });
const grpcRoute = (name: string, rules: Doc[], spec: Doc = {}): Doc =>
  ({ apiVersion: V, kind: 'GRPCRoute', metadata: { name }, spec: { parentRefs: [{ name: 'reviews' }], rules, ...spec } });
const httpRoute = (name: string, rules: Doc[], spec: Doc = {}): Doc =>
  ({ apiVersion: V, kind: 'HTTPRoute', metadata: { name }, spec: { parentRefs: [{ name: 'reviews' }], rules, ...spec } });
const policy = (name: string, target: Doc, spec: Doc): Doc =>
  ({ apiVersion: V, kind: 'BackendPolicy', metadata: { name }, spec: { targetRef: { kind: 'Service', ...target }, ...spec } });
const ep = (address: string, port: number, more: Partial<EndpointView> = {}): EndpointView =>
  ({ service: 'reviews', address, port, labels: {}, zone: '', weight: 1, health: 'HEALTHY', ...more });

function run(docs: Doc[], live: EndpointView[] = []): XdsResourceSet {
  return translate(buildMesh(docs), live, TEST_TRANSLATE);
}

/** Resources as untyped JSON: the assertions below compare them with plain objects. */
function one(typed: readonly object[], name: string, key = 'name'): XdsObject {
  const list = typed as readonly XdsObject[];
  const found = list.filter((x) => x[key] === name);
  assert.equal(found.length, 1, `expected exactly one resource ${name}, got ${list.map((x) => String(x[key])).join(', ')}`);
  return found[0]!;
}

const apiOnly = (ls: readonly object[]) => (ls as XdsObject[]).filter((l) => 'api_listener' in l);

describe('listeners', () => {
  const listener = (name: string, svc: string): XdsObject => ({
    name,
    api_listener: {
      api_listener: {
        '@type': HCM,
        stat_prefix: svc,
        rds: { route_config_name: svc, config_source: ADS },
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
      },
    },
  });

  test('one api_listener per name a client may ask for: service and service:port', () => {
    assert.deepEqual(apiOnly(run([reviews()]).listeners), [listener('reviews', 'reviews'), listener('reviews:50051', 'reviews')]);
  });

  test('a service with two ports gets three listeners, all pointing at its route config', () => {
    const out = run([reviews({ ports: [{ name: 'grpc', port: 50051 }, { name: 'admin', port: 9000 }] })]);
    assert.deepEqual(apiOnly(out.listeners), [listener('reviews', 'reviews'), listener('reviews:50051', 'reviews'), listener('reviews:9000', 'reviews')]);
  });

  test('router is the last http filter', () => {
    for (const l of apiOnly(run([reviews(), web()]).listeners)) {
      const filters = (l as any).api_listener.api_listener.http_filters as XdsObject[];
      assert.deepEqual(filters.at(-1), { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } });
    }
  });
});

describe('sidecar outbound resources', () => {
  test('one outbound listener for every sidecar: HCM over RDS skein.outbound, router last, bound on loopback:15001', () => {
    const out = run([reviews(), web()]);
    const l = out.listeners.find((x) => x['name'] === 'skein.outbound')!;
    assert.deepEqual(l, {
      name: 'skein.outbound',
      address: { socket_address: { address: '127.0.0.1', port_value: 15001 } },
      traffic_direction: 'OUTBOUND',
      filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: {
        '@type': HCM, stat_prefix: 'outbound', codec_type: 'AUTO',
        rds: { route_config_name: 'skein.outbound', config_source: ADS },
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
        // The mesh's trace sampling (Telemetry "mesh"; none applied: the 1% default).
        tracing: { random_sampling: { value: 1 } },
      } }] }],
    });
  });

  test('the outbound route table holds every service\'s virtual host, identical to the per-service ones', () => {
    const out = run([reviews(), web()]);
    const outbound = out.routes.find((x) => x['name'] === 'skein.outbound')!;
    const perService = out.routes.filter((x) => x['name'] !== 'skein.outbound').flatMap((rc) => rc['virtual_hosts'] as XdsObject[]);
    assert.deepEqual(outbound['virtual_hosts'], perService);
    assert.deepEqual((outbound['virtual_hosts'] as XdsObject[]).map((v) => v['name']), ['reviews', 'web']);
  });
});

// The sidecar decodes these clusters below; its decoding of the mTLS fields is the sidecar's own
// test, so these services are DISABLE (clusters without transport_socket_matches).
describe('peak_ewma load balancing', () => {
  const withPolicy = (lb: Record<string, unknown>) => run([reviews({ mtls: 'DISABLE' }), { apiVersion: 'skein.dev/v1alpha1', kind: 'BackendPolicy', metadata: { name: 'p' }, spec: { targetRef: { name: 'reviews' }, loadBalancer: lb } }]);

  test('goes in load_balancing_policy: skein.lb.v1.PeakEwma first, then locality-weighted round robin for other clients', () => {
    const c = withPolicy({ policy: 'peak_ewma', decay: '5s' }).clusters.find((x) => x['name'] === 'reviews')!;
    assert.equal(c['lb_policy'], 'ROUND_ROBIN', 'clients that predate load_balancing_policy read round robin');
    assert.deepEqual(c['load_balancing_policy'], { policies: [
      { typed_extension_config: { name: 'skein.lb.peak_ewma', typed_config: { '@type': 'type.googleapis.com/skein.lb.v1.PeakEwma', decay: { seconds: 5, nanos: 0 } } } },
      { typed_extension_config: { name: 'envoy.load_balancing_policies.wrr_locality', typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality',
        endpoint_picking_policy: { policies: [{ typed_extension_config: { name: 'envoy.load_balancing_policies.round_robin', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin' } } }] },
      } } },
    ] });
    assert.deepEqual(withPolicy({ policy: 'peak_ewma' }).clusters[0]!['load_balancing_policy'], (() => { const x = withPolicy({ policy: 'peak_ewma', decay: '10s' }).clusters[0]!['load_balancing_policy']; return x; })(), 'decay defaults to 10s');
  });

  test('encodes, and the sidecar decodes it back to peak_ewma with its decay', async () => {
    const { clusterType } = await import('../../sidecar/src/xds/cluster-type');
    const cache = new SnapshotCache();
    cache.set(withPolicy({ policy: 'peak_ewma', decay: '2500ms' }), 1);
    const d = clusterType.decode(cache.get(TYPE_URLS.CLUSTER, 'reviews/v1')!.any);
    assert.ok('value' in d, 'error' in d ? d.error : '');
    assert.equal(d.value.lbPolicy, 'peak_ewma');
    assert.equal(d.value.decayMs, 2500);
  });
});

describe('every load balancer survives the wire: the sidecar decodes what the control plane encodes', () => {
  const withPolicy = (lb: Record<string, unknown>) => run([reviews({ mtls: 'DISABLE' }), { apiVersion: 'skein.dev/v1alpha1', kind: 'BackendPolicy', metadata: { name: 'p' }, spec: { targetRef: { name: 'reviews' }, loadBalancer: lb } }]);
  const cases: { lb: Record<string, unknown>; expect: Record<string, unknown> }[] = [
    { lb: { policy: 'round_robin' }, expect: { lbPolicy: 'round_robin' } },
    { lb: { policy: 'least_request' }, expect: { lbPolicy: 'least_request', choiceCount: undefined } },
    { lb: { policy: 'least_request', choiceCount: 4 }, expect: { lbPolicy: 'least_request', choiceCount: 4 } },
    { lb: { policy: 'random' }, expect: { lbPolicy: 'random' } },
    { lb: { policy: 'ring_hash', hashOn: { header: 'x-user' }, minRingSize: 64 }, expect: { lbPolicy: 'ring_hash', minRingSize: 64 } },
    { lb: { policy: 'peak_ewma', decay: '3s' }, expect: { lbPolicy: 'peak_ewma', decayMs: 3000 } },
  ];
  for (const c of cases) {
    test(JSON.stringify(c.lb), async () => {
      const { clusterType } = await import('../../sidecar/src/xds/cluster-type');
      const cache = new SnapshotCache();
      cache.set(withPolicy(c.lb), 1);
      const d = clusterType.decode(cache.get(TYPE_URLS.CLUSTER, 'reviews')!.any);
      assert.ok('value' in d, 'error' in d ? d.error : '');
      for (const [k, v] of Object.entries(c.expect)) assert.equal((d.value as unknown as Record<string, unknown>)[k], v, k);
    });
  }
});

describe('resource order', () => {
  test('services sorted by name; each service cluster followed by its subset clusters', () => {
    const out = run([web(), reviews()]);
    assert.deepEqual(out.listeners.map((x) => x['name']), ['reviews', 'reviews:50051', 'skein.inbound.reviews', 'web', 'web:8080', 'skein.inbound.web', 'skein.outbound']);
    assert.deepEqual(out.routes.map((x) => x['name']), ['reviews', 'web', 'skein.outbound']);
    assert.deepEqual(out.clusters.map((x) => x['name']), ['reviews', 'reviews/v1', 'reviews/v2', 'web']);
    assert.deepEqual(out.endpoints.map((x) => x['cluster_name']), ['reviews', 'reviews/v1', 'reviews/v2', 'web']);
    assert.deepEqual(out.secrets.map((x) => x['name']), ['ROOTCA']);
  });
});

interface RouteCase {
  name: string;
  docs: Doc[];
  /** The virtual host's domains; default: reviews, reviews:50051. */
  domains?: string[];
  routes: XdsObject[];
  /** The virtual host carries the per-filter-config digest (any route has typed_per_filter_config). */
  digest?: true;
}

const T0 = d(0);
const DEFAULT_ROUTE = { name: 'default', match: { prefix: '/' }, route: { cluster: 'reviews', timeout: T0 } };

const ROUTE_CASES: RouteCase[] = [
  { name: 'no route attaches: catch-all to the service cluster', docs: [], routes: [DEFAULT_ROUTE] },
  {
    name: 'a route attached to another service does not apply',
    docs: [web(), httpRoute('web-api', [{ backendRefs: [{ name: 'web' }] }], { parentRefs: [{ name: 'web' }], hostnames: ['web.example.com'] })],
    routes: [DEFAULT_ROUTE],
  },
  {
    name: 'weighted split: weighted_clusters with subset cluster names',
    docs: [grpcRoute('split', [{ backendRefs: [{ name: 'reviews', subset: 'v1', weight: 90 }, { name: 'reviews', subset: 'v2', weight: 10 }] }])],
    routes: [{
      name: 'GRPCRoute/split/rule-0',
      match: { prefix: '/', grpc: {} },
      route: { weighted_clusters: { clusters: [{ name: 'reviews/v1', weight: u(90) }, { name: 'reviews/v2', weight: u(10) }] }, timeout: T0 },
    }],
  },
  {
    name: '0-weight entries are dropped',
    docs: [grpcRoute('split', [{ backendRefs: [{ name: 'reviews', weight: 0 }, { name: 'reviews', subset: 'v1', weight: 3 }, { name: 'reviews', subset: 'v2', weight: 1 }] }])],
    routes: [{
      name: 'GRPCRoute/split/rule-0',
      match: { prefix: '/', grpc: {} },
      route: { weighted_clusters: { clusters: [{ name: 'reviews/v1', weight: u(3) }, { name: 'reviews/v2', weight: u(1) }] }, timeout: T0 },
    }],
  },
  {
    name: 'a single live backend becomes `cluster`',
    docs: [grpcRoute('split', [{ backendRefs: [{ name: 'reviews', subset: 'v1', weight: 100 }, { name: 'reviews', subset: 'v2', weight: 0 }] }])],
    routes: [{ name: 'GRPCRoute/split/rule-0', match: { prefix: '/', grpc: {} }, route: { cluster: 'reviews/v1', timeout: T0 } }],
  },
  {
    name: 'a backend without subset goes to the service cluster',
    docs: [grpcRoute('all', [{ backendRefs: [{ name: 'reviews' }] }])],
    routes: [{ name: 'GRPCRoute/all/rule-0', match: { prefix: '/', grpc: {} }, route: { cluster: 'reviews', timeout: T0 } }],
  },
  {
    name: 'timeout 2s sets timeout and max_stream_duration; 1500ms splits into nanos',
    docs: [grpcRoute('t', [
      { name: 'two', backendRefs: [{ name: 'reviews' }], timeout: '2s' },
      { name: 'one-and-a-half', backendRefs: [{ name: 'reviews' }], timeout: '1500ms' },
    ])],
    routes: [
      { name: 'GRPCRoute/t/two', match: { prefix: '/', grpc: {} }, route: { cluster: 'reviews', timeout: d(2), max_stream_duration: { max_stream_duration: d(2) } } },
      { name: 'GRPCRoute/t/one-and-a-half', match: { prefix: '/', grpc: {} }, route: { cluster: 'reviews', timeout: d(1, 500_000_000), max_stream_duration: { max_stream_duration: d(1, 500_000_000) } } },
    ],
  },
  {
    name: 'retry_policy: defaults, and every field set',
    docs: [grpcRoute('r', [
      { name: 'defaults', backendRefs: [{ name: 'reviews' }], retry: {} },
      {
        name: 'full', backendRefs: [{ name: 'reviews' }],
        retry: { retries: 3, retryOn: ['unavailable', '5xx'], perTryTimeout: '500ms', retriableStatusCodes: [503, 504], backoff: { baseInterval: '10ms', maxInterval: '1s' } },
      },
    ])],
    routes: [
      {
        name: 'GRPCRoute/r/defaults', match: { prefix: '/', grpc: {} },
        route: {
          cluster: 'reviews', timeout: T0,
          retry_policy: { retry_on: 'connect-failure,refused-stream,unavailable', num_retries: u(2), retry_back_off: { base_interval: d(0, 25_000_000), max_interval: d(0, 250_000_000) } },
        },
      },
      {
        name: 'GRPCRoute/r/full', match: { prefix: '/', grpc: {} },
        route: {
          cluster: 'reviews', timeout: T0,
          retry_policy: {
            retry_on: 'unavailable,5xx,retriable-status-codes', num_retries: u(3),
            retry_back_off: { base_interval: d(0, 10_000_000), max_interval: d(1) },
            per_try_timeout: d(0, 500_000_000), retriable_status_codes: [503, 504],
          },
        },
      },
    ],
  },
  {
    name: 'header matches in the original HeaderMatcher fields every client reads (exact_match, safe_regex_match, present_match), :method first',
    docs: [httpRoute('h', [{
      matches: [{
        path: { type: 'Exact', value: '/api/v1' }, method: 'POST',
        headers: [
          { name: 'x-a', value: '1' },
          { name: 'x-b', type: 'RegularExpression', value: '^b+$' },
          { name: 'x-c', type: 'Present' },
          { name: 'x-d', value: 'no', invert: true },
          { name: 'x-e', type: 'Present', invert: true },
        ],
      }],
      backendRefs: [{ name: 'reviews' }],
    }])],
    routes: [{
      name: 'HTTPRoute/h/rule-0',
      match: {
        path: '/api/v1',
        headers: [
          { name: ':method', exact_match: 'POST' },
          { name: 'x-a', exact_match: '1' },
          { name: 'x-b', safe_regex_match: { regex: '^b+$' } },
          { name: 'x-c', present_match: true },
          { name: 'x-d', exact_match: 'no', invert_match: true },
          { name: 'x-e', present_match: true, invert_match: true },
        ],
      },
      route: { cluster: 'reviews', timeout: T0 },
    }],
  },
  {
    name: 'HTTP path match types; several matches get /index suffixes; HTTPRoute has no grpc match',
    docs: [httpRoute('p', [{
      name: 'paths',
      matches: [{ path: { type: 'PathPrefix', value: '/a' } }, { path: { type: 'Exact', value: '/b' } }, { path: { type: 'RegularExpression', value: '/c/[0-9]+' } }, { method: 'GET' }],
      backendRefs: [{ name: 'reviews' }],
    }])],
    routes: [
      { name: 'HTTPRoute/p/paths/0', match: { prefix: '/a' }, route: { cluster: 'reviews', timeout: T0 } },
      { name: 'HTTPRoute/p/paths/1', match: { path: '/b' }, route: { cluster: 'reviews', timeout: T0 } },
      { name: 'HTTPRoute/p/paths/2', match: { safe_regex: { regex: '/c/[0-9]+' } }, route: { cluster: 'reviews', timeout: T0 } },
      { name: 'HTTPRoute/p/paths/3', match: { prefix: '/', headers: [{ name: ':method', exact_match: 'GET' }] }, route: { cluster: 'reviews', timeout: T0 } },
    ],
  },
  {
    name: 'gRPC service/method matches become path, prefix or safe_regex; GRPCRoute adds grpc: {}',
    docs: [grpcRoute('g', [{
      name: 'm',
      matches: [
        { method: { service: 'reviews.Reviews', method: 'Get' } },
        { method: { service: 'reviews.Reviews' } },
        { method: { method: 'Get' } },
        { method: { type: 'RegularExpression', service: 'reviews\\..*', method: 'Get.*' } },
        { method: { type: 'RegularExpression', method: 'List' } },
        { method: { service: 'reviews.Reviews', method: 'Get' }, headers: [{ name: 'x-user', value: 'u' }] },
      ],
      backendRefs: [{ name: 'reviews' }],
    }])],
    routes: [
      { name: 'GRPCRoute/g/m/0', match: { path: '/reviews.Reviews/Get', grpc: {} }, route: { cluster: 'reviews', timeout: T0 } },
      { name: 'GRPCRoute/g/m/1', match: { prefix: '/reviews.Reviews/', grpc: {} }, route: { cluster: 'reviews', timeout: T0 } },
      { name: 'GRPCRoute/g/m/2', match: { safe_regex: { regex: '/[^/]+/Get' }, grpc: {} }, route: { cluster: 'reviews', timeout: T0 } },
      { name: 'GRPCRoute/g/m/3', match: { safe_regex: { regex: '/(?:reviews\\..*)/(?:Get.*)' }, grpc: {} }, route: { cluster: 'reviews', timeout: T0 } },
      { name: 'GRPCRoute/g/m/4', match: { safe_regex: { regex: '/[^/]+/(?:List)' }, grpc: {} }, route: { cluster: 'reviews', timeout: T0 } },
      { name: 'GRPCRoute/g/m/5', match: { path: '/reviews.Reviews/Get', headers: [{ name: 'x-user', exact_match: 'u' }], grpc: {} }, route: { cluster: 'reviews', timeout: T0 } },
    ],
  },
  {
    name: 'request/response header modifiers with append_action',
    docs: [httpRoute('mod', [{
      backendRefs: [{ name: 'reviews' }],
      filters: [
        { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-s', value: '1' }], add: [{ name: 'x-a', value: '2' }], remove: ['x-r'] } },
        { type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'x-resp', value: 'v' }] } },
      ],
    }, {
      name: 'remove-only',
      backendRefs: [{ name: 'reviews' }],
      filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['server'] } }],
    }])],
    routes: [
      {
        name: 'HTTPRoute/mod/rule-0', match: { prefix: '/' }, route: { cluster: 'reviews', timeout: T0 },
        request_headers_to_add: [
          { header: { key: 'x-s', value: '1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
          { header: { key: 'x-a', value: '2' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
        ],
        request_headers_to_remove: ['x-r'],
        response_headers_to_add: [{ header: { key: 'x-resp', value: 'v' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }],
      },
      { name: 'HTTPRoute/mod/remove-only', match: { prefix: '/' }, route: { cluster: 'reviews', timeout: T0 }, response_headers_to_remove: ['server'] },
    ],
  },
  {
    name: 'route hostnames join the domains; routes evaluated by route name across kinds',
    docs: [
      grpcRoute('b-grpc', [{ backendRefs: [{ name: 'reviews', subset: 'v2' }] }], { hostnames: ['reviews.example.com', 'reviews.example.com:8443'] }),
      httpRoute('a-http', [{ backendRefs: [{ name: 'reviews', subset: 'v1' }] }], { hostnames: ['reviews.example.com', '*.reviews.internal'] }),
    ],
    domains: ['reviews', 'reviews:50051', 'reviews.example.com', '*.reviews.internal', 'reviews.example.com:8443'],
    routes: [
      { name: 'HTTPRoute/a-http/rule-0', match: { prefix: '/' }, route: { cluster: 'reviews/v1', timeout: T0 } },
      { name: 'GRPCRoute/b-grpc/rule-0', match: { prefix: '/', grpc: {} }, route: { cluster: 'reviews/v2', timeout: T0 } },
    ],
  },
  {
    name: 'ring_hash subset policy puts a hash_policy on routes to it',
    docs: [
      policy('v1-hash', { name: 'reviews', subset: 'v1' }, { loadBalancer: { policy: 'ring_hash', hashOn: { header: 'x-user' } } }),
      grpcRoute('split', [
        { name: 'both', backendRefs: [{ name: 'reviews', subset: 'v1', weight: 1 }, { name: 'reviews', subset: 'v2', weight: 1 }] },
        { name: 'v2-only', backendRefs: [{ name: 'reviews', subset: 'v1', weight: 0 }, { name: 'reviews', subset: 'v2', weight: 1 }] },
      ]),
    ],
    routes: [
      {
        name: 'GRPCRoute/split/both', match: { prefix: '/', grpc: {} },
        route: { weighted_clusters: { clusters: [{ name: 'reviews/v1', weight: u(1) }, { name: 'reviews/v2', weight: u(1) }] }, timeout: T0, hash_policy: [{ header: { header_name: 'x-user' } }] },
      },
      { name: 'GRPCRoute/split/v2-only', match: { prefix: '/', grpc: {} }, route: { cluster: 'reviews/v2', timeout: T0 } },
    ],
  },
  {
    name: 'ring_hash on the service applies to its subsets; one hash_policy per distinct hashOn',
    docs: [
      policy('svc-hash', { name: 'reviews' }, { loadBalancer: { policy: 'ring_hash', hashOn: { cookie: 'session' } } }),
      policy('v2-rr', { name: 'reviews', subset: 'v2' }, { loadBalancer: { policy: 'round_robin' } }),
      grpcRoute('split', [{ backendRefs: [{ name: 'reviews' }, { name: 'reviews', subset: 'v1' }, { name: 'reviews', subset: 'v2' }] }]),
    ],
    routes: [{
      name: 'GRPCRoute/split/rule-0', match: { prefix: '/', grpc: {} },
      route: {
        weighted_clusters: { clusters: [{ name: 'reviews', weight: u(1) }, { name: 'reviews/v1', weight: u(1) }, { name: 'reviews/v2', weight: u(1) }] },
        timeout: T0, hash_policy: [{ cookie: { name: 'session' } }],
      },
    }],
  },
  {
    name: 'Fault: HTTPFault keyed by the filter name in typed_per_filter_config; percentages per MILLION',
    digest: true,
    docs: [grpcRoute('f', [
      { name: 'both', backendRefs: [{ name: 'reviews' }], filters: [{ type: 'Fault', fault: { delay: { fixedDelay: '1500ms', percentage: 12.5 }, abort: { httpStatus: 503 } } }] },
      { name: 'grpc-abort', backendRefs: [{ name: 'reviews' }], filters: [{ type: 'Fault', fault: { abort: { grpcStatus: 0, percentage: 0.0001 } } }] },
      { name: 'delay-off', backendRefs: [{ name: 'reviews' }], filters: [{ type: 'Fault', fault: { delay: { fixedDelay: '1ms', percentage: 0 } } }] },
    ])],
    routes: [
      {
        name: 'GRPCRoute/f/both', match: { prefix: '/', grpc: {} }, route: { cluster: 'reviews', timeout: T0 },
        typed_per_filter_config: { 'envoy.filters.http.fault': {
          '@type': FAULT,
          delay: { fixed_delay: d(1, 500_000_000), percentage: { numerator: 125_000, denominator: 'MILLION' } },
          abort: { http_status: 503, percentage: { numerator: 1_000_000, denominator: 'MILLION' } },
        } },
      },
      {
        name: 'GRPCRoute/f/grpc-abort', match: { prefix: '/', grpc: {} }, route: { cluster: 'reviews', timeout: T0 },
        typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT, abort: { grpc_status: 0, percentage: { numerator: 1, denominator: 'MILLION' } } } },
      },
      {
        name: 'GRPCRoute/f/delay-off', match: { prefix: '/', grpc: {} }, route: { cluster: 'reviews', timeout: T0 },
        typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT, delay: { fixed_delay: d(0, 1_000_000), percentage: { numerator: 0, denominator: 'MILLION' } } } },
      },
    ],
  },
  {
    name: 'LocalRateLimit: LocalRateLimit in a FilterConfig marked is_optional, on every match of the rule, after header ops',
    digest: true,
    docs: [httpRoute('rl', [{
      name: 'limited',
      matches: [{ path: { value: '/a' } }, { path: { value: '/b' } }],
      backendRefs: [{ name: 'reviews' }],
      filters: [
        { type: 'LocalRateLimit', localRateLimit: { maxTokens: 100, tokensPerFill: 10, fillInterval: '250ms' } },
        { type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['server'] } },
        { type: 'Fault', fault: { abort: { grpcStatus: 14, percentage: 5 } } },
      ],
    }])],
    routes: ['/a', '/b'].map((prefix, i) => ({
      name: `HTTPRoute/rl/limited/${i}`, match: { prefix }, route: { cluster: 'reviews', timeout: T0 },
      response_headers_to_remove: ['server'],
      typed_per_filter_config: {
        'envoy.filters.http.fault': { '@type': FAULT, abort: { grpc_status: 14, percentage: { numerator: 50_000, denominator: 'MILLION' } } },
        'envoy.filters.http.local_ratelimit': {
          '@type': FILTER_CONFIG,
          config: {
            '@type': LOCAL_RATELIMIT,
            stat_prefix: 'HTTPRoute.rl.limited',
            token_bucket: { max_tokens: 100, tokens_per_fill: u(10), fill_interval: d(0, 250_000_000) },
            filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
            filter_enforced: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
            rate_limited_as_resource_exhausted: true,
          },
          is_optional: true,
        },
      },
    })),
  },
  {
    name: 'the default route to a ring_hash service carries its hash_policy',
    docs: [policy('svc-hash', { name: 'reviews' }, { loadBalancer: { policy: 'ring_hash', hashOn: { header: 'x-user' } } })],
    routes: [{ ...DEFAULT_ROUTE, route: { ...DEFAULT_ROUTE.route, hash_policy: [{ header: { header_name: 'x-user' } }] } }],
  },
];

describe('route configurations', () => {
  for (const c of ROUTE_CASES) {
    test(c.name, () => {
      const out = run([reviews(), ...c.docs]);
      const rc = structuredClone(one(out.routes, 'reviews')) as Doc;
      if (c.digest) {
        assert.match(rc['virtual_hosts'][0].metadata.filter_metadata['skein.dev'].fields.per_filter_config_digest.stringValue, /^[0-9a-f]{16}$/);
        delete rc['virtual_hosts'][0].metadata;
      }
      assert.deepEqual(rc, {
        name: 'reviews',
        virtual_hosts: [{ name: 'reviews', domains: c.domains ?? ['reviews', 'reviews:50051'], routes: c.routes }],
      });
    });
  }
});

interface ClusterCase {
  name: string;
  docs: Doc[];
  /** Expected clusters by name; every other cluster of the mesh is checked to be the plain default. */
  expect: Record<string, XdsObject>;
}

/** The retry budget every cluster carries when no policy sets one: on by default, in Envoy's field. */
const DEFAULT_BUDGET = { budget_percent: u(20), min_retry_concurrency: u(3) };

/** The cluster translate emits with no policy, with `extra` fields added or replaced. */
/**
 * A cluster of a STRICT service carries its mTLS settings (pinned in translate/mtls.test.ts); the
 * policy cases below are about everything else.
 */
function mtlsOf(cluster: string, protocol: 'grpc' | 'http'): XdsObject {
  const service = cluster.split('/')[0]!;
  const svc = buildMesh([protocol === 'grpc' ? reviews() : web()].map((d) => ({ ...d, metadata: { name: service } }))).services.get(service)!;
  return { transport_socket_matches: transportSocketMatches(svc, TEST_TRANSLATE.trust) as unknown as XdsObject[] };
}

function cluster(name: string, extra: XdsObject = {}, protocol: 'grpc' | 'http' = 'grpc'): XdsObject {
  return {
    ...mtlsOf(name, protocol),
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS, service_name: name },
    lb_policy: 'ROUND_ROBIN',
    typed_extension_protocol_options: {
      [HPO_KEY]: { '@type': HPO, explicit_http_config: protocol === 'grpc' ? { http2_protocol_options: {} } : { http_protocol_options: {} } },
    },
    circuit_breakers: { thresholds: [{ priority: 'DEFAULT', retry_budget: DEFAULT_BUDGET }] },
    outlier_detection: DEFAULT_OD,
    ...extra,
  };
}

/** Every trigger explicitly off, and no uneject on a passing health check. */
const OFF = {
  enforcing_consecutive_5xx: u(0), enforcing_consecutive_gateway_failure: u(0), enforcing_consecutive_local_origin_failure: u(0),
  enforcing_success_rate: u(0), enforcing_local_origin_success_rate: u(0), enforcing_failure_percentage: u(0), successful_active_health_check_uneject_host: { value: false },
};
/** Failure accrual on by default: 3 local-origin failures in a row eject, at most half the hosts. */
const LOCAL_ORIGIN = { enforcing_consecutive_local_origin_failure: u(100), consecutive_local_origin_failure: u(3), split_external_local_origin_errors: true };
const DEFAULT_OD = { ...OFF, ...LOCAL_ORIGIN, max_ejection_percent: u(50) };

/** A service-level policy: the service cluster and both subset clusters (which inherit it) get `extra`. */
const allThree = (extra: XdsObject): Record<string, XdsObject> =>
  Object.fromEntries(['reviews', 'reviews/v1', 'reviews/v2'].map((n) => [n, cluster(n, extra)]));

const LB = (t: string) => `type.googleapis.com/envoy.extensions.load_balancing_policies.${t}`;
/** load_balancing_policy: `first`, then locality-weighted round robin for clients that lack it. */
const withFallback = (first: XdsObject): XdsObject => ({ policies: [
  { typed_extension_config: first },
  { typed_extension_config: { name: 'envoy.load_balancing_policies.wrr_locality', typed_config: {
    '@type': LB('wrr_locality.v3.WrrLocality'),
    endpoint_picking_policy: { policies: [{ typed_extension_config: { name: 'envoy.load_balancing_policies.round_robin', typed_config: { '@type': LB('round_robin.v3.RoundRobin') } } }] },
  } } },
] });

const CLUSTER_CASES: ClusterCase[] = [
  {
    name: 'no policy: EDS over ADS, round robin, http2 for grpc and http1 for http services',
    docs: [web()],
    expect: { reviews: cluster('reviews'), 'reviews/v1': cluster('reviews/v1'), 'reviews/v2': cluster('reviews/v2'), web: cluster('web', {}, 'http') },
  },
  {
    name: 'least_request with choiceCount: LeastRequest in load_balancing_policy with a round-robin fallback; lb_policy ROUND_ROBIN (gRPC NACKs LEAST_REQUEST)',
    docs: [policy('p', { name: 'reviews' }, { loadBalancer: { policy: 'least_request', choiceCount: 3 } })],
    expect: allThree({ load_balancing_policy: withFallback({ name: 'envoy.load_balancing_policies.least_request', typed_config: { '@type': LB('least_request.v3.LeastRequest'), choice_count: u(3) } }) }),
  },
  {
    name: 'least_request without choiceCount has no choice_count',
    docs: [policy('p', { name: 'reviews' }, { loadBalancer: { policy: 'least_request' } })],
    expect: allThree({ load_balancing_policy: withFallback({ name: 'envoy.load_balancing_policies.least_request', typed_config: { '@type': LB('least_request.v3.LeastRequest') } }) }),
  },
  {
    name: 'random: Random in load_balancing_policy with a round-robin fallback; lb_policy ROUND_ROBIN',
    docs: [policy('p', { name: 'reviews' }, { loadBalancer: { policy: 'random' } })],
    expect: allThree({ load_balancing_policy: withFallback({ name: 'envoy.load_balancing_policies.random', typed_config: { '@type': LB('random.v3.Random') } }) }),
  },
  {
    name: 'ring_hash with XX_HASH and ring sizes',
    docs: [policy('p', { name: 'reviews' }, { loadBalancer: { policy: 'ring_hash', hashOn: { header: 'x-user' }, minRingSize: 1024, maxRingSize: 8192 } })],
    expect: allThree({ lb_policy: 'RING_HASH', ring_hash_lb_config: { hash_function: 'XX_HASH', minimum_ring_size: u(1024), maximum_ring_size: u(8192) } }),
  },
  {
    name: 'ring_hash without ring sizes',
    docs: [policy('p', { name: 'reviews' }, { loadBalancer: { policy: 'ring_hash', hashOn: { cookie: 's' } } })],
    expect: allThree({ lb_policy: 'RING_HASH', ring_hash_lb_config: { hash_function: 'XX_HASH' } }),
  },
  {
    name: 'circuit breaker thresholds and retry budget',
    docs: [policy('p', { name: 'reviews' }, {
      circuitBreaker: { maxConnections: 100, maxPendingRequests: 10, maxRequests: 200, maxRetries: 3 },
      retryBudget: { budgetPercent: 25.5, minRetryConcurrency: 5 },
    })],
    expect: allThree({
      circuit_breakers: { thresholds: [{
        priority: 'DEFAULT', max_connections: u(100), max_pending_requests: u(10), max_requests: u(200), max_retries: u(3),
        retry_budget: { budget_percent: u(25.5), min_retry_concurrency: u(5) },
      }] },
    }),
  },
  {
    name: 'an empty retryBudget section gives the same default budget as no section',
    docs: [policy('p', { name: 'reviews' }, { retryBudget: {} })],
    expect: allThree({ circuit_breakers: { thresholds: [{ priority: 'DEFAULT', retry_budget: DEFAULT_BUDGET }] } }),
  },
  {
    name: 'a retryBudget section with only budgetPercent keeps minRetryConcurrency 3',
    docs: [policy('p', { name: 'reviews' }, { retryBudget: { budgetPercent: 50 } })],
    expect: allThree({ circuit_breakers: { thresholds: [{ priority: 'DEFAULT', retry_budget: { budget_percent: u(50), min_retry_concurrency: u(3) } }] } }),
  },
  {
    name: 'healthyPanicThreshold becomes common_lb_config.healthy_panic_threshold',
    docs: [policy('p', { name: 'reviews' }, { healthyPanicThreshold: 25 })],
    expect: allThree({ common_lb_config: { healthy_panic_threshold: { value: 25 } } }),
  },
  {
    name: 'circuit breaker with one field emits only that field (and the default budget)',
    docs: [policy('p', { name: 'reviews' }, { circuitBreaker: { maxRequests: 0 } })],
    expect: allThree({ circuit_breakers: { thresholds: [{ priority: 'DEFAULT', max_requests: u(0), retry_budget: DEFAULT_BUDGET }] } }),
  },
  {
    name: 'empty outlier detection is the default: local-origin failure accrual (3) only, every other enforcing_* 0, no uneject on a passing check',
    docs: [policy('p', { name: 'reviews' }, { outlierDetection: {} })],
    expect: allThree({ outlier_detection: DEFAULT_OD }),
  },
  {
    name: 'consecutiveLocalOriginFailure 0 turns the default failure accrual off',
    docs: [policy('p', { name: 'reviews' }, { outlierDetection: { consecutiveLocalOriginFailure: 0 } })],
    expect: allThree({ outlier_detection: { ...OFF, consecutive_local_origin_failure: u(0), split_external_local_origin_errors: true, max_ejection_percent: u(50) } }),
  },
  {
    name: 'outlier detection: unejectOnHealthCheckSuccess true is sent as is',
    docs: [policy('p', { name: 'reviews' }, { outlierDetection: { unejectOnHealthCheckSuccess: true } })],
    expect: allThree({ outlier_detection: { ...DEFAULT_OD, successful_active_health_check_uneject_host: { value: true } } }),
  },
  {
    name: 'outlier detection: consecutive 5xx and success rate (stdev factor x1000)',
    docs: [policy('p', { name: 'reviews' }, {
      outlierDetection: {
        consecutive5xx: 5, interval: '10s', baseEjectionTime: '30s', maxEjectionTime: '5m', maxEjectionPercent: 50,
        successRate: { minimumHosts: 5, requestVolume: 100, stdevFactor: 1.9 },
      },
    })],
    expect: allThree({
      outlier_detection: {
        ...OFF, ...LOCAL_ORIGIN, enforcing_consecutive_5xx: u(100), enforcing_success_rate: u(100), enforcing_local_origin_success_rate: u(100),
        consecutive_5xx: u(5), interval: d(10), base_ejection_time: d(30), max_ejection_time: d(300), max_ejection_percent: u(50),
        success_rate_minimum_hosts: u(5), success_rate_request_volume: u(100), success_rate_stdev_factor: u(1900),
      },
    }),
  },
  {
    name: 'outlier detection: gateway, local origin and failure percentage',
    docs: [policy('p', { name: 'reviews' }, {
      outlierDetection: { consecutiveGatewayFailure: 3, consecutiveLocalOriginFailure: 2, failurePercentage: { threshold: 85, minimumHosts: 3, requestVolume: 50 } },
    })],
    expect: allThree({
      outlier_detection: {
        ...OFF, enforcing_consecutive_gateway_failure: u(100), enforcing_consecutive_local_origin_failure: u(100), enforcing_failure_percentage: u(100),
        consecutive_gateway_failure: u(3), consecutive_local_origin_failure: u(2), split_external_local_origin_errors: true,
        failure_percentage_threshold: u(85), failure_percentage_minimum_hosts: u(3), failure_percentage_request_volume: u(50), max_ejection_percent: u(50),
      },
    }),
  },
  {
    name: 'outlier detection: an empty successRate section turns success-rate ejection on',
    docs: [policy('p', { name: 'reviews' }, { outlierDetection: { successRate: {} } })],
    expect: allThree({ outlier_detection: { ...DEFAULT_OD, enforcing_success_rate: u(100), enforcing_local_origin_success_rate: u(100) } }),
  },
  {
    name: 'http health check',
    docs: [policy('p', { name: 'reviews' }, { healthCheck: { http: { path: '/ready', expectedStatuses: [200, 204] }, interval: '5s', timeout: '500ms', healthyThreshold: 2, unhealthyThreshold: 4 } })],
    expect: allThree({
      health_checks: [{
        timeout: d(0, 500_000_000), interval: d(5), healthy_threshold: u(2), unhealthy_threshold: u(4),
        http_health_check: { path: '/ready', expected_statuses: [{ start: 200, end: 201 }, { start: 204, end: 205 }] },
      }],
    }),
  },
  {
    name: 'grpc health check with defaults, and with a service name',
    docs: [
      policy('a', { name: 'reviews', subset: 'v1' }, { healthCheck: { grpc: {} } }),
      policy('b', { name: 'reviews', subset: 'v2' }, { healthCheck: { grpc: { service: 'reviews.Reviews' } } }),
    ],
    expect: {
      reviews: cluster('reviews'),
      'reviews/v1': cluster('reviews/v1', { health_checks: [{ timeout: d(1), interval: d(10), healthy_threshold: u(1), unhealthy_threshold: u(3), grpc_health_check: {} }] }),
      'reviews/v2': cluster('reviews/v2', { health_checks: [{ timeout: d(1), interval: d(10), healthy_threshold: u(1), unhealthy_threshold: u(3), grpc_health_check: { service_name: 'reviews.Reviews' } }] }),
    },
  },
  {
    name: 'connection pool: connect timeout, common and http2 protocol options',
    docs: [policy('p', { name: 'reviews' }, { connectionPool: { connectTimeout: '2s', idleTimeout: '1m', maxRequestsPerConnection: 1000, maxConcurrentStreams: 100 } })],
    expect: allThree({
      connect_timeout: d(2),
      typed_extension_protocol_options: {
        [HPO_KEY]: {
          '@type': HPO,
          explicit_http_config: { http2_protocol_options: { max_concurrent_streams: u(100) } },
          common_http_protocol_options: { idle_timeout: d(60), max_requests_per_connection: u(1000) },
        },
      },
    }),
  },
  {
    name: 'connection pool on an http service keeps http1',
    docs: [web(), policy('p', { name: 'web' }, { connectionPool: { idleTimeout: '30s', maxConcurrentStreams: 100 } })],
    expect: {
      web: cluster('web', {
        typed_extension_protocol_options: {
          [HPO_KEY]: { '@type': HPO, explicit_http_config: { http_protocol_options: {} }, common_http_protocol_options: { idle_timeout: d(30) } },
        },
      }, 'http'),
    },
  },
  {
    name: 'subset-level policy overrides the service-level one section by section, each section whole',
    docs: [
      policy('svc', { name: 'reviews' }, {
        loadBalancer: { policy: 'least_request', choiceCount: 4 },
        circuitBreaker: { maxConnections: 100, maxRequests: 50 },
        outlierDetection: { consecutive5xx: 7 },
      }),
      policy('v1', { name: 'reviews', subset: 'v1' }, {
        loadBalancer: { policy: 'ring_hash', hashOn: { header: 'x-user' } },
        circuitBreaker: { maxPendingRequests: 7 },
      }),
    ],
    expect: {
      reviews: cluster('reviews', {
        load_balancing_policy: withFallback({ name: 'envoy.load_balancing_policies.least_request', typed_config: { '@type': LB('least_request.v3.LeastRequest'), choice_count: u(4) } }),
        circuit_breakers: { thresholds: [{ priority: 'DEFAULT', max_connections: u(100), max_requests: u(50), retry_budget: DEFAULT_BUDGET }] },
        outlier_detection: { ...DEFAULT_OD, enforcing_consecutive_5xx: u(100), consecutive_5xx: u(7) },
      }),
      'reviews/v1': cluster('reviews/v1', {
        lb_policy: 'RING_HASH', ring_hash_lb_config: { hash_function: 'XX_HASH' },
        circuit_breakers: { thresholds: [{ priority: 'DEFAULT', max_pending_requests: u(7), retry_budget: DEFAULT_BUDGET }] },
        outlier_detection: { ...DEFAULT_OD, enforcing_consecutive_5xx: u(100), consecutive_5xx: u(7) },
      }),
      'reviews/v2': cluster('reviews/v2', {
        load_balancing_policy: withFallback({ name: 'envoy.load_balancing_policies.least_request', typed_config: { '@type': LB('least_request.v3.LeastRequest'), choice_count: u(4) } }),
        circuit_breakers: { thresholds: [{ priority: 'DEFAULT', max_connections: u(100), max_requests: u(50), retry_budget: DEFAULT_BUDGET }] },
        outlier_detection: { ...DEFAULT_OD, enforcing_consecutive_5xx: u(100), consecutive_5xx: u(7) },
      }),
    },
  },
  {
    name: 'a subset-only policy leaves the service cluster and other subsets alone',
    docs: [policy('v2', { name: 'reviews', subset: 'v2' }, { loadBalancer: { policy: 'random' } })],
    expect: { reviews: cluster('reviews'), 'reviews/v1': cluster('reviews/v1'), 'reviews/v2': cluster('reviews/v2', { load_balancing_policy: withFallback({ name: 'envoy.load_balancing_policies.random', typed_config: { '@type': LB('random.v3.Random') } }) }) },
  },
];

describe('clusters', () => {
  for (const c of CLUSTER_CASES) {
    test(c.name, () => {
      const out = run([reviews(), ...c.docs]);
      for (const [name, want] of Object.entries(c.expect)) assert.deepEqual(one(out.clusters, name), want, `cluster ${name}`);
      // Clusters not named in the case carry no policy.
      for (const cl of out.clusters) {
        const name = cl['name'] as string;
        if (c.expect[name] === undefined) assert.deepEqual(cl, cluster(name, {}, name === 'web' ? 'http' : 'grpc'), `cluster ${name} should be plain`);
      }
    });
  }
});

interface ClaCase {
  name: string;
  /** Overrides of the reviews Service spec. */
  spec?: Doc;
  live?: EndpointView[];
  expect: Record<string, XdsObject[]>;
}

type Health = EndpointView['health'];
const lbEp = (address: string, port: number, weight = 1, health: Health = 'HEALTHY'): XdsObject => ({
  endpoint: { address: { socket_address: { address, port_value: port } } },
  health_status: health,
  load_balancing_weight: u(weight),
});
const loc = (zone: string, weight: number, eps: XdsObject[]): XdsObject => ({ locality: zone === '' ? {} : { zone }, load_balancing_weight: u(weight), lb_endpoints: eps });

const CLA_CASES: ClaCase[] = [
  {
    name: 'the static endpoint, in its zone and its subset; an empty subset cluster still gets a CLA',
    expect: {
      reviews: [loc('zone-a', 1, [lbEp('10.0.0.1', 50051)])],
      'reviews/v1': [loc('zone-a', 1, [lbEp('10.0.0.1', 50051)])],
      'reviews/v2': [],
    },
  },
  {
    name: 'an empty service: every cluster has endpoints []',
    spec: { endpoints: [] },
    expect: { reviews: [], 'reviews/v1': [], 'reviews/v2': [] },
  },
  {
    name: 'localities grouped by zone and sorted; weight = sum of endpoint weights; endpoints sorted by address then port',
    spec: {
      endpoints: [
        { address: '10.0.0.3', port: 50051, zone: 'zone-b', labels: { version: 'v1' }, weight: 2 },
        { address: '10.0.0.1', port: 50052, zone: 'zone-b', labels: { version: 'v2' }, weight: 3 },
        { address: '10.0.0.1', port: 50051, zone: 'zone-b', labels: { version: 'v1' }, health: 'UNHEALTHY' },
        { address: '10.0.0.9', port: 50051, zone: 'zone-a', labels: { version: 'v2' }, weight: 5, health: 'DRAINING' },
        { address: '10.0.0.5', port: 50051 },
      ],
    },
    expect: {
      reviews: [
        loc('', 1, [lbEp('10.0.0.5', 50051)]),
        loc('zone-a', 5, [lbEp('10.0.0.9', 50051, 5, 'DRAINING')]),
        loc('zone-b', 6, [lbEp('10.0.0.1', 50051, 1, 'UNHEALTHY'), lbEp('10.0.0.1', 50052, 3), lbEp('10.0.0.3', 50051, 2)]),
      ],
      'reviews/v1': [loc('zone-b', 3, [lbEp('10.0.0.1', 50051, 1, 'UNHEALTHY'), lbEp('10.0.0.3', 50051, 2)])],
      'reviews/v2': [loc('zone-a', 5, [lbEp('10.0.0.9', 50051, 5, 'DRAINING')]), loc('zone-b', 3, [lbEp('10.0.0.1', 50052, 3)])],
    },
  },
  {
    name: 'static and live endpoints merged; the live one wins on the same address and port',
    live: [
      ep('10.0.0.1', 50051, { labels: { version: 'v2' }, zone: 'zone-c', weight: 4, health: 'DRAINING' }),
      ep('10.0.0.2', 50051, { labels: { version: 'v1' }, zone: 'zone-a' }),
      ep('10.0.0.1', 50052, { labels: { version: 'v1' }, zone: 'zone-a', weight: 2 }),
    ],
    expect: {
      reviews: [
        loc('zone-a', 3, [lbEp('10.0.0.1', 50052, 2), lbEp('10.0.0.2', 50051)]),
        loc('zone-c', 4, [lbEp('10.0.0.1', 50051, 4, 'DRAINING')]),
      ],
      'reviews/v1': [loc('zone-a', 3, [lbEp('10.0.0.1', 50052, 2), lbEp('10.0.0.2', 50051)])],
      'reviews/v2': [loc('zone-c', 4, [lbEp('10.0.0.1', 50051, 4, 'DRAINING')])],
    },
  },
  {
    name: 'subset clusters contain only endpoints matching every selector label',
    spec: {
      subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'canary', labels: { version: 'v1', track: 'canary' } }],
      endpoints: [
        { address: '10.0.0.1', port: 1, labels: { version: 'v1', track: 'canary', extra: 'x' } },
        { address: '10.0.0.2', port: 1, labels: { version: 'v1' } },
        { address: '10.0.0.3', port: 1, labels: { track: 'canary' } },
        { address: '10.0.0.4', port: 1, labels: { version: 'v2', track: 'canary' } },
      ],
    },
    expect: {
      reviews: [loc('', 4, [lbEp('10.0.0.1', 1), lbEp('10.0.0.2', 1), lbEp('10.0.0.3', 1), lbEp('10.0.0.4', 1)])],
      'reviews/v1': [loc('', 2, [lbEp('10.0.0.1', 1), lbEp('10.0.0.2', 1)])],
      'reviews/canary': [loc('', 1, [lbEp('10.0.0.1', 1)])],
    },
  },
  {
    name: 'live endpoints for unknown services are ignored',
    live: [ep('10.0.0.7', 50051, { service: 'ratings', labels: { version: 'v1' }, zone: 'zone-a' }), ep('10.0.0.1', 50051, { service: 'ratings', zone: 'zone-z' })],
    expect: {
      reviews: [loc('zone-a', 1, [lbEp('10.0.0.1', 50051)])],
      'reviews/v1': [loc('zone-a', 1, [lbEp('10.0.0.1', 50051)])],
      'reviews/v2': [],
    },
  },
];

describe('cluster load assignments', () => {
  for (const c of CLA_CASES) {
    test(c.name, () => {
      const out = run([reviews(c.spec)], c.live);
      assert.deepEqual(out.endpoints, Object.entries(c.expect).map(([name, endpoints]) => ({ cluster_name: name, endpoints })));
    });
  }
});

/** A mesh that uses every feature, for the determinism and encoding tests. */
function richDocs(): Doc[] {
  return [
    reviews({
      ports: [{ name: 'grpc', port: 50051 }, { name: 'admin', port: 9000 }],
      endpoints: [
        { address: '10.0.0.1', port: 50051, labels: { version: 'v1' }, zone: 'zone-a' },
        { address: 'reviews-2.internal', port: 50051, labels: { version: 'v2' }, zone: 'zone-b', weight: 3, health: 'DRAINING' },
      ],
    }),
    web(),
    policy('reviews', { name: 'reviews' }, {
      loadBalancer: { policy: 'least_request', choiceCount: 3 },
      circuitBreaker: { maxConnections: 100, maxPendingRequests: 10, maxRequests: 200, maxRetries: 3 },
      retryBudget: { budgetPercent: 12.5 },
      outlierDetection: {
        consecutive5xx: 5, consecutiveGatewayFailure: 2, consecutiveLocalOriginFailure: 4, interval: '10s', baseEjectionTime: '30s', maxEjectionTime: '5m', maxEjectionPercent: 50,
        successRate: { minimumHosts: 5, requestVolume: 100, stdevFactor: 1.9 }, failurePercentage: { threshold: 85, minimumHosts: 3, requestVolume: 50 },
      },
      healthCheck: { grpc: { service: 'reviews.Reviews' }, interval: '5s', timeout: '500ms' },
      connectionPool: { connectTimeout: '2s', idleTimeout: '1h', maxRequestsPerConnection: 1000, maxConcurrentStreams: 100 },
    }),
    policy('reviews-v1', { name: 'reviews', subset: 'v1' }, { loadBalancer: { policy: 'ring_hash', hashOn: { header: 'x-user' }, minRingSize: 1024, maxRingSize: 4096 }, outlierDetection: {} }),
    policy('reviews-v2', { name: 'reviews', subset: 'v2' }, { loadBalancer: { policy: 'random' }, healthCheck: { http: { expectedStatuses: [200, 204] } } }),
    policy('web', { name: 'web' }, { loadBalancer: { policy: 'ring_hash', hashOn: { cookie: 'session' } }, connectionPool: { idleTimeout: '30s' } }),
    grpcRoute('reviews-split', [
      {
        name: 'get',
        matches: [
          { method: { service: 'reviews.Reviews', method: 'Get' }, headers: [{ name: 'x-user', type: 'Present' }] },
          { method: { type: 'RegularExpression', service: 'reviews\\..*', method: 'List.*' } },
          { method: { method: 'Watch' } },
        ],
        backendRefs: [{ name: 'reviews', subset: 'v1', weight: 90 }, { name: 'reviews', subset: 'v2', weight: 10 }],
        timeout: '2s',
        retry: { retries: 3, retryOn: ['unavailable', 'cancelled', 'deadline-exceeded'], perTryTimeout: '500ms', backoff: { baseInterval: '10ms', maxInterval: '1s' } },
      },
      { backendRefs: [{ name: 'reviews', subset: 'v2' }] },
    ], { hostnames: ['reviews.example.com:443'] }),
    httpRoute('web-api', [{
      matches: [
        { path: { type: 'RegularExpression', value: '/api/v[0-9]+/.*' }, method: 'POST', headers: [{ name: 'x-a', value: 'b', invert: true }, { name: 'x-re', type: 'RegularExpression', value: '^a.*$' }] },
        { path: { type: 'Exact', value: '/healthz' } },
      ],
      backendRefs: [{ name: 'web' }],
      retry: { retryOn: ['5xx', 'gateway-error', 'reset'], retriableStatusCodes: [503] },
      filters: [
        { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-s', value: '1' }], add: [{ name: 'x-a', value: '2' }], remove: ['x-r'] } },
        { type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'x-resp', value: 'v' }], remove: ['server'] } },
      ],
    }], { parentRefs: [{ name: 'web' }], hostnames: ['web.example.com', '*.web.internal'] }),
  ];
}

function richLive(): EndpointView[] {
  return [
    ep('10.0.1.5', 50051, { labels: { version: 'v2' }, zone: 'zone-b', weight: 2 }),
    ep('10.0.1.1', 50051, { labels: { version: 'v1' }, zone: 'zone-a' }),
    ep('10.0.0.1', 50051, { labels: { version: 'v1' }, zone: 'zone-a', weight: 7, health: 'UNHEALTHY' }),
    ep('10.0.1.1', 50052, { labels: { version: 'v1' }, zone: 'zone-c' }),
    ep('fd00::1', 50051, { labels: { version: 'v2' }, zone: 'zone-b' }),
    ep('10.0.2.1', 8080, { service: 'web', zone: 'zone-a' }),
    ep('10.0.2.2', 8080, { service: 'web', zone: 'zone-a', health: 'DRAINING' }),
    ep('10.0.9.9', 1234, { service: 'gone' }),
  ];
}

describe('determinism', () => {
  test('endpoints and documents in a different input order give identical output', () => {
    const a = translate(buildMesh(richDocs()), richLive(), TEST_TRANSLATE);
    const b = translate(buildMesh([...richDocs()].reverse()), [...richLive()].reverse(), TEST_TRANSLATE);
    const rotated = richLive();
    rotated.push(...rotated.splice(0, 3));
    const c = translate(buildMesh(richDocs()), rotated, TEST_TRANSLATE);
    assert.deepEqual(b, a);
    assert.deepEqual(c, a);
    // Key order too, since versions are hashes of what is encoded from these objects.
    assert.equal(JSON.stringify(b), JSON.stringify(a));
    assert.equal(JSON.stringify(c), JSON.stringify(a));
  });

  test('translate does not mutate its inputs', () => {
    const mesh = buildMesh(richDocs());
    const live = richLive();
    const before = JSON.stringify({ live, services: [...mesh.services.values()], routes: mesh.routes, policies: mesh.policies });
    translate(mesh, live, TEST_TRANSLATE);
    assert.equal(JSON.stringify({ live, services: [...mesh.services.values()], routes: mesh.routes, policies: mesh.policies }), before);
  });
});

describe('encoding through the snapshot cache', () => {
  const TYPES = [
    [TYPE_URLS.LISTENER, 'listeners', 'name'],
    [TYPE_URLS.ROUTE, 'routes', 'name'],
    [TYPE_URLS.CLUSTER, 'clusters', 'name'],
    [TYPE_URLS.ENDPOINT, 'endpoints', 'cluster_name'],
    [TYPE_URLS.SECRET, 'secrets', 'name'],
  ] as const;

  test('every resource of a rich mesh encodes', () => {
    const res = translate(buildMesh(richDocs()), richLive(), TEST_TRANSLATE);
    const cache = new SnapshotCache();
    const change = cache.set(res, 1);
    for (const [type, key, nameKey] of TYPES) {
      const names = (res[key] as readonly object[] as readonly XdsObject[]).map((r) => r[nameKey] as string);
      assert.ok(names.length > 0, `no ${key}`);
      assert.deepEqual([...cache.all(type).keys()].sort(), [...names].sort(), `${key} in the cache`);
      assert.deepEqual([...(change.changed.get(type) ?? [])].sort(), [...names].sort(), `${key} reported as changed`);
      for (const name of names) assert.match(cache.get(type, name)!.version, /^[0-9a-f]{16}$/);
    }
    assert.equal(res.clusters.length, 4);
    assert.equal(res.listeners.length, 8);
  });

  test('encoded resources decode with their policy fields intact (explicit zeros included)', () => {
    const cache = new SnapshotCache();
    cache.set(translate(buildMesh(richDocs()), richLive(), TEST_TRANSLATE), 1);
    const v1 = decodeAny(cache.get(TYPE_URLS.CLUSTER, 'reviews/v1')!.any);
    assert.equal(v1.lb_policy, 'RING_HASH');
    assert.equal(v1.ring_hash_lb_config.hash_function, 'XX_HASH');
    // Every enforcing_* wrapper is present even at 0, so no client falls back to its default of 100.
    assert.deepEqual(Object.keys(v1.outlier_detection).filter((k) => k.startsWith('enforcing_')).sort(), [
      'enforcing_consecutive_5xx', 'enforcing_consecutive_gateway_failure', 'enforcing_consecutive_local_origin_failure',
      'enforcing_failure_percentage', 'enforcing_local_origin_success_rate', 'enforcing_success_rate',
    ]);
    const svc = decodeAny(cache.get(TYPE_URLS.CLUSTER, 'reviews')!.any);
    assert.equal(svc.outlier_detection.success_rate_stdev_factor.value, 1900);
    assert.equal(svc.circuit_breakers.thresholds[0].retry_budget.budget_percent.value, 12.5);
    assert.ok(svc.typed_extension_protocol_options[HPO_KEY].type_url.endsWith('HttpProtocolOptions'));
    const route = decodeAny(cache.get(TYPE_URLS.ROUTE, 'reviews')!.any);
    assert.equal(route.virtual_hosts[0].routes[0].route.hash_policy[0].header.header_name, 'x-user');
    assert.equal(route.virtual_hosts[0].routes[0].match.path, '/reviews.Reviews/Get');
    const cla = decodeAny(cache.get(TYPE_URLS.ENDPOINT, 'reviews')!.any);
    assert.deepEqual(cla.endpoints.map((l: any) => l.locality.zone), ['zone-a', 'zone-b', 'zone-c']);
    const lis = decodeAny(cache.get(TYPE_URLS.LISTENER, 'reviews:9000')!.any);
    assert.ok(lis.api_listener.api_listener.type_url.endsWith('HttpConnectionManager'));
  });

  test('re-translating the same input yields identical per-resource versions', () => {
    const a = new SnapshotCache();
    const b = new SnapshotCache();
    a.set(translate(buildMesh(richDocs()), richLive(), TEST_TRANSLATE), 1);
    b.set(translate(buildMesh([...richDocs()].reverse()), [...richLive()].reverse(), TEST_TRANSLATE), 1);
    for (const [type] of TYPES) {
      const va = new Map([...a.all(type)].map(([n, r]) => [n, r.version]));
      const vb = new Map([...b.all(type)].map(([n, r]) => [n, r.version]));
      assert.deepEqual(vb, va, type);
    }
    // Setting the same content again changes nothing.
    assert.equal(a.set(translate(buildMesh(richDocs()), richLive(), TEST_TRANSLATE), 2).changed.size, 0);
  });

  test('changing one route weight changes exactly that route configuration\'s version', () => {
    const cache = new SnapshotCache();
    cache.set(translate(buildMesh(richDocs()), richLive(), TEST_TRANSLATE), 1);
    const before = cache.get(TYPE_URLS.ROUTE, 'reviews')!.version;
    const docs = richDocs();
    docs.find((x) => x['kind'] === 'GRPCRoute')!['spec'].rules[0].backendRefs[1].weight = 20;
    const change = cache.set(translate(buildMesh(docs), richLive(), TEST_TRANSLATE), 2);
    // The service's own route config and the sidecars' outbound table, which embeds its virtual host.
    assert.deepEqual([...change.changed.entries()].map(([t, n]) => [t, [...n].sort()]), [[TYPE_URLS.ROUTE, ['reviews', 'skein.outbound']]]);
    assert.notEqual(cache.get(TYPE_URLS.ROUTE, 'reviews')!.version, before);
  });

  test('a live endpoint change touches only the affected load assignments', () => {
    const cache = new SnapshotCache();
    cache.set(translate(buildMesh(richDocs()), richLive(), TEST_TRANSLATE), 1);
    const live = richLive();
    live.find((e) => e.address === 'fd00::1')!.weight = 9;
    const change = cache.set(translate(buildMesh(richDocs()), live, TEST_TRANSLATE), 2);
    assert.deepEqual([...change.changed.entries()].map(([t, n]) => [t, [...n].sort()]), [[TYPE_URLS.ENDPOINT, ['reviews', 'reviews/v2']]]);
  });
});

/** The encoded RouteConfiguration of service reviews. */
function encodeVh(docs: Doc[]) {
  const cache = new SnapshotCache();
  cache.set(run(docs), 1);
  return cache.get(TYPE_URLS.ROUTE, 'reviews')!.any;
}

describe('fault injection and local rate limit: http filters on the listeners', () => {
  const ROUTER_F = { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } };
  const FAULT_F = { name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT } };
  const RL_F = { name: 'envoy.filters.http.local_ratelimit', typed_config: { '@type': LOCAL_RATELIMIT, stat_prefix: 'local_rate_limit' }, is_optional: true };
  const hcmOf = (l: object): Doc => ('api_listener' in l ? (l as Doc)['api_listener']['api_listener'] : (l as Doc)['filter_chains'][0]['filters'][0]['typed_config']);
  // The inbound listeners serve the local app with the router alone (translate/inbound-listener.test.ts).
  const chains = (out: XdsResourceSet): Record<string, unknown> => Object.fromEntries(out.listeners.filter((l) => !l['name']!.startsWith('skein.inbound.')).map((l) => [l['name'], hcmOf(l)['http_filters']]));
  const faultRule = { backendRefs: [{ name: 'reviews' }], filters: [{ type: 'Fault', fault: { abort: { grpcStatus: 14 } } }] };
  const limitRule = { backendRefs: [{ name: 'web' }], filters: [{ type: 'LocalRateLimit', localRateLimit: { maxTokens: 5 } }] };

  test('a mesh with neither filter gets the router alone on every listener', () => {
    const out = run([reviews(), web(), grpcRoute('plain', [{ backendRefs: [{ name: 'reviews' }], retry: {} }])]);
    assert.deepEqual(chains(out), { reviews: [ROUTER_F], 'reviews:50051': [ROUTER_F], web: [ROUTER_F], 'web:8080': [ROUTER_F], 'skein.outbound': [ROUTER_F] });
  });

  test('per service: a filter is listed only where its routes use it; the outbound listener gets every filter in use, fault first', () => {
    const out = run([reviews(), web(), grpcRoute('f', [faultRule]), httpRoute('rl', [limitRule], { parentRefs: [{ name: 'web' }] })]);
    assert.deepEqual(chains(out), {
      reviews: [FAULT_F, ROUTER_F], 'reviews:50051': [FAULT_F, ROUTER_F],
      web: [RL_F, ROUTER_F], 'web:8080': [RL_F, ROUTER_F],
      'skein.outbound': [FAULT_F, RL_F, ROUTER_F],
    });
  });

  test('both filters on one service: fault, local_ratelimit, router', () => {
    const out = run([reviews(), grpcRoute('f', [faultRule, { ...limitRule, backendRefs: [{ name: 'reviews' }] }])]);
    assert.deepEqual(chains(out), { reviews: [FAULT_F, RL_F, ROUTER_F], 'reviews:50051': [FAULT_F, RL_F, ROUTER_F], 'skein.outbound': [FAULT_F, RL_F, ROUTER_F] });
  });

  test('a route with two parentRefs lists the filter on both services', () => {
    const out = run([reviews(), web(), grpcRoute('f', [faultRule], { parentRefs: [{ name: 'reviews' }, { name: 'web' }] })]);
    assert.deepEqual([chains(out)['reviews'], chains(out)['web:8080']], [[FAULT_F, ROUTER_F], [FAULT_F, ROUTER_F]]);
  });

  test('encodes; nested Anys decode: HTTPFault bare, LocalRateLimit inside FilterConfig, grpc_status 0 kept', () => {
    const cache = new SnapshotCache();
    cache.set(run([reviews(), grpcRoute('f', [
      { name: 'zero', backendRefs: [{ name: 'reviews' }], filters: [{ type: 'Fault', fault: { abort: { grpcStatus: 0, percentage: 50 } } }] },
      { name: 'rl', backendRefs: [{ name: 'reviews' }], filters: [{ type: 'LocalRateLimit', localRateLimit: { maxTokens: 7, fillInterval: '2s' } }] },
    ])]), 1);
    const routes = decodeAny(cache.get(TYPE_URLS.ROUTE, 'reviews')!.any).virtual_hosts[0].routes;
    const fault = routes[0].typed_per_filter_config['envoy.filters.http.fault'];
    assert.equal(fault.type_url, TYPE_URLS.FAULT);
    assert.deepEqual(decodeAny(fault), { abort: { error_type: 'grpc_status', grpc_status: 0, percentage: { numerator: 500_000, denominator: 'MILLION' } } });
    const wrapper = decodeAny(routes[1].typed_per_filter_config['envoy.filters.http.local_ratelimit']);
    assert.equal(wrapper.is_optional, true);
    assert.equal(wrapper.config.type_url, TYPE_URLS.LOCAL_RATELIMIT);
    assert.deepEqual(decodeAny(wrapper.config).token_bucket, { max_tokens: 7, tokens_per_fill: { value: 7 }, fill_interval: { seconds: '2', nanos: 0 } });
    const hcm = decodeAny(decodeAny(cache.get(TYPE_URLS.LISTENER, 'reviews')!.any).api_listener.api_listener);
    assert.deepEqual(hcm.http_filters.map((f: Doc) => [f.name, f.typed_config.type_url, f.is_optional ?? false]), [
      ['envoy.filters.http.fault', TYPE_URLS.FAULT, false],
      ['envoy.filters.http.local_ratelimit', TYPE_URLS.LOCAL_RATELIMIT, true],
      ['envoy.filters.http.router', TYPE_URLS.ROUTER, false],
    ]);
  });

  test('the virtual host\'s per_filter_config_digest (for grpc-js-xds) changes with any per-filter change, also an added entry', () => {
    const digest = (rules: Doc[]): string | undefined =>
      (one(run([reviews(), grpcRoute('f', rules)]).routes, 'reviews') as Doc)['virtual_hosts'][0].metadata?.filter_metadata['skein.dev'].fields.per_filter_config_digest.stringValue;
    const limit = { type: 'LocalRateLimit', localRateLimit: { maxTokens: 5 } };
    const abort = (percentage: number) => ({ type: 'Fault', fault: { abort: { grpcStatus: 14, percentage } } });
    const rule = (filters: Doc[]) => ({ backendRefs: [{ name: 'reviews' }], filters });
    const values = [
      digest([{ backendRefs: [{ name: 'reviews' }] }]),
      digest([rule([limit])]),
      digest([rule([limit, abort(100)])]),
      digest([rule([limit, abort(50)])]),
      digest([rule([abort(50), limit])]),
    ];
    assert.equal(values[0], undefined, 'no per-filter config: no metadata');
    assert.deepEqual(values.slice(1).map((v) => /^[0-9a-f]{16}$/.test(v ?? '')), [true, true, true, true]);
    assert.equal(new Set(values.slice(1, 4)).size, 3, 'adding an entry and changing a value both change it');
    assert.equal(values[4], values[3], 'the filters\' order in the rule does not matter');
    const decodedVh = decodeAny(encodeVh([reviews(), grpcRoute('f', [rule([limit])])]));
    assert.equal(decodedVh.virtual_hosts[0].metadata.filter_metadata['skein.dev'].fields.per_filter_config_digest.stringValue, values[1]);
  });

  test('the first Fault on a service changes its listeners, its route config and the outbound ones; nothing of another service', () => {
    const cache = new SnapshotCache();
    cache.set(run([reviews(), web(), grpcRoute('f', [{ backendRefs: [{ name: 'reviews' }] }])]), 1);
    const change = cache.set(run([reviews(), web(), grpcRoute('f', [faultRule])]), 2);
    assert.deepEqual([...change.changed.entries()].map(([t, n]) => [t, [...n].sort()]), [
      [TYPE_URLS.LISTENER, ['reviews', 'reviews:50051', 'skein.outbound']],
      [TYPE_URLS.ROUTE, ['reviews', 'skein.outbound']],
    ]);
  });
});

describe('snapshot encoding reuse', () => {
  test('a RouteConfiguration spliced from encoded virtual hosts has the bytes of encoding it whole (so versions are unchanged)', () => {
    const res = translate(buildMesh(richDocs()), richLive(), TEST_TRANSLATE);
    const cache = new SnapshotCache();
    cache.set(res, 1);
    assert.ok(res.routes.length > 1);
    for (const rc of res.routes) {
      const whole = Buffer.from(encodeResource(TYPE_URLS.ROUTE, rc).value);
      assert.ok(whole.equals(cache.get(TYPE_URLS.ROUTE, rc['name'] as string)!.any.value), `${String(rc['name'])}: spliced bytes differ`);
    }
  });

  test('an unchanged resource keeps its encoding; a changed one is encoded again', async () => {
    const cache = new SnapshotCache();
    cache.set(translate(buildMesh(richDocs()), richLive(), TEST_TRANSLATE), 1);
    const before = new Map([...cache.all(TYPE_URLS.CLUSTER)].map(([n, r]) => [n, r.any]));
    const docs = richDocs();
    const prepared = await cache.prepare(translate(buildMesh(docs), richLive().slice(1), TEST_TRANSLATE), NO_YIELD);
    const change = cache.install(prepared, 2);
    for (const [n, r] of cache.all(TYPE_URLS.CLUSTER)) assert.equal(r.any, before.get(n), `cluster ${n} was encoded again`);
    assert.ok((change.changed.get(TYPE_URLS.ENDPOINT)?.size ?? 0) > 0, 'an endpoint change is a change');
  });
});

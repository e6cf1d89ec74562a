/**
 * The sidecar's xDS client: resource decoders (table-driven, on translate() output and
 * hand-written resources), the per-type ACK/NACK state, backoff, and the client end to end
 * against a real in-process control plane (gRPC on loopback), including a control-plane restart.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ControlPlane } from '../../../control-plane/src/control-plane';
import { translate } from '../../../control-plane/src/translate/translate';
import { buildMesh } from '../../../shared/src/config/mesh';
import { FakeClock } from '../../../shared/src/clock';
import type { TimerHandle } from '../../../shared/src/clock';
import { silentLogger } from '../../../shared/src/log';
import { encodeResource } from '../../../shared/src/xds/pack';
import { decodeAny, loadAdsServiceDefinition, TYPE_URLS } from '../../../shared/src/xds/protos';
import { Backoff } from '../../../sidecar/src/xds/backoff';
import { clusterType, decoderMap, endpointsType } from '../../../sidecar/src/xds/decoders';
import { listenerType } from '../../../sidecar/src/pipeline';
import { ENDPOINT_KIND, ROUTE_KIND } from '../../../shared/src/xds/resource-kind';
import type { ClusterConfig, EndpointsConfig, ListenerConfig, ResourceDecoder } from '../../../sidecar/src/xds/decoders';
import { capMessage, DEFAULT_LIMITS, TypeSubscription } from '../../../sidecar/src/xds/type-subscription';
import { XdsClient } from '../../../sidecar/src/xds/xds-client';
import { routeType as routeTableType } from '../../../sidecar/src/pipeline';
import { RouteTable } from '../../../sidecar/src/route/route-table';
import type { XdsDisconnect, XdsNack, XdsResponseSeen } from '../../../sidecar/src/xds/xds-client';
import { eventually } from '../../support/ads-client';
import { TEST_TRANSLATE } from '../../support/mesh-trust';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = Record<string, any>;

const { LISTENER: LDS, ROUTE: RDS, CLUSTER: CDS, ENDPOINT: EDS } = TYPE_URLS;
const V = 'skein.dev/v1alpha1';
const HCM = TYPE_URLS.HCM;
const ROUTER = TYPE_URLS.ROUTER;
const HPO_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const ADS = { ads: {}, resource_api_version: 'V3' };

const service = (name: string, spec: Doc = {}): Doc => ({
  apiVersion: V, kind: 'Service', metadata: { name },
  spec: { ports: [{ name: 'grpc', port: 50051 }], subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }], ...spec },
});
const web = (): Doc => ({ apiVersion: V, kind: 'Service', metadata: { name: 'web' }, spec: { protocol: 'http', ports: [{ name: 'http', port: 8080 }] } });
const split = (v1: number, v2: number): Doc => ({
  apiVersion: V, kind: 'GRPCRoute', metadata: { name: 'reviews' },
  spec: { parentRefs: [{ name: 'reviews' }], rules: [{ backendRefs: [{ name: 'reviews', subset: 'v1', weight: v1 }, { name: 'reviews', subset: 'v2', weight: v2 }] }] },
});
const policy = (name: string, target: Doc, spec: Doc): Doc =>
  ({ apiVersion: V, kind: 'BackendPolicy', metadata: { name }, spec: { targetRef: { kind: 'Service', ...target }, ...spec } });

function decodeOk<T>(type: ResourceDecoder<T>, typeUrl: string, obj: object): T {
  const r = type.decode(encodeResource(typeUrl, obj));
  if ('error' in r) assert.fail(`unexpected decode error: ${r.error}`);
  return r.value;
}
function decodeErr<T>(type: ResourceDecoder<T>, typeUrl: string, obj: object): string {
  const r = type.decode(encodeResource(typeUrl, obj));
  assert.ok('error' in r, `expected a decode error, got ${JSON.stringify('value' in r ? r.value : r)}`);
  return r.error;
}
const byName = (list: Doc[], name: string, key = 'name'): Doc => list.find((x) => x[key] === name) ?? assert.fail(`no ${name}`);

// ---------------------------------------------------------------- decoders

const hcmListener = (hcm: Doc, extra: Doc = {}): Doc => ({
  name: 'l', address: { socket_address: { address: '127.0.0.1', port_value: 15001 } },
  filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'out', ...hcm } }] }],
  ...extra,
});
const routerFilter = { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } };
const goodHcm = { rds: { route_config_name: 'rc', config_source: ADS }, http_filters: [routerFilter] };

describe('Listener decoder', () => {
  test('the sidecar outbound listener from translate()', () => {
    const lds = translate(buildMesh([service('reviews')]), [], TEST_TRANSLATE).listeners;
    const l = decodeOk(listenerType, LDS, byName(lds, 'skein.outbound'));
    assert.deepEqual(l, {
      name: 'skein.outbound', address: { host: '127.0.0.1', port: 15001 }, direction: 'OUTBOUND',
      routeConfigName: 'skein.outbound', statPrefix: 'outbound', codecType: 'AUTO', httpFilters: [],
      tracing: { randomSampling: 0.01, overallSampling: 1, maxPathTagLength: 256 },
    } satisfies ListenerConfig);
  });

  test('HCM tracing: the mesh Telemetry\'s sampling; unsupported fields and bad percents are NACKed by path', () => {
    const telemetry = { apiVersion: 'skein.dev/v1alpha1', kind: 'Telemetry', metadata: { name: 'mesh' }, spec: { tracing: { samplingPercent: 25 } } };
    const lds = translate(buildMesh([service('reviews'), telemetry]), [], TEST_TRANSLATE).listeners;
    const out = byName(lds, 'skein.outbound') as { filter_chains: { filters: { typed_config: Record<string, unknown> }[] }[] };
    assert.deepEqual(decodeOk(listenerType, LDS, out).tracing, { randomSampling: 0.25, overallSampling: 1, maxPathTagLength: 256 });
    const hcm = out.filter_chains[0]!.filters[0]!.typed_config;
    const withTracing = (tracing: unknown) => ({ ...out, filter_chains: [{ filters: [{ name: 'hcm', typed_config: { ...hcm, tracing } }] }] });
    assert.deepEqual(decodeOk(listenerType, LDS, withTracing({})).tracing, { randomSampling: 1, overallSampling: 1, maxPathTagLength: 256 }, 'Envoy\'s defaults: 100%');
    assert.deepEqual(decodeOk(listenerType, LDS, withTracing({ random_sampling: { value: 10 }, overall_sampling: { value: 50 }, max_path_tag_length: { value: 64 } })).tracing, { randomSampling: 0.1, overallSampling: 0.5, maxPathTagLength: 64 });
    assert.match(decodeErr(listenerType, LDS, withTracing({ client_sampling: { value: 5 } })), /filter_chains\[0\]\.filters\[0\]\.typed_config\.tracing\.client_sampling/);
    assert.match(decodeErr(listenerType, LDS, withTracing({ verbose: true })), /typed_config\.tracing\.verbose: is not supported/);
    assert.equal(decodeOk(listenerType, LDS, withTracing({ verbose: false })).tracing?.randomSampling, 1, 'verbose false is the default, accepted');
    assert.match(decodeErr(listenerType, LDS, withTracing({ random_sampling: { value: 150 } })), /tracing\.random_sampling\.value: must be a number in \[0, 100\]/);
    const noTracing = { ...out, filter_chains: [{ filters: [{ name: 'hcm', typed_config: { ...hcm, tracing: undefined } }] }] };
    assert.equal(decodeOk(listenerType, LDS, noTracing).tracing, undefined, 'no tracing field: no spans');
  });

  test('a proxyless api_listener from translate() (no address)', () => {
    const lds = translate(buildMesh([service('reviews')]), [], TEST_TRANSLATE).listeners;
    const l = decodeOk(listenerType, LDS, byName(lds, 'reviews:50051'));
    assert.deepEqual(l, { name: 'reviews:50051', routeConfigName: 'reviews', statPrefix: 'reviews', codecType: 'AUTO', httpFilters: [] });
  });

  test('known http filters before the router are kept, decoded', () => {
    const fault = { name: 'envoy.filters.http.fault', typed_config: { '@type': TYPE_URLS.FAULT } };
    const unknownOptional = { name: 'x', is_optional: true, typed_config: { '@type': TYPE_URLS.UPSTREAM_TLS_CONTEXT } };
    const l = decodeOk(listenerType, LDS, hcmListener({ ...goodHcm, http_filters: [fault, unknownOptional, routerFilter] }));
    assert.deepEqual(l.httpFilters, [{ name: 'envoy.filters.http.fault', typeUrl: TYPE_URLS.FAULT, disabled: false, config: {} }]);
  });

  const bad: { name: string; listener: Doc; error: string | RegExp }[] = [
    { name: 'rds over a non-ADS config source', listener: hcmListener({ ...goodHcm, rds: { route_config_name: 'rc', config_source: { self: {} } } }),
      error: 'filter_chains[0].filters[0].typed_config.rds.config_source: must be ads' },
    { name: 'rds without a config source', listener: hcmListener({ ...goodHcm, rds: { route_config_name: 'rc' } }),
      error: 'filter_chains[0].filters[0].typed_config.rds.config_source: is required' },
    { name: 'rds without a route_config_name', listener: hcmListener({ ...goodHcm, rds: { config_source: ADS } }),
      error: 'filter_chains[0].filters[0].typed_config.rds.route_config_name: is required' },
    { name: 'inline route_config', listener: hcmListener({ http_filters: [routerFilter], route_config: { name: 'inline' } }),
      error: /typed_config\.route_config: inline route_config is not supported yet; use rds$/ },
    { name: 'router not last', listener: hcmListener({ ...goodHcm, http_filters: [routerFilter, { name: 'f', typed_config: { '@type': TYPE_URLS.FAULT } }] }),
      error: /typed_config\.http_filters: the last http filter must be the router .*; filter_chains\[0\]\.filters\[0\]\.typed_config\.http_filters\[0\]: the router must be the last http filter$/ },
    { name: 'no http filters', listener: hcmListener({ ...goodHcm, http_filters: [] }),
      error: /typed_config\.http_filters: the last http filter must be the router \(Router\), got none/ },
    { name: 'unknown required http filter', listener: hcmListener({ ...goodHcm, http_filters: [{ name: 'x', typed_config: { '@type': TYPE_URLS.UPSTREAM_TLS_CONTEXT } }, routerFilter] }),
      error: /http_filters\[0\]\.typed_config: unsupported http filter .*UpstreamTlsContext/ },
    { name: 'a network filter that is not an HCM', listener: { name: 'l', address: { socket_address: { address: '0.0.0.0', port_value: 1 } }, filter_chains: [{ filters: [{ name: 'r', typed_config: { '@type': ROUTER } }] }] },
      error: /^filter_chains\[0\]\.filters\[0\]\.typed_config: must be HttpConnectionManager, got .*Router$/ },
    { name: 'no filter chains and no api_listener', listener: { name: 'l' }, error: 'filter_chains: must hold an HttpConnectionManager (or set api_listener)' },
    { name: 'two filter chains', listener: { ...hcmListener(goodHcm), filter_chains: [...hcmListener(goodHcm)['filter_chains'], ...hcmListener(goodHcm)['filter_chains']] },
      error: 'filter_chains: exactly one filter chain is supported, got 2' },
    { name: 'a pipe address', listener: hcmListener(goodHcm, { address: { pipe: { path: '/tmp/s' } } }), error: 'address.pipe: pipe addresses are not supported' },
    { name: 'no address on a socket listener', listener: hcmListener(goodHcm, { address: undefined }), error: 'address: is required for a listener with filter_chains' },
    { name: 'no name', listener: { ...hcmListener(goodHcm), name: '' }, error: 'name: is required' },
    { name: 'fields the sidecar does not implement, each with its path', listener: hcmListener({ ...goodHcm, stream_idle_timeout: { seconds: 5 } }, { use_original_dst: { value: true } }),
      error: 'use_original_dst: is not supported by the skein sidecar; filter_chains[0].filters[0].typed_config.stream_idle_timeout: is not supported by the skein sidecar' },
  ];
  for (const c of bad) {
    test(`rejects ${c.name}`, () => {
      const err = decodeErr(listenerType, LDS, c.listener);
      if (typeof c.error === 'string') assert.equal(err, c.error);
      else assert.match(err, c.error);
    });
  }

  test('rejects a resource of another type and undecodable bytes, without throwing', () => {
    assert.match((listenerType.decode(encodeResource(CDS, { name: 'c' })) as { error: string }).error, /^type_url: expected .*Listener, got .*Cluster$/);
    assert.match((listenerType.decode({ type_url: LDS, value: Buffer.from([0xff, 0xff, 0xff]) }) as { error: string }).error, /^cannot decode Listener/);
  });
});

describe('Cluster decoder', () => {
  const clusters = (docs: Doc[]) => translate(buildMesh(docs), [], TEST_TRANSLATE).clusters;

  test('a grpc service: EDS over ADS, h2, defaults (round robin, 5s connect timeout, the default retry budget, failure accrual)', () => {
    const { outlierDetection, tls, ...c } = decodeOk(clusterType, CDS, byName(clusters([service('reviews')]), 'reviews/v1'));
    // Mesh mTLS (STRICT by default) to the endpoints that have a sidecar: the server must be reviews's service account.
    assert.deepEqual(tls && { ...tls, allowedIds: tls.allowedIds.map((m) => JSON.stringify(m)) },
      { allowedIds: [JSON.stringify({ kind: 'suffix', value: '/sa/reviews', ignoreCase: false })], alpn: ['h2'], sni: 'reviews.skein.local', minVersion: 'TLSv1.3' });
    // Failure accrual is on by default: 3 local-origin failures in a row, at most half the hosts, no other trigger.
    assert.equal(outlierDetection?.splitExternalLocalOriginErrors, true);
    assert.equal(outlierDetection?.consecutiveLocalOriginFailure, 3);
    assert.equal(outlierDetection?.enforcingConsecutiveLocalOriginFailure, 100);
    assert.equal(outlierDetection?.maxEjectionPercent, 50);
    assert.deepEqual([outlierDetection?.enforcingConsecutive5xx, outlierDetection?.enforcingSuccessRate, outlierDetection?.enforcingLocalOriginSuccessRate], [0, 0, 0]);
    assert.deepEqual(c, {
      name: 'reviews/v1', type: 'EDS', edsServiceName: 'reviews/v1', lbPolicy: 'round_robin', connectTimeoutMs: 5000, protocol: 'h2',
      circuitBreakers: { retryBudget: { budgetPercent: 20, minRetryConcurrency: 3 } },
    } satisfies ClusterConfig);
  });

  test('an http service is h1; no protocol options at all is h1 (Envoy default)', () => {
    assert.equal(decodeOk(clusterType, CDS, byName(clusters([web()]), 'web')).protocol, 'h1');
    const bare = { name: 'b', type: 'EDS', eds_cluster_config: { eds_config: ADS } };
    assert.equal(decodeOk(clusterType, CDS, bare).protocol, 'h1');
    assert.equal(decodeOk(clusterType, CDS, bare).edsServiceName, 'b', 'service_name defaults to the cluster name');
  });

  test('every BackendPolicy section maps to its field', () => {
    const docs = [service('reviews'), policy('p', { name: 'reviews' }, {
      loadBalancer: { policy: 'least_request', choiceCount: 3 },
      connectionPool: { connectTimeout: '2s', idleTimeout: '1m', maxRequestsPerConnection: 1000, maxConcurrentStreams: 100 },
      circuitBreaker: { maxConnections: 100, maxPendingRequests: 10, maxRequests: 0, maxRetries: 3 },
      retryBudget: { budgetPercent: 25.5, minRetryConcurrency: 5 },
      outlierDetection: { consecutive5xx: 5 },
      healthCheck: { http: { path: '/ready', expectedStatuses: [200] }, interval: '5s', timeout: '500ms', healthyThreshold: 2, unhealthyThreshold: 4 },
    })];
    const c = decodeOk(clusterType, CDS, byName(clusters(docs), 'reviews'));
    const { outlierDetection, healthChecks, tls: _tls, ...rest } = c;
    assert.deepEqual(rest, {
      name: 'reviews', type: 'EDS', edsServiceName: 'reviews', lbPolicy: 'least_request', choiceCount: 3, connectTimeoutMs: 2000,
      protocol: 'h2', maxConcurrentStreams: 100, idleTimeoutMs: 60_000, maxRequestsPerConnection: 1000,
      circuitBreakers: { maxConnections: 100, maxPendingRequests: 10, maxRequests: 0, maxRetries: 3, retryBudget: { budgetPercent: 25.5, minRetryConcurrency: 5 } },
    });
    assert.equal(outlierDetection?.consecutive5xx, 5);
    assert.equal(outlierDetection?.enforcingSuccessRate, 0, 'the control plane turns off what the policy does not set');
    assert.equal(healthChecks?.intervalMs, 5000);
    assert.equal(healthChecks?.unhealthyThreshold, 4);
    assert.equal((healthChecks?.check as { path?: string }).path, '/ready');
  });

  test('ring hash sizes; retry budget defaults (20%, 3)', () => {
    const c = decodeOk(clusterType, CDS, {
      name: 'r', type: 'EDS', eds_cluster_config: { eds_config: { self: {} } }, lb_policy: 'RING_HASH',
      ring_hash_lb_config: { minimum_ring_size: { value: 1024 }, maximum_ring_size: { value: 8192 } },
      circuit_breakers: { thresholds: [{ priority: 'HIGH', max_requests: { value: 1 } }, { retry_budget: {} }] },
    });
    assert.equal(c.lbPolicy, 'ring_hash');
    assert.equal(c.minRingSize, 1024);
    assert.equal(c.maxRingSize, 8192);
    assert.deepEqual(c.circuitBreakers, { retryBudget: { budgetPercent: 20, minRetryConcurrency: 3 } }, 'HIGH thresholds are ignored');
  });

  test('a STATIC cluster returns its inline endpoints', () => {
    const c = decodeOk(clusterType, CDS, {
      name: 's', type: 'STATIC', connect_timeout: { seconds: 0, nanos: 250_000_000 },
      load_assignment: { cluster_name: 's', endpoints: [{ locality: { zone: 'z1' }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 80 } } } }] }] },
      typed_extension_protocol_options: { [HPO_KEY]: { '@type': TYPE_URLS.HTTP_PROTOCOL_OPTIONS, explicit_http_config: { http_protocol_options: {} } } },
    });
    assert.equal(c.type, 'STATIC');
    assert.equal(c.connectTimeoutMs, 250);
    assert.equal(c.protocol, 'h1');
    assert.deepEqual(c.staticEndpoints, { clusterName: 's', hosts: [{ address: '10.0.0.1', port: 80, weight: 1, zone: 'z1', health: 'UNKNOWN' }] });
  });

  const eds = { type: 'EDS', eds_cluster_config: { eds_config: ADS } };
  const hpo = (cfg: Doc) => ({ typed_extension_protocol_options: { [HPO_KEY]: { '@type': TYPE_URLS.HTTP_PROTOCOL_OPTIONS, ...cfg } } });
  const bad: { name: string; cluster: Doc; error: string | RegExp }[] = [
    { name: 'MAGLEV', cluster: { name: 'c', ...eds, lb_policy: 'MAGLEV' }, error: 'lb_policy: MAGLEV is not supported (ROUND_ROBIN, LEAST_REQUEST, RING_HASH or RANDOM)' },
    { name: 'CLUSTER_PROVIDED', cluster: { name: 'c', ...eds, lb_policy: 'CLUSTER_PROVIDED' }, error: /^lb_policy: CLUSTER_PROVIDED is not supported/ },
    { name: 'STRICT_DNS', cluster: { name: 'c', type: 'STRICT_DNS' }, error: 'type: STRICT_DNS is not supported; must be EDS or STATIC' },
    { name: 'EDS without eds_config', cluster: { name: 'c', type: 'EDS' }, error: 'eds_cluster_config.eds_config: is required for an EDS cluster' },
    { name: 'EDS from a file', cluster: { name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { path_config_source: { path: '/x' } } } }, error: 'eds_cluster_config.eds_config: must be ads or self' },
    { name: 'STATIC without load_assignment', cluster: { name: 'c', type: 'STATIC' }, error: 'load_assignment: is required for a STATIC cluster' },
    { name: 'a STATIC pipe endpoint', cluster: { name: 'c', type: 'STATIC', load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: '/s' } } } }] }] } },
      error: 'load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe: pipe addresses are not supported' },
    { name: 'auto protocol selection', cluster: { name: 'c', ...eds, ...hpo({ auto_config: {} }) }, error: `typed_extension_protocol_options['${HPO_KEY}'].auto_config: is not supported; use explicit_http_config` },
    { name: 'explicit config naming no protocol', cluster: { name: 'c', ...eds, ...hpo({ explicit_http_config: {} }) }, error: `typed_extension_protocol_options['${HPO_KEY}'].explicit_http_config: must set http_protocol_options or http2_protocol_options` },
    { name: 'an unknown protocol options key', cluster: { name: 'c', ...eds, typed_extension_protocol_options: { other: { '@type': TYPE_URLS.HTTP_PROTOCOL_OPTIONS } } },
      error: /^typed_extension_protocol_options\['other'\]: unknown extension/ },
    { name: 'a zero connect timeout', cluster: { name: 'c', ...eds, connect_timeout: { seconds: 0, nanos: 0 } }, error: 'connect_timeout: must be > 0' },
    { name: 'min ring > max ring', cluster: { name: 'c', ...eds, lb_policy: 'RING_HASH', ring_hash_lb_config: { minimum_ring_size: { value: 10 }, maximum_ring_size: { value: 5 } } },
      error: 'ring_hash_lb_config: minimum_ring_size (10) must be <= maximum_ring_size (5)' },
    { name: 'a cluster-wide transport_socket', cluster: { name: 'c', ...eds, transport_socket: { name: 'tls' } }, error: 'transport_socket: is not supported: mesh mTLS is set per endpoint through transport_socket_matches (tlsMode: skein)' },
    { name: 'a transport_socket_matches entry selecting on another key', cluster: { name: 'c', ...eds, transport_socket_matches: [{ name: 'm', match: { fields: { zone: { stringValue: 'a' } } }, transport_socket: { name: 'tls' } }] },
      error: 'transport_socket_matches[0].match: must be exactly {tlsMode: "skein"} (endpoints with a sidecar), got {zone}' },
    { name: 'fields the sidecar does not implement, each with its path',
      cluster: { name: 'c', ...eds, preconnect_policy: { per_upstream_preconnect_ratio: { value: 2 } }, ...hpo({ explicit_http_config: { http_protocol_options: {} }, common_http_protocol_options: { max_headers_count: { value: 10 } } }) },
      error: `preconnect_policy: is not supported by the skein sidecar; typed_extension_protocol_options['${HPO_KEY}'].common_http_protocol_options.max_headers_count: is not supported by the skein sidecar` },
    { name: 'max_connection_pools in the circuit breaker', cluster: { name: 'c', ...eds, circuit_breakers: { thresholds: [{ max_connection_pools: { value: 2 } }] } },
      error: 'circuit_breakers.thresholds[0].max_connection_pools: is not supported by the skein sidecar' },
  ];
  for (const c of bad) {
    test(`rejects ${c.name}`, () => {
      const err = decodeErr(clusterType, CDS, c.cluster);
      if (typeof c.error === 'string') assert.equal(err, c.error);
      else assert.match(err, c.error);
    });
  }

  test('reports every problem in one resource', () => {
    const err = decodeErr(clusterType, CDS, { name: 'c', type: 'EDS', lb_policy: 'MAGLEV', connect_timeout: { seconds: -1 } });
    assert.equal(err, 'eds_cluster_config.eds_config: is required for an EDS cluster; lb_policy: MAGLEV is not supported (ROUND_ROBIN, LEAST_REQUEST, RING_HASH or RANDOM); connect_timeout: must be > 0');
  });
});

describe('ClusterLoadAssignment decoder', () => {
  test('translate() output: localities flattened with zone, weight and health', () => {
    const docs = [service('reviews', { endpoints: [{ address: '10.0.0.1', port: 8080, labels: { version: 'v1' }, zone: 'zone-a' }] })];
    const live = [{ service: 'reviews', address: '10.0.0.2', port: 8080, labels: { version: 'v2' }, zone: 'zone-b', weight: 3, health: 'DRAINING' as const }];
    const cla = byName(translate(buildMesh(docs), live, TEST_TRANSLATE).endpoints, 'reviews', 'cluster_name');
    const e = decodeOk(endpointsType, EDS, cla);
    assert.deepEqual(e, {
      clusterName: 'reviews', hosts: [
        { address: '10.0.0.1', port: 8080, weight: 1, zone: 'zone-a', health: 'HEALTHY' },
        { address: '10.0.0.2', port: 8080, weight: 3, zone: 'zone-b', health: 'DRAINING' },
      ],
    } satisfies EndpointsConfig);
  });

  test('defaults: weight 1, health UNKNOWN, zone empty; an empty assignment has no hosts', () => {
    const e = decodeOk(endpointsType, EDS, { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '::1', port_value: 9 } } } }] }] });
    assert.deepEqual(e.hosts, [{ address: '::1', port: 9, weight: 1, zone: '', health: 'UNKNOWN' }]);
    assert.deepEqual(decodeOk(endpointsType, EDS, { cluster_name: 'empty' }), { clusterName: 'empty', hosts: [] });
  });

  const sa = (address: string, port_value?: number) => ({ endpoint: { address: { socket_address: port_value === undefined ? { address } : { address, port_value } } } });
  const bad: { name: string; cla: Doc; error: string }[] = [
    { name: 'a pipe address', cla: { cluster_name: 'c', endpoints: [{ lb_endpoints: [sa('10.0.0.1', 1), { endpoint: { address: { pipe: { path: '/p' } } } }] }] },
      error: 'endpoints[0].lb_endpoints[1].endpoint.address.pipe: pipe addresses are not supported' },
    { name: 'a zero weight', cla: { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ ...sa('10.0.0.1', 1), load_balancing_weight: { value: 0 } }] }] },
      error: 'endpoints[0].lb_endpoints[0].load_balancing_weight: must be >= 1, got 0' },
    { name: 'a missing port', cla: { cluster_name: 'c', endpoints: [{ lb_endpoints: [sa('10.0.0.1')] }] },
      error: 'endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: must be in [1, 65535], got 0' },
    { name: 'a failover priority', cla: { cluster_name: 'c', endpoints: [{ priority: 1, lb_endpoints: [sa('10.0.0.1', 1)] }] },
      error: 'endpoints[0].priority: only priority 0 is supported, got 1' },
    { name: 'a missing cluster_name', cla: { endpoints: [] }, error: 'cluster_name: is required' },
    { name: 'fields the sidecar does not implement, each with its path',
      cla: { cluster_name: 'c', policy: { drop_overloads: [{ category: 'x' }] }, endpoints: [{ proximity: { value: 1 }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 1 } }, health_check_config: { port_value: 2 } } }] }] },
      error: 'policy.drop_overloads: is not supported by the skein sidecar; endpoints[0].proximity: is not supported by the skein sidecar; endpoints[0].lb_endpoints[0].endpoint.health_check_config: is not supported by the skein sidecar' },
  ];
  for (const c of bad) test(`rejects ${c.name}`, () => assert.equal(decodeErr(endpointsType, EDS, c.cla), c.error));
});

test('RouteConfiguration adapter: translate() output compiles to a RouteTable; the router\'s errors become decode errors', () => {
  const rds = translate(buildMesh([service('reviews'), split(90, 10)]), [], TEST_TRANSLATE).routes;
  const r = routeTableType.decode(encodeResource(RDS, byName(rds, 'skein.outbound')));
  assert.ok('value' in r && r.value instanceof RouteTable && r.name === 'skein.outbound', 'error' in r ? r.error : 'not a RouteTable');
  const bad = routeTableType.decode(encodeResource(RDS, { name: 'x', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' } }] }] }));
  assert.ok('error' in bad && bad.name === 'x' && bad.error.length > 0);
});

// ---------------------------------------------------------------- per-type state, backoff

describe('TypeSubscription', () => {
  const cla = (name: string, port: number) => encodeResource(EDS, { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: port } } } }] }] });

  test('per-name types merge by name and drop unsubscribed names; full-state types replace', () => {
    const s = new TypeSubscription(endpointsType, DEFAULT_LIMITS);
    s.setNames(['a', 'b']);
    assert.deepEqual(s.apply({ version_info: '1', nonce: 'n1', resources: [cla('a', 1), cla('b', 1)] }, 0), { kind: 'accepted', changed: true });
    assert.deepEqual(s.apply({ version_info: '2', nonce: 'n2', resources: [cla('b', 2), cla('zzz', 1)] }, 0), { kind: 'accepted', changed: true });
    assert.deepEqual([...s.resources.keys()].sort(), ['a', 'b'], 'a kept, zzz (not subscribed) ignored');
    assert.equal((s.resources.get('b') as EndpointsConfig).hosts[0]!.port, 2);
    const a = s.resources.get('a');
    assert.deepEqual(s.apply({ version_info: '2b', nonce: 'n2b', resources: [cla('a', 1), cla('b', 3)] }, 0), { kind: 'accepted', changed: true });
    assert.equal(s.resources.get('a'), a, 'a resource sent again with the same bytes keeps its decoded value (and its state)');
    assert.equal((s.resources.get('b') as EndpointsConfig).hosts[0]!.port, 3);
    s.setNames(['b']);
    assert.deepEqual([...s.resources.keys()], ['b']);
    assert.deepEqual(s.apply({ version_info: '3', nonce: 'n3', resources: [cla('b', 3)] }, 0), { kind: 'accepted', changed: false }, 'same bytes: no update');
    assert.equal(s.version, '3');

    // The same decoder plugged into a full-state kind (as LDS and CDS are).
    const full = new TypeSubscription({ kind: { ...ENDPOINT_KIND, fullState: true }, decode: endpointsType.decode }, DEFAULT_LIMITS);
    full.setNames('*');
    full.apply({ version_info: '1', nonce: 'n1', resources: [cla('a', 1), cla('b', 1)] }, 0);
    full.apply({ version_info: '2', nonce: 'n2', resources: [cla('b', 1)] }, 0);
    assert.deepEqual([...full.resources.keys()], ['b'], 'absent means deleted');
  });

  test('rejects the whole response on any bad resource, keeping the last good state', () => {
    const s = new TypeSubscription(endpointsType, DEFAULT_LIMITS);
    s.setNames(['a', 'b']);
    s.apply({ version_info: '1', nonce: 'n1', resources: [cla('a', 1)] }, 0);
    const before = s.resources;
    const bad = encodeResource(EDS, { cluster_name: 'b', endpoints: [{ lb_endpoints: [{ endpoint: {} }] }] });
    const r = s.apply({ version_info: '2', nonce: 'n2', resources: [cla('a', 7), bad, cla('a', 8), encodeResource(CDS, { name: 'x' })] }, Date.UTC(2026, 0, 1));
    assert.equal(r.kind, 'rejected');
    assert.deepEqual((r as { errors: string[] }).errors, [
      'b: endpoints[0].lb_endpoints[0].endpoint.address.socket_address: is required',
      'a: appears twice in the response',
      `resources[3]: type_url ${CDS} does not match the response's ${EDS}`,
    ]);
    assert.equal(s.resources, before);
    assert.equal(s.version, '1');
    assert.deepEqual(s.lastError, { version: '2', nonce: 'n2', message: (r as { message: string }).message, at: '2026-01-01T00:00:00.000Z' });
    // While on the rejected nonce, a request keeps carrying the error (else it reads as an ACK).
    assert.deepEqual(s.request().error_detail, { code: 3, message: (r as { message: string }).message });
    assert.equal(s.request().version_info, '1');
  });

  test('caps the error message and counts what it left out', () => {
    const errors = Array.from({ length: 500 }, (_, i) => `resource-${i}: something is wrong with this one`);
    const m = capMessage(errors, 4096);
    assert.ok(m.length <= 4096, `length ${m.length}`);
    assert.match(m, /^resource-0: .*; resource-1: /);
    assert.match(m, / \.\.\. \(\d+ more errors\)$/);
    assert.equal(capMessage(['a', 'b'], 4096), 'a; b');
  });

  test('rejects a response with too many resources', () => {
    const s = new TypeSubscription(endpointsType, { ...DEFAULT_LIMITS, maxResources: 1 });
    s.setNames(['a', 'b']);
    const r = s.apply({ version_info: '1', nonce: 'n', resources: [cla('a', 1), cla('b', 1)] }, 0);
    assert.deepEqual(r.kind === 'rejected' && r.errors, ['resources: 2 resources; at most 1']);
  });
});

test('Backoff: full jitter over a doubling ceiling capped at maxMs, and reset', () => {
  let r = 1;
  const b = new Backoff({}, () => r);
  assert.deepEqual(Array.from({ length: 8 }, () => b.next()), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  b.reset();
  r = 0.5;
  assert.deepEqual([b.next(), b.next(), b.next()], [250, 500, 1000]);
  r = 0;
  assert.equal(b.next(), 0);
});

// ---------------------------------------------------------------- end to end

/** A FakeClock that records every delay it is asked for (the client uses it only for backoff). */
class RecordingClock extends FakeClock {
  readonly delays: number[] = [];
  override setTimer(ms: number, fn: () => void): TimerHandle {
    this.delays.push(ms);
    return super.setTimer(ms, fn);
  }
}

/** A RouteConfiguration type for these tests: checks only the name (RouteTable decoding lives in the router). */
const routeType: ResourceDecoder<Doc> = {
  kind: ROUTE_KIND,
  decode(any) {
    const m = decodeAny<Doc>(any);
    return typeof m['name'] === 'string' && m['name'] !== '' ? { name: m['name'], value: m } : { name: '', error: 'name: is required' };
  },
};

for (const protocol of ['delta', 'sotw'] as const) describe(`XdsClient against a real control plane (${protocol})`, () => {
  let cp: ControlPlane;
  let dir: string;
  let port: number;
  let client: XdsClient;
  const clock = new RecordingClock();
  let random = 1;
  const rejectClusters = new Set<string>();
  const updates: { typeUrl: string; version: string; resources: ReadonlyMap<string, unknown> }[] = [];
  const nacks: XdsNack[] = [];
  const disconnects: XdsDisconnect[] = [];
  const responses: XdsResponseSeen[] = [];
  let connects = 0;
  const NODE = 'sidecar-xds-test';
  const apply = (...docs: Doc[]) => cp.store.apply(docs, { author: 't' });
  const proxy = () => cp.discovery.proxies().find((p) => p.nodeId === NODE);
  const typeStatus = (t: string) => proxy()?.types.find((x) => x.typeUrl === t);
  const stateOf = (t: string) => client.state().find((s) => s.typeUrl === t)!;
  const lastUpdate = (t: string) => [...updates].reverse().find((u) => u.typeUrl === t);
  /** Every subscribed type ACKed at the client's accepted version, as the server sees it. */
  const synced = () => {
    const p = proxy();
    if (p === undefined || p.state !== 'SYNCED' || p.types.length !== 4) return undefined;
    return p.types.every((t) => t.ackedVersion === stateOf(t.typeUrl).version) ? p : undefined;
  };

  const testClusterType: ResourceDecoder<ClusterConfig> = {
    kind: clusterType.kind,
    decode(any) {
      const r = clusterType.decode(any);
      return rejectClusters.has(r.name) ? { name: r.name, error: 'rejected by the test' } : r;
    },
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-xds-client-'));
    cp = await ControlPlane.start({ dataDir: dir, xdsListen: '127.0.0.1:0', xdsInsecureListen: '127.0.0.1:0', apiListen: '127.0.0.1:0', log: silentLogger() });
    port = cp.xdsInsecurePort;
    await apply(service('reviews', { endpoints: [{ address: '10.1.0.1', port: 50051, labels: { version: 'v1' } }] }), service('ratings'), split(90, 10));
    const types = decoderMap(listenerType, routeType);
    types.set(CDS, testClusterType as ResourceDecoder<unknown>);
    client = new XdsClient({
      server: `127.0.0.1:${port}`, protocol,
      node: { id: NODE, cluster: 'test', metadata: { zone: 'z1' }, userAgentVersion: '0.1.0' },
      types, clock, log: silentLogger(), random: () => random,
    });
    client.onUpdate((typeUrl, resources, version) => {
      updates.push({ typeUrl, version, resources });
      // What the cluster manager will do: follow CDS with the EDS names it needs.
      if (typeUrl === CDS) client.subscribe(EDS, [...resources.values()].map((c) => (c as ClusterConfig).edsServiceName));
    });
    client.onNack((n) => nacks.push(n));
    client.onConnect(() => { connects++; });
    client.onDisconnect((d) => disconnects.push(d));
    client.onResponse((r) => responses.push(r));
  });
  after(async () => {
    client?.close();
    await cp?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('receives the outbound listener, its routes, the clusters and (following CDS) their endpoints, and ACKs them', async () => {
    client.subscribe(LDS, '*');
    client.subscribe(CDS, '*');
    client.subscribe(RDS, ['skein.outbound']);
    const p = await eventually(synced, 'all four types SYNCED on the control plane');
    assert.equal(p.userAgent, 'skein-sidecar/0.1.0');
    assert.equal(p.cluster, 'test');
    assert.equal(connects, 1);
    assert.ok(client.connected);

    const out = client.resources<ListenerConfig>(LDS).get('skein.outbound');
    assert.deepEqual(out && { a: out.address, r: out.routeConfigName, d: out.direction }, { a: { host: '127.0.0.1', port: 15001 }, r: 'skein.outbound', d: 'OUTBOUND' });
    assert.deepEqual([...client.resources(CDS).keys()].sort(), ['ratings', 'ratings/v1', 'ratings/v2', 'reviews', 'reviews/v1', 'reviews/v2']);
    assert.equal(client.resources<ClusterConfig>(CDS).get('reviews/v1')?.protocol, 'h2');
    assert.deepEqual(client.resources<EndpointsConfig>(EDS).get('reviews/v1')?.hosts, [{ address: '10.1.0.1', port: 50051, weight: 1, zone: '', health: 'HEALTHY' }]);
    assert.deepEqual(client.resources<EndpointsConfig>(EDS).get('reviews/v2')?.hosts, []);
    assert.deepEqual(stateOf(EDS).subscribed.length, 6);
    assert.ok(client.resources(RDS).has('skein.outbound'));
    for (const s of client.state()) {
      assert.equal(typeStatus(s.typeUrl)?.sentVersion, s.version, `${s.typeUrl}: the accepted version is the one sent`);
      assert.equal(s.lastError, null);
    }
  });

  test('turns a config change (canary weights) and an endpoint change into updates', async () => {
    const rdsBefore = stateOf(RDS).version;
    const count = updates.length;
    await apply(split(50, 50));
    await eventually(() => (lastUpdate(RDS)!.version !== rdsBefore ? true : undefined), 'an RDS update');
    assert.equal(updates.slice(count).every((u) => u.typeUrl === RDS), true, 'only the routes changed');
    assert.match(JSON.stringify(lastUpdate(RDS)!.resources.get('skein.outbound')), /"weight":\{"value":50\}/);

    const lease = cp.registry.register({ service: 'reviews', address: '10.1.0.2', port: 50051, labels: { version: 'v1' } });
    await eventually(() => ((lastUpdate(EDS)!.resources.get('reviews/v1') as EndpointsConfig).hosts.length === 2 ? true : undefined), 'an EDS update');
    cp.registry.deregister(lease.id);
    await eventually(() => ((lastUpdate(EDS)!.resources.get('reviews/v1') as EndpointsConfig).hosts.length === 1 ? true : undefined), 'the endpoint removed');
    await eventually(synced, 'SYNCED after the changes');
  });

  test('NACKs a response holding a resource it rejects, keeps its config, and accepts the next good one', async () => {
    const before = stateOf(CDS);
    const nackCount = nacks.length;
    rejectClusters.add('bad');
    await apply(service('bad'));
    await eventually(() => (typeStatus(CDS)?.state === 'NACKED' ? true : undefined), 'CDS NACKED on the control plane');
    const st = typeStatus(CDS)!;
    assert.match(st.lastNack!.message, /^bad: rejected by the test$/);
    assert.equal(st.lastNack!.code, 3);
    assert.equal(st.ackedVersion, before.version, 'the server knows the client kept its last good version');
    assert.equal(nacks.length, nackCount + 1);
    assert.equal(nacks.at(-1)!.typeUrl, CDS);
    assert.equal(nacks.at(-1)!.version, st.lastNack!.version);

    const after = stateOf(CDS);
    assert.deepEqual({ ...after, nonce: before.nonce, lastError: null }, before, 'resources and version unchanged');
    assert.equal(after.lastError?.message, 'bad: rejected by the test');
    assert.equal(after.lastError?.version, st.lastNack!.version);
    assert.equal(client.resources(CDS).has('bad'), false);

    // A good config (here: a new service) is accepted again.
    await apply(service('good'));
    if (protocol === 'sotw') {
      // Still NACKed: 'bad' is in every CDS response until it goes.
      await eventually(() => (nacks.length >= nackCount + 2 ? true : undefined), 'the next CDS response NACKed too');
    } else {
      // Delta sends what changed: 'good' alone, accepted; the rejected 'bad' is not sent again.
      await eventually(() => (client.resources(CDS).has('good') ? true : undefined), 'good accepted beside the rejected bad');
      assert.equal(nacks.length, nackCount + 1);
      assert.equal(client.resources(CDS).has('bad'), false);
      const now = [...client.resources(CDS).keys()];
      assert.deepEqual(now.filter((n) => !n.startsWith('good')).sort(), Object.keys(before.resources).sort(), 'the previous good clusters kept');
    }
    await cp.store.delete(['Service/bad'], { author: 't' });
    await eventually(() => (client.resources(CDS).has('good') ? true : undefined), 'the good config accepted');
    assert.equal(stateOf(CDS).lastError, null);
    await eventually(synced, 'SYNCED again');
    assert.equal(typeStatus(CDS)!.lastNack?.message, 'bad: rejected by the test', 'the server keeps the NACK history');
    await cp.store.delete(['Service/good'], { author: 't' });
    await eventually(() => (client.resources(CDS).has('good') ? undefined : true), 'good removed');
    await eventually(synced, 'SYNCED');
  });

  test('keeps its config while the control plane is down, backs off with full jitter, and resyncs with a new one on the same port', async () => {
    const before = client.state();
    const updateCount = updates.length;
    clock.delays.length = 0;
    await cp.close();
    await eventually(() => (disconnects.length === 1 ? true : undefined), 'the disconnect');
    assert.equal(disconnects[0]!.code, grpc.status.UNAVAILABLE);
    assert.equal(disconnects[0]!.retryInMs, 500);
    assert.equal(client.connected, false);
    assert.deepEqual(client.state(), before, 'nothing cleared');
    assert.deepEqual(clock.delays, [500]);

    // Each attempt fails (nothing listens); the next delay doubles. random() = 1 gives the ceiling.
    clock.advance(499);
    assert.deepEqual(clock.delays, [500], 'no attempt before the delay');
    clock.advance(1);
    await eventually(() => (clock.delays.length === 2 ? true : undefined), 'the second attempt to fail');
    clock.advance(1000);
    await eventually(() => (clock.delays.length === 3 ? true : undefined), 'the third attempt to fail');
    random = 0.5;
    clock.advance(2000);
    await eventually(() => (clock.delays.length === 4 ? true : undefined), 'the fourth attempt to fail');
    assert.deepEqual(clock.delays, [500, 1000, 2000, 2000], 'random()=0.5 takes half of the 4000 ceiling');
    assert.deepEqual(client.state().map((s) => ({ ...s, nonce: '' })), before.map((s) => ({ ...s, nonce: '' })), 'still nothing cleared');

    cp = await ControlPlane.start({ dataDir: dir, xdsListen: '127.0.0.1:0', xdsInsecureListen: `127.0.0.1:${port}`, apiListen: '127.0.0.1:0', log: silentLogger() });
    responses.length = 0;
    clock.advance(2000);
    const p = await eventually(synced, 'resynced with the new control plane');
    assert.equal(connects, 2);
    const sent = responses.reduce((n, r) => n + r.resources + r.removed, 0);
    if (protocol === 'delta') assert.equal(sent, 0, 'initial_resource_versions: the new control plane re-sent nothing the client held');
    else assert.ok(sent > 0, 'state of the world: every resource is sent again');
    assert.ok(responses.every((r) => r.protocol === protocol));
    for (const s of before) {
      assert.equal(stateOf(s.typeUrl).version, s.version, `${s.typeUrl}: same version after the restart`);
      assert.equal(p.types.find((t) => t.typeUrl === s.typeUrl)?.ackedVersion, s.version);
    }
    assert.deepEqual(client.state().map((s) => s.resources), before.map((s) => s.resources));
    assert.equal(updates.length, updateCount, 'identical resources after a resync: no updates');

    // The backoff starts over once the new stream got a response.
    clock.delays.length = 0;
    await cp.close();
    await eventually(() => (clock.delays.length === 1 ? true : undefined), 'the next disconnect');
    assert.deepEqual(clock.delays, [250]);
    client.close();
    assert.equal(clock.pending(), 0, 'close() cancels the reconnect');
    cp = await ControlPlane.start({ dataDir: dir, xdsListen: '127.0.0.1:0', xdsInsecureListen: '127.0.0.1:0', apiListen: '127.0.0.1:0', log: silentLogger() });
  });
});

// ---------------------------------------------------------------- a scripted server

describe('XdsClient robustness (a scripted ADS server)', () => {
  let server: grpc.Server;
  let port: number;
  const requests: Doc[] = [];
  let call: grpc.ServerDuplexStream<Doc, Doc> | undefined;
  let waiters: (() => void)[] = [];

  before(async () => {
    server = new grpc.Server();
    server.addService(loadAdsServiceDefinition(), {
      StreamAggregatedResources: (c: grpc.ServerDuplexStream<Doc, Doc>) => {
        call = c;
        c.on('data', (r: Doc) => { requests.push(r); const w = waiters; waiters = []; for (const f of w) f(); });
        c.on('error', () => undefined);
      },
      DeltaAggregatedResources: (c: grpc.ServerDuplexStream<unknown, unknown>) => c.end(),
    });
    port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  });
  after(() => server.forceShutdown());

  async function nextRequest(): Promise<Doc> {
    const deadline = Date.now() + 10_000;
    while (requests.length === 0) {
      if (Date.now() > deadline) throw new Error('no request from the client');
      await new Promise<void>((resolve) => { const t = setTimeout(resolve, 100); waiters.push(() => { clearTimeout(t); resolve(); }); });
    }
    return requests.shift()!;
  }

  test('ignores a response without a nonce, NACKs an unknown type, a foreign or undecodable resource, and ACKs a good one', async () => {
    const nacks: XdsNack[] = [];
    const client = new XdsClient({
      server: `127.0.0.1:${port}`, protocol: 'sotw', node: { id: 'n1', cluster: 'c', metadata: { role: 'sidecar' } },
      types: decoderMap(listenerType), clock: new FakeClock(), log: silentLogger(),
    });
    client.onNack((n) => nacks.push(n));
    try {
      client.subscribe(CDS, '*');
      const first = await nextRequest();
      const node = first['node'];
      assert.deepEqual({ id: node.id, cluster: node.cluster, ua: node.user_agent_name }, { id: 'n1', cluster: 'c', ua: 'skein-sidecar' });
      assert.equal(node.metadata.fields.role.stringValue, 'sidecar');
      assert.deepEqual({ t: first['type_url'], v: first['version_info'] ?? '', n: first['response_nonce'] ?? '', r: first['resource_names'] ?? [] }, { t: CDS, v: '', n: '', r: [] });
      const good = encodeResource(CDS, { name: 'c1', type: 'EDS', eds_cluster_config: { eds_config: ADS } });

      call!.write({ version_info: 'v0', type_url: CDS, resources: [good] }); // no nonce: ignored
      call!.write({ version_info: 'x', type_url: 'type.googleapis.com/foo.Bar', nonce: 'n1', resources: [] });
      const r1 = await nextRequest();
      assert.equal(r1['type_url'], 'type.googleapis.com/foo.Bar', 'the nonce-less response got no answer');
      assert.equal(r1['response_nonce'], 'n1');
      assert.equal(r1['error_detail']?.code, 3);
      assert.match(r1['error_detail']?.message, /unexpected type_url/);

      call!.write({ version_info: 'v1', type_url: CDS, nonce: 'n2', resources: [good, encodeResource(LDS, { name: 'l' }), { type_url: CDS, value: Buffer.from([0xff, 0xff]) }] });
      const r2 = await nextRequest();
      assert.equal(r2['response_nonce'], 'n2');
      assert.equal(r2['version_info'] ?? '', '', 'no version accepted yet');
      assert.match(r2['error_detail']?.message, /^resources\[1\]: type_url .*Listener does not match .*; resources\[2\]: cannot decode Cluster/);
      assert.equal(client.resources(CDS).size, 0);

      call!.write({ version_info: 'v2', type_url: CDS, nonce: 'n3', resources: [good] });
      const r3 = await nextRequest();
      assert.deepEqual({ v: r3['version_info'], n: r3['response_nonce'], e: r3['error_detail'] ?? undefined }, { v: 'v2', n: 'n3', e: undefined });
      assert.deepEqual([...client.resources(CDS).keys()], ['c1']);
      assert.equal(nacks.length, 2);
      assert.throws(() => client.subscribe(EDS, '*'), /wildcard subscription is for LDS and CDS only/);
      assert.throws(() => client.subscribe(RDS, ['x']), /no decoder/);
    } finally {
      client.close();
    }
  });
});

/**
 * Fault injection and local rate limiting, below the request path: FaultPolicy decisions for
 * injected random draws (percentage boundaries, abort statuses), TokenBucket arithmetic at
 * explicit clock readings, the listener-level filter checks, and the whole chain from user config
 * through translate() and the real protobuf encoding to the sidecar's decoded route entries.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../shared/src/clock';
import { buildMesh } from '../../../shared/src/config/mesh';
import { encodeResource } from '../../../shared/src/xds/pack';
import { decodeAny, TYPE_URLS } from '../../../shared/src/xds/protos';
import { SnapshotCache } from '../../../control-plane/src/discovery/snapshot-cache';
import { translate } from '../../../control-plane/src/translate/translate';
import { FaultPolicy, httpToGrpcStatus } from '../../../sidecar/src/resilience/fault';
import { TokenBucket } from '../../../sidecar/src/resilience/token-bucket';
import { listenerType } from '../../../sidecar/src/pipeline';
import type { ListenerConfig } from '../../../sidecar/src/xds/listener-type';
import { routeType } from '../../../sidecar/src/pipeline';
import { RouteTable } from '../../../sidecar/src/route/route-table';
import type { RouteEntry } from '../../../sidecar/src/route/route-table';
import { HTTP_FILTERS, perRouteConfig } from '../../../sidecar/src/filters/registry';

const faultOf = (e: RouteEntry) => perRouteConfig<FaultPolicy>(e, 'envoy.filters.http.fault');
const limitOf = (e: RouteEntry) => perRouteConfig<TokenBucket>(e, 'envoy.filters.http.local_ratelimit');
import { DEFAULT_LIMITS, TypeSubscription } from '../../../sidecar/src/xds/type-subscription';
import { TEST_TRANSLATE } from '../../support/mesh-trust';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = Record<string, any>;

// ---------------------------------------------------------------- FaultPolicy

describe('FaultPolicy', () => {
  const delay = (perMillion: number) => new FaultPolicy({ delay: { fixedDelayMs: 250, perMillion } });
  const cases: [label: string, policy: FaultPolicy, r: number, delayMs: number][] = [
    ['10%: r = 0 is delayed', delay(100_000), 0, 250],
    ['10%: r just below 0.1 is delayed', delay(100_000), 0.0999999, 250],
    ['10%: r = 0.1 is not', delay(100_000), 0.1, 0],
    ['10%: r = 0.5 is not', delay(100_000), 0.5, 0],
    ['100%: the largest r below 1 is delayed', delay(1_000_000), 1 - Number.EPSILON, 250],
    ['0%: r = 0 is not delayed', delay(0), 0, 0],
    ['1 per million: r = 0 is delayed', delay(1), 0, 250],
    ['1 per million: r = 0.0000009 is delayed', delay(1), 0.0000009, 250],
    ['1 per million: r = 0.000001 is not', delay(1), 0.000001, 0],
    ['above 100% is capped at 100%', delay(5_000_000), 0.9999999, 250],
    ['no delay configured: 0', new FaultPolicy({ abort: { grpcStatus: 14, perMillion: 1_000_000 } }), 0, 0],
  ];
  for (const [label, policy, r, expected] of cases) test(`delayMs: ${label}`, () => assert.equal(policy.delayMs(r), expected));

  const abortCases: [label: string, init: ConstructorParameters<typeof FaultPolicy>[0], r: number, expected: { http: number; grpc: number } | undefined][] = [
    ['http 503 at 50%, r = 0.4999999: 503 / UNAVAILABLE', { abort: { httpStatus: 503, perMillion: 500_000 } }, 0.4999999, { http: 503, grpc: 14 }],
    ['http 503 at 50%, r = 0.5: forwarded', { abort: { httpStatus: 503, perMillion: 500_000 } }, 0.5, undefined],
    ['grpc 14 at 100%: HTTP 200 for plain HTTP (Envoy), 14 for gRPC', { abort: { grpcStatus: 14, perMillion: 1_000_000 } }, 0.999, { http: 200, grpc: 14 }],
    ['grpc 0 at 100%', { abort: { grpcStatus: 0, perMillion: 1_000_000 } }, 0, { http: 200, grpc: 0 }],
    ['http 404: UNIMPLEMENTED', { abort: { httpStatus: 404, perMillion: 1_000_000 } }, 0, { http: 404, grpc: 12 }],
    ['http 418: UNKNOWN', { abort: { httpStatus: 418, perMillion: 1_000_000 } }, 0, { http: 418, grpc: 2 }],
    ['0%: never', { abort: { httpStatus: 503, perMillion: 0 } }, 0, undefined],
    ['no abort configured', { delay: { fixedDelayMs: 1, perMillion: 1_000_000 } }, 0, undefined],
  ];
  for (const [label, init, r, expected] of abortCases) {
    test(`abort: ${label}`, () => {
      const a = new FaultPolicy(init).abort(r);
      assert.deepEqual(a && { http: a.http, grpc: a.grpc }, expected);
      if (a !== undefined) assert.equal(a.reason, 'fault_abort');
    });
  }

  test('abort() returns one precomputed, frozen object (nothing allocated per request)', () => {
    const p = new FaultPolicy({ abort: { httpStatus: 429, perMillion: 1_000_000 } });
    const a = p.abort(0.1);
    assert.ok(a !== undefined && a === p.abort(0.7) && a === p.abortStatus);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(p));
  });

  test('delay and abort draw independently', () => {
    const p = new FaultPolicy({ delay: { fixedDelayMs: 5, perMillion: 200_000 }, abort: { grpcStatus: 8, perMillion: 300_000 } });
    assert.deepEqual([p.delayMs(0.25), p.abort(0.25)?.grpc, p.delayMs(0.15), p.abort(0.35)], [0, 8, 5, undefined]);
  });

  test('inert: true only when nothing can ever hit', () => {
    assert.deepEqual([
      new FaultPolicy({}).inert,
      new FaultPolicy({ delay: { fixedDelayMs: 5, perMillion: 0 }, abort: { grpcStatus: 8, perMillion: 0 } }).inert,
      new FaultPolicy({ delay: { fixedDelayMs: 5, perMillion: 1 } }).inert,
      new FaultPolicy({ abort: { grpcStatus: 8, perMillion: 1 } }).inert,
    ], [true, true, false, false]);
  });

  const mapping: [http: number, grpc: number][] = [[400, 13], [401, 16], [403, 7], [404, 12], [429, 14], [502, 14], [503, 14], [504, 14], [500, 2], [200, 2], [409, 2]];
  test('httpToGrpcStatus follows Envoy\'s Grpc::Utility::httpToGrpcStatus', () => {
    assert.deepEqual(mapping.map(([h]) => [h, httpToGrpcStatus(h)]), mapping);
  });
});

// ---------------------------------------------------------------- TokenBucket

describe('TokenBucket', () => {
  const T0 = 1_000_000;

  test('starts full: exactly maxTokens are taken, the next is refused', () => {
    const b = new TokenBucket(5, 5, 1000, T0);
    assert.equal(b.tokens(T0), 5);
    const taken = Array.from({ length: 7 }, () => b.tryTake(T0));
    assert.deepEqual(taken, [true, true, true, true, true, false, false]);
    assert.equal(b.tokens(T0), 0);
  });

  test('a partial interval adds nothing; exactly one fill interval adds tokensPerFill', () => {
    const b = new TokenBucket(3, 2, 1000, T0);
    for (let i = 0; i < 3; i++) assert.equal(b.tryTake(T0), true);
    assert.deepEqual([b.tryTake(T0 + 1), b.tryTake(T0 + 999), b.tokens(T0 + 999)], [false, false, 0]);
    assert.equal(b.tokens(T0 + 1000), 2);
    assert.deepEqual([b.tryTake(T0 + 1000), b.tryTake(T0 + 1000), b.tryTake(T0 + 1000)], [true, true, false]);
  });

  test('the elapsed part of an interval carries over: fills stay on the T0 + k * interval grid', () => {
    const b = new TokenBucket(1, 1, 100, T0);
    assert.equal(b.tryTake(T0), true);
    assert.equal(b.tryTake(T0 + 150), true, 'one interval passed at T0+100');
    assert.equal(b.tryTake(T0 + 199), false, 'the next fill is at T0+200, not T0+250');
    assert.equal(b.tryTake(T0 + 200), true);
  });

  test('several elapsed intervals add their tokens at once, capped at maxTokens', () => {
    const b = new TokenBucket(10, 3, 100, T0);
    for (let i = 0; i < 10; i++) b.tryTake(T0);
    assert.deepEqual([b.tokens(T0 + 299), b.tokens(T0 + 300)], [6, 9]);
    assert.equal(b.tokens(T0 + 100_000), 10);
  });

  test('driven by a FakeClock: a burst of maxTokens, then tokensPerFill per interval', () => {
    const clock = new FakeClock();
    const b = new TokenBucket(4, 1, 250, clock.now());
    const perSecond: number[] = [];
    for (let second = 0; second < 3; second++) {
      let ok = 0;
      for (let tick = 0; tick < 10; tick++) {
        for (let i = 0; i < 10; i++) if (b.tryTake(clock.now())) ok++;
        clock.advance(100);
      }
      perSecond.push(ok);
    }
    // Second 0: the burst (4) plus fills at 250, 500, 750 ms; then 4 fills a second.
    assert.deepEqual(perSecond, [7, 4, 4]);
  });

  test('maxTokens 0 refuses everything', () => {
    const b = new TokenBucket(0, 1, 50, T0);
    assert.deepEqual([b.tryTake(T0), b.tryTake(T0 + 10_000), b.tokens(T0 + 10_000)], [false, false, 0]);
  });

  test('a clock that goes backwards adds nothing and restarts the fill phase there', () => {
    const b = new TokenBucket(1, 1, 100, T0);
    assert.equal(b.tryTake(T0), true);
    assert.equal(b.tryTake(T0 - 500), false);
    assert.deepEqual([b.tryTake(T0 - 401), b.tryTake(T0 - 400)], [false, true]);
  });

  test('rejects impossible settings', () => {
    assert.throws(() => new TokenBucket(-1, 1, 100, 0), RangeError);
    assert.throws(() => new TokenBucket(1.5, 1, 100, 0), RangeError);
    assert.throws(() => new TokenBucket(1, 0, 100, 0), RangeError);
    assert.throws(() => new TokenBucket(1, 1, 0, 0), RangeError);
  });
});

// ---------------------------------------------------------------- listener-level filters

describe('Listener http filters (sidecar decode)', () => {
  const HCM = TYPE_URLS.HCM;
  const ROUTER_F = { name: 'envoy.filters.http.router', typed_config: { '@type': TYPE_URLS.ROUTER } };
  const listener = (filters: Doc[]): Doc => ({
    name: 'l', address: { socket_address: { address: '127.0.0.1', port_value: 15001 } },
    filter_chains: [{ filters: [{ name: 'hcm', typed_config: { '@type': HCM, stat_prefix: 'out', rds: { route_config_name: 'rc', config_source: { ads: {} } }, http_filters: [...filters, ROUTER_F] } }] }],
  });
  const decode = (l: Doc) => listenerType.decode(encodeResource(TYPE_URLS.LISTENER, l));
  const P = 'filter_chains[0].filters[0].typed_config.http_filters[0].typed_config';

  test('the filters translate() lists decode, inert, in order', () => {
    const mesh = buildMesh([
      { apiVersion: 'skein.dev/v1alpha1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ name: 'grpc', port: 1 }] } },
      { apiVersion: 'skein.dev/v1alpha1', kind: 'GRPCRoute', metadata: { name: 's' }, spec: { parentRefs: [{ name: 's' }], rules: [{ backendRefs: [{ name: 's' }], filters: [
        { type: 'Fault', fault: { abort: { grpcStatus: 14 } } }, { type: 'LocalRateLimit', localRateLimit: { maxTokens: 1 } },
      ] }] } },
    ]);
    const out = translate(mesh, [], TEST_TRANSLATE).listeners.find((l) => l['name'] === 'skein.outbound')!;
    const r = listenerType.decode(encodeResource(TYPE_URLS.LISTENER, out));
    assert.ok('value' in r, 'error' in r ? r.error : '');
    assert.deepEqual((r.value as ListenerConfig).httpFilters, [
      { name: 'envoy.filters.http.fault', typeUrl: TYPE_URLS.FAULT, disabled: false, config: {} },
      { name: 'envoy.filters.http.local_ratelimit', typeUrl: TYPE_URLS.LOCAL_RATELIMIT, disabled: false, config: { stat_prefix: 'local_rate_limit' } },
    ]);
  });

  const bad: [label: string, filter: Doc, error: string][] = [
    ['a listener-wide abort', { name: 'f', typed_config: { '@type': TYPE_URLS.FAULT, abort: { http_status: 503, percentage: { numerator: 1 } } } },
      `${P}.abort: a listener-wide fault is not supported by the skein sidecar; set it per route (typed_per_filter_config)`],
    ['a listener-wide delay', { name: 'f', typed_config: { '@type': TYPE_URLS.FAULT, delay: { fixed_delay: { seconds: 1 } } } },
      `${P}.delay: a listener-wide fault is not supported by the skein sidecar; set it per route (typed_per_filter_config)`],
    ['max_active_faults', { name: 'f', typed_config: { '@type': TYPE_URLS.FAULT, max_active_faults: { value: 1 } } },
      `${P}.max_active_faults: is not supported by the skein sidecar`],
    ['a listener-wide token bucket', { name: 'r', typed_config: { '@type': TYPE_URLS.LOCAL_RATELIMIT, stat_prefix: 'x', token_bucket: { max_tokens: 1, fill_interval: { seconds: 1 } } } },
      `${P}.token_bucket: a listener-wide token bucket is not supported by the skein sidecar; set one per route (typed_per_filter_config)`],
    ['a local_ratelimit without stat_prefix', { name: 'r', is_optional: true, typed_config: { '@type': TYPE_URLS.LOCAL_RATELIMIT } },
      `${P}.stat_prefix: is required`],
  ];
  for (const [label, filter, error] of bad) {
    test(`rejects ${label}`, () => {
      const r = decode(listener([filter]));
      assert.ok('error' in r, 'expected a rejection');
      assert.equal(r.error, error);
    });
  }
});

// ---------------------------------------------------------------- config -> xDS -> sidecar

describe('from user config to the sidecar\'s route entries', () => {
  const V = 'skein.dev/v1alpha1';
  const docs = [
    { apiVersion: V, kind: 'Service', metadata: { name: 'api' }, spec: { protocol: 'http', ports: [{ name: 'http', port: 8080 }] } },
    {
      apiVersion: V, kind: 'HTTPRoute', metadata: { name: 'api' },
      spec: {
        parentRefs: [{ name: 'api' }],
        rules: [
          { name: 'slow', matches: [{ path: { value: '/slow' } }], backendRefs: [{ name: 'api' }], filters: [{ type: 'Fault', fault: { delay: { fixedDelay: '40ms', percentage: 25 } } }] },
          { name: 'broken', matches: [{ path: { value: '/broken' } }], backendRefs: [{ name: 'api' }], filters: [{ type: 'Fault', fault: { abort: { httpStatus: 503, percentage: 0.5 } } }] },
          { name: 'limited', matches: [{ path: { value: '/limited' } }], backendRefs: [{ name: 'api' }], filters: [{ type: 'LocalRateLimit', localRateLimit: { maxTokens: 2, tokensPerFill: 1, fillInterval: '500ms' } }] },
        ],
      },
    },
  ];

  /** The sidecars' outbound table as the sidecar decodes it (routeType), built at `nowMs`. */
  function outboundTable(nowMs = 0): RouteTable {
    const cache = new SnapshotCache();
    cache.set(translate(buildMesh(docs), [], TEST_TRANSLATE), 1);
    const any = cache.get(TYPE_URLS.ROUTE, 'skein.outbound')!.any;
    const r = routeType.decode(any);
    assert.ok('value' in r, 'error' in r ? r.error : '');
    return nowMs === 0 ? r.value : RouteTable.build(decodeAny(any), HTTP_FILTERS, nowMs);
  }

  test('delay: 40ms for 25% of requests', () => {
    const f = faultOf(outboundTable().match('api', '/slow', 'GET', {})!)!;
    assert.deepEqual([f.delayMs(0), f.delayMs(0.2499999), f.delayMs(0.25), f.abort(0)], [40, 40, 0, undefined]);
  });

  test('abort: 503 for 0.5% of requests; gRPC callers would see UNAVAILABLE', () => {
    const f = faultOf(outboundTable().match('api:8080', '/broken', 'GET', {})!)!;
    assert.deepEqual([f.abort(0.0049999), f.abort(0.005), f.delayMs(0)], [{ reason: 'fault_abort', http: 503, grpc: 14 }, undefined, 0]);
  });

  test('local rate limit: 2 at once, then 1 per 500ms, on the clock the request path reads', () => {
    const clock = new FakeClock();
    const b = limitOf(outboundTable(clock.now()).match('api', '/limited', 'GET', {})!)!;
    const take = () => b.tryTake(clock.now());
    assert.deepEqual([take(), take(), take()], [true, true, false]);
    clock.advance(499);
    assert.equal(take(), false);
    clock.advance(1);
    assert.deepEqual([take(), take()], [true, false]);
  });

  /** The outbound RouteConfiguration for `docs`, packed as the control plane sends it. */
  function outboundAny(ds: Doc[]) {
    const cache = new SnapshotCache();
    cache.set(translate(buildMesh(ds), [], TEST_TRANSLATE), 1);
    return cache.get(TYPE_URLS.ROUTE, 'skein.outbound')!.any;
  }
  /** `docs` with the 'slow' rule's delay and the 'limited' rule's bucket replaced. */
  function edited(delay: string, bucket: Doc): Doc[] {
    const copy = structuredClone(docs);
    const rules = copy[1]!.spec.rules as Doc[];
    rules[0]!.filters[0].fault.delay.fixedDelay = delay;
    rules[2]!.filters[0].localRateLimit = bucket;
    return copy;
  }

  test('a config push keeps an unchanged bucket (tokens taken stay taken); changed settings start a full one', () => {
    const rds = new TypeSubscription(routeType, DEFAULT_LIMITS);
    rds.setNames(['skein.outbound']);
    const apply = (ds: Doc[], v: string) => assert.equal(rds.apply({ version_info: v, nonce: v, resources: [outboundAny(ds)] }, 0).kind, 'accepted');
    const limited = () => limitOf((rds.resources.get('skein.outbound') as RouteTable).match('api', '/limited', 'GET', {})!)!;
    const slowDelay = () => faultOf((rds.resources.get('skein.outbound') as RouteTable).match('api', '/slow', 'GET', {})!)!.delayMs(0);
    const bucket = { maxTokens: 2, tokensPerFill: 1, fillInterval: '500ms' };
    apply(docs, '1');
    const first = limited();
    assert.deepEqual([first.tryTake(0), first.tryTake(0), first.tryTake(0)], [true, true, false]);

    // Another rule changed: a new table, the same exhausted bucket.
    apply(edited('80ms', bucket), '2');
    assert.equal(slowDelay(), 80, 'the update was applied');
    assert.equal(limited(), first);
    assert.equal(limited().tryTake(0), false, 'a push does not refill the rate limit');

    // The same bytes again: nothing rebuilt.
    const table = rds.resources.get('skein.outbound');
    apply(edited('80ms', bucket), '3');
    assert.equal(rds.resources.get('skein.outbound'), table);

    // New bucket settings: a new, full bucket.
    apply(edited('80ms', { ...bucket, maxTokens: 3 }), '4');
    assert.notEqual(limited(), first);
    assert.deepEqual([limited().tryTake(0), limited().tryTake(0), limited().tryTake(0), limited().tryTake(0)], [true, true, true, false]);
  });
});

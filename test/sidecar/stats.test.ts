/**
 * The sidecar stats registry: counters and gauges, the HdrHistogram-backed latency histogram,
 * the rolling window (driven by a FakeClock) and the route / cluster / listener bundles.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../shared/src/clock';
import { Counter, LatencyHistogram, MAX_LATENCY_US, RollingWindow, Stats, statKey } from '../../sidecar/src/stats/stats';
import { ClusterStats, ListenerStats, RouteStats } from '../../sidecar/src/stats/stat-bundles';
import { LOCAL_REPLY_REASONS } from '../../sidecar/src/http/local-reply';
import { everyHttpFilter } from '../../sidecar/src/pipeline';
import type * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../../shared/src/log';
import { encodeResource } from '../../shared/src/xds/pack';
import { decodeAny, TYPE_URLS } from '../../shared/src/xds/protos';
import { ConnectionManager } from '../../sidecar/src/http/connection-manager';
import { sniffingServer } from '../../sidecar/src/listener/sniffing-server';
import { RouteTable } from '../../sidecar/src/route/route-table';
import { Cluster } from '../../sidecar/src/upstream/cluster';
import { GRPC_SERVER_FAILURES, requestSucceeded } from '../../sidecar/src/stats/grpc-status';

const START = Date.UTC(2026, 0, 1); // a whole second

/** |actual - expected| <= rel * expected. */
function near(actual: number, expected: number, rel: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= rel * expected, `${what}: ${actual} is not within ${rel * 100}% of ${expected}`);
}

describe('Counter and Gauge', () => {
  test('inc defaults to 1; value is a plain field', () => {
    const c = new Counter();
    c.inc();
    c.inc(4);
    c.value++;
    assert.equal(c.value, 6);
    const g = new Stats().gauge('g');
    g.set(5);
    g.add(-2);
    assert.equal(g.value, 3);
  });
});

describe('LatencyHistogram', () => {
  test('1..1000 ms gives p50 ~500, p95 ~950, p99 ~990 within HdrHistogram precision, exact max and mean', () => {
    const h = new LatencyHistogram();
    for (let ms = 1000; ms >= 1; ms--) h.record(ms * 1000);
    const p = h.percentiles();
    assert.equal(p.count, 1000);
    near(p.p50, 500, 0.001, 'p50');
    near(p.p95, 950, 0.001, 'p95');
    near(p.p99, 990, 0.001, 'p99');
    assert.equal(p.max, 1000);
    assert.equal(p.mean, 500.5);
    assert.ok(p.p50 >= 500 && p.p99 >= 990, 'HdrHistogram reports the highest equivalent value');
  });

  test('reports ms with µs precision and never a percentile above the exact max', () => {
    const h = new LatencyHistogram();
    h.record(1234.4);
    assert.deepEqual(h.percentiles(), { count: 1, p50: 1.234, p95: 1.234, p99: 1.234, max: 1.234, mean: 1.234 });
  });

  test('is all zeros when empty and after reset', () => {
    const h = new LatencyHistogram();
    const zero = { count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0 };
    assert.deepEqual(h.percentiles(), zero);
    h.record(5000);
    h.reset();
    assert.deepEqual(h.percentiles(), zero);
    assert.equal(h.countAtValue(5000), 0);
  });

  test('clamps out-of-range input instead of throwing: negative and NaN to 0, above 1 h to 1 h', () => {
    const h = new LatencyHistogram();
    h.record(-5);
    h.record(Number.NaN);
    h.record(MAX_LATENCY_US * 10);
    h.record(Number.POSITIVE_INFINITY);
    assert.equal(h.count, 4);
    assert.equal(h.countAtValue(0), 2);
    assert.equal(h.countAtValue(MAX_LATENCY_US), 2);
    assert.equal(h.percentiles().max, MAX_LATENCY_US / 1000);
  });

  test('the fast index in record() lands in the bucket HdrHistogram itself computes, over the whole range', () => {
    for (const digits of [2, 3] as const) {
      const h = new LatencyHistogram(digits);
      let n = 0;
      for (let v = 0; v <= MAX_LATENCY_US; v = v < 5000 ? v + 1 : Math.min(MAX_LATENCY_US, Math.floor(v * 1.0003) + 1)) {
        const before = h.countAtValue(v);
        h.record(v);
        n++;
        if (h.countAtValue(v) !== before + 1) assert.fail(`digits ${digits}: value ${v} was not counted in its HdrHistogram bucket`);
        if (v === MAX_LATENCY_US) break;
      }
      assert.ok(n > 40_000);
    }
  });

  test('merge adds counts, sums and max', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    for (let i = 1; i <= 100; i++) a.record(i * 1000);
    for (let i = 101; i <= 200; i++) b.record(i * 1000);
    a.merge(b);
    const p = a.percentiles();
    assert.equal(p.count, 200);
    assert.equal(p.max, 200);
    assert.equal(p.mean, 100.5);
    near(p.p50, 100, 0.001, 'p50');
  });
});

describe('Stats registry', () => {
  test('returns the same object for the same name and tags, whatever the tag order', () => {
    const s = new Stats();
    assert.equal(s.counter('route.r.rq_total'), s.counter('route.r.rq_total'));
    assert.notEqual(s.counter('route.r.rq_total'), s.counter('route.q.rq_total'));
    assert.equal(s.histogram('h', { a: '1', b: '2' }), s.histogram('h', { b: '2', a: '1' }));
    assert.notEqual(s.histogram('h', { a: '1' }), s.histogram('h'));
    assert.equal(s.gauge('g', {}), s.gauge('g'));
    assert.equal(s.window('w'), s.window('w'));
    assert.equal(statKey('route.r.window', { version: 'v2', backend: 'reviews-v2' }), 'route.r.window{backend=reviews-v2,version=v2}');
  });

  test('refuses one name as two kinds, and an empty name', () => {
    const s = new Stats();
    s.counter('x');
    assert.throws(() => s.gauge('x'), /stat x is a counter, not a gauge/);
    assert.throws(() => s.counter(''), RangeError);
  });

  test('snapshot is JSON-able, sorted, and filtered by substring; text is name: value lines', () => {
    const clock = new FakeClock(START);
    const s = new Stats({ clock });
    s.counter('route.b.rq_total').inc(2);
    s.counter('route.a.rq_total').inc(1);
    s.gauge('cluster.c.upstream_cx_active').set(3);
    s.histogram('cluster.c.upstream_rq_time').record(2000);
    s.window('route.a.window', { backend: 'a-v1' }).record(true, 1000);
    const snap = s.snapshot();
    assert.deepEqual(JSON.parse(JSON.stringify(snap)), snap);
    assert.deepEqual(Object.keys(snap.counters), ['route.a.rq_total', 'route.b.rq_total']);
    assert.deepEqual(snap.gauges, { 'cluster.c.upstream_cx_active': 3 });
    assert.deepEqual(snap.histograms, { 'cluster.c.upstream_rq_time': { count: 1, p50: 2, p95: 2, p99: 2, max: 2, mean: 2 } });
    assert.equal(snap.windows['route.a.window{backend=a-v1}']?.count, 1);

    const only = s.snapshot('route.a.');
    assert.deepEqual(only.counters, { 'route.a.rq_total': 1 });
    assert.deepEqual(only.gauges, {});
    assert.deepEqual(Object.keys(only.windows), ['route.a.window{backend=a-v1}']);

    assert.equal(s.text('rq_total'), 'route.a.rq_total: 1\nroute.b.rq_total: 2\n');
    assert.equal(s.text('upstream_rq_time'), 'cluster.c.upstream_rq_time: count=1 p50=2 p95=2 p99=2 max=2 mean=2\n');
    assert.equal(s.text('nothing-matches'), '');
  });
});

describe('RollingWindow', () => {
  test('counts drop out after W seconds', () => {
    const clock = new FakeClock(START);
    const w = new RollingWindow(clock, { seconds: 10 });
    for (let i = 0; i < 5; i++) w.record(true, 1000);
    clock.advance(9_999);
    assert.equal(w.summary().count, 5, 'still inside the window');
    clock.advance(1);
    const s = w.summary();
    assert.equal(s.count, 0, 'dropped out at exactly W seconds');
    assert.equal(s.successRate, null);
    assert.equal(s.rps, 0);
    assert.equal(s.p99, 0);
  });

  test('rate, success rate and percentiles over the window; old seconds are reused, not summed', () => {
    const clock = new FakeClock(START);
    const w = new RollingWindow(clock, { seconds: 10 });
    // 30 s of 20 req/s: 15 succeed at 10 ms, 5 fail at 100 ms. Only the last 10 s count.
    for (let sec = 0; sec < 30; sec++) {
      for (let i = 0; i < 20; i++) w.record(i < 15, i < 15 ? 10_000 : 100_000);
      clock.advance(1000);
    }
    // now = START + 30 s: the window holds seconds 21..29 and the empty current second 30.
    const s = w.summary();
    assert.equal(s.seconds, 10);
    assert.equal(s.count, 180);
    assert.equal(s.success, 135);
    assert.equal(s.rps, 20);
    assert.equal(s.successRate, 0.75);
    near(s.p50, 10, 0.01, 'p50');
    near(s.p95, 100, 0.01, 'p95');
    assert.equal(s.max, 100);
    assert.equal(s.mean, (15 * 10 + 5 * 100) / 20);
  });

  test('a young window divides by the time since it was created (at least 1 s)', () => {
    const clock = new FakeClock(START);
    const w = new RollingWindow(clock, { seconds: 10 });
    for (let i = 0; i < 30; i++) w.record(true, 500);
    assert.equal(w.summary().rps, 30, 'under 1 s old: divided by 1 s');
    clock.advance(2000);
    for (let i = 0; i < 30; i++) w.record(false, 500);
    const s = w.summary();
    assert.equal(s.rps, 30);
    assert.equal(s.successRate, 0.5);
  });

  test('an idle gap longer than the window leaves nothing behind', () => {
    const clock = new FakeClock(START);
    const w = new RollingWindow(clock, { seconds: 3 });
    w.record(true, 1000);
    clock.advance(3_000 * 5 + 250);
    w.record(false, 2000);
    const s = w.summary();
    assert.equal(s.count, 1);
    assert.equal(s.successRate, 0);
    assert.equal(s.max, 2);
  });

  test('rejects a window that is not a positive whole number of seconds', () => {
    assert.throws(() => new RollingWindow(new FakeClock(), { seconds: 0 }), RangeError);
    assert.throws(() => new RollingWindow(new FakeClock(), { seconds: 1.5 }), RangeError);
  });
});

describe('RouteStats, ClusterStats, ListenerStats', () => {
  test('a route bundle counts status classes, success, latency, window and per-backend windows', () => {
    const clock = new FakeClock(START);
    const stats = new Stats({ clock });
    const route = new RouteStats(stats, 'reviews', LOCAL_REPLY_REASONS);
    const v1 = route.backend('reviews-v1');
    const v2 = route.backend('reviews-v2');
    assert.equal(route.backend('reviews-v1'), v1, 'one window per backend');
    route.record(200, 1000, v1);
    route.record(204, 3000, v1);
    route.record(503, 2000, v2);
    route.record(404, 1000, v2);
    route.record(0, 500);
    route.rqRetry.inc();
    route.localReply.no_healthy_upstream.inc();

    const c = stats.snapshot('route.reviews.').counters;
    assert.equal(c['route.reviews.rq_total'], 5);
    assert.equal(c['route.reviews.rq_2xx'], 2);
    assert.equal(c['route.reviews.rq_4xx'], 1);
    assert.equal(c['route.reviews.rq_5xx'], 1);
    assert.equal(c['route.reviews.rq_success'], 3);
    assert.equal(c['route.reviews.rq_error'], 2);
    assert.equal(c['route.reviews.rq_retry'], 1);
    assert.equal(c['route.reviews.local_reply.no_healthy_upstream'], 1);
    for (const r of LOCAL_REPLY_REASONS) assert.equal(typeof c[`route.reviews.local_reply.${r}`], 'number', r);

    assert.equal(route.rqTime.count, 5);
    const w = stats.snapshot('route.reviews.window').windows;
    assert.equal(w['route.reviews.window']?.count, 5);
    assert.equal(w['route.reviews.window{backend=reviews-v1}']?.successRate, 1);
    assert.equal(w['route.reviews.window{backend=reviews-v2}']?.successRate, 0.5);
    assert.equal(w['route.reviews.window{backend=reviews-v2}']?.max, 2);

    const again = new RouteStats(stats, 'reviews');
    assert.equal(again.rqTotal, route.rqTotal, 'rebuilding the bundle keeps the same counters');
  });

  test('cluster and listener bundles use the upstream_ / downstream_ names', () => {
    const stats = new Stats({ clock: new FakeClock(START) });
    const cl = new ClusterStats(stats, 'reviews-v1');
    cl.record(200, 1500);
    cl.cxTotal.inc();
    cl.cxActive.add(1);
    cl.rqPendingOverflow.inc();
    const li = new ListenerStats(stats, 'inbound_8080');
    li.cxTotal.inc();
    li.rqTotal.inc();
    const snap = stats.snapshot();
    assert.equal(snap.counters['cluster.reviews-v1.upstream_rq_total'], 1);
    assert.equal(snap.counters['cluster.reviews-v1.upstream_rq_2xx'], 1);
    assert.equal(snap.counters['cluster.reviews-v1.upstream_cx_total'], 1);
    assert.equal(snap.counters['cluster.reviews-v1.upstream_rq_pending_overflow'], 1);
    assert.equal(snap.gauges['cluster.reviews-v1.upstream_cx_active'], 1);
    assert.equal(snap.histograms['cluster.reviews-v1.upstream_rq_time']?.p50, 1.5);
    assert.equal(snap.windows['cluster.reviews-v1.window']?.count, 1);
    assert.equal(snap.counters['listener.inbound_8080.downstream_cx_total'], 1);
    assert.equal(snap.counters['listener.inbound_8080.downstream_rq_total'], 1);
  });
});

describe('gRPC status stats (rq_grpc_<CODE>) and success by grpc-status', () => {
  test('a gRPC answer counts its HTTP class and its gRPC code; success follows the gRPC classification', () => {
    const stats = new Stats({ clock: new FakeClock(START) });
    const route = new RouteStats(stats, 'g');
    const cl = new ClusterStats(stats, 'c');
    const backend = route.backend('c');
    for (const code of [0, 5, 14, 14, 13, 3, 42]) { route.record(200, 1000, backend, START, code); cl.record(200, 1000, START, code); }
    route.record(503, 1000, backend, START); // plain HTTP
    const c = stats.snapshot().counters;
    assert.deepEqual(
      [c['route.g.rq_2xx'], c['route.g.rq_5xx'], c['route.g.rq_grpc_OK'], c['route.g.rq_grpc_NOT_FOUND'], c['route.g.rq_grpc_UNAVAILABLE'], c['route.g.rq_grpc_INTERNAL'], c['route.g.rq_grpc_INVALID_ARGUMENT'], c['route.g.rq_grpc_UNKNOWN']],
      [7, 1, 1, 1, 2, 1, 1, 1],
    );
    // OK, NOT_FOUND, INVALID_ARGUMENT succeed (the service answered); UNAVAILABLE x2, INTERNAL, UNKNOWN (42) fail; the 503 fails.
    assert.deepEqual([c['route.g.rq_success'], c['route.g.rq_error']], [3, 5]);
    assert.deepEqual([c['cluster.c.upstream_rq_grpc_UNAVAILABLE'], c['cluster.c.upstream_rq_success'], c['cluster.c.upstream_rq_error'], c['cluster.c.upstream_rq_5xx']], [2, 3, 4, 0]);
    assert.equal(stats.snapshot().windows['route.g.window{backend=c}']?.successRate, 0.375);
    assert.deepEqual(GRPC_SERVER_FAILURES, [2, 4, 12, 13, 14, 15]);
    assert.deepEqual([0, 1, 2, 4, 5, 12, 14, 16, 17, -1].map((g) => requestSucceeded(200, g)), [true, true, false, false, true, false, false, true, false, true]);
    assert.equal(requestSucceeded(0, 0), false, 'no response is a failure whatever the gRPC status');
  });

  test('through the router, from a real gRPC server answering non-OK statuses', async () => {
    const clock = new FakeClock(START);
    const stats = new Stats({ clock });
    const log = createLogger('stats-test', 'silent');
    const raw = (b: Buffer): Buffer => b;
    const echo: grpc.MethodDefinition<Buffer, Buffer> = { path: '/skein.test.Status/Answer', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw };
    const server = new grpc.Server();
    // The request's first byte is the status to answer with.
    server.addService({ Answer: echo }, { Answer: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => { const code = call.request[0]!; if (code === 0) cb(null, Buffer.from('ok')); else cb({ code, details: 'as asked' }); } });
    const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    const rc = { name: 'test', virtual_hosts: [{ name: 'svc', domains: ['*'], routes: [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'svc' } }] }] };
    const cluster = new Cluster({ name: 'svc', type: 'STATIC', edsServiceName: 'svc', lbPolicy: 'round_robin', connectTimeoutMs: 5000, protocol: 'h2' }, clock, { stats, log });
    cluster.stats = new ClusterStats(stats, 'svc');
    cluster.updateEndpoints([{ address: '127.0.0.1', port, weight: 1, zone: '', health: 'HEALTHY' }]);
    const cm = new ConnectionManager({ name: 'outbound', stats, policy: { trustForwardedFor: true }, clock, log });
    cm.snapshot = { routes: RouteTable.build(decodeAny(encodeResource(TYPE_URLS.ROUTE, rc))), clusters: new Map([['svc', cluster]]), filters: everyHttpFilter() };
    const proxy = sniffingServer(cm.h1, cm.h2, { acceptH2: cm.acceptH2 });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const Ctor = grpc.makeGenericClientConstructor({ Answer: echo }, 'Status');
    const client = new Ctor(`127.0.0.1:${(proxy.address() as net.AddressInfo).port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Answer(req: Buffer, cb: (e: grpc.ServiceError | null) => void): void };
    try {
      const got: number[] = [];
      for (const code of [0, 0, 5, 14, 14, 13]) got.push(await new Promise<number>((r) => client.Answer(Buffer.from([code]), (e) => r(e === null ? 0 : e.code))));
      assert.deepEqual(got, [0, 0, 5, 14, 14, 13]);
      const c = stats.snapshot().counters;
      for (const [scope, rq] of [['route.r', 'rq_'], ['cluster.svc', 'upstream_rq_']] as const) {
        const n = (s: string) => c[`${scope}.${rq}${s}`];
        assert.deepEqual([n('grpc_OK'), n('grpc_NOT_FOUND'), n('grpc_UNAVAILABLE'), n('grpc_INTERNAL')], [2, 1, 2, 1], scope);
        assert.deepEqual([n('2xx'), n('5xx'), n('success'), n('error')], [6, 0, 3, 3], `${scope}: HTTP classes stay HTTP; success by grpc-status`);
      }
      assert.equal(stats.snapshot().windows['route.r.window{backend=svc}']?.successRate, 0.5, 'the demo table\'s success column uses the same rule');
      assert.equal(cluster.allHosts()[0]!.failuresTotal, 3);
    } finally {
      client.close();
      cm.closeConnections();
      cluster.close();
      await new Promise<void>((r) => proxy.close(() => r()));
      server.forceShutdown();
    }
  });
});

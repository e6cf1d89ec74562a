/**
 * The sidecar admin server over real HTTP on an ephemeral port, with stub providers; and the
 * /config_dump of a real sidecar fed by a scripted ADS server.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { FakeClock, systemClock } from '../../shared/src/clock';
import { AdminServer } from '../../sidecar/src/admin/admin-server';
import type { Readiness } from '../../sidecar/src/admin/admin-server';
import { Stats } from '../../sidecar/src/stats/stats';
import { RouteStats } from '../../sidecar/src/stats/stat-bundles';
import type { Sidecar } from '../../sidecar/src/sidecar';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import { outboundListener, routeConfig, ScriptedAds, startFedSidecar, staticCluster } from '../support/scripted-ads';
import { h1Upstream } from '../support/upstreams';
import type { UpstreamServer } from '../support/upstreams';

interface Res { status: number; type: string; allow: string | null; text: string; body: unknown }

async function get(base: string, path: string, method = 'GET'): Promise<Res> {
  const r = await fetch(`${base}${path}`, { method });
  const text = await r.text();
  const type = r.headers.get('content-type') ?? '';
  return { status: r.status, type, allow: r.headers.get('allow'), text, body: type.startsWith('application/json') && text !== '' ? JSON.parse(text) : undefined };
}

function errorCode(r: Res): unknown {
  return (r.body as { error?: { code?: unknown } }).error?.code;
}

describe('AdminServer', () => {
  let readiness: Readiness = { ok: false, reason: 'waiting for CDS' };
  let clustersThrow = false;
  const stats = new Stats({ clock: new FakeClock(Date.UTC(2026, 0, 1)) });
  const configDump = { resources: [{ typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', version: '3', name: 'reviews-v1' }] };
  const clusters = { 'reviews-v1': { hosts: [{ address: '10.0.0.1:9080', health: 'HEALTHY', activeRequests: 2 }] } };
  const server = new AdminServer({
    ready: () => readiness,
    configDump: () => configDump,
    clusters: async () => {
      if (clustersThrow) throw new Error('cluster manager is gone');
      return clusters;
    },
    stats,
  });
  let base = '';

  before(async () => {
    const port = await server.listen('127.0.0.1', 0);
    assert.ok(port > 0);
    base = `http://127.0.0.1:${port}`;
    const route = new RouteStats(stats, 'reviews');
    route.record(200, 1500, route.backend('reviews-v1'));
    route.record(503, 2500, route.backend('reviews-v2'));
    stats.counter('cluster.reviews-v1.upstream_rq_total').inc(7);
  });

  after(async () => { await server.close(); });

  test('GET /healthz is 200 {ok: true}', async () => {
    const r = await get(base, '/healthz');
    assert.equal(r.status, 200);
    assert.match(r.type, /^application\/json/);
    assert.deepEqual(r.body, { ok: true });
  });

  test('GET /ready is 503 with the reason until the predicate holds, then 200', async () => {
    readiness = { ok: false, reason: 'waiting for CDS' };
    let r = await get(base, '/ready');
    assert.equal(r.status, 503);
    assert.deepEqual(r.body, { ready: false, reason: 'waiting for CDS' });
    readiness = { ok: true };
    r = await get(base, '/ready');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ready: true });
    readiness = { ok: false };
    r = await get(base, '/ready');
    assert.deepEqual([r.status, r.body], [503, { ready: false, reason: 'not ready' }]);
  });

  test('GET /config_dump and /clusters return what the providers return', async () => {
    let r = await get(base, '/config_dump');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, configDump);
    r = await get(base, '/clusters');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, clusters);
  });

  test('a provider that throws gives 500 with SKEIN_ERR_INTERNAL and its message', async () => {
    clustersThrow = true;
    try {
      const r = await get(base, '/clusters');
      assert.equal(r.status, 500);
      assert.equal(errorCode(r), 'SKEIN_ERR_INTERNAL');
      assert.match(r.text, /cluster manager is gone/);
    } finally {
      clustersThrow = false;
    }
  });

  test('GET /stats returns the snapshot, ?filter narrows it by substring', async () => {
    let r = await get(base, '/stats');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, stats.snapshot());
    const all = r.body as { counters: Record<string, number>; windows: Record<string, { successRate: number | null }> };
    assert.equal(all.counters['route.reviews.rq_total'], 2);
    assert.equal(all.counters['cluster.reviews-v1.upstream_rq_total'], 7);
    assert.equal(all.windows['route.reviews.window{backend=reviews-v2}']?.successRate, 0);

    r = await get(base, '/stats?filter=upstream_rq_total');
    assert.deepEqual(r.body, { counters: { 'cluster.reviews-v1.upstream_rq_total': 7 }, gauges: {}, histograms: {}, windows: {} });
  });

  test('GET /stats?format=text gives name: value lines; an unknown format is 422', async () => {
    let r = await get(base, '/stats?format=text&filter=rq_5xx');
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain/);
    assert.equal(r.text, 'route.reviews.rq_5xx: 1\n');
    r = await get(base, '/stats?format=xml');
    assert.equal(r.status, 422);
    assert.equal(errorCode(r), 'SKEIN_ERR_VALIDATION');
  });

  test('GET / lists the routes', async () => {
    const r = await get(base, '/');
    assert.deepEqual(r.body, { routes: ['/', '/healthz', '/ready', '/config_dump', '/clusters', '/stats', '/memory', '/identity'] });
  });

  test('/identity without a workload identity says so (and never shows a key)', async () => {
    const r = await get(base, '/identity');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { identity: null, reason: 'no workload identity (--xds-insecure)' });
  });

  test('an unknown path is 404 JSON; a wrong method is 405 with allow', async () => {
    let r = await get(base, '/nope');
    assert.equal(r.status, 404);
    assert.equal(errorCode(r), 'SKEIN_ERR_NOT_FOUND');
    r = await get(base, '/stats', 'POST');
    assert.equal(r.status, 405);
    assert.equal(r.allow, 'GET, HEAD');
    assert.equal(errorCode(r), 'SKEIN_ERR_METHOD_NOT_ALLOWED');
    r = await get(base, '/ready', 'DELETE');
    assert.equal(r.status, 405);
  });

  test('HEAD answers the status and headers without a body', async () => {
    const r = await get(base, '/healthz', 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
  });
});

describe('AdminServer lifecycle', () => {
  test('listen defaults to 127.0.0.1 on a free port; close is idempotent; a taken port rejects', async () => {
    const providers = { ready: () => ({ ok: true }), configDump: () => ({}), clusters: () => ({}), stats: new Stats() };
    const a = new AdminServer(providers);
    const port = await a.listen();
    const r = await get(`http://127.0.0.1:${port}`, '/healthz');
    assert.equal(r.status, 200);
    const b = new AdminServer(providers);
    await assert.rejects(b.listen('127.0.0.1', port), /cannot listen on 127\.0\.0\.1/);
    await a.close();
    await a.close();
    await b.close();
  });
});

describe('sidecar /config_dump (a sidecar fed by a scripted ADS server)', () => {
  let ads: ScriptedAds;
  let sc: Sidecar;

  before(async () => {
    ads = await ScriptedAds.start();
    // The listener lists the fault filter the route configures (else the route configuration is NACKed).
    ads.set(TYPE_URLS.LISTENER, [outboundListener('rc', [{ name: 'envoy.filters.http.fault', typed_config: { '@type': TYPE_URLS.FAULT } }])]);
    ads.set(TYPE_URLS.ROUTE, [routeConfig('rc', 'reviews', {
      weighted_clusters: { clusters: [{ name: 'reviews-v1', weight: { value: 90 } }, { name: 'reviews-v2', weight: { value: 10 } }] },
      retry_policy: { retry_on: '5xx,reset', num_retries: { value: 2 } },
    }, { typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': TYPE_URLS.FAULT, delay: { fixed_delay: { seconds: 1 }, percentage: { numerator: 0 } } } } })]);
    ads.set(TYPE_URLS.CLUSTER, ['reviews-v1', 'reviews-v2'].map((n) => staticCluster(n, [{ address: '127.0.0.1', port: 9 }])));
    sc = await startFedSidecar(ads);
  });
  after(async () => {
    await sc?.drain();
    ads?.close();
  });

  test('shows a RouteConfiguration as its resource: weighted clusters with names and weights, the retry policy, per-filter config', async () => {
    const r = await get(`http://${sc.addresses()['admin']}`, '/config_dump');
    assert.equal(r.status, 200);
    const rds = (r.body as { typeUrl: string; resources: Record<string, any> }[]).find((t) => t.typeUrl === TYPE_URLS.ROUTE);
    const route = rds?.resources['rc']?.virtual_hosts?.[0]?.routes?.[0]?.route;
    assert.ok(route !== undefined, `no route in the dump: ${JSON.stringify(rds?.resources)}`);
    assert.deepEqual(route.weighted_clusters.clusters.map((c: any) => [c.name, c.weight.value]), [['reviews-v1', 90], ['reviews-v2', 10]]);
    assert.deepEqual([route.retry_policy.retry_on, route.retry_policy.num_retries.value], ['5xx,reset', 2]);
    // Embedded Anys are unpacked, with '@type'.
    const fault = rds?.resources['rc'].virtual_hosts[0].routes[0].typed_per_filter_config['envoy.filters.http.fault'];
    assert.deepEqual([fault['@type'], fault.delay.fixed_delay.seconds], [TYPE_URLS.FAULT, '1']);
    // Clusters stay their decoded config, defaults filled in.
    const cds = (r.body as { typeUrl: string; resources: Record<string, any> }[]).find((t) => t.typeUrl === TYPE_URLS.CLUSTER);
    assert.deepEqual([cds?.resources['reviews-v1']?.type, cds?.resources['reviews-v1']?.lbPolicy], ['STATIC', 'round_robin']);
  });
});

/** One HTTP/1.1 request on its own connection (fetch cannot set Host); resolves with the status. */
function request(hostPort: string, path: string, headers: Record<string, string>): Promise<number> {
  const i = hostPort.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostPort.slice(0, i), port: Number(hostPort.slice(i + 1)), path, headers, agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)); });
    req.on('error', reject);
    req.end();
  });
}

describe('sidecar /metrics (a sidecar fed by a scripted ADS server, requests through a real upstream)', () => {
  let ads: ScriptedAds;
  let sc: Sidecar;
  let up: UpstreamServer;
  let admin = '';
  const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

  before(async () => {
    up = await h1Upstream((req, res) => { res.statusCode = req.url === '/fail' ? 503 : 200; res.end('ok'); });
    ads = await ScriptedAds.start();
    ads.set(TYPE_URLS.LISTENER, [outboundListener('rc')]);
    ads.set(TYPE_URLS.ROUTE, [routeConfig('rc', 'reviews', {
      weighted_clusters: { clusters: [{ name: 'reviews/v1', weight: { value: 100 } }, { name: 'reviews/v2', weight: { value: 0 } }] },
      retry_policy: { retry_on: '5xx', num_retries: { value: 2 } },
    })]);
    ads.set(TYPE_URLS.CLUSTER, ['reviews/v1', 'reviews/v2'].map((n) => staticCluster(n, [{ address: '127.0.0.1', port: up.port }])));
    // The system clock: retry backoffs run on it.
    sc = await startFedSidecar(ads, { metricsBuckets: [1, 10, 100, 1000, 10_000], clock: systemClock });
    admin = `http://${sc.addresses()['admin']}`;
    const out = sc.addresses()['outbound']!;
    for (let i = 0; i < 3; i++) await request(out, '/ok', { host: 'reviews', traceparent: `00-${TRACE}-00f067aa0ba902b7-01` });
    await request(out, '/fail', { host: 'reviews' });
    await request(out, '/x', { host: 'nowhere' });
  });
  after(async () => {
    await sc?.drain();
    ads?.close();
    await up?.close();
  });

  test('Prometheus text 0.0.4: requests by route, service, version and code; the histogram with its buckets; unrouted as route=""', async () => {
    const r = await fetch(`${admin}/metrics`);
    assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const text = await r.text();
    const ok = 'direction="outbound",route="reviews-all",destination_service="reviews",destination_version="v1"';
    assert.match(text, /# TYPE skein_requests_total counter/);
    assert.ok(text.includes(`skein_requests_total{${ok},response_code="200",grpc_status=""} 3\n`), text);
    assert.ok(text.includes(`skein_requests_total{${ok},response_code="503",grpc_status=""} 1\n`), text);
    assert.ok(text.includes('skein_requests_total{direction="outbound",route="",destination_service="",destination_version="",response_code="404",grpc_status=""} 1\n'), text);
    assert.match(text, /# TYPE skein_request_duration_milliseconds histogram/);
    const buckets = [...text.matchAll(new RegExp(`skein_request_duration_milliseconds_bucket\\{${ok},response_code="200",grpc_status="",le="([^"]+)"\\} (\\d+)`, 'g'))].map((m) => m[1]);
    assert.deepEqual(buckets, ['1', '10', '100', '1000', '10000', '+Inf']);
    assert.ok(text.includes(`skein_request_duration_milliseconds_count{${ok},response_code="200",grpc_status=""} 3\n`));
    assert.ok(!text.includes('# {trace_id'), 'no exemplar in the Prometheus text format');
    assert.ok(!text.includes('/fail') && !text.includes('nowhere'), 'no request-controlled value in a label');
    assert.match(text, /skein_local_replies_total\{route="",reason="no_route"\} 1\n/);
    assert.match(text, /skein_retries_total\{route="reviews-all"\} 2\n/, 'the 503 was retried twice (num_retries 2), and counted once as a request');
    assert.match(text, /skein_xds_config_version_info\{type_url="type.googleapis.com\/envoy.config.cluster.v3.Cluster",version="[^"]+"\} 1\n/);
    assert.match(text, /skein_xds_last_update_timestamp_seconds\{type_url="type.googleapis.com\/envoy.config.route.v3.RouteConfiguration"\} \d+/);
    assert.match(text, /skein_circuit_breaker_overflows_total\{cluster="reviews\/v1",resource="requests"\} 0\n/);
  });

  test('OpenMetrics when asked: counters with _total samples, a bucket exemplar with the trace id of a traced request, # EOF', async () => {
    const r = await fetch(`${admin}/metrics`, { headers: { accept: 'application/openmetrics-text; version=1.0.0,text/plain;q=0.5' } });
    assert.equal(r.headers.get('content-type'), 'application/openmetrics-text; version=1.0.0; charset=utf-8');
    const text = await r.text();
    assert.match(text, /# TYPE skein_requests counter\n/);
    assert.match(text, /skein_requests_total\{direction="outbound",route="reviews-all",destination_service="reviews",destination_version="v1",response_code="200",grpc_status=""\} 3\n/);
    assert.match(text, new RegExp(`skein_request_duration_milliseconds_bucket\\{[^}]*response_code="200"[^}]*\\} 3 # \\{trace_id="${TRACE}"\\} [0-9.e-]+ \\d+(\\.\\d+)?\n`));
    assert.ok(!/response_code="503"[^\n]*# \{trace_id/.test(text), 'no exemplar for the request without a trace header');
    assert.ok(text.endsWith('# EOF\n'));
  });
});

/**
 * The router filter in process: a real ConnectionManager (sniffing listener on loopback), real
 * HTTP/2 and HTTP/1.1 upstream servers, and a FakeClock for every timer the router owns
 * (deadlines, per-try timeouts, backoff). Each case asserts exact counts at the upstream.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { connect as netConnect } from 'node:net';
import { FakeClock } from '../../../shared/src/clock';
import { createLogger } from '../../../shared/src/log';
import { encodeResource } from '../../../shared/src/xds/pack';
import { decodeAny, TYPE_URLS } from '../../../shared/src/xds/protos';
import { ConnectionManager } from '../../../sidecar/src/http/connection-manager';
import { sniffingServer } from '../../../sidecar/src/listener/sniffing-server';
import { RouteTable } from '../../../sidecar/src/route/route-table';
import { Cluster } from '../../../sidecar/src/upstream/cluster';
import { Stats } from '../../../sidecar/src/stats/stats';
import { ClusterStats } from '../../../sidecar/src/stats/stat-bundles';
import type { ClusterConfig } from '../../../sidecar/src/xds/cluster-type';
import { parseGrpcTimeout, formatGrpcTimeout } from '../../../sidecar/src/http/grpc-timeout';
import { DEFAULT_OUTLIER_CONFIG } from '../../../sidecar/src/resilience/outlier-config';
import type { OutlierConfig } from '../../../sidecar/src/resilience/outlier-config';
import { listenerType } from '../../../sidecar/src/pipeline';
import { HTTP_FILTERS } from '../../../sidecar/src/filters/registry';
import { everyHttpFilter, httpFilterChain } from '../../../sidecar/src/pipeline';
import type { HttpFilter } from '../../../sidecar/src/http/http-filter';
import { LOCAL_REPLIES } from '../../../sidecar/src/http/local-reply';
import { testClusterH2, testListenerH2 } from '../../support/h2-engine';
import { unlistedHttpFilters } from '../../../sidecar/src/xds/http-filter-check';
import { DEFAULT_LIMITS, TypeSubscription } from '../../../sidecar/src/xds/type-subscription';
import { routeType } from '../../../sidecar/src/pipeline';
import type { ListenerConfig } from '../../../sidecar/src/xds/listener-type';
import { isGrpcContentType } from '../../../sidecar/src/route/grpc-content-type';
import { until } from '../../support/until';
import * as upstreams from '../../support/upstreams';
import type { UpstreamServer } from '../../support/upstreams';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = Record<string, any>;
const ms = (n: number) => ({ seconds: Math.floor(n / 1000), nanos: (n % 1000) * 1_000_000 });
const log = createLogger('router-test', 'silent');

// --- upstreams ------------------------------------------------------------------------------

interface Seen { headers: http2.IncomingHttpHeaders | http.IncomingHttpHeaders; body: Buffer }
interface Upstream extends UpstreamServer { seen: Seen[] }
type H2Behaviour = (s: http2.ServerHttp2Stream, n: number, seen: Seen) => void;

/** An h2c server; `behave` runs once each request's body has arrived (n counts from 0). */
async function h2Upstream(behave: H2Behaviour, settings: http2.Settings = {}): Promise<Upstream> {
  const up: Upstream = Object.assign(await upstreams.h2Upstream((s, headers, { body }) => {
    const seen = { headers, body };
    up.seen.push(seen);
    behave(s, up.seen.length - 1, seen);
  }, { settings, readBody: true }), { seen: [] as Seen[] });
  return up;
}

/** An HTTP/1.1 server with the same shape. */
async function h1Upstream(behave: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void): Promise<Upstream> {
  const up: Upstream = Object.assign(await upstreams.h1Upstream((req, res, { body }) => {
    up.seen.push({ headers: req.headers, body });
    behave(req, res, up.seen.length - 1);
  }, { readBody: true }), { seen: [] as Seen[] });
  return up;
}

const grpcOk = (s: http2.ServerHttp2Stream) => {
  s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  s.once('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
  s.end(Buffer.from([0, 0, 0, 0, 1, 0x41]));
};
const grpcFail = (code: number) => (s: http2.ServerHttp2Stream) => s.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code) }, { endStream: true });
const hold: H2Behaviour = () => undefined;
const refuse: H2Behaviour = (s) => s.close(http2.constants.NGHTTP2_REFUSED_STREAM);
const reset: H2Behaviour = (s) => s.close(http2.constants.NGHTTP2_INTERNAL_ERROR);

// --- the proxy ------------------------------------------------------------------------------

interface Proxy { port: number; clock: FakeClock; cluster: Cluster; stats: Stats; cm: ConnectionManager; routes: RouteTable; close(): Promise<void> }

async function startProxy(o: { action?: Doc; route?: Doc; cluster?: Partial<ClusterConfig>; ports: number[]; random?: () => number; retryBufferBytes?: number; setAttemptCount?: boolean }): Promise<Proxy> {
  const clock = new FakeClock();
  const stats = new Stats({ clock });
  const rc = { name: 'test', virtual_hosts: [{ name: 'svc', domains: ['svc'], routes: [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'svc', timeout: ms(0), ...o.action }, ...o.route }] }] };
  const routes = RouteTable.build(decodeAny(encodeResource(TYPE_URLS.ROUTE, rc)), HTTP_FILTERS);
  const config: ClusterConfig = { name: 'svc', type: 'STATIC', edsServiceName: 'svc', lbPolicy: 'round_robin', connectTimeoutMs: 5000, protocol: 'h2', ...o.cluster };
  const cluster = new Cluster(config, clock, { stats, log, ...testClusterH2() });
  cluster.stats = new ClusterStats(stats, 'svc');
  cluster.updateEndpoints(o.ports.map((port) => ({ address: '127.0.0.1', port, weight: 1, zone: '', health: 'HEALTHY' as const })));
  const cm = new ConnectionManager({ name: 'outbound', stats, policy: { trustForwardedFor: true }, clock, log, random: o.random ?? (() => 0), ...testListenerH2(), ...(o.retryBufferBytes !== undefined ? { retryBufferBytes: o.retryBufferBytes } : {}), ...(o.setAttemptCount !== undefined ? { setAttemptCount: o.setAttemptCount } : {}) });
  cm.snapshot = { routes, clusters: new Map([['svc', cluster]]), filters: everyHttpFilter() };
  const server = sniffingServer(cm.h1, cm.h2, { acceptH2: cm.acceptH2 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port, clock, cluster, stats, cm, routes,
    close: async () => { cm.closeConnections(); cluster.close(); await new Promise<void>((r) => server.close(() => r())); },
  };
}

interface Reply { status: number; headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer; rst: number }

/** One request over its own h2c connection; resolves when the stream closes. */
function call(port: number, o: { path?: string; method?: string; headers?: http2.OutgoingHttpHeaders; body?: Buffer; grpc?: boolean } = {}): Promise<Reply> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    const h: http2.OutgoingHttpHeaders = { ':method': o.method ?? 'POST', ':path': o.path ?? '/skein.Greeter/SayHello', ':authority': 'svc', ...(o.grpc === false ? {} : { 'content-type': 'application/grpc', te: 'trailers' }), ...o.headers };
    const s = session.request(h, { endStream: o.body === undefined });
    const r: Reply = { status: 0, headers: {}, trailers: {}, body: Buffer.alloc(0), rst: 0 };
    const chunks: Buffer[] = [];
    s.on('error', () => undefined);
    s.on('response', (hd) => { r.headers = hd; r.status = Number(hd[':status']); });
    s.on('trailers', (t) => { r.trailers = t; });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('close', () => { r.body = Buffer.concat(chunks); r.rst = s.rstCode ?? 0; session.close(); resolve(r); });
    if (o.body !== undefined) s.end(o.body);
  });
}


const grpcStatus = (r: Reply) => r.headers['grpc-status'] ?? r.trailers['grpc-status'];
const counter = (p: Proxy, name: string) => p.stats.counter(name).value;

const cleanups: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });
async function track<T extends { close(): Promise<void> }>(x: Promise<T>): Promise<T> { const v = await x; cleanups.push(() => v.close()); return v; }

// --- cases ----------------------------------------------------------------------------------

describe('grpc-timeout', () => {
  test('parse and format', () => {
    assert.equal(parseGrpcTimeout('200m'), 200);
    assert.equal(parseGrpcTimeout('1S'), 1000);
    assert.equal(parseGrpcTimeout('2M'), 120_000);
    assert.equal(parseGrpcTimeout('1H'), 3_600_000);
    assert.equal(parseGrpcTimeout('1500u'), 2);
    assert.equal(parseGrpcTimeout('1n'), 1);
    for (const bad of ['', 'm', '10', '10x', '-1m', '123456789m', '1.5S', undefined]) assert.equal(parseGrpcTimeout(bad as string), 0, String(bad));
    assert.equal(formatGrpcTimeout(250), '250m');
    assert.equal(formatGrpcTimeout(100_000_000), '100000S');
  });
});

describe('deadlines and timeouts (FakeClock)', () => {
  test('the caller\'s grpc-timeout is honoured: DEADLINE_EXCEEDED exactly when it passes, the upstream sees the time left', async () => {
    const up = await track(h2Upstream(hold));
    const p = await track(startProxy({ ports: [up.port] }));
    let done = false;
    const reply = call(p.port, { headers: { 'grpc-timeout': '300m' }, body: Buffer.alloc(5) }).then((r) => { done = true; return r; });
    await until(() => up.seen.length === 1, 'the request upstream');
    assert.equal(up.seen[0]!.headers['grpc-timeout'], '300m');
    assert.equal(up.seen[0]!.headers['x-skein-attempt-count'], '1');
    p.clock.advance(299);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(done, false, 'no reply before the deadline');
    p.clock.advance(1);
    const r = await reply;
    assert.equal(grpcStatus(r), '4');
    assert.equal(r.headers['x-skein-reason'], 'deadline_exceeded');
    assert.equal(r.headers['x-skein-attempt-count'], '1');
    assert.equal(up.seen.length, 1);
  });

  test('the route timeout bounds the request when it is shorter than the caller\'s deadline', async () => {
    const up = await track(h2Upstream(hold));
    const p = await track(startProxy({ ports: [up.port], action: { timeout: ms(200) } }));
    const reply = call(p.port, { headers: { 'grpc-timeout': '5S' }, body: Buffer.alloc(5) });
    await until(() => up.seen.length === 1, 'the request upstream');
    assert.equal(up.seen[0]!.headers['grpc-timeout'], '200m');
    p.clock.advance(200);
    const r = await reply;
    assert.equal(grpcStatus(r), '4');
    assert.equal(r.headers['x-skein-reason'], 'upstream_timeout');
    assert.equal(counter(p, 'route.r.rq_timeout'), 1);
  });

  test('per-try timeout retries on the other host; the attempt count says 2', async () => {
    const slow = await track(h2Upstream(hold));
    const fast = await track(h2Upstream(grpcOk));
    const p = await track(startProxy({ ports: [slow.port, fast.port], action: { retry_policy: { retry_on: 'reset', num_retries: { value: 2 }, per_try_timeout: ms(100) } } }));
    const reply = call(p.port, { body: Buffer.from([0, 0, 0, 0, 1, 0x42]) });
    await until(() => slow.seen.length + fast.seen.length === 1, 'the first attempt');
    assert.equal(slow.seen.length, 1, 'round robin starts at the first host');
    p.clock.advance(100); // per-try timeout; backoff is random() x 25ms = 0
    p.clock.advance(0);
    const r = await reply;
    assert.equal(grpcStatus(r), '0');
    assert.equal(r.headers['x-skein-attempt-count'], '2');
    assert.equal(fast.seen.length, 1);
    assert.deepEqual(fast.seen[0]!.body, Buffer.from([0, 0, 0, 0, 1, 0x42]), 'the retry replays the body');
    assert.equal(fast.seen[0]!.headers['x-skein-attempt-count'], '2');
    assert.equal(counter(p, 'cluster.svc.upstream_rq_per_try_timeout'), 1);
    assert.equal(counter(p, 'cluster.svc.upstream_rq_retry'), 1);
    assert.equal(counter(p, 'cluster.svc.upstream_rq_retry_success'), 1);
  });
});

describe('retries', () => {
  test('gRPC UNAVAILABLE is retried per policy with backoff from the clock, avoiding the tried host', async () => {
    const bad = await track(h2Upstream(grpcFail(14)));
    const good = await track(h2Upstream(grpcOk));
    const p = await track(startProxy({ ports: [bad.port, good.port], random: () => 0.999, action: { retry_policy: { retry_on: 'unavailable', num_retries: { value: 3 } } } }));
    for (let i = 0; i < 6; i++) {
      const before = bad.seen.length;
      const reply = call(p.port, { body: Buffer.alloc(5) });
      // Fire any backoff timer (random 0.999 x 25ms).
      for (let k = 0; k < 20 && !(await settled(reply)); k++) { p.clock.advance(25); await new Promise((r) => setTimeout(r, 5)); }
      const r = await reply;
      assert.equal(grpcStatus(r), '0', `call ${i}`);
      const attempts = Number(r.headers['x-skein-attempt-count']);
      assert.equal(attempts, 1 + (bad.seen.length - before), `call ${i}: a retry never goes back to the host that failed`);
      assert.ok(attempts <= 2);
    }
    assert.equal(good.seen.length, 6);
    assert.equal(counter(p, 'cluster.svc.upstream_rq_retry'), bad.seen.length);
    assert.equal(counter(p, 'route.r.rq_attempts'), 6 + bad.seen.length);
  });

  test('no hidden retries: a POST reset by the upstream without a policy is sent exactly once', async () => {
    const up = await track(h2Upstream(reset));
    const p = await track(startProxy({ ports: [up.port] }));
    for (let i = 0; i < 5; i++) {
      const r = await call(p.port, { grpc: false, body: Buffer.from('order=1') });
      assert.equal(r.status, 503);
      assert.equal(r.headers['x-skein-reason'], 'upstream_reset');
      assert.equal(r.headers['x-skein-attempt-count'], '1');
    }
    assert.equal(up.seen.length, 5);
    assert.equal(counter(p, 'cluster.svc.upstream_rq_retry'), 0);
  });

  test('no hidden retries over HTTP/1.1 either: a POST answered 503 is not retried', async () => {
    const up = await track(h1Upstream((_q, res) => { res.writeHead(503); res.end('busy'); }));
    const p = await track(startProxy({ ports: [up.port], cluster: { protocol: 'h1' } }));
    const r = await call(p.port, { grpc: false, body: Buffer.from('x') });
    assert.equal(r.status, 503);
    assert.equal(r.body.toString(), 'busy', 'the upstream\'s own 503 is passed on');
    assert.equal(up.seen.length, 1);
  });

  test('a refused stream is retried without a policy (nothing was processed)', async () => {
    const refusing = await track(h2Upstream(refuse));
    const good = await track(h2Upstream(grpcOk));
    const p = await track(startProxy({ ports: [refusing.port, good.port] }));
    for (let i = 0; i < 4; i++) {
      const reply = call(p.port, { body: Buffer.alloc(5) });
      for (let k = 0; k < 50 && !(await settled(reply)); k++) { p.clock.advance(25); await new Promise((r) => setTimeout(r, 5)); }
      const r = await reply;
      assert.equal(grpcStatus(r), '0');
    }
    assert.equal(good.seen.length, 4);
    assert.equal(counter(p, 'cluster.svc.upstream_rq_retry'), refusing.seen.length);
  });

  test('a connect failure is retried on another host without a policy', async () => {
    const good = await track(h2Upstream(grpcOk));
    const gone = await h2Upstream(grpcOk);
    const deadPort = gone.port;
    await gone.close();
    const p = await track(startProxy({ ports: [deadPort, good.port] }));
    for (let i = 0; i < 4; i++) {
      const reply = call(p.port, { body: Buffer.alloc(5) });
      for (let k = 0; k < 50 && !(await settled(reply)); k++) { p.clock.advance(25); await new Promise((r) => setTimeout(r, 5)); }
      assert.equal(grpcStatus(await reply), '0');
    }
    assert.equal(good.seen.length, 4);
  });

  test('a body over the retry buffer is never retried; one within it is replayed whole', async () => {
    let n = 0;
    const flaky = await track(h2Upstream((s) => { if (n++ % 2 === 0) reset(s, 0, { headers: {}, body: Buffer.alloc(0) }); else grpcOk(s); }));
    const p = await track(startProxy({ ports: [flaky.port], retryBufferBytes: 1000, action: { retry_policy: { retry_on: 'reset', num_retries: { value: 2 } } } }));
    const small = Buffer.alloc(900, 7);
    const replySmall = call(p.port, { body: small });
    for (let k = 0; k < 50 && !(await settled(replySmall)); k++) { p.clock.advance(25); await new Promise((r) => setTimeout(r, 5)); }
    const r1 = await replySmall;
    assert.equal(grpcStatus(r1), '0');
    assert.equal(r1.headers['x-skein-attempt-count'], '2');
    assert.deepEqual(flaky.seen[1]!.body, small);
    const big = Buffer.alloc(5000, 9);
    const r2 = await call(p.port, { body: big });
    assert.equal(r2.headers['x-skein-reason'], 'upstream_reset');
    assert.equal(r2.headers['x-skein-attempt-count'], '1');
    assert.equal(flaky.seen.length, 3, 'the large body went upstream once');
    assert.equal(flaky.seen[2]!.body.length, 5000);
  });

  test('the retry budget bounds retries while every endpoint fails; waiting retries hold their slots', async () => {
    const up = await track(h2Upstream(grpcFail(14)));
    const p = await track(startProxy({ ports: [up.port], random: () => 0.5, action: { retry_policy: { retry_on: 'unavailable', num_retries: { value: 5 } } } }));
    const replies = Array.from({ length: 8 }, () => call(p.port, { body: Buffer.alloc(5) }));
    await until(() => up.seen.length === 8, 'all first attempts');
    // min_retry_concurrency 3: three retries are waiting in backoff (12.5ms), the other five got no slot.
    await until(() => counter(p, 'cluster.svc.upstream_rq_retry_overflow') === 5, 'five refusals');
    assert.equal(counter(p, 'cluster.svc.upstream_rq_retry'), 3);
    assert.equal(p.stats.gauge('cluster.svc.circuit_breakers.remaining_retries').value, 0);
    for (let k = 0; k < 200 && !(await allSettled(replies)); k++) { p.clock.advance(25); await new Promise((r) => setTimeout(r, 2)); }
    const rs = await Promise.all(replies);
    for (const r of rs) assert.equal(grpcStatus(r), '14');
    const retries = counter(p, 'cluster.svc.upstream_rq_retry');
    assert.equal(up.seen.length, 8 + retries, 'attempts = calls + retries');
    // Each retry held one of at most 3 slots; with 5 retries per call allowed, 3 calls x 5 is the ceiling.
    assert.ok(retries <= 15, `retries ${retries}`);
    assert.equal(rs.filter((r) => r.headers['x-skein-reason'] === 'retry_budget_exhausted').length, 0, 'an upstream\'s own reply is passed on, not replaced');
  });
});

describe('circuit breakers trip at exactly their threshold', () => {
  test('max_requests', async () => {
    const held: http2.ServerHttp2Stream[] = [];
    const up = await track(h2Upstream((s) => held.push(s)));
    const p = await track(startProxy({ ports: [up.port], cluster: { circuitBreakers: { maxRequests: 3 } } }));
    const replies = [0, 1, 2].map(() => call(p.port, { body: Buffer.alloc(5) }));
    await until(() => up.seen.length === 3, 'three requests held');
    assert.equal(p.stats.gauge('cluster.svc.circuit_breakers.remaining_rq').value, 0);
    const r = await call(p.port, { body: Buffer.alloc(5) });
    assert.equal(grpcStatus(r), '14');
    assert.equal(r.headers['x-skein-reason'], 'circuit_breaker_max_requests');
    assert.equal(up.seen.length, 3);
    assert.equal(counter(p, 'cluster.svc.upstream_rq_overflow'), 1);
    for (const s of held) grpcOk(s);
    for (const x of await Promise.all(replies)) assert.equal(grpcStatus(x), '0');
    assert.equal(p.stats.gauge('cluster.svc.circuit_breakers.remaining_rq').value, 3);
  });

  test('max_pending_requests (one connection of one stream)', async () => {
    const held: http2.ServerHttp2Stream[] = [];
    const up = await track(h2Upstream((s) => held.push(s), { maxConcurrentStreams: 1 }));
    const p = await track(startProxy({ ports: [up.port], cluster: { circuitBreakers: { maxConnections: 1, maxPendingRequests: 2 } } }));
    const first = call(p.port, { body: Buffer.alloc(5) });
    await until(() => up.seen.length === 1, 'the first request active');
    const queued = [call(p.port, { body: Buffer.alloc(5) }), call(p.port, { body: Buffer.alloc(5) })];
    await until(() => p.stats.gauge('cluster.svc.circuit_breakers.remaining_pending').value === 0, 'two pending');
    const r = await call(p.port, { body: Buffer.alloc(5) });
    assert.equal(r.headers['x-skein-reason'], 'circuit_breaker_max_pending_requests');
    assert.equal(counter(p, 'cluster.svc.upstream_rq_pending_overflow'), 1);
    let released = 0;
    while (released < 3) { await until(() => held.length > released, 'the next request'); grpcOk(held[released++]!); }
    for (const x of await Promise.all([first, ...queued])) assert.equal(grpcStatus(x), '0');
    assert.equal(up.seen.length, 3);
    assert.equal(up.accepted, 1);
  });

  test('max_pending_requests over HTTP/1.1 (requests waiting in undici for the one connection)', async () => {
    const held: http.ServerResponse[] = [];
    const up = await track(h1Upstream((_req, res) => held.push(res)));
    const p = await track(startProxy({ ports: [up.port], cluster: { protocol: 'h1', circuitBreakers: { maxConnections: 1, maxPendingRequests: 2 } } }));
    const pendingLeft = () => p.stats.gauge('cluster.svc.circuit_breakers.remaining_pending').value;
    const post = () => call(p.port, { path: '/orders', grpc: false, body: Buffer.from('{}') });
    const first = post();
    await until(() => up.seen.length === 1, 'the first request on the connection');
    assert.equal(pendingLeft(), 2, 'a request on a connection is no longer pending');
    const queued = [post(), post()];
    await until(() => pendingLeft() === 0, 'two pending');
    const r = await post();
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-skein-reason'], 'circuit_breaker_max_pending_requests');
    assert.equal(counter(p, 'cluster.svc.upstream_rq_pending_overflow'), 1);
    let released = 0;
    while (released < 3) { await until(() => held.length > released, 'the next request'); held[released++]!.end('ok'); }
    for (const x of await Promise.all([first, ...queued])) assert.equal(x.status, 200);
    assert.equal(up.seen.length, 3, 'the refused request never reached the upstream');
    assert.equal(up.accepted, 1);
    assert.equal(pendingLeft(), 2);
  });

  test('max_connections', async () => {
    const a = await track(h2Upstream(grpcOk));
    const b = await track(h2Upstream(grpcOk));
    const p = await track(startProxy({ ports: [a.port, b.port], cluster: { circuitBreakers: { maxConnections: 1 } } }));
    const rs = [];
    for (let i = 0; i < 6; i++) rs.push(await call(p.port, { body: Buffer.alloc(5) }));
    const refused = rs.filter((r) => r.headers['x-skein-reason'] === 'circuit_breaker_max_connections').length;
    assert.equal(a.accepted + b.accepted, 1, 'one connection in the whole cluster');
    assert.equal(refused, 3, 'every request round robin sent to the other host failed fast');
    assert.equal(a.seen.length + b.seen.length, 3);
    assert.equal(counter(p, 'cluster.svc.upstream_cx_overflow'), 3);
  });
});

async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => { done = true; });
  await new Promise((r) => setImmediate(r));
  return done;
}
async function allSettled(ps: Promise<unknown>[]): Promise<boolean> {
  for (const p of ps) if (!(await settled(p))) return false;
  return true;
}

describe('outlier detection and panic, through the router (FakeClock)', () => {
  const od = (over: Partial<OutlierConfig>): OutlierConfig => ({ ...DEFAULT_OUTLIER_CONFIG, enforcingSuccessRate: 0, consecutive5xx: 2, baseEjectionTimeMs: 1000, maxEjectionPercent: 100, ...over });

  test('a failing host is ejected after exactly consecutive5xx failures and returns after the ejection time', async () => {
    const bad = await track(h2Upstream(grpcFail(14)));
    const good = await track(h2Upstream(grpcOk));
    const p = await track(startProxy({ ports: [bad.port, good.port], cluster: { outlierDetection: od({}) } }));
    for (let i = 0; i < 10; i++) await call(p.port, { body: Buffer.alloc(5) });
    assert.equal(bad.seen.length, 2, 'ejected at the second consecutive UNAVAILABLE');
    assert.equal(good.seen.length, 8);
    assert.equal(counter(p, 'cluster.svc.outlier_detection.ejections_enforced_consecutive_5xx'), 1);
    p.clock.advance(999);
    for (let i = 0; i < 4; i++) await call(p.port, { body: Buffer.alloc(5) });
    assert.equal(bad.seen.length, 2, 'still ejected 1ms before the end');
    p.clock.advance(1);
    for (let i = 0; i < 4; i++) await call(p.port, { body: Buffer.alloc(5) });
    assert.ok(bad.seen.length > 2, 'back in rotation');
  });

  test('a passing active health check returns an ejected host only when successfulActiveHealthCheckUnejectHost is on', async () => {
    // `bad` fails every call but its /healthz passes: the ejection is the only thing keeping
    // calls away from it, and the health check decides whether that lasts.
    const healthzOr = (h: H2Behaviour): H2Behaviour => (s, n, seen) => {
      if (seen.headers[':path'] === '/healthz') s.respond({ ':status': 200 }, { endStream: true });
      else h(s, n, seen);
    };
    const calls = (u: Upstream) => u.seen.filter((s) => s.headers[':path'] !== '/healthz').length;
    const healthChecks = { timeoutMs: 500, intervalMs: 5000, unhealthyThreshold: 2, healthyThreshold: 2, check: { kind: 'http' as const, path: '/healthz', host: undefined, expectedStatuses: [[200, 201]] as [number, number][], codec: 'http1' as const } };
    for (const uneject of [true, false]) {
      const bad = await track(h2Upstream(healthzOr(grpcFail(14))));
      const good = await track(h2Upstream(healthzOr(grpcOk)));
      const p = await track(startProxy({ ports: [bad.port, good.port], cluster: { outlierDetection: od({ baseEjectionTimeMs: 60_000, successfulActiveHealthCheckUnejectHost: uneject }), healthChecks } }));
      const checks = () => counter(p, 'cluster.svc.health_check.success');
      await until(() => checks() === 2, 'the first check of both hosts');
      for (let i = 0; i < 6; i++) await call(p.port, { body: Buffer.alloc(5) });
      assert.equal(calls(bad), 2, 'ejected at the second consecutive UNAVAILABLE');
      assert.equal(p.stats.gauge('cluster.svc.outlier_detection.ejections_active').value, 1);
      p.clock.advance(5000);
      await until(() => checks() === 4, 'the second check of both hosts');
      assert.equal(p.stats.gauge('cluster.svc.outlier_detection.ejections_active').value, uneject ? 0 : 1, `uneject ${uneject}`);
      for (let i = 0; i < 4; i++) await call(p.port, { body: Buffer.alloc(5) });
      assert.equal(calls(bad), uneject ? 4 : 2, `uneject ${uneject}: calls reaching the failing host after its health check passed`);
    }
  });

  test('when every host is ejected the panic threshold balances over all of them; 0 disables it', async () => {
    for (const threshold of [50, 0]) {
      const a = await track(h2Upstream(grpcFail(14)));
      const b = await track(h2Upstream(grpcFail(14)));
      const p = await track(startProxy({ ports: [a.port, b.port], cluster: { outlierDetection: od({}), panicThresholdPercent: threshold } }));
      const rs = [];
      for (let i = 0; i < 8; i++) rs.push(await call(p.port, { body: Buffer.alloc(5) }));
      assert.equal(a.seen.length + b.seen.length >= 4, true);
      assert.equal(p.stats.gauge('cluster.svc.outlier_detection.ejections_active').value, 2);
      if (threshold === 50) {
        assert.equal(p.cluster.panic, true);
        assert.equal(a.seen.length + b.seen.length, 8, 'every call still reached an upstream');
      } else {
        assert.equal(p.cluster.panic, false);
        assert.equal(rs.filter((r) => r.headers['x-skein-reason'] === 'no_healthy_upstream').length, 8 - (a.seen.length + b.seen.length));
        assert.equal(a.seen.length + b.seen.length, 4);
      }
    }
  });
});

describe('fault injection and local rate limit, through the router (FakeClock)', () => {
  const all = { numerator: 1_000_000, denominator: 'MILLION' };
  const filters = (cfg: Doc): Doc => ({ typed_per_filter_config: cfg });
  const fault = (f: Doc): Doc => ({ 'envoy.filters.http.fault': { '@type': TYPE_URLS.FAULT, ...f } });

  async function proxyWith(perFilter: Doc, ports: number[], timeoutMs = 0): Promise<Proxy> {
    const clock = new FakeClock();
    const stats = new Stats({ clock });
    const rc = { name: 'test', virtual_hosts: [{ name: 'svc', domains: ['svc'], routes: [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'svc', timeout: ms(timeoutMs) }, ...filters(perFilter) }] }] };
    const routes = RouteTable.build(decodeAny(encodeResource(TYPE_URLS.ROUTE, rc)), HTTP_FILTERS, clock.now());
    const cluster = new Cluster({ name: 'svc', type: 'STATIC', edsServiceName: 'svc', lbPolicy: 'round_robin', connectTimeoutMs: 5000, protocol: 'h2' }, clock, { stats, log, ...testClusterH2() });
    cluster.updateEndpoints(ports.map((port) => ({ address: '127.0.0.1', port, weight: 1, zone: '', health: 'HEALTHY' as const })));
    const cm = new ConnectionManager({ name: 'outbound', stats, policy: { trustForwardedFor: true }, clock, log, random: () => 0.5, ...testListenerH2() });
    cm.snapshot = { routes, clusters: new Map([['svc', cluster]]), filters: everyHttpFilter() };
    const server = sniffingServer(cm.h1, cm.h2, { acceptH2: cm.acceptH2 });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { port: (server.address() as net.AddressInfo).port, clock, cluster, stats, cm, routes, close: async () => { cm.closeConnections(); cluster.close(); await new Promise<void>((r) => server.close(() => r())); } };
  }

  test('an abort answers locally with the configured gRPC status and never reaches the upstream', async () => {
    const up = await track(h2Upstream(grpcOk));
    const p = await track(proxyWith(fault({ abort: { grpc_status: 14, percentage: all } }), [up.port]));
    for (let i = 0; i < 5; i++) {
      const r = await call(p.port, { body: Buffer.alloc(5) });
      assert.equal(grpcStatus(r), '14');
      assert.equal(r.headers['x-skein-reason'], 'fault_abort');
    }
    const h = await call(p.port, { grpc: false, body: Buffer.alloc(1) });
    assert.equal(h.status, 200, 'a gRPC-status abort on plain HTTP answers 200, as Envoy');
    assert.equal(up.seen.length, 0);
    assert.equal(counter(p, 'route.r.local_reply.fault_abort'), 6);
  });

  test('a delay holds the request for exactly fixed_delay on the clock', async () => {
    const up = await track(h2Upstream(grpcOk));
    const p = await track(proxyWith(fault({ delay: { fixed_delay: ms(100), percentage: all } }), [up.port]));
    const reply = call(p.port, { body: Buffer.from([0, 0, 0, 0, 1, 7]) });
    await new Promise((r) => setTimeout(r, 100));
    p.clock.advance(99);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(up.seen.length, 0, 'not forwarded before the delay ends');
    p.clock.advance(1);
    const r = await reply;
    assert.equal(grpcStatus(r), '0');
    assert.deepEqual(up.seen[0]!.body, Buffer.from([0, 0, 0, 0, 1, 7]), 'the body waited too');
  });

  test('the route timeout counts from the request\'s arrival: a fault delay spends it', async () => {
    const up = await track(h2Upstream(hold));
    const p = await track(proxyWith(fault({ delay: { fixed_delay: ms(100), percentage: all } }), [up.port], 150));
    const reply = call(p.port, { body: Buffer.alloc(5) });
    await until(() => p.cm.activeStreams === 1, 'the request to be held');
    p.clock.advance(100); // the delay ends; 50ms of the route timeout are left
    await until(() => up.seen.length === 1, 'the request to reach the upstream');
    p.clock.advance(49);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(await settled(reply), false, 'still within the route timeout');
    p.clock.advance(1);
    const r = await reply;
    assert.deepEqual([grpcStatus(r), r.headers['x-skein-reason']], ['4', 'upstream_timeout']);

    const q = await track(proxyWith(fault({ delay: { fixed_delay: ms(200), percentage: all } }), [up.port], 150));
    const late = call(q.port, { body: Buffer.alloc(5) });
    await until(() => q.cm.activeStreams === 1, 'the request to be held');
    q.clock.advance(200); // the whole route timeout went by in the delay
    const t = await late;
    assert.deepEqual([grpcStatus(t), t.headers['x-skein-reason']], ['4', 'upstream_timeout']);
    assert.equal(up.seen.length, 1, 'the timed-out request never went upstream');
  });

  test('the local rate limit refuses the request after max_tokens with 429 / RESOURCE_EXHAUSTED, refilled per fill_interval', async () => {
    const up = await track(h2Upstream(grpcOk));
    const bucket = { '@type': TYPE_URLS.LOCAL_RATELIMIT, stat_prefix: 'r', token_bucket: { max_tokens: 3, tokens_per_fill: { value: 3 }, fill_interval: ms(1000) }, filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } }, filter_enforced: { default_value: { numerator: 100, denominator: 'HUNDRED' } } };
    const p = await track(proxyWith({ 'envoy.filters.http.local_ratelimit': { '@type': TYPE_URLS.FILTER_CONFIG, is_optional: true, config: bucket } }, [up.port]));
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) codes.push(String(grpcStatus(await call(p.port, { body: Buffer.alloc(5) }))));
    assert.deepEqual(codes, ['0', '0', '0', '8']);
    const h = await call(p.port, { grpc: false, body: Buffer.alloc(1) });
    assert.equal(h.status, 429);
    assert.equal(h.headers['x-skein-reason'], 'rate_limited');
    p.clock.advance(999);
    assert.equal(grpcStatus(await call(p.port, { body: Buffer.alloc(5) })), '8');
    p.clock.advance(1);
    assert.equal(grpcStatus(await call(p.port, { body: Buffer.alloc(5) })), '0');
    assert.equal(up.seen.length, 4);
  });
});

// --- issue 9: settings that were decoded and ignored, and debuggability ---------------------

const FAULT_ALL = { numerator: 1_000_000, denominator: 'MILLION' };
const faultFilter = (f: Doc): Doc => ({ typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': TYPE_URLS.FAULT, ...f } } });

describe('the listener\'s http filter chain runs the filters; routes must not name others', () => {
  const ROUTER_F = { name: 'envoy.filters.http.router', typed_config: { '@type': TYPE_URLS.ROUTER } };
  const FAULT_F = { name: 'envoy.filters.http.fault', typed_config: { '@type': TYPE_URLS.FAULT } };
  const decodeListener = (filters: Doc[]): ListenerConfig => {
    const l = {
      name: 'skein.outbound', address: { socket_address: { address: '127.0.0.1', port_value: 15001 } },
      filter_chains: [{ filters: [{ name: 'hcm', typed_config: { '@type': TYPE_URLS.HCM, stat_prefix: 'out', rds: { route_config_name: 'test', config_source: { ads: {} } }, http_filters: [...filters, ROUTER_F] } }] }],
    };
    const r = listenerType.decode(encodeResource(TYPE_URLS.LISTENER, l));
    assert.ok('value' in r, 'error' in r ? r.error : '');
    return r.value;
  };

  test('a route\'s fault abort runs only in a chain with the fault filter (the chain is built from the Listener)', async () => {
    const up = await track(h2Upstream(grpcOk));
    const p = await track(startProxy({ ports: [up.port], random: () => 0.5, route: faultFilter({ abort: { grpc_status: 14, percentage: FAULT_ALL } }) }));
    const clusters = p.cm.snapshot.clusters;
    p.cm.snapshot = { routes: p.routes, clusters, filters: httpFilterChain(decodeListener([]).httpFilters) };
    const r = await call(p.port, { body: Buffer.alloc(5) });
    assert.equal(grpcStatus(r), '0', 'no fault filter in the chain: nothing reads the route\'s fault');
    assert.equal(up.seen.length, 1);

    p.cm.snapshot = { routes: p.routes, clusters, filters: httpFilterChain(decodeListener([FAULT_F]).httpFilters) };
    const a = await call(p.port, { body: Buffer.alloc(5) });
    assert.equal(grpcStatus(a), '14');
    assert.equal(a.headers['x-skein-reason'], 'fault_abort');
    assert.equal(up.seen.length, 1, 'the aborted request never reached the upstream');
  });

  test('a filter slots in: it mutates request and response headers, answers locally, and hears the end', async () => {
    const up = await track(h2Upstream(grpcOk));
    const p = await track(startProxy({ ports: [up.port] }));
    const ended: number[] = [];
    const probe: HttpFilter = {
      name: 'test.probe',
      onRequestHeaders(cb) {
        if (cb.requestHeaders['x-deny'] !== undefined) { cb.sendLocalReply(LOCAL_REPLIES.rbacDenied, 'denied by test.probe'); return 'stop'; }
        cb.requestHeaders['x-probe'] = 'in';
        return 'continue';
      },
      onResponseHeaders(_route, headers) { headers['x-probe-out'] = 'out'; },
      onStreamComplete(_cb, status) { ended.push(status); },
    };
    p.cm.snapshot = { ...p.cm.snapshot, filters: [probe, ...everyHttpFilter()] };
    const ok = await call(p.port, { body: Buffer.alloc(5) });
    assert.deepEqual([grpcStatus(ok), ok.headers['x-probe-out'], up.seen[0]!.headers['x-probe']], ['0', 'out', 'in']);
    const denied = await call(p.port, { body: Buffer.alloc(5), headers: { 'x-deny': '1' } });
    assert.deepEqual([grpcStatus(denied), denied.headers['x-skein-reason']], ['7', 'rbac_denied']);
    assert.equal(up.seen.length, 1, 'the denied request never went upstream');
    assert.deepEqual(ended, [200, 0]);
    assert.equal(counter(p, 'route.r.local_reply.rbac_denied'), 1);
  });

  test('the chain is built once per listener config', () => {
    const l = decodeListener([FAULT_F]);
    assert.equal(httpFilterChain(l.httpFilters), httpFilterChain(l.httpFilters));
    assert.deepEqual(httpFilterChain(l.httpFilters).map((f) => f.name), ['envoy.filters.http.fault', 'skein.route_header_mutation']);
  });

  const bucket = { '@type': TYPE_URLS.LOCAL_RATELIMIT, stat_prefix: 'r', token_bucket: { max_tokens: 3, tokens_per_fill: { value: 3 }, fill_interval: ms(1000) }, filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } }, filter_enforced: { default_value: { numerator: 100, denominator: 'HUNDRED' } } };
  const rc = { name: 'test', virtual_hosts: [{ name: 'svc', domains: ['svc'], routes: [
    { name: 'r', match: { prefix: '/a' }, route: { cluster: 'svc' }, typed_per_filter_config: {
      'envoy.filters.http.fault': { '@type': TYPE_URLS.FAULT, abort: { grpc_status: 14, percentage: FAULT_ALL } },
      'envoy.filters.http.local_ratelimit': bucket,
    } },
    { name: 'off', match: { prefix: '/b' }, route: { cluster: 'svc' }, typed_per_filter_config: {
      'envoy.filters.http.local_ratelimit': { '@type': TYPE_URLS.FILTER_CONFIG, disabled: true },
    } },
  ] }] };

  test('a RouteConfiguration turning on a filter the listener does not list is NACKed, naming the route and the filter', () => {
    const table = RouteTable.build(decodeAny(encodeResource(TYPE_URLS.ROUTE, rc)), HTTP_FILTERS);
    assert.deepEqual(unlistedHttpFilters(table, decodeListener([FAULT_F])), [
      'route configuration test: svc/r turns on envoy.filters.http.local_ratelimit (typed_per_filter_config), which listener skein.outbound does not list in its http_filters',
    ], 'the fault is listed; a disabled entry turns nothing on');
    assert.equal(unlistedHttpFilters(table, decodeListener([])).length, 2);
    const listener = decodeListener([FAULT_F]);
    const rds = new TypeSubscription(routeType, DEFAULT_LIMITS);
    rds.setNames(['test']);
    const check = (_type: string, resources: ReadonlyMap<string, unknown>) => unlistedHttpFilters(resources.get('test') as RouteTable, listener);
    const result = rds.apply({ version_info: '1', nonce: 'n1', resources: [encodeResource(TYPE_URLS.ROUTE, rc)] }, 0, check);
    assert.equal(result.kind, 'rejected');
    assert.match((result as { message: string }).message, /svc\/r turns on envoy\.filters\.http\.local_ratelimit .* which listener skein\.outbound does not list/);
    assert.equal(rds.resources.size, 0, 'nothing accepted');
  });
});

describe('retry_on conditions beyond 5xx, through the router', () => {
  async function retried(first: (s: http2.ServerHttp2Stream) => void, retryOn: string): Promise<{ reply: Reply; up: Upstream }> {
    const up = await track(h2Upstream((s, n) => (n === 0 ? first(s) : s.respond({ ':status': 200 }, { endStream: true }))));
    const p = await track(startProxy({ ports: [up.port], action: { retry_policy: { retry_on: retryOn, num_retries: { value: 2 } } } }));
    const reply = call(p.port, { grpc: false, method: 'GET' });
    for (let k = 0; k < 50 && !(await settled(reply)); k++) { p.clock.advance(25); await new Promise((r) => setTimeout(r, 5)); }
    return { reply: await reply, up };
  }

  test('retriable-4xx retries a 409 (and only a 409)', async () => {
    const a = await retried((s) => s.respond({ ':status': 409 }, { endStream: true }), 'retriable-4xx');
    assert.deepEqual([a.reply.status, a.reply.headers['x-skein-attempt-count'], a.up.seen.length], [200, '2', 2]);
    const b = await retried((s) => s.respond({ ':status': 404 }, { endStream: true }), 'retriable-4xx');
    assert.deepEqual([b.reply.status, b.up.seen.length], [404, 1]);
  });

  test('envoy-ratelimited retries a response carrying x-envoy-ratelimited', async () => {
    const a = await retried((s) => s.respond({ ':status': 429, 'x-envoy-ratelimited': 'true' }, { endStream: true }), 'envoy-ratelimited');
    assert.deepEqual([a.reply.status, a.up.seen.length], [200, 2]);
    const b = await retried((s) => s.respond({ ':status': 429 }, { endStream: true }), 'envoy-ratelimited');
    assert.deepEqual([b.reply.status, b.up.seen.length], [429, 1]);
  });

  test('retriable-headers retries a response matching retriable_headers', async () => {
    const up = await track(h2Upstream((s, n) => s.respond({ ':status': 200, ...(n === 0 ? { 'x-try-again': 'yes' } : {}) }, { endStream: true })));
    const p = await track(startProxy({ ports: [up.port], action: { retry_policy: { retry_on: 'retriable-headers', retriable_headers: [{ name: 'x-try-again', string_match: { exact: 'yes' } }] } } }));
    const reply = call(p.port, { grpc: false, method: 'GET' });
    for (let k = 0; k < 50 && !(await settled(reply)); k++) { p.clock.advance(25); await new Promise((r) => setTimeout(r, 5)); }
    const r = await reply;
    assert.deepEqual([r.status, r.headers['x-try-again'], up.seen.length], [200, undefined, 2]);
  });
});

describe('peak-EWMA latency uses the cluster\'s configured decay', () => {
  test('the EWMA recorded after a response decays with decayMs, not a fixed 10 s', async () => {
    for (const decayMs of [1000, undefined]) {
      const up = await track(h2Upstream(grpcOk));
      const p = await track(startProxy({ ports: [up.port], cluster: { lbPolicy: 'peak_ewma', ...(decayMs === undefined ? {} : { decayMs }) } }));
      const host = p.cluster.allHosts()[0]!;
      host.ewmaMs = 1_000_000;
      host.ewmaAt = p.clock.now();
      p.clock.advance(1000);
      const t0 = performance.now();
      assert.equal(grpcStatus(await call(p.port, { body: Buffer.alloc(5) })), '0');
      const maxSampleMs = performance.now() - t0;
      // One sample L in [0, maxSampleMs] after dt = 1000ms: d = exp(-dt / decay);
      // ewma = 1e6 * d * d + L * (1 - d) (the sample is far below the decayed estimate).
      const d = Math.exp(-1000 / (decayMs ?? 10_000));
      const low = 1_000_000 * d * d;
      assert.ok(host.ewmaMs >= low - 1e-6 && host.ewmaMs <= low + maxSampleMs * (1 - d) + 1e-6, `decay ${decayMs}: ewma ${host.ewmaMs}, expected ${low} + L x ${1 - d}`);
      assert.equal(host.ewmaAt, p.clock.now());
    }
  });
});

describe('a failed response passed on without a retry is accounted at its end', () => {
  test('its max_requests slot is held while its body streams', async () => {
    let held: http2.ServerHttp2Stream | undefined;
    const up = await track(h2Upstream((s) => { s.respond({ ':status': 503, 'content-type': 'text/plain' }); s.write('partial'); held = s; }));
    const p = await track(startProxy({ ports: [up.port], cluster: { circuitBreakers: { maxRequests: 5 } } }));
    const remaining = () => p.stats.gauge('cluster.svc.circuit_breakers.remaining_rq').value;
    const session = http2.connect(`http://127.0.0.1:${p.port}`);
    session.on('error', () => undefined);
    cleanups.push(async () => { session.destroy(); });
    const s = session.request({ ':method': 'GET', ':path': '/x', ':authority': 'svc' }, { endStream: true });
    let status = 0;
    let body = '';
    s.on('response', (h) => { status = Number(h[':status']); });
    s.on('data', (c: Buffer) => { body += c.toString(); });
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    await until(() => body === 'partial', 'the head and the first bytes downstream');
    assert.equal(status, 503);
    assert.equal(remaining(), 4, 'the slot is held while the body streams');
    assert.equal(counter(p, 'cluster.svc.upstream_rq_5xx'), 0, 'the attempt is not recorded yet');
    held!.end('-rest');
    await closed;
    assert.equal(body, 'partial-rest');
    await until(() => remaining() === 5, 'the slot released at the end');
    assert.equal(counter(p, 'cluster.svc.upstream_rq_5xx'), 1);
  });
});

describe('x-skein-attempt-count on the inbound side (the caller\'s count is kept)', () => {
  test('retries carry 2, 3 when the caller sent none; a caller\'s count is passed on unchanged', async () => {
    let n = 0;
    const up = await track(h2Upstream((s) => { if (n++ % 3 < 2) s.close(http2.constants.NGHTTP2_INTERNAL_ERROR); else grpcOk(s); }));
    const p = await track(startProxy({ ports: [up.port], setAttemptCount: false, action: { retry_policy: { retry_on: 'reset', num_retries: { value: 3 } } } }));
    const attempt = async (headers: http2.OutgoingHttpHeaders) => {
      const reply = call(p.port, { body: Buffer.alloc(5), headers });
      for (let k = 0; k < 50 && !(await settled(reply)); k++) { p.clock.advance(25); await new Promise((r) => setTimeout(r, 5)); }
      return reply;
    };
    assert.equal(grpcStatus(await attempt({})), '0');
    assert.deepEqual(up.seen.map((x) => x.headers['x-skein-attempt-count']), ['1', '2', '3']);
    assert.equal(grpcStatus(await attempt({ 'x-skein-attempt-count': '7' })), '0');
    assert.deepEqual(up.seen.slice(3).map((x) => x.headers['x-skein-attempt-count']), ['7', '7', '7']);
  });
});

describe('grpc-web is not gRPC (one content-type rule for routing, deadlines and local replies)', () => {
  test('isGrpcContentType', () => {
    const cases: [string | string[] | undefined, boolean][] = [
      ['application/grpc', true], ['application/grpc+proto', true], ['application/grpc;charset=utf-8', true], [['application/grpc'], true],
      ['application/grpc-web', false], ['application/grpc-web+proto', false], ['application/grpc-web-text', false],
      ['application/grpcx', false], ['application/json', false], [undefined, false], ['', false],
    ];
    assert.deepEqual(cases.map(([ct]) => [ct, isGrpcContentType(ct)]), cases);
  });

  test('a grpc-web request gets an HTTP local reply, and its upstream response gets no synthesized grpc-status trailer', async () => {
    const up = await track(h2Upstream((s) => { s.respond({ ':status': 200, 'content-type': 'application/grpc-web+proto' }); s.end(Buffer.from([0x80, 0, 0, 0, 0])); }));
    const p = await track(startProxy({ ports: [up.port] }));
    const web = { 'content-type': 'application/grpc-web+proto' };
    const noRoute = await call(p.port, { grpc: false, headers: { ...web, ':authority': 'nowhere' }, body: Buffer.alloc(5) });
    assert.deepEqual([noRoute.status, noRoute.headers['grpc-status'], noRoute.headers['x-skein-reason']], [404, undefined, 'no_route']);
    const r = await call(p.port, { grpc: false, headers: web, body: Buffer.alloc(5) });
    assert.equal(r.status, 200);
    assert.deepEqual(r.trailers, {}, 'no trailers invented');
    assert.equal(r.rst, 0);
  });
});

describe('HTTP/1.1 Upgrade gets the route\'s fault, rate limit and max_requests', () => {
  async function wsUpstream(): Promise<Upstream & { upgrades: number }> {
    const up: Upstream & { upgrades: number } = Object.assign(await upstreams.h1Upstream((_q, res) => res.end('no upgrade'), {
      onUpgrade: (_req, socket) => {
        up.upgrades++;
        socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n');
        socket.pipe(socket);
      },
    }), { seen: [] as Seen[], upgrades: 0 });
    return up;
  }

  /** A raw WebSocket-style Upgrade; resolves with the response head once it has arrived. */
  function upgrade(port: number): { head: Promise<{ status: number; reason: string | undefined }>; socket: net.Socket } {
    const socket = netConnect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    cleanups.push(async () => { socket.destroy(); });
    socket.write('GET /ws HTTP/1.1\r\nhost: svc\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    const head = new Promise<{ status: number; reason: string | undefined }>((resolve) => {
      let buf = '';
      const onData = (c: Buffer) => {
        buf += c.toString('latin1');
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        const lines = buf.slice(0, end).split('\r\n');
        const reason = lines.find((l) => l.toLowerCase().startsWith('x-skein-reason:'))?.split(':')[1]?.trim();
        resolve({ status: Number(lines[0]!.split(' ')[1]), reason });
      };
      socket.on('data', onData);
      socket.on('close', () => resolve({ status: 0, reason: undefined }));
    });
    return { head, socket };
  }

  test('with a fault delay drawn, the abort still applies once the delay has passed', async () => {
    const up = await track(wsUpstream());
    const p = await track(startProxy({ ports: [up.port], random: () => 0.5, cluster: { protocol: 'h1' }, route: faultFilter({ delay: { fixed_delay: ms(100), percentage: FAULT_ALL }, abort: { http_status: 503, percentage: FAULT_ALL } }) }));
    const u = upgrade(p.port);
    let answered = false;
    void u.head.then(() => { answered = true; });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(answered, false, 'held for the delay');
    p.clock.advance(100);
    const h = await u.head;
    assert.deepEqual([h.status, h.reason, up.upgrades], [503, 'fault_abort', 0]);
    assert.equal(counter(p, 'route.r.local_reply.fault_abort'), 1);
  });

  test('with a fault delay drawn, the local rate limit still applies', async () => {
    const up = await track(wsUpstream());
    const bucket = { '@type': TYPE_URLS.LOCAL_RATELIMIT, stat_prefix: 'r', token_bucket: { max_tokens: 1, tokens_per_fill: { value: 1 }, fill_interval: ms(60_000) }, filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } }, filter_enforced: { default_value: { numerator: 100, denominator: 'HUNDRED' } } };
    const route = { typed_per_filter_config: { ...faultFilter({ delay: { fixed_delay: ms(100), percentage: FAULT_ALL } }).typed_per_filter_config, 'envoy.filters.http.local_ratelimit': bucket } };
    const p = await track(startProxy({ ports: [up.port], random: () => 0.5, cluster: { protocol: 'h1' }, route }));
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) {
      const u = upgrade(p.port);
      await new Promise((r) => setTimeout(r, 20));
      p.clock.advance(100);
      statuses.push((await u.head).status);
    }
    assert.deepEqual(statuses, [101, 429]);
    assert.equal(up.upgrades, 1);
  });

  test('an open tunnel holds a max_requests slot until it closes', async () => {
    const up = await track(wsUpstream());
    const p = await track(startProxy({ ports: [up.port], cluster: { protocol: 'h1', circuitBreakers: { maxRequests: 1 } } }));
    const first = upgrade(p.port);
    assert.equal((await first.head).status, 101);
    first.socket.write('ping');
    await new Promise<void>((r) => first.socket.once('data', () => r()));
    const second = await upgrade(p.port).head;
    assert.deepEqual([second.status, second.reason], [503, 'circuit_breaker_max_requests']);
    assert.equal(counter(p, 'cluster.svc.upstream_rq_overflow'), 1);
    first.socket.destroy();
    await until(() => p.stats.gauge('cluster.svc.circuit_breakers.remaining_rq').value === 1, 'the slot released when the tunnel closes');
    assert.equal((await upgrade(p.port).head).status, 101);
    assert.equal(up.upgrades, 2);
  });
});

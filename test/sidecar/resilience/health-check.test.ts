/**
 * Active health checks (sidecar/src/resilience/health-check*.ts) against REAL upstreams on
 * 127.0.0.1: node:http, node:http2 (h2c) and a grpc-js server running grpc-health-check's
 * Health service. Intervals and timeouts run on a FakeClock; a check's I/O is awaited by
 * polling the stats (the wall-clock bound is for liveness only, never an assertion).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { ServingStatus } from 'grpc-health-check';
import pino from 'pino';
import { FakeClock } from '../../../shared/src/clock';
import { decodeAny, encodeAny } from '../../../shared/src/xds/protos';
import { Stats } from '../../../sidecar/src/stats/stats';
import { Host } from '../../../sidecar/src/upstream/host';
import { Issues } from '../../../shared/src/xds/issues';
import { decodeHealthChecks } from '../../../sidecar/src/resilience/health-check-config';
import type { HealthCheckConfig } from '../../../sidecar/src/resilience/health-check-config';
import { HealthChecker } from '../../../sidecar/src/resilience/health-checker';
import type { MonitoredHost } from '../../../sidecar/src/resilience/monitored-host';
import { closedPort } from '../../support/ports';
import { until } from '../../support/until';
import * as upstreams from '../../support/upstreams';
import type { H2UpstreamServer, UpstreamServer } from '../../support/upstreams';

const HOST = '127.0.0.1';
const CLUSTER = 'orders';
const INTERVAL = 1000;
const TIMEOUT = 500;


function host(port: number): Host { return new Host(HOST, port, 1, '', 'HEALTHY'); }

type Check = HealthCheckConfig['check'];
function config(check: Check, over: Partial<Omit<HealthCheckConfig, 'check'>> = {}): HealthCheckConfig {
  return { timeoutMs: TIMEOUT, intervalMs: INTERVAL, unhealthyThreshold: 3, healthyThreshold: 2, check, ...over };
}
function httpCheck(path = '/healthz', over: Partial<Extract<Check, { kind: 'http' }>> = {}): Check {
  return { kind: 'http', path, host: undefined, expectedStatuses: [[200, 201]], codec: 'http1', ...over };
}

interface Harness {
  hc: HealthChecker;
  clock: FakeClock;
  stats: Stats;
  logs: Record<string, unknown>[];
  changes: number;
  /** Hosts given to onPassed, in order. */
  passed: MonitoredHost[];
  counters(): { attempt: number; success: number; failure: number; network_failure: number; timeout: number };
  healthy(): number;
  /** Waits until `n` checks have started and finished. */
  done(n: number): Promise<void>;
}

function harness(cfg: HealthCheckConfig): Harness {
  const clock = new FakeClock();
  const stats = new Stats({ clock });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { logs.push(JSON.parse(String(chunk))); cb(); } });
  const h: Harness = {
    clock, stats, logs, changes: 0, passed: [],
    hc: undefined as unknown as HealthChecker,
    counters() {
      const c = stats.snapshot(`cluster.${CLUSTER}.health_check.`).counters;
      const v = (k: string): number => c[`cluster.${CLUSTER}.health_check.${k}`] ?? 0;
      return { attempt: v('attempt'), success: v('success'), failure: v('failure'), network_failure: v('network_failure'), timeout: v('timeout') };
    },
    healthy() { return stats.snapshot(`cluster.${CLUSTER}.health_check.healthy`).gauges[`cluster.${CLUSTER}.health_check.healthy`] ?? 0; },
    async done(n) {
      await until(() => { const c = h.counters(); return c.attempt >= n && c.success + c.failure >= n; }, `${n} finished checks`);
      const c = h.counters();
      assert.equal(c.attempt, n, 'no extra check started');
      assert.equal(c.success + c.failure, n);
    },
  };
  h.hc = new HealthChecker({ cluster: CLUSTER, config: cfg, clock, log: pino({ level: 'info' }, sink), stats, onChange: () => { h.changes++; }, onPassed: (x) => { h.passed.push(x); } });
  return h;
}

// --- upstreams ---------------------------------------------------------------------------

interface Seen { path: string; host: string; ua: string }

/** What the health-check upstreams answer (set by the tests) and what they saw. */
interface Answering {
  /** Status answered to /healthz; /status/NNN answers NNN. */
  status: number;
  seen: Seen[];
  /** When true, a connection's second request kills the connection instead of answering. */
  killReused: boolean;
  /** Requests that reached the server, answered or not (HTTP/1.1 only). */
  received: number;
  /** HTTP/1.1: the requests (1-based, in arrival order) the server never answers. */
  hang: number[];
}
type HttpUpstream = UpstreamServer & Answering;

const answering = (): Answering => ({ status: 200, seen: [], killReused: false, received: 0, hang: [] });

function statusFor(up: Answering, path: string): number {
  const m = /^\/status\/(\d{3})$/.exec(path);
  return m ? Number(m[1]) : up.status;
}

async function h1Upstream(): Promise<HttpUpstream> {
  const up: HttpUpstream = Object.assign(await upstreams.h1Upstream((req, res, { onConnection }) => {
    if (up.killReused && onConnection >= 2) { req.socket.destroy(); return; }
    if (up.hang.includes(++up.received)) return;
    up.seen.push({ path: req.url ?? '', host: req.headers.host ?? '', ua: req.headers['user-agent'] ?? '' });
    res.writeHead(statusFor(up, req.url ?? ''), { 'content-type': 'text/plain' });
    res.end('health body');
  }, { keepAliveTimeoutMs: 120_000 }), answering());
  return up;
}

async function h2Upstream(): Promise<H2UpstreamServer & Answering> {
  const up: H2UpstreamServer & Answering = Object.assign(await upstreams.h2Upstream((stream, headers, { onConnection }) => {
    if (up.killReused && onConnection >= 2) { stream.session!.destroy(); return; }
    const path = String(headers[':path']);
    up.seen.push({ path, host: String(headers[':authority']), ua: String(headers['user-agent']) });
    stream.respond({ ':status': statusFor(up, path) });
    stream.end('health body');
  }), answering());
  return up;
}

interface GrpcUpstream {
  port: number;
  health: HealthImplementation;
  /** :authority of every call. */
  authorities: string[];
  close(): Promise<void>;
}

async function grpcUpstream(statuses: Record<string, ServingStatus>): Promise<GrpcUpstream> {
  const authorities: string[] = [];
  const interceptor: grpc.ServerInterceptor = (_desc, call) => { authorities.push(call.getHost()); return new grpc.ServerInterceptingCall(call); };
  const server = new grpc.Server({ interceptors: [interceptor] });
  const health = new HealthImplementation(statuses);
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(`${HOST}:0`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { port, health, authorities, close: () => new Promise<void>((r) => server.tryShutdown(() => r())) };
}

/** A TCP relay in front of `port` that counts client connections (open and ever); `reset` drops new ones with a RST. */
async function countingProxy(port: number): Promise<{ port: number; accepted: number; open: number; reset: boolean; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((c) => {
    p.accepted++;
    if (p.reset) { c.resetAndDestroy(); return; }
    p.open++; sockets.add(c);
    const u = net.connect(port, HOST);
    sockets.add(u);
    c.pipe(u); u.pipe(c);
    c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
    c.on('close', () => { p.open--; sockets.delete(c); u.destroy(); });
    u.on('close', () => { sockets.delete(u); c.destroy(); });
  });
  const p = {
    port: 0, accepted: 0, open: 0, reset: false,
    async close() { for (const s of sockets) s.destroy(); await new Promise<void>((r) => server.close(() => r())); },
  };
  await new Promise<void>((r) => server.listen(0, HOST, r));
  p.port = (server.address() as net.AddressInfo).port;
  return p;
}

/** Accepts connections and never writes a byte. */
async function silentUpstream(): Promise<{ port: number; bytes: number; accepted: number; open: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    u.accepted++; u.open++; sockets.add(s);
    s.on('data', (d) => { u.bytes += d.length; });
    s.on('error', () => undefined);
    s.on('close', () => { u.open--; sockets.delete(s); });
  });
  const u = {
    port: 0, bytes: 0, accepted: 0, open: 0,
    async close() { for (const s of sockets) s.destroy(); await new Promise<void>((r) => server.close(() => r())); },
  };
  await new Promise<void>((r) => server.listen(0, HOST, r));
  u.port = (server.address() as net.AddressInfo).port;
  return u;
}


// --- config decoding ---------------------------------------------------------------------

const d = (s: number): { seconds: string; nanos: number } => ({ seconds: String(s), nanos: 0 });
const base = (): Record<string, unknown> => ({
  timeout: d(1), interval: d(10), unhealthy_threshold: { value: 3 }, healthy_threshold: { value: 1 },
  http_health_check: { path: '/healthz' }, health_checker: 'http_health_check',
});

function decode(list: Record<string, unknown>[]): { cfg: HealthCheckConfig | undefined; issues: string[] } {
  const issues = new Issues();
  const cfg = decodeHealthChecks(list, issues);
  return { cfg, issues: issues.list };
}

describe('decodeHealthChecks', () => {
  test('applies the documented defaults (HTTP)', () => {
    const { cfg, issues } = decode([base()]);
    assert.deepEqual(issues, []);
    assert.deepEqual(cfg, {
      timeoutMs: 1000, intervalMs: 10_000, unhealthyThreshold: 3, healthyThreshold: 1,
      check: { kind: 'http', path: '/healthz', host: undefined, expectedStatuses: [[200, 201]], codec: 'http1' },
    });
  });

  test('decodes every supported HTTP and gRPC field', () => {
    const http1 = decode([{ ...base(), timeout: { seconds: '0', nanos: 250_000_000 }, reuse_connection: { value: true }, initial_jitter: d(0), interval_jitter: d(0),
      http_health_check: { path: '/ready?x=1', host: 'orders.internal', expected_statuses: [{ start: '200', end: '300' }, { start: '404', end: '405' }], codec_client_type: 'HTTP2', method: 'GET' } }]);
    assert.deepEqual(http1.issues, []);
    assert.deepEqual(http1.cfg?.check, { kind: 'http', path: '/ready?x=1', host: 'orders.internal', expectedStatuses: [[200, 300], [404, 405]], codec: 'http2' });
    assert.equal(http1.cfg?.timeoutMs, 250);
    const grpcDefault = decode([{ ...base(), http_health_check: undefined, grpc_health_check: {}, health_checker: 'grpc_health_check' }]);
    assert.deepEqual(grpcDefault.issues, []);
    assert.deepEqual(grpcDefault.cfg?.check, { kind: 'grpc', serviceName: '', authority: undefined });
    const grpcSet = decode([{ ...base(), http_health_check: undefined, grpc_health_check: { service_name: 'orders.v1.Orders', authority: 'orders' } }]);
    assert.deepEqual(grpcSet.cfg?.check, { kind: 'grpc', serviceName: 'orders.v1.Orders', authority: 'orders' });
  });

  test('an empty list is no health checking', () => {
    assert.deepEqual(decode([]), { cfg: undefined, issues: [] });
  });

  const bad: [string, Record<string, unknown>[], string[]][] = [
    ['two HealthChecks', [base(), base()], ['health_checks: exactly one HealthCheck is supported, got 2']],
    ['missing required fields', [{ http_health_check: { path: '/h' } }], [
      'health_checks[0].timeout: is required', 'health_checks[0].interval: is required',
      'health_checks[0].unhealthy_threshold: is required', 'health_checks[0].healthy_threshold: is required']],
    ['zero durations and thresholds', [{ ...base(), timeout: d(0), interval: { seconds: '0', nanos: 999_999 }, unhealthy_threshold: {}, healthy_threshold: { value: 0 } }], [
      'health_checks[0].timeout: must be at least 1ms', 'health_checks[0].interval: must be at least 1ms',
      'health_checks[0].unhealthy_threshold: must be >= 1, got 0', 'health_checks[0].healthy_threshold: must be >= 1, got 0']],
    ['negative timeout', [{ ...base(), timeout: d(-1) }], ['health_checks[0].timeout: must be at least 1ms']],
    ['no checker', [{ ...base(), http_health_check: undefined, health_checker: undefined }], ['health_checks[0]: one of http_health_check, grpc_health_check or tcp_health_check is required']],
    ['tcp_health_check with payloads', [{ ...base(), http_health_check: undefined, tcp_health_check: { send: { text: '50494e47' }, receive: [{ text: '504f4e47' }] } }], [
      'health_checks[0].tcp_health_check.send: payloads are not supported: a TCP health check is connect-only',
      'health_checks[0].tcp_health_check.receive: payloads are not supported: a TCP health check is connect-only']],
    ['custom_health_check', [{ ...base(), http_health_check: undefined, custom_health_check: { name: 'x' } }], ['health_checks[0].custom_health_check: custom health checkers are not supported; use http_health_check, grpc_health_check or tcp_health_check']],
    ['behaviour-changing top-level fields', [{ ...base(), unhealthy_interval: d(1), no_traffic_interval: d(60), no_traffic_healthy_interval: d(60), unhealthy_edge_interval: d(1),
      healthy_edge_interval: d(1), interval_jitter_percent: 10, alt_port: { value: 81 }, event_logger: [{ name: 'x' }], always_log_health_check_failures: true,
      always_log_health_check_success: true, tls_options: { alpn_protocols: ['h2'] }, transport_socket_match_criteria: { fields: {} } }],
    ['unhealthy_interval', 'no_traffic_interval', 'no_traffic_healthy_interval', 'unhealthy_edge_interval', 'healthy_edge_interval', 'interval_jitter_percent', 'alt_port',
      'event_logger', 'always_log_health_check_failures', 'always_log_health_check_success', 'tls_options', 'transport_socket_match_criteria']
      .map((f) => `health_checks[0].${f}: is not supported by skein health checks`)],
    ['jitter and reuse_connection=false', [{ ...base(), initial_jitter: d(1), interval_jitter: { seconds: '0', nanos: 5_000_000 }, reuse_connection: {} }], [
      'health_checks[0].initial_jitter: jitter is not supported; must be unset or 0', 'health_checks[0].interval_jitter: jitter is not supported; must be unset or 0',
      'health_checks[0].reuse_connection: only true (the default) is supported']],
    ['http: missing path', [{ ...base(), http_health_check: { host: 'x' } }], ['health_checks[0].http_health_check.path: is required']],
    ['http: bad path, host, method, codec', [{ ...base(), http_health_check: { path: 'healthz', host: 'a b', method: 'POST', codec_client_type: 'HTTP3' } }], [
      "health_checks[0].http_health_check.path: must start with '/' and hold no spaces or control characters",
      'health_checks[0].http_health_check.host: must hold no spaces or control characters',
      'health_checks[0].http_health_check.method: only GET is supported, got POST',
      'health_checks[0].http_health_check.codec_client_type: must be HTTP1 or HTTP2, got HTTP3']],
    ['http: path with a space', [{ ...base(), http_health_check: { path: '/a b' } }], ["health_checks[0].http_health_check.path: must start with '/' and hold no spaces or control characters"]],
    ['http: expected_statuses out of range', [{ ...base(), http_health_check: { path: '/h', expected_statuses: [{ start: '200', end: '201' }, { start: '99', end: '200' }, { start: '500', end: '601' }, { start: '300', end: '300' }, { end: '200' }] } }], [
      'health_checks[0].http_health_check.expected_statuses[1]: must satisfy 100 <= start < end <= 600 (half-open), got [99, 200)',
      'health_checks[0].http_health_check.expected_statuses[2]: must satisfy 100 <= start < end <= 600 (half-open), got [500, 601)',
      'health_checks[0].http_health_check.expected_statuses[3]: must satisfy 100 <= start < end <= 600 (half-open), got [300, 300)',
      'health_checks[0].http_health_check.expected_statuses[4]: must satisfy 100 <= start < end <= 600 (half-open), got [0, 200)']],
    ['http: unsupported fields', [{ ...base(), http_health_check: { path: '/h', send: { text: 'x' }, receive: [{ text: 'y' }], response_buffer_size: { value: '10' },
      request_headers_to_add: [{ header: { key: 'a', value: 'b' } }], request_headers_to_remove: ['x'], retriable_statuses: [{ start: '500', end: '501' }],
      service_name_matcher: { exact: 'x' } } }],
    ['send', 'receive', 'response_buffer_size', 'request_headers_to_add', 'request_headers_to_remove', 'retriable_statuses', 'service_name_matcher']
      .map((f) => `health_checks[0].http_health_check.${f}: is not supported by skein health checks`)],
    ['grpc: initial_metadata and a bad authority', [{ ...base(), http_health_check: undefined, grpc_health_check: { authority: 'a\nb', initial_metadata: [{ header: { key: 'a', value: 'b' } }] } }], [
      'health_checks[0].grpc_health_check.initial_metadata: is not supported by skein health checks',
      'health_checks[0].grpc_health_check.authority: must hold no spaces or control characters']],
    ['an unknown field', [{ ...base(), some_future_field: 1 }], ['health_checks[0].some_future_field: is not supported by skein health checks']],
  ];
  for (const [name, list, want] of bad) {
    test(`rejects: ${name}`, () => {
      const { cfg, issues } = decode(list);
      assert.equal(cfg, undefined);
      assert.deepEqual(issues, want);
    });
  }

  test('decodes what the control plane sends, after a real protobuf round trip', () => {
    const url = 'type.googleapis.com/envoy.config.core.v3.HealthCheck';
    const wire = (o: object): Record<string, unknown> => decodeAny<Record<string, unknown>>(encodeAny(url, o));
    const httpHc = wire({ timeout: { seconds: 0, nanos: 500_000_000 }, interval: { seconds: 5 }, healthy_threshold: { value: 2 }, unhealthy_threshold: { value: 4 },
      http_health_check: { path: '/ready', expected_statuses: [{ start: 200, end: 201 }, { start: 204, end: 205 }] } });
    assert.equal(httpHc['health_checker'], 'http_health_check', 'protobufjs adds the virtual oneof key');
    assert.deepEqual(decode([httpHc]), { issues: [], cfg: {
      timeoutMs: 500, intervalMs: 5000, unhealthyThreshold: 4, healthyThreshold: 2,
      check: { kind: 'http', path: '/ready', host: undefined, expectedStatuses: [[200, 201], [204, 205]], codec: 'http1' } } });
    const grpcHc = wire({ timeout: { seconds: 1 }, interval: { seconds: 10 }, healthy_threshold: { value: 1 }, unhealthy_threshold: { value: 3 }, grpc_health_check: {} });
    assert.deepEqual(decode([grpcHc]).cfg?.check, { kind: 'grpc', serviceName: '', authority: undefined });
    const tcp = wire({ timeout: { seconds: 1 }, interval: { seconds: 10 }, healthy_threshold: { value: 1 }, unhealthy_threshold: { value: 3 }, tcp_health_check: {} });
    assert.deepEqual(decode([tcp]), { issues: [], cfg: { timeoutMs: 1000, intervalMs: 10_000, unhealthyThreshold: 3, healthyThreshold: 1, check: { kind: 'tcp' } } });
    const tcpPlus = wire({ timeout: { seconds: 1 }, interval: { seconds: 10 }, healthy_threshold: { value: 1 }, unhealthy_threshold: { value: 3 }, tcp_health_check: {}, unhealthy_interval: { seconds: 1 } });
    assert.deepEqual(decode([tcpPlus]).issues, ['health_checks[0].unhealthy_interval: is not supported by skein health checks']);
  });

  test('uses the given path prefix', () => {
    const issues = new Issues();
    decodeHealthChecks([{ ...base(), timeout: undefined }], issues, 'clusters[2].health_checks');
    assert.deepEqual(issues.list, ['clusters[2].health_checks[0].timeout: is required']);
  });
});

// --- HTTP/1.1 ----------------------------------------------------------------------------

describe('HealthChecker: HTTP/1.1', () => {
  test('fails a host at exactly the unhealthy_threshold-th failure and restores it after exactly healthy_threshold successes', async () => {
    const up = await h1Upstream();
    const h = harness(config(httpCheck()));
    const a = host(up.port);
    try {
      h.hc.setHosts([a]);
      await h.done(1);
      assert.deepEqual(h.hc.hostInfo(a), { hcFailed: false, consecutiveFailures: 0, consecutiveSuccesses: 1 });
      assert.equal(h.healthy(), 1);
      up.status = 503;
      for (let i = 1; i <= 2; i++) {
        h.clock.advance(INTERVAL);
        await h.done(1 + i);
        assert.equal(a.hcFailed, false, `not failed after ${i} failures`);
        assert.equal(h.changes, 0);
      }
      h.clock.advance(INTERVAL);
      await h.done(4);
      assert.equal(a.hcFailed, true);
      assert.equal(h.changes, 1);
      assert.equal(h.healthy(), 0);
      assert.deepEqual(h.hc.hostInfo(a), { hcFailed: true, consecutiveFailures: 3, consecutiveSuccesses: 0, lastFailure: 'unexpected status 503' });
      const warn = h.logs.find((l) => l['level'] === 40);
      assert.ok(warn !== undefined, 'a warn log');
      assert.equal(warn['cluster'], CLUSTER);
      assert.equal(warn['host'], a.key);
      assert.equal(warn['why'], 'unexpected status 503');
      // Still failing: no further transition.
      h.clock.advance(INTERVAL);
      await h.done(5);
      assert.equal(h.changes, 1);
      up.status = 200;
      h.clock.advance(INTERVAL);
      await h.done(6);
      assert.equal(a.hcFailed, true, 'one success is not enough');
      assert.equal(h.changes, 1);
      h.clock.advance(INTERVAL);
      await h.done(7);
      assert.equal(a.hcFailed, false);
      assert.equal(h.changes, 2);
      assert.equal(h.healthy(), 1);
      assert.ok(h.logs.some((l) => l['level'] === 30 && l['host'] === a.key), 'an info log on recovery');
      assert.deepEqual(h.counters(), { attempt: 7, success: 3, failure: 4, network_failure: 0, timeout: 0 });
      // Request shape, and one keep-alive connection reused by every check.
      assert.equal(up.seen.length, 7);
      for (const s of up.seen) assert.deepEqual(s, { path: '/healthz', host: CLUSTER, ua: 'skein-health-check' });
      assert.equal(up.accepted, 1);
      // Nothing happens between intervals.
      h.clock.advance(INTERVAL - 1);
      assert.equal(h.counters().attempt, 7);
    } finally {
      await h.hc.close();
      await up.close();
    }
  });

  test('onPassed follows each passing check of a host that is not failed; a failed host only once healthy_threshold clears it', async () => {
    const up = await h1Upstream();
    const h = harness(config(httpCheck(), { unhealthyThreshold: 1, healthyThreshold: 2 }));
    const a = host(up.port);
    try {
      h.hc.setHosts([a]);
      await h.done(1);
      assert.deepEqual(h.passed, [a], 'a first passing check');
      up.status = 500;
      h.clock.advance(INTERVAL);
      await h.done(2);
      assert.equal(a.hcFailed, true);
      assert.equal(h.passed.length, 1, 'a failed check is not a pass (envoy#32442)');
      up.status = 200;
      h.clock.advance(INTERVAL);
      await h.done(3);
      assert.equal(a.hcFailed, true, 'one success of two');
      assert.equal(h.passed.length, 1, 'a pass of a still-failed host is not reported');
      h.clock.advance(INTERVAL);
      await h.done(4);
      assert.equal(a.hcFailed, false);
      assert.deepEqual(h.passed, [a, a], 'reported once the host is healthy again');
    } finally {
      await h.hc.close();
      await up.close();
    }
  });

  test('judges statuses by expected_statuses ranges (half-open) and sends the configured Host', async () => {
    const up = await h1Upstream();
    const cases: [number, [number, number][], boolean][] = [
      [200, [[200, 201]], true],
      [201, [[200, 201]], false],
      [204, [[200, 300]], true],
      [299, [[200, 300]], true],
      [300, [[200, 300]], false],
      [404, [[200, 201], [404, 405]], true],
      [503, [[200, 201], [404, 405]], false],
      [503, [[500, 600]], true],
    ];
    try {
      for (const [status, ranges, ok] of cases) {
        const h = harness(config(httpCheck(`/status/${status}`, { host: 'orders.internal', expectedStatuses: ranges }), { unhealthyThreshold: 1 }));
        const a = host(up.port);
        h.hc.setHosts([a]);
        await h.done(1);
        assert.deepEqual(h.counters(), { attempt: 1, success: ok ? 1 : 0, failure: ok ? 0 : 1, network_failure: 0, timeout: 0 }, `${status} in ${JSON.stringify(ranges)}`);
        assert.equal(a.hcFailed, !ok);
        await h.hc.close();
      }
      assert.ok(up.seen.every((s) => s.host === 'orders.internal'));
    } finally {
      await up.close();
    }
  });

  test('counts a refused connection as a network failure', async () => {
    const port = await closedPort();
    const h = harness(config(httpCheck(), { unhealthyThreshold: 2 }));
    const a = host(port);
    try {
      h.hc.setHosts([a]);
      await h.done(1);
      assert.equal(a.hcFailed, false);
      h.clock.advance(INTERVAL);
      await h.done(2);
      assert.equal(a.hcFailed, true);
      assert.equal(h.changes, 1);
      assert.deepEqual(h.counters(), { attempt: 2, success: 0, failure: 2, network_failure: 2, timeout: 0 });
      assert.match(h.hc.hostInfo(a)!.lastFailure!, /ECONNREFUSED/);
    } finally {
      await h.hc.close();
    }
  });

  test('keeps the verdict of a host that arrives already failed, and does not report it as a change', async () => {
    const up = await h1Upstream();
    const h = harness(config(httpCheck()));
    const a = host(up.port);
    a.hcFailed = true;
    try {
      h.hc.setHosts([a]);
      assert.equal(h.healthy(), 0);
      await h.done(1);
      assert.equal(a.hcFailed, true);
      assert.equal(h.changes, 0);
      h.clock.advance(INTERVAL);
      await h.done(2);
      assert.equal(a.hcFailed, false);
      assert.equal(h.changes, 1);
      assert.equal(h.healthy(), 1);
    } finally {
      await h.hc.close();
      await up.close();
    }
  });
});

// --- HTTP/2 ------------------------------------------------------------------------------

describe('HealthChecker: TCP (connect only)', () => {
  test('passes while connections are accepted, fails at the threshold once they are refused, and comes back', async () => {
    let accepted = 0;
    const server = net.createServer((s) => { accepted++; s.on('error', () => undefined); });
    await new Promise<void>((r) => server.listen(0, HOST, () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const h = harness(config({ kind: 'tcp' }, { unhealthyThreshold: 2, healthyThreshold: 2 }));
    const a = host(port);
    try {
      h.hc.setHosts([a]);
      await h.done(1);
      await until(() => accepted === 1, 'the check connection to arrive');
      assert.equal(a.hcFailed, false);
      await new Promise<void>((r) => server.close(() => r()));
      for (const n of [2, 3]) { h.clock.advance(INTERVAL); await h.done(n); }
      assert.equal(a.hcFailed, true, 'two refused connections in a row');
      assert.equal(h.changes, 1);
      assert.match(h.hc.hostInfo(a)!.lastFailure!, /ECONNREFUSED/);
      await new Promise<void>((r) => server.listen(port, HOST, () => r()));
      for (const n of [4, 5]) { h.clock.advance(INTERVAL); await h.done(n); }
      assert.equal(a.hcFailed, false, 'back after two accepted connections');
      assert.equal(h.changes, 2);
      assert.deepEqual(h.counters(), { attempt: 5, success: 3, failure: 2, network_failure: 2, timeout: 0 });
      assert.equal(accepted, 3);
    } finally {
      await h.hc.close();
      server.close();
    }
  });
});

describe('HealthChecker: HTTP/2 codec', () => {
  test('checks over one h2c session, with thresholds, :authority and user-agent; a session the server killed is replaced', async () => {
    const up = await h2Upstream();
    const h = harness(config(httpCheck('/healthz', { codec: 'http2', expectedStatuses: [[200, 300]] }), { unhealthyThreshold: 2, healthyThreshold: 1 }));
    const a = host(up.port);
    try {
      h.hc.setHosts([a]);
      await h.done(1);
      h.clock.advance(INTERVAL);
      await h.done(2);
      assert.equal(up.accepted, 1, 'one session for both checks');
      up.status = 500;
      h.clock.advance(INTERVAL);
      await h.done(3);
      assert.equal(a.hcFailed, false);
      h.clock.advance(INTERVAL);
      await h.done(4);
      assert.equal(a.hcFailed, true);
      assert.equal(h.changes, 1);
      up.status = 204;
      h.clock.advance(INTERVAL);
      await h.done(5);
      assert.equal(a.hcFailed, false);
      assert.equal(h.changes, 2);
      assert.deepEqual(h.counters(), { attempt: 5, success: 3, failure: 2, network_failure: 0, timeout: 0 });
      for (const s of up.seen) assert.deepEqual(s, { path: '/healthz', host: CLUSTER, ua: 'skein-health-check' });
      // The server drops the session: the next check runs on a new one and succeeds.
      up.sessions[0]!.destroy();
      await until(() => up.open === 0, 'server session closed');
      h.clock.advance(INTERVAL);
      await h.done(6);
      assert.equal(h.counters().success, 4);
      assert.equal(up.accepted, 2);
    } finally {
      await h.hc.close();
      await up.close();
    }
  });
});

// --- gRPC --------------------------------------------------------------------------------

describe('HealthChecker: grpc.health.v1', () => {
  test('follows SERVING -> NOT_SERVING -> SERVING', async () => {
    const up = await grpcUpstream({ '': 'SERVING', 'orders.v1.Orders': 'SERVING' });
    const h = harness(config({ kind: 'grpc', serviceName: 'orders.v1.Orders', authority: undefined }, { unhealthyThreshold: 2, healthyThreshold: 2 }));
    const a = host(up.port);
    try {
      h.hc.setHosts([a]);
      await h.done(1);
      assert.equal(h.counters().success, 1);
      up.health.setStatus('orders.v1.Orders', 'NOT_SERVING');
      h.clock.advance(INTERVAL);
      await h.done(2);
      assert.equal(a.hcFailed, false);
      h.clock.advance(INTERVAL);
      await h.done(3);
      assert.equal(a.hcFailed, true);
      assert.equal(h.changes, 1);
      assert.equal(h.hc.hostInfo(a)?.lastFailure, 'serving status NOT_SERVING');
      up.health.setStatus('orders.v1.Orders', 'SERVING');
      h.clock.advance(INTERVAL);
      await h.done(4);
      assert.equal(a.hcFailed, true);
      h.clock.advance(INTERVAL);
      await h.done(5);
      assert.equal(a.hcFailed, false);
      assert.equal(h.changes, 2);
      assert.deepEqual(h.counters(), { attempt: 5, success: 3, failure: 2, network_failure: 0, timeout: 0 });
      assert.deepEqual(up.authorities, [CLUSTER, CLUSTER, CLUSTER, CLUSTER, CLUSTER]);
    } finally {
      await h.hc.close();
      await up.close();
    }
  });

  test('sees a host that recovers from UNAVAILABLE at the next check (a fresh channel, no reconnect backoff)', async () => {
    const up = await grpcUpstream({ '': 'SERVING' });
    const proxy = await countingProxy(up.port);
    const h = harness(config({ kind: 'grpc', serviceName: '', authority: undefined }, { unhealthyThreshold: 1, healthyThreshold: 1 }));
    const a = host(proxy.port);
    try {
      proxy.reset = true;
      h.hc.setHosts([a]);
      await h.done(1);
      assert.equal(a.hcFailed, true);
      assert.match(h.hc.hostInfo(a)!.lastFailure!, /^grpc status UNAVAILABLE/);
      assert.equal(h.counters().network_failure, 1);
      proxy.reset = false;
      h.clock.advance(INTERVAL);
      await h.done(2);
      assert.equal(a.hcFailed, false);
      assert.equal(h.changes, 2);
    } finally {
      await h.hc.close();
      await proxy.close();
      await up.close();
    }
  });

  test('fails on an unknown service name (NOT_FOUND) and sends the configured authority', async () => {
    const up = await grpcUpstream({ '': 'SERVING' });
    const h = harness(config({ kind: 'grpc', serviceName: 'nope.v1.Nope', authority: 'orders.mesh' }, { unhealthyThreshold: 1 }));
    const a = host(up.port);
    try {
      h.hc.setHosts([a]);
      await h.done(1);
      assert.equal(a.hcFailed, true);
      assert.deepEqual(h.counters(), { attempt: 1, success: 0, failure: 1, network_failure: 0, timeout: 0 });
      assert.match(h.hc.hostInfo(a)!.lastFailure!, /^grpc status NOT_FOUND/);
      assert.deepEqual(up.authorities, ['orders.mesh']);
    } finally {
      await h.hc.close();
      await up.close();
    }
  });
});

// --- all transports ----------------------------------------------------------------------

const KINDS: [string, Check][] = [
  ['http1', httpCheck()],
  ['http2', httpCheck('/healthz', { codec: 'http2' })],
  ['grpc', { kind: 'grpc', serviceName: '', authority: undefined }],
];

describe('HealthChecker: reused connections', () => {
  for (const codec of ['http1', 'http2'] as const) {
    test(`${codec}: a kept-alive connection the server dropped as the check went out is retried once on a fresh one`, async () => {
      const up = codec === 'http1' ? await h1Upstream() : await h2Upstream();
      up.killReused = true;
      const h = harness(config(httpCheck('/healthz', { codec }), { unhealthyThreshold: 1 }));
      const a = host(up.port);
      try {
        h.hc.setHosts([a]);
        await h.done(1);
        for (let i = 2; i <= 3; i++) {
          h.clock.advance(INTERVAL);
          await h.done(i);
        }
        assert.deepEqual(h.counters(), { attempt: 3, success: 3, failure: 0, network_failure: 0, timeout: 0 });
        assert.equal(up.accepted, 3, 'checks 2 and 3 each retried on a new connection');
        assert.equal(up.seen.length, 3);
        assert.equal(h.changes, 0);
      } finally {
        await h.hc.close();
        await up.close();
      }
    });
  }
});

describe('HealthChecker: timeouts and refused connections', () => {
  for (const [name, check] of KINDS) {
    test(`${name}: a silent server fails a check only once the clock passes timeout, and loses its connection`, async () => {
      const up = await silentUpstream();
      const h = harness(config(check, { unhealthyThreshold: 1 }));
      const a = host(up.port);
      try {
        h.hc.setHosts([a]);
        await until(() => up.bytes > 0, 'the check reached the server');
        assert.equal(h.counters().attempt, 1);
        h.clock.advance(TIMEOUT - 1);
        assert.deepEqual(h.counters(), { attempt: 1, success: 0, failure: 0, network_failure: 0, timeout: 0 });
        assert.equal(a.hcFailed, false);
        h.clock.advance(1);
        assert.deepEqual(h.counters(), { attempt: 1, success: 0, failure: 1, network_failure: 1, timeout: 1 });
        assert.equal(a.hcFailed, true);
        assert.equal(h.changes, 1);
        assert.equal(h.hc.hostInfo(a)?.lastFailure, `timed out after ${TIMEOUT}ms`);
        if (name !== 'grpc') {
          await until(() => up.open === 0, 'the timed-out connection closed');
          assert.equal(up.accepted, 1);
        }
        // The next check starts `interval` after the timeout, and times out the same way.
        h.clock.advance(INTERVAL - 1);
        assert.equal(h.counters().attempt, 1);
        h.clock.advance(1);
        assert.equal(h.counters().attempt, 2);
        if (name !== 'grpc') await until(() => up.accepted === 2, 'a fresh connection for the next check');
        h.clock.advance(TIMEOUT);
        assert.deepEqual(h.counters(), { attempt: 2, success: 0, failure: 2, network_failure: 2, timeout: 2 });
        // gRPC keeps its one channel (and its pending connection) across timeouts.
        if (name === 'grpc') assert.equal(up.accepted, 1);
      } finally {
        await h.hc.close();
        await up.close();
      }
    });

    test(`${name}: a refused connection is a network failure`, async () => {
      const port = await closedPort();
      const h = harness(config(check, { unhealthyThreshold: 1 }));
      const a = host(port);
      try {
        h.hc.setHosts([a]);
        await h.done(1);
        assert.deepEqual(h.counters(), { attempt: 1, success: 0, failure: 1, network_failure: 1, timeout: 0 });
        assert.equal(a.hcFailed, true);
        assert.equal(h.changes, 1);
        h.clock.advance(INTERVAL);
        await h.done(2);
        assert.equal(h.counters().network_failure, 2);
        assert.equal(h.changes, 1);
      } finally {
        await h.hc.close();
      }
    });
  }

  test('http1: a check that timed out on a kept-alive connection is not sent again, so a recovered host passes at the next checks', async () => {
    // Checks 2 and 3 hang; check 2 goes out on the connection check 1 left alive. The aborted
    // check must not be retried: a stray retry would hang too and hold the agent's one socket.
    const up = await h1Upstream();
    up.hang = [2, 3];
    const h = harness(config(httpCheck(), { unhealthyThreshold: 2, healthyThreshold: 2 }));
    const a = host(up.port);
    try {
      h.hc.setHosts([a]);
      await h.done(1);
      for (const i of [2, 3]) {
        h.clock.advance(INTERVAL);
        await until(() => up.received === i, `check ${i} reached the server`, 5000);
        h.clock.advance(TIMEOUT);
        await h.done(i);
      }
      assert.equal(a.hcFailed, true);
      assert.equal(h.changes, 1);
      h.clock.advance(INTERVAL);
      await h.done(4);
      assert.equal(a.hcFailed, true, 'one pass of healthy_threshold 2');
      h.clock.advance(INTERVAL);
      await h.done(5);
      assert.equal(a.hcFailed, false);
      assert.equal(h.changes, 2);
      assert.deepEqual(h.counters(), { attempt: 5, success: 3, failure: 2, network_failure: 2, timeout: 2 });
      assert.equal(up.received, 5, 'one request per check, no stray retry');
      assert.equal(up.accepted, 3, 'checks 1-2, 3, 4-5: a timeout closes the connection');
    } finally {
      await h.hc.close();
      await up.close();
    }
  });
});

describe('HealthChecker: host set changes and close', () => {
  for (const [name, check] of KINDS) {
    test(`${name}: removing a host stops its checks and closes its connection`, async () => {
      const grpcUp = name === 'grpc' ? await grpcUpstream({ '': 'SERVING' }) : undefined;
      const httpUp = name === 'http1' ? await h1Upstream() : name === 'http2' ? await h2Upstream() : undefined;
      const target = grpcUp?.port ?? httpUp!.port;
      const pa = await countingProxy(target);
      const pb = await countingProxy(target);
      const h = harness(config(check));
      const a = host(pa.port);
      const b = host(pb.port);
      try {
        h.hc.setHosts([a, b]);
        await h.done(2);
        assert.equal(pb.accepted, 1);
        assert.equal(h.healthy(), 2);
        h.hc.setHosts([a]);
        assert.equal(h.hc.hostInfo(b), undefined);
        assert.equal(h.healthy(), 1);
        await until(() => pb.open === 0, "the removed host's connection closed");
        for (let i = 1; i <= 3; i++) {
          h.clock.advance(INTERVAL);
          await h.done(2 + i);
        }
        assert.equal(pb.accepted, 1, 'no new connection to the removed host');
        assert.equal(pa.accepted, 1, 'the kept host reuses its connection');
        assert.equal(h.counters().success, 5);
        assert.equal(h.changes, 0);
      } finally {
        await h.hc.close();
        await pa.close();
        await pb.close();
        await grpcUp?.close();
        await httpUp?.close();
      }
    });
  }

  test('removing a host mid-check abandons the check without counting it; close() cancels every timer', async () => {
    const silent = await silentUpstream();
    const up = await h1Upstream();
    const h = harness(config(httpCheck(), { unhealthyThreshold: 1 }));
    const stuck = host(silent.port);
    const fine = host(up.port);
    try {
      h.hc.setHosts([stuck, fine]);
      await until(() => silent.bytes > 0 && h.counters().success === 1, 'both checks under way');
      h.hc.setHosts([fine]);
      await until(() => silent.open === 0, 'the abandoned check closed its connection');
      h.clock.advance(TIMEOUT);
      assert.deepEqual(h.counters(), { attempt: 2, success: 1, failure: 0, network_failure: 0, timeout: 0 });
      assert.equal(stuck.hcFailed, false);
      assert.equal(h.clock.pending(), 1, "only the kept host's interval timer");
      await h.hc.close();
      assert.equal(h.clock.pending(), 0);
      assert.equal(h.healthy(), 0);
      await until(() => up.open === 0, 'close() closed the kept connection');
      h.clock.advance(10 * INTERVAL);
      assert.equal(h.counters().attempt, 2);
      h.hc.setHosts([fine]);
      assert.equal(h.counters().attempt, 2, 'a closed checker ignores setHosts');
      assert.equal(h.changes, 0);
    } finally {
      await h.hc.close();
      await silent.close();
      await up.close();
    }
  });

  test('a throwing onChange is logged, never thrown out of a check', async () => {
    const port = await closedPort();
    const clock = new FakeClock();
    const stats = new Stats({ clock });
    const logs: Record<string, unknown>[] = [];
    const sink = new Writable({ write(chunk, _enc, cb) { logs.push(JSON.parse(String(chunk))); cb(); } });
    const hc = new HealthChecker({ cluster: CLUSTER, config: config(httpCheck(), { unhealthyThreshold: 1 }), clock, log: pino({ level: 'info' }, sink), stats, onChange: () => { throw new Error('boom'); } });
    const a = host(port);
    try {
      hc.setHosts([a]);
      await until(() => a.hcFailed, 'host failed');
      await until(() => logs.some((l) => l['level'] === 50), 'error log');
      clock.advance(INTERVAL);
      await until(() => stats.counter(`cluster.${CLUSTER}.health_check.failure`).value === 2, 'second check');
    } finally {
      await hc.close();
    }
  });
});

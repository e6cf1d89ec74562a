import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import type { GreeterClient } from '../../shared/src/sample-app/greeter';
import { API_VERSION } from '../../shared/src/config/types';
import { eventually } from '../support/ads-client';
import { ATTEMPT_HEADER, FaultUpstream, grpcTimeoutMs } from '../support/fault-upstream';
import { h1Request } from '../support/sidecar-apps';
import { Mesh } from '../support/sidecar-mesh';

/**
 * Resilience as deployed: `skein control-plane` and one client `skein sidecar` as processes; the
 * upstreams are FaultUpstreams in this process, registered as static Service endpoints, so the
 * client sidecar talks to them directly and their counters are the ground truth for what reached
 * an endpoint. Each test owns its service (so its cluster's stats are its own):
 *
 *   flaky      grpc  f1            30% UNAVAILABLE; retry 3 on unavailable
 *   trio       grpc  t1 t2 t3      one killed under load; retry 3 on connect-failure/refused-stream/reset/unavailable
 *   odd        http  w1 w2 w3      outlier detection: consecutive5xx 3, 2s ejection, max 50%
 *   doomed     grpc  d1            100% UNAVAILABLE; retry 5; budget 20% / min 3
 *   upload     http  p1            resets every request; no retry policy
 *   resetter   grpc  r1            resets every request (INTERNAL_ERROR); no retry policy
 *   slowpoke   grpc  s1            holds; a rule with timeout 500ms (header x-route-timeout) and one without
 *   guarded    grpc  g1            holds; circuitBreaker.maxRequests 3
 *
 * Test clients are grpc-js with its own retries off, so every retry seen is the sidecar's.
 */
const CLIENT = 'e2e-resilience-client';
const FAST_BACKOFF = { baseInterval: '2ms', maxInterval: '20ms' };
const UNAVAILABLE = grpc.status.UNAVAILABLE;
const DEADLINE_EXCEEDED = grpc.status.DEADLINE_EXCEEDED;

const PORTS = { flaky: 50061, trio: 50062, odd: 8081, doomed: 50063, upload: 8082, resetter: 50064, slowpoke: 50065, guarded: 50066 } as const;
type Svc = keyof typeof PORTS;
const HTTP_SERVICES: ReadonlySet<Svc> = new Set<Svc>(['odd', 'upload']);
const authority = (s: Svc): string => `${s}:${PORTS[s]}`;

function service(name: Svc, protocol: 'grpc' | 'http', ups: FaultUpstream[]): unknown {
  return {
    apiVersion: API_VERSION, kind: 'Service', metadata: { name },
    spec: { protocol, ports: [{ name: protocol, port: PORTS[name] }], endpoints: ups.map((u) => ({ address: '127.0.0.1', port: u.port })) },
  };
}
function grpcRoute(name: Svc, rules: Record<string, unknown>[]): unknown {
  return { apiVersion: API_VERSION, kind: 'GRPCRoute', metadata: { name }, spec: { parentRefs: [{ name }], rules: rules.map((r) => ({ backendRefs: [{ name }], ...r })) } };
}
function policy(name: Svc, spec: Record<string, unknown>): unknown {
  return { apiVersion: API_VERSION, kind: 'BackendPolicy', metadata: { name }, spec: { targetRef: { kind: 'Service', name }, ...spec } };
}

/** How one call ended, as the test client saw it. `attempts` is the x-skein-attempt-count response header. */
interface CallResult { ok: boolean; code: number; reason: string | undefined; attempts: number | undefined; details: string; backend: string | undefined; ms: number }

/**
 * One unary SayHello. `deadlineMs` undefined sends no deadline; the call is then cancelled after
 * `guardMs` (CANCELLED), so a missing sidecar timeout fails the test instead of hanging it.
 */
function hello(c: GreeterClient, opts: { deadlineMs?: number; md?: grpc.Metadata; guardMs?: number } = { deadlineMs: 10_000 }): Promise<CallResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let headers: grpc.Metadata | undefined;
    let guard: NodeJS.Timeout | undefined;
    const callOpts: grpc.CallOptions = opts.deadlineMs === undefined ? {} : { deadline: Date.now() + opts.deadlineMs };
    const first = (md: grpc.Metadata | undefined, key: string): string | undefined => {
      const v = md?.get(key)[0];
      return v === undefined ? undefined : String(v);
    };
    const call = c.SayHello({ name: 'x' }, opts.md ?? new grpc.Metadata(), callOpts, (err, reply) => {
      if (guard) clearTimeout(guard);
      const attempts = first(headers, ATTEMPT_HEADER) ?? first(err?.metadata, ATTEMPT_HEADER);
      resolve({
        ok: err === null, code: err?.code ?? 0, reason: first(err?.metadata, 'x-skein-reason') ?? first(headers, 'x-skein-reason'),
        attempts: attempts === undefined ? undefined : Number(attempts), details: err?.details ?? '', backend: reply?.backend, ms: performance.now() - t0,
      });
    });
    call.on('metadata', (md: grpc.Metadata) => { headers = md; });
    if (opts.deadlineMs === undefined) guard = setTimeout(() => call.cancel(), opts.guardMs ?? 10_000);
  });
}

/** `n` calls, `concurrency` at a time. */
async function calls(c: GreeterClient, n: number, concurrency: number): Promise<CallResult[]> {
  const out: CallResult[] = [];
  let next = 0;
  const worker = async () => { while (next < n) { next++; out.push(await hello(c)); } };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

interface StatsJson { counters: Record<string, number>; gauges: Record<string, number> }
interface AdminHost { address: string; ejected?: boolean; hcFailed?: boolean }
interface AdminCluster { name: string; hosts: AdminHost[] }

function stat(s: StatsJson, kind: 'counters' | 'gauges', name: string): number {
  const v = s[kind][name];
  assert.ok(v !== undefined, `${kind} ${name} is missing; have: ${Object.keys(s[kind]).join(', ')}`);
  return v;
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const count = <T>(xs: T[], f: (x: T) => boolean): number => xs.filter(f).length;
const summary = (rs: CallResult[]): string => {
  const m = new Map<string, number>();
  for (const r of rs) { const k = `${r.code}/${r.reason ?? '-'}/${r.attempts ?? '?'}`; m.set(k, (m.get(k) ?? 0) + 1); }
  return JSON.stringify([...m].sort());
};

describe('resilience end to end: retries, kills, outliers, budgets, resets, deadlines, breakers (processes)', () => {
  let mesh: Mesh;
  let client: SidecarProcess;
  const up = {} as Record<'f1' | 't1' | 't2' | 't3' | 'w1' | 'w2' | 'w3' | 'd1' | 'p1' | 'r1' | 's1' | 'g1', FaultUpstream>;
  const greeters = new Map<Svc, GreeterClient>();
  const greeter = (s: Svc): GreeterClient => greeters.get(s)!;

  const stats = async (filter: string): Promise<StatsJson> => (await (await fetch(`http://${client.admin}/stats?filter=${encodeURIComponent(filter)}`)).json()) as StatsJson;
  const clusterHost = async (cluster: string, u: FaultUpstream): Promise<AdminHost> => {
    const cs = (await (await fetch(`http://${client.admin}/clusters`)).json()) as AdminCluster[];
    const h = cs.find((c) => c.name === cluster)?.hosts.find((x) => x.address === u.address);
    assert.ok(h, `/clusters has no host ${u.address} in ${cluster}`);
    return h;
  };
  /** The cluster's stats once its attempt counter caught up with what the upstreams received. */
  const settled = (cluster: string, reached: () => number): Promise<StatsJson> => eventually(async () => {
    const s = await stats(`cluster.${cluster}.`);
    const total = stat(s, 'counters', `cluster.${cluster}.upstream_rq_total`);
    if (total !== reached()) throw new Error(`cluster.${cluster}.upstream_rq_total is ${total}, the upstreams received ${reached()}`);
    return s;
  }, `${cluster} stats to settle`, 5000);

  before(async () => {
    mesh = await Mesh.start('resilience-e2e');
    for (const name of Object.keys({ f1: 0, t1: 0, t2: 0, t3: 0, w1: 0, w2: 0, w3: 0, d1: 0, p1: 0, r1: 0, s1: 0, g1: 0 }) as (keyof typeof up)[]) {
      up[name] = mesh.app(await FaultUpstream.start({ name }));
    }
    up.d1.failPercent = 100;
    up.d1.delayMs = 20;
    up.p1.reset = 2; // HTTP/1.1: the connection is reset after the request arrived
    up.r1.reset = 2; // NGHTTP2_INTERNAL_ERROR
    up.s1.hold = true;
    await mesh.apply([
      service('flaky', 'grpc', [up.f1]),
      grpcRoute('flaky', [{ retry: { retries: 3, retryOn: ['unavailable'], backoff: FAST_BACKOFF } }]),
      service('trio', 'grpc', [up.t1, up.t2, up.t3]),
      grpcRoute('trio', [{ retry: { retries: 3, retryOn: ['connect-failure', 'refused-stream', 'reset', 'unavailable'], backoff: FAST_BACKOFF } }]),
      // Four load workers may each hold a retry at once: room for all of them.
      policy('trio', { retryBudget: { budgetPercent: 100, minRetryConcurrency: 10 }, circuitBreaker: { maxRetries: 10 } }),
      service('odd', 'http', [up.w1, up.w2, up.w3]),
      policy('odd', { outlierDetection: { consecutive5xx: 3, interval: '100ms', baseEjectionTime: '2s', maxEjectionPercent: 50 } }),
      service('doomed', 'grpc', [up.d1]),
      grpcRoute('doomed', [{ retry: { retries: 5, retryOn: ['unavailable'], backoff: FAST_BACKOFF } }]),
      policy('doomed', { retryBudget: { budgetPercent: 20, minRetryConcurrency: 3 } }),
      service('upload', 'http', [up.p1]),
      service('resetter', 'grpc', [up.r1]),
      service('slowpoke', 'grpc', [up.s1]),
      grpcRoute('slowpoke', [
        { name: 'route-timeout', matches: [{ headers: [{ name: 'x-route-timeout', type: 'Present' }] }], timeout: '500ms' },
        { name: 'no-timeout' },
      ]),
      service('guarded', 'grpc', [up.g1]),
      policy('guarded', { circuitBreaker: { maxRequests: 3 } }),
    ]);
    client = await mesh.clientSidecar(CLIENT);
    const hostsOf: Record<Svc, FaultUpstream[]> = {
      flaky: [up.f1], trio: [up.t1, up.t2, up.t3], odd: [up.w1, up.w2, up.w3], doomed: [up.d1],
      upload: [up.p1], resetter: [up.r1], slowpoke: [up.s1], guarded: [up.g1],
    };
    for (const [name, ups] of Object.entries(hostsOf) as [Svc, FaultUpstream[]][]) {
      await mesh.hosts(client, name, ups.map((u) => u.address));
      if (!HTTP_SERVICES.has(name)) greeters.set(name, mesh.greeter(client, authority(name), { 'grpc.enable_retries': 0 }));
    }
  });

  after(async () => { await mesh?.stop(); });

  test('retries lift a 30%-failing endpoint to 100% success over 1000 calls; attempts = calls + retries, within budget', async () => {
    // One caller at a time: the upstream's failures are never two answers in a row at 30%, so
    // each failed first try is followed by a successful retry. (With independent 30% failures
    // and 3 retries, 0.3^4 = 0.8% of calls would still fail; with concurrent callers a call's
    // attempts can all land on failing answers.)
    const f1 = up.f1;
    f1.failPercent = 30;
    const N = 1000;
    const rs = await calls(greeter('flaky'), N, 1);
    const ok = count(rs, (r) => r.ok);
    assert.equal(ok, N, `only ${ok} of ${N} succeeded: ${summary(rs)}`);
    const s = await settled('flaky', () => f1.requests);
    const retries = stat(s, 'counters', 'cluster.flaky.upstream_rq_retry');
    // The upstream failed exactly 30% of what it answered: the retries really had work to do.
    assert.equal(f1.failed, Math.floor((f1.requests * 30) / 100));
    assert.ok(f1.failed >= 300);
    assert.equal(f1.requests, N + retries, 'every attempt the upstream saw is a first try or a counted retry');
    assert.equal(retries, f1.failed, 'each failed attempt was retried once');
    assert.equal(sum(rs.map((r) => r.attempts ?? NaN)), f1.requests, 'x-skein-attempt-count on every response adds up to the attempts made');
    assert.equal(count(rs, (r) => r.attempts === 2), retries);
    assert.deepEqual([...f1.byAttempt].sort(), [['1', N], ['2', retries]], 'each upstream request carries its attempt number');
    assert.equal(stat(s, 'counters', 'cluster.flaky.upstream_rq_retry_success'), retries);
    assert.equal(stat(s, 'counters', 'cluster.flaky.upstream_rq_retry_overflow'), 0, 'one retry at a time is within any budget');
  });

  test('loses no idempotent call when one of three endpoints is killed under load (connections destroyed mid-request)', async () => {
    const { t1, t2, t3 } = up;
    const c = greeter('trio');
    const rs: CallResult[] = [];
    let stop = false;
    const waiters: { n: number; resolve: () => void }[] = [];
    const reached = (n: number) => new Promise<void>((resolve) => { if (rs.length >= n) resolve(); else waiters.push({ n, resolve }); });
    const worker = async () => {
      while (!stop) {
        rs.push(await hello(c));
        for (const w of waiters.splice(0)) if (rs.length >= w.n) w.resolve(); else waiters.push(w);
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    await reached(150);
    // Catch at least one request in flight on t3, then kill it with its connections. Wait until
    // every other response of t3 is complete: a response cut after its headers went downstream
    // is committed and cannot be retried (that is lost by any proxy).
    t3.hold = true;
    await t3.waitFor((u) => u.heldCount >= 1 && u.open === u.heldCount, 'a request in flight on t3, and no response half-sent');
    const inFlightAtKill = t3.open;
    const atKill = rs.length;
    await t3.close();
    await reached(atKill + 300);
    stop = true;
    await Promise.all(workers);
    assert.deepEqual(rs.filter((r) => !r.ok), [], `failed calls: ${summary(rs)}`);
    assert.ok(t3.succeeded > 0, 't3 served before it was killed');
    assert.ok(inFlightAtKill >= 1);
    assert.ok(count(rs, (r) => (r.attempts ?? 0) > 1) >= inFlightAtKill, `the call(s) in flight on t3 were retried: ${summary(rs)}`);
    assert.ok(t1.succeeded + t2.succeeded + t3.succeeded === rs.length, 'each call was answered once, by one endpoint');
    const s = await stats('cluster.trio.');
    assert.ok(stat(s, 'counters', 'cluster.trio.upstream_rq_retry') >= inFlightAtKill);
    assert.equal(stat(s, 'counters', 'cluster.trio.upstream_rq_retry_overflow'), 0);
  });

  test('ejects an endpoint after 3 consecutive 5xx (no traffic while ejected) and takes it back after the ejection time', async () => {
    const { w1, w2, w3 } = up;
    const get = () => h1Request(client.outbound, { host: authority('odd'), path: '/' });
    w3.failPercent = 100;
    for (let i = 0; i < 30 && w3.requests < 3; i++) await get();
    assert.equal(w3.requests, 3, 'round robin reached w3 three times');
    assert.equal(w3.failed, 3);
    await eventually(async () => ((await clusterHost('odd', w3)).ejected === true ? true : undefined), 'w3 to be ejected');
    assert.equal((await clusterHost('odd', w1)).ejected, false);
    const others = w1.requests + w2.requests;
    const N = 20;
    for (let i = 0; i < N; i++) {
      const r = await get();
      assert.equal(r.status, 200, `call ${i} while w3 is ejected: ${r.status} ${r.body.toString()}`);
    }
    assert.equal(w3.requests, 3, 'no call reached w3 while it was ejected');
    assert.equal(w1.requests + w2.requests - others, N);

    w3.failPercent = 0;
    await eventually(async () => ((await clusterHost('odd', w3)).ejected === false ? true : undefined), 'w3 to return after its 2s ejection', 15_000);
    for (let i = 0; i < 30; i++) assert.equal((await get()).status, 200);
    assert.ok(w3.requests - 3 >= 5, `w3 got ${w3.requests - 3} of 30 calls after it returned`);
    assert.equal(w3.succeeded, w3.requests - 3);
    const s = await stats('cluster.odd.');
    assert.equal(stat(s, 'counters', 'cluster.odd.outlier_detection.ejections_total'), 1);
  });

  test('caps retries by the budget when every attempt fails: attempts = calls + retries, overflow > 0, at most 3 retries at once', async () => {
    const d1 = up.d1;
    const N = 100;
    const rs = await calls(greeter('doomed'), N, 10);
    assert.equal(count(rs, (r) => r.code === UNAVAILABLE), N, summary(rs));
    const s = await settled('doomed', () => d1.requests);
    const retries = stat(s, 'counters', 'cluster.doomed.upstream_rq_retry');
    const overflow = stat(s, 'counters', 'cluster.doomed.upstream_rq_retry_overflow');
    assert.equal(d1.requests, N + retries);
    assert.equal(d1.byAttempt.get('1'), N);
    assert.ok(rs.every((r) => r.attempts !== undefined && r.attempts >= 1 && r.attempts <= 6), `attempt counts: ${summary(rs)}`);
    assert.equal(sum(rs.map((r) => r.attempts!)), d1.requests);
    assert.ok(overflow > 0, 'ten callers wanting retries at once exceed max(3, 20% of 10)');
    assert.equal(overflow, count(rs, (r) => r.attempts! < 6), 'a call stops early exactly when a retry was refused');
    assert.ok(retries < N * 5);
    // Each retry holds a budget slot from its decision to its end; at most max(3, 20% x 10) at once.
    assert.ok(d1.peakOpenRetries <= 3, `${d1.peakOpenRetries} retries were at the upstream at once`);
    for (const r of rs) assert.ok(r.reason === undefined || r.reason === 'retry_budget_exhausted', `reason ${r.reason}`);
  });

  test('never sends a request twice without a retry policy: POSTs and gRPC calls reset by the upstream get upstream_reset', async () => {
    const { p1, r1 } = up;
    const sizes = [10, 1000, 100_000];
    for (const n of sizes) {
      const r = await h1Request(client.outbound, { host: authority('upload'), method: 'POST', path: '/upload', body: Buffer.alloc(n, 7) });
      assert.equal(r.status, 503, r.body.toString());
      assert.equal(r.headers['x-skein-reason'], 'upstream_reset');
      assert.equal(r.headers[ATTEMPT_HEADER], '1');
    }
    assert.equal(p1.requests, sizes.length, 'each POST reached the upstream exactly once');
    assert.deepEqual(p1.postBodies, sizes, 'and arrived whole before the reset');
    assert.equal(p1.resets, sizes.length);

    for (let i = 0; i < 5; i++) {
      const r = await hello(greeter('resetter'));
      assert.equal(r.code, UNAVAILABLE, r.details);
      assert.equal(r.reason, 'upstream_reset');
    }
    assert.equal(r1.requests, 5);
    assert.equal(r1.resets, 5);
  });

  test('honours deadlines: the caller\'s (shrunk grpc-timeout upstream) and the route timeout (upstream_timeout)', async () => {
    const s1 = up.s1;
    const c = greeter('slowpoke');
    const a = await hello(c, { deadlineMs: 300 });
    assert.equal(a.code, DEADLINE_EXCEEDED, `${a.reason} ${a.details}`);
    assert.ok(a.reason === undefined || a.reason === 'deadline_exceeded', `reason ${a.reason}`);
    assert.equal(s1.requests, 1);
    const sent = grpcTimeoutMs(s1.seen[0]!.grpcTimeout);
    assert.ok(sent !== undefined && sent > 0 && sent <= 300, `the upstream saw grpc-timeout ${s1.seen[0]!.grpcTimeout}`);
    await s1.waitFor((u) => u.open === 0, 'the sidecar to cancel the upstream request after the deadline');

    const md = new grpc.Metadata();
    md.set('x-route-timeout', '1');
    const b = await hello(c, { md });
    assert.equal(b.code, DEADLINE_EXCEEDED, `${b.reason} ${b.details}`);
    assert.equal(b.reason, 'upstream_timeout');
    assert.ok(b.ms >= 499, `the route timeout fired after ${b.ms} ms`);
    assert.equal(s1.requests, 2);
    await s1.waitFor((u) => u.open === 0, 'the sidecar to cancel the upstream request after the route timeout');
  });

  test('circuit breaker maxRequests 3: the 4th concurrent call fails fast, exactly 3 reach the upstream, all 3 succeed on release', async () => {
    const g1 = up.g1;
    const c = greeter('guarded');
    g1.hold = true;
    const held = [0, 1, 2].map(() => hello(c));
    await g1.waitFor((u) => u.open === 3, '3 requests held at the upstream');
    await eventually(async () => (stat(await stats('cluster.guarded.'), 'gauges', 'cluster.guarded.circuit_breakers.remaining_rq') === 0 ? true : undefined), 'remaining_rq to be 0');
    const fourth = await hello(c);
    assert.equal(fourth.code, UNAVAILABLE, fourth.details);
    assert.equal(fourth.reason, 'circuit_breaker_max_requests');
    assert.equal(g1.requests, 3, 'the refused call never reached the upstream');
    g1.release();
    const rs = await Promise.all(held);
    assert.deepEqual(rs.map((r) => [r.ok, r.backend]), [[true, 'g1'], [true, 'g1'], [true, 'g1']]);
    g1.hold = false;
    assert.equal((await hello(c)).ok, true, 'the breaker closes once requests finish');
    assert.equal(g1.requests, 4);
    await eventually(async () => (stat(await stats('cluster.guarded.'), 'gauges', 'cluster.guarded.circuit_breakers.remaining_rq') === 3 ? true : undefined), 'remaining_rq to be 3 again');
  });
});

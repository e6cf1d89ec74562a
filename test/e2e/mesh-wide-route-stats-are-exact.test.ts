/**
 * Mesh-wide route stats (issue 12 §3), end to end: three client sidecars send a known workload
 * through a canary split; each reports its per route × version counts and latency histograms to
 * the control plane every second over its report stream. GET /v1/stats/routes then gives the
 * exact request counts of all the clients together, per version, and a p50/p95/p99 within the
 * histogram's precision of the exact percentiles of every request's latency, as the clients'
 * access logs recorded it (the same measurement).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../support/ads-client';
import { call } from '../support/skein';
import { api } from '../support/mesh-api';
import { routedLines, sayHellos, SPLIT_ROUTE, startCanaryMesh } from '../support/canary-mesh';
import type { CanaryMesh } from '../support/canary-mesh';
import type { RouteStatsView } from '../../control-plane/src/telemetry/route-stats-store';

/** Nearest-rank percentile (HdrHistogram's definition) of ms values. */
function exact(ms: readonly number[], p: number): number {
  const sorted = [...ms].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!;
}

describe('mesh-wide route stats are exact', () => {
  let m: CanaryMesh;
  const CALLS = [150, 90, 60];

  before(async () => { m = await startCanaryMesh('route-stats', [80, 20], CALLS.length); });
  after(async () => { await m?.mesh.stop(); });

  test('counts per version are the sum over every client; the merged p99 is the p99 of all samples within the precision', async () => {
    const failed = await Promise.all(m.clients.map((c, i) => sayHellos(c.greeter, CALLS[i]!)));
    assert.deepEqual(failed, CALLS.map(() => 0));
    const total = CALLS.reduce((a, b) => a + b, 0);
    const lines = await eventually(() => {
      const all = m.clients.flatMap((c) => routedLines(c.accessLog));
      return all.length >= total ? all : undefined;
    }, `${total} routed lines in the clients' access logs`);
    assert.equal(lines.length, total);
    const view = await eventually(async () => {
      const v = await api<RouteStatsView & { window: string }>(m.mesh.cp.api, 'GET', '/v1/stats/routes?window=15m');
      const n = v.routes.filter((r) => r.route === SPLIT_ROUTE).reduce((a, r) => a + r.requests, 0);
      return n >= total ? v : undefined;
    }, `the control plane to have all ${total} requests`);
    const rows = view.routes.filter((r) => r.route === SPLIT_ROUTE);
    assert.deepEqual(rows.map((r) => r.cluster), ['greeter/v1', 'greeter/v2']);
    for (const r of rows) {
      const mine = lines.filter((l) => l.cluster === r.cluster);
      assert.equal(r.requests, mine.length, `${r.cluster}: requests`);
      assert.equal(r.successes, mine.filter((l) => l.status === 200 && l.grpcStatus === 0).length, `${r.cluster}: successes`);
      assert.deepEqual([r.service, r.version, r.weight, r.successRate], ['greeter', r.cluster.slice(8), r.cluster === 'greeter/v1' ? 80 : 20, 1]);
      const senders = m.clients.filter((c) => routedLines(c.accessLog).some((l) => l.cluster === r.cluster)).map((c) => c.sidecar.nodeId);
      assert.deepEqual(r.proxies.map((p) => p.node), senders, `${r.cluster}: the proxies that sent to it`);
      const tol = 10 ** -view.significantDigits;
      const durations = mine.map((l) => l.durationMs);
      for (const p of [50, 95, 99] as const) {
        const want = exact(durations, p);
        const got = r.latencyMs[`p${p}`];
        assert.ok(got >= want && got <= want * (1 + tol) + 0.001, `${r.cluster} p${p}: merged ${got} ms, exact ${want} ms (precision ${tol})`);
      }
      assert.equal(r.latencyMs.max, Math.max(...durations), `${r.cluster}: max`);
    }
    assert.equal(view.significantDigits, 2);
    const reporters = view.proxies.map((p) => p.node);
    for (const n of ['frontend-1', 'frontend-2', 'frontend-3', 'greeter-v1', 'greeter-v2']) assert.ok(reporters.includes(n), `${n} reports (${reporters.join(', ')})`);
    assert.ok(view.proxies.every((p) => p.identity.startsWith('spiffe://skein.local/ns/default/sa/')), 'each reporter by its workload identity');

  });

  test('a bad window is a 422 naming query.window', async () => {
    for (const w of ['1s', '16m', 'soon']) {
      const r = await call(m.mesh.cp.api, 'GET', `/v1/stats/routes?window=${w}`, { anonymous: true });
      assert.equal(r.status, 422, w);
      const err = (r.body as { error: { message: string; details: { path: string }[] } }).error;
      assert.match(err.message, /^query\.window: /);
      assert.deepEqual(err.details.map((d) => d.path), ['query.window']);
    }
    const ok = await call(m.mesh.cp.api, 'GET', '/v1/stats/routes', { anonymous: true });
    assert.equal(ok.status, 200, 'a read: no admin token needed');
    assert.equal((ok.body as { window: string }).window, '1m');
  });
});

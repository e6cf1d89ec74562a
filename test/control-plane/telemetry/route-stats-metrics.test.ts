/** The merged route stats as Prometheus families (control-plane/src/telemetry/route-stats-metrics.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../shared/src/clock';
import { LatencyHistogram } from '../../../sidecar/src/stats/latency-histogram';
import { RouteStatsStore } from '../../../control-plane/src/telemetry/route-stats-store';
import { decodeReport } from '../../../control-plane/src/telemetry/route-stats-service';
import { addRouteStatsMetrics } from '../../../control-plane/src/telemetry/route-stats-metrics';
import { MetricsExposition } from '../../../shared/src/metrics/exposition';

function stats(route: string, cluster: string, latenciesUs: number[], failures: number) {
  const h = new LatencyHistogram(2);
  for (const us of latenciesUs) h.record(us);
  return { route, cluster, requests: String(latenciesUs.length), successes: String(latenciesUs.length - failures), latency_histogram: h.encode(), latency_sum_us: String(h.sumUs), latency_max_us: String(h.maxUs) };
}

test('counters since start, and rate, success rate and latency quantiles over the window, labelled route, service, version', async () => {
  const store = new RouteStatsStore(new FakeClock());
  const lat = Array.from({ length: 100 }, (_, i) => (i + 1) * 100); // 0.1 .. 10 ms
  store.add(decodeReport({ node: 'p1', interval_start_ms: '0', interval_end_ms: '5000', stats: [stats('HTTPRoute/web/split', 'web/v2', lat, 10), stats('default', 'db', [500], 0)] }, 'id'));
  const metrics = new MetricsExposition();
  addRouteStatsMetrics(metrics, store);
  const { body: text } = await metrics.render(undefined);
  const lines = text.split('\n');
  for (const want of [
    '# TYPE skein_route_requests_total counter',
    'skein_route_requests_total{route="HTTPRoute/web/split",service="web",version="v2"} 100',
    'skein_route_requests_total{route="default",service="db",version=""} 1',
    'skein_route_requests_success_total{route="HTTPRoute/web/split",service="web",version="v2"} 90',
    'skein_route_requests_per_second{route="HTTPRoute/web/split",service="web",version="v2"} 20',
    'skein_route_success_rate{route="HTTPRoute/web/split",service="web",version="v2"} 0.9',
    'skein_route_latency_ms{route="HTTPRoute/web/split",service="web",version="v2",quantile="0.5"} 5.023', // 5 ms: the top of its bucket at 2 digits (within 1%)
    'skein_route_latency_ms{route="HTTPRoute/web/split",service="web",version="v2",quantile="0.99"} 9.919',
  ]) assert.ok(lines.includes(want), `missing: ${want}\n${text}`);
  assert.ok(text.endsWith('\n'));
});

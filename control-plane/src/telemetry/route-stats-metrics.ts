/**
 * The merged route stats as Prometheus metric families, for the control plane's /metrics. The
 * whole interface is `routeStatsMetrics(source, windowMs?)`: it returns plain families (name,
 * help, type, samples with labels), which a registry can expose as a custom collector, and
 * `addRouteStatsMetrics(metrics, source)` registers them as collectors on the monitoring exposition
 * (shared/src/metrics/exposition.ts), which formats them.
 *
 *   skein_route_requests_total{route,service,version}           counter  requests reported since the control plane started
 *   skein_route_requests_success_total{route,service,version}   counter  of which succeeded
 *   skein_route_requests_per_second{route,service,version}      gauge    over the window (default 1m)
 *   skein_route_success_rate{route,service,version}             gauge    over the window (absent with no requests)
 *   skein_route_latency_ms{route,service,version,quantile}      gauge    0.5, 0.95, 0.99 over the window, from merged histograms
 *
 * Labels come from config (route names, service and subset names), never from a request.
 */
import type { Collector } from '../../../shared/src/metrics/exposition';
import type { RouteStatsView, RouteTotals } from './route-stats-store';

export interface MetricSample { labels: Readonly<Record<string, string>>; value: number }
export interface MetricFamily { name: string; help: string; type: 'counter' | 'gauge'; samples: MetricSample[] }

/** What the families are read from (RouteStatsStore). */
export interface RouteStatsSource {
  allTimeTotals(): RouteTotals[];
  query(windowMs: number): RouteStatsView;
}

/** The window the gauges cover unless told otherwise (ms). */
export const METRICS_WINDOW_MS = 60_000;

function labelsOf(route: string, cluster: string): Record<string, string> {
  const slash = cluster.indexOf('/');
  return { route, service: slash < 0 ? cluster : cluster.slice(0, slash), version: slash < 0 ? '' : cluster.slice(slash + 1) };
}

export function routeStatsMetrics(source: RouteStatsSource, windowMs = METRICS_WINDOW_MS): MetricFamily[] {
  const totals = source.allTimeTotals();
  const view = source.query(windowMs);
  const win = `over the last ${windowMs / 1000}s, across every reporting proxy`;
  const rows = view.routes.map((r) => ({ r, labels: labelsOf(r.route, r.cluster) }));
  return [
    { name: 'skein_route_requests_total', help: 'Requests per route and destination version, reported by the sidecars since the control plane started.', type: 'counter', samples: totals.map((t) => ({ labels: labelsOf(t.route, t.cluster), value: t.requests })) },
    { name: 'skein_route_requests_success_total', help: 'Successful requests per route and destination version, since the control plane started.', type: 'counter', samples: totals.map((t) => ({ labels: labelsOf(t.route, t.cluster), value: t.successes })) },
    { name: 'skein_route_requests_per_second', help: `Request rate per route and destination version, ${win}.`, type: 'gauge', samples: rows.map(({ r, labels }) => ({ labels, value: r.rps })) },
    { name: 'skein_route_success_rate', help: `Share of successful requests per route and destination version, ${win}.`, type: 'gauge', samples: rows.filter(({ r }) => r.successRate !== null).map(({ r, labels }) => ({ labels, value: r.successRate! })) },
    {
      name: 'skein_route_latency_ms', help: `Request latency quantiles (ms) per route and destination version, ${win}, from merged HdrHistograms.`, type: 'gauge',
      samples: rows.flatMap(({ r, labels }) => ([['0.5', r.latencyMs.p50], ['0.95', r.latencyMs.p95], ['0.99', r.latencyMs.p99]] as const).map(([quantile, value]) => ({ labels: { ...labels, quantile }, value }))),
    },
  ];
}

/**
 * Adds the families to the control plane's /metrics (the monitoring listener's exposition).
 * Each collector reads the store when scraped; prom-client does the formatting.
 */
export function addRouteStatsMetrics(metrics: { add(c: Collector): void }, source: RouteStatsSource, windowMs = METRICS_WINDOW_MS): void {
  const none: RouteStatsSource = { allTimeTotals: () => [], query: (w) => ({ windowMs: w, generatedAt: '', significantDigits: 0, routes: [], proxies: [] }) };
  for (const f of routeStatsMetrics(none, windowMs)) { // the families' names, read without touching the store
    const name = f.name;
    metrics.add({ name, help: f.help, type: f.type, collect: () => routeStatsMetrics(source, windowMs).find((g) => g.name === name)!.samples.map((x) => ({ labels: { ...x.labels }, value: x.value })) });
  }
}

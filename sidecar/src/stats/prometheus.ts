/**
 * The sidecar's /metrics (admin server): collectors over what the proxy already counts, read at
 * scrape time. Request metrics come from RequestMetrics (request-metrics.ts); retries, local
 * replies, circuit breakers and outlier ejections from the stats registry (stats.ts, the same
 * counters /stats shows: nothing is counted twice); xDS and certificate state from providers.
 * Every metric, its labels and the buckets are listed in the README ("Seeing the mesh" > Metrics).
 */
import { MetricsExposition } from '../../../shared/src/metrics/exposition';
import type { Collector, Sample } from '../../../shared/src/metrics/exposition';
import { traceIdOfContext } from './access-log';
import type { RequestMetrics } from './request-metrics';
import type { Stats } from './stats';

/** What the sidecar's xDS client tells the metrics, per type URL. */
export interface XdsMetricsSource {
  /** Type URL -> the accepted version ('' before the first). */
  versions(): Iterable<[string, string]>;
  /** Type URL -> epoch ms of the last accepted update. */
  lastUpdates(): Iterable<[string, number]>;
  /** Type URL -> NACKs sent. */
  nacks(): Iterable<[string, number]>;
}

export interface SidecarMetricsSources {
  requests: RequestMetrics;
  stats: Stats;
  xds: XdsMetricsSource;
  /** The workload certificate's notAfter (epoch ms), when the sidecar has one. */
  certNotAfter: () => number | undefined;
}

/** Counters of the stats registry exported with labels parsed from their names: `<scope>.<name>.<stat>`. */
interface StatFamily { name: string; help: string; type: 'counter' | 'gauge'; scope: 'route' | 'cluster'; label: string; stats: Record<string, Record<string, string>> }

const LOCAL_REPLY = 'local_reply.';

const FAMILIES: readonly StatFamily[] = [
  { name: 'skein_retries_total', help: 'Retries the router made, by route (route.<r>.rq_retry).', type: 'counter', scope: 'route', label: 'route', stats: { rq_retry: {} } },
  { name: 'skein_upstream_retries_total', help: 'Retry outcomes per cluster: success, overflow (budget or max_retries), limit_exceeded.', type: 'counter', scope: 'cluster', label: 'cluster', stats: { upstream_rq_retry_success: { outcome: 'success' }, upstream_rq_retry_overflow: { outcome: 'overflow' }, upstream_rq_retry_limit_exceeded: { outcome: 'limit_exceeded' } } },
  { name: 'skein_circuit_breaker_overflows_total', help: 'Requests or connections a circuit breaker refused, by cluster and resource.', type: 'counter', scope: 'cluster', label: 'cluster', stats: { upstream_rq_pending_overflow: { resource: 'pending_requests' }, upstream_rq_overflow: { resource: 'requests' }, upstream_cx_overflow: { resource: 'connections' } } },
  { name: 'skein_circuit_breaker_open', help: '1 while a circuit breaker is at its limit (open), by cluster and resource.', type: 'gauge', scope: 'cluster', label: 'cluster', stats: { 'circuit_breakers.cx_open': { resource: 'connections' }, 'circuit_breakers.rq_pending_open': { resource: 'pending_requests' }, 'circuit_breakers.rq_open': { resource: 'requests' }, 'circuit_breakers.rq_retry_open': { resource: 'retries' } } },
  { name: 'skein_outlier_ejections_total', help: 'Hosts outlier detection ejected, by cluster.', type: 'counter', scope: 'cluster', label: 'cluster', stats: { 'outlier_detection.ejections_enforced_total': {} } },
  { name: 'skein_outlier_ejections_active', help: 'Hosts ejected now, by cluster.', type: 'gauge', scope: 'cluster', label: 'cluster', stats: { 'outlier_detection.ejections_active': {} } },
];

/** Builds the sidecar's exposition. */
export function sidecarMetrics(src: SidecarMetricsSources): MetricsExposition {
  const m = new MetricsExposition();
  const { requests, stats } = src;
  m.add({
    name: 'skein_requests_total', help: 'Requests the sidecar finished, by direction, route, destination service and version, response code and gRPC status.', type: 'counter',
    *collect() { for (const t of requests.all()) for (const c of t.cells) yield { labels: cellLabels(c), value: c.count }; },
  });
  m.add(requestDuration(requests));
  for (const f of FAMILIES) m.add(statFamily(stats, f));
  m.add({
    name: 'skein_local_replies_total', help: 'Requests the sidecar answered itself, by route and reason (route "" : no route matched).', type: 'counter',
    *collect() {
      let noRoute = 0;
      for (const [key, value] of Object.entries(stats.scalars().counters)) {
        if (key.startsWith('route.')) {
          const i = key.lastIndexOf(`.${LOCAL_REPLY}`);
          if (i > 0 && value > 0) yield { labels: { route: key.slice('route.'.length, i), reason: key.slice(i + 1 + LOCAL_REPLY.length) }, value };
        } else if (key.startsWith('listener.') && key.endsWith('.no_route')) {
          noRoute += value;
        }
      }
      yield { labels: { route: '', reason: 'no_route' }, value: noRoute };
    },
  });
  m.add({ name: 'skein_xds_config_version_info', help: 'The accepted xDS version per type URL (value 1).', type: 'gauge', *collect() { for (const [typeUrl, version] of src.xds.versions()) yield { labels: { type_url: typeUrl, version }, value: 1 }; } });
  m.add({ name: 'skein_xds_last_update_timestamp_seconds', help: 'When the last xDS update of a type was accepted.', type: 'gauge', *collect() { for (const [typeUrl, at] of src.xds.lastUpdates()) yield { labels: { type_url: typeUrl }, value: at / 1000 }; } });
  m.add({ name: 'skein_xds_nacks_total', help: 'xDS responses the sidecar rejected, per type URL.', type: 'counter', *collect() { for (const [typeUrl, n] of src.xds.nacks()) yield { labels: { type_url: typeUrl }, value: n }; } });
  m.add({
    name: 'skein_workload_cert_expiry_timestamp_seconds', help: 'notAfter of the workload certificate (absent without one: --xds-insecure).', type: 'gauge',
    *collect() { const t = src.certNotAfter(); if (t !== undefined) yield { labels: {}, value: t / 1000 }; },
  });
  return m;
}

function cellLabels(c: { target: { labels: { direction: string; route: string; destinationService: string; destinationVersion: string } }; responseCode: number; grpcStatus: number }): Record<string, string> {
  const l = c.target.labels;
  return { direction: l.direction, route: l.route, destination_service: l.destinationService, destination_version: l.destinationVersion, response_code: String(c.responseCode), grpc_status: c.grpcStatus < 0 ? '' : String(c.grpcStatus) };
}

function requestDuration(requests: RequestMetrics): Collector {
  const les = [...requests.bounds].map((b) => String(b));
  les.push('+Inf');
  return {
    name: 'skein_request_duration_milliseconds', help: 'Request duration in ms (first request byte to the end of the response), same labels as skein_requests_total.', type: 'histogram',
    *collect(): Iterable<Sample> {
      for (const t of requests.all()) {
        for (const c of t.cells) {
          const labels = cellLabels(c);
          let cum = 0;
          for (let i = 0; i < les.length; i++) {
            cum += c.buckets[i]!;
            const trace = c.exemplarTrace[i];
            const id = trace === undefined ? undefined : traceIdOfContext(trace);
            yield {
              suffix: '_bucket', labels: { ...labels, le: les[i]! }, value: cum,
              ...(id === undefined ? {} : { exemplar: { labels: { trace_id: id }, value: c.exemplarValue[i]!, timestampSeconds: c.exemplarAt[i]! / 1000 } }),
            };
          }
          yield { suffix: '_sum', labels, value: c.sumMs };
          yield { suffix: '_count', labels, value: c.count };
        }
      }
    },
  };
}

function statFamily(stats: Stats, f: StatFamily): Collector {
  const prefix = `${f.scope}.`;
  return {
    name: f.name, help: f.help, type: f.type,
    *collect() {
      const snap = stats.scalars(prefix);
      const values = f.type === 'counter' ? snap.counters : snap.gauges;
      for (const [key, value] of Object.entries(values)) {
        if (!key.startsWith(prefix)) continue;
        for (const [stat, extra] of Object.entries(f.stats)) {
          if (!key.endsWith(`.${stat}`)) continue;
          const object = key.slice(prefix.length, key.length - stat.length - 1);
          yield { labels: { [f.label]: object, ...extra }, value };
        }
      }
    },
  };
}

/**
 * skein.stats.v1.RouteStats (proto/skein/stats/v1/route_stats.proto) on the control plane's TLS
 * xDS port: each sidecar keeps one Report stream open and writes its per route × version stats
 * every few seconds; they go to the RouteStatsStore.
 *
 * Authorization is by the caller's workload certificate, as for registration: a stream without
 * one (or with one from another trust domain) is refused before anything is read. A malformed
 * report ends the stream with INVALID_ARGUMENT naming the field; the sidecar reconnects.
 */
import * as grpc from '@grpc/grpc-js';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { Logger } from '../../../shared/src/log';
import { spiffeId } from '../../../shared/src/identity/spiffe';
import { callerIdentity, grpcError, ROUTE_STATS_SERVICE, skeinService } from '../../../shared/src/grpc/skein-services';
import type { WireReportSummary, WireRouteStatsReport } from '../../../shared/src/grpc/skein-services';
import { decodeLatencyHistogram } from '../../../shared/src/stats/latency-codec';
import type { Report, ReportedStats, RouteStatsStore } from './route-stats-store';

/** Most route × version entries in one report. */
export const MAX_REPORT_ENTRIES = 10_000;
/** The longest interval one report may cover (a sidecar that could not reach us for a while). */
export const MAX_REPORT_INTERVAL_MS = 60 * 60_000;

export class RouteStatsService {
  constructor(private readonly o: { store: RouteStatsStore; trustDomain: string; log: Logger }) {}

  register(server: grpc.Server): void {
    server.addService(skeinService(ROUTE_STATS_SERVICE).service, {
      Report: (call: grpc.ServerReadableStream<WireRouteStatsReport, WireReportSummary>, cb: grpc.sendUnaryData<WireReportSummary>) => this.serve(call, cb),
    });
  }

  private serve(call: grpc.ServerReadableStream<WireRouteStatsReport, WireReportSummary>, cb: grpc.sendUnaryData<WireReportSummary>): void {
    let identity: string;
    let reports = 0;
    let done = false;
    const fail = (e: unknown): void => {
      if (done) return;
      done = true;
      const err = grpcError(e);
      this.o.log.warn({ peer: call.getPeer(), reason: err.details }, 'route stats report refused');
      cb(err);
    };
    try {
      const who = callerIdentity(call, this.o.trustDomain);
      if (who === undefined) throw new MeshError(ErrorCodes.UNAUTHENTICATED, 'route stats reports need a workload certificate (TLS client certificate)');
      identity = spiffeId(who);
    } catch (e) {
      fail(e);
      return;
    }
    // Headers now: the sidecar starts writing once it sees them (the stream is accepted).
    call.sendMetadata(new grpc.Metadata());
    call.on('data', (w: WireRouteStatsReport) => {
      if (done) return;
      try {
        this.o.store.add(decodeReport(w, identity));
        reports++;
      } catch (e) {
        fail(e);
      }
    });
    call.on('end', () => { if (!done) { done = true; cb(null, { reports: String(reports) }); } });
    call.on('error', () => { done = true; });
  }
}

/** A wire report, checked: every problem is a VALIDATION error naming its field. */
export function decodeReport(w: WireRouteStatsReport, identity: string): Report {
  const bad = (field: string, why: string) => new MeshError(ErrorCodes.VALIDATION, `${field}: ${why}`);
  const node = w.node ?? '';
  if (node === '' || node.length > 256) throw bad('node', 'must be 1 to 256 characters');
  const start = Number(w.interval_start_ms ?? 0);
  const end = Number(w.interval_end_ms ?? 0);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end <= start || end - start > MAX_REPORT_INTERVAL_MS) {
    throw bad('interval_end_ms', `the interval must be positive and at most ${MAX_REPORT_INTERVAL_MS} ms, got [${w.interval_start_ms ?? ''}, ${w.interval_end_ms ?? ''})`);
  }
  const entries = w.stats ?? [];
  if (entries.length > MAX_REPORT_ENTRIES) throw bad('stats', `at most ${MAX_REPORT_ENTRIES} entries, got ${entries.length}`);
  const stats: ReportedStats[] = entries.map((e, i) => {
    const f = `stats[${i}]`;
    const text = (v: string | undefined, name: string): string => {
      if (v === undefined || v === '' || v.length > 512) throw bad(`${f}.${name}`, 'must be 1 to 512 characters');
      return v;
    };
    const count = (v: string | undefined, name: string): number => {
      const n = Number(v ?? 0);
      if (!Number.isSafeInteger(n) || n < 0) throw bad(`${f}.${name}`, `must be a count, got "${v ?? ''}"`);
      return n;
    };
    const route = text(e.route, 'route');
    const cluster = text(e.cluster, 'cluster');
    const requests = count(e.requests, 'requests');
    const successes = count(e.successes, 'successes');
    if (successes > requests) throw bad(`${f}.successes`, `more than requests (${successes} > ${requests})`);
    const latency = decodeLatencyHistogram(e.latency_histogram ?? '', `${f}.latency_histogram`);
    if (latency.totalCount !== requests) throw bad(`${f}.latency_histogram`, `holds ${latency.totalCount} samples for ${requests} requests`);
    return { route, cluster, requests, successes, latency, sumUs: count(e.latency_sum_us, 'latency_sum_us'), maxUs: count(e.latency_max_us, 'latency_max_us') };
  });
  return { node, identity, coveredMs: end - start, stats };
}

/**
 * The sidecar's route stats reporter (sidecar/src/route-stats-reporter.ts) against a real gRPC
 * server of skein.stats.v1.RouteStats, on a fake clock: each complete second of the per-backend
 * windows goes out once, in the next report, never the current (incomplete) second; totals made
 * while the control plane is away arrive once the stream is back.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { FakeClock } from '../../shared/src/clock';
import { silentLogger } from '../../shared/src/log';
import { ROUTE_STATS_SERVICE, skeinService } from '../../shared/src/grpc/skein-services';
import type { WireReportSummary, WireRouteStatsReport } from '../../shared/src/grpc/skein-services';
import { decodeLatencyHistogram } from '../../shared/src/stats/latency-codec';
import { RollingWindow } from '../../sidecar/src/stats/rolling-window';
import { RouteStatsReporter } from '../../sidecar/src/route-stats-reporter';
import { Backoff } from '../../sidecar/src/xds/backoff';

interface Server { reports: WireRouteStatsReport[]; port: number; close(): void }

async function statsServer(port = 0): Promise<Server> {
  const server = new grpc.Server();
  const reports: WireRouteStatsReport[] = [];
  server.addService(skeinService(ROUTE_STATS_SERVICE).service, {
    Report: (call: grpc.ServerReadableStream<WireRouteStatsReport, WireReportSummary>, cb: grpc.sendUnaryData<WireReportSummary>) => {
      call.sendMetadata(new grpc.Metadata());
      call.on('data', (r: WireRouteStatsReport) => reports.push(r));
      call.on('end', () => cb(null, { reports: String(reports.length) }));
      call.on('error', () => undefined);
    },
  });
  const bound = await new Promise<number>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { reports, port: bound, close: () => server.forceShutdown() };
}

/** Advances the fake clock a tick at a time, letting real I/O run, until `pred` holds. */
async function advanceUntil(clock: FakeClock, pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !pred(); i++) {
    clock.advance(1000);
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(pred(), `timed out waiting for ${what}`);
}

const requests = (rs: WireRouteStatsReport[], cluster: string): number => rs.flatMap((r) => r.stats ?? []).filter((s) => s.cluster === cluster).reduce((a, s) => a + Number(s.requests), 0);
const successes = (rs: WireRouteStatsReport[], cluster: string): number => rs.flatMap((r) => r.stats ?? []).filter((s) => s.cluster === cluster).reduce((a, s) => a + Number(s.successes), 0);

let cleanup: (() => void)[] = [];
after(() => { for (const f of cleanup) f(); cleanup = []; });

test('every complete second is reported once; the current second waits; reports chain interval to interval', async () => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const server = await statsServer();
  cleanup.push(server.close);
  const v1 = new RollingWindow(clock);
  const v2 = new RollingWindow(clock);
  const reporter = new RouteStatsReporter({ server: `127.0.0.1:${server.port}`, credentials: grpc.credentials.createInsecure(), node: 'n1', intervalMs: 2000, windows: () => [['r', 'svc/v1', v1], ['r', 'svc/v2', v2]], clock, log: silentLogger() });
  cleanup.push(() => reporter.stop());
  reporter.start();
  for (const us of [1000, 2000, 3000]) v1.record(true, us);
  v2.record(false, 50_000);
  await advanceUntil(clock, () => requests(server.reports, 'svc/v1') >= 3, 'the first three requests');
  // Recorded in the second now running: not in any report until that second is over.
  v1.record(true, 7000);
  const sentBefore = server.reports.length;
  assert.equal(requests(server.reports, 'svc/v1'), 3);
  await advanceUntil(clock, () => requests(server.reports, 'svc/v1') >= 4, 'the fourth request');
  await advanceUntil(clock, () => server.reports.length >= sentBefore + 3, 'three more reports');
  assert.deepEqual([requests(server.reports, 'svc/v1'), successes(server.reports, 'svc/v1'), requests(server.reports, 'svc/v2'), successes(server.reports, 'svc/v2')], [4, 4, 1, 0], 'each request once');
  const withV2 = server.reports.flatMap((r) => r.stats ?? []).find((s) => s.cluster === 'svc/v2')!;
  const h = decodeLatencyHistogram(withV2.latency_histogram!, 'h');
  assert.deepEqual([h.totalCount, withV2.latency_max_us, withV2.latency_sum_us], [1, '50000', '50000']);
  for (let i = 1; i < server.reports.length; i++) assert.equal(server.reports[i]!.interval_start_ms, server.reports[i - 1]!.interval_end_ms, 'intervals chain');
  assert.ok(server.reports.every((r) => r.node === 'n1' && Number(r.interval_end_ms) % 1000 === 0));
});

test('while the control plane is away, totals add up and go out once the stream is back', async () => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  let server = await statsServer();
  const port = server.port;
  const w = new RollingWindow(clock);
  const reporter = new RouteStatsReporter({ server: `127.0.0.1:${port}`, credentials: grpc.credentials.createInsecure(), node: 'n1', intervalMs: 1000, windows: () => [['r', 'svc', w]], clock, log: silentLogger(), backoff: new Backoff({ baseMs: 100, maxMs: 1000 }) });
  cleanup.push(() => reporter.stop());
  reporter.start();
  w.record(true, 1000);
  await advanceUntil(clock, () => requests(server.reports, 'svc') === 1, 'the first request');
  server.close();
  await advanceUntil(clock, () => reporter.failures > 0, 'the stream to fail');
  // Within the 10 s window: recorded while no stream is up.
  for (let i = 0; i < 5; i++) w.record(true, 2000);
  server = await statsServer(port);
  cleanup.push(server.close);
  await advanceUntil(clock, () => requests(server.reports, 'svc') >= 5, 'the requests made while away');
  assert.equal(requests(server.reports, 'svc'), 5);
});

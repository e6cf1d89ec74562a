/**
 * Microbench: the per-request cost of recording the request metrics (one duration histogram
 * observation + one request count, 6 labels), four ways:
 *   prom-client labels()   histogram.labels(...6).observe(v); counter.labels(...6).inc()
 *   prom-client object     histogram.observe(labels, v); counter.inc(labels)
 *   otel sdk-metrics       histogram.record(v, attrs); counter.add(1, attrs) (a reader attached, so it records)
 *   skein cells            RouteTarget.record(status, grpc, ms, headers, now): the target resolved
 *                          once per route x cluster (config time), the code cell by a small Map,
 *                          buckets a binary search; prom-client only formats at scrape time
 * Every way uses the same 105 default buckets and cycles over 4 label sets (2 routes x 2 codes),
 * as requests do. Prints ns/op and the young-generation GCs (allocation) per million ops.
 * Run: npm run build --silent && node --expose-gc dist/bench/metrics-record.js [--ops=2000000]
 * (not part of `npm run bench`). Results are in README ("Seeing the mesh" > Metrics).
 */
import { PerformanceObserver } from 'node:perf_hooks';
import * as promClient from 'prom-client';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { DEFAULT_BUCKETS_MS, RequestMetrics } from '../sidecar/src/stats/request-metrics';

const OPS = Number(process.argv.find((a) => a.startsWith('--ops='))?.slice(6) ?? 2_000_000);
const ROUNDS = 5;
const LABELS = ['direction', 'route', 'destination_service', 'destination_version', 'response_code', 'grpc_status'] as const;
const SETS = [
  ['outbound', 'GRPCRoute/reviews/split', 'reviews', 'v1', '200', '0'],
  ['outbound', 'GRPCRoute/reviews/split', 'reviews', 'v1', '503', '14'],
  ['outbound', 'GRPCRoute/reviews/canary', 'reviews', 'v2', '200', '0'],
  ['outbound', 'GRPCRoute/reviews/canary', 'reviews', 'v2', '503', '14'],
] as const;
const OBJECTS = SETS.map((s) => Object.fromEntries(LABELS.map((l, i) => [l, s[i]!])) as Record<(typeof LABELS)[number], string>);
const HEADERS = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'content-type': 'application/grpc' };
/** A latency per op: deterministic, spread over the buckets. */
const LATENCY = Float64Array.from({ length: 1024 }, (_, i) => 0.2 * 1.01 ** (i % 900));

let gcs = 0;
new PerformanceObserver((list) => { for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === 1) gcs++; }).observe({ entryTypes: ['gc'] });

class SilentReader extends MetricReader {
  protected async onShutdown(): Promise<void> { /* nothing to flush */ }
  protected async onForceFlush(): Promise<void> { /* nothing to flush */ }
}

type Way = [name: string, op: (i: number) => void];

function ways(): Way[] {
  const reg = new promClient.Registry();
  const h1 = new promClient.Histogram({ name: 'a_ms', help: 'h', labelNames: LABELS, buckets: [...DEFAULT_BUCKETS_MS], registers: [reg] });
  const c1 = new promClient.Counter({ name: 'a_total', help: 'c', labelNames: LABELS, registers: [reg] });
  const h2 = new promClient.Histogram({ name: 'b_ms', help: 'h', labelNames: LABELS, buckets: [...DEFAULT_BUCKETS_MS], registers: [reg] });
  const c2 = new promClient.Counter({ name: 'b_total', help: 'c', labelNames: LABELS, registers: [reg] });
  const meter = new MeterProvider({ readers: [new SilentReader()] }).getMeter('bench');
  const oh = meter.createHistogram('c_ms', { advice: { explicitBucketBoundaries: [...DEFAULT_BUCKETS_MS] } });
  const oc = meter.createCounter('c_total');
  const rm = new RequestMetrics();
  const targets = [rm.target('outbound', SETS[0][1], 'reviews/v1'), rm.target('outbound', SETS[2][1], 'reviews/v2')];
  return [
    ['prom-client labels()', (i) => { const s = SETS[i & 3]!; h1.labels(...s).observe(LATENCY[i & 1023]!); c1.labels(...s).inc(); }],
    ['prom-client object', (i) => { const o = OBJECTS[i & 3]!; h2.observe(o, LATENCY[i & 1023]!); c2.inc(o); }],
    ['otel sdk-metrics', (i) => { const o = OBJECTS[i & 3]!; oh.record(LATENCY[i & 1023]!, o); oc.add(1, o); }],
    ['skein cells', (i) => { targets[(i >> 1) & 1]!.record((i & 1) === 0 ? 200 : 503, (i & 1) === 0 ? 0 : 14, LATENCY[i & 1023]!, HEADERS, 1_700_000_000_000); }],
  ];
}

function run(op: (i: number) => void, n: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) op(i);
  return Number(process.hrtime.bigint() - t0) / n;
}

async function main(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const rows: string[] = ['| way | ns/op (best of 5) | young GCs per 1M ops |', '|---|---|---|'];
  for (const [name, op] of ways()) {
    run(op, 200_000); // warm up: JIT, and every label set's first sight
    let best = Infinity;
    gc?.();
    await new Promise((r) => setImmediate(r));
    const before = gcs;
    for (let r = 0; r < ROUNDS; r++) best = Math.min(best, run(op, OPS));
    await new Promise((r) => setTimeout(r, 50)); // let the gc observer report
    rows.push(`| ${name} | ${best.toFixed(1)} | ${((gcs - before) / ((OPS * ROUNDS) / 1e6)).toFixed(2)} |`);
  }
  process.stdout.write(`node ${process.version}, ${OPS} ops x ${ROUNDS} rounds per way\n${rows.join('\n')}\n`);
}

void main();

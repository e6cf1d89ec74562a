/**
 * Merging the sidecars' reports (control-plane/src/telemetry/route-stats-store.ts) through the
 * real path: latencies recorded by the sidecar's LatencyHistogram, encoded, checked by
 * decodeReport, merged by the store. The merged percentiles must equal the exact percentiles of
 * all samples within the histogram's stated precision (10^-digits relative, +1 µs of rounding),
 * and counts and rates must be exact.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../shared/src/clock';
import { LatencyHistogram } from '../../../sidecar/src/stats/latency-histogram';
import type { SignificantDigits } from '../../../sidecar/src/stats/latency-histogram';
import { RouteStatsStore, SLOT_MS } from '../../../control-plane/src/telemetry/route-stats-store';
import { decodeReport } from '../../../control-plane/src/telemetry/route-stats-service';
import type { WireRouteVersionStats } from '../../../shared/src/grpc/skein-services';
import { mulberry32 } from '../../support/prng';

/** Nearest-rank percentile of µs samples (HdrHistogram's definition), in ms. */
function exactMs(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]! / 1000;
}

function entry(route: string, cluster: string, samplesUs: readonly number[], failures = 0, digits: SignificantDigits = 2): WireRouteVersionStats {
  const h = new LatencyHistogram(digits);
  for (const us of samplesUs) h.record(us);
  return { route, cluster, requests: String(samplesUs.length), successes: String(samplesUs.length - failures), latency_histogram: h.encode(), latency_sum_us: String(h.sumUs), latency_max_us: String(h.maxUs) };
}

function report(node: string, coveredMs: number, stats: WireRouteVersionStats[]): Parameters<typeof decodeReport>[0] {
  return { node, interval_start_ms: '1000000', interval_end_ms: String(1_000_000 + coveredMs), stats };
}

type Draw = (r: () => number) => number;
const DISTRIBUTIONS: [string, Draw][] = [
  ['uniform 1..5 ms', (r) => Math.round(1000 + r() * 4000)],
  ['exponential, mean 20 ms', (r) => Math.round(-Math.log(1 - r()) * 20_000) + 1],
  ['bimodal: 95% ~2 ms, 5% ~900 ms', (r) => (r() < 0.95 ? 1500 + Math.round(r() * 1000) : 800_000 + Math.round(r() * 200_000))],
  ['heavy tail (Pareto, alpha 1.2)', (r) => Math.min(3_000_000_000, Math.round(500 / (1 - r()) ** (1 / 1.2)))],
  ['sub-millisecond, exact buckets', (r) => 1 + Math.floor(r() * 200)],
];
const SHAPES: [string, number[]][] = [['3 proxies, equal load', [2000, 2000, 2000]], ['5 proxies, skewed load', [5000, 300, 40, 1, 1200]], ['one proxy', [777]]];

describe('merged percentiles equal the exact percentiles of all samples, within the precision', () => {
  for (const [dname, draw] of DISTRIBUTIONS) {
    for (const [sname, sizes] of SHAPES) {
      for (const digits of [2, 3] as const) {
        test(`${dname}; ${sname}; ${digits} significant digits`, () => {
          const rand = mulberry32(dname.length * 131 + sizes.length * 7 + digits);
          const clock = new FakeClock();
          const store = new RouteStatsStore(clock);
          const all: number[] = [];
          sizes.forEach((n, i) => {
            // Each proxy reports in two intervals, so slots and reports merge too.
            const a = Array.from({ length: Math.ceil(n / 2) }, () => draw(rand));
            const b = Array.from({ length: n - a.length }, () => draw(rand));
            all.push(...a, ...b);
            store.add(decodeReport(report(`p${i}`, 5000, [entry('r', 'svc/v1', a, 0, digits)]), 'spiffe://t/ns/d/sa/x'));
            clock.advance(SLOT_MS);
            if (b.length > 0) store.add(decodeReport(report(`p${i}`, 5000, [entry('r', 'svc/v1', b, 0, digits)]), 'spiffe://t/ns/d/sa/x'));
          });
          const row = store.query(15 * 60_000).routes[0]!;
          assert.equal(row.requests, all.length);
          const tol = 10 ** -digits;
          for (const p of [50, 95, 99] as const) {
            const exact = exactMs(all, p);
            const merged = row.latencyMs[`p${p}`];
            assert.ok(merged >= exact && merged <= exact * (1 + tol) + 0.001, `p${p}: merged ${merged} ms vs exact ${exact} ms (precision ${tol})`);
          }
          assert.equal(row.latencyMs.max, Math.max(...all) / 1000, 'the maximum is exact');
        });
      }
    }
  }
});

describe('counts, rates, windows and weights', () => {
  test('counts add up exactly across proxies and versions; rps is each proxy\'s requests over the time its reports cover', () => {
    const clock = new FakeClock();
    const store = new RouteStatsStore(clock);
    const ones = (n: number) => Array.from({ length: n }, () => 1000);
    // p1 covers 10 s with 800 requests to v1 and 200 to v2 (100 rps); p2 covers 5 s with 400 / 100 (100 rps).
    store.add(decodeReport(report('p1', 5000, [entry('HTTPRoute/g/canary', 'g/v1', ones(400), 4), entry('HTTPRoute/g/canary', 'g/v2', ones(100), 10)]), 'spiffe://t/ns/d/sa/a'));
    clock.advance(SLOT_MS);
    store.add(decodeReport(report('p1', 5000, [entry('HTTPRoute/g/canary', 'g/v1', ones(400)), entry('HTTPRoute/g/canary', 'g/v2', ones(100))]), 'spiffe://t/ns/d/sa/a'));
    store.add(decodeReport(report('p2', 5000, [entry('HTTPRoute/g/canary', 'g/v1', ones(400)), entry('HTTPRoute/g/canary', 'g/v2', ones(100))]), 'spiffe://t/ns/d/sa/b'));
    const weights = new Map([['HTTPRoute/g/canary', new Map([['g/v1', 80], ['g/v2', 20]])]]);
    const v = store.query(60_000, weights);
    assert.deepEqual(v.routes.map((r) => [r.cluster, r.service, r.version, r.weight, r.requests, r.successes, r.rps, r.successRate]), [
      ['g/v1', 'g', 'v1', 80, 1200, 1196, 160, 0.997],
      ['g/v2', 'g', 'v2', 20, 300, 290, 40, 0.967],
    ]);
    assert.deepEqual(v.proxies.map((p) => [p.node, p.identity, p.reports]), [['p1', 'spiffe://t/ns/d/sa/a', 2], ['p2', 'spiffe://t/ns/d/sa/b', 1]]);
    assert.deepEqual(v.routes[0]!.proxies.map((p) => p.node), ['p1', 'p2']);
  });

  test('a window answers the slots it overlaps; reports older than the retention are dropped', () => {
    const clock = new FakeClock();
    const store = new RouteStatsStore(clock);
    store.add(decodeReport(report('p1', 5000, [entry('r', 's', [1000, 2000])]), 'id'));
    clock.advance(60_000);
    store.add(decodeReport(report('p1', 5000, [entry('r', 's', [3000])]), 'id'));
    assert.equal(store.query(10_000).routes[0]!.requests, 1);
    assert.equal(store.query(5 * 60_000).routes[0]!.requests, 3);
    clock.advance(15 * 60_000 + SLOT_MS);
    const v = store.query(15 * 60_000);
    assert.deepEqual([v.routes, v.proxies], [[], []]);
    assert.deepEqual(store.allTimeTotals(), [{ route: 'r', cluster: 's', requests: 3, successes: 3 }], 'the counters since start keep them');
  });
});

describe('a malformed report is refused, naming the field', () => {
  const good = entry('r', 's', [1000, 2000]);
  const CASES: [string, Parameters<typeof decodeReport>[0], RegExp][] = [
    ['no node', { ...report('p', 5000, [good]), node: '' }, /^node: /],
    ['an empty interval', { ...report('p', 5000, [good]), interval_end_ms: '1000000' }, /^interval_end_ms: /],
    ['no route', report('p', 5000, [{ ...good, route: '' }]), /^stats\[0\]\.route: /],
    ['more successes than requests', report('p', 5000, [{ ...good, successes: '3' }]), /^stats\[0\]\.successes: /],
    ['a histogram that is not one', report('p', 5000, [{ ...good, latency_histogram: 'bm9wZQ==' }]), /^stats\[0\]\.latency_histogram: not an HdrHistogram/],
    ['a histogram whose count is not the request count', report('p', 5000, [{ ...good, requests: '5', successes: '5' }]), /^stats\[0\]\.latency_histogram: holds 2 samples for 5 requests/],
    ['a negative count', report('p', 5000, [{ ...good, latency_sum_us: '-1' }]), /^stats\[0\]\.latency_sum_us: /],
  ];
  for (const [name, wire, want] of CASES) test(name, () => assert.throws(() => decodeReport(wire, 'id'), (e: Error) => want.test(e.message)));
});

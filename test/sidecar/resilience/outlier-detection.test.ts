/**
 * Outlier detection (sidecar/src/resilience/outlier-detector.ts), its config decoder
 * (outlier-config.ts) and the health/panic host set (host-set.ts). Deterministic: time is a
 * FakeClock, randomness an injected function, hosts are real Host objects, stats a real Stats
 * registry; every count is asserted exactly.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { FakeClock } from '../../../shared/src/clock';
import { silentLogger } from '../../../shared/src/log';
import type { Logger } from '../../../shared/src/log';
import { API_VERSION } from '../../../shared/src/config/types';
import type { Service } from '../../../shared/src/config/types';
import { TYPE_URLS, decodeAny, encodeAny } from '../../../shared/src/xds/protos';
import { encodeResource } from '../../../shared/src/xds/pack';
import { cluster as translateCluster } from '../../../control-plane/src/translate/clusters';
import { Stats } from '../../../sidecar/src/stats/stats';
import { Host } from '../../../sidecar/src/upstream/host';
import type { HostHealth } from '../../../sidecar/src/upstream/host';
import { Issues } from '../../../shared/src/xds/issues';
import { DEFAULT_OUTLIER_CONFIG, decodeOutlierDetection } from '../../../sidecar/src/resilience/outlier-config';
import type { OutlierConfig } from '../../../sidecar/src/resilience/outlier-config';
import { OutlierDetector } from '../../../sidecar/src/resilience/outlier-detector';
import { DEFAULT_PANIC_THRESHOLD, routableHosts } from '../../../sidecar/src/upstream/host-set';

const PREFIX = 'cluster.c.outlier_detection.';

interface LogLine { level: number; msg: string; [k: string]: unknown }

/** A pino logger whose lines land in `lines` (synchronously). */
function capturingLogger(lines: LogLine[]): Logger {
  return pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as LogLine); } });
}

function makeHosts(n: number): Host[] {
  return Array.from({ length: n }, (_, i) => new Host(`10.0.0.${i + 1}`, 8080, 1, 'z', 'HEALTHY'));
}

function setup(n: number, cfg: Partial<OutlierConfig> = {}, o: { random?: () => number; log?: Logger } = {}) {
  const clock = new FakeClock(0);
  const stats = new Stats({ clock });
  const hosts = makeHosts(n);
  const events: string[] = [];
  let maxConcurrent = 0;
  const det = new OutlierDetector({
    cluster: 'c',
    config: { ...DEFAULT_OUTLIER_CONFIG, ...cfg },
    clock,
    log: o.log ?? silentLogger(),
    stats,
    onChange: () => {
      const ejected = hosts.filter((h) => h.ejected);
      maxConcurrent = Math.max(maxConcurrent, ejected.length);
      events.push(`${clock.now()}:${ejected.map((h) => h.key).join(',')}`);
    },
    ...(o.random !== undefined ? { random: o.random } : {}),
  });
  det.setHosts(hosts);
  const counter = (name: string): number => stats.snapshot().counters[PREFIX + name] ?? -1;
  const active = (): number => stats.snapshot().gauges[`${PREFIX}ejections_active`] ?? -1;
  const send = (h: Host, status: number, times = 1): void => { for (let i = 0; i < times; i++) det.onResponse(h, status); };
  return { clock, stats, hosts, events, det, counter, active, send, maxConcurrent: () => maxConcurrent };
}

describe('outlier detection: consecutive errors', () => {
  test('consecutive 5xx ejects at exactly the Nth error, not N-1', () => {
    const t = setup(10, { maxEjectionPercent: 100 });
    const [h] = t.hosts;
    t.send(h!, 500, 4);
    assert.equal(h!.ejected, false);
    assert.equal(t.counter('ejections_detected_consecutive_5xx'), 0);
    assert.deepEqual(t.events, []);
    t.send(h!, 503);
    assert.equal(h!.ejected, true);
    assert.equal(t.counter('ejections_detected_consecutive_5xx'), 1);
    assert.equal(t.counter('ejections_enforced_consecutive_5xx'), 1);
    assert.equal(t.counter('ejections_total'), 1);
    assert.equal(t.counter('ejections_enforced_total'), 1);
    assert.equal(t.active(), 1);
    assert.deepEqual(t.events, ['0:10.0.0.1:8080']);
    assert.equal(t.det.hostInfo(h!)?.['lastEjectionTrigger'], 'consecutive_5xx');
    assert.equal(t.det.hostInfo(h!)?.['consecutive5xx'], 0, 'the counter is reset at detection');
  });

  test('a success (2xx or 4xx) resets the consecutive 5xx count', () => {
    const t = setup(10, { maxEjectionPercent: 100 });
    const h = t.hosts[0]!;
    t.send(h, 500, 4);
    t.send(h, 200);
    t.send(h, 500, 4);
    t.send(h, 404);
    t.send(h, 500, 4);
    assert.equal(h.ejected, false);
    assert.equal(t.det.hostInfo(h)?.['consecutive5xx'], 4);
    t.send(h, 500);
    assert.equal(h.ejected, true);
    assert.equal(t.counter('ejections_enforced_consecutive_5xx'), 1);
  });

  test('consecutive 0 never ejects', () => {
    const t = setup(10, { maxEjectionPercent: 100, consecutive5xx: 0, consecutiveGatewayFailure: 0 });
    t.send(t.hosts[0]!, 503, 50);
    assert.equal(t.hosts[0]!.ejected, false);
    assert.equal(t.counter('ejections_detected_consecutive_5xx'), 0);
    assert.equal(t.counter('ejections_detected_consecutive_gateway_failure'), 0);
  });

  test('gateway failures (502/503/504) count separately; a 500 resets only the gateway count', () => {
    const t = setup(10, { maxEjectionPercent: 100, consecutive5xx: 10, consecutiveGatewayFailure: 3, enforcingConsecutiveGatewayFailure: 100 });
    const [a, b] = t.hosts;
    t.send(a!, 502); t.send(a!, 503); t.send(a!, 504);
    assert.equal(a!.ejected, true);
    assert.equal(t.counter('ejections_enforced_consecutive_gateway_failure'), 1);
    assert.equal(t.counter('ejections_detected_consecutive_5xx'), 0);

    t.send(b!, 502, 2); t.send(b!, 500); t.send(b!, 502, 2);
    assert.equal(b!.ejected, false);
    assert.equal(t.det.hostInfo(b!)?.['consecutiveGatewayFailure'], 2);
    assert.equal(t.det.hostInfo(b!)?.['consecutive5xx'], 5);
  });

  test('default enforcing_consecutive_gateway_failure 0: gateway outliers are detected, not ejected; 5xx still ejects', () => {
    const t = setup(10, { maxEjectionPercent: 100 });
    const h = t.hosts[0]!;
    t.send(h, 503, 4);
    assert.equal(h.ejected, false);
    t.send(h, 503);
    // The 5th 503 is both the 5th gateway failure (detected, 0% enforced) and the 5th 5xx (ejected).
    assert.equal(t.counter('ejections_detected_consecutive_gateway_failure'), 1);
    assert.equal(t.counter('ejections_enforced_consecutive_gateway_failure'), 0);
    assert.equal(t.counter('ejections_enforced_consecutive_5xx'), 1);
    assert.equal(h.ejected, true);
  });

  test('split off: connect failures, timeouts and resets count as 5xx; local success does not reset', () => {
    const t = setup(10, { maxEjectionPercent: 100 });
    const h = t.hosts[0]!;
    t.det.onLocalOrigin(h, 'connect-failure');
    t.det.onLocalOrigin(h, 'timeout');
    t.det.onLocalOrigin(h, 'success');
    t.det.onLocalOrigin(h, 'reset');
    t.det.onLocalOrigin(h, 'success');
    t.det.onLocalOrigin(h, 'connect-failure');
    assert.equal(h.ejected, false);
    assert.equal(t.det.hostInfo(h)?.['consecutive5xx'], 4);
    assert.equal(t.det.hostInfo(h)?.['consecutiveLocalOriginFailure'], 0);
    t.det.onLocalOrigin(h, 'timeout');
    assert.equal(h.ejected, true);
    assert.equal(t.counter('ejections_enforced_consecutive_5xx'), 1);
    assert.equal(t.counter('ejections_detected_consecutive_local_origin_failure'), 0);
  });

  test('split on: local-origin failures have their own counter, reset by local success; 5xx do not touch it', () => {
    const t = setup(10, { maxEjectionPercent: 100, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailure: 3 });
    const [a, b] = t.hosts;
    t.det.onLocalOrigin(a!, 'connect-failure');
    t.det.onLocalOrigin(a!, 'timeout');
    t.det.onLocalOrigin(a!, 'success');
    t.det.onLocalOrigin(a!, 'reset');
    t.det.onLocalOrigin(a!, 'timeout');
    assert.equal(a!.ejected, false);
    assert.equal(t.det.hostInfo(a!)?.['consecutive5xx'], 0, 'local-origin failures are not 5xx when split');
    t.det.onLocalOrigin(a!, 'connect-failure');
    assert.equal(a!.ejected, true);
    assert.equal(t.counter('ejections_enforced_consecutive_local_origin_failure'), 1);

    t.send(b!, 500, 4);
    assert.equal(t.det.hostInfo(b!)?.['consecutiveLocalOriginFailure'], 0);
    t.det.onLocalOrigin(b!, 'success'); // does not reset the 5xx count
    t.send(b!, 500);
    assert.equal(b!.ejected, true);
    assert.equal(t.counter('ejections_enforced_consecutive_5xx'), 1);
  });
});

describe('outlier detection: ejection time and return', () => {
  test('ejection time is base × times ejected, capped at max; the host returns exactly then', () => {
    const t = setup(10, { maxEjectionPercent: 100, baseEjectionTimeMs: 1000, maxEjectionTimeMs: 2500, intervalMs: 3_600_000 });
    const h = t.hosts[0]!;
    const expected = [[1, 1000], [2, 2000], [3, 2500], [4, 2500], [4, 2500]];
    for (const [i, [times, ms]] of expected.entries()) {
      const start = t.clock.now();
      t.send(h, 500, 5);
      assert.equal(h.ejected, true, `ejection ${i + 1}`);
      const info = t.det.hostInfo(h)!;
      assert.equal(info['timesEjected'], times, `ejection ${i + 1}: times ejected`);
      assert.equal(info['ejectionsTotal'], i + 1);
      assert.equal(info['ejectedUntil'], start + ms!, `ejection ${i + 1}: until`);
      t.clock.advance(ms! - 1);
      assert.equal(h.ejected, true, `ejection ${i + 1}: still out 1ms before its end`);
      t.clock.advance(1);
      assert.equal(h.ejected, false, `ejection ${i + 1}: back exactly at its end`);
      assert.equal(t.det.hostInfo(h)!['ejectedUntil'], null);
    }
    assert.equal(t.events.length, 10, 'onChange once per ejection and once per return');
    assert.equal(t.counter('ejections_enforced_total'), 5);
    assert.equal(t.active(), 0);
  });

  test('max_ejection_time defaults to 300s (or base if larger) in the decoded config', () => {
    assert.equal(decodeOutlierDetection({}, new Issues()).maxEjectionTimeMs, 300_000);
    assert.equal(decodeOutlierDetection({ base_ejection_time: { seconds: '400', nanos: 0 } }, new Issues()).maxEjectionTimeMs, 400_000);
  });

  test('errors while ejected (panic traffic) do not carry over: return resets the consecutive counters', () => {
    const t = setup(10, { maxEjectionPercent: 100, baseEjectionTimeMs: 1000, consecutiveGatewayFailure: 3, enforcingConsecutiveGatewayFailure: 100 });
    const h = t.hosts[0]!;
    t.send(h, 500, 5);
    t.send(h, 503, 2);
    t.send(h, 500, 2);
    assert.equal(t.det.hostInfo(h)!['consecutive5xx'], 4);
    t.send(h, 503, 3); // reaches 5xx and gateway thresholds while ejected: counters reset, no detection
    assert.equal(t.counter('ejections_detected_consecutive_5xx'), 1);
    assert.equal(t.counter('ejections_detected_consecutive_gateway_failure'), 0);
    t.send(h, 500, 2);
    t.det.onLocalOrigin(h, 'success');
    t.clock.advance(1000);
    assert.equal(h.ejected, false);
    assert.deepEqual([t.det.hostInfo(h)!['consecutive5xx'], t.det.hostInfo(h)!['consecutiveGatewayFailure']], [0, 0]);
    t.send(h, 500, 4);
    assert.equal(h.ejected, false);
    t.send(h, 500);
    assert.equal(h.ejected, true);
  });

  test('times ejected decays by one per interval tick once the host has been back a full interval', () => {
    const t = setup(10, { maxEjectionPercent: 100, baseEjectionTimeMs: 1000, intervalMs: 10_000 });
    const h = t.hosts[0]!;
    t.send(h, 500, 5); // t=0: 1000ms
    t.clock.advance(1000);
    t.send(h, 500, 5); // t=1000: 2000ms
    assert.equal(t.det.hostInfo(h)!['timesEjected'], 2);
    t.clock.advance(2000); // back at t=3000
    assert.equal(h.ejected, false);
    t.clock.advance(7000); // tick at t=10000: back only 7000ms, no decay
    assert.equal(t.det.hostInfo(h)!['timesEjected'], 2);
    t.clock.advance(10_000); // tick at t=20000
    assert.equal(t.det.hostInfo(h)!['timesEjected'], 1);
    t.clock.advance(10_000); // t=30000
    assert.equal(t.det.hostInfo(h)!['timesEjected'], 0);
    t.clock.advance(10_000); // t=40000: never below 0
    assert.equal(t.det.hostInfo(h)!['timesEjected'], 0);
    t.send(h, 500, 5);
    assert.equal(t.det.hostInfo(h)!['ejectedUntil'], 40_000 + 1000, 'back to the base ejection time');
  });

  test('a removed host is forgotten: its return timer is cancelled and no onChange follows', () => {
    const t = setup(10, { maxEjectionPercent: 100, baseEjectionTimeMs: 1000 });
    const h = t.hosts[0]!;
    t.send(h, 500, 5);
    assert.equal(t.events.length, 1);
    assert.equal(t.active(), 1);
    t.det.setHosts(t.hosts.slice(1));
    assert.equal(t.active(), 0);
    assert.equal(h.outlier, undefined);
    assert.equal(h.ejected, false);
    assert.equal(t.det.hostInfo(h), undefined);
    t.clock.advance(60_000);
    assert.equal(t.events.length, 1, 'no return event for the removed host');
    t.send(h, 500, 10); // a late response from the removed host is ignored
    assert.equal(t.counter('ejections_detected_consecutive_5xx'), 1);
    // The remaining hosts are still tracked.
    t.send(t.hosts[1]!, 500, 5);
    assert.equal(t.hosts[1]!.ejected, true);
  });

  test('close() cancels every timer and un-ejects without onChange', () => {
    const t = setup(10, { maxEjectionPercent: 100 });
    t.send(t.hosts[0]!, 500, 5);
    assert.equal(t.clock.pending(), 2, 'the interval timer and one return timer');
    t.det.close();
    assert.equal(t.clock.pending(), 0);
    assert.equal(t.hosts[0]!.ejected, false);
    assert.equal(t.active(), 0);
    assert.equal(t.events.length, 1);
    t.send(t.hosts[1]!, 500, 5);
    assert.equal(t.hosts[1]!.ejected, false, 'a closed detector ejects nothing');
  });

  test('max_ejection_time_jitter adds random() × (jitter + 1) ms', () => {
    const t = setup(10, { maxEjectionPercent: 100, baseEjectionTimeMs: 1000, maxEjectionTimeJitterMs: 100 }, { random: () => 0.5 });
    t.send(t.hosts[0]!, 500, 5);
    assert.equal(t.det.hostInfo(t.hosts[0]!)!['ejectedUntil'], 1050);
  });

  test('a passing active health check returns an ejected host (successful_active_health_check_uneject_host)', () => {
    const on = setup(10, { maxEjectionPercent: 100 });
    on.send(on.hosts[0]!, 500, 5);
    on.det.onActiveHealthCheckSuccess(on.hosts[0]!);
    assert.equal(on.hosts[0]!.ejected, false);
    assert.equal(on.events.length, 2);
    const off = setup(10, { maxEjectionPercent: 100, successfulActiveHealthCheckUnejectHost: false });
    off.send(off.hosts[0]!, 500, 5);
    off.det.onActiveHealthCheckSuccess(off.hosts[0]!);
    assert.equal(off.hosts[0]!.ejected, true);
  });
});

describe('outlier detection: max_ejection_percent is exact', () => {
  test('3 hosts at 10%: nobody is ever ejected; each skip counts ejections_overflow and is logged', () => {
    const lines: LogLine[] = [];
    const t = setup(3, {}, { log: capturingLogger(lines) });
    t.send(t.hosts[0]!, 500, 5);
    t.send(t.hosts[1]!, 500, 10);
    assert.deepEqual(t.hosts.map((h) => h.ejected), [false, false, false]);
    assert.equal(t.counter('ejections_overflow'), 3);
    assert.equal(t.counter('ejections_detected_consecutive_5xx'), 3);
    assert.equal(t.counter('ejections_enforced_total'), 0);
    assert.equal(t.active(), 0);
    assert.deepEqual(t.events, []);
    const skipped = lines.filter((l) => /max_ejection_percent/.test(l.msg));
    assert.equal(skipped.length, 3);
    assert.equal(skipped[0]!.level, 40, 'warn');
    assert.equal(skipped[0]!['maxEjected'], 0);
    assert.equal(skipped[0]!['host'], '10.0.0.1:8080');
  });

  test('always_eject_one_host allows one ejection past the percentage, not two', () => {
    const t = setup(3, { alwaysEjectOneHost: true });
    t.send(t.hosts[0]!, 500, 5);
    t.send(t.hosts[1]!, 500, 5);
    assert.deepEqual(t.hosts.map((h) => h.ejected), [true, false, false]);
    assert.equal(t.counter('ejections_overflow'), 1);
  });

  test('10 hosts at 20% with 5 failing: never more than 2 ejected at once', () => {
    const t = setup(10, { maxEjectionPercent: 20, baseEjectionTimeMs: 1000, maxEjectionTimeMs: 3000 });
    const failing = t.hosts.slice(0, 5);
    for (let round = 0; round < 400; round++) {
      for (const h of failing) t.send(h, 500);
      for (const h of t.hosts.slice(5)) t.send(h, 200);
      t.clock.advance(50);
      assert.ok(t.active() <= 2, `round ${round}: ${t.active()} ejected`);
    }
    assert.equal(t.maxConcurrent(), 2);
    assert.ok(t.counter('ejections_overflow') > 0);
    assert.ok(t.counter('ejections_enforced_total') > 2, 'hosts rotate through ejection');
    assert.ok(t.hosts.slice(5).every((h) => !h.ejected));
  });
});

/** Sends `total` responses to `h`: `fails` 500s spread evenly (never two in a row when fails <= total / 2). */
function spread(t: ReturnType<typeof setup>, h: Host, total: number, fails: number): void {
  let owed = 0;
  for (let i = 0; i < total; i++) {
    owed += fails;
    if (owed >= total) { owed -= total; t.det.onResponse(h, 500); } else t.det.onResponse(h, 200);
  }
}

describe('outlier detection: success rate and failure percentage (per interval)', () => {
  test('success rate: a clear outlier among 5 hosts is ejected at the interval tick', () => {
    const t = setup(5, { maxEjectionPercent: 20 });
    for (const h of t.hosts.slice(0, 4)) spread(t, h, 100, 0);
    spread(t, t.hosts[4]!, 100, 50); // rates 100,100,100,100,50: mean 90, stdev 20, threshold 52
    assert.equal(t.hosts[4]!.ejected, false, 'nothing happens before the tick');
    t.clock.advance(9_999);
    assert.equal(t.hosts[4]!.ejected, false);
    t.clock.advance(1);
    assert.deepEqual(t.hosts.map((h) => h.ejected), [false, false, false, false, true]);
    assert.equal(t.counter('ejections_detected_success_rate'), 1);
    assert.equal(t.counter('ejections_enforced_success_rate'), 1);
    assert.equal(t.counter('ejections_detected_failure_percentage'), 0);
    assert.equal(t.det.hostInfo(t.hosts[4]!)!['successRate'], 50);
    assert.equal(t.det.hostInfo(t.hosts[0]!)!['successRate'], 100);
  });

  test('success rate threshold is mean - population stdev × stdev_factor/1000', () => {
    // Rates 100, 95, 90, 85, 50: mean 84, population stdev 17.72 (sample stdev would be 19.81).
    // Factor 1.9: threshold 50.33, so 50 is out (with the sample stdev it would be 46.4: kept).
    // Factor 2.0: threshold 48.56, nobody. Factor 0.5: 75.14, still only 50 (85 stays).
    for (const [factor, want] of [[1900, true], [2000, false], [500, true]] as const) {
      const t = setup(5, { maxEjectionPercent: 100, successRateStdevFactor: factor });
      [0, 5, 10, 15, 50].forEach((fails, i) => spread(t, t.hosts[i]!, 100, fails));
      t.clock.advance(10_000);
      assert.deepEqual(t.hosts.map((h) => h.ejected), [false, false, false, false, want], `factor ${factor}`);
      assert.equal(t.counter('ejections_detected_success_rate'), want ? 1 : 0);
    }
  });

  test('success rate: no ejection below request_volume or minimum_hosts, and only the last interval counts', () => {
    const low = setup(5, { maxEjectionPercent: 20 });
    for (const h of low.hosts.slice(0, 4)) spread(low, h, 100, 0);
    spread(low, low.hosts[4]!, 99, 50); // 99 < request_volume: only 4 hosts qualify (< 5)
    low.clock.advance(10_000);
    assert.equal(low.hosts[4]!.ejected, false);
    assert.equal(low.counter('ejections_detected_success_rate'), 0);

    // 6 hosts, only 4 with request_volume (one of them an outlier at factor 1.0): minimum_hosts
    // counts hosts with volume, not hosts. The control run with minimum_hosts 4 ejects it.
    for (const [minimumHosts, want] of [[5, false], [4, true]] as const) {
      const t = setup(6, { maxEjectionPercent: 100, successRateStdevFactor: 1000, successRateMinimumHosts: minimumHosts });
      [0, 0, 0, 50].forEach((fails, i) => spread(t, t.hosts[i]!, 100, fails));
      spread(t, t.hosts[4]!, 99, 0);
      spread(t, t.hosts[5]!, 99, 0);
      t.clock.advance(10_000);
      assert.equal(t.hosts[3]!.ejected, want, `minimum_hosts ${minimumHosts}`);
    }

    const few = setup(4, { maxEjectionPercent: 25 });
    for (const h of few.hosts.slice(0, 3)) spread(few, h, 100, 0);
    spread(few, few.hosts[3]!, 100, 50);
    few.clock.advance(10_000);
    assert.equal(few.hosts[3]!.ejected, false);
    assert.equal(few.counter('ejections_detected_success_rate'), 0);

    const stale = setup(5, { maxEjectionPercent: 20 });
    spread(stale, stale.hosts[4]!, 100, 50);
    stale.clock.advance(10_000); // only one host had volume in this interval
    for (const h of stale.hosts.slice(0, 4)) spread(stale, h, 100, 0);
    stale.clock.advance(10_000); // the outlier's old bucket was dropped at the last tick
    assert.equal(stale.hosts[4]!.ejected, false);
    assert.equal(stale.counter('ejections_detected_success_rate'), 0);
  });

  test('failure percentage: eject at >= threshold, not below; volume gated', () => {
    const t = setup(7, { maxEjectionPercent: 100, enforcingFailurePercentage: 100, consecutive5xx: 0, consecutiveGatewayFailure: 0, successRateRequestVolume: 1000 });
    for (const h of t.hosts.slice(0, 4)) spread(t, h, 50, 0);
    spread(t, t.hosts[4]!, 100, 85); // exactly 85%
    spread(t, t.hosts[5]!, 100, 84);
    spread(t, t.hosts[6]!, 49, 49); // 100% but below request_volume 50
    t.clock.advance(10_000);
    assert.deepEqual(t.hosts.map((h) => h.ejected), [false, false, false, false, true, false, false]);
    assert.equal(t.counter('ejections_detected_failure_percentage'), 1);
    assert.equal(t.counter('ejections_enforced_failure_percentage'), 1);
  });

  test('failure percentage: minimum_hosts counts hosts with request_volume', () => {
    for (const [minimumHosts, want] of [[5, false], [4, true]] as const) {
      const t = setup(6, { maxEjectionPercent: 100, enforcingFailurePercentage: 100, failurePercentageMinimumHosts: minimumHosts, consecutive5xx: 0, consecutiveGatewayFailure: 0 });
      [0, 0, 0, 45].forEach((fails, i) => spread(t, t.hosts[i]!, 50, fails));
      spread(t, t.hosts[4]!, 49, 0);
      spread(t, t.hosts[5]!, 49, 0);
      t.clock.advance(10_000);
      assert.equal(t.hosts[3]!.ejected, want, `minimum_hosts ${minimumHosts}`);
    }
  });

  test('hosts already ejected are left out of the statistics', () => {
    // Host 5 is ejected and still gets (panic) traffic, all failing. Counted, it would drag the
    // mean to 81.7 and the threshold to 11.9; left out, 100×4 and 90 give a threshold of 90.4.
    const t = setup(6, { maxEjectionPercent: 100 });
    t.send(t.hosts[5]!, 500, 105);
    assert.equal(t.hosts[5]!.ejected, true);
    for (const h of t.hosts.slice(0, 4)) spread(t, h, 100, 0);
    spread(t, t.hosts[4]!, 100, 10);
    t.clock.advance(10_000);
    assert.deepEqual(t.hosts.map((h) => h.ejected), [false, false, false, false, true, true]);
    assert.equal(t.det.hostInfo(t.hosts[5]!)!['successRate'], -1);
    assert.equal(t.counter('ejections_detected_success_rate'), 1);
  });

  test('split on: local-origin success rate is tracked and ejected separately', () => {
    const t = setup(5, { maxEjectionPercent: 20, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailure: 0 });
    for (const h of t.hosts) {
      for (let i = 0; i < 100; i++) t.det.onLocalOrigin(h, h === t.hosts[4] && i % 2 === 0 ? 'connect-failure' : 'success');
    }
    t.clock.advance(10_000);
    assert.deepEqual(t.hosts.map((h) => h.ejected), [false, false, false, false, true]);
    assert.equal(t.counter('ejections_enforced_local_origin_success_rate'), 1);
    assert.equal(t.counter('ejections_detected_success_rate'), 0);
    assert.equal(t.det.hostInfo(t.hosts[4]!)!['localOriginSuccessRate'], 50);
  });
});

describe('outlier detection: enforcement', () => {
  test('enforcing 0: detected counter only, nothing ejected, no onChange', () => {
    const t = setup(10, { maxEjectionPercent: 100, enforcingConsecutive5xx: 0 });
    t.send(t.hosts[0]!, 500, 10);
    assert.equal(t.hosts[0]!.ejected, false);
    assert.equal(t.counter('ejections_detected_consecutive_5xx'), 2);
    assert.equal(t.counter('ejections_enforced_consecutive_5xx'), 0);
    assert.equal(t.counter('ejections_total'), 0);
    assert.equal(t.counter('ejections_overflow'), 0);
    assert.deepEqual(t.events, []);
  });

  test('enforcing 50: random() × 100 < 50 decides', () => {
    let r = 0.5;
    const t = setup(10, { maxEjectionPercent: 100, enforcingConsecutive5xx: 50 }, { random: () => r });
    t.send(t.hosts[0]!, 500, 5);
    assert.equal(t.hosts[0]!.ejected, false);
    r = 0.49;
    t.send(t.hosts[0]!, 500, 5);
    assert.equal(t.hosts[0]!.ejected, true);
    assert.equal(t.counter('ejections_detected_consecutive_5xx'), 2);
    assert.equal(t.counter('ejections_enforced_consecutive_5xx'), 1);
  });
});

describe('routableHosts: health and panic threshold', () => {
  const mk = (specs: string): Host[] => specs.split(' ').map((s, i) => {
    const [health, flag] = s.split('/') as [HostHealth, string | undefined];
    const h = new Host(`10.1.0.${i + 1}`, 80, 1, 'z', health);
    if (flag === 'ejected') h.ejected = true;
    if (flag === 'hc') h.hcFailed = true;
    return h;
  });
  const cases: { name: string; hosts: string; threshold: number; want: number[]; panic: boolean }[] = [
    { name: 'all healthy', hosts: 'HEALTHY UNKNOWN DEGRADED', threshold: 50, want: [0, 1, 2], panic: false },
    { name: 'ejected, hc-failed and UNHEALTHY/TIMEOUT hosts are left out', hosts: 'HEALTHY HEALTHY HEALTHY HEALTHY/ejected HEALTHY/hc UNHEALTHY', threshold: 50, want: [0, 1, 2], panic: false },
    { name: '1/3 healthy at 50% is panic: every non-draining host', hosts: 'HEALTHY HEALTHY/ejected UNHEALTHY', threshold: 50, want: [0, 1, 2], panic: true },
    { name: 'exactly 50% healthy is not panic', hosts: 'HEALTHY HEALTHY/hc', threshold: 50, want: [0], panic: false },
    { name: 'threshold 0 disables panic', hosts: 'HEALTHY HEALTHY/ejected UNHEALTHY', threshold: 0, want: [0], panic: false },
    { name: 'threshold 0 with nothing healthy: empty, no panic', hosts: 'UNHEALTHY HEALTHY/ejected', threshold: 0, want: [], panic: false },
    { name: 'DRAINING is never returned, even in panic', hosts: 'HEALTHY/ejected TIMEOUT DRAINING', threshold: 50, want: [0, 1], panic: true },
    { name: 'DRAINING hosts do not count toward the threshold', hosts: 'HEALTHY DRAINING DRAINING DRAINING', threshold: 50, want: [0], panic: false },
    { name: 'all draining: nothing, no panic', hosts: 'DRAINING DRAINING', threshold: 50, want: [], panic: false },
    { name: 'threshold 100 panics when any host is unhealthy', hosts: 'HEALTHY HEALTHY HEALTHY/hc', threshold: 100, want: [0, 1, 2], panic: true },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const all = mk(c.hosts);
      const r = routableHosts(all, c.threshold);
      assert.deepEqual(r.hosts.map((h) => all.indexOf(h)), c.want);
      assert.equal(r.panic, c.panic);
    });
  }
  test('empty host list: no panic', () => assert.deepEqual(routableHosts([], 50), { hosts: [], panic: false }));
  test("Envoy's default threshold is 50", () => assert.equal(DEFAULT_PANIC_THRESHOLD, 50));
});

describe('decodeOutlierDetection', () => {
  test("an empty OutlierDetection gets every one of Envoy's defaults", () => {
    const issues = new Issues();
    assert.deepEqual(decodeOutlierDetection({}, issues), {
      consecutive5xx: 5, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10,
      enforcingConsecutive5xx: 100, enforcingSuccessRate: 100, successRateMinimumHosts: 5, successRateRequestVolume: 100,
      successRateStdevFactor: 1900, consecutiveGatewayFailure: 5, enforcingConsecutiveGatewayFailure: 0,
      splitExternalLocalOriginErrors: false, consecutiveLocalOriginFailure: 5, enforcingConsecutiveLocalOriginFailure: 100,
      enforcingLocalOriginSuccessRate: 100, failurePercentageThreshold: 85, enforcingFailurePercentage: 0,
      enforcingFailurePercentageLocalOrigin: 0, failurePercentageMinimumHosts: 5, failurePercentageRequestVolume: 50,
      maxEjectionTimeMs: 300_000, maxEjectionTimeJitterMs: 0, successfulActiveHealthCheckUnejectHost: true, alwaysEjectOneHost: false,
    });
    assert.deepEqual(issues.list, []);
  });

  test('decodes what protobufjs gives for a real encoded Cluster', () => {
    const any = encodeAny(TYPE_URLS.CLUSTER, {
      name: 'c',
      outlier_detection: {
        consecutive_5xx: { value: 3 }, interval: { seconds: 2, nanos: 500_000_000 }, base_ejection_time: { seconds: 1 },
        max_ejection_percent: { value: 0 }, enforcing_success_rate: { value: 0 }, split_external_local_origin_errors: true,
        max_ejection_time: { seconds: 60 }, max_ejection_time_jitter: { nanos: 250_000_000 },
        successful_active_health_check_uneject_host: { value: false }, always_eject_one_host: { value: true },
      },
    });
    const wire = decodeAny<{ outlier_detection: Record<string, unknown> }>(any).outlier_detection;
    const issues = new Issues();
    const c = decodeOutlierDetection(wire, issues);
    assert.deepEqual(issues.list, []);
    assert.equal(c.consecutive5xx, 3);
    assert.equal(c.intervalMs, 2500);
    assert.equal(c.baseEjectionTimeMs, 1000);
    assert.equal(c.maxEjectionPercent, 0, 'an explicit 0 (omitted value inside the wrapper) is 0, not the default');
    assert.equal(c.enforcingSuccessRate, 0);
    assert.equal(c.splitExternalLocalOriginErrors, true);
    assert.equal(c.maxEjectionTimeMs, 60_000);
    assert.equal(c.maxEjectionTimeJitterMs, 250);
    assert.equal(c.successfulActiveHealthCheckUnejectHost, false);
    assert.equal(c.alwaysEjectOneHost, true);
  });

  test("decodes the control plane's translation of a BackendPolicy (every enforcing_* explicit)", () => {
    const service: Service = { apiVersion: API_VERSION, kind: 'Service', metadata: { name: 's', labels: {}, annotations: {} }, spec: { protocol: 'http', ports: [], subsets: [], endpoints: [], mtls: 'STRICT' } };
    const xds = translateCluster('s', service, { outlierDetection: { consecutive5xx: 3, consecutiveLocalOriginFailure: 2, maxEjectionPercent: 50, intervalMs: 1000, failurePercentage: { threshold: 70 } } });
    const wire = decodeAny<{ outlier_detection: Record<string, unknown> }>(encodeResource(TYPE_URLS.CLUSTER, xds)).outlier_detection;
    const issues = new Issues();
    const c = decodeOutlierDetection(wire, issues);
    assert.deepEqual(issues.list, []);
    assert.equal(c.consecutive5xx, 3);
    assert.equal(c.enforcingConsecutive5xx, 100);
    assert.equal(c.enforcingConsecutiveGatewayFailure, 0);
    assert.equal(c.consecutiveLocalOriginFailure, 2);
    assert.equal(c.enforcingConsecutiveLocalOriginFailure, 100);
    assert.equal(c.splitExternalLocalOriginErrors, true);
    assert.equal(c.enforcingSuccessRate, 0);
    assert.equal(c.enforcingFailurePercentage, 100);
    assert.equal(c.failurePercentageThreshold, 70);
    assert.equal(c.maxEjectionPercent, 50);
    assert.equal(c.intervalMs, 1000);
    assert.equal(c.successfulActiveHealthCheckUnejectHost, false, "skein's default, sent explicitly over Envoy's true");
    const on = translateCluster('s', service, { outlierDetection: { unejectOnHealthCheckSuccess: true } });
    const onWire = decodeAny<{ outlier_detection: Record<string, unknown> }>(encodeResource(TYPE_URLS.CLUSTER, on)).outlier_detection;
    assert.equal(decodeOutlierDetection(onWire, issues).successfulActiveHealthCheckUnejectHost, true);
    assert.deepEqual(issues.list, []);
  });

  const percentFields = [
    'max_ejection_percent', 'enforcing_consecutive_5xx', 'enforcing_success_rate', 'enforcing_consecutive_gateway_failure',
    'enforcing_consecutive_local_origin_failure', 'enforcing_local_origin_success_rate', 'failure_percentage_threshold',
    'enforcing_failure_percentage', 'enforcing_failure_percentage_local_origin',
  ];
  const invalid: { name: string; wire: Record<string, unknown>; path?: string; want: string[] }[] = [
    ...percentFields.map((f) => ({ name: `${f} 101`, wire: { [f]: { value: 101 } }, want: [`outlier_detection.${f}: must be <= 100, got 101`] })),
    { name: 'interval 0', wire: { interval: { seconds: '0', nanos: 0 } }, want: ['outlier_detection.interval: must be > 0 (at least 1ms)'] },
    { name: 'interval under 1ms', wire: { interval: { nanos: 999_999 } }, want: ['outlier_detection.interval: must be > 0 (at least 1ms)'] },
    { name: 'base_ejection_time 0', wire: { base_ejection_time: {} }, want: ['outlier_detection.base_ejection_time: must be > 0 (at least 1ms)'] },
    { name: 'max_ejection_time 0', wire: { max_ejection_time: { seconds: '0' } }, want: ['outlier_detection.max_ejection_time: must be > 0 (at least 1ms)'] },
    { name: 'max_ejection_time below base', wire: { base_ejection_time: { seconds: '30' }, max_ejection_time: { seconds: '10' } }, want: ['outlier_detection.max_ejection_time: must be >= base_ejection_time (30000ms), got 10000ms'] },
    { name: 'max_ejection_time below the default base', wire: { max_ejection_time: { seconds: '10' } }, want: ['outlier_detection.max_ejection_time: must be >= base_ejection_time (30000ms), got 10000ms'] },
    { name: 'negative jitter', wire: { max_ejection_time_jitter: { seconds: '-1' } }, want: ['outlier_detection.max_ejection_time_jitter: must be >= 0'] },
    { name: 'extension monitors', wire: { monitors: [{ name: 'm' }] }, want: ['outlier_detection.monitors: extension monitors are not supported'] },
    { name: 'unknown field', wire: { consecutive_4xx: { value: 1 } }, want: ['outlier_detection.consecutive_4xx: unknown field'] },
    { name: 'bare number instead of a wrapper', wire: { consecutive_5xx: 3 }, want: ['outlier_detection.consecutive_5xx: must be a UInt32Value'] },
    { name: 'split as a string', wire: { split_external_local_origin_errors: 'yes' }, want: ['outlier_detection.split_external_local_origin_errors: must be a bool'] },
    { name: 'path prefix is the caller\'s', wire: { max_ejection_percent: { value: 200 } }, path: 'clusters[2].outlier_detection', want: ['clusters[2].outlier_detection.max_ejection_percent: must be <= 100, got 200'] },
    { name: 'several problems are all reported', wire: { interval: { seconds: '0' }, enforcing_success_rate: { value: 150 } }, want: ['outlier_detection.enforcing_success_rate: must be <= 100, got 150', 'outlier_detection.interval: must be > 0 (at least 1ms)'] },
  ];
  for (const c of invalid) {
    test(`rejects ${c.name}`, () => {
      const issues = new Issues();
      if (c.path === undefined) decodeOutlierDetection(c.wire, issues); else decodeOutlierDetection(c.wire, issues, c.path);
      assert.deepEqual(issues.list, c.want);
    });
  }
  test('an empty monitors list is fine', () => {
    const issues = new Issues();
    decodeOutlierDetection({ monitors: [] }, issues);
    assert.deepEqual(issues.list, []);
  });
});

/**
 * Outlier detection (passive health checking), split as in Envoy:
 *  - HostMonitor, one per host, kept on `host.outlier`: a data sink. The router reports every
 *    attempt's result; the monitor bumps plain number fields (no allocation per request) and calls
 *    the detector only when a consecutive-error threshold is reached.
 *  - OutlierDetector, one per cluster: decides. It ejects (sets `host.ejected`, calls onChange so
 *    the cluster republishes its picker) and returns hosts. It never picks hosts itself: the load
 *    balancer only sees the hosts it is given (upstream/host-set.ts).
 *
 * What counts (Envoy's DetectorHostMonitorImpl):
 *  - A response with status >= 500 is a 5xx; 502/503/504 are also gateway failures; anything
 *    else is a success and resets both consecutive counters (a 500 resets only the gateway one).
 *  - split_external_local_origin_errors false (default): a connect failure or reset counts as a
 *    503, a timeout as a 504; local 'success' counts nothing (the response that follows does).
 *  - split true: local-origin events have their own consecutive counter and success-rate bucket;
 *    'success' resets that counter.
 *  - Reaching a threshold (the Nth consecutive error, not N-1) is a detection: the counter is
 *    reset, `ejections_detected_<type>` counts it and the host is ejected unless limited (below).
 *    A host that is already ejected is not detected again (its counter is just reset).
 *  - Every `interval` (the timer runs while the cluster has hosts), per-host buckets (successes/total in that interval) are swapped and
 *    success-rate and failure-percentage detection run over non-ejected hosts with at least
 *    `*_request_volume` requests, when at least `*_minimum_hosts` such hosts exist.
 *    Success rate: eject below mean - stdev × stdev_factor/1000. Failure %: eject at >= threshold.
 *
 * Limits, in Envoy's order:
 *  1. max_ejection_percent, exactly: an ejection happens only if afterwards ejected × 100 <=
 *     max_ejection_percent × hosts, i.e. at most floor(percent × hosts / 100) hosts are ejected.
 *     3 hosts at 10% never eject anyone (Envoy once always ejected one host: envoy#3263, fixed in
 *     #27909; `always_eject_one_host` opts back in). A skipped ejection counts
 *     `ejections_overflow` and logs why, every time.
 *  2. enforcing_<type> %: random() × 100 < percent (0 never, 100 always, random() not called).
 *     A detection that is not enforced counts only `ejections_detected_<type>`.
 *
 * Ejection time = base_ejection_time × times_ejected + jitter, capped at max_ejection_time.
 * `times_ejected` (Envoy's eject-time backoff) goes up by one per ejection while
 * times_ejected × base < max + base, and down by one at every interval tick at which the host is
 * not ejected and was returned at least one interval earlier.
 * Return: a per-host clock timer fires exactly when the ejection time ends (Envoy checks at the
 * interval ticks instead, so a host may stay out up to one interval longer there). Returning
 * resets the consecutive counters.
 *
 * Stats, under `cluster.<name>.outlier_detection.`: gauge `ejections_active`; counters
 * `ejections_enforced_total` and `ejections_total` (both: enforced ejections of any type; Envoy's
 * deprecated `ejections_total` also counted unenforced ones), `ejections_overflow`, and per type
 * `ejections_enforced_<type>` / `ejections_detected_<type>` (detected counts every detection,
 * enforced or not, as in Envoy). Types: consecutive_5xx, consecutive_gateway_failure,
 * consecutive_local_origin_failure, success_rate, local_origin_success_rate,
 * failure_percentage, local_origin_failure_percentage.
 *
 * Logs: each ejection at warn (cluster, host, trigger, ejection ms, times ejected), each return
 * at info, each skipped ejection (overflow at warn, not enforced at info).
 */
import type { Clock, TimerHandle } from '../../../shared/src/clock';
import type { Logger } from '../../../shared/src/log';
import type { Counter, Gauge, Stats } from '../stats/stats';
import type { MonitoredHost } from './monitored-host';
import type { OutlierConfig } from './outlier-config';

export type EjectionType =
  | 'consecutive_5xx' | 'consecutive_gateway_failure' | 'consecutive_local_origin_failure'
  | 'success_rate' | 'local_origin_success_rate' | 'failure_percentage' | 'local_origin_failure_percentage';

const TYPES: readonly EjectionType[] = [
  'consecutive_5xx', 'consecutive_gateway_failure', 'consecutive_local_origin_failure',
  'success_rate', 'local_origin_success_rate', 'failure_percentage', 'local_origin_failure_percentage',
];

/** Stat keys per type, built once (a detector per cluster allocates no names). */
const DETECTED_KEYS = Object.fromEntries(TYPES.map((t) => [t, `outlier_detection.ejections_detected_${t}`])) as Readonly<Record<EjectionType, string>>;
const ENFORCED_KEYS = Object.fromEntries(TYPES.map((t) => [t, `outlier_detection.ejections_enforced_${t}`])) as Readonly<Record<EjectionType, string>>;

export type LocalOriginEvent = 'connect-failure' | 'timeout' | 'reset' | 'success';

/** Per-host state (Envoy's DetectorHostMonitor). Created by setHosts; lives on `host.outlier`. */
export class HostMonitor {
  consecutive5xx = 0;
  consecutiveGatewayFailure = 0;
  consecutiveLocalOriginFailure = 0;
  /** The current interval's buckets: external (HTTP) and local-origin results. */
  extSuccess = 0;
  extTotal = 0;
  localSuccess = 0;
  localTotal = 0;
  /** Success rate (%) of the last interval with enough volume, -1 when not computed (as Envoy's /clusters). */
  successRate = -1;
  localOriginSuccessRate = -1;
  /** Eject-time multiplier (Envoy's ejectTimeBackoff); decays while the host stays in. */
  timesEjected = 0;
  /** Ejections over this host's life in the cluster. */
  ejectionsTotal = 0;
  lastTrigger: EjectionType | undefined = undefined;
  /** Clock ms; -1 when never / not ejected. */
  ejectedAt = -1;
  ejectedUntil = -1;
  returnedAt = -1;
  timer: TimerHandle | undefined = undefined;
  /** Bound once: the return timer's callback. */
  readonly returnNow: () => void;

  constructor(readonly host: MonitoredHost, readonly detector: OutlierDetector) {
    this.returnNow = () => detector.returnHost(this);
  }
}

export interface OutlierDetectorOptions {
  cluster: string;
  config: OutlierConfig;
  clock: Clock;
  log: Logger;
  stats: Stats;
  /** Called after every ejection and return (the cluster republishes its picker). */
  onChange: () => void;
  /** [0, 1). Default Math.random. */
  random?: () => number;
}

/** The monitors of a detector with no hosts (shared: never mutated). */
const NO_MONITORS: Map<MonitoredHost, HostMonitor> = new Map();

export class OutlierDetector {
  private config: OutlierConfig;
  /** NO_MONITORS until the first host: a cluster with no endpoints costs no map. */
  private monitors: Map<MonitoredHost, HostMonitor> = NO_MONITORS;
  private active = 0;
  private intervalTimer: TimerHandle | undefined;
  private closed = false;
  private readonly random: () => number;
  private readonly onTick = (): void => this.tick();
  private readonly gActive: Gauge;
  private readonly cTotal: Counter;
  private readonly cEnforcedTotal: Counter;
  private readonly cOverflow: Counter;
  private readonly cDetected = {} as Record<EjectionType, Counter>;
  private readonly cEnforced = {} as Record<EjectionType, Counter>;

  constructor(private readonly opts: OutlierDetectorOptions) {
    this.config = opts.config;
    this.random = opts.random ?? Math.random;
    const s = opts.stats.scope(`cluster.${opts.cluster}`);
    this.gActive = s.gauge('outlier_detection.ejections_active');
    this.cTotal = s.counter('outlier_detection.ejections_total');
    this.cEnforcedTotal = s.counter('outlier_detection.ejections_enforced_total');
    this.cOverflow = s.counter('outlier_detection.ejections_overflow');
    for (const t of TYPES) {
      this.cDetected[t] = s.counter(DETECTED_KEYS[t]);
      this.cEnforced[t] = s.counter(ENFORCED_KEYS[t]);
    }
  }

  get ejectionsActive(): number { return this.active; }

  /** New thresholds apply to the next event; a changed interval re-arms the sweep from now. */
  updateConfig(config: OutlierConfig): void {
    const intervalChanged = config.intervalMs !== this.config.intervalMs;
    this.config = config;
    if (intervalChanged && this.intervalTimer !== undefined) { this.intervalTimer.cancel(); this.armInterval(); }
  }

  /** The cluster's current hosts (stable objects across EDS updates). New hosts get monitor state; removed ones are forgotten (timers cancelled). */
  setHosts(hosts: readonly MonitoredHost[]): void {
    if (this.closed) return;
    const keep = new Set(hosts);
    for (const m of [...this.monitors.values()]) if (!keep.has(m.host)) this.forget(m);
    for (const h of hosts) {
      if (this.monitors.has(h)) continue;
      const m = new HostMonitor(h, this);
      if (this.monitors === NO_MONITORS) this.monitors = new Map();
      this.monitors.set(h, m);
      h.outlier = m;
    }
    // The interval runs while there are hosts to sweep (a cluster without endpoints has no timer).
    if (this.monitors.size > 0 && this.intervalTimer === undefined) this.armInterval();
    else if (this.monitors.size === 0 && this.intervalTimer !== undefined) { this.intervalTimer.cancel(); this.intervalTimer = undefined; }
  }

  /** An upstream response. `status` is an HTTP status (the router maps gRPC statuses to HTTP). */
  onResponse(host: MonitoredHost, status: number): void {
    const m = host.outlier;
    if (m === undefined || m.detector !== this) return;
    this.putStatus(m, status);
  }

  /** Local-origin events: the connection/stream could not be used, or was ('success' = connected and got a response head). */
  onLocalOrigin(host: MonitoredHost, kind: LocalOriginEvent): void {
    const m = host.outlier;
    if (m === undefined || m.detector !== this) return;
    if (!this.config.splitExternalLocalOriginErrors) {
      if (kind !== 'success') this.putStatus(m, kind === 'timeout' ? 504 : 503);
      return;
    }
    m.localTotal++;
    if (kind === 'success') { m.localSuccess++; m.consecutiveLocalOriginFailure = 0; return; }
    const n = this.config.consecutiveLocalOriginFailure;
    if (++m.consecutiveLocalOriginFailure >= n && n > 0) this.onConsecutive(m, 'consecutive_local_origin_failure');
  }

  /**
   * A passing active health check. With successful_active_health_check_uneject_host (Envoy's
   * default true; the skein control plane sends false unless a policy asks) an ejected host that
   * is not failing active checks is returned at once.
   */
  onActiveHealthCheckSuccess(host: MonitoredHost): void {
    const m = host.outlier;
    if (m === undefined || m.detector !== this || !host.ejected || host.hcFailed) return;
    if (this.config.successfulActiveHealthCheckUnejectHost) this.returnHost(m, 'active health check passed');
  }

  /** For /clusters: this host's outlier state, or undefined if this detector does not track it. */
  hostInfo(host: MonitoredHost): Record<string, unknown> | undefined {
    const m = host.outlier;
    if (m === undefined || m.detector !== this) return undefined;
    return {
      ejected: host.ejected,
      timesEjected: m.timesEjected,
      ejectionsTotal: m.ejectionsTotal,
      lastEjectionTrigger: m.lastTrigger ?? null,
      ejectedUntil: host.ejected ? m.ejectedUntil : null,
      consecutive5xx: m.consecutive5xx,
      consecutiveGatewayFailure: m.consecutiveGatewayFailure,
      consecutiveLocalOriginFailure: m.consecutiveLocalOriginFailure,
      successRate: m.successRate,
      localOriginSuccessRate: m.localOriginSuccessRate,
    };
  }

  /**
   * Cancels every timer and detaches from the hosts. Hosts this detector ejected are marked not
   * ejected again WITHOUT calling onChange: an owner that keeps the cluster republishes itself.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.intervalTimer?.cancel();
    this.intervalTimer = undefined;
    for (const m of [...this.monitors.values()]) this.forget(m);
    this.gActive.set(0);
  }

  // --- the detector --------------------------------------------------------------------------

  private putStatus(m: HostMonitor, status: number): void {
    m.extTotal++;
    const c = this.config;
    if (status >= 500) {
      if (status >= 502 && status <= 504) {
        if (++m.consecutiveGatewayFailure >= c.consecutiveGatewayFailure && c.consecutiveGatewayFailure > 0) this.onConsecutive(m, 'consecutive_gateway_failure');
      } else {
        m.consecutiveGatewayFailure = 0;
      }
      if (++m.consecutive5xx >= c.consecutive5xx && c.consecutive5xx > 0) this.onConsecutive(m, 'consecutive_5xx');
    } else {
      m.extSuccess++;
      m.consecutive5xx = 0;
      m.consecutiveGatewayFailure = 0;
    }
  }

  private onConsecutive(m: HostMonitor, type: EjectionType): void {
    if (type === 'consecutive_5xx') m.consecutive5xx = 0;
    else if (type === 'consecutive_gateway_failure') m.consecutiveGatewayFailure = 0;
    else m.consecutiveLocalOriginFailure = 0;
    if (m.host.ejected || this.closed) return;
    this.cDetected[type].inc();
    this.eject(m, type);
  }

  private eject(m: HostMonitor, type: EjectionType): void {
    const c = this.config;
    const hosts = this.monitors.size;
    const fits = (this.active + 1) * 100 <= c.maxEjectionPercent * hosts;
    if (!fits && !(c.alwaysEjectOneHost && this.active === 0)) {
      this.cOverflow.inc();
      this.opts.log.warn({ cluster: this.opts.cluster, host: m.host.key, trigger: type, ejectionsActive: this.active, hosts, maxEjectionPercent: c.maxEjectionPercent, maxEjected: Math.floor((c.maxEjectionPercent * hosts) / 100) },
        'outlier detection: ejection skipped, max_ejection_percent reached');
      return;
    }
    if (!this.enforced(type)) {
      this.opts.log.info({ cluster: this.opts.cluster, host: m.host.key, trigger: type }, 'outlier detection: outlier detected, ejection not enforced');
      return;
    }
    const base = c.baseEjectionTimeMs;
    const max = Math.max(c.maxEjectionTimeMs, base);
    if (m.timesEjected * base < max + base) m.timesEjected++;
    const jitter = c.maxEjectionTimeJitterMs > 0 ? Math.floor(this.random() * (c.maxEjectionTimeJitterMs + 1)) : 0;
    const ms = Math.min(base * m.timesEjected, max) + jitter;
    const now = this.opts.clock.now();
    m.host.ejected = true;
    m.ejectionsTotal++;
    m.lastTrigger = type;
    m.ejectedAt = now;
    m.ejectedUntil = now + ms;
    m.timer = this.opts.clock.setTimer(ms, m.returnNow);
    this.active++;
    this.gActive.set(this.active);
    this.cTotal.inc();
    this.cEnforcedTotal.inc();
    this.cEnforced[type].inc();
    this.opts.log.warn({ cluster: this.opts.cluster, host: m.host.key, trigger: type, ejectionMs: ms, timesEjected: m.timesEjected, ejectionsActive: this.active },
      'outlier detection: host ejected');
    this.opts.onChange();
  }

  /** Returns an ejected host to service (its timer fired, or an active health check passed). */
  returnHost(m: HostMonitor, why = 'ejection time ended'): void {
    if (!m.host.ejected || this.monitors.get(m.host) !== m) return;
    m.timer?.cancel();
    m.timer = undefined;
    m.host.ejected = false;
    m.ejectedUntil = -1;
    m.returnedAt = this.opts.clock.now();
    m.consecutive5xx = 0;
    m.consecutiveGatewayFailure = 0;
    m.consecutiveLocalOriginFailure = 0;
    this.active--;
    this.gActive.set(this.active);
    this.opts.log.info({ cluster: this.opts.cluster, host: m.host.key, why, ejectedMs: m.returnedAt - m.ejectedAt, timesEjected: m.timesEjected, ejectionsActive: this.active },
      'outlier detection: host returned');
    this.opts.onChange();
  }

  private enforced(type: EjectionType): boolean {
    const c = this.config;
    const pct = type === 'consecutive_5xx' ? c.enforcingConsecutive5xx
      : type === 'consecutive_gateway_failure' ? c.enforcingConsecutiveGatewayFailure
      : type === 'consecutive_local_origin_failure' ? c.enforcingConsecutiveLocalOriginFailure
      : type === 'success_rate' ? c.enforcingSuccessRate
      : type === 'local_origin_success_rate' ? c.enforcingLocalOriginSuccessRate
      : type === 'failure_percentage' ? c.enforcingFailurePercentage
      : c.enforcingFailurePercentageLocalOrigin;
    if (pct >= 100) return true;
    if (pct <= 0) return false;
    return this.random() * 100 < pct;
  }

  private forget(m: HostMonitor): void {
    m.timer?.cancel();
    m.timer = undefined;
    if (m.host.ejected) { m.host.ejected = false; this.active--; this.gActive.set(this.active); }
    if (m.host.outlier === m) m.host.outlier = undefined;
    this.monitors.delete(m.host);
  }

  private armInterval(): void {
    this.intervalTimer = this.opts.clock.setTimer(this.config.intervalMs, this.onTick);
  }

  /** One sweep: swap buckets, success-rate and failure-percentage detection, backoff decay. */
  private tick(): void {
    if (this.closed) return;
    const now = this.opts.clock.now();
    const all = [...this.monitors.values()];
    const ext: number[] = [];
    const local: number[] = [];
    for (const m of all) {
      ext.push(m.extSuccess, m.extTotal);
      local.push(m.localSuccess, m.localTotal);
      m.extSuccess = m.extTotal = m.localSuccess = m.localTotal = 0;
      m.successRate = -1;
      m.localOriginSuccessRate = -1;
    }
    this.sweep(all, ext, false);
    this.sweep(all, local, true);
    for (const m of all) {
      if (!m.host.ejected && m.returnedAt >= 0 && now - m.returnedAt >= this.config.intervalMs && m.timesEjected > 0) m.timesEjected--;
    }
    this.armInterval();
  }

  /** `buckets` holds [success, total] per monitor in `all` order, for the interval just ended. */
  private sweep(all: readonly HostMonitor[], buckets: readonly number[], localOrigin: boolean): void {
    const c = this.config;
    if (all.length < c.successRateMinimumHosts && all.length < c.failurePercentageMinimumHosts) return;
    const sr: { m: HostMonitor; rate: number }[] = [];
    const fp: { m: HostMonitor; rate: number }[] = [];
    let sum = 0;
    for (let i = 0; i < all.length; i++) {
      const m = all[i]!;
      const success = buckets[2 * i]!;
      const total = buckets[2 * i + 1]!;
      if (m.host.ejected || total === 0) continue;
      const rate = (success * 100) / total;
      if (total >= Math.min(c.successRateRequestVolume, c.failurePercentageRequestVolume)) {
        if (localOrigin) m.localOriginSuccessRate = rate; else m.successRate = rate;
      }
      if (total >= c.successRateRequestVolume) { sr.push({ m, rate }); sum += rate; }
      if (total >= c.failurePercentageRequestVolume) fp.push({ m, rate });
    }
    if (sr.length > 0 && sr.length >= c.successRateMinimumHosts) {
      const mean = sum / sr.length;
      let variance = 0;
      for (const x of sr) variance += (x.rate - mean) ** 2;
      const stdev = Math.sqrt(variance / sr.length);
      const threshold = mean - stdev * (c.successRateStdevFactor / 1000);
      const type: EjectionType = localOrigin ? 'local_origin_success_rate' : 'success_rate';
      for (const x of sr) {
        if (x.rate >= threshold || x.m.host.ejected) continue;
        this.cDetected[type].inc();
        this.opts.log.info({ cluster: this.opts.cluster, host: x.m.host.key, successRate: x.rate, mean, threshold }, 'outlier detection: success-rate outlier');
        this.eject(x.m, type);
      }
    }
    if (fp.length > 0 && fp.length >= c.failurePercentageMinimumHosts) {
      const type: EjectionType = localOrigin ? 'local_origin_failure_percentage' : 'failure_percentage';
      for (const x of fp) {
        if (100 - x.rate < c.failurePercentageThreshold || x.m.host.ejected) continue;
        this.cDetected[type].inc();
        this.eject(x.m, type);
      }
    }
  }
}

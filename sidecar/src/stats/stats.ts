/**
 * The sidecar's stats registry.
 *
 * Use: look a stat up ONCE, when config is applied, and keep the object. On the request path
 * recording is then a field increment or one method call: no name building, no map lookup,
 * no allocation. Looking up the same name and tags again returns the same object, so a config
 * update that rebuilds a route keeps its counters.
 *
 * Naming scheme (Envoy-like, `<scope>.<object name>.<stat>`, snake_case stat names):
 *   listener.<listener>.downstream_cx_total | downstream_cx_active | downstream_rq_total | downstream_rq_active | no_route
 *   listener.<listener>.downstream_rq_malformed | downstream_rq_rx_reset | downstream_rq_rx_reset_unforwarded
 *   listener.<listener>.downstream_cx_rapid_reset | downstream_cx_protocol_error | downstream_rq_idle_timeout | downstream_rq_header_timeout | downstream_cx_idle_timeout
 *   route.<route>.rq_total | rq_success | rq_error | rq_1xx..rq_5xx | rq_retry | rq_timeout
 *   route.<route>.rq_time                       latency histogram (µs in, ms out)
 *   route.<route>.local_reply.<reason>          one counter per LocalReplyReason
 *   route.<route>.window                        rolling window; per backend: {backend=<cluster>}
 *   cluster.<cluster>.upstream_rq_total | upstream_rq_success | ... | upstream_rq_time
 *   cluster.<cluster>.upstream_cx_total | upstream_cx_active | upstream_cx_connect_fail
 *   cluster.<cluster>.upstream_rq_active | upstream_rq_pending_overflow | window
 * Object names are used as given (a dot in a route name is not escaped). Tags are optional
 * and render as `name{k=v,k2=v2}`, keys sorted; that rendering is the stat's key everywhere
 * (snapshot, text output, filters). The bundles in stat-bundles.ts build these names.
 */
import { systemClock } from '../../../shared/src/clock';
import type { Clock } from '../../../shared/src/clock';
import { LatencyHistogram } from './latency-histogram';
import type { LatencyPercentiles, SignificantDigits } from './latency-histogram';
import { RollingWindow } from './rolling-window';
import type { WindowSummary } from './rolling-window';

export { LatencyHistogram, MAX_LATENCY_US } from './latency-histogram';
export type { LatencyPercentiles, SignificantDigits } from './latency-histogram';
export { RollingWindow } from './rolling-window';
export type { RollingWindowOptions, WindowSummary } from './rolling-window';

export type Tags = Readonly<Record<string, string>>;

/** A monotonically increasing count. `value` is a plain field: `c.value++` is fine too. */
export class Counter {
  value = 0;
  inc(n = 1): void { this.value += n; }
}

/** A value that goes up and down (active connections, healthy hosts). */
export class Gauge {
  value = 0;
  set(v: number): void { this.value = v; }
  add(d: number): void { this.value += d; }
}

export interface StatsOptions {
  /** Drives rolling windows. Default: the system clock. */
  clock?: Clock;
  /** Rolling-window length in seconds. Default 10. */
  windowSeconds?: number;
  /** Rolling-window histogram precision. Default 2 (see RollingWindow). */
  windowDigits?: SignificantDigits;
}

/** JSON-able view of every stat, keyed by rendered name, keys sorted. */
export interface StatsSnapshot {
  counters: Record<string, number>;
  gauges: Record<string, number>;
  histograms: Record<string, LatencyPercentiles>;
  windows: Record<string, WindowSummary>;
}

interface Kinds { counter: Counter; gauge: Gauge; histogram: LatencyHistogram; window: RollingWindow }
type Entry = { [K in keyof Kinds]: { kind: K; stat: Kinds[K] } }[keyof Kinds];

/** `name` or `name{k=v,...}` with keys sorted. */
export function statKey(name: string, tags?: Tags): string {
  if (name === '') throw new RangeError('stat name must not be empty');
  if (tags === undefined) return name;
  const keys = Object.keys(tags).sort();
  if (keys.length === 0) return name;
  return `${name}{${keys.map((k) => `${k}=${tags[k]}`).join(',')}}`;
}

export class Stats {
  readonly clock: Clock;
  private readonly windowSeconds: number;
  private readonly windowDigits: SignificantDigits;
  private readonly entries = new Map<string, Entry>();

  constructor(opts: StatsOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.windowSeconds = opts.windowSeconds ?? 10;
    this.windowDigits = opts.windowDigits ?? 2;
  }

  counter(name: string, tags?: Tags): Counter {
    return this.lookup(statKey(name, tags), 'counter', () => new Counter());
  }

  gauge(name: string, tags?: Tags): Gauge {
    return this.lookup(statKey(name, tags), 'gauge', () => new Gauge());
  }

  histogram(name: string, tags?: Tags): LatencyHistogram {
    return this.lookup(statKey(name, tags), 'histogram', () => new LatencyHistogram());
  }

  window(name: string, tags?: Tags): RollingWindow {
    return this.lookup(statKey(name, tags), 'window', () => new RollingWindow(this.clock, { seconds: this.windowSeconds, significantDigits: this.windowDigits }));
  }

  /** Every stat whose key contains `filter` (all when omitted). Windows are summarized now. */
  snapshot(filter?: string): StatsSnapshot {
    const out: StatsSnapshot = { counters: {}, gauges: {}, histograms: {}, windows: {} };
    const now = this.clock.now();
    for (const [key, e] of this.sorted(filter)) {
      switch (e.kind) {
        case 'counter': out.counters[key] = e.stat.value; break;
        case 'gauge': out.gauges[key] = e.stat.value; break;
        case 'histogram': out.histograms[key] = e.stat.percentiles(); break;
        case 'window': out.windows[key] = e.stat.summary(now); break;
      }
    }
    return out;
  }

  /** One `key: value` line per stat, sorted by key; histograms and windows as `k=v` fields. */
  text(filter?: string): string {
    const now = this.clock.now();
    const lines: string[] = [];
    for (const [key, e] of this.sorted(filter)) {
      switch (e.kind) {
        case 'counter':
        case 'gauge': lines.push(`${key}: ${e.stat.value}`); break;
        case 'histogram': lines.push(`${key}: ${fields(e.stat.percentiles())}`); break;
        case 'window': lines.push(`${key}: ${fields(e.stat.summary(now))}`); break;
      }
    }
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  }

  private sorted(filter: string | undefined): [string, Entry][] {
    const all = [...this.entries];
    const picked = filter === undefined || filter === '' ? all : all.filter(([k]) => k.includes(filter));
    return picked.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  private lookup<K extends keyof Kinds>(key: string, kind: K, make: () => Kinds[K]): Kinds[K] {
    const found = this.entries.get(key);
    if (found !== undefined) {
      if (found.kind !== kind) throw new TypeError(`stat ${key} is a ${found.kind}, not a ${kind}`);
      return found.stat as Kinds[K];
    }
    const stat = make();
    this.entries.set(key, { kind, stat } as Entry);
    return stat;
  }
}

function fields(o: object): string {
  return Object.entries(o).map(([k, v]) => `${k}=${v === null ? '-' : String(v)}`).join(' ');
}

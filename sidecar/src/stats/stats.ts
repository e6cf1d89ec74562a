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
 *   route.<route>.local_reply.<reason>          one counter per reason (http/local-reply.ts)
 *   route.<route>.window                        rolling window; per backend: {backend=<cluster>}
 *   cluster.<cluster>.upstream_rq_total | upstream_rq_success | ... | upstream_rq_time
 *   cluster.<cluster>.upstream_cx_total | upstream_cx_active | upstream_cx_connect_fail
 *   cluster.<cluster>.upstream_rq_active | upstream_rq_pending_overflow | window
 * Each route's and cluster's stats live in its scope (`route.<name>`, `cluster.<name>`: see
 * StatScope), which the registry drops, after a retention, once the config no longer has the
 * object (setLiveness / reconcile). Other stats (`listener.*`) live in the root scope.
 * Object names are used as given (a dot in a route name is not escaped). Tags are optional
 * and render as `name{k=v,k2=v2}`, keys sorted; that rendering is the stat's key everywhere
 * (snapshot, text output, filters). The bundles in stat-bundles.ts build these names.
 */
import { systemClock } from '../../../shared/src/clock';
import type { Clock, TimerHandle } from '../../../shared/src/clock';
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
  /** Drives rolling windows and the retention of removed resources' stats. Default: the system clock. */
  clock?: Clock;
  /** Rolling-window length in seconds. Default 10. */
  windowSeconds?: number;
  /** Rolling-window histogram precision. Default 2 (see RollingWindow). */
  windowDigits?: SignificantDigits;
  /**
   * How long the stats of a removed cluster or route stay listed after the config dropped it
   * (ms; default 60000, Envoy keeps a deleted cluster's stats until its last user lets go). 0
   * drops them at the next reconcile(). See setLiveness().
   */
  retentionMs?: number;
}

/** Default retention of a removed resource's stats (ms). */
export const DEFAULT_STATS_RETENTION_MS = 60_000;

/** JSON-able view of every stat, keyed by rendered name, keys sorted. */
export interface StatsSnapshot {
  counters: Record<string, number>;
  gauges: Record<string, number>;
  histograms: Record<string, LatencyPercentiles>;
  windows: Record<string, WindowSummary>;
}

type Stat = Counter | Gauge | LatencyHistogram | RollingWindow;
type Kind = 'counter' | 'gauge' | 'histogram' | 'window';

function kindOf(s: Stat): Kind {
  return s instanceof Counter ? 'counter' : s instanceof Gauge ? 'gauge' : s instanceof LatencyHistogram ? 'histogram' : 'window';
}

/** `name` or `name{k=v,...}` with keys sorted. */
export function statKey(name: string, tags?: Tags): string {
  if (name === '') throw new RangeError('stat name must not be empty');
  if (tags === undefined) return name;
  const keys = Object.keys(tags).sort();
  if (keys.length === 0) return name;
  return `${name}{${keys.map((k) => `${k}=${tags[k]}`).join(',')}}`;
}

/**
 * Above this many stats a scope indexes its keys in a Map (~40 bytes a key); below it lookups
 * scan the keys. Lookups happen when config is applied (and for a gRPC code's first answer),
 * never per request, and a cluster's scope holds about 50 stats.
 */
const SCAN_LIMIT = 128;

/**
 * The stats of one object (a cluster, a route: `cluster.<name>`, `route.<name>`), or the root
 * scope (name ''). Keys are relative to the scope (`upstream_rq_total`), so bundles pass
 * constant strings and a scope keeps two arrays, not a Map entry and a full name per stat:
 * about 70 bytes per stat instead of about 260 (the difference, per cluster, between ~3 KB and
 * ~13 KB of counters). The registry drops a whole scope when its object leaves the config.
 */
export class StatScope {
  /** Keys (relative, tags rendered) and stats, in creation order. */
  readonly keys: string[] = [];
  readonly stats: Stat[] = [];
  private index: Map<string, number> | undefined;
  /** Clock ms since the config stopped having this scope's object; -1 while it has it. */
  deadSince = -1;
  /** Dropped by the registry: its stats are no longer listed, and a lookup makes a new scope. */
  released = false;

  constructor(readonly name: string, private readonly registry: Stats) {}

  counter(name: string, tags?: Tags): Counter { return this.lookup(statKey(name, tags), 'counter', newCounter); }
  gauge(name: string, tags?: Tags): Gauge { return this.lookup(statKey(name, tags), 'gauge', newGauge); }
  histogram(name: string, tags?: Tags): LatencyHistogram { return this.lookup(statKey(name, tags), 'histogram', newHistogram); }
  window(name: string, tags?: Tags): RollingWindow { return this.lookup(statKey(name, tags), 'window', () => this.registry.newWindow()); }

  /** The rendered, registry-wide name of a key in this scope. */
  fullName(key: string): string { return this.name === '' ? key : `${this.name}.${key}`; }

  /** Releases what the stats hold (histogram arrays); the scope is being dropped. */
  destroy(): void {
    this.released = true;
    for (const s of this.stats) if (s instanceof LatencyHistogram || s instanceof RollingWindow) s.destroy();
  }

  private find(key: string): number {
    if (this.index !== undefined) return this.index.get(key) ?? -1;
    return this.keys.indexOf(key);
  }

  private lookup<S extends Stat>(key: string, kind: Kind, make: () => S): S {
    const i = this.find(key);
    if (i >= 0) {
      const found = this.stats[i]!;
      const k = kindOf(found);
      if (k !== kind) throw new TypeError(`stat ${this.fullName(key)} is a ${k}, not a ${kind}`);
      return found as S;
    }
    const stat = make();
    this.keys.push(key);
    this.stats.push(stat);
    if (this.index !== undefined) this.index.set(key, this.keys.length - 1);
    else if (this.keys.length > SCAN_LIMIT) this.index = new Map(this.keys.map((k, j) => [k, j]));
    return stat;
  }
}

function newCounter(): Counter { return new Counter(); }
function newGauge(): Gauge { return new Gauge(); }
function newHistogram(): LatencyHistogram { return new LatencyHistogram(); }

/**
 * Stats kept in scopes. Retention: the owner says which scopes its config still has
 * (setLiveness) and calls reconcile() after every config change; a scope the config no longer
 * has is listed for `retentionMs` more (so a scrape after a rollback still sees the last
 * counts), then dropped with everything it holds. A scope whose object comes back within that
 * time keeps its stats. A request still in flight on a removed object records into its stats
 * until then, and into objects no longer listed after.
 */
export class Stats {
  readonly clock: Clock;
  readonly retentionMs: number;
  private readonly windowSeconds: number;
  private readonly windowDigits: SignificantDigits;
  private readonly root: StatScope;
  private readonly scopes = new Map<string, StatScope>();
  private isLive: ((scope: string) => boolean) | undefined;
  private sweepTimer: TimerHandle | undefined;
  private sweepAt = Infinity;

  constructor(opts: StatsOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.windowSeconds = opts.windowSeconds ?? 10;
    this.windowDigits = opts.windowDigits ?? 2;
    this.retentionMs = opts.retentionMs ?? DEFAULT_STATS_RETENTION_MS;
    if (!(this.retentionMs >= 0)) throw new RangeError(`stats retention must be >= 0 ms, got ${this.retentionMs}`);
    this.root = new StatScope('', this);
    this.scopes.set('', this.root);
  }

  /**
   * The scope `name` (e.g. `cluster.reviews`), created on first use. A stat `k` in it is listed
   * as `<name>.k`, and a full-name lookup (`counter('<name>.k')`) finds it.
   */
  scope(name: string): StatScope {
    let s = this.scopes.get(name);
    if (s === undefined) {
      if (name === '') throw new RangeError('scope name must not be empty');
      s = new StatScope(name, this);
      this.scopes.set(name, s);
      // Made for an object the config no longer has (a request in flight on it): retire it too.
      if (this.isLive !== undefined && !this.isLive(name)) this.retire(s, this.clock.now());
    }
    return s;
  }

  /** Full-name lookups: the stat goes to the longest existing scope its name starts with, else the root. */
  counter(name: string, tags?: Tags): Counter { const [s, k] = this.resolve(name); return s.counter(k, tags); }
  gauge(name: string, tags?: Tags): Gauge { const [s, k] = this.resolve(name); return s.gauge(k, tags); }
  histogram(name: string, tags?: Tags): LatencyHistogram { const [s, k] = this.resolve(name); return s.histogram(k, tags); }
  window(name: string, tags?: Tags): RollingWindow { const [s, k] = this.resolve(name); return s.window(k, tags); }

  /** A new rolling window with this registry's settings. */
  newWindow(): RollingWindow {
    return new RollingWindow(this.clock, { seconds: this.windowSeconds, significantDigits: this.windowDigits });
  }

  /** Which scopes the config still has (the root always is). Set once by the owner. */
  setLiveness(isLive: (scope: string) => boolean): void { this.isLive = isLive; }

  /**
   * After a config change: scopes the config dropped start their retention, scopes it has again
   * stop it, and scopes past their retention are dropped.
   */
  reconcile(): void {
    const live = this.isLive;
    if (live === undefined) return;
    const now = this.clock.now();
    for (const s of this.scopes.values()) {
      if (s === this.root) continue;
      if (live(s.name)) s.deadSince = -1;
      else if (s.deadSince < 0) this.retire(s, now);
    }
    this.sweep();
  }

  /** Scopes, including those waiting out their retention. */
  get scopeCount(): number { return this.scopes.size - 1; }

  /** Scopes whose object left the config, listed until their retention ends. */
  get retainedCount(): number {
    let n = 0;
    for (const s of this.scopes.values()) if (s.deadSince >= 0) n++;
    return n;
  }

  /** Every stat whose key contains `filter` (all when omitted). Windows are summarized now. */
  snapshot(filter?: string): StatsSnapshot {
    const out: StatsSnapshot = { counters: {}, gauges: {}, histograms: {}, windows: {} };
    const now = this.clock.now();
    for (const [key, stat] of this.sorted(filter)) {
      if (stat instanceof Counter) out.counters[key] = stat.value;
      else if (stat instanceof Gauge) out.gauges[key] = stat.value;
      else if (stat instanceof LatencyHistogram) out.histograms[key] = stat.percentiles();
      else out.windows[key] = stat.summary(now);
    }
    return out;
  }

  /** Counters and gauges only (no histogram or window is summarized): what /metrics reads. */
  scalars(filter?: string): Pick<StatsSnapshot, 'counters' | 'gauges'> {
    const out: Pick<StatsSnapshot, 'counters' | 'gauges'> = { counters: {}, gauges: {} };
    for (const [key, stat] of this.sorted(filter)) {
      if (stat instanceof Counter) out.counters[key] = stat.value;
      else if (stat instanceof Gauge) out.gauges[key] = stat.value;
    }
    return out;
  }

  /** One `key: value` line per stat, sorted by key; histograms and windows as `k=v` fields. */
  text(filter?: string): string {
    const now = this.clock.now();
    const lines: string[] = [];
    for (const [key, stat] of this.sorted(filter)) {
      if (stat instanceof Counter || stat instanceof Gauge) lines.push(`${key}: ${stat.value}`);
      else if (stat instanceof LatencyHistogram) lines.push(`${key}: ${fields(stat.percentiles())}`);
      else lines.push(`${key}: ${fields(stat.summary(now))}`);
    }
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  }

  private retire(s: StatScope, now: number): void {
    s.deadSince = now;
    this.armSweep(now + this.retentionMs);
  }

  /** Drops the scopes past their retention; re-arms for the next one due. */
  private sweep(): void {
    const now = this.clock.now();
    let next = Infinity;
    for (const [name, s] of this.scopes) {
      if (s.deadSince < 0) continue;
      // Its object may have come back (or been made after its scope) since: keep it then.
      if (this.isLive?.(name) === true) { s.deadSince = -1; continue; }
      const due = s.deadSince + this.retentionMs;
      if (due <= now) { this.scopes.delete(name); s.destroy(); } else if (due < next) next = due;
    }
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    this.sweepAt = Infinity;
    if (next !== Infinity) this.armSweep(next);
  }

  private armSweep(at: number): void {
    if (at >= this.sweepAt) return;
    this.sweepTimer?.cancel();
    this.sweepAt = at;
    this.sweepTimer = this.clock.setTimer(Math.max(0, at - this.clock.now()), () => { this.sweepTimer = undefined; this.sweepAt = Infinity; this.sweep(); });
  }

  private resolve(name: string): [StatScope, string] {
    if (name === '') throw new RangeError('stat name must not be empty');
    if (this.scopes.size > 1) {
      for (let i = name.lastIndexOf('.'); i > 0; i = name.lastIndexOf('.', i - 1)) {
        const s = this.scopes.get(name.slice(0, i));
        if (s !== undefined) return [s, name.slice(i + 1)];
      }
    }
    return [this.root, name];
  }

  private sorted(filter: string | undefined): [string, Stat][] {
    const all: [string, Stat][] = [];
    const any = filter === undefined || filter === '';
    for (const s of this.scopes.values()) {
      for (let i = 0; i < s.keys.length; i++) {
        const key = s.fullName(s.keys[i]!);
        if (any || key.includes(filter)) all.push([key, s.stats[i]!]);
      }
    }
    return all.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}

function fields(o: object): string {
  return Object.entries(o).map(([k, v]) => `${k}=${v === null ? '-' : String(v)}`).join(' ');
}

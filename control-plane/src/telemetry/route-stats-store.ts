/**
 * The mesh-wide per route × version stats the sidecars report (route-stats-service.ts), merged.
 *
 * Reports are filed by arrival time (the control plane's clock) into slots of SLOT_MS, kept for
 * RETENTION_MS. A slot holds, per route and cluster, the request and success counts, the exact
 * latency sum and maximum, one HdrHistogram with every reported histogram added in (a lossless
 * merge: bucket counts add), and the requests per reporting proxy; and, per proxy, how much time
 * its reports covered. A window's answer merges the slots it overlaps the same way; percentiles
 * are read from the merged histogram, never averaged.
 *
 * Rates: each proxy's requests divided by the time its own reports in the window cover, summed
 * over proxies. So a proxy that started reporting 20 s ago is not diluted over a 1 m window, and
 * the answer does not depend on how report intervals fall against the window's edges.
 */
import type { JsHistogram } from 'hdr-histogram-js';
import type { Clock } from '../../../shared/src/clock';
import { buildLatencyHistogram, percentileMs } from '../../../shared/src/stats/latency-codec';
import type { SignificantDigits } from '../../../shared/src/stats/latency-codec';

/** Slot length (ms): a window is answered in whole slots. */
export const SLOT_MS = 5000;
/** How long reports are kept, and the longest window. */
export const RETENTION_MS = 15 * 60_000;
/** The shortest window. */
export const MIN_WINDOW_MS = SLOT_MS;

/** One route × cluster of one report, decoded and checked (route-stats-service.ts). */
export interface ReportedStats {
  route: string;
  cluster: string;
  requests: number;
  successes: number;
  latency: JsHistogram;
  sumUs: number;
  maxUs: number;
}

export interface Report {
  node: string;
  /** The reporter's SPIFFE ID. */
  identity: string;
  /** Time covered (ms). */
  coveredMs: number;
  stats: ReportedStats[];
}

/** A reporting proxy as the answer lists it. */
export interface ReporterView { node: string; identity: string; lastReportAt: string; reports: number }

/** One route × version over a window. Latencies in ms (whole µs); rates rounded to 3 decimals. */
export interface RouteVersionView {
  route: string;
  /** The destination service and subset (version; '' for the whole service) of `cluster`. */
  service: string;
  version: string;
  cluster: string;
  /** The share of the route's traffic the current config sends to this cluster (percent), or null if the config no longer has it. */
  weight: number | null;
  requests: number;
  successes: number;
  rps: number;
  /** successes / requests, or null with none. */
  successRate: number | null;
  latencyMs: { p50: number; p95: number; p99: number; max: number; mean: number };
  /** The proxies whose reports in the window carry this row. */
  proxies: { node: string; lastReportAt: string }[];
}

export interface RouteStatsView {
  windowMs: number;
  generatedAt: string;
  /** Histogram precision: a percentile is within 10^-digits (relative) of the exact one. */
  significantDigits: number;
  routes: RouteVersionView[];
  /** Every proxy with a report in the window. */
  proxies: ReporterView[];
}

/** Counts since the control plane started, per route and cluster (for /metrics counters). */
export interface RouteTotals { route: string; cluster: string; requests: number; successes: number }

/** The config's weights: route name -> cluster -> percent. */
export type RouteWeights = ReadonlyMap<string, ReadonlyMap<string, number>>;

interface KeyStats {
  route: string;
  cluster: string;
  requests: number;
  successes: number;
  sumUs: number;
  maxUs: number;
  latency: JsHistogram | undefined;
  byNode: Map<string, number>;
}

interface Slot {
  start: number;
  covered: Map<string, number>;
  keys: Map<string, KeyStats>;
}

interface Reporter { identity: string; lastReportAt: number; reports: number }

const keyOf = (route: string, cluster: string): string => `${route}\u0000${cluster}`;

function newKeyStats(route: string, cluster: string): KeyStats {
  return { route, cluster, requests: 0, successes: 0, sumUs: 0, maxUs: 0, latency: undefined, byNode: new Map() };
}

function addInto(into: KeyStats, s: { requests: number; successes: number; sumUs: number; maxUs: number; latency: JsHistogram | undefined }): void {
  into.requests += s.requests;
  into.successes += s.successes;
  into.sumUs += s.sumUs;
  if (s.maxUs > into.maxUs) into.maxUs = s.maxUs;
  if (s.latency === undefined || s.latency.totalCount === 0) return;
  into.latency ??= buildLatencyHistogram(s.latency.numberOfSignificantValueDigits as SignificantDigits);
  into.latency.add(s.latency);
}

export class RouteStatsStore {
  /** Ascending by start. */
  private slots: Slot[] = [];
  private readonly reporters = new Map<string, Reporter>();
  private readonly totals = new Map<string, RouteTotals>();

  constructor(private readonly clock: Clock) {}

  add(r: Report): void {
    const now = this.clock.now();
    const slot = this.slotAt(now);
    slot.covered.set(r.node, (slot.covered.get(r.node) ?? 0) + r.coveredMs);
    for (const s of r.stats) {
      const key = keyOf(s.route, s.cluster);
      let k = slot.keys.get(key);
      if (k === undefined) { k = newKeyStats(s.route, s.cluster); slot.keys.set(key, k); }
      addInto(k, s);
      k.byNode.set(r.node, (k.byNode.get(r.node) ?? 0) + s.requests);
      let t = this.totals.get(key);
      if (t === undefined) { t = { route: s.route, cluster: s.cluster, requests: 0, successes: 0 }; this.totals.set(key, t); }
      t.requests += s.requests;
      t.successes += s.successes;
    }
    const rep = this.reporters.get(r.node);
    if (rep === undefined) this.reporters.set(r.node, { identity: r.identity, lastReportAt: now, reports: 1 });
    else { rep.identity = r.identity; rep.lastReportAt = now; rep.reports++; }
  }

  /** Per route and cluster, requests and successes since the control plane started. */
  allTimeTotals(): RouteTotals[] { return [...this.totals.values()].map((t) => ({ ...t })); }

  /** The last `windowMs` (whole slots overlapping it), merged; `weights` from the current config. */
  query(windowMs: number, weights: RouteWeights = new Map()): RouteStatsView {
    const now = this.clock.now();
    this.prune(now);
    const from = now - windowMs;
    const merged = new Map<string, KeyStats>();
    const covered = new Map<string, number>();
    let digits = 0;
    for (const slot of this.slots) {
      if (slot.start + SLOT_MS <= from) continue;
      for (const [node, ms] of slot.covered) covered.set(node, (covered.get(node) ?? 0) + ms);
      for (const [key, k] of slot.keys) {
        let m = merged.get(key);
        if (m === undefined) { m = newKeyStats(k.route, k.cluster); merged.set(key, m); }
        addInto(m, k);
        if (k.latency !== undefined) digits = Math.max(digits, k.latency.numberOfSignificantValueDigits);
        for (const [node, n] of k.byNode) m.byNode.set(node, (m.byNode.get(node) ?? 0) + n);
      }
    }
    const iso = (node: string): string => new Date(this.reporters.get(node)?.lastReportAt ?? now).toISOString();
    const routes: RouteVersionView[] = [];
    for (const m of merged.values()) {
      let rps = 0;
      for (const [node, n] of m.byNode) {
        const c = covered.get(node) ?? 0;
        if (c > 0) rps += n / (c / 1000);
      }
      const slash = m.cluster.indexOf('/');
      const h = m.latency;
      const pct = (p: number): number => (h === undefined ? 0 : percentileMs(h, p, m.maxUs));
      routes.push({
        route: m.route, service: slash < 0 ? m.cluster : m.cluster.slice(0, slash), version: slash < 0 ? '' : m.cluster.slice(slash + 1), cluster: m.cluster,
        weight: weights.get(m.route)?.get(m.cluster) ?? null,
        requests: m.requests, successes: m.successes, rps: round3(rps), successRate: m.requests === 0 ? null : round3(m.successes / m.requests),
        latencyMs: { p50: pct(50), p95: pct(95), p99: pct(99), max: Math.round(m.maxUs) / 1000, mean: m.requests === 0 ? 0 : Math.round(m.sumUs / m.requests) / 1000 },
        proxies: [...m.byNode.keys()].sort().map((node) => ({ node, lastReportAt: iso(node) })),
      });
    }
    routes.sort((a, b) => (a.route < b.route ? -1 : a.route > b.route ? 1 : a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : 0));
    const proxies: ReporterView[] = [...covered.keys()].sort().map((node) => {
      const r = this.reporters.get(node);
      return { node, identity: r?.identity ?? '', lastReportAt: iso(node), reports: r?.reports ?? 0 };
    });
    return { windowMs, generatedAt: new Date(now).toISOString(), significantDigits: digits, routes, proxies };
  }

  private slotAt(now: number): Slot {
    this.prune(now);
    const start = now - (now % SLOT_MS);
    const last = this.slots[this.slots.length - 1];
    if (last !== undefined && last.start === start) return last;
    const slot: Slot = { start, covered: new Map(), keys: new Map() };
    this.slots.push(slot);
    return slot;
  }

  /** Drops slots past the retention, and proxies that have not reported within it. */
  private prune(now: number): void {
    let drop = 0;
    while (drop < this.slots.length && this.slots[drop]!.start + SLOT_MS <= now - RETENTION_MS) drop++;
    if (drop > 0) this.slots = this.slots.slice(drop);
    // Kept as long as a slot may hold their reports.
    for (const [node, r] of this.reporters) if (r.lastReportAt < now - RETENTION_MS - SLOT_MS) this.reporters.delete(node);
  }
}

function round3(x: number): number { return Math.round(x * 1000) / 1000; }

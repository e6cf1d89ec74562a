/**
 * What `skein top` shows, as text: pure functions from a GET /v1/stats/routes answer to screen
 * lines (filter, sort, columns, the reporting proxies), so the live loop (top-command.ts) only
 * fetches, draws and reads keys. Colour is ANSI SGR, only when asked for.
 */
import type { RouteStatsView, RouteVersionView } from '../telemetry/route-stats-store';

export const SORTS = ['rps', 'p99', 'success', 'route'] as const;
export type TopSort = (typeof SORTS)[number];

export interface TopFilter { route?: string; service?: string }

/** Rows that pass the filter (`route`: the route name contains it; `service`: exactly), sorted. */
export function topRows(view: RouteStatsView, sort: TopSort, filter: TopFilter): RouteVersionView[] {
  const rows = view.routes.filter((r) => (filter.route === undefined || r.route.includes(filter.route)) && (filter.service === undefined || r.service === filter.service));
  const byName = (a: RouteVersionView, b: RouteVersionView): number => (a.route < b.route ? -1 : a.route > b.route ? 1 : a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : 0);
  const cmp: Record<TopSort, (a: RouteVersionView, b: RouteVersionView) => number> = {
    rps: (a, b) => b.rps - a.rps || byName(a, b),
    p99: (a, b) => b.latencyMs.p99 - a.latencyMs.p99 || byName(a, b),
    // Worst first; rows with no requests last.
    success: (a, b) => (a.successRate ?? 2) - (b.successRate ?? 2) || byName(a, b),
    route: byName,
  };
  return [...rows].sort(cmp[sort]);
}

export interface RenderOptions {
  sort: TopSort;
  filter: TopFilter;
  color: boolean;
  /** Screen size: lines beyond `height` are cut (with a note), each line to `width`. */
  width: number;
  height: number;
  /** The last fetch failed: shown on the status line, the last good view stays. */
  error?: string;
  now: number;
}

const COLUMNS = ['ROUTE', 'SERVICE', 'VERSION', 'WEIGHT', 'RPS', 'SUCCESS', 'P50 ms', 'P95 ms', 'P99 ms'];
const RIGHT = new Set([3, 4, 5, 6, 7, 8]);

function fmt(n: number, digits: number): string { return n.toFixed(digits); }

function cells(r: RouteVersionView): string[] {
  return [
    r.route, r.service, r.version === '' ? '*' : r.version, r.weight === null ? '-' : `${fmt(r.weight, r.weight % 1 === 0 ? 0 : 1)}%`,
    fmt(r.rps, 1), r.successRate === null ? '-' : `${fmt(r.successRate * 100, 2)}%`,
    fmt(r.latencyMs.p50, 2), fmt(r.latencyMs.p95, 2), fmt(r.latencyMs.p99, 2),
  ];
}

const SGR = { bold: '\x1b[1m', inverse: '\x1b[7m', green: '\x1b[32m', yellow: '\x1b[33m', red: '\x1b[31m', dim: '\x1b[2m', reset: '\x1b[0m' };

/** A screen line: its text and, with colour on, the SGR code it is drawn in. */
interface Line { text: string; code?: string }

/** The screen: a status line, the proxies that report, the table. */
export function renderTop(view: RouteStatsView | undefined, o: RenderOptions): string[] {
  const time = new Date(o.now).toISOString().slice(11, 19);
  const filters = [o.filter.route === undefined ? '' : ` route~${o.filter.route}`, o.filter.service === undefined ? '' : ` service=${o.filter.service}`].join('');
  const lines: Line[] = [{ text: `skein top  ${time}  window ${view === undefined ? '-' : `${view.windowMs / 1000}s`}  sort ${o.sort}${filters}  (s: sort, q: quit)`, code: SGR.bold }];
  if (o.error !== undefined) lines.push({ text: `error: ${o.error}`, code: SGR.red });
  if (view !== undefined) {
    const ago = (iso: string): string => `${Math.max(0, Math.round((o.now - Date.parse(iso)) / 1000))}s ago`;
    lines.push({
      text: view.proxies.length === 0
        ? 'proxies: none has reported in the window (sidecars report every --stats-report-interval)'
        : `proxies (${view.proxies.length}): ${view.proxies.map((p) => `${p.node} ${ago(p.lastReportAt)}`).join(', ')}`,
    }, { text: '' });
    const rows = topRows(view, o.sort, o.filter).map((r) => ({ r, c: cells(r) }));
    const widths = COLUMNS.map((h, i) => Math.max(h.length, ...rows.map((x) => x.c[i]!.length)));
    const line = (c: string[]): string => c.map((v, i) => (RIGHT.has(i) ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
    lines.push({ text: line(COLUMNS), code: SGR.inverse });
    for (const { r, c } of rows) {
      const rate = r.successRate;
      lines.push({ text: line(c), ...(rate === null ? {} : { code: rate >= 0.99 ? SGR.green : rate >= 0.95 ? SGR.yellow : SGR.red }) });
    }
    if (rows.length === 0) lines.push({ text: view.routes.length === 0 ? 'no requests in the window' : 'no row matches the filter', code: SGR.dim });
  }
  let shown = lines;
  if (lines.length > o.height) {
    shown = lines.slice(0, Math.max(1, o.height - 1));
    shown.push({ text: `... ${lines.length - shown.length} more rows (filter with --route / --service)` });
  }
  return shown.map((l) => {
    const text = l.text.slice(0, o.width);
    return o.color && l.code !== undefined && text !== '' ? `${l.code}${text}${SGR.reset}` : text;
  });
}

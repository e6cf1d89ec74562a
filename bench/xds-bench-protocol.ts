/**
 * What the processes of `npm run bench:xds` (bench/xds-scale.ts) say to each other over IPC, and
 * the few things they share: service names, the markers a change carries, a millisecond histogram.
 *
 * Markers: a change carries a number the clients can read off what they decode, so a client can
 * tell which change a response brings. A route change k gives its service a second port
 * ROUTE_MARKER_BASE + k (its virtual host's domains gain `s<i>:<port>`); endpoint churn event k
 * registers the service's churn endpoint on port CHURN_MARKER_BASE + k (its ClusterLoadAssignment).
 */

export const ROUTE_MARKER_BASE = 51_000;
export const CHURN_MARKER_BASE = 10_000;
/** Port of the steady endpoints (below every churn marker). */
export const ENDPOINT_PORT = 8080;

export function svcName(i: number): string { return `s${i}`; }
/** The service index of `s<i>` (a cluster, ClusterLoadAssignment or virtual host name), or -1. */
export function svcIndex(name: string): number {
  if (name.charCodeAt(0) !== 115 /* s */) return -1;
  const n = Number(name.slice(1));
  return Number.isInteger(n) ? n : -1;
}

export type Protocol = 'sotw' | 'delta';
export type EventKind = 'route' | 'churn';

/** The plan of a mode's changes, known to the workers up front (which service each change hits). */
export interface ChangePlan { route: number[]; churn: number[] }

export type ToPlane =
  | { op: 'setup'; services: number; subsets: number; endpoints: number; deps: number[][] | null }
  | { op: 'route'; k: number; svc: number; deps: number[] | null }
  | { op: 'churn'; plan: number[]; rate: number }
  | { op: 'stats' }
  /** Ends the CPU profile being taken (writing it to `file` of the previous message) and, with a `file`, starts one to write there. */
  | { op: 'profile'; file: string | null };

export type FromPlane =
  | { op: 'ready'; port: number }
  | { op: 'setupDone' }
  | { op: 'event'; kind: EventKind; k: number; svc: number; at: number }
  | { op: 'churnDone' }
  | { op: 'stats'; proxies: number; stale: number; nacked: number }
  | { op: 'profiled' }
  | { op: 'error'; message: string };

export interface WorkerInit {
  port: number;
  protocol: Protocol;
  /** Global index of this worker's first client, and how many it runs. */
  first: number;
  count: number;
  services: number;
  /** Per service, its declared dependencies (scoped modes); null: every proxy gets every service. */
  deps: number[][] | null;
  plan: ChangePlan;
}

export type ToWorker =
  | { op: 'connect' }
  | { op: 'event'; kind: EventKind; k: number; svc: number; at: number }
  | { op: 'progress' }
  | { op: 'report' };

export interface WorkerReport {
  op: 'report';
  /** [ms, count] pairs of convergence samples per kind. */
  route: [number, number][];
  churn: [number, number][];
  /** Per kind: (client, change) pairs due and not seen. */
  unconverged: Record<EventKind, number>;
  bytes: number[];
  rssMiB: number;
  /** Clients whose stream is not open at the report. */
  ended: number;
  /** Stream ends (each followed by a reconnect), and their gRPC status codes. */
  reconnects: number;
  streamErrors: Record<string, number>;
}

export type FromWorker =
  | { op: 'ready' }
  | { op: 'synced'; at: number }
  | { op: 'progress'; pending: Record<EventKind, number>; synced: number; reconnects: number; open: number }
  | WorkerReport;

/** Counts per whole millisecond (sparse), merged and read as quantiles. */
export class MsHistogram {
  readonly counts = new Map<number, number>();
  n = 0;

  add(ms: number, count = 1): void {
    const b = Math.max(0, Math.round(ms));
    this.counts.set(b, (this.counts.get(b) ?? 0) + count);
    this.n += count;
  }

  merge(pairs: readonly [number, number][]): void { for (const [ms, c] of pairs) this.add(ms, c); }

  pairs(): [number, number][] { return [...this.counts]; }

  /** The value at quantile q (0..1), in milliseconds; null without samples. */
  quantile(q: number): number | null {
    if (this.n === 0) return null;
    const sorted = [...this.counts].sort((a, b) => a[0] - b[0]);
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (const [ms, c] of sorted) { seen += c; if (seen >= rank) return ms; }
    return sorted[sorted.length - 1]![0];
  }
}

/**
 * What the stages of one listener's request path share, without depending on the connection
 * manager's class (it implements ListenerContext): the clock, the random source, the listener's
 * settings and stats, and the last two steps of routing (cluster and host: `select`).
 */
import type { AccessLog } from '../stats/access-log';
import type { ListenerTracer } from '../tracing/tracer';
import type { ListenerTracing } from '../xds/hcm-tracing';
import type { Clock } from '../../../shared/src/clock';
import type { RequestHeaders } from '../route/header-matcher';
import type { RouteEntry, RouteTable } from '../route/route-table';
import type { Cluster } from '../upstream/cluster';
import type { Host, PickContext } from '../upstream/host';
import type { ListenerStats, RouteStats } from '../stats/stat-bundles';
import type { RollingWindow } from '../stats/stats';
import type { RouteTarget } from '../stats/request-metrics';
import type { HttpFilterChain } from './http-filter';
import type { LocalReply } from './local-reply';

/** What one request needs from config; swapped whole on every update (in-flight requests keep theirs). */
export interface RouterSnapshot {
  readonly routes: RouteTable | undefined;
  readonly clusters: ReadonlyMap<string, Cluster>;
  /** The listener's http filters before the router (pipeline.ts builds them), in order. */
  readonly filters: HttpFilterChain;
  /** The listener's HttpConnectionManager.tracing (sampling); undefined: no spans. */
  readonly tracing?: ListenerTracing | undefined;
}

/** Where a routed request goes: made once per request by select(), never changed. */
export interface Selection {
  readonly entry: RouteEntry;
  readonly cluster: Cluster;
  readonly host: Host;
  /** The request's hash-policy value (ring_hash), for re-picks on retry. */
  readonly hash: number | undefined;
}

/**
 * A request the stream idle timeout watches (downstream.ts). `idleSlot` is its index in the
 * connection manager's watch list while watched, else -1: set by watchIdle and unwatchIdle only.
 */
export interface IdleWatched { idleSlot: number; checkIdle(now: number, timeoutMs: number): void }

/** Why select() found nowhere to send the request (already counted). */
export interface Refusal { readonly reply: LocalReply; readonly detail: string }

/** A route's stats, resolved once per request. */
/** A route's stats for one backend (cluster): its rolling window and its Prometheus cells (when metrics are on). */
export interface Backend { readonly window: RollingWindow; readonly target: RouteTarget | undefined }
/** `noCluster`: the route's Prometheus cells for requests that reached no cluster (made on first use). */
export interface RouteStatsBundle { readonly route: RouteStats; readonly backends: Map<string, Backend>; noCluster: RouteTarget | undefined }

export interface ListenerContext {
  readonly clock: Clock;
  /** The listener's name (outbound, inbound), for logs. */
  readonly name: string;
  /** The access log, when on (--access-log). */
  readonly accessLog: AccessLog | undefined;
  /** Tracing, when the sidecar has an exporter (--trace-exporter, tracing/tracer.ts). */
  readonly tracer: ListenerTracer | undefined;
  random(): number;
  readonly listenerStats: ListenerStats;
  /** Request-body bytes kept for retries. */
  readonly retryBufferBytes: number;
  /** Number attempts in x-skein-attempt-count always (outbound) or only when the caller did not (inbound). */
  readonly setAttemptCount: boolean;
  /** Inbound: a request that could not be forwarded at all is refused (REFUSED_STREAM / 503 app_unavailable). */
  readonly refuseUnforwarded: boolean;
  /** Honour an incoming grpc-timeout. */
  readonly honorGrpcTimeout: boolean;
  /** The cluster (weighted pick) and host (the cluster's picker) for a routed request. */
  select(snap: RouterSnapshot, entry: RouteEntry, headers: RequestHeaders, stats: RouteStatsBundle): Selection | Refusal;
  /** The pick context for a retry: same hash, hosts already tried avoided. */
  pickContext(entry: RouteEntry, tried: ReadonlySet<Host> | undefined, hash: number | undefined): PickContext;
  routeStats(entry: RouteEntry): RouteStatsBundle;
  countLocalReply(stats: RouteStatsBundle, reply: LocalReply): void;
  /** The stream idle timeout's watch list (a sweep on the clock; no timer per request). */
  watchIdle(s: IdleWatched): void;
  unwatchIdle(s: IdleWatched): void;
  /** The client reset an HTTP/2 request that arrived at `startedAtMs`: the rapid-reset rule (connection-manager.ts). */
  onClientReset(conn: import('./downstream-wire').ResetCountedConnection | undefined, startedAtMs: number): void;
  /** A routed request ended: the route's counters and, when it had a cluster, its backend window. Returns the latency recorded (µs). */
  finished(stats: RouteStatsBundle, cluster: Cluster | undefined, startedAt: number, status: number, grpcStatus: number, headers?: Readonly<Record<string, unknown>>, traceId?: string): number;
}

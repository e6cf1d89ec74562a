/**
 * One downstream request inside the connection manager (Envoy's ActiveStream): the matched route,
 * the upstream request headers, and the walk through the listener's http filters, ending in the
 * router filter (or a local reply). The codec adapters (downstream.ts) extend it with the wire
 * side (Downstream); an Upgrade request extends it with its tunnel (upgrade.ts).
 *
 *   start() -> filter 0 .. n-1 (each: continue | stop after sendLocalReply or delay)
 *           -> onFiltersDone(): select() cluster and host -> RouterFilter
 *
 * One object per request; timers are the only closures (the clock's API takes a function).
 */
import type { Clock, TimerHandle } from '../../../shared/src/clock';
import type { HeaderBag } from '../route/header-ops';
import type { RouteEntry } from '../route/route-table';
import type { Cluster } from '../upstream/cluster';
import type { FilterCallbacks } from './http-filter';
import type { ListenerContext, RouteStatsBundle, RouterSnapshot, Selection } from './listener-context';
import type { LocalReply } from './local-reply';
import type { PeerIdentity } from '../listener/peer-identity';
import type { RequestTrace } from '../tracing/request-trace';

export abstract class ActiveStream implements FilterCallbacks {
  readonly startedAt = performance.now();
  /** Set once the request ended (finish()): everything after is ignored. */
  done = false;
  private filterIndex = 0;
  private delayTimer: TimerHandle | undefined;
  /** Time the filters held the request (delays), in ms: the route timeout and deadline count it. */
  heldMs = 0;
  /** Set by start(). */
  stats!: RouteStatsBundle;
  /** Upstream attempts made (the router filter counts them), the last one's host, and the local reply's reason: for the access log. */
  attempts = 0;
  upstreamHost: string | undefined = undefined;
  replyReason: string | undefined = undefined;
  /** The request's spans when it is sampled (tracing/tracer.ts). */
  trace: RequestTrace | undefined = undefined;

  constructor(
    readonly cm: ListenerContext,
    /** The config the request started with (kept through delays and retries). */
    readonly snap: RouterSnapshot,
    readonly route: RouteEntry,
    readonly grpc: boolean,
    readonly method: string,
    readonly path: string,
    readonly authority: string,
    /** Upstream request headers (hop-by-hop stripped, x-forwarded-* set); filters mutate them. */
    readonly requestHeaders: HeaderBag,
    /** The downstream request headers (for hash policies). */
    readonly downstreamHeaders: Readonly<Record<string, string | string[] | undefined>>,
  ) {}

  get clock(): Clock { return this.cm.clock; }
  /** The verified mTLS peer of the downstream connection; undefined when it is plaintext. */
  abstract get downstreamPeer(): PeerIdentity | undefined;
  random(): number { return this.cm.random(); }
  /** The downstream peer's address (for a sampled request's span). */
  get remoteAddress(): string | undefined { return undefined; }

  /** Whether the request counts in the listener's active requests (an Upgrade tunnel does not). */
  protected get countsActive(): boolean { return true; }

  /** Counts the request as active (until finish) and runs the filter chain. */
  start(): void {
    this.stats = this.cm.routeStats(this.route);
    const tracer = this.cm.tracer;
    if (tracer !== undefined) tracer.onRequest(this);
    if (this.countsActive) this.cm.listenerStats.rqActive.add(1);
    this.watchDownstream();
    this.runFilters();
  }

  private runFilters(): void {
    const chain = this.snap.filters;
    while (this.filterIndex < chain.length) {
      if (chain[this.filterIndex]!.onRequestHeaders(this) === 'stop') return;
      this.filterIndex++;
    }
    this.onFiltersDone();
  }

  // --- FilterCallbacks ----------------------------------------------------------------------

  sendLocalReply(reply: LocalReply, detail: string): void {
    if (this.done) return;
    this.cancelDelay();
    this.localReply(reply, detail, 0);
    this.cm.countLocalReply(this.stats, reply);
    this.finish(0, -1, undefined);
  }

  delay(ms: number): void {
    this.heldMs += ms;
    this.pauseBody();
    this.delayTimer = this.cm.clock.setTimer(ms, () => this.onDelayEnd());
  }

  private onDelayEnd(): void {
    this.delayTimer = undefined;
    if (this.done) return;
    const f = this.snap.filters[this.filterIndex]!;
    if (f.onDelayEnd !== undefined && f.onDelayEnd(this) === 'stop') return;
    this.filterIndex++;
    this.runFilters();
  }

  private cancelDelay(): void {
    this.delayTimer?.cancel();
    this.delayTimer = undefined;
  }

  /** Runs the filters' response-header hooks, last filter first. */
  encodeHeaders(headers: HeaderBag): void {
    const chain = this.snap.filters;
    for (let i = chain.length - 1; i >= 0; i--) chain[i]!.onResponseHeaders?.(this.route, headers);
  }

  // --- the end of the chain -------------------------------------------------------------------

  /** Every filter let the request through: pick the cluster and host, then forward it. */
  protected onFiltersDone(): void {
    const sel = this.cm.select(this.snap, this.route, this.downstreamHeaders, this.stats);
    if ('reply' in sel) { this.localReply(sel.reply, sel.detail, 0); this.finish(0, -1, undefined); return; }
    this.forward(sel);
  }

  /** Hands the request to the router filter (the codec adapters) or the tunnel (upgrades). */
  protected abstract forward(sel: Selection): void;

  /** The request ended: stats, and nothing more happens to it. */
  finish(status: number, grpcStatus: number, cluster: Cluster | undefined): void {
    if (this.done) return;
    this.done = true;
    this.cancelDelay();
    if (this.countsActive) this.cm.listenerStats.rqActive.add(-1);
    const trace = this.trace;
    // A sampled request's exemplar links to the trace its span is in (spanContext() allocates nothing).
    const us = this.cm.finished(this.stats, cluster, this.startedAt, status, grpcStatus, this.downstreamHeaders, trace?.span.spanContext().traceId);
    const log = this.cm.accessLog;
    if (log !== undefined) log.record(this.cm.name, this, cluster?.name, status, grpcStatus, us);
    if (trace !== undefined) trace.end(this, status, grpcStatus, cluster?.name);
    const chain = this.snap.filters;
    for (let i = 0; i < chain.length; i++) chain[i]!.onStreamComplete?.(this, status);
  }

  /** The downstream went away before a router took over (e.g. in a fault delay). */
  protected onGoneBeforeRouter(): void {
    this.finish(0, -1, undefined);
  }

  /** Starts listening for the downstream going away. */
  protected abstract watchDownstream(): void;
  /** Stops reading the request body (a delay). */
  protected abstract pauseBody(): void;
  /** The proxy's own answer; `attempts` > 0 adds x-skein-attempt-count. */
  abstract localReply(reply: LocalReply, detail: string, attempts: number): void;
}

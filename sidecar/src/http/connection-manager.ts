import type { AccessLog } from '../stats/access-log';
import type { ListenerTracer } from '../tracing/tracer';
import { kPeerIdentity, peerIdentityOf } from '../listener/peer-identity';
import type { PeerIdentity } from '../listener/peer-identity';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Clock } from '../../../shared/src/clock';
import type { Logger } from '../../../shared/src/log';
import type { Host, PickContext } from '../upstream/host';
import type { RouteEntry } from '../route/route-table';
import type { RequestHeaders } from '../route/header-matcher';
import { hashKey } from '../upstream/lb/ring-hash';
import { LOCAL_REPLIES, LOCAL_REPLY_REASONS, replyH1, replyH2 } from './local-reply';
import { isGrpcContentType } from '../route/grpc-content-type';
import type { LocalReply } from './local-reply';
import { upstreamHeaders } from './proxy-headers';
import type { ForwardPolicy } from './proxy-headers';
import { tunnelUpgrade } from './upgrade';
import { DEFAULT_RETRY_BUFFER_BYTES } from './router-filter';
import { H1Downstream, H2Downstream } from './downstream';
import type { Cluster } from '../upstream/cluster';
import type { Backend, ListenerContext, Refusal, RouteStatsBundle, RouterSnapshot, Selection } from './listener-context';
import { ListenerStats, RouteStats } from '../stats/stat-bundles';
import type { RequestMetrics, RouteTarget } from '../stats/request-metrics';
import type { Stats } from '../stats/stats';
import type { BackendWindow } from '../stats/rolling-window';
import type { TimerHandle } from '../../../shared/src/clock';
import { DEFAULT_DOWNSTREAM } from './downstream-settings';
import type { DownstreamSettings } from './downstream-settings';
import { hasDuplicateHost } from './request-validation';
import { GuardedSocket } from '../listener/h2-header-guard';
import type { H2HeaderGuard } from '../listener/h2-header-guard';
import type * as net from 'node:net';
import type { CodecStream } from './downstream';
import type { ResetCountedConnection } from './downstream-wire';
import type { IdleWatched } from './listener-context';
import type { HeaderBag } from '../route/header-ops';
import { H2Stats } from '../h2/limits';
import type { H2Stream } from '../h2/stream';
import { SkeinH2Downstream, SkeinH2Edge, replySkeinH2 } from './skein-h2-downstream';
import type { SkeinEdgeOptions } from './skein-h2-downstream';
import { headerBag } from './header-list';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_PROTOCOL_ERROR } = http2.constants;

/**
 * The rapid-reset rule (CVE-2023-44487), per downstream HTTP/2 connection, as Envoy's
 * premature-reset check: a reset is premature when the client resets a request within
 * PREMATURE_RESET_MS (on the injected clock) of its start, before its response ended. Once a
 * connection has PREMATURE_RESET_MIN premature resets and they are at least half of the
 * requests it opened, it is closed with GOAWAY ENHANCE_YOUR_CALM
 * (`listener.<l>.downstream_cx_rapid_reset`). Its other streams end with it.
 */
export const PREMATURE_RESET_MS = 1000;
export const PREMATURE_RESET_MIN = 100;

export type { RouterSnapshot, Selection } from './listener-context';

export interface ConnectionManagerOptions {
  /** Prometheus request metrics (stats/request-metrics.ts); default: none. */
  metrics?: RequestMetrics;
  /** JSON access logs (stats/access-log.ts); default: none. */
  accessLog?: AccessLog;
  /** Spans (tracing/tracer.ts); default: none. */
  tracer?: ListenerTracer;
  name: string;
  stats: Stats;
  policy: ForwardPolicy;
  clock: Clock;
  log: Logger;
  /** Seeds the weighted-cluster pick; injectable for tests. */
  random?: () => number;
  /**
   * A downstream HTTP/2 connection idle this long is sent a PING; without an answer within
   * `keepaliveTimeoutMs` it is destroyed. Defaults 10000 and 5000 ms. Node's engine: no frame
   * either way (its session timeout); skein's: nothing received (the keepalive sweep).
   */
  keepaliveIdleMs?: number;
  keepaliveTimeoutMs?: number;
  /** Request-body bytes kept for retries; a larger body is never retried. Default 65536. */
  retryBufferBytes?: number;
  /**
   * Set x-skein-attempt-count on every upstream request (true, the outbound listener), or only
   * when the request has none (false: the inbound listener keeps the caller's count). Default true.
   */
  setAttemptCount?: boolean;
  /**
   * Inbound: a request whose connection to the local app failed was never forwarded; answer it
   * with REFUSED_STREAM (HTTP/2) or a 503 `app_unavailable` (HTTP/1.1) at once, without
   * retrying the one app, so the caller's sidecar retries it on another instance. Default false.
   */
  refuseUnforwarded?: boolean;
  /** Honour an incoming grpc-timeout (shrunk by the time already spent). Default true. */
  honorGrpcTimeout?: boolean;
  /** Downstream limits and timeouts (downstream-settings.ts); each defaults to DEFAULT_DOWNSTREAM's. */
  downstream?: Partial<DownstreamSettings>;
  /**
   * The HTTP/2 engine for downstream connections: Node's http2 (behind the header-field guard),
   * or skein's own (skein-h2-downstream.ts), whose counters go to `h2Stats`. Default node.
   */
  h2Engine?: 'node' | 'skein';
  h2Stats?: H2Stats;
}

/**
 * The HTTP connection manager of one listener (the codec stage): accepts h2c and HTTP/1.1
 * requests, matches the route, and hands each request to an ActiveStream (downstream.ts), which
 * runs the listener's http filters and then the router filter. It also picks the cluster and
 * host when the router asks (select). pipeline.ts shows the whole path.
 */
export class ConnectionManager implements ListenerContext {
  snapshot: RouterSnapshot = { routes: undefined, clusters: new Map(), filters: [] };
  readonly h2: http2.Http2Server;
  readonly h1: http.Server;
  draining = false;
  /** Open downstream HTTP/2 sessions (Node's engine) or edges (skein's), and HTTP/1.1 sockets, for closeConnections(). */
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly edges = new Set<SkeinH2Edge>();
  /** skein's engine: what every downstream connection shares (limits, counters); undefined on Node's. */
  private readonly skeinEdge: SkeinEdgeOptions | undefined;
  private keepaliveTimer: TimerHandle | undefined;
  private readonly keepaliveIdleMs: number;
  private readonly keepaliveTimeoutMs: number;
  private readonly h1Sockets = new Set<Duplex>();
  private readonly rand: () => number;
  readonly retryBufferBytes: number;
  readonly clock: Clock;
  readonly setAttemptCount: boolean;
  readonly refuseUnforwarded: boolean;
  readonly honorGrpcTimeout: boolean;
  readonly name: string;
  readonly accessLog: AccessLog | undefined;
  private readonly metrics: RequestMetrics | undefined;
  /** Requests no route took (route ''), when metrics are on. */
  private readonly unrouted: RouteTarget | undefined;
  readonly tracer: ListenerTracer | undefined;
  /** Reused for every pick: picks are synchronous, so one context object is enough. */
  private readonly ctx: PickContext = { hash: undefined, tried: undefined, now: 0 };
  readonly listenerStats: ListenerStats;
  private readonly routeStatsByName = new Map<string, RouteStatsBundle>();
  /** The downstream limits and timeouts in force. */
  readonly downstream: Readonly<DownstreamSettings>;
  /** HTTP/2 requests routed this turn of the event loop, started at its end (see queueStart). */
  private startQueue: CodecStream[] = [];
  private startScheduled = false;
  /**
   * Requests watched by the stream idle timeout (each knows its index: removal swaps the last one
   * in), and the one sweep timer over them. Not a Set: see h2/stream-table.ts for what a Set's
   * table churn does to the young generation at thousands of requests a second.
   */
  private readonly idleWatched: IdleWatched[] = [];
  private idleTimer: TimerHandle | undefined;
  private readonly idleSweepMs: number;

  constructor(readonly opts: ConnectionManagerOptions) {
    this.rand = opts.random ?? Math.random;
    this.clock = opts.clock;
    this.name = opts.name;
    this.accessLog = opts.accessLog;
    this.metrics = opts.metrics;
    this.unrouted = opts.metrics?.target(opts.name, '', undefined);
    this.tracer = opts.tracer;
    this.setAttemptCount = opts.setAttemptCount !== false;
    this.refuseUnforwarded = opts.refuseUnforwarded === true;
    this.honorGrpcTimeout = opts.honorGrpcTimeout !== false;
    this.retryBufferBytes = opts.retryBufferBytes ?? DEFAULT_RETRY_BUFFER_BYTES;
    this.listenerStats = new ListenerStats(opts.stats, opts.name);
    const ds: DownstreamSettings = { ...DEFAULT_DOWNSTREAM };
    for (const [k, v] of Object.entries(opts.downstream ?? {})) if (v !== undefined) (ds as unknown as Record<string, number>)[k] = v;
    this.downstream = ds;
    this.idleSweepMs = Math.max(1, Math.min(1000, Math.floor(ds.streamIdleTimeoutMs / 4)));
    this.keepaliveIdleMs = opts.keepaliveIdleMs ?? 10_000;
    this.keepaliveTimeoutMs = opts.keepaliveTimeoutMs ?? 5000;
    this.skeinEdge = opts.h2Engine === 'skein' ? { limits: { maxConcurrentStreams: ds.maxConcurrentStreams }, stats: opts.h2Stats ?? new H2Stats(), clock: opts.clock } : undefined;
    this.h2 = http2.createServer({
      // Large messages: generous windows so one stream is not throttled to 64 KiB in flight.
      // SETTINGS_MAX_CONCURRENT_STREAMS: a peer that opens more is a connection error for
      // nghttp2 (GOAWAY PROTOCOL_ERROR, see destroyWithProtocolCode).
      settings: { initialWindowSize: 1 << 20, maxConcurrentStreams: ds.maxConcurrentStreams },
      maxSessionMemory: 64,
    });
    this.h2.on('session', (s: http2.ServerHttp2Session) => {
      this.sessions.add(s);
      s.once('close', () => this.sessions.delete(s));
      (s as Keepalive)[kKeepaliveTimeout] = opts.keepaliveTimeoutMs ?? 5000;
      (s as EdgeSession)[kCmOfSession] = this;
      // The socket Node got: a GuardedSocket (wrapped by Node in its JSStreamSocket, `.stream`) or a net.Socket.
      const sock = s.socket as unknown as { stream?: unknown; remoteAddress?: string } | undefined;
      const guarded = sock?.stream instanceof GuardedSocket ? sock.stream : undefined;
      (s as EdgeSession)[kGuard] = guarded?.guard;
      (s as EdgeSession)[kConn] = new NodeSessionConnection(s, guarded?.remoteAddress ?? sock?.remoteAddress);
      // The verified peer, on the session as on a TLS socket: requests read it with peerIdentityOf(session).
      (s as EdgeSession)[kPeerIdentity] = peerIdentityOf(guarded?.socket ?? sock);
      sessionDestroy ??= (Object.getPrototypeOf(s) as http2.Http2Session).destroy;
      s.destroy = destroyWithProtocolCode;
      s.setTimeout(opts.keepaliveIdleMs ?? 10_000);
      s.on('timeout', onSessionIdle);
      // Per session, so the handler knows its session: a stream the client reset in the same
      // read as its HEADERS arrives already closed, and a closed stream no longer names it.
      s.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, raw: string[]) => this.onH2Stream(stream, headers, raw, s as EdgeSession));
    });
    this.h2.on('sessionError', () => undefined);
    this.h1 = http.createServer({
      keepAlive: true, requestTimeout: 0, maxHeaderSize: 64 * 1024,
      // Node checks the head timeout of every connection it tracks on this interval.
      headersTimeout: ds.requestHeadersTimeoutMs,
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(ds.requestHeadersTimeoutMs / 4) || 1000)),
    }, (req, res) => this.onH1Request(req, res));
    // Keep-alive idle: Node closes a connection this long after its last response (0: never).
    this.h1.keepAliveTimeout = ds.http1IdleTimeoutMs;
    this.h1.on('connection', (socket: Duplex) => {
      this.h1Sockets.add(socket);
      (socket as H1Socket)[kCm] = this;
      socket.on('timeout', onH1SocketTimeout);
      socket.once('close', () => this.h1Sockets.delete(socket));
    });
    this.h1.on('upgrade', (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => tunnelUpgrade(this, req, socket, head));
    this.h1.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket));
    // Node tracks connections for headersTimeout only once its server emits 'listening', and
    // this one never listens (the listener hands it sockets): without this the head timeout
    // never fires.
    if (ds.requestHeadersTimeoutMs > 0) this.h1.emit('listening');
  }

  /**
   * Node's HTTP/1.1 parser refused a connection's bytes, or a request head took longer than the
   * request headers timeout: 400 or 408 with the reason, and the connection closes.
   */
  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    if (timeout) this.listenerStats.rqHeaderTimeout.inc();
    else if (typeof err.code === 'string' && err.code.startsWith('HPE_')) this.listenerStats.rqMalformed.inc();
    const res = (socket as { _httpMessage?: http.ServerResponse | null })._httpMessage;
    if (!socket.writable || (res != null && res.headersSent) || err.code === 'ECONNRESET') { socket.destroy(); return; }
    socket.end(timeout ? H1_HEADERS_TIMEOUT_REPLY : H1_BAD_REQUEST_REPLY);
  }

  /**
   * Closes every downstream connection now (the end of a drain). The sockets were handed to
   * `h2` / `h1` by a listener, so neither `h2.close()` nor `h1.closeAllConnections()` (which
   * tracks only sockets its own listen() accepted) reaches them, and an open one keeps the
   * process alive.
   */
  closeConnections(): void {
    for (const s of this.sessions) s.destroy();
    for (const e of this.edges) e.destroy();
    this.keepaliveTimer?.cancel();
    this.keepaliveTimer = undefined;
    for (const s of this.h1Sockets) s.destroy();
    // Stops Node's connection-checking interval (started by the 'listening' emitted above).
    this.h1.close(() => undefined);
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
  }

  /**
   * Downstream requests being forwarded, from routing to the end of their response: including
   * those in a fault delay, a retry backoff, or streaming a failed response (Envoy's HCM counts
   * active streams the same way). Upgrade tunnels are not requests and are not counted.
   */
  get activeStreams(): number { return this.listenerStats.rqActive.value; }

  random(): number { return this.rand(); }

  /**
   * The first routing step, for every request: draining, then the route table. A route with a
   * cluster action, or the local reply to make (counted; no route, no route stats).
   */
  match(authority: string, path: string, method: string, headers: RequestHeaders): RouteEntry | Refusal {
    this.listenerStats.rqTotal.inc();
    if (this.draining) return { reply: LOCAL_REPLIES.draining, detail: 'the proxy is shutting down' };
    const entry = this.snapshot.routes?.match(authority, path, method, headers);
    if (entry === undefined || entry.route === undefined) { this.listenerStats.noRoute.inc(); return { reply: LOCAL_REPLIES.noRoute, detail: `no route for ${authority}${path}` }; }
    return entry;
  }

  /**
   * The router's pick, after the http filters let the request through: the route's weighted
   * cluster, then a host from the cluster's picker (no load taken yet). An immutable Selection,
   * or a refusal already counted on the route.
   */
  select(snap: RouterSnapshot, entry: RouteEntry, headers: RequestHeaders, stats: RouteStatsBundle): Selection | Refusal {
    const route = entry.route!;
    const clusterName = route.clusters.length === 1 ? route.clusters[0]! : route.pickCluster(this.rand());
    const cluster = snap.clusters.get(clusterName);
    if (cluster === undefined) return this.refuse(stats, LOCAL_REPLIES.clusterNotFound, `cluster ${clusterName} is not known (yet)`);
    const ctx = this.ctx;
    const hash = route.hashPolicy.length > 0 ? requestHash(entry, headers) : undefined;
    ctx.hash = hash;
    ctx.tried = undefined;
    ctx.now = this.clock.now();
    const host = cluster.picker.pick(ctx);
    if (host === undefined) return this.refuse(stats, LOCAL_REPLIES.noHealthyUpstream, `cluster ${clusterName} has no healthy endpoint`);
    return { entry, cluster, host, hash };
  }

  private refuse(stats: RouteStatsBundle, reply: LocalReply, detail: string): Refusal {
    this.countLocalReply(stats, reply);
    return { reply, detail };
  }

  /** The pick context for a retry: same hash policy input, hosts already tried avoided. */
  pickContext(entry: RouteEntry, tried: ReadonlySet<Host> | undefined, hash: number | undefined): PickContext {
    const ctx = this.ctx;
    ctx.hash = entry.route!.hashPolicy.length > 0 ? hash : undefined;
    ctx.tried = tried;
    ctx.now = this.clock.now();
    return ctx;
  }

  /**
   * An HTTP/2 request starts at the end of this turn of the event loop, not at once: a client
   * that sends HEADERS and RST_STREAM together (rapid reset) has its reset read in the same turn,
   * and a request whose downstream is already gone is never sent upstream. One queue and one
   * setImmediate per turn, not per request.
   */
  private queueStart(s: CodecStream): void {
    this.startQueue.push(s);
    if (this.startScheduled) return;
    this.startScheduled = true;
    setImmediate(this.flushStarts);
  }

  private readonly flushStarts = (): void => {
    this.startScheduled = false;
    const q = this.startQueue;
    this.startQueue = [];
    for (let i = 0; i < q.length; i++) q[i]!.startQueued();
  };

  /** Watches a request for the stream idle timeout (until unwatchIdle, at its finish). */
  watchIdle(s: IdleWatched): void {
    if (this.downstream.streamIdleTimeoutMs <= 0 || s.idleSlot >= 0) return;
    s.idleSlot = this.idleWatched.length;
    this.idleWatched.push(s);
    if (this.idleTimer === undefined) this.idleTimer = this.opts.clock.setTimer(this.idleSweepMs, this.sweepIdle);
  }

  unwatchIdle(s: IdleWatched): void {
    const i = s.idleSlot;
    if (i < 0) return;
    const list = this.idleWatched;
    const last = list.pop()!;
    if (last !== s) { list[i] = last; last.idleSlot = i; }
    s.idleSlot = -1;
  }

  /**
   * Every idleSweepMs (a quarter of the timeout, at most 1 s) while requests are open: a request
   * whose activity count has not moved for the stream idle timeout is ended. So a request is
   * ended between the timeout and the timeout plus one sweep after its last activity.
   */
  private readonly sweepIdle = (): void => {
    this.idleTimer = undefined;
    const now = this.opts.clock.now();
    const timeout = this.downstream.streamIdleTimeoutMs;
    // Last first: a request that ends here swaps in one already checked.
    const list = this.idleWatched;
    for (let i = list.length - 1; i >= 0; i--) list[i]?.checkIdle(now, timeout);
    if (list.length > 0) this.idleTimer = this.opts.clock.setTimer(this.idleSweepMs, this.sweepIdle);
  };

  /**
   * The client reset (or abandoned) an HTTP/2 request that started at `startedAtMs`: counts a
   * premature reset and closes the connection once the rapid-reset rule says so.
   */
  onClientReset(conn: ResetCountedConnection | undefined, startedAtMs: number): void {
    if (conn === undefined || conn.closed) return;
    const st = conn.resets;
    if (this.opts.clock.now() - startedAtMs >= PREMATURE_RESET_MS) return;
    st.premature++;
    if (st.premature < PREMATURE_RESET_MIN || st.premature * 2 < st.streams) return;
    this.listenerStats.cxRapidReset.inc();
    this.opts.log.warn({ listener: this.opts.name, peer: conn.peerAddress, prematureResets: st.premature, streams: st.streams }, 'closing a connection whose client resets its requests at once (rapid reset): GOAWAY ENHANCE_YOUR_CALM');
    conn.calm('rapid reset: too many premature stream resets');
  }

  /**
   * A new downstream HTTP/2 connection from the listener (h2c with prior knowledge, or TLS with
   * ALPN h2). skein's engine: an edge of its own. Node's: the socket goes to the http2 server
   * behind the header-field guard (RFC 9113 8.2.1, listener/h2-header-guard.ts).
   */
  readonly acceptH2 = (socket: net.Socket): void => {
    const opts = this.skeinEdge;
    if (opts === undefined) { this.h2.emit('connection', new GuardedSocket(socket)); return; }
    this.edges.add(new SkeinH2Edge(this, socket, opts));
    if (this.keepaliveTimer === undefined) this.keepaliveTimer = this.clock.setTimer(this.keepaliveIdleMs, this.sweepKeepalive);
  };

  /**
   * skein's engine, as Node's session timeout on its engine: every keepaliveIdleMs, a downstream
   * connection that sent nothing since the last sweep gets a PING, and one that answers nothing
   * within keepaliveTimeoutMs is closed (`downstream_cx_idle_timeout`): a peer that vanished
   * without a FIN does not hold a socket for good. One timer per listener, while it has
   * connections.
   */
  private readonly sweepKeepalive = (): void => {
    this.keepaliveTimer = undefined;
    const now = this.clock.now();
    for (const e of this.edges) if (e.keepalive(now, this.keepaliveTimeoutMs)) this.listenerStats.cxIdleTimeout.inc();
    if (this.edges.size > 0) this.keepaliveTimer = this.clock.setTimer(this.keepaliveIdleMs, this.sweepKeepalive);
  };

  onSkeinEdgeClose(edge: SkeinH2Edge): void { this.edges.delete(edge); }

  /** A request on skein's engine (its head already passed RFC 9113's rules in the engine). */
  onSkeinRequest(edge: SkeinH2Edge, s: H2Stream, raw: string[], endStream: boolean): void {
    const headers = headerBag(raw) as http2.IncomingHttpHeaders;
    const r = this.routeH2(headers, raw, edge.peerAddress, edge.peerIdentity);
    if (r.entry === undefined) { replySkeinH2(s, r.grpc, r.reply!, r.detail!); return; }
    const d = new SkeinH2Downstream(this, this.snapshot, r.entry, r.grpc, r.method, r.path, r.authority, r.out!, headers, edge, s, endStream);
    if (r.expectContinue && !endStream) d.sendContinue();
    this.queueStart(d);
  }

  /**
   * The routing both HTTP/2 engines share: the route and the upstream headers, or the local
   * reply to make (counted, logged and recorded here).
   */
  private routeH2(headers: http2.IncomingHttpHeaders, raw: string[], peer: string | undefined, identity: PeerIdentity | undefined): RoutedH2 {
    const grpc = isGrpcContentType(headers['content-type']);
    const authority = (headers[':authority'] ?? headers['host'] ?? '') as string;
    const path = (headers[':path'] ?? '/') as string;
    const method = (headers[':method'] ?? 'GET') as string;
    if (method === 'CONNECT') return { grpc, method, path, authority, entry: undefined, out: undefined, expectContinue: false, reply: LOCAL_REPLIES.badRequest, detail: 'CONNECT is not supported' };
    const entry = this.match(authority, path, method, headers);
    if ('reply' in entry) {
      this.logUnrouted(method, headers, entry.reply, grpc, identity);
      this.unrouted?.record(grpc ? 200 : entry.reply.http, grpc ? entry.reply.grpc : -1, 0, headers, this.clock.now());
      return { grpc, method, path, authority, entry: undefined, out: undefined, expectContinue: false, reply: entry.reply, detail: entry.detail };
    }
    const expect = headers['expect'];
    return {
      grpc, method, path, authority, entry, reply: undefined, detail: undefined,
      out: upstreamHeaders(headers, peer, this.opts.policy, raw, identity?.xfcc),
      expectContinue: expect !== undefined && typeof expect === 'string' && expect.toLowerCase() === '100-continue',
    };
  }

  /** `raw`: Node's raw header list of the request (name, value...), walked by upstreamHeaders. */
  private onH2Stream(down: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, raw: string[], session: EdgeSession): void {
    down.on('error', ignore);
    const conn = session[kConn];
    if (conn !== undefined) conn.resets.streams++;
    if (down.closed || down.destroyed) {
      // Reset by the client before it reached us: nothing to route, nothing to forward.
      const ls = this.listenerStats;
      ls.rqRxReset.inc();
      ls.rqRxResetUnforwarded.inc();
      this.onClientReset(conn, this.opts.clock.now());
      return;
    }
    // A header field nghttp2 dropped for a forbidden byte makes the request malformed: a stream
    // error (the connection stays up for the other streams).
    const guard = session[kGuard];
    if (guard !== undefined && guard.takeMalformed(down.id!)) {
      this.listenerStats.rqMalformed.inc();
      down.close(NGHTTP2_PROTOCOL_ERROR);
      return;
    }
    const r = this.routeH2(headers, raw, conn?.peerAddress, session[kPeerIdentity]);
    if (r.entry === undefined) { replyH2(down, r.grpc, r.reply!, r.detail!); return; }
    // Expect: 100-continue is answered here (the upstream request does not carry it).
    if (r.expectContinue && !down.endAfterHeaders) {
      try { down.additionalHeaders({ ':status': 100 }); } catch { /* the stream is gone */ }
    }
    this.queueStart(new H2Downstream(this, this.snapshot, r.entry, r.grpc, r.method, r.path, r.authority, r.out!, headers, down, session, conn));
  }

  private onH1Request(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.on('error', ignore);
    res.on('error', ignore);
    const grpc = isGrpcContentType(req.headers['content-type']);
    if (hasDuplicateHost(req.rawHeaders)) {
      this.listenerStats.rqMalformed.inc();
      res.shouldKeepAlive = false;
      replyH1(res, grpc, LOCAL_REPLIES.badRequest, 'the request has more than one Host header (RFC 9112 3.2)');
      return;
    }
    const authority = req.headers.host ?? '';
    const path = req.url ?? '/';
    const method = req.method ?? 'GET';
    const entry = this.match(authority, path, method, req.headers);
    if ('reply' in entry) { replyH1(res, grpc, entry.reply, entry.detail); this.logUnrouted(method, req.headers, entry.reply, grpc, peerIdentityOf(req.socket)); this.unrouted?.record(grpc ? 200 : entry.reply.http, grpc ? entry.reply.grpc : -1, 0, req.headers, this.clock.now()); return; }
    const out = upstreamHeaders(req.headers, req.socket.remoteAddress, this.opts.policy, undefined, peerIdentityOf(req.socket)?.xfcc);
    new H1Downstream(this, this.snapshot, entry, grpc, method, path, authority, out, req, res).start();
  }

  /** A request no route took (no_route, or a bad request) in the access log, when it is on. */
  private logUnrouted(method: string, headers: http.IncomingHttpHeaders, reply: LocalReply, grpc: boolean, peer: { spiffeId: string } | undefined): void {
    const log = this.accessLog;
    if (log === undefined) return;
    log.record(this.name, { method, route: NO_ROUTE, requestHeaders: headers, downstreamHeaders: headers, attempts: 0, upstreamHost: undefined, replyReason: reply.reason, downstreamPeer: peer }, undefined, grpc ? 200 : reply.http, grpc ? reply.grpc : -1, 0);
  }

  /** Counts why the proxy answered a routed request itself (the request is recorded by finished()). */
  countLocalReply(stats: RouteStatsBundle, reply: LocalReply): void {
    stats.route.localReply[reply.reason]?.inc();
  }

  /**
   * Bookkeeping when a routed request ends (attempts were accounted for by the cluster): the
   * route's counters and, when it reached a cluster, its per-backend window. `status` is the HTTP
   * status (0: no response) and `grpcStatus` the upstream's grpc-status (-1: none);
   * stats/grpc-status.ts classifies them. Returns the latency recorded (µs), which the access log
   * writes too: one measurement.
   */
  finished(stats: RouteStatsBundle, cluster: Cluster | undefined, startedAt: number, status: number, grpcStatus = -1, headers?: Readonly<Record<string, unknown>>, traceId?: string): number {
    const us = (performance.now() - startedAt) * 1000;
    const now = this.clock.now();
    let backend: Backend | undefined;
    if (cluster !== undefined) {
      backend = stats.backends.get(cluster.name);
      if (backend === undefined) {
        backend = { window: stats.route.backend(cluster.name), target: this.metrics?.target(this.name, stats.route.name, cluster.name) };
        stats.backends.set(cluster.name, backend);
      }
    }
    stats.route.record(status, us, backend?.window, now, grpcStatus);
    if (this.metrics === undefined) return us;
    const target = backend !== undefined ? backend.target : (stats.noCluster ??= this.metrics.target(this.name, stats.route.name, undefined));
    target?.record(status, grpcStatus, us / 1000, headers, now, traceId);
    return us;
  }

  /**
   * Each route's per-backend windows with traffic so far (route, cluster, window): what the route
   * stats report reads, on its timer (route-stats-reporter.ts).
   */
  *backendWindows(): Generator<BackendWindow> {
    for (const [route, rs] of this.routeStatsByName) for (const [cluster, b] of rs.backends) yield [route, cluster, b.window];
  }

  /**
   * Drops the cached stats bundles of routes not in `live` (config time: the routes left the
   * config; the registry drops their stats after its retention), and of routes whose stats the
   * registry already dropped (a route that came back gets a new bundle on its next request).
   */
  forgetRouteStats(live: ReadonlySet<string>): void {
    for (const [name, rs] of this.routeStatsByName) if (!live.has(name) || rs.route.released) this.routeStatsByName.delete(name);
    this.metrics?.forget(this.name, live);
  }

  /** The route's stats bundle (one Map lookup per request). */
  routeStats(entry: RouteEntry): RouteStatsBundle {
    let rs = this.routeStatsByName.get(entry.name);
    if (rs === undefined) { rs = { route: new RouteStats(this.opts.stats, entry.name, LOCAL_REPLY_REASONS), backends: new Map(), noCluster: undefined }; this.routeStatsByName.set(entry.name, rs); }
    return rs;
  }
}

/** routeH2's answer: `entry` and `out` for a routed request, else `reply` and `detail`. */
interface RoutedH2 {
  grpc: boolean;
  method: string;
  path: string;
  authority: string;
  entry: RouteEntry | undefined;
  out: HeaderBag | undefined;
  expectContinue: boolean;
  reply: LocalReply | undefined;
  detail: string | undefined;
}

const kKeepaliveTimeout = Symbol('skein.keepalive.timeout');
type Keepalive = http2.ServerHttp2Session & { [kKeepaliveTimeout]?: number };

/**
 * An idle downstream session must prove its peer is there. Node stops reading a session once it
 * has sent GOAWAY for a protocol error (garbage frames, bad HPACK) and never closes its socket,
 * not even on the peer's FIN: without this, every such connection leaks a socket for good (and
 * holds up a drain). A live peer answers the PING, which also re-arms the idle timer.
 */
function onSessionIdle(this: Keepalive): void {
  const session = this;
  if (session.destroyed) return;
  const timer = setTimeout(() => session.destroy(), session[kKeepaliveTimeout] ?? 5000);
  timer.unref();
  try {
    if (!session.ping(() => clearTimeout(timer))) session.destroy();
  } catch {
    clearTimeout(timer);
    session.destroy();
  }
}

function ignore(): void { /* errors surface through 'close' and rstCode */ }

const cookieRegexes = new Map<string, RegExp>();
/** One compiled matcher per cookie name (names come from config, so the map stays small). */
function cookieRegex(name: string): RegExp {
  let re = cookieRegexes.get(name);
  if (re === undefined) {
    re = new RegExp(`(?:^|;\\s*)${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}=([^;]*)`);
    cookieRegexes.set(name, re);
  }
  return re;
}

function requestHash(entry: RouteEntry, headers: http.IncomingHttpHeaders): number | undefined {
  for (const p of entry.route!.hashPolicy) {
    if ('header' in p) {
      const v = headers[p.header];
      if (typeof v === 'string') return hashKey(v);
    } else {
      const cookie = headers['cookie'];
      if (typeof cookie === 'string') {
        const m = cookieRegex(p.cookie).exec(cookie);
        if (m !== null) return hashKey(m[1]!);
      }
    }
  }
  return undefined;
}

/** Per downstream HTTP/2 session: its peer, requests opened and premature resets, for the rapid-reset rule. */
const kConn = Symbol('skein.connection');
const kCmOfSession = Symbol('skein.cm');
const kGuard = Symbol('skein.guard');
/** The route name the access log gives a request no route took. */
const NO_ROUTE = Object.freeze({ name: '-' });
/** The x-forwarded-client-cert of the session's verified mTLS peer (inbound over mTLS only). */
const kDestroying = Symbol('skein.destroying');
type EdgeSession = http2.Http2Session & { [kDestroying]?: boolean; [kConn]?: NodeSessionConnection; [kCmOfSession]?: ConnectionManager; [kGuard]?: H2HeaderGuard; [kPeerIdentity]?: PeerIdentity };

/** A Node http2 session as the rapid-reset rule sees it (one per connection). */
class NodeSessionConnection implements ResetCountedConnection {
  readonly resets = { streams: 0, premature: 0 };
  constructor(private readonly session: http2.Http2Session, readonly peerAddress: string | undefined) {}
  get closed(): boolean { return this.session.destroyed; }
  calm(reason: string): void {
    // With an error (reported to 'sessionError', ignored) so Node sends this code, not NO_ERROR.
    this.session.destroy(new Error(reason), NGHTTP2_ENHANCE_YOUR_CALM);
  }
}

function destroyLater(session: EdgeSession, error: Error): void {
  if (!session.destroyed) sessionDestroy!.call(session, error, NGHTTP2_PROTOCOL_ERROR);
}

/** nghttp2's NGHTTP2_ERR_PROTO: the peer broke the protocol (a connection error). */
const NGHTTP2_ERR_PROTO = -505;
/** Node's own Http2Session.prototype.destroy (the class is not exported: taken from the first session). */
let sessionDestroy: ((this: http2.Http2Session, error?: Error, code?: number) => void) | undefined;

/**
 * A downstream session's destroy(): when nghttp2 finds a connection error in the peer's bytes
 * (bad frames, or a HEADERS beyond our SETTINGS_MAX_CONCURRENT_STREAMS, which nghttp2 treats as
 * a connection error), Node destroys the session as an INTERNAL_ERROR, telling the peer the
 * fault is ours. It is the peer's: the GOAWAY says PROTOCOL_ERROR, and
 * `listener.<l>.downstream_cx_protocol_error` counts it.
 */
function destroyWithProtocolCode(this: EdgeSession, error?: Error, code?: number): void {
  if (code === undefined && error != null && (error as NodeJS.ErrnoException).code === 'ERR_HTTP2_ERROR' && (error as NodeJS.ErrnoException).errno === NGHTTP2_ERR_PROTO) {
    if (this.destroyed || this[kDestroying] === true) return;
    this[kDestroying] = true;
    this[kCmOfSession]?.listenerStats.cxProtocolError.inc();
    // Not at once: Node calls this while nghttp2 is still reading the peer's bytes, and over the
    // header guard's socket an immediate destroy drops the GOAWAY nghttp2 has queued.
    setImmediate(destroyLater, this, error);
    return;
  }
  sessionDestroy!.call(this, error, code);
}
const kCm = Symbol('skein.cm');
type H1Socket = Duplex & { [kCm]?: ConnectionManager };

const H1_BAD_REQUEST_REPLY = 'HTTP/1.1 400 Bad Request\r\nx-skein-reason: bad_request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n';
const H1_HEADERS_TIMEOUT_REPLY = 'HTTP/1.1 408 Request Timeout\r\nx-skein-reason: request_headers_timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n';

/**
 * An HTTP/1.1 socket's timeout: Node arms it only for the keep-alive wait after a response
 * (keepAliveTimeout), and closes the connection itself; this counts it.
 */
function onH1SocketTimeout(this: H1Socket): void {
  this[kCm]?.listenerStats.cxIdleTimeout.inc();
}

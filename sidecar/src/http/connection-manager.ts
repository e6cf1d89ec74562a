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
import type { ListenerContext, Refusal, RouteStatsBundle, RouterSnapshot, Selection } from './listener-context';
import { ListenerStats, RouteStats } from '../stats/stat-bundles';
import type { Stats } from '../stats/stats';

export type { RouterSnapshot, Selection } from './listener-context';

export interface ConnectionManagerOptions {
  name: string;
  stats: Stats;
  policy: ForwardPolicy;
  clock: Clock;
  log: Logger;
  /** Seeds the weighted-cluster pick; injectable for tests. */
  random?: () => number;
  /**
   * A downstream HTTP/2 session with no frame in either direction for this long is sent a PING;
   * without the ACK within `keepaliveTimeoutMs` it is destroyed. Defaults 10000 and 5000 ms.
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
  /** Open downstream HTTP/2 sessions and HTTP/1.1 sockets, for closeConnections(). */
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly h1Sockets = new Set<Duplex>();
  private readonly rand: () => number;
  readonly retryBufferBytes: number;
  readonly clock: Clock;
  readonly setAttemptCount: boolean;
  readonly refuseUnforwarded: boolean;
  readonly honorGrpcTimeout: boolean;
  /** Reused for every pick: picks are synchronous, so one context object is enough. */
  private readonly ctx: PickContext = { hash: undefined, tried: undefined, now: 0 };
  readonly listenerStats: ListenerStats;
  private readonly routeStatsByName = new Map<string, RouteStatsBundle>();

  constructor(readonly opts: ConnectionManagerOptions) {
    this.rand = opts.random ?? Math.random;
    this.clock = opts.clock;
    this.setAttemptCount = opts.setAttemptCount !== false;
    this.refuseUnforwarded = opts.refuseUnforwarded === true;
    this.honorGrpcTimeout = opts.honorGrpcTimeout !== false;
    this.retryBufferBytes = opts.retryBufferBytes ?? DEFAULT_RETRY_BUFFER_BYTES;
    this.listenerStats = new ListenerStats(opts.stats, opts.name);
    this.h2 = http2.createServer({
      // Large messages: generous windows so one stream is not throttled to 64 KiB in flight.
      settings: { initialWindowSize: 1 << 20, maxConcurrentStreams: 1000 },
      maxSessionMemory: 64,
    });
    this.h2.on('stream', (stream, headers) => this.onH2Stream(stream, headers));
    this.h2.on('session', (s: http2.ServerHttp2Session) => {
      this.sessions.add(s);
      s.once('close', () => this.sessions.delete(s));
      (s as Keepalive)[kKeepaliveTimeout] = opts.keepaliveTimeoutMs ?? 5000;
      s.setTimeout(opts.keepaliveIdleMs ?? 10_000);
      s.on('timeout', onSessionIdle);
    });
    this.h2.on('sessionError', () => undefined);
    this.h1 = http.createServer({ keepAlive: true, requestTimeout: 0, headersTimeout: 30_000, maxHeaderSize: 64 * 1024 }, (req, res) => this.onH1Request(req, res));
    this.h1.on('connection', (socket: Duplex) => { this.h1Sockets.add(socket); socket.once('close', () => this.h1Sockets.delete(socket)); });
    this.h1.on('upgrade', (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => tunnelUpgrade(this, req, socket, head));
    this.h1.on('clientError', (_err, socket) => { if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n'); else socket.destroy(); });
  }

  /**
   * Closes every downstream connection now (the end of a drain). The sockets were handed to
   * `h2` / `h1` by a listener, so neither `h2.close()` nor `h1.closeAllConnections()` (which
   * tracks only sockets its own listen() accepted) reaches them, and an open one keeps the
   * process alive.
   */
  closeConnections(): void {
    for (const s of this.sessions) s.destroy();
    for (const s of this.h1Sockets) s.destroy();
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

  private onH2Stream(down: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    down.on('error', ignore);
    const grpc = isGrpcContentType(headers['content-type']);
    const authority = (headers[':authority'] ?? headers['host'] ?? '') as string;
    const path = (headers[':path'] ?? '/') as string;
    const method = (headers[':method'] ?? 'GET') as string;
    if (method === 'CONNECT') { replyH2(down, grpc, LOCAL_REPLIES.badRequest, 'CONNECT is not supported'); return; }
    const entry = this.match(authority, path, method, headers);
    if ('reply' in entry) { replyH2(down, grpc, entry.reply, entry.detail); return; }
    const out = upstreamHeaders(headers, down.session?.socket?.remoteAddress, this.opts.policy);
    new H2Downstream(this, this.snapshot, entry, grpc, method, path, authority, out, headers, down).start();
  }

  private onH1Request(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.on('error', ignore);
    res.on('error', ignore);
    const grpc = isGrpcContentType(req.headers['content-type']);
    const authority = req.headers.host ?? '';
    const path = req.url ?? '/';
    const method = req.method ?? 'GET';
    const entry = this.match(authority, path, method, req.headers);
    if ('reply' in entry) { replyH1(res, grpc, entry.reply, entry.detail); return; }
    const out = upstreamHeaders(req.headers, req.socket.remoteAddress, this.opts.policy);
    new H1Downstream(this, this.snapshot, entry, grpc, method, path, authority, out, req, res).start();
  }

  /** Counts why the proxy answered a routed request itself (the request is recorded by finished()). */
  countLocalReply(stats: RouteStatsBundle, reply: LocalReply): void {
    stats.route.localReply[reply.reason]?.inc();
  }

  /**
   * Bookkeeping when a routed request ends (attempts were accounted for by the cluster): the
   * route's counters and, when it reached a cluster, its per-backend window. `status` is the HTTP
   * status (0: no response) and `grpcStatus` the upstream's grpc-status (-1: none);
   * stats/grpc-status.ts classifies them.
   */
  finished(stats: RouteStatsBundle, cluster: Cluster | undefined, startedAt: number, status: number, grpcStatus = -1): void {
    const us = (performance.now() - startedAt) * 1000;
    let backend;
    if (cluster !== undefined) {
      backend = stats.backends.get(cluster.name);
      if (backend === undefined) { backend = stats.route.backend(cluster.name); stats.backends.set(cluster.name, backend); }
    }
    stats.route.record(status, us, backend, this.clock.now(), grpcStatus);
  }

  /**
   * Drops the cached stats bundles of routes not in `live` (config time: the routes left the
   * config; the registry drops their stats after its retention), and of routes whose stats the
   * registry already dropped (a route that came back gets a new bundle on its next request).
   */
  forgetRouteStats(live: ReadonlySet<string>): void {
    for (const [name, rs] of this.routeStatsByName) if (!live.has(name) || rs.route.released) this.routeStatsByName.delete(name);
  }

  /** The route's stats bundle (one Map lookup per request). */
  routeStats(entry: RouteEntry): RouteStatsBundle {
    let rs = this.routeStatsByName.get(entry.name);
    if (rs === undefined) { rs = { route: new RouteStats(this.opts.stats, entry.name, LOCAL_REPLY_REASONS), backends: new Map() }; this.routeStatsByName.set(entry.name, rs); }
    return rs;
  }
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


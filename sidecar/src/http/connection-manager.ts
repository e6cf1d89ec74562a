import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Clock } from '../../../shared/src/clock';
import type { Logger } from '../../../shared/src/log';
import type { Cluster } from '../upstream/cluster';
import type { Host, PickContext } from '../upstream/host';
import type { RouteTable, RouteEntry } from '../route/route-table';
import { hashKey } from '../upstream/lb/ring-hash';
import { LOCAL_REPLIES, replyH1, replyH2 } from './local-reply';
import { isGrpcContentType } from '../route/grpc-content-type';
import type { LocalReply } from './local-reply';
import { upstreamHeaders } from './proxy-headers';
import type { ForwardPolicy } from './proxy-headers';
import { tunnelUpgrade } from './upgrade';
import { DEFAULT_RETRY_BUFFER_BYTES, Forward } from './router';
import { parseGrpcTimeout } from './grpc-timeout';
import { applyHeaderOps } from '../route/header-ops';
import { ListenerStats, LOCAL_REPLY_REASONS, RouteStats } from '../stats/stat-bundles';
import type { LocalReplyReason } from '../stats/stat-bundles';
import type { RollingWindow, Stats } from '../stats/stats';


/** What one request needs from config; swapped whole on every update (in-flight requests keep theirs). */
export interface RouterSnapshot {
  readonly routes: RouteTable | undefined;
  readonly clusters: ReadonlyMap<string, Cluster>;
}

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
 * The HTTP connection manager of one listener: accepts h2c and HTTP/1.1 requests, routes them,
 * picks a cluster and host, and forwards (router filter). Errors become local replies here.
 */
export class ConnectionManager {
  snapshot: RouterSnapshot = { routes: undefined, clusters: new Map() };
  readonly h2: http2.Http2Server;
  readonly h1: http.Server;
  draining = false;
  /** Open downstream HTTP/2 sessions and HTTP/1.1 sockets, for closeConnections(). */
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly h1Sockets = new Set<Duplex>();
  readonly random: () => number;
  readonly retryBufferBytes: number;
  /** Reused for every pick: picks are synchronous, so one context object is enough. */
  private readonly ctx: PickContext = { hash: undefined, tried: undefined, now: 0 };
  readonly listenerStats: ListenerStats;
  private readonly routeStats = new Map<string, { route: RouteStats; backends: Map<string, RollingWindow> }>();

  constructor(readonly opts: ConnectionManagerOptions) {
    this.random = opts.random ?? Math.random;
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

  /** Routes a request; on success returns the route, cluster and a picked host (no load taken yet). */
  select(authority: string, path: string, method: string, headers: http.IncomingHttpHeaders): { entry: RouteEntry; cluster: Cluster; host: Host } | { reply: LocalReply; detail: string } {
    this.listenerStats.rqTotal.inc();
    if (this.draining) return { reply: LOCAL_REPLIES.draining, detail: 'the proxy is shutting down' };
    const snap = this.snapshot;
    const entry = snap.routes?.match(authority, path, method, headers);
    if (entry === undefined || entry.route === undefined) { this.listenerStats.noRoute.inc(); return { reply: LOCAL_REPLIES.noRoute, detail: `no route for ${authority}${path}` }; }
    // Envoy's filter order: fault (delay, then abort), then the local rate limit. With a delay,
    // the abort and the rate limit are checked when it ends (Forward.start -> admit()).
    const fault = entry.fault;
    this.faultDelayMs = fault === undefined ? 0 : fault.delayMs(this.random());
    if (this.faultDelayMs === 0) {
      const refused = this.admit(entry);
      if (refused !== undefined) return this.localReplyFor(entry, refused, refused.reason === 'rate_limited' ? 'the route\'s local rate limit is exhausted' : 'fault injected by the route');
    }
    const clusterName = entry.route.pickCluster(this.random());
    const cluster = snap.clusters.get(clusterName);
    if (cluster === undefined) return this.localReplyFor(entry, LOCAL_REPLIES.clusterNotFound, `cluster ${clusterName} is not known (yet)`);
    const ctx = this.ctx;
    ctx.hash = entry.route.hashPolicy.length > 0 ? requestHash(entry, headers) : undefined;
    this.lastHash = ctx.hash;
    ctx.tried = undefined;
    ctx.now = this.opts.clock.now();
    const host = cluster.picker.pick(ctx);
    if (host === undefined) return this.localReplyFor(entry, LOCAL_REPLIES.noHealthyUpstream, `cluster ${clusterName} has no healthy endpoint`);
    return { entry, cluster, host };
  }

  /** The hash of the request select() routed last (a retry re-picks with the same hash). */
  private lastHash: number | undefined;
  /** The fault delay select() chose for the request it routed last. */
  private faultDelayMs = 0;

  /**
   * The fault delay select() drew for the request it routed last (0: none). When it is above 0,
   * select() did not run admit(): the caller waits it out, then calls admit() (the fault abort
   * and the local rate limit), as Forward.start and tunnelUpgrade do.
   */
  get drawnFaultDelayMs(): number { return this.faultDelayMs; }

  /** The route's fault abort and local rate limit: the local reply to make, or undefined to go on. */
  admit(entry: RouteEntry): LocalReply | undefined {
    const abort = entry.fault?.abort(this.random());
    if (abort !== undefined) return abort;
    const rl = entry.rateLimit;
    if (rl !== undefined && !rl.tryTake(this.opts.clock.now())) return LOCAL_REPLIES.rateLimited;
    return undefined;
  }

  /** The pick context for a retry: same hash policy input, hosts already tried avoided. */
  pickContext(entry: RouteEntry, tried: ReadonlySet<Host> | undefined, hash?: number): PickContext {
    const ctx = this.ctx;
    ctx.hash = entry.route!.hashPolicy.length > 0 ? hash : undefined;
    ctx.tried = tried;
    ctx.now = this.opts.clock.now();
    return ctx;
  }

  /** Starts forwarding a routed request (after any fault delay). */
  private forward(sel: { entry: RouteEntry; cluster: Cluster; host: Host }, grpc: boolean, down: ConstructorParameters<typeof Forward>[5], method: string, path: string, authority: string, out: http.OutgoingHttpHeaders, grpcTimeout: string | string[] | undefined): void {
    const callerMs = grpc && this.opts.honorGrpcTimeout !== false ? parseGrpcTimeout(grpcTimeout) : 0;
    const f = new Forward(this, sel.entry, sel.cluster, sel.host, grpc, down, method, path, authority, out, callerMs, this.lastHash);
    f.start(this.faultDelayMs);
  }

  private onH2Stream(down: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    down.on('error', ignore);
    const grpc = isGrpcContentType(headers['content-type']);
    const authority = (headers[':authority'] ?? headers['host'] ?? '') as string;
    const path = (headers[':path'] ?? '/') as string;
    const method = (headers[':method'] ?? 'GET') as string;
    if (method === 'CONNECT') { replyH2(down, grpc, LOCAL_REPLIES.badRequest, 'CONNECT is not supported'); return; }
    const sel = this.select(authority, path, method, headers);
    if ('reply' in sel) { replyH2(down, grpc, sel.reply, sel.detail); return; }
    const out = upstreamHeaders(headers, down.session?.socket?.remoteAddress, this.opts.policy);
    applyRequestHeaderOps(out, sel.entry);
    this.forward(sel, grpc, { h2: down }, method, path, authority, out, headers['grpc-timeout']);
  }

  private onH1Request(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.on('error', ignore);
    res.on('error', ignore);
    const grpc = isGrpcContentType(req.headers['content-type']);
    const authority = req.headers.host ?? '';
    const path = req.url ?? '/';
    const method = req.method ?? 'GET';
    const sel = this.select(authority, path, method, req.headers);
    if ('reply' in sel) { replyH1(res, grpc, sel.reply, sel.detail); return; }
    const out = upstreamHeaders(req.headers, req.socket.remoteAddress, this.opts.policy);
    applyRequestHeaderOps(out, sel.entry);
    this.forward(sel, grpc, { req, res }, method, path, authority, out, req.headers['grpc-timeout']);
  }

  /** A local reply made before any forwarding (select): counted and recorded as a failed request. */
  localReplyFor(entry: RouteEntry, reply: LocalReply, detail: string): { reply: LocalReply; detail: string } {
    this.countLocalReply(entry, reply);
    this.statsFor(entry).route.record(0, 0);
    return { reply, detail };
  }

  /** Counts why the proxy answered a routed request itself (the request is recorded by finished()). */
  countLocalReply(entry: RouteEntry, reply: LocalReply): void {
    const rs = this.statsFor(entry).route;
    if ((LOCAL_REPLY_REASONS as readonly string[]).includes(reply.reason)) rs.localReply[reply.reason as LocalReplyReason].inc();
  }

  /**
   * Bookkeeping when a forwarded request ends (attempts were accounted for by the router): the
   * route's counters and per-backend window. `status` is the HTTP status (0: no response) and
   * `grpcStatus` the upstream's grpc-status (-1: none); stats/grpc-status.ts classifies them.
   */
  finished(cluster: Cluster, entry: RouteEntry, startedAt: number, status: number, grpcStatus = -1): void {
    const us = (performance.now() - startedAt) * 1000;
    const rs = this.statsFor(entry);
    let backend = rs.backends.get(cluster.name);
    if (backend === undefined) { backend = rs.route.backend(cluster.name); rs.backends.set(cluster.name, backend); }
    rs.route.record(status, us, backend, this.opts.clock.now(), grpcStatus);
  }

  routeStatsFor(entry: RouteEntry): RouteStats { return this.statsFor(entry).route; }

  /**
   * Drops the cached stats bundles of routes not in `live` (config time: the routes left the
   * config; the registry drops their stats after its retention), and of routes whose stats the
   * registry already dropped (a route that came back gets a new bundle on its next request).
   */
  forgetRouteStats(live: ReadonlySet<string>): void {
    for (const [name, rs] of this.routeStats) if (!live.has(name) || rs.route.released) this.routeStats.delete(name);
  }

  private statsFor(entry: RouteEntry): { route: RouteStats; backends: Map<string, RollingWindow> } {
    let rs = this.routeStats.get(entry.name);
    if (rs === undefined) { rs = { route: new RouteStats(this.opts.stats, entry.name), backends: new Map() }; this.routeStats.set(entry.name, rs); }
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

/** The route's request header mutations (Envoy's four append actions; see route/header-ops). */
export function applyRequestHeaderOps(out: http.OutgoingHttpHeaders, entry: RouteEntry): void {
  applyHeaderOps(out, entry.requestHeadersToAdd, entry.requestHeadersToRemove);
}

/** The route's response header mutations. */
export function applyResponseHeaderOps(out: http.OutgoingHttpHeaders, entry: RouteEntry): void {
  applyHeaderOps(out, entry.responseHeadersToAdd, entry.responseHeadersToRemove);
}

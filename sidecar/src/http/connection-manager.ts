import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Clock } from '../../../shared/src/clock';
import type { Logger } from '../../../shared/src/log';
import type { Cluster } from '../upstream/cluster';
import type { Host, PickContext } from '../upstream/host';
import type { RouteTable, RouteEntry } from '../router/route-table';
import { hashKey } from '../upstream/lb/ring-hash';
import { observeLatency } from '../upstream/lb/peak-ewma';
import type { H2Pool } from '../upstream/pool/h2-pool';
import { isGrpcContentType, LOCAL_REPLIES, replyH1, replyH2 } from './local-reply';
import type { LocalReply } from './local-reply';
import { downstreamHeaders, upstreamHeaders } from './proxy-headers';
import type { ForwardPolicy } from './proxy-headers';
import { forwardH1, tunnelUpgrade } from './h1-forward';
import { relay } from './relay';
import { applyHeaderOps } from '../router/header-ops';
import { ListenerStats, LOCAL_REPLY_REASONS, RouteStats } from '../stats/stat-bundles';
import type { LocalReplyReason } from '../stats/stat-bundles';
import type { RollingWindow, Stats } from '../stats/stats';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

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
}

const kEx = Symbol('skein.exchange');
type Tagged<T> = T & { [kEx]?: H2Exchange };

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
  private readonly random: () => number;
  /** Reused for every pick: picks are synchronous, so one context object is enough. */
  private readonly ctx: PickContext = { hash: undefined, tried: undefined, now: 0 };
  readonly listenerStats: ListenerStats;
  private readonly routeStats = new Map<string, { route: RouteStats; backends: Map<string, RollingWindow> }>();

  constructor(readonly opts: ConnectionManagerOptions) {
    this.random = opts.random ?? Math.random;
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

  /** Routes a request; on success returns the route, cluster and a picked host (active count taken). */
  select(authority: string, path: string, method: string, headers: http.IncomingHttpHeaders): { entry: RouteEntry; cluster: Cluster; host: Host } | { reply: LocalReply; detail: string } {
    this.listenerStats.rqTotal.inc();
    if (this.draining) return { reply: LOCAL_REPLIES.draining, detail: 'the proxy is shutting down' };
    const snap = this.snapshot;
    const entry = snap.routes?.match(authority, path, method, headers);
    if (entry === undefined || entry.route === undefined) { this.listenerStats.noRoute.inc(); return { reply: LOCAL_REPLIES.noRoute, detail: `no route for ${authority}${path}` }; }
    const clusterName = entry.route.pickCluster(this.random());
    const cluster = snap.clusters.get(clusterName);
    if (cluster === undefined) return this.localReplyFor(entry, LOCAL_REPLIES.clusterNotFound, `cluster ${clusterName} is not known (yet)`);
    const ctx = this.ctx;
    ctx.hash = entry.route.hashPolicy.length > 0 ? requestHash(entry, headers) : undefined;
    ctx.tried = undefined;
    ctx.now = this.opts.clock.now();
    const host = cluster.picker.pick(ctx);
    if (host === undefined) return this.localReplyFor(entry, LOCAL_REPLIES.noHealthyUpstream, `cluster ${clusterName} has no healthy endpoint`);
    host.activeRequests++;
    host.requestsTotal++;
    return { entry, cluster, host };
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
    if (sel.cluster.protocol === 'h1') {
      forwardH1(this, sel.cluster, sel.host, sel.entry, { kind: 'h2', stream: down }, method, path, authority, out, grpc);
      return;
    }
    out[':authority'] = authority;
    out[':scheme'] = 'http';
    const ex = new H2Exchange(this, down, sel.host, sel.cluster, sel.entry, grpc);
    (down as Tagged<http2.ServerHttp2Stream>)[kEx] = ex;
    down.on('close', onDownClose);
    ex.start(sel.cluster.pool(sel.host) as H2Pool, out);
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
    forwardH1(this, sel.cluster, sel.host, sel.entry, { kind: 'h1', req, res }, method, path, authority, out, grpc);
  }

  /** Counts a local reply the router made for a matched route. */
  localReplyFor(entry: RouteEntry, reply: LocalReply, detail: string): { reply: LocalReply; detail: string } {
    const rs = this.statsFor(entry).route;
    if ((LOCAL_REPLY_REASONS as readonly string[]).includes(reply.reason)) rs.localReply[reply.reason as LocalReplyReason].inc();
    rs.record(0, 0);
    return { reply, detail };
  }

  /**
   * Bookkeeping when any exchange ends: host load and latency (for least-request and peak-EWMA),
   * route and per-backend windows, cluster stats. `status` is the HTTP status, or for gRPC 200
   * when grpc-status is 0 and 500 otherwise; 0 means no response.
   */
  finished(host: Host, cluster: Cluster, entry: RouteEntry, startedAt: number, status: number): void {
    host.activeRequests--;
    if (status === 0 || status >= 500) host.failuresTotal++;
    const elapsedMs = performance.now() - startedAt;
    const now = this.opts.clock.now();
    observeLatency(host, elapsedMs, now, 10_000);
    const us = elapsedMs * 1000;
    const rs = this.statsFor(entry);
    let backend = rs.backends.get(cluster.name);
    if (backend === undefined) { backend = rs.route.backend(cluster.name); rs.backends.set(cluster.name, backend); }
    rs.route.record(status, us, backend, now);
    cluster.stats?.record(status, us, now);
  }

  private statsFor(entry: RouteEntry): { route: RouteStats; backends: Map<string, RollingWindow> } {
    let rs = this.routeStats.get(entry.name);
    if (rs === undefined) { rs = { route: new RouteStats(this.opts.stats, entry.name), backends: new Map() }; this.routeStats.set(entry.name, rs); }
    return rs;
  }
}

/** One request forwarded h2 -> h2. Event handlers are shared functions that find it via kEx. */
class H2Exchange {
  up: Tagged<http2.ClientHttp2Stream> | undefined;
  responded = false;
  finishedFlag = false;
  trailers: http2.OutgoingHttpHeaders | undefined;
  timer: ReturnType<Clock['setTimer']> | undefined;
  /** What stats record: HTTP status, or 200/500 by grpc-status for gRPC; 0 until a response. */
  status = 0;
  readonly startedAt: number;

  constructor(readonly hcm: ConnectionManager, readonly down: Tagged<http2.ServerHttp2Stream>, readonly host: Host, readonly cluster: Cluster, readonly entry: RouteEntry, readonly grpc: boolean) {
    this.startedAt = performance.now();
  }

  start(pool: H2Pool, headers: http2.OutgoingHttpHeaders): void {
    const timeout = this.entry.route!.timeoutMs;
    if (timeout > 0) this.timer = this.hcm.opts.clock.setTimer(timeout, () => this.onTimeout());
    pool.request(headers, { endStream: false }, (err, up) => this.onUpstream(err, up));
  }

  onUpstream(err: { code?: string; message: string } | null, up: http2.ClientHttp2Stream | undefined): void {
    if (err !== null || up === undefined) {
      const reply = err?.code === 'SKEIN_ERR_UPSTREAM_OVERFLOW' ? LOCAL_REPLIES.upstreamOverflow : LOCAL_REPLIES.upstreamConnectFailure;
      this.fail(reply, err?.message ?? 'no stream');
      return;
    }
    if (this.down.destroyed) { up.close(NGHTTP2_CANCEL); this.finish(); return; }
    const u = up as Tagged<http2.ClientHttp2Stream>;
    u[kEx] = this;
    this.up = u;
    u.on('error', ignore);
    u.on('response', onUpResponse);
    u.on('trailers', onUpTrailers);
    u.on('close', onUpClose);
    relay(this.down, u);
  }

  onTimeout(): void {
    this.timer = undefined;
    if (this.finishedFlag) return;
    if (!this.responded) { this.up?.close(NGHTTP2_CANCEL); this.fail(LOCAL_REPLIES.upstreamTimeout, `no response within ${this.entry.route!.timeoutMs}ms`); return; }
    this.up?.close(NGHTTP2_CANCEL);
    if (!this.down.destroyed) this.down.close(NGHTTP2_CANCEL);
    this.status = 0;
    this.finish();
  }

  fail(reply: LocalReply, detail: string): void {
    replyH2(this.down, this.grpc, reply, detail);
    this.hcm.localReplyFor(this.entry, reply, detail);
    this.status = 0;
    this.finish();
  }

  finish(): void {
    if (this.finishedFlag) return;
    this.finishedFlag = true;
    this.timer?.cancel();
    this.hcm.finished(this.host, this.cluster, this.entry, this.startedAt, this.status);
  }
}

function onUpResponse(this: Tagged<http2.ClientHttp2Stream>, headers: http2.IncomingHttpHeaders, flags: number): void {
  const ex = this[kEx]!;
  const down = ex.down;
  if (down.destroyed) { this.close(NGHTTP2_CANCEL); return; }
  ex.responded = true;
  ex.status = statusOf(ex.grpc, headers);
  const out = downstreamHeaders(headers);
  applyResponseHeaderOps(out, ex.entry);
  try {
    if ((flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0) {
      down.respond(out, { endStream: true });
      return;
    }
    const wantTrailers = ex.grpc || isGrpcContentType(headers['content-type']);
    down.respond(out, wantTrailers ? { waitForTrailers: true } : {});
    if (wantTrailers) down.once('wantTrailers', onWantTrailers);
  } catch {
    this.close(NGHTTP2_CANCEL);
    return;
  }
  relay(this, down);
}

function onUpTrailers(this: Tagged<http2.ClientHttp2Stream>, trailers: http2.IncomingHttpHeaders): void {
  const ex = this[kEx]!;
  ex.trailers = downstreamHeaders(trailers);
  if (ex.grpc) ex.status = trailers['grpc-status'] === '0' ? 200 : 500;
}

/** The stats status of a response head: for gRPC, a trailers-only head carries grpc-status. */
function statusOf(grpc: boolean, headers: http2.IncomingHttpHeaders): number {
  const s = Number(headers[':status']);
  if (!grpc || s !== 200) return s;
  const g = headers['grpc-status'];
  return g === undefined ? 200 : g === '0' ? 200 : 500;
}

function onWantTrailers(this: Tagged<http2.ServerHttp2Stream>): void {
  const ex = this[kEx]!;
  try {
    this.sendTrailers(ex.trailers ?? { 'grpc-status': '13', 'grpc-message': 'upstream ended the stream without trailers' });
  } catch { this.destroy(); }
}

function onUpClose(this: Tagged<http2.ClientHttp2Stream>): void {
  const ex = this[kEx]!;
  const code = this.rstCode ?? NGHTTP2_NO_ERROR;
  if (code === NGHTTP2_NO_ERROR) { ex.finish(); return; }
  if (!ex.responded) {
    const refused = code === NGHTTP2_REFUSED_STREAM;
    ex.fail(LOCAL_REPLIES.upstreamReset, refused ? 'the upstream refused the stream' : `the upstream reset the stream (code ${code})`);
    return;
  }
  // The response had started: pass the reset on, as the client would have seen it directly.
  if (!ex.down.destroyed) ex.down.close(code);
  ex.status = 0;
  ex.finish();
}

function onDownClose(this: Tagged<http2.ServerHttp2Stream>): void {
  const ex = this[kEx]!;
  const up = ex.up;
  if (up !== undefined && !up.closed && !up.destroyed) up.close(this.rstCode && this.rstCode !== NGHTTP2_NO_ERROR ? this.rstCode : NGHTTP2_CANCEL);
  if (up === undefined) { ex.status = 0; ex.finish(); }
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

/** The route's request header mutations (Envoy's four append actions; see router/header-ops). */
export function applyRequestHeaderOps(out: http.OutgoingHttpHeaders, entry: RouteEntry): void {
  applyHeaderOps(out, entry.requestHeadersToAdd, entry.requestHeadersToRemove);
}

/** The route's response header mutations. */
export function applyResponseHeaderOps(out: http.OutgoingHttpHeaders, entry: RouteEntry): void {
  applyHeaderOps(out, entry.responseHeadersToAdd, entry.responseHeadersToRemove);
}

/**
 * HTTP/2 connection pool for one upstream host (plaintext h2c, prior knowledge), in the style
 * of Envoy's http2 conn_pool: many streams per session; another session is opened when every
 * session is at its stream limit (the peer's SETTINGS_MAX_CONCURRENT_STREAMS, capped by
 * `maxConcurrentStreams`), up to `maxSessions`; beyond that requests wait in a bounded queue.
 * A session that has carried `maxRequestsPerConnection` streams goes DRAINING and closes once
 * idle (Envoy's max_requests_per_connection); the next request opens a new one.
 *
 * Hot path (a READY session has a free slot): `request` picks the first READY session, calls
 * `session.request` and the callback synchronously. No promise, no closure per request.
 *
 * Streams are handed back raw: the caller owns them (must listen for 'error'; reading the
 * response; flow control). REFUSED_STREAM is the router's to retry: see `isRefusedStream`.
 *
 * The engine under it is a PoolClient (pool-client.ts): by default Node's http2 (h2-client.ts,
 * `H2Pool` with its default type parameters); `opts.newClient` plugs in another, as
 * skein-h2-client.ts does for `--h2-engine skein` (the pool's head, options and stream types
 * are then that engine's).
 */
import type { UpstreamTlsOptions } from '../upstream-tls';
import * as http2 from 'node:http2';
import { systemClock } from '../../../../shared/src/clock';
import type { Clock } from '../../../../shared/src/clock';
import { ErrorCodes, MeshError } from '../../../../shared/src/errors';
import type { ClientState } from './client-state';
import { H2Client } from './h2-client';
import type { H2ClientConfig, H2ClientEvents, PoolClient } from './pool-client';
import { PendingQueue } from './pending-queue';
import type { ConnectionEvents } from './connection-events';
import { ConnectBackoff } from './connect-backoff';
import { overflow, poolClosed } from './pool-errors';
import { BreakerOpenError } from '../resources';
import type { ResourceManager } from '../resources';

/** Makes one connection of a pool (an engine's PoolClient). */
export type PoolClientFactory<H, O, S> = (id: number, cfg: H2ClientConfig, events: H2ClientEvents<PoolClient<H, O, S>>) => PoolClient<H, O, S>;

type NodeOptions = http2.ClientSessionRequestOptions | undefined;

export interface H2PoolOptions<H = http2.OutgoingHttpHeaders, O = NodeOptions, S = http2.ClientHttp2Stream> {
  /** The engine: makes each connection. Default: Node's http2 (H2Client). */
  newClient?: PoolClientFactory<H, O, S>;
  /** Names the engine, for the upstream request to pick its adapter. Default 'node'. */
  engine?: 'node' | 'skein';
  /** Time to TCP-connect and receive the peer's first SETTINGS frame. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Close a session that has had no active stream for this long. Default 0 (never). */
  idleTimeoutMs?: number;
  /**
   * Cap on concurrent streams per session, applied below the peer's
   * SETTINGS_MAX_CONCURRENT_STREAMS. Default 1000 (a peer advertising "unlimited" still gets
   * its load spread once a session carries 1000 streams).
   */
  maxConcurrentStreams?: number;
  /**
   * Sessions (TCP connections) this pool may hold open, not counting DRAINING ones (a peer's
   * GOAWAY must not stall new requests). Default 8: Node is single-threaded, so more
   * connections buy little beyond spreading the per-connection flow-control window.
   */
  maxSessions?: number;
  /**
   * Streams a session may ever carry (max_requests_per_connection). A session that has opened
   * this many goes DRAINING: it takes no new stream and closes once its streams have ended;
   * later requests go to another session. Default 0 (unlimited).
   */
  maxRequestsPerConnection?: number;
  /** Requests that may wait for a stream slot; beyond it, UPSTREAM_OVERFLOW. Default 1024. */
  maxPending?: number;
  /** Timer source for the connect and idle timeouts. Default: the system clock. */
  clock?: Clock;
  /** Passed to `http2.connect` as is (settings such as initialWindowSize, maxSessionMemory). */
  sessionOptions?: http2.ClientSessionOptions;
  /** mTLS to a host with a sidecar: each new session's TLS options (upstream-tls.ts). Default: h2c. */
  tls?: UpstreamTlsOptions;
  /**
   * The cluster's circuit breakers, shared by every host's pool: max_pending_requests bounds
   * the requests queued here, max_connections the sessions opened. Default: none.
   */
  resources?: ResourceManager;
  /** Connection events for the cluster's counters. */
  connectionEvents?: ConnectionEvents;
}

/** The pool's settings whatever its engine. */
export type H2PoolSettings = Omit<H2PoolOptions, 'newClient' | 'engine' | 'sessionOptions'>;

/** Called once per request: with a stream, or with a MeshError and no stream. */
export type H2StreamCallback<S = http2.ClientHttp2Stream> = (err: MeshError | null, stream?: S) => void;

/**
 * The same, as a method of the requesting object: the proxy path passes its per-attempt object,
 * so a request costs no closure.
 */
export interface H2StreamReceiver<S = http2.ClientHttp2Stream> { onPoolStream(err: MeshError | null, stream?: S): void }

function deliver<S>(cb: H2StreamCallback<S> | H2StreamReceiver<S>, err: MeshError | null, stream?: S): void {
  if (typeof cb === 'function') cb(err, stream);
  else cb.onPoolStream(err, stream);
}

export interface H2PoolStats {
  /** Sessions not yet CLOSED (any state). */
  sessions: number;
  connecting: number;
  /** READY: a free stream slot. */
  ready: number;
  /** BUSY: at their stream limit. */
  busy: number;
  draining: number;
  activeStreams: number;
  pending: number;
  /** Sessions ever opened (connect attempts). */
  connectsTotal: number;
  /** Failed connects in a row (0 once one succeeds); while in backoff, requests fail at once. */
  connectFailures: number;
}

/** One session, for /clusters. */
export interface H2SessionInfo {
  id: number;
  state: ClientState;
  activeStreams: number;
  /** Stream limit in force: min(peer SETTINGS_MAX_CONCURRENT_STREAMS, cap); 0 while CONNECTING. */
  maxStreams: number;
  streamsTotal: number;
}

interface PendingRequest<H, O, S> {
  headers: H;
  options: O;
  cb: H2StreamCallback<S> | H2StreamReceiver<S>;
}

/**
 * True when the peer reset the stream with REFUSED_STREAM (RFC 9113 §8.7: it did no
 * processing, so the request may be retried, elsewhere too). Check in the stream's 'close'
 * handler. Streams above a GOAWAY's last-stream-id are closed the same way by nghttp2.
 */
export function isRefusedStream(stream: http2.ClientHttp2Stream): boolean {
  return stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM;
}

/** Errors from `session.request` that mean "this session is unusable", not "bad request". */
const SESSION_GONE = new Set(['ERR_HTTP2_INVALID_SESSION', 'ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_OUT_OF_STREAMS']);

type PoolState = 'OPEN' | 'DRAINING' | 'CLOSED';

export class H2Pool<H = http2.OutgoingHttpHeaders, O = NodeOptions, S = http2.ClientHttp2Stream> {
  readonly engine: 'node' | 'skein';
  /** `http://host:port`. */
  readonly authority: string;
  /** `host:port`, for messages. */
  readonly target: string;
  private readonly cfg: H2ClientConfig;
  private readonly maxSessions: number;
  private readonly maxPending: number;
  /** Every client not yet CLOSED, oldest first. */
  private readonly clients: PoolClient<H, O, S>[] = [];
  private readonly pending = new PendingQueue<PendingRequest<H, O, S>>();
  private readonly events: H2ClientEvents<PoolClient<H, O, S>>;
  private readonly newClient: PoolClientFactory<H, O, S>;
  private state: PoolState = 'OPEN';
  private activeStreams = 0;
  /** Sessions whose 'close' has not fired yet (drain/close wait for 0). */
  private openSessions = 0;
  private connectsTotal = 0;
  private nextId = 1;
  /** Expected streams per session while it connects: the last limit a peer gave us. */
  private expectedStreams: number;
  private closeWaiters: (() => void)[] = [];
  private readonly resources: ResourceManager | undefined;
  private readonly connectionEvents: ConnectionEvents | undefined;
  private readonly backoff: ConnectBackoff;

  constructor(target: { address: string; port: number }, opts: H2PoolOptions<H, O, S> = {}) {
    this.engine = opts.engine ?? 'node';
    // Without a factory the type parameters are their defaults (Node's): the cast only says so.
    this.newClient = opts.newClient ?? (nodeClient as unknown as PoolClientFactory<H, O, S>);
    const host = target.address.includes(':') ? `[${target.address}]` : target.address;
    this.target = `${host}:${target.port}`;
    this.authority = `${opts.tls === undefined ? 'http' : 'https'}://${this.target}`;
    const streamCap = opts.maxConcurrentStreams ?? 1000;
    this.cfg = {
      authority: this.authority,
      target: this.target,
      address: target.address,
      port: target.port,
      connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
      idleTimeoutMs: opts.idleTimeoutMs ?? 0,
      streamCap,
      maxRequestsPerConnection: Math.max(0, opts.maxRequestsPerConnection ?? 0),
      clock: opts.clock ?? systemClock,
      sessionOptions: opts.sessionOptions,
      tls: opts.tls,
    };
    this.maxSessions = Math.max(1, opts.maxSessions ?? 8);
    this.maxPending = opts.maxPending ?? 1024;
    this.resources = opts.resources;
    this.connectionEvents = opts.connectionEvents;
    this.expectedStreams = Math.max(1, streamCap);
    this.backoff = new ConnectBackoff(this.cfg.clock);
    this.events = {
      ready: (c) => this.onReady(c),
      streamClosed: (c) => this.onStreamClosed(c),
      draining: () => this.maybeConnect(),
      closed: (c, err) => this.onClientClosed(c, err),
      sessionGone: () => this.onSessionGone(),
    };
  }

  /**
   * Opens a stream to this host. `cb` runs exactly once: synchronously when a READY session
   * has a free slot, later when the request had to wait for a session. Errors:
   * UPSTREAM_OVERFLOW (queue full), UPSTREAM_CONNECT_FAILURE / UPSTREAM_CONNECT_TIMEOUT (the
   * session the request waited for failed), POOL_CLOSED (after drain/close), INTERNAL
   * (`session.request` rejected the headers).
   */
  request(headers: H, options: O, cb: H2StreamCallback<S> | H2StreamReceiver<S>): void {
    if (this.state !== 'OPEN') {
      deliver(cb, poolClosed(this.target));
      return;
    }
    const c = this.pickReady();
    if (c !== undefined) {
      this.dispatch(c, headers, options, cb);
      return;
    }
    if (this.pending.length >= this.maxPending) {
      deliver(cb, overflow(this.target, this.maxPending));
      return;
    }
    // A host whose last connect failed is not dialled again until its backoff passes.
    const blocked = this.backoff.failures > 0 && this.pending.length === 0 && !this.connecting() ? this.backoff.blocked() : undefined;
    if (blocked !== undefined) {
      deliver(cb, blocked);
      return;
    }
    const res = this.resources;
    if (res !== undefined) {
      if (!res.pendingRequests.canCreate()) {
        deliver(cb, new BreakerOpenError('max_pending_requests', res.cluster, res.pendingRequests.max));
        return;
      }
      res.pendingRequests.inc();
    }
    this.pending.push({ headers, options, cb });
    this.maybeConnect();
  }

  /**
   * Stops new streams (later `request` calls and queued requests get POOL_CLOSED), lets
   * in-flight streams finish, closes every session; resolves when all sockets are closed.
   */
  drain(): Promise<void> {
    if (this.state === 'OPEN') {
      this.state = 'DRAINING';
      this.failPending(poolClosed(this.target));
      for (const c of this.clients.slice()) c.drain();
    }
    return this.whenSessionsGone();
  }

  /** Destroys every session now (in-flight streams are destroyed). Resolves when sockets are closed. */
  close(): Promise<void> {
    if (this.state !== 'CLOSED') {
      this.state = 'CLOSED';
      this.failPending(poolClosed(this.target));
      for (const c of this.clients.slice()) c.destroy();
    }
    return this.whenSessionsGone();
  }

  stats(): H2PoolStats {
    let connecting = 0, ready = 0, busy = 0, draining = 0;
    for (const c of this.clients) {
      switch (c.state) {
        case 'CONNECTING': connecting++; break;
        case 'READY': ready++; break;
        case 'BUSY': busy++; break;
        case 'DRAINING': draining++; break;
        case 'CLOSED': break;
      }
    }
    return {
      sessions: this.clients.length, connecting, ready, busy, draining,
      activeStreams: this.activeStreams, pending: this.pending.length, connectsTotal: this.connectsTotal, connectFailures: this.backoff.failures,
    };
  }

  /** Each live session and its state, oldest first (for /clusters). */
  sessions(): H2SessionInfo[] {
    return this.clients.map((c) => ({ id: c.id, state: c.state, activeStreams: c.active, maxStreams: c.limit, streamsTotal: c.streamsTotal }));
  }

  // --- internals ---------------------------------------------------------------------------

  /** First READY session: packs streams onto the oldest sessions so spare ones go idle. */
  private pickReady(): PoolClient<H, O, S> | undefined {
    const clients = this.clients;
    for (let i = 0; i < clients.length; i++) {
      const c = clients[i]!;
      if (c.state === 'READY') return c;
    }
    return undefined;
  }

  private dispatch(c: PoolClient<H, O, S>, headers: H, options: O, cb: H2StreamCallback<S> | H2StreamReceiver<S>): void {
    let stream: S | undefined;
    try {
      stream = c.newStream(headers, options);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && SESSION_GONE.has(code)) {
        c.drain(); // not READY any more, so re-entering cannot pick it again
        this.request(headers, options, cb);
        return;
      }
      const msg = err instanceof Error ? err.message : String(err);
      deliver(cb, new MeshError(ErrorCodes.INTERNAL, `h2 request to ${this.target} rejected: ${msg}`, { cause: err }));
      return;
    }
    // No slot after all (the peer lowered its limit): the client went BUSY, so this picks another or queues.
    if (stream === undefined) { this.request(headers, options, cb); return; }
    this.activeStreams++;
    deliver(cb, null, stream);
  }

  /** Opens sessions while the queue outgrows what connecting sessions are expected to carry. */
  private maybeConnect(): void {
    if (this.state !== 'OPEN' || this.pending.length === 0) return;
    let live = 0;
    let capacity = 0;
    for (const c of this.clients) {
      if (c.state === 'DRAINING') continue;
      live++;
      if (c.state === 'CONNECTING') capacity += this.sessionCapacity();
    }
    while (this.pending.length > capacity && live < this.maxSessions) {
      const res = this.resources;
      if (res !== undefined && !res.connections.canCreate()) {
        // max_connections: requests wait for the sessions there are; with none at all, fail fast.
        if (live === 0) this.failPending(new BreakerOpenError('max_connections', res.cluster, res.connections.max));
        return;
      }
      this.connect();
      live++;
      capacity += this.sessionCapacity();
    }
  }

  /** Streams a connecting session is expected to take: its stream limit, or fewer if max_requests_per_connection is lower. */
  private sessionCapacity(): number {
    const max = this.cfg.maxRequestsPerConnection;
    return max > 0 && max < this.expectedStreams ? max : this.expectedStreams;
  }

  private connect(): void {
    this.resources?.connections.inc();
    const c = this.newClient(this.nextId++, this.cfg, this.events);
    this.clients.push(c);
    this.openSessions++;
    this.connectsTotal++;
    this.connectionEvents?.connectAttempt();
  }

  private servePending(): void {
    while (this.pending.length > 0) {
      const c = this.pickReady();
      if (c === undefined) break;
      const p = this.pending.shift()!;
      this.resources?.pendingRequests.dec();
      this.dispatch(c, p.headers, p.options, p.cb);
    }
    this.maybeConnect();
  }

  private connecting(): boolean {
    for (const c of this.clients) if (c.state === 'CONNECTING') return true;
    return false;
  }

  private onReady(c: PoolClient<H, O, S>): void {
    this.backoff.succeeded();
    this.expectedStreams = Math.max(1, c.limit);
    if (this.pending.length > 0) this.servePending();
  }

  private onStreamClosed(c: PoolClient<H, O, S>): void {
    this.activeStreams--;
    if (this.pending.length > 0 && c.state === 'READY') this.servePending();
  }

  private onClientClosed(c: PoolClient<H, O, S>, connectError: MeshError | undefined): void {
    const i = this.clients.indexOf(c);
    if (i >= 0) this.clients.splice(i, 1);
    if (connectError !== undefined) {
      this.backoff.failed(connectError);
      this.connectionEvents?.connectFailed();
      // As Envoy: a connect failure fails every waiting request, so callers can decide
      // (retry another host) instead of waiting on a host that does not answer.
      this.failPending(connectError);
    } else {
      this.maybeConnect();
    }
  }

  private onSessionGone(): void {
    this.openSessions--;
    this.resources?.connections.dec();
    if (this.openSessions === 0 && this.closeWaiters.length > 0) {
      const waiters = this.closeWaiters;
      this.closeWaiters = [];
      for (const w of waiters) w();
    }
  }

  private failPending(err: MeshError): void {
    if (this.pending.length === 0) return;
    const all = this.pending.takeAll();
    if (this.resources !== undefined) for (let i = 0; i < all.length; i++) this.resources.pendingRequests.dec();
    for (const p of all) deliver(p.cb, err);
  }

  private whenSessionsGone(): Promise<void> {
    if (this.openSessions === 0) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }
}

function nodeClient(id: number, cfg: H2ClientConfig, events: H2ClientEvents<PoolClient<http2.OutgoingHttpHeaders, NodeOptions, http2.ClientHttp2Stream>>): H2Client {
  return new H2Client(id, cfg, events);
}

/**
 * HTTP/1.1 connection pool for one upstream origin: a thin wrapper over undici's `Pool`
 * (keep-alive, no pipelining), with errors mapped to MeshError codes.
 *
 * `request(opts, handler)` is the proxy path: the request body is a Readable that undici
 * pulls with backpressure; the response arrives through an H1ResponseHandler (status and
 * headers, body chunks with `onData() === false` to pause, trailers). An `upgrade` request
 * (WebSocket) gets the raw upstream socket in `onUpgrade` on 101, or an ordinary response
 * (e.g. 403) through onHead/onData/onEnd otherwise, so refusals pass through unchanged.
 *
 * Hop-by-hop headers (connection, keep-alive, transfer-encoding, upgrade, te, ...) are the
 * caller's to strip; undici rejects some of them (-> INTERNAL).
 */
import type { ConnectionEvents } from './connection-events';
import type { Readable } from 'node:stream';
import * as tls from 'node:tls';
import type { Pool } from 'undici';
import type { UpstreamTlsOptions } from '../upstream-tls';
import { connectFailure, connectTimeout } from './pool-errors';
import type { buildConnector, Dispatcher } from 'undici';
import { BreakerOpenError } from '../resources';
import type { ResourceManager } from '../resources';
import { H1Exchange } from './h1-exchange';
import type { H1ResponseHandler } from './h1-exchange';
import { ConnectBackoff } from './connect-backoff';
import { systemClock } from '../../../../shared/src/clock';
import type { Clock } from '../../../../shared/src/clock';

export type { H1ResponseHandler } from './h1-exchange';
export { H1Exchange } from './h1-exchange';

export interface H1PoolOptions {
  /** TCP connect timeout. Default 5000 ms (-> UPSTREAM_CONNECT_TIMEOUT). */
  connectTimeoutMs?: number;
  /**
   * Max connections to this origin. Default 128: with pipelining off this is the
   * concurrency limit; further requests queue inside undici.
   */
  connections?: number;
  /** Idle keep-alive time when the server does not send `Keep-Alive: timeout=`. Default 4000 ms (undici's; below Node's 5 s server default). */
  keepAliveTimeoutMs?: number;
  /** Upper bound on a server-advertised keep-alive timeout. Default 600000 ms. */
  keepAliveMaxTimeoutMs?: number;
  /**
   * Requests a connection may ever carry (max_requests_per_connection): the last one is sent with
   * `connection: close` and the next request opens a new connection. Default 0 (unlimited).
   */
  maxRequestsPerConnection?: number;
  /** Time to receive response headers. Default 0 (off): the router owns request timeouts. */
  headersTimeoutMs?: number;
  /** Max gap between body chunks. Default 0 (off): long-lived streams (SSE) must not be cut. */
  bodyTimeoutMs?: number;
  /** mTLS to a host with a sidecar: each new connection's TLS options (upstream-tls.ts). Default: plaintext. */
  tls?: UpstreamTlsOptions;
  /** Raw undici options, applied last (escape hatch). */
  undici?: Pool.Options;
  /**
   * The cluster's circuit breakers: a request is pending (max_pending_requests) from dispatch
   * until undici writes it on a connection, including while that connection is being opened.
   * At the limit a request fails at once with BreakerOpenError.
   */
  resources?: ResourceManager;
  /** Connection events for the cluster's counters. */
  connectionEvents?: ConnectionEvents;
  /** Timer source for the reconnect backoff (connect-backoff.ts). Default: the system clock. */
  clock?: Clock;
}

export interface H1RequestOptions {
  method: string;
  /** Path and query, e.g. `/a?b=1`. */
  path: string;
  /** Header object or flat [name, value, ...] list. `host` is passed through if present. */
  headers?: Record<string, string | string[] | undefined> | string[] | null;
  /** Streamed with backpressure; null for no body. */
  body?: Readable | Buffer | string | null;
  /** Set (e.g. 'websocket') for an Upgrade request; the 101 arrives in handler.onUpgrade. */
  upgrade?: string;
}

export interface H1PoolStats {
  /** Open connections. */
  connected: number;
  /** Open connections with no request. */
  free: number;
  /** Requests on connections (sent, awaiting/reading the response). */
  running: number;
  /** Requests waiting for a connection. */
  pending: number;
  queued: number;
  /** running + pending + queued. */
  size: number;
  /** Failed connects in a row (0 once a response arrives); while in backoff, requests fail at once. */
  connectFailures: number;
}

let undiciModule: typeof import('undici') | undefined;

/**
 * undici, loaded on first use: a sidecar whose clusters are all HTTP/2 (gRPC) never loads it
 * (about 5 MiB of heap and 110 modules). Cluster loads it when an HTTP/1.1 cluster is
 * configured (loadUndici), so the first request to one does not pay for it.
 */
export function loadUndici(): typeof import('undici') {
  return undiciModule ??= require('undici') as typeof import('undici');
}

export class H1Pool {
  /** `http://host:port`. */
  readonly origin: string;
  /** `host:port`, for messages. */
  readonly target: string;
  /** The undici Pool, for uses beyond `request` (health checks: `dispatcher.request(...)`). */
  readonly dispatcher: Pool;
  private readonly resources: ResourceManager | undefined;
  private readonly backoff: ConnectBackoff;
  /** max_requests_per_connection 1: every request is the connection's last. */
  private readonly closeEach: boolean;

  constructor(target: { address: string; port: number }, opts: H1PoolOptions = {}) {
    const host = target.address.includes(':') ? `[${target.address}]` : target.address;
    this.target = `${host}:${target.port}`;
    this.origin = `${opts.tls === undefined ? 'http' : 'https'}://${this.target}`;
    const maxReq = Math.max(0, opts.maxRequestsPerConnection ?? 0);
    this.dispatcher = new (loadUndici().Pool)(this.origin, {
      connections: opts.connections ?? 128,
      pipelining: 1,
      connectTimeout: opts.connectTimeoutMs ?? 5000,
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? 4000,
      keepAliveMaxTimeout: opts.keepAliveMaxTimeoutMs ?? 600_000,
      headersTimeout: opts.headersTimeoutMs ?? 0,
      bodyTimeout: opts.bodyTimeoutMs ?? 0,
      // undici (7.x) sends maxRequestsPerClient + 1 requests on a connection before closing it
      // (it marks the request after the limit `connection: close`), so the limit is passed as
      // N - 1; N = 1 (undici's 0 is "unlimited") sends every request with connection: close.
      ...(maxReq > 1 ? { maxRequestsPerClient: maxReq - 1 } : {}),
      ...(opts.tls === undefined ? {} : { connect: tlsConnector(this.target, opts.tls, opts.connectTimeoutMs ?? 5000) }),
      ...opts.undici,
    });
    this.closeEach = maxReq === 1;
    this.resources = opts.resources;
    this.backoff = new ConnectBackoff(opts.clock ?? systemClock);
    const ev = opts.connectionEvents;
    if (ev !== undefined) {
      // undici reports each connection it opens, and each attempt that fails.
      this.dispatcher.on('connect', () => ev.connectAttempt());
      this.dispatcher.on('connectionError', () => { ev.connectAttempt(); ev.connectFailed(); });
    }
  }

  /**
   * Sends one request; the handler receives the response (see H1ResponseHandler). Returns the
   * exchange, for `resume()` (backpressure) and `abort(reason)`. Never throws: errors found
   * at dispatch (bad arguments -> INTERNAL, pool closed -> POOL_CLOSED, max_pending_requests
   * -> BreakerOpenError) reach handler.onError synchronously, before this returns.
   */
  request(opts: H1RequestOptions, handler: H1ResponseHandler): H1Exchange {
    // A host whose last connect failed is not dialled again until its backoff passes.
    const blocked = this.backoff.failures > 0 && this.dispatcher.stats.connected === 0 ? this.backoff.blocked() : undefined;
    if (blocked !== undefined) {
      const exchange = new H1Exchange(this.target, handler);
      handler.onError(blocked);
      return exchange;
    }
    const res = this.resources;
    if (res !== undefined && !res.pendingRequests.canCreate()) {
      const exchange = new H1Exchange(this.target, handler);
      handler.onError(new BreakerOpenError('max_pending_requests', res.cluster, res.pendingRequests.max));
      return exchange;
    }
    res?.pendingRequests.inc();
    const exchange = new H1Exchange(this.target, handler, res?.pendingRequests, this.backoff);
    const dispatchOpts: Dispatcher.DispatchOptions = {
      method: opts.method as Dispatcher.HttpMethod,
      path: opts.path,
      headers: opts.headers ?? null,
      body: opts.body ?? null,
      upgrade: opts.upgrade ?? null,
      reset: this.closeEach,
    };
    this.dispatcher.dispatch(dispatchOpts, exchange);
    return exchange;
  }

  stats(): H1PoolStats {
    const s = this.dispatcher.stats;
    return { connected: s.connected, free: s.free, running: s.running, pending: s.pending, queued: s.queued, size: s.size, connectFailures: this.backoff.failures };
  }

  /** Graceful: queued and in-flight requests complete, then connections close. New requests fail with POOL_CLOSED. */
  drain(): Promise<void> {
    return this.dispatcher.close();
  }

  /** Now: in-flight requests fail (POOL_CLOSED), connections are destroyed. */
  close(): Promise<void> {
    return this.dispatcher.destroy();
  }
}

/**
 * undici's connector for mTLS: a TLS connection with the options of this moment (a renewed
 * certificate reaches the next connection), HTTP/1.1 by ALPN, within the connect timeout.
 * Handshake failures (an unknown CA, a peer identity the cluster does not allow) are connect
 * failures, with the reason.
 */
function tlsConnector(target: string, options: UpstreamTlsOptions, timeoutMs: number): buildConnector.connector {
  return (o, cb): void => {
    let done = false;
    const socket = tls.connect({ ...options(), host: o.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(o.port), ALPNProtocols: ['http/1.1'] });
    socket.setNoDelay(true);
    const timer = setTimeout(() => finish(connectTimeout(target, `after ${timeoutMs}ms (TLS)`)), timeoutMs);
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeListener('error', onError);
      if (err === null) { cb(null, socket); return; }
      socket.destroy();
      cb(err, null);
    };
    const onError = (e: Error): void => finish(connectFailure(target, e));
    socket.once('secureConnect', () => finish(null));
    socket.on('error', onError);
  };
}

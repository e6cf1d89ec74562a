/**
 * One HTTP/2 connection of an H2Pool (Envoy's ActiveClient), whatever the engine under it: its
 * state (client-state.ts), stream limit and active-stream count, connect and idle timers, and
 * max_requests_per_connection retirement. Policy (which client gets a request, when to connect)
 * is the pool's. An engine subclasses it: h2-client.ts (Node's http2 session) and
 * skein-h2-client.ts (skein's H2Connection); it opens streams (open) and closes its transport,
 * and reports the transport's events with peerSettings / peerGoaway / transportError /
 * transportClosed.
 */
import type * as http2 from 'node:http2';
import type { Clock, TimerHandle } from '../../../../shared/src/clock';
import type { MeshError } from '../../../../shared/src/errors';
import type { ClientState } from './client-state';
import { connectFailure, connectTimeout } from './pool-errors';
import type { UpstreamTlsOptions } from '../upstream-tls';

/** What a client tells its pool. Implemented once per pool, not per request. */
export interface H2ClientEvents<C> {
  /** The peer's first SETTINGS arrived (or a later SETTINGS changed the stream limit). */
  ready(c: C): void;
  /** A stream of `c` closed; `c.active` is already decremented. */
  streamClosed(c: C): void;
  /** `c` stopped taking streams (GOAWAY, idle); its in-flight streams continue. */
  draining(c: C): void;
  /** `c` is CLOSED. `connectError` is set when it never became READY. */
  closed(c: C, connectError: MeshError | undefined): void;
  /** The underlying connection is gone (socket closed); fires once per client. */
  sessionGone(c: C): void;
}

export interface H2ClientConfig {
  authority: string;
  /** For error messages: host:port. */
  target: string;
  /** Where to connect (the skein engine dials it itself). */
  address: string;
  port: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** Upper bound on streams per session, below the peer's SETTINGS_MAX_CONCURRENT_STREAMS. */
  streamCap: number;
  /** Streams a session may ever open (max_requests_per_connection); 0: unlimited. */
  maxRequestsPerConnection: number;
  clock: Clock;
  /** Node engine only: passed to http2.connect. */
  sessionOptions: http2.ClientSessionOptions | undefined;
  /** mTLS: this session's TLS options, read when it connects (the authority is then https://). */
  tls: UpstreamTlsOptions | undefined;
}

/** `H`: a request head; `O`: its options; `S`: the stream the engine hands back. */
export abstract class PoolClient<H, O, S> {
  state: ClientState = 'CONNECTING';
  /** Streams opened and not yet closed. */
  active = 0;
  /** min(peer SETTINGS_MAX_CONCURRENT_STREAMS, streamCap); 0 until the peer's SETTINGS arrive. */
  limit = 0;
  /** Streams ever opened on this session. */
  streamsTotal = 0;
  private connectTimer: TimerHandle | undefined;
  private idleTimer: TimerHandle | undefined;
  /** DRAINING because max_requests_per_connection was reached: close when the last stream ends. */
  private retiring = false;

  constructor(readonly id: number, protected readonly cfg: H2ClientConfig, private readonly events: H2ClientEvents<PoolClient<H, O, S>>) {
    this.connectTimer = cfg.clock.setTimer(cfg.connectTimeoutMs, this.onConnectTimeout);
  }

  /** Opens a stream on the transport: throws when the engine rejects it, undefined when it has no stream slot now. */
  protected abstract open(headers: H, options: O): S | undefined;
  /** Graceful: no new streams, the transport closes after its streams. */
  protected abstract closeTransport(): void;
  /** Now: in-flight streams are destroyed. */
  protected abstract destroyTransport(): void;

  /**
   * Opens a stream; the caller (pool) has checked `state === 'READY'`. Throws what the engine
   * throws; undefined when the engine has no slot after all: the peer lowered its limit (the
   * client is then BUSY until peerSettings says otherwise), or the engine can open no more
   * streams at all (open() drained the client).
   */
  newStream(headers: H, options: O): S | undefined {
    const stream = this.open(headers, options);
    if (stream === undefined) {
      if (this.state === 'READY') { this.limit = this.active; this.state = 'BUSY'; }
      return undefined;
    }
    this.streamsTotal++;
    if (++this.active >= this.limit) this.state = 'BUSY';
    if (this.idleTimer !== undefined) {
      this.idleTimer.cancel();
      this.idleTimer = undefined;
    }
    const max = this.cfg.maxRequestsPerConnection;
    if (max > 0 && this.streamsTotal >= max) this.retire();
    return stream;
  }

  /**
   * max_requests_per_connection reached: DRAINING (no new streams) now, but the session is
   * closed only once its streams have ended (streamClosed). Closing it here would queue our
   * GOAWAY ahead of the HEADERS of the stream just opened (nghttp2 sends control frames
   * first), and the peer would refuse that stream.
   */
  private retire(): void {
    this.state = 'DRAINING';
    this.retiring = true;
    this.cancelIdle();
    this.events.draining(this);
  }

  /** Graceful: no new streams; the session closes once its streams finish. */
  drain(): void {
    if (this.state === 'CONNECTING') {
      this.destroy();
      return;
    }
    if (this.state === 'CLOSED' || this.state === 'DRAINING') return;
    this.state = 'DRAINING';
    this.cancelIdle();
    this.closeTransport();
    this.events.draining(this);
  }

  /** Now: in-flight streams are destroyed. */
  destroy(): void {
    this.toClosed(undefined);
    this.destroyTransport();
  }

  /** Arms the idle timer if this session is READY with no streams. */
  maybeArmIdle(): void {
    if (this.cfg.idleTimeoutMs > 0 && this.active === 0 && this.state === 'READY' && this.idleTimer === undefined) {
      this.idleTimer = this.cfg.clock.setTimer(this.cfg.idleTimeoutMs, this.onIdle);
    }
  }

  /** One of this client's streams closed. */
  streamClosed(): void {
    this.active--;
    if (this.state === 'BUSY' && this.active < this.limit) this.state = 'READY';
    this.events.streamClosed(this);
    if (this.retiring && this.active === 0 && this.state === 'DRAINING') this.closeTransport();
    else this.maybeArmIdle();
  }

  /** The peer's SETTINGS (its MAX_CONCURRENT_STREAMS, `peerMax`), or a stream slot it freed. */
  protected peerSettings(peerMax: number): void {
    this.limit = Math.min(peerMax, this.cfg.streamCap);
    if (this.state === 'CONNECTING') {
      this.cancelConnectTimer();
    } else if (this.state !== 'READY' && this.state !== 'BUSY') {
      return;
    }
    this.state = this.active < this.limit ? 'READY' : 'BUSY';
    this.events.ready(this);
    this.maybeArmIdle();
  }

  protected peerGoaway(): void {
    if (this.state === 'CONNECTING') {
      this.failConnect(connectFailure(this.cfg.target, new Error('peer sent GOAWAY before SETTINGS')));
      return;
    }
    // The engine closes the session itself (after in-flight streams) on a NO_ERROR GOAWAY and
    // ends it on any other code; either way this client takes no new streams.
    this.drain();
  }

  protected transportError(err: Error): void {
    if (this.state === 'CONNECTING') this.failConnect(connectFailure(this.cfg.target, err));
    // Otherwise: streams see their own errors; transportClosed follows and removes the client.
  }

  protected transportClosed(): void {
    if (this.state === 'CONNECTING') {
      this.toClosed(connectFailure(this.cfg.target, new Error('connection closed before the peer sent SETTINGS')));
    } else {
      this.toClosed(undefined);
    }
    this.events.sessionGone(this);
  }

  private readonly onConnectTimeout = (): void => {
    this.connectTimer = undefined;
    if (this.state === 'CONNECTING') this.failConnect(connectTimeout(this.cfg.target, `after ${this.cfg.connectTimeoutMs}ms`));
  };

  private readonly onIdle = (): void => {
    this.idleTimer = undefined;
    if (this.active === 0 && this.state === 'READY') this.drain();
  };

  private failConnect(err: MeshError): void {
    this.toClosed(err);
    this.destroyTransport();
  }

  private toClosed(connectError: MeshError | undefined): void {
    if (this.state === 'CLOSED') return;
    this.state = 'CLOSED';
    this.cancelConnectTimer();
    this.cancelIdle();
    this.events.closed(this, connectError);
  }

  private cancelConnectTimer(): void {
    if (this.connectTimer !== undefined) {
      this.connectTimer.cancel();
      this.connectTimer = undefined;
    }
  }

  private cancelIdle(): void {
    if (this.idleTimer !== undefined) {
      this.idleTimer.cancel();
      this.idleTimer = undefined;
    }
  }
}

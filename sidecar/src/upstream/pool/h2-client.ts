/**
 * One HTTP/2 session of an H2Pool (Envoy's ActiveClient): owns the ClientHttp2Session, its
 * state (see client-state.ts), its stream limit and active-stream count, and its connect and
 * idle timers. Policy (which client gets a request, when to connect) is the pool's.
 *
 * Accounting: each stream gets one shared module-level 'close' listener (no closure per
 * request); the stream is tagged with its client through a symbol property.
 */
import * as http2 from 'node:http2';
import type { Clock, TimerHandle } from '../../../../shared/src/clock';
import type { MeshError } from '../../../../shared/src/errors';
import type { ClientState } from './client-state';
import { connectFailure, connectTimeout } from './pool-errors';
import type { UpstreamTlsOptions } from '../upstream-tls';

/** What a client tells its pool. Implemented once per pool, not per request. */
export interface H2ClientEvents {
  /** The peer's first SETTINGS arrived (or a later SETTINGS changed the stream limit). */
  ready(c: H2Client): void;
  /** A stream of `c` closed; `c.active` is already decremented. */
  streamClosed(c: H2Client): void;
  /** `c` stopped taking streams (GOAWAY, idle); its in-flight streams continue. */
  draining(c: H2Client): void;
  /** `c` is CLOSED. `connectError` is set when it never became READY. */
  closed(c: H2Client, connectError: MeshError | undefined): void;
  /** The underlying session emitted 'close' (socket gone); fires once per client. */
  sessionGone(c: H2Client): void;
}

export interface H2ClientConfig {
  authority: string;
  /** For error messages: host:port. */
  target: string;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** Upper bound on streams per session, below the peer's SETTINGS_MAX_CONCURRENT_STREAMS. */
  streamCap: number;
  /** Streams a session may ever open (max_requests_per_connection); 0: unlimited. */
  maxRequestsPerConnection: number;
  clock: Clock;
  sessionOptions: http2.ClientSessionOptions | undefined;
  /** mTLS: this session's TLS options, read when it connects (the authority is then https://). */
  tls: UpstreamTlsOptions | undefined;
}

const kClient = Symbol('skein.h2.client');

/**
 * Who owns a stream (the proxy's attempt): set by the owner under this symbol, it hears the
 * stream's close right after the pool's own bookkeeping, through the pool's one 'close' listener
 * (a second listener would cost Node a listener array per stream). The owner may keep its other
 * event handlers' state under the same symbol.
 */
export const kStreamOwner = Symbol('skein.h2.owner');
export interface H2StreamOwner { onStreamClose(stream: http2.ClientHttp2Stream): void }
type TaggedStream = http2.ClientHttp2Stream & { [kClient]: H2Client; [kStreamOwner]?: H2StreamOwner };

function onStreamClose(this: TaggedStream): void {
  this[kClient].onStreamClose();
  this[kStreamOwner]?.onStreamClose(this);
}

export class H2Client {
  state: ClientState = 'CONNECTING';
  /** Streams opened and not yet closed. */
  active = 0;
  /** min(peer SETTINGS_MAX_CONCURRENT_STREAMS, streamCap); 0 until the peer's SETTINGS arrive. */
  limit = 0;
  /** Streams ever opened on this session. */
  streamsTotal = 0;
  readonly session: http2.ClientHttp2Session;
  private connectTimer: TimerHandle | undefined;
  private idleTimer: TimerHandle | undefined;
  /** DRAINING because max_requests_per_connection was reached: close when the last stream ends. */
  private retiring = false;

  constructor(readonly id: number, private readonly cfg: H2ClientConfig, private readonly events: H2ClientEvents) {
    // Throws synchronously only for a malformed authority (a bug); the pool lets that surface.
    this.session = cfg.tls === undefined ? http2.connect(cfg.authority, cfg.sessionOptions) : http2.connect(cfg.authority, { ...cfg.sessionOptions, ...cfg.tls(), ALPNProtocols: ['h2'] });
    this.session.on('remoteSettings', this.onRemoteSettings);
    this.session.on('goaway', this.onGoaway);
    this.session.on('error', this.onError);
    this.session.on('close', this.onClose);
    this.connectTimer = cfg.clock.setTimer(cfg.connectTimeoutMs, this.onConnectTimeout);
  }

  /**
   * Opens a stream; the caller (pool) has checked `state === 'READY'`. Throws what
   * `session.request` throws (invalid headers, session closing).
   */
  newStream(headers: http2.OutgoingHttpHeaders, options: http2.ClientSessionRequestOptions | undefined): http2.ClientHttp2Stream {
    const stream = this.session.request(headers, options) as TaggedStream;
    stream[kClient] = this;
    stream.on('close', onStreamClose);
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
   * closed only once its streams have ended (onStreamClose). Closing it here would queue our
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
    this.session.close();
    this.events.draining(this);
  }

  /** Now: in-flight streams are destroyed. */
  destroy(): void {
    this.toClosed(undefined);
    this.session.destroy();
  }

  /** Arms the idle timer if this session is READY with no streams. */
  maybeArmIdle(): void {
    if (this.cfg.idleTimeoutMs > 0 && this.active === 0 && this.state === 'READY' && this.idleTimer === undefined) {
      this.idleTimer = this.cfg.clock.setTimer(this.cfg.idleTimeoutMs, this.onIdle);
    }
  }

  onStreamClose(): void {
    this.active--;
    if (this.state === 'BUSY' && this.active < this.limit) this.state = 'READY';
    this.events.streamClosed(this);
    if (this.retiring && this.active === 0 && this.state === 'DRAINING') this.session.close();
    else this.maybeArmIdle();
  }

  private readonly onRemoteSettings = (settings: http2.Settings): void => {
    const peer = settings.maxConcurrentStreams ?? 0xffffffff;
    this.limit = Math.min(peer, this.cfg.streamCap);
    if (this.state === 'CONNECTING') {
      this.cancelConnectTimer();
    } else if (this.state !== 'READY' && this.state !== 'BUSY') {
      return;
    }
    this.state = this.active < this.limit ? 'READY' : 'BUSY';
    this.events.ready(this);
    this.maybeArmIdle();
  };

  private readonly onGoaway = (): void => {
    if (this.state === 'CONNECTING') {
      this.failConnect(connectFailure(this.cfg.target, new Error('peer sent GOAWAY before SETTINGS')));
      return;
    }
    // Node closes the session itself (after in-flight streams) on a NO_ERROR GOAWAY and
    // destroys it on any other code; either way this client takes no new streams.
    this.drain();
  };

  private readonly onError = (err: Error): void => {
    if (this.state === 'CONNECTING') this.failConnect(connectFailure(this.cfg.target, err));
    // Otherwise: streams see their own errors; 'close' follows and removes the client.
  };

  private readonly onClose = (): void => {
    if (this.state === 'CONNECTING') {
      this.toClosed(connectFailure(this.cfg.target, new Error('connection closed before the peer sent SETTINGS')));
    } else {
      this.toClosed(undefined);
    }
    this.events.sessionGone(this);
  };

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
    this.session.destroy();
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

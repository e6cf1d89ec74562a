/**
 * One HTTP/2 connection of an H2Pool on skein's own engine (`--h2-engine skein`): an
 * H2Connection in the client role over a `net` (h2c, prior knowledge) or `tls` (ALPN h2) socket
 * it dials itself. The state machine, limits and timers are PoolClient's; this class is the
 * connection's one H2Handler and passes each stream's events to the stream's owner (`s.user`,
 * an H2StreamUser: the proxy's attempt), so a request costs no listener and no closure.
 *
 * Ready when the peer's first SETTINGS arrive (its MAX_CONCURRENT_STREAMS is then known, as
 * with Node's 'remoteSettings'); a slot the engine frees after request() said no (onCapacity)
 * makes it READY again.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { H2Connection } from '../../h2/connection';
import type { H2Handler } from '../../h2/connection';
import { H2_ERROR } from '../../h2/errors';
import type { H2Limits, H2Stats } from '../../h2/limits';
import type { H2Stream } from '../../h2/stream';
import { H2Pool } from './h2-pool';
import type { H2PoolSettings } from './h2-pool';
import { PoolClient } from './pool-client';
import type { H2ClientConfig, H2ClientEvents } from './pool-client';

/** A request head as the engine takes it: a flat [name, value, ...] list, pseudo-headers first. */
export type SkeinHead = string[];
/** A pool of skein H2Connections: request(head, endStream, receiver) hands back an H2Stream. */
export type SkeinH2Pool = H2Pool<SkeinHead, boolean, H2Stream>;

/** The owner of a stream (`s.user`): the connection's events for that stream. */
export interface H2StreamUser {
  onH2Headers(s: H2Stream, headers: string[], endStream: boolean): void;
  /** A 1xx head (not 101) before the final one. */
  onH2Informational(s: H2Stream, headers: string[]): void;
  onH2Data(s: H2Stream, data: Buffer, endStream: boolean): void;
  onH2Trailers(s: H2Stream, trailers: string[]): void;
  onH2Writable(s: H2Stream): void;
  onH2Close(s: H2Stream, code: number, retryable: boolean): void;
}

/** What every skein connection of a sidecar shares: the counters /stats shows, and the engine's limits. */
export interface SkeinH2Engine {
  stats: H2Stats;
  limits?: Partial<H2Limits>;
}

type Client = PoolClient<SkeinHead, boolean, H2Stream>;

export class SkeinH2Client extends PoolClient<SkeinHead, boolean, H2Stream> implements H2Handler {
  readonly conn: H2Connection;

  constructor(id: number, cfg: H2ClientConfig, events: H2ClientEvents<Client>, engine: SkeinH2Engine) {
    super(id, cfg, events);
    const socket = cfg.tls === undefined
      ? net.connect({ host: cfg.address, port: cfg.port })
      : tls.connect({ host: cfg.address, port: cfg.port, ...cfg.tls(), ALPNProtocols: ['h2'] });
    this.conn = new H2Connection(socket, { role: 'client', handler: this, stats: engine.stats, clock: cfg.clock, ...(engine.limits !== undefined ? { limits: engine.limits } : {}) });
  }

  protected open(head: SkeinHead, endStream: boolean): H2Stream | undefined {
    const s = this.conn.request(head, endStream);
    // Not for the peer's stream limit: the connection can open no more (stream ids used up, a
    // GOAWAY either way, closed), as Node's ERR_HTTP2_OUT_OF_STREAMS. The pool goes elsewhere.
    if (s === undefined && this.conn.activeStreams < this.conn.peerMaxConcurrentStreams) this.drain();
    return s;
  }

  protected closeTransport(): void { this.conn.goaway(); }

  protected destroyTransport(): void { this.conn.destroy(); }

  // --- H2Handler: the connection's events ------------------------------------------------------

  onHeaders(s: H2Stream, headers: string[], endStream: boolean): void {
    const u = s.user as H2StreamUser | undefined;
    if (u !== undefined) u.onH2Headers(s, headers, endStream); else this.conn.reset(s, H2_ERROR.CANCEL);
  }

  onInformational(s: H2Stream, headers: string[]): void { (s.user as H2StreamUser | undefined)?.onH2Informational(s, headers); }

  onData(s: H2Stream, data: Buffer, endStream: boolean): void {
    const u = s.user as H2StreamUser | undefined;
    if (u !== undefined) u.onH2Data(s, data, endStream); else this.conn.consumed(s, data.length);
  }

  onTrailers(s: H2Stream, trailers: string[]): void { (s.user as H2StreamUser | undefined)?.onH2Trailers(s, trailers); }

  onWritable(s: H2Stream): void { (s.user as H2StreamUser | undefined)?.onH2Writable(s); }

  onStreamClose(s: H2Stream, code: number, retryable: boolean): void {
    this.streamClosed();
    (s.user as H2StreamUser | undefined)?.onH2Close(s, code, retryable);
  }

  onGoaway(): void { this.peerGoaway(); }

  onCapacity(): void { this.peerSettings(this.conn.peerMaxConcurrentStreams); }

  onSettings(): void { this.peerSettings(this.conn.peerMaxConcurrentStreams); }

  onClose(err: Error | undefined): void {
    if (err !== undefined) this.transportError(err);
    this.transportClosed();
  }
}

/** An H2Pool whose connections are skein H2Connections sharing `engine`. */
export function skeinH2Pool(target: { address: string; port: number }, opts: H2PoolSettings, engine: SkeinH2Engine): SkeinH2Pool {
  return new H2Pool<SkeinHead, boolean, H2Stream>(target, {
    ...opts,
    engine: 'skein',
    newClient: (id: number, cfg: H2ClientConfig, events: H2ClientEvents<Client>) => new SkeinH2Client(id, cfg, events, engine),
  });
}

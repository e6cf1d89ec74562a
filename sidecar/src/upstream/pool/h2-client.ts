/**
 * One HTTP/2 session of an H2Pool on Node's http2 engine (`--h2-engine node`): owns the
 * ClientHttp2Session; the state machine, limits and timers are PoolClient's (pool-client.ts).
 *
 * Accounting: each stream gets one shared module-level 'close' listener (no closure per
 * request); the stream is tagged with its client through a symbol property.
 */
import * as http2 from 'node:http2';
import { PoolClient } from './pool-client';
import type { H2ClientConfig, H2ClientEvents } from './pool-client';

export type { H2ClientConfig, H2ClientEvents } from './pool-client';

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
  this[kClient].streamClosed();
  this[kStreamOwner]?.onStreamClose(this);
}

type NodeOptions = http2.ClientSessionRequestOptions | undefined;

export class H2Client extends PoolClient<http2.OutgoingHttpHeaders, NodeOptions, http2.ClientHttp2Stream> {
  readonly session: http2.ClientHttp2Session;

  constructor(id: number, cfg: H2ClientConfig, events: H2ClientEvents<PoolClient<http2.OutgoingHttpHeaders, NodeOptions, http2.ClientHttp2Stream>>) {
    super(id, cfg, events);
    // Throws synchronously only for a malformed authority (a bug); the pool lets that surface.
    this.session = cfg.tls === undefined ? http2.connect(cfg.authority, cfg.sessionOptions) : http2.connect(cfg.authority, { ...cfg.sessionOptions, ...cfg.tls(), ALPNProtocols: ['h2'] });
    this.session.on('remoteSettings', this.onRemoteSettings);
    this.session.on('goaway', this.onGoaway);
    this.session.on('error', this.onError);
    this.session.on('close', this.onClose);
  }

  /** Throws what `session.request` throws (invalid headers, session closing). */
  protected open(headers: http2.OutgoingHttpHeaders, options: NodeOptions): http2.ClientHttp2Stream {
    const stream = this.session.request(headers, options) as TaggedStream;
    stream[kClient] = this;
    stream.on('close', onStreamClose);
    return stream;
  }

  protected closeTransport(): void { this.session.close(); }

  protected destroyTransport(): void { this.session.destroy(); }

  private readonly onRemoteSettings = (settings: http2.Settings): void => this.peerSettings(settings.maxConcurrentStreams ?? 0xffffffff);
  private readonly onGoaway = (): void => this.peerGoaway();
  private readonly onError = (err: Error): void => this.transportError(err);
  private readonly onClose = (): void => this.transportClosed();
}

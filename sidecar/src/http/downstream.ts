/**
 * The downstream side of one request, as the router filter sees it: the request body to read and
 * the response to write, whatever the codec. Two adapters: HTTP/2 (a ServerHttp2Stream) and
 * HTTP/1.1 (IncomingMessage + ServerResponse). Both are ActiveStreams (active-stream.ts): one
 * object per request carries the filter chain's state and the wire.
 *
 * A later HTTP/2 engine plugs in here (and behind upstream-request.ts), not in the filters or the
 * router. Stream events go through shared module functions that find the request via one symbol.
 */
import type * as http from 'node:http';
import * as http2 from 'node:http2';
import type { Readable, Writable } from 'node:stream';
import type { HeaderBag } from '../route/header-ops';
import type { RouteEntry } from '../route/route-table';
import type { Cluster } from '../upstream/cluster';
import { ActiveStream } from './active-stream';
import type { ListenerContext, RouteStatsBundle, RouterSnapshot, Selection } from './listener-context';
import { LOCAL_REPLIES, replyH1, replyH2 } from './local-reply';
import { closeUnfinishedRequest } from './h2-stream-end';
import type { LocalReply } from './local-reply';
import { RouterFilter } from './router-filter';
import { headerBag } from './header-list';
import type { BodySource, ResetCountedConnection, ResponseSink } from './downstream-wire';
import { peerIdentityOf } from '../listener/peer-identity';
import type { PeerIdentity } from '../listener/peer-identity';
import type { RequestTrace } from '../tracing/request-trace';

const { NGHTTP2_REFUSED_STREAM } = http2.constants;

/** What the router filter needs of the downstream request and response. */
export interface Downstream {
  readonly cm: ListenerContext;
  readonly snap: RouterSnapshot;
  readonly route: RouteEntry;
  readonly stats: RouteStatsBundle;
  readonly grpc: boolean;
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly requestHeaders: HeaderBag;
  readonly startedAt: number;
  /** How long the http filters held the request before the router (fault delays), ms. */
  readonly heldMs: number;
  /** HTTP/2 downstream (it can carry trailers after a response). */
  readonly h2: boolean;
  /**
   * Bytes moved either way (request body chunks, the response head, response body chunks): the
   * stream idle timeout ends a request whose count has not moved for the listener's timeout.
   */
  activity: number;
  /** The request body, or undefined when it has none. */
  readonly body: BodySource | undefined;
  /** The response body goes here. */
  readonly writable: ResponseSink;
  /** Starts reading the request body into the router (it decides where the bytes go). */
  readBody(): void;
  /**
   * Tells the router when the response body may flow again (RouterFilter.onDownstreamDrain).
   * Called when a write to `writable` returned false, not up front: most responses never fill
   * the downstream, so most requests register no 'drain' listener. Registers once.
   */
  watchDrain(): void;
  /** Commits the response head; false if the downstream is gone. `wantTrailers`: HTTP/2 only. */
  respond(status: number, headers: HeaderBag, endStream: boolean, wantTrailers: boolean): boolean;
  /** Response trailers: sent when the body ends (HTTP/2), or added to the chunked response (HTTP/1.1). */
  setTrailers(trailers: HeaderBag): void;
  /**
   * An upstream 1xx head (e.g. 103 Early Hints; flat, :status first) before the response:
   * HTTP/2 passes it on; HTTP/1.1 only a 103 (Node writes no other 1xx).
   */
  informational(headers: string[]): void;
  /** Cuts the response (RST_STREAM `code` on HTTP/2, a destroyed socket on HTTP/1.1). */
  reset(code: number): void;
  localReply(reply: LocalReply, detail: string, attempts: number): void;
  /** Attempts the router made, and the last one's host (the access log reads them). */
  attempts: number;
  upstreamHost: string | undefined;
  /** The request's spans when sampled (tracing/request-trace.ts): the router reports attempts to it. */
  readonly trace: RequestTrace | undefined;
  /** HTTP/2: RST_STREAM REFUSED_STREAM (the caller may retry elsewhere), true. HTTP/1.1: false. */
  refuseStream(): boolean;
  /**
   * The stream idle timeout's answer: `reply` (408) before the response started; a request body
   * the client has not finished is cut too (HTTP/2: RST_STREAM NO_ERROR after the reply, RFC 9113
   * 8.1; HTTP/1.1: the connection closes after it).
   */
  idleReply(reply: LocalReply, detail: string, attempts: number, bodyEnded: boolean): void;
  /** The client reset or abandoned the request (`unforwarded`: no attempt started): counted, and the rapid-reset rule told. */
  clientGone(unforwarded: boolean): void;
  /** The response filters (the header mutation...), last first. */
  encodeHeaders(headers: HeaderBag): void;
  finish(status: number, grpcStatus: number, cluster: Cluster | undefined): void;
}

const kStream = Symbol('skein.stream');
type Tagged<T> = T & { [kStream]?: CodecStream };

const WAIT_FOR_TRAILERS: http2.ServerStreamResponseOptions = Object.freeze({ waitForTrailers: true });
const END_STREAM: http2.ServerStreamResponseOptions = Object.freeze({ endStream: true });
const NO_TRAILERS = Object.freeze({ 'grpc-status': '13', 'grpc-message': 'upstream ended the stream without trailers' });

/** The part both codecs share: the router filter's hook-up, and the stream idle timeout. */
export abstract class CodecStream extends ActiveStream implements Downstream {
  router: RouterFilter | undefined;
  activity = 0;
  /** The connection manager's idle watch list index (-1: not watched). */
  idleSlot = -1;
  private seenActivity = 0;
  private idleSince = 0;
  /** When the request arrived, on the injected clock (ms): the rapid-reset rule's "premature". */
  readonly startedAtMs: number;
  abstract readonly h2: boolean;
  /** The downstream HTTP/2 connection (the rapid-reset rule counts per connection); undefined for HTTP/1.1. */
  abstract readonly connection: ResetCountedConnection | undefined;
  abstract readonly body: BodySource | undefined;
  abstract readonly writable: ResponseSink;

  constructor(cm: ListenerContext, snap: RouterSnapshot, route: RouteEntry, grpc: boolean, method: string, path: string, authority: string,
    requestHeaders: HeaderBag, downstreamHeaders: Readonly<Record<string, string | string[] | undefined>>) {
    super(cm, snap, route, grpc, method, path, authority, requestHeaders, downstreamHeaders);
    this.startedAtMs = this.idleSince = cm.clock.now();
  }

  /**
   * The connection manager's deferred start (HTTP/2: the end of the event-loop turn the request
   * arrived in): a request whose client already reset it is not forwarded.
   */
  startQueued(): void {
    if (this.done) return;
    if (this.gone) {
      // Never started: nothing counted as active, nothing to finish.
      this.clientGone(true);
      this.done = true;
      return;
    }
    this.start();
  }

  /** Called by the connection manager's idle sweep. */
  checkIdle(now: number, timeoutMs: number): void {
    if (this.activity !== this.seenActivity) {
      this.seenActivity = this.activity;
      this.idleSince = now;
      return;
    }
    if (now - this.idleSince < timeoutMs || this.done) return;
    this.cm.listenerStats.rqIdleTimeout.inc();
    const detail = `no request or response activity for ${timeoutMs}ms (the listener's stream idle timeout)`;
    const r = this.router;
    if (r !== undefined) { r.onIdleTimeout(detail); return; }
    this.idleReply(LOCAL_REPLIES.streamIdleTimeout, detail, 0, this.body === undefined);
    this.cm.countLocalReply(this.stats, LOCAL_REPLIES.streamIdleTimeout);
    this.finish(0, -1, undefined);
  }

  override finish(status: number, grpcStatus: number, cluster: Cluster | undefined): void {
    if (this.done) return;
    this.cm.unwatchIdle(this);
    super.finish(status, grpcStatus, cluster);
  }

  clientGone(unforwarded: boolean): void {
    const ls = this.cm.listenerStats;
    ls.rqRxReset.inc();
    if (unforwarded) ls.rqRxResetUnforwarded.inc();
    if (this.connection !== undefined) this.cm.onClientReset(this.connection, this.startedAtMs);
  }

  abstract idleReply(reply: LocalReply, detail: string, attempts: number, bodyEnded: boolean): void;

  protected forward(sel: Selection): void {
    const r = new RouterFilter(this, sel);
    this.router = r;
    r.start();
  }

  /** The downstream is already gone (a queued request whose client reset it is not started). */
  protected abstract get gone(): boolean;
  abstract readBody(): void;
  abstract watchDrain(): void;

  protected pauseBody(): void { /* the body is read only once the router reads it */ }

  /** The downstream closed (normally after the response, or early). */
  onClose(): void {
    if (this.done) return;
    const r = this.router;
    if (r === undefined) { this.clientGone(true); this.onGoneBeforeRouter(); return; }
    r.onDownstreamClose();
  }

  abstract respond(status: number, headers: HeaderBag, endStream: boolean, wantTrailers: boolean): boolean;
  abstract setTrailers(trailers: HeaderBag): void;
  abstract informational(headers: string[]): void;
  abstract reset(code: number): void;
  abstract refuseStream(): boolean;
}

/** A request on Node's codecs (http2 or http): the body and the response are Node streams, hooked up through shared handlers. */
abstract class NodeCodecStream extends CodecStream {
  abstract override readonly body: Readable | undefined;
  abstract override readonly writable: Writable;
  /** Whether the 'drain' listener is on the writable (watchDrain). */
  private drainWatched = false;

  readBody(): void {
    const b = this.body as Tagged<Readable> | undefined;
    if (b === undefined) return;
    b[kStream] = this;
    b.on('data', onBodyData);
    b.on('end', onBodyEnd);
  }

  watchDrain(): void {
    if (this.drainWatched) return;
    this.drainWatched = true;
    this.writable.on('drain', onDownDrain);
  }

  protected watchDownstream(): void {
    this.cm.watchIdle(this);
    const w = this.writable as Tagged<Writable>;
    w[kStream] = this;
    w.on('close', onDownClose);
  }
}

/** An HTTP/2 request (h2c). */
export class H2Downstream extends NodeCodecStream {
  readonly h2 = true;
  readonly body: Readable | undefined;
  readonly writable: Writable;
  /** Trailers to send on 'wantTrailers'. */
  trailers: HeaderBag | undefined;

  constructor(cm: ListenerContext, snap: RouterSnapshot, route: RouteEntry, grpc: boolean, method: string, path: string, authority: string,
    requestHeaders: HeaderBag, downstreamHeaders: http2.IncomingHttpHeaders, readonly stream: http2.ServerHttp2Stream,
    /** The downstream session (a closed stream no longer names it). */
    readonly session: http2.Http2Session | undefined,
    readonly connection: ResetCountedConnection | undefined) {
    super(cm, snap, route, grpc, method, path, authority, requestHeaders, downstreamHeaders);
    this.body = stream.endAfterHeaders ? undefined : stream;
    this.writable = stream;
  }

  /** The connection manager put the session's verified peer on the session (kPeerIdentity). */
  get downstreamPeer(): PeerIdentity | undefined { return peerIdentityOf(this.session); }
  override get remoteAddress(): string | undefined { return this.session?.socket?.remoteAddress; }
  protected get gone(): boolean { return this.stream.destroyed || this.stream.closed; }

  respond(status: number, headers: HeaderBag, endStream: boolean, wantTrailers: boolean): boolean {
    this.activity++;
    const down = this.stream as Tagged<http2.ServerHttp2Stream>;
    if (down.destroyed) return false;
    try {
      headers[':status'] = status;
      if (endStream) down.respond(headers as http2.OutgoingHttpHeaders, END_STREAM);
      else if (wantTrailers) { down.respond(headers as http2.OutgoingHttpHeaders, WAIT_FOR_TRAILERS); down.on('wantTrailers', onWantTrailers); }
      else down.respond(headers as http2.OutgoingHttpHeaders);
    } catch { return false; }
    return true;
  }

  setTrailers(trailers: HeaderBag): void { this.trailers = trailers; }

  informational(headers: string[]): void {
    if (this.stream.destroyed || this.stream.headersSent) return;
    try { this.stream.additionalHeaders(headerBag(headers) as http2.OutgoingHttpHeaders); } catch { /* the stream is gone */ }
  }

  reset(code: number): void { if (!this.stream.destroyed) this.stream.close(code); }

  localReply(reply: LocalReply, detail: string, attempts: number): void { this.replyReason = reply.reason; replyH2(this.stream, this.grpc, reply, detail, attempts); }

  idleReply(reply: LocalReply, detail: string, attempts: number): void {
    this.localReply(reply, detail, attempts);
    closeUnfinishedRequest(this.stream);
  }

  refuseStream(): boolean {
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_REFUSED_STREAM);
    return true;
  }
}

/** An HTTP/1.1 request. */
export class H1Downstream extends NodeCodecStream {
  readonly h2 = false;
  readonly connection = undefined;
  readonly body: Readable | undefined;
  readonly writable: Writable;

  constructor(cm: ListenerContext, snap: RouterSnapshot, route: RouteEntry, grpc: boolean, method: string, path: string, authority: string,
    requestHeaders: HeaderBag, readonly req: http.IncomingMessage, readonly res: http.ServerResponse) {
    super(cm, snap, route, grpc, method, path, authority, requestHeaders, req.headers);
    const h = req.headers;
    const hasBody = (h['content-length'] !== undefined && h['content-length'] !== '0') || h['transfer-encoding'] !== undefined;
    this.body = hasBody ? req : undefined;
    this.writable = res;
  }

  get downstreamPeer(): PeerIdentity | undefined { return peerIdentityOf(this.req.socket); }
  override get remoteAddress(): string | undefined { return this.req.socket.remoteAddress; }
  protected get gone(): boolean { return this.res.destroyed; }

  respond(status: number, headers: HeaderBag, endStream: boolean): boolean {
    this.activity++;
    const res = this.res;
    if (res.destroyed) return false;
    for (const k of Object.keys(headers)) if (k.charCodeAt(0) === 58 /* ':' */) delete headers[k];
    delete headers['content-length'];
    res.writeHead(status, headers as http.OutgoingHttpHeaders);
    if (endStream) res.end();
    return true;
  }

  setTrailers(trailers: HeaderBag): void { if (!this.res.destroyed) this.res.addTrailers(trailers as http.OutgoingHttpHeaders); }

  informational(headers: string[]): void {
    const res = this.res;
    if (res.destroyed || res.headersSent || headers[1] !== '103') return;
    const hints: Record<string, string | string[]> = {};
    for (let i = 2; i < headers.length; i += 2) {
      const k = headers[i]!;
      const prev = hints[k];
      hints[k] = prev === undefined ? headers[i + 1]! : [...(Array.isArray(prev) ? prev : [prev]), headers[i + 1]!];
    }
    if (hints['link'] !== undefined) res.writeEarlyHints(hints as Record<string, string | string[]> & { link: string | string[] });
  }

  reset(): void { this.res.destroy(); }

  localReply(reply: LocalReply, detail: string, attempts: number): void { this.replyReason = reply.reason; replyH1(this.res, this.grpc, reply, detail, attempts); }

  idleReply(reply: LocalReply, detail: string, attempts: number, bodyEnded: boolean): void {
    if (!bodyEnded) this.res.shouldKeepAlive = false;
    this.localReply(reply, detail, attempts);
  }

  refuseStream(): boolean { return false; }
}

// --- shared handlers (this = the stream) -----------------------------------------------------

function onDownClose(this: Tagged<Writable>): void { this[kStream]!.onClose(); }
function onBodyData(this: Tagged<Readable>, chunk: Buffer): void {
  const s = this[kStream]!;
  s.activity++;
  s.router?.onBody(chunk);
}
function onBodyEnd(this: Tagged<Readable>): void { this[kStream]!.router?.onBodyEnd(); }
function onDownDrain(this: Tagged<Writable>): void { this[kStream]!.router?.onDownstreamDrain(); }

function onWantTrailers(this: Tagged<http2.ServerHttp2Stream>): void {
  const s = this[kStream] as H2Downstream;
  try {
    this.sendTrailers((s.trailers ?? NO_TRAILERS) as http2.OutgoingHttpHeaders);
  } catch { this.destroy(); }
}

/**
 * The downstream side on skein's own HTTP/2 engine (`--h2-engine skein`): SkeinH2Edge is one
 * accepted connection (an H2Connection in the server role, the connection's H2Handler), and
 * SkeinH2Downstream one request on it, the pipeline's Downstream. The request is the stream's
 * owner (`s.user`) and is itself the router's body source and response sink, so a request costs
 * no Duplex, no listener and no closure.
 *
 * Flow control end to end:
 * - request body: a DATA view goes to the router at once when it reads (consumed, so the
 *   client's window opens again); while the router is paused (the upstream is full) or not yet
 *   reading, views wait here unconsumed, so what a client can make us hold is bounded by the
 *   stream window (H2Limits.streamWindow), whatever it sends;
 * - response body: write() queues the upstream's slices on the stream (not copied) and says
 *   false past the stream's high-water mark; onWritable then tells the router
 *   (onDownstreamDrain), which opens the upstream's window again.
 *
 * Trailers are sent whenever the upstream sent some (gRPC or not), and a gRPC response that
 * ends without any gets grpc-status 13, as on Node's engine. A response that completes while the
 * request body is still coming resets the stream NO_ERROR after it (RFC 9113 8.1).
 */
import type * as net from 'node:net';
import { H2Connection } from '../h2/connection';
import { H2_ERROR } from '../h2/errors';
import type { H2Error } from '../h2/errors';
import type { ListenerStats } from '../stats/stat-bundles';
import type { H2Handler } from '../h2/connection';
import type { H2Limits, H2Stats } from '../h2/limits';
import type { H2Stream } from '../h2/stream';
import type { Clock } from '../../../shared/src/clock';
import { peerIdentityOf } from '../listener/peer-identity';
import type { PeerIdentity } from '../listener/peer-identity';
import type { HeaderBag } from '../route/header-ops';
import type { RouteEntry } from '../route/route-table';
import { CodecStream } from './downstream';
import type { BodySource, ResetCountedConnection, ResponseSink } from './downstream-wire';
import { headerList } from './header-list';
import type { ListenerContext, RouterSnapshot } from './listener-context';
import { ATTEMPT_COUNT_HEADER, grpcMessage } from './local-reply';
import type { LocalReply } from './local-reply';

/** What an edge needs of its connection manager. */
export interface SkeinEdgeHost {
  /** The listener's counters: malformed requests, and connections closed for a protocol error. */
  readonly listenerStats: ListenerStats;
  /** A request arrived (its head passed the engine's RFC 9113 checks): route it, or answer it. */
  onSkeinRequest(edge: SkeinH2Edge, s: H2Stream, headers: string[], endStream: boolean): void;
  /** The connection closed. */
  onSkeinEdgeClose(edge: SkeinH2Edge): void;
}

export interface SkeinEdgeOptions {
  limits: Partial<H2Limits>;
  stats: H2Stats;
  clock: Clock;
}

const EMPTY = Buffer.alloc(0);
const KEEPALIVE_PING = Buffer.from('skeinka!');
const NO_TRAILERS: readonly string[] = Object.freeze(['grpc-status', '13', 'grpc-message', 'upstream ended the stream without trailers']);
const CONTINUE: readonly string[] = Object.freeze([':status', '100']);

/** One downstream HTTP/2 connection on skein's engine. */
export class SkeinH2Edge implements H2Handler, ResetCountedConnection {
  readonly conn: H2Connection;
  readonly resets = { streams: 0, premature: 0 };
  readonly peerAddress: string | undefined;
  /** The verified mTLS peer (the TLS socket carries it), or undefined on plaintext. */
  readonly peerIdentity: PeerIdentity | undefined;
  /** Keepalive (ConnectionManager's sweep): socket bytes read at the last look, and when our PING went out (0: none due). */
  lastRead = 0;
  pingSentAt = 0;

  constructor(private readonly host: SkeinEdgeHost, private readonly socket: net.Socket, opts: SkeinEdgeOptions) {
    this.peerAddress = socket.remoteAddress;
    this.peerIdentity = peerIdentityOf(socket);
    this.conn = new H2Connection(socket, { role: 'server', handler: this, limits: opts.limits, stats: opts.stats, clock: opts.clock });
    // The sniffing listener paused the socket after unshifting what it read.
    socket.resume();
  }

  get closed(): boolean { return this.conn.closed; }

  /**
   * The keepalive sweep's look at this connection (every `idleMs`): nothing read since the last
   * look sends a PING; still nothing `timeoutMs` after it (not even the ACK) closes the
   * connection (true). Anything read clears the PING due.
   */
  keepalive(now: number, timeoutMs: number): boolean {
    const read = this.socket.bytesRead;
    if (read !== this.lastRead) { this.lastRead = read; this.pingSentAt = 0; return false; }
    if (this.pingSentAt === 0) { this.pingSentAt = now; this.conn.ping(KEEPALIVE_PING); return false; }
    if (now - this.pingSentAt < timeoutMs) return false;
    this.conn.destroy();
    return true;
  }
  calm(reason: string): void { this.conn.abort(H2_ERROR.ENHANCE_YOUR_CALM, reason); }
  /** Answer what is open, take nothing new (GOAWAY NO_ERROR); the socket ends after the last stream. */
  drain(): void { this.conn.goaway(); }
  destroy(): void { this.conn.destroy(); }

  // --- H2Handler ------------------------------------------------------------------------------

  onHeaders(s: H2Stream, headers: string[], endStream: boolean): void {
    this.resets.streams++;
    this.host.onSkeinRequest(this, s, headers, endStream);
  }

  onInformational(): void { /* client role only */ }

  onData(s: H2Stream, data: Buffer, endStream: boolean): void {
    const d = s.user as SkeinH2Downstream | undefined;
    if (d === undefined) { s.conn.consumed(s, data.length); return; }
    d.onRequestData(data, endStream);
  }

  /** Request trailers end the body (they are not forwarded: the router's body sink has no trailers). */
  onTrailers(s: H2Stream): void {
    (s.user as SkeinH2Downstream | undefined)?.onRequestData(EMPTY, true);
  }

  onWritable(s: H2Stream): void { (s.user as SkeinH2Downstream | undefined)?.onWritable(); }

  onStreamClose(s: H2Stream, code: number): void { (s.user as SkeinH2Downstream | undefined)?.onStreamClose(code); }

  onMalformed(): void { this.host.listenerStats.rqMalformed.inc(); }

  onConnectionError(err: H2Error): void {
    if (err.h2Code === H2_ERROR.PROTOCOL_ERROR) this.host.listenerStats.cxProtocolError.inc();
  }

  onGoaway(): void { /* the client's GOAWAY: our open streams go on, it opens no more */ }
  onCapacity(): void { /* client role only */ }
  onClose(): void { this.host.onSkeinEdgeClose(this); }
}

/** One request on a SkeinH2Edge: the pipeline's Downstream, its body source and its response sink. */
export class SkeinH2Downstream extends CodecStream implements BodySource, ResponseSink {
  readonly h2 = true;
  readonly body: BodySource | undefined;
  readonly writable: ResponseSink = this;
  /** ResponseSink: our side was ended (end()). */
  writableEnded = false;
  private trailers: string[] | undefined = undefined;
  /** A gRPC response (or any with a gRPC content type): it must end with trailers. */
  private wantTrailers = false;
  private reading = false;
  private paused = false;
  private drainWatched = false;
  /** Body views the router has not taken yet (unconsumed), and whether the body ended after them. */
  private pending: Buffer[] | undefined = undefined;
  private pendingEnd = false;
  private bodyDone = false;
  /** start() ran (the connection manager starts requests at the end of the turn they arrived in). */
  private started = false;

  constructor(cm: ListenerContext, snap: RouterSnapshot, route: RouteEntry, grpc: boolean, method: string, path: string, authority: string,
    requestHeaders: HeaderBag, downstreamHeaders: Readonly<Record<string, string | string[] | undefined>>,
    readonly edge: SkeinH2Edge, readonly s: H2Stream, endStream: boolean) {
    super(cm, snap, route, grpc, method, path, authority, requestHeaders, downstreamHeaders);
    s.user = this;
    this.body = endStream ? undefined : this;
    this.bodyDone = endStream;
  }

  get connection(): ResetCountedConnection { return this.edge; }
  get downstreamPeer(): PeerIdentity | undefined { return this.edge.peerIdentity; }
  override get remoteAddress(): string | undefined { return this.edge.peerAddress; }
  protected get gone(): boolean { return this.s.closed; }
  /** ResponseSink: the stream is closed (reset, or both ends done). */
  get destroyed(): boolean { return this.s.closed; }

  /** Expect: 100-continue is answered by the listener (the upstream request does not carry it). */
  sendContinue(): void { this.s.conn.informational(this.s, CONTINUE as string[]); }

  // --- BodySource -----------------------------------------------------------------------------

  readBody(): void {
    this.reading = true;
    if (this.pending !== undefined || this.pendingEnd) this.deliver();
  }

  pause(): void { this.paused = true; }

  resume(): void {
    this.paused = false;
    if (this.pending !== undefined || this.pendingEnd) this.deliver();
  }

  isPaused(): boolean { return this.paused; }

  /** A DATA view (or the body's end) from the client. */
  onRequestData(data: Buffer, endStream: boolean): void {
    this.activity++;
    if (this.done) { this.s.conn.consumed(this.s, data.length); return; }
    if (!this.reading || this.paused || this.pending !== undefined) {
      if (data.length > 0) (this.pending ??= []).push(data);
      if (endStream) this.pendingEnd = true;
      return;
    }
    if (data.length > 0) this.take(data);
    if (endStream) this.endBody();
  }

  private take(data: Buffer): void {
    this.s.conn.consumed(this.s, data.length);
    this.router?.onBody(data);
  }

  private endBody(): void {
    if (this.bodyDone) return;
    this.bodyDone = true;
    this.router?.onBodyEnd();
  }

  /** Hands the router what waited, until it pauses again. */
  private deliver(): void {
    const q = this.pending;
    if (q !== undefined) {
      let i = 0;
      while (i < q.length && !this.paused && !this.done) this.take(q[i++]!);
      if (i < q.length && !this.done) { q.splice(0, i); return; }
      this.pending = undefined;
    }
    if (this.pendingEnd && !this.paused) { this.pendingEnd = false; this.endBody(); }
  }

  // --- ResponseSink ---------------------------------------------------------------------------

  write(chunk: Buffer): boolean {
    const s = this.s;
    this.activity++;
    if (s.closed) return true;
    return s.conn.write(s, chunk);
  }

  end(): void {
    if (this.writableEnded) return;
    this.writableEnded = true;
    const s = this.s;
    if (s.closed || !s.headSent) return;
    if (!this.bodyDone) s.resetAfterEnd = true;
    const t = this.trailers;
    s.conn.end(s, t !== undefined ? t : this.wantTrailers ? NO_TRAILERS as string[] : undefined);
  }

  watchDrain(): void { this.drainWatched = true; }

  onWritable(): void {
    if (this.drainWatched) this.router?.onDownstreamDrain();
  }

  protected watchDownstream(): void {
    this.started = true;
    this.cm.watchIdle(this);
  }

  /**
   * The stream closed. After our whole response went out (our END_STREAM, then the client's or
   * our NO_ERROR reset) the request is not gone: it finishes as its attempt completes, which on
   * this engine may come after this (the close can come from inside respond()). Anything else
   * is the client leaving.
   */
  onStreamClose(code: number): void {
    // Not started yet (queued for the end of the turn): startQueued sees the stream gone.
    if (!this.started) return;
    if (code === H2_ERROR.NO_ERROR && this.s.localEnded) return;
    this.onClose();
  }

  // --- the response head, trailers, resets -----------------------------------------------------

  respond(status: number, headers: HeaderBag, endStream: boolean, wantTrailers: boolean): boolean {
    this.activity++;
    const s = this.s;
    if (s.closed) return false;
    this.wantTrailers = wantTrailers;
    if (endStream) { this.writableEnded = true; if (!this.bodyDone) s.resetAfterEnd = true; }
    s.conn.respond(s, headerList([':status', String(status)], headers), endStream);
    return true;
  }

  setTrailers(trailers: HeaderBag): void { this.trailers = headerList([], trailers); }

  informational(headers: string[]): void { this.s.conn.informational(this.s, headers); }

  reset(code: number): void { const s = this.s; if (!s.closed) s.conn.reset(s, code); }

  refuseStream(): boolean {
    this.reset(H2_ERROR.REFUSED_STREAM);
    return true;
  }

  localReply(reply: LocalReply, detail: string, attempts: number): void {
    this.replyReason = reply.reason;
    this.writableEnded = true;
    replySkeinH2(this.s, this.grpc, reply, detail, attempts, !this.bodyDone);
  }

  idleReply(reply: LocalReply, detail: string, attempts: number): void {
    this.localReply(reply, detail, attempts);
  }
}

/**
 * The proxy's own answer on a skein stream (the engine's replyH2): gRPC as a trailers-only
 * response with grpc-status and grpc-message, else the HTTP status with the reason as text;
 * x-skein-reason on both. A stream whose head already went out is cut (CANCEL).
 * `bodyPending`: the request body is still coming; the stream is reset NO_ERROR after the reply.
 */
export function replySkeinH2(s: H2Stream, grpc: boolean, r: LocalReply, detail: string, attempts = 0, bodyPending = !s.remoteEnded): void {
  if (s.closed) return;
  const conn = s.conn;
  if (s.headSent) { conn.reset(s, H2_ERROR.CANCEL); return; }
  const msg = `${r.reason}: ${detail}`;
  if (bodyPending) s.resetAfterEnd = true;
  if (grpc) {
    const h = [':status', '200', 'content-type', 'application/grpc', 'grpc-status', String(r.grpc), 'grpc-message', grpcMessage(msg), 'x-skein-reason', r.reason];
    if (attempts > 0) h.push(ATTEMPT_COUNT_HEADER, String(attempts));
    conn.respond(s, h, true);
    return;
  }
  const h = [':status', String(r.http), 'content-type', 'text/plain; charset=utf-8', 'x-skein-reason', r.reason];
  if (attempts > 0) h.push(ATTEMPT_COUNT_HEADER, String(attempts));
  conn.respond(s, h, false);
  conn.write(s, Buffer.from(`${msg}\n`), true);
}

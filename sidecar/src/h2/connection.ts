/**
 * H2Connection: one HTTP/2 connection (RFC 9113) over a net.Socket or tls.TLSSocket, as a
 * server or a client, built on the frame parser, the frame writers and HPACK. Not wired into
 * the request path yet: it is shaped to sit behind Downstream (server role) and UpstreamRequest
 * (client role).
 *
 * Shape: one H2Handler per connection gets every event, with the H2Stream it is about (plain
 * state; `user` holds the caller's object). No EventEmitter, Duplex or closure per stream.
 * - Server: onHeaders(s, head, endStream) announces a request; answer with respond(),
 *   informational(), write(), end(s, trailers?), reset().
 * - Client: request(head, endStream) opens a stream, or returns undefined when the peer's
 *   MAX_CONCURRENT_STREAMS is reached or the connection is draining (a pool opens another
 *   connection, or waits for onCapacity()).
 * - onStreamClose(s, code, retryable) comes exactly once per announced stream: code NO_ERROR
 *   when both ends ended; `retryable` when the peer did not process it (REFUSED_STREAM, or
 *   above a GOAWAY's last-stream-id). It comes for the caller's own reset() too.
 *
 * Flow control end to end: received DATA is handed to onData as a view of the socket chunk;
 * WINDOW_UPDATEs go out only as the caller calls consumed(s, n), so a proxy replenishes a
 * window only as the other side accepts the bytes, and what a peer can make us hold is bounded
 * by the windows (per stream: limits.streamWindow; all streams: limits.connectionWindow).
 * Sent DATA waits for both send windows in a per-stream queue of the caller's slices.
 *
 * Writes: frames of one tick are gathered and written in one cork/uncork (one writev), on one
 * process.nextTick per tick; DATA is moved from the stream queues then, as windows allow.
 *
 * Errors: a stream error resets its stream (RST_STREAM); a connection error sends GOAWAY with
 * its code and the last peer stream we took, and ends the socket. Flood limits (limits.ts)
 * are connection errors ENHANCE_YOUR_CALM. Every refusal is counted in `stats`.
 */
import type * as net from 'node:net';
import type { Clock, TimerHandle } from '../../../shared/src/clock';
import { systemClock } from '../../../shared/src/clock';
import { H2_ERROR, H2Error, HeaderListTooLargeError, connectionError } from './errors';
import { FrameParser } from './frame-parser';
import type { FrameHandler } from './frame-parser';
import { CLIENT_PREFACE, FLAG, MAX_INT31 } from './frame-types';
import { dataFrameHeader, goawayFrame, headersFrames, pingFrame, rstStreamFrame, settingsAckFrame, settingsFrame, windowUpdateFrame } from './frame-writer';
import { checkRequestHead, checkResponseHead, checkTrailers, contentLengthOf, statusOf } from './header-rules';
import { HpackDecoder } from './hpack-decoder';
import { HpackEncoder } from './hpack-encoder';
import { H2Stats, RateBudget, resolveLimits } from './limits';
import type { H2Limits } from './limits';
import { INITIAL_SETTINGS, SETTING } from './settings';
import { H2Stream } from './stream';
import { StreamTable } from './stream-table';

/** The connection's events. Called synchronously from socket reads and flushes: they must not throw. */
export interface H2Handler {
  /** Server: a new request (set `s.user`). Client: the final response head. */
  onHeaders(s: H2Stream, headers: string[], endStream: boolean): void;
  /** Client: a 1xx response head (not 101) before the final one. */
  onInformational(s: H2Stream, headers: string[]): void;
  /**
   * `data` is a view of a socket chunk, which Node does not reuse: it may be queued as is on
   * another connection (write); do not modify it. Call consumed() once it is taken.
   */
  onData(s: H2Stream, data: Buffer, endStream: boolean): void;
  /** Trailers end the peer's side of the stream. */
  onTrailers(s: H2Stream, trailers: string[]): void;
  /** The stream's queue fell below limits.streamHighWater after write() returned false. */
  onWritable(s: H2Stream): void;
  onStreamClose(s: H2Stream, code: number, retryable: boolean): void;
  /** The peer sent GOAWAY: no new streams; streams up to `lastStreamId` go on. */
  onGoaway(lastStreamId: number, code: number): void;
  /** Client: a stream slot opened after request() returned undefined for lack of one. */
  onCapacity(): void;
  /** A request or response was malformed (RFC 9113 8.1.1): its stream was reset PROTOCOL_ERROR (optional; a listener counts it). */
  onMalformed?(): void;
  /** We end the connection for the peer's fault (a connection error of ours: GOAWAY `err.h2Code`), just before onClose (optional). */
  onConnectionError?(err: H2Error): void;
  /** The peer's SETTINGS (not an ACK) were applied: a pool reads peerMaxConcurrentStreams here (optional). */
  onSettings?(): void;
  /** The connection is gone (`err`: the connection error that ended it, ours or the peer's GOAWAY code, or the socket's). */
  onClose(err: Error | undefined): void;
}

export interface H2ConnectionOptions {
  role: 'server' | 'client';
  handler: H2Handler;
  limits?: Partial<H2Limits>;
  /** Shared by every connection of a listener or pool, so the sums can be shown; a new one by default. */
  stats?: H2Stats;
  clock?: Clock;
}

const EMPTY = Buffer.alloc(0);
/** How many closed streams are remembered, to tell frames in flight from a misbehaving peer. */
const RECENT_CLOSED = 128;
const FIRST_WINDOW = INITIAL_SETTINGS.initialWindowSize;

export class H2Connection implements FrameHandler {
  readonly role: 'server' | 'client';
  readonly stats: H2Stats;
  readonly limits: H2Limits;
  private readonly handler: H2Handler;
  private readonly clock: Clock;
  private readonly parser: FrameParser;
  private readonly decoder: HpackDecoder;
  private readonly encoder = new HpackEncoder();
  /** Open streams by id (not a Map: see stream-table.ts). */
  private readonly streams = new StreamTable<H2Stream>();
  /** Open streams each side started (what MAX_CONCURRENT_STREAMS counts). */
  private localActive = 0;
  private peerActive = 0;
  private nextStreamId: number;
  private lastPeerStreamId = 0;
  /** The peer's settings. */
  private peerMaxConcurrent = Infinity;
  private peerInitialWindow: number = FIRST_WINDOW;
  private peerMaxFrameSize: number = INITIAL_SETTINGS.maxFrameSize;
  /** Our stream window in force (the protocol's until the peer acknowledges ours). */
  private localInitialWindow: number = FIRST_WINDOW;
  private connSendWindow: number = FIRST_WINDOW;
  private connRecvWindow: number;
  private connUnacked = 0;
  private settingsAcksDue = 0;
  private settingsTimer: TimerHandle | undefined;
  /** Frames for the next write, in order. */
  private readonly out: Buffer[] = [];
  private readonly readyStreams: H2Stream[] = [];
  private flushScheduled = false;
  private socketBlocked = false;
  /** A header block being gathered from HEADERS + CONTINUATION. */
  private blockFlags = 0;
  private blockParts: Buffer[] = [];
  private blockBytes = 0;
  private blockFrames = 0;
  /** The stream whose HEADERS already drew a stream error (its block is decoded, then dropped). */
  private rejectedStream = 0;
  private goawaySent = false;
  private goawayReceived = false;
  private peerGoawayLastId = MAX_INT31;
  private capacityWanted = false;
  private dead = false;
  /** The last streams closed: -id when we reset it (the peer's frames in flight are ignored), +id otherwise. */
  private readonly recentClosed = new Int32Array(RECENT_CLOSED);
  private recentPos = 0;
  /** Draining is over: end the socket once `out` is written. */
  private endAfterFlush = false;
  private closeError: Error | undefined;
  private readonly resets: RateBudget;
  private readonly settingsBudget: RateBudget;
  private readonly pings: RateBudget;
  private readonly emptyFrames: RateBudget;

  constructor(readonly socket: net.Socket, opts: H2ConnectionOptions) {
    this.role = opts.role;
    this.handler = opts.handler;
    this.clock = opts.clock ?? systemClock;
    this.stats = opts.stats ?? new H2Stats();
    const l = this.limits = resolveLimits(opts.limits);
    this.nextStreamId = this.role === 'client' ? 1 : 2;
    this.decoder = new HpackDecoder({ maxHeaderListSize: l.maxHeaderListSize });
    this.parser = new FrameParser(this, { role: this.role });
    this.connRecvWindow = l.connectionWindow;
    this.resets = new RateBudget(l.resetsPerSecond, this.clock);
    this.settingsBudget = new RateBudget(l.settingsPerSecond, this.clock);
    this.pings = new RateBudget(l.pingsPerSecond, this.clock);
    this.emptyFrames = new RateBudget(l.emptyFramesPerSecond, this.clock);

    if (this.role === 'client') this.out.push(CLIENT_PREFACE);
    const entries: number[] = [SETTING.MAX_CONCURRENT_STREAMS, this.role === 'client' ? 0 : l.maxConcurrentStreams, SETTING.INITIAL_WINDOW_SIZE, l.streamWindow, SETTING.MAX_HEADER_LIST_SIZE, l.maxHeaderListSize];
    if (this.role === 'client') entries.push(SETTING.ENABLE_PUSH, 0);
    if (l.headerTableSize !== INITIAL_SETTINGS.headerTableSize) entries.push(SETTING.HEADER_TABLE_SIZE, l.headerTableSize);
    this.out.push(settingsFrame(entries));
    this.settingsAcksDue++;
    if (l.connectionWindow > FIRST_WINDOW) this.out.push(windowUpdateFrame(0, l.connectionWindow - FIRST_WINDOW));
    this.settingsTimer = this.clock.setTimer(l.settingsAckTimeoutMs, () => this.onSettingsTimeout());

    // Frames are already gathered per tick; Nagle would only delay the batch.
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => { if (!this.dead) this.parser.push(chunk); });
    socket.on('drain', () => { this.socketBlocked = false; this.scheduleFlush(); });
    socket.on('error', (err: Error) => { this.closeError ??= err; });
    socket.on('close', () => this.onSocketClose());
    this.scheduleFlush();
  }

  /** Streams open now (both sides). */
  get activeStreams(): number { return this.streams.size; }
  /** Client: whether request() can open a stream now. */
  get canOpen(): boolean {
    return !this.dead && !this.goawaySent && !this.goawayReceived && this.localActive < this.peerMaxConcurrent && this.nextStreamId <= MAX_INT31;
  }
  get closed(): boolean { return this.dead; }
  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS (Infinity until it says). */
  get peerMaxConcurrentStreams(): number { return this.peerMaxConcurrent; }

  // --- the caller's side ----------------------------------------------------------------------

  /** Client: opens a stream with this request head; undefined when there is no capacity (see canOpen). */
  request(headers: string[], endStream: boolean, user?: unknown): H2Stream | undefined {
    if (this.role !== 'client') throw new Error('request() is for the client role');
    if (!this.canOpen) { this.capacityWanted = true; return undefined; }
    const s = new H2Stream(this, this.nextStreamId, this.peerInitialWindow, this.localInitialWindow);
    this.nextStreamId += 2;
    s.user = user;
    s.headRequest = headersHead(headers);
    this.streams.set(s.id, s);
    this.localActive++;
    this.stats.streamsOpened++;
    this.sendHead(s, headers, endStream);
    return s;
  }

  /** Server: the response head (with :status first); `endStream`: no body follows. */
  respond(s: H2Stream, headers: string[], endStream: boolean): void {
    if (s.closed || s.headSent) return;
    this.sendHead(s, headers, endStream);
  }

  /** Server: a 1xx head before the final one. */
  informational(s: H2Stream, headers: string[]): void {
    if (s.closed || s.headSent) return;
    headersFrames(s.id, this.encoder.encode(headers), false, this.peerMaxFrameSize, this.out);
    this.scheduleFlush();
  }

  /**
   * Queues `data` (not copied: do not change it until it is written) and, with `endStream`,
   * the end of the stream. False when the stream's queue is over limits.streamHighWater (wait
   * for onWritable) or the stream can no longer send.
   */
  write(s: H2Stream, data: Buffer, endStream = false): boolean {
    if (s.closed || s.endQueued || s.localEnded) return false;
    if (!s.headSent) throw new Error(`write() before the head of stream ${s.id}`);
    if (data.length > 0) { s.queue.push(data); s.queuedBytes += data.length; }
    if (endStream) s.endQueued = true;
    this.makeReady(s);
    if (s.queuedBytes < this.limits.streamHighWater) return true;
    s.wantWritable = true;
    return false;
  }

  /** Ends our side after the queued DATA: with trailers (a HEADERS with END_STREAM), or an empty DATA. */
  end(s: H2Stream, trailers?: string[]): void {
    if (s.closed || s.endQueued || s.localEnded) return;
    if (!s.headSent) throw new Error(`end() before the head of stream ${s.id}`);
    s.endQueued = true;
    s.trailers = trailers;
    this.makeReady(s);
  }

  /** The caller took `n` bytes of what onData gave it: the windows open again by as much. */
  consumed(s: H2Stream, n: number): void {
    if (n > s.buffered) n = s.buffered;
    if (n <= 0) return;
    s.buffered -= n;
    this.creditConnection(n);
    if (s.closed || s.remoteEnded) return;
    s.unacked += n;
    if (s.unacked >= this.localInitialWindow >>> 1) {
      this.out.push(windowUpdateFrame(s.id, s.unacked));
      s.recvWindow += s.unacked;
      s.unacked = 0;
      this.scheduleFlush();
    }
  }

  /** Resets the stream (RST_STREAM `code`); onStreamClose follows at once. */
  reset(s: H2Stream, code: number): void {
    if (s.closed) return;
    this.sendReset(s.id, code);
    this.closeStream(s, code, false, true);
  }

  /**
   * Graceful close: GOAWAY NO_ERROR (or `code`) naming the last peer stream taken; later peer
   * streams are refused, streams up to it go on, and the socket ends when the last one closes.
   */
  goaway(code: number = H2_ERROR.NO_ERROR): void {
    if (this.dead || this.goawaySent) return;
    this.goawaySent = true;
    this.stats.goawaySent++;
    this.out.push(goawayFrame(this.lastPeerStreamId, code));
    this.scheduleFlush();
    this.maybeFinish();
  }

  /** Sends a PING (the answer is not reported yet: it is for keepalive). */
  ping(opaque: Buffer): void {
    this.out.push(pingFrame(opaque, false));
    this.scheduleFlush();
  }

  /** Closes the socket now; open streams close with CANCEL. */
  destroy(): void { this.socket.destroy(); }

  /** Ends the connection now as a connection error of ours: GOAWAY `code` with `reason` as its debug data, every stream closed. */
  abort(code: number, reason: string): void { this.fail(connectionError(code, reason, reason)); }

  // --- frames from the peer (FrameHandler) ----------------------------------------------------

  onHeaders(sid: number, fragment: Buffer, flags: number): void {
    if ((flags & FLAG.END_HEADERS) !== 0) { this.endBlock(sid, fragment, flags); return; }
    this.blockFlags = flags;
    this.blockParts = [fragment];
    this.blockBytes = fragment.length;
    this.blockFrames = 0;
  }

  onContinuation(sid: number, fragment: Buffer, endHeaders: boolean): void {
    if (++this.blockFrames > this.limits.maxContinuationFrames) {
      this.stats.continuationFlood++;
      this.fail(connectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'continuation-flood', `more than ${this.limits.maxContinuationFrames} CONTINUATION frames in one header block`));
      return;
    }
    if (fragment.length === 0 && !endHeaders && this.emptyFrameOver()) return;
    this.blockBytes += fragment.length;
    if (this.blockBytes > this.limits.maxHeaderListSize) {
      // Not decoded, so HPACK is out of step: only the connection can end.
      this.stats.headerListTooLarge++;
      this.fail(connectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'header-block-too-large', `header block over ${this.limits.maxHeaderListSize} bytes`));
      return;
    }
    this.blockParts.push(fragment);
    if (!endHeaders) return;
    const parts = this.blockParts;
    this.blockParts = [];
    this.endBlock(sid, parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.blockBytes), this.blockFlags);
  }

  private endBlock(sid: number, block: Buffer, flags: number): void {
    let headers: string[] | undefined;
    try {
      headers = this.decoder.decode(block);
    } catch (err) {
      if (err instanceof HeaderListTooLargeError) { this.stats.headerListTooLarge++; headers = undefined; } else {
        this.stats.hpackErrors++;
        this.fail(err instanceof H2Error ? err : connectionError(H2_ERROR.COMPRESSION_ERROR, 'hpack', String(err)));
        return;
      }
    }
    const endStream = (flags & FLAG.END_STREAM) !== 0;
    if (sid === this.rejectedStream) { this.rejectedStream = 0; this.trackPeerStream(sid); return; }
    const s = this.streams.get(sid);
    if (s === undefined) { this.newPeerStream(sid, headers, endStream); return; }
    if (s.remoteEnded) { this.streamFail(s, H2_ERROR.STREAM_CLOSED, 'headers-after-end-stream'); return; }
    if (headers === undefined) { this.streamFail(s, H2_ERROR.PROTOCOL_ERROR, 'header-list-too-large'); return; }
    if (!s.headReceived) { this.responseHead(s, headers, endStream); return; }
    // Trailers.
    if (!endStream) { this.malformed(s, 'trailers-without-end-stream'); return; }
    if (checkTrailers(headers) !== undefined) { this.malformed(s, 'trailers'); return; }
    if (!this.lengthOk(s)) return;
    this.handler.onTrailers(s, headers);
    this.remoteEnd(s);
  }

  /** A HEADERS on a stream we have no object for. */
  private newPeerStream(sid: number, headers: string[] | undefined, endStream: boolean): void {
    if (this.isLocal(sid)) {
      // Ours: idle (never opened) is a connection error; closed (we may have reset it) is ignored.
      if (sid >= this.nextStreamId) this.fail(connectionError(H2_ERROR.PROTOCOL_ERROR, 'idle-stream', `HEADERS on stream ${sid}, which this endpoint never opened`));
      return;
    }
    if (this.role === 'client') { this.fail(connectionError(H2_ERROR.PROTOCOL_ERROR, 'push', `HEADERS on server-initiated stream ${sid}`)); return; }
    if (sid <= this.lastPeerStreamId) { this.onClosedStream(sid, true); return; }
    if (this.peerActive >= this.limits.maxConcurrentStreams && !this.goawaySent && this.settingsAcksDue === 0) {
      // RFC 9113 5.1.2: a stream error, PROTOCOL_ERROR or REFUSED_STREAM (below). The peer
      // acknowledged our SETTINGS, so it ignores the cap it agreed to (a stream flood): a
      // connection error, as nghttp2 does; the GOAWAY names the last stream we took.
      this.stats.streamsOverLimit++;
      this.fail(connectionError(H2_ERROR.PROTOCOL_ERROR, 'max-concurrent-streams', `stream ${sid} over SETTINGS_MAX_CONCURRENT_STREAMS ${this.limits.maxConcurrentStreams}, which the peer acknowledged`));
      return;
    }
    this.lastPeerStreamId = sid;
    if (this.goawaySent) { this.stats.streamsRefused++; this.sendReset(sid, H2_ERROR.REFUSED_STREAM); return; }
    if (headers === undefined) { this.stats.streamErrors++; this.sendReset(sid, H2_ERROR.PROTOCOL_ERROR); return; }
    // Before the peer acknowledged our SETTINGS it may not know the cap: refused, it may retry.
    if (this.peerActive >= this.limits.maxConcurrentStreams) { this.stats.streamsRefused++; this.sendReset(sid, H2_ERROR.REFUSED_STREAM); return; }
    const bad = checkRequestHead(headers);
    const length = contentLengthOf(headers);
    if (bad !== undefined || length === -2 || (endStream && length > 0)) {
      this.stats.malformed++;
      this.handler.onMalformed?.();
      this.stats.streamErrors++;
      this.sendReset(sid, H2_ERROR.PROTOCOL_ERROR);
      return;
    }
    const s = new H2Stream(this, sid, this.peerInitialWindow, this.localInitialWindow);
    s.headReceived = true;
    s.expectedLength = length;
    this.streams.set(sid, s);
    this.peerActive++;
    this.stats.streamsOpened++;
    if (endStream) s.remoteEnded = true;
    this.handler.onHeaders(s, headers, endStream);
  }

  private trackPeerStream(sid: number): void {
    const peerParity = this.role === 'server' ? 1 : 0;
    if ((sid & 1) === peerParity && sid > this.lastPeerStreamId) this.lastPeerStreamId = sid;
  }

  /** Client: a response head (1xx or final). */
  private responseHead(s: H2Stream, headers: string[], endStream: boolean): void {
    if (checkResponseHead(headers) !== undefined) { this.malformed(s, 'response-head'); return; }
    const status = statusOf(headers);
    if (status < 200) {
      if (endStream || status === 101) { this.malformed(s, 'informational'); return; }
      this.handler.onInformational(s, headers);
      return;
    }
    const length = contentLengthOf(headers);
    if (length === -2) { this.malformed(s, 'content-length'); return; }
    s.headReceived = true;
    if (!s.headRequest && status !== 204 && status !== 304) s.expectedLength = length;
    if (endStream && !this.lengthOk(s)) return;
    this.handler.onHeaders(s, headers, endStream);
    if (endStream) this.remoteEnd(s);
  }

  onData(sid: number, payload: Buffer, endStream: boolean, flowLength: number): void {
    if (flowLength > this.connRecvWindow) {
      this.stats.flowControlErrors++;
      this.fail(connectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'connection-window', `DATA of ${flowLength} bytes over the connection window ${this.connRecvWindow}`));
      return;
    }
    this.connRecvWindow -= flowLength;
    if (flowLength === 0 && !endStream && this.emptyFrameOver()) return;
    const s = this.streams.get(sid);
    if (s === undefined || s.remoteEnded || !s.headReceived) {
      this.creditConnection(flowLength);
      if (s !== undefined) { this.streamFail(s, s.remoteEnded ? H2_ERROR.STREAM_CLOSED : H2_ERROR.PROTOCOL_ERROR, 'data-state'); return; }
      if (this.isIdle(sid)) { this.fail(connectionError(H2_ERROR.PROTOCOL_ERROR, 'idle-stream', `DATA on idle stream ${sid}`)); return; }
      this.onClosedStream(sid, false);
      return;
    }
    if (flowLength > s.recvWindow) {
      this.creditConnection(flowLength);
      this.stats.flowControlErrors++;
      this.streamFail(s, H2_ERROR.FLOW_CONTROL_ERROR, 'stream-window');
      return;
    }
    s.recvWindow -= flowLength;
    const n = payload.length;
    if (flowLength > n) { this.creditConnection(flowLength - n); s.unacked += flowLength - n; }
    s.receivedLength += n;
    if (s.expectedLength >= 0 && s.receivedLength > s.expectedLength) { this.creditConnection(n); this.malformed(s, 'content-length'); return; }
    if (endStream && !this.lengthOk(s)) { this.creditConnection(n); return; }
    s.buffered += n;
    if (n > 0 || endStream) this.handler.onData(s, n > 0 ? payload : EMPTY, endStream);
    if (endStream && !s.closed) this.remoteEnd(s);
  }

  onPriority(): void { /* deprecated signal (RFC 9113 5.3.2): ignored, also on idle streams */ }

  onRstStream(sid: number, code: number): void {
    const s = this.streams.get(sid);
    if (s === undefined) {
      if (this.isIdle(sid)) this.fail(connectionError(H2_ERROR.PROTOCOL_ERROR, 'idle-stream', `RST_STREAM on idle stream ${sid}`));
      return;
    }
    this.stats.rstReceived++;
    this.closeStream(s, code, code === H2_ERROR.REFUSED_STREAM);
    if (this.role === 'server' && this.resets.hit()) {
      this.stats.rapidReset++;
      this.fail(connectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'rapid-reset', `more than ${this.limits.resetsPerSecond} streams reset by the client in a second`));
    }
  }

  onSettings(ack: boolean, entries: readonly number[]): void {
    if (ack) {
      if (this.settingsAcksDue === 0) return;
      this.settingsAcksDue--;
      this.settingsTimer?.cancel();
      this.settingsTimer = undefined;
      this.applyOwnSettings();
      return;
    }
    if (this.settingsBudget.hit()) {
      this.stats.settingsFlood++;
      this.fail(connectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'settings-flood', `more than ${this.limits.settingsPerSecond} SETTINGS frames in a second`));
      return;
    }
    const wasFull = this.localActive >= this.peerMaxConcurrent;
    for (let i = 0; i < entries.length; i += 2) {
      const v = entries[i + 1]!;
      switch (entries[i]) {
        case SETTING.HEADER_TABLE_SIZE: this.encoder.setPeerMaxTableSize(v); break;
        case SETTING.ENABLE_PUSH:
          if (this.role === 'client' && v !== 0) { this.fail(connectionError(H2_ERROR.PROTOCOL_ERROR, 'setting-enable-push', 'a server sent SETTINGS_ENABLE_PUSH 1')); return; }
          break;
        case SETTING.MAX_CONCURRENT_STREAMS: this.peerMaxConcurrent = v; break;
        case SETTING.INITIAL_WINDOW_SIZE: {
          const delta = v - this.peerInitialWindow;
          this.peerInitialWindow = v;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_INT31) {
              this.stats.flowControlErrors++;
              this.fail(connectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'window-overflow', `SETTINGS_INITIAL_WINDOW_SIZE ${v} takes stream ${s.id}'s window over 2^31 - 1`));
              return;
            }
          }
          break;
        }
        case SETTING.MAX_FRAME_SIZE: this.peerMaxFrameSize = v; break;
        default: break;
      }
    }
    this.out.push(settingsAckFrame());
    this.scheduleFlush();
    this.handler.onSettings?.();
    if (wasFull) this.offerCapacity(); // after every value applied (offerCapacity checks canOpen)
  }

  onPing(ack: boolean, opaque: Buffer): void {
    if (ack) return;
    if (this.pings.hit()) {
      this.stats.pingFlood++;
      this.fail(connectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'ping-flood', `more than ${this.limits.pingsPerSecond} PINGs in a second`));
      return;
    }
    this.out.push(pingFrame(opaque, true));
    this.scheduleFlush();
  }

  onGoaway(lastStreamId: number, errorCode: number): void {
    this.stats.goawayReceived++;
    if (lastStreamId < this.peerGoawayLastId) this.peerGoawayLastId = lastStreamId;
    this.goawayReceived = true;
    for (const s of this.streams.values()) {
      if (this.isLocal(s.id) && s.id > this.peerGoawayLastId) this.closeStream(s, H2_ERROR.REFUSED_STREAM, true);
    }
    if (errorCode !== H2_ERROR.NO_ERROR) this.closeError ??= connectionError(errorCode, 'peer-goaway', `the peer sent GOAWAY with code ${errorCode}`);
    this.handler.onGoaway(lastStreamId, errorCode);
    this.maybeFinish();
  }

  onWindowUpdate(sid: number, increment: number): void {
    if (sid === 0) {
      this.connSendWindow += increment;
      if (this.connSendWindow > MAX_INT31) {
        this.stats.flowControlErrors++;
        this.fail(connectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'window-overflow', 'connection send window over 2^31 - 1'));
        return;
      }
      if (this.readyStreams.length > 0) this.scheduleFlush();
      return;
    }
    const s = this.streams.get(sid);
    if (s === undefined) {
      if (this.isIdle(sid)) this.fail(connectionError(H2_ERROR.PROTOCOL_ERROR, 'idle-stream', `WINDOW_UPDATE on idle stream ${sid}`));
      return;
    }
    s.sendWindow += increment;
    if (s.sendWindow > MAX_INT31) { this.stats.flowControlErrors++; this.streamFail(s, H2_ERROR.FLOW_CONTROL_ERROR, 'window-overflow'); return; }
    if (s.ready) this.scheduleFlush();
  }

  onStreamError(err: H2Error): void {
    this.stats.streamErrors++;
    const s = this.streams.get(err.streamId);
    if (s !== undefined) { this.sendReset(s.id, err.h2Code); this.closeStream(s, err.h2Code, false, true); } else {
      this.sendReset(err.streamId, err.h2Code);
      if (err.reason === 'self-dependency') this.rejectedStream = err.streamId; // a HEADERS: its block is still decoded
    }
  }

  onConnectionError(err: H2Error): void { this.fail(err); }

  // --- internals ------------------------------------------------------------------------------

  private isLocal(sid: number): boolean { return (sid & 1) === (this.role === 'client' ? 1 : 0); }

  /** A stream id no one has opened yet. */
  private isIdle(sid: number): boolean {
    return this.isLocal(sid) ? sid >= this.nextStreamId : sid > this.lastPeerStreamId;
  }

  private sendHead(s: H2Stream, headers: string[], endStream: boolean): void {
    s.headSent = true;
    headersFrames(s.id, this.encoder.encode(headers), endStream, this.peerMaxFrameSize, this.out);
    this.scheduleFlush();
    if (endStream) { s.endQueued = true; this.localEnd(s); }
  }

  private emptyFrameOver(): boolean {
    if (!this.emptyFrames.hit()) return false;
    this.stats.emptyFrameFlood++;
    this.fail(connectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'empty-frame-flood', `more than ${this.limits.emptyFramesPerSecond} empty DATA or CONTINUATION frames in a second`));
    return true;
  }

  /** Content-length against the DATA received, at the end of the peer's side. */
  private lengthOk(s: H2Stream): boolean {
    if (s.expectedLength < 0 || s.receivedLength === s.expectedLength) return true;
    this.malformed(s, 'content-length');
    return false;
  }

  private malformed(s: H2Stream, reason: string): void {
    this.stats.malformed++;
    this.handler.onMalformed?.();
    this.streamFail(s, H2_ERROR.PROTOCOL_ERROR, reason);
  }

  /** A stream error of the peer's on a stream we have: RST_STREAM and close. */
  private streamFail(s: H2Stream, code: number, _reason: string): void {
    this.stats.streamErrors++;
    this.sendReset(s.id, code);
    this.closeStream(s, code, false, true);
  }

  /**
   * HEADERS (`headers`) or DATA on a stream that is not open and not idle (RFC 9113 5.1):
   * - one we reset lately: ignored (the peer's frames were in flight);
   * - one closed otherwise lately (the peer reset it, or both ends ended): stream error STREAM_CLOSED;
   * - else, for HEADERS, a stream id lower than one the peer already used that we do not know
   *   as closed: connection error PROTOCOL_ERROR (5.1.1); for DATA, stream error STREAM_CLOSED.
   * "Lately": the last RECENT_CLOSED streams closed.
   */
  private onClosedStream(sid: number, headers: boolean): void {
    const recent = this.recentClosed;
    let known = 0;
    for (let i = 0; i < recent.length; i++) {
      if (recent[i] === -sid) return;
      if (recent[i] === sid) known = 1;
    }
    if (known === 0 && headers) { this.fail(connectionError(H2_ERROR.PROTOCOL_ERROR, 'stream-id-order', `HEADERS on stream ${sid}, below stream ${this.lastPeerStreamId} the peer already opened`)); return; }
    this.stats.streamErrors++;
    this.sendReset(sid, H2_ERROR.STREAM_CLOSED);
  }

  private remember(id: number): void {
    this.recentClosed[this.recentPos] = id;
    this.recentPos = (this.recentPos + 1) % RECENT_CLOSED;
  }

  private sendReset(sid: number, code: number): void {
    this.remember(-sid);
    this.stats.rstSent++;
    this.out.push(rstStreamFrame(sid, code));
    this.scheduleFlush();
  }

  private creditConnection(n: number): void {
    if (n <= 0) return;
    this.connUnacked += n;
    if (this.connUnacked >= this.limits.connectionWindow >>> 1) {
      this.out.push(windowUpdateFrame(0, this.connUnacked));
      this.connRecvWindow += this.connUnacked;
      this.connUnacked = 0;
      this.scheduleFlush();
    }
  }

  private applyOwnSettings(): void {
    const l = this.limits;
    const delta = l.streamWindow - this.localInitialWindow;
    if (delta !== 0) {
      this.localInitialWindow = l.streamWindow;
      for (const s of this.streams.values()) s.recvWindow += delta;
    }
    this.decoder.setMaxTableSize(l.headerTableSize);
  }

  private remoteEnd(s: H2Stream): void {
    s.remoteEnded = true;
    if (s.localEnded) this.closeStream(s, H2_ERROR.NO_ERROR, false);
  }

  private localEnd(s: H2Stream): void {
    s.localEnded = true;
    if (s.remoteEnded) this.closeStream(s, H2_ERROR.NO_ERROR, false);
    else if (s.resetAfterEnd) {
      // RFC 9113 8.1: a complete response while the request is still arriving; the peer stops sending.
      this.sendReset(s.id, H2_ERROR.NO_ERROR);
      this.closeStream(s, H2_ERROR.NO_ERROR, false, true);
    }
  }

  /** `resetByUs`: we sent RST_STREAM for it (sendReset remembered it so). */
  private closeStream(s: H2Stream, code: number, retryable: boolean, resetByUs = false): void {
    if (s.closed) return;
    s.closed = true;
    if (!resetByUs) this.remember(s.id);
    this.streams.delete(s.id);
    const local = this.isLocal(s.id);
    if (local) this.localActive--; else this.peerActive--;
    this.creditConnection(s.buffered);
    s.buffered = 0;
    s.queue.length = 0;
    s.queuedBytes = 0;
    s.trailers = undefined;
    this.handler.onStreamClose(s, code, retryable);
    if (local && this.capacityWanted && this.canOpen) this.offerCapacity();
    this.maybeFinish();
  }

  private offerCapacity(): void {
    if (!this.capacityWanted || !this.canOpen) return;
    this.capacityWanted = false;
    this.handler.onCapacity();
  }

  /** Draining (GOAWAY either way) and no stream left: end the socket after what is queued. */
  private maybeFinish(): void {
    if (this.dead || this.streams.size > 0 || !(this.goawaySent || this.goawayReceived)) return;
    if (!this.goawaySent) { this.goawaySent = true; this.stats.goawaySent++; this.out.push(goawayFrame(this.lastPeerStreamId, H2_ERROR.NO_ERROR)); }
    this.endAfterFlush = true;
    this.scheduleFlush();
  }

  /** A connection error: GOAWAY with its code, every stream closed, the socket ended. */
  private fail(err: H2Error): void {
    if (this.dead) return;
    this.parser.stop();
    this.stats.connectionErrors++;
    this.handler.onConnectionError?.(err);
    this.closeError ??= err;
    this.out.push(goawayFrame(this.lastPeerStreamId, err.h2Code, Buffer.from(err.reason, 'latin1')));
    this.goawaySent = true;
    this.stats.goawaySent++;
    this.writeOut();
    this.dead = true;
    for (const s of this.streams.values()) this.closeStream(s, err.h2Code, false);
    this.socket.destroySoon();
  }

  private onSettingsTimeout(): void {
    this.settingsTimer = undefined;
    if (this.settingsAcksDue === 0 || this.dead) return;
    this.stats.settingsTimeout++;
    this.fail(connectionError(H2_ERROR.SETTINGS_TIMEOUT, 'settings-timeout', `no SETTINGS ACK within ${this.limits.settingsAckTimeoutMs} ms`));
  }

  private onSocketClose(): void {
    this.dead = true;
    this.settingsTimer?.cancel();
    this.settingsTimer = undefined;
    const err = this.closeError;
    for (const s of this.streams.values()) {
      const above = this.isLocal(s.id) && s.id > this.peerGoawayLastId;
      this.closeStream(s, above ? H2_ERROR.REFUSED_STREAM : err instanceof H2Error ? err.h2Code : H2_ERROR.CANCEL, above);
    }
    this.readyStreams.length = 0;
    this.out.length = 0;
    this.handler.onClose(err);
  }

  private makeReady(s: H2Stream): void {
    if (!s.ready) { s.ready = true; this.readyStreams.push(s); }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.dead) return;
    this.flushScheduled = true;
    process.nextTick(flushConnection, this);
  }

  /**
   * Moves what the windows allow from the stream queues into `out`, then writes `out` in one
   * writev. Runs once per tick by itself (process.nextTick); public only for that call.
   */
  flush(): void {
    this.flushScheduled = false;
    if (this.dead) return;
    let writable: H2Stream[] | undefined;
    if (!this.socketBlocked && this.readyStreams.length > 0) writable = this.moveData();
    this.writeOut();
    if (this.endAfterFlush && this.streams.size === 0) { this.dead = true; this.socket.destroySoon(); return; }
    if (writable !== undefined) for (const s of writable) if (!s.closed) this.handler.onWritable(s);
  }

  /** Writes `out` in one cork (one writev). */
  private writeOut(): void {
    const out = this.out;
    if (out.length === 0) return;
    const sock = this.socket;
    if (!sock.destroyed) {
      sock.cork();
      let ok = true;
      for (let i = 0; i < out.length; i++) ok = sock.write(out[i]!);
      sock.uncork();
      if (!ok) this.socketBlocked = true;
    }
    out.length = 0;
  }

  /** DATA frames, round robin one frame per stream per pass, while the windows allow. */
  private moveData(): H2Stream[] | undefined {
    const ready = this.readyStreams;
    let writable: H2Stream[] | undefined;
    let progress = true;
    while (progress) {
      progress = false;
      for (let i = 0; i < ready.length; i++) {
        const s = ready[i]!;
        if (s.closed) continue;
        if (s.queue.length > 0) {
          const room = Math.min(s.sendWindow, this.connSendWindow, this.peerMaxFrameSize);
          if (room <= 0) continue;
          const chunk = s.queue[0]!;
          const n = Math.min(room, chunk.length);
          const slice = n === chunk.length ? chunk : chunk.subarray(0, n);
          if (n === chunk.length) s.queue.shift(); else s.queue[0] = chunk.subarray(n);
          s.queuedBytes -= n;
          s.sendWindow -= n;
          this.connSendWindow -= n;
          const last = s.queue.length === 0 && s.endQueued && s.trailers === undefined;
          this.out.push(dataFrameHeader(s.id, n, last), slice);
          progress = true;
          if (s.wantWritable && s.queuedBytes < this.limits.streamHighWater) { s.wantWritable = false; (writable ??= []).push(s); }
          if (last) this.localEnd(s);
        } else if (s.endQueued && !s.localEnded) {
          if (s.trailers !== undefined) headersFrames(s.id, this.encoder.encode(s.trailers), true, this.peerMaxFrameSize, this.out);
          else this.out.push(dataFrameHeader(s.id, 0, true));
          s.trailers = undefined;
          this.localEnd(s);
        }
      }
    }
    let j = 0;
    for (let i = 0; i < ready.length; i++) {
      const s = ready[i]!;
      if (!s.closed && (s.queue.length > 0 || (s.endQueued && !s.localEnded))) ready[j++] = s; else s.ready = false;
    }
    ready.length = j;
    return writable;
  }
}

function flushConnection(c: H2Connection): void { c.flush(); }

/** A request head whose :method (anywhere among the pseudo-headers) is HEAD. */
function headersHead(h: readonly string[]): boolean {
  for (let i = 0; i < h.length && h[i]!.charCodeAt(0) === 58; i += 2) if (h[i] === ':method') return h[i + 1] === 'HEAD';
  return false;
}

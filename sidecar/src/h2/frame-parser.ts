/**
 * A streaming HTTP/2 frame parser (RFC 9113 4, 6) for socket chunks.
 *
 * push() takes chunks as they arrive. A frame that lies whole in a chunk is handed on without
 * copying: payloads are subarrays of the chunk (valid as long as the chunk is; with Node's
 * default socket reads every chunk is a fresh buffer). Only a frame split across chunks is
 * gathered into a buffer of exactly its size, so memory is bounded by SETTINGS_MAX_FRAME_SIZE,
 * never by what the peer sends.
 *
 * Each frame goes to one method of a FrameHandler (no closure or event per frame). Errors carry
 * RFC 9113's scope: a connection error (onConnectionError) stops the parser for good; a stream
 * error (onStreamError) lets it go on. Checked here, at the frame level:
 * - the client connection preface (role 'server'), and that the first frame is SETTINGS (3.4);
 * - the length against our SETTINGS_MAX_FRAME_SIZE (4.2), as a connection error for every type;
 * - the stream id each type requires (0 or not 0), fixed lengths, padding (PADDED: a pad length
 *   beyond the payload is PROTOCOL_ERROR), a stream depending on itself (5.3.1);
 * - that a header block's CONTINUATION frames follow it with nothing between (6.10);
 * - received settings (settings.ts), WINDOW_UPDATE increments of 0 (6.9);
 * - PUSH_PROMISE: skein never enables push, so it is a PROTOCOL_ERROR in either role (8.4).
 * Unknown frame types are ignored (4.1). Stream states are the connection's business, not this.
 *
 * A HEADERS frame with a stream error (self-dependency) is still handed on after the error:
 * its block must be decoded to keep HPACK in step (4.3).
 */
import { H2_ERROR, connectionError, streamError } from './errors';
import type { H2Error } from './errors';
import { CLIENT_PREFACE, FLAG, FRAME, FRAME_HEADER_LENGTH, MAX_INT31 } from './frame-types';
import { checkSetting, INITIAL_SETTINGS } from './settings';

export interface FrameHandler {
  /** `payload` is the data without padding; `flowLength` the whole frame payload, which flow control counts. */
  onData(streamId: number, payload: Buffer, endStream: boolean, flowLength: number): void;
  /** A header block fragment (padding and priority fields removed); `flags` has END_STREAM and END_HEADERS. */
  onHeaders(streamId: number, fragment: Buffer, flags: number): void;
  onContinuation(streamId: number, fragment: Buffer, endHeaders: boolean): void;
  onPriority(streamId: number, dependsOn: number, weight: number, exclusive: boolean): void;
  onRstStream(streamId: number, errorCode: number): void;
  /** `entries`: [id0, value0, id1, value1, ...], every value already checked (empty for an ACK). */
  onSettings(ack: boolean, entries: readonly number[]): void;
  /** `opaque` is the 8-byte payload. */
  onPing(ack: boolean, opaque: Buffer): void;
  onGoaway(lastStreamId: number, errorCode: number, debugData: Buffer): void;
  onWindowUpdate(streamId: number, increment: number): void;
  onStreamError(err: H2Error): void;
  /** The parser stops after this. */
  onConnectionError(err: H2Error): void;
}

export interface FrameParserOptions {
  /** A server reads the client connection preface first. */
  role: 'server' | 'client';
  /** Our SETTINGS_MAX_FRAME_SIZE (default 16384). */
  maxFrameSize?: number;
}

const NO_ENTRIES: readonly number[] = Object.freeze([]);

export class FrameParser {
  private prefaceLeft: number;
  private firstFrame = true;
  /** The stream whose header block is open (expects CONTINUATION), else 0. */
  private continuationStream = 0;
  /** A frame split across chunks: its bytes so far (`have`); 9 bytes long until its length is known. */
  private partial: Buffer | undefined;
  private have = 0;
  private lengthKnown = false;
  private dead = false;
  private maxFrameSize: number;

  constructor(private readonly handler: FrameHandler, opts: FrameParserOptions) {
    this.prefaceLeft = opts.role === 'server' ? CLIENT_PREFACE.length : 0;
    this.maxFrameSize = opts.maxFrameSize ?? INITIAL_SETTINGS.maxFrameSize;
  }

  /** True after a connection error: the parser reads nothing more. */
  get failed(): boolean { return this.dead; }

  /** Our SETTINGS_MAX_FRAME_SIZE changed (the peer acknowledged it). */
  setMaxFrameSize(size: number): void { this.maxFrameSize = size; }

  push(chunk: Buffer): void {
    if (this.dead) return;
    const end = chunk.length;
    let pos = 0;
    if (this.prefaceLeft > 0) {
      const off = CLIENT_PREFACE.length - this.prefaceLeft;
      const n = Math.min(this.prefaceLeft, end);
      for (let i = 0; i < n; i++) {
        if (chunk[i] !== CLIENT_PREFACE[off + i]) { this.fail(connectionError(H2_ERROR.PROTOCOL_ERROR, 'preface', 'invalid client connection preface')); return; }
      }
      this.prefaceLeft -= n;
      pos = n;
      if (this.prefaceLeft > 0) return;
    }
    if (this.partial !== undefined) {
      pos = this.fill(chunk, pos);
      if (this.partial !== undefined || this.dead) return;
    }
    while (end - pos >= FRAME_HEADER_LENGTH) {
      const len = (chunk[pos]! << 16) | (chunk[pos + 1]! << 8) | chunk[pos + 2]!;
      if (!this.lengthOk(len)) return;
      if (end - pos - FRAME_HEADER_LENGTH < len) break;
      this.frame(chunk, pos, len);
      if (this.dead) return;
      pos += FRAME_HEADER_LENGTH + len;
    }
    if (pos < end) {
      const rest = end - pos;
      if (rest >= FRAME_HEADER_LENGTH) {
        this.partial = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + ((chunk[pos]! << 16) | (chunk[pos + 1]! << 8) | chunk[pos + 2]!));
        this.lengthKnown = true;
      } else {
        this.partial = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
        this.lengthKnown = false;
      }
      chunk.copy(this.partial, 0, pos, end);
      this.have = rest;
    }
  }

  /** Adds bytes to the split frame; hands it on when whole. Returns the position after what it took. */
  private fill(chunk: Buffer, pos: number): number {
    for (;;) {
      const partial = this.partial!;
      const take = Math.min(partial.length - this.have, chunk.length - pos);
      chunk.copy(partial, this.have, pos, pos + take);
      this.have += take;
      pos += take;
      if (this.have < partial.length) return pos;
      const len = (partial[0]! << 16) | (partial[1]! << 8) | partial[2]!;
      if (!this.lengthKnown) {
        if (!this.lengthOk(len)) return pos;
        this.lengthKnown = true;
        if (len > 0) {
          const whole = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + len);
          partial.copy(whole, 0, 0, FRAME_HEADER_LENGTH);
          this.partial = whole;
          continue;
        }
      }
      this.partial = undefined;
      this.frame(partial, 0, len);
      return pos;
    }
  }

  private lengthOk(len: number): boolean {
    if (len <= this.maxFrameSize) return true;
    this.fail(connectionError(H2_ERROR.FRAME_SIZE_ERROR, 'frame-too-large', `frame of ${len} bytes over SETTINGS_MAX_FRAME_SIZE ${this.maxFrameSize}`));
    return false;
  }

  private fail(err: H2Error): void {
    this.dead = true;
    this.partial = undefined;
    this.handler.onConnectionError(err);
  }

  private frame(buf: Buffer, off: number, len: number): void {
    const type = buf[off + 3]!;
    const flags = buf[off + 4]!;
    const sid = buf.readUInt32BE(off + 5) & MAX_INT31;
    const p = off + FRAME_HEADER_LENGTH;
    const h = this.handler;
    if (this.firstFrame) {
      if (type !== FRAME.SETTINGS || (flags & FLAG.ACK) !== 0) return this.fail(connectionError(H2_ERROR.PROTOCOL_ERROR, 'preface-settings', 'the first frame is not SETTINGS'));
      this.firstFrame = false;
    }
    if (this.continuationStream !== 0 && (type !== FRAME.CONTINUATION || sid !== this.continuationStream)) {
      return this.fail(connectionError(H2_ERROR.PROTOCOL_ERROR, 'continuation-expected', `frame type ${type} on stream ${sid} inside the header block of stream ${this.continuationStream}`));
    }
    switch (type) {
      case FRAME.DATA: {
        if (sid === 0) return this.fail(onStreamZero('DATA'));
        let start = p;
        let stop = p + len;
        if ((flags & FLAG.PADDED) !== 0) {
          if (len < 1) return this.fail(tooShort('DATA', len));
          const pad = buf[p]!;
          start++;
          if (pad > stop - start) return this.fail(padError('DATA', pad, len));
          stop -= pad;
        }
        h.onData(sid, buf.subarray(start, stop), (flags & FLAG.END_STREAM) !== 0, len);
        return;
      }
      case FRAME.HEADERS: {
        if (sid === 0) return this.fail(onStreamZero('HEADERS'));
        let start = p;
        let stop = p + len;
        let pad = 0;
        if ((flags & FLAG.PADDED) !== 0) {
          if (len < 1) return this.fail(tooShort('HEADERS', len));
          pad = buf[p]!;
          start++;
        }
        let selfDependent = false;
        if ((flags & FLAG.PRIORITY) !== 0) {
          if (stop - start < 5) return this.fail(tooShort('HEADERS', len));
          selfDependent = (buf.readUInt32BE(start) & MAX_INT31) === sid;
          start += 5;
        }
        if (pad > stop - start) return this.fail(padError('HEADERS', pad, len));
        stop -= pad;
        if ((flags & FLAG.END_HEADERS) === 0) this.continuationStream = sid;
        if (selfDependent) h.onStreamError(streamError(H2_ERROR.PROTOCOL_ERROR, sid, 'self-dependency', `stream ${sid} depends on itself`));
        h.onHeaders(sid, buf.subarray(start, stop), flags);
        return;
      }
      case FRAME.PRIORITY: {
        if (sid === 0) return this.fail(onStreamZero('PRIORITY'));
        if (len !== 5) { h.onStreamError(streamError(H2_ERROR.FRAME_SIZE_ERROR, sid, 'frame-size', `PRIORITY of ${len} bytes, not 5`)); return; }
        const dep = buf.readUInt32BE(p);
        const dependsOn = dep & MAX_INT31;
        if (dependsOn === sid) { h.onStreamError(streamError(H2_ERROR.PROTOCOL_ERROR, sid, 'self-dependency', `stream ${sid} depends on itself`)); return; }
        h.onPriority(sid, dependsOn, buf[p + 4]! + 1, dep >>> 31 === 1);
        return;
      }
      case FRAME.RST_STREAM:
        if (sid === 0) return this.fail(onStreamZero('RST_STREAM'));
        if (len !== 4) return this.fail(wrongLength('RST_STREAM', len, 4));
        h.onRstStream(sid, buf.readUInt32BE(p));
        return;
      case FRAME.SETTINGS: {
        if (sid !== 0) return this.fail(notOnStreamZero('SETTINGS', sid));
        if ((flags & FLAG.ACK) !== 0) {
          if (len !== 0) return this.fail(connectionError(H2_ERROR.FRAME_SIZE_ERROR, 'frame-size', `SETTINGS ACK with a ${len}-byte payload`));
          h.onSettings(true, NO_ENTRIES);
          return;
        }
        if (len % 6 !== 0) return this.fail(connectionError(H2_ERROR.FRAME_SIZE_ERROR, 'frame-size', `SETTINGS of ${len} bytes, not a multiple of 6`));
        const entries: number[] = [];
        for (let q = p; q < p + len; q += 6) {
          const id = buf.readUInt16BE(q);
          const value = buf.readUInt32BE(q + 2);
          const err = checkSetting(id, value);
          if (err !== undefined) return this.fail(err);
          entries.push(id, value);
        }
        h.onSettings(false, entries);
        return;
      }
      case FRAME.PUSH_PROMISE:
        return this.fail(connectionError(H2_ERROR.PROTOCOL_ERROR, 'push-promise', 'PUSH_PROMISE, and push is never enabled'));
      case FRAME.PING:
        if (sid !== 0) return this.fail(notOnStreamZero('PING', sid));
        if (len !== 8) return this.fail(wrongLength('PING', len, 8));
        h.onPing((flags & FLAG.ACK) !== 0, buf.subarray(p, p + 8));
        return;
      case FRAME.GOAWAY:
        if (sid !== 0) return this.fail(notOnStreamZero('GOAWAY', sid));
        if (len < 8) return this.fail(tooShort('GOAWAY', len));
        h.onGoaway(buf.readUInt32BE(p) & MAX_INT31, buf.readUInt32BE(p + 4), buf.subarray(p + 8, p + len));
        return;
      case FRAME.WINDOW_UPDATE: {
        if (len !== 4) return this.fail(wrongLength('WINDOW_UPDATE', len, 4));
        const increment = buf.readUInt32BE(p) & MAX_INT31;
        if (increment === 0) {
          if (sid === 0) return this.fail(connectionError(H2_ERROR.PROTOCOL_ERROR, 'window-update-zero', 'WINDOW_UPDATE of 0 on the connection'));
          h.onStreamError(streamError(H2_ERROR.PROTOCOL_ERROR, sid, 'window-update-zero', `WINDOW_UPDATE of 0 on stream ${sid}`));
          return;
        }
        h.onWindowUpdate(sid, increment);
        return;
      }
      case FRAME.CONTINUATION: {
        if (this.continuationStream === 0) return this.fail(connectionError(H2_ERROR.PROTOCOL_ERROR, 'continuation-unexpected', `CONTINUATION on stream ${sid} with no open header block`));
        const endHeaders = (flags & FLAG.END_HEADERS) !== 0;
        if (endHeaders) this.continuationStream = 0;
        h.onContinuation(sid, buf.subarray(p, p + len), endHeaders);
        return;
      }
      default:
        return; // unknown types are ignored (RFC 9113 4.1, 5.5)
    }
  }
}

function onStreamZero(type: string): H2Error {
  return connectionError(H2_ERROR.PROTOCOL_ERROR, 'stream-id', `${type} on stream 0`);
}

function notOnStreamZero(type: string, sid: number): H2Error {
  return connectionError(H2_ERROR.PROTOCOL_ERROR, 'stream-id', `${type} on stream ${sid}, not 0`);
}

function tooShort(type: string, len: number): H2Error {
  return connectionError(H2_ERROR.FRAME_SIZE_ERROR, 'frame-size', `${type} of ${len} bytes is too short for its fields`);
}

function wrongLength(type: string, len: number, want: number): H2Error {
  return connectionError(H2_ERROR.FRAME_SIZE_ERROR, 'frame-size', `${type} of ${len} bytes, not ${want}`);
}

function padError(type: string, pad: number, len: number): H2Error {
  return connectionError(H2_ERROR.PROTOCOL_ERROR, 'pad-length', `${type} pad length ${pad} exceeds the ${len}-byte payload`);
}

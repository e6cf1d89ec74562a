/**
 * HTTP/2 frame writers (RFC 9113 4.1, 6). Frames that carry a payload the caller already holds
 * (DATA, HEADERS, CONTINUATION) come as a 9-byte header buffer to write before the payload
 * slice, for socket.writev / cork: the payload is never copied. Small control frames come whole
 * in one buffer. Arguments outside the protocol's ranges are programming errors (RangeError).
 * PRIORITY is parsed, never written (RFC 9113 deprecates priority signalling).
 */
import { FLAG, FRAME, FRAME_HEADER_LENGTH, MAX_INT31 } from './frame-types';
import { INITIAL_SETTINGS, MAX_MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE } from './settings';

/** A frame header; the caller writes `length` payload bytes after it. */
export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  if (length < 0 || length > MAX_MAX_FRAME_SIZE) throw new RangeError(`frame length ${length} outside 0..${MAX_MAX_FRAME_SIZE}`);
  const b = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
  writeHeader(b, 0, length, type, flags, streamId);
  return b;
}

function writeHeader(b: Buffer, off: number, length: number, type: number, flags: number, streamId: number): void {
  b[off] = length >>> 16;
  b[off + 1] = (length >>> 8) & 0xff;
  b[off + 2] = length & 0xff;
  b[off + 3] = type;
  b[off + 4] = flags;
  b.writeUInt32BE(streamId & MAX_INT31, off + 5);
}

/** A whole control frame with room for its payload at offset 9. */
function control(length: number, type: number, flags: number, streamId: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + length);
  writeHeader(b, 0, length, type, flags, streamId);
  return b;
}

/** The header of a DATA frame carrying `length` bytes (no padding). */
export function dataFrameHeader(streamId: number, length: number, endStream: boolean): Buffer {
  if (streamId <= 0) throw new RangeError('DATA needs a stream id');
  return frameHeader(length, FRAME.DATA, endStream ? FLAG.END_STREAM : 0, streamId);
}

/**
 * A header block as HEADERS followed by as many CONTINUATION frames as `maxFrameSize` (the
 * peer's SETTINGS_MAX_FRAME_SIZE) needs: [header, fragment, header, fragment, ...], the fragments
 * subarrays of `block`. Appends to `out`.
 */
export function headersFrames(streamId: number, block: Buffer, endStream: boolean, maxFrameSize: number = INITIAL_SETTINGS.maxFrameSize, out: Buffer[] = []): Buffer[] {
  if (streamId <= 0) throw new RangeError('HEADERS needs a stream id');
  if (maxFrameSize < MIN_MAX_FRAME_SIZE || maxFrameSize > MAX_MAX_FRAME_SIZE) throw new RangeError(`max frame size ${maxFrameSize} outside ${MIN_MAX_FRAME_SIZE}..${MAX_MAX_FRAME_SIZE}`);
  let pos = 0;
  let first = true;
  do {
    const len = Math.min(maxFrameSize, block.length - pos);
    const last = pos + len === block.length;
    const flags = (last ? FLAG.END_HEADERS : 0) | (first && endStream ? FLAG.END_STREAM : 0);
    out.push(frameHeader(len, first ? FRAME.HEADERS : FRAME.CONTINUATION, flags, streamId), block.subarray(pos, pos + len));
    pos += len;
    first = false;
  } while (pos < block.length);
  return out;
}

export function rstStreamFrame(streamId: number, errorCode: number): Buffer {
  if (streamId <= 0) throw new RangeError('RST_STREAM needs a stream id');
  const b = control(4, FRAME.RST_STREAM, 0, streamId);
  b.writeUInt32BE(errorCode >>> 0, 9);
  return b;
}

/** SETTINGS with `entries` = [id0, value0, id1, value1, ...]. */
export function settingsFrame(entries: readonly number[]): Buffer {
  if (entries.length % 2 !== 0) throw new RangeError('settings entries come in id, value pairs');
  const b = control(entries.length * 3, FRAME.SETTINGS, 0, 0);
  for (let i = 0, q = 9; i < entries.length; i += 2, q += 6) {
    b.writeUInt16BE(entries[i]!, q);
    b.writeUInt32BE(entries[i + 1]!, q + 2);
  }
  return b;
}

export function settingsAckFrame(): Buffer {
  return control(0, FRAME.SETTINGS, FLAG.ACK, 0);
}

/** PING with an 8-byte opaque payload; `ack` answers one. */
export function pingFrame(opaque: Buffer, ack: boolean): Buffer {
  if (opaque.length !== 8) throw new RangeError('PING carries exactly 8 bytes');
  const b = control(8, FRAME.PING, ack ? FLAG.ACK : 0, 0);
  opaque.copy(b, 9);
  return b;
}

export function goawayFrame(lastStreamId: number, errorCode: number, debugData?: Buffer): Buffer {
  const debugLen = debugData?.length ?? 0;
  const b = control(8 + debugLen, FRAME.GOAWAY, 0, 0);
  b.writeUInt32BE(lastStreamId & MAX_INT31, 9);
  b.writeUInt32BE(errorCode >>> 0, 13);
  if (debugData !== undefined) debugData.copy(b, 17);
  return b;
}

/** WINDOW_UPDATE on a stream, or on the connection with stream id 0. */
export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  if (increment < 1 || increment > MAX_INT31) throw new RangeError(`window increment ${increment} outside 1..2^31-1`);
  const b = control(4, FRAME.WINDOW_UPDATE, 0, streamId);
  b.writeUInt32BE(increment, 9);
  return b;
}

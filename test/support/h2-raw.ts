/**
 * A raw HTTP/2 client over a plain socket, for sending what no well-behaved client library
 * sends: header fields with forbidden bytes, HEADERS followed at once by RST_STREAM (rapid
 * reset), streams beyond the peer's SETTINGS_MAX_CONCURRENT_STREAMS. It encodes header blocks
 * with HPACK "literal header field without indexing, new name" (RFC 7541 6.2.2), so any bytes
 * can be put in a name or value, and it reads frames back without decoding HPACK: what tests
 * need is which streams got a response (HEADERS), which were reset and with what code, and the
 * GOAWAY's error code.
 */
import * as net from 'node:net';
import { h2Frame, H2_PREFACE } from './sidecar-apps';
import { HUFFMAN_CODES } from '../../sidecar/src/listener/hpack-field-check';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const H2_ERROR = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, REFUSED_STREAM: 7, CANCEL: 8, ENHANCE_YOUR_CALM: 11 } as const;

/** HPACK integer with an N-bit prefix (RFC 7541 5.1). */
function hpackInt(value: number, prefixBits: number, firstByteFlags: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByteFlags | value]);
  const out = [firstByteFlags | max];
  let v = value - max;
  while (v >= 128) { out.push((v & 0x7f) | 0x80); v >>= 7; }
  out.push(v);
  return Buffer.from(out);
}

function hpackString(s: Buffer): Buffer {
  return Buffer.concat([hpackInt(s.length, 7, 0x00), s]); // no Huffman
}

/** HPACK Huffman encoding of `s` (RFC 7541 5.2), padded with ones. */
function huffmanString(s: Buffer): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const b of s) {
    const { code, bits: n } = HUFFMAN_CODES[b]!;
    for (let k = n - 1; k >= 0; k--) {
      acc = (acc << 1) | ((code >>> k) & 1);
      if (++bits === 8) { out.push(acc); acc = 0; bits = 0; }
    }
  }
  if (bits > 0) out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) & 0xff);
  return Buffer.concat([hpackInt(out.length, 7, 0x80), Buffer.from(out)]);
}

export interface HpackOptions {
  /** Huffman-encode names and values. */
  huffman?: boolean;
  /** Literal with incremental indexing (the field enters the dynamic table) instead of without indexing. */
  index?: boolean;
}

/** A header block: every field as a literal with a literal name (bytes as given). */
export function hpackBlock(fields: [string | Buffer, string | Buffer][], opts: HpackOptions = {}): Buffer {
  const parts: Buffer[] = [];
  const str = opts.huffman === true ? huffmanString : hpackString;
  for (const [n, v] of fields) {
    parts.push(Buffer.from([opts.index === true ? 0x40 : 0x00]), str(Buffer.isBuffer(n) ? n : Buffer.from(n, 'latin1')), str(Buffer.isBuffer(v) ? v : Buffer.from(v, 'latin1')));
  }
  return Buffer.concat(parts);
}

/** An indexed field representation (RFC 7541 6.1): static 1..61, dynamic 62.. (62 = newest). */
export function hpackIndexed(index: number): Buffer {
  return hpackInt(index, 7, 0x80);
}

export interface RawFrame { type: number; flags: number; streamId: number; payload: Buffer }

export class RawH2 {
  private buf: Buffer = Buffer.alloc(0);
  readonly frames: RawFrame[] = [];
  /** RST_STREAM codes received, by stream id. */
  readonly resets = new Map<number, number>();
  /** Streams that got a HEADERS frame (a response head). */
  readonly responded = new Set<number>();
  /** Streams whose response ended (END_STREAM on HEADERS or DATA). */
  readonly ended = new Set<number>();
  /** The last GOAWAY received; `goaways` lists every one's code in order. */
  goaway: { lastStreamId: number; code: number } | undefined;
  readonly goaways: number[] = [];
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('close', () => { this.closed = true; this.wake(); });
    socket.on('error', () => undefined);
  }

  /** Connects, sends the preface and an empty SETTINGS, and ACKs the server's SETTINGS when it comes. */
  static async connect(address: string): Promise<RawH2> {
    const i = address.lastIndexOf(':');
    const socket = net.connect(Number(address.slice(i + 1)), address.slice(0, i));
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => { socket.once('connect', () => resolve()); socket.once('error', reject); });
    const c = new RawH2(socket);
    // A large connection window, so responses are never held by flow control.
    const wu = Buffer.alloc(4);
    wu.writeUInt32BE(1 << 30, 0);
    socket.write(Buffer.concat([H2_PREFACE, h2Frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0)), h2Frame(FRAME.WINDOW_UPDATE, 0, 0, wu)]));
    return c;
  }

  /** HEADERS (END_HEADERS, END_STREAM if `end`) for stream `id` with `fields` (pseudo-headers first, as given). */
  headersFrame(id: number, fields: [string | Buffer, string | Buffer][], end = true, opts: HpackOptions = {}): Buffer {
    return h2Frame(FRAME.HEADERS, FLAG.END_HEADERS | (end ? FLAG.END_STREAM : 0), id, hpackBlock(fields, opts));
  }

  /** HEADERS (END_HEADERS | END_STREAM) carrying a ready-made header block. */
  blockFrame(id: number, block: Buffer): Buffer {
    return h2Frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, block);
  }

  rstFrame(id: number, code: number = H2_ERROR.CANCEL): Buffer {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(code, 0);
    return h2Frame(FRAME.RST_STREAM, 0, id, p);
  }

  /** Writes bytes; resolves when the socket took them (false if it is gone). */
  write(b: Buffer): Promise<boolean> {
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(b, (err) => resolve(err == null)));
  }

  /** Waits until `pred` holds (checked on every frame and on close); rejects after `ms`. */
  async until(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (this.closed && !pred()) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => { const t = setTimeout(resolve, Math.min(left, 200)); this.waiters.push(() => { clearTimeout(t); resolve(); }); });
    }
  }

  close(): void { this.socket.destroy(); }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private onData(c: Buffer): void {
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const f: RawFrame = { type: this.buf[3]!, flags: this.buf[4]!, streamId: this.buf.readUInt32BE(5) & 0x7fffffff, payload: this.buf.subarray(9, 9 + len) };
      this.buf = this.buf.subarray(9 + len);
      this.onFrame(f);
    }
    this.wake();
  }

  private onFrame(f: RawFrame): void {
    if (this.frames.length < 100_000) this.frames.push(f);
    switch (f.type) {
      case FRAME.SETTINGS:
        if ((f.flags & FLAG.ACK) === 0) this.socket.write(h2Frame(FRAME.SETTINGS, FLAG.ACK, 0, Buffer.alloc(0)));
        break;
      case FRAME.PING:
        if ((f.flags & FLAG.ACK) === 0) this.socket.write(h2Frame(FRAME.PING, FLAG.ACK, 0, f.payload));
        break;
      case FRAME.RST_STREAM: this.resets.set(f.streamId, f.payload.readUInt32BE(0)); break;
      case FRAME.GOAWAY:
        this.goaway = { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) };
        this.goaways.push(this.goaway.code);
        break;
      case FRAME.HEADERS:
        this.responded.add(f.streamId);
        if ((f.flags & FLAG.END_STREAM) !== 0) this.ended.add(f.streamId);
        break;
      case FRAME.DATA:
        if ((f.flags & FLAG.END_STREAM) !== 0) this.ended.add(f.streamId);
        break;
    }
  }

  /** The SETTINGS_MAX_CONCURRENT_STREAMS (id 3) the server advertised, if any. */
  serverMaxConcurrentStreams(): number | undefined {
    for (const f of this.frames) {
      if (f.type !== FRAME.SETTINGS || (f.flags & FLAG.ACK) !== 0) continue;
      for (let o = 0; o + 6 <= f.payload.length; o += 6) if (f.payload.readUInt16BE(o) === 3) return f.payload.readUInt32BE(o + 2);
    }
    return undefined;
  }
}

/** The usual request pseudo-headers for a GET. */
export function getFields(authority: string, path = '/'): [string, string][] {
  return [[':method', 'GET'], [':scheme', 'http'], [':path', path], [':authority', authority]];
}

/**
 * RFC 9113 8.2.1 at the edge: a request whose header block has a field with a forbidden byte
 * (see hpack-field-check.ts) is malformed and must get RST_STREAM PROTOCOL_ERROR. Node's
 * nghttp2 drops such fields without a word and hands the rest of the request over, so the
 * check has to see the bytes first: the listener gives Node's HTTP/2 server a GuardedSocket,
 * a Duplex over the TCP socket that passes every byte through unchanged and, on the way, follows
 * the frames (HEADERS and CONTINUATION payloads only; other frames are skipped by length) and
 * checks each request header block. The connection manager asks `takeMalformed(streamId)` when
 * the stream arrives and resets it.
 *
 * Checked: the header block that opens a stream. Trailers (a later HEADERS on an open stream)
 * are followed for the HPACK table but not acted on. A header block over 256 KiB closes the
 * connection (nghttp2's own limit is far lower; past it the two decoders could drift apart).
 */
import { Duplex } from 'node:stream';
import type * as net from 'node:net';
import { HpackFieldChecker } from './hpack-field-check';

const PREFACE_LENGTH = 24;
const HEADERS = 0x1;
const PUSH_PROMISE = 0x5;
const CONTINUATION = 0x9;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
const MAX_BLOCK_BYTES = 256 * 1024;

export class H2HeaderGuard {
  private readonly hpack: HpackFieldChecker;
  /** Stopped following the connection (it broke the protocol: nghttp2 ends it too). */
  off = false;
  private prefaceLeft = PREFACE_LENGTH;
  private readonly head = Buffer.alloc(9);
  private headLen = 0;
  private payloadLeft = -1;
  private type = 0;
  private flags = 0;
  private streamId = 0;
  /** Payload slices of the HEADERS / CONTINUATION frame being read. */
  private frameParts: Buffer[] = [];
  /** The header block being assembled (HEADERS without END_HEADERS, then CONTINUATIONs). */
  private blockParts: Buffer[] = [];
  private blockBytes = 0;
  private blockStream = 0;
  private blockOpensStream = false;
  private lastStreamId = 0;
  /** Streams whose opening header block was malformed, not yet claimed by takeMalformed. */
  private readonly malformed = new Set<number>();
  /** Set when a header block is too large to follow: the owner closes the connection. */
  tooLarge = false;

  constructor(headerTableSize = 4096) { this.hpack = new HpackFieldChecker(headerTableSize); }

  /** True once if stream `id` was found malformed; forgets marks of older streams (nghttp2 refused them itself). */
  takeMalformed(id: number): boolean {
    if (this.malformed.size === 0) return false;
    const hit = this.malformed.delete(id);
    for (const m of this.malformed) if (m < id) this.malformed.delete(m);
    return hit;
  }

  /** Follows `chunk` (bytes from the client, in order). */
  feed(chunk: Buffer): void {
    if (this.off) return;
    let i = 0;
    const n = chunk.length;
    while (i < n && !this.off) {
      if (this.prefaceLeft > 0) {
        const k = Math.min(this.prefaceLeft, n - i);
        this.prefaceLeft -= k;
        i += k;
        continue;
      }
      if (this.payloadLeft < 0) {
        const k = Math.min(9 - this.headLen, n - i);
        chunk.copy(this.head, this.headLen, i, i + k);
        this.headLen += k;
        i += k;
        if (this.headLen < 9) break;
        this.headLen = 0;
        this.payloadLeft = this.head.readUIntBE(0, 3);
        this.type = this.head[3]!;
        this.flags = this.head[4]!;
        this.streamId = this.head.readUInt32BE(5) & 0x7fffffff;
        if (this.type === PUSH_PROMISE) { this.off = true; return; }
        if (this.payloadLeft === 0) this.endFrame();
        continue;
      }
      const k = Math.min(this.payloadLeft, n - i);
      if (this.type === HEADERS || this.type === CONTINUATION) this.frameParts.push(chunk.subarray(i, i + k));
      this.payloadLeft -= k;
      i += k;
      if (this.payloadLeft === 0) this.endFrame();
    }
  }

  private endFrame(): void {
    this.payloadLeft = -1;
    const type = this.type;
    if (type !== HEADERS && type !== CONTINUATION) return;
    const parts = this.frameParts;
    this.frameParts = [];
    let payload = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    if (type === HEADERS) {
      let start = 0;
      let pad = 0;
      if ((this.flags & FLAG_PADDED) !== 0) { pad = payload[0] ?? 0; start = 1; }
      if ((this.flags & FLAG_PRIORITY) !== 0) start += 5;
      if (start + pad > payload.length) { this.off = true; return; }
      payload = payload.subarray(start, payload.length - pad);
      this.blockStream = this.streamId;
      this.blockOpensStream = this.streamId > this.lastStreamId;
      if (this.blockOpensStream) this.lastStreamId = this.streamId;
      this.blockParts = [];
      this.blockBytes = 0;
    } else if (this.streamId !== this.blockStream || this.blockStream === 0) {
      this.off = true; // CONTINUATION out of place: a connection error for nghttp2 too
      return;
    }
    this.blockParts.push(payload);
    this.blockBytes += payload.length;
    if (this.blockBytes > MAX_BLOCK_BYTES) { this.off = true; this.tooLarge = true; return; }
    if ((this.flags & FLAG_END_HEADERS) === 0) return;
    const block = this.blockParts.length === 1 ? this.blockParts[0]! : Buffer.concat(this.blockParts);
    this.blockParts = [];
    const stream = this.blockStream;
    this.blockStream = 0;
    let ok: boolean;
    try {
      ok = this.hpack.check(block);
    } catch {
      this.off = true; // not valid HPACK: nghttp2 ends the connection (COMPRESSION_ERROR)
      return;
    }
    if (!ok && this.blockOpensStream) this.malformed.add(stream);
  }
}

/**
 * The TCP socket as Node's HTTP/2 server sees it: every byte passes unchanged (the guard reads
 * them on the way in). Node wraps a non-native stream in its JSStreamSocket, so the peer's
 * address is read here (`remoteAddress`) rather than from the session's socket.
 */
export class GuardedSocket extends Duplex {
  readonly guard: H2HeaderGuard;

  constructor(readonly socket: net.Socket, headerTableSize?: number) {
    super({ allowHalfOpen: false });
    this.guard = new H2HeaderGuard(headerTableSize);
    socket.on('data', (chunk: Buffer) => {
      this.guard.feed(chunk);
      if (this.guard.tooLarge) { this.destroy(); return; }
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('close', () => { if (!this.destroyed) this.destroy(); });
    socket.on('error', (e) => this.destroy(e));
    socket.on('drain', () => this.emit('drain'));
  }

  get remoteAddress(): string | undefined { return this.socket.remoteAddress; }
  get remotePort(): number | undefined { return this.socket.remotePort; }
  get localAddress(): string | undefined { return this.socket.localAddress; }
  get localPort(): number | undefined { return this.socket.localPort; }
  setNoDelay(noDelay?: boolean): this { this.socket.setNoDelay(noDelay); return this; }
  setKeepAlive(enable?: boolean, delay?: number): this { this.socket.setKeepAlive(enable, delay); return this; }
  setTimeout(ms: number, cb?: () => void): this { this.socket.setTimeout(ms, cb); return this; }

  override _read(): void { this.socket.resume(); }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.socket.destroyed) { cb(); return; }
    this.socket.write(chunk, cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    if (this.socket.destroyed) { cb(); return; }
    this.socket.cork();
    for (let i = 0; i < chunks.length - 1; i++) this.socket.write(chunks[i]!.chunk);
    this.socket.write(chunks[chunks.length - 1]!.chunk, cb);
    this.socket.uncork();
  }

  override _final(cb: (err?: Error | null) => void): void { this.socket.end(cb); }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.socket.destroy();
    cb(err);
  }
}

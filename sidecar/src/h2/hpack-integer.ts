/**
 * HPACK integers with an N-bit prefix (RFC 7541 5.1). Values above 2^32 - 1 are refused: no
 * index, length or table size in HTTP/2 comes near, and a bound keeps a hostile encoder from
 * sending endless continuation bytes.
 */
import { HpackError } from './errors';

export const HPACK_INTEGER_MAX = 0xffffffff;

/** A read position in one header block; the decoder keeps one and reuses it. */
export class HpackReader {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  end = 0;

  reset(buf: Buffer): void {
    this.buf = buf;
    this.pos = 0;
    this.end = buf.length;
  }

  /** Reads an integer whose prefix is the low `prefixBits` bits of the byte at pos. */
  integer(prefixBits: number): number {
    if (this.pos >= this.end) throw new HpackError('truncated', 'header block ends inside an integer');
    const max = (1 << prefixBits) - 1;
    let v = this.buf[this.pos++]! & max;
    if (v < max) return v;
    for (let shift = 0; ; shift += 7) {
      if (this.pos >= this.end) throw new HpackError('truncated', 'header block ends inside an integer');
      if (shift > 28) throw new HpackError('integer-overflow', 'integer longer than 5 continuation bytes');
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (v > HPACK_INTEGER_MAX) throw new HpackError('integer-overflow', 'integer over 2^32 - 1');
      if ((b & 0x80) === 0) return v;
    }
  }
}

/**
 * Writes `value` with a `prefixBits`-bit prefix; `flags` are the first byte's bits above the
 * prefix. Returns the position after it. The caller makes room (at most 6 bytes).
 */
export function writeInteger(out: Buffer, pos: number, value: number, prefixBits: number, flags: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) { out[pos++] = flags | value; return pos; }
  out[pos++] = flags | max;
  let v = value - max;
  while (v >= 128) { out[pos++] = (v % 128) | 0x80; v = Math.floor(v / 128); }
  out[pos++] = v;
  return pos;
}

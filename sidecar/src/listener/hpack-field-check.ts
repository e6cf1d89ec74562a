/**
 * Reads HPACK header blocks (RFC 7541) only to tell whether every field is well-formed by
 * RFC 9113 8.2.1; it builds no strings. nghttp2 (inside Node) silently drops a field with a
 * forbidden byte and passes the rest of the request on, so the proxy would forward a request
 * that is malformed; this decoder sees the same bytes first and reports the block malformed.
 *
 * It keeps the dynamic table in step with nghttp2's (entry sizes and one "bad" bit each, not the
 * strings), so a bad field that was indexed and is later referenced by index is caught too.
 *
 * A field is malformed when:
 * - its name is empty, or holds a byte that is not a lowercase token character (RFC 9110 5.1:
 *   no SP, no control byte, no uppercase, no byte >= 0x7f, no ':' except a pseudo-header's
 *   leading one) — nghttp2 drops such names, or resets the stream for uppercase;
 * - its value holds NUL, CR, LF or another control byte but HTAB (0x00-0x08, 0x0a-0x1f, 0x7f),
 *   or starts or ends with SP or HTAB — nghttp2 drops such values.
 */

import { COUNT, EOS, FIRST, MAX_LEN, OFFSET, SYMBOLS } from '../h2/huffman-table';
import { STATIC_COUNT, STATIC_NAMES } from '../h2/static-table';

/** Re-exported for the tests and test helpers that build Huffman strings. */
export { HUFFMAN_CODES } from '../h2/huffman-table';

/** Byte classes: 1 = allowed. */
const NAME_OK = new Uint8Array(256);
const VALUE_OK = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  const c = String.fromCharCode(b);
  NAME_OK[b] = /[a-z0-9!#$%&'*+\-.^_`|~]/.test(c) ? 1 : 0;
  VALUE_OK[b] = b === 0x09 || (b >= 0x20 && b !== 0x7f) ? 1 : 0;
}

/** The static table's name lengths (index 1..61). Every static field is well-formed. */
const STATIC_NAME_LENGTHS: readonly number[] = STATIC_NAMES.map((n) => n.length);

/** The result of reading a string literal: its decoded length and whether its bytes are allowed. */
const enum Kind { Name, Value }

export class HpackFieldChecker {
  /** Dynamic table, oldest first: per entry its size (RFC 7541 4.1), name length and flags. */
  private sizes: number[] = [];
  private nameLens: number[] = [];
  /** Bit 1: the field is malformed; bit 2: its name is malformed. */
  private flags: number[] = [];
  private tableSize = 0;
  private maxSize: number;

  /** Scratch results of the last readString / readInt (no allocation per field). */
  private strLen = 0;
  private strOk = true;
  private pos = 0;

  /** `maxTableSize`: the decoder's SETTINGS_HEADER_TABLE_SIZE (what the server advertised). */
  constructor(private readonly maxTableSize = 4096) { this.maxSize = maxTableSize; }

  /**
   * Reads one complete header block. Returns true if every field is well-formed, false if one
   * is malformed; throws on a block that is not valid HPACK (the connection is then broken for
   * nghttp2 too, and the caller stops checking it).
   */
  check(block: Buffer): boolean {
    let ok = true;
    this.pos = 0;
    const end = block.length;
    while (this.pos < end) {
      const b = block[this.pos]!;
      if ((b & 0x80) !== 0) { // indexed field
        const idx = this.readInt(block, 7);
        if (idx === 0) throw new Error('HPACK: index 0');
        if (idx > STATIC_COUNT && (this.entryFlags(idx) & 1) !== 0) ok = false;
        else if (idx > STATIC_COUNT + this.sizes.length) throw new Error('HPACK: index out of range');
      } else if ((b & 0x40) !== 0) { // literal with incremental indexing
        const fieldOk = this.literal(block, 6);
        if (!fieldOk) ok = false;
      } else if ((b & 0x20) !== 0) { // dynamic table size update
        const size = this.readInt(block, 5);
        if (size > this.maxTableSize) throw new Error('HPACK: table size update over the limit');
        this.maxSize = size;
        this.evict(0);
      } else { // literal without indexing (0000) or never indexed (0001)
        const fieldOk = this.literal(block, 4);
        if (!fieldOk) ok = false;
      }
    }
    return ok;
  }

  /** A literal field; `prefix` 6 means it is added to the dynamic table. */
  private literal(block: Buffer, prefix: number): boolean {
    const nameIdx = this.readInt(block, prefix);
    let nameLen: number;
    let nameOk: boolean;
    if (nameIdx === 0) {
      this.readString(block, Kind.Name);
      nameLen = this.strLen;
      nameOk = this.strOk;
    } else if (nameIdx <= STATIC_COUNT) {
      nameLen = STATIC_NAME_LENGTHS[nameIdx]!;
      nameOk = true;
    } else {
      const i = this.entryIndex(nameIdx);
      nameLen = this.nameLens[i]!;
      nameOk = (this.flags[i]! & 2) === 0;
    }
    this.readString(block, Kind.Value);
    const fieldOk = nameOk && this.strOk;
    if (prefix === 6) this.add(nameLen + this.strLen + 32, nameLen, (fieldOk ? 0 : 1) | (nameOk ? 0 : 2));
    return fieldOk;
  }

  private entryIndex(idx: number): number {
    const i = this.sizes.length - 1 - (idx - STATIC_COUNT - 1);
    if (i < 0) throw new Error('HPACK: index out of range');
    return i;
  }

  private entryFlags(idx: number): number {
    const i = this.sizes.length - 1 - (idx - STATIC_COUNT - 1);
    return i < 0 ? 0 : this.flags[i]!;
  }

  private add(size: number, nameLen: number, flags: number): void {
    if (size > this.maxSize) { this.evict(0); this.sizes = []; this.nameLens = []; this.flags = []; this.tableSize = 0; return; }
    this.evict(size);
    this.sizes.push(size);
    this.nameLens.push(nameLen);
    this.flags.push(flags);
    this.tableSize += size;
  }

  /** Evicts the oldest entries until `room` more bytes fit. */
  private evict(room: number): void {
    while (this.sizes.length > 0 && this.tableSize + room > this.maxSize) {
      this.tableSize -= this.sizes.shift()!;
      this.nameLens.shift();
      this.flags.shift();
    }
  }

  private readInt(block: Buffer, prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let v = block[this.pos++]! & max;
    if (v < max) return v;
    let shift = 0;
    for (;;) {
      if (this.pos >= block.length) throw new Error('HPACK: truncated integer');
      const b = block[this.pos++]!;
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
      if (shift > 28) throw new Error('HPACK: integer too large');
    }
    return v;
  }

  /** Reads a string literal at pos: sets strLen (decoded length) and strOk. */
  private readString(block: Buffer, kind: Kind): void {
    if (this.pos >= block.length) throw new Error('HPACK: truncated string');
    const huffman = (block[this.pos]! & 0x80) !== 0;
    const len = this.readInt(block, 7);
    const start = this.pos;
    const end = start + len;
    if (end > block.length) throw new Error('HPACK: truncated string');
    this.pos = end;
    const table = kind === Kind.Name ? NAME_OK : VALUE_OK;
    let ok = true;
    let n = 0;
    let first = -1;
    let last = -1;
    if (!huffman) {
      for (let i = start; i < end; i++) {
        const c = block[i]!;
        if (table[c] === 0 && !(kind === Kind.Name && i === start && c === 0x3a)) ok = false;
      }
      n = len;
      if (n > 0) { first = block[start]!; last = block[end - 1]!; }
    } else {
      let code = 0;
      let bits = 0;
      let sinceSymbol = 0;
      for (let i = start; i < end; i++) {
        const byte = block[i]!;
        for (let k = 7; k >= 0; k--) {
          code = (code << 1) | ((byte >> k) & 1);
          bits++;
          sinceSymbol++;
          if (bits < 5) continue;
          const d = code - FIRST[bits]!;
          if (d < 0 || d >= COUNT[bits]!) {
            if (bits >= MAX_LEN) throw new Error('HPACK: bad Huffman code');
            continue;
          }
          const sym = SYMBOLS[OFFSET[bits]! + d]!;
          if (sym === EOS) throw new Error('HPACK: EOS in a Huffman string');
          if (table[sym] === 0 && !(kind === Kind.Name && n === 0 && sym === 0x3a)) ok = false;
          if (n === 0) first = sym;
          last = sym;
          n++;
          code = 0;
          bits = 0;
          sinceSymbol = 0;
        }
      }
      // Padding: fewer than 8 bits, all ones (the EOS prefix).
      if (sinceSymbol > 7 || (bits > 0 && code !== (1 << bits) - 1)) throw new Error('HPACK: bad Huffman padding');
    }
    if (kind === Kind.Name) {
      if (n === 0 || (n === 1 && first === 0x3a)) ok = false;
    } else if (n > 0 && (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09)) {
      ok = false;
    }
    this.strLen = n;
    this.strOk = ok;
  }
}

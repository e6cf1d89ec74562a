/**
 * HPACK encoder (RFC 7541), skein's own (see hpack-decoder.ts for why no library).
 *
 * Input: a flat array [name0, value0, ...] of byte strings (latin1), as the decoder produces.
 * - A field in the static or dynamic table with its value is sent by index.
 * - Sensitive fields (authorization, cookie, proxy-authorization, set-cookie, and any name the
 *   caller passes, e.g. what the decoder saw never-indexed) use the never-indexed literal
 *   (RFC 7541 6.2.3, 7.1.3), so no intermediary indexes them and no table probing reveals them.
 * - Other fields are literals with incremental indexing when the dynamic table is on, else
 *   literals without indexing; a few per-request values (NOT_INDEXED) are never added to the
 *   table, where they would only evict useful entries.
 * - Names come from the tables by index when they are there; strings are Huffman-coded when that
 *   is shorter (option `huffman`, on by default).
 *
 * The dynamic table is bounded: its size is the smaller of `maxTableSize` (ours, 0 = no dynamic
 * table) and the peer's SETTINGS_HEADER_TABLE_SIZE. A change is announced by a size update at
 * the start of the next block (the smallest size reached first, then the final one; RFC 7541 4.2).
 */
import { DynamicTable } from './dynamic-table';
import { huffmanEncode, huffmanEncodedLength } from './huffman';
import { writeInteger } from './hpack-integer';
import { STATIC_COUNT, staticFind } from './static-table';
import { INITIAL_SETTINGS } from './settings';

export interface HpackEncoderOptions {
  /** The most dynamic table this encoder keeps, in bytes (default 4096; 0 = none: literals only). */
  maxTableSize?: number;
  /** Huffman-code a string when that is shorter (default true). */
  huffman?: boolean;
}

/** Fields whose values must never enter a compression table (RFC 7541 7.1.3). */
export const SENSITIVE_HEADERS: ReadonlySet<string> = new Set(['authorization', 'cookie', 'proxy-authorization', 'set-cookie']);

/** Fields whose values differ on nearly every message: literals without indexing. */
export const NOT_INDEXED: ReadonlySet<string> = new Set(['content-length', 'grpc-timeout', 'x-request-id', 'traceparent', 'tracestate', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'b3', 'date', 'etag', 'age']);

/**
 * Fields whose values are random hex ids (trace and request ids): sent without Huffman coding.
 * Huffman saves about a third of their bytes (20 bytes for a traceparent) and, at the sidecar's
 * 15 µs per request, costs more CPU per message than those bytes are worth on its links.
 */
export const RAW_VALUES: ReadonlySet<string> = new Set(['traceparent', 'x-request-id', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'b3']);

const NONE: readonly string[] = [];
const SLAB_SIZE = 16 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * Blocks of every encoder in the process are written straight into one shared slab (as Node's
 * Buffer pool) and handed out as views of it, never copied; a region handed out is never written
 * again, and a full slab is left to the GC with its views. An idle encoder holds no memory.
 */
const shared = { slab: Buffer.allocUnsafe(SLAB_SIZE), pos: 0 };
/** Strings shorter than this are copied byte by byte: cheaper than Buffer.write's call. */
const SHORT_STRING = 32;

export class HpackEncoder {
  private readonly ownMax: number;
  private readonly huffman: boolean;
  private readonly table: DynamicTable;
  /** Smallest and final table size since the last block, -1 when there is no change to announce. */
  private pendingMin = -1;
  private pendingFinal = -1;
  /** While encoding: the shared slab, where this block starts, and the write position. */
  private buf = EMPTY;
  private start = 0;
  private pos = 0;

  constructor(opts: HpackEncoderOptions = {}) {
    this.ownMax = opts.maxTableSize ?? INITIAL_SETTINGS.headerTableSize;
    this.huffman = opts.huffman ?? true;
    // The peer's decoder starts at the protocol's 4096; ours may be smaller, announced in the first block.
    this.table = new DynamicTable(Math.min(this.ownMax, INITIAL_SETTINGS.headerTableSize));
    if (this.table.maxSize !== INITIAL_SETTINGS.headerTableSize) { this.pendingMin = this.table.maxSize; this.pendingFinal = this.table.maxSize; }
  }

  get tableSize(): number { return this.table.size; }
  get tableMaxSize(): number { return this.table.maxSize; }
  tableEntries(): [string, string][] { return this.table.entries(); }

  /** The peer's SETTINGS_HEADER_TABLE_SIZE arrived. */
  setPeerMaxTableSize(peerMax: number): void {
    const size = Math.min(this.ownMax, peerMax);
    if (size === this.table.maxSize && this.pendingMin < 0) return;
    this.table.setMaxSize(size);
    this.pendingMin = this.pendingMin < 0 ? size : Math.min(this.pendingMin, size);
    this.pendingFinal = size;
  }

  /**
   * Encodes one header block. `neverIndexed` names more fields to send as never-indexed
   * (for instance the decoder's `neverIndexed` of the block being forwarded). Returns the block,
   * a view of memory that this encoder never writes again.
   */
  encode(headers: readonly string[], neverIndexed: readonly string[] = NONE): Buffer {
    this.buf = shared.slab;
    this.start = this.pos = shared.pos;
    if (this.pendingMin >= 0) {
      this.ensure(12);
      this.pos = writeInteger(this.buf, this.pos, this.pendingMin, 5, 0x20);
      if (this.pendingFinal !== this.pendingMin) this.pos = writeInteger(this.buf, this.pos, this.pendingFinal, 5, 0x20);
      this.pendingMin = -1;
      this.pendingFinal = -1;
    }
    const useTable = this.table.maxSize > 0;
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const name = headers[i]!;
      const value = headers[i + 1]!;
      this.ensure(20 + name.length + value.length); // three integers of up to 6 bytes, two strings no longer than raw
      const sensitive = SENSITIVE_HEADERS.has(name) || (neverIndexed.length > 0 && neverIndexed.includes(name));
      let found = staticFind(name, value);
      if (found > 0 && !sensitive) { this.pos = writeInteger(this.buf, this.pos, found, 7, 0x80); continue; }
      if (useTable && !sensitive) {
        const dyn = this.findDynamic(name, value);
        if (dyn > 0) { this.pos = writeInteger(this.buf, this.pos, dyn, 7, 0x80); continue; }
        if (found === 0 && dyn < 0) found = dyn;
      }
      const nameIndex = found < 0 ? -found : found; // a full match not used (sensitive) still names the field
      if (sensitive) {
        this.pos = writeInteger(this.buf, this.pos, nameIndex, 4, 0x10);
      } else if (useTable && !NOT_INDEXED.has(name)) {
        this.pos = writeInteger(this.buf, this.pos, nameIndex, 6, 0x40);
        this.table.add(name, value);
      } else {
        this.pos = writeInteger(this.buf, this.pos, nameIndex, 4, 0x00);
      }
      if (nameIndex === 0) this.string(name, this.huffman);
      this.string(value, this.huffman && !RAW_VALUES.has(name));
    }
    const block = this.buf.subarray(this.start, this.pos);
    shared.slab = this.buf;
    shared.pos = this.pos;
    this.buf = EMPTY;
    return block;
  }

  /** The HPACK index of a dynamic entry with this name and value (> 0), else minus one with this name (< 0), else 0. */
  private findDynamic(name: string, value: string): number {
    let nameOnly = 0;
    for (let i = 0; i < this.table.length; i++) {
      if (this.table.name(i) !== name) continue;
      if (this.table.value(i) === value) return STATIC_COUNT + 1 + i;
      if (nameOnly === 0) nameOnly = -(STATIC_COUNT + 1 + i);
    }
    return nameOnly;
  }

  private string(s: string, huffman: boolean): void {
    const hlen = huffman ? huffmanEncodedLength(s) : s.length;
    if (hlen < s.length) {
      this.pos = writeInteger(this.buf, this.pos, hlen, 7, 0x80);
      this.pos = huffmanEncode(s, this.buf, this.pos);
    } else {
      this.pos = writeInteger(this.buf, this.pos, s.length, 7, 0x00);
      if (s.length < SHORT_STRING) {
        const b = this.buf;
        let p = this.pos;
        for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
        this.pos = p;
      } else {
        this.pos += this.buf.write(s, this.pos, 'latin1');
      }
    }
  }

  /** Room for `n` more bytes of the block being written: else a new slab (the shared one from now on), with the block so far moved to its start. */
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const written = this.pos - this.start;
    const next = Buffer.allocUnsafe(Math.max(SLAB_SIZE, 2 * (written + n)));
    this.buf.copy(next, 0, this.start, this.pos);
    this.buf = next;
    this.start = 0;
    this.pos = written;
  }
}

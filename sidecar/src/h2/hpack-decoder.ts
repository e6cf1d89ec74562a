/**
 * HPACK decoder (RFC 7541), skein's own: no maintained npm HPACK library exists (`hpack` and
 * `hpack.js` were last released in 2015-2017), and the proxy needs byte-exact, allocation-aware
 * decoding with typed errors.
 *
 * Output: a flat array [name0, value0, name1, value1, ...] of byte strings (latin1: one char per
 * byte, so any byte a peer sends is passed on unchanged), the shape of Node's http2 raw headers,
 * so later stages can edit it in place. Names from the static table are shared constant strings.
 *
 * Every malformed block is an HpackError (COMPRESSION_ERROR, connection scope): a truncated
 * block, an integer over 2^32 - 1, an index outside the tables, a string longer than the block,
 * EOS or bad padding in a Huffman string, a table size update over the limit, after the first
 * field, or missing after the limit was lowered. Nothing is allocated beyond what the block's
 * own bytes imply: a string's length is checked against the block before it is read.
 *
 * A header list over maxHeaderListSize (RFC 7541 4.1 sizes: name + value + 32 per field) is
 * still decoded to the end, so the dynamic table stays in step, but its fields are dropped and
 * a HeaderListTooLargeError (stream scope) is thrown after the block.
 */
import { DynamicTable, ENTRY_OVERHEAD } from './dynamic-table';
import { HeaderListTooLargeError, HpackError } from './errors';
import { huffmanDecode, maxHuffmanDecodedLength } from './huffman';
import { HpackReader } from './hpack-integer';
import { INITIAL_SETTINGS } from './settings';
import { STATIC_COUNT, STATIC_NAMES, STATIC_VALUES } from './static-table';

export interface HpackDecoderOptions {
  /** The SETTINGS_HEADER_TABLE_SIZE this endpoint advertises (default 4096, the protocol's initial value). */
  maxTableSize?: number;
  /** The SETTINGS_MAX_HEADER_LIST_SIZE this endpoint enforces (default 65536). */
  maxHeaderListSize?: number;
}

export const DEFAULT_MAX_HEADER_LIST_SIZE = 65536;

/** Where Huffman strings are decoded, shared by every decoder (decoding is synchronous); it grows to the longest string seen. */
let scratch = Buffer.allocUnsafe(1024);

export class HpackDecoder {
  private readonly table: DynamicTable;
  /** The most the peer's encoder may set the table to (our SETTINGS_HEADER_TABLE_SIZE). */
  private limit: number;
  /** The limit was lowered below the table's size: the next block must start with a size update. */
  private updateRequired = false;
  private maxListSize: number;
  private readonly reader = new HpackReader();
  /** Names of the fields of the last block sent as never-indexed (RFC 7541 6.2.3), usually empty. */
  readonly neverIndexed: string[] = [];

  constructor(opts: HpackDecoderOptions = {}) {
    this.limit = opts.maxTableSize ?? INITIAL_SETTINGS.headerTableSize;
    this.maxListSize = opts.maxHeaderListSize ?? DEFAULT_MAX_HEADER_LIST_SIZE;
    this.table = new DynamicTable(this.limit);
  }

  /** Our SETTINGS_HEADER_TABLE_SIZE took effect (the peer acknowledged it). */
  setMaxTableSize(limit: number): void {
    this.limit = limit;
    if (limit < this.table.maxSize) this.updateRequired = true;
  }

  setMaxHeaderListSize(size: number): void {
    this.maxListSize = size;
  }

  get tableSize(): number { return this.table.size; }
  get tableMaxSize(): number { return this.table.maxSize; }
  /** The dynamic table, newest first (tests and diagnostics). */
  tableEntries(): [string, string][] { return this.table.entries(); }

  /** Decodes one complete header block, appending to `out` (a new array by default). */
  decode(block: Buffer, out: string[] = []): string[] {
    const r = this.reader;
    r.reset(block);
    if (this.neverIndexed.length !== 0) this.neverIndexed.length = 0;
    let listSize = 0;
    let fields = 0;
    const base = out.length;
    while (r.pos < r.end) {
      const b = block[r.pos]!;
      let name: string;
      let value: string;
      if ((b & 0x80) !== 0) { // indexed field (6.1)
        const idx = r.integer(7);
        if (idx === 0) throw new HpackError('invalid-index', 'index 0');
        this.checkUpdate(fields);
        if (idx <= STATIC_COUNT) { name = STATIC_NAMES[idx]!; value = STATIC_VALUES[idx]!; } else {
          const i = this.dynamicIndex(idx);
          name = this.table.name(i);
          value = this.table.value(i);
        }
      } else if ((b & 0x40) !== 0) { // literal with incremental indexing (6.2.1)
        this.checkUpdate(fields);
        name = this.literalName(6);
        value = this.string();
        this.table.add(name, value);
      } else if ((b & 0x20) !== 0) { // dynamic table size update (6.3)
        if (fields > 0) throw new HpackError('table-size-update-position', 'dynamic table size update after the first field');
        const size = r.integer(5);
        if (size > this.limit) throw new HpackError('table-size-update-over-limit', `dynamic table size update to ${size} over the limit ${this.limit}`);
        this.table.setMaxSize(size);
        this.updateRequired = false;
        continue;
      } else { // literal without indexing (0000, 6.2.2) or never indexed (0001, 6.2.3)
        this.checkUpdate(fields);
        name = this.literalName(4);
        value = this.string();
        if ((b & 0x10) !== 0) this.neverIndexed.push(name);
      }
      fields++;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize <= this.maxListSize) out.push(name, value);
    }
    if (listSize > this.maxListSize) {
      out.length = base;
      throw new HeaderListTooLargeError(listSize, this.maxListSize);
    }
    return out;
  }

  private checkUpdate(fields: number): void {
    if (fields === 0 && this.updateRequired) {
      throw new HpackError('table-size-update-missing', `the header table size limit was lowered to ${this.limit}, and the block does not start with a size update`);
    }
  }

  /** The table position (0 = newest) of HPACK index `idx` > 61. */
  private dynamicIndex(idx: number): number {
    const i = idx - STATIC_COUNT - 1;
    if (i >= this.table.length) throw new HpackError('invalid-index', `index ${idx} beyond the dynamic table (${this.table.length} entries)`);
    return i;
  }

  private literalName(prefixBits: number): string {
    const idx = this.reader.integer(prefixBits);
    if (idx === 0) return this.string();
    if (idx <= STATIC_COUNT) return STATIC_NAMES[idx]!;
    return this.table.name(this.dynamicIndex(idx));
  }

  /** A string literal (5.2). */
  private string(): string {
    const r = this.reader;
    if (r.pos >= r.end) throw new HpackError('truncated', 'header block ends before a string');
    const huffman = (r.buf[r.pos]! & 0x80) !== 0;
    const len = r.integer(7);
    if (len > r.end - r.pos) throw new HpackError('string-length', `string of ${len} bytes, only ${r.end - r.pos} left in the block`);
    const start = r.pos;
    r.pos += len;
    if (!huffman) return r.buf.toString('latin1', start, start + len);
    const need = maxHuffmanDecodedLength(len);
    if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
    const n = huffmanDecode(r.buf, start, start + len, scratch);
    return scratch.toString('latin1', 0, n);
  }
}

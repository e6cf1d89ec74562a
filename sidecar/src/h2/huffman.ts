/**
 * HPACK Huffman coding (RFC 7541 5.2), built at load from the canonical code in huffman-table.ts.
 *
 * Decoding walks a state machine four bits at a time: a state is an internal node of the code
 * tree (256 of them; 0 is the root), and for each state and nibble a table gives the next state,
 * the symbol completed on the way (at most one: every code is 5 bits or longer) and whether the
 * walk completed EOS, which a string must not hold. A string may end only at the root or after
 * at most 7 bits of the EOS code's prefix (all ones); anything else is bad padding.
 */
import { HUFFMAN_CODES, EOS } from './huffman-table';
import { HpackError } from './errors';

const CODE = new Uint32Array(257);
const BITS = new Uint8Array(257);
for (let s = 0; s <= EOS; s++) { CODE[s] = HUFFMAN_CODES[s]!.code; BITS[s] = HUFFMAN_CODES[s]!.bits; }

/** Per state and nibble: next state (bits 0-7), symbol + 1 (bits 8-16, 0 = none), EOS seen (bit 17). */
const STEP = new Int32Array(256 * 16);
const EMIT_SHIFT = 8;
const FAILED = 1 << 17;
/** 1 for a state where a string may end: the root, or 1..7 one-bits into EOS's code. */
const ACCEPT = new Uint8Array(256);

(() => {
  // The code tree: CHILD[node*2+bit] is an internal node (>= 0) or -(symbol + 1).
  const child = new Int32Array(256 * 2).fill(0x7fffffff);
  let nodes = 1;
  for (let s = 0; s <= EOS; s++) {
    let node = 0;
    for (let k = BITS[s]! - 1; k >= 0; k--) {
      const slot = node * 2 + ((CODE[s]! >>> k) & 1);
      if (k === 0) { child[slot] = -(s + 1); break; }
      if (child[slot] === 0x7fffffff) child[slot] = nodes++;
      node = child[slot]!;
    }
  }
  if (nodes !== 256) throw new Error(`HPACK Huffman tree has ${nodes} internal nodes, expected 256`);
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let emit = 0;
      let failed = 0;
      for (let k = 3; k >= 0; k--) {
        const next = child[node * 2 + ((nibble >> k) & 1)]!;
        if (next >= 0) { node = next; continue; }
        const sym = -next - 1;
        if (sym === EOS) failed = FAILED;
        else emit = sym + 1;
        node = 0;
      }
      STEP[state * 16 + nibble] = node | (emit << EMIT_SHIFT) | failed;
    }
  }
  ACCEPT[0] = 1;
  let node = 0;
  for (let depth = 1; depth <= 7; depth++) { node = child[node * 2 + 1]!; ACCEPT[node] = 1; }
})();

/**
 * Decodes `src[start, end)` into `out` from index 0 and returns the decoded length. `out` must
 * hold at least maxHuffmanDecodedLength(end - start) bytes. Throws HpackError on EOS or bad padding.
 */
export function huffmanDecode(src: Buffer, start: number, end: number, out: Buffer): number {
  let state = 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    const b = src[i]!;
    let e = STEP[(state << 4) | (b >> 4)]!;
    if ((e & FAILED) !== 0) throw new HpackError('huffman-eos', 'EOS in a Huffman-coded string');
    if (e >> EMIT_SHIFT !== 0) out[n++] = (e >> EMIT_SHIFT) - 1;
    state = e & 0xff;
    e = STEP[(state << 4) | (b & 0x0f)]!;
    if ((e & FAILED) !== 0) throw new HpackError('huffman-eos', 'EOS in a Huffman-coded string');
    if (e >> EMIT_SHIFT !== 0) out[n++] = (e >> EMIT_SHIFT) - 1;
    state = e & 0xff;
  }
  if (ACCEPT[state] === 0) throw new HpackError('huffman-padding', 'Huffman padding longer than 7 bits or not the EOS prefix');
  return n;
}

/** The most bytes `encodedLength` Huffman-coded bytes can decode to (the shortest code is 5 bits). */
export function maxHuffmanDecodedLength(encodedLength: number): number {
  return Math.floor((encodedLength * 8) / 5);
}

/** The Huffman-coded length in bytes of `s`, a byte string (one char per byte, latin1). */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += BITS[s.charCodeAt(i) & 0xff]!;
  return (bits + 7) >>> 3;
}

/** Writes `s` (latin1) Huffman-coded at `out[pos]`, padded with ones; returns the position after it. */
export function huffmanEncode(s: string, out: Buffer, pos: number): number {
  let acc = 0; // the pending bits, fewer than 8 between symbols
  let pending = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let code = CODE[sym]!;
    let bits = BITS[sym]!;
    if (bits > 24) { // keep acc within 31 bits: the top bits first
      const high = bits - 16;
      acc = (acc << high) | (code >>> 16);
      pending += high;
      while (pending >= 8) { pending -= 8; out[pos++] = (acc >>> pending) & 0xff; }
      acc &= (1 << pending) - 1;
      code &= 0xffff;
      bits = 16;
    }
    acc = (acc << bits) | code;
    pending += bits;
    while (pending >= 8) { pending -= 8; out[pos++] = (acc >>> pending) & 0xff; }
    acc &= (1 << pending) - 1;
  }
  if (pending > 0) out[pos++] = ((acc << (8 - pending)) | (0xff >>> pending)) & 0xff;
  return pos;
}

/**
 * The HPACK Huffman code (RFC 7541 Appendix B), one source of truth for the HPACK codec
 * (huffman.ts) and the listener's field checker (listener/hpack-field-check.ts). The code is
 * canonical, so the code lengths alone define it; the codes and the canonical decoding tables are
 * derived from them at load.
 */

/** Canonical HPACK Huffman code: the code length of symbols 0..256 (RFC 7541 Appendix B; 256 is EOS). */
export const CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

export const EOS = 256;
export const MAX_LEN = 30;
/** Canonical decoding tables: per code length, the first code, how many codes, and where their symbols start in SYMBOLS. */
export const FIRST = new Int32Array(MAX_LEN + 2);
export const COUNT = new Int32Array(MAX_LEN + 2);
export const OFFSET = new Int32Array(MAX_LEN + 2);
export const SYMBOLS = new Uint16Array(257);
/** The (code, length) of each symbol (the codes are canonical: assigned in order of length, then symbol). */
export const HUFFMAN_CODES: readonly { code: number; bits: number }[] = (() => {
  for (const l of CODE_LENGTHS) COUNT[l]!++;
  let code = 0;
  let off = 0;
  for (let l = 1; l <= MAX_LEN; l++) {
    code = (code + COUNT[l - 1]!) << 1;
    FIRST[l] = code;
    OFFSET[l] = off;
    off += COUNT[l]!;
  }
  // Symbols in canonical order: by code length, then by symbol value.
  const next = OFFSET.slice();
  const codes: { code: number; bits: number }[] = [];
  const assigned = FIRST.slice();
  for (let l = 1; l <= MAX_LEN; l++) {
    for (let s = 0; s <= EOS; s++) {
      if (CODE_LENGTHS[s] !== l) continue;
      SYMBOLS[next[l]!++] = s;
      codes[s] = { code: assigned[l]!++, bits: l };
    }
  }
  return codes;
})();

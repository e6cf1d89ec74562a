/** HPACK Huffman coding (RFC 7541 5.2, Appendix B): the RFC's strings, every byte value, padding. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength, maxHuffmanDecodedLength } from '../../../sidecar/src/h2/huffman';
import { HUFFMAN_CODES } from '../../../sidecar/src/h2/huffman-table';
import { HpackError } from '../../../sidecar/src/h2/errors';
import { hex } from '../../support/rfc7541-vectors';

const encode = (s: string): Buffer => {
  const out = Buffer.alloc(huffmanEncodedLength(s));
  assert.equal(huffmanEncode(s, out, 0), out.length);
  return out;
};
const decode = (b: Buffer): string => {
  const out = Buffer.alloc(maxHuffmanDecodedLength(b.length));
  return out.toString('latin1', 0, huffmanDecode(b, 0, b.length, out));
};

/** Strings of RFC 7541 C.4 and C.6 and their Huffman codes. */
const RFC_STRINGS: [string, string][] = [
  ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
  ['no-cache', 'a8eb 1064 9cbf'],
  ['custom-key', '25a8 49e9 5ba9 7d7f'],
  ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
  ['302', '6402'],
  ['307', '640e ff'],
  ['private', 'aec3 771a 4b'],
  ['Mon, 21 Oct 2013 20:13:21 GMT', 'd07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff'],
  ['https://www.example.com', '9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3'],
  ['gzip', '9bd9 ab'],
  ['foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1', '94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07'],
];

for (const [s, code] of RFC_STRINGS) {
  test(`RFC 7541 string ${JSON.stringify(s)} encodes and decodes`, () => {
    assert.equal(encode(s).toString('hex'), hex(code).toString('hex'));
    assert.equal(huffmanEncodedLength(s), hex(code).length);
    assert.equal(decode(hex(code)), s);
  });
}

test('every byte value round-trips, alone and all 256 in one string, at every bit alignment', () => {
  for (let b = 0; b < 256; b++) {
    const s = String.fromCharCode(b);
    assert.equal(decode(encode(s)), s, `byte ${b}`);
  }
  const all = Array.from({ length: 256 }, (_, b) => String.fromCharCode(b)).join('');
  for (let shift = 0; shift < 8; shift++) {
    const s = 'a'.repeat(shift) + all + all.split('').reverse().join('');
    assert.equal(decode(encode(s)), s);
  }
});

test('the code matches RFC 7541 Appendix B at its corners', () => {
  assert.deepEqual(HUFFMAN_CODES[32], { code: 0x14, bits: 6 }); // ' '
  assert.deepEqual(HUFFMAN_CODES[255], { code: 0x3ffffee, bits: 26 });
  assert.deepEqual(HUFFMAN_CODES[256], { code: 0x3fffffff, bits: 30 }); // EOS
});

test('a string may end with up to 7 bits of the EOS prefix, not 8, and not with zeros', () => {
  assert.equal(decode(hex('1f')), 'a'); // 00011 + 111
  assert.equal(decode(hex('')), '');
  for (const [bytes, reason] of [['ff', 'huffman-padding'], ['1fff', 'huffman-padding'], ['18', 'huffman-padding'], ['ffff fffc', 'huffman-eos']] as const) {
    assert.throws(() => decode(hex(bytes)), (e: unknown) => e instanceof HpackError && e.reason === reason, bytes);
  }
});

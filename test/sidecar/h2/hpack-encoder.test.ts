/**
 * The HPACK encoder: RFC 7541 C.3 and C.4 byte for byte (the RFC's encoder indexes every field
 * and Huffman-codes every string in C.4, which is also what this one chooses there), never-
 * indexed sensitive fields, the table size updates it announces, and a seeded randomized round
 * trip against the decoder with table size changes, checking both tables stay equal.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HpackDecoder } from '../../../sidecar/src/h2/hpack-decoder';
import { HpackEncoder, SENSITIVE_HEADERS } from '../../../sidecar/src/h2/hpack-encoder';
import { C3, C4, hex, REQUEST_TABLES, REQUESTS } from '../../support/rfc7541-vectors';
import { mulberry32 } from '../../support/prng';

const flat = (fields: [string, string][]): string[] => fields.flat();

for (const [name, blocks, huffman] of [['C.3 requests without Huffman coding', C3, false], ['C.4 requests with Huffman coding', C4, true]] as const) {
  test(`${name}: the RFC's bytes, and the RFC's table after each request`, () => {
    const e = new HpackEncoder({ huffman });
    REQUESTS.forEach((fields, i) => {
      assert.equal(e.encode(flat(fields)).toString('hex'), hex(blocks[i]!).toString('hex'), `request ${i + 1}`);
      assert.deepEqual(e.tableEntries(), REQUEST_TABLES[i]![0]);
      assert.equal(e.tableSize, REQUEST_TABLES[i]![1]);
    });
  });
}

describe('sensitive fields', () => {
  test('authorization, cookie, proxy-authorization and set-cookie are never indexed, with names from the static table', () => {
    const e = new HpackEncoder();
    const d = new HpackDecoder();
    const fields = ['authorization', 'Bearer abc', 'cookie', 'a=b', 'proxy-authorization', 'Basic x', 'set-cookie', 's=1'];
    const block = e.encode(fields);
    // 0001xxxx with the static name index: authorization 23, cookie 32, proxy-authorization 49, set-cookie 55.
    const firstBytes: number[] = [];
    let pos = 0;
    for (const idx of [23, 32, 49, 55]) {
      firstBytes.push(block[pos]!);
      assert.equal(block[pos], 0x1f, `never-indexed, 4-bit prefix full for index ${idx}`);
      assert.equal(block[pos + 1], idx - 15);
      pos += 2;
      const len = block[pos]! & 0x7f;
      pos += 1 + len;
    }
    assert.equal(pos, block.length);
    assert.deepEqual(d.decode(block), fields);
    assert.deepEqual(d.neverIndexed, ['authorization', 'cookie', 'proxy-authorization', 'set-cookie']);
    assert.equal(e.tableSize, 0, 'nothing sensitive entered the table');
    assert.equal(SENSITIVE_HEADERS.size, 4);
    // Sent again: still literal, never by index.
    assert.equal(e.encode(fields).toString('hex'), block.toString('hex'));
  });

  test('a sensitive field whose value matches the static table (authorization: "") is still a never-indexed literal, named by index', () => {
    const block = new HpackEncoder().encode(['authorization', '']);
    assert.equal(block.toString('hex'), '1f0800');
    const d = new HpackDecoder();
    assert.deepEqual(d.decode(block), ['authorization', '']);
    assert.deepEqual(d.neverIndexed, ['authorization']);
  });

  test('names the caller marks (what the decoder saw never-indexed) are forwarded never-indexed', () => {
    const up = new HpackDecoder();
    const peer = new HpackEncoder();
    const d = new HpackDecoder();
    const incoming = up.decode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74')); // C.2.3: password: secret, never indexed
    const block = peer.encode(incoming, up.neverIndexed);
    assert.equal(block[0]! & 0xf0, 0x10);
    assert.deepEqual(d.decode(block), ['password', 'secret']);
    assert.deepEqual(d.neverIndexed, ['password']);
    assert.equal(peer.tableSize, 0);
  });
});

describe('the dynamic table: bounded, or none', () => {
  test('with maxTableSize 0 there is no dynamic table: literals without indexing, static indexes still used', () => {
    const e = new HpackEncoder({ maxTableSize: 0, huffman: false });
    const d = new HpackDecoder();
    const fields = [':method', 'GET', ':authority', 'www.example.com', 'x-a', 'b'];
    for (let i = 0; i < 2; i++) {
      const block = e.encode(fields);
      assert.equal(block.toString('hex'), (i === 0 ? '20' : '') + '82' + '01' + '0f' + Buffer.from('www.example.com').toString('hex') + '00' + '03' + Buffer.from('x-a').toString('hex') + '01' + '62');
      assert.deepEqual(d.decode(block), fields);
    }
    assert.equal(e.tableSize, 0);
    assert.equal(d.tableMaxSize, 0, 'the first block told the peer (size update to 0), so a lower limit later needs no update');
  });

  test('a smaller own table is announced in the first block; the peer lowering its limit is announced, smallest first', () => {
    const e = new HpackEncoder({ maxTableSize: 256 });
    const d = new HpackDecoder();
    const first = e.encode([':method', 'GET']);
    assert.equal(first.toString('hex'), '3fe101' + '82'); // size update to 256, then :method GET
    d.decode(first);
    assert.equal(d.tableMaxSize, 256);
    d.setMaxTableSize(0);
    e.setPeerMaxTableSize(0);
    d.setMaxTableSize(100);
    e.setPeerMaxTableSize(100);
    const next = e.encode([':method', 'GET']);
    assert.equal(next.toString('hex'), '20' + '3f45' + '82'); // to 0, then to 100
    d.decode(next);
    assert.equal(d.tableMaxSize, 100);
    assert.equal(e.tableMaxSize, 100);
    assert.equal(e.encode([':method', 'GET']).toString('hex'), '82', 'announced once');
  });

  test('values that change per message (content-length, grpc-timeout, ...) are not indexed', () => {
    const e = new HpackEncoder({ huffman: false });
    const block = e.encode(['content-length', '12', 'grpc-timeout', '5S']);
    assert.equal(block[0], 0x0f, 'literal without indexing, static name content-length (28)');
    assert.equal(e.tableSize, 0);
  });

  test('random hex ids (traceparent, x-request-id, b3) go without Huffman, other values with it when shorter', () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const e = new HpackEncoder();
    const block = e.encode(['traceparent', tp, 'x-custom', 'aaaaaaaaaaaa']);
    // traceparent: literal without indexing, new name (0x00), name length, name, then the value's length byte
    const nameLen = block[1]! & 0x7f;
    const valueLenByte = block[2 + nameLen]!;
    assert.equal(valueLenByte & 0x80, 0, 'the traceparent value is not Huffman-coded');
    assert.equal(valueLenByte & 0x7f, tp.length);
    const d = new HpackDecoder();
    assert.deepEqual(d.decode(block), ['traceparent', tp, 'x-custom', 'aaaaaaaaaaaa']);
    const huff = new HpackEncoder().encode(['x-custom', tp]);
    assert.ok(huff.length < block.length - 10, 'the same value under another name is Huffman-coded (shorter)');
  });
});

test('a block handed out is never written again, across slabs and blocks larger than a slab', () => {
  const e = new HpackEncoder();
  const d = new HpackDecoder({ maxHeaderListSize: 1 << 20 });
  const kept: [Buffer, string, string[]][] = [];
  for (let i = 0; i < 400; i++) {
    const fields = ['x-n', String(i), 'x-big', 'v'.repeat(i % 50 === 0 ? 40000 : i)];
    const block = e.encode(fields);
    kept.push([block, block.toString('hex'), fields]);
  }
  for (const [block, bytes, fields] of kept) {
    assert.equal(block.toString('hex'), bytes);
    assert.deepEqual(d.decode(block), fields);
  }
});

const VOCAB_NAMES = [':method', ':path', ':authority', ':status', 'content-type', 'grpc-status', 'te', 'user-agent', 'authorization', 'cookie', 'set-cookie', 'x-request-id', 'accept-encoding', 'content-length', 'x-custom'];
const VOCAB_VALUES = ['GET', 'POST', '/', '/index.html', '200', '404', 'application/grpc', 'trailers', 'gzip, deflate', '0', ''];

test('randomized round trip (seeded): encoder to decoder over many header lists with table size changes, both tables equal', () => {
  const rnd = mulberry32(0x5eed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const bytes = (n: number): string => Array.from({ length: n }, () => String.fromCharCode(Math.floor(rnd() * 256))).join('');
  const word = (n: number): string => Array.from({ length: n }, () => String.fromCharCode(97 + Math.floor(rnd() * 26))).join('');
  let blocks = 0;
  let indexedBytes = 0;
  for (let conn = 0; conn < 40; conn++) {
    const e = new HpackEncoder({ maxTableSize: pick([0, 64, 256, 4096, 8192]), huffman: rnd() < 0.7 });
    const d = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 });
    for (let msg = 0; msg < 50; msg++) {
      if (rnd() < 0.1) { // the decoder's side changes SETTINGS_HEADER_TABLE_SIZE, and the peer learns of it
        const limit = pick([0, 50, 100, 256, 4096, 8192]);
        d.setMaxTableSize(limit);
        e.setPeerMaxTableSize(limit);
      }
      const fields: string[] = [];
      const n = 1 + Math.floor(rnd() * 12);
      for (let i = 0; i < n; i++) {
        const r = rnd();
        const name = r < 0.5 ? pick(VOCAB_NAMES) : r < 0.8 ? 'x-' + word(1 + Math.floor(rnd() * 10)) : word(1 + Math.floor(rnd() * 30));
        const v = rnd();
        const value = v < 0.4 ? pick(VOCAB_VALUES) : v < 0.7 ? word(Math.floor(rnd() * 40)) : bytes(Math.floor(rnd() * (rnd() < 0.1 ? 400 : 30)));
        fields.push(name, value);
      }
      const block = e.encode(fields);
      indexedBytes += block.length;
      assert.deepEqual(d.decode(block), fields, `connection ${conn}, message ${msg}`);
      assert.deepEqual(d.tableEntries(), e.tableEntries(), `tables after connection ${conn}, message ${msg}`);
      assert.equal(d.tableSize, e.tableSize);
      assert.ok(e.tableSize <= e.tableMaxSize);
      blocks++;
    }
  }
  assert.equal(blocks, 2000);
  assert.ok(indexedBytes > 0);
});

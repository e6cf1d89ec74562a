/**
 * The HPACK decoder against RFC 7541 Appendix C (vectors typed from the RFC's text): every
 * example, with one decoder per section so the dynamic table carries across requests and
 * responses, and the table's contents and size checked after each block. Then malformed input,
 * table by table, each giving its typed error; and header list size enforcement.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HpackDecoder } from '../../../sidecar/src/h2/hpack-decoder';
import { H2_ERROR, H2Error, HeaderListTooLargeError, HpackError } from '../../../sidecar/src/h2/errors';
import type { HpackErrorReason } from '../../../sidecar/src/h2/errors';
import { HpackReader, writeInteger } from '../../../sidecar/src/h2/hpack-integer';
import { mulberry32 } from '../../support/prng';
import { C3, C4, C5, C6, hex, REQUEST_TABLES, REQUESTS, RESPONSE_TABLES, RESPONSES } from '../../support/rfc7541-vectors';

const pairs = (flat: string[]): [string, string][] => flat.flatMap((v, i) => (i % 2 === 0 ? [[v, flat[i + 1]!] as [string, string]] : []));

describe('C.1 integer representation', () => {
  const cases: [string, number, string][] = [
    ['C.1.1 10 with a 5-bit prefix', 5, '0a'],
    ['C.1.2 1337 with a 5-bit prefix', 5, '1f9a0a'],
    ['C.1.3 42 at an octet boundary (8-bit prefix)', 8, '2a'],
  ];
  const values = [10, 1337, 42];
  cases.forEach(([name, prefix, bytes], i) => {
    test(name, () => {
      const r = new HpackReader();
      r.reset(hex(bytes));
      assert.equal(r.integer(prefix), values[i]);
      assert.equal(r.pos, hex(bytes).length);
      const out = Buffer.alloc(8);
      assert.equal(out.subarray(0, writeInteger(out, 0, values[i]!, prefix, 0)).toString('hex'), bytes);
    });
  });
  test('the largest integer, 2^32 - 1, round-trips', () => {
    const out = Buffer.alloc(8);
    const n = writeInteger(out, 0, 0xffffffff, 5, 0);
    const r = new HpackReader();
    r.reset(out.subarray(0, n));
    assert.equal(r.integer(5), 0xffffffff);
  });
});

describe('C.2 header field representation', () => {
  const cases: [string, string, [string, string][], [string, string][], string[]][] = [
    ['C.2.1 literal with indexing', '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572',
      [['custom-key', 'custom-header']], [['custom-key', 'custom-header']], []],
    ['C.2.2 literal without indexing', '040c 2f73 616d 706c 652f 7061 7468', [[':path', '/sample/path']], [], []],
    ['C.2.3 literal never indexed', '1008 7061 7373 776f 7264 0673 6563 7265 74', [['password', 'secret']], [], ['password']],
    ['C.2.4 indexed field', '82', [[':method', 'GET']], [], []],
  ];
  for (const [name, block, fields, table, never] of cases) {
    test(name, () => {
      const d = new HpackDecoder();
      assert.deepEqual(pairs(d.decode(hex(block))), fields);
      assert.deepEqual(d.tableEntries(), table);
      assert.equal(d.tableSize, table.reduce((s, [n, v]) => s + n.length + v.length + 32, 0));
      assert.deepEqual(d.neverIndexed, never);
    });
  }
});

const sections: [string, string[], [string, string][][], [[string, string][], number][], number][] = [
  ['C.3 requests without Huffman coding', C3, REQUESTS, REQUEST_TABLES, 4096],
  ['C.4 requests with Huffman coding', C4, REQUESTS, REQUEST_TABLES, 4096],
  ['C.5 responses without Huffman coding (table size 256, evictions)', C5, RESPONSES, RESPONSE_TABLES, 256],
  ['C.6 responses with Huffman coding (table size 256, evictions)', C6, RESPONSES, RESPONSE_TABLES, 256],
];
for (const [name, blocks, lists, tables, tableSize] of sections) {
  test(`${name}: one decoder across the three blocks, the table after each`, () => {
    const d = new HpackDecoder({ maxTableSize: tableSize });
    blocks.forEach((block, i) => {
      assert.deepEqual(pairs(d.decode(hex(block))), lists[i], `block ${i + 1}`);
      assert.deepEqual(d.tableEntries(), tables[i]![0], `table after block ${i + 1}`);
      assert.equal(d.tableSize, tables[i]![1], `table size after block ${i + 1}`);
    });
  });
}

describe('malformed blocks: a typed COMPRESSION_ERROR of the connection each', () => {
  const cases: [string, string, HpackErrorReason, ((d: HpackDecoder) => void)?][] = [
    ['a block ending inside an integer', '1f', 'truncated'],
    ['a block ending before a value', '41', 'truncated'],
    ['a block ending before a name', '40', 'truncated'],
    ['an integer over 2^32 - 1', 'ff ffff ffff 0f', 'integer-overflow'],
    ['an integer with endless continuation bytes', 'ff 8080 8080 8080 8001', 'integer-overflow'],
    ['index 0', '80', 'invalid-index'],
    ['an index past the empty dynamic table', 'be', 'invalid-index'],
    ['a name index past the dynamic table', '7e 0161', 'invalid-index'],
    ['a name index past the dynamic table (never indexed)', '1f 2f 0161', 'invalid-index'],
    ['a string longer than the block', '40 0a 61', 'string-length'],
    ['a Huffman string longer than the block', '40 8a 1f', 'string-length'],
    ['a string of 2^32 - 2 bytes (refused before any allocation)', '40 ff ff ff ff 0f', 'string-length'],
    ['EOS in a Huffman string', '40 84 ffff fffc 0161', 'huffman-eos'],
    ['8 bits of padding', '40 81 ff 0161', 'huffman-padding'],
    ['padding that is not the EOS prefix', '40 81 18 0161', 'huffman-padding'],
    ['a size update over the limit (4097 > 4096)', '3f e21f', 'table-size-update-over-limit'],
    ['a size update after a field', '82 20', 'table-size-update-position'],
    ['no size update after the limit was lowered', '82', 'table-size-update-missing', (d) => d.setMaxTableSize(100)],
  ];
  for (const [name, block, reason, setup] of cases) {
    test(name, () => {
      const d = new HpackDecoder();
      setup?.(d);
      assert.throws(() => d.decode(hex(block)), (err: unknown) => {
        assert.ok(err instanceof HpackError, `an HpackError, got ${String(err)}`);
        assert.equal(err.reason, reason);
        assert.equal(err.h2Code, H2_ERROR.COMPRESSION_ERROR);
        assert.equal(err.scope, 'connection');
        assert.equal(err.code, 'SKEIN_ERR_PROTOCOL');
        return true;
      });
    });
  }

  test('a size update at the start of a block is allowed, twice, and the lowered limit is then met', () => {
    const d = new HpackDecoder();
    d.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'));
    assert.equal(d.tableSize, 55);
    d.setMaxTableSize(100);
    assert.deepEqual(pairs(d.decode(hex('20 3f45 82'))), [[':method', 'GET']]); // to 0 (evicts), then to 100
    assert.equal(d.tableSize, 0);
    assert.equal(d.tableMaxSize, 100);
    assert.deepEqual(pairs(d.decode(hex('82'))), [[':method', 'GET']]);
  });

  test('random bytes only ever raise H2Errors, never another exception', () => {
    const rnd = mulberry32(7541);
    let errors = 0;
    for (let n = 0; n < 20000; n++) {
      const d = new HpackDecoder({ maxHeaderListSize: 4096 });
      const block = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256)));
      try { d.decode(block); } catch (err) {
        assert.ok(err instanceof H2Error, `${block.toString('hex')}: ${String(err)}`);
        errors++;
      }
    }
    assert.ok(errors > 1000, `most random blocks are malformed (${errors})`);
  });
});

describe('header list size (SETTINGS_MAX_HEADER_LIST_SIZE)', () => {
  test('a list over the limit is a stream-scoped HeaderListTooLargeError, and the table stays in step', () => {
    const d = new HpackDecoder({ maxHeaderListSize: 100 });
    // custom-key: custom-header (55) indexed, then a 60-byte literal without indexing: 55 + 32 + 30 + 30 > 100.
    const big = Buffer.concat([hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'), hex('00 1e'), Buffer.alloc(30, 'a'), hex('1e'), Buffer.alloc(30, 'b')]);
    const out: string[] = ['kept'];
    assert.throws(() => d.decode(big, out), (err: unknown) => {
      assert.ok(err instanceof HeaderListTooLargeError);
      assert.equal(err.scope, 'stream');
      assert.equal(err.limit, 100);
      assert.ok(err.size > 100);
      return true;
    });
    assert.deepEqual(out, ['kept'], 'nothing of the refused list is left in the output');
    assert.deepEqual(d.tableEntries(), [['custom-key', 'custom-header']]);
    assert.deepEqual(pairs(d.decode(hex('be'))), [['custom-key', 'custom-header']], 'the next block decodes against the same table');
  });

  test('a list at the limit passes', () => {
    const d = new HpackDecoder({ maxHeaderListSize: 55 });
    assert.deepEqual(pairs(d.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'))), [['custom-key', 'custom-header']]);
  });
});

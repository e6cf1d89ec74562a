/** Frame writers (RFC 9113 6): their bytes, header + payload slices for writev, HEADERS split into CONTINUATION. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  dataFrameHeader, frameHeader, goawayFrame, headersFrames, pingFrame, rstStreamFrame, settingsAckFrame, settingsFrame, windowUpdateFrame,
} from '../../../sidecar/src/h2/frame-writer';
import { FrameParser } from '../../../sidecar/src/h2/frame-parser';
import type { FrameHandler } from '../../../sidecar/src/h2/frame-parser';
import { SETTING } from '../../../sidecar/src/h2/settings';

const hexOf = (bufs: Buffer | Buffer[]): string => (Array.isArray(bufs) ? Buffer.concat(bufs) : bufs).toString('hex');
const h = (s: string): string => s.replace(/\s/g, '');

describe('bytes of each frame', () => {
  const cases: [string, () => Buffer | Buffer[], string][] = [
    ['a frame header', () => frameHeader(0x123456, 0xfa, 0x5a, 0x7fffffff), '123456 fa 5a 7fffffff'],
    ['DATA header, END_STREAM', () => dataFrameHeader(3, 5, true), '000005 00 01 00000003'],
    ['DATA header', () => dataFrameHeader(1, 0, false), '000000 00 00 00000001'],
    ['HEADERS with END_STREAM and END_HEADERS', () => headersFrames(1, Buffer.from('8286', 'hex'), true), '000002 01 05 00000001 8286'],
    ['RST_STREAM CANCEL', () => rstStreamFrame(5, 8), '000004 03 00 00000005 00000008'],
    ['SETTINGS', () => settingsFrame([SETTING.ENABLE_PUSH, 0, SETTING.INITIAL_WINDOW_SIZE, 0x7fffffff]), '00000c 04 00 00000000 0002 00000000 0004 7fffffff'],
    ['empty SETTINGS', () => settingsFrame([]), '000000 04 00 00000000'],
    ['SETTINGS ACK', () => settingsAckFrame(), '000000 04 01 00000000'],
    ['PING', () => pingFrame(Buffer.from('0102030405060708', 'hex'), false), '000008 06 00 00000000 0102030405060708'],
    ['PING ACK', () => pingFrame(Buffer.from('0102030405060708', 'hex'), true), '000008 06 01 00000000 0102030405060708'],
    ['GOAWAY', () => goawayFrame(7, 0), '000008 07 00 00000000 00000007 00000000'],
    ['GOAWAY with debug data', () => goawayFrame(0x7fffffff, 11, Buffer.from('calm')), '00000c 07 00 00000000 7fffffff 0000000b 63616c6d'],
    ['WINDOW_UPDATE', () => windowUpdateFrame(0, 65536), '000004 08 00 00000000 00010000'],
  ];
  for (const [name, write, bytes] of cases) test(name, () => assert.equal(hexOf(write()), h(bytes)));
});

describe('HEADERS and CONTINUATION', () => {
  test('a block longer than the peer\'s max frame size is split; only the last frame ends the headers, only the first ends the stream', () => {
    const block = Buffer.from(Array.from({ length: 40000 }, (_, i) => i & 0xff));
    const out = headersFrames(9, block, true, 16384);
    assert.equal(out.length, 6);
    const headers = [out[0]!, out[2]!, out[4]!].map((b) => b.toString('hex'));
    assert.deepEqual(headers, [h('004000 01 01 00000009'), h('004000 09 00 00000009'), h('001c40 09 04 00000009')]);
    assert.equal(out[1]!.buffer, block.buffer, 'fragments are views of the block');
    // What a parser makes of it: the same block.
    const got: Buffer[] = [];
    const ends: boolean[] = [];
    const handler = {
      onHeaders: (_s: number, f: Buffer) => { got.push(Buffer.from(f)); },
      onContinuation: (_s: number, f: Buffer, end: boolean) => { got.push(Buffer.from(f)); ends.push(end); },
      onSettings: () => undefined,
      onConnectionError: (e: Error) => assert.fail(e),
    } as unknown as FrameHandler;
    const p = new FrameParser(handler, { role: 'client' });
    p.push(settingsFrame([]));
    for (const b of out) p.push(b);
    assert.deepEqual(Buffer.concat(got), block);
    assert.deepEqual(ends, [false, true]);
  });

  test('an empty block is one HEADERS frame', () => {
    assert.equal(hexOf(headersFrames(1, Buffer.alloc(0), false)), h('000000 01 04 00000001'));
  });
});

test('arguments outside the protocol are RangeErrors', () => {
  assert.throws(() => windowUpdateFrame(1, 0), RangeError);
  assert.throws(() => windowUpdateFrame(1, 2 ** 31), RangeError);
  assert.throws(() => pingFrame(Buffer.alloc(7), false), RangeError);
  assert.throws(() => dataFrameHeader(0, 1, false), RangeError);
  assert.throws(() => headersFrames(0, Buffer.alloc(1), false), RangeError);
  assert.throws(() => headersFrames(1, Buffer.alloc(1), false, 0), RangeError);
  assert.throws(() => rstStreamFrame(0, 0), RangeError);
  assert.throws(() => frameHeader(2 ** 24, 0, 0, 1), RangeError);
  assert.throws(() => settingsFrame([1]), RangeError);
});

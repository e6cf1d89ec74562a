/**
 * The streaming frame parser (RFC 9113 4, 6): each frame type read, each error with its code and
 * scope, the preface, frames split across chunks at every byte, payloads as views of the chunk.
 * Frames here are built byte by byte (not with frame-writer.ts), so the two are checked apart.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameParser } from '../../../sidecar/src/h2/frame-parser';
import type { FrameHandler } from '../../../sidecar/src/h2/frame-parser';
import { CLIENT_PREFACE } from '../../../sidecar/src/h2/frame-types';
import { H2_ERROR } from '../../../sidecar/src/h2/errors';
import type { H2Error } from '../../../sidecar/src/h2/errors';
import { mulberry32 } from '../../support/prng';

type Event = (string | number | boolean | number[])[];

/** A handler that records every call as plain values (buffers as hex). */
class Recorder implements FrameHandler {
  readonly events: Event[] = [];
  readonly payloads: Buffer[] = [];
  onData(sid: number, payload: Buffer, endStream: boolean, flowLength: number): void { this.payloads.push(payload); this.events.push(['DATA', sid, payload.toString('hex'), endStream, flowLength]); }
  onHeaders(sid: number, fragment: Buffer, flags: number): void { this.payloads.push(fragment); this.events.push(['HEADERS', sid, fragment.toString('hex'), flags]); }
  onContinuation(sid: number, fragment: Buffer, endHeaders: boolean): void { this.events.push(['CONTINUATION', sid, fragment.toString('hex'), endHeaders]); }
  onPriority(sid: number, dependsOn: number, weight: number, exclusive: boolean): void { this.events.push(['PRIORITY', sid, dependsOn, weight, exclusive]); }
  onRstStream(sid: number, code: number): void { this.events.push(['RST_STREAM', sid, code]); }
  onSettings(ack: boolean, entries: readonly number[]): void { this.events.push(['SETTINGS', ack, [...entries]]); }
  onPing(ack: boolean, opaque: Buffer): void { this.events.push(['PING', ack, opaque.toString('hex')]); }
  onGoaway(last: number, code: number, debug: Buffer): void { this.events.push(['GOAWAY', last, code, debug.toString('latin1')]); }
  onWindowUpdate(sid: number, inc: number): void { this.events.push(['WINDOW_UPDATE', sid, inc]); }
  onStreamError(err: H2Error): void { this.events.push(['stream-error', err.streamId, err.h2Code, err.reason]); }
  onConnectionError(err: H2Error): void { this.events.push(['connection-error', err.h2Code, err.reason, err.scope]); }
}

/** One frame, by hand: 24-bit length, type, flags, 31-bit stream id (reserved bit as given). */
function frame(type: number, flags: number, sid: number, payload: Buffer | string = ''): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload.replace(/\s/g, ''), 'hex') : payload;
  const h = Buffer.alloc(9);
  h.writeUIntBE(p.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(sid >>> 0, 5);
  return Buffer.concat([h, p]);
}
const SETTINGS0 = frame(4, 0, 0);

function parse(chunks: Buffer[], role: 'server' | 'client' = 'client', maxFrameSize?: number): Recorder {
  const r = new Recorder();
  const p = new FrameParser(r, maxFrameSize === undefined ? { role } : { role, maxFrameSize });
  for (const c of chunks) p.push(c);
  return r;
}

describe('each frame type', () => {
  const cases: [string, Buffer, Event][] = [
    ['DATA', frame(0, 0x1, 1, 'aabb'), ['DATA', 1, 'aabb', true, 2]],
    ['DATA padded (flow control counts the padding)', frame(0, 0x8, 3, '02 aabb 0000'), ['DATA', 3, 'aabb', false, 5]],
    ['DATA padded, all padding', frame(0, 0x8, 3, '03 000000'), ['DATA', 3, '', false, 4]],
    ['DATA with the reserved bit set in the stream id', frame(0, 0, 0x80000005, 'cc'), ['DATA', 5, 'cc', false, 1]],
    ['HEADERS', frame(1, 0x5, 1, '8286'), ['HEADERS', 1, '8286', 0x5]],
    ['HEADERS padded with priority', frame(1, 0x4 | 0x8 | 0x20, 1, '01 80000003 0f 8286 00'), ['HEADERS', 1, '8286', 0x2c]],
    ['PRIORITY', frame(2, 0, 5, '80000003 ff'), ['PRIORITY', 5, 3, 256, true]],
    ['RST_STREAM', frame(3, 0, 7, '00000008'), ['RST_STREAM', 7, 8]],
    ['SETTINGS', frame(4, 0, 0, '0001 00000100 0002 00000000 0004 7fffffff 0005 00ffffff 00ff 12345678'), ['SETTINGS', false, [1, 256, 2, 0, 4, 0x7fffffff, 5, 0xffffff, 0xff, 0x12345678]]],
    ['SETTINGS ACK', frame(4, 0x1, 0), ['SETTINGS', true, []]],
    ['PING', frame(6, 0, 0, '0102030405060708'), ['PING', false, '0102030405060708']],
    ['PING ACK', frame(6, 0x1, 0, '0102030405060708'), ['PING', true, '0102030405060708']],
    ['GOAWAY with debug data', frame(7, 0, 0, '00000007 0000000b 6361 6c6d'), ['GOAWAY', 7, 11, 'calm']],
    ['WINDOW_UPDATE on the connection', frame(8, 0, 0, '00010000'), ['WINDOW_UPDATE', 0, 65536]],
    ['WINDOW_UPDATE on a stream, reserved bit ignored', frame(8, 0, 1, '80000001'), ['WINDOW_UPDATE', 1, 1]],
  ];
  for (const [name, bytes, event] of cases) {
    test(name, () => assert.deepEqual(parse([SETTINGS0, bytes]).events, [['SETTINGS', false, []], event]));
  }

  test('HEADERS then CONTINUATION frames until END_HEADERS', () => {
    const r = parse([SETTINGS0, frame(1, 0x1, 1, '82'), frame(9, 0, 1, '86'), frame(9, 0x4, 1, '84'), frame(0, 0, 1, 'ff')]);
    assert.deepEqual(r.events.slice(1), [['HEADERS', 1, '82', 0x1], ['CONTINUATION', 1, '86', false], ['CONTINUATION', 1, '84', true], ['DATA', 1, 'ff', false, 1]]);
  });

  test('an unknown frame type is ignored', () => {
    assert.deepEqual(parse([SETTINGS0, frame(0xfa, 0xff, 9, 'abcdef'), frame(6, 0, 0, '0000000000000000')]).events.slice(1), [['PING', false, '0000000000000000']]);
  });
});

describe('errors, with their code and scope', () => {
  const C = 'connection-error';
  const cases: [string, Buffer[], Event][] = [
    ['a frame over SETTINGS_MAX_FRAME_SIZE (its header alone is enough)', [frame(0, 0, 1, Buffer.alloc(16385)).subarray(0, 9)], [C, H2_ERROR.FRAME_SIZE_ERROR, 'frame-too-large', 'connection']],
    ['DATA on stream 0', [frame(0, 0, 0, 'aa')], [C, H2_ERROR.PROTOCOL_ERROR, 'stream-id', 'connection']],
    ['DATA padded with no room for the pad length', [frame(0, 0x8, 1)], [C, H2_ERROR.FRAME_SIZE_ERROR, 'frame-size', 'connection']],
    ['DATA whose pad length is the payload length (4 = 4)', [frame(0, 0x8, 1, '04 aabbcc')], [C, H2_ERROR.PROTOCOL_ERROR, 'pad-length', 'connection']],
    ['DATA whose pad length is past the payload', [frame(0, 0x8, 1, 'ff aa')], [C, H2_ERROR.PROTOCOL_ERROR, 'pad-length', 'connection']],
    ['HEADERS on stream 0', [frame(1, 0x4, 0, '82')], [C, H2_ERROR.PROTOCOL_ERROR, 'stream-id', 'connection']],
    ['HEADERS whose padding leaves less than nothing', [frame(1, 0x4 | 0x8, 1, '02 82')], [C, H2_ERROR.PROTOCOL_ERROR, 'pad-length', 'connection']],
    ['HEADERS with PRIORITY too short for its fields', [frame(1, 0x4 | 0x20, 1, '000000')], [C, H2_ERROR.FRAME_SIZE_ERROR, 'frame-size', 'connection']],
    ['PRIORITY on stream 0', [frame(2, 0, 0, '0000000110')], [C, H2_ERROR.PROTOCOL_ERROR, 'stream-id', 'connection']],
    ['PRIORITY of 4 bytes (a stream error)', [frame(2, 0, 3, '00000001')], ['stream-error', 3, H2_ERROR.FRAME_SIZE_ERROR, 'frame-size']],
    ['PRIORITY on itself (a stream error)', [frame(2, 0, 3, '0000000310')], ['stream-error', 3, H2_ERROR.PROTOCOL_ERROR, 'self-dependency']],
    ['RST_STREAM on stream 0', [frame(3, 0, 0, '00000000')], [C, H2_ERROR.PROTOCOL_ERROR, 'stream-id', 'connection']],
    ['RST_STREAM of 3 bytes', [frame(3, 0, 1, '000000')], [C, H2_ERROR.FRAME_SIZE_ERROR, 'frame-size', 'connection']],
    ['SETTINGS on a stream', [frame(4, 0, 1)], [C, H2_ERROR.PROTOCOL_ERROR, 'stream-id', 'connection']],
    ['SETTINGS ACK with a payload', [frame(4, 0x1, 0, '000100000000')], [C, H2_ERROR.FRAME_SIZE_ERROR, 'frame-size', 'connection']],
    ['SETTINGS of 5 bytes', [frame(4, 0, 0, '0001000000')], [C, H2_ERROR.FRAME_SIZE_ERROR, 'frame-size', 'connection']],
    ['SETTINGS_ENABLE_PUSH 2', [frame(4, 0, 0, '0002 00000002')], [C, H2_ERROR.PROTOCOL_ERROR, 'setting-enable-push', 'connection']],
    ['SETTINGS_INITIAL_WINDOW_SIZE 2^31', [frame(4, 0, 0, '0004 80000000')], [C, H2_ERROR.FLOW_CONTROL_ERROR, 'setting-initial-window-size', 'connection']],
    ['SETTINGS_MAX_FRAME_SIZE 16383', [frame(4, 0, 0, '0005 00003fff')], [C, H2_ERROR.PROTOCOL_ERROR, 'setting-max-frame-size', 'connection']],
    ['SETTINGS_MAX_FRAME_SIZE 2^24', [frame(4, 0, 0, '0005 01000000')], [C, H2_ERROR.PROTOCOL_ERROR, 'setting-max-frame-size', 'connection']],
    ['PUSH_PROMISE (push is never enabled)', [frame(5, 0x4, 1, '00000002 82')], [C, H2_ERROR.PROTOCOL_ERROR, 'push-promise', 'connection']],
    ['PING on a stream', [frame(6, 0, 1, '0000000000000000')], [C, H2_ERROR.PROTOCOL_ERROR, 'stream-id', 'connection']],
    ['PING of 7 bytes', [frame(6, 0, 0, '00000000000000')], [C, H2_ERROR.FRAME_SIZE_ERROR, 'frame-size', 'connection']],
    ['GOAWAY on a stream', [frame(7, 0, 3, '0000000000000000')], [C, H2_ERROR.PROTOCOL_ERROR, 'stream-id', 'connection']],
    ['GOAWAY of 7 bytes', [frame(7, 0, 0, '00000000000000')], [C, H2_ERROR.FRAME_SIZE_ERROR, 'frame-size', 'connection']],
    ['WINDOW_UPDATE of 3 bytes', [frame(8, 0, 0, '000001')], [C, H2_ERROR.FRAME_SIZE_ERROR, 'frame-size', 'connection']],
    ['WINDOW_UPDATE of 0 on the connection', [frame(8, 0, 0, '00000000')], [C, H2_ERROR.PROTOCOL_ERROR, 'window-update-zero', 'connection']],
    ['WINDOW_UPDATE of 0 on a stream (a stream error)', [frame(8, 0, 5, '80000000')], ['stream-error', 5, H2_ERROR.PROTOCOL_ERROR, 'window-update-zero']],
    ['CONTINUATION with no open header block', [frame(9, 0x4, 1, '82')], [C, H2_ERROR.PROTOCOL_ERROR, 'continuation-unexpected', 'connection']],
    ['another frame inside a header block', [frame(1, 0, 1, '82'), frame(6, 0, 0, '0000000000000000')], [C, H2_ERROR.PROTOCOL_ERROR, 'continuation-expected', 'connection']],
    ['CONTINUATION of another stream inside a header block', [frame(1, 0, 1, '82'), frame(9, 0x4, 3, '82')], [C, H2_ERROR.PROTOCOL_ERROR, 'continuation-expected', 'connection']],
  ];
  for (const [name, frames, event] of cases) {
    test(name, () => {
      const r = parse([SETTINGS0, ...frames]);
      assert.deepEqual(r.events[r.events.length - 1], event);
    });
  }

  test('after a connection error the parser reads nothing more', () => {
    const r = new Recorder();
    const p = new FrameParser(r, { role: 'client' });
    p.push(Buffer.concat([SETTINGS0, frame(0, 0, 0, 'aa'), frame(6, 0, 0, '0000000000000000')]));
    p.push(frame(6, 0, 0, '0000000000000000'));
    assert.equal(p.failed, true);
    assert.deepEqual(r.events, [['SETTINGS', false, []], ['connection-error', H2_ERROR.PROTOCOL_ERROR, 'stream-id', 'connection']]);
  });

  test('after a stream error it reads on; a HEADERS depending on itself still hands on its block (HPACK stays in step)', () => {
    const r = parse([SETTINGS0, frame(1, 0x4 | 0x20, 3, '00000003 0f 82'), frame(8, 0, 3, '00000000'), frame(6, 0, 0, '0000000000000001')]);
    assert.deepEqual(r.events.slice(1), [
      ['stream-error', 3, H2_ERROR.PROTOCOL_ERROR, 'self-dependency'],
      ['HEADERS', 3, '82', 0x24],
      ['stream-error', 3, H2_ERROR.PROTOCOL_ERROR, 'window-update-zero'],
      ['PING', false, '0000000000000001'],
    ]);
  });

  test('a larger SETTINGS_MAX_FRAME_SIZE, once in effect, admits larger frames', () => {
    const big = frame(0, 0, 1, Buffer.alloc(20000, 1));
    assert.equal(parse([SETTINGS0, big]).events[1]![0], 'connection-error');
    assert.equal(parse([SETTINGS0, big], 'client', 20000).events[1]![0], 'DATA');
  });
});

describe('the connection preface (RFC 9113 3.4)', () => {
  test('a server reads the client preface, then SETTINGS', () => {
    assert.deepEqual(parse([CLIENT_PREFACE, SETTINGS0], 'server').events, [['SETTINGS', false, []]]);
  });
  test('a wrong preface is a PROTOCOL_ERROR, found at its first wrong byte', () => {
    const bad = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.deepEqual(parse([bad.subarray(0, 1)], 'server').events, [['connection-error', H2_ERROR.PROTOCOL_ERROR, 'preface', 'connection']]);
  });
  test('a preface cut short is awaited, then read on', () => {
    assert.deepEqual(parse([CLIENT_PREFACE.subarray(0, 5), CLIENT_PREFACE.subarray(5), SETTINGS0], 'server').events, [['SETTINGS', false, []]]);
  });
  test('a first frame other than SETTINGS (or a SETTINGS ACK first) is a PROTOCOL_ERROR', () => {
    for (const first of [frame(6, 0, 0, '0000000000000000'), frame(4, 0x1, 0)]) {
      assert.deepEqual(parse([first]).events, [['connection-error', H2_ERROR.PROTOCOL_ERROR, 'preface-settings', 'connection']]);
    }
  });
});

describe('chunks', () => {
  const stream = Buffer.concat([
    CLIENT_PREFACE,
    frame(4, 0, 0, '0003 00000064 0004 0000ffff'),
    frame(8, 0, 0, '00ff0000'),
    frame(1, 0x8 | 0x20, 1, '03 00000000 0f 828684 000000'),
    frame(9, 0x4, 1, '41 8cf1e3c2e5f23a6ba0ab90f4ff'),
    frame(0, 0x8, 1, '04 68656c6c6f 00000000'),
    frame(0, 0x1, 1, Buffer.alloc(300, 0x61)),
    frame(0xbb, 0, 0, 'ffff'),
    frame(4, 0x1, 0),
    frame(2, 0, 3, '00000001 20'),
    frame(6, 0, 0, '0102030405060708'),
    frame(0, 0, 3),
    frame(3, 0, 3, '00000008'),
    frame(7, 0, 0, '00000003 00000000'),
  ]);
  const whole = parse([stream], 'server');

  test('the stream reads as expected in one chunk', () => {
    assert.equal(whole.events.length, 12);
    assert.ok(whole.events.every((e) => !String(e[0]).endsWith('error')));
  });

  test('every split point of the stream into two chunks gives the same frames', () => {
    for (let i = 1; i < stream.length; i++) {
      assert.deepEqual(parse([stream.subarray(0, i), stream.subarray(i)], 'server').events, whole.events, `split at ${i}`);
    }
  });

  test('one byte at a time gives the same frames', () => {
    const bytes = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    assert.deepEqual(parse(bytes, 'server').events, whole.events);
  });

  test('every split into three chunks gives the same frames (sampled pairs of points)', () => {
    for (let i = 1; i < stream.length; i += 7) {
      for (let j = i + 1; j < stream.length; j += 13) {
        assert.deepEqual(parse([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)], 'server').events, whole.events, `split at ${i}, ${j}`);
      }
    }
  });

  test('payloads of frames whole in a chunk are views of that chunk, not copies', () => {
    const chunk = Buffer.from(stream);
    const r = parse([chunk], 'server');
    assert.ok(r.payloads.length >= 4);
    for (const p of r.payloads) {
      assert.equal(p.buffer, chunk.buffer, 'the same memory');
      assert.ok(p.byteOffset >= chunk.byteOffset && p.byteOffset + p.length <= chunk.byteOffset + chunk.length);
    }
  });
});

test('mutated and random input (seeded) never throws out of push(): every failure is an H2Error to the handler', () => {
  const rnd = mulberry32(9113);
  const valid = Buffer.concat([
    CLIENT_PREFACE, frame(4, 0, 0, '0003 00000064'), frame(1, 0x4, 1, '8286'), frame(0, 0x8, 1, '02 6869 0000'),
    frame(9, 0, 1, '82'), frame(6, 0, 0, '0102030405060708'), frame(8, 0, 1, '00000010'), frame(7, 0, 0, '00000001 00000000'),
  ]);
  let connectionErrors = 0;
  for (let n = 0; n < 5000; n++) {
    const input = Buffer.from(valid);
    const flips = 1 + Math.floor(rnd() * 4);
    for (let f = 0; f < flips; f++) input[CLIENT_PREFACE.length + Math.floor(rnd() * (input.length - CLIENT_PREFACE.length))] = Math.floor(rnd() * 256);
    const tail = Buffer.from(Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256)));
    const r = new Recorder();
    const p = new FrameParser(r, { role: 'server' });
    const all = Buffer.concat([input, tail]);
    const cut = Math.floor(rnd() * all.length);
    assert.doesNotThrow(() => { p.push(all.subarray(0, cut)); p.push(all.subarray(cut)); });
    if (p.failed) connectionErrors++;
    const errors = r.events.filter((e) => String(e[0]).endsWith('error'));
    assert.ok(errors.filter((e) => e[0] === 'connection-error').length <= 1, 'at most one connection error, and nothing after it');
    if (p.failed) assert.equal(r.events[r.events.length - 1]![0], 'connection-error');
  }
  assert.ok(connectionErrors > 500, `mutations are caught (${connectionErrors})`);
});

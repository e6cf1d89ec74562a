/**
 * Each RFC 9113 MUST the connection enforces, as raw frames from a raw peer over loopback (built
 * with the frame writers and HPACK encoder), with the code and scope of the answer: a
 * connection error is a GOAWAY with its code (and the socket closes); a stream error is an
 * RST_STREAM on that stream with its code, after which the connection still answers a PING.
 * Both roles: a raw client against an H2Connection server, a raw server against a client.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { H2_ERROR } from '../../../sidecar/src/h2/errors';
import { FLAG, FRAME, MAX_INT31 } from '../../../sidecar/src/h2/frame-types';
import { dataFrameHeader, frameHeader, headersFrames, pingFrame, rstStreamFrame, settingsFrame, windowUpdateFrame } from '../../../sidecar/src/h2/frame-writer';
import { HpackEncoder } from '../../../sidecar/src/h2/hpack-encoder';
import type { H2Limits } from '../../../sidecar/src/h2/limits';
import { SETTING } from '../../../sidecar/src/h2/settings';
import { connectH2, rawClient, rawServer, requestHead, serveH2 } from '../../support/h2-endpoint';
import type { RawPeer, Recorder } from '../../support/h2-endpoint';
import { until } from '../../support/until';

const TIMEOUT = 30_000;
const REQ = [':method', 'POST', ':scheme', 'http', ':path', '/x', ':authority', 'h'];

/** Frames of one case, built with a fresh encoder (no dynamic table, so blocks stand alone). */
type Build = (b: { head(sid: number, headers: string[], endStream: boolean): Buffer[]; data(sid: number, n: number, endStream: boolean): Buffer[] }) => Buffer[][];

function builder(): Parameters<Build>[0] {
  const enc = new HpackEncoder({ maxTableSize: 0 });
  return {
    head: (sid, headers, endStream) => headersFrames(sid, enc.encode(headers), endStream),
    data: (sid, n, endStream) => [dataFrameHeader(sid, n, endStream), Buffer.alloc(n, 0x62)],
  };
}

const raw = (type: number, flags: number, sid: number, payload: Buffer = Buffer.alloc(0)): Buffer[] => [frameHeader(payload.length, type, flags, sid), payload];

/** Connection errors: [name, frames, GOAWAY code, limits]. */
const CONNECTION_CASES: [string, Build, number, Partial<H2Limits>?][] = [
  ['DATA on an idle stream', (b) => [b.data(1, 3, false)], H2_ERROR.PROTOCOL_ERROR],
  ['HEADERS on an even (server) stream id from a client', (b) => [b.head(2, REQ, true)], H2_ERROR.PROTOCOL_ERROR],
  ['HEADERS on a stream id below one already used (never opened)', (b) => [b.head(5, REQ, false), b.head(3, REQ, true)], H2_ERROR.PROTOCOL_ERROR],
  ['WINDOW_UPDATE on an idle stream', () => [[windowUpdateFrame(5, 10)]], H2_ERROR.PROTOCOL_ERROR],
  ['RST_STREAM on an idle stream', () => [[rstStreamFrame(7, H2_ERROR.CANCEL)]], H2_ERROR.PROTOCOL_ERROR],
  ['CONTINUATION with no header block open', () => [raw(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, Buffer.from([0x82]))], H2_ERROR.PROTOCOL_ERROR],
  ['another frame inside a header block', (b) => [raw(FRAME.HEADERS, 0, 1, Buffer.from([0x82])), b.data(1, 1, false)], H2_ERROR.PROTOCOL_ERROR],
  ['a frame over SETTINGS_MAX_FRAME_SIZE', (b) => [b.head(1, REQ, false), b.data(1, 16385, false)], H2_ERROR.FRAME_SIZE_ERROR],
  ['PING on a stream', () => [raw(FRAME.PING, 0, 1, Buffer.alloc(8))], H2_ERROR.PROTOCOL_ERROR],
  ['PUSH_PROMISE from a client', () => [raw(FRAME.PUSH_PROMISE, FLAG.END_HEADERS, 1, Buffer.from([0, 0, 0, 2, 0x82]))], H2_ERROR.PROTOCOL_ERROR],
  ['SETTINGS_ENABLE_PUSH 2', () => [[settingsFrame([SETTING.ENABLE_PUSH, 2])]], H2_ERROR.PROTOCOL_ERROR],
  ['SETTINGS_INITIAL_WINDOW_SIZE over 2^31 - 1', () => [[settingsFrame([SETTING.INITIAL_WINDOW_SIZE, 0x80000000])]], H2_ERROR.FLOW_CONTROL_ERROR],
  ['a WINDOW_UPDATE taking the connection send window over 2^31 - 1', () => [[windowUpdateFrame(0, MAX_INT31)]], H2_ERROR.FLOW_CONTROL_ERROR],
  ['a SETTINGS_INITIAL_WINDOW_SIZE taking an open stream\'s window over 2^31 - 1',
    (b) => [b.head(1, REQ, false), [windowUpdateFrame(1, MAX_INT31 - 65535)], [settingsFrame([SETTING.INITIAL_WINDOW_SIZE, 65536])]], H2_ERROR.FLOW_CONTROL_ERROR],
  ['DATA over the connection window (streams each within theirs)',
    (b) => [b.head(1, REQ, false), b.head(3, REQ, false), b.data(1, 16000, false), b.data(1, 16000, false), b.data(1, 16000, false), b.data(3, 16000, false), b.data(3, 2000, false)],
    H2_ERROR.FLOW_CONTROL_ERROR, { connectionWindow: 65535 }],
  ['a header block that is not valid HPACK', () => [raw(FRAME.HEADERS, FLAG.END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))], H2_ERROR.COMPRESSION_ERROR],
  ['an HPACK table size update over our SETTINGS_HEADER_TABLE_SIZE', () => [raw(FRAME.HEADERS, FLAG.END_HEADERS, 1, Buffer.from([0x3f, 0xe2, 0x1f, 0x82]))], H2_ERROR.COMPRESSION_ERROR],
  ['more CONTINUATION frames than the limit', () => [raw(FRAME.HEADERS, 0, 1, Buffer.from([0x82])), ...Array.from({ length: 5 }, () => raw(FRAME.CONTINUATION, 0, 1, Buffer.from([0x84])))],
    H2_ERROR.ENHANCE_YOUR_CALM, { maxContinuationFrames: 4 }],
  ['a header block over the header list size, in CONTINUATION frames', () => [raw(FRAME.HEADERS, 0, 1, Buffer.alloc(100, 0x40)), raw(FRAME.CONTINUATION, 0, 1, Buffer.alloc(200, 0x40))],
    H2_ERROR.ENHANCE_YOUR_CALM, { maxHeaderListSize: 256 }],
  // The peer acknowledged the cap (RawPeer ACKs SETTINGS): a stream flood, closed as nghttp2 does.
  ['a stream over the SETTINGS_MAX_CONCURRENT_STREAMS the peer acknowledged', (b) => [b.head(1, REQ, false), b.head(3, REQ, false)], H2_ERROR.PROTOCOL_ERROR, { maxConcurrentStreams: 1 }],
];

/** Stream errors: [name, frames, the stream reset, RST code, limits]. */
const STREAM_CASES: [string, Build, number, number, Partial<H2Limits>?][] = [
  ['a request without :path', (b) => [b.head(1, [':method', 'GET', ':scheme', 'http', ':authority', 'h'], true)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['a request without :method', (b) => [b.head(1, [':scheme', 'http', ':path', '/', ':authority', 'h'], true)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['a CONNECT with :path', (b) => [b.head(1, [':method', 'CONNECT', ':authority', 'h:1', ':path', '/'], true)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['a repeated pseudo-header', (b) => [b.head(1, [...REQ, ':path', '/y'], true)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['a pseudo-header after a regular field', (b) => [b.head(1, [':method', 'GET', ':scheme', 'http', 'x-a', '1', ':path', '/'], true)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['a response pseudo-header in a request', (b) => [b.head(1, [':status', '200', ...REQ], true)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['an uppercase field name', (b) => [b.head(1, [...REQ, 'X-Upper', '1'], true)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['a connection-specific field (connection)', (b) => [b.head(1, [...REQ, 'connection', 'keep-alive'], true)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['a connection-specific field (transfer-encoding)', (b) => [b.head(1, [...REQ, 'transfer-encoding', 'chunked'], true)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['TE other than trailers', (b) => [b.head(1, [...REQ, 'te', 'gzip'], true)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['a field value with CR LF', (b) => [b.head(1, [...REQ, 'x-a', 'a\r\nb'], true)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['content-length over the DATA received', (b) => [b.head(1, [...REQ, 'content-length', '10'], false), b.data(1, 5, true)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['DATA over content-length', (b) => [b.head(1, [...REQ, 'content-length', '2'], false), b.data(1, 5, false)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['DATA after END_STREAM (half-closed remote)', (b) => [b.head(1, REQ, true), b.data(1, 1, false)], 1, H2_ERROR.STREAM_CLOSED],
  ['HEADERS on a stream the peer reset', (b) => [b.head(1, REQ, false), [rstStreamFrame(1, H2_ERROR.CANCEL)], b.head(1, REQ, true)], 1, H2_ERROR.STREAM_CLOSED],
  ['DATA on a stream the peer reset', (b) => [b.head(1, REQ, false), [rstStreamFrame(1, H2_ERROR.CANCEL)], b.data(1, 4, true)], 1, H2_ERROR.STREAM_CLOSED],
  ['trailers without END_STREAM', (b) => [b.head(1, REQ, false), b.head(1, ['x-t', '1'], false)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['trailers with a pseudo-header', (b) => [b.head(1, REQ, false), b.head(1, [':path', '/'], true)], 1, H2_ERROR.PROTOCOL_ERROR],
  ['DATA over the stream window', (b) => [b.head(1, REQ, false), ...Array.from({ length: 4 }, () => b.data(1, 16384, false)), b.data(1, 1000, false)], 1, H2_ERROR.FLOW_CONTROL_ERROR],
  ['a WINDOW_UPDATE taking a stream window over 2^31 - 1', (b) => [b.head(1, REQ, false), [windowUpdateFrame(1, MAX_INT31)]], 1, H2_ERROR.FLOW_CONTROL_ERROR],
  ['a WINDOW_UPDATE of 0 on a stream', (b) => [b.head(1, REQ, false), [Buffer.from([0, 0, 4, FRAME.WINDOW_UPDATE, 0, 0, 0, 0, 1, 0, 0, 0, 0])]], 1, H2_ERROR.PROTOCOL_ERROR],
  ['a HEADERS depending on itself', () => [raw(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM | FLAG.PRIORITY, 1, Buffer.from([0, 0, 0, 1, 16, 0x83, 0x86, 0x84, 0x41, 0x01, 0x68]))], 1, H2_ERROR.PROTOCOL_ERROR],
  ['a header list over SETTINGS_MAX_HEADER_LIST_SIZE', (b) => [b.head(1, [...REQ, 'x-big', 'v'.repeat(300)], true)], 1, H2_ERROR.PROTOCOL_ERROR, { maxHeaderListSize: 256 }],
];

async function against(limits: Partial<H2Limits> | undefined, build: Build): Promise<{ peer: RawPeer; server: Recorder; close: () => Promise<void> }> {
  const server = await serveH2((r) => { r.autoConsume = false; }, limits === undefined ? {} : { limits });
  const peer = await rawClient(server.port);
  await until(() => peer.settings.length > 0, 'the server SETTINGS');
  for (const f of build(builder())) peer.send(f);
  return { peer, server: server.recorders[0]!, close: async () => { peer.sock.destroy(); await server.close(); } };
}

describe('connection errors: GOAWAY with the code, the socket closes', () => {
  for (const [name, build, code, limits] of CONNECTION_CASES) {
    test(name, { timeout: TIMEOUT }, async () => {
      const { peer, server, close } = await against(limits, build);
      try {
        await until(() => peer.goaway !== undefined, 'a GOAWAY');
        assert.equal(peer.goaway![1], code, `GOAWAY code (debug: ${peer.goaway![2]})`);
        await until(() => peer.closed, 'the socket closed');
        assert.ok(server.conn.stats.connectionErrors >= 1);
      } finally { await close(); }
    });
  }
});

describe('stream errors: RST_STREAM on the stream with the code, the connection goes on', () => {
  for (const [name, build, sid, code, limits] of STREAM_CASES) {
    test(name, { timeout: TIMEOUT }, async () => {
      const { peer, server, close } = await against(limits, build);
      try {
        await until(() => peer.rsts.length > 0 || peer.goaway !== undefined, 'an RST_STREAM');
        assert.equal(peer.goaway, undefined, 'no GOAWAY: the error is the stream\'s');
        assert.deepEqual(peer.rsts[0], [sid, code]);
        peer.send(pingFrame(Buffer.alloc(8), false));
        await until(() => peer.pingAcks === 1, 'the connection still answers a PING');
        assert.ok(server.conn.stats.streamErrors + server.conn.stats.streamsRefused >= 1);
      } finally { await close(); }
    });
  }
});

test('a stream over our SETTINGS_MAX_CONCURRENT_STREAMS before the peer acknowledged them is refused (REFUSED_STREAM: it may not know the cap yet)', { timeout: TIMEOUT }, async () => {
  const server = await serveH2((r) => { r.autoConsume = false; }, { limits: { maxConcurrentStreams: 1 } });
  const peer = await rawClient(server.port);
  peer.ackSettings = false;
  try {
    await until(() => peer.settings.length > 0, 'the server SETTINGS');
    const b = builder();
    for (const f of [b.head(1, REQ, false), b.head(3, REQ, false)]) peer.send(f);
    await until(() => peer.rsts.length > 0 || peer.goaway !== undefined, 'an RST_STREAM');
    assert.equal(peer.goaway, undefined, 'no GOAWAY');
    assert.deepEqual(peer.rsts[0], [3, H2_ERROR.REFUSED_STREAM]);
    assert.equal(server.recorders[0]!.conn.stats.streamsRefused, 1);
  } finally { peer.sock.destroy(); await server.close(); }
});

describe('an H2Connection client against a raw server', () => {
  /** [name, what the raw server answers to stream 1, GOAWAY code or RST code, scope]. */
  const cases: [string, (enc: HpackEncoder) => Buffer[][], number, 'connection' | 'stream'][] = [
    ['a response without :status', (e) => [headersFrames(1, e.encode(['x-a', '1']), true)], H2_ERROR.PROTOCOL_ERROR, 'stream'],
    ['a 101 response', (e) => [headersFrames(1, e.encode([':status', '101']), false)], H2_ERROR.PROTOCOL_ERROR, 'stream'],
    ['a 1xx with END_STREAM', (e) => [headersFrames(1, e.encode([':status', '103']), true)], H2_ERROR.PROTOCOL_ERROR, 'stream'],
    ['a request pseudo-header in a response', (e) => [headersFrames(1, e.encode([':status', '200', ':path', '/']), true)], H2_ERROR.PROTOCOL_ERROR, 'stream'],
    ['DATA before the response head', () => [[dataFrameHeader(1, 1, true), Buffer.from('x')]], H2_ERROR.PROTOCOL_ERROR, 'stream'],
    ['HEADERS on a server-initiated stream (push)', (e) => [headersFrames(2, e.encode([':status', '200']), true)], H2_ERROR.PROTOCOL_ERROR, 'connection'],
    ['HEADERS on a client stream never opened', (e) => [headersFrames(3, e.encode([':status', '200']), true)], H2_ERROR.PROTOCOL_ERROR, 'connection'],
    ['SETTINGS_ENABLE_PUSH 1 from a server', () => [[settingsFrame([SETTING.ENABLE_PUSH, 1])]], H2_ERROR.PROTOCOL_ERROR, 'connection'],
  ];
  for (const [name, answer, code, scope] of cases) {
    test(name, { timeout: TIMEOUT }, async () => {
      let peer: RawPeer | undefined;
      const server = await rawServer((p) => { peer = p; p.send(settingsFrame([])); });
      const port = server.port;
      const r = await connectH2(port);
      try {
        await until(() => peer !== undefined && peer.headerStreams.length === 0 && (r.conn.request(requestHead(port, 'GET', '/'), true) !== undefined), 'a stream opened');
        await until(() => peer!.headerStreams.includes(1), 'the request arrived');
        const enc = new HpackEncoder({ maxTableSize: 0 });
        for (const f of answer(enc)) peer!.send(f);
        if (scope === 'connection') {
          await until(() => peer!.goaway !== undefined, 'a GOAWAY');
          assert.equal(peer!.goaway![1], code);
          await until(() => r.closed, 'the client connection closed');
        } else {
          await until(() => peer!.rsts.length > 0 || peer!.goaway !== undefined, 'an RST_STREAM');
          assert.equal(peer!.goaway, undefined);
          assert.deepEqual(peer!.rsts[0], [1, code]);
          assert.equal(r.logs.get(1)?.closeCode, code);
        }
      } finally { r.conn.destroy(); server.close(); }
    });
  }
});

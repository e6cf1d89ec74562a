/**
 * Flow control details against a raw peer over loopback: the peer's SETTINGS_INITIAL_WINDOW_SIZE
 * applies to open streams, down to a negative window (RFC 9113 6.9.2), and sending resumes only
 * once WINDOW_UPDATEs bring it above zero; DATA the peer had in flight on a stream we reset is
 * ignored, not answered with another RST_STREAM; a raised MAX_CONCURRENT_STREAMS gives capacity.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { H2_ERROR } from '../../../sidecar/src/h2/errors';
import { dataFrameHeader, headersFrames, pingFrame, settingsFrame, windowUpdateFrame } from '../../../sidecar/src/h2/frame-writer';
import { HpackEncoder } from '../../../sidecar/src/h2/hpack-encoder';
import { SETTING } from '../../../sidecar/src/h2/settings';
import { connectH2, rawClient, rawServer, requestHead, serveH2 } from '../../support/h2-endpoint';
import type { RawPeer } from '../../support/h2-endpoint';
import { until } from '../../support/until';

const TIMEOUT = 30_000;

/** Lets a few event-loop turns pass, so that anything the engine would send has been sent. */
async function settle(peer: RawPeer): Promise<void> {
  const want = peer.pingAcks + 1;
  peer.send(pingFrame(Buffer.alloc(8), false));
  await until(() => peer.pingAcks >= want, 'a PING ACK');
}

describe('send windows', () => {
  test('SETTINGS_INITIAL_WINDOW_SIZE lowered under what was sent: the window goes negative, and WINDOW_UPDATEs must bring it back above zero', { timeout: TIMEOUT }, async () => {
    let peer: RawPeer | undefined;
    const server = await rawServer((p) => { peer = p; p.send(settingsFrame([SETTING.INITIAL_WINDOW_SIZE, 100])); });
    const port = server.port;
    const r = await connectH2(port);
    try {
      await until(() => peer !== undefined && peer.settingsAcks > 0, 'the client applied the server\'s SETTINGS');
      const s = r.conn.request(requestHead(port, 'POST', '/up'), false)!;
      r.conn.write(s, Buffer.alloc(1000, 0x61), true);
      await until(() => peer!.dataBytes.get(1) === 100, 'the first 100 bytes (the window)');
      peer!.send(settingsFrame([SETTING.INITIAL_WINDOW_SIZE, 40])); // window: 100 - 100 + (40 - 100) = -60
      peer!.send(windowUpdateFrame(1, 50)); // -10: still nothing may go
      await settle(peer!);
      assert.equal(peer!.dataBytes.get(1), 100, 'a negative window sends nothing');
      peer!.send(windowUpdateFrame(1, 30)); // 20
      await until(() => peer!.dataBytes.get(1) === 120, '20 more bytes');
      await settle(peer!);
      assert.equal(peer!.dataBytes.get(1), 120, 'exactly the window');
      peer!.send(windowUpdateFrame(1, 10_000));
      await until(() => peer!.dataBytes.get(1) === 1000, 'the rest');
    } finally { r.conn.destroy(); server.close(); }
  });
});

describe('frames in flight on a stream we reset', () => {
  test('DATA after our REFUSED_STREAM is ignored (the connection window is still credited)', { timeout: TIMEOUT }, async () => {
    const server = await serveH2(() => undefined, { limits: { maxConcurrentStreams: 1 } });
    const peer = await rawClient(server.port);
    try {
      const enc = new HpackEncoder({ maxTableSize: 0 });
      const req = [':method', 'POST', ':scheme', 'http', ':path', '/', ':authority', 'h'];
      peer.send(headersFrames(1, enc.encode(req), false), headersFrames(3, enc.encode(req), false));
      peer.send(dataFrameHeader(3, 10, false), Buffer.alloc(10), dataFrameHeader(3, 10, true), Buffer.alloc(10));
      await settle(peer);
      assert.deepEqual(peer.rsts, [[3, H2_ERROR.REFUSED_STREAM]], 'one RST_STREAM, none for the DATA in flight');
      assert.equal(peer.goaway, undefined);
      assert.equal(server.recorders[0]!.conn.stats.streamsRefused, 1);
    } finally { peer.sock.destroy(); await server.close(); }
  });
});

describe('stream capacity', () => {
  test('a SETTINGS raising the peer\'s MAX_CONCURRENT_STREAMS gives onCapacity to a client that found none', { timeout: TIMEOUT }, async () => {
    let peer: RawPeer | undefined;
    const server = await rawServer((p) => { peer = p; p.send(settingsFrame([SETTING.MAX_CONCURRENT_STREAMS, 1])); });
    const r = await connectH2(server.port);
    try {
      await until(() => peer !== undefined && peer.settingsAcks > 0, 'the client applied the server\'s SETTINGS');
      assert.ok(r.conn.request(requestHead(server.port, 'GET', '/1'), true) !== undefined);
      assert.equal(r.conn.request(requestHead(server.port, 'GET', '/2'), true), undefined, 'one stream is the limit');
      peer!.send(settingsFrame([SETTING.MAX_CONCURRENT_STREAMS, 2]));
      await until(() => r.capacity === 1, 'onCapacity');
      assert.ok(r.conn.request(requestHead(server.port, 'GET', '/2'), true) !== undefined);
      await until(() => peer!.headerStreams.length === 2, 'both requests at the server');
      assert.deepEqual(peer!.headerStreams, [1, 3]);
    } finally { r.conn.destroy(); server.close(); }
  });
});

/**
 * The connection's hardening limits (limits.ts), each from a raw client over loopback with time
 * driven by a FakeClock: within the budget the connection goes on (it answers a PING); one
 * event over it is a GOAWAY ENHANCE_YOUR_CALM and a count in the stats. Also the SETTINGS ACK
 * timeout, and the limits' own checks.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../shared/src/clock';
import { H2_ERROR } from '../../../sidecar/src/h2/errors';
import { FLAG, FRAME } from '../../../sidecar/src/h2/frame-types';
import { dataFrameHeader, frameHeader, headersFrames, pingFrame, rstStreamFrame, settingsFrame } from '../../../sidecar/src/h2/frame-writer';
import { HpackEncoder } from '../../../sidecar/src/h2/hpack-encoder';
import { DEFAULT_H2_LIMITS, H2Stats, resolveLimits } from '../../../sidecar/src/h2/limits';
import type { H2Limits } from '../../../sidecar/src/h2/limits';
import { rawClient, serveH2 } from '../../support/h2-endpoint';
import type { RawPeer, Recorder } from '../../support/h2-endpoint';
import { until } from '../../support/until';

const TIMEOUT = 30_000;
const REQ = [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'h'];

async function limited(limits: Partial<H2Limits>, ack = true): Promise<{ peer: RawPeer; stats: H2Stats; clock: FakeClock; server: Recorder; close(): Promise<void> }> {
  const clock = new FakeClock();
  const stats = new H2Stats();
  const server = await serveH2(() => undefined, { limits, stats, clock });
  const peer = await rawClient(server.port);
  peer.ackSettings = ack;
  await until(() => peer.settings.length > 0, 'the server SETTINGS');
  return { peer, stats, clock, server: server.recorders[0]!, close: async () => { peer.sock.destroy(); await server.close(); } };
}

let pings = 0;
/** The connection still answers: a PING comes back. */
async function alive(peer: RawPeer): Promise<void> {
  const want = peer.pingAcks + 1;
  peer.send(pingFrame(Buffer.from(`ping${String(pings++).padStart(4, '0')}`), false));
  await until(() => peer.pingAcks >= want || peer.goaway !== undefined, 'a PING ACK');
  assert.equal(peer.goaway, undefined, `no GOAWAY yet (got ${String(peer.goaway)})`);
}

async function calm(peer: RawPeer, reason: string): Promise<void> {
  await until(() => peer.goaway !== undefined, 'a GOAWAY');
  assert.deepEqual(peer.goaway!.slice(1), [H2_ERROR.ENHANCE_YOUR_CALM, reason]);
  await until(() => peer.closed, 'the socket closed');
}

/** `n` streams each opened and reset at once (CVE-2023-44487), from stream `first` on. */
function openAndReset(first: number, n: number): Buffer[] {
  const enc = new HpackEncoder({ maxTableSize: 0 });
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const sid = first + 2 * i;
    out.push(...headersFrames(sid, enc.encode(REQ), false), rstStreamFrame(sid, H2_ERROR.CANCEL));
  }
  return out;
}

describe('flood limits', () => {
  test('rapid reset: resets within the budget per second are fine; one over it is GOAWAY ENHANCE_YOUR_CALM', { timeout: TIMEOUT }, async () => {
    const { peer, stats, clock, server, close } = await limited({ resetsPerSecond: 10 });
    try {
      peer.send(openAndReset(1, 10));
      await alive(peer);
      assert.equal(stats.rstReceived, 10);
      clock.advance(1000); // a new second: a new budget
      peer.send(openAndReset(21, 10));
      await alive(peer);
      // One write: the request after the reset over budget must not reach the server's handler.
      peer.send(openAndReset(41, 1), openAndReset(43, 1).slice(0, 2));
      await calm(peer, 'rapid-reset');
      assert.equal(stats.rapidReset, 1);
      assert.ok(server.logs.has(41) && !server.logs.has(43), 'nothing after the connection error is handed on');
    } finally { await close(); }
  });

  test('PING flood', { timeout: TIMEOUT }, async () => {
    const { peer, stats, close } = await limited({ pingsPerSecond: 5 });
    try {
      for (let i = 0; i < 5; i++) await alive(peer);
      peer.send(pingFrame(Buffer.alloc(8), false));
      await calm(peer, 'ping-flood');
      assert.equal(stats.pingFlood, 1);
    } finally { await close(); }
  });

  test('SETTINGS flood (the client preface\'s SETTINGS counts)', { timeout: TIMEOUT }, async () => {
    const { peer, stats, close } = await limited({ settingsPerSecond: 3 });
    try {
      peer.send(settingsFrame([]), settingsFrame([]));
      await alive(peer);
      peer.send(settingsFrame([]));
      await calm(peer, 'settings-flood');
      assert.equal(stats.settingsFlood, 1);
    } finally { await close(); }
  });

  test('empty DATA and CONTINUATION frames', { timeout: TIMEOUT }, async () => {
    const { peer, stats, close } = await limited({ emptyFramesPerSecond: 4 });
    try {
      const enc = new HpackEncoder({ maxTableSize: 0 });
      const block = enc.encode(REQ);
      peer.send(frameHeader(block.length, FRAME.HEADERS, 0, 1), block, frameHeader(0, FRAME.CONTINUATION, 0, 1), frameHeader(0, FRAME.CONTINUATION, FLAG.END_HEADERS, 1));
      peer.send(dataFrameHeader(1, 0, false), dataFrameHeader(1, 0, false), dataFrameHeader(1, 0, false));
      await alive(peer);
      peer.send(dataFrameHeader(1, 0, false));
      await calm(peer, 'empty-frame-flood');
      assert.equal(stats.emptyFrameFlood, 1);
    } finally { await close(); }
  });
});

describe('SETTINGS ACK timeout', () => {
  test('a peer that never acknowledges our SETTINGS gets GOAWAY SETTINGS_TIMEOUT when the timeout passes', { timeout: TIMEOUT }, async () => {
    const { peer, stats, clock, close } = await limited({ settingsAckTimeoutMs: 5000 }, false);
    try {
      clock.advance(4999);
      await alive(peer);
      clock.advance(1);
      await until(() => peer.goaway !== undefined, 'a GOAWAY');
      assert.equal(peer.goaway![1], H2_ERROR.SETTINGS_TIMEOUT);
      assert.equal(stats.settingsTimeout, 1);
    } finally { await close(); }
  });

  test('a peer that acknowledges has no timeout', { timeout: TIMEOUT }, async () => {
    const { peer, clock, close } = await limited({ settingsAckTimeoutMs: 5000 });
    try {
      await alive(peer); // the ACK went before the PING
      clock.advance(60_000);
      await alive(peer);
    } finally { await close(); }
  });
});

describe('limits', () => {
  test('defaults, documented in docs/architecture.md', () => {
    assert.deepEqual(resolveLimits(undefined), DEFAULT_H2_LIMITS);
    assert.equal(DEFAULT_H2_LIMITS.streamWindow, 65535);
    assert.equal(DEFAULT_H2_LIMITS.connectionWindow, 1 << 20);
  });
  const bad: [Partial<H2Limits>, RegExp][] = [
    [{ connectionWindow: 1000 }, /connectionWindow: 1000/],
    [{ streamWindow: 0x80000000 }, /streamWindow/],
    [{ maxConcurrentStreams: -1 }, /maxConcurrentStreams/],
    [{ pingsPerSecond: 1.5 }, /pingsPerSecond/],
  ];
  for (const [l, re] of bad) test(`rejected: ${JSON.stringify(l)}`, () => assert.throws(() => resolveLimits(l), re));
});

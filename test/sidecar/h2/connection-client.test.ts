/**
 * H2Connection as a client, against Node's real http2 server (nghttp2) over loopback: unary
 * requests, a request body and a response body far over the windows (flow control both ways),
 * trailers, a 1xx, resets both ways, the server's SETTINGS_MAX_CONCURRENT_STREAMS (request()
 * reports no capacity, onCapacity when a slot frees), and GOAWAY: a graceful close lets the
 * stream in flight complete, and streams above the last-stream-id fail as retryable.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { once } from 'node:events';
import { H2_ERROR } from '../../../sidecar/src/h2/errors';
import { headerValue } from '../../../sidecar/src/h2/header-rules';
import { connectH2, requestHead } from '../../support/h2-endpoint';
import type { Recorder } from '../../support/h2-endpoint';
import { until } from '../../support/until';

const TIMEOUT = 60_000;
const MIB = 1 << 20;

interface NodeServer { port: number; server: http2.Http2Server; sessions: http2.ServerHttp2Session[]; rstCodes: number[]; close(): Promise<void> }

/** A Node http2 server whose answer each test writes; resets the server saw are in `rstCodes`. */
async function nodeServer(onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void, settings?: http2.Settings): Promise<NodeServer> {
  const server = http2.createServer(settings === undefined ? {} : { settings });
  const sessions: http2.ServerHttp2Session[] = [];
  const rstCodes: number[] = [];
  server.on('session', (s) => { sessions.push(s); s.on('error', () => undefined); });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    stream.on('close', () => { if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) rstCodes.push(stream.rstCode); });
    onStream(stream, headers);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port, server, sessions, rstCodes,
    async close() { for (const s of sessions) s.destroy(); server.close(); await once(server, 'close'); },
  };
}

/** Reads the request body, then answers 200 with "<path> <body length>" (and trailers on /trailers). */
function echoStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  let n = 0;
  stream.on('data', (c: Buffer) => { n += c.length; });
  stream.on('end', () => {
    const path = String(headers[':path']);
    const trailers = path === '/trailers';
    stream.respond({ ':status': 200, 'x-path': path }, { waitForTrailers: trailers });
    if (trailers) stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-sum': String(n) }));
    stream.end(`${path} ${n}`);
  });
}

async function closeClient(c: Recorder): Promise<void> {
  if (!c.closed) c.conn.destroy();
  await until(() => c.closed, 'the client connection closed');
}

describe('an H2Connection client against a real Node http2 server', () => {
  test('unary requests with and without a body, and trailers', { timeout: TIMEOUT }, async () => {
    const srv = await nodeServer(echoStream);
    const c = await connectH2(srv.port);
    try {
      const get = c.conn.request(requestHead(srv.port, 'GET', '/a'), true)!;
      const post = c.conn.request(requestHead(srv.port, 'POST', '/b'), false)!;
      c.conn.write(post, Buffer.from('hello world'), true);
      const tr = c.conn.request(requestHead(srv.port, 'POST', '/trailers'), false)!;
      c.conn.end(tr, undefined);
      await until(() => [get, post, tr].every((s) => c.logs.get(s.id)?.closeCode !== undefined), 'three streams closed');
      const [a, b, t] = [get, post, tr].map((s) => c.logs.get(s.id)!);
      assert.equal(headerValue(a!.headers!, ':status'), '200');
      assert.equal(a!.body(), '/a 0');
      assert.equal(b!.body(), '/b 11');
      assert.equal(headerValue(b!.headers!, 'x-path'), '/b');
      assert.equal(t!.body(), '/trailers 0');
      assert.deepEqual(t!.trailers, ['grpc-status', '0', 'x-sum', '0']);
      for (const l of [a, b, t]) { assert.equal(l!.closeCode, H2_ERROR.NO_ERROR); assert.equal(l!.retryable, false); }
    } finally { await closeClient(c); await srv.close(); }
  });

  test('a 2 MiB request body and a 2 MiB response body: both sides stay within the windows and every byte arrives', { timeout: TIMEOUT }, async () => {
    const big = Buffer.alloc(2 * MIB, 0x61);
    let serverGot = 0;
    const srv = await nodeServer((stream) => {
      stream.on('data', (ch: Buffer) => { serverGot += ch.length; });
      stream.on('end', () => { stream.respond({ ':status': 200 }); stream.end(big); });
    });
    const c = await connectH2(srv.port);
    c.autoConsume = false;
    try {
      const s = c.conn.request(requestHead(srv.port, 'POST', '/big'), false)!;
      // Slices of one buffer, never copied; write() says when to wait.
      let ok = true;
      for (let off = 0; off < big.length; off += 256 * 1024) ok = c.conn.write(s, big.subarray(off, off + 256 * 1024)) && ok;
      assert.equal(ok, false, 'a queue over the high-water mark asks the caller to wait');
      c.conn.end(s);
      await until(() => serverGot === big.length, 'the server read the whole request body', 30_000);
      assert.ok(c.writable > 0, 'onWritable after the queue drained');
      const log = c.logs;
      await until(() => (log.get(s.id)?.received ?? 0) >= 65535, 'the first stream window of the response');
      await new Promise((res) => setImmediate(res));
      assert.equal(log.get(s.id)!.received, 65535, 'nothing consumed: the server stops at our stream window');
      c.autoConsume = true;
      c.conn.consumed(s, 65535);
      await until(() => log.get(s.id)?.closeCode !== undefined, 'the response ended', 30_000);
      assert.equal(log.get(s.id)!.received, big.length);
      assert.equal(log.get(s.id)!.closeCode, H2_ERROR.NO_ERROR);
    } finally { await closeClient(c); await srv.close(); }
  });

  test('a 40 KB header value goes out as HEADERS + CONTINUATION frames, and Node reads it', { timeout: TIMEOUT }, async () => {
    let got: string | undefined;
    const srv = await nodeServer((stream, headers) => { got = headers['x-big'] as string; stream.respond({ ':status': 200 }, { endStream: true }); });
    const c = await connectH2(srv.port);
    try {
      const big = 'w'.repeat(40_000);
      const s = c.conn.request(requestHead(srv.port, 'GET', '/big-head', ['x-big', big]), true)!;
      await until(() => c.logs.get(s.id)?.closeCode !== undefined, 'the response');
      assert.equal(c.logs.get(s.id)!.closeCode, H2_ERROR.NO_ERROR);
      assert.equal(got, big);
    } finally { await closeClient(c); await srv.close(); }
  });

  test('a 103 before the response is passed to the caller', { timeout: TIMEOUT }, async () => {
    const srv = await nodeServer((stream) => {
      stream.additionalHeaders({ ':status': 103, link: '</a.css>; rel=preload' });
      stream.respond({ ':status': 204 }, { endStream: true });
    });
    const c = await connectH2(srv.port);
    try {
      const s = c.conn.request(requestHead(srv.port, 'GET', '/hints'), true)!;
      await until(() => c.logs.get(s.id)?.closeCode !== undefined, 'the stream closed');
      const l = c.logs.get(s.id)!;
      assert.deepEqual(l.informational, [[':status', '103', 'link', '</a.css>; rel=preload']]);
      assert.equal(headerValue(l.headers!, ':status'), '204');
      assert.equal(l.endedWithHead, true);
    } finally { await closeClient(c); await srv.close(); }
  });

  test('resets both ways: ours reaches the server with its code, the server\'s reaches us', { timeout: TIMEOUT }, async () => {
    const srv = await nodeServer((stream, headers) => {
      if (headers[':path'] === '/refuse') stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      else if (headers[':path'] === '/reset') stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      // '/hang': no answer
    });
    const c = await connectH2(srv.port);
    try {
      const hang = c.conn.request(requestHead(srv.port, 'POST', '/hang'), false)!;
      const refused = c.conn.request(requestHead(srv.port, 'GET', '/refuse'), true)!;
      const reset = c.conn.request(requestHead(srv.port, 'GET', '/reset'), true)!;
      await until(() => c.logs.get(refused.id)?.closeCode !== undefined && c.logs.get(reset.id)?.closeCode !== undefined, 'the server reset two streams');
      assert.equal(c.logs.get(refused.id)!.closeCode, H2_ERROR.REFUSED_STREAM);
      assert.equal(c.logs.get(refused.id)!.retryable, true, 'REFUSED_STREAM: not processed, may be retried');
      assert.equal(c.logs.get(reset.id)!.closeCode, H2_ERROR.INTERNAL_ERROR);
      assert.equal(c.logs.get(reset.id)!.retryable, false);
      c.conn.reset(hang, H2_ERROR.CANCEL);
      assert.equal(c.logs.get(hang.id)!.closeCode, H2_ERROR.CANCEL, 'onStreamClose comes for our own reset too');
      await until(() => srv.rstCodes.includes(H2_ERROR.CANCEL), 'the server saw our CANCEL');
    } finally { await closeClient(c); await srv.close(); }
  });

  test('the server\'s SETTINGS_MAX_CONCURRENT_STREAMS: request() reports no capacity, onCapacity when a stream ends', { timeout: TIMEOUT }, async () => {
    const held: http2.ServerHttp2Stream[] = [];
    const srv = await nodeServer((stream) => { held.push(stream); }, { maxConcurrentStreams: 2 });
    const c = await connectH2(srv.port);
    try {
      await until(() => c.conn.peerMaxConcurrentStreams === 2, 'the server\'s SETTINGS');
      const a = c.conn.request(requestHead(srv.port, 'GET', '/1'), true)!;
      const b = c.conn.request(requestHead(srv.port, 'GET', '/2'), true)!;
      assert.ok(a !== undefined && b !== undefined);
      assert.equal(c.conn.request(requestHead(srv.port, 'GET', '/3'), true), undefined, 'a third stream would exceed the server\'s limit');
      assert.equal(c.conn.canOpen, false);
      await until(() => held.length === 2, 'the server holds two streams');
      held[0]!.respond({ ':status': 200 }, { endStream: true });
      await until(() => c.capacity === 1, 'onCapacity');
      const third = c.conn.request(requestHead(srv.port, 'GET', '/3'), true);
      assert.ok(third !== undefined, 'a slot freed');
      await until(() => held.length === 3, 'the server got the third stream');
      assert.deepEqual(srv.rstCodes, [], 'the server refused nothing');
    } finally { await closeClient(c); await srv.close(); }
  });

  test('our own graceful close: no new stream, the stream in flight completes, then the socket closes', { timeout: TIMEOUT }, async () => {
    const held: http2.ServerHttp2Stream[] = [];
    const srv = await nodeServer((stream) => { held.push(stream); });
    let serverGoaway = -1;
    srv.server.on('session', (sess) => sess.on('goaway', (code: number) => { serverGoaway = code; }));
    const c = await connectH2(srv.port);
    try {
      const s = c.conn.request(requestHead(srv.port, 'GET', '/1'), true)!;
      await until(() => held.length === 1, 'the server holds the stream');
      c.conn.goaway();
      assert.equal(c.conn.request(requestHead(srv.port, 'GET', '/2'), true), undefined, 'no new stream once draining');
      await until(() => serverGoaway === H2_ERROR.NO_ERROR, 'the server got GOAWAY NO_ERROR');
      held[0]!.respond({ ':status': 200 });
      held[0]!.end('last');
      await until(() => c.closed, 'the connection closed after the last stream');
      assert.equal(c.logs.get(s.id)!.closeCode, H2_ERROR.NO_ERROR);
      assert.equal(c.logs.get(s.id)!.body(), 'last');
    } finally { await closeClient(c); await srv.close(); }
  });

  test('GOAWAY: a graceful close lets the stream in flight complete; a last-stream-id below open streams fails them as retryable', { timeout: TIMEOUT }, async () => {
    const held: http2.ServerHttp2Stream[] = [];
    const srv = await nodeServer((stream) => { held.push(stream); });
    const c = await connectH2(srv.port);
    try {
      const s1 = c.conn.request(requestHead(srv.port, 'GET', '/1'), true)!;
      const s3 = c.conn.request(requestHead(srv.port, 'GET', '/3'), true)!;
      await until(() => held.length === 2, 'the server holds two streams');
      srv.sessions[0]!.goaway(http2.constants.NGHTTP2_NO_ERROR, s1.id);
      await until(() => c.goaways.length === 1, 'the GOAWAY');
      assert.deepEqual(c.goaways[0], [s1.id, H2_ERROR.NO_ERROR]);
      assert.equal(c.logs.get(s3.id)!.closeCode, H2_ERROR.REFUSED_STREAM);
      assert.equal(c.logs.get(s3.id)!.retryable, true, 'above last-stream-id: not processed, may be retried');
      assert.equal(c.logs.get(s1.id)?.closeCode, undefined, 'the stream at last-stream-id goes on');
      assert.equal(c.conn.request(requestHead(srv.port, 'GET', '/5'), true), undefined, 'no new stream after GOAWAY');
      held[0]!.respond({ ':status': 200 });
      held[0]!.end('done');
      await until(() => c.logs.get(s1.id)?.closeCode !== undefined, 'the first stream completed');
      assert.equal(c.logs.get(s1.id)!.closeCode, H2_ERROR.NO_ERROR);
      assert.equal(c.logs.get(s1.id)!.body(), 'done');
      await until(() => c.closed, 'the drained connection closed');
    } finally { await closeClient(c); await srv.close(); }
  });
});

/**
 * Upstream connection pools (sidecar/src/upstream/pool/) against REAL servers on 127.0.0.1:
 * node:http2 h2c servers for H2Pool, node:http servers for H1Pool. Time-dependent behaviour
 * (connect timeout, idle timeout) is driven by a FakeClock; the only wall-clock waits are
 * liveness bounds.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { Readable } from 'node:stream';
import type { Duplex } from 'node:stream';
import { errors as undiciErrors } from 'undici';
import { FakeClock } from '../../../shared/src/clock';
import { ErrorCodes, MeshError, httpStatusOf } from '../../../shared/src/errors';
import type { ErrorCode } from '../../../shared/src/errors';
import { H2Pool, isRefusedStream } from '../../../sidecar/src/upstream/pool/h2-pool';
import type { H2PoolOptions } from '../../../sidecar/src/upstream/pool/h2-pool';
import { H1Pool } from '../../../sidecar/src/upstream/pool/h1-pool';
import type { H1Exchange, H1RequestOptions } from '../../../sidecar/src/upstream/pool/h1-pool';
import { fromUndiciError } from '../../../sidecar/src/upstream/pool/pool-errors';
import { CONNECT_BACKOFF_BASE_MS, CONNECT_BACKOFF_MAX_MS } from '../../../sidecar/src/upstream/pool/connect-backoff';
import { Cluster } from '../../../sidecar/src/upstream/cluster';
import { closedPort } from '../../support/ports';
import { until } from '../../support/until';
import * as upstreams from '../../support/upstreams';
import { h1Upstream } from '../../support/upstreams';
import type { H2UpstreamServer } from '../../support/upstreams';

const HOST = '127.0.0.1';


function assertCode(err: unknown, code: ErrorCode, re?: RegExp): void {
  assert.ok(err instanceof MeshError, `expected MeshError ${code}, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  if (re !== undefined) assert.match(err.message, re);
}


// --- h2c upstream ------------------------------------------------------------------------

/** An h2c upstream: `/slow` waits for release() (while `hold`), `/refuse` is refused, the rest answer `ok:<path>`. */
interface H2Upstream extends H2UpstreamServer {
  /** `/slow` streams waiting for release(). */
  held: http2.ServerHttp2Stream[];
  /** When false, `/slow` answers at once. */
  hold: boolean;
  release(): void;
}

function answer(stream: http2.ServerHttp2Stream, body: string): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond({ ':status': 200 });
  stream.end(body);
}

async function h2Upstream(settings: http2.Settings = {}): Promise<H2Upstream> {
  const up: H2Upstream = Object.assign(await upstreams.h2Upstream((stream, headers) => {
    const path = headers[':path'];
    if (path === '/slow') {
      if (up.hold) up.held.push(stream);
      else answer(stream, 'slow');
    } else if (path === '/refuse') {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    } else {
      answer(stream, `ok:${path}`);
    }
  }, { settings }), {
    held: [] as http2.ServerHttp2Stream[], hold: true,
    release() {
      up.hold = false;
      for (const s of up.held.splice(0)) answer(s, 'slow');
    },
  });
  return up;
}

interface H2Result { status: number; body: string; stream: http2.ClientHttp2Stream }

/** One GET through the pool; resolves on the stream's 'close' (so pool accounting is done). */
function h2get(pool: H2Pool, path: string): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    pool.request({ ':path': path }, { endStream: true }, (err, stream) => {
      if (err !== null || stream === undefined) {
        reject(err);
        return;
      }
      let status = 0;
      let body = '';
      stream.setEncoding('utf8');
      stream.on('response', (h) => { status = Number(h[':status']); });
      stream.on('data', (c: string) => { body += c; });
      stream.on('error', reject);
      stream.on('close', () => resolve({ status, body, stream }));
    });
  });
}

/** Calls pool.request and returns the error it calls back with (fails if it gets a stream). */
function h2error(pool: H2Pool, path = '/fast'): Promise<unknown> {
  return new Promise((resolve, reject) => {
    pool.request({ ':path': path }, { endStream: true }, (err, stream) => {
      if (err !== null) resolve(err);
      else {
        stream?.close();
        reject(new Error('expected an error, got a stream'));
      }
    });
  });
}

async function withH2(settings: http2.Settings, opts: H2PoolOptions, fn: (up: H2Upstream, pool: H2Pool) => Promise<void>): Promise<void> {
  const up = await h2Upstream(settings);
  const pool = new H2Pool({ address: HOST, port: up.port }, opts);
  try {
    await fn(up, pool);
  } finally {
    up.release();
    await pool.close();
    await up.close();
  }
}

describe('H2Pool', () => {
  test('reuses one session up to the peer\'s max concurrent streams, then opens more (12 streams, limit 5 -> 3 sessions)', async () => {
    await withH2({ maxConcurrentStreams: 5 }, {}, async (up, pool) => {
      const results = Array.from({ length: 12 }, () => h2get(pool, '/slow'));
      await until(() => up.held.length === 12, '12 streams held by the server');
      assert.equal(up.sessions.length, 3);
      const st = pool.stats();
      assert.deepEqual({ sessions: st.sessions, ready: st.ready, busy: st.busy, activeStreams: st.activeStreams, pending: st.pending, connectsTotal: st.connectsTotal },
        { sessions: 3, ready: 1, busy: 2, activeStreams: 12, pending: 0, connectsTotal: 3 });
      assert.deepEqual(pool.sessions().map((s) => [s.state, s.activeStreams, s.maxStreams]),
        [['BUSY', 5, 5], ['BUSY', 5, 5], ['READY', 2, 5]]);
      up.release();
      for (const r of await Promise.all(results)) assert.deepEqual([r.status, r.body], [200, 'slow']);
      assert.equal(pool.stats().activeStreams, 0);

      // Hot path: a READY session with a free slot answers synchronously.
      let sync = false;
      let stream: http2.ClientHttp2Stream | undefined;
      pool.request({ ':path': '/fast' }, { endStream: true }, (err, s) => { assert.equal(err, null); sync = true; stream = s; });
      assert.equal(sync, true);
      stream!.resume();
      await new Promise((r) => stream!.on('close', r));
      assert.equal(pool.stats().connectsTotal, 3);
    });
  });

  test('caps sessions at maxSessions: extra requests queue and complete later; a full queue overflows', async () => {
    await withH2({ maxConcurrentStreams: 2 }, { maxSessions: 2, maxPending: 4 }, async (up, pool) => {
      const first = Array.from({ length: 4 }, () => h2get(pool, '/slow'));
      await until(() => up.held.length === 4, '4 streams held');
      const queued = Array.from({ length: 4 }, () => h2get(pool, '/slow'));
      let st = pool.stats();
      assert.deepEqual([st.sessions, st.busy, st.activeStreams, st.pending], [2, 2, 4, 4]);
      assertCode(await h2error(pool), ErrorCodes.UPSTREAM_OVERFLOW);
      up.release();
      for (const r of await Promise.all([...first, ...queued])) assert.deepEqual([r.status, r.body], [200, 'slow']);
      st = pool.stats();
      assert.deepEqual([st.connectsTotal, st.pending, st.activeStreams], [2, 0, 0]);
      assert.equal(up.sessions.length, 2);
    });
  });

  test('connect refused fails every queued request with UPSTREAM_CONNECT_FAILURE; during the reconnect backoff requests fail at once without dialling; after it the next request reconnects', async () => {
    const clock = new FakeClock();
    const ev = countingEvents();
    const pool = new H2Pool({ address: HOST, port: await closedPort() }, { clock, connectionEvents: ev });
    try {
      const errs = await Promise.all([h2error(pool), h2error(pool), h2error(pool)]);
      assert.deepEqual([ev.attempts, ev.failures], [1, 1], 'the cluster hears of the attempt and its failure (upstream_cx_total, upstream_cx_connect_fail)');
      for (const e of errs) assertCode(e, ErrorCodes.UPSTREAM_CONNECT_FAILURE, /ECONNREFUSED/);
      assert.equal(httpStatusOf(errs[0]), 503);
      assert.deepEqual([pool.stats().sessions, pool.stats().connectsTotal, pool.stats().connectFailures], [0, 1, 1]);
      for (let i = 0; i < 5; i++) assertCode(await h2error(pool), ErrorCodes.UPSTREAM_CONNECT_FAILURE, /ECONNREFUSED/);
      assert.equal(pool.stats().connectsTotal, 1, 'no dial during the backoff');
      clock.advance(CONNECT_BACKOFF_BASE_MS); // the first backoff is at most the base
      assertCode(await h2error(pool), ErrorCodes.UPSTREAM_CONNECT_FAILURE);
      assert.deepEqual([pool.stats().connectsTotal, pool.stats().connectFailures], [2, 2]);
      assertCode(await h2error(pool), ErrorCodes.UPSTREAM_CONNECT_FAILURE);
      assert.equal(pool.stats().connectsTotal, 2, 'the second backoff holds too');
      clock.advance(CONNECT_BACKOFF_MAX_MS);
      assertCode(await h2error(pool), ErrorCodes.UPSTREAM_CONNECT_FAILURE);
      assert.equal(pool.stats().connectsTotal, 3);
    } finally {
      await pool.close();
    }
  });

  test('a successful connect ends the backoff: a host that comes back is dialled and served', async () => {
    const clock = new FakeClock();
    const port = await closedPort();
    const pool = new H2Pool({ address: HOST, port }, { clock });
    let server: http2.Http2Server | undefined;
    try {
      assertCode(await h2error(pool), ErrorCodes.UPSTREAM_CONNECT_FAILURE);
      server = http2.createServer((_req, res) => res.end('back'));
      await new Promise<void>((r) => server!.listen(port, HOST, () => r()));
      assertCode(await h2error(pool), ErrorCodes.UPSTREAM_CONNECT_FAILURE, /ECONNREFUSED/); // still in backoff
      clock.advance(CONNECT_BACKOFF_MAX_MS);
      assert.equal((await h2get(pool, '/')).body, 'back');
      assert.equal(pool.stats().connectFailures, 0);
    } finally {
      await pool.close();
      server?.close();
    }
  });

  test('a peer that accepts TCP but never sends SETTINGS hits the connect timeout (FakeClock)', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => { sockets.push(s); s.resume(); });
    await new Promise<void>((r) => silent.listen(0, HOST, r));
    const clock = new FakeClock();
    const pool = new H2Pool({ address: HOST, port: (silent.address() as net.AddressInfo).port }, { clock, connectTimeoutMs: 5000 });
    try {
      const errs: unknown[] = [];
      for (let i = 0; i < 3; i++) pool.request({ ':path': '/' }, { endStream: true }, (err) => errs.push(err));
      await until(() => sockets.length === 1, 'TCP connection accepted');
      assert.deepEqual([pool.stats().connecting, pool.stats().pending], [1, 3]);
      clock.advance(4999);
      assert.equal(errs.length, 0);
      clock.advance(1);
      assert.equal(errs.length, 3);
      for (const e of errs) assertCode(e, ErrorCodes.UPSTREAM_CONNECT_TIMEOUT, /5000ms/);
      assert.deepEqual([pool.stats().sessions, pool.stats().pending], [0, 0]);
    } finally {
      await pool.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  test('connect timeout with the system clock (200 ms)', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => { sockets.push(s); s.resume(); });
    await new Promise<void>((r) => silent.listen(0, HOST, r));
    const pool = new H2Pool({ address: HOST, port: (silent.address() as net.AddressInfo).port }, { connectTimeoutMs: 200 });
    try {
      assertCode(await h2error(pool), ErrorCodes.UPSTREAM_CONNECT_TIMEOUT);
    } finally {
      await pool.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  test('GOAWAY: the session drains (in-flight stream completes) and new requests go to a new session', async () => {
    await withH2({}, {}, async (up, pool) => {
      const slow = h2get(pool, '/slow');
      await until(() => up.held.length === 1, 'slow stream held');
      const held = up.held[0]!;
      held.session!.goaway(http2.constants.NGHTTP2_NO_ERROR, held.id!);
      await until(() => pool.stats().draining === 1, 'session DRAINING after GOAWAY');
      const fresh = await h2get(pool, '/fast');
      assert.deepEqual([fresh.status, fresh.body], [200, 'ok:/fast']);
      assert.equal(up.sessions.length, 2);
      assert.deepEqual(pool.sessions().map((s) => s.state), ['DRAINING', 'READY']);
      up.release();
      const r = await slow;
      assert.deepEqual([r.status, r.body], [200, 'slow']);
      await until(() => pool.stats().sessions === 1, 'drained session removed');
      assert.deepEqual([pool.stats().draining, pool.stats().connectsTotal], [0, 2]);
    });
  });

  test('a session whose connection broke (the peer died) is dropped at once: no new stream goes to it, the next request opens a new session', async () => {
    await withH2({}, {}, async (up, pool) => {
      assert.equal((await h2get(pool, '/fast')).status, 200);
      assert.equal(pool.stats().ready, 1);
      up.sockets[0]!.destroy(); // as a SIGKILLed peer: the TCP connection just ends, no GOAWAY
      await until(() => pool.stats().sessions === 0, 'the broken session to leave the pool');
      const r = await h2get(pool, '/fast');
      assert.deepEqual([r.status, r.body], [200, 'ok:/fast']);
      assert.deepEqual([up.sessions.length, pool.stats().connectsTotal, pool.stats().connectFailures], [2, 2, 0]);
    });
  });

  test('REFUSED_STREAM is detectable on the stream\'s close', async () => {
    await withH2({}, {}, async (_up, pool) => {
      const refused = await new Promise<http2.ClientHttp2Stream>((resolve, reject) => {
        pool.request({ ':path': '/refuse' }, { endStream: true }, (err, s) => {
          if (err !== null || s === undefined) return reject(err);
          s.on('error', () => {});
          s.on('close', () => resolve(s));
          s.resume();
        });
      });
      assert.equal(isRefusedStream(refused), true);
      assert.equal(isRefusedStream((await h2get(pool, '/fast')).stream), false);
    });
  });

  test('drain(): fails queued requests and new ones with POOL_CLOSED, resolves after in-flight streams complete', async () => {
    await withH2({ maxConcurrentStreams: 1 }, { maxSessions: 1 }, async (up, pool) => {
      const order: string[] = [];
      const slow = h2get(pool, '/slow').then((r) => { order.push('slow'); return r; });
      await until(() => up.held.length === 1, 'slow stream held');
      const queued = h2error(pool);
      assert.equal(pool.stats().pending, 1);
      const drained = pool.drain().then(() => { order.push('drained'); });
      assertCode(await queued, ErrorCodes.POOL_CLOSED);
      assertCode(await h2error(pool), ErrorCodes.POOL_CLOSED);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(order, []);
      assert.equal(pool.stats().draining, 1);
      up.release();
      const r = await slow;
      await drained;
      assert.deepEqual([r.status, r.body], [200, 'slow']);
      assert.deepEqual(order, ['slow', 'drained']);
      assert.equal(pool.stats().sessions, 0);
    });
  });

  test('close(): destroys sessions and in-flight streams now', async () => {
    await withH2({}, {}, async (up, pool) => {
      const slow = h2get(pool, '/slow').then((r) => r, (e: unknown) => e);
      await until(() => up.held.length === 1, 'slow stream held');
      await pool.close();
      const r = await slow;
      assert.ok(r instanceof Error || (r as H2Result).status === 0, 'the in-flight stream did not complete');
      assert.equal(pool.stats().sessions, 0);
      assertCode(await h2error(pool), ErrorCodes.POOL_CLOSED);
    });
  });

  test('idle timeout (FakeClock): a session with no streams for idleTimeoutMs is closed; the next request reconnects', async () => {
    const clock = new FakeClock();
    await withH2({}, { clock, idleTimeoutMs: 1000 }, async (up, pool) => {
      assert.equal((await h2get(pool, '/a')).status, 200);
      assert.deepEqual(pool.sessions().map((s) => s.state), ['READY']);
      clock.advance(999);
      assert.deepEqual(pool.sessions().map((s) => s.state), ['READY']);
      // A stream in between restarts the idle period.
      assert.equal((await h2get(pool, '/b')).status, 200);
      clock.advance(999);
      assert.deepEqual(pool.sessions().map((s) => s.state), ['READY']);
      clock.advance(1);
      assert.deepEqual(pool.sessions().map((s) => s.state), ['DRAINING']);
      await until(() => pool.stats().sessions === 0, 'idle session closed');
      assert.equal((await h2get(pool, '/c')).status, 200);
      assert.equal(pool.stats().connectsTotal, 2);
      assert.equal(up.sessions.length, 2);
    });
  });
});

describe('H2Pool: maxRequestsPerConnection (max_requests_per_connection)', () => {
  test('3: 9 sequential streams use exactly 3 sessions; a session that reached 3 takes no new stream and closes once idle', async () => {
    await withH2({}, { maxRequestsPerConnection: 3 }, async (up, pool) => {
      for (let i = 0; i < 9; i++) assert.deepEqual((await h2get(pool, `/n/${i}`)).body, `ok:/n/${i}`);
      assert.equal(up.sessions.length, 3);
      assert.equal(pool.stats().connectsTotal, 3);
      await until(() => pool.stats().sessions === 0, 'every session closed after its 3rd stream ended');
    });
  });

  test('3: 9 concurrent streams open exactly 3 sessions of 3 streams; each is DRAINING until its streams end', async () => {
    await withH2({}, { maxRequestsPerConnection: 3 }, async (up, pool) => {
      const results = Array.from({ length: 9 }, () => h2get(pool, '/slow'));
      await until(() => up.held.length === 9, '9 streams held by the server');
      assert.equal(up.sessions.length, 3);
      assert.deepEqual(pool.sessions().map((s) => [s.state, s.activeStreams, s.streamsTotal]),
        [['DRAINING', 3, 3], ['DRAINING', 3, 3], ['DRAINING', 3, 3]]);
      up.release();
      for (const r of await Promise.all(results)) assert.equal(r.status, 200);
      await until(() => pool.stats().sessions === 0, 'the drained sessions closed');
      assert.equal((await h2get(pool, '/after')).status, 200);
      assert.equal(up.sessions.length, 4, 'a new session for the next request');
    });
  });
});

// --- HTTP/1.1 upstream -------------------------------------------------------------------

interface H1Result { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; trailers: Record<string, string | string[] | undefined> }

/** One request through the pool. `pauseEvery` > 0 makes the handler push back every n-th chunk. */
function h1call(pool: H1Pool, opts: H1RequestOptions, pauseEvery = 0): Promise<H1Result> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let headers: H1Result['headers'] = {};
    const chunks: Buffer[] = [];
    let n = 0;
    let exchange: H1Exchange | undefined = undefined;
    exchange = pool.request(opts, {
      onHead(s, h) { status = s; headers = h; },
      onData(c) {
        chunks.push(c);
        if (pauseEvery > 0 && ++n % pauseEvery === 0) {
          setImmediate(() => exchange!.resume());
          return false;
        }
        return true;
      },
      onEnd(trailers) { resolve({ status, headers, body: Buffer.concat(chunks), trailers }); },
      onError: reject,
    });
  });
}

const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

describe('H1Pool', () => {
  // undici reuses a keep-alive socket one event-loop turn after its response completes (it
  // checks the server did not close it), so each next request is issued a turn later, as a
  // new downstream request would be.
  test('keeps connections alive: 20 sequential requests use 1 connection', async () => {
    const up = await h1Upstream((req, res) => res.end(`hi ${req.url}`));
    const pool = new H1Pool({ address: HOST, port: up.port });
    try {
      for (let i = 0; i < 20; i++) {
        const r = await h1call(pool, { method: 'GET', path: `/n/${i}` });
        assert.deepEqual([r.status, r.body.toString()], [200, `hi /n/${i}`]);
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(up.accepted, 1);
      assert.equal(pool.stats().connected, 1);
    } finally {
      await pool.close();
      await up.close();
    }
  });

  test('streams 5 MB each way with backpressure; passes status, headers and trailers', async () => {
    const SIZE = 5 * 1024 * 1024;
    const reqBody = crypto.randomBytes(SIZE);
    const resBody = crypto.randomBytes(SIZE);
    const up = await h1Upstream((req, res) => {
      const h = crypto.createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => { h.update(c); n += c.length; });
      req.on('end', () => {
        res.writeHead(201, { 'x-req-sha256': h.digest('hex'), 'x-req-bytes': String(n), trailer: 'x-res-sha256' });
        const src = Readable.from(chunksOf(resBody, 64 * 1024));
        src.on('data', (c: Buffer) => { if (!res.write(c)) { src.pause(); res.once('drain', () => src.resume()); } });
        src.on('end', () => { res.addTrailers({ 'x-res-sha256': sha256(resBody) }); res.end(); });
      });
    });
    const pool = new H1Pool({ address: HOST, port: up.port });
    try {
      const r = await h1call(pool, { method: 'POST', path: '/echo', headers: { 'content-type': 'application/octet-stream' }, body: Readable.from(chunksOf(reqBody, 16 * 1024)) }, 3);
      assert.equal(r.status, 201);
      assert.equal(r.headers['x-req-bytes'], String(SIZE));
      assert.equal(r.headers['x-req-sha256'], sha256(reqBody));
      assert.equal(r.body.length, SIZE);
      assert.equal(sha256(r.body), sha256(resBody));
      assert.equal(r.trailers['x-res-sha256'], sha256(resBody));
    } finally {
      await pool.close();
      await up.close();
    }
  });

  test('maps connection refused to UPSTREAM_CONNECT_FAILURE, then fails at once without dialling until the reconnect backoff passes', async () => {
    const clock = new FakeClock();
    const ev = countingEvents();
    const pool = new H1Pool({ address: HOST, port: await closedPort() }, { clock, connectionEvents: ev });
    const fail = () => h1call(pool, { method: 'GET', path: '/' }).then(() => undefined, (e: unknown) => e);
    try {
      assertCode(await fail(), ErrorCodes.UPSTREAM_CONNECT_FAILURE, /ECONNREFUSED/);
      assert.equal(pool.stats().connectFailures, 1);
      assert.deepEqual([ev.attempts, ev.failures], [1, 1], 'the cluster hears of the attempt and its failure (upstream_cx_total, upstream_cx_connect_fail)');
      for (let i = 0; i < 5; i++) assertCode(await fail(), ErrorCodes.UPSTREAM_CONNECT_FAILURE, /ECONNREFUSED/);
      assert.equal(pool.stats().connectFailures, 1, 'no dial (and so no new failure) during the backoff');
      clock.advance(CONNECT_BACKOFF_BASE_MS);
      assertCode(await fail(), ErrorCodes.UPSTREAM_CONNECT_FAILURE);
      assert.equal(pool.stats().connectFailures, 2, 'dialled again after the backoff');
    } finally {
      await pool.close();
    }
  });

  test('maps a connection dropped mid-response to UPSTREAM_RESET', async () => {
    const up = await h1Upstream((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial', () => res.socket?.destroy());
    });
    const pool = new H1Pool({ address: HOST, port: up.port });
    try {
      const err = await h1call(pool, { method: 'GET', path: '/' }).then(() => undefined, (e: unknown) => e);
      assertCode(err, ErrorCodes.UPSTREAM_RESET);
    } finally {
      await pool.close();
      await up.close();
    }
  });

  test('upgrade: 101 hands over a duplex socket (echo tunnel); a refusal passes through as a response', async () => {
    const up = await h1Upstream((_req, res) => res.end('no upgrade'), { onUpgrade: (req, socket, head) => {
      if (req.url === '/deny') {
        socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 5\r\nconnection: close\r\n\r\nnope!');
        return;
      }
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n');
      if (head.length > 0) socket.write(head);
      socket.pipe(socket);
    } });
    const pool = new H1Pool({ address: HOST, port: up.port });
    try {
      const { status, socket } = await new Promise<{ status: number; socket: Duplex }>((resolve, reject) => {
        pool.request({ method: 'GET', path: '/ws', headers: { 'sec-websocket-version': '13' }, upgrade: 'websocket' }, {
          onHead: () => reject(new Error('expected an upgrade')),
          onData: () => true,
          onEnd: () => {},
          onError: reject,
          onUpgrade: (s, _h, sock) => resolve({ status: s, socket: sock }),
        });
      });
      assert.equal(status, 101);
      const payload = crypto.randomBytes(100_000);
      const echoed: Buffer[] = [];
      let got = 0;
      const done = new Promise<void>((r) => socket.on('data', (c: Buffer) => { echoed.push(c); got += c.length; if (got >= payload.length) r(); }));
      socket.write(payload);
      await done;
      assert.equal(sha256(Buffer.concat(echoed)), sha256(payload));
      socket.destroy();

      const denied = await h1call(pool, { method: 'GET', path: '/deny', upgrade: 'websocket' });
      assert.deepEqual([denied.status, denied.body.toString()], [403, 'nope!']);
    } finally {
      await pool.close();
      await up.close();
    }
  });

  test('abort(): an in-flight and a still-queued request both end in onError; the queued one is never sent', async () => {
    let requests = 0;
    const up = await h1Upstream(() => { requests++; /* never answers */ });
    const pool = new H1Pool({ address: HOST, port: up.port }, { connections: 1 });
    try {
      const errs: unknown[] = [];
      const handler = { onHead: () => {}, onData: () => true, onEnd: () => errs.push('ended'), onError: (e: MeshError) => errs.push(e) };
      const inFlight = pool.request({ method: 'GET', path: '/a' }, handler);
      await until(() => requests === 1, 'first request at the server');
      const queued = pool.request({ method: 'GET', path: '/b' }, handler);
      const why = new Error('downstream went away');
      queued.abort(why);
      inFlight.abort(why);
      await until(() => errs.length === 2, 'both requests failed');
      for (const e of errs) {
        assertCode(e, ErrorCodes.UPSTREAM_RESET, /downstream went away/);
        assert.equal((e as MeshError).cause, why);
      }
      assert.equal(requests, 1);
    } finally {
      await pool.close();
      await up.close();
    }
  });

  test('drain/close: later requests fail with POOL_CLOSED', async () => {
    const up = await h1Upstream((_req, res) => res.end('ok'));
    const pool = new H1Pool({ address: HOST, port: up.port });
    try {
      assert.equal((await h1call(pool, { method: 'GET', path: '/' })).status, 200);
      await pool.drain();
      const err = await h1call(pool, { method: 'GET', path: '/' }).then(() => undefined, (e: unknown) => e);
      assertCode(err, ErrorCodes.POOL_CLOSED);
    } finally {
      await pool.close();
      await up.close();
    }
  });
});

describe('H1Pool: maxRequestsPerConnection (max_requests_per_connection)', () => {
  for (const [max, requests, connections] of [[3, 9, 3], [1, 4, 4]] as const) {
    test(`${max}: ${requests} sequential requests use exactly ${connections} connections`, async () => {
      const up = await h1Upstream((req, res) => res.end(`hi ${req.url}`));
      // One connection at a time: undici's Pool may otherwise send the next request on a new
      // connection while an older one is still open, and the count would depend on timing.
      const pool = new H1Pool({ address: HOST, port: up.port }, { maxRequestsPerConnection: max, connections: 1 });
      try {
        for (let i = 0; i < requests; i++) {
          const r = await h1call(pool, { method: 'GET', path: `/n/${i}` });
          assert.deepEqual([r.status, r.body.toString()], [200, `hi /n/${i}`]);
          await new Promise((resolve) => setImmediate(resolve));
        }
        assert.equal(up.accepted, connections);
      } finally {
        await pool.close();
        await up.close();
      }
    });
  }
});

describe('Cluster: max_requests_per_connection reaches the host pools', () => {
  test('h1 and h2: 4 sequential requests with a limit of 2 use 2 connections', async () => {
    const h1 = await h1Upstream((_req, res) => res.end('ok'));
    const h2 = await h2Upstream();
    const base = { type: 'STATIC', lbPolicy: 'round_robin', connectTimeoutMs: 1000, maxRequestsPerConnection: 2 } as const;
    // max_connections 1 keeps the h1 pool at one connection at a time (see above).
    const c1 = new Cluster({ ...base, name: 'c1', edsServiceName: 'c1', protocol: 'h1', circuitBreakers: { maxConnections: 1 } }, new FakeClock());
    const c2 = new Cluster({ ...base, name: 'c2', edsServiceName: 'c2', protocol: 'h2' }, new FakeClock());
    c1.updateEndpoints([{ address: HOST, port: h1.port, weight: 1, zone: '', health: 'HEALTHY' }]);
    c2.updateEndpoints([{ address: HOST, port: h2.port, weight: 1, zone: '', health: 'HEALTHY' }]);
    try {
      for (let i = 0; i < 4; i++) {
        assert.equal((await h1call(c1.pool(c1.allHosts()[0]!) as H1Pool, { method: 'GET', path: '/' })).status, 200);
        assert.equal((await h2get(c2.pool(c2.allHosts()[0]!) as H2Pool, '/')).status, 200);
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(h1.accepted, 2);
      assert.equal(h2.sessions.length, 2);
    } finally {
      c1.close();
      c2.close();
      await h1.close();
      h2.release();
      await h2.close();
    }
  });
});

describe('pool error mapping', () => {
  const errno = (code: string, syscall: string): Error => Object.assign(new Error(`${syscall} ${code}`), { code, syscall });
  const table: [string, unknown, ErrorCode][] = [
    ['undici connect timeout', new undiciErrors.ConnectTimeoutError(), ErrorCodes.UPSTREAM_CONNECT_TIMEOUT],
    ['ECONNREFUSED', errno('ECONNREFUSED', 'connect'), ErrorCodes.UPSTREAM_CONNECT_FAILURE],
    ['DNS failure', errno('ENOTFOUND', 'getaddrinfo'), ErrorCodes.UPSTREAM_CONNECT_FAILURE],
    ['undici socket error', new undiciErrors.SocketError('other side closed'), ErrorCodes.UPSTREAM_RESET],
    ['ECONNRESET on read', errno('ECONNRESET', 'read'), ErrorCodes.UPSTREAM_RESET],
    ['parser error', Object.assign(new undiciErrors.HTTPParserError('bad'), { code: 'HPE_INVALID_CONSTANT' }), ErrorCodes.UPSTREAM_RESET],
    ['pool destroyed', new undiciErrors.ClientDestroyedError(), ErrorCodes.POOL_CLOSED],
    ['pool closed', new undiciErrors.ClientClosedError(), ErrorCodes.POOL_CLOSED],
    ['bad argument', new undiciErrors.InvalidArgumentError('invalid transfer-encoding header'), ErrorCodes.INTERNAL],
    ['MeshError passes through', new MeshError(ErrorCodes.UPSTREAM_OVERFLOW, 'x'), ErrorCodes.UPSTREAM_OVERFLOW],
  ];
  for (const [name, err, code] of table) {
    test(name, () => {
      const m = fromUndiciError('10.0.0.1:80', err);
      assert.equal(m.code, code);
      if (err !== m) assert.equal(m.cause, err);
    });
  }

  test('new upstream codes map to 503', () => {
    for (const code of [ErrorCodes.UPSTREAM_CONNECT_FAILURE, ErrorCodes.UPSTREAM_CONNECT_TIMEOUT, ErrorCodes.UPSTREAM_OVERFLOW, ErrorCodes.UPSTREAM_RESET, ErrorCodes.POOL_CLOSED]) {
      assert.equal(httpStatusOf(new MeshError(code, 'x')), 503);
    }
  });
});

function* chunksOf(buf: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

/** Connection events as a cluster counts them (cluster.<c>.upstream_cx_total / upstream_cx_connect_fail). */
function countingEvents(): { attempts: number; failures: number; connectAttempt(): void; connectFailed(): void } {
  return { attempts: 0, failures: 0, connectAttempt() { this.attempts++; }, connectFailed() { this.failures++; } };
}

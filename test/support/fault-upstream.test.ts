import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { greeterClient } from '../../shared/src/sample-app/greeter';
import type { GreeterClient, HelloReply } from '../../shared/src/sample-app/greeter';
import { ATTEMPT_HEADER, FaultUpstream, grpcFrame, grpcTimeoutMs, HEALTH_CHECK, NO_ATTEMPT, SAY_HELLO } from './fault-upstream';

/**
 * The fault-injectable upstream the resilience tests count on: each mode, proved with plain
 * clients (grpc-js, node:http2, node:http) and exact counts.
 */
const { NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_CANCEL } = http2.constants;

type Outcome = { reply?: HelloReply; error?: grpc.ServiceError };
const call = (c: GreeterClient, name: string, md = new grpc.Metadata()): Promise<Outcome> => new Promise((resolve) => {
  c.SayHello({ name }, md, { deadline: Date.now() + 10_000 }, (error, reply) => resolve(error ? { error } : { reply: reply! }));
});

interface H2Result { headers: http2.IncomingHttpHeaders | undefined; trailers: http2.IncomingHttpHeaders | undefined; body: Buffer; rstCode: number; error: string | undefined }

/** One request on `session`; resolves when its stream closed, whatever happened. */
function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): { done: Promise<H2Result>; stream: http2.ClientHttp2Stream } {
  const stream = session.request({ ':method': 'POST', ':path': SAY_HELLO, 'content-type': 'application/grpc', te: 'trailers', ...headers });
  const r: H2Result = { headers: undefined, trailers: undefined, body: Buffer.alloc(0), rstCode: 0, error: undefined };
  const chunks: Buffer[] = [];
  stream.on('response', (h) => { r.headers = h; });
  stream.on('trailers', (t) => { r.trailers = t; });
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('error', (e: Error) => { r.error = e.message; });
  const done = new Promise<H2Result>((resolve) => stream.on('close', () => { r.body = Buffer.concat(chunks); r.rstCode = stream.rstCode ?? 0; resolve(r); }));
  stream.end(body ?? grpcFrame(Buffer.from([0x0a, 0x01, 0x78]))); // HelloRequest{name: "x"}
  return { done, stream };
}

function h1(address: string, opts: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string } | { error: string }> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const req = http.request({ host: address.slice(0, i), port: Number(address.slice(i + 1)), method: opts.method ?? 'GET', path: opts.path ?? '/', agent: false, headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end(opts.body);
  });
}

const fails = (i: number, p: number): boolean => Math.floor(((i + 1) * p) / 100) > Math.floor((i * p) / 100);

describe('FaultUpstream: a test upstream whose faults are exact', () => {
  const cleanup: (() => unknown)[] = [];
  const upstream = async (name = 'u1'): Promise<FaultUpstream> => {
    const u = await FaultUpstream.start({ name });
    cleanup.push(() => u.close());
    return u;
  };
  const client = (u: FaultUpstream): GreeterClient => {
    const c = greeterClient(u.address, grpc.credentials.createInsecure(), { 'grpc.enable_retries': 0 });
    cleanup.push(() => c.close());
    return c;
  };
  const session = (u: FaultUpstream): http2.ClientHttp2Session => {
    const s = http2.connect(`http://${u.address}`);
    s.on('error', () => undefined);
    cleanup.push(() => s.destroy());
    return s;
  };
  afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f(); });

  test('serves Greeter/SayHello over h2c to grpc-js and counts requests, paths, attempts, connections and POST bodies', async () => {
    const u = await upstream('alpha');
    const c = client(u);
    for (let i = 0; i < 5; i++) {
      const { reply, error } = await call(c, `n${i}`);
      assert.equal(error, undefined);
      assert.deepEqual({ message: reply!.message, backend: reply!.backend, version: reply!.version }, { message: `hello n${i}`, backend: 'alpha', version: 'v1' });
    }
    assert.equal(u.requests, 5);
    assert.equal(u.succeeded, 5);
    assert.equal(u.failed, 0);
    assert.deepEqual([...u.byPath], [[SAY_HELLO, 5]]);
    assert.deepEqual([...u.byMethod], [['POST', 5]]);
    assert.deepEqual([...u.byAttempt], [[NO_ATTEMPT, 5]]);
    assert.equal(u.connections, 1, 'grpc-js used one connection');
    assert.equal(u.postBodies.length, 5);
    assert.deepEqual(u.postBodies, u.seen.map((s) => s.bodyBytes));
    assert.equal(u.postBodies[0], 5 + 4, 'frame header + HelloRequest{name: "n0"}');
    await u.waitFor((x) => x.open === 0, 'no open requests');
  });

  test('fails exactly p% of answers, at the indices floor((i+1)p/100) > floor(ip/100), as gRPC UNAVAILABLE trailers-only', async () => {
    const u = await upstream();
    const c = client(u);
    u.failPercent = 30;
    const failedAt: number[] = [];
    for (let i = 0; i < 100; i++) {
      const { error } = await call(c, `n${i}`);
      if (error) {
        failedAt.push(i);
        assert.equal(error.code, grpc.status.UNAVAILABLE);
        assert.equal(error.details, 'injected failure');
        assert.deepEqual(error.metadata.get('x-upstream'), ['u1']);
      }
    }
    assert.deepEqual(failedAt, Array.from({ length: 100 }, (_, i) => i).filter((i) => fails(i, 30)));
    assert.equal(failedAt.length, 30);
    assert.deepEqual(failedAt.slice(0, 4), [3, 6, 9, 13]);
    assert.deepEqual([u.failed, u.succeeded, u.requests], [30, 70, 100]);

    // The sequence continues across a change of p: the next 200 answers at 25% fail 50 times.
    u.failPercent = 25;
    let n = 0;
    for (let i = 0; i < 200; i++) if ((await call(c, 'x')).error) n++;
    assert.equal(n, 50);

    // A chosen status, and the trailers-only shape (one HEADERS frame, no DATA, no trailers).
    u.failPercent = 100;
    u.failWith = { http: 429, grpc: grpc.status.RESOURCE_EXHAUSTED, message: 'slow down' };
    const e = (await call(c, 'x')).error!;
    assert.equal(e.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(e.details, 'slow down');
    const raw = await h2Request(session(u), {}).done;
    assert.equal(raw.headers?.[':status'], 200);
    assert.equal(raw.headers?.['grpc-status'], '8');
    assert.equal(raw.body.length, 0);
    assert.equal(raw.trailers, undefined);
  });

  test('speaks HTTP/1.1 on the same port: JSON answers, p% failures with the chosen status, POST body lengths, attempt headers', async () => {
    const u = await upstream('web');
    const get = await h1(u.address, { path: '/a?b=1' });
    assert.ok('status' in get, JSON.stringify(get));
    assert.equal(get.status, 200);
    assert.equal(get.headers['x-upstream'], 'web');
    assert.deepEqual(JSON.parse(get.body), { upstream: 'web', method: 'GET', url: '/a?b=1', bodyBytes: 0, attempt: null });
    for (const [len, attempt] of [[0, '1'], [10, '2'], [100_000, '2']] as const) {
      const r = await h1(u.address, { method: 'POST', path: '/up', body: Buffer.alloc(len, 1), headers: { [ATTEMPT_HEADER]: attempt, 'content-length': String(len) } });
      assert.ok('status' in r && r.status === 200, JSON.stringify(r));
      assert.equal(JSON.parse(r.body).attempt, attempt);
    }
    assert.deepEqual(u.postBodies, [0, 10, 100_000]);
    assert.deepEqual([...u.byAttempt].sort(), [['1', 1], ['2', 2], [NO_ATTEMPT, 1]]);
    assert.deepEqual([...u.byPath].sort(), [['/a', 1], ['/up', 3]]);
    assert.deepEqual([...u.byMethod].sort(), [['GET', 1], ['POST', 3]]);
    assert.equal(u.connections, 4, 'agent: false opens one connection per request');

    u.failPercent = 50;
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) { const r = await h1(u.address); statuses.push('status' in r ? r.status : 0); }
    // Answers 4..13 of this upstream: at 50%, every odd index fails.
    assert.deepEqual(statuses, [200, 503, 200, 503, 200, 503, 200, 503, 200, 503]);
    u.failWith = { http: 429, grpc: 8, message: 'x' };
    u.failPercent = 100;
    const r = await h1(u.address);
    assert.ok('status' in r && r.status === 429);
  });

  test('delayMs answers after that much real time, with the request open meanwhile', async () => {
    const u = await upstream();
    const c = client(u);
    u.delayMs = 200;
    let answered = false;
    const t0 = performance.now();
    const p = call(c, 'slow').then((o) => { answered = true; return o; });
    await u.waitFor((x) => x.requests === 1 && x.open === 1, 'the request to arrive');
    assert.equal(answered, false);
    const { error } = await p;
    assert.equal(error, undefined);
    // A loose lower bound on our own timer (libuv's cached loop time may start it a little early).
    assert.ok(performance.now() - t0 >= 180, `answered after ${performance.now() - t0} ms`);
    await u.waitFor((x) => x.open === 0, 'the request to finish');
  });

  test('hold keeps requests open until release(), then answers each with the outcome it got on arrival', async () => {
    const u = await upstream();
    const c = client(u);
    u.hold = true;
    u.failPercent = 50; // answers 0, 2 succeed; 1 fails
    let answered = 0;
    const calls = [0, 1, 2].map((i) => call(c, `h${i}`).then((o) => { answered++; return o; }));
    await u.waitFor((x) => x.open === 3 && x.seen.every((s) => s.bodyBytes >= 0), '3 held requests');
    assert.equal(answered, 0);
    assert.equal(u.peakOpen, 3);
    u.failPercent = 0; // too late: held requests keep their outcome
    u.release();
    const out = await Promise.all(calls);
    assert.deepEqual(out.map((o) => o.error?.code ?? 0).sort(), [0, 0, grpc.status.UNAVAILABLE]);
    await u.waitFor((x) => x.open === 0, 'no open requests');
    u.hold = false;
    assert.equal((await call(c, 'after')).error, undefined);
  });

  test('reset sends RST_STREAM with the chosen code once the request body arrived; the connection stays up', async () => {
    const u = await upstream();
    const s = session(u);
    u.reset = NGHTTP2_REFUSED_STREAM;
    const a = await h2Request(s, {}, grpcFrame(Buffer.alloc(1000))).done;
    assert.equal(a.rstCode, NGHTTP2_REFUSED_STREAM);
    assert.equal(a.headers, undefined, 'no response headers before the reset');
    u.reset = NGHTTP2_INTERNAL_ERROR;
    const b = await h2Request(s, {}).done;
    assert.equal(b.rstCode, NGHTTP2_INTERNAL_ERROR);
    assert.deepEqual(u.postBodies, [1005, 8], 'each body fully arrived before the reset');
    u.reset = false;
    const c = await h2Request(s, {}).done;
    assert.equal(c.trailers?.['grpc-status'], '0');
    assert.deepEqual([u.requests, u.resets, u.succeeded, u.connections], [3, 2, 1, 1]);

    // HTTP/1.1 has no stream to reset: the connection is reset.
    u.reset = NGHTTP2_INTERNAL_ERROR;
    const r = await h1(u.address, { method: 'POST', body: Buffer.alloc(10), headers: { 'content-length': '10' } });
    assert.deepEqual(r, { error: 'ECONNRESET' });
    assert.deepEqual(u.postBodies, [1005, 8, 8, 10]);
    assert.equal(u.resets, 3);
    await u.waitFor((x) => x.open === 0, 'no open requests');
  });

  test('closeConnection drops the connection on a request (h2 and HTTP/1.1); clients reconnect afterwards', async () => {
    const u = await upstream();
    const c = client(u);
    assert.equal((await call(c, 'warm')).error, undefined);
    u.closeConnection = true;
    const { error } = await call(c, 'dropped');
    assert.equal(error?.code, grpc.status.UNAVAILABLE);
    await u.waitFor((x) => x.openConnections === 0, 'the connection to close');
    u.closeConnection = false;
    assert.equal((await call(c, 'again')).error, undefined);
    assert.deepEqual([u.requests, u.closes, u.succeeded, u.connections], [3, 1, 2, 2]);

    u.closeConnection = true;
    const r = await h1(u.address);
    assert.ok('error' in r, JSON.stringify(r));
    assert.equal(u.closes, 2);
  });

  test('blackhole accepts and never answers, never closes; the request ends only when the client gives up', async () => {
    const u = await upstream();
    const s = session(u);
    u.blackhole = true;
    const { done, stream } = h2Request(s, {});
    await u.waitFor((x) => x.blackholed === 1 && x.open === 1, 'the request to be swallowed');
    // The connection is alive: a PING round-trips, and a normal request on it is answered.
    await new Promise<void>((resolve, reject) => s.ping((e) => (e ? reject(e) : resolve())));
    u.blackhole = false;
    const ok = await h2Request(s, {}).done;
    assert.equal(ok.trailers?.['grpc-status'], '0');
    assert.equal(stream.closed, false, 'the blackholed stream is still open');
    stream.close(NGHTTP2_CANCEL);
    const r = await done;
    assert.equal(r.headers, undefined);
    await u.waitFor((x) => x.open === 0, 'the cancelled request to be closed');
    assert.deepEqual([u.requests, u.blackholed, u.succeeded, u.connections, u.openConnections], [2, 1, 1, 1, 1]);

    // HTTP/1.1: same, and the client's abort closes it.
    u.blackhole = true;
    const req = http.request({ host: '127.0.0.1', port: u.port, path: '/', agent: false });
    req.on('error', () => undefined);
    req.end();
    await u.waitFor((x) => x.blackholed === 2 && x.open === 1, 'the HTTP/1.1 request to be swallowed');
    req.destroy();
    await u.waitFor((x) => x.open === 0, 'the aborted request to be closed');
  });

  test('health: /healthz and grpc.health.v1 follow `healthy`, ignore the fault modes and count only as health checks', async () => {
    const u = await upstream();
    const s = session(u);
    const grpcHealth = async () => {
      const r = await h2Request(s, { ':path': HEALTH_CHECK }, grpcFrame(Buffer.alloc(0))).done;
      assert.equal(r.trailers?.['grpc-status'], '0');
      return r.body.subarray(5).toString('hex');
    };
    u.failPercent = 100;
    u.delayMs = 10_000;
    assert.equal(await grpcHealth(), '0801', 'SERVING');
    const ok = await h1(u.address, { path: '/healthz' });
    assert.ok('status' in ok && ok.status === 200);
    u.healthy = false;
    assert.equal(await grpcHealth(), '0802', 'NOT_SERVING');
    const bad = await h1(u.address, { path: '/healthz' });
    assert.ok('status' in bad && bad.status === 503);
    assert.deepEqual([u.healthChecks, u.requests, u.failed], [4, 0, 0]);

    // healthBlackhole: a check sent before a normal request on the same connection stays unanswered.
    u.healthBlackhole = true;
    u.delayMs = 0;
    u.failPercent = 0;
    const hc = h2Request(s, { ':path': HEALTH_CHECK }, grpcFrame(Buffer.alloc(0)));
    const after = await h2Request(s, {}).done;
    assert.equal(after.trailers?.['grpc-status'], '0');
    assert.equal(u.healthChecks, 5);
    assert.equal(hc.stream.closed, false);
    hc.stream.close(NGHTTP2_CANCEL);
    assert.equal((await hc.done).headers, undefined);
  });

  test('records grpc-timeout and attempt headers as sent, and the peak of concurrently open retries', async () => {
    const u = await upstream();
    const s = session(u);
    u.hold = true;
    const reqs = [
      h2Request(s, { 'grpc-timeout': '250m', [ATTEMPT_HEADER]: '1' }),
      h2Request(s, { [ATTEMPT_HEADER]: '2' }),
      h2Request(s, { [ATTEMPT_HEADER]: '3' }),
    ];
    await u.waitFor((x) => x.open === 3, '3 held requests');
    assert.deepEqual([u.openRetries, u.peakOpenRetries], [2, 2]);
    u.release();
    await Promise.all(reqs.map((r) => r.done));
    await u.waitFor((x) => x.open === 0, 'all answered');
    assert.deepEqual([u.openRetries, u.peakOpenRetries, u.peakOpen], [0, 2, 3]);
    assert.deepEqual(u.seen.map((x) => [x.attempt, x.grpcTimeout]), [['1', '250m'], ['2', undefined], ['3', undefined]]);
    assert.deepEqual([...u.byAttempt], [['1', 1], ['2', 1], ['3', 1]]);
    assert.deepEqual(['250m', '2S', '1500000u', '1M', '7n', 'x', undefined].map(grpcTimeoutMs), [250, 2000, 1500, 60_000, 7e-6, undefined, undefined]);
  });

  test('close() stops like a killed process: open requests die with their connections and the port refuses', async () => {
    const u = await upstream();
    const c = client(u);
    u.hold = true;
    const p = call(c, 'held');
    await u.waitFor((x) => x.open === 1, 'the held request');
    await u.close();
    const { error } = await p;
    assert.equal(error?.code, grpc.status.UNAVAILABLE);
    const refused = await new Promise<string>((resolve) => {
      const sock = net.connect(u.port, '127.0.0.1');
      sock.on('connect', () => { sock.destroy(); resolve('connected'); });
      sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    assert.equal(refused, 'ECONNREFUSED');
  });
});

/**
 * H2Connection as a server, against Node's real http2 client (nghttp2) over loopback: a unary
 * request and response, a request body far over the stream window (flow control: the client
 * stops at the window until the server says it consumed the bytes), trailers, a 1xx before the
 * response, a reset from the client, and a GOAWAY drain (the stream in flight completes, new
 * ones are refused, the socket closes).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { once } from 'node:events';
import { H2_ERROR } from '../../../sidecar/src/h2/errors';
import { headerValue } from '../../../sidecar/src/h2/header-rules';
import { serveH2 } from '../../support/h2-endpoint';
import type { H2TestServer, Recorder } from '../../support/h2-endpoint';
import { until } from '../../support/until';

const TIMEOUT = 60_000;

/** An echo app: answers each request (but /no-answer), once its body ended, with the path, the body length and trailers. */
function echo(r: Recorder): void {
  r.onEnd = (s, log) => {
    const path = headerValue(log.headers ?? [], ':path') ?? '';
    if (path === '/no-answer') return;
    if (path === '/early-hints') r.conn.informational(s, [':status', '103', 'link', '</style.css>; rel=preload']);
    r.conn.respond(s, [':status', '200', 'content-type', 'text/plain', 'x-path', path], false);
    r.conn.write(s, Buffer.from(`got ${log.received} bytes`));
    r.conn.end(s, path === '/trailers' ? ['x-checksum', String(log.received), 'grpc-status', '0'] : undefined);
  };
}

async function withClient<T>(server: H2TestServer, fn: (c: http2.ClientHttp2Session) => Promise<T>): Promise<T> {
  const c = http2.connect(`http://127.0.0.1:${server.port}`);
  c.on('error', () => undefined);
  try { return await fn(c); } finally {
    if (!c.closed) { c.close(); await once(c, 'close'); }
    await server.close();
  }
}

async function call(c: http2.ClientHttp2Session, path: string, body?: Buffer | string): Promise<{ head: http2.IncomingHttpHeaders; text: string; trailers: http2.IncomingHttpHeaders | undefined; info: http2.IncomingHttpHeaders[] }> {
  const req = c.request({ ':method': body === undefined ? 'GET' : 'POST', ':path': path }, { endStream: body === undefined });
  if (body !== undefined) req.end(body);
  const info: http2.IncomingHttpHeaders[] = [];
  req.on('headers', (h: http2.IncomingHttpHeaders) => info.push(h));
  let trailers: http2.IncomingHttpHeaders | undefined;
  req.on('trailers', (t: http2.IncomingHttpHeaders) => { trailers = t; });
  const [head] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
  let text = '';
  req.setEncoding('latin1');
  for await (const chunk of req) text += chunk as string;
  return { head, text, trailers, info };
}

describe('a real Node http2 client against an H2Connection server', () => {
  test('unary requests, with and without a body, on one connection', { timeout: TIMEOUT }, async () => {
    const server = await serveH2(echo);
    await withClient(server, async (c) => {
      for (let i = 0; i < 3; i++) {
        const res = await call(c, `/unary/${i}`, i === 1 ? 'hello' : undefined);
        assert.equal(res.head[':status'], 200);
        assert.equal(res.head['x-path'], `/unary/${i}`);
        assert.equal(res.text, `got ${i === 1 ? 5 : 0} bytes`);
      }
      const r = server.recorders[0]!;
      assert.deepEqual([...r.logs.keys()], [1, 3, 5]);
      assert.equal(headerValue(r.logs.get(1)!.headers!, ':method'), 'GET');
      assert.equal(r.logs.get(3)!.body(), 'hello');
      await until(() => [...r.logs.values()].every((l) => l.closeCode === H2_ERROR.NO_ERROR), 'every stream closed with NO_ERROR');
      assert.equal(r.conn.activeStreams, 0);
    });
  });

  test('a request body of 1 MiB: the client stops at the stream window until the server consumes, then all of it arrives', { timeout: TIMEOUT }, async () => {
    const server = await serveH2((r) => { echo(r); r.autoConsume = false; });
    await withClient(server, async (c) => {
      const body = Buffer.alloc(1 << 20);
      for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
      const pending = call(c, '/upload', body);
      await until(() => (server.recorders[0]?.logs.get(1)?.received ?? 0) >= 65535, 'the first window of the body', 20_000);
      const r = server.recorders[0]!;
      // Nothing consumed yet: the client can send no more than the stream window (65535).
      await new Promise((res) => setImmediate(res));
      assert.equal(r.logs.get(1)!.received, 65535, 'the client stopped at the stream window');
      r.autoConsume = true;
      r.conn.consumed(r.streams.get(1)!, 65535);
      const res = await pending;
      assert.equal(res.text, `got ${body.length} bytes`);
      assert.ok(Buffer.concat(r.logs.get(1)!.data).equals(body), 'every byte in order');
    });
  });

  test('a 40 KB header value: Node sends HEADERS + CONTINUATION frames, the server reassembles them', { timeout: TIMEOUT }, async () => {
    const server = await serveH2(echo);
    await withClient(server, async (c) => {
      const big = 'v'.repeat(40_000);
      const req = c.request({ ':path': '/big-head', 'x-big': big });
      const [head] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      req.resume();
      await once(req, 'end');
      assert.equal(head[':status'], 200);
      assert.equal(headerValue(server.recorders[0]!.logs.get(1)!.headers!, 'x-big'), big);
    });
  });

  test('trailers and a 103 informational response reach the client', { timeout: TIMEOUT }, async () => {
    const server = await serveH2(echo);
    await withClient(server, async (c) => {
      const res = await call(c, '/trailers', 'abc');
      assert.equal(res.text, 'got 3 bytes');
      assert.equal(res.trailers?.['x-checksum'], '3');
      assert.equal(res.trailers?.['grpc-status'], '0');
      const hints = await call(c, '/early-hints');
      assert.equal(hints.info.length, 1);
      assert.equal(hints.info[0]![':status'], 103);
      assert.equal(hints.info[0]!.link, '</style.css>; rel=preload');
      assert.equal(hints.head[':status'], 200);
    });
  });

  test('a reset from the client closes the stream with its code; the connection goes on', { timeout: TIMEOUT }, async () => {
    const server = await serveH2(echo);
    await withClient(server, async (c) => {
      const req = c.request({ ':method': 'POST', ':path': '/no-answer' });
      req.on('error', () => undefined);
      req.write('partial');
      await until(() => (server.recorders[0]?.logs.get(1)?.received ?? 0) === 7, 'the partial body');
      req.close(http2.constants.NGHTTP2_CANCEL);
      const r = server.recorders[0]!;
      await until(() => r.logs.get(1)!.closeCode !== undefined, 'the stream closed');
      assert.equal(r.logs.get(1)!.closeCode, H2_ERROR.CANCEL);
      assert.equal(r.conn.stats.rstReceived, 1);
      const res = await call(c, '/after');
      assert.equal(res.text, 'got 0 bytes');
    });
  });

  test('GOAWAY drain: the stream in flight completes, a new one is refused, then the connection closes', { timeout: TIMEOUT }, async () => {
    const server = await serveH2(echo);
    await withClient(server, async (c) => {
      const req = c.request({ ':method': 'POST', ':path': '/slow' });
      req.write('first half ');
      await until(() => (server.recorders[0]?.logs.get(1)?.received ?? 0) > 0, 'the first half');
      const r = server.recorders[0]!;
      r.conn.goaway();
      const [code, last] = await new Promise<[number, number]>((res) => c.once('goaway', (cd: number, l: number) => res([cd, l])));
      assert.equal(code, H2_ERROR.NO_ERROR);
      assert.equal(last, 1, 'GOAWAY names the stream in flight as the last one taken');
      req.end('second half');
      let text = '';
      req.setEncoding('latin1');
      for await (const chunk of req) text += chunk as string;
      assert.equal(text, 'got 22 bytes', 'the stream below last-stream-id completed');
      await until(() => r.closed, 'the server connection closed after the drain');
      assert.equal(r.conn.stats.goawaySent, 1);
    });
  });
});

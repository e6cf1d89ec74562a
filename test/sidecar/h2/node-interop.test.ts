/**
 * The frame codec and HPACK against Node's own http2 (nghttp2), over real loopback sockets:
 * - a real http2.connect client talks to a raw net.Server that reads the preface, SETTINGS and
 *   each request's HEADERS (and DATA) with FrameParser + HpackDecoder, and answers with the
 *   writers and HpackEncoder (SETTINGS ACK, HEADERS :status 200, DATA with END_STREAM);
 * - the reverse: the writers and HpackEncoder as a client of a real http2.createServer.
 * Several requests share a connection, so both sides' dynamic tables are used across them.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { once } from 'node:events';
import { FrameParser } from '../../../sidecar/src/h2/frame-parser';
import type { FrameHandler } from '../../../sidecar/src/h2/frame-parser';
import { dataFrameHeader, goawayFrame, headersFrames, pingFrame, settingsAckFrame, settingsFrame, windowUpdateFrame } from '../../../sidecar/src/h2/frame-writer';
import { CLIENT_PREFACE, FLAG } from '../../../sidecar/src/h2/frame-types';
import { HpackDecoder } from '../../../sidecar/src/h2/hpack-decoder';
import { HpackEncoder } from '../../../sidecar/src/h2/hpack-encoder';
import { SETTING } from '../../../sidecar/src/h2/settings';
import type { H2Error } from '../../../sidecar/src/h2/errors';
import { until } from '../../support/until';

const TIMEOUT = 30_000;
const get = (flat: readonly string[], name: string): string | undefined => {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return flat[i + 1];
  return undefined;
};

/** What both raw endpoints share: the codec state of one connection and the frames it ignores. */
abstract class RawEndpoint implements FrameHandler {
  readonly parser: FrameParser;
  readonly decoder = new HpackDecoder();
  readonly encoder = new HpackEncoder();
  readonly errors: H2Error[] = [];
  readonly goaways: number[] = [];
  peerMaxFrameSize = 16384;
  private block: Buffer[] = [];
  private blockFlags = 0;
  private readonly bodies = new Map<number, Buffer[]>();
  private readonly heads = new Map<number, { headers: string[]; never: string[] }>();

  constructor(readonly sock: net.Socket, role: 'server' | 'client') {
    this.parser = new FrameParser(this, { role });
    sock.on('data', (c: Buffer) => this.parser.push(c));
  }

  /** A stream's header block and body are complete. */
  protected abstract onMessage(streamId: number, headers: string[], never: string[], body: Buffer): void;

  onSettings(ack: boolean, entries: readonly number[]): void {
    if (ack) return;
    for (let i = 0; i < entries.length; i += 2) {
      if (entries[i] === SETTING.HEADER_TABLE_SIZE) this.encoder.setPeerMaxTableSize(entries[i + 1]!);
      if (entries[i] === SETTING.MAX_FRAME_SIZE) this.peerMaxFrameSize = entries[i + 1]!;
    }
    this.sock.write(settingsAckFrame());
  }
  onHeaders(sid: number, fragment: Buffer, flags: number): void {
    this.block = [fragment];
    this.blockFlags = flags;
    if ((flags & FLAG.END_HEADERS) !== 0) this.endBlock(sid);
  }
  onContinuation(sid: number, fragment: Buffer, endHeaders: boolean): void {
    this.block.push(fragment);
    if (endHeaders) this.endBlock(sid);
  }
  private endBlock(sid: number): void {
    const headers = this.decoder.decode(Buffer.concat(this.block));
    this.heads.set(sid, { headers, never: [...this.decoder.neverIndexed] });
    if ((this.blockFlags & FLAG.END_STREAM) !== 0) this.end(sid);
  }
  onData(sid: number, payload: Buffer, endStream: boolean): void {
    const parts = this.bodies.get(sid) ?? [];
    parts.push(Buffer.from(payload));
    this.bodies.set(sid, parts);
    if (endStream) this.end(sid);
  }
  private end(sid: number): void {
    const head = this.heads.get(sid)!;
    this.onMessage(sid, head.headers, head.never, Buffer.concat(this.bodies.get(sid) ?? []));
  }
  onPing(ack: boolean, opaque: Buffer): void { if (!ack) this.sock.write(pingFrame(opaque, true)); }
  onGoaway(_last: number, code: number): void { this.goaways.push(code); this.sock.end(); }
  onStreamError(err: H2Error): void { this.errors.push(err); }
  onConnectionError(err: H2Error): void { this.errors.push(err); this.sock.destroy(); }
  onPriority(): void { /* deprecated signal: ignored */ }
  onRstStream(): void { /* no stream is reset in these tests; a reset shows as a missing response */ }
  onWindowUpdate(): void { /* bodies here are far below the initial windows */ }

  /** Writes a header block (HEADERS + CONTINUATION as needed) and an optional body, in one cork. */
  send(sid: number, headers: string[], body?: Buffer): void {
    this.sock.cork();
    for (const b of headersFrames(sid, this.encoder.encode(headers), body === undefined, this.peerMaxFrameSize)) this.sock.write(b);
    if (body !== undefined) { this.sock.write(dataFrameHeader(sid, body.length, true)); this.sock.write(body); }
    this.sock.uncork();
  }
}

interface Request { headers: string[]; never: string[]; body: string }

describe('a real Node http2 client against a raw server built from the codec', () => {
  test('three requests on one connection: the server reads them and Node reads the answers', { timeout: TIMEOUT }, async () => {
    const requests: Request[] = [];
    const conns: RawEndpoint[] = [];
    class RawServer extends RawEndpoint {
      protected onMessage(sid: number, headers: string[], never: string[], body: Buffer): void {
        requests.push({ headers, never, body: body.toString() });
        this.send(sid, [':status', '200', 'content-type', 'text/plain', 'x-echo-path', get(headers, ':path')!], Buffer.from(`hello ${get(headers, 'x-custom')} ${body.length}`));
      }
    }
    const server = net.createServer((sock) => {
      const c = new RawServer(sock, 'server');
      conns.push(c);
      sock.write(settingsFrame([SETTING.MAX_CONCURRENT_STREAMS, 100]));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on('error', () => undefined);
    try {
      for (let i = 0; i < 3; i++) {
        const post = i === 2;
        const headers: http2.OutgoingHttpHeaders = { ':method': post ? 'POST' : 'GET', ':path': `/skein.Echo/Call${i}`, 'x-custom': `value-${i}`, 'x-secret': 's3cret' };
        (headers as Record<symbol, unknown>)[http2.sensitiveHeaders] = ['x-secret'];
        const req = client.request(headers, { endStream: !post });
        if (post) req.end('request body');
        const [response] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
        let text = '';
        req.setEncoding('utf8');
        for await (const chunk of req) text += chunk as string;
        assert.equal(response[':status'], 200);
        assert.equal(response['content-type'], 'text/plain');
        assert.equal(response['x-echo-path'], `/skein.Echo/Call${i}`);
        assert.equal(text, `hello value-${i} ${post ? 12 : 0}`);
      }
    } finally {
      client.close();
      await once(client, 'close');
      server.close();
    }
    assert.equal(requests.length, 3);
    requests.forEach((r, i) => {
      assert.equal(get(r.headers, ':method'), i === 2 ? 'POST' : 'GET');
      assert.equal(get(r.headers, ':path'), `/skein.Echo/Call${i}`);
      assert.equal(get(r.headers, ':scheme'), 'http');
      assert.equal(get(r.headers, ':authority'), `127.0.0.1:${port}`);
      assert.equal(get(r.headers, 'x-custom'), `value-${i}`);
      assert.equal(get(r.headers, 'x-secret'), 's3cret');
      assert.deepEqual(r.never, ['x-secret'], 'nghttp2 sent the sensitive field never-indexed, and the decoder says so');
    });
    assert.equal(requests[2]!.body, 'request body');
    const conn = conns[0]!;
    assert.deepEqual(conn.errors, []);
    assert.ok(conn.decoder.tableSize > 0, 'nghttp2 indexed fields, and the later requests were decoded against them');
    assert.ok(conn.goaways.length > 0 && conn.goaways.every((code) => code === 0), `Node closed with GOAWAY NO_ERROR (${conn.goaways.join()})`);
  });
});

describe('the codec as a client of a real Node http2 server', () => {
  test('three requests (one with a body), a PING and a WINDOW_UPDATE; Node serves them and the client reads the answers', { timeout: TIMEOUT }, async () => {
    const seen: { headers: http2.IncomingHttpHeaders; sensitive: unknown }[] = [];
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      seen.push({ headers, sensitive: (headers as Record<symbol, unknown>)[http2.sensitiveHeaders] });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => { body += c; });
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-reply': String(headers[':path']), 'set-cookie': 'session=abc' });
        stream.end(`echo ${String(headers[':path'])} ${body}`);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;

    const responses = new Map<number, Request>();
    let pingAck = '';
    class RawClient extends RawEndpoint {
      protected onMessage(sid: number, headers: string[], never: string[], body: Buffer): void {
        responses.set(sid, { headers, never, body: body.toString() });
      }
      override onPing(ack: boolean, opaque: Buffer): void {
        if (ack) pingAck = opaque.toString('latin1');
        else super.onPing(ack, opaque);
      }
    }
    const sock = net.connect(port, '127.0.0.1');
    await once(sock, 'connect');
    const c = new RawClient(sock, 'client');
    sock.write(Buffer.concat([CLIENT_PREFACE, settingsFrame([SETTING.ENABLE_PUSH, 0, SETTING.HEADER_TABLE_SIZE, 4096])]));
    sock.write(windowUpdateFrame(0, 1 << 20));
    sock.write(pingFrame(Buffer.from('skein-01'), false));
    try {
      for (const [i, sid] of [1, 3, 5].entries()) {
        const body = i === 1 ? Buffer.from('a request body') : undefined;
        c.send(sid, [':method', body ? 'POST' : 'GET', ':scheme', 'http', ':path', `/echo/${i}`, ':authority', `127.0.0.1:${port}`, 'authorization', `Bearer token-${i}`, 'x-custom', `c${i}`], body);
      }
      await until(() => (responses.size === 3 && pingAck !== '') || c.errors.length > 0 || c.goaways.length > 0, 'three responses and the PING ACK', 20_000);
    } finally {
      sock.end(goawayFrame(0, 0));
      server.close();
    }
    assert.deepEqual(c.errors, []);
    assert.deepEqual(c.goaways, []);
    assert.equal(pingAck, 'skein-01');
    for (const [i, sid] of [1, 3, 5].entries()) {
      const r = responses.get(sid)!;
      assert.equal(get(r.headers, ':status'), '200');
      assert.equal(get(r.headers, 'content-type'), 'text/plain');
      assert.equal(get(r.headers, 'x-reply'), `/echo/${i}`);
      assert.equal(get(r.headers, 'set-cookie'), 'session=abc');
      assert.equal(r.body, `echo /echo/${i} ${i === 1 ? 'a request body' : ''}`);
      const s = seen[i]!;
      assert.equal(s.headers[':method'], i === 1 ? 'POST' : 'GET');
      assert.equal(s.headers[':path'], `/echo/${i}`);
      assert.equal(s.headers['x-custom'], `c${i}`);
      assert.equal(s.headers.authorization, `Bearer token-${i}`);
      assert.deepEqual(s.sensitive, ['authorization'], 'Node received authorization never-indexed');
    }
    assert.ok(c.encoder.tableSize > 0, 'the encoder indexed fields, and Node decoded the later requests against them');
  });
});

/**
 * The upstream side on skein's own HTTP/2 engine, always (`h2Engine: 'skein'`, whatever
 * SKEIN_TEST_H2_ENGINE says), so every run covers it: a sidecar in this process fed by a scripted
 * ADS server, a Node http2 client in front and a REAL Node http2 server behind. Unary with
 * trailers, 1 MiB each way on one stream (many 64 KiB windows, relayed as the peer accepts),
 * a client's cancel reaching the upstream, a response complete before the request body (the
 * attempt ends with it), a retry after the upstream reset the first attempt,
 * and the engine's counters in /stats.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as http2 from 'node:http2';
import { systemClock } from '../../../shared/src/clock';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import type { Sidecar } from '../../../sidecar/src/sidecar';
import { serveH2 } from '../../support/h2-endpoint';
import type { H2TestServer } from '../../support/h2-endpoint';
import { outboundListener, ScriptedAds, startFedSidecar, staticCluster } from '../../support/scripted-ads';
import { h2Upstream } from '../../support/upstreams';
import type { H2UpstreamServer } from '../../support/upstreams';
import { until } from '../../support/until';

const { LISTENER: LDS, ROUTE: RDS, CLUSTER: CDS } = TYPE_URLS;
const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;
const DOMAIN = 'skein-h2';
const MIB = 1 << 20;

interface Reply { status: number; headers: http2.IncomingHttpHeaders; body: Buffer; trailers: http2.IncomingHttpHeaders }

/** One request on `client`: `body` written in 16 KiB pieces; resolves with the whole response. */
function call(client: http2.ClientHttp2Session, path: string, body?: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = client.request({ ':method': body === undefined ? 'GET' : 'POST', ':path': path, ':authority': DOMAIN, 'content-type': 'application/grpc', te: 'trailers' }, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let status = 0;
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => { status = Number(h[':status']); headers = h; });
    req.on('trailers', (t) => { trailers = t; });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => {
      if (status === 0) reject(new Error(`no response on ${path} (rst ${req.rstCode})`));
      else resolve({ status, headers, body: Buffer.concat(chunks), trailers });
    });
    if (body !== undefined) {
      let off = 0;
      const pump = (): void => {
        while (off < body.length) {
          const piece = body.subarray(off, off + 16384);
          off += piece.length;
          if (!req.write(piece)) { req.once('drain', pump); return; }
        }
        req.end();
      };
      pump();
    }
  });
}

describe('--h2-engine skein: the upstream HTTP/2 connections on skein\'s engine', () => {
  let ads: ScriptedAds;
  let up: H2UpstreamServer;
  let early: H2TestServer;
  let sc: Sidecar;
  let client: http2.ClientHttp2Session;
  /** Upstream streams of /hang, and whether each was closed by the proxy's cancel. */
  const hanging: http2.ServerHttp2Stream[] = [];
  let flakyCalls = 0;

  before(async () => {
    ads = await ScriptedAds.start();
    up = await h2Upstream((stream, headers) => {
      const path = headers[':path'];
      if (path === '/unary') {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-up': 'yes' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-trailer': 'kept' }));
        stream.end(Buffer.from('hello'));
      } else if (path === '/echo') {
        // Echoes the body as it arrives: both directions stream at once, through the windows.
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        const hash = crypto.createHash('sha256');
        stream.on('data', (c: Buffer) => hash.update(c));
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-sha256': hash.digest('hex') }));
        stream.pipe(stream);
      } else if (path === '/hang') {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        stream.write(Buffer.from('started'));
        hanging.push(stream);
      } else if (path === '/flaky') {
        // The first attempt is reset before any response; the retry is answered.
        if (++flakyCalls === 1) { stream.close(NGHTTP2_INTERNAL_ERROR); return; }
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(Buffer.from('second'));
      } else {
        stream.respond({ ':status': 404 }, { endStream: true });
      }
    });
    ads.set(LDS, [outboundListener('rc')]);
    // /early: skein's engine as the upstream server, which (unlike Node's) does not reset a
    // stream whose response it ended before the request ended: a message, then trailers, at once.
    early = await serveH2((r) => {
      r.onRequest = (s) => {
        r.conn.respond(s, [':status', '200', 'content-type', 'application/grpc'], false);
        r.conn.write(s, Buffer.from([0, 0, 0, 0, 0]));
        r.conn.end(s, ['grpc-status', '3', 'grpc-message', 'early']);
      };
    });
    ads.set(RDS, [{ name: 'rc', virtual_hosts: [{ name: DOMAIN, domains: [DOMAIN], routes: [
      { name: 'early', match: { prefix: '/early' }, route: { cluster: 'early' } },
      { name: 'all', match: { prefix: '/' }, route: { cluster: 'up', retry_policy: { retry_on: 'reset', num_retries: { value: 2 } } } },
    ] }] }]);
    ads.set(CDS, [staticCluster('up', [{ address: '127.0.0.1', port: up.port }], { h2: true }), staticCluster('early', [{ address: '127.0.0.1', port: early.port }], { h2: true })]);
    // The real clock: the retry's backoff runs on it.
    sc = await startFedSidecar(ads, { h2Engine: 'skein', clock: systemClock });
    client = http2.connect(`http://${sc.addresses()['outbound']!}`);
    client.on('error', () => undefined);
  });
  after(async () => {
    client?.destroy();
    await sc?.drain();
    ads?.close();
    await up?.close();
    await early?.close();
  });

  test('a unary call: response head, body and trailers pass through', async () => {
    const r = await call(client, '/unary');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-up'], 'yes');
    assert.equal(r.body.toString(), 'hello');
    assert.equal(r.trailers['grpc-status'], '0');
    assert.equal(r.trailers['x-trailer'], 'kept');
  });

  test('1 MiB each way on one stream, streamed both ways at once through 64 KiB windows, arrives whole', async () => {
    const body = crypto.randomBytes(MIB);
    const r = await call(client, '/echo', body);
    assert.equal(r.status, 200);
    assert.equal(r.body.length, body.length);
    assert.ok(r.body.equals(body), 'the echoed body is the body sent');
    assert.equal(r.trailers['x-sha256'], crypto.createHash('sha256').update(body).digest('hex'), 'the upstream got the whole body');
  });

  test('a client that cancels resets the upstream stream too', async () => {
    const before = hanging.length;
    const req = client.request({ ':method': 'POST', ':path': '/hang', ':authority': DOMAIN, 'content-type': 'application/grpc' });
    req.on('error', () => undefined);
    await new Promise<void>((resolve) => req.once('data', () => resolve()));
    await until(() => hanging.length > before, 'the upstream to hold the stream');
    const upStream = hanging[hanging.length - 1]!;
    req.close(NGHTTP2_CANCEL);
    await until(() => upStream.closed, 'the upstream stream to be closed by the proxy');
    assert.equal(upStream.rstCode, NGHTTP2_CANCEL);
  });

  test('a response complete before the request body ended completes the attempt, while the caller still sends', async () => {
    const req = client.request({ ':method': 'POST', ':path': '/early', ':authority': DOMAIN, 'content-type': 'application/grpc', te: 'trailers' });
    req.on('error', () => undefined);
    req.write(Buffer.from([0, 0, 0, 1, 0]));
    const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve) => req.once('trailers', resolve));
    assert.equal(trailers['grpc-status'], '3');
    const active = async (): Promise<number> => {
      const clusters = await (await fetch(`http://${sc.addresses()['admin']}/clusters`)).json() as { name: string; hosts: { activeRequests: number }[] }[];
      return clusters.find((c) => c.name === 'early')!.hosts[0]!.activeRequests;
    };
    let n = -1;
    for (let i = 0; i < 200 && (n = await active()) !== 0; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(n, 0, 'the attempt ended with the response, not with the caller');
    const upLog = [...early.recorders[0]!.logs.values()][0]!;
    assert.equal(upLog.closeCode, NGHTTP2_CANCEL, 'the proxy reset the upstream stream it no longer needs');
    req.close();
  });

  test('an upstream reset before the response is retried (retry_on reset), and the retry answers', async () => {
    const r = await call(client, '/flaky');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'second');
    assert.equal(r.headers['x-skein-attempt-count'], '2');
    assert.equal(flakyCalls, 2);
  });

  test('/stats shows the engine\'s counters as h2.upstream.*', async () => {
    const stats = await (await fetch(`http://${sc.addresses()['admin']}/stats?filter=h2.upstream.`)).json() as { counters: Record<string, number> };
    assert.ok((stats.counters['h2.upstream.streams_opened'] ?? 0) >= 5, JSON.stringify(stats.counters));
    assert.ok((stats.counters['h2.upstream.rst_received'] ?? 0) >= 1, 'the flaky upstream\'s reset was counted');
    assert.ok((stats.counters['h2.upstream.rst_sent'] ?? 0) >= 1, 'the cancel was passed on as RST_STREAM');
  });
});

/**
 * The downstream side on skein's own HTTP/2 engine, always (`h2Engine: 'skein'`, whatever
 * SKEIN_TEST_H2_ENGINE says): a sidecar in this process fed by a scripted ADS server, a Node
 * http2 client in front and a real Node http2 server behind. What is particular to the listener
 * side: trailers of a non-gRPC response reach the client (Node's engine drops them), Expect:
 * 100-continue, a body that arrives with its head (before the router reads), a client that
 * reads a large response slowly, a 103 Early Hints passed on, (the response waits in the windows, and all of it arrives),
 * a local reply to a request whose body is still coming, and the h2.downstream.* counters.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as http2 from 'node:http2';
import { systemClock } from '../../../shared/src/clock';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import type { Sidecar } from '../../../sidecar/src/sidecar';
import { outboundListener, ScriptedAds, startFedSidecar, staticCluster } from '../../support/scripted-ads';
import { h2Upstream } from '../../support/upstreams';
import type { H2UpstreamServer } from '../../support/upstreams';

const { LISTENER: LDS, ROUTE: RDS, CLUSTER: CDS } = TYPE_URLS;
const DOMAIN = 'skein-h2-down';
const MIB = 1 << 20;

interface Reply { status: number; informational: number[]; headers: http2.IncomingHttpHeaders; body: Buffer; trailers: http2.IncomingHttpHeaders; rst: number }

/** One request; `slow`: read the response in pieces, pausing between them. */
function call(client: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer, slow = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = client.request({ ':authority': DOMAIN, ...headers }, { endStream: body === undefined });
    const r: Reply = { status: 0, informational: [], headers: {}, body: Buffer.alloc(0), trailers: {}, rst: 0 };
    const chunks: Buffer[] = [];
    req.on('continue', () => r.informational.push(100));
    req.on('response', (h) => { r.status = Number(h[':status']); r.headers = h; });
    req.on('trailers', (t) => { r.trailers = t; });
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      if (slow) { req.pause(); setTimeout(() => req.resume(), 2); }
    });
    req.on('error', reject);
    req.on('close', () => { r.body = Buffer.concat(chunks); r.rst = req.rstCode ?? 0; resolve(r); });
    if (body !== undefined) req.end(body);
  });
}

describe('--h2-engine skein: the listeners\' HTTP/2 connections on skein\'s engine', () => {
  let ads: ScriptedAds;
  let up: H2UpstreamServer;
  let sc: Sidecar;
  let client: http2.ClientHttp2Session;
  const big = crypto.randomBytes(2 * MIB);

  before(async () => {
    ads = await ScriptedAds.start();
    up = await h2Upstream((stream, headers) => {
      const path = headers[':path'];
      if (path === '/trailers') {
        // Not gRPC: plain HTTP with trailers (e.g. a checksum after a streamed body).
        stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc123' }));
        stream.end('body');
      } else if (path === '/echo') {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
          stream.end(Buffer.concat(chunks));
        });
      } else if (path === '/hints') {
        stream.additionalHeaders({ ':status': 103, link: '</style.css>; rel=preload; as=style' });
        stream.respond({ ':status': 200, 'content-type': 'text/html' });
        stream.end('<html></html>');
      } else if (path === '/big') {
        stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
        stream.end(big);
      } else {
        stream.respond({ ':status': 404 }, { endStream: true });
      }
    });
    ads.set(LDS, [outboundListener('rc')]);
    ads.set(RDS, [{ name: 'rc', virtual_hosts: [{ name: DOMAIN, domains: [DOMAIN], routes: [
      { name: 'all', match: { prefix: '/' }, route: { cluster: 'up' } },
    ] }] }]);
    ads.set(CDS, [staticCluster('up', [{ address: '127.0.0.1', port: up.port }], { h2: true })]);
    sc = await startFedSidecar(ads, { h2Engine: 'skein', clock: systemClock });
    client = http2.connect(`http://${sc.addresses()['outbound']!}`);
    client.on('error', () => undefined);
  });
  after(async () => {
    client?.destroy();
    await sc?.drain();
    ads?.close();
    await up?.close();
  });

  test('the trailers of a non-gRPC response reach the client', async () => {
    const r = await call(client, { ':method': 'GET', ':path': '/trailers' });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'body');
    assert.equal(r.trailers['x-checksum'], 'abc123');
  });

  test('a 103 Early Hints from the upstream reaches the client before the response', async () => {
    const hints: http2.IncomingHttpHeaders[] = [];
    const r = await new Promise<Reply>((resolve, reject) => {
      const req = client.request({ ':method': 'GET', ':path': '/hints', ':authority': DOMAIN }, { endStream: true });
      const out: Reply = { status: 0, informational: [], headers: {}, body: Buffer.alloc(0), trailers: {}, rst: 0 };
      req.on('headers', (h) => { hints.push(h); });
      req.on('response', (h) => { out.status = Number(h[':status']); });
      req.on('data', () => undefined);
      req.on('error', reject);
      req.on('close', () => resolve(out));
    });
    assert.equal(r.status, 200);
    assert.equal(hints.length, 1, 'one informational head');
    assert.equal(Number(hints[0]![':status']), 103);
    assert.equal(hints[0]!['link'], '</style.css>; rel=preload; as=style');
  });

  test('Expect: 100-continue is answered with a 100, then the body goes upstream', async () => {
    const body = Buffer.from('the body after the 100');
    const r = await new Promise<Reply>((resolve, reject) => {
      const req = client.request({ ':method': 'POST', ':path': '/echo', ':authority': DOMAIN, expect: '100-continue' });
      const out: Reply = { status: 0, informational: [], headers: {}, body: Buffer.alloc(0), trailers: {}, rst: 0 };
      const chunks: Buffer[] = [];
      req.on('continue', () => { out.informational.push(100); req.end(body); });
      req.on('response', (h) => { out.status = Number(h[':status']); });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', reject);
      req.on('close', () => { out.body = Buffer.concat(chunks); resolve(out); });
    });
    assert.deepEqual(r.informational, [100]);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), body.toString());
  });

  test('a body sent with its head (before the router reads it) arrives whole, for many requests at once', async () => {
    const bodies = Array.from({ length: 20 }, (_, i) => crypto.randomBytes(1000 + i * 3000));
    const replies = await Promise.all(bodies.map((b) => call(client, { ':method': 'POST', ':path': '/echo' }, b)));
    replies.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.ok(r.body.equals(bodies[i]!), `request ${i}: the echoed body is the one sent`);
    });
  });

  test('a client that reads 2 MiB slowly gets all of it (the response waits in the windows)', async () => {
    const r = await call(client, { ':method': 'GET', ':path': '/big' }, undefined, true);
    assert.equal(r.status, 200);
    assert.equal(r.body.length, big.length);
    assert.ok(r.body.equals(big));
  });

  test('a local reply to a request whose body is still coming: the reply, then the stream is reset NO_ERROR (RFC 9113 8.1)', async () => {
    const req = client.request({ ':method': 'POST', ':path': '/x', ':authority': 'no-such-host' });
    req.write(Buffer.from('more is coming'));
    const status = await new Promise<number>((resolve) => req.once('response', (h) => resolve(Number(h[':status']))));
    const body = await new Promise<string>((resolve) => { let s = ''; req.on('data', (c: Buffer) => { s += c.toString(); }); req.on('close', () => resolve(s)); });
    assert.equal(status, 404);
    assert.match(body, /^no_route: /);
    assert.equal(req.rstCode, http2.constants.NGHTTP2_NO_ERROR);
  });

  test('/stats shows the engine\'s counters as h2.downstream.*', async () => {
    const stats = await (await fetch(`http://${sc.addresses()['admin']}/stats?filter=h2.downstream.`)).json() as { counters: Record<string, number> };
    assert.ok((stats.counters['h2.downstream.streams_opened'] ?? 0) >= 24, JSON.stringify(stats.counters));
    assert.ok((stats.counters['h2.downstream.rst_sent'] ?? 0) >= 1, 'the reset after the local reply');
  });
});

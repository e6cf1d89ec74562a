/**
 * H2Connection over tls.TLSSocket (ALPN h2) with certificates from a real test CA, in both
 * roles against Node's http2: a Node https client calls an H2Connection server, and an
 * H2Connection client calls a Node secure http2 server; bodies over the windows both ways.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { H2_ERROR } from '../../../sidecar/src/h2/errors';
import { headerValue } from '../../../sidecar/src/h2/header-rules';
import { H2Connection } from '../../../sidecar/src/h2/connection';
import { Recorder, requestHead } from '../../support/h2-endpoint';
import { testCa, workloadIdentity } from '../../support/test-ca';
import { until } from '../../support/until';

const TIMEOUT = 60_000;
const BODY = Buffer.alloc(300_000, 0x7a);
const noHostCheck = (): undefined => undefined; // the workload certificates name a SPIFFE id, not a host

describe('H2Connection over TLS', () => {
  test('a Node http2 client over TLS against an H2Connection server, and an H2Connection client against a Node secure server', { timeout: TIMEOUT }, async () => {
    const ca = await testCa();
    const id = await workloadIdentity(ca, 'h2');
    const recs: Recorder[] = [];
    const server = tls.createServer({ key: id.keyPem, cert: id.certChainPem, ALPNProtocols: ['h2'] }, (sock) => {
      const r = new Recorder();
      r.onEnd = (s, log) => {
        r.conn.respond(s, [':status', '200', 'x-alpn', String(sock.alpnProtocol)], false);
        r.conn.write(s, BODY);
        r.conn.end(s, ['x-got', String(log.received)]);
      };
      r.conn = new H2Connection(sock, { role: 'server', handler: r });
      recs.push(r);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const node = http2.createSecureServer({ key: id.keyPem, cert: id.certChainPem });
    node.on('stream', (stream) => {
      let n = 0;
      stream.on('data', (c: Buffer) => { n += c.length; });
      stream.on('end', () => { stream.respond({ ':status': 200, 'x-got': String(n) }); stream.end(BODY); });
    });
    node.listen(0, '127.0.0.1');
    await once(node, 'listening');
    const nodePort = (node.address() as { port: number }).port;
    const client = http2.connect(`https://127.0.0.1:${port}`, { ca: id.trustBundlePem, checkServerIdentity: noHostCheck });
    client.on('error', () => undefined);
    try {
      const req = client.request({ ':method': 'POST', ':path': '/tls' });
      req.end(BODY);
      let trailers: http2.IncomingHttpHeaders | undefined;
      req.on('trailers', (t: http2.IncomingHttpHeaders) => { trailers = t; });
      const [head] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      let n = 0;
      for await (const chunk of req) n += (chunk as Buffer).length;
      assert.equal(head['x-alpn'], 'h2');
      assert.equal(n, BODY.length);
      assert.equal(trailers?.['x-got'], String(BODY.length));

      const sock = tls.connect({ port: nodePort, host: '127.0.0.1', ca: id.trustBundlePem, ALPNProtocols: ['h2'], checkServerIdentity: noHostCheck });
      await once(sock, 'secureConnect');
      assert.equal(sock.alpnProtocol, 'h2');
      const r = new Recorder();
      r.conn = new H2Connection(sock, { role: 'client', handler: r });
      const s = r.conn.request(requestHead(nodePort, 'POST', '/tls'), false)!;
      r.conn.write(s, BODY, true);
      await until(() => r.logs.get(s.id)?.closeCode !== undefined, 'the response', 30_000);
      const l = r.logs.get(s.id)!;
      assert.equal(l.closeCode, H2_ERROR.NO_ERROR);
      assert.equal(headerValue(l.headers!, 'x-got'), String(BODY.length));
      assert.equal(l.received, BODY.length);
      r.conn.destroy();
    } finally {
      client.close();
      server.close();
      node.close();
      ca.close();
    }
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { greeterClient, startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterClient, HelloReply } from '../../shared/src/sample-app/greeter';
import { API_VERSION } from '../../shared/src/config/types';
import { eventually } from '../support/ads-client';
import { api } from '../support/mesh-api';
import { closeWaitSockets, countingRelay, H2_PREFACE, h1Request, h2Abuse, h2Frame, MiB, rawExchange, startHttpEcho } from '../support/sidecar-apps';
import type { SeenRequest } from '../support/sidecar-apps';
import { inboundOf, Mesh } from '../support/sidecar-mesh';

/**
 * HTTP/1.1 through the sidecars, and hostile peers: real `skein control-plane` and `skein
 * sidecar` processes on loopback.
 *
 *   web      (protocol http)  a node:http app that echoes what it saw, behind a sidecar with --app-protocol http
 *   greeter  (protocol grpc)  the sample Greeter behind a sidecar
 *   client sidecar: the test's requests enter at its outbound port.
 */
const CLIENT = 'e2e-http-client';
const WEB = 'web:8080';

const unary = (c: GreeterClient, name: string): Promise<HelloReply> => new Promise((resolve, reject) => {
  c.SayHello({ name }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r!)));
});

describe('sidecar HTTP/1.1 routing and robustness against bad peers (processes)', () => {
  let mesh: Mesh;
  let client: SidecarProcess;
  let web: SidecarProcess;
  let grpcServer: SidecarProcess;
  let viaOutbound: GreeterClient;
  let viaInbound: GreeterClient;

  before(async () => {
    mesh = await Mesh.start('sidecar-e2e-http');
    // PERMISSIVE: these tests also send plaintext (and garbage) straight to the inbound ports;
    // client sidecars still reach them over mTLS.
    await mesh.apply([
      { apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'web' }, spec: { protocol: 'http', ports: [{ name: 'http', port: 8080 }], mtls: 'PERMISSIVE' } },
      { apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'greeter' }, spec: { protocol: 'grpc', ports: [{ name: 'grpc', port: 50051 }], mtls: 'PERMISSIVE' } },
    ]);
    const echo = mesh.app(await startHttpEcho('web-a'));
    const greeter = mesh.app(await startGreeter({ backend: 'g-a', version: 'v1' }));
    [web, grpcServer] = await Promise.all([
      mesh.sidecar({ nodeId: 'server-web-a', service: 'web', app: `127.0.0.1:${echo.port}`, appProtocol: 'http' }),
      mesh.sidecar({ nodeId: 'server-g-a', service: 'greeter', app: `127.0.0.1:${greeter.port}` }),
    ]);
    client = await mesh.clientSidecar(CLIENT);
    await mesh.hosts(client, 'web', [inboundOf(web)]);
    await mesh.hosts(client, 'greeter', [inboundOf(grpcServer)]);
    viaOutbound = mesh.greeter(client, 'greeter:50051');
    viaInbound = mesh.track(greeterClient(inboundOf(grpcServer), grpc.credentials.createInsecure(), { 'grpc.default_authority': 'greeter:50051' }));
  });

  after(async () => { await mesh?.stop(); });

  describe('HTTP/1.1 to an http-protocol service', () => {
    test('routes GET by Host and passes method, path and query', async () => {
      const r = await h1Request(client.outbound, { host: WEB, path: '/hello?x=1' });
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(r.headers['x-app'], 'web-a');
      const seen = JSON.parse(r.body.toString()) as SeenRequest;
      assert.equal(seen.method, 'GET');
      assert.equal(seen.url, '/hello?x=1');
      assert.equal(seen.headers.host, WEB);
    });

    test('echoes a 1 MiB POST body byte for byte', async () => {
      const body = randomBytes(MiB);
      const r = await h1Request(client.outbound, { host: WEB, method: 'POST', path: '/echo', body, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(r.status, 200);
      assert.equal(r.body.length, body.length);
      assert.ok(r.body.equals(body), 'body differs');
    });

    test('answers an unknown Host itself: 404 with x-skein-reason no_route', async () => {
      const r = await h1Request(client.outbound, { host: 'nowhere.example:80', path: '/' });
      assert.equal(r.status, 404);
      assert.equal(r.headers['x-skein-reason'], 'no_route');
      assert.equal(r.headers['x-app'], undefined);
    });

    test('sets x-forwarded-for and x-request-id on the upstream request, and keeps a caller x-request-id', async () => {
      const seen = JSON.parse((await h1Request(client.outbound, { host: WEB, path: '/h' })).body.toString()) as SeenRequest;
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'the inbound sidecar sets the peer address');
      assert.match(String(seen.headers['x-request-id']), /^[0-9a-f-]{36}$/);
      assert.equal(seen.headers['x-forwarded-proto'], 'http');
      assert.match(String(seen.headers['x-forwarded-client-cert']), /^By=spiffe:\/\/skein\.local\/ns\/default\/sa\/web;Hash=[0-9a-f]{64};URI=spiffe:\/\/skein\.local\/ns\/default\/sa\/sidecar$/, 'the call came over mTLS from the client sidecar');
      const mine = JSON.parse((await h1Request(client.outbound, { host: WEB, path: '/h', headers: { 'x-request-id': 'req-42' } })).body.toString()) as SeenRequest;
      assert.equal(mine.headers['x-request-id'], 'req-42');
    });

    test('replaces a spoofed x-forwarded-for sent straight to the inbound port with the peer address', async () => {
      const r = await h1Request(inboundOf(web), { host: WEB, path: '/h', headers: { 'x-forwarded-for': '6.6.6.6, 7.7.7.7' } });
      assert.equal(r.status, 200);
      const seen = JSON.parse(r.body.toString()) as SeenRequest;
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen.headers['x-forwarded-client-cert'], undefined, 'a plaintext caller has no verified identity');
    });
  });

  describe('bad peer input never crashes a sidecar, and it keeps serving', () => {
    const LONG = 100 * 1024;
    type Target = { name: string; sc: () => SidecarProcess; address: () => string; call: () => Promise<HelloReply> };
    const targets: Target[] = [
      { name: 'client sidecar outbound', sc: () => client, address: () => client.outbound, call: () => unary(viaOutbound, 'after') },
      { name: 'server sidecar inbound', sc: () => grpcServer, address: () => inboundOf(grpcServer), call: () => unary(viaInbound, 'after') },
    ];
    const grpcHeaders = (path = '/skein.demo.v1.Greeter/SayHello'): http2.OutgoingHttpHeaders => ({ ':method': 'POST', ':path': path, ':authority': 'greeter:50051', 'content-type': 'application/grpc', te: 'trailers' });
    const cases: { name: string; run: (t: Target) => Promise<void> }[] = [
      {
        name: 'a malformed HTTP/1.1 request line',
        run: async (t) => assert.match((await rawExchange(t.address(), ['GARBAGE\r\n\r\n'])).toString(), /^HTTP\/1\.1 400/),
      },
      {
        name: '100 KB of request headers',
        run: async (t) => {
          const head = `GET / HTTP/1.1\r\nHost: ${WEB}\r\n${Array.from({ length: 100 }, (_, i) => `x-big-${i}: ${'a'.repeat(1000)}\r\n`).join('')}\r\n`;
          assert.match((await rawExchange(t.address(), [head])).toString(), /^HTTP\/1\.1 4\d\d/);
        },
      },
      {
        name: 'a header with invalid characters',
        run: async (t) => {
          assert.match((await rawExchange(t.address(), [`GET / HTTP/1.1\r\nHost: ${WEB}\r\nx-bad\u0001name: v\r\n\r\n`])).toString(), /^HTTP\/1\.1 400/);
          assert.match((await rawExchange(t.address(), [`GET / HTTP/1.1\r\nHost: ${WEB}\r\nx-bad: a\u0000b\r\n\r\n`])).toString(), /^HTTP\/1\.1 400/);
        },
      },
      {
        name: 'an HTTP/2 preface followed by garbage frames',
        run: async (t) => {
          const settings = h2Frame(4, 0, 0, Buffer.alloc(0));
          const garbage = [
            randomBytes(4096),
            h2Frame(1, 0x4 | 0x1, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f])), // HEADERS with an undecodable HPACK block
            h2Frame(0, 0, 0, Buffer.from('x')), // DATA on stream 0
            h2Frame(0, 0, 3, randomBytes(20_000)), // a frame above SETTINGS_MAX_FRAME_SIZE, on an idle stream
          ];
          await Promise.all(garbage.map((g) => rawExchange(t.address(), [H2_PREFACE, settings, g], { idleMs: 500 })));
        },
      },
      {
        name: 'h2 streams reset right after HEADERS and mid-call (gRPC cancel)',
        run: async (t) => {
          await h2Abuse(t.address(), grpcHeaders(), (s) => s.close(http2.constants.NGHTTP2_CANCEL));
          // Through a relay, to end the connection afterwards: grpc-js sends no RST_STREAM for a
          // call cancelled before its stream started, so that stream stays open until then.
          const relay = await countingRelay(t.address());
          const c = greeterClient(relay.address, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'greeter:50051' });
          const chat = c.Chat();
          chat.on('error', () => undefined);
          chat.write({ name: 'x' });
          await new Promise<void>((resolve) => chat.once('data', () => resolve()));
          chat.cancel();
          const stream = c.StreamReplies({ name: 'many', count: 100_000 });
          stream.on('error', () => undefined);
          await new Promise<void>((resolve) => stream.once('data', () => resolve()));
          stream.cancel();
          const early = c.Chat();
          early.on('error', () => undefined);
          early.cancel();
          assert.equal((await unary(c, 'x')).message, 'hello x');
          c.close();
          await relay.close();
        },
      },
      {
        name: 'a socket destroyed mid request body (HTTP/1.1 and HTTP/2)',
        run: async (t) => {
          await rawExchange(t.address(), [`POST /echo HTTP/1.1\r\nHost: ${WEB}\r\ncontent-length: ${MiB}\r\n\r\n`, randomBytes(64 * 1024)], { destroyAfterWrite: true });
          await h2Abuse(t.address(), grpcHeaders(), (s, session) => { s.write(Buffer.from([0, 0, 1, 0, 0])); s.write(randomBytes(1000)); setTimeout(() => session.destroy(), 50); });
        },
      },
      {
        name: 'a huge :path / request target',
        run: async (t) => {
          assert.match((await rawExchange(t.address(), [`GET /${'p'.repeat(LONG)} HTTP/1.1\r\nHost: ${WEB}\r\n\r\n`])).toString(), /^HTTP\/1\.1 4\d\d/);
          await h2Abuse(t.address(), grpcHeaders(`/${'p'.repeat(LONG)}`), (s) => { s.end(); }, { maxSendHeaderBlockLength: 4 * MiB });
          await h2Abuse(t.address(), grpcHeaders(`/${'p'.repeat(16 * 1024)}`), (s) => { s.end(); });
        },
      },
    ];

    for (const t of targets) {
      for (const c of cases) {
        test(`${t.name}: ${c.name}`, async () => {
          await c.run(t);
          assert.equal(t.sc().proc.exitCode, null, `the sidecar exited:\n${t.sc().logs()}`);
          assert.equal(t.sc().proc.signalCode, null);
          assert.equal((await t.call()).message, 'hello after', 'a normal call still works');
        });
      }
    }

    test('leaks no connection: the sockets bad peers closed are closed on the sidecar side too', async () => {
      // Node stops reading an HTTP/2 session after a protocol error and never closes it; the
      // sidecar's keepalive PING (after 10 s idle, 5 s to answer) finds and destroys them.
      for (const t of targets) {
        const port = Number(t.address().split(':').pop());
        await eventually(() => (closeWaitSockets(port) === 0 ? true : undefined), `no CLOSE_WAIT socket on the ${t.name} (${closeWaitSockets(port)} left)`, 30_000);
      }
    });

    test('leaks no in-flight request: every host is back to 0 active requests', async () => {
      for (const sc of [client, grpcServer, web]) {
        await eventually(async () => {
          const clusters = (await (await fetch(`http://${sc.admin}/clusters`)).json()) as { name: string; hosts: { address: string; activeRequests: number }[] }[];
          const busy = clusters.flatMap((c) => c.hosts.filter((h) => h.activeRequests !== 0).map((h) => `${c.name} ${h.address}: ${h.activeRequests}`));
          return busy.length === 0 ? true : (() => { throw new Error(busy.join(', ')); })();
        }, `no active requests on ${sc.admin}`, 5000);
      }
    });
  });

  test('a SIGTERM\'d server sidecar exits 0 and its endpoint leaves GET /v1/endpoints', async () => {
    const has = async (node: string) => (await api<{ endpoints: { node: string }[] }>(mesh.cp.api, 'GET', '/v1/endpoints')).endpoints.some((e) => e.node === node);
    assert.ok(await has('server-web-a'));
    assert.equal(await web.stop('SIGTERM'), 0, web.logs());
    assert.equal(await has('server-web-a'), false);
    await mesh.hosts(client, 'web', []);
    const r = await h1Request(client.outbound, { host: WEB, path: '/' });
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-skein-reason'], 'no_healthy_upstream');
  });
});

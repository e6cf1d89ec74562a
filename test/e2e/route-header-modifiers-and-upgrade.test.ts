import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { API_VERSION } from '../../shared/src/config/types';
import { h1Request } from '../support/sidecar-apps';
import { inboundOf, Mesh } from '../support/sidecar-mesh';

/**
 * Route header modifiers and Upgrade tunnelling, end to end through real processes:
 * client -> client sidecar (outbound) -> server sidecar (inbound) -> a node:http app.
 */
describe('sidecar: route header modifiers and WebSocket-style Upgrade (processes)', () => {
  let mesh: Mesh;
  let client: SidecarProcess;

  before(async () => {
    mesh = await Mesh.start('sidecar-e2e-headers');
    await mesh.apply([
      { apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'web' }, spec: { protocol: 'http', ports: [{ name: 'http', port: 8080 }] } },
      { apiVersion: API_VERSION, kind: 'HTTPRoute', metadata: { name: 'web' }, spec: { parentRefs: [{ name: 'web' }], rules: [{
        backendRefs: [{ name: 'web' }],
        filters: [
          { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-route', value: 'web' }], add: [{ name: 'x-tag', value: 'mesh' }], remove: ['x-secret'] } },
          { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-served-by', value: 'skein' }], remove: ['x-internal'] } },
        ],
      }] } },
    ]);
    const app = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-internal': 'do-not-leak' });
      res.end(JSON.stringify(req.headers));
    });
    app.on('upgrade', (req, socket: net.Socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${String(req.headers.upgrade)}\r\nconnection: Upgrade\r\n\r\n`);
      socket.pipe(socket); // echo every byte back
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
    mesh.app({ close: () => new Promise<void>((r) => { app.close(() => r()); app.closeAllConnections(); }) });
    const server = await mesh.sidecar({ nodeId: 'hdr-web', service: 'web', app: `127.0.0.1:${(app.address() as net.AddressInfo).port}`, appProtocol: 'http' });
    client = await mesh.clientSidecar('hdr-client');
    await mesh.hosts(client, 'web', [inboundOf(server)]);
  });

  after(async () => { await mesh?.stop(); });

  test('sets, appends and removes request headers, and rewrites response headers, as the route says', async () => {
    const r = await h1Request(client.outbound, { host: 'web:8080', path: '/h', headers: { 'x-route': 'spoofed', 'x-tag': 'app', 'x-secret': 'hunter2' } });
    assert.equal(r.status, 200, r.body.toString());
    const seen = JSON.parse(r.body.toString()) as http.IncomingHttpHeaders;
    assert.equal(seen['x-route'], 'web', 'set overwrites');
    assert.equal(seen['x-tag'], 'app, mesh', 'add appends');
    assert.equal(seen['x-secret'], undefined, 'remove drops it before the upstream sees it');
    assert.equal(r.headers['x-served-by'], 'skein');
    assert.equal(r.headers['x-internal'], undefined, 'response header removed');
  });

  test('tunnels an Upgrade through both sidecars and relays bytes both ways', async () => {
    const [host, port] = [client.outbound.slice(0, client.outbound.lastIndexOf(':')), Number(client.outbound.slice(client.outbound.lastIndexOf(':') + 1))];
    const socket = net.connect(port, host);
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write('GET /ws HTTP/1.1\r\nhost: web:8080\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n');
    const text = () => Buffer.concat(received).toString('latin1');
    const until = async (pred: () => boolean, what: string) => {
      const deadline = Date.now() + 10_000;
      while (!pred()) { if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(text())}`); await new Promise((r) => setTimeout(r, 20)); }
    };
    await until(() => text().includes('\r\n\r\n'), 'the 101 head');
    assert.match(text(), /^HTTP\/1\.1 101 /);
    const headEnd = text().indexOf('\r\n\r\n') + 4;
    socket.write('ping-1');
    socket.write('ping-2');
    await until(() => text().slice(headEnd) === 'ping-1ping-2', 'the echoed bytes');
    socket.destroy();
  });
});

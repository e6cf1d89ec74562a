/**
 * Sidecar access logs (--access-log), end to end: each request through a client sidecar and a
 * server sidecar is one JSON line in each sidecar's log, carrying the caller's trace id, the
 * request id, route, cluster, upstream host, status, gRPC status, attempts, duration and (on the
 * inbound side, over mTLS) the caller's SPIFFE ID; credentials never appear.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterClient } from '../../shared/src/sample-app/greeter';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { eventually } from '../support/ads-client';
import { inboundOf, Mesh } from '../support/sidecar-mesh';
import { API_VERSION } from '../support/skein';

interface Line { time: string; listener: string; traceId?: string; requestId?: string; method: string; route: string; cluster?: string; upstreamHost?: string; status: number; grpcStatus?: number; durationMs: number; attempts: number; reason?: string; peer?: string }
const lines = (file: string): Line[] => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line) : []);

describe('access logs record each request', () => {
  let mesh: Mesh;
  let client: SidecarProcess;
  let server: SidecarProcess;
  let greeter: GreeterClient;
  let clientLog = '';
  let serverLog = '';

  before(async () => {
    mesh = await Mesh.start('access-log');
    clientLog = path.join(mesh.dir, 'client-access.log');
    serverLog = path.join(mesh.dir, 'server-access.log');
    await mesh.apply([{ apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'greeter' }, spec: { ports: [{ name: 'grpc', port: 50051 }] } }]);
    const app = mesh.app(await startGreeter({ backend: 'g-a', version: 'v1' }));
    server = await mesh.sidecar({ nodeId: 'greeter-a', service: 'greeter', app: `${app.address}:${app.port}`, extraArgs: ['--access-log', serverLog] });
    client = await mesh.clientSidecar('frontend-1', ['--access-log', clientLog]);
    await mesh.hosts(client, 'greeter', [inboundOf(server)]);
    greeter = mesh.greeter(client, 'greeter:50051');
  });
  after(async () => { await mesh?.stop(); });

  test('one line per request on each side, with the trace id from traceparent, route, upstream, statuses, attempts and the mTLS caller; no credential', async () => {
    const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
    const SECRET = 'Bearer s3cr3t-do-not-log';
    for (let i = 0; i < 10; i++) {
      const md = new grpc.Metadata();
      md.set('traceparent', `00-${TRACE}-00f067aa0ba902b7-01`);
      md.set('authorization', SECRET);
      md.set('x-request-id', `req-${i}`);
      await new Promise<void>((resolve, reject) => greeter.SayHello({ name: `n${i}` }, md, { deadline: Date.now() + 5000 }, (e) => (e ? reject(e) : resolve())));
    }
    const out = await eventually(() => { const l = lines(clientLog); return l.length >= 10 ? l : undefined; }, '10 lines in the client sidecar\'s access log');
    const inb = await eventually(() => { const l = lines(serverLog); return l.length >= 10 ? l : undefined; }, '10 lines in the server sidecar\'s access log');
    assert.equal(out.length, 10);
    assert.equal(inb.length, 10);
    for (const [i, l] of out.entries()) {
      assert.equal(l.listener, 'outbound');
      assert.equal(l.traceId, TRACE);
      assert.equal(l.requestId, `req-${i}`);
      assert.equal(l.method, 'POST');
      assert.equal(l.cluster, 'greeter');
      assert.equal(l.upstreamHost, inboundOf(server));
      assert.deepEqual([l.status, l.grpcStatus, l.attempts], [200, 0, 1]);
      assert.ok(l.durationMs > 0 && l.durationMs < 5000);
      assert.ok(!Number.isNaN(Date.parse(l.time)));
    }
    for (const l of inb) {
      assert.equal(l.listener, 'inbound');
      assert.equal(l.traceId, TRACE);
      assert.equal(l.peer, 'spiffe://skein.local/ns/default/sa/sidecar', 'the caller, from its verified certificate');
      assert.equal(l.status, 200);
    }
    for (const f of [clientLog, serverLog]) assert.ok(!fs.readFileSync(f, 'utf8').includes('s3cr3t'), `${f} must not contain the credential`);
  });

  test('a call the proxy answers itself logs its reason', async () => {
    const before = lines(clientLog).length;
    const nowhere = mesh.greeter(client, 'nowhere:1');
    await assert.rejects(new Promise<void>((resolve, reject) => nowhere.SayHello({ name: 'x' }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e) => (e ? reject(e) : resolve()))));
    const l = await eventually(() => lines(clientLog)[before], 'the line of the refused call');
    assert.equal(l.reason, 'no_route');
    assert.equal(l.attempts, 0);
    assert.equal(l.upstreamHost, undefined);
  });
});

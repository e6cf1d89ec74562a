/**
 * The sample app forwards the trace headers: a Greeter with an upstream passes traceparent,
 * tracestate and x-request-id (and nothing else of the caller's metadata) to the next Greeter,
 * over real gRPC.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { greeterClient, greeterService, startGreeter } from '../../../shared/src/sample-app/greeter';
import type { GreeterBackend, GreeterClient, HelloReply, HelloRequest } from '../../../shared/src/sample-app/greeter';

describe('the sample app forwards trace headers', () => {
  let back: grpc.Server;
  let seen: grpc.Metadata | undefined;
  let front: GreeterBackend;
  let toBack: GreeterClient;
  let toFront: GreeterClient;

  before(async () => {
    back = new grpc.Server();
    back.addService(greeterService(), {
      SayHello: (call: grpc.ServerUnaryCall<HelloRequest, HelloReply>, cb: grpc.sendUnaryData<HelloReply>) => { seen = call.metadata; cb(null, { message: 'from back', backend: 'back', version: 'v1' }); },
    });
    const port = await new Promise<number>((resolve, reject) => back.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    toBack = greeterClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    front = await startGreeter({ backend: 'front', version: 'v1', upstream: toBack });
    toFront = greeterClient(`127.0.0.1:${front.port}`, grpc.credentials.createInsecure());
  });
  after(async () => { toFront?.close(); toBack?.close(); await front?.close(); back?.forceShutdown(); });

  test('traceparent, tracestate and x-request-id reach the next call; other metadata does not', async () => {
    const md = new grpc.Metadata();
    md.set('traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    md.set('tracestate', 'k=v');
    md.set('x-request-id', 'req-1');
    md.set('authorization', 'Bearer secret');
    const reply = await new Promise<HelloReply>((resolve, reject) => toFront.SayHello({ name: 'x' }, md, { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r!))));
    assert.equal(reply.message, 'hello x <- back: from back');
    assert.deepEqual(seen?.get('traceparent'), ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']);
    assert.deepEqual(seen?.get('tracestate'), ['k=v']);
    assert.deepEqual(seen?.get('x-request-id'), ['req-1']);
    assert.deepEqual(seen?.get('authorization'), []);
  });
});

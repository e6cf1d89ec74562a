/**
 * A real @grpc/grpc-js client against an H2Connection server over loopback: unary calls
 * answered with a length-prefixed message and grpc-status trailers, and a trailers-only error
 * response (HEADERS with END_STREAM carrying grpc-status).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { headerValue } from '../../../sidecar/src/h2/header-rules';
import { serveH2 } from '../../support/h2-endpoint';
import type { Recorder } from '../../support/h2-endpoint';

const TIMEOUT = 30_000;

/** gRPC message framing: a 0 flag byte, a 4-byte length, the message. */
function grpcFrame(msg: Buffer): Buffer {
  const b = Buffer.alloc(5 + msg.length);
  b.writeUInt32BE(msg.length, 1);
  msg.copy(b, 5);
  return b;
}

function echoService(r: Recorder): void {
  r.onEnd = (s, log) => {
    const body = Buffer.concat(log.data);
    const msg = body.subarray(5, 5 + body.readUInt32BE(1));
    if (headerValue(log.headers!, ':path') === '/skein.Echo/Missing') {
      r.conn.respond(s, [':status', '200', 'content-type', 'application/grpc', 'grpc-status', '5', 'grpc-message', 'no such thing'], true);
      return;
    }
    r.conn.respond(s, [':status', '200', 'content-type', 'application/grpc'], false);
    r.conn.write(s, grpcFrame(Buffer.from(`echo: ${msg.toString()}`)));
    r.conn.end(s, ['grpc-status', '0', 'grpc-message', '']);
  };
}

const identity = (b: Buffer): Buffer => b;

function unary(client: grpc.Client, path: string, msg: string): Promise<{ err: grpc.ServiceError | null; res: Buffer | undefined }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, identity, identity, Buffer.from(msg), (err: grpc.ServiceError | null, res?: Buffer) => resolve({ err, res }));
  });
}

describe('a real grpc-js client against an H2Connection server', () => {
  test('unary calls with grpc-status trailers, and a trailers-only error', { timeout: TIMEOUT }, async () => {
    const server = await serveH2(echoService);
    const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    try {
      for (let i = 0; i < 3; i++) {
        const { err, res } = await unary(client, '/skein.Echo/Say', `hello ${i}`);
        assert.equal(err, null);
        assert.equal(res?.toString(), `echo: hello ${i}`);
      }
      const { err } = await unary(client, '/skein.Echo/Missing', 'x');
      assert.equal(err?.code, grpc.status.NOT_FOUND);
      assert.equal(err?.details, 'no such thing');
      const r = server.recorders[0]!;
      const first = r.logs.get(1)!;
      assert.equal(headerValue(first.headers!, 'content-type'), 'application/grpc');
      assert.equal(headerValue(first.headers!, 'te'), 'trailers');
    } finally {
      client.close();
      await server.close();
    }
  });
});

import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_DIR } from '../paths';
import { forwardTraceHeaders } from './trace-headers';

/**
 * The sample Greeter service (proto/skein/demo/v1/greeter.proto): a real gRPC server used by the
 * demo, the tests and the benchmarks. Each reply names the backend and version that served it.
 */
export interface HelloRequest { name?: string; payload?: Buffer; count?: number }
export interface HelloReply { message: string; backend: string; version: string; payload?: Buffer }

let def: grpc.GrpcObject | undefined;
function pkg(): grpc.GrpcObject {
  def ??= grpc.loadPackageDefinition(protoLoader.loadSync(path.join(PROTO_DIR, 'skein/demo/v1/greeter.proto'), { keepCase: true, longs: String, enums: String, defaults: true }));
  return def;
}

function greeterCtor(): grpc.ServiceClientConstructor {
  return (((pkg()['skein'] as grpc.GrpcObject)['demo'] as grpc.GrpcObject)['v1'] as grpc.GrpcObject)['Greeter'] as grpc.ServiceClientConstructor;
}

export function greeterService(): grpc.ServiceDefinition { return greeterCtor().service; }

export type GreeterClient = grpc.Client & {
  SayHello(req: HelloRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: HelloReply) => void): grpc.ClientUnaryCall;
  StreamReplies(req: HelloRequest, md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<HelloReply>;
  Collect(md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: HelloReply) => void): grpc.ClientWritableStream<HelloRequest>;
  Chat(md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientDuplexStream<HelloRequest, HelloReply>;
};

export function greeterClient(target: string, creds: grpc.ChannelCredentials, options: grpc.ChannelOptions = {}): GreeterClient {
  const Ctor = greeterCtor();
  return new Ctor(target, creds, options) as unknown as GreeterClient;
}

/** Unary SayHello as a promise. */
export function sayHello(client: GreeterClient, name: string, deadlineMs = 5000): Promise<HelloReply> {
  return new Promise((resolve, reject) => {
    client.SayHello({ name }, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, reply) => (err ? reject(err) : resolve(reply!)));
  });
}

export interface GreeterBackend { server: grpc.Server; port: number; address: string; backend: string; version: string; close(): Promise<void> }

/**
 * Starts a Greeter server on loopback. `backend` and `version` are echoed in every reply. With
 * `upstream`, SayHello first calls the next Greeter (through its sidecar), forwarding the trace
 * headers it received (trace-headers.ts), and answers with that reply's message after its own.
 */
export async function startGreeter(opts: { backend: string; version: string; host?: string; port?: number; serverOptions?: grpc.ServerOptions; upstream?: GreeterClient }): Promise<GreeterBackend> {
  const server = new grpc.Server(opts.serverOptions);
  const reply = (name: string | undefined, payload?: Buffer): HelloReply => ({ message: `hello ${name ?? ''}`, backend: opts.backend, version: opts.version, ...(payload && payload.length > 0 ? { payload } : {}) });
  server.addService(greeterService(), {
    SayHello: (call: grpc.ServerUnaryCall<HelloRequest, HelloReply>, cb: grpc.sendUnaryData<HelloReply>) => {
      const up = opts.upstream;
      if (up === undefined) { cb(null, reply(call.request.name, call.request.payload)); return; }
      up.SayHello({ name: call.request.name ?? '' }, forwardTraceHeaders(call.metadata), { deadline: call.getDeadline() }, (err, next) => {
        if (err) { cb(err); return; }
        const r = reply(call.request.name, call.request.payload);
        cb(null, { ...r, message: `${r.message} <- ${next!.backend}: ${next!.message}` });
      });
    },
    StreamReplies: (call: grpc.ServerWritableStream<HelloRequest, HelloReply>) => {
      for (let i = 0; i < (call.request.count ?? 0); i++) call.write(reply(`${call.request.name ?? ''} #${i}`));
      call.end();
    },
    Collect: (call: grpc.ServerReadableStream<HelloRequest, HelloReply>, cb: grpc.sendUnaryData<HelloReply>) => {
      const names: string[] = [];
      call.on('data', (r: HelloRequest) => names.push(r.name ?? ''));
      call.on('end', () => cb(null, reply(names.join(','))));
    },
    Chat: (call: grpc.ServerDuplexStream<HelloRequest, HelloReply>) => {
      call.on('data', (r: HelloRequest) => call.write(reply(r.name, r.payload)));
      call.on('end', () => call.end());
    },
  });
  const host = opts.host ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(`${host}:${opts.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return {
    server, port, address: host, backend: opts.backend, version: opts.version,
    // Graceful, but never waits on a client that keeps its connection open: forced after 1s.
    close: () => new Promise<void>((resolve) => {
      const force = setTimeout(() => { server.forceShutdown(); resolve(); }, 1000);
      server.tryShutdown(() => { clearTimeout(force); resolve(); });
    }),
  };
}

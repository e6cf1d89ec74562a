/**
 * HTTP/2 server microbench (issue 13): CPU per gRPC-shaped unary request (a 20-byte request
 * body; a response head, a 20-byte body and grpc-status trailers) of a server in this process,
 * for skein's H2Connection and for Node's http2 server, both driven by the same Node http2
 * client in a child process (whose CPU is not counted) with 32 requests in flight on one
 * connection.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/h2-connection.js [--ms=2000]
 *
 * Prints a table; nothing is written to bench/results. Loopback, one connection: it compares
 * the two servers' own cost, it is not the proxy's number.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { H2Connection } from '../sidecar/src/h2/connection';
import type { H2Handler } from '../sidecar/src/h2/connection';
import type { H2Stream } from '../sidecar/src/h2/stream';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const MS = Number(args.get('ms') ?? 2000);
const BODY = Buffer.alloc(20, 0x61);
const HEAD = [':status', '200', 'content-type', 'application/grpc'];
const TRAILERS = ['grpc-status', '0'];

/** The client: keeps 32 requests in flight for `ms`, then prints how many completed. */
const CLIENT = `
const http2 = require('node:http2');
const [port, ms] = process.argv.slice(1).map(Number);
const c = http2.connect('http://127.0.0.1:' + port);
const body = Buffer.alloc(20, 0x62);
let done = 0, stop = false;
function one() {
  const req = c.request({ ':method': 'POST', ':path': '/bench.Echo/Say', 'content-type': 'application/grpc', te: 'trailers' });
  req.end(body);
  req.on('data', () => {});
  req.on('close', () => { done++; if (!stop) one(); });
}
c.on('connect', () => {
  for (let i = 0; i < 32; i++) one();
  setTimeout(() => { stop = true; process.stdout.write(String(done)); c.close(); }, ms);
});
`;

class Echo implements H2Handler {
  conn!: H2Connection;
  onHeaders(): void { /* the answer goes when the request ends */ }
  onInformational(): void { /* server role */ }
  onData(s: H2Stream, data: Buffer, endStream: boolean): void {
    this.conn.consumed(s, data.length);
    if (!endStream) return;
    this.conn.respond(s, HEAD, false);
    this.conn.write(s, BODY);
    this.conn.end(s, TRAILERS);
  }
  onTrailers(): void { /* none */ }
  onWritable(): void { /* tiny bodies */ }
  onStreamClose(): void { /* nothing held */ }
  onGoaway(): void { /* the client closes */ }
  onCapacity(): void { /* server role */ }
  onClose(): void { /* per connection */ }
}

function skeinServer(): net.Server {
  return net.createServer((sock) => {
    const h = new Echo();
    h.conn = new H2Connection(sock, { role: 'server', handler: h });
  });
}

function nodeServer(): net.Server {
  const s = http2.createServer();
  s.on('stream', (stream) => {
    stream.on('data', () => undefined);
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(BODY);
    });
  });
  return s as unknown as net.Server;
}

async function run(name: string, server: net.Server): Promise<void> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const cpu0 = process.cpuUsage();
  const child = spawn(process.execPath, ['-e', CLIENT, String(port), String(MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  await once(child, 'exit');
  const cpu = process.cpuUsage(cpu0);
  server.close();
  const n = Number(out);
  const us = (cpu.user + cpu.system) / n;
  console.log(`| ${name.padEnd(22)} | ${String(Math.round(n / (MS / 1000))).padStart(8)} | ${us.toFixed(1).padStart(12)} |`);
}

async function main(): Promise<void> {
  console.log(`| server (${MS} ms each)`.padEnd(25) + '|    req/s | CPU us/req |');
  console.log('|---|---|---|');
  await run('skein H2Connection', skeinServer());
  await run('node http2', nodeServer());
  await run('skein H2Connection', skeinServer());
  await run('node http2', nodeServer());
}

void main();

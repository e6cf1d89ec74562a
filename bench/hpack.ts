/**
 * HPACK microbench (issue 13): ns per header block to encode and to decode a typical gRPC unary
 * request and response (headers and trailers), with skein's HPACK codec (sidecar/src/h2), for
 * each encoder setting: dynamic table 4096 or none, Huffman on or off. Each pass encodes (or
 * decodes) a sequence of 1,000 blocks on one fresh connection state, as a connection would:
 * the request id and trace context differ per request, the rest repeats.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/hpack.js [--ms=1000]
 *
 * A microbench: one process, no sockets. It prints a table; nothing is written to bench/results.
 */
import { HpackDecoder } from '../sidecar/src/h2/hpack-decoder';
import { HpackEncoder } from '../sidecar/src/h2/hpack-encoder';
import type { HpackEncoderOptions } from '../sidecar/src/h2/hpack-encoder';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const MS = Number(args.get('ms') ?? 1000);
const BLOCKS = 1000;

const hex = (n: number, i: number): string => (i * 2654435761 >>> 0).toString(16).padStart(8, '0').repeat(Math.ceil(n / 8)).slice(0, n);

function request(i: number): string[] {
  return [
    ':method', 'POST', ':scheme', 'http', ':path', '/helloworld.Greeter/SayHello', ':authority', 'greeter.default.svc.cluster.local:50051',
    'content-type', 'application/grpc', 'te', 'trailers', 'grpc-accept-encoding', 'identity,deflate,gzip', 'user-agent', 'grpc-node-js/1.14.7',
    'grpc-timeout', '4999m', 'x-request-id', `${hex(8, i)}-${hex(4, i + 1)}-${hex(4, i + 2)}-${hex(4, i + 3)}-${hex(12, i + 4)}`,
    'traceparent', `00-${hex(32, i)}-${hex(16, i + 9)}-01`,
  ];
}
const RESPONSE = [':status', '200', 'content-type', 'application/grpc', 'grpc-accept-encoding', 'identity,deflate,gzip', 'grpc-encoding', 'identity'];
const TRAILERS = ['grpc-status', '0', 'grpc-message', ''];

/** Runs `pass` (BLOCKS operations) for about MS ms after a warm-up; returns ns per operation. */
function time(pass: () => void): number {
  for (let i = 0; i < 20; i++) pass();
  let passes = 0;
  const start = process.hrtime.bigint();
  const stop = start + BigInt(MS) * 1_000_000n;
  let now = start;
  while (now < stop) { pass(); passes++; now = process.hrtime.bigint(); }
  return Number(now - start) / (passes * BLOCKS);
}

interface Row { message: string; encoder: string; bytes: number; encodeNs: number; decodeNs: number }

function bench(message: string, lists: string[][], name: string, opts: HpackEncoderOptions): Row {
  const blocks = (() => { const e = new HpackEncoder(opts); return lists.map((l) => e.encode(l)); })();
  const check = new HpackDecoder();
  blocks.forEach((b, i) => { if (check.decode(b).join('\n') !== lists[i]!.join('\n')) throw new Error(`round trip failed: ${message} ${name} #${i}`); });
  let sink = 0;
  const encodeNs = time(() => { const e = new HpackEncoder(opts); for (const l of lists) sink += e.encode(l).length; });
  const decodeNs = time(() => { const d = new HpackDecoder(); for (const b of blocks) sink += d.decode(b).length; });
  if (sink === 0) throw new Error('nothing measured');
  const steady = blocks.slice(10);
  return { message, encoder: name, bytes: Math.round(steady.reduce((s, b) => s + b.length, 0) / steady.length), encodeNs, decodeNs };
}

const requests = Array.from({ length: BLOCKS }, (_, i) => request(i));
const responses = Array.from({ length: BLOCKS }, () => RESPONSE);
const trailers = Array.from({ length: BLOCKS }, () => TRAILERS);
const settings: [string, HpackEncoderOptions][] = [
  ['table 4096, huffman', { maxTableSize: 4096, huffman: true }],
  ['table 4096, no huffman', { maxTableSize: 4096, huffman: false }],
  ['no table, huffman', { maxTableSize: 0, huffman: true }],
  ['no table, no huffman', { maxTableSize: 0, huffman: false }],
];
const rows: Row[] = [];
for (const [message, lists] of [['gRPC request headers', requests], ['gRPC response headers', responses], ['gRPC trailers', trailers]] as const) {
  for (const [name, opts] of settings) rows.push(bench(message, lists as string[][], name, opts));
}
console.log(`node ${process.version}, ${MS} ms per measurement, ${BLOCKS} blocks per pass (a fresh connection each pass)\n`);
console.log('| message | encoder | bytes/block (steady) | encode ns/block | decode ns/block |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.message} | ${r.encoder} | ${r.bytes} | ${r.encodeNs.toFixed(0)} | ${r.decodeNs.toFixed(0)} |`);

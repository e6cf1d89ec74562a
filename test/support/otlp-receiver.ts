/**
 * A real OTLP/HTTP trace receiver for tests and the bench: a node http server on 127.0.0.1 that
 * takes POST /v1/traces (application/x-protobuf) and decodes each ExportTraceServiceRequest with
 * the official OpenTelemetry protos (the protobufjs root generated from opentelemetry-proto and
 * shipped by @opentelemetry/otlp-proto-exporter-base), answering ExportTraceServiceResponse.
 * `slow`: it reads requests and never answers (a collector that hangs). `keepSpans: false` only
 * counts them (the bench's sink, bench/otlp-sink.ts).
 */
import * as http from 'node:http';
import type * as net from 'node:net';

interface OtlpRoot { opentelemetry: { proto: { collector: { trace: { v1: {
  ExportTraceServiceRequest: { decode(b: Uint8Array): unknown; toObject(m: unknown, o: object): WireRequest };
  ExportTraceServiceResponse: { encode(m: object): { finish(): Uint8Array } };
} } } } } }
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ROOT = require('@opentelemetry/otlp-proto-exporter-base/build/src/generated/root') as OtlpRoot;
const TRACE = ROOT.opentelemetry.proto.collector.trace.v1;

interface WireValue { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number }
interface WireKv { key: string; value?: WireValue }
interface WireSpan { traceId: Uint8Array; spanId: Uint8Array; parentSpanId?: Uint8Array; name: string; kind?: number; attributes?: WireKv[]; events?: { name: string; attributes?: WireKv[] }[]; status?: { code?: number } }
interface WireRequest { resourceSpans?: { resource?: { attributes?: WireKv[] }; scopeSpans?: { spans?: WireSpan[] }[] }[] }

/** OTLP span kinds (opentelemetry.proto.trace.v1.Span.SpanKind). */
export const SPAN_KIND = { SERVER: 2, CLIENT: 3 } as const;

export interface ReceivedSpan {
  traceId: string; spanId: string; parentSpanId: string; name: string; kind: number;
  attributes: Record<string, string | number | boolean>;
  events: { name: string; attributes: Record<string, string | number | boolean> }[];
  resource: Record<string, string | number | boolean>;
  statusCode: number;
}

const hex = (b: Uint8Array | undefined): string => (b === undefined ? '' : Buffer.from(b).toString('hex'));
function attrs(kvs: WireKv[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of kvs ?? []) {
    const v = kv.value ?? {};
    out[kv.key] = v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.boolValue ?? v.doubleValue ?? '';
  }
  return out;
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  requests = 0;
  /** Spans received (kept in `spans` unless keepSpans is false). */
  spanCount = 0;
  private readonly held: http.ServerResponse[] = [];

  private constructor(private readonly server: http.Server, readonly slow: boolean, private readonly keep: boolean) {}

  /** The URL to give --trace-endpoint. */
  get url(): string { return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}/v1/traces`; }

  static async start(opts: { slow?: boolean; keepSpans?: boolean } = {}): Promise<OtlpReceiver> {
    const server = http.createServer();
    const r = new OtlpReceiver(server, opts.slow === true, opts.keepSpans !== false);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        r.requests++;
        if (r.slow) { r.held.push(res); return; }
        if (req.method !== 'POST' || req.url !== '/v1/traces') { res.writeHead(404).end(); return; }
        r.take(TRACE.ExportTraceServiceRequest.toObject(TRACE.ExportTraceServiceRequest.decode(Buffer.concat(chunks)), { defaults: false }));
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.from(TRACE.ExportTraceServiceResponse.encode({}).finish()));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return r;
  }

  private take(m: WireRequest): void {
    for (const rs of m.resourceSpans ?? []) {
      const resource = attrs(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spanCount++;
          if (!this.keep) continue;
          this.spans.push({
            traceId: hex(s.traceId), spanId: hex(s.spanId), parentSpanId: hex(s.parentSpanId), name: s.name, kind: s.kind ?? 0,
            attributes: attrs(s.attributes), events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attrs(e.attributes) })), resource, statusCode: s.status?.code ?? 0,
          });
        }
      }
    }
  }

  /** The spans of one trace. */
  trace(traceId: string): ReceivedSpan[] { return this.spans.filter((s) => s.traceId === traceId); }

  close(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * The sidecar's tracer: the OpenTelemetry trace SDK (BasicTracerProvider, a BatchSpanProcessor
 * and an OTLP exporter: HTTP/protobuf by default, gRPC as an option), with spans made by the
 * sidecar itself at the points it controls (no automatic http/http2 instrumentation):
 *
 *   ActiveStream.start()   -> ListenerTracer.onRequest: the sampling decision, the request's span
 *   RouterFilter attempts  -> RequestTrace.onAttempt / onAttemptEnd (request-trace.ts)
 *   ActiveStream.finish()  -> RequestTrace.end
 *
 * Sampling is decided here, before any SDK object exists: the caller's sampled flag when it sent
 * a context (W3C, else B3: parent-based), else a draw against the route's ratio (Route.tracing),
 * else the listener's (HttpConnectionManager.tracing), both from the control plane. An unsampled
 * request makes no span; it only gets a traceparent with the sampled flag off when it had none
 * (or only B3), so the next sidecar and the app follow the same decision. With tracing off (no
 * exporter) a request pays one field read (ListenerContext.tracer).
 *
 * The exporter can never hurt traffic: export is async (the batch processor's timer), the queue
 * is bounded (--trace-max-queue); a span that finds it full is dropped and counted
 * (tracing.spans_dropped in /stats), as are spans the collector did not take
 * (tracing.spans_export_failed); a dead or slow collector only makes those counters grow.
 */
import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import type { Context, Span, Tracer } from '@opentelemetry/api';

/** For the sidecar, which loads this module only when tracing is on (and @opentelemetry/api with it). */
export { SpanKind } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, RandomIdGenerator } from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Counter, Stats } from '../stats/stats';
import type { RouteTracing } from '../route/route-tracing';
import type { ListenerTracing } from '../xds/hcm-tracing';
import { RequestTrace } from './request-trace';
import type { EndedRequest } from './request-trace';
import { incomingContext, isSampled, traceparent } from './trace-context';
import { DEFAULT_TRACE_QUEUE } from './tracing-settings';
import type { TracingSettings } from './tracing-settings';
export type { TracingSettings } from './tracing-settings';

/** Resource attributes: the local service, its version, this sidecar's node id. */
export interface TracedService { service: string; version: string; nodeId: string }

/** The request a listener traces (ActiveStream implements it). */
export interface TracedRequest extends EndedRequest {
  readonly snap: { readonly tracing?: ListenerTracing | undefined };
  readonly route: { readonly name: string; readonly tracing: RouteTracing | undefined; readonly route?: { readonly retryPolicy?: unknown } | undefined };
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly grpc: boolean;
  readonly downstreamHeaders: Readonly<Record<string, string | string[] | undefined>>;
  readonly requestHeaders: Record<string, string | string[] | number | undefined>;
  readonly remoteAddress: string | undefined;
  random(): number;
  trace: RequestTrace | undefined;
}

export class SidecarTracer {
  readonly tracer: Tracer;
  private readonly provider: BasicTracerProvider;
  private readonly ids = new RandomIdGenerator();
  /** Spans handed to the batch processor and not yet to the exporter. */
  queued = 0;
  readonly maxQueue: number;
  readonly counters: { sampled: Counter; unsampled: Counter; dropped: Counter; exported: Counter; failed: Counter };

  constructor(settings: TracingSettings, service: TracedService, stats: Stats, exporter?: SpanExporter) {
    this.maxQueue = settings.maxQueueSize ?? DEFAULT_TRACE_QUEUE;
    this.counters = {
      sampled: stats.counter('tracing.requests_sampled'), unsampled: stats.counter('tracing.requests_not_sampled'),
      dropped: stats.counter('tracing.spans_dropped'), exported: stats.counter('tracing.spans_exported'), failed: stats.counter('tracing.spans_export_failed'),
    };
    const inner = exporter ?? otlpExporter(settings);
    const batch = new BatchSpanProcessor(new CountingExporter(inner, this), {
      maxQueueSize: this.maxQueue,
      maxExportBatchSize: Math.min(settings.maxExportBatchSize ?? 512, this.maxQueue),
      scheduledDelayMillis: settings.scheduledDelayMs ?? 1000,
      exportTimeoutMillis: settings.exportTimeoutMs ?? 10_000,
    });
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: service.service, [ATTR_SERVICE_VERSION]: service.version, 'service.instance.id': service.nodeId }),
      sampler: new AlwaysOnSampler(), // the decision is made before a span is asked for (onRequest)
      spanProcessors: [new BoundedProcessor(batch, this)],
    });
    this.tracer = this.provider.getTracer('skein-sidecar');
  }

  newTraceId(): string { return this.ids.generateTraceId(); }
  newSpanId(): string { return this.ids.generateSpanId(); }

  /** Exports what is queued now. */
  flush(): Promise<void> { return this.provider.forceFlush(); }

  /** Exports what is queued, for at most `ms` (a dead collector must not hold the sidecar's exit), then stops. */
  async shutdown(ms = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.provider.shutdown().catch(() => undefined), new Promise<void>((r) => { timer = setTimeout(r, ms); timer.unref(); })]);
    clearTimeout(timer);
  }
}

/**
 * One listener's tracing: SERVER spans on the inbound listener, CLIENT spans on the outbound one.
 * The sidecar gives a connection manager one only when it has an exporter.
 */
export class ListenerTracer {
  constructor(private readonly t: SidecarTracer, readonly kind: SpanKind, private readonly version: string | undefined) {}

  /** A request starts: decide, and make its span when sampled; write the upstream traceparent. */
  onRequest(r: TracedRequest): void {
    const cfg = r.snap.tracing;
    if (cfg === undefined) return; // the listener's HCM asks for no tracing
    const parent = incomingContext(r.downstreamHeaders);
    let sampled: boolean;
    if (parent !== undefined) sampled = isSampled(parent);
    else {
      const rt = r.route.tracing;
      const ratio = (rt?.randomSampling ?? cfg.randomSampling) * (rt?.overallSampling ?? cfg.overallSampling);
      sampled = ratio > 0 && (ratio >= 1 || r.random() < ratio);
    }
    const h = r.requestHeaders;
    if (!sampled) {
      this.t.counters.unsampled.value++;
      // The caller's context goes on (as W3C, also when it came as B3); a new trace gets one.
      h['traceparent'] = parent === undefined ? traceparent(this.t.newTraceId(), this.t.newSpanId(), false) : traceparent(parent.traceId, parent.spanId, false);
      return;
    }
    this.t.counters.sampled.value++;
    const span = this.startSpan(r, cfg, parent === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, parent));
    const rt = new RequestTrace(this.t.tracer, span, this.kind, spanName(r), r.route.route?.retryPolicy !== undefined, this.version);
    r.trace = rt;
    h['traceparent'] = RequestTrace.header(span);
    const ts = span.spanContext().traceState;
    if (ts !== undefined) h['tracestate'] = ts.serialize();
  }

  private startSpan(r: TracedRequest, cfg: ListenerTracing, parent: Context): Span {
    const q = r.path.indexOf('?');
    const path = q < 0 ? r.path : r.path.slice(0, q);
    const attrs: Record<string, string | number> = {
      'http.request.method': r.method,
      'url.path': path.length > cfg.maxPathTagLength ? path.slice(0, cfg.maxPathTagLength) : path,
      'server.address': r.authority,
      'skein.route': r.route.name,
    };
    if (this.kind === SpanKind.SERVER && r.remoteAddress !== undefined) attrs['network.peer.address'] = r.remoteAddress;
    if (r.grpc) {
      attrs['rpc.system'] = 'grpc';
      const slash = path.lastIndexOf('/');
      if (slash > 0) { attrs['rpc.service'] = path.slice(1, slash); attrs['rpc.method'] = path.slice(slash + 1); }
    }
    return this.t.tracer.startSpan(spanName(r), { kind: this.kind, attributes: attrs }, parent);
  }
}

/** `pkg.Service/Method` for gRPC (semconv), else `METHOD route`. */
function spanName(r: TracedRequest): string {
  if (r.grpc) { const q = r.path.indexOf('?'); return (q < 0 ? r.path : r.path.slice(0, q)).slice(1); }
  return r.route.name === '' ? r.method : `${r.method} ${r.route.name}`;
}

/** Bounds what waits for export: a span that finds `maxQueue` waiting is dropped and counted. */
class BoundedProcessor implements SpanProcessor {
  constructor(private readonly inner: SpanProcessor, private readonly t: SidecarTracer) {}
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    const t = this.t;
    if (t.queued >= t.maxQueue) { t.counters.dropped.value++; return; }
    t.queued++;
    this.inner.onEnd(span);
  }
  forceFlush(): Promise<void> { return this.inner.forceFlush(); }
  shutdown(): Promise<void> { return this.inner.shutdown(); }
}

/** Counts what the collector took and what it did not; hands the batch's room back to the queue. */
class CountingExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter, private readonly t: SidecarTracer) {}
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    const t = this.t;
    t.queued = Math.max(0, t.queued - spans.length);
    this.inner.export(spans, (r) => {
      if (r.code === ExportResultCode.SUCCESS) t.counters.exported.inc(spans.length);
      else t.counters.failed.inc(spans.length);
      done(r);
    });
  }
  shutdown(): Promise<void> { return this.inner.shutdown(); }
  forceFlush(): Promise<void> { return this.inner.forceFlush?.() ?? Promise.resolve(); }
}

function otlpExporter(s: TracingSettings): SpanExporter {
  const timeoutMillis = s.exportTimeoutMs ?? 10_000;
  if (s.exporter === 'otlp-grpc') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc') as typeof import('@opentelemetry/exporter-trace-otlp-grpc');
    return new OTLPTraceExporter({ url: s.endpoint, timeoutMillis });
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto');
  return new OTLPTraceExporter({ url: s.endpoint, timeoutMillis });
}

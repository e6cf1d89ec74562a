/**
 * The sidecar's tracing flags (--trace-exporter, --trace-endpoint, --trace-max-queue), apart from
 * the tracer so the command line reads them without loading the OpenTelemetry SDK.
 */
export type TraceExporterKind = 'otlp-http' | 'otlp-grpc';

export interface TracingSettings {
  exporter: TraceExporterKind;
  /** The collector: an OTLP/HTTP URL (…/v1/traces) or, for otlp-grpc, http://host:port. */
  endpoint: string;
  /** Spans waiting for export at most (default 2048); more are dropped and counted. */
  maxQueueSize?: number;
  /** Spans per export (default 512) and the longest a span waits for one (default 1000 ms). */
  maxExportBatchSize?: number;
  scheduledDelayMs?: number;
  /** How long one export may take before it counts as failed (default 10 s). */
  exportTimeoutMs?: number;
}

/** Default of --trace-max-queue (the batch span processor's own default). */
export const DEFAULT_TRACE_QUEUE = 2048;

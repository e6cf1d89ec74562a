/**
 * Prometheus exposition (text format 0.0.4, or OpenMetrics 1.0 when the scraper's Accept header
 * asks for `application/openmetrics-text`), shared by the sidecar's admin /metrics and the
 * control plane's monitoring listener.
 *
 * prom-client (a maintained library) does the formatting, escaping, content types, `# EOF` and
 * exemplars. What it does NOT do is the recording: the hot path records into plain fields that
 * the owner resolved once at config time (sidecar/src/stats/request-metrics.ts), and each metric
 * here is a collector that reads those fields at scrape time (bench/metrics-record.ts measured
 * prom-client's and the OTel SDK's own recording at several times the cost).
 *
 * Extension point: `add(collector)`. A collector names one metric family and returns its samples
 * when scraped; another module (e.g. the control plane's merged route stats) adds its own.
 */
import * as promClient from 'prom-client';

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** One sample: labels (bounded values only), value, and for a histogram bucket an exemplar. */
export interface Sample {
  /** `<family>_bucket`, `_sum`, `_count` for histograms; omitted: the family's name. */
  suffix?: '_bucket' | '_sum' | '_count';
  labels: Record<string, string>;
  value: number;
  /** OpenMetrics only: `# {trace_id="..."} value timestamp-seconds`. */
  exemplar?: { labels: Record<string, string>; value: number; timestampSeconds: number };
}

/** One metric family. A counter's name ends in `_total` (OpenMetrics moves it to its samples). */
export interface Collector {
  name: string;
  help: string;
  type: MetricType;
  collect(): Iterable<Sample>;
}

export const PROMETHEUS_CONTENT_TYPE = promClient.Registry.PROMETHEUS_CONTENT_TYPE;
export const OPENMETRICS_CONTENT_TYPE = promClient.Registry.OPENMETRICS_CONTENT_TYPE;

/** Whether an Accept header asks for OpenMetrics. */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('application/openmetrics-text');
}

/**
 * prom-client's Registry holds one content type, and in OpenMetrics mode it renames a counter
 * object (drops `_total`): so each registry gets its own adapter object per collector.
 */
class Adapter {
  constructor(public name: string, readonly help: string, readonly type: MetricType, private readonly c: Collector) {}
  get(): { name: string; help: string; type: MetricType; aggregator: 'sum'; values: { metricName?: string; labels: Record<string, string>; value: number; exemplar?: unknown }[] } {
    const values = [];
    for (const s of this.c.collect()) {
      values.push({
        ...(s.suffix === undefined ? {} : { metricName: `${this.name}${s.suffix}` }), labels: s.labels, value: s.value,
        ...(s.exemplar === undefined ? {} : { exemplar: { labelSet: s.exemplar.labels, value: s.exemplar.value, timestamp: s.exemplar.timestampSeconds } }),
      });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: 'sum', values };
  }
  reset(): void { /* the owner's fields are the state */ }
}

export class MetricsExposition {
  private readonly text = new promClient.Registry<promClient.PrometheusContentType>();
  private readonly open = new promClient.Registry<promClient.OpenMetricsContentType>();

  private processMetrics = false;

  constructor() {
    this.open.setContentType(OPENMETRICS_CONTENT_TYPE);
  }

  /** Adds prom-client's default process metrics (CPU, memory, event loop lag, GC), once. */
  addProcessMetrics(): void {
    if (this.processMetrics) return;
    this.processMetrics = true;
    for (const register of [this.text, this.open] as promClient.Registry[]) promClient.collectDefaultMetrics({ register });
  }

  /** Adds a metric family (its name must be new). */
  add(c: Collector): void {
    for (const r of [this.text, this.open] as promClient.Registry[]) r.registerMetric(new Adapter(c.name, c.help, c.type, c) as unknown as promClient.Metric);
  }

  /** The exposition for a scrape with this Accept header. */
  async render(accept: string | undefined): Promise<{ contentType: string; body: string }> {
    const r: promClient.Registry = wantsOpenMetrics(accept) ? (this.open as unknown as promClient.Registry) : this.text;
    return { contentType: r.contentType, body: await r.metrics() };
  }
}

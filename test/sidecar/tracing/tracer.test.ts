/**
 * The tracer's decisions and bookkeeping, with the real OpenTelemetry SDK and its in-memory
 * exporter: parent-based sampling, the route's ratio over the listener's, no span for an unsampled
 * request (only a traceparent with the sampled flag off), attempt spans under the request's span
 * with the retry event, and a bounded queue whose drops are counted.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { Stats } from '../../../sidecar/src/stats/stats';
import { ListenerTracer, SidecarTracer } from '../../../sidecar/src/tracing/tracer';
import type { TracedRequest } from '../../../sidecar/src/tracing/tracer';
import type { ListenerTracing } from '../../../sidecar/src/xds/hcm-tracing';
import type { RouteTracing } from '../../../sidecar/src/route/route-tracing';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';
const listener = (randomSampling: number): ListenerTracing => ({ randomSampling, overallSampling: 1, maxPathTagLength: 256 });

function request(o: { tracing?: ListenerTracing; route?: RouteTracing; headers?: Record<string, string>; random?: number; retries?: boolean }): TracedRequest {
  const headers = o.headers ?? {};
  return {
    snap: { tracing: o.tracing }, route: { name: 'r1', tracing: o.route, route: o.retries ? { retryPolicy: {} } : {} },
    method: 'POST', path: '/pkg.Svc/Do?x=1', authority: 'svc:50051', grpc: true,
    downstreamHeaders: headers, requestHeaders: { ...headers }, remoteAddress: '127.0.0.9',
    random: () => o.random ?? 0.5, trace: undefined,
    attempts: 1, upstreamHost: '10.0.0.1:8080', replyReason: undefined, downstreamPeer: undefined,
  };
}

function setup(maxQueueSize = 2048): { t: SidecarTracer; exporter: InMemorySpanExporter; stats: Stats; client: ListenerTracer } {
  const exporter = new InMemorySpanExporter();
  const stats = new Stats();
  const t = new SidecarTracer({ exporter: 'otlp-http', endpoint: 'http://127.0.0.1:1/v1/traces', maxQueueSize, scheduledDelayMs: 60_000, maxExportBatchSize: 16 }, { service: 'svc', version: 'v1', nodeId: 'n1' }, stats, exporter);
  return { t, exporter, stats, client: new ListenerTracer(t, SpanKind.CLIENT, undefined) };
}

describe('ListenerTracer', () => {
  test('a listener without HCM tracing makes no decision and touches no header', () => {
    const { client, stats } = setup();
    const r = request({ headers: {} });
    client.onRequest(r);
    assert.equal(r.trace, undefined);
    assert.equal(r.requestHeaders['traceparent'], undefined);
    assert.equal(stats.counter('tracing.requests_not_sampled').value, 0);
  });

  test('no context, not drawn: no span; a new traceparent with the sampled flag off goes upstream', async () => {
    const { client, stats, t, exporter } = setup();
    const r = request({ tracing: listener(0.01), random: 0.5 });
    client.onRequest(r);
    assert.equal(r.trace, undefined);
    assert.match(String(r.requestHeaders['traceparent']), /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    assert.equal(stats.counter('tracing.requests_not_sampled').value, 1);
    await t.flush();
    assert.equal(exporter.getFinishedSpans().length, 0);
  });

  test('the route\'s ratio overrides the listener\'s', () => {
    const { client } = setup();
    const on = request({ tracing: listener(0), route: { randomSampling: 1, overallSampling: undefined } });
    client.onRequest(on);
    assert.ok(on.trace !== undefined);
    const off = request({ tracing: listener(1), route: { randomSampling: 0, overallSampling: undefined } });
    client.onRequest(off);
    assert.equal(off.trace, undefined);
  });

  test('a sampled parent is followed whatever the ratio: the CLIENT span is its child, and its context goes upstream', async () => {
    const { client, t, exporter } = setup();
    const r = request({ tracing: listener(0), headers: { traceparent: `00-${T}-${S}-01`, tracestate: 'k=v' } });
    client.onRequest(r);
    assert.ok(r.trace !== undefined);
    const tp = String(r.requestHeaders['traceparent']);
    assert.match(tp, new RegExp(`^00-${T}-[0-9a-f]{16}-01$`));
    assert.equal(r.requestHeaders['tracestate'], 'k=v');
    r.trace.end(r, 200, 0, 'svc/v2');
    await t.flush();
    const [span] = exporter.getFinishedSpans();
    assert.ok(span !== undefined);
    assert.equal(span.kind, SpanKind.CLIENT);
    assert.equal(span.parentSpanContext?.spanId, S);
    assert.equal(tp.split('-')[2], span.spanContext().spanId);
    assert.equal(span.name, 'pkg.Svc/Do');
    assert.deepEqual(
      { ...span.attributes },
      { 'http.request.method': 'POST', 'url.path': '/pkg.Svc/Do', 'server.address': 'svc:50051', 'skein.route': 'r1', 'rpc.system': 'grpc', 'rpc.service': 'pkg.Svc', 'rpc.method': 'Do',
        'http.response.status_code': 200, 'rpc.grpc.status_code': 0, 'skein.cluster': 'svc/v2', 'skein.version': 'v2', 'skein.upstream_host': '10.0.0.1:8080', 'network.peer.address': '10.0.0.1', 'skein.attempts': 1 },
    );
  });

  test('an unsampled parent is followed: no span, its context goes on (as W3C when it came as B3)', () => {
    const { client } = setup();
    const r = request({ tracing: listener(1), headers: { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '0' } });
    client.onRequest(r);
    assert.equal(r.trace, undefined);
    assert.equal(r.requestHeaders['traceparent'], `00-${T}-${S}-00`);
  });

  test('a hidden retry (no retry policy): both attempts get spans under the request\'s, the second with the retry event, and the second attempt\'s context goes upstream', async () => {
    const { client, t, exporter } = setup();
    const r = request({ tracing: listener(1) });
    client.onRequest(r);
    const rt = r.trace!;
    const h = r.requestHeaders;
    const requestTp = h['traceparent'];
    rt.onAttempt(1, '10.0.0.1:8080', h);
    assert.equal(h['traceparent'], requestTp, 'a single attempt goes with the request span\'s context');
    rt.onAttemptEnd(0);
    rt.retryReason = 'connect-failure';
    rt.onAttempt(2, '10.0.0.2:8080', h);
    rt.onAttemptEnd(200);
    rt.end({ ...r, attempts: 2 }, 200, 0, 'svc');
    await t.flush();
    const spans = exporter.getFinishedSpans();
    const req = spans.find((s) => s.attributes['skein.attempt'] === undefined)!;
    const attempts = spans.filter((s) => s.attributes['skein.attempt'] !== undefined).sort((a, b) => Number(a.attributes['skein.attempt']) - Number(b.attributes['skein.attempt']));
    assert.equal(attempts.length, 2);
    for (const a of attempts) assert.equal(a.parentSpanContext?.spanId, req.spanContext().spanId);
    assert.equal(attempts[1]!.events[0]?.name, 'retry');
    assert.equal(attempts[1]!.events[0]?.attributes?.['skein.retry.reason'], 'connect-failure');
    assert.equal(String(h['traceparent']).split('-')[2], attempts[1]!.spanContext().spanId);
    assert.equal(req.attributes['skein.attempts'], 2);
  });

  test('a full queue drops spans and counts them; nothing waits', async () => {
    const { client, stats, t } = setup(16);
    for (let i = 0; i < 40; i++) { const r = request({ tracing: listener(1) }); client.onRequest(r); r.trace!.end(r, 200, 0, 'svc'); }
    // The batch processor hands a full batch (16) to the exporter at once, which frees the queue:
    // every span is either exported or dropped and counted.
    await t.flush();
    const dropped = stats.counter('tracing.spans_dropped').value;
    assert.ok(dropped > 0, 'some spans found the queue full');
    assert.equal(stats.counter('tracing.spans_exported').value + dropped, 40);
  });
});

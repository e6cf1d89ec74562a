/**
 * Traces end to end (issue 12 §1): a client sidecar and a server sidecar export spans to a real
 * OTLP/HTTP receiver (decoded with the official OpenTelemetry protos). One call is one trace: the
 * client sidecar's CLIENT span is the parent of the server sidecar's SERVER span, with route and
 * version attributes; a retried call has one span per attempt (the retry's reason an event), each
 * the parent of that attempt's SERVER span. The sampling share comes from the control plane and
 * changes at run time (0%: nothing is exported; 100%: every call). A dead and a slow collector
 * fail no call; their spans are counted as failed or dropped.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { GreeterClient } from '../../shared/src/sample-app/greeter';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { eventually } from '../support/ads-client';
import { FaultUpstream } from '../support/fault-upstream';
import { OtlpReceiver, SPAN_KIND } from '../support/otlp-receiver';
import type { ReceivedSpan } from '../support/otlp-receiver';
import { inboundOf, Mesh } from '../support/sidecar-mesh';
import { API_VERSION } from '../support/skein';

const SERVICE = { apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'greeter' }, spec: { ports: [{ name: 'grpc', port: 50051 }], subsets: [{ name: 'v1', labels: { version: 'v1' } }] } };
const ROUTE = { apiVersion: API_VERSION, kind: 'GRPCRoute', metadata: { name: 'greeter' }, spec: { parentRefs: [{ name: 'greeter' }], rules: [{ name: 'all', backendRefs: [{ name: 'greeter', subset: 'v1' }], retry: { retries: 2, retryOn: ['unavailable'], backoff: { baseInterval: '1ms', maxInterval: '5ms' } } }] } };
const telemetry = (samplingPercent: number) => ({ apiVersion: API_VERSION, kind: 'Telemetry', metadata: { name: 'mesh' }, spec: { tracing: { samplingPercent } } });

type StatsJson = { counters: Record<string, number> };
const counter = async (sc: SidecarProcess, name: string): Promise<number> => ((await (await fetch(`http://${sc.admin}/stats?filter=tracing.`)).json()) as StatsJson).counters[name] ?? 0;

function call(g: GreeterClient, md: grpc.Metadata = new grpc.Metadata()): Promise<void> {
  return new Promise<void>((resolve, reject) => g.SayHello({ name: 'x' }, md, { deadline: Date.now() + 10_000 }, (e) => (e ? reject(e) : resolve())));
}
const withTrace = (traceId: string): grpc.Metadata => { const md = new grpc.Metadata(); md.set('traceparent', `00-${traceId}-00f067aa0ba902b7-01`); return md; };
const traceIdOf = (n: number): string => n.toString(16).padStart(32, 'a');

describe('traces follow a request across sidecars', () => {
  let mesh: Mesh;
  let receiver: OtlpReceiver;
  let slowReceiver: OtlpReceiver;
  let app: FaultUpstream;
  let client: SidecarProcess;
  let server: SidecarProcess;
  let greeter: GreeterClient;

  before(async () => {
    mesh = await Mesh.start('traces');
    receiver = mesh.app(await OtlpReceiver.start());
    slowReceiver = mesh.app(await OtlpReceiver.start({ slow: true }));
    await mesh.apply([SERVICE, ROUTE, telemetry(100)]);
    app = mesh.app(await FaultUpstream.start({ name: 'g1' }));
    const trace = ['--trace-endpoint', receiver.url];
    server = await mesh.sidecar({ nodeId: 'greeter-1', service: 'greeter', app: `127.0.0.1:${app.port}`, extraArgs: trace });
    client = await mesh.clientSidecar('frontend-1', trace);
    await mesh.hosts(client, 'greeter/v1', [inboundOf(server)]);
    greeter = mesh.greeter(client, 'greeter:50051');
  });
  after(async () => { await mesh?.stop(); });

  const spansOf = (traceId: string, n: number): Promise<ReceivedSpan[]> =>
    eventually(() => { const s = receiver.trace(traceId); return s.length >= n ? s : undefined; }, `${n} spans of trace ${traceId}`, 20_000);

  test('one call: a CLIENT span on the client sidecar (with its attempt\'s, the route having a retry policy), the SERVER span under it, with route, version and resource', async () => {
    const id = traceIdOf(1);
    await call(greeter, withTrace(id));
    const spans = await spansOf(id, 3);
    assert.equal(spans.length, 3, JSON.stringify(spans));
    const c = spans.find((x) => x.kind === SPAN_KIND.CLIENT && x.attributes['skein.attempt'] === undefined)!;
    const a = spans.find((x) => x.kind === SPAN_KIND.CLIENT && x.attributes['skein.attempt'] === 1)!;
    const s = spans.find((x) => x.kind === SPAN_KIND.SERVER)!;
    assert.ok(c && a && s, 'the request\'s CLIENT span, its attempt\'s, and a SERVER span');
    assert.equal(c.parentSpanId, '00f067aa0ba902b7', 'the CLIENT span continues the app\'s context');
    assert.equal(a.parentSpanId, c.spanId);
    assert.equal(s.parentSpanId, a.spanId, 'the SERVER span is the attempt\'s child');
    assert.equal(c.name, 'skein.demo.v1.Greeter/SayHello');
    assert.equal(c.attributes['rpc.system'], 'grpc');
    assert.equal(c.attributes['rpc.service'], 'skein.demo.v1.Greeter');
    assert.equal(c.attributes['rpc.method'], 'SayHello');
    assert.equal(c.attributes['skein.route'], 'GRPCRoute/greeter/all');
    assert.equal(c.attributes['skein.cluster'], 'greeter/v1');
    assert.equal(c.attributes['skein.version'], 'v1');
    assert.equal(c.attributes['skein.upstream_host'], inboundOf(server));
    assert.equal(c.attributes['skein.attempts'], 1);
    assert.equal(c.attributes['http.response.status_code'], 200);
    assert.equal(c.attributes['rpc.grpc.status_code'], 0);
    assert.equal(s.attributes['skein.version'], 'v1');
    assert.equal(s.attributes['skein.peer_identity'], 'spiffe://skein.local/ns/default/sa/sidecar', 'the mTLS caller');
    assert.equal(s.resource['service.name'], 'greeter');
    assert.equal(s.resource['service.instance.id'], 'greeter-1');
    assert.equal(c.resource['service.instance.id'], 'frontend-1');
  });

  test('a retried call: one CLIENT span per attempt under the request\'s, the retry reason as an event, a SERVER span under each attempt', async () => {
    app.failPercent = 50; // every other answer is UNAVAILABLE: of two calls in a row, one is retried once
    const ids = [traceIdOf(2), traceIdOf(3)];
    for (const id of ids) await call(greeter, withTrace(id));
    app.failPercent = 0;
    const traces = await Promise.all(ids.map((id) => spansOf(id, 2)));
    const retried = await eventually(() => {
      const t = ids.map((id) => receiver.trace(id)).find((sp) => sp.length >= 5);
      return t;
    }, 'the retried call\'s five spans', 20_000);
    assert.ok(traces.length === 2);
    const req = retried.find((s) => s.kind === SPAN_KIND.CLIENT && s.parentSpanId === '00f067aa0ba902b7')!;
    assert.equal(req.attributes['skein.attempts'], 2);
    const attempts = retried.filter((s) => s.kind === SPAN_KIND.CLIENT && s.parentSpanId === req.spanId).sort((a, b) => Number(a.attributes['skein.attempt']) - Number(b.attributes['skein.attempt']));
    assert.deepEqual(attempts.map((a) => a.attributes['skein.attempt']), [1, 2]);
    assert.equal(attempts[1]!.events[0]?.name, 'retry');
    assert.equal(attempts[1]!.events[0]?.attributes['skein.retry.reason'], 'grpc-status 14');
    const servers = retried.filter((s) => s.kind === SPAN_KIND.SERVER);
    assert.deepEqual(servers.map((s) => s.parentSpanId).sort(), attempts.map((a) => a.spanId).sort(), 'each attempt\'s context went upstream');
  });

  test('sampling set through the control plane at run time: 0% exports nothing, 100% exports every call', async () => {
    await mesh.apply([telemetry(0)]);
    await eventually(async () => { const before = await counter(client, 'tracing.requests_not_sampled'); await call(greeter); return (await counter(client, 'tracing.requests_not_sampled')) > before ? true : undefined; }, 'the client sidecar to sample 0%', 20_000);
    const sampledBefore = await counter(client, 'tracing.requests_sampled');
    for (let i = 0; i < 20; i++) await call(greeter);
    assert.equal(await counter(client, 'tracing.requests_sampled'), sampledBefore, 'no call sampled at 0%');
    await mesh.apply([telemetry(100)]);
    await eventually(async () => { const before = await counter(client, 'tracing.requests_sampled'); await call(greeter); return (await counter(client, 'tracing.requests_sampled')) > before ? true : undefined; }, 'the client sidecar to sample 100%', 20_000);
    const sampled = await counter(client, 'tracing.requests_sampled');
    const notSampled = await counter(client, 'tracing.requests_not_sampled');
    for (let i = 0; i < 20; i++) await call(greeter);
    assert.equal(await counter(client, 'tracing.requests_sampled'), sampled + 20);
    assert.equal(await counter(client, 'tracing.requests_not_sampled'), notSampled);
    // Every CLIENT span the client sidecar made reached the receiver, and no other.
    await eventually(async () => {
      const made = await counter(client, 'tracing.requests_sampled');
      const got = receiver.spans.filter((s) => s.resource['service.instance.id'] === 'frontend-1' && s.kind === SPAN_KIND.CLIENT && s.attributes['skein.attempt'] === undefined).length;
      return got === made ? true : undefined;
    }, 'every sampled call\'s CLIENT span at the receiver', 20_000);
  });

  test('a dead collector and a slow collector fail no call; their spans are counted as failed or dropped', async () => {
    const closed = await new Promise<number>((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); }); });
    const dead = await mesh.clientSidecar('frontend-dead', ['--trace-endpoint', `http://127.0.0.1:${closed}/v1/traces`]);
    const slow = await mesh.clientSidecar('frontend-slow', ['--trace-endpoint', slowReceiver.url, '--trace-max-queue', '16']);
    for (const sc of [dead, slow]) await mesh.hosts(sc, 'greeter/v1', [inboundOf(server)]);
    for (const sc of [dead, slow]) {
      const g = mesh.greeter(sc, 'greeter:50051');
      for (let i = 0; i < 60; i++) await call(g); // any failure throws
    }
    await eventually(async () => ((await counter(dead, 'tracing.spans_export_failed')) > 0 ? true : undefined), 'the dead collector\'s spans counted as failed', 30_000);
    await eventually(async () => ((await counter(slow, 'tracing.spans_dropped')) > 0 ? true : undefined), 'spans beyond the slow collector\'s queue counted as dropped', 30_000);
    assert.ok(slowReceiver.requests >= 1, 'the slow collector was reached (and never answered)');
  });
});

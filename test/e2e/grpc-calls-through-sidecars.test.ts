import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { greeterClient, startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterClient, HelloReply } from '../../shared/src/sample-app/greeter';
import { emptyCount, sendAndCount, shares } from '../../shared/src/sample-app/load';
import type { SplitCount } from '../../shared/src/sample-app/load';
import { API_VERSION } from '../../shared/src/config/types';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import { eventually } from '../support/ads-client';
import { api, proxy } from '../support/mesh-api';
import { countingRelay, LARGE_MESSAGES, MiB, rssBytes, startLargeGreeter, startStatusServer, STATUS_BLOB, statusClient } from '../support/sidecar-apps';
import { inboundOf, Mesh } from '../support/sidecar-mesh';

/**
 * The sidecar as deployed: `skein control-plane` and `skein sidecar` as real processes on
 * loopback; every app sits behind its own server sidecar (inbound listener, lease registration)
 * and the test's gRPC client talks only to a client sidecar's outbound port. Nothing is mocked.
 *
 *   greeter  (split by weight / x-canary)  v1-a v1-b v2-a   sample Greeter
 *   echo     (no route: round robin)       echo-a/b/c      Greeter with 32 MiB message limits
 *   status   (no route)                    status-a        handlers that fail with a status + trailers
 *
 * Split checks use 1100 calls and a 5-point tolerance: at least 4.1 standard deviations (80/20:
 * sigma = 1.21 points). The round-robin check allows +-50 calls around the exact 200 each.
 */
const CLIENT = 'e2e-sidecar-client';
const GREETER = 'greeter:50051';
const ECHO = 'echo:50052';
const SPLIT_CALLS = 1100;

function greeterRoute(v1: number, v2: number, extraRules: unknown[] = []): unknown {
  return {
    apiVersion: API_VERSION, kind: 'GRPCRoute', metadata: { name: 'greeter' },
    spec: {
      parentRefs: [{ name: 'greeter' }],
      rules: [
        ...extraRules,
        { name: 'canary-header', matches: [{ headers: [{ name: 'x-canary', value: 'true' }] }], backendRefs: [{ name: 'greeter', subset: 'v2' }] },
        { name: 'split', matches: [{ method: { service: 'skein.demo.v1.Greeter' } }], backendRefs: [{ name: 'greeter', subset: 'v1', weight: v1 }, { name: 'greeter', subset: 'v2', weight: v2 }], timeout: '5s' },
      ],
    },
  };
}

/** demoConfig's greeter (subsets v1/v2, x-canary rule, weighted split, round robin) plus echo and status. */
function meshConfig(): unknown[] {
  const service = (name: string, port: number, subsets = false) => ({
    apiVersion: API_VERSION, kind: 'Service', metadata: { name },
    spec: { protocol: 'grpc', ports: [{ name: 'grpc', port }], ...(subsets ? { subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] } : {}) },
  });
  return [
    service('greeter', 50051, true),
    greeterRoute(50, 50),
    { apiVersion: API_VERSION, kind: 'BackendPolicy', metadata: { name: 'greeter' }, spec: { targetRef: { kind: 'Service', name: 'greeter' }, loadBalancer: { policy: 'round_robin' }, circuitBreaker: { maxRequests: 1000 } } },
    service('echo', 50052),
    service('status', 50053),
  ];
}

function unary(client: GreeterClient, name: string, md = new grpc.Metadata(), payload?: Buffer, deadlineMs = 10_000): Promise<HelloReply> {
  return new Promise((resolve, reject) => {
    client.SayHello({ name, ...(payload ? { payload } : {}) }, md, { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r!)));
  });
}

function bump(m: Map<string, number>, k: string): void { m.set(k, (m.get(k) ?? 0) + 1); }

describe('sidecar end to end: control plane, client sidecar and server sidecars as processes', () => {
  let mesh: Mesh;
  let client: SidecarProcess;
  let greeter: GreeterClient;
  let echo: GreeterClient;
  const servers = new Map<string, SidecarProcess>();

  const canary = async (v1: number, v2: number) => {
    const r = await api<{ revision: number }>(mesh.cp.api, 'POST', '/v1/canary', { route: 'greeter', weights: { v1, v2 } });
    await mesh.synced(CLIENT, TYPE_URLS.ROUTE, r.revision);
  };

  const split = async (n: number, expectV2: number, what: string): Promise<SplitCount> => {
    const c = await sendAndCount([greeter], n);
    assert.equal(c.errors, 0, `${what}: ${c.lastError}`);
    const v2 = shares(c)['v2'] ?? 0;
    assert.ok(Math.abs(v2 - expectV2) <= 5, `${what}: v2 share ${v2}% for weight ${expectV2}`);
    return c;
  };

  before(async () => {
    mesh = await Mesh.start('sidecar-e2e');
    await mesh.apply(meshConfig());
    const specs = [
      ...([['v1-a', 'v1'], ['v1-b', 'v1'], ['v2-a', 'v2']] as const).map(([backend, version]) => ({ service: 'greeter', backend, version, large: false })),
      ...['echo-a', 'echo-b', 'echo-c'].map((backend) => ({ service: 'echo', backend, version: 'v1', large: true })),
    ];
    const status = mesh.app(await startStatusServer());
    await Promise.all([
      ...specs.map(async (s) => {
        const app = mesh.app(s.large ? await startLargeGreeter(s) : await startGreeter(s));
        servers.set(s.backend, await mesh.sidecar({ nodeId: `server-${s.backend}`, service: s.service, version: s.version, app: `127.0.0.1:${app.port}` }));
      }),
      (async () => { servers.set('status-a', await mesh.sidecar({ nodeId: 'server-status-a', service: 'status', app: `127.0.0.1:${status.port}` })); })(),
    ]);
    // A lower regex cap than the control plane's, so a route the control plane accepts is NACKed here.
    client = await mesh.clientSidecar(CLIENT, ['--regex-max-program-size', '20']);
    const inbound = (...names: string[]) => names.map((n) => inboundOf(servers.get(n)!));
    await mesh.hosts(client, 'greeter/v1', inbound('v1-a', 'v1-b'));
    await mesh.hosts(client, 'greeter/v2', inbound('v2-a'));
    await mesh.hosts(client, 'echo', inbound('echo-a', 'echo-b', 'echo-c'));
    await mesh.hosts(client, 'status', inbound('status-a'));
    greeter = mesh.greeter(client, GREETER);
    echo = mesh.greeter(client, ECHO, LARGE_MESSAGES);
  });

  after(async () => { await mesh?.stop(); });

  test('balances per stream: one client connection, 600 unary calls spread over 3 instances', async () => {
    const relay = mesh.track(await countingRelay(client.outbound));
    const one = mesh.track(greeterClient(relay.address, grpc.credentials.createInsecure(), { 'grpc.default_authority': ECHO }));
    const c = await sendAndCount([one], 600);
    assert.equal(c.errors, 0, c.lastError);
    for (const b of ['echo-a', 'echo-b', 'echo-c']) {
      const n = c.byBackend.get(b) ?? 0;
      assert.ok(n >= 150 && n <= 250, `${b} got ${n} of 600: ${JSON.stringify([...c.byBackend])}`);
    }
    assert.equal(relay.accepted(), 1, 'the gRPC client used one TCP connection to the sidecar');
    const stats = (await (await fetch(`http://${client.admin}/stats?filter=listener.outbound`)).json()) as { counters: Record<string, number>; gauges: Record<string, number> };
    assert.ok(stats.counters['listener.outbound.downstream_cx_total']! >= 1, JSON.stringify(stats));
    assert.ok(stats.gauges['listener.outbound.downstream_cx_active']! >= 1, 'the relay connection is still open');
  });

  test('carries every streaming kind end to end: server streaming, client streaming, bidi', async () => {
    const streamed = await new Promise<HelloReply[]>((resolve, reject) => {
      const out: HelloReply[] = [];
      const call = echo.StreamReplies({ name: 's', count: 50 }, new grpc.Metadata(), { deadline: Date.now() + 10_000 });
      call.on('data', (r: HelloReply) => out.push(r));
      call.on('error', reject);
      call.on('end', () => resolve(out));
    });
    assert.equal(streamed.length, 50);
    assert.deepEqual(streamed.map((r) => r.message), Array.from({ length: 50 }, (_, i) => `hello s #${i}`));
    assert.equal(new Set(streamed.map((r) => r.backend)).size, 1, 'one stream, one backend');

    const collected = await new Promise<HelloReply>((resolve, reject) => {
      const call = echo.Collect(new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r!)));
      for (let i = 0; i < 10; i++) call.write({ name: `c${i}` });
      call.end();
    });
    assert.equal(collected.message, `hello ${Array.from({ length: 10 }, (_, i) => `c${i}`).join(',')}`);

    const chat = echo.Chat(new grpc.Metadata(), { deadline: Date.now() + 10_000 });
    const replies: HelloReply[] = [];
    const ended = new Promise<void>((resolve, reject) => { chat.on('end', resolve); chat.on('error', reject); });
    let waiter: ((r: HelloReply) => void) | undefined;
    chat.on('data', (r: HelloReply) => { replies.push(r); waiter?.(r); });
    for (let i = 0; i < 20; i++) {
      const got = new Promise<HelloReply>((resolve) => { waiter = resolve; });
      chat.write({ name: `round-${i}` });
      assert.equal((await got).message, `hello round-${i}`, 'each reply answers the message just sent');
    }
    chat.end();
    await ended;
    assert.equal(replies.length, 20);
    assert.equal(new Set(replies.map((r) => r.backend)).size, 1, 'one stream, one backend');
  });

  test('passes a handler error status, message and trailing metadata through both sidecars', async () => {
    const st = mesh.track(statusClient(client.outbound, { 'grpc.default_authority': 'status:50053' }));
    const check = (e: grpc.ServiceError | undefined, what: string) => {
      assert.ok(e, `${what}: the call did not fail`);
      assert.equal(e.code, grpc.status.NOT_FOUND, `${what}: ${e.message}`);
      assert.equal(e.details, 'nope', what);
      assert.deepEqual(e.metadata.get('x-why'), ['because'], what);
      assert.deepEqual(e.metadata.get('x-blob-bin'), [STATUS_BLOB], what);
      assert.deepEqual(e.metadata.get('x-skein-reason'), [], `${what}: the upstream's answer, not a local reply`);
    };
    const unaryErr = await new Promise<grpc.ServiceError | undefined>((resolve) => {
      st.Fail(Buffer.from('x'), new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e) => resolve(e ?? undefined));
    });
    check(unaryErr, 'unary (trailers-only response)');
    const msgs: Buffer[] = [];
    const streamErr = await new Promise<grpc.ServiceError | undefined>((resolve) => {
      const call = st.FailAfter(Buffer.from('abc'), new grpc.Metadata(), { deadline: Date.now() + 10_000 });
      call.on('data', (b: Buffer) => msgs.push(b));
      call.on('error', (e: grpc.ServiceError) => resolve(e));
      call.on('end', () => resolve(undefined));
    });
    assert.deepEqual(msgs.map((b) => b.toString()), ['abc', 'abc', 'abc'], 'messages before the error arrive');
    check(streamErr, 'server streaming (data, then trailers)');
  });

  test('answers a call for an unknown authority itself: UNIMPLEMENTED, reason no_route, readable message', async () => {
    const nowhere = mesh.greeter(client, 'nowhere:1');
    const e = await unary(nowhere, 'x').then(() => undefined, (err: grpc.ServiceError) => err);
    assert.ok(e, 'the call succeeded');
    assert.equal(e.code, grpc.status.UNIMPLEMENTED, e.message);
    assert.deepEqual(e.metadata.get('x-skein-reason'), ['no_route']);
    assert.match(e.details, /^no_route: no route for nowhere:1\/skein\.demo\.v1\.Greeter\/SayHello$/, 'grpc-message is percent-decoded by the client');
  });

  test('passes a 10 MiB message both ways, 5 times, with the client sidecar RSS bounded', async (t) => {
    await unary(echo, 'warm-up');
    const pid = client.proc.pid!;
    const rssBefore = rssBytes(pid);
    for (let i = 0; i < 5; i++) {
      const payload = randomBytes(10 * MiB);
      const r = await unary(echo, `big-${i}`, new grpc.Metadata(), payload, 60_000);
      assert.equal(r.message, `hello big-${i}`);
      assert.ok(r.payload !== undefined && Buffer.compare(r.payload, payload) === 0, `echoed payload differs (${r.payload?.length} bytes)`);
    }
    const growth = rssBytes(pid) - rssBefore;
    t.diagnostic(`client sidecar RSS ${(rssBefore / MiB).toFixed(0)} MiB, growth ${(growth / MiB).toFixed(1)} MiB`);
    assert.ok(growth < 200 * MiB, `client sidecar RSS grew by ${(growth / MiB).toFixed(1)} MiB over 5 x 10 MiB`);
    assert.equal(client.proc.exitCode, null);
  });

  test('follows canary weights set through the API (90/10, then 20/80), and x-canary: true always reaches v2', async () => {
    await canary(90, 10);
    await split(SPLIT_CALLS, 10, 'weights 90/10');
    await canary(20, 80);
    const c = await split(SPLIT_CALLS, 80, 'weights 20/80');
    for (const b of ['v1-a', 'v1-b', 'v2-a']) assert.ok((c.byBackend.get(b) ?? 0) > 0, `${b} got no calls`);
    const md = new grpc.Metadata();
    md.set('x-canary', 'true');
    for (let i = 0; i < 50; i++) assert.equal((await unary(greeter, `canary-${i}`, md)).version, 'v2');
  });

  test('NACKs a route it cannot honour (a regex over its program-size cap) and keeps routing on the last good one', async () => {
    // The control plane allows RE2 programs up to 100; this sidecar runs with a cap of 20. Were
    // the update taken, the weights 100/0 would send nothing to v2.
    const bad = await mesh.apply(greeterRoute(100, 0, [{ name: 'complex', matches: [{ headers: [{ name: 'x-user', type: 'RegularExpression', value: 'admin-[a-z]{20}' }] }], backendRefs: [{ name: 'greeter', subset: 'v1' }] }]));
    const p = await eventually(async () => {
      const s = await proxy(mesh.cp.api, CLIENT);
      const t = s?.types.find((x) => x.typeUrl === TYPE_URLS.ROUTE);
      return t?.state === 'NACKED' && t.sentRevision === bad ? s : undefined;
    }, 'RDS to be NACKED by the client sidecar');
    assert.equal(p.state, 'NACKED');
    const rds = p.types.find((t) => t.typeUrl === TYPE_URLS.ROUTE)!;
    assert.match(rds.lastNack!.message, /is too complex: RE2 program size \d+ is over the limit of 20/);
    assert.notEqual(rds.ackedVersion, rds.sentVersion);
    await split(SPLIT_CALLS, 80, 'routing after the NACK');
    const fixed = await mesh.apply(greeterRoute(20, 80));
    await mesh.synced(CLIENT, TYPE_URLS.ROUTE, fixed);
  });

  test('fails no request while an instance is removed under load (SIGTERM: deregister, drain, exit 0)', async () => {
    const doomed = servers.get('echo-c')!;
    const c = emptyCount();
    const afterExit = new Map<string, number>();
    let started = 0;
    let exitedAt = Infinity;
    let running = true;
    const worker = async () => {
      while (running) {
        const i = started++;
        try {
          const r = await unary(echo, `load-${i}`);
          c.total++;
          bump(c.byBackend, r.backend);
          if (i >= exitedAt) bump(afterExit, r.backend);
        } catch (e) {
          c.total++;
          c.errors++;
          c.lastError = (e as Error).message;
        }
      }
    };
    const load = Promise.all(Array.from({ length: 4 }, worker));
    await eventually(() => (started >= 300 ? true : undefined), '300 calls before the removal');
    const stoppedAt = started;
    const code = await doomed.stop('SIGTERM');
    exitedAt = started;
    await eventually(() => (started >= exitedAt + 300 ? true : undefined), '300 calls after the removal');
    running = false;
    await load;
    assert.equal(code, 0, `exit code on SIGTERM:\n${doomed.logs()}`);
    assert.equal(c.errors, 0, `${c.errors} of ${c.total} calls failed (SIGTERM after call ${stoppedAt}): ${c.lastError}`);
    assert.ok((c.byBackend.get('echo-c') ?? 0) > 0, 'the removed instance served calls before its removal');
    assert.equal(afterExit.get('echo-c') ?? 0, 0, `calls started after the exit reached the removed instance: ${JSON.stringify([...afterExit])}`);
    const { endpoints } = await api<{ endpoints: { node: string }[] }>(mesh.cp.api, 'GET', '/v1/endpoints');
    assert.ok(!endpoints.some((e) => e.node === 'server-echo-c'), 'the endpoint left the registry');
    assert.ok(endpoints.some((e) => e.node === 'server-echo-a'));
    const later = await sendAndCount([echo], 200);
    assert.equal(later.errors, 0, later.lastError);
    assert.equal(later.byBackend.get('echo-c') ?? 0, 0);
  });

  test('keeps routing on the last config while the control plane is down', async () => {
    assert.equal(await mesh.cp.stop(), 0);
    const c = await split(SPLIT_CALLS, 80, 'control plane down');
    assert.equal(c.total, SPLIT_CALLS);
    const e = await sendAndCount([echo], 300);
    assert.equal(e.errors, 0, e.lastError);
    assert.deepEqual([...e.byBackend.keys()].sort(), ['echo-a', 'echo-b']);
    for (const [name, s] of [['client', client] as const, ...servers]) if (name !== 'echo-c') assert.equal(s.proc.exitCode, null, `${name} sidecar still running`);
  });
});

/**
 * A crashed instance must not become a failing service (issue 14). Real processes throughout:
 * `skein control-plane`, three Greeter apps each in its own process behind its own server
 * `skein sidecar`, and one client sidecar; load runs from this process through the client
 * sidecar while the test SIGKILLs an app or a server sidecar, as a crashing container would.
 *
 * Everything asserted is a count of calls or a state, never a duration. The bound on failures
 * without a retry policy: the calls in flight at the kill (at most WORKERS), plus SLACK for calls
 * that were already on their way to the dead instance when it died.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import type { GreeterClient, HelloReply } from '../../shared/src/sample-app/greeter';
import { API_VERSION } from '../../shared/src/config/types';
import { eventually } from '../support/ads-client';
import { api } from '../support/mesh-api';
import { Mesh } from '../support/sidecar-mesh';
import { startGreeterProcess } from '../support/greeter-process';
import type { GreeterProcess } from '../support/greeter-process';

const WORKERS = 8;
const SLACK = 4;
const AUTHORITY = 'greeter:50051';

interface Outcome { ok: boolean; code: number; reason: string | undefined; backend: string | undefined; seq: number }

/** WORKERS loops of SayHello through one channel, recording every call in start order. */
class Load {
  readonly outcomes: Outcome[] = [];
  private started = 0;
  private running = true;
  private readonly done: Promise<void[]>;

  constructor(private readonly client: GreeterClient) {
    this.done = Promise.all(Array.from({ length: WORKERS }, () => this.worker()));
  }

  /** How many calls have started so far: a mark to split outcomes into before and after. */
  mark(): number { return this.started; }

  /** Resolves once `n` more calls have finished. */
  async more(n: number): Promise<void> {
    const want = this.outcomes.length + n;
    await eventually(() => (this.outcomes.length >= want ? true : undefined), `${n} more calls`, 60_000);
  }

  async stop(): Promise<Outcome[]> {
    this.running = false;
    await this.done;
    return this.outcomes;
  }

  private async worker(): Promise<void> {
    while (this.running) {
      const seq = this.started++;
      this.outcomes.push(await this.call(seq));
    }
  }

  private call(seq: number): Promise<Outcome> {
    return new Promise((resolve) => {
      this.client.SayHello({ name: `call-${seq}` }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, reply?: HelloReply) => {
        const reason = err?.metadata?.get('x-skein-reason')[0];
        resolve({ ok: err === null, code: err?.code ?? 0, reason: reason === undefined ? undefined : String(reason), backend: reply?.backend, seq });
      });
    });
  }
}

const failures = (os: Outcome[], from = 0): Outcome[] => os.filter((o) => !o.ok && o.seq >= from);
const show = (os: Outcome[]): string => JSON.stringify(Object.entries(os.reduce<Record<string, number>>((m, o) => { const k = `${o.code}/${o.reason ?? '-'}`; m[k] = (m[k] ?? 0) + 1; return m; }, {})));

describe('a crashed instance does not become a failing service (processes, SIGKILL under load)', () => {
  let mesh: Mesh;
  let client: SidecarProcess;
  let greeter: GreeterClient;
  const apps: GreeterProcess[] = [];
  const servers: SidecarProcess[] = [];

  const leases = async () => (await api<{ endpoints: { address: string; port: number; health: string }[] }>(mesh.cp.api, 'GET', '/v1/endpoints')).endpoints;
  const healthOf = async (sc: SidecarProcess) => (await leases()).find((e) => `${e.address}:${e.port}` === sc.inbound)?.health;
  /** The client sidecar's view of the greeter cluster: address -> routable. */
  const clientView = async (): Promise<Map<string, boolean>> => {
    const cs = (await (await fetch(`http://${client.admin}/clusters`)).json()) as { name: string; hosts: { address: string; health: string; ejected?: boolean; hcFailed?: boolean }[] }[];
    const c = cs.find((x) => x.name === 'greeter');
    return new Map((c?.hosts ?? []).map((h) => [h.address, h.health === 'HEALTHY' && h.ejected !== true && h.hcFailed !== true]));
  };
  const outOfRotation = (sc: SidecarProcess, what: string) => eventually(async () => ((await clientView()).get(sc.inbound!) !== true ? true : undefined), `${what} out of the client's rotation`, 30_000);
  const inRotation = (sc: SidecarProcess) => eventually(async () => ((await clientView()).get(sc.inbound!) === true ? true : undefined), `${sc.inbound} back in rotation`, 30_000);

  async function instance(i: number, port?: number): Promise<void> {
    apps[i] = await startGreeterProcess({ backend: `g${i + 1}`, version: 'v1', ...(port === undefined ? {} : { port }) });
    servers[i] = await mesh.sidecar({ nodeId: `greeter-${i + 1}-${Date.now()}`, service: 'greeter', app: apps[i]!.address });
    await inRotation(servers[i]!);
  }
  async function policy(retry: boolean): Promise<void> {
    const rule = retry ? { backendRefs: [{ name: 'greeter' }], retry: { retries: 3, retryOn: ['unavailable', 'reset', 'connect-failure'], backoff: { baseInterval: '5ms', maxInterval: '50ms' } } } : { backendRefs: [{ name: 'greeter' }] };
    const rev = await mesh.apply([{ apiVersion: API_VERSION, kind: 'GRPCRoute', metadata: { name: 'greeter' }, spec: { parentRefs: [{ name: 'greeter' }], rules: [rule] } }]);
    await mesh.synced('crash-client', 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration', rev);
  }

  before(async () => {
    mesh = await Mesh.start('crash');
    // The retry budget is sized to the callers: with WORKERS calls in flight, all of them can be on
    // the killed instance at once, and each needs a retry. The default budget (20% of active
    // requests, at least 3) would refuse some of them, by design (no retry storms).
    await mesh.apply([
      { apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'greeter' }, spec: { ports: [{ name: 'grpc', port: 50051 }] } },
      { apiVersion: API_VERSION, kind: 'BackendPolicy', metadata: { name: 'greeter' }, spec: { targetRef: { name: 'greeter' }, retryBudget: { minRetryConcurrency: WORKERS } } },
    ]);
    client = await mesh.clientSidecar('crash-client');
    greeter = mesh.greeter(client, AUTHORITY);
    for (let i = 0; i < 3; i++) await instance(i);
  });
  after(async () => {
    await mesh.stop();
    await Promise.all(apps.map((a) => a?.kill().catch(() => undefined)));
  });

  test('SIGKILL one app, no retry policy: failures stay within the calls in flight, none once it is out of rotation; the endpoint turns UNHEALTHY and /ready 503', async (t) => {
    await policy(false);
    const load = new Load(greeter);
    await load.more(200);
    const before = load.mark();
    await apps[0]!.kill('SIGKILL');
    await eventually(async () => ((await healthOf(servers[0]!)) === 'UNHEALTHY' ? true : undefined), 'the dead app\'s endpoint to be UNHEALTHY', 30_000);
    await outOfRotation(servers[0]!, 'the dead app');
    const settled = load.mark();
    await load.more(300);
    const all = await load.stop();
    const failed = failures(all, before);
    t.diagnostic(`app SIGKILL, no retry policy: ${failed.length} of ${all.length} calls failed ${show(failed)}`);
    assert.ok(failed.length <= WORKERS + SLACK, `${failed.length} failures: ${show(failed)}`);
    assert.deepEqual(failures(all, settled), [], 'no failure once the dead app is out of rotation');
    const ready = await fetch(`http://${servers[0]!.admin}/ready`);
    assert.equal(ready.status, 503);
  });

  test('the app comes back: HEALTHY again, and it gets traffic', async () => {
    await instance(0, Number(apps[0]!.address.split(':')[1]));
    const load = new Load(greeter);
    await load.more(300);
    const all = await load.stop();
    assert.deepEqual(failures(all), []);
    assert.ok(all.some((o) => o.backend === 'g1'), 'g1 answers again');
  });

  test('SIGKILL one app with a retry policy: 0 failed calls', async (t) => {
    await policy(true);
    const load = new Load(greeter);
    await load.more(200);
    await apps[1]!.kill('SIGKILL');
    await outOfRotation(servers[1]!, 'the dead app');
    await load.more(300);
    const all = await load.stop();
    t.diagnostic(`app SIGKILL, retry policy: ${failures(all).length} of ${all.length} calls failed`);
    assert.deepEqual(failures(all), [], show(failures(all)));
    await instance(1, Number(apps[1]!.address.split(':')[1]));
  });

  test('SIGKILL one server sidecar, no retry policy: failures within the calls in flight, none once it is ejected', async (t) => {
    await policy(false);
    const load = new Load(greeter);
    await load.more(200);
    const before = load.mark();
    await servers[2]!.stop('SIGKILL');
    await outOfRotation(servers[2]!, 'the dead sidecar');
    const settled = load.mark();
    await load.more(300);
    const all = await load.stop();
    const failed = failures(all, before);
    t.diagnostic(`server sidecar SIGKILL, no retry policy: ${failed.length} of ${all.length} calls failed ${show(failed)}`);
    assert.ok(failed.length <= WORKERS + SLACK, `${failed.length} failures: ${show(failed)}`);
    assert.deepEqual(failures(all, settled), []);
    assert.equal(failed.filter((o) => o.reason === 'retry_budget_exhausted').length, 0, 'the budget never refuses a retry to a live host');
    servers[2] = await mesh.sidecar({ nodeId: `greeter-3-again-${Date.now()}`, service: 'greeter', app: apps[2]!.address });
    await inRotation(servers[2]!);
  });

  test('SIGKILL one server sidecar with a retry policy: no call fails, except one whose answer was already under way (UNAVAILABLE, upstream_reset)', async (t) => {
    await policy(true);
    const load = new Load(greeter);
    await load.more(200);
    await servers[2]!.stop('SIGKILL');
    await outOfRotation(servers[2]!, 'the dead sidecar');
    await load.more(300);
    const all = await load.stop();
    t.diagnostic(`server sidecar SIGKILL, retry policy: ${failures(all).length} of ${all.length} calls failed ${show(failures(all))}`);
    // A call whose response head the dead sidecar had already relayed cannot be retried by any
    // proxy: it ends UNAVAILABLE with upstream_reset (not a bare reset). Every other call succeeds.
    const broken = failures(all);
    assert.ok(broken.length <= 2 && broken.every((o) => o.code === grpc.status.UNAVAILABLE && o.reason === 'upstream_reset'), show(broken));
  });

  test('every app dead: calls fail fast with UNAVAILABLE and a reason, and nothing hangs', async () => {
    for (const a of apps) await a.kill('SIGKILL');
    const load = new Load(greeter);
    await load.more(100);
    const all = await load.stop();
    const tail = all.slice(-50);
    assert.ok(tail.every((o) => !o.ok && o.code === grpc.status.UNAVAILABLE), show(tail));
    assert.ok(tail.every((o) => o.reason !== undefined), `every failure names its reason: ${show(tail)}`);
  });
});

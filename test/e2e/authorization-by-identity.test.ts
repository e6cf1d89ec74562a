/**
 * Authorization by identity, end to end: a control plane process, a greeter behind its sidecar,
 * and two client sidecars with different workload identities (frontend, batch). An
 * AuthorizationPolicy on greeter allows frontend, denies it one gRPC method, and denies every
 * other caller by default; the server's sidecar decides by the caller's verified SPIFFE ID,
 * answers PERMISSION_DENIED with x-skein-reason rbac_denied, and counts every decision. A policy
 * change reaches the running sidecar.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterClient } from '../../shared/src/sample-app/greeter';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { eventually } from '../support/ads-client';
import { inboundOf, Mesh } from '../support/sidecar-mesh';
import { API_VERSION } from '../support/skein';

const CALLS = 20;
const FRONTEND = 'spiffe://skein.local/ns/default/sa/frontend';
const GREETER = 'skein.demo.v1.Greeter';

const greeterService = { apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'greeter' }, spec: { ports: [{ name: 'grpc', port: 50051 }] } };
const policy = (rules: unknown[]) => ({ apiVersion: API_VERSION, kind: 'AuthorizationPolicy', metadata: { name: 'greeter-callers' }, spec: { targetRef: { kind: 'Service', name: 'greeter' }, rules } });
const FRONTEND_ONLY = [
  { action: 'DENY', from: [FRONTEND], to: { grpc: [{ service: GREETER, method: 'Collect' }] } },
  { action: 'ALLOW', from: [FRONTEND] },
];

async function counters(sc: SidecarProcess, filter: string): Promise<Record<string, number>> {
  return ((await (await fetch(`http://${sc.admin}/stats?filter=${encodeURIComponent(filter)}`)).json()) as { counters: Record<string, number> }).counters;
}

interface Outcome { ok: number; denied: number; other: string[]; reasons: Set<string> }

/** `n` calls, one at a time; each ends OK, PERMISSION_DENIED (with its x-skein-reason), or something else (listed). */
async function calls(n: number, one: (done: (err: grpc.ServiceError | null) => void) => void): Promise<Outcome> {
  const out: Outcome = { ok: 0, denied: 0, other: [], reasons: new Set() };
  for (let i = 0; i < n; i++) {
    const err = await new Promise<grpc.ServiceError | null>((resolve) => one(resolve));
    if (err === null) out.ok++;
    else if (err.code === grpc.status.PERMISSION_DENIED) { out.denied++; out.reasons.add(String(err.metadata.get('x-skein-reason')[0])); }
    else out.other.push(`${err.code}: ${err.details}`);
  }
  return out;
}
const sayHello = (c: GreeterClient) => (done: (err: grpc.ServiceError | null) => void) => {
  c.SayHello({ name: 'x' }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err) => done(err));
};
const collect = (c: GreeterClient) => (done: (err: grpc.ServiceError | null) => void) => {
  const call = c.Collect(new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err) => done(err));
  call.on('error', () => undefined);
  call.write({ name: 'a' });
  call.end();
};

describe('authorization by identity: the server sidecar decides by the caller\'s verified SPIFFE ID', () => {
  let mesh: Mesh;
  let server: SidecarProcess;
  let frontend: GreeterClient;
  let batch: GreeterClient;
  let frontendSidecar: SidecarProcess;
  let batchSidecar: SidecarProcess;

  before(async () => {
    mesh = await Mesh.start('authz');
    await mesh.apply([greeterService, policy(FRONTEND_ONLY)]);
    const app = mesh.app(await startGreeter({ backend: 'g-a', version: 'v1' }));
    server = await mesh.sidecar({ nodeId: 'greeter-a', service: 'greeter', app: `${app.address}:${app.port}` });
    [frontendSidecar, batchSidecar] = await Promise.all([
      mesh.sidecar({ nodeId: 'frontend-1', serviceAccount: 'frontend' }),
      mesh.sidecar({ nodeId: 'batch-1', serviceAccount: 'batch' }),
    ]);
    for (const sc of [frontendSidecar, batchSidecar]) {
      await eventually(async () => ((await fetch(`http://${sc.admin}/ready`)).status === 200 ? true : undefined), 'a client sidecar to be ready');
      await mesh.hosts(sc, 'greeter', [inboundOf(server)]);
    }
    frontend = mesh.greeter(frontendSidecar, 'greeter:50051');
    batch = mesh.greeter(batchSidecar, 'greeter:50051');
  });
  after(async () => { await mesh?.stop(); });

  test(`allow by identity, deny by gRPC method, deny by default: ${CALLS} calls each, every one decided and counted`, async () => {
    const before = await counters(server, 'rbac');
    const allowed = await calls(CALLS, sayHello(frontend));
    const byMethod = await calls(CALLS, collect(frontend));
    const byDefault = await calls(CALLS, sayHello(batch));
    assert.deepEqual([allowed.ok, allowed.denied, allowed.other], [CALLS, 0, []], 'frontend may call SayHello');
    assert.deepEqual([byMethod.ok, byMethod.denied, byMethod.other, [...byMethod.reasons]], [0, CALLS, [], ['rbac_denied']], 'frontend may not call Collect');
    assert.deepEqual([byDefault.ok, byDefault.denied, byDefault.other, [...byDefault.reasons]], [0, CALLS, [], ['rbac_denied']], 'batch is allowed by no rule');
    const now = await counters(server, 'rbac');
    const delta = (k: string) => (now[k] ?? 0) - (before[k] ?? 0);
    assert.deepEqual({
      allowed: delta('listener.inbound.rbac.allowed'),
      byRule: delta('listener.inbound.rbac.denied{policy=greeter-callers/rules[0]}'),
      byDefault: delta('listener.inbound.rbac.denied{policy=default}'),
    }, { allowed: CALLS, byRule: CALLS, byDefault: CALLS }, JSON.stringify(now));
    const replies = await counters(server, 'local_reply.rbac_denied');
    assert.equal(Object.values(replies).reduce((a, b) => a + b, 0), 2 * CALLS, 'the denials are the inbound route\'s local replies');
  });

  test('a policy change reaches the running sidecar: batch allowed by a new rule, then Collect denied to every caller', async () => {
    let revision = await mesh.apply([policy([...FRONTEND_ONLY, { action: 'ALLOW', from: ['spiffe://skein.local/ns/default/sa/b*'], to: { grpc: [{ service: GREETER, method: 'SayHello' }] } }])]);
    await mesh.synced('greeter-a', TYPE_URLS.LISTENER, revision);
    assert.deepEqual((await calls(CALLS, sayHello(batch))).ok, CALLS, 'batch (a prefix glob) may now call SayHello');
    assert.deepEqual((await calls(CALLS, collect(batch))).denied, CALLS, 'but not Collect (no rule allows it)');
    revision = await mesh.apply([policy([{ action: 'DENY', from: ['*'], to: { grpc: [{ service: GREETER, method: 'Collect' }] } }, { action: 'ALLOW', from: ['*'] }])]);
    await mesh.synced('greeter-a', TYPE_URLS.LISTENER, revision);
    const before = await counters(server, 'rbac.denied');
    assert.equal((await calls(CALLS, collect(batch))).denied, CALLS);
    assert.equal((await calls(CALLS, sayHello(batch))).ok, CALLS, "'*' allows any authenticated caller");
    const now = await counters(server, 'rbac.denied');
    assert.equal((now['listener.inbound.rbac.denied{policy=greeter-callers/rules[0]}'] ?? 0) - (before['listener.inbound.rbac.denied{policy=greeter-callers/rules[0]}'] ?? 0), CALLS);
  });
});

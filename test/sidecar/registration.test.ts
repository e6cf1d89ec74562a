/**
 * The sidecar's endpoint registration (sidecar/src/registration.ts) against real gRPC servers of
 * skein.registry.v1.Endpoints, on a fake clock: with several control planes (--xds A,B) it moves
 * to the next when the one in use cannot be reached, and stays there. Replicas that share their
 * leases (--store) renew the same lease id; a control plane that does not know it gets a new
 * registration. A refusal is not a reason to move.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { FakeClock } from '../../shared/src/clock';
import { silentLogger } from '../../shared/src/log';
import { ENDPOINTS_SERVICE, skeinService } from '../../shared/src/grpc/skein-services';
import type { LeaseRef, RegisterRequest, WireLease } from '../../shared/src/grpc/skein-services';
import { Registration } from '../../sidecar/src/registration';

type Leases = Map<string, WireLease>;
interface Server { target: string; calls: string[]; close(): void }

/**
 * An Endpoints server over `leases` (one map shared by two servers: replicas sharing a store).
 * `refuse`: every call fails with it. `port`: that port (0: a free one).
 */
async function endpointsServer(leases: Leases, opts: { refuse?: grpc.status; port?: number } = {}): Promise<Server> {
  const refuse = opts.refuse;
  const server = new grpc.Server();
  const calls: string[] = [];
  const known = (id: string | undefined, cb: grpc.sendUnaryData<WireLease>, then: (l: WireLease) => WireLease) => {
    const l = leases.get(id ?? '');
    if (l === undefined) cb({ code: grpc.status.NOT_FOUND, details: 'no such lease' });
    else cb(null, then(l));
  };
  server.addService(skeinService(ENDPOINTS_SERVICE).service, {
    Register: (call: grpc.ServerUnaryCall<RegisterRequest, WireLease>, cb: grpc.sendUnaryData<WireLease>) => {
      calls.push('register');
      if (refuse !== undefined) { cb({ code: refuse, details: 'refused' }); return; }
      const r = call.request;
      const lease: WireLease = { id: randomUUID(), service: r.service ?? '', address: r.address ?? '', port: r.port ?? 0, health: r.health ?? 'HEALTHY', ttl_ms: '3000', expires_at_ms: '0' };
      leases.set(lease.id, lease);
      cb(null, lease);
    },
    Renew: (call: grpc.ServerUnaryCall<LeaseRef, WireLease>, cb: grpc.sendUnaryData<WireLease>) => {
      calls.push(`renew ${call.request.id}`);
      if (refuse !== undefined) { cb({ code: refuse, details: 'refused' }); return; }
      known(call.request.id, cb, (l) => l);
    },
    Deregister: (call: grpc.ServerUnaryCall<LeaseRef, WireLease>, cb: grpc.sendUnaryData<WireLease>) => {
      calls.push(`deregister ${call.request.id}`);
      known(call.request.id, cb, (l) => { leases.delete(l.id); return l; });
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(`127.0.0.1:${opts.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { target: `127.0.0.1:${port}`, calls, close: () => server.forceShutdown() };
}

/** Advances the fake clock a renewal period at a time, letting real I/O run, until `pred` holds. */
async function advanceUntil(clock: FakeClock, pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !pred(); i++) {
    clock.advance(1000);
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(pred(), `timed out waiting for ${what}`);
}

let cleanup: (() => unknown)[] = [];
after(async () => { for (const f of cleanup) await f(); cleanup = []; });

function registration(servers: string[], clock: FakeClock): Registration {
  const r = new Registration({ servers, credentials: grpc.credentials.createInsecure(), service: 'greeter', address: '127.0.0.1', port: 8080, labels: { version: 'v1' }, ttlMs: 3000, node: 'n1', clock, log: silentLogger() });
  cleanup.push(() => r.stop());
  return r;
}

const cases = [
  { name: 'replicas sharing leases: B renews the lease A gave', shared: true, onB: (id: string) => [`renew ${id}`] },
  { name: 'separate control planes: B does not know the lease, so the instance registers there', shared: false, onB: (id: string) => [`renew ${id}`, 'register'] },
];

for (const c of cases) {
  test(`A unreachable: registration moves to B and stays (${c.name})`, async () => {
    const clock = new FakeClock();
    const leasesA: Leases = new Map();
    const a = await endpointsServer(leasesA);
    const b = await endpointsServer(c.shared ? leasesA : new Map());
    cleanup.push(a.close, b.close);
    const r = registration([a.target, b.target], clock);
    await r.start();
    const id = [...leasesA.keys()][0]!;
    assert.deepEqual(a.calls, ['register']);
    await advanceUntil(clock, () => a.calls.length >= 2, 'a renewal through A');
    assert.equal(a.calls[1], `renew ${id}`);
    a.close();
    await advanceUntil(clock, () => b.calls.length >= c.onB(id).length, 'the beat to move to B');
    assert.deepEqual(b.calls, c.onB(id));
    assert.equal(r.server, b.target);
    const onB = b.calls.length;
    await advanceUntil(clock, () => b.calls.length >= onB + 2, 'two more renewals');
    const held = b.calls.at(-1)!.slice('renew '.length);
    assert.deepEqual(b.calls.slice(onB), [`renew ${held}`, `renew ${held}`], 'renewals of one lease, through B');
    if (c.shared) assert.equal(held, id, 'the lease A gave');
    await r.stop();
    assert.match(b.calls.at(-1)!, /^deregister /, 'deregisters through B');
  });
}

test('a refusal (PERMISSION_DENIED) is not a reason to move: the next beat asks the same control plane', async () => {
  const clock = new FakeClock();
  const a = await endpointsServer(new Map(), { refuse: grpc.status.PERMISSION_DENIED });
  const b = await endpointsServer(new Map());
  cleanup.push(a.close, b.close);
  const r = registration([a.target, b.target], clock);
  await r.start();
  await advanceUntil(clock, () => a.calls.length >= 3, 'three tries at A');
  assert.deepEqual(b.calls, []);
  assert.equal(r.server, a.target);
});

test('one control plane, unreachable: registration keeps retrying it and registers once it is back', async () => {
  const clock = new FakeClock();
  const a = await endpointsServer(new Map());
  const target = a.target;
  a.close();
  const r = registration([target], clock);
  await r.start();
  const leases: Leases = new Map();
  const again = await endpointsServer(leases, { port: Number(target.split(':')[1]) });
  cleanup.push(again.close);
  await advanceUntil(clock, () => leases.size === 1, 'a registration once the control plane is back');
  assert.equal(r.server, target);
});

/**
 * Endpoint leases shared through a NATS KV bucket by two registries (two replicas), against a real
 * nats-server, on a fake clock: expiry is decided by the clock, what the replicas see is decided
 * by NATS. A later lease written through A and seen on B is the barrier that says every earlier
 * write of A (a reap, had there been one) has reached B.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { FakeClock } from '../../../shared/src/clock';
import { silentLogger } from '../../../shared/src/log';
import { EndpointRegistry } from '../../../control-plane/src/registry/endpoint-registry';
import { NatsLeases, REAP_MARGIN_MS } from '../../../control-plane/src/registry/nats-leases';
import { NatsStoreConnection } from '../../../control-plane/src/store/nats-connection';
import { parseStoreUrl } from '../../../control-plane/src/store/nats-store-url';
import { startNatsServer } from '../../support/nats-server';
import type { NatsServer } from '../../support/nats-server';

let nats: NatsServer;
let seq = 0;
before(async () => { nats = await startNatsServer(); }, { timeout: 600_000 });
after(async () => { await nats?.close(); });

interface Replica { registry: EndpointRegistry; conn: NatsStoreConnection; leases: NatsLeases }

async function eventually(pred: () => boolean, what: string, boundMs = 30_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function withReplicas(fn: (a: Replica, b: Replica, clock: FakeClock, bucket: string) => Promise<void>): Promise<void> {
  const clock = new FakeClock(Date.now());
  const bucket = `l${process.pid}-${++seq}`;
  const rs: Replica[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const conn = await NatsStoreConnection.open(parseStoreUrl(nats.url), silentLogger());
      const registry = new EndpointRegistry(clock);
      const leases = await NatsLeases.open(conn, registry, { bucket, clock, log: silentLogger() });
      rs.push({ registry, conn, leases });
    }
    await fn(rs[0]!, rs[1]!, clock, bucket);
  } finally {
    for (const r of rs) { r.leases.close(); r.registry.close(); await r.conn.close(); }
  }
}

const at = (address: string, port = 8080) => ({ service: 'reviews', address, port, ttl: '1s' });
const has = (r: Replica, address: string) => r.registry.list().some((l) => l.address === address);

/** Registers a fresh endpoint through `a` and waits until `b` has it: every earlier write of `a` is on `b` too. */
async function barrier(a: Replica, b: Replica, n: number): Promise<void> {
  const address = `10.255.0.${n}`;
  a.registry.register(at(address));
  await eventually(() => has(b, address), `barrier ${address} on B`);
}

/** JavaScript timers that keep the process alive. */
const liveTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('opened and closed at once, the leases leave no timer behind: a control plane stopped right after it started exits at once', async () => {
  const before = liveTimers();
  await withReplicas(async () => undefined);
  assert.equal(liveTimers(), before, 'a timer of NatsLeases.open outlived close()');
});

test('a lease registered through A is on B; renewed through B it outlives its first expiry; unrenewed, both replicas reap it', async () => {
  await withReplicas(async (a, b, clock) => {
    const lease = a.registry.register(at('10.0.0.1'));
    await eventually(() => has(b, '10.0.0.1'), 'B has the lease');
    assert.equal(b.registry.get(lease.id).id, lease.id, 'same lease id on B, so renewals through B work');
    clock.advance(900);
    const renewed = b.registry.renew(lease.id);
    await eventually(() => a.registry.get(lease.id).expiresAt === renewed.expiresAt, 'A sees the renewal');
    clock.advance(REAP_MARGIN_MS + 500); // past the first expiry + margin, not past the renewed one + margin
    await barrier(a, b, 1);
    await barrier(b, a, 2);
    assert.ok(has(a, '10.0.0.1') && has(b, '10.0.0.1'), 'the renewed lease is not reaped');
    clock.advance(1000); // now past the renewed expiry + margin: both replicas try to reap it; one CAS delete wins
    await eventually(() => !has(a, '10.0.0.1') && !has(b, '10.0.0.1'), 'the lease is gone from A and B');
  });
});

test('NATS down: nothing is reaped; back up: a lease gets one more TTL to renew, then goes; the watches leave no consumer behind', async () => {
  await withReplicas(async (a, b, clock, bucket) => {
    a.registry.register(at('10.0.0.2'));
    await eventually(() => has(b, '10.0.0.2'), 'B has the lease');
    for (let round = 1; round <= 3; round++) {
      await nats.stop();
      await eventually(() => !a.conn.available && !b.conn.available, 'both notice the outage');
      clock.advance(60_000);
      assert.ok(has(a, '10.0.0.2') && has(b, '10.0.0.2'), 'an outage reaps nothing: renewals through other replicas cannot be seen');
      await nats.start();
      await eventually(() => a.conn.available && b.conn.available, 'both reconnected');
    }
    await barrier(a, b, 3);
    await barrier(b, a, 4);
    assert.ok(has(a, '10.0.0.2') && has(b, '10.0.0.2'), 'not reaped right after reconnecting');
    clock.advance(1000 + REAP_MARGIN_MS + 1);
    await eventually(() => !has(a, '10.0.0.2') && !has(b, '10.0.0.2'), 'reaped one TTL (plus the margin) after the store came back');
    const probe = await NatsStoreConnection.open(parseStoreUrl(nats.url), silentLogger());
    try {
      const jsm = await jetstreamManager(probe.nc);
      let count = Infinity;
      const deadline = Date.now() + 60_000;
      while (count > 2) {
        count = 0;
        for await (const _c of jsm.consumers.list(`KV_${bucket}-leases`)) count++;
        if (count > 2 && Date.now() > deadline) assert.fail(`${count} consumers on the lease bucket after 3 restarts; at most one watch per replica`);
        if (count > 2) await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await probe.close();
    }
  });
});

test('one address registered through A and B at once: both end on the same lease, and the other key leaves the bucket', async () => {
  await withReplicas(async (a, b, _clock, bucket) => {
    const la = a.registry.register(at('10.0.0.3'));
    const lb = b.registry.register(at('10.0.0.3'));
    assert.notEqual(la.id, lb.id, 'neither had seen the other');
    const kv = await new Kvm(jetstream(a.conn.nc)).open(`${bucket}-leases`);
    const keys = async () => { const out: string[] = []; for await (const k of await kv.keys()) out.push(k); return out.sort(); };
    const ids = (r: Replica) => r.registry.list().filter((l) => l.address === '10.0.0.3').map((l) => l.id);
    let inBucket: string[] = [];
    const deadline = Date.now() + 30_000;
    for (;;) {
      inBucket = await keys();
      const [x, y] = [ids(a), ids(b)];
      if (inBucket.length === 1 && x.length === 1 && y.length === 1 && x[0] === y[0] && x[0] === inBucket[0]) break;
      if (Date.now() > deadline) assert.fail(`A ${JSON.stringify(x)}, B ${JSON.stringify(y)}, bucket ${JSON.stringify(inBucket)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok([la.id, lb.id].includes(inBucket[0]!));
  });
});

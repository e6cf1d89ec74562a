/**
 * The live endpoint registry: registration validation, lease TTLs and renewal, driven by a FakeClock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../shared/src/clock';
import { ErrorCodes, MeshError } from '../../shared/src/errors';
import type { ErrorCode } from '../../shared/src/errors';
import { EndpointRegistry } from '../../control-plane/src/registry/endpoint-registry';
import type { RegistryOptions } from '../../control-plane/src/registry/endpoint-registry';
import { LEASE_SAVE_INTERVAL_MS, LeaseFile } from '../../control-plane/src/registry/lease-file';
import { silentLogger } from '../../shared/src/log';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const START = Date.UTC(2026, 0, 1);

function setup(opts: RegistryOptions = {}): { clock: FakeClock; reg: EndpointRegistry; changes: () => number } {
  const clock = new FakeClock(START);
  const reg = new EndpointRegistry(clock, opts);
  let n = 0;
  reg.onChange(() => { n++; });
  return { clock, reg, changes: () => n };
}

function ep(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { service: 'reviews', address: '10.0.0.1', port: 50051, ...extra };
}

function throwsWith(fn: () => unknown, code: ErrorCode): MeshError {
  let caught: unknown;
  try { fn(); } catch (e) { caught = e; }
  assert.ok(caught instanceof MeshError, `expected a MeshError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

/** Asserts registering `body` fails validation with an issue at exactly `path`. */
function rejectsField(reg: EndpointRegistry, body: unknown, path: string): void {
  const e = throwsWith(() => reg.register(body), ErrorCodes.VALIDATION);
  assert.ok(e.details.some((d) => d.path === path), `expected an issue at "${path}", got ${JSON.stringify(e.details)}`);
}

test('register returns a lease with an id, the defaults filled in, and fires onChange', () => {
  const { reg, changes } = setup();
  const lease = reg.register(ep({ labels: { version: 'v1' }, node: 'sidecar-1' }));
  assert.equal(typeof lease.id, 'string');
  assert.ok(lease.id.length > 0);
  assert.deepEqual({ ...lease, id: '' }, {
    id: '', service: 'reviews', address: '10.0.0.1', port: 50051, labels: { version: 'v1' }, zone: '', weight: 1, health: 'HEALTHY',
    ttlMs: 10_000, node: 'sidecar-1', registeredAt: START, expiresAt: START + 10_000,
  });
  assert.equal(changes(), 1);
  assert.deepEqual(reg.list().map((l) => l.id), [lease.id]);
  const other = reg.register(ep({ address: '10.0.0.2' }));
  assert.notEqual(other.id, lease.id);
  assert.equal(reg.list().length, 2);
});

test('register accepts IPv6, an explicit ttl, zone, weight and health', () => {
  const { reg } = setup();
  const lease = reg.register(ep({ address: '::1', ttl: '30s', zone: 'eu-1a', weight: 5, health: 'DRAINING' }));
  assert.equal(lease.ttlMs, 30_000);
  assert.equal(lease.expiresAt, START + 30_000);
  assert.equal(lease.zone, 'eu-1a');
  assert.equal(lease.weight, 5);
  assert.equal(lease.health, 'DRAINING');
  // The bounds are inclusive.
  assert.equal(reg.register(ep({ port: 1, ttl: '1s' })).ttlMs, 1_000);
  assert.equal(reg.register(ep({ port: 65535, ttl: '5m' })).ttlMs, 300_000);
  assert.equal(setup({ defaultTtlMs: 2_000 }).reg.register(ep()).ttlMs, 2_000);
});

test('validation errors name the offending field', () => {
  const { reg, changes } = setup();
  rejectsField(reg, ep({ port: 0 }), 'port');
  rejectsField(reg, ep({ port: 65536 }), 'port');
  rejectsField(reg, ep({ port: '80' }), 'port');
  rejectsField(reg, ep({ port: 1.5 }), 'port');
  rejectsField(reg, ep({ address: 'reviews.local' }), 'address');
  rejectsField(reg, ep({ address: '10.0.0.256' }), 'address');
  rejectsField(reg, ep({ address: '' }), 'address');
  rejectsField(reg, ep({ service: 'Reviews_Bad' }), 'service');
  rejectsField(reg, ep({ prot: 80 }), 'prot');
  rejectsField(reg, ep({ ttl: '999ms' }), 'ttl');
  rejectsField(reg, ep({ ttl: '5m1ms' }), 'ttl');
  rejectsField(reg, ep({ ttl: '10' }), 'ttl');
  rejectsField(reg, ep({ ttl: 10_000 }), 'ttl');
  rejectsField(reg, ep({ labels: { 'bad key!': 'x' } }), 'labels.bad key!');
  rejectsField(reg, ep({ labels: { version: 1 } }), 'labels.version');
  rejectsField(reg, ep({ labels: ['v1'] }), 'labels');
  rejectsField(reg, ep({ weight: 0 }), 'weight');
  rejectsField(reg, ep({ health: 'OK' }), 'health');
  rejectsField(reg, { address: '10.0.0.1', port: 80 }, 'service');
  throwsWith(() => reg.register(null), ErrorCodes.VALIDATION);
  throwsWith(() => reg.register('reviews'), ErrorCodes.VALIDATION);
  // Every problem is reported at once.
  const e = throwsWith(() => reg.register(ep({ port: 0, address: 'nope', extra: true })), ErrorCodes.VALIDATION);
  assert.deepEqual(e.details.map((d) => d.path).sort(), ['address', 'extra', 'port']);
  assert.deepEqual(reg.list(), []);
  assert.equal(changes(), 0);
});

test('a lease expires exactly after its TTL, firing onChange', () => {
  const { clock, reg, changes } = setup();
  reg.register(ep({ ttl: '2s' }));
  assert.equal(changes(), 1);
  clock.advance(1_999);
  assert.equal(reg.list().length, 1);
  assert.equal(changes(), 1);
  clock.advance(1);
  assert.deepEqual(reg.list(), []);
  assert.deepEqual(reg.endpoints(), []);
  assert.equal(changes(), 2);
  assert.equal(clock.pending(), 0, 'no timer left once the registry is empty');
});

test('renew extends the expiry by the TTL from now', () => {
  const { clock, reg, changes } = setup();
  const lease = reg.register(ep({ ttl: '10s' }));
  clock.advance(6_000);
  const renewed = reg.renew(lease.id);
  assert.equal(renewed.id, lease.id);
  assert.equal(renewed.expiresAt, START + 16_000);
  clock.advance(9_999); // t = 15.999s: past the original expiry
  assert.equal(reg.list().length, 1);
  assert.equal(changes(), 1, 'renewal is not a change');
  clock.advance(1);
  assert.equal(reg.list().length, 0);
  assert.equal(changes(), 2);
});

test('renew of an expired or unknown lease is NOT_FOUND', () => {
  const { clock, reg } = setup();
  const lease = reg.register(ep({ ttl: '1s' }));
  clock.advance(1_000);
  throwsWith(() => reg.renew(lease.id), ErrorCodes.NOT_FOUND);
  throwsWith(() => reg.renew('no-such-lease'), ErrorCodes.NOT_FOUND);
  // Registering again after expiry gives a fresh lease.
  const again = reg.register(ep({ ttl: '1s' }));
  assert.equal(again.registeredAt, START + 1_000);
  assert.equal(reg.list().length, 1);
});

test('re-registering the same service+address+port keeps the id, renews, and does not duplicate', () => {
  const { clock, reg, changes } = setup();
  const first = reg.register(ep({ ttl: '10s', labels: { version: 'v1' } }));
  clock.advance(5_000);
  const second = reg.register(ep({ ttl: '10s', labels: { version: 'v1' } }));
  assert.equal(second.id, first.id);
  assert.equal(second.registeredAt, START);
  assert.equal(second.expiresAt, START + 15_000);
  assert.equal(reg.list().length, 1);
  assert.equal(changes(), 1, 'an identical re-registration is not a change');

  const third = reg.register(ep({ ttl: '10s', labels: { version: 'v2' }, weight: 3 }));
  assert.equal(third.id, first.id);
  assert.equal(reg.list().length, 1);
  assert.deepEqual(reg.endpoints()[0]?.labels, { version: 'v2' });
  assert.equal(reg.endpoints()[0]?.weight, 3);
  assert.equal(changes(), 2, 'a re-registration that changes the endpoint is a change');

  // Same address on another port, or for another service, is a different endpoint.
  assert.notEqual(reg.register(ep({ port: 50052 })).id, first.id);
  assert.notEqual(reg.register(ep({ service: 'ratings' })).id, first.id);
  assert.equal(reg.list().length, 3);

  // The re-registered lease expires at its new time, not the old one.
  clock.advance(9_999); // t = 14.999s
  assert.ok(reg.list().some((l) => l.id === first.id));
  clock.advance(1);
  assert.ok(!reg.list().some((l) => l.id === first.id));
});

test('re-registering with a shorter TTL moves the expiry earlier', () => {
  const { clock, reg } = setup();
  reg.register(ep({ ttl: '60s' }));
  reg.register(ep({ ttl: '2s' }));
  clock.advance(1_999);
  assert.equal(reg.list().length, 1);
  clock.advance(1);
  assert.equal(reg.list().length, 0);
});

test('deregister removes the lease and fires onChange; unknown ids are NOT_FOUND', () => {
  const { clock, reg, changes } = setup();
  const a = reg.register(ep());
  const b = reg.register(ep({ address: '10.0.0.2' }));
  assert.equal(changes(), 2);
  reg.deregister(a.id);
  assert.deepEqual(reg.list().map((l) => l.id), [b.id]);
  assert.equal(changes(), 3);
  throwsWith(() => reg.deregister(a.id), ErrorCodes.NOT_FOUND);
  throwsWith(() => reg.deregister('no-such-lease'), ErrorCodes.NOT_FOUND);
  throwsWith(() => reg.renew(a.id), ErrorCodes.NOT_FOUND);
  assert.equal(changes(), 3);
  // The address is free again: registering it makes a new lease.
  const a2 = reg.register(ep());
  assert.notEqual(a2.id, a.id);
  assert.equal(reg.list().length, 2);
  // A deregistered lease's old timer does not fire a spurious change.
  reg.deregister(a2.id);
  reg.deregister(b.id);
  const before = changes();
  clock.advance(60_000);
  assert.equal(changes(), before);
});

test('leases with different TTLs expire in order, each at its own time', () => {
  const { clock, reg, changes } = setup();
  const long = reg.register(ep({ address: '10.0.0.1', ttl: '5s' }));
  const short = reg.register(ep({ address: '10.0.0.2', ttl: '2s' }));
  const mid = reg.register(ep({ address: '10.0.0.3', ttl: '3s' }));
  const ids = () => reg.list().map((l) => l.id).sort();
  clock.advance(1_999);
  assert.deepEqual(ids(), [long.id, short.id, mid.id].sort());
  clock.advance(1);
  assert.deepEqual(ids(), [long.id, mid.id].sort());
  assert.equal(changes(), 4);
  clock.advance(999);
  assert.deepEqual(ids(), [long.id, mid.id].sort());
  clock.advance(1);
  assert.deepEqual(ids(), [long.id]);
  assert.equal(changes(), 5);
  clock.advance(1_999);
  assert.deepEqual(ids(), [long.id]);
  clock.advance(1);
  assert.deepEqual(ids(), []);
  assert.equal(changes(), 6);
});

test('one big clock jump expires every due lease and fires onChange once', () => {
  const { clock, reg, changes } = setup();
  reg.register(ep({ address: '10.0.0.1', ttl: '2s' }));
  reg.register(ep({ address: '10.0.0.2', ttl: '2s' }));
  reg.register(ep({ address: '10.0.0.3', ttl: '1m' }));
  const before = changes();
  clock.advance(2_000);
  assert.equal(reg.list().length, 1);
  assert.equal(changes(), before + 1);
});

test('endpoints() returns the live endpoints without lease bookkeeping', () => {
  const { reg } = setup();
  reg.register(ep({ labels: { version: 'v1' }, zone: 'z1', weight: 2, node: 'n1', ttl: '30s' }));
  assert.deepEqual(reg.endpoints(), [
    { service: 'reviews', address: '10.0.0.1', port: 50051, labels: { version: 'v1' }, zone: 'z1', weight: 2, health: 'HEALTHY' },
  ]);
  for (const e of reg.endpoints()) {
    for (const k of ['id', 'ttlMs', 'node', 'registeredAt', 'expiresAt']) assert.ok(!(k in e), `endpoints() leaks ${k}`);
  }
});

test('maxLeases is enforced for new endpoints but not for re-registrations', () => {
  const { clock, reg } = setup({ maxLeases: 2 });
  const a = reg.register(ep({ address: '10.0.0.1', ttl: '2s' }));
  reg.register(ep({ address: '10.0.0.2', ttl: '10s' }));
  throwsWith(() => reg.register(ep({ address: '10.0.0.3' })), ErrorCodes.CONFLICT);
  assert.equal(reg.list().length, 2);
  assert.equal(reg.register(ep({ address: '10.0.0.1', ttl: '2s' })).id, a.id);
  // Room frees up once a lease expires or is deregistered.
  clock.advance(2_000);
  reg.register(ep({ address: '10.0.0.3' }));
  assert.equal(reg.list().length, 2);
});

test('custom TTL bounds are enforced', () => {
  const { reg } = setup({ minTtlMs: 5_000, maxTtlMs: 20_000 });
  rejectsField(reg, ep({ ttl: '4s' }), 'ttl');
  rejectsField(reg, ep({ ttl: '21s' }), 'ttl');
  assert.equal(reg.register(ep({ ttl: '20s' })).ttlMs, 20_000);
});

test('restore keeps lease ids, gives each a full TTL from now, and skips invalid entries', () => {
  const clock = new FakeClock();
  const before = new EndpointRegistry(clock);
  const a = before.register({ service: 'reviews', address: '10.0.0.1', port: 80, labels: { version: 'v1' }, ttl: '4s' });
  const b = before.register({ service: 'reviews', address: '10.0.0.2', port: 80, ttl: '10s' });
  clock.advance(3000); // a has 1s left when the control plane "restarts"
  const saved = before.list().map(({ expiresAt: _e, ...l }) => l);
  const after = new EndpointRegistry(clock);
  const r = after.restore([...saved, { ...saved[0]!, id: 'not-a-uuid', address: 'not-an-ip' }]);
  assert.equal(r.restored, 2);
  assert.equal(r.skipped.length, 1);
  assert.match(r.skipped[0]!, /address/);
  assert.deepEqual(after.list().map((l) => l.id).sort(), [a.id, b.id].sort());
  assert.deepEqual(after.endpoints(), before.endpoints(), 'every field comes back, including empty zone and node');
  clock.advance(3999);
  assert.ok(after.list().some((l) => l.id === a.id), 'a full TTL (4s) from the restore, not the 1s it had left');
  clock.advance(1);
  assert.ok(!after.list().some((l) => l.id === a.id));
  assert.equal(after.renew(b.id).id, b.id, 'the old id still renews');
  // Re-registering the same address after a restore finds the restored lease.
  assert.equal(after.register({ service: 'reviews', address: '10.0.0.2', port: 80, ttl: '10s' }).id, b.id);
});

const SPIFFE = 'spiffe://skein.local/ns/default/sa/reviews';

test('a registration by a workload records its identity; one without (HTTP, static) has none, and a body cannot claim one', () => {
  const { reg } = setup();
  const byWorkload = reg.register(ep(), SPIFFE);
  assert.equal(byWorkload.identity, SPIFFE);
  const byOperator = reg.register(ep({ address: '10.0.0.2' }));
  assert.ok(!('identity' in byOperator));
  assert.deepEqual(reg.endpoints().map((e) => e.identity), [SPIFFE, undefined]);
  assert.ok(!('identity' in reg.endpoints()[1]!), 'no identity key at all, so JSON and translation see none');
  rejectsField(reg, ep({ address: '10.0.0.3', identity: SPIFFE }), 'identity');
});

test('re-registering with another identity (or none) is a change; the same identity is not', () => {
  const { reg, changes } = setup();
  const first = reg.register(ep(), SPIFFE);
  reg.register(ep(), SPIFFE);
  assert.equal(changes(), 1);
  assert.equal(reg.register(ep(), 'spiffe://skein.local/ns/prod/sa/reviews').id, first.id);
  assert.equal(changes(), 2);
  assert.equal(reg.endpoints()[0]!.identity, 'spiffe://skein.local/ns/prod/sa/reviews');
  reg.register(ep());
  assert.equal(changes(), 3);
  assert.equal(reg.endpoints()[0]!.identity, undefined);
});

test('the lease file keeps each lease\'s identity across a restart; a saved identity that is not a SPIFFE ID is dropped', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-leases-'));
  try {
    const clock = new FakeClock(START);
    const before = new EndpointRegistry(clock);
    before.register(ep({ ttl: '30s' }), SPIFFE);
    before.register(ep({ address: '10.0.0.2', ttl: '30s' }));
    new LeaseFile(dir, before, silentLogger()).save();
    const saved = JSON.parse(fs.readFileSync(path.join(dir, 'endpoints.json'), 'utf8')) as { leases: Record<string, unknown>[] };
    assert.deepEqual(saved.leases.map((l) => l['identity']), [SPIFFE, undefined]);

    const after = new EndpointRegistry(clock);
    new LeaseFile(dir, after, silentLogger()).load();
    assert.deepEqual(after.endpoints(), before.endpoints());

    saved.leases[0]!['identity'] = 'reviews; rm -rf /';
    const tampered = new EndpointRegistry(clock);
    tampered.restore(saved.leases as never);
    assert.deepEqual(tampered.endpoints().map((e) => e.identity), [undefined, undefined]);
    before.close(); after.close(); tampered.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('changes name the services whose endpoints changed, and endpointsOf reads one service', () => {
  const clock = new FakeClock(START);
  const reg = new EndpointRegistry(clock);
  const seen: string[][] = [];
  reg.onChange((services) => seen.push([...services].sort()));
  const a = reg.register(ep({ ttl: '2s' }));
  reg.register(ep({ service: 'ratings', address: '10.0.0.9', ttl: '5s' }));
  reg.register(ep({ ttl: '2s' })); // a renewal by registration: no change
  assert.deepEqual(reg.endpointsOf('reviews').map((e) => e.address), ['10.0.0.1']);
  assert.deepEqual(reg.endpointsOf('ratings').map((e) => e.address), ['10.0.0.9']);
  assert.deepEqual(reg.endpointsOf('nobody'), []);
  reg.deregister(a.id);
  assert.deepEqual(reg.endpointsOf('reviews'), []);
  clock.advance(5_000);
  assert.deepEqual(reg.endpointsOf('ratings'), [], 'expired');
  assert.deepEqual(seen, [['reviews'], ['ratings'], ['reviews'], ['ratings']]);
  reg.close();
});

test('the lease file is written at most once per LEASE_SAVE_INTERVAL_MS under churn, and at once after a quiet interval', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-lease-file-'));
  try {
    const clock = new FakeClock(START);
    const reg = new EndpointRegistry(clock);
    const file = new LeaseFile(dir, reg, silentLogger(), clock);
    reg.onChange(() => file.schedule());
    const saved = (): number => (fs.existsSync(path.join(dir, 'endpoints.json')) ? (JSON.parse(fs.readFileSync(path.join(dir, 'endpoints.json'), 'utf8')) as { leases: unknown[] }).leases.length : -1);
    reg.register(ep({ ttl: '300s' }));
    clock.advance(0);
    assert.equal(saved(), 1, 'the first change is written at once');
    for (let i = 2; i <= 5; i++) { reg.register(ep({ address: `10.0.0.${i}`, ttl: '300s' })); clock.advance(100); }
    assert.equal(saved(), 1, 'changes within the interval wait for its end');
    clock.advance(LEASE_SAVE_INTERVAL_MS - 400 - 1);
    assert.equal(saved(), 1);
    clock.advance(1);
    assert.equal(saved(), 5, 'written once, with all of them');
    clock.advance(LEASE_SAVE_INTERVAL_MS * 3);
    reg.register(ep({ address: '10.0.0.6', ttl: '300s' }));
    clock.advance(0);
    assert.equal(saved(), 6, 'after a quiet interval, at once again');
    reg.register(ep({ address: '10.0.0.7', ttl: '300s' }));
    file.save();
    assert.equal(saved(), 7, 'save() writes now (as on shutdown)');
    assert.equal(clock.pending(), 1, 'and cancels the scheduled write: only the leases\' expiry timer is left');
    reg.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A delta ADS client through a seeded random walk of endpoint churn, config changes and
 * (un)subscriptions: after each batch of steps, once it has ACKed everything, what it holds
 * (applying resources and removed_resources as Envoy does) is exactly what the snapshot has for
 * its subscriptions, name for name and version for version. This checks the stream's per-name
 * pushes (DeltaStream.diffNames, from the names each snapshot change touched) against the whole.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { service, startAdsPlane } from '../../support/ads-plane';
import type { AdsPlane } from '../../support/ads-plane';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { RawDeltaClient, versions } from '../../support/delta-client';
import { mulberry32 } from '../../../shared/src/prng';

const { CLUSTER: CDS, ENDPOINT: EDS, ROUTE: RDS } = TYPE_URLS;
const SERVICES = ['svc0', 'svc1', 'svc2', 'svc3', 'svc4'];

let plane: AdsPlane;
let client: RawDeltaClient;
before(async () => { plane = await startAdsPlane('skein-delta-walk-'); });
after(async () => { client?.close(); await plane.close(); });

test('a delta client under random churn and subscription changes holds exactly the snapshot', async () => {
  const { cp } = plane;
  const rand = mulberry32(2026);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const names = (): string[] => SERVICES.flatMap((s) => [s, `${s}/v1`, `${s}/v2`]).concat(['nope']);
  await plane.apply(...SERVICES.slice(0, 3).map((s) => service(s)));
  await cp.syncSnapshot();

  client = new RawDeltaClient(`127.0.0.1:${cp.xdsInsecurePort}`, 'walker');
  const held = new Map<string, Map<string, string>>([[CDS, new Map()], [EDS, new Map()]]);
  const subscribed = new Set<string>();
  client.subscribe(CDS);
  client.subscribe(EDS, ['svc0', 'svc1/v2', 'nope']);
  for (const n of ['svc0', 'svc1/v2', 'nope']) subscribed.add(n);

  /**
   * Lets the step's endpoint changes reach the snapshot, then subscribes to a route that never
   * exists (a barrier: its answer, removed_resources, comes after every earlier request was
   * handled; on another type, so it makes the stream compare nothing of CDS and EDS again), and reads and ACKs every response until the barrier was answered and both types
   * are SYNCED with nothing left to read (bounded).
   */
  const settle = async (step: number): Promise<void> => {
    await new Promise((r) => setTimeout(r, 20));
    const barrier = `barrier-${step}`;
    client.subscribe(RDS, [barrier]);
    let passed = false;
    const deadline = Date.now() + 15_000;
    for (;;) {
      while (client.pending().length > 0) {
        const r = await client.next();
        const h = held.get(r.type_url) ?? new Map<string, string>();
        // As a client does, a resource it no longer subscribes to (it crossed the unsubscribe) is ignored.
        for (const [n, v] of Object.entries(versions(r))) if (r.type_url === CDS || subscribed.has(n)) h.set(n, v);
        for (const n of r.removed_resources ?? []) { h.delete(n); if (n === barrier) passed = true; }
        client.ack(r);
      }
      const synced = [CDS, EDS].every((t) => plane.statusOf('walker', t)?.state === 'SYNCED');
      if (passed && synced && client.pending().length === 0) return;
      if (Date.now() > deadline) assert.fail(`step ${step}: not SYNCED in 15 s (${[CDS, EDS].map((t) => plane.statusOf('walker', t)?.state).join(', ')})`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const expected = (type: string, filter: (n: string) => boolean): Map<string, string> =>
    new Map([...cp.cache.all(type).values()].filter((r) => filter(r.name)).map((r) => [r.name, r.version]));

  const leases: string[] = [];
  let declared = SERVICES.slice(0, 3);
  for (let step = 1; step <= 60; step++) {
    const batch = 1 + Math.floor(rand() * 4);
    for (let i = 0; i < batch; i++) {
      const x = rand();
      if (x < 0.45) {
        const lease = cp.registry.register({ service: pick(SERVICES), address: `10.0.0.${1 + Math.floor(rand() * 4)}`, port: 8000, labels: { version: pick(['v1', 'v2']) }, ttl: '300s' });
        if (!leases.includes(lease.id)) leases.push(lease.id);
      } else if (x < 0.6 && leases.length > 0) {
        const id = leases.splice(Math.floor(rand() * leases.length), 1)[0]!;
        cp.registry.deregister(id);
      } else if (x < 0.7) {
        // The declared services change: some are added, the others deleted.
        const next = SERVICES.filter(() => rand() < 0.6);
        const gone = declared.filter((s) => !next.includes(s));
        if (next.length > 0) await plane.apply(...next.map((s) => service(s)));
        if (gone.length > 0) await cp.store.delete(gone.map((s) => `Service/${s}`), { author: 'test' });
        declared = next;
        await cp.syncSnapshot();
      } else if (x < 0.85) {
        const add = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => pick(names()));
        for (const n of add) subscribed.add(n);
        client.subscribe(EDS, add);
      } else {
        const drop = [...subscribed].filter(() => rand() < 0.3);
        for (const n of drop) { subscribed.delete(n); held.get(EDS)!.delete(n); }
        if (drop.length > 0) client.unsubscribe(EDS, drop);
      }
    }
    await settle(step);
    assert.deepEqual(held.get(CDS), expected(CDS, () => true), `step ${step}: CDS (wildcard) as the snapshot (services ${declared.join(',')})`);
    assert.deepEqual(held.get(EDS), expected(EDS, (n) => subscribed.has(n)), `step ${step}: EDS (subscribed ${[...subscribed].sort().join(',')}) as the snapshot`);
  }
});

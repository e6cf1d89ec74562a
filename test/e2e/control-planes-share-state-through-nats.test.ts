/**
 * Two real `skein control-plane --store nats://...` processes against one real nats-server
 * (issue 17 §1): a change through one is served by the other with the same resource versions,
 * concurrent changes are never lost, an outage of NATS refuses writes with 503 while both keep
 * serving, they catch up when it is back, and leases expire on both when an instance stops
 * renewing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, MESH_YAML, ratingsService, startPlane, stopPlane, tempDir } from '../support/skein';
import type { Plane } from '../support/skein';
import { writeRootCaFiles } from '../support/test-ca';
import { names, RawAdsClient } from '../support/ads-client';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import { startNatsServer } from '../support/nats-server';
import type { NatsServer } from '../support/nats-server';

const SECRET = 'not-for-logs-7f3a';
let nats: NatsServer;
let a: Plane | undefined;
let b: Plane | undefined;

before(async () => {
  nats = await startNatsServer();
  const caDir = tempDir('nats-ca');
  const { certFile, keyFile } = await writeRootCaFiles(caDir, 365 * 24 * 3600_000);
  // One CA for both (as replicas must share it): the trust bundle is part of the snapshot.
  // A's URL carries a token (the server has no auth, so it is accepted): it must never be logged.
  const args = (url: string) => ['--store', url, '--store-bucket', 'e2e', '--ca-cert', certFile, '--ca-key', keyFile, '--log-level', 'info', '--xds-insecure-listen', '127.0.0.1:0'];
  a = await startPlane({ extraArgs: args(nats.url.replace('nats://', `nats://${SECRET}@`)) });
  b = await startPlane({ extraArgs: args(nats.url) });
}, { timeout: 600_000 });

after(async () => {
  await nats?.start().catch(() => undefined);
  await stopPlane(a);
  await stopPlane(b);
  await nats?.close();
});

async function eventually<T>(fn: () => Promise<T | undefined>, what: string, boundMs = 30_000): Promise<T> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type Xds = { revision: number } & Record<string, unknown>;
/** Every resource's type, name and version in the snapshot a plane serves. */
function versions(xds: Xds): string[] {
  return Object.entries(xds).filter(([, v]) => Array.isArray(v)).flatMap(([type, list]) => (list as { name: string; version: string }[]).map((r) => `${type}/${r.name}@${r.version}`)).sort();
}

async function xdsAt(p: Plane, revision: number): Promise<Xds | undefined> {
  const r = await call(p.api, 'GET', '/v1/xds');
  return r.status === 200 && (r.body as Xds).revision === revision ? (r.body as Xds) : undefined;
}

/** What a new proxy connecting to `p` gets over ADS: its clusters and their version. */
async function served(p: Plane): Promise<{ version: string; names: string[] }> {
  const c = new RawAdsClient(p.proc.xdsInsecure!, `proxy-of-${p.api}`);
  try {
    c.subscribe(TYPE_URLS.CLUSTER);
    const r = await c.next(TYPE_URLS.CLUSTER);
    return { version: r.version_info, names: names(r) };
  } finally {
    c.close();
  }
}

function service(name: string): Record<string, unknown> {
  return { ...ratingsService(), metadata: { name } };
}

test('a change through A is served by B with the same resource versions', async () => {
  const r = await call(a!.api, 'POST', '/v1/config', { body: MESH_YAML });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const rev = r.body.revision as number;
  const fromA = await eventually(() => xdsAt(a!, rev), `A serves revision ${rev}`);
  const fromB = await eventually(() => xdsAt(b!, rev), `B serves revision ${rev}`);
  assert.ok(versions(fromA).some((v) => v.includes('reviews')), JSON.stringify(versions(fromA)));
  assert.deepEqual(versions(fromB), versions(fromA));
  // What a proxy gets over ADS from either replica: the same clusters, at the same version.
  const [adsA, adsB] = [await served(a!), await served(b!)];
  assert.ok(adsB.names.some((n) => n.startsWith('reviews')), JSON.stringify(adsB));
  assert.deepEqual(adsB, adsA);
});

test('concurrent applies through A and B: none is lost; with ?expectedRevision the loser gets 409', async () => {
  const [ra, rb] = await Promise.all([call(a!.api, 'POST', '/v1/config', { body: service('from-a') }), call(b!.api, 'POST', '/v1/config', { body: service('from-b') })]);
  assert.equal(ra.status, 201, JSON.stringify(ra.body));
  assert.equal(rb.status, 201, JSON.stringify(rb.body));
  const top = Math.max(ra.body.revision as number, rb.body.revision as number);
  for (const p of [a!, b!]) {
    const cfg = await eventually(async () => { const c = await call(p.api, 'GET', '/v1/config'); return c.body.revision === top ? c.body : undefined; }, `revision ${top}`);
    const names = (cfg.resources as { kind: string; metadata: { name: string } }[]).map((d) => d.metadata.name);
    assert.ok(names.includes('from-a') && names.includes('from-b'), JSON.stringify(names));
  }
  const [ca, cb] = await Promise.all([
    call(a!.api, 'POST', `/v1/config?expectedRevision=${top}`, { body: service('cas-a') }),
    call(b!.api, 'POST', `/v1/config?expectedRevision=${top}`, { body: service('cas-b') }),
  ]);
  assert.deepEqual([ca.status, cb.status].sort(), [201, 409], `${JSON.stringify(ca.body)} ${JSON.stringify(cb.body)}`);
  assert.equal((ca.status === 409 ? ca : cb).body.error.code, 'SKEIN_ERR_CONFLICT');
});

test('an endpoint registered through A is on B, and leaves both when it stops renewing', async () => {
  const reg = await call(a!.api, 'POST', '/v1/endpoints', { body: { service: 'reviews', address: '10.9.8.7', port: 50051, labels: { version: 'v1' }, ttl: '1s' } });
  assert.equal(reg.status, 200, JSON.stringify(reg.body));
  const has = async (p: Plane) => ((await call(p.api, 'GET', '/v1/endpoints')).body.endpoints as { address: string }[]).some((e) => e.address === '10.9.8.7');
  await eventually(async () => ((await has(b!)) ? true : undefined), 'B lists the endpoint');
  await eventually(async () => (!(await has(a!)) && !(await has(b!)) ? true : undefined), 'the lease expires on A and B', 60_000);
});

test('NATS down: writes get 503 SKEIN_ERR_STORE_UNAVAILABLE, both keep serving (a new proxy too); back up: both catch up and writes succeed', async () => {
  const before = (await call(b!.api, 'GET', '/v1/xds')).body as Xds;
  await nats.stop();
  const refused = await eventually(async () => { const r = await call(a!.api, 'POST', '/v1/config', { body: service('while-down') }); return r.status === 201 ? undefined : r; }, 'A refuses writes');
  assert.equal(refused.status, 503, JSON.stringify(refused.body));
  assert.equal(refused.body.error.code, 'SKEIN_ERR_STORE_UNAVAILABLE');
  assert.match(refused.body.error.message, /unavailable/);
  assert.ok(!JSON.stringify(refused.body).includes(SECRET), 'the error shows no credential');
  const onB = await call(b!.api, 'POST', '/v1/config', { body: service('while-down') });
  assert.equal(onB.status, 503, JSON.stringify(onB.body));
  for (const p of [a!, b!]) {
    const x = await call(p.api, 'GET', '/v1/xds');
    assert.equal(x.status, 200);
    assert.equal((x.body as Xds).revision, before.revision, 'the last snapshot is still served');
  }
  const newProxy = await served(b!);
  assert.ok(newProxy.names.some((n) => n.startsWith('reviews')), `a proxy connecting during the outage gets the snapshot: ${JSON.stringify(newProxy)}`);
  await nats.start();
  const ok = await eventually(async () => { const r = await call(b!.api, 'POST', '/v1/config', { body: service('after-outage') }); return r.status === 201 ? r : undefined; }, 'a write through B succeeds again', 60_000);
  const rev = ok.body.revision as number;
  const fromB = await eventually(() => xdsAt(b!, rev), `B serves revision ${rev}`);
  const fromA = await eventually(() => xdsAt(a!, rev), `A catches up to revision ${rev}`);
  assert.deepEqual(versions(fromA), versions(fromB));
  assert.ok(!a!.proc.logs().includes(SECRET), 'A never logs the token in its --store URL');
});

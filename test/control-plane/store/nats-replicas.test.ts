/**
 * --store-replicas against a real 3-node JetStream cluster (nats-server processes on loopback):
 * three replicas opening the store at once all succeed and leave R3 streams; an R1 store is raised
 * to 3; a replica asking for fewer keeps what is there and says so; more replicas than servers is
 * refused naming the flag; opening while the cluster is still forming waits for it. The single-server cases are in test/control-plane/cli/control-plane-command.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamManager } from '@nats-io/jetstream';
import { systemClock } from '../../../shared/src/clock';
import { MeshError } from '../../../shared/src/errors';
import type { Logger } from '../../../shared/src/log';
import { EndpointRegistry } from '../../../control-plane/src/registry/endpoint-registry';
import { NatsLeases } from '../../../control-plane/src/registry/nats-leases';
import { NatsStoreConnection } from '../../../control-plane/src/store/nats-connection';
import { parseStoreUrl } from '../../../control-plane/src/store/nats-store-url';
import { NatsRevisionLog } from '../../../control-plane/src/store/nats-revision-log';
import { startNatsCluster } from '../../support/nats-server';
import type { NatsServer } from '../../support/nats-server';

let cluster: NatsServer[] = [];
let conns: NatsStoreConnection[] = [];
let jsm: JetStreamManager;

before(async () => {
  cluster = await startNatsCluster(3);
  conns = await Promise.all(cluster.map((s) => NatsStoreConnection.open(parseStoreUrl(s.url), quiet())));
  // JetStream answers once the cluster has a meta leader (jetstreamManager asks it first).
  const deadline = Date.now() + 60_000;
  for (;;) {
    try { jsm = await jetstreamManager(conns[0]!.nc, { timeout: 2000 }); break; } catch (e) { if (Date.now() > deadline) throw e; await new Promise((r) => setTimeout(r, 200)); }
  }
}, { timeout: 600_000 });

after(async () => {
  for (const c of conns) await c.close();
  for (const s of cluster) await s.close();
});

function quiet(): Logger { return pino({ level: 'silent' }); }

/** A logger that keeps what it writes, for the warning. */
function recording(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, cb) { for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>); cb(); } });
  return { log: pino({ level: 'info' }, sink), lines: () => lines };
}

/** Opens what a control plane opens: the revision log and the lease bucket. */
async function openStore(conn: NatsStoreConnection, bucket: string, replicas: number, log: Logger = quiet()): Promise<() => Promise<void>> {
  const revisions = await NatsRevisionLog.open(conn, { bucket, historyLimit: 100, replicas, log });
  const leases = await NatsLeases.open(conn, new EndpointRegistry(systemClock), { bucket, replicas, clock: systemClock, log });
  return async () => { leases.close(); await revisions.close(); };
}

async function replicasOf(bucket: string): Promise<Record<string, { config: number; peers: number }>> {
  const out: Record<string, { config: number; peers: number }> = {};
  for (const s of [`${bucket}-revisions`, `KV_${bucket}`, `KV_${bucket}-leases`]) {
    const si = await jsm.streams.info(s);
    // The leader and the other peers (right after a raise there may be no leader yet: all are listed as replicas).
    const peers = new Set([si.cluster?.leader, ...(si.cluster?.replicas ?? []).map((r) => r.name)].filter((p) => p !== undefined && p !== ''));
    out[s] = { config: si.config.num_replicas, peers: peers.size };
  }
  return out;
}

const all = (bucket: string, n: number) => ({ [`${bucket}-revisions`]: { config: n, peers: n }, [`KV_${bucket}`]: { config: n, peers: n }, [`KV_${bucket}-leases`]: { config: n, peers: n } });

test('three replicas opening the store at once with --store-replicas 3: all succeed, every stream is on 3 peers', { timeout: 120_000 }, async () => {
  const closers = await Promise.all(conns.map((c) => openStore(c, 'at-once', 3)));
  try {
    assert.deepEqual(await replicasOf('at-once'), all('at-once', 3));
  } finally {
    for (const close of closers) await close();
  }
});

test('a store made with 1 replica is raised to 3; one opened afterwards with 1 keeps 3 and warns naming the stream and both counts', { timeout: 120_000 }, async () => {
  await (await openStore(conns[0]!, 'raise', 1))();
  assert.deepEqual(await replicasOf('raise'), all('raise', 1));
  await (await openStore(conns[1]!, 'raise', 3))();
  assert.deepEqual(await replicasOf('raise'), all('raise', 3));
  const rec = recording();
  await (await openStore(conns[2]!, 'raise', 1, rec.log))();
  assert.deepEqual(await replicasOf('raise'), all('raise', 3), 'not lowered');
  const warned = rec.lines().filter((l) => l['level'] === 40).map((l) => l['msg'] as string).sort();
  assert.deepEqual(warned, [
    'KV bucket raise has 3 replicas, --store-replicas asks for 1: kept at 3 (lower it with nats stream edit KV_raise --replicas 1 if that is meant)',
    'KV bucket raise-leases has 3 replicas, --store-replicas asks for 1: kept at 3 (lower it with nats stream edit KV_raise-leases --replicas 1 if that is meant)',
    'stream raise-revisions has 3 replicas, --store-replicas asks for 1: kept at 3 (lower it with nats stream edit raise-revisions --replicas 1 if that is meant)',
  ]);
});

test('more replicas than the cluster has servers is refused (after the start-up wait), naming --store-replicas', { timeout: 120_000 }, async () => {
  const conn = await NatsStoreConnection.open(parseStoreUrl(cluster[0]!.url), quiet(), { startWaitMs: 2000 });
  after(() => conn.close());
  await assert.rejects(openStore(conn, 'too-many', 5), (e: unknown) => e instanceof MeshError && /^--store-replicas 5: JetStream cannot keep stream too-many-revisions on 5 servers: .*insufficient resources|no suitable peers/.test(e.message));
});

test('opening while 2 of 3 servers are down (a cluster still forming) waits, saying so, and succeeds once they are back', { timeout: 180_000 }, async () => {
  await cluster[1]!.stop();
  await cluster[2]!.stop();
  const rec = recording();
  const conn = await NatsStoreConnection.open(parseStoreUrl(cluster[0]!.url), rec.log);
  after(() => conn.close());
  const opening = openStore(conn, 'no-leader-yet', 3, rec.log);
  opening.catch(() => undefined); // awaited below; not unhandled should the wait for the line fail first
  try {
    const deadline = Date.now() + 60_000;
    while (!rec.lines().some((l) => /^JetStream not ready for /.test(l['msg'] as string))) {
      if (Date.now() > deadline) throw new Error(`no "waiting" line: ${JSON.stringify(rec.lines())}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await cluster[1]!.start();
    await cluster[2]!.start();
  }
  await (await opening.catch((e: unknown) => { throw new Error(`${(e as Error).message}\n${cluster.map((c) => c.logs().slice(-3000)).join('\n----\n')}`); }))();
  assert.deepEqual(await replicasOf('no-leader-yet'), all('no-leader-yet', 3));
});

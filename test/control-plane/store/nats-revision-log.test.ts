/**
 * The NATS JetStream revision log under the shared ConfigStore, against a real nats-server:
 * replicas see each other's changes, concurrent changes are never lost, history goes past KV's
 * 64, writes fail fast while the server is down, and watches resume after restarts without
 * leaving consumers behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { systemClock } from '../../../shared/src/clock';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { silentLogger } from '../../../shared/src/log';
import type { RawResource } from '../../../shared/src/config/mesh';
import { NatsStoreConnection } from '../../../control-plane/src/store/nats-connection';
import { parseStoreUrl } from '../../../control-plane/src/store/nats-store-url';
import { NatsRevisionLog } from '../../../control-plane/src/store/nats-revision-log';
import { VersionedConfigStore } from '../../../control-plane/src/store/versioned-store';
import { startNatsServer } from '../../support/nats-server';
import type { NatsServer } from '../../support/nats-server';

let nats: NatsServer;
let bucketSeq = 0;

before(async () => { nats = await startNatsServer(); }, { timeout: 600_000 });
after(async () => { await nats?.close(); });

function service(name: string): RawResource {
  return { apiVersion: 'skein.dev/v1alpha1', kind: 'Service', metadata: { name }, spec: { ports: [{ name: 'http', port: 8080 }] } } as RawResource;
}

interface Replica { store: VersionedConfigStore; log: NatsRevisionLog; conn: NatsStoreConnection; close(): Promise<void> }

async function replica(bucket: string, historyLimit = 1000): Promise<Replica> {
  const conn = await NatsStoreConnection.open(parseStoreUrl(nats.url), silentLogger());
  const log = await NatsRevisionLog.open(conn, { bucket, historyLimit, log: silentLogger() });
  const store = new VersionedConfigStore(log, systemClock);
  return { store, log, conn, close: async () => { await store.close(); await conn.close(); } };
}

async function eventually(pred: () => boolean | Promise<boolean>, what: string, boundMs = 30_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function withReplicas(n: number, fn: (rs: Replica[], bucket: string) => Promise<void>, historyLimit?: number): Promise<void> {
  const bucket = `t${process.pid}-${++bucketSeq}`;
  const rs: Replica[] = [];
  try {
    for (let i = 0; i < n; i++) rs.push(await replica(bucket, historyLimit));
    await fn(rs, bucket);
  } finally {
    for (const r of rs) await r.close();
  }
}

const names = (r: Replica) => r.store.current().resources.map((d) => d.metadata.name).sort();

test('a change through one replica is current on the other, as the same revision', async () => {
  await withReplicas(2, async ([a, b]) => {
    const r = await a!.store.apply([service('reviews')], { author: 'test' });
    assert.equal(r.revision, 1);
    assert.equal(a!.store.current().revision, 1, 'read-your-writes: the writer sees its revision when apply answers');
    await eventually(() => b!.store.current().revision === 1, 'B sees revision 1');
    assert.deepEqual(b!.store.current(), a!.store.current());
  });
});

test('concurrent changes through two replicas: none is lost; with expectedRevision the loser gets CONFLICT', async () => {
  await withReplicas(2, async ([a, b], bucket) => {
    const results = await Promise.all([a!.store.apply([service('from-a')]), b!.store.apply([service('from-b')])]);
    assert.deepEqual(results.map((r) => r.revision).sort(), [1, 2]);
    await eventually(() => a!.store.current().revision === 2 && b!.store.current().revision === 2, 'both at revision 2');
    assert.deepEqual(names(a!), ['from-a', 'from-b']);
    assert.deepEqual(names(b!), ['from-a', 'from-b']);

    const settled = await Promise.allSettled([a!.store.apply([service('cas-a')], { expectedRevision: 2 }), b!.store.apply([service('cas-b')], { expectedRevision: 2 })]);
    const ok = settled.filter((s) => s.status === 'fulfilled');
    const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    assert.equal(ok.length, 1, `exactly one CAS wins: ${JSON.stringify(settled.map((s) => s.status))}`);
    assert.ok(failed[0]!.reason instanceof MeshError && failed[0]!.reason.code === ErrorCodes.CONFLICT, String(failed[0]!.reason));
    await eventually(() => a!.store.current().revision === 3 && b!.store.current().revision === 3, 'both at revision 3');
    assert.equal(names(a!).filter((n) => n.startsWith('cas-')).length, 1);
    const kv = await new Kvm(jetstream(a!.conn.nc)).open(bucket);
    await eventually(async () => (await kv.get('current'))?.json<{ revision: number }>().revision === 3, 'KV <bucket>/current mirrors revision 3');
  });
});

test('a change through B with the expectedRevision just written through A is judged on that revision, never a spurious CONFLICT', async () => {
  await withReplicas(2, async ([a, b]) => {
    for (let i = 1; i <= 20; i++) {
      const r = await a!.store.apply([service(`a${i}`)]);
      // B may not have received it yet: it must catch up before it compares.
      const rb = await b!.store.apply([service(`b${i}`)], { expectedRevision: r.revision });
      assert.equal(rb.revision, r.revision + 1);
      assert.ok(names(b!).includes(`a${i}`), 'built on the revision it named');
    }
  });
});

test('history goes beyond 64 revisions (KV history is capped there), and rollback to the first works', async () => {
  await withReplicas(2, async ([a, b]) => {
    for (let i = 1; i <= 70; i++) await a!.store.apply([service(`s${i}`)], { mode: 'replace' });
    await eventually(() => b!.store.current().revision === 70, 'B at revision 70');
    assert.equal((await b!.store.revisions()).length, 70);
    assert.deepEqual((await b!.store.revision(1)).resources.map((d) => d.metadata.name), ['s1']);
    const r = await b!.store.rollback(1);
    assert.equal(r.revision, 71);
    await eventually(() => a!.store.current().revision === 71, 'A at revision 71');
    assert.deepEqual(names(a!), ['s1']);
  });
});

test('the stream keeps --history-limit revisions', async () => {
  await withReplicas(1, async ([a]) => {
    for (let i = 1; i <= 8; i++) await a!.store.apply([service(`s${i}`)], { mode: 'replace' });
    assert.deepEqual((await a!.store.revisions()).map((m) => m.revision), [4, 5, 6, 7, 8]);
    await assert.rejects(a!.store.revision(2), (e: unknown) => e instanceof MeshError && e.code === ErrorCodes.NOT_FOUND);
  }, 5);
});

test('nats-server down: writes fail at once with STORE_UNAVAILABLE, reads serve the last revision; back up: watches resume, with no consumer left behind', async () => {
  await withReplicas(2, async ([a, b], bucket) => {
    await a!.store.apply([service('before')]);
    await eventually(() => b!.store.current().revision === 1, 'B at revision 1');
    for (let round = 1; round <= 3; round++) {
      await nats.stop();
      await eventually(() => !a!.conn.available, 'A notices the outage');
      await assert.rejects(a!.store.apply([service(`down-${round}`)]), (e: unknown) => e instanceof MeshError && e.code === ErrorCodes.STORE_UNAVAILABLE && /unavailable/.test(e.message));
      assert.equal(a!.store.current().revision, round, 'the last revision is still served');
      await nats.start();
      await eventually(() => a!.conn.available && b!.conn.available, 'both reconnected');
      const r = await a!.store.apply([service(`after-${round}`)]);
      assert.equal(r.revision, round + 1);
      await eventually(() => b!.store.current().revision === round + 1, `B follows to revision ${round + 1} after restart ${round}`);
    }
    const probe = await NatsStoreConnection.open(parseStoreUrl(nats.url), silentLogger());
    try {
      const jsm = await jetstreamManager(probe.nc);
      const count = async () => { let n = 0; for await (const _c of jsm.consumers.list(`${bucket}-revisions`)) n++; return n; };
      await eventually(async () => (await count()) <= 2, 'at most one consumer per replica on the revision stream', 60_000);
    } finally {
      await probe.close();
    }
  });
});

/**
 * The embedded config store: VersionedConfigStore over FileRevisionLog, driven by a FakeClock.
 * Every test gets its own temp data directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { FakeClock } from '../../shared/src/clock';
import { ErrorCodes, MeshError } from '../../shared/src/errors';
import type { ErrorCode } from '../../shared/src/errors';
import type { RawResource } from '../../shared/src/config/mesh';
import { FileRevisionLog } from '../../control-plane/src/store/file-revision-log';
import { VersionedConfigStore } from '../../control-plane/src/store/versioned-store';
import type { Revision } from '../../control-plane/src/store/config-store';

const API = 'skein.dev/v1alpha1';
const START = Date.UTC(2026, 0, 1);

function service(name = 'reviews', extra: Record<string, unknown> = {}): RawResource {
  return {
    apiVersion: API, kind: 'Service', metadata: { name },
    spec: { ports: [{ name: 'grpc', port: 50051 }], subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }], ...extra },
  };
}

function route(w1 = 90, w2 = 10, name = 'reviews'): RawResource {
  return {
    apiVersion: API, kind: 'GRPCRoute', metadata: { name },
    spec: { parentRefs: [{ name: 'reviews' }], rules: [{ backendRefs: [{ name: 'reviews', subset: 'v1', weight: w1 }, { name: 'reviews', subset: 'v2', weight: w2 }] }] },
  };
}

interface Ctx { dir: string; clock: FakeClock; log: FileRevisionLog; store: VersionedConfigStore }

/** Runs `fn` with a fresh data dir and store; always closes the store and removes the dir. */
async function withStore(fn: (c: Ctx) => Promise<void>, opts: { historyLimit?: number } = {}): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-store-test-'));
  const clock = new FakeClock(START);
  let store: VersionedConfigStore | undefined;
  try {
    const log = await FileRevisionLog.open(dir, opts);
    store = new VersionedConfigStore(log, clock);
    await fn({ dir, clock, log, store });
  } finally {
    await store?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-store-test-'));
  try { await fn(dir); } finally { fs.rmSync(dir, { recursive: true, force: true }); }
}

function revFiles(dir: string): string[] { return fs.readdirSync(path.join(dir, 'revisions')).sort(); }

/** Asserts `p` rejects with a MeshError of `code`; returns the error for further checks. */
async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<MeshError> {
  let caught: unknown;
  try { await p; } catch (e) { caught = e; }
  assert.ok(caught instanceof MeshError, `expected a MeshError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

function keys(rev: Revision): string[] { return rev.resources.map((r) => `${r.kind}/${r.metadata.name}`); }

function spawnSleeper(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(()=>{},30000)'], { stdio: 'ignore' });
  return new Promise((resolve, reject) => { child.once('spawn', () => resolve(child)); child.once('error', reject); });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

test('an empty store is revision 0 with no resources and no history', async () => {
  await withStore(async ({ store, dir }) => {
    const cur = store.current();
    assert.equal(cur.revision, 0);
    assert.deepEqual(cur.resources, []);
    assert.deepEqual(await store.revisions(), []);
    assert.deepEqual(revFiles(dir), []);
  });
});

test('apply creates revision 1 with author, message, createdAt from the clock, and a summary', async () => {
  await withStore(async ({ store, clock, dir }) => {
    clock.advance(5_000);
    const res = await store.apply([service(), route()], { author: 'alice', message: 'initial' });
    assert.deepEqual(res, { revision: 1, dryRun: false, changed: true, diff: [{ key: 'GRPCRoute/reviews', op: 'added' }, { key: 'Service/reviews', op: 'added' }] });
    const cur = store.current();
    assert.equal(cur.revision, 1);
    assert.equal(cur.author, 'alice');
    assert.equal(cur.message, 'initial');
    assert.equal(cur.createdAt, new Date(START + 5_000).toISOString());
    assert.deepEqual(cur.summary, { added: ['GRPCRoute/reviews', 'Service/reviews'], changed: [], removed: [] });
    assert.deepEqual(cur.resources, [route(), service()]); // sorted by Kind/name, exactly as applied
    assert.deepEqual(revFiles(dir), ['0000000001.json']);
    const metas = await store.revisions();
    assert.deepEqual(metas.map((m) => m.revision), [1]);
    assert.equal((metas[0] as unknown as Record<string, unknown>)['resources'], undefined, 'list() returns metadata only');
    assert.deepEqual(await store.revision(1), cur);

    clock.advance(60_000);
    await store.apply([service('ratings')], { author: 'bob' });
    assert.equal(store.current().createdAt, new Date(START + 65_000).toISOString());
    assert.equal(store.current().author, 'bob');
    assert.equal(store.current().message, 'apply');
  });
});

test('merge mode (the default) upserts the given documents and keeps the others', async () => {
  await withStore(async ({ store }) => {
    await store.apply([service(), route()]);
    const res = await store.apply([route(50, 50), service('ratings')]);
    assert.equal(res.revision, 2);
    assert.deepEqual(res.diff.map((d) => [d.key, d.op]), [['GRPCRoute/reviews', 'changed'], ['Service/ratings', 'added']]);
    assert.deepEqual(keys(store.current()), ['GRPCRoute/reviews', 'Service/ratings', 'Service/reviews']);
    assert.deepEqual(store.current().resources[0], route(50, 50));
    assert.deepEqual(store.current().summary, { added: ['Service/ratings'], changed: ['GRPCRoute/reviews'], removed: [] });
  });
});

test('replace mode makes the given documents the whole config, deleting absent ones', async () => {
  await withStore(async ({ store }) => {
    await store.apply([service(), route(), service('ratings')]);
    const res = await store.apply([service(), service('details')], { mode: 'replace' });
    assert.equal(res.revision, 2);
    assert.deepEqual(keys(store.current()), ['Service/details', 'Service/reviews']);
    assert.deepEqual(store.current().summary, { added: ['Service/details'], changed: [], removed: ['GRPCRoute/reviews', 'Service/ratings'] });
  });
});

test('re-applying identical documents is a no-op: changed=false and no new revision', async () => {
  await withStore(async ({ store, dir, clock }) => {
    await store.apply([service(), route()]);
    clock.advance(1_000);
    const res = await store.apply([route(), service()]);
    assert.deepEqual(res, { revision: 1, dryRun: false, changed: false, diff: [] });
    const replaced = await store.apply([service(), route()], { mode: 'replace' });
    assert.equal(replaced.changed, false);
    assert.equal(store.current().revision, 1);
    assert.deepEqual((await store.revisions()).map((m) => m.revision), [1]);
    assert.deepEqual(revFiles(dir), ['0000000001.json']);
  });
});

test('a dry run returns the field-level diff and stores nothing', async () => {
  await withStore(async ({ store, dir }) => {
    await store.apply([service(), route()]);
    const before = structuredClone(store.current());
    const res = await store.apply([route(80, 20)], { dryRun: true });
    assert.equal(res.dryRun, true);
    assert.equal(res.changed, true);
    assert.equal(res.revision, 1);
    assert.equal(res.diff.length, 1);
    const change = res.diff[0]!;
    assert.equal(change.key, 'GRPCRoute/reviews');
    assert.equal(change.op, 'changed');
    assert.deepEqual(change.fields, [
      { path: 'spec.rules[0].backendRefs[0].weight', op: 'changed', from: 90, to: 80 },
      { path: 'spec.rules[0].backendRefs[1].weight', op: 'changed', from: 10, to: 20 },
    ]);
    assert.deepEqual(store.current(), before);
    assert.deepEqual(revFiles(dir), ['0000000001.json']);
    assert.deepEqual((await store.revisions()).map((m) => m.revision), [1]);

    // Added and removed fields are reported too.
    const svc = await store.apply([service('reviews', { protocol: 'grpc' })], { dryRun: true });
    assert.deepEqual(svc.diff, [{ key: 'Service/reviews', op: 'changed', fields: [{ path: 'spec.protocol', op: 'added', to: 'grpc' }] }]);
    // A dry run of a no-op reports changed=false.
    assert.deepEqual(await store.apply([service()], { dryRun: true }), { revision: 1, dryRun: true, changed: false, diff: [] });
    assert.equal(store.current().revision, 1);
  });
});

test('invalid config throws VALIDATION naming the field, and the revision and files are unchanged', async () => {
  await withStore(async ({ store, dir }) => {
    await store.apply([service(), route()]);
    const files = revFiles(dir);
    const before = structuredClone(store.current());

    // Per-document error: bad port.
    const badPort = service();
    (badPort.spec as { ports: { name: string; port: number }[] }).ports[0]!.port = 70000;
    const e1 = await rejectsWith(store.apply([badPort]), ErrorCodes.VALIDATION);
    assert.ok(e1.details.some((d) => d.resource === 'Service/reviews' && d.path === 'spec.ports[0].port'), JSON.stringify(e1.details));

    // Cross-reference error: unknown subset.
    const badRef = route();
    (badRef.spec as { rules: { backendRefs: { subset: string }[] }[] }).rules[0]!.backendRefs[1]!.subset = 'v3';
    const e2 = await rejectsWith(store.apply([badRef]), ErrorCodes.VALIDATION);
    assert.ok(e2.details.some((d) => d.resource === 'GRPCRoute/reviews' && d.path === 'spec.rules[0].backendRefs[1].subset'), JSON.stringify(e2.details));

    // Replace that would orphan the route, and an empty body.
    await rejectsWith(store.apply([route()], { mode: 'replace' }), ErrorCodes.VALIDATION);
    await rejectsWith(store.apply([]), ErrorCodes.VALIDATION);
    // Invalid even as a dry run.
    await rejectsWith(store.apply([badPort], { dryRun: true }), ErrorCodes.VALIDATION);

    assert.deepEqual(store.current(), before);
    assert.deepEqual(revFiles(dir), files);
    assert.deepEqual((await store.revisions()).map((m) => m.revision), [1]);
  });
});

test('duplicate documents in one apply are rejected', async () => {
  await withStore(async ({ store, dir }) => {
    const e = await rejectsWith(store.apply([service(), service()]), ErrorCodes.VALIDATION);
    assert.ok(e.details.some((d) => d.resource === 'Service/reviews' && d.path === 'metadata.name' && /duplicate/.test(d.message)), JSON.stringify(e.details));
    assert.equal(store.current().revision, 0);
    assert.deepEqual(revFiles(dir), []);
  });
});

test('deleting a Service a route references is rejected, naming the route field', async () => {
  await withStore(async ({ store, dir }) => {
    await store.apply([service(), route()]);
    const e = await rejectsWith(store.delete(['Service/reviews']), ErrorCodes.VALIDATION);
    assert.ok(e.details.some((d) => d.resource === 'GRPCRoute/reviews' && d.path === 'spec.parentRefs[0].name'), JSON.stringify(e.details));
    assert.ok(e.details.some((d) => d.resource === 'GRPCRoute/reviews' && d.path === 'spec.rules[0].backendRefs[0].name'), JSON.stringify(e.details));
    assert.equal(store.current().revision, 1);
    assert.deepEqual(revFiles(dir), ['0000000001.json']);

    // Deleting both together is fine.
    const res = await store.delete(['GRPCRoute/reviews', 'Service/reviews'], { author: 'carol' });
    assert.equal(res.revision, 2);
    assert.deepEqual(store.current().resources, []);
    assert.deepEqual(store.current().summary, { added: [], changed: [], removed: ['GRPCRoute/reviews', 'Service/reviews'] });
    assert.equal(store.current().author, 'carol');
  });
});

test('deleting a missing resource is NOT_FOUND and changes nothing', async () => {
  await withStore(async ({ store }) => {
    await store.apply([service(), service('ratings')]);
    const e = await rejectsWith(store.delete(['Service/ratings', 'Service/nope']), ErrorCodes.NOT_FOUND);
    assert.match(e.message, /Service\/nope/);
    assert.equal(store.current().revision, 1);
    assert.deepEqual(keys(store.current()), ['Service/ratings', 'Service/reviews']);
  });
});

test('expectedRevision mismatch is CONFLICT for every kind of change; a match succeeds', async () => {
  await withStore(async ({ store }) => {
    await store.apply([service()]);
    await store.apply([service('ratings')]);
    await rejectsWith(store.apply([service('details')], { expectedRevision: 1 }), ErrorCodes.CONFLICT);
    await rejectsWith(store.delete(['Service/ratings'], { expectedRevision: 1 }), ErrorCodes.CONFLICT);
    await rejectsWith(store.update((d) => [...d], { expectedRevision: 3 }), ErrorCodes.CONFLICT);
    await rejectsWith(store.rollback(1, { expectedRevision: 0 }), ErrorCodes.CONFLICT);
    assert.equal(store.current().revision, 2);
    const ok = await store.apply([service('details')], { expectedRevision: 2 });
    assert.equal(ok.revision, 3);
  });
});

test('rollback(n) creates a new revision equal to revision n, with a message naming the rollback', async () => {
  await withStore(async ({ store, clock }) => {
    await store.apply([service(), route()]);
    await store.apply([route(50, 50), service('ratings')]);
    await store.apply([route(0, 100)]);
    const r1 = await store.revision(1);
    clock.advance(10_000);
    const res = await store.rollback(1, { author: 'sre' });
    assert.equal(res.revision, 4);
    assert.equal(res.changed, true);
    const cur = store.current();
    assert.equal(cur.revision, 4);
    assert.deepEqual(cur.resources, r1.resources);
    assert.match(cur.message, /rollback/);
    assert.match(cur.message, /\b1\b/);
    assert.equal(cur.author, 'sre');
    assert.equal(cur.createdAt, new Date(START + 10_000).toISOString());
    assert.deepEqual(cur.summary, { added: [], changed: ['GRPCRoute/reviews'], removed: ['Service/ratings'] });
    // History is append-only: revision 3 is still there.
    assert.deepEqual((await store.revisions()).map((m) => m.revision), [1, 2, 3, 4]);
    assert.deepEqual((await store.revision(3)).resources[0], route(0, 100));
  });
});

test('rollback to a missing revision is NOT_FOUND', async () => {
  await withStore(async ({ store }) => {
    await store.apply([service()]);
    await rejectsWith(store.rollback(7), ErrorCodes.NOT_FOUND);
    await rejectsWith(store.revision(7), ErrorCodes.NOT_FOUND);
    assert.equal(store.current().revision, 1);
  });
});

test('update(fn) applies a function to a copy of the current documents', async () => {
  await withStore(async ({ store }) => {
    await store.apply([service(), route()]);
    const res = await store.update((docs) => docs.map((d) => (d.kind === 'GRPCRoute' ? route(50, 50) : d)), { message: 'canary 50%' });
    assert.equal(res.revision, 2);
    assert.deepEqual(res.diff[0]?.fields?.map((f) => [f.path, f.from, f.to]), [
      ['spec.rules[0].backendRefs[0].weight', 90, 50],
      ['spec.rules[0].backendRefs[1].weight', 10, 50],
    ]);
    assert.equal(store.current().message, 'canary 50%');
    assert.deepEqual(store.current().resources[0], route(50, 50));

    // A function that mutates its input into an invalid config is rejected and leaves current() intact.
    await rejectsWith(store.update((docs) => {
      const out = docs as RawResource[];
      (out[0]!.spec as { rules: { backendRefs: { weight: number }[] }[] }).rules[0]!.backendRefs[0]!.weight = -1;
      return out;
    }), ErrorCodes.VALIDATION);
    assert.equal(store.current().revision, 2);
    assert.deepEqual(store.current().resources[0], route(50, 50));
  });
});

test('documents are copied on apply: mutating the caller\'s objects later does not change the store', async () => {
  await withStore(async ({ store }) => {
    const r = route();
    await store.apply([service(), r]);
    (r.spec as { rules: { backendRefs: { weight: number }[] }[] }).rules[0]!.backendRefs[0]!.weight = 1;
    assert.deepEqual(store.current().resources[0], route());
  });
});

test('persistence: closing and reopening the directory restores head, resources and history', async () => {
  await withDir(async (dir) => {
    const clock = new FakeClock(START);
    const s1 = new VersionedConfigStore(await FileRevisionLog.open(dir), clock);
    await s1.apply([service(), route()], { author: 'a', message: 'one' });
    clock.advance(1_000);
    await s1.apply([route(70, 30)], { author: 'b', message: 'two' });
    await s1.delete(['GRPCRoute/reviews']);
    const head = structuredClone(s1.current());
    const list = await s1.revisions();
    const r2 = await s1.revision(2);
    await s1.close();
    assert.equal(fs.existsSync(path.join(dir, 'LOCK')), false, 'close() releases the lock');

    const s2 = new VersionedConfigStore(await FileRevisionLog.open(dir), new FakeClock(START + 99_000));
    try {
      assert.equal(s2.current().revision, 3);
      assert.deepEqual(s2.current(), head);
      assert.deepEqual(await s2.revisions(), list);
      assert.deepEqual(await s2.revision(2), r2);
      // And it continues from there.
      const res = await s2.apply([service('ratings')]);
      assert.equal(res.revision, 4);
      assert.equal(s2.current().createdAt, new Date(START + 99_000).toISOString());
    } finally {
      await s2.close();
    }
  });
});

test('open fails with STORE_LOCKED while a live process holds the LOCK', async () => {
  await withDir(async (dir) => {
    const child = await spawnSleeper();
    try {
      assert.ok(typeof child.pid === 'number');
      fs.writeFileSync(path.join(dir, 'LOCK'), `${child.pid}\n`);
      const e = await rejectsWith(FileRevisionLog.open(dir), ErrorCodes.STORE_LOCKED);
      assert.match(e.message, new RegExp(String(child.pid)));
      assert.equal(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8').trim(), String(child.pid), 'the lock is not stolen');
    } finally {
      child.kill('SIGKILL');
      await exited(child);
    }
  });
});

test('a stale LOCK left by an exited process is taken over', async () => {
  await withDir(async (dir) => {
    const child = await spawnSleeper();
    const pid = child.pid!;
    child.kill('SIGKILL');
    await exited(child);
    fs.writeFileSync(path.join(dir, 'LOCK'), `${pid}\n`);
    const log = await FileRevisionLog.open(dir);
    try {
      assert.equal(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8').trim(), String(process.pid));
    } finally {
      await log.close();
    }
    assert.equal(fs.existsSync(path.join(dir, 'LOCK')), false);
  });
});

test('applies leave no temp files in revisions/, even when an append fails', async () => {
  await withStore(async ({ store, dir }) => {
    await store.apply([service()]);
    await store.apply([service('ratings')]);
    await store.apply([service('details')]);
    assert.deepEqual(revFiles(dir), ['0000000001.json', '0000000002.json', '0000000003.json']);

    // Another writer already created revision 4: the append must not clobber it.
    const foreign = path.join(dir, 'revisions', '0000000004.json');
    fs.writeFileSync(foreign, 'foreign');
    await rejectsWith(store.apply([service('other')]), ErrorCodes.CONFLICT);
    assert.equal(fs.readFileSync(foreign, 'utf8'), 'foreign');
    assert.equal(store.current().revision, 3);
    assert.deepEqual(revFiles(dir), ['0000000001.json', '0000000002.json', '0000000003.json', '0000000004.json']);
  });
});

test('historyLimit prunes the oldest revision files and list()', async () => {
  await withStore(async ({ store, dir }) => {
    for (const name of ['a', 'b', 'c', 'd', 'e']) await store.apply([service(name)]);
    assert.equal(store.current().revision, 5);
    assert.deepEqual(revFiles(dir), ['0000000003.json', '0000000004.json', '0000000005.json']);
    assert.deepEqual((await store.revisions()).map((m) => m.revision), [3, 4, 5]);
    await rejectsWith(store.revision(2), ErrorCodes.NOT_FOUND);
    await rejectsWith(store.rollback(1), ErrorCodes.NOT_FOUND);
    const r3 = await store.revision(3);
    assert.deepEqual(keys(r3), ['Service/a', 'Service/b', 'Service/c']);
    assert.deepEqual(keys(store.current()), ['Service/a', 'Service/b', 'Service/c', 'Service/d', 'Service/e']);
  }, { historyLimit: 3 });
});

test('concurrent applies are serialized into consecutive revisions with no lost update', async () => {
  await withStore(async ({ store }) => {
    await store.apply([service(), route()]);
    const names = ['s1', 's2', 's3', 's4', 's5', 's6'];
    const results = await Promise.all([
      ...names.map((n) => store.apply([service(n)])),
      store.update((docs) => docs.map((d) => (d.kind === 'GRPCRoute' ? route(60, 40) : d))),
    ]);
    assert.deepEqual(results.map((r) => r.revision).sort((a, b) => a - b), [2, 3, 4, 5, 6, 7, 8]);
    assert.ok(results.every((r) => r.changed && r.diff.length === 1));
    const cur = store.current();
    assert.equal(cur.revision, 8);
    assert.deepEqual(keys(cur), ['GRPCRoute/reviews', 'Service/reviews', ...names.map((n) => `Service/${n}`)]);
    assert.deepEqual(cur.resources[0], route(60, 40));
    assert.deepEqual((await store.revisions()).map((m) => m.revision), [1, 2, 3, 4, 5, 6, 7, 8]);
    // Each revision adds exactly one thing on top of the previous one.
    for (let n = 2; n <= 8; n++) {
      const prev = await store.revision(n - 1);
      const rev = await store.revision(n);
      assert.equal(rev.summary.added.length + rev.summary.changed.length, 1);
      for (const k of keys(prev)) assert.ok(keys(rev).includes(k), `revision ${n} lost ${k}`);
    }
  });
});

test('a failing change does not block the changes queued after it', async () => {
  await withStore(async ({ store }) => {
    const [bad, good] = await Promise.allSettled([store.apply([route()]), store.apply([service()])]);
    assert.equal(bad.status, 'rejected');
    assert.equal(good.status, 'fulfilled');
    assert.equal(store.current().revision, 1);
  });
});

test('watch() yields the current revision first, then each new one, until aborted', async () => {
  await withStore(async ({ store }) => {
    await store.apply([service()]);
    const ac = new AbortController();
    const it = store.watch(ac.signal)[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.done, false);
    assert.equal((first.value as Revision).revision, 1);

    const pending = it.next();
    await store.apply([service('ratings')]);
    const second = await pending;
    assert.equal(second.done, false);
    assert.equal((second.value as Revision).revision, 2);
    assert.deepEqual(keys(second.value as Revision), ['Service/ratings', 'Service/reviews']);

    // A no-op or failed change produces nothing; the next real one does.
    await store.apply([service()]);
    await store.apply([route()], { dryRun: true });
    const third = it.next();
    await store.delete(['Service/ratings']);
    assert.equal(((await third).value as Revision).revision, 3);

    const blocked = it.next();
    ac.abort();
    assert.deepEqual(await blocked, { done: true, value: undefined });
  });
});

test('watch() coalesces: a slow reader sees the latest revision', async () => {
  await withStore(async ({ store }) => {
    const ac = new AbortController();
    const it = store.watch(ac.signal)[Symbol.asyncIterator]();
    assert.equal(((await it.next()).value as Revision).revision, 0);
    await store.apply([service('a')]);
    await store.apply([service('b')]);
    await store.apply([service('c')]);
    assert.equal(((await it.next()).value as Revision).revision, 3);
    ac.abort();
    assert.equal((await it.next()).done, true);
  });
});

test('a corrupt revision file makes open() fail with STORE naming the file', async () => {
  await withDir(async (dir) => {
    const s = new VersionedConfigStore(await FileRevisionLog.open(dir), new FakeClock(START));
    await s.apply([service()]);
    await s.apply([service('ratings')]);
    await s.close();
    const file = path.join(dir, 'revisions', '0000000002.json');
    const text = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, text.slice(0, Math.floor(text.length / 2))); // torn write
    const e = await rejectsWith(FileRevisionLog.open(dir), ErrorCodes.STORE);
    assert.ok(e.message.includes(file), e.message);

    // A file whose content is another revision is also refused.
    fs.writeFileSync(file, fs.readFileSync(path.join(dir, 'revisions', '0000000001.json')));
    const e2 = await rejectsWith(FileRevisionLog.open(dir), ErrorCodes.STORE);
    assert.ok(e2.message.includes(file), e2.message);

    // Valid JSON that is not a revision object at all.
    fs.writeFileSync(file, 'null\n');
    const e3 = await rejectsWith(FileRevisionLog.open(dir), ErrorCodes.STORE);
    assert.ok(e3.message.includes(file), e3.message);
  });
});

test('a failed open() does not leave the directory locked', async () => {
  await withDir(async (dir) => {
    fs.mkdirSync(path.join(dir, 'revisions'));
    fs.writeFileSync(path.join(dir, 'revisions', '0000000001.json'), '{not json');
    await rejectsWith(FileRevisionLog.open(dir), ErrorCodes.STORE);
    assert.equal(fs.existsSync(path.join(dir, 'LOCK')), false);
  });
});

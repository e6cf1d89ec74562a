/**
 * HeapTrimmer (sidecar/src/runtime/heap-trim.ts) on an injected clock: one collection after
 * start-up whatever the traffic, then one per idle stretch, and none when little is free. And
 * V8's collection itself, taken without --expose-gc, really runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../shared/src/clock';
import { silentLogger } from '../../../shared/src/log';
import { HEAP_TRIM_MIN_SLACK_BYTES, HeapTrimmer, heapTrimGc } from '../../../sidecar/src/runtime/heap-trim';

const MiB = 1024 * 1024;

test('trims after start-up, then only after a stretch with no request, and only when enough heap is free', () => {
  const clock = new FakeClock();
  let requests = 0;
  let gcs = 0;
  let heap = { total: 60 * MiB, used: 20 * MiB };
  const t = new HeapTrimmer({ clock, idleMs: 10_000, log: silentLogger(), activity: () => requests, gc: () => { gcs++; heap = { total: heap.used + MiB, used: heap.used }; }, heap: () => heap });
  t.start();
  requests = 500; // busy from the start
  clock.advance(9_999);
  assert.equal(gcs, 0);
  clock.advance(1);
  assert.equal(gcs, 1, 'start-up garbage goes 10 s in, even under traffic');
  heap = { total: 50 * MiB, used: 20 * MiB };
  requests = 900;
  clock.advance(10_000);
  assert.equal(gcs, 1, 'requests in the last stretch: no collection');
  clock.advance(10_000);
  assert.equal(gcs, 2, 'a stretch with none: collected');
  clock.advance(30_000);
  assert.equal(gcs, 2, 'still idle, but nothing left to give back');
  heap = { total: 20 * MiB + HEAP_TRIM_MIN_SLACK_BYTES - 1, used: 20 * MiB };
  clock.advance(10_000);
  assert.equal(gcs, 2, 'under HEAP_TRIM_MIN_SLACK_BYTES free: not worth it');
  assert.equal(t.trims, 2);
  t.close();
  assert.equal(clock.pending(), 0, 'close cancels the timer');
});

test('V8\'s full collection is reachable without --expose-gc, and frees what nothing holds', () => {
  const gc = heapTrimGc();
  assert.equal(typeof gc, 'function');
  assert.equal((globalThis as { gc?: unknown }).gc, undefined, 'no global gc in this context');
  let junk: unknown[] | null = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
  const held = process.memoryUsage().heapUsed;
  junk = null;
  gc();
  assert.equal(junk, null);
  assert.ok(process.memoryUsage().heapUsed < held - 5 * MiB, 'the garbage was collected');
});

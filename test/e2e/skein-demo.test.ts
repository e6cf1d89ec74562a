import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { SKEIN_MAIN } from '../../harness/src/control-plane-process';
import { sleep } from '../../cli/src/demo/sleep';

test('the demo loop\'s sleep leaves no abort listener behind (20 sleeps on one signal), and an abort ends it', async () => {
  const stop = new AbortController();
  for (let i = 0; i < 20; i++) await sleep(1, stop.signal);
  assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
  const pending = sleep(60_000, stop.signal);
  assert.equal(getEventListeners(stop.signal, 'abort').length, 1);
  stop.abort();
  await pending;
  assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
});

/** The README's main job must keep working: `skein demo --duration N` runs and exits 0. */
test('skein demo --duration 6: a sidecar mesh that routes, shows live stats, shifts the weights half-way, and exits 0', () => {
  const r = spawnSync(process.execPath, [SKEIN_MAIN, 'demo', '--duration', '6'], { encoding: 'utf8', timeout: 90_000 });
  assert.equal(r.status, 0, `exit ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  // The first impression: no process warning (MaxListenersExceededWarning, deprecations, ...) on stderr.
  assert.doesNotMatch(r.stderr, /Warning/, `the demo printed a process warning:\n${r.stderr}`);
  assert.match(r.stdout, />>> shifted weights through the API: skein canary greeter v1=50 v2=50/);
  const phases = [...r.stdout.matchAll(/^(v1=\d+ v2=\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$/gm)].map((m) => ({ weights: m[1], calls: Number(m[2]), errors: Number(m[3]), v2: Number(m[5]) }));
  assert.equal(phases.length, 2, r.stdout);
  for (const p of phases) { assert.ok(p.calls > 0); assert.equal(p.errors, 0); }
  assert.ok(phases[0]!.v2 < phases[1]!.v2, `v2 share rises after the shift: ${JSON.stringify(phases)}`);
  // Every sidecar (three instances and the client app's) has ACKed the current config.
  for (const node of ['client-app', 'greeter-v1-a', 'greeter-v1-b', 'greeter-v2-a']) assert.match(r.stdout, new RegExp(`${node}\\s+SYNCED`));
  // STRICT mTLS by default: each server sidecar has the greeter identity and a STRICT inbound port.
  for (const node of ['greeter-v1-a', 'greeter-v1-b', 'greeter-v2-a']) assert.match(r.stdout, new RegExp(`${node}\\s+spiffe://skein\\.local/ns/default/sa/greeter\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\s+STRICT`));
  assert.match(r.stdout, /client-app\s+spiffe:\/\/skein\.local\/ns\/default\/sa\/frontend\s/);
  // skein check's verdict on the demo mesh: STRICT, fresh certificates, every proxy synced.
  assert.match(r.stdout, /^skein check: 0 errors, 0 warnings$/m);
  // The live table comes from the client sidecar's /stats: both versions appear with rates and percentiles.
  assert.match(r.stdout, /GRPCRoute\/greeter\/split\s+greeter\/v1\s+[\d.]+\s+100\.0%/);
  assert.match(r.stdout, /GRPCRoute\/greeter\/split\s+greeter\/v2\s+[\d.]+\s+100\.0%/);
});

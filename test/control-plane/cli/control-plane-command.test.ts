/**
 * `skein control-plane --store / --store-bucket / --store-replicas` (the flags; the store itself is tested in
 * test/control-plane/store/ and test/e2e/control-planes-share-state-through-nats.test.ts): a bad value is refused before anything starts,
 * with an error naming the flag, and a credential in the URL never shows in the output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startControlPlaneProcess } from '../../../harness/src/control-plane-process';
import { skein, show } from '../../support/skein-cli';
import { closedPort } from '../../support/ports';
import { tempDir } from '../../support/skein';
import { startNatsServer } from '../../support/nats-server';

const CASES: { name: string; args: (port: number) => string[]; says: RegExp }[] = [
  { name: 'another scheme', args: () => ['--store', 'http://127.0.0.1:4222'], says: /--store: server 1 has scheme "http"; only nats:\/\// },
  { name: 'not a URL', args: () => ['--store', 'nats://user:hunter2@[bad'], says: /--store: server 1 is not a URL/ },
  { name: 'a path', args: () => ['--store', 'nats://user:hunter2@127.0.0.1:4222/skein'], says: /--store: server 1 has a path or query; use nats:\/\/HOST:PORT \(the bucket is --store-bucket\)/ },
  { name: 'the second server is bad', args: () => ['--store', 'nats://127.0.0.1:4222,ftp://h:1'], says: /--store: server 2 has scheme "ftp"/ },
  { name: 'empty', args: () => ['--store', ' , '], says: /--store: empty/ },
  { name: 'a bucket that is no JetStream name', args: () => ['--store', 'nats://127.0.0.1:4222', '--store-bucket', 'a.b'], says: /--store-bucket: "a\.b" must be 1 to 64 letters, digits, - or _/ },
  { name: 'a bucket without a store', args: () => ['--store-bucket', 'other'], says: /--store-bucket needs --store/ },
  { name: 'replicas 0', args: () => ['--store', 'nats://127.0.0.1:4222', '--store-replicas', '0'], says: /--store-replicas: must be an integer from 1 to 5, got "0"/ },
  { name: 'replicas 6 (past JetStream\'s 5)', args: () => ['--store', 'nats://127.0.0.1:4222', '--store-replicas', '6'], says: /--store-replicas: must be an integer from 1 to 5, got "6"/ },
  { name: 'replicas not a number', args: () => ['--store', 'nats://127.0.0.1:4222', '--store-replicas', 'three'], says: /--store-replicas: must be an integer from 1 to 5, got "three"/ },
  { name: 'replicas a fraction', args: () => ['--store', 'nats://127.0.0.1:4222', '--store-replicas', '1.5'], says: /--store-replicas: must be an integer from 1 to 5, got "1\.5"/ },
  { name: 'replicas empty', args: () => ['--store', 'nats://127.0.0.1:4222', '--store-replicas='], says: /--store-replicas: must be an integer from 1 to 5, got ""/ },
  { name: 'replicas without a store', args: () => ['--store-replicas', '3'], says: /--store-replicas needs --store/ },
  { name: 'replicas 1 without a store', args: () => ['--store-replicas', '1'], says: /--store-replicas needs --store/ },
  { name: 'no server listening', args: (port) => ['--store', `nats://user:hunter2@127.0.0.1:${port}`], says: new RegExp(`--store: cannot connect to nats://\\*\\*\\*:\\*\\*\\*@127\\.0\\.0\\.1:\\d+`) },
];

for (const c of CASES) {
  test(`--store: ${c.name} is refused, naming the flag, showing no credential`, async () => {
    const dir = tempDir('store-flags');
    try {
      const r = await skein(['control-plane', '--data-dir', dir, '--xds-listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0', '--monitoring-listen', 'off', ...c.args(await closedPort())]);
      assert.notEqual(r.code, 0, show(r));
      assert.match(r.stderr, c.says, show(r));
      assert.ok(!`${r.stdout}${r.stderr}`.includes('hunter2'), `the password leaked: ${show(r)}`);
      assert.ok(!r.stdout.includes('"ready":true'), show(r));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('SKEIN_STORE sets --store (and is checked the same way)', async () => {
  const dir = tempDir('store-flags');
  try {
    const r = await skein(['control-plane', '--data-dir', dir, '--xds-listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0', '--monitoring-listen', 'off'], { env: { SKEIN_STORE: 'http://user:hunter2@127.0.0.1:4222' } });
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, /--store: server 1 has scheme "http"/, show(r));
    assert.ok(!`${r.stdout}${r.stderr}`.includes('hunter2'), show(r));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--store naming a nats-server without JetStream is refused at start, saying so', { timeout: 600_000 }, async () => {
  const nats = await startNatsServer({ jetstream: false });
  const dir = tempDir('store-flags');
  try {
    const r = await skein(['control-plane', '--data-dir', dir, '--xds-listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0', '--monitoring-listen', 'off', '--store', nats.url.replace('nats://', 'nats://user:hunter2@')]);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, /SKEIN_ERR_STORE_UNAVAILABLE.*--store: cannot open stream skein-revisions and KV bucket skein on nats:\/\/\*\*\*:\*\*\*@127\.0\.0\.1:\d+: .*\(is JetStream on\? nats-server -js\)/, show(r));
    assert.ok(!`${r.stdout}${r.stderr}`.includes('hunter2'), show(r));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await nats.close();
  }
});

/** The replica count of each stream the store made (`<bucket>-revisions`, KV `<bucket>`, KV `<bucket>-leases`). */
async function replicasOf(url: string, bucket: string): Promise<Record<string, number>> {
  const nc = await connect({ servers: url.replace('nats://', '') });
  try {
    const jsm = await jetstreamManager(nc);
    const out: Record<string, number> = {};
    for (const s of [`${bucket}-revisions`, `KV_${bucket}`, `KV_${bucket}-leases`]) out[s] = (await jsm.streams.info(s)).config.num_replicas;
    return out;
  } finally {
    await nc.close();
  }
}

test('--store-replicas on a single nats-server: 1 starts and makes R1 streams; 3 is refused at start naming the flag, new or existing', { timeout: 600_000 }, async () => {
  const nats = await startNatsServer();
  const dir = tempDir('store-replicas');
  try {
    const cp = await startControlPlaneProcess({ dataDir: dir, monitoringListen: 'off', logLevel: 'warn', extraArgs: ['--store', nats.url, '--store-bucket', 'r1', '--store-replicas', '1'] });
    await cp.stop();
    assert.deepEqual(await replicasOf(nats.url, 'r1'), { 'r1-revisions': 1, KV_r1: 1, 'KV_r1-leases': 1 });

    const base = ['control-plane', '--data-dir', dir, '--xds-listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0', '--monitoring-listen', 'off', '--store', nats.url, '--store-replicas', '3'];
    const fresh = await skein([...base, '--store-bucket', 'r3']);
    assert.notEqual(fresh.code, 0, show(fresh));
    assert.ok(!fresh.stdout.includes('"ready":true'), show(fresh));
    assert.match(fresh.stderr, /--store-replicas 3: JetStream cannot keep stream r3-revisions on 3 servers: replicas > 1 not supported in non-clustered mode; a single nats-server \(not clustered\) takes --store-replicas 1/, show(fresh));

    // The server would take the update and then report 3 replicas while keeping one copy: refused before that.
    const existing = await skein([...base, '--store-bucket', 'r1']);
    assert.notEqual(existing.code, 0, show(existing));
    assert.match(existing.stderr, /--store-replicas 3: JetStream cannot keep stream r1-revisions on 3 servers \(it has 1\): replicas > 1 not supported in non-clustered mode/, show(existing));
    assert.deepEqual(await replicasOf(nats.url, 'r1'), { 'r1-revisions': 1, KV_r1: 1, 'KV_r1-leases': 1 }, 'nothing was changed');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await nats.close();
  }
});

/**
 * `skein control-plane --store / --store-bucket` (the flags; the store itself is tested in
 * test/control-plane/store/ and test/e2e/control-planes-share-state-through-nats.test.ts): a bad value is refused before anything starts,
 * with an error naming the flag, and a credential in the URL never shows in the output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
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

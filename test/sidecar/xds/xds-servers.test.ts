/** The --xds list (sidecar/src/xds/xds-servers.ts): parsing, and the addresses a round of failover tries. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { literalTargets, parseXdsServers, resolveTargets, targetOf } from '../../../sidecar/src/xds/xds-servers';

test('a comma-separated list of HOST:PORT, IPv6 in brackets, spaces around commas allowed', () => {
  assert.deepEqual(parseXdsServers('10.0.0.1:18000, cp.example:443,[::1]:9'), [
    { host: '10.0.0.1', port: 18000 }, { host: 'cp.example', port: 443 }, { host: '::1', port: 9 },
  ]);
  assert.equal(targetOf('::1', 9), '[::1]:9');
  for (const bad of ['', 'a', 'a:', ':1', 'a:1,,b:2', 'a:70000', 'a:b', '::1:9']) assert.throws(() => parseXdsServers(bad), /--xds: /, bad);
});

test('IP addresses need no lookup; a DNS name stands for every address it resolves to, in order, once each', async () => {
  assert.deepEqual(literalTargets(parseXdsServers('127.0.0.1:1,[::1]:2')), ['127.0.0.1:1', '[::1]:2']);
  assert.equal(literalTargets(parseXdsServers('127.0.0.1:1,localhost:2')), undefined);
  const targets = await resolveTargets(parseXdsServers('127.0.0.1:1,localhost:2,127.0.0.1:1'));
  assert.equal(targets[0], '127.0.0.1:1');
  assert.ok(targets.includes('127.0.0.1:2') || targets.includes('[::1]:2'), JSON.stringify(targets));
  assert.ok(targets.every((t) => !t.startsWith('localhost')), 'localhost resolved');
  assert.equal(new Set(targets).size, targets.length, 'no address twice');
  // A name that does not resolve stays as it is (that attempt fails, the round goes on).
  assert.deepEqual(await resolveTargets(parseXdsServers('no-such-host.invalid:5')), ['no-such-host.invalid:5']);
});

/**
 * Black-box tests of the `skein` CLI waiting for proxies (--wait, canary, rollout, proxy-status
 * revisions, proxy-status --slow) and of `skein control-plane --config` seeding: real processes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyStatus } from '../../control-plane/src/discovery/proxy-status';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { show, skein } from '../support/skein-cli';
import type { Run } from '../support/skein-cli';
import { MESH_YAML, call, reviewsRoute, reviewsService, startPlane, state, tempDir, assertUnchanged } from '../support/skein';
import type { Plane } from '../support/skein';
import { eventually, RawAdsClient } from '../support/ads-client';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import type { DiscoveryResponse } from '../../control-plane/src/discovery/ads-stream';


describe('skein waits for the proxies: --wait, canary, rollout, proxy-status revisions', () => {
  let plane: Plane | undefined;
  let api = '';
  const clients: RawAdsClient[] = [];
  const cli = (args: string[]) => skein(args, { env: { SKEIN_API: api, SKEIN_DATA_DIR: plane?.dataDir, USER: 'tester' } });
  /** A proxy (raw ADS stream) subscribed to RDS reviews that ACKs or NACKs every response it gets. */
  async function proxyThat(answer: 'ack' | 'nack' | 'ignore', node: string): Promise<RawAdsClient> {
    const c = new RawAdsClient(plane!.proc.xdsInsecure!, node);
    clients.push(c);
    c.subscribe(TYPE_URLS.ROUTE, ['reviews']);
    c.ack(await c.next(TYPE_URLS.ROUTE), ['reviews']);
    c.call.on('data', (r: DiscoveryResponse) => {
      if (answer === 'ack') c.ack(r, ['reviews']);
      else if (answer === 'nack') c.nack(r, '', `${node} cannot use these weights`, ['reviews']);
    });
    await eventually(async () => ((await call(api, 'GET', '/v1/proxies')).body.proxies.find((p: { nodeId: string; state: string }) => p.nodeId === node)?.state === 'SYNCED' ? true : undefined), `${node} SYNCED`);
    return c;
  }

  before(async () => {
    // Scripted proxies speak plaintext ADS on the loopback insecure listener.
    plane = await startPlane({ extraArgs: ['--xds-insecure-listen', '127.0.0.1:0'] });
    api = plane.api;
    await call(api, 'POST', '/v1/config', { body: [reviewsService(), reviewsRoute(90, 10)] });
  });
  after(async () => {
    for (const c of clients) c.close();
    await plane?.stop();
    if (plane) fs.rmSync(plane.dataDir, { recursive: true, force: true });
  });

  test('canary waits by default: every proxy ACKs, exit 0', async () => {
    const a = await proxyThat('ack', 'acker-1');
    const r = await cli(['canary', 'reviews', 'v1=50', 'v2=50']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^applied: revision 2$/m);
    assert.match(r.stdout, /^revision 2 reached 1 proxy: 1 ACKed \(waited \d+\.\ds\)$/m);
    a.close();
  });

  test('a NACK exits 3 and prints the proxy, its user agent and its error; --no-wait does not wait', async () => {
    const good = await proxyThat('ack', 'good-1');
    const bad = await proxyThat('nack', 'picky-1');
    const r = await cli(['canary', 'reviews', 'v1=0', 'v2=100']);
    assert.equal(r.code, 3, show(r));
    assert.match(r.stdout, /^revision 3 reached 2 proxies: 1 ACKed, 1 NACKed/m);
    assert.match(r.stdout, /^ {2}NACKED +picky-1 \(raw-ads-test\/1\.0\) rejected RDS: picky-1 cannot use these weights$/m);
    assert.doesNotMatch(r.stdout, /good-1/, 'ACKed proxies are counted, not listed');
    assert.match(r.stdout, /keep routing on the config they had/);
    const rollout = await cli(['rollout', '3', '-o', 'json']);
    assert.equal(rollout.code, 3, show(rollout));
    assert.equal(JSON.parse(rollout.stdout).state, 'NACKED');
    const status = await cli(['proxy-status']);
    assert.equal(status.code, 0, show(status));
    assert.match(status.stdout, /^NODE\s+STATE\s+REVISION\s+IDENTITY\s+USER AGENT/m);
    assert.match(status.stdout, /^picky-1\s+NACKED\s+2 of 3\s+none \(plaintext\)\s+raw-ads-test\/1\.0/m);
    assert.match(status.stdout, /^good-1\s+SYNCED\s+3 of 3\s/m);
    const noWait = await cli(['canary', 'reviews', 'v1=100', 'v2=0', '--no-wait']);
    assert.equal(noWait.code, 0, show(noWait));
    assert.match(noWait.stdout, /^revision 4 reached 2 proxies: 0 ACKed, 2 pending$/m);
    assert.match(noWait.stdout, /skein rollout 4 --wait/);
    good.close();
    bad.close();
  });

  test('a wait that runs out exits 4 and names the proxies still pending', async () => {
    const silent = await proxyThat('ignore', 'silent-1');
    const applied = await skeinWithInput(['apply', '-f', '-', '--wait=400ms'], JSON.stringify(reviewsRoute(30, 70)));
    assert.equal(applied.code, 4, show(applied));
    assert.match(applied.stdout, /^ {2}PENDING +silent-1 \(raw-ads-test\/1\.0\): RDS$/m);
    assert.match(applied.stdout, /the wait ran out with 1 proxy still pending/);
    silent.close();
  });

  test('proxy-status --slow lists the proxies furthest behind: how long, which type, the last NACK; --limit bounds them', async () => {
    const slow = await proxyThat('ignore', 'slow-1');
    const nacky = await proxyThat('nack', 'nacky-1');
    const fine = await proxyThat('ack', 'fine-1');
    const none = await cli(['proxy-status', '--slow']);
    assert.equal(none.code, 0, show(none));
    assert.doesNotMatch(none.stdout, /slow-1|nacky-1|fine-1/, 'in step, nobody is behind');
    const changed = await cli(['canary', 'reviews', 'v1=20', 'v2=80', '--no-wait']);
    assert.equal(changed.code, 0, show(changed));
    const listed = await eventually(async () => {
      const r = await cli(['proxy-status', '--slow', '-o', 'json']);
      const nodes = (JSON.parse(r.stdout) as { proxies: ProxyStatus[] }).proxies.map((x) => x.nodeId);
      return nodes.includes('slow-1') && nodes.includes('nacky-1') ? JSON.parse(r.stdout) as { proxies: ProxyStatus[] } : undefined;
    }, 'slow-1 and nacky-1 behind');
    assert.ok(!listed.proxies.some((x) => x.nodeId === 'fine-1'), 'a proxy that ACKed is not behind');
    const s1 = listed.proxies.find((x) => x.nodeId === 'slow-1')!;
    assert.equal(s1.behind?.typeUrl, TYPE_URLS.ROUTE);
    assert.ok(s1.behind!.seconds >= 0);
    const table = await cli(['proxy-status', '--slow']);
    assert.equal(table.code, 0, show(table));
    assert.match(table.stdout, /^NODE\s+BEHIND\s+TYPE\s+STATE\s+REVISION\s+USER AGENT\s+LAST NACK/m);
    assert.match(table.stdout, /^slow-1\s+\d+\.\ds\s+RDS\s+STALE\s+/m);
    assert.match(table.stdout, /^nacky-1\s+\d+\.\ds\s+RDS\s+NACKED\s+.*RDS \S+: nacky-1 cannot use these weights$/m);
    const one = await cli(['proxy-status', '--slow', '--limit', '1', '-o', 'json']);
    assert.equal((JSON.parse(one.stdout) as { proxies: ProxyStatus[] }).proxies.length, 1);
    const bad = await cli(['proxy-status', '--limit', '1']);
    assert.equal(bad.code, 1, show(bad));
    assert.match(bad.stderr, /--limit: only applies with --slow/);
    const zero = await cli(['proxy-status', '--slow', '--limit', '0']);
    assert.equal(zero.code, 1, show(zero));
    assert.match(zero.stderr, /--limit: must be an integer from 1 to 10000/);
    slow.close();
    nacky.close();
    fine.close();
  });

  test('rejects a malformed --wait naming the flag, before calling the API', async () => {
    const before = await state(api);
    const runs = await Promise.all([cli(['canary', 'reviews', 'v1=1', 'v2=1', '--wait=soon']), cli(['canary', 'reviews', 'v1=1', 'v2=1', '--wait=11m']),
      cli(['canary', 'reviews', 'v1=1', 'v2=1', '--wait=1s', '--no-wait']), cli(['rollout', 'latest'])]);
    const [soon, long, both, latest] = runs;
    for (const r of runs) assert.equal(r!.code, 1, show(r!));
    assert.match(soon!.stderr, /--wait: invalid duration "soon"/);
    assert.match(long!.stderr, /--wait: must be from 1ms to 10m/);
    assert.match(both!.stderr, /--wait and --no-wait/);
    assert.match(latest!.stderr, /expected one REVISION number/);
    await assertUnchanged(api, before, 'bad --wait');
  });

  function skeinWithInput(args: string[], input: string): Promise<Run> {
    return skein(args, { env: { SKEIN_API: api, SKEIN_DATA_DIR: plane?.dataDir, USER: 'tester' }, input });
  }
});

describe('skein control-plane --config', () => {
  const dir = tempDir('seed');
  const dataDir = path.join(dir, 'data');
  const seed = path.join(dir, 'seed.yaml');
  fs.writeFileSync(seed, MESH_YAML);
  let plane: Plane | undefined;

  after(async () => {
    await plane?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('seeds the config on start', async () => {
    plane = await startPlane({ dataDir, extraArgs: ['--config', seed] });
    const revs = (await call(plane.api, 'GET', '/v1/revisions')).body.revisions as { revision: number; author: string; message: string }[];
    assert.equal(revs.length, 1);
    assert.equal(revs[0]!.revision, 1);
    assert.equal(revs[0]!.author, 'control-plane --config');
    assert.ok(revs[0]!.message.includes(seed), revs[0]!.message);
    const cfg = await call(plane.api, 'GET', '/v1/config');
    assert.deepEqual(cfg.body.resources, [reviewsRoute(90, 10), reviewsService()]);
    assert.equal((await call(plane.api, 'GET', '/v1/xds')).body.revision, 1);
    assert.equal(await plane.stop(), 0);
    plane = undefined;
  });

  test('restarting with the same data dir and file adds no revision', async () => {
    plane = await startPlane({ dataDir, extraArgs: ['--config', seed] });
    const revs = (await call(plane.api, 'GET', '/v1/revisions')).body.revisions as { revision: number }[];
    assert.deepEqual(revs.map((r) => r.revision), [1]);
    assert.deepEqual((await call(plane.api, 'GET', '/v1/config')).body.resources, [reviewsRoute(90, 10), reviewsService()]);
    assert.equal((await call(plane.api, 'GET', '/healthz')).body.revision, 1);
    assert.equal(await plane.stop(), 0);
    plane = undefined;
  });

  test('an invalid --config file stops start-up with the field path, and stores nothing', async () => {
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, MESH_YAML.replace('weight: 10', 'weight: -10'));
    const fresh = path.join(dir, 'data-bad');
    await assert.rejects(startPlane({ dataDir: fresh, extraArgs: ['--config', bad] }), (e: Error) => {
      assert.match(e.message, /exited with 1 before it was ready/);
      assert.match(e.message, /spec\.rules\[0\]\.backendRefs\[1\]\.weight: must be >= 0/);
      return true;
    });
    const stored = fs.existsSync(path.join(fresh, 'revisions')) ? fs.readdirSync(path.join(fresh, 'revisions')).filter((n) => n.endsWith('.json')) : [];
    assert.deepEqual(stored, []);
  });
});

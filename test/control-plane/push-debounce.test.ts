/**
 * The control plane's push debounce (--push-debounce, --push-debounce-max), on an injected clock:
 * endpoint changes are held until none came for the debounce, or for at most the max under
 * continuous churn, and a burst reaches a proxy (a real ADS stream) as one push.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ControlPlane } from '../../control-plane/src/control-plane';
import { FakeClock } from '../../shared/src/clock';
import { silentLogger } from '../../shared/src/log';
import { decodeAny, TYPE_URLS } from '../../shared/src/xds/protos';
import { eventually, RawAdsClient } from '../support/ads-client';
import { service } from '../support/ads-plane';

const EDS = TYPE_URLS.ENDPOINT;
type Cla = { endpoints?: { lb_endpoints?: unknown[] }[] };

describe('push debounce', () => {
  const clock = new FakeClock(Date.now());
  let cp: ControlPlane;
  let dir: string;
  let client: RawAdsClient;
  let port = 9000;
  const served = () => decodeAny<Cla>(cp.cache.get(EDS, 'reviews')!.any).endpoints?.reduce((n, l) => n + (l.lb_endpoints?.length ?? 0), 0) ?? 0;
  const register = () => cp.registry.register({ service: 'reviews', address: '10.1.0.1', port: port++, ttl: '300s' });
  /** A few real event-loop turns: long enough for an undebounced rebuild (setImmediate) to have run. */
  const turns = () => new Promise((r) => setTimeout(r, 100));

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-debounce-'));
    cp = await ControlPlane.start({ dataDir: dir, xdsListen: '127.0.0.1:0', xdsInsecureListen: '127.0.0.1:0', apiListen: '127.0.0.1:0', log: silentLogger(), clock, pushDebounceMs: 500, pushDebounceMaxMs: 2000 });
    await cp.store.apply([service('reviews')], { author: 'test' });
    await cp.syncSnapshot();
    client = new RawAdsClient(`127.0.0.1:${cp.xdsInsecurePort}`, 'debounced');
    client.subscribe(EDS, ['reviews']);
    client.ack(await client.next(EDS), ['reviews']);
  });
  after(async () => {
    client.close();
    await cp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a burst of endpoint changes waits for a quiet --push-debounce, then reaches the proxy as one push', async () => {
    for (let i = 0; i < 3; i++) register();
    await turns();
    assert.equal(served(), 0, 'held by the debounce');
    clock.advance(499);
    register();
    await turns();
    clock.advance(499);
    await turns();
    assert.equal(served(), 0, 'a change within the debounce restarts it');
    clock.advance(1);
    await eventually(() => (served() === 4 ? true : undefined), 'the four endpoints in the snapshot');
    const pushed = await client.next(EDS);
    assert.equal(decodeAny<Cla>(pushed.resources[0]!).endpoints?.[0]?.lb_endpoints?.length, 4, 'one push with the whole burst');
    client.ack(pushed, ['reviews']);
    assert.deepEqual(client.pending(), []);
  });

  test('continuous churn is held at most --push-debounce-max', async () => {
    for (let i = 0; i < 4; i++) {
      register();
      clock.advance(400); // each gap under the debounce
      await turns();
    }
    assert.equal(served(), 4, 'not yet: 1600ms since the first change');
    register();
    clock.advance(400);
    await eventually(() => (served() === 9 ? true : undefined), 'the max (2000ms after the first change) to let the churn through');
  });
});

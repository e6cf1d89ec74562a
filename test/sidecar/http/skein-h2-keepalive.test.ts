/**
 * Keepalive of the listeners' connections on skein's engine (ConnectionManager's sweep), on an
 * injected clock: a client that goes silent gets a PING after keepaliveIdleMs and is closed when
 * it answers nothing within keepaliveTimeoutMs (downstream_cx_idle_timeout); a client that
 * answers PINGs (Node's http2 does) stays connected however long it is idle.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { FakeClock } from '../../../shared/src/clock';
import { createLogger } from '../../../shared/src/log';
import { ConnectionManager } from '../../../sidecar/src/http/connection-manager';
import { sniffingServer } from '../../../sidecar/src/listener/sniffing-server';
import { Stats } from '../../../sidecar/src/stats/stats';
import { rawClient } from '../../support/h2-endpoint';
import { until } from '../../support/until';

const clock = new FakeClock();
const stats = new Stats({ clock });
const cm = new ConnectionManager({ name: 'outbound', stats, policy: { trustForwardedFor: true }, clock, log: createLogger('test', 'silent'), h2Engine: 'skein', keepaliveIdleMs: 1000, keepaliveTimeoutMs: 500 });
const server = sniffingServer(cm.h1, cm.h2, { acceptH2: cm.acceptH2 });
after(async () => { cm.closeConnections(); await new Promise<void>((r) => server.close(() => r())); });

/** Lets the sockets carry what the last clock step sent. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

test('a silent client is sent a PING after the idle time and closed when nothing answers it; one that answers stays', async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const silent = await rawClient(port); // ACKs SETTINGS, never answers a PING
  await until(() => silent.settings.length > 0, 'the server SETTINGS');
  const node = http2.connect(`http://127.0.0.1:${port}`);
  node.on('error', () => undefined);
  await new Promise<void>((r) => node.once('remoteSettings', () => r()));
  await settle();

  clock.advance(1000); // first sweep: both read something since the connection began
  await settle();
  clock.advance(1000); // nothing since: each gets a PING (Node's client answers it)
  await settle();
  assert.equal(silent.closed, false, 'a PING first, not a close');
  clock.advance(1000); // the silent one is past its 500 ms: closed; Node's answered
  await until(() => silent.closed, 'the silent connection closed');
  assert.equal(stats.counter('listener.outbound.downstream_cx_idle_timeout').value, 1);
  for (let i = 0; i < 5; i++) { clock.advance(1000); await settle(); }
  assert.equal(node.destroyed || node.closed, false, 'the client that answers PINGs is still connected');
  assert.equal(stats.counter('listener.outbound.downstream_cx_idle_timeout').value, 1);
  node.close();
});

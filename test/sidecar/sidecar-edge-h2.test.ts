/**
 * Hostile HTTP/2 clients at both listeners of the sidecar's downstream edge (outbound: what the
 * local app calls; inbound: what peers call), with raw frames (test/support/h2-raw.ts):
 * rapid reset (CVE-2023-44487), idle streams and the per-connection stream cap.
 *
 *   caller -> client sidecar (outbound) -> server sidecar (inbound) -> HTTP/2 app
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { h2Get, startEdgeMesh, startH2App } from '../support/edge-mesh';
import type { EdgeMesh } from '../support/edge-mesh';
import { getFields, H2_ERROR, RawH2 } from '../support/h2-raw';
import { eventually } from '../support/ads-client';

const LISTENERS = ['outbound', 'inbound'] as const;

describe('rapid reset (HEADERS then RST_STREAM at once)', () => {
  let app: Awaited<ReturnType<typeof startH2App>>;
  let mesh: EdgeMesh;

  before(async () => {
    app = await startH2App();
    mesh = await startEdgeMesh({ appPort: app.port, appProtocol: 'grpc', hop: 'h2' });
  });
  after(async () => { await mesh?.close(); await app?.close(); });

  for (const listener of LISTENERS) {
    test(`${listener}: 5,000 HEADERS+RST pairs reach the app a handful of times; GOAWAY ENHANCE_YOUR_CALM; a concurrent client is served`, async () => {
      const address = listener === 'outbound' ? mesh.outbound : mesh.inbound;
      const attackPath = `/attack-${listener}`;
      const goodPath = `/good-${listener}`;
      // A well-behaved client on its own connections, all along the attack.
      let stop = false;
      const good: number[] = [];
      const goodLoop = (async () => {
        while (!stop || good.length < 20) good.push((await h2Get(address, 'svc', goodPath)).status);
      })();

      const c = await RawH2.connect(address);
      await c.until(() => c.serverMaxConcurrentStreams() !== undefined, 'the server SETTINGS');
      let pairs = 0;
      // The attacker goes on writing until its socket is closed, GOAWAY or not.
      for (let i = 0; i < 5000 && !c.closed; i += 50) {
        const parts: Buffer[] = [];
        for (let j = i; j < i + 50; j++) parts.push(c.headersFrame(2 * j + 1, getFields('svc', attackPath)), c.rstFrame(2 * j + 1));
        if (!(await c.write(Buffer.concat(parts)))) break;
        pairs = i + 50;
        await new Promise((r) => setImmediate(r));
      }
      await c.until(() => c.goaway !== undefined, 'a GOAWAY', 15_000);
      stop = true;
      await goodLoop;
      c.close();

      const seen = app.streams.get(attackPath) ?? 0;
      console.log(`${listener}: ${pairs} HEADERS+RST pairs sent; the app saw ${seen} of them; GOAWAY code ${c.goaway!.code} after stream ${c.goaway!.lastStreamId}`);
      assert.equal(c.goaway!.code, H2_ERROR.ENHANCE_YOUR_CALM);
      assert.ok(seen <= 10, `a stream reset before its upstream request was written is not forwarded (the app saw ${seen})`);
      assert.equal(mesh.stat(`listener.${listener}.downstream_cx_rapid_reset`), 1);
      assert.ok(mesh.stat(`listener.${listener}.downstream_rq_rx_reset_unforwarded`) >= 90, 'counted as reset before forwarding');
      assert.deepEqual(good.filter((s) => s !== 200), [], 'every call of the concurrent client succeeded');
    });
  }

  test('a client that cancels some of many completed calls keeps its connection (resets are not half of its streams)', async () => {
    const c = await RawH2.connect(mesh.outbound);
    await c.until(() => c.serverMaxConcurrentStreams() !== undefined, 'the server SETTINGS');
    let id = 1;
    for (let round = 0; round < 3; round++) {
      const parts: Buffer[] = [];
      const ids: number[] = [];
      for (let j = 0; j < 80; j++) { parts.push(c.headersFrame(id, getFields('svc', '/fine'))); ids.push(id); id += 2; }
      await c.write(Buffer.concat(parts));
      await c.until(() => ids.every((x) => c.ended.has(x)), 'the answers');
      const resets: Buffer[] = [];
      for (let j = 0; j < 50; j++) { resets.push(c.headersFrame(id, getFields('svc', '/fine')), c.rstFrame(id)); id += 2; }
      await c.write(Buffer.concat(resets));
    }
    const last = id;
    await c.write(c.headersFrame(last, getFields('svc', '/fine')));
    await c.until(() => c.ended.has(last), 'the last answer');
    assert.equal(c.goaway, undefined, '150 resets among 390 streams: not a rapid-reset attack');
    c.close();
  });
});

describe('idle streams and the concurrent-stream cap', () => {
  let app: Awaited<ReturnType<typeof startH2App>>;
  let mesh: EdgeMesh;

  before(async () => {
    app = await startH2App();
    mesh = await startEdgeMesh({ appPort: app.port, appProtocol: 'grpc', hop: 'h2', downstream: { streamIdleTimeoutMs: 10_000, maxConcurrentStreams: 100 } });
  });
  after(async () => { await mesh?.close(); await app?.close(); });

  const idlePost = (c: RawH2, id: number): Buffer => c.headersFrame(id, [[':method', 'POST'], [':scheme', 'http'], [':path', '/idle'], [':authority', 'svc']], false);

  for (const listener of LISTENERS) {
    test(`${listener}: a connection opening 1,000 streams is closed (PROTOCOL_ERROR) past the cap of 100; idle streams within the cap end at the idle timeout; other callers succeed`, async () => {
      const address = listener === 'outbound' ? mesh.outbound : mesh.inbound;
      const active = `listener.${listener}.downstream_rq_active`;
      const idleTimeouts = `listener.${listener}.downstream_rq_idle_timeout`;
      const protocolErrors = `listener.${listener}.downstream_cx_protocol_error`;
      const idleBefore = mesh.stat(idleTimeouts);
      const protoBefore = mesh.stat(protocolErrors);

      // Two connections that ignore SETTINGS_MAX_CONCURRENT_STREAMS: 1,000 idle POSTs each
      // (before the cap, 2,000 such streams filled the 1,024 max_requests breaker).
      const floods = [await RawH2.connect(address), await RawH2.connect(address)];
      for (const c of floods) {
        await c.until(() => c.serverMaxConcurrentStreams() !== undefined, 'the server SETTINGS');
        assert.equal(c.serverMaxConcurrentStreams(), 100, 'SETTINGS_MAX_CONCURRENT_STREAMS advertised');
        const parts: Buffer[] = [];
        for (let j = 0; j < 1000; j++) parts.push(idlePost(c, 2 * j + 1));
        await c.write(Buffer.concat(parts));
      }
      for (const c of floods) {
        await c.until(() => c.goaway !== undefined, 'a GOAWAY for the stream beyond the cap');
        assert.equal(c.goaway!.code, H2_ERROR.PROTOCOL_ERROR);
        assert.ok(c.goaway!.lastStreamId <= 2 * 100, `no stream past the 100th was taken (last ${c.goaway!.lastStreamId})`);
        c.close();
      }
      assert.equal(mesh.stat(protocolErrors) - protoBefore, 2);
      await eventually(() => (mesh.stat(active) === 0 ? true : undefined), `${active} back to 0 (is ${mesh.stat(active)})`, 10_000);

      // Two connections that keep to the cap: 100 idle POSTs each, held until the idle timeout.
      const idlers = [await RawH2.connect(address), await RawH2.connect(address)];
      for (const c of idlers) {
        await c.until(() => c.serverMaxConcurrentStreams() !== undefined, 'the server SETTINGS');
        const parts: Buffer[] = [];
        for (let j = 0; j < 100; j++) parts.push(idlePost(c, 2 * j + 1));
        await c.write(Buffer.concat(parts));
      }
      await eventually(() => (mesh.stat(active) === 200 ? true : undefined), `${active} to reach 200 (is ${mesh.stat(active)})`, 10_000);
      const during = await h2Get(address, 'svc', '/good');
      assert.equal(during.status, 200, `another caller is served while the idle streams are held (${during.reason ?? ''})`);

      mesh.clock.advance(9_000);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(mesh.stat(active), 200, 'not idle long enough yet');
      mesh.clock.advance(2_000); // past the 10 s stream idle timeout (swept every second)
      await eventually(() => (mesh.stat(active) === 0 ? true : undefined), `${active} to drop to 0 (is ${mesh.stat(active)})`, 10_000);
      assert.equal(mesh.stat(idleTimeouts) - idleBefore, 200);
      for (const c of idlers) {
        await c.until(() => c.responded.size === 100 && c.resets.size === 100, 'a 408 and then RST_STREAM NO_ERROR on each idle stream');
        assert.deepEqual([...new Set(c.resets.values())], [H2_ERROR.NO_ERROR]);
        assert.equal(c.goaway, undefined, 'the connection itself stays up');
        c.close();
      }
      const afterwards = await h2Get(address, 'svc', '/good');
      assert.equal(afterwards.status, 200);
    });
  }
});

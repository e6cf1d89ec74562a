/**
 * High availability as deployed (issue 17): a real nats-server, two `skein control-plane`
 * replicas A and B sharing it (and the mesh CA), a real gRPC app behind two server sidecars
 * (v1, v2) and a client sidecar, every sidecar started with `--xds A,B`. The test's gRPC client
 * talks only to the client sidecar, 4 calls at a time, the whole time; every call's outcome is
 * counted and none may fail:
 *
 * 1. A is killed (SIGKILL): the sidecars move to B, the servers' leases (registered through A)
 *    are renewed through B and stay in its EDS, and a canary shift through B reaches the sidecars.
 * 2. nats-server stops: B keeps serving and refuses writes with 503 SKEIN_ERR_STORE_UNAVAILABLE;
 *    it starts again (same port and store): B catches up on its own and a write through it
 *    reaches the sidecars.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { startControlPlaneProcess } from '../../harness/src/control-plane-process';
import type { ControlPlaneProcess } from '../../harness/src/control-plane-process';
import { startSidecarProcess } from '../../harness/src/sidecar-process';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { API_VERSION } from '../../shared/src/config/types';
import { greeterClient, startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterBackend, GreeterClient } from '../../shared/src/sample-app/greeter';
import { emptyCount, sendAndCount } from '../../shared/src/sample-app/load';
import type { SplitCount } from '../../shared/src/sample-app/load';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import { eventually } from '../support/ads-client';
import { api, proxy } from '../support/mesh-api';
import { startNatsServer } from '../support/nats-server';
import type { NatsServer } from '../support/nats-server';
import { call, edsAddresses, tempDir } from '../support/skein';
import { writeRootCaFiles } from '../support/test-ca';

const CLIENT = 'ha-client';
const GREETER = 'greeter:50051';
/** Short, so a lease nobody renews would leave EDS (and fail calls) well within the test. */
const LEASE_TTL_MS = 3000;

function meshConfig(): unknown[] {
  return [
    {
      apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'greeter' },
      spec: { protocol: 'grpc', ports: [{ name: 'grpc', port: 50051 }], subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
    },
    {
      apiVersion: API_VERSION, kind: 'GRPCRoute', metadata: { name: 'greeter' },
      spec: { parentRefs: [{ name: 'greeter' }], rules: [{ name: 'split', backendRefs: [{ name: 'greeter', subset: 'v1', weight: 100 }, { name: 'greeter', subset: 'v2', weight: 0 }] }] },
    },
  ];
}

interface Lease { id: string; service: string; address: string; port: number; expiresAt: string }

describe('replicas survive a dead replica and a NATS outage with no failed call', () => {
  let nats: NatsServer;
  const planes: ControlPlaneProcess[] = [];
  const dirs: string[] = [];
  const apps: GreeterBackend[] = [];
  const servers = new Map<string, SidecarProcess>();
  let client: SidecarProcess;
  let greeter: GreeterClient;
  const a = () => planes[0]!;
  const b = () => planes[1]!;

  /** Calls through the client sidecar, 4 at a time, until the returned stop() is called. */
  const load = () => {
    const count = emptyCount();
    let stopped = false;
    const done = (async () => { while (!stopped) await sendAndCount([greeter], 40, 4, count); })();
    return { count, stop: async (): Promise<SplitCount> => { stopped = true; await done; return count; } };
  };
  const moreCalls = async (count: SplitCount, n: number, what: string) => {
    const from = count.total;
    await eventually(() => (count.total >= from + n ? true : undefined), `${n} more calls ${what}`, 60_000);
  };
  /** The xds.connects counters of a sidecar (one per control plane it connected to). */
  const connectedTo = async (sc: SidecarProcess, cp: ControlPlaneProcess) => {
    const { counters } = (await (await fetch(`http://${sc.admin}/stats?filter=xds.connects`)).json()) as { counters: Record<string, number> };
    return Object.keys(counters).some((k) => k.startsWith('xds.connects') && k.includes(`server=${cp.xds}`));
  };
  /** A sidecar's gauge from /stats. */
  const gauge = async (sc: SidecarProcess, name: string): Promise<number> => {
    const { gauges } = (await (await fetch(`http://${sc.admin}/stats?filter=${name}`)).json()) as { gauges: Record<string, number> };
    return gauges[name] ?? 0;
  };
  const leases = async (cp: ControlPlaneProcess) => (await api<{ endpoints: Lease[] }>(cp.api, 'GET', '/v1/endpoints')).endpoints.filter((l) => l.service === 'greeter');
  const inbounds = () => [...servers.values()].map((s) => s.inbound!).sort();
  /** Until a batch of calls all reach `version`: the route change is in the client sidecar. */
  const allTo = (version: string, what: string) => eventually(async () => {
    const c = await sendAndCount([greeter], 20, 4);
    return c.errors === 0 && c.byVersion.get(version) === 20 ? true : undefined;
  }, what, 30_000);
  /** The client sidecar is SYNCED on `cp` and has ACKed its routes of revision >= `revision`. */
  const routeAcked = (cp: ControlPlaneProcess, revision: number) => eventually(async () => {
    const p = await proxy(cp.api, CLIENT);
    const t = p?.types.find((x) => x.typeUrl === TYPE_URLS.ROUTE);
    return p?.state === 'SYNCED' && t !== undefined && (t.sentRevision ?? 0) >= revision && t.ackedVersion === t.sentVersion ? p : undefined;
  }, `${CLIENT} to ACK the routes of revision ${revision}`, 30_000);

  before(async () => {
    nats = await startNatsServer();
    const caDir = tempDir('ha-ca');
    dirs.push(caDir);
    const { certFile, keyFile } = await writeRootCaFiles(caDir, 365 * 24 * 3600_000);
    const bucket = `ha_${randomBytes(4).toString('hex')}`;
    for (const name of ['a', 'b']) {
      const dir = tempDir(`ha-${name}`);
      dirs.push(dir);
      planes.push(await startControlPlaneProcess({ dataDir: dir, logLevel: 'warn', extraArgs: ['--store', nats.url, '--store-bucket', bucket, '--ca-cert', certFile, '--ca-key', keyFile, '--workload-cert-ttl', '1m'] }));
    }
    const { revision } = await api<{ revision: number }>(a().api, 'POST', '/v1/config', meshConfig());
    await eventually(async () => ((await api<{ revision: number }>(b().api, 'GET', '/v1/xds')).revision >= revision ? true : undefined), `B at revision ${revision}`, 30_000);
    const xds = planes.map((cp) => cp.xds).join(',');
    // Join tokens live in the data dir of the replica that mints them: A, the first in --xds.
    await Promise.all(['v1', 'v2'].map(async (version) => {
      const app = await startGreeter({ backend: `g-${version}`, version });
      apps.push(app);
      servers.set(version, await startSidecarProcess({ xds, api: a().api, nodeId: `ha-server-${version}`, service: 'greeter', version, app: `127.0.0.1:${app.port}`, killAfterMs: 10_000, extraArgs: ['--lease-ttl', `${LEASE_TTL_MS / 1000}s`] }));
    }));
    client = await startSidecarProcess({ xds, api: a().api, nodeId: CLIENT, killAfterMs: 10_000 });
    greeter = greeterClient(client.outbound, grpc.credentials.createInsecure(), { 'grpc.default_authority': GREETER });
    for (const cp of planes) await eventually(async () => ((await leases(cp)).length === 2 ? true : undefined), `both leases on ${cp.api}`, 30_000);
    await allTo('v1', 'the client sidecar routes to v1');
  }, { timeout: 120_000 });

  after(async () => {
    greeter?.close();
    await Promise.all([client, ...servers.values()].map((s) => s?.stop().catch(() => undefined)));
    await nats?.start().catch(() => undefined);
    for (const cp of planes) await cp.stop().catch(() => undefined);
    await Promise.all(apps.map((x) => x.close()));
    await nats?.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('A is killed under load: no call fails, the sidecars resume on B, the leases stay in B\'s EDS, and B\'s canary shift reaches them', async () => {
    const l = load();
    try {
      await moreCalls(l.count, 100, 'before A dies');
      const leasedAt = new Map((await leases(b())).map((x) => [x.id, Date.parse(x.expiresAt)]));
      assert.equal(leasedAt.size, 2);
      a().proc.kill('SIGKILL');
      await a().stop();
      for (const sc of [client, ...servers.values()]) {
        await eventually(async () => ((await connectedTo(sc, b())) ? true : undefined), `${sc.nodeId} connected to B`, 30_000);
      }
      // Registered through A; renewed through B once A is gone (more than one TTL past the last
      // expiry A wrote), so a lease nobody renews would have been reaped by now.
      await eventually(async () => {
        const now = await leases(b());
        return now.length === 2 && now.every((x) => Date.parse(x.expiresAt) > (leasedAt.get(x.id) ?? Infinity) + 2 * LEASE_TTL_MS) ? true : undefined;
      }, 'both leases renewed through B', 60_000);
      // Workload certificates live 1 minute here (renewed at about half): each sidecar renews its
      // certificate through B (signed with the shared CA), and mTLS goes on with the new one.
      const renewedAt = new Map<SidecarProcess, number>();
      for (const sc of [client, ...servers.values()]) renewedAt.set(sc, await gauge(sc, 'identity.cert_renewals'));
      for (const sc of [client, ...servers.values()]) {
        await eventually(async () => ((await gauge(sc, 'identity.cert_renewals')) > renewedAt.get(sc)! ? true : undefined), `${sc.nodeId} renewed its certificate through B`, 60_000);
      }
      await moreCalls(l.count, 200, 'after the switch');
    } finally {
      const c = await l.stop();
      assert.equal(c.errors, 0, `${c.errors} of ${c.total} calls failed: ${c.lastError}`);
      assert.ok(c.total >= 300, `${c.total} calls`);
    }
    const xds = (await api(b().api, 'GET', '/v1/xds')) as Parameters<typeof edsAddresses>[0];
    assert.deepEqual(edsAddresses(xds, 'greeter'), inbounds(), 'B serves both instances in EDS');

    const shift = await api<{ revision: number }>(b().api, 'POST', '/v1/canary', { route: 'greeter', weights: { v1: 0, v2: 100 } });
    await routeAcked(b(), shift.revision);
    await allTo('v2', 'the canary shift through B reaches the client sidecar');
    const after = await sendAndCount([greeter], 100, 4);
    assert.equal(after.errors, 0, after.lastError);
    assert.equal(after.byVersion.get('v2'), 100);
  });

  test('NATS stops under load: no call fails, writes get 503 SKEIN_ERR_STORE_UNAVAILABLE; NATS is back: B catches up and a write reaches the sidecars', async () => {
    assert.ok(a().proc.exitCode !== null || a().proc.signalCode !== null, 'A is dead (the first test killed it)');
    const before = await api<{ revision: number }>(b().api, 'GET', '/v1/xds');
    const l = load();
    try {
      await moreCalls(l.count, 100, 'before NATS stops');
      await nats.stop();
      const refused = await eventually(async () => {
        const r = await call(b().api, 'POST', '/v1/canary', { body: { route: 'greeter', weights: { v1: 100, v2: 0 } } });
        return r.status === 200 || r.status === 201 ? undefined : r;
      }, 'B refuses writes', 30_000);
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'SKEIN_ERR_STORE_UNAVAILABLE');
      const frozen = (await api<{ revision: number }>(b().api, 'GET', '/v1/xds')).revision;
      // Past a lease TTL with NATS down: the sidecars' renewals are kept by B, nothing leaves EDS.
      const down = await leases(b());
      await eventually(async () => {
        const now = await leases(b());
        return now.length === 2 && now.every((x) => Date.parse(x.expiresAt) > Date.parse(down.find((d) => d.id === x.id)?.expiresAt ?? '') + LEASE_TTL_MS) ? true : undefined;
      }, 'leases renewed through B while NATS is down', 60_000);
      await moreCalls(l.count, 200, 'while NATS is down');
      assert.equal((await api<{ revision: number }>(b().api, 'GET', '/v1/xds')).revision, frozen, 'B serves its last snapshot');
      await nats.start();
      const ok = await eventually(async () => {
        const r = await call(b().api, 'POST', '/v1/canary', { body: { route: 'greeter', weights: { v1: 100, v2: 0 } } });
        return r.status === 200 || r.status === 201 ? r : undefined;
      }, 'a write through B succeeds again', 60_000);
      const revision = ok.body.revision as number;
      assert.ok(revision > before.revision, JSON.stringify(ok.body));
      await routeAcked(b(), revision);
      await allTo('v1', 'the write after the outage reaches the client sidecar');
      await moreCalls(l.count, 100, 'after NATS is back');
    } finally {
      const c = await l.stop();
      assert.equal(c.errors, 0, `${c.errors} of ${c.total} calls failed: ${c.lastError}`);
    }
    assert.equal((await leases(b())).length, 2, 'both leases survive the outage');
  });
});

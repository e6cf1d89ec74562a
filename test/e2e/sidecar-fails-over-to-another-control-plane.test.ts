import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startControlPlaneProcess } from '../../harness/src/control-plane-process';
import type { ControlPlaneProcess } from '../../harness/src/control-plane-process';
import { startSidecarProcess } from '../../harness/src/sidecar-process';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { API_VERSION } from '../../shared/src/config/types';
import { greeterClient, startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterBackend, GreeterClient } from '../../shared/src/sample-app/greeter';
import { emptyCount, sendAndCount } from '../../shared/src/sample-app/load';
import { eventually } from '../support/ads-client';
import { api, proxy } from '../support/mesh-api';

/**
 * A sidecar given two control planes (--xds A,B), each its own process and data directory with
 * the same config applied: it takes its config from A; when A is killed it reconnects to B,
 * serving its last config meanwhile, so calls through it fail none; B's changes then reach it.
 * Nothing is mocked: real processes, a real gRPC app, real calls.
 */
function config(appPort: number, extra: unknown[] = []): unknown[] {
  return [
    {
      apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'greeter' },
      spec: { protocol: 'grpc', ports: [{ name: 'grpc', port: 50051 }], endpoints: [{ address: '127.0.0.1', port: appPort, labels: { version: 'v1' } }] },
    },
    ...extra,
  ];
}

describe('a sidecar with two control planes fails over when the one it uses dies', () => {
  const dirs: string[] = [];
  const planes: ControlPlaneProcess[] = [];
  let app: GreeterBackend;
  let sc: SidecarProcess;
  let client: GreeterClient;
  const NODE = 'e2e-failover';

  const connects = async (): Promise<string[]> => {
    const { counters } = (await (await fetch(`http://${sc.admin}/stats?filter=xds.connects`)).json()) as { counters: Record<string, number> };
    return Object.keys(counters).filter((k) => k.startsWith('xds.connects')).sort();
  };
  const syncedOn = (cp: ControlPlaneProcess) => eventually(async () => {
    const p = await proxy(cp.api, NODE);
    return p?.state === 'SYNCED' && p.types.length === 4 ? p : undefined;
  }, `${NODE} SYNCED on ${cp.xdsInsecure}`);
  const dump = async () => ((await (await fetch(`http://${sc.admin}/config_dump`)).json()) as { typeUrl: string; version: string; resources: unknown }[])
    .map((t) => ({ typeUrl: t.typeUrl, version: t.version, resources: t.resources }));

  before(async () => {
    app = await startGreeter({ backend: 'g1', version: 'v1' });
    for (let i = 0; i < 2; i++) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `skein-failover-${i}-`));
      dirs.push(dir);
      planes.push(await startControlPlaneProcess({ dataDir: dir, logLevel: 'warn', extraArgs: ['--xds-insecure-listen', '127.0.0.1:0'] }));
    }
    for (const cp of planes) await api(cp.api, 'POST', '/v1/config', config(app.port));
    sc = await startSidecarProcess({ xds: planes.map((cp) => cp.xdsInsecure!).join(','), api: planes[0]!.api, insecure: true, nodeId: NODE, killAfterMs: 10_000 });
    await eventually(async () => ((await fetch(`http://${sc.admin}/ready`)).status === 200 ? true : undefined), 'the sidecar ready');
    client = greeterClient(sc.outbound, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'greeter:50051' });
  });

  after(async () => {
    client?.close();
    await sc?.stop();
    for (const cp of planes) await cp.stop('SIGKILL').catch(() => undefined);
    await app?.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('A dies under load: the sidecar moves to B with no failed call, keeps its config, and takes B\'s next change', async () => {
    const [a, b] = planes as [ControlPlaneProcess, ControlPlaneProcess];
    await syncedOn(a);
    assert.deepEqual(await connects(), [`xds.connects{protocol=delta,server=${a.xdsInsecure}}`]);
    assert.equal(await proxy(b.api, NODE), undefined, 'B has not seen it');
    const before = await dump();

    // Calls go on, 4 at a time, the whole time.
    const count = emptyCount();
    let stop = false;
    const load = (async () => { while (!stop) await sendAndCount([client], 40, 4, count); })();
    try {
      await eventually(() => (count.total >= 100 ? true : undefined), 'calls before the switch');
      a.proc.kill('SIGKILL');
      await a.stop();
      await syncedOn(b);
      await eventually(async () => ((await connects()).includes(`xds.connects{protocol=delta,server=${b.xdsInsecure}}`) ? true : undefined), 'connected to B');
      const atSwitch = count.total;
      await eventually(() => (count.total >= atSwitch + 200 ? true : undefined), 'calls after the switch');
    } finally {
      stop = true;
      await load;
    }
    assert.equal(count.errors, 0, `${count.errors} of ${count.total} calls failed: ${count.lastError}`);
    assert.deepEqual(await dump(), before, 'the same config (versions are content hashes: B agrees with A)');
    assert.match(sc.logs(), /xDS stream ended; keeping the last good config/);

    // The sidecar is live on B: a change applied there reaches it.
    await api(b.api, 'POST', '/v1/config', config(app.port, [{ apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'echo' }, spec: { protocol: 'grpc', ports: [{ name: 'grpc', port: 50052 }] } }]));
    await eventually(async () => {
      const clusters = (await (await fetch(`http://${sc.admin}/clusters`)).json()) as { name: string }[];
      return clusters.some((c) => c.name === 'echo') ? true : undefined;
    }, 'the echo cluster from B');
    const c = await sendAndCount([client], 50);
    assert.equal(c.errors, 0, c.lastError);
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { API_VERSION } from '../../shared/src/config/types';
import { startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterClient } from '../../shared/src/sample-app/greeter';
import { sendAndCount } from '../../shared/src/sample-app/load';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { eventually } from '../support/ads-client';
import { proxy } from '../support/mesh-api';
import { inboundOf, Mesh } from '../support/sidecar-mesh';

/**
 * Two sidecars of one service against one `skein control-plane` process, one on delta ADS (the
 * default) and one on state of the world (--xds-protocol sotw), each with its workload identity:
 * their /config_dump (every type: names, versions, decoded resources, last error) is the same,
 * before and after a route they both NACK, and both carry traffic. Nothing is mocked.
 */
const GREETER = 'greeter:50051';

function config(extraRules: unknown[] = []): unknown[] {
  return [
    { apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'greeter' }, spec: { protocol: 'grpc', ports: [{ name: 'grpc', port: 50051 }], subsets: [{ name: 'v1', labels: { version: 'v1' } }] } },
    { apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'echo' }, spec: { protocol: 'grpc', ports: [{ name: 'grpc', port: 50052 }] } },
    {
      apiVersion: API_VERSION, kind: 'GRPCRoute', metadata: { name: 'greeter' },
      spec: { parentRefs: [{ name: 'greeter' }], rules: [...extraRules, { name: 'all', backendRefs: [{ name: 'greeter', subset: 'v1' }], timeout: '5s' }] },
    },
    { apiVersion: API_VERSION, kind: 'BackendPolicy', metadata: { name: 'greeter' }, spec: { targetRef: { kind: 'Service', name: 'greeter' }, loadBalancer: { policy: 'round_robin' } } },
  ];
}

interface TypeDump { typeUrl: string; subscribed: '*' | string[]; version: string; nonce: string; resources: Record<string, unknown>; lastError: { version: string; message: string } | null }

/** The sidecar's xds.connects counters (server and protocol of each stream that got a response). */
async function connects(sc: SidecarProcess): Promise<string[]> {
  const { counters } = (await (await fetch(`http://${sc.admin}/stats?filter=xds.connects`)).json()) as { counters: Record<string, number> };
  return Object.keys(counters).filter((k) => k.startsWith('xds.connects'));
}

/** /config_dump without what differs by stream (nonces, times), names in order. */
async function configOf(sc: SidecarProcess): Promise<unknown> {
  const dump = (await (await fetch(`http://${sc.admin}/config_dump`)).json()) as TypeDump[];
  return dump.map((t) => ({
    typeUrl: t.typeUrl,
    subscribed: t.subscribed === '*' ? '*' : [...t.subscribed].sort(),
    version: t.version,
    resources: Object.fromEntries(Object.keys(t.resources).sort().map((k) => [k, t.resources[k]])),
    lastError: t.lastError === null ? null : { version: t.lastError.version, message: t.lastError.message },
  })).sort((a, b) => a.typeUrl.localeCompare(b.typeUrl));
}

describe('a delta sidecar and a SotW sidecar against the same control plane', () => {
  let mesh: Mesh;
  let delta: SidecarProcess;
  let sotw: SidecarProcess;
  const clients: GreeterClient[] = [];

  /** Both sidecars answered the routes of `revision` (ACK or NACK) and have nothing else in flight. */
  const settled = async (revision: number) => {
    for (const sc of [delta, sotw]) {
      await eventually(async () => {
        const p = await proxy(mesh.cp.api, sc.nodeId);
        const rds = p?.types.find((t) => t.typeUrl === TYPE_URLS.ROUTE);
        return p !== undefined && p.types.length === 5 && (rds?.sentRevision ?? 0) >= revision && p.types.every((t) => t.state === 'SYNCED' || t.state === 'NACKED') ? p : undefined;
      }, `${sc.nodeId} to answer revision ${revision}`);
    }
  };
  const sameConfig = async (what: string) => {
    let last: [unknown, unknown] = [undefined, undefined];
    await eventually(async () => {
      last = [await configOf(delta), await configOf(sotw)];
      return JSON.stringify(last[0]) === JSON.stringify(last[1]) ? true : undefined;
    }, `the same config_dump on both (${what})`).catch(() => assert.deepEqual(last[0], last[1], what));
    return last[0] as TypeDump[];
  };

  before(async () => {
    mesh = await Mesh.start('delta-sotw');
    const rev = await mesh.apply(config());
    const apps = [mesh.app(await startGreeter({ backend: 'g-delta', version: 'v1' })), mesh.app(await startGreeter({ backend: 'g-sotw', version: 'v1' }))];
    // A lower regex cap than the control plane's, so a route it accepts is NACKed by both.
    const common = ['--regex-max-program-size', '20'];
    [delta, sotw] = await Promise.all([
      mesh.sidecar({ nodeId: 'e2e-delta', service: 'greeter', version: 'v1', app: `127.0.0.1:${apps[0]!.port}`, extraArgs: common }),
      mesh.sidecar({ nodeId: 'e2e-sotw', service: 'greeter', version: 'v1', app: `127.0.0.1:${apps[1]!.port}`, extraArgs: [...common, '--xds-protocol', 'sotw'] }),
    ]);
    await settled(rev);
    await mesh.hosts(delta, 'greeter/v1', [inboundOf(delta), inboundOf(sotw)]);
    await mesh.hosts(sotw, 'greeter/v1', [inboundOf(delta), inboundOf(sotw)]);
    clients.push(mesh.greeter(delta, GREETER), mesh.greeter(sotw, GREETER));
  });

  after(async () => { await mesh?.stop(); });

  test('each speaks its protocol, and both hold the same config', async () => {
    assert.doesNotMatch(delta.logs(), /does not serve delta/);
    assert.deepEqual(await connects(delta), [`xds.connects{protocol=delta,server=${mesh.cp.xds}}`]);
    assert.deepEqual(await connects(sotw), [`xds.connects{protocol=sotw,server=${mesh.cp.xds}}`]);
    const dump = await sameConfig('after the first sync');
    assert.deepEqual(dump.map((t) => t.typeUrl).sort(), [TYPE_URLS.CLUSTER, TYPE_URLS.ENDPOINT, TYPE_URLS.LISTENER, TYPE_URLS.ROUTE, TYPE_URLS.SECRET].sort());
    assert.ok(dump.every((t) => t.version !== '' && t.lastError === null), JSON.stringify(dump.map((t) => [t.typeUrl, t.version, t.lastError])));
    // The control plane sees one on each protocol (the same versions ACKed).
    const [pd, ps] = [await proxy(mesh.cp.api, delta.nodeId), await proxy(mesh.cp.api, sotw.nodeId)];
    const acked = (p: typeof pd) => Object.fromEntries(p!.types.map((t) => [t.typeUrl, t.ackedVersion]));
    assert.deepEqual(acked(pd), acked(ps));
    const c = await sendAndCount(clients, 200);
    assert.equal(c.errors, 0, c.lastError);
    assert.deepEqual([...c.byBackend.keys()].sort(), ['g-delta', 'g-sotw']);
  });

  test('a route both NACK: both keep the same last good config and report the same error', async () => {
    const rev = await mesh.apply(config([{ name: 'complex', matches: [{ headers: [{ name: 'x-user', type: 'RegularExpression', value: 'admin-[a-z]{20}' }] }], backendRefs: [{ name: 'greeter', subset: 'v1' }] }]));
    await settled(rev);
    const dump = await sameConfig('after the NACK');
    const rds = dump.find((t) => t.typeUrl === TYPE_URLS.ROUTE)!;
    assert.match(rds.lastError?.message ?? '', /is too complex: RE2 program size \d+ is over the limit of 20/);
    assert.equal(JSON.stringify(rds.resources).includes('admin-'), false, 'the rejected route is not in use');
    const c = await sendAndCount(clients, 100);
    assert.equal(c.errors, 0, c.lastError);

    // A change both take: the same again.
    const fixed = await mesh.apply(config());
    await settled(fixed);
    const after = await sameConfig('after the fix');
    assert.equal(after.find((t) => t.typeUrl === TYPE_URLS.ROUTE)!.lastError, null);
  });
});

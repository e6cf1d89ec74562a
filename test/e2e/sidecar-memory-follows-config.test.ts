/**
 * A sidecar's memory follows the config, not its history: real `skein control-plane` and
 * `skein sidecar` processes. Three rounds, each with different names: apply 1,000 services in
 * one request (the API's batch path), wait until the sidecar holds their clusters, roll back to
 * the revision before, and wait out the sidecar's --stats-retention (1s here). After every
 * rollback:
 *  - /stats lists none of the removed names, and the stat scopes are back to the start's;
 *  - live JS memory (heapUsed + external after a forced GC) is within 10% (+2 MiB for code the
 *    JIT compiled meanwhile) of the start: the removed clusters and routes released everything;
 *  - RSS (/proc/<pid>/status VmRSS, after the same GC) is within the start + 48 MiB, and does
 *    not grow from round to round by more than 16 MiB. RSS does not return to the start itself:
 *    V8 keeps the heap pages one 1,000-service update grew into, and glibc keeps freed native
 *    memory (the update's xDS messages) for reuse; that is a high-water mark of one update, paid
 *    once. Measured: +22 to +33 MiB after 1 to 6 rounds, levelling off. Before this work each
 *    round added about 250 MiB that never came back.
 * The sidecar runs with `node --expose-gc`, so its admin `/memory?gc=true` can collect first.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { API_VERSION } from '../../shared/src/config/types';
import { eventually } from '../support/ads-client';
import { api } from '../support/mesh-api';
import { Mesh } from '../support/sidecar-mesh';

/** With the one service the mesh starts with, the config's maximum of 1000 resources (shared/src/config/limits.ts). */
const SERVICES = 999;
const ROUNDS = 3;
const MiB = 1024 * 1024;

interface Memory { rssBytes: number; heapUsedBytes: number; externalBytes: number; clusters: number; statScopes: number; statScopesRetained: number }

function service(name: string): Record<string, unknown> {
  return { apiVersion: API_VERSION, kind: 'Service', metadata: { name }, spec: { ports: [{ name: 'grpc', port: 50051 }] } };
}

describe('sidecar memory over add / rollback rounds (processes)', () => {
  let mesh: Mesh;
  let sc: SidecarProcess;
  let baseRevision = 0;

  const memory = async (gc = false): Promise<Memory> => api<Memory>(`http://${sc.admin}`, 'GET', `/memory${gc ? '?gc=true' : ''}`);
  const vmRss = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${sc.proc.pid}/status`, 'utf8'))![1]) * 1024;
  /** After a full GC: VmRSS and live JS memory. */
  const settled = async (): Promise<{ rss: number; live: number; m: Memory }> => {
    const m = await memory(true);
    return { rss: vmRss(), live: m.heapUsedBytes + m.externalBytes, m };
  };
  const statsText = async (filter: string): Promise<string> => (await fetch(`http://${sc.admin}/stats?format=text&filter=${encodeURIComponent(filter)}`)).text();

  before(async () => {
    mesh = await Mesh.start('sidecar-memory');
    baseRevision = await mesh.apply([service('base')]);
    sc = await mesh.sidecar({ nodeId: 'memory-client', extraArgs: ['--stats-retention', '1s'], nodeArgs: ['--expose-gc'] });
    await eventually(async () => ((await memory()).clusters === 1 ? true : undefined), 'the sidecar to hold the base cluster');
  });

  after(async () => { await mesh?.stop(); });

  test('bad --stats-retention values are refused naming the flag', async () => {
    const { startSidecarProcess } = await import('../../harness/src/sidecar-process');
    for (const [value, message] of [['soon', /--stats-retention: invalid duration "soon"/], ['25h', /--stats-retention: must be at most 24h, got "25h"/]] as const) {
      await assert.rejects(startSidecarProcess({ xds: mesh.cp.xds, api: mesh.cp.api, nodeId: 'bad-retention', extraArgs: ['--stats-retention', value] }), (e: Error) => { assert.match(e.message, message); return true; });
    }
  });

  test(`${ROUNDS} rounds of ${SERVICES} services added and rolled back leave no stats and no memory behind`, async (t) => {
    const start = await settled();
    const fmt = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;
    t.diagnostic(`start: rss ${fmt(start.rss)}, live ${fmt(start.live)}, stat scopes ${start.m.statScopes}`);
    const afterRollback: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const prefix = `r${r}-svc-`;
      await mesh.apply(Array.from({ length: SERVICES }, (_, i) => service(`${prefix}${i}`)));
      await eventually(async () => ((await memory()).clusters === SERVICES + 1 ? true : undefined), `round ${r}: the sidecar to hold ${SERVICES + 1} clusters`, 30_000);
      const added = await settled();
      assert.ok((await statsText(`cluster.${prefix}7.`)).length > 0, 'the new clusters have stats');
      await api(mesh.cp.api, 'POST', `/v1/revisions/${baseRevision}/rollback`);
      await eventually(async () => ((await memory()).clusters === 1 ? true : undefined), `round ${r}: the rollback to reach the sidecar`, 30_000);
      await eventually(async () => {
        const m = await memory();
        return m.statScopesRetained === 0 && m.statScopes === start.m.statScopes ? true : undefined;
      }, `round ${r}: the removed clusters' stats to go after the retention`);
      assert.equal(await statsText(prefix), '', `round ${r}: /stats lists no removed name`);
      const back = await settled();
      afterRollback.push(back.rss);
      t.diagnostic(`round ${r}: added rss ${fmt(added.rss)} live ${fmt(added.live)}; rolled back rss ${fmt(back.rss)} live ${fmt(back.live)}`);
      assert.ok(back.live <= start.live * 1.1 + 2 * MiB, `round ${r}: live memory ${fmt(back.live)} is not within 10% (+2 MiB) of the start's ${fmt(start.live)}`);
      assert.ok(back.rss <= start.rss + 48 * MiB, `round ${r}: RSS ${fmt(back.rss)} is more than 48 MiB above the start's ${fmt(start.rss)}`);
    }
    const growth = afterRollback[afterRollback.length - 1]! - afterRollback[0]!;
    assert.ok(growth <= 16 * MiB, `RSS after rollback grew by ${fmt(growth)} from round 1 to round ${ROUNDS}`);
  });
});

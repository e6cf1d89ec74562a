/**
 * A live mesh with a canary: the Greeter service with subsets v1 and v2 (one app and one server
 * sidecar each) and a GRPCRoute splitting it by weight, plus client sidecars that report route
 * stats every second and write access logs. For the route stats and `skein top` tests.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterClient } from '../../shared/src/sample-app/greeter';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { inboundOf, Mesh } from './sidecar-mesh';
import { API_VERSION } from './skein';

/** The split rule's RDS route name (translate/routes.ts: <kind>/<route>/<rule>). */
export const SPLIT_ROUTE = 'GRPCRoute/greeter/split';

/** An outbound access log line (sidecar/src/stats/access-log.ts), the fields these tests read. */
export interface LogLine { listener: string; route: string; cluster?: string; status: number; grpcStatus?: number; durationMs: number }

export interface CanaryMesh {
  mesh: Mesh;
  clients: { sidecar: SidecarProcess; greeter: GreeterClient; accessLog: string }[];
}

export function canaryConfig(v1: number, v2: number): unknown[] {
  return [
    { apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'greeter' }, spec: { protocol: 'grpc', ports: [{ name: 'grpc', port: 50051 }], subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] } },
    { apiVersion: API_VERSION, kind: 'GRPCRoute', metadata: { name: 'greeter' }, spec: { parentRefs: [{ name: 'greeter' }], rules: [{ name: 'split', backendRefs: [{ name: 'greeter', subset: 'v1', weight: v1 }, { name: 'greeter', subset: 'v2', weight: v2 }], timeout: '5s' }] } },
  ];
}

/** Starts the mesh: `clients` client sidecars, each ready with both subsets' hosts. */
export async function startCanaryMesh(prefix: string, weights: [number, number], clients: number): Promise<CanaryMesh> {
  const mesh = await Mesh.start(prefix);
  try {
    await mesh.apply(canaryConfig(...weights));
    const servers: SidecarProcess[] = [];
    for (const v of ['v1', 'v2']) {
      const app = mesh.app(await startGreeter({ backend: `g-${v}`, version: v }));
      servers.push(await mesh.sidecar({ nodeId: `greeter-${v}`, service: 'greeter', version: v, app: `${app.address}:${app.port}`, extraArgs: ['--stats-report-interval', '1s'] }));
    }
    const out: CanaryMesh['clients'] = [];
    for (let i = 1; i <= clients; i++) {
      const accessLog = path.join(mesh.dir, `client-${i}-access.log`);
      const sidecar = await mesh.clientSidecar(`frontend-${i}`, ['--access-log', accessLog, '--stats-report-interval', '1s']);
      await mesh.hosts(sidecar, 'greeter/v1', [inboundOf(servers[0]!)]);
      await mesh.hosts(sidecar, 'greeter/v2', [inboundOf(servers[1]!)]);
      out.push({ sidecar, greeter: mesh.greeter(sidecar, 'greeter:50051'), accessLog });
    }
    return { mesh, clients: out };
  } catch (e) {
    await mesh.stop();
    throw e;
  }
}

/** `n` unary calls, `concurrency` at a time; resolves with how many failed. */
export async function sayHellos(client: GreeterClient, n: number, concurrency = 4): Promise<number> {
  let next = 0;
  let failed = 0;
  const one = (): Promise<void> => new Promise((resolve) => client.SayHello({ name: `n${next}` }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e) => { if (e) failed++; resolve(); }));
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next < n) { next++; await one(); } }));
  return failed;
}

/** The outbound lines of an access log that reached a cluster (the requests the route stats count). */
export function routedLines(file: string): LogLine[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogLine).filter((l) => l.listener === 'outbound' && l.cluster !== undefined);
}

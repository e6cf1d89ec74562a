import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ControlPlane } from '../../control-plane/src/control-plane';
import type { TypeStatus } from '../../control-plane/src/discovery/proxy-status';
import { silentLogger } from '../../shared/src/log';

/** Config documents and an in-process control plane for the ADS protocol tests (SotW and delta). */
const V = 'skein.dev/v1alpha1';

/** A Service with port grpc/50051 and subsets v1 and v2 (`extra` merges into its spec). */
export function service(name: string, extra: Record<string, unknown> = {}): unknown {
  return { apiVersion: V, kind: 'Service', metadata: { name }, spec: { ports: [{ name: 'grpc', port: 50051 }], subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }], ...extra } };
}

/** A GRPCRoute splitting `name` between its v1 and v2 subsets. */
export function split(v1: number, v2: number, name = 'reviews'): unknown {
  return { apiVersion: V, kind: 'GRPCRoute', metadata: { name }, spec: { parentRefs: [{ name }], rules: [{ backendRefs: [{ name, subset: 'v1', weight: v1 }, { name, subset: 'v2', weight: v2 }] }] } };
}

/** A Service `name` on port `port` with `count` static v1 endpoints (a large ClusterLoadAssignment). */
export function bigService(name: string, port: number, count: number): unknown {
  const endpoints = Array.from({ length: count }, (_, i) => ({ address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 8080, labels: { version: 'v1' } }));
  return { apiVersion: V, kind: 'Service', metadata: { name }, spec: { ports: [{ name: 'grpc', port }], endpoints } };
}

export interface AdsPlane {
  cp: ControlPlane;
  apply(...docs: unknown[]): ReturnType<ControlPlane['store']['apply']>;
  /** The proxy status of `node`'s `type`, if it is connected and subscribed to it. */
  statusOf(node: string, type: string): TypeStatus | undefined;
  close(): Promise<void>;
}

/** A control plane in-process on loopback (ports 0) with reviews, ratings and a 90/10 split of reviews. */
export async function startAdsPlane(prefix: string): Promise<AdsPlane> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const cp = await ControlPlane.start({ dataDir: dir, xdsListen: '127.0.0.1:0', xdsInsecureListen: '127.0.0.1:0', apiListen: '127.0.0.1:0', log: silentLogger() });
  const apply = (...docs: unknown[]) => cp.store.apply(docs, { author: 'test' });
  await apply(service('reviews'), service('ratings'), split(90, 10));
  return {
    cp,
    apply,
    statusOf: (node, type) => cp.discovery.proxies().find((p) => p.nodeId === node)?.types.find((t) => t.typeUrl === type),
    close: async () => { await cp.close(); fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

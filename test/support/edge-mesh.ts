/**
 * Two in-process sidecars for tests of the downstream edge, fed by one scripted ADS server:
 *
 *   caller -> client sidecar (outbound listener) -> server sidecar (inbound listener) -> app
 *
 * The client sidecar routes authority `svc` to the server sidecar's inbound port (a STATIC
 * cluster, HTTP/2 or HTTP/1.1); the server sidecar forwards everything to the app. Both listeners
 * of the edge are thus reachable: `outbound` (what apps call) and `inbound` (what peers call).
 * Both sidecars share one FakeClock (the stream idle timeout runs on it).
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { FakeClock } from '../../shared/src/clock';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import type { Sidecar } from '../../sidecar/src/sidecar';
import type { DownstreamSettings } from '../../sidecar/src/http/downstream-settings';
import { outboundListener, routeConfig, ScriptedAds, startFedSidecar, staticCluster } from './scripted-ads';

export interface EdgeMesh {
  ads: ScriptedAds;
  clock: FakeClock;
  client: Sidecar;
  server: Sidecar;
  /** The client sidecar's outbound listener (route authority `svc`). */
  outbound: string;
  /** The server sidecar's inbound listener (any authority). */
  inbound: string;
  stat(name: string): number;
  close(): Promise<void>;
}

/**
 * `appPort`: the app behind the server sidecar; `appProtocol` how the server sidecar speaks to
 * it; `hop` how the client sidecar speaks to the server sidecar.
 */
export async function startEdgeMesh(opts: { appPort: number; appProtocol: 'grpc' | 'http'; hop: 'h2' | 'h1'; downstream?: Partial<DownstreamSettings>; cluster?: Record<string, unknown> }): Promise<EdgeMesh> {
  const ads = await ScriptedAds.start();
  const clock = new FakeClock();
  const common = { clock, ...(opts.downstream !== undefined ? { downstream: opts.downstream } : {}) };
  let server: Sidecar | undefined;
  let client: Sidecar | undefined;
  try {
    ads.set(TYPE_URLS.LISTENER, [outboundListener('rc')]);
    ads.set(TYPE_URLS.ROUTE, [routeConfig('rc', 'svc', { cluster: 'svc' })]);
    ads.set(TYPE_URLS.CLUSTER, [{ ...staticCluster('svc', [{ address: '127.0.0.1', port: 1 }], { h2: opts.hop === 'h2' }), ...(opts.cluster ?? {}) }]);
    server = await startFedSidecar(ads, {
      ...common, nodeId: 'edge-server', service: 'svc', app: `127.0.0.1:${opts.appPort}`, appProtocol: opts.appProtocol,
      appHealth: { check: { kind: 'none' }, intervalMs: 1000, timeoutMs: 1000, unhealthyThreshold: 2, healthyThreshold: 2 },
    });
    const inbound = server.addresses()['inbound']!;
    const port = Number(inbound.slice(inbound.lastIndexOf(':') + 1));
    ads.set(TYPE_URLS.CLUSTER, [{ ...staticCluster('svc', [{ address: '127.0.0.1', port }], { h2: opts.hop === 'h2' }), ...(opts.cluster ?? {}) }]);
    client = await startFedSidecar(ads, { ...common, nodeId: 'edge-client' });
  } catch (e) {
    await server?.drain();
    ads.close();
    throw e;
  }
  const c = client;
  const s = server;
  return {
    ads, clock, client: c, server: s,
    outbound: c.addresses()['outbound']!,
    inbound: s.addresses()['inbound']!,
    stat(name: string): number {
      const sc = name.startsWith('listener.inbound.') || name.startsWith('cluster.skein.inbound.') ? s : c;
      const snap = sc.stats.snapshot(name);
      return snap.counters[name] ?? snap.gauges[name] ?? 0;
    },
    async close() {
      await Promise.all([c.drain(), s.drain()]);
      ads.close();
    },
  };
}

/** An HTTP/2 app: counts streams per path; `/hold` streams are answered only when release() is called. */
export async function startH2App(): Promise<{ port: number; streams: Map<string, number>; held: http2.ServerHttp2Stream[]; release(): void; close(): Promise<void> }> {
  const streams = new Map<string, number>();
  const held: http2.ServerHttp2Stream[] = [];
  const server = http2.createServer({ settings: { maxConcurrentStreams: 10_000 } });
  server.on('stream', (s, h) => {
    const path = String(h[':path']);
    streams.set(path, (streams.get(path) ?? 0) + 1);
    s.on('error', () => undefined);
    if (path.startsWith('/hold')) { held.push(s); return; }
    let n = 0;
    s.on('data', (c: Buffer) => { n += c.length; });
    s.on('end', () => {
      if (s.destroyed) return;
      s.respond({ ':status': 200, 'content-type': 'application/json' });
      s.end(JSON.stringify({ path, bytes: n, headers: h }));
    });
  });
  server.on('sessionError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => { sessions.add(s); s.on('close', () => sessions.delete(s)); });
  return {
    port: (server.address() as net.AddressInfo).port, streams, held,
    release() { for (const s of held.splice(0)) if (!s.destroyed) { s.respond({ ':status': 200 }); s.end('released'); } },
    close: () => new Promise<void>((r) => { for (const s of sessions) s.destroy(); server.close(() => r()); }),
  };
}

/**
 * An HTTP/1.1 app: counts requests per path and answers JSON {path, bytes, headers} once the
 * body ended; `/hold` requests are answered only on release(). No 'upgrade' listener: an Upgrade
 * request is answered as a plain request (the backend does not switch protocols).
 */
export async function startH1App(): Promise<{ port: number; requests: Map<string, number>; release(): void; close(): Promise<void> }> {
  const requests = new Map<string, number>();
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const path = req.url ?? '';
    requests.set(path, (requests.get(path) ?? 0) + 1);
    let n = 0;
    req.on('data', (c: Buffer) => { n += c.length; });
    req.on('end', () => {
      if (path.startsWith('/hold')) { held.push(res); return; }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path, bytes: n, headers: req.headers }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port, requests,
    release() { for (const r of held.splice(0)) r.end('released'); },
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
}

/** One HTTP/2 GET on its own session; resolves to the status (0 on any failure) and the x-skein-reason. */
export async function h2Get(address: string, authority: string, path: string): Promise<{ status: number; reason: string | undefined }> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://${address}`);
    session.on('error', () => undefined);
    const timer = setTimeout(() => { session.destroy(); resolve({ status: 0, reason: 'timeout' }); }, 10_000);
    const req = session.request({ ':method': 'GET', ':path': path, ':authority': authority });
    req.on('error', () => undefined);
    let status = 0;
    let reason: string | undefined;
    req.on('response', (h) => { status = Number(h[':status']); reason = h['x-skein-reason'] as string | undefined; });
    req.resume();
    req.on('close', () => { clearTimeout(timer); session.close(); resolve({ status, reason }); });
  });
}

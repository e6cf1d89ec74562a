/**
 * A scripted ADS server and an in-process sidecar fed by it, for tests that need xDS resources
 * the skein control plane never writes (STATIC clusters, hand-picked protocol options, fault
 * filters): the test sets each type's resources in Envoy's JSON shape, the server sends them
 * (state of the world) to the one sidecar that connects, and pushes again on every set().
 * It does not implement delta ADS (gRPC answers UNIMPLEMENTED), so a sidecar on the default
 * protocol falls back to state of the world with it, as with any SotW-only control plane.
 */
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../../shared/src/log';
import { FakeClock } from '../../shared/src/clock';
import type { Clock } from '../../shared/src/clock';
import { encodeResource } from '../../shared/src/xds/pack';
import { loadAdsServiceDefinition, TYPE_URLS } from '../../shared/src/xds/protos';
import { Sidecar } from '../../sidecar/src/sidecar';
import type { SidecarOptions } from '../../sidecar/src/sidecar';
import { eventually } from './ads-client';
import { testH2Engine } from './h2-engine';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = Record<string, any>;

export const HPO_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const ADS = { ads: {}, resource_api_version: 'V3' };

export class ScriptedAds {
  private readonly resources = new Map<string, Doc[]>();
  private readonly versions = new Map<string, number>();
  private readonly streams = new Set<grpc.ServerDuplexStream<Doc, Doc>>();
  /** Resource names each stream asked for, per type (to answer a changed subscription). */
  private readonly asked = new WeakMap<object, Map<string, string>>();
  private nonce = 0;
  /** Every NACK received: its type and error_detail.message. */
  readonly nacks: { typeUrl: string; message: string }[] = [];

  private constructor(private readonly server: grpc.Server, readonly port: number) {}

  static async start(): Promise<ScriptedAds> {
    const server = new grpc.Server();
    let self: ScriptedAds | undefined;
    server.addService(loadAdsServiceDefinition(), {
      StreamAggregatedResources: (c: grpc.ServerDuplexStream<Doc, Doc>) => self!.onStream(c),
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    self = new ScriptedAds(server, port);
    return self;
  }

  get target(): string { return `127.0.0.1:${this.port}`; }

  /** Replaces the resources of one type and pushes them to the connected sidecar. */
  set(typeUrl: string, docs: Doc[]): void {
    this.resources.set(typeUrl, docs);
    this.versions.set(typeUrl, (this.versions.get(typeUrl) ?? 0) + 1);
    for (const c of this.streams) this.send(c, typeUrl);
  }

  close(): void {
    for (const c of this.streams) c.end();
    this.server.forceShutdown();
  }

  private onStream(c: grpc.ServerDuplexStream<Doc, Doc>): void {
    this.streams.add(c);
    this.asked.set(c, new Map());
    c.on('error', () => undefined);
    c.on('close', () => this.streams.delete(c));
    c.on('end', () => this.streams.delete(c));
    c.on('data', (r: Doc) => {
      const type = String(r['type_url']);
      if (r['error_detail'] !== undefined && r['error_detail'] !== null) this.nacks.push({ typeUrl: type, message: String(r['error_detail']['message'] ?? '') });
      const names = JSON.stringify([...(r['resource_names'] ?? [])].sort());
      const seen = this.asked.get(c)!;
      // An ACK or NACK of what was sent, with the same names: nothing new to send.
      if (r['response_nonce'] && seen.get(type) === names) return;
      seen.set(type, names);
      if (this.resources.has(type)) this.send(c, type);
    });
  }

  private send(c: grpc.ServerDuplexStream<Doc, Doc>, typeUrl: string): void {
    const docs = this.resources.get(typeUrl) ?? [];
    c.write({ version_info: String(this.versions.get(typeUrl) ?? 0), type_url: typeUrl, nonce: String(++this.nonce), resources: docs.map((d) => encodeResource(typeUrl, d)) });
  }
}

// --- resource builders (Envoy JSON) ------------------------------------------------------

/** The outbound listener: an HCM reading `routeConfig` over ADS, with `httpFilters` before the router. */
export function outboundListener(routeConfig: string, httpFilters: Doc[] = []): Doc {
  return {
    name: 'skein.outbound', address: { socket_address: { address: '127.0.0.1', port_value: 15001 } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: {
      '@type': TYPE_URLS.HCM, stat_prefix: 'outbound',
      rds: { route_config_name: routeConfig, config_source: ADS },
      http_filters: [...httpFilters, { name: 'envoy.filters.http.router', typed_config: { '@type': TYPE_URLS.ROUTER } }],
    } }] }],
  };
}

/** One virtual host for `domain`, one prefix route `/` to `action` (a RouteAction). */
export function routeConfig(name: string, domain: string, action: Doc, extra: Doc = {}): Doc {
  return { name, virtual_hosts: [{ name: domain, domains: [domain], routes: [{ name: `${domain}-all`, match: { prefix: '/' }, route: action, ...extra }] }] };
}

/** A STATIC cluster with its hosts inline; `h2` selects HTTP/2 upstreams; `common` is common_http_protocol_options. */
export function staticCluster(name: string, hosts: { address: string; port: number }[], opts: { h2?: boolean; common?: Doc } = {}): Doc {
  return {
    name, type: 'STATIC', connect_timeout: { seconds: 1, nanos: 0 },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: hosts.map((h) => ({ endpoint: { address: { socket_address: { address: h.address, port_value: h.port } } } })) }] },
    typed_extension_protocol_options: { [HPO_KEY]: {
      '@type': TYPE_URLS.HTTP_PROTOCOL_OPTIONS,
      explicit_http_config: opts.h2 ? { http2_protocol_options: {} } : { http_protocol_options: {} },
      ...(opts.common ? { common_http_protocol_options: opts.common } : {}),
    } },
  };
}

/** A client-side sidecar in this process, fed by `ads`, ready (listener, routes and clusters arrived). */
export async function startFedSidecar(ads: ScriptedAds, over: Partial<SidecarOptions> & { clock?: Clock } = {}): Promise<Sidecar> {
  const sc = await Sidecar.start({
    xdsServer: ads.target, nodeId: 'scripted-test', version: 'v1',
    outboundListen: '127.0.0.1:0', inboundListen: '127.0.0.1:0', advertiseAddress: '127.0.0.1', adminListen: '127.0.0.1:0',
    leaseTtlMs: 10_000, drainTimeoutMs: 5000, clock: new FakeClock(), log: silentLogger(), ...testH2Engine(), ...over,
  });
  try {
    await eventually(() => (sc.ready().ok ? true : undefined), `the sidecar to be ready (${sc.ready().reason ?? ''})`);
  } catch (e) {
    await sc.drain();
    throw e;
  }
  return sc;
}

/**
 * A worker of `npm run bench:xds`: runs `count` simulated proxies, each a real ADS stream (state
 * of the world or delta, @grpc/grpc-js, its own connection) that subscribes like the skein
 * sidecar (LDS skein.outbound, CDS wildcard, EDS for every cluster it gets, RDS skein.outbound),
 * decodes every resource it receives and ACKs it. It reads the markers of the planned changes
 * (xds-bench-protocol.ts) off what it decodes and records, per change due to each of its
 * clients, the time from the change to the ACK of the response that brought it.
 */
import * as grpc from '@grpc/grpc-js';
import { decodeAny, loadAdsServiceDefinition, TYPE_URLS } from '../shared/src/xds/protos';
import { CHURN_MARKER_BASE, MsHistogram, ROUTE_MARKER_BASE, svcIndex, svcName } from './xds-bench-protocol';
import type { EventKind, FromWorker, ToWorker, WorkerInit } from './xds-bench-protocol';

const { LISTENER: LDS, ROUTE: RDS, CLUSTER: CDS, ENDPOINT: EDS } = TYPE_URLS;
const OUTBOUND = 'skein.outbound';
const send = (m: FromWorker): void => { if (process.connected) process.send!(m); };

interface AnyMsg { type_url: string; value: Buffer }
interface Cla { cluster_name?: string; endpoints?: { lb_endpoints?: { endpoint?: { address?: { socket_address?: { port_value?: number } } } }[] }[] }
interface Rc { virtual_hosts?: { name?: string; domains?: string[] }[] }

/** One planned change: its service, marker and (once the control plane made it) its time. */
interface Change { kind: EventKind; k: number; svc: number; marker: number; at: number | undefined; waiting: { client: number; t: number }[] }

let init: WorkerInit;
const changes: Record<EventKind, Map<number, Change[]>> = { route: new Map(), churn: new Map() };
const hist: Record<EventKind, MsHistogram> = { route: new MsHistogram(), churn: new MsHistogram() };
const due: Record<EventKind, number> = { route: 0, churn: 0 };
const credited: Record<EventKind, number> = { route: 0, churn: 0 };
let clients: SimClient[] = [];
let syncedCount = 0;
let lastSyncAt = 0;

function plan(kind: EventKind, list: number[], base: number): void {
  list.forEach((svc, i) => {
    const k = i + 1;
    let l = changes[kind].get(svc);
    if (l === undefined) { l = []; changes[kind].set(svc, l); }
    l.push({ kind, k, svc, marker: base + k, at: undefined, waiting: [] });
  });
}

function credit(c: Change, t: number): void {
  hist[c.kind].add(t - c.at!);
  credited[c.kind]++;
}

/** Whether client `i` (global index) is due changes to service `svc`: it is in its scope. */
function inScope(i: number, svc: number): boolean {
  return init.deps === null || init.deps[i % init.services]!.includes(svc);
}

/** Stream ends seen by this worker, by gRPC status code (a proxy reconnects after each). */
const streamErrors: Record<string, number> = {};
const ADS = { sotw: 'StreamAggregatedResources', delta: 'DeltaAggregatedResources' } as const;

class SimClient {
  private readonly client: grpc.Client;
  private call!: grpc.ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>;
  private readonly seen: Record<EventKind, Map<number, number>> = { route: new Map(), churn: new Map() };
  bytes = 0;
  /** Streams that ended (each followed by a reconnect after a second, as a proxy's backoff would). */
  reconnects = 0;
  open = false;
  private closed = false;
  private acked = new Set<string>();
  synced = false;
  /** CDS cluster names (EDS names to ask for). */
  private eds = new Set<string>();
  private edsAnswer: { version: string; nonce: string } | undefined;

  constructor(readonly index: number, ctor: grpc.ServiceClientConstructor) {
    this.client = new ctor(`127.0.0.1:${init.port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.max_receive_message_length': 256 * 1024 * 1024 });
    this.connect();
  }

  /** Opens the ADS stream and subscribes, from scratch (a reconnecting proxy resyncs everything). */
  private connect(): void {
    this.acked = new Set();
    this.eds = new Set();
    this.edsAnswer = undefined;
    const call = (this.client as unknown as Record<string, () => grpc.ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>>)[ADS[init.protocol]]!.call(this.client);
    this.call = call;
    this.open = true;
    call.on('data', (r: Record<string, unknown>) => { if (this.call === call) this.onResponse(r); });
    call.on('error', () => { /* the status follows */ });
    call.on('status', (st: grpc.StatusObject) => {
      if (this.call !== call || this.closed) return;
      this.open = false;
      this.reconnects++;
      streamErrors[String(st.code)] = (streamErrors[String(st.code)] ?? 0) + 1;
      setTimeout(() => { if (!this.closed) this.connect(); }, 1000 + Math.floor(Math.random() * 1000));
    });
    const node = { id: `bench-${this.index}`, cluster: svcName(this.index % init.services), user_agent_name: 'skein-xds-bench', user_agent_version: '1' };
    if (init.protocol === 'sotw') {
      call.write({ node, type_url: LDS, resource_names: [OUTBOUND] });
      call.write({ type_url: CDS, resource_names: [] });
      call.write({ type_url: RDS, resource_names: [OUTBOUND] });
    } else {
      call.write({ node, type_url: LDS, resource_names_subscribe: [OUTBOUND] });
      call.write({ type_url: CDS, resource_names_subscribe: ['*'] });
      call.write({ type_url: RDS, resource_names_subscribe: [OUTBOUND] });
    }
  }

  close(): void { this.closed = true; this.call.cancel(); this.client.close(); }

  private onResponse(r: Record<string, unknown>): void {
    const type = r['type_url'] as string;
    const anys: AnyMsg[] = init.protocol === 'sotw' ? (r['resources'] as AnyMsg[] ?? []) : ((r['resources'] as { resource: AnyMsg }[] | undefined) ?? []).map((x) => x.resource);
    const objs = anys.map((a) => { this.bytes += a.value.length; return decodeAny<Record<string, unknown>>(a); });
    const t = Date.now();
    if (init.protocol === 'sotw') {
      const names = type === CDS ? [] : type === EDS ? [...this.eds] : [OUTBOUND];
      this.call.write({ type_url: type, version_info: r['version_info'], response_nonce: r['nonce'], resource_names: names });
      if (type === EDS) this.edsAnswer = { version: r['version_info'] as string, nonce: r['nonce'] as string };
    } else {
      this.call.write({ type_url: type, response_nonce: r['nonce'] });
    }
    if (type === CDS) this.onClusters(objs, (r['removed_resources'] as string[] | undefined) ?? []);
    else if (type === EDS) for (const o of objs) this.onCla(o as Cla, t);
    else if (type === RDS) for (const o of objs) this.onRoutes(o as Rc, t);
    this.acked.add(type);
    if (!this.synced && this.acked.size === 4) { this.synced = true; syncedCount++; lastSyncAt = t; if (syncedCount === clients.length) send({ op: 'synced', at: lastSyncAt }); }
  }

  private onClusters(objs: Record<string, unknown>[], removed: string[]): void {
    const names = new Set(init.protocol === 'sotw' ? [] : this.eds);
    for (const n of removed) names.delete(n);
    for (const o of objs) names.add(o['name'] as string);
    const added = [...names].filter((n) => !this.eds.has(n));
    const gone = [...this.eds].filter((n) => !names.has(n));
    if (added.length === 0 && gone.length === 0) return;
    this.eds = names;
    if (init.protocol === 'delta') {
      this.call.write({ type_url: EDS, resource_names_subscribe: added, resource_names_unsubscribe: gone });
    } else if (this.edsAnswer === undefined) {
      this.call.write({ type_url: EDS, resource_names: [...names] });
    } else {
      this.call.write({ type_url: EDS, version_info: this.edsAnswer.version, response_nonce: this.edsAnswer.nonce, resource_names: [...names] });
    }
  }

  private onCla(o: Cla, t: number): void {
    const svc = svcIndex(o.cluster_name ?? '');
    if (svc < 0 || !changes.churn.has(svc)) return;
    let marker = 0;
    for (const l of o.endpoints ?? []) for (const e of l.lb_endpoints ?? []) marker = Math.max(marker, e.endpoint?.address?.socket_address?.port_value ?? 0);
    if (marker >= CHURN_MARKER_BASE) this.sighted('churn', svc, marker, t);
  }

  private onRoutes(o: Rc, t: number): void {
    for (const vh of o.virtual_hosts ?? []) {
      const svc = svcIndex(vh.name ?? '');
      if (svc < 0 || !changes.route.has(svc)) continue;
      let marker = 0;
      for (const d of vh.domains ?? []) { const i = d.lastIndexOf(':'); if (i > 0) marker = Math.max(marker, Number(d.slice(i + 1)) || 0); }
      if (marker >= ROUTE_MARKER_BASE) this.sighted('route', svc, marker, t);
    }
  }

  /** The client now holds `marker` for `svc`: every change up to it is converged for this client. */
  private sighted(kind: EventKind, svc: number, marker: number, t: number): void {
    const before = this.seen[kind].get(svc) ?? 0;
    if (marker <= before) return;
    this.seen[kind].set(svc, marker);
    if (!inScope(this.index, svc)) return;
    for (const c of changes[kind].get(svc)!) {
      if (c.marker <= before || c.marker > marker) continue;
      if (c.at === undefined) c.waiting.push({ client: this.index, t }); // seen before the parent told us when it was made
      else credit(c, t);
    }
  }
}

process.on('message', (m: ToWorker | { op: 'init'; init: WorkerInit }) => {
  if (m.op === 'init') {
    init = m.init;
    plan('route', init.plan.route, ROUTE_MARKER_BASE);
    plan('churn', init.plan.churn, CHURN_MARKER_BASE);
    send({ op: 'ready' });
  } else if (m.op === 'connect') {
    const ctor = grpc.makeClientConstructor(loadAdsServiceDefinition(), 'AggregatedDiscoveryService');
    clients = Array.from({ length: init.count }, (_, i) => new SimClient(init.first + i, ctor));
  } else if (m.op === 'event') {
    const c = changes[m.kind].get(m.svc)?.find((x) => x.k === m.k);
    if (c === undefined) return;
    c.at = m.at;
    for (const cl of clients) if (inScope(cl.index, m.svc)) due[m.kind]++;
    for (const w of c.waiting) credit(c, w.t);
    c.waiting = [];
  } else if (m.op === 'progress') {
    send({ op: 'progress', pending: { route: due.route - credited.route, churn: due.churn - credited.churn }, synced: syncedCount, reconnects: clients.reduce((n, c) => n + c.reconnects, 0), open: clients.filter((c) => c.open).length });
  } else if (m.op === 'report') {
    send({
      op: 'report', route: hist.route.pairs(), churn: hist.churn.pairs(),
      unconverged: { route: due.route - credited.route, churn: due.churn - credited.churn },
      bytes: clients.map((c) => c.bytes), rssMiB: process.memoryUsage().rss / (1024 * 1024), ended: clients.filter((c) => !c.open).length,
      reconnects: clients.reduce((n, c) => n + c.reconnects, 0), streamErrors,
    });
    for (const c of clients) c.close();
  }
});
process.on('disconnect', () => process.exit(0));

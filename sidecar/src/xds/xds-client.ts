/**
 * The sidecar's xDS client: one ADS stream to a control plane, incremental (delta, the default)
 * or state of the world (sotw).
 *
 *  - subscribe(typeUrl, names | '*') records what to ask for; the stream opens on the first one.
 *  - Each response is decoded whole with the same decoders and checks on both protocols
 *    (resource-batch.ts): any invalid resource NACKs the response and the last good config stays;
 *    otherwise it is ACKed and, if its bytes changed, listeners get the new immutable map.
 *    SotW (type-subscription.ts): LDS/CDS responses are the full set, RDS/EDS merge by name.
 *    Delta (delta-protocol.ts): updated resources and removed_resources on top of what is held.
 *  - A delta stream the server answers UNIMPLEMENTED (a control plane that serves only SotW) is
 *    reopened at once as SotW to that address, logged once; SotW stays the protocol for it.
 *  - When a stream ends, config is kept and the client reconnects with exponential backoff and
 *    full jitter (on the injected Clock), to the next of its servers (--xds A,B: each address of
 *    the list in turn, a DNS name standing for every address it resolves to). A new SotW stream
 *    re-sends every subscription with the last accepted version and no nonce; a new delta stream
 *    subscribes with initial_resource_versions, so the server sends only what changed. The
 *    backoff resets once a response arrives on the new stream.
 *
 * Each stream gets its own gRPC channel with a local subchannel pool, so grpc-js's own
 * reconnect backoff never sits under ours.
 */
import * as grpc from '@grpc/grpc-js';
import type { Clock, TimerHandle } from '../../../shared/src/clock';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { Logger } from '../../../shared/src/log';
import { loadAdsServiceDefinition } from '../../../shared/src/xds/protos';
import { Backoff } from './backoff';
import type { BackoffOptions } from './backoff';
import { answerRequest, applyDelta, changeRequest, initialRequest } from './delta-protocol';
import type { DeltaRequest, DeltaResponse, Told } from './delta-protocol';
import type { PackedResource, ResourceDecoder } from './resource-decoder';
import { TypeSubscription } from './type-subscription';
import type { ApplyResult, ResourceCheck, XdsTypeState } from './type-subscription';
import { DEFAULT_LIMITS } from './xds-limits';
import type { XdsClientLimits } from './xds-limits';
import { literalTargets, parseXdsServers, resolveTargets } from './xds-servers';
import type { XdsServer } from './xds-servers';

export type { XdsClientLimits } from './xds-limits';
export type { XdsError, XdsTypeState } from './type-subscription';

/** The ADS protocol: incremental (DeltaAggregatedResources) or state of the world (StreamAggregatedResources). */
export type XdsProtocol = 'delta' | 'sotw';
export const XDS_PROTOCOLS: readonly XdsProtocol[] = ['delta', 'sotw'];

export interface XdsNode {
  id: string;
  cluster: string;
  metadata?: Record<string, string>;
  /** Default 'skein-sidecar'. */
  userAgentName?: string;
  userAgentVersion?: string;
}

export interface XdsClientOptions {
  /** The control plane's xDS server: host:port, or several separated by commas (failover in that order). */
  server: string;
  /** Default 'delta'; a server that answers UNIMPLEMENTED to delta gets SotW. */
  protocol?: XdsProtocol;
  node: XdsNode;
  /** The decoder of each type URL subscribed to (decoders.ts: decoderMap). */
  types: ReadonlyMap<string, ResourceDecoder<unknown>>;
  clock: Clock;
  log: Logger;
  backoff?: BackoffOptions;
  /** Jitter source in [0, 1]. Default Math.random. */
  random?: () => number;
  limits?: Partial<XdsClientLimits>;
  /** Extra gRPC channel options (override the defaults below). */
  channelOptions?: grpc.ChannelOptions;
  /** How to reach the server: mTLS with the workload certificate, or (default) plaintext. */
  credentials?: grpc.ChannelCredentials;
  /** Checks a response's resources against other types' (a non-empty result NACKs it). */
  check?: ResourceCheck;
}

export interface XdsNack { typeUrl: string; version: string; nonce: string; message: string; errors: readonly string[] }
export interface XdsDisconnect { code: number; details: string; retryInMs: number | undefined }
/** One response as it came off the wire (before it is decoded): for observers and tests. */
export interface XdsResponseSeen { server: string; protocol: XdsProtocol; typeUrl: string; nonce: string; resources: number; removed: number }

type UpdateListener = (typeUrl: string, resources: ReadonlyMap<string, unknown>, version: string) => void;

interface WireRequest {
  type_url: string; version_info: string; resource_names: string[]; response_nonce: string;
  error_detail?: { code: number; message: string };
  node?: object;
}
interface WireResponse { version_info?: string; resources?: PackedResource[]; type_url?: string; nonce?: string }
type AnyResponse = WireResponse & DeltaResponse;
type AdsCall = grpc.ClientDuplexStream<WireRequest | DeltaRequest, AnyResponse>;
type AdsClient = grpc.Client & { StreamAggregatedResources(): AdsCall; DeltaAggregatedResources(): AdsCall };
interface Stream {
  client: AdsClient; call: AdsCall; target: string; protocol: XdsProtocol;
  nodeSent: boolean; connected: boolean;
  /** Delta: the names this stream told the server, per type. */
  told: Map<string, Told>;
}

export class XdsClient {
  private readonly subs = new Map<string, TypeSubscription>();
  private readonly limits: XdsClientLimits;
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private readonly node: object;
  private readonly ctor: grpc.ServiceClientConstructor;
  private readonly servers: XdsServer[];
  private readonly protocol: XdsProtocol;
  /** Addresses of this round not tried yet (the first is next). */
  private round: string[] = [];
  private resolving = false;
  /** Addresses that answered UNIMPLEMENTED to delta: SotW from then on. */
  private readonly sotwOnly = new Set<string>();
  private stream: Stream | undefined;
  private timer: TimerHandle | undefined;
  private closed = false;
  private readonly updateFns: UpdateListener[] = [];
  private readonly nackFns: ((n: XdsNack) => void)[] = [];
  private readonly connectFns: (() => void)[] = [];
  private readonly disconnectFns: ((d: XdsDisconnect) => void)[] = [];
  private readonly responseFns: ((r: XdsResponseSeen) => void)[] = [];

  constructor(private readonly opts: XdsClientOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.backoff = new Backoff(opts.backoff, opts.random);
    this.servers = parseXdsServers(opts.server, 'xds client: server');
    this.protocol = opts.protocol ?? 'delta';
    if (!XDS_PROTOCOLS.includes(this.protocol)) throw new MeshError(ErrorCodes.VALIDATION, `xds client: protocol must be delta or sotw, got "${String(this.protocol)}"`);
    this.log = opts.log.child({ component: 'xds-client' });
    this.ctor = grpc.makeClientConstructor(loadAdsServiceDefinition(), 'AggregatedDiscoveryService');
    const n = opts.node;
    const node: Record<string, unknown> = { id: n.id, cluster: n.cluster, user_agent_name: n.userAgentName ?? 'skein-sidecar' };
    if (n.userAgentVersion !== undefined) node['user_agent_version'] = n.userAgentVersion;
    if (n.metadata !== undefined) node['metadata'] = { fields: Object.fromEntries(Object.entries(n.metadata).map(([k, v]) => [k, { stringValue: v }])) };
    this.node = node;
  }

  /** Sets the names wanted for a type ('*': all, for LDS/CDS). Replaces the previous set. */
  subscribe(typeUrl: string, names: readonly string[] | '*'): void {
    if (this.closed) throw new MeshError(ErrorCodes.INTERNAL, 'xds client: subscribe after close');
    const type = this.opts.types.get(typeUrl);
    if (type === undefined) throw new MeshError(ErrorCodes.VALIDATION, `xds client: no decoder for ${typeUrl}`);
    this.checkNames(typeUrl, type.kind.fullState, names);
    let sub = this.subs.get(typeUrl);
    const fresh = sub === undefined;
    if (sub === undefined) {
      sub = new TypeSubscription(type, this.limits);
      this.subs.set(typeUrl, sub);
    }
    const held = sub.resources;
    // Names no longer wanted are dropped at once (a delta server never answers an unsubscribe).
    const changed = sub.setNames(names, true);
    if (sub.resources !== held) this.emitLater(sub);
    if (!fresh && !changed) return;
    const s = this.stream;
    if (s !== undefined) {
      if (s.protocol === 'sotw') this.sendSotw(s, sub);
      else {
        const req = fresh ? initialRequest(sub, this.toldOf(s, typeUrl)) : changeRequest(sub, this.toldOf(s, typeUrl));
        if (req !== undefined) this.write(s, req);
      }
    } else if (this.timer === undefined && !this.resolving) this.open();
  }

  onUpdate(fn: UpdateListener): () => void { return add(this.updateFns, fn); }
  onNack(fn: (n: XdsNack) => void): () => void { return add(this.nackFns, fn); }
  /** The first response arrived on a new stream. */
  onConnect(fn: () => void): () => void { return add(this.connectFns, fn); }
  /** A stream that had received a response ended; `retryInMs` is the scheduled reconnect. */
  onDisconnect(fn: (d: XdsDisconnect) => void): () => void { return add(this.disconnectFns, fn); }
  /** Every response received, before it is applied (what a server sent, e.g. to see that a reconnect re-sent nothing). */
  onResponse(fn: (r: XdsResponseSeen) => void): () => void { return add(this.responseFns, fn); }

  /** True while a stream is up and has received at least one response. */
  get connected(): boolean { return this.stream?.connected === true; }

  /** The server and protocol of the current stream (undefined between streams). */
  get current(): { server: string; protocol: XdsProtocol } | undefined {
    const s = this.stream;
    return s === undefined ? undefined : { server: s.target, protocol: s.protocol };
  }

  /** The accepted resources of one type (an immutable snapshot). */
  resources<T = unknown>(typeUrl: string): ReadonlyMap<string, T> {
    return (this.subs.get(typeUrl)?.resources ?? new Map()) as ReadonlyMap<string, T>;
  }

  /** Per subscribed type: version, nonce, decoded resources and the last error (for /config_dump). */
  state(): XdsTypeState[] { return [...this.subs.values()].map((s) => s.snapshot()); }

  /** Stops reconnecting and cancels the stream. Accepted config stays readable. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    const s = this.stream;
    this.stream = undefined;
    if (s !== undefined) { s.call.cancel(); s.client.close(); }
  }

  /** Opens a stream to the next address of the round (resolving a new round when this one is done). */
  private open(): void {
    const next = this.round.shift();
    if (next !== undefined) { this.openTo(next); return; }
    const literal = literalTargets(this.servers);
    if (literal !== undefined) { this.round = literal; this.openTo(this.round.shift()!); return; }
    this.resolving = true;
    void resolveTargets(this.servers).then((targets) => {
      this.resolving = false;
      if (this.closed || this.stream !== undefined || this.timer !== undefined) return;
      this.round = targets;
      this.openTo(this.round.shift()!);
    });
  }

  private openTo(target: string): void {
    const client = new this.ctor(target, this.opts.credentials ?? grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': this.limits.maxMessageBytes,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.use_local_subchannel_pool': 1,
      ...this.opts.channelOptions,
    }) as unknown as AdsClient;
    const protocol: XdsProtocol = this.protocol === 'sotw' || this.sotwOnly.has(target) ? 'sotw' : 'delta';
    const call = protocol === 'delta' ? client.DeltaAggregatedResources() : client.StreamAggregatedResources();
    const s: Stream = { client, call, target, protocol, nodeSent: false, connected: false, told: new Map() };
    this.stream = s;
    call.on('data', (r: AnyResponse) => {
      if (this.stream !== s) return;
      try {
        this.handle(s, r);
      } catch (e) {
        this.log.error({ err: e }, 'xDS response handling failed');
      }
    });
    call.on('status', (st: grpc.StatusObject) => this.onEnd(s, st.code, st.details));
    call.on('error', (e: grpc.ServiceError) => this.onEnd(s, e.code ?? grpc.status.UNKNOWN, e.details ?? e.message));
    for (const sub of this.subs.values()) {
      sub.nonce = ''; // a new stream: the server resyncs from scratch (delta: from what we tell it we hold)
      if (protocol === 'sotw') this.sendSotw(s, sub);
      else this.write(s, initialRequest(sub, this.toldOf(s, sub.typeUrl)));
    }
    this.log.debug({ server: target, protocol, attempt: this.backoff.attempts }, 'xDS stream opened');
  }

  private onEnd(s: Stream, code: number, details: string): void {
    if (this.stream !== s) return;
    this.stream = undefined;
    s.client.close();
    if (this.closed) return;
    if (s.protocol === 'delta' && code === grpc.status.UNIMPLEMENTED && !s.connected && !this.sotwOnly.has(s.target)) {
      this.sotwOnly.add(s.target);
      this.log.warn({ server: s.target, details }, 'the control plane does not serve delta xDS (UNIMPLEMENTED); using state-of-the-world ADS with it');
      this.openTo(s.target);
      return;
    }
    const retryInMs = this.backoff.next();
    this.timer = this.opts.clock.setTimer(retryInMs, () => {
      this.timer = undefined;
      if (!this.closed) this.open();
    });
    const next = this.round[0] ?? (this.servers.length === 1 ? s.target : 'the first address of the list');
    this.log.warn({ server: s.target, protocol: s.protocol, code, details, retryInMs: Math.round(retryInMs), next, attempt: this.backoff.attempts }, 'xDS stream ended; keeping the last good config and reconnecting');
    if (s.connected) emit(this.log, this.disconnectFns, { code, details, retryInMs });
  }

  private handle(s: Stream, r: AnyResponse): void {
    if (!s.connected) {
      s.connected = true;
      this.backoff.reset();
      this.round = this.roundAfter(s.target); // a failure from here goes on down the list
      this.log.info({ server: s.target, protocol: s.protocol }, 'xDS stream connected');
      emit(this.log, this.connectFns);
    }
    const typeUrl = typeof r.type_url === 'string' ? r.type_url : '';
    const nonce = typeof r.nonce === 'string' ? r.nonce : '';
    const version = (s.protocol === 'delta' ? r.system_version_info : r.version_info) ?? '';
    emit(this.log, this.responseFns, { server: s.target, protocol: s.protocol, typeUrl, nonce, resources: r.resources?.length ?? 0, removed: r.removed_resources?.length ?? 0 });
    if (nonce === '') {
      this.log.warn({ typeUrl, version }, 'ignoring an xDS response without a nonce');
      return;
    }
    const sub = this.subs.get(typeUrl);
    if (sub === undefined) {
      const message = `unexpected type_url ${JSON.stringify(typeUrl.slice(0, 256))}: not subscribed`;
      const error_detail = { code: 3, message };
      this.write(s, s.protocol === 'delta' ? { type_url: typeUrl, response_nonce: nonce, error_detail } : { type_url: typeUrl, version_info: '', resource_names: [], response_nonce: nonce, error_detail });
      this.log.warn({ typeUrl, nonce }, 'NACKed an xDS response of a type not subscribed to');
      emit(this.log, this.nackFns, { typeUrl, version, nonce, message, errors: [message] });
      return;
    }
    const now = this.opts.clock.now();
    const result: ApplyResult = s.protocol === 'delta'
      ? applyDelta(sub, r, nonce, now, this.opts.check)
      : sub.apply({ version_info: version, nonce, resources: r.resources ?? [] }, now, this.opts.check);
    if (result.kind === 'rejected') {
      this.answer(s, sub, nonce);
      this.log.warn({ typeUrl, version, keptVersion: sub.version, error: result.message }, 'NACKed an xDS response');
      emit(this.log, this.nackFns, { typeUrl, version, nonce, message: result.message, errors: result.errors });
      return;
    }
    // Apply first, then ACK: an ACK says the config is in use.
    if (result.changed) {
      this.log.info({ typeUrl, version: sub.version, count: sub.resources.size }, 'xDS update accepted');
      this.emitUpdate(sub);
    }
    if (this.stream === s) this.answer(s, sub, nonce);
  }

  /** The addresses after `target`, in list order: where the next failover goes. */
  private roundAfter(target: string): string[] {
    const all = literalTargets(this.servers);
    if (all === undefined) return []; // names: resolved again for the next round
    const i = all.indexOf(target);
    return i < 0 ? [] : all.slice(i + 1);
  }

  private answer(s: Stream, sub: TypeSubscription, nonce: string): void {
    if (s.protocol === 'sotw') this.sendSotw(s, sub);
    else this.write(s, answerRequest(sub, nonce));
  }

  private emitUpdate(sub: TypeSubscription): void {
    for (const fn of [...this.updateFns]) {
      try { fn(sub.typeUrl, sub.resources, sub.version); } catch (e) { this.log.error({ err: e, typeUrl: sub.typeUrl }, 'xDS update listener failed'); }
    }
  }

  /** Resources dropped by a subscription change: listeners hear of it after the caller's turn (no server answer will carry it). */
  private emitLater(sub: TypeSubscription): void {
    const map = sub.resources;
    queueMicrotask(() => { if (!this.closed && sub.resources === map) this.emitUpdate(sub); });
  }

  private toldOf(s: Stream, typeUrl: string): Told {
    let t = s.told.get(typeUrl);
    if (t === undefined) { t = new Set(); s.told.set(typeUrl, t); }
    return t;
  }

  private sendSotw(s: Stream, sub: TypeSubscription): void {
    this.write(s, sub.request());
  }

  private write(s: Stream, req: WireRequest | DeltaRequest): void {
    if (!s.nodeSent) { req.node = this.node; s.nodeSent = true; }
    try {
      s.call.write(req);
    } catch (e) {
      this.log.warn({ err: e, typeUrl: req.type_url }, 'failed to write an xDS request');
    }
  }

  private checkNames(typeUrl: string, fullState: boolean, names: readonly string[] | '*'): void {
    if (names === '*') {
      if (!fullState) throw new MeshError(ErrorCodes.VALIDATION, `xds client: a wildcard subscription is for LDS and CDS only, not ${typeUrl}`);
      return;
    }
    const { maxSubscribedNames, maxNameLength } = this.limits;
    if (names.length > maxSubscribedNames) throw new MeshError(ErrorCodes.VALIDATION, `xds client: ${names.length} names for ${typeUrl}; at most ${maxSubscribedNames}`);
    const bad = names.find((n) => typeof n !== 'string' || n === '' || n === '*' || n.length > maxNameLength);
    if (bad !== undefined) throw new MeshError(ErrorCodes.VALIDATION, `xds client: invalid resource name ${JSON.stringify(String(bad).slice(0, 64))} for ${typeUrl}`);
  }
}

function add<F>(list: F[], fn: F): () => void {
  list.push(fn);
  return () => { const i = list.indexOf(fn); if (i >= 0) list.splice(i, 1); };
}

function emit<A extends unknown[]>(log: Logger, fns: ((...a: A) => void)[], ...args: A): void {
  for (const fn of [...fns]) {
    try { fn(...args); } catch (e) { log.error({ err: e }, 'xDS client listener failed'); }
  }
}

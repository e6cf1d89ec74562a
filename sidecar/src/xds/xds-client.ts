/**
 * The sidecar's xDS client: one ADS stream (state of the world) to the control plane.
 *
 *  - subscribe(typeUrl, names | '*') records what to ask for; the stream opens on the first one.
 *  - Each response is decoded whole (TypeSubscription.apply): any invalid resource NACKs the
 *    response and the last good config stays; otherwise it is ACKed and, if its bytes changed,
 *    listeners get the new immutable map (LDS/CDS: the full set; RDS/EDS: merged by name).
 *  - When the stream ends, config is kept and the client reconnects with exponential backoff and
 *    full jitter (on the injected Clock). Every subscription is re-sent with the last accepted
 *    version and no nonce; the server then resyncs from scratch. The backoff resets once a
 *    response arrives on the new stream.
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
import type { PackedResource, ResourceDecoder } from './resource-decoder';
import { DEFAULT_LIMITS, TypeSubscription } from './type-subscription';
import type { ResourceCheck, XdsClientLimits, XdsTypeState } from './type-subscription';

export type { XdsClientLimits, XdsError, XdsTypeState } from './type-subscription';

export interface XdsNode {
  id: string;
  cluster: string;
  metadata?: Record<string, string>;
  /** Default 'skein-sidecar'. */
  userAgentName?: string;
  userAgentVersion?: string;
}

export interface XdsClientOptions {
  /** host:port of the control plane's xDS server. */
  server: string;
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

type UpdateListener = (typeUrl: string, resources: ReadonlyMap<string, unknown>, version: string) => void;

interface WireRequest {
  type_url: string; version_info: string; resource_names: string[]; response_nonce: string;
  error_detail?: { code: number; message: string };
  node?: object;
}
interface WireResponse { version_info?: string; resources?: PackedResource[]; type_url?: string; nonce?: string }
type AdsCall = grpc.ClientDuplexStream<WireRequest, WireResponse>;
type AdsClient = grpc.Client & { StreamAggregatedResources(): AdsCall };
interface Stream { client: AdsClient; call: AdsCall; nodeSent: boolean; connected: boolean }

export class XdsClient {
  private readonly subs = new Map<string, TypeSubscription>();
  private readonly limits: XdsClientLimits;
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private readonly node: object;
  private readonly ctor: grpc.ServiceClientConstructor;
  private stream: Stream | undefined;
  private timer: TimerHandle | undefined;
  private closed = false;
  private readonly updateFns: UpdateListener[] = [];
  private readonly nackFns: ((n: XdsNack) => void)[] = [];
  private readonly connectFns: (() => void)[] = [];
  private readonly disconnectFns: ((d: XdsDisconnect) => void)[] = [];

  constructor(private readonly opts: XdsClientOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.backoff = new Backoff(opts.backoff, opts.random);
    this.log = opts.log.child({ component: 'xds-client', server: opts.server });
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
    const changed = sub.setNames(names);
    if (!fresh && !changed) return;
    if (this.stream !== undefined) this.send(this.stream, sub);
    else if (this.timer === undefined) this.open();
  }

  onUpdate(fn: UpdateListener): () => void { return add(this.updateFns, fn); }
  onNack(fn: (n: XdsNack) => void): () => void { return add(this.nackFns, fn); }
  /** The first response arrived on a new stream. */
  onConnect(fn: () => void): () => void { return add(this.connectFns, fn); }
  /** A stream that had received a response ended; `retryInMs` is the scheduled reconnect. */
  onDisconnect(fn: (d: XdsDisconnect) => void): () => void { return add(this.disconnectFns, fn); }

  /** True while a stream is up and has received at least one response. */
  get connected(): boolean { return this.stream?.connected === true; }

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

  private open(): void {
    const client = new this.ctor(this.opts.server, this.opts.credentials ?? grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': this.limits.maxMessageBytes,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.use_local_subchannel_pool': 1,
      ...this.opts.channelOptions,
    }) as unknown as AdsClient;
    const call = client.StreamAggregatedResources();
    const s: Stream = { client, call, nodeSent: false, connected: false };
    this.stream = s;
    call.on('data', (r: WireResponse) => {
      if (this.stream !== s) return;
      try {
        this.onResponse(s, r);
      } catch (e) {
        this.log.error({ err: e }, 'xDS response handling failed');
      }
    });
    call.on('status', (st: grpc.StatusObject) => this.onEnd(s, st.code, st.details));
    call.on('error', (e: grpc.ServiceError) => this.onEnd(s, e.code ?? grpc.status.UNKNOWN, e.details ?? e.message));
    for (const sub of this.subs.values()) {
      sub.nonce = ''; // a new stream: the server resyncs from scratch
      this.send(s, sub);
    }
    this.log.debug({ attempt: this.backoff.attempts }, 'xDS stream opened');
  }

  private onEnd(s: Stream, code: number, details: string): void {
    if (this.stream !== s) return;
    this.stream = undefined;
    s.client.close();
    if (this.closed) return;
    const retryInMs = this.backoff.next();
    this.timer = this.opts.clock.setTimer(retryInMs, () => {
      this.timer = undefined;
      if (!this.closed) this.open();
    });
    this.log.warn({ code, details, retryInMs: Math.round(retryInMs), attempt: this.backoff.attempts }, 'xDS stream ended; keeping the last good config and reconnecting');
    if (s.connected) emit(this.log, this.disconnectFns, { code, details, retryInMs });
  }

  private onResponse(s: Stream, r: WireResponse): void {
    if (!s.connected) {
      s.connected = true;
      this.backoff.reset();
      this.log.info('xDS stream connected');
      emit(this.log, this.connectFns);
    }
    const typeUrl = typeof r.type_url === 'string' ? r.type_url : '';
    const nonce = typeof r.nonce === 'string' ? r.nonce : '';
    if (nonce === '') {
      this.log.warn({ typeUrl, version: r.version_info }, 'ignoring an xDS response without a nonce');
      return;
    }
    const sub = this.subs.get(typeUrl);
    if (sub === undefined) {
      const message = `unexpected type_url ${JSON.stringify(typeUrl.slice(0, 256))}: not subscribed`;
      this.write(s, { type_url: typeUrl, version_info: '', resource_names: [], response_nonce: nonce, error_detail: { code: 3, message } });
      this.log.warn({ typeUrl, nonce }, 'NACKed an xDS response of a type not subscribed to');
      emit(this.log, this.nackFns, { typeUrl, version: r.version_info ?? '', nonce, message, errors: [message] });
      return;
    }
    const result = sub.apply({ version_info: r.version_info ?? '', nonce, resources: r.resources ?? [] }, this.opts.clock.now(), this.opts.check);
    if (result.kind === 'rejected') {
      this.send(s, sub);
      this.log.warn({ typeUrl, version: r.version_info, keptVersion: sub.version, error: result.message }, 'NACKed an xDS response');
      emit(this.log, this.nackFns, { typeUrl, version: r.version_info ?? '', nonce, message: result.message, errors: result.errors });
      return;
    }
    // Apply first, then ACK: an ACK says the config is in use.
    if (result.changed) {
      this.log.info({ typeUrl, version: sub.version, count: sub.resources.size }, 'xDS update accepted');
      for (const fn of [...this.updateFns]) {
        try { fn(typeUrl, sub.resources, sub.version); } catch (e) { this.log.error({ err: e, typeUrl }, 'xDS update listener failed'); }
      }
    }
    if (this.stream === s) this.send(s, sub);
  }

  private send(s: Stream, sub: TypeSubscription): void {
    const req: WireRequest = sub.request();
    if (!s.nodeSent) { req.node = this.node; s.nodeSent = true; }
    this.write(s, req);
  }

  private write(s: Stream, req: WireRequest): void {
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

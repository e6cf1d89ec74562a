import type * as grpc from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import type { Clock } from '../../../shared/src/clock';
import type { Logger } from '../../../shared/src/log';
import { PUSH_ORDER } from '../../../shared/src/xds/resource-kind';
import type { ProxyStatus, SyncState, TypeStatus } from './proxy-status';
import { worst } from './proxy-status';
import type { CachedResource, SnapshotCache, SnapshotChange } from './snapshot-cache';
import type { SubscriberIndex } from './subscriber-index';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { OUTBOUND } from '../translate/names';
import { inScope, serviceOf } from '../translate/scope';
import type { Scope } from '../translate/scope';

/** The node a client sends on its first request (proto-loader object shape, snake_case). */
export interface XdsNode {
  id?: string; cluster?: string; user_agent_name?: string; user_agent_version?: string;
  /** google.protobuf.Struct as proto-loader decodes it: its bundled well-known types name Value's fields in camelCase. */
  metadata?: { fields?: Record<string, { stringValue?: string; string_value?: string } | undefined> };
  user_agent_build_version?: { version?: { major_number?: number; minor_number?: number; patch?: number } };
}

/** Limits on what one client may ask for; anything beyond is a protocol error. */
export const REQUEST_LIMITS = { maxNames: 10_000, maxNameLength: 1024, maxTypeUrlLength: 256, maxNodeIdLength: 256 } as const;

/**
 * One ADS stream as the DiscoveryServer drives it, whatever its protocol (state of the world,
 * ads-stream.ts, or incremental, delta-stream.ts).
 */
export interface XdsStream {
  readonly id: string;
  readonly nodeId: string;
  userAgent(): string;
  subscribes(type: string, name: string): boolean;
  /** Handles one request. Returns an error message for a protocol violation (the caller ends the stream). */
  onRequest(req: unknown): string | undefined;
  /** Marks the types a change touches for this stream without pushing; returns them. */
  onSnapshot(change: SnapshotChange): string[];
  /** Pushes what onSnapshot marked (until backpressure). */
  flush(): void;
  /** Reports as ACKED each touched type that has nothing new to send and whose last response was ACKed. */
  reportUnchanged(touched: readonly string[]): void;
  /** The type furthest behind and since when (clock ms); undefined when every type is in step. */
  behind(): { type: string; since: number } | undefined;
  close(): void;
  shutdown(reason: string): void;
  status(): ProxyStatus;
}

/**
 * Told when a client answers a response: ACKED with the newest config revision the client now
 * has for that type, or NACKED with the revision of the rejected response and the client's error.
 */
export type AnswerListener = (stream: XdsStream, typeUrl: string, state: 'ACKED' | 'NACKED', revision: number, error?: string) => void;

/** What a stream reports for the monitoring listener's histograms (monitoring/xds-metrics.ts). */
export interface StreamHooks {
  /** A response of `type` went out; `seconds` it took to build and write it. */
  sent(type: string, seconds: number): void;
  /** The client ACKed everything of `type` after a snapshot change: `seconds` from the change to that ACK. */
  converged(type: string, seconds: number): void;
}

/** The client's user agent as name/version, e.g. grpc-node-js/1.14.1. */
export function userAgentOf(n: XdsNode | undefined): string {
  if (n === undefined) return '';
  const v = n.user_agent_version ?? (n.user_agent_build_version?.version
    ? `${n.user_agent_build_version.version.major_number ?? 0}.${n.user_agent_build_version.version.minor_number ?? 0}.${n.user_agent_build_version.version.patch ?? 0}` : '');
  return `${n.user_agent_name ?? 'unknown'}${v ? `/${v}` : ''}`;
}

/** Checks a request's type URL, names and node against REQUEST_LIMITS; `what` names the message and its names field. */
export function checkLimits(what: { message: string; namesField: string }, typeUrl: unknown, names: readonly string[], node: XdsNode | undefined): string | undefined {
  if (typeof typeUrl !== 'string' || typeUrl === '') return `${what.message}.type_url is required on ADS`;
  if (typeUrl.length > REQUEST_LIMITS.maxTypeUrlLength) return `${what.message}.type_url is too long`;
  if (names.length > REQUEST_LIMITS.maxNames) return `${what.message}.${what.namesField} has ${names.length} names; at most ${REQUEST_LIMITS.maxNames}`;
  if (names.some((n) => n.length > REQUEST_LIMITS.maxNameLength)) return `${what.message}.${what.namesField} has a name over ${REQUEST_LIMITS.maxNameLength} characters`;
  if ((node?.id?.length ?? 0) > REQUEST_LIMITS.maxNodeIdLength) return `${what.message}.node.id is too long`;
  return undefined;
}

/**
 * The service a proxy runs for: its node metadata `service` (the skein sidecar sends it with
 * --service), else node.cluster (Envoy's --service-cluster). Its spec.dependsOn scopes what it is sent.
 */
export function serviceOfNode(n: XdsNode | undefined): string | undefined {
  const f = n?.metadata?.fields?.['service'];
  const s = f?.stringValue ?? f?.string_value;
  if (typeof s === 'string' && s !== '') return s;
  return n?.cluster === undefined || n.cluster === '' ? undefined : n.cluster;
}

/** A time in ms since the epoch as ISO 8601, or null. */
export function iso(ms: number | null): string | null { return ms === null ? null : new Date(ms).toISOString(); }

/**
 * Responses a stream may have queued in its transport at once. One per served type: a healthy
 * client takes each in microseconds; a stalled one holds at most this many, and every change
 * after that coalesces into the single latest response per type.
 */
export const MAX_IN_FLIGHT = 4;

/** What status() reports about a stream besides its types. */
export interface StreamFacts {
  id: string;
  node: XdsNode | undefined;
  peer: string;
  identity: string;
  connectedAt: number;
  revision: number;
}

/** A stream's ProxyStatus from its per-type statuses (the worst type's state; the oldest ACKed revision). */
export function proxyStatus(f: StreamFacts, types: TypeStatus[], behind: ProxyStatus['behind'] = null): ProxyStatus {
  return {
    streamId: f.id,
    nodeId: f.node?.id ?? '',
    cluster: f.node?.cluster ?? '',
    userAgent: userAgentOf(f.node),
    peer: f.peer,
    identity: f.identity,
    connectedAt: new Date(f.connectedAt).toISOString(),
    state: worst(types.map((t) => t.state)),
    currentRevision: f.revision,
    ackedRevision: types.reduce((min, t) => Math.min(min, t.ackedRevision ?? 0), f.revision),
    behind,
    types,
  };
}

/** What every stream keeps per type, whatever its protocol. */
export interface TypeStateBase {
  /** Subscribed to every resource of the type. */
  wildcard: boolean;
  /** Names subscribed explicitly. */
  names: Set<string>;
  /** The version of the last response sent (of the whole set it gives the client), its config revision and time. */
  sentVersion: string | null;
  sentRevision: number | null;
  sentAt: number | null;
  ackedVersion: string | null;
  /** The config revision of the response the client last ACKed. */
  ackedRevision: number | null;
  ackedAt: number | null;
  lastNack: TypeStatus['lastNack'];
  /** True once a NACK arrived for the last response: stays until a new one is sent. */
  nacked: boolean;
  /**
   * Since when (clock ms) the client lacks something of this type: a snapshot change it has not
   * ACKed (`behindCause` 'change', from the change's time), or a subscription not yet answered
   * ('subscribe'). null when it is in step.
   */
  behindSince: number | null;
  behindCause: 'change' | 'subscribe';
}

/** A fresh TypeStateBase: nothing subscribed (`names`: an empty set, StreamBase.namesFor), sent or answered. */
export function freshTypeState(names: Set<string>): TypeStateBase {
  return { wildcard: false, names, sentVersion: null, sentRevision: null, sentAt: null, ackedVersion: null, ackedRevision: null, ackedAt: null, lastNack: null, nacked: false, behindSince: null, behindCause: 'subscribe' };
}

/**
 * What both stream kinds share: the node, per-type state, the types marked for a push (`dirty`),
 * write backpressure (at most MAX_IN_FLIGHT responses queued, the rest coalesces), ACK/NACK
 * bookkeeping and the status. A push is computed from the snapshot at the moment the stream can
 * take it, so a slow client coalesces updates instead of queueing them, and never delays another.
 */
export abstract class StreamBase<St extends TypeStateBase, Req, Res> implements XdsStream {
  readonly id: string;
  protected readonly types = new Map<string, St>();
  protected readonly dirty = new Set<string>();
  protected node: XdsNode | undefined = undefined;
  /** The service this proxy runs for (serviceOfNode), once the node is known. */
  private service: string | undefined = undefined;
  private nonce = 0;
  /** Responses written but not yet taken by HTTP/2. */
  private inFlight = 0;
  protected closed = false;
  private readonly connectedAt: number;

  constructor(
    protected readonly call: grpc.ServerDuplexStream<Req, Res>,
    protected readonly cache: SnapshotCache,
    protected readonly clock: Clock,
    protected readonly log: Logger,
    id: string,
    protected readonly onAnswer: AnswerListener,
    /** The SPIFFE ID the client authenticated with, or '' on the plaintext listener. */
    private readonly identity: string,
    /** Told of each response sent and each convergence (the monitoring listener's metrics). */
    private readonly hooks: StreamHooks,
    /** Where the names this stream subscribes to are indexed (DiscoveryServer offers changes through it). */
    private readonly subscribers: SubscriberIndex<XdsStream>,
  ) {
    this.id = id;
    this.connectedAt = clock.now();
  }

  get nodeId(): string { return this.node?.id ?? ''; }

  /** The client's user agent as name/version, e.g. grpc-node-js/1.14.1. */
  userAgent(): string { return userAgentOf(this.node); }

  /** Whether this client would receive resource `name` of `type` (it subscribed by name, or by a wildcard that covers it within its scope). */
  subscribes(type: string, name: string): boolean {
    const st = this.types.get(type);
    return st !== undefined && (st.names.has(name) || (st.wildcard && inScope(this.scope(), type, name)));
  }

  abstract onRequest(req: Req): string | undefined;

  /** Takes the node from a stream's first request; an error message if it has none. */
  protected adoptNode(node: XdsNode | undefined, message: string, protocol: string): string | undefined {
    if (this.node !== undefined) return undefined;
    if (node === undefined) return `the first ${message} on a stream must carry node`;
    this.node = node;
    this.service = serviceOfNode(node);
    this.log.info({ stream: this.id, node: this.nodeId, userAgent: this.userAgent(), protocol }, 'xDS client connected');
    return undefined;
  }

  /** Whether the snapshot serves `type`; a request for another type is ignored (and logged at debug). */
  protected served(type: string): boolean {
    if (this.cache.has(type)) return true;
    this.log.debug({ stream: this.id, type }, 'ignoring request for an unserved type');
    return false;
  }

  /**
   * Marks the types a snapshot change touches for this stream, without pushing yet (`flush`
   * pushes). Returns those types, so the caller can follow what the client does with them.
   */
  onSnapshot(change: SnapshotChange): string[] {
    const touched: string[] = [];
    const scope = this.scope();
    const rescoped = this.rescopedBy(change);
    for (const [type, st] of this.types) {
      const names = change.changed.get(type);
      const hit = (rescoped && (st.wildcard || st.names.has(OUTBOUND))) || (names !== undefined && this.touches(type, st, names, scope));
      if (hit) {
        this.dirty.add(type);
        touched.push(type);
        if (st.behindSince === null) { st.behindSince = change.at ?? this.clock.now(); st.behindCause = 'change'; }
      }
    }
    return touched;
  }

  /**
   * Whether changed `names` of `type` reach this client: a name it subscribed to, or one its
   * wildcard covers within its scope. A scoped proxy's outbound route table changes only when a
   * service of its scope does (a per-service RouteConfiguration of its scope changed).
   */
  private touches(type: string, st: St, names: ReadonlySet<string>, scope: Scope | undefined): boolean {
    for (const n of names) {
      if (st.names.has(n)) {
        if (scope === undefined || n !== OUTBOUND || type !== TYPE_URLS.ROUTE) return true;
        for (const m of names) if (m !== OUTBOUND && scope.services.has(serviceOf(type, m) ?? '')) return true;
      } else if (st.wildcard && inScope(scope, type, n)) {
        return true;
      }
    }
    return false;
  }

  /** Whether `change` changed this proxy's service's declared dependencies (its scope). */
  protected rescopedBy(change: SnapshotChange): boolean { return this.service !== undefined && change.rescoped?.has(this.service) === true; }

  /** This proxy's service's declared dependencies, from the current snapshot; undefined: every service. */
  protected scope(): Scope | undefined { return this.service === undefined ? undefined : this.cache.scopeOf(this.service); }

  /**
   * Resource `name` of `type` as this client is sent it when it names it: the resource, whatever
   * the scope (a name asked for is served: on-demand discovery), except the outbound route table,
   * which a scoped proxy receives with only its scope's virtual hosts.
   */
  protected resource(type: string, name: string, scope: Scope | undefined): CachedResource | undefined {
    if (scope !== undefined && name === OUTBOUND && type === TYPE_URLS.ROUTE) return this.cache.outboundFor(scope);
    return this.cache.get(type, name);
  }

  /** Pushes every type marked by onSnapshot (until backpressure; the rest follows as the client reads). */
  flush(): void {
    if (this.dirty.size > 0) this.pump(false);
    this.sweep(undefined);
  }

  /**
   * Clears `behindSince` of each type now in step (nothing NACKed, unanswered or waiting to be
   * pushed). `acked`: the type whose ACK this follows; if it was behind a snapshot change, that
   * change's convergence time is reported. A type out of step with no `behindSince` (a new
   * subscription, a re-request) becomes behind from now.
   */
  protected sweep(acked: string | undefined): void {
    for (const [type, st] of this.types) {
      const inStep = !st.nacked && this.answered(st) && !this.dirty.has(type);
      if (!inStep) {
        if (st.behindSince === null) { st.behindSince = this.clock.now(); st.behindCause = 'subscribe'; }
      } else if (st.behindSince !== null) {
        if (type === acked && st.behindCause === 'change') this.hooks.converged(type, Math.max(0, this.clock.now() - st.behindSince) / 1000);
        st.behindSince = null;
      }
    }
  }

  /** The type furthest behind and since when (clock ms), or undefined when every type is in step. */
  behind(): { type: string; since: number } | undefined {
    let out: { type: string; since: number } | undefined;
    for (const [type, st] of this.types) if (st.behindSince !== null && (out === undefined || st.behindSince < out.since)) out = { type, since: st.behindSince };
    return out;
  }

  /**
   * After onSnapshot: reports as ACKED (at the current revision) each touched type that has
   * nothing new to send (the change was undone before it went out, or it leaves the client's
   * resources as they were) and whose last response was ACKed. Those types are in step already,
   * and no answer will come for them (nor will they be pushed).
   */
  reportUnchanged(touched: readonly string[]): void {
    for (const type of touched) {
      const st = this.types.get(type)!;
      if (st.nacked || st.sentVersion === null || !this.answered(st) || st.sentRevision === this.cache.revision) continue;
      if (this.dirty.has(type)) {
        if (this.hasNews(type, st)) continue; // something new: it will be pushed
        this.dirty.delete(type);
      }
      st.behindSince = null;
      this.onAnswer(this, type, 'ACKED', this.cache.revision);
    }
  }

  /** Whether every response of this type sent so far was ACKed. */
  protected abstract answered(st: St): boolean;
  /** Whether the snapshot has something for this type the client was not sent. */
  protected abstract hasNews(type: string, st: St): boolean;
  /** Writes the dirty types' responses until backpressure; `initial` for a request without a nonce. */
  protected abstract pump(initial: boolean): void;

  /** Whether another response may be written now (else it waits for onWritten, and coalesces meanwhile). */
  protected get writable(): boolean { return !this.closed && this.inFlight < MAX_IN_FLIGHT; }

  /**
   * Write completion: HTTP/2 took the message (within the peer's flow-control window).
   * grpc-js's own write() only reports backpressure after 16 queued messages, which for a
   * stalled client can be many megabytes; counting completions keeps at most MAX_IN_FLIGHT.
   */
  private readonly onWritten = (): void => {
    this.inFlight--;
    if (this.dirty.size > 0) { this.pump(false); this.sweep(undefined); }
  };

  /**
   * Records a response (its version, revision and time), writes it, and returns its nonce.
   * `startedAt`: performance.now() when building it began (the push time reported).
   */
  protected write(type: string, st: St, version: string, startedAt: number, response: (nonce: string) => Res): string {
    const nonce = String(++this.nonce);
    st.sentVersion = version;
    st.sentRevision = this.cache.revision;
    st.sentAt = this.clock.now();
    st.nacked = false;
    this.inFlight++;
    this.call.write(response(nonce), this.onWritten);
    this.hooks.sent(type, (performance.now() - startedAt) / 1000);
    return nonce;
  }

  /** Records a NACK of the response that had `version`. A client that repeats its NACK keeps the time of its first: NACKED since then. */
  protected recordNack(type: string, st: St, version: string, detail: { code?: number; message?: string }): void {
    const at = st.nacked && st.lastNack !== null ? st.lastNack.at : new Date(this.clock.now()).toISOString();
    st.nacked = true;
    st.lastNack = { version, message: detail.message ?? '', code: detail.code ?? 0, at };
    this.log.warn({ stream: this.id, node: this.nodeId, type, version, error: st.lastNack.message }, 'xDS client rejected a response (NACK)');
  }

  /** Records an ACK: the client now holds `version`, from config revision `revision`. */
  protected recordAck(st: St, version: string, revision: number | null): void {
    st.ackedVersion = version;
    st.ackedRevision = revision;
    st.ackedAt = this.clock.now();
    st.nacked = false;
  }

  close(): void {
    this.closed = true;
    for (const st of this.types.values()) st.names.clear(); // out of the subscriber index
  }

  /** An empty set of subscribed names of `type`, kept in the subscriber index. */
  protected namesFor(type: string): Set<string> { return this.subscribers.namesFor(type, this); }

  /** Ends the stream with UNAVAILABLE, so the client reconnects (to this replica later, or another). */
  shutdown(reason: string): void {
    this.closed = true;
    this.call.emit('error', { code: 14, details: reason });
  }

  status(): ProxyStatus {
    const types: TypeStatus[] = [];
    for (const type of PUSH_ORDER) {
      const st = this.types.get(type);
      if (st === undefined) continue;
      const state = this.typeState(type, st);
      types.push({
        typeUrl: type,
        subscribed: st.wildcard ? ['*', ...st.names] : [...st.names],
        sentVersion: st.sentVersion,
        sentRevision: st.sentRevision,
        sentAt: iso(st.sentAt),
        ackedVersion: st.ackedVersion,
        // The newest revision whose resources of this type the client has ACKed in full.
        ackedRevision: st.ackedVersion === null ? null : state === 'SYNCED' ? this.cache.revision : st.ackedRevision,
        ackedAt: iso(st.ackedAt),
        lastNack: st.lastNack,
        state,
        behindSince: iso(st.behindSince),
      });
    }
    const b = this.behind();
    const behind = b === undefined ? null : { typeUrl: b.type, since: iso(b.since)!, seconds: Math.max(0, this.clock.now() - b.since) / 1000 };
    return proxyStatus({ id: this.id, node: this.node, peer: this.call.getPeer(), identity: this.identity, connectedAt: this.connectedAt, revision: this.cache.revision }, types, behind);
  }

  /** NACKED: the last response was rejected. STALE: sent but not ACKed, or a push is pending. */
  protected abstract typeState(type: string, st: St): SyncState;
}

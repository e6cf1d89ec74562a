import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../shared/src/clock';
import type { Logger } from '../../../shared/src/log';
import type { PackedAny } from '../../../shared/src/xds/protos';
import { isFullStateType, PUSH_ORDER } from '../../../shared/src/xds/resource-kind';
import { setVersion } from './snapshot-cache';
import type { CachedResource, SnapshotCache, SnapshotChange } from './snapshot-cache';
import type { ProxyStatus, SyncState, TypeStatus } from './proxy-status';
import { checkLimits, iso, MAX_IN_FLIGHT, proxyStatus, userAgentOf } from './xds-stream';
import type { AnswerListener, XdsNode, XdsStream } from './xds-stream';

/** DeltaDiscoveryRequest / DeltaDiscoveryResponse in the proto-loader object shape (snake_case). */
export interface DeltaDiscoveryRequest {
  node?: XdsNode;
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}
export interface DeltaResource { name: string; version: string; resource: PackedAny }
export interface DeltaDiscoveryResponse {
  system_version_info: string;
  resources: DeltaResource[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
}

/** Responses of one type kept waiting for their ACK or NACK; older ones are forgotten (the client answers in order). */
const MAX_PENDING = 64;

interface Pending {
  revision: number;
  /** What the response did: name → version sent, or null for a name listed in removed_resources. */
  changes: Map<string, string | null>;
  /** system_version_info of the response. */
  version: string;
}

interface DeltaTypeState {
  /** Subscribed to every resource: '*' explicitly, or the legacy first request with no names (LDS, CDS). */
  wildcard: boolean;
  legacyWildcard: boolean;
  /** Names subscribed explicitly. */
  names: Set<string>;
  /** What the client holds, name → version, as sent (the rejected versions of a NACK included, so they are not re-sent). */
  held: Map<string, string>;
  /** Names the client was told do not exist (removed_resources), so it is told once. */
  toldAbsent: Set<string>;
  /** What the client holds by its ACKs (and its initial_resource_versions). */
  acked: Map<string, string>;
  pending: Map<string, Pending>;
  /** The first request of this type is answered even when there is nothing to send, so the client can finish initializing. */
  answerFirst: boolean;
  sentVersion: string | null;
  sentRevision: number | null;
  sentAt: number | null;
  ackedVersion: string | null;
  ackedRevision: number | null;
  ackedAt: number | null;
  lastNack: TypeStatus['lastNack'];
  /** True once a NACK arrived for the last response: stays until a new one is sent. */
  nacked: boolean;
}

interface Diff { updates: CachedResource[]; removed: string[] }

/**
 * One incremental (delta) ADS stream (Envoy's xds_protocol "Incremental xDS"). Per type it keeps
 * the subscriptions and what the client holds, and sends only the difference between that and
 * the snapshot: the resources whose version changed, and removed_resources for those gone (or,
 * for a name subscribed explicitly, never there). Versions are the snapshot cache's content
 * hashes, so a SotW stream and a delta stream, here or on another replica, see the same ones.
 * Like AdsStream, a push is computed when the stream can take it, so a slow client coalesces.
 */
export class DeltaStream implements XdsStream {
  readonly id: string;
  private readonly types = new Map<string, DeltaTypeState>();
  private readonly dirty = new Set<string>();
  private node: XdsNode | undefined = undefined;
  private nonce = 0;
  private inFlight = 0;
  private closed = false;
  private readonly connectedAt: number;

  constructor(
    private readonly call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>,
    private readonly cache: SnapshotCache,
    private readonly clock: Clock,
    private readonly log: Logger,
    id: string,
    private readonly onAnswer: AnswerListener,
    /** The SPIFFE ID the client authenticated with, or '' on the plaintext listener. */
    private readonly identity: string,
    /** Called for each response sent (the monitoring listener's push count). */
    private readonly onSent: (type: string) => void,
  ) {
    this.id = id;
    this.connectedAt = clock.now();
  }

  get nodeId(): string { return this.node?.id ?? ''; }

  userAgent(): string { return userAgentOf(this.node); }

  subscribes(type: string, name: string): boolean {
    const st = this.types.get(type);
    return st !== undefined && (st.wildcard || st.names.has(name));
  }

  onRequest(req: DeltaDiscoveryRequest): string | undefined {
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    const initial = req.initial_resource_versions ?? {};
    const bad = checkLimits({ message: 'DeltaDiscoveryRequest', namesField: 'resource_names_subscribe' }, req.type_url, subscribe, req.node)
      ?? checkLimits({ message: 'DeltaDiscoveryRequest', namesField: 'resource_names_unsubscribe' }, req.type_url, unsubscribe, undefined)
      ?? checkLimits({ message: 'DeltaDiscoveryRequest', namesField: 'initial_resource_versions' }, req.type_url, Object.keys(initial), undefined);
    if (bad !== undefined) return bad;
    if (this.node === undefined) {
      if (req.node === undefined) return 'the first DeltaDiscoveryRequest on a stream must carry node';
      this.node = req.node;
      this.log.info({ stream: this.id, node: this.nodeId, userAgent: this.userAgent(), protocol: 'delta' }, 'xDS client connected');
    }
    const type = req.type_url!;
    if (!this.cache.has(type)) {
      this.log.debug({ stream: this.id, type }, 'ignoring request for an unserved type');
      return undefined;
    }
    let st = this.types.get(type);
    const first = st === undefined;
    if (st === undefined) {
      const legacy = isFullStateType(type) && subscribe.length === 0;
      st = {
        wildcard: legacy, legacyWildcard: legacy, names: new Set(), held: new Map(), toldAbsent: new Set(), acked: new Map(), pending: new Map(),
        answerFirst: true, sentVersion: null, sentRevision: null, sentAt: null, ackedVersion: null, ackedRevision: null, ackedAt: null, lastNack: null, nacked: false,
      };
      this.types.set(type, st);
    }
    const answer = this.answer(type, st, req);
    this.resubscribe(st, subscribe, unsubscribe);
    if (first) this.seed(st, initial);
    this.dirty.add(type);
    this.pump();
    if (answer?.state === 'NACKED') {
      this.onAnswer(this, type, 'NACKED', answer.revision, st.lastNack!.message);
    } else if (answer?.state === 'ACKED') {
      // Nothing newer went out and nothing waits: the client has all there is of this type.
      const caughtUp = st.pending.size === 0 && !this.dirty.has(type);
      this.onAnswer(this, type, 'ACKED', caughtUp ? this.cache.revision : answer.revision);
    }
    return undefined;
  }

  /** Settles the response a request's nonce names: an ACK, or a NACK (error_detail). Unknown nonces answer nothing. */
  private answer(type: string, st: DeltaTypeState, req: DeltaDiscoveryRequest): { state: 'ACKED' | 'NACKED'; revision: number } | undefined {
    const p = st.pending.get(req.response_nonce ?? '');
    if (p === undefined) return undefined;
    st.pending.delete(req.response_nonce!);
    if (req.error_detail !== undefined) {
      // A client that repeats its NACK keeps the time of its first: NACKED since then.
      const at = st.nacked && st.lastNack !== null ? st.lastNack.at : new Date(this.clock.now()).toISOString();
      st.nacked = true;
      st.lastNack = { version: p.version, message: req.error_detail.message ?? '', code: req.error_detail.code ?? 0, at };
      this.log.warn({ stream: this.id, node: this.nodeId, type, version: p.version, error: st.lastNack.message }, 'xDS client rejected a delta response (NACK)');
      return { state: 'NACKED', revision: p.revision };
    }
    for (const [name, version] of p.changes) {
      if (version === null) st.acked.delete(name); else st.acked.set(name, version);
    }
    st.ackedVersion = setVersion(st.acked);
    st.ackedRevision = p.revision;
    st.ackedAt = this.clock.now();
    st.nacked = false;
    return { state: 'ACKED', revision: p.revision };
  }

  /**
   * Applies resource_names_subscribe / unsubscribe. '*' (un)subscribes the wildcard; naming a
   * resource ends a legacy wildcard (the client adds '*' to keep it). A name unsubscribed is
   * forgotten as held: the client drops it, and if the wildcard still covers it, it is sent again.
   */
  private resubscribe(st: DeltaTypeState, subscribe: readonly string[], unsubscribe: readonly string[]): void {
    for (const n of unsubscribe) {
      if (n === '*') { st.wildcard = false; st.legacyWildcard = false; continue; }
      st.names.delete(n);
      st.held.delete(n);
      st.acked.delete(n);
      st.toldAbsent.delete(n);
    }
    if (subscribe.length > 0 && st.legacyWildcard && !subscribe.includes('*')) { st.wildcard = false; st.legacyWildcard = false; }
    for (const n of subscribe) {
      if (n === '*') { st.wildcard = true; st.legacyWildcard = false; continue; }
      st.names.add(n);
      st.toldAbsent.delete(n); // asked again: answer again if it does not exist
    }
    if (!st.wildcard) {
      // Resources held only through the wildcard: the client drops them with it.
      for (const n of [...st.held.keys()]) if (!st.names.has(n)) { st.held.delete(n); st.acked.delete(n); }
    }
  }

  /** initial_resource_versions (the first request of a type on a stream): what the client already holds. */
  private seed(st: DeltaTypeState, initial: Record<string, string>): void {
    for (const [name, version] of Object.entries(initial)) {
      if (!st.wildcard && !st.names.has(name)) continue;
      st.held.set(name, version);
      st.acked.set(name, version);
    }
    if (st.acked.size > 0) st.ackedVersion = setVersion(st.acked);
  }

  onSnapshot(change: SnapshotChange): string[] {
    const touched: string[] = [];
    for (const [type, names] of change.changed) {
      const st = this.types.get(type);
      if (st === undefined) continue;
      if (st.wildcard || [...names].some((n) => st.names.has(n))) { this.dirty.add(type); touched.push(type); }
    }
    return touched;
  }

  flush(): void {
    if (this.dirty.size > 0) this.pump();
  }

  reportUnchanged(touched: readonly string[]): void {
    for (const type of touched) {
      const st = this.types.get(type)!;
      if (st.nacked || st.sentVersion === null || st.pending.size > 0 || st.sentRevision === this.cache.revision) continue;
      if (this.dirty.has(type)) {
        if (!isEmpty(this.diff(st, this.cache.all(type)))) continue; // something new: it will be pushed
        this.dirty.delete(type);
      }
      this.onAnswer(this, type, 'ACKED', this.cache.revision);
    }
  }

  private readonly onWritten = (): void => {
    this.inFlight--;
    if (this.dirty.size > 0) this.pump();
  };

  close(): void { this.closed = true; }

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
        ackedRevision: st.ackedVersion === null ? null : state === 'SYNCED' ? this.cache.revision : st.ackedRevision,
        ackedAt: iso(st.ackedAt),
        lastNack: st.lastNack,
        state,
      });
    }
    return proxyStatus({ id: this.id, node: this.node, peer: this.call.getPeer(), identity: this.identity, connectedAt: this.connectedAt, revision: this.cache.revision }, types);
  }

  /** NACKED: the last response was rejected. STALE: a response is not yet ACKed, or there is something to send. */
  private typeState(type: string, st: DeltaTypeState): SyncState {
    if (st.nacked) return 'NACKED';
    if (st.pending.size > 0 || st.answerFirst) return 'STALE';
    return isEmpty(this.diff(st, this.cache.all(type))) ? 'SYNCED' : 'STALE';
  }

  /** What the client lacks: resources it does not hold at their current version, and names to report removed. */
  private diff(st: DeltaTypeState, all: ReadonlyMap<string, CachedResource>): Diff {
    const updates: CachedResource[] = [];
    const removed: string[] = [];
    if (st.wildcard) for (const r of all.values()) if (st.held.get(r.name) !== r.version) updates.push(r);
    for (const n of st.names) {
      const r = all.get(n);
      if (r === undefined) {
        if (!st.held.has(n) && !st.toldAbsent.has(n)) removed.push(n); // never there: say so once
      } else if (!st.wildcard && st.held.get(n) !== r.version) {
        updates.push(r);
      }
    }
    for (const n of st.held.keys()) if (!all.has(n)) removed.push(n);
    return { updates, removed };
  }

  /** Writes every dirty type's difference, in make-before-break order, until backpressure. */
  private pump(): void {
    if (this.closed) return;
    for (const type of PUSH_ORDER) {
      if (this.inFlight >= MAX_IN_FLIGHT) return; // resumed from onWritten; newer changes coalesce meanwhile
      if (!this.dirty.has(type)) continue;
      this.dirty.delete(type);
      const st = this.types.get(type)!;
      const d = this.diff(st, this.cache.all(type));
      if (isEmpty(d) && !st.answerFirst) continue; // nothing new (this is also what stops NACK loops)
      this.send(type, st, d);
    }
  }

  private send(type: string, st: DeltaTypeState, d: Diff): void {
    const nonce = String(++this.nonce);
    const changes = new Map<string, string | null>();
    for (const r of d.updates) { st.held.set(r.name, r.version); st.toldAbsent.delete(r.name); changes.set(r.name, r.version); }
    for (const n of d.removed) { st.held.delete(n); st.toldAbsent.add(n); changes.set(n, null); }
    const version = setVersion(st.held);
    st.pending.set(nonce, { revision: this.cache.revision, changes, version });
    if (st.pending.size > MAX_PENDING) st.pending.delete(st.pending.keys().next().value!);
    st.answerFirst = false;
    st.sentVersion = version;
    st.sentRevision = this.cache.revision;
    st.sentAt = this.clock.now();
    st.nacked = false;
    this.inFlight++;
    this.onSent(type);
    this.call.write({
      system_version_info: version,
      resources: d.updates.map((r) => ({ name: r.name, version: r.version, resource: r.any })),
      type_url: type,
      removed_resources: d.removed,
      nonce,
    }, this.onWritten);
    this.log.debug({ stream: this.id, node: this.nodeId, type, version, count: d.updates.length, removed: d.removed.length, nonce }, 'xDS delta response sent');
  }
}

function isEmpty(d: Diff): boolean { return d.updates.length === 0 && d.removed.length === 0; }

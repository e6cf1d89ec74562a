import { performance } from 'node:perf_hooks';
import type { PackedAny } from '../../../shared/src/xds/protos';
import { isFullStateType, PUSH_ORDER } from '../../../shared/src/xds/resource-kind';
import { VersionSet } from './version-set';
import type { CachedResource } from './snapshot-cache';
import type { SyncState } from './proxy-status';
import type { SnapshotChange } from './snapshot-cache';
import { inScope } from '../translate/scope';
import { checkLimits, freshTypeState, StreamBase } from './xds-stream';
import type { TypeStateBase, XdsNode } from './xds-stream';

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

interface DeltaTypeState extends TypeStateBase {
  /** What the client holds, name → version, as sent (the rejected versions of a NACK included, so they are not re-sent). */
  held: VersionSet;
  /** Names the client was told do not exist (removed_resources), so it is told once. */
  toldAbsent: Set<string>;
  /** Names unsubscribed under a wildcard: the client is told whether the wildcard still has them. */
  recheck: Set<string>;
  /** What the client holds by its ACKs (and its initial_resource_versions). */
  acked: VersionSet;
  /** Responses not yet ACKed or NACKed, by nonce. */
  pending: Map<string, Pending>;
  /** The first request of this type is answered even when there is nothing to send, so the client can finish initializing. */
  answerFirst: boolean;
  /**
   * The next push compares every name with the snapshot (a new stream, a subscription change, a
   * change of scope, a large change). Otherwise only `candidates`: the names snapshot changes
   * touched since the last push, which is what churn costs per proxy.
   */
  full: boolean;
  candidates: Set<string>;
}

/** More candidate names than this (of one type, since the last push) are compared in full rather than name by name. */
const MAX_CANDIDATES = 256;

interface Diff { updates: CachedResource[]; removed: string[] }

/**
 * One incremental (delta) ADS stream (Envoy's xds_protocol "Incremental xDS"). Per type it keeps
 * the subscriptions and what the client holds, and sends only the difference between that and
 * the snapshot: the resources whose version changed, and removed_resources for those gone (or,
 * for a name subscribed explicitly, never there). Versions are the snapshot cache's content
 * hashes, so a SotW stream and a delta stream, here or on another replica, see the same ones.
 * Like AdsStream, a push is computed when the stream can take it, so a slow client coalesces.
 */
export class DeltaStream extends StreamBase<DeltaTypeState, DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
  onRequest(req: DeltaDiscoveryRequest): string | undefined {
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    const initial = req.initial_resource_versions ?? {};
    const bad = checkLimits({ message: 'DeltaDiscoveryRequest', namesField: 'resource_names_subscribe' }, req.type_url, subscribe, req.node)
      ?? checkLimits({ message: 'DeltaDiscoveryRequest', namesField: 'resource_names_unsubscribe' }, req.type_url, unsubscribe, undefined)
      ?? checkLimits({ message: 'DeltaDiscoveryRequest', namesField: 'initial_resource_versions' }, req.type_url, Object.keys(initial), undefined)
      ?? this.adoptNode(req.node, 'DeltaDiscoveryRequest', 'delta');
    if (bad !== undefined) return bad;
    const type = req.type_url!;
    if (!this.served(type)) return undefined;
    let st = this.types.get(type);
    const first = st === undefined;
    if (st === undefined) {
      // The legacy wildcard: a first LDS/CDS request that names nothing (it is then kept like '*').
      const legacy = isFullStateType(type) && subscribe.length === 0 && unsubscribe.length === 0;
      st = { ...freshTypeState(this.namesFor(type)), wildcard: legacy, held: new VersionSet(), toldAbsent: new Set(), recheck: new Set(), acked: new VersionSet(), pending: new Map(), answerFirst: legacy || subscribe.length > 0, full: true, candidates: new Set() };
      this.types.set(type, st);
    }
    const answer = this.answer(type, st, req);
    this.resubscribe(type, st, subscribe, unsubscribe);
    if (first) this.seed(st, initial);
    // An ACK or NACK that changes no subscription asks for nothing: what changed since is marked by onSnapshot.
    if (answer === undefined || subscribe.length > 0 || unsubscribe.length > 0) {
      this.dirty.add(type);
      st.full = true;
    }
    this.pump();
    if (answer?.state === 'NACKED') {
      this.onAnswer(this, type, 'NACKED', answer.revision, st.lastNack!.message);
    } else if (answer?.state === 'ACKED') {
      // Nothing newer went out and nothing waits: the client has all there is of this type.
      const caughtUp = st.pending.size === 0 && !this.dirty.has(type);
      this.onAnswer(this, type, 'ACKED', caughtUp ? this.cache.revision : answer.revision);
    }
    this.sweep(answer?.state === 'ACKED' ? type : undefined);
    return undefined;
  }

  /** Settles the response a request's nonce names: an ACK, or a NACK (error_detail). Unknown nonces answer nothing. */
  private answer(type: string, st: DeltaTypeState, req: DeltaDiscoveryRequest): { state: 'ACKED' | 'NACKED'; revision: number } | undefined {
    const p = st.pending.get(req.response_nonce ?? '');
    if (p === undefined) return undefined;
    st.pending.delete(req.response_nonce!);
    if (req.error_detail !== undefined) {
      this.recordNack(type, st, p.version, req.error_detail);
      return { state: 'NACKED', revision: p.revision };
    }
    for (const [name, version] of p.changes) {
      if (version === null) st.acked.delete(name); else st.acked.set(name, version);
    }
    this.recordAck(st, st.acked.version(), p.revision);
    return { state: 'ACKED', revision: p.revision };
  }

  /**
   * Applies resource_names_subscribe / unsubscribe (xds_protocol "Subscribing to Resources",
   * "Unsubscribing from Resources"). '*' (un)subscribes the wildcard, for LDS and CDS only (it is
   * ignored for other types). A name subscribed again is sent again, even at the version the
   * client was sent (it may have forgotten it). A name unsubscribed is forgotten, with no answer,
   * unless a wildcard may cover it: then the client is sent it, or told it is removed.
   */
  private resubscribe(type: string, st: DeltaTypeState, subscribe: readonly string[], unsubscribe: readonly string[]): void {
    const wildcardable = isFullStateType(type);
    for (const n of unsubscribe) {
      if (n === '*') { if (wildcardable) st.wildcard = false; continue; }
      if (st.wildcard && st.names.has(n)) st.recheck.add(n);
      st.names.delete(n);
      st.held.delete(n);
      st.acked.delete(n);
      st.toldAbsent.delete(n);
    }
    for (const n of subscribe) {
      if (n === '*') { if (wildcardable) st.wildcard = true; continue; }
      st.names.add(n);
      st.held.delete(n);
      st.toldAbsent.delete(n);
    }
    if (!st.wildcard && (unsubscribe.length > 0 || st.recheck.size > 0)) {
      // Resources held only through the wildcard: the client drops them with it.
      st.recheck.clear();
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
    if (st.acked.size > 0) st.ackedVersion = st.acked.version();
  }

  /** As StreamBase.onSnapshot, noting the names changed for each type touched (DeltaTypeState.candidates). */
  override onSnapshot(change: SnapshotChange): string[] {
    const touched = super.onSnapshot(change);
    if (touched.length === 0) return touched;
    const rescoped = this.rescopedBy(change);
    const scope = this.scope();
    for (const type of touched) {
      const st = this.types.get(type)!;
      if (st.full) continue;
      const names = change.changed.get(type);
      if (rescoped || names === undefined) { st.full = true; st.candidates.clear(); continue; }
      // Only names this client subscribes to, is covered for, or holds can change what it lacks.
      for (const n of names) if (st.names.has(n) || st.held.has(n) || (st.wildcard && inScope(scope, type, n))) st.candidates.add(n);
      if (st.candidates.size > MAX_CANDIDATES) { st.full = true; st.candidates.clear(); }
    }
    return touched;
  }

  protected answered(st: DeltaTypeState): boolean { return st.pending.size === 0 && !st.answerFirst; }

  protected hasNews(type: string, st: DeltaTypeState): boolean { return !isEmpty(this.diff(type, st)); }

  /** NACKED: the last response was rejected. STALE: a response is not yet ACKed, or there is something to send. */
  protected typeState(type: string, st: DeltaTypeState): SyncState {
    if (st.nacked) return 'NACKED';
    if (st.pending.size > 0 || st.answerFirst) return 'STALE';
    return isEmpty(this.diff(type, st)) ? 'SYNCED' : 'STALE';
  }

  /**
   * What the client lacks: resources it does not hold at their current version, and names to
   * report removed. A wildcard covers the resources of the proxy's scope (Service spec.dependsOn);
   * a name subscribed explicitly is served whatever the scope (on-demand discovery).
   */
  private diff(type: string, st: DeltaTypeState): Diff {
    const all = this.cache.all(type);
    const scope = this.scope();
    const covered = (name: string): boolean => st.wildcard && inScope(scope, type, name);
    const updates: CachedResource[] = [];
    const removed: string[] = [];
    if (st.wildcard) for (const r of scope === undefined ? all.values() : this.cache.allFor(type, scope).resources) if (st.held.get(r.name) !== r.version) updates.push(r);
    for (const n of st.names) {
      const r = this.resource(type, n, scope);
      if (r === undefined) {
        if (!st.held.has(n) && !st.toldAbsent.has(n)) removed.push(n); // never there: say so once
      } else if (!covered(n) && st.held.get(n) !== r.version) {
        updates.push(r);
      }
    }
    for (const n of st.held.keys()) if (this.resource(type, n, scope) === undefined || (!st.names.has(n) && !covered(n))) removed.push(n);
    // Unsubscribed under the wildcard: a resource it covers is re-sent above (no longer held).
    for (const n of st.recheck) if ((!all.has(n) || !covered(n)) && !st.held.has(n) && !st.names.has(n)) removed.push(n);
    return { updates, removed };
  }

  /** What the client lacks among `names` only: `diff` restricted to them (DeltaTypeState.candidates). */
  private diffNames(type: string, st: DeltaTypeState, names: ReadonlySet<string>): Diff {
    const scope = this.scope();
    const updates: CachedResource[] = [];
    const removed: string[] = [];
    for (const n of names) {
      const explicit = st.names.has(n);
      const r = this.resource(type, n, scope);
      if (!explicit && !(st.wildcard && inScope(scope, type, n))) {
        if (st.held.has(n)) removed.push(n); // no longer covered
      } else if (r === undefined) {
        if (st.held.has(n) || (explicit && !st.toldAbsent.has(n))) removed.push(n);
      } else if (st.held.get(n) !== r.version) {
        updates.push(r);
      }
    }
    return { updates, removed };
  }

  /** Writes every dirty type's difference, in make-before-break order, until backpressure. */
  protected pump(): void {
    for (const type of PUSH_ORDER) {
      if (!this.writable) return; // resumed from onWritten; newer changes coalesce meanwhile
      if (!this.dirty.has(type)) continue;
      this.dirty.delete(type);
      const st = this.types.get(type)!;
      const startedAt = performance.now();
      const d = st.full ? this.diff(type, st) : this.diffNames(type, st, st.candidates);
      st.full = false;
      st.candidates.clear();
      if (isEmpty(d) && !st.answerFirst) continue; // nothing new (this is also what stops NACK loops)
      this.send(type, st, d, startedAt);
    }
  }

  private send(type: string, st: DeltaTypeState, d: Diff, startedAt: number): void {
    const changes = new Map<string, string | null>();
    for (const r of d.updates) { st.held.set(r.name, r.version); st.toldAbsent.delete(r.name); changes.set(r.name, r.version); }
    for (const n of d.removed) { st.held.delete(n); st.toldAbsent.add(n); changes.set(n, null); }
    st.recheck.clear();
    const version = st.held.version();
    st.answerFirst = false;
    const nonce = this.write(type, st, version, startedAt, (n) => ({
      system_version_info: version,
      resources: d.updates.map((r) => ({ name: r.name, version: r.version, resource: r.any })),
      type_url: type,
      removed_resources: d.removed,
      nonce: n,
    }));
    st.pending.set(nonce, { revision: this.cache.revision, changes, version });
    if (st.pending.size > MAX_PENDING) st.pending.delete(st.pending.keys().next().value!);
    this.log.debug({ stream: this.id, node: this.nodeId, type, version, count: d.updates.length, removed: d.removed.length, nonce }, 'xDS delta response sent');
  }
}

function isEmpty(d: Diff): boolean { return d.updates.length === 0 && d.removed.length === 0; }

import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../shared/src/clock';
import type { Logger } from '../../../shared/src/log';
import { isFullStateType, PUSH_ORDER } from '../../../shared/src/xds/resource-kind';
import { responseVersion } from './snapshot-cache';
import type { CachedResource, SnapshotCache, SnapshotChange } from './snapshot-cache';
import type { ProxyStatus, SyncState, TypeStatus } from './proxy-status';
import { checkLimits, iso, MAX_IN_FLIGHT, proxyStatus, userAgentOf } from './xds-stream';
import type { AnswerListener, XdsNode, XdsStream } from './xds-stream';

/** DiscoveryRequest / DiscoveryResponse in the proto-loader object shape (snake_case). */
export interface DiscoveryRequest {
  version_info?: string;
  node?: XdsNode;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}
export interface DiscoveryResponse {
  version_info: string;
  resources: { type_url: string; value: Buffer }[];
  type_url: string;
  nonce: string;
}

interface TypeState {
  wildcard: boolean;
  names: Set<string>;
  sentVersion: string | null;
  sentNonce: string | null;
  sentRevision: number | null;
  sentAt: number | null;
  ackedVersion: string | null;
  /** The config revision of the response the client last ACKed. */
  ackedRevision: number | null;
  ackedAt: number | null;
  lastNack: TypeStatus['lastNack'];
  /** True once a NACK arrived for sentVersion: stays until a new version is sent. */
  nacked: boolean;
}

/**
 * One ADS state-of-the-world stream. Every type has its own state; a push is computed from the
 * snapshot at the moment the stream can take it, so a slow client coalesces updates instead of
 * queueing them, and it never delays any other stream.
 */
export class AdsStream implements XdsStream {
  readonly id: string;
  private readonly types = new Map<string, TypeState>();
  private readonly dirty = new Set<string>();
  private node: DiscoveryRequest['node'] = undefined;
  private nonce = 0;
  /** Responses written but not yet taken by HTTP/2. */
  private inFlight = 0;
  private closed = false;
  private readonly connectedAt: number;

  constructor(
    private readonly call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>,
    private readonly cache: SnapshotCache,
    private readonly clock: Clock,
    private readonly log: Logger,
    id: string,
    private readonly onAnswer: AnswerListener = () => undefined,
    /** The SPIFFE ID the client authenticated with, or '' on the plaintext listener. */
    private readonly identity = '',
    /** Called for each response sent (the monitoring listener's push count). */
    private readonly onSent: (type: string) => void = () => undefined,
  ) {
    this.id = id;
    this.connectedAt = clock.now();
  }

  get nodeId(): string { return this.node?.id ?? ''; }

  /** Whether this client would receive resource `name` of `type` (it subscribed by wildcard or by name). */
  subscribes(type: string, name: string): boolean {
    const st = this.types.get(type);
    return st !== undefined && (st.wildcard || st.names.has(name));
  }

  /** Handles one request. Returns an error message for a protocol violation (the caller ends the stream). */
  onRequest(req: DiscoveryRequest): string | undefined {
    const bad = checkLimits({ message: 'DiscoveryRequest', namesField: 'resource_names' }, req.type_url, req.resource_names ?? [], req.node);
    if (bad !== undefined) return bad;
    if (this.node === undefined) {
      if (req.node === undefined) return 'the first DiscoveryRequest on a stream must carry node';
      this.node = req.node;
      this.log.info({ stream: this.id, node: this.nodeId, userAgent: this.userAgent() }, 'xDS client connected');
    }
    const type = req.type_url!;
    if (!this.cache.has(type)) {
      this.log.debug({ stream: this.id, type }, 'ignoring request for an unserved type');
      return undefined;
    }
    let st = this.types.get(type);
    const nonce = req.response_nonce ?? '';
    if (st !== undefined && nonce !== '' && nonce !== st.sentNonce) {
      // Stale nonce: the client has not seen our latest response yet. The protocol says to
      // ignore it; the client will send a fresh request after processing that response.
      return undefined;
    }
    if (st === undefined) {
      st = { wildcard: false, names: new Set(), sentVersion: null, sentNonce: null, sentRevision: null, sentAt: null, ackedVersion: null, ackedRevision: null, ackedAt: null, lastNack: null, nacked: false };
      this.types.set(type, st);
    }
    let answer: 'ACKED' | 'NACKED' | undefined;
    const answeredRevision = st.sentRevision ?? 0;
    if (nonce !== '' && nonce === st.sentNonce) {
      if (req.error_detail !== undefined) {
        answer = 'NACKED';
        // A client that repeats its NACK of the same response (grpc-js does, with each later
        // request for the type) keeps the time of its first: NACKED since then.
        const at = st.nacked && st.lastNack !== null ? st.lastNack.at : new Date(this.clock.now()).toISOString();
        st.nacked = true;
        st.lastNack = { version: st.sentVersion ?? '', message: req.error_detail.message ?? '', code: req.error_detail.code ?? 0, at };
        this.log.warn({ stream: this.id, node: this.nodeId, type, version: st.sentVersion, error: st.lastNack.message }, 'xDS client rejected a response (NACK)');
      } else {
        answer = 'ACKED';
        st.ackedVersion = req.version_info ?? '';
        st.ackedRevision = st.sentRevision;
        st.ackedAt = this.clock.now();
        st.nacked = false;
      }
    }
    const names = req.resource_names ?? [];
    st.wildcard = isFullStateType(type) && (names.length === 0 || names.includes('*'));
    st.names = new Set(names.filter((n) => n !== '*'));
    this.dirty.add(type);
    this.pump(nonce === '');
    if (answer === 'NACKED') {
      this.onAnswer(this, type, 'NACKED', answeredRevision, st.lastNack!.message);
    } else if (answer === 'ACKED') {
      // Nothing newer went out and nothing waits: the client has all there is of this type.
      const caughtUp = st.sentNonce === nonce && !this.dirty.has(type);
      this.onAnswer(this, type, 'ACKED', caughtUp ? this.cache.revision : answeredRevision);
    }
    return undefined;
  }

  /**
   * Marks the types a snapshot change touches for this stream, without pushing yet (`flush`
   * pushes). Returns those types, so the caller can follow what the client does with them.
   */
  onSnapshot(change: SnapshotChange): string[] {
    const touched: string[] = [];
    for (const [type, names] of change.changed) {
      const st = this.types.get(type);
      if (st === undefined) continue;
      if (st.wildcard || [...names].some((n) => st.names.has(n))) { this.dirty.add(type); touched.push(type); }
    }
    return touched;
  }

  /** Pushes every type marked by onSnapshot (until backpressure; the rest follows as the client reads). */
  flush(): void {
    if (this.dirty.size > 0) this.pump(false);
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
      if (st.nacked || st.sentVersion === null || st.ackedVersion !== st.sentVersion || st.sentRevision === this.cache.revision) continue;
      if (this.dirty.has(type)) {
        if (this.compute(type, st).version !== st.sentVersion) continue; // something new: it will be pushed
        this.dirty.delete(type);
      }
      this.onAnswer(this, type, 'ACKED', this.cache.revision);
    }
  }

  /**
   * Write completion: HTTP/2 took the message (within the peer's flow-control window).
   * grpc-js's own write() only reports backpressure after 16 queued messages, which for a
   * stalled client can be many megabytes; counting completions keeps at most MAX_IN_FLIGHT.
   */
  private readonly onWritten = (): void => {
    this.inFlight--;
    if (this.dirty.size > 0) this.pump(false);
  };

  close(): void { this.closed = true; }

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
      types.push({
        typeUrl: type,
        subscribed: st.wildcard ? ['*', ...st.names] : [...st.names],
        sentVersion: st.sentVersion,
        sentRevision: st.sentRevision,
        sentAt: iso(st.sentAt),
        ackedVersion: st.ackedVersion,
        ackedRevision: this.typeAckedRevision(type, st),
        ackedAt: iso(st.ackedAt),
        lastNack: st.lastNack,
        state: this.typeState(type, st),
      });
    }
    return proxyStatus({ id: this.id, node: this.node, peer: this.call.getPeer(), identity: this.identity, connectedAt: this.connectedAt, revision: this.cache.revision }, types);
  }

  /** The newest revision whose resources of this type the client has ACKed in full. */
  private typeAckedRevision(type: string, st: TypeState): number | null {
    if (st.ackedVersion === null) return null;
    return this.typeState(type, st) === 'SYNCED' ? this.cache.revision : st.ackedRevision;
  }

  /** NACKED: the last response was rejected. STALE: sent but not ACKed, or a push is pending. */
  private typeState(type: string, st: TypeState): SyncState {
    if (st.nacked) return 'NACKED';
    if (st.sentVersion !== null && st.ackedVersion !== st.sentVersion) return 'STALE';
    const now = this.compute(type, st);
    const behind = now.version !== st.sentVersion && (now.resources.length > 0 || isFullStateType(type));
    return behind ? 'STALE' : 'SYNCED';
  }

  /** Writes every dirty type's response, in make-before-break order, until backpressure. */
  private pump(initial: boolean): void {
    if (this.closed) return;
    for (const type of PUSH_ORDER) {
      if (this.inFlight >= MAX_IN_FLIGHT) return; // resumed from onWritten; newer changes coalesce meanwhile
      if (!this.dirty.has(type)) continue;
      this.dirty.delete(type);
      const st = this.types.get(type)!;
      const { version, resources } = this.compute(type, st);
      if (version === st.sentVersion) continue; // nothing new (this is also what stops NACK loops)
      // Per-name types send nothing when none of the names exist (the client's does-not-exist
      // timer handles that); full-state types always answer, since absence means deletion.
      if (resources.length === 0 && !isFullStateType(type) && !(initial && st.sentVersion !== null)) continue;
      this.send(type, st, version, resources);
    }
  }

  private compute(type: string, st: TypeState): { version: string; resources: CachedResource[] } {
    const all = this.cache.all(type);
    const resources: CachedResource[] = [];
    if (st.wildcard) {
      resources.push(...all.values());
      return { version: this.cache.allVersion(type), resources };
    }
    for (const n of st.names) { const r = all.get(n); if (r !== undefined) resources.push(r); }
    return { version: responseVersion(resources), resources };
  }

  private send(type: string, st: TypeState, version: string, resources: CachedResource[]): void {
    const nonce = String(++this.nonce);
    st.sentVersion = version;
    st.sentNonce = nonce;
    st.sentRevision = this.cache.revision;
    st.sentAt = this.clock.now();
    st.nacked = false;
    this.inFlight++;
    this.onSent(type);
    this.call.write({ version_info: version, resources: resources.map((r) => r.any), type_url: type, nonce }, this.onWritten);
    this.log.debug({ stream: this.id, node: this.nodeId, type, version, count: resources.length, nonce }, 'xDS response sent');
  }

  /** The client's user agent as name/version, e.g. grpc-node-js/1.14.1. */
  userAgent(): string { return userAgentOf(this.node); }
}

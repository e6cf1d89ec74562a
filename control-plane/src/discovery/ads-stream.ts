import { performance } from 'node:perf_hooks';
import { isFullStateType, PUSH_ORDER } from '../../../shared/src/xds/resource-kind';
import { responseVersion } from './snapshot-cache';
import type { CachedResource } from './snapshot-cache';
import type { SyncState } from './proxy-status';
import { inScope } from '../translate/scope';
import { checkLimits, freshTypeState, StreamBase } from './xds-stream';
import { replaceNames } from './subscriber-index';
import type { TypeStateBase, XdsNode } from './xds-stream';

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

interface TypeState extends TypeStateBase {
  sentNonce: string | null;
}

/**
 * One ADS state-of-the-world stream. Every type has its own state; a response carries every
 * resource the client subscribed to (StreamBase: backpressure, coalescing, status).
 */
export class AdsStream extends StreamBase<TypeState, DiscoveryRequest, DiscoveryResponse> {
  /** Handles one request. Returns an error message for a protocol violation (the caller ends the stream). */
  onRequest(req: DiscoveryRequest): string | undefined {
    const bad = checkLimits({ message: 'DiscoveryRequest', namesField: 'resource_names' }, req.type_url, req.resource_names ?? [], req.node)
      ?? this.adoptNode(req.node, 'DiscoveryRequest', 'sotw');
    if (bad !== undefined) return bad;
    const type = req.type_url!;
    if (!this.served(type)) return undefined;
    let st = this.types.get(type);
    const nonce = req.response_nonce ?? '';
    if (st !== undefined && nonce !== '' && nonce !== st.sentNonce) {
      // Stale nonce: the client has not seen our latest response yet. The protocol says to
      // ignore it; the client will send a fresh request after processing that response.
      return undefined;
    }
    if (st === undefined) {
      st = { ...freshTypeState(this.namesFor(type)), sentNonce: null };
      this.types.set(type, st);
    }
    let answer: 'ACKED' | 'NACKED' | undefined;
    const answeredRevision = st.sentRevision ?? 0;
    if (nonce !== '' && nonce === st.sentNonce) {
      if (req.error_detail !== undefined) {
        answer = 'NACKED';
        this.recordNack(type, st, st.sentVersion ?? '', req.error_detail);
      } else {
        answer = 'ACKED';
        this.recordAck(st, req.version_info ?? '', st.sentRevision);
      }
    }
    const names = req.resource_names ?? [];
    st.wildcard = isFullStateType(type) && (names.length === 0 || names.includes('*'));
    replaceNames(st.names, new Set(names.filter((n) => n !== '*')));
    this.dirty.add(type);
    this.pump(nonce === '');
    if (answer === 'NACKED') {
      this.onAnswer(this, type, 'NACKED', answeredRevision, st.lastNack!.message);
    } else if (answer === 'ACKED') {
      // Nothing newer went out and nothing waits: the client has all there is of this type.
      const caughtUp = st.sentNonce === nonce && !this.dirty.has(type);
      this.onAnswer(this, type, 'ACKED', caughtUp ? this.cache.revision : answeredRevision);
    }
    this.sweep(answer === 'ACKED' ? type : undefined);
    return undefined;
  }

  protected answered(st: TypeState): boolean { return st.ackedVersion === st.sentVersion; }

  protected hasNews(type: string, st: TypeState): boolean { return this.compute(type, st).version !== st.sentVersion; }

  protected typeState(type: string, st: TypeState): SyncState {
    if (st.nacked) return 'NACKED';
    if (st.sentVersion !== null && st.ackedVersion !== st.sentVersion) return 'STALE';
    const now = this.compute(type, st);
    const behind = now.version !== st.sentVersion && (now.resources.length > 0 || isFullStateType(type));
    return behind ? 'STALE' : 'SYNCED';
  }

  /** Writes every dirty type's response, in make-before-break order, until backpressure. */
  protected pump(initial: boolean): void {
    for (const type of PUSH_ORDER) {
      if (!this.writable) return; // resumed from onWritten; newer changes coalesce meanwhile
      if (!this.dirty.has(type)) continue;
      this.dirty.delete(type);
      const st = this.types.get(type)!;
      const startedAt = performance.now();
      const { version, resources } = this.compute(type, st);
      if (version === st.sentVersion) continue; // nothing new (this is also what stops NACK loops)
      // Per-name types send nothing when none of the names exist (the client's does-not-exist
      // timer handles that); full-state types always answer, since absence means deletion.
      if (resources.length === 0 && !isFullStateType(type) && !(initial && st.sentVersion !== null)) continue;
      st.sentNonce = this.write(type, st, version, startedAt, (nonce) => ({ version_info: version, resources: resources.map((r) => r.any), type_url: type, nonce }));
      this.log.debug({ stream: this.id, node: this.nodeId, type, version, count: resources.length, nonce: st.sentNonce }, 'xDS response sent');
    }
  }

  /**
   * What the client is sent: with a wildcard every resource of the type within its scope (and
   * the names it also asked for), else the names it asked for (resource(): the outbound route
   * table cut to its scope).
   */
  private compute(type: string, st: TypeState): { version: string; resources: CachedResource[] } {
    const all = this.cache.all(type);
    const scope = this.scope();
    const resources: CachedResource[] = [];
    if (st.wildcard) {
      if (scope === undefined) {
        resources.push(...all.values());
        return { version: this.cache.allVersion(type), resources };
      }
      const scoped = this.cache.allFor(type, scope);
      if (st.names.size === 0) return { version: scoped.version, resources: [...scoped.resources] };
      for (const r of all.values()) if (inScope(scope, type, r.name) || st.names.has(r.name)) resources.push(r);
      return { version: responseVersion(resources), resources };
    }
    for (const n of st.names) { const r = this.resource(type, n, scope); if (r !== undefined) resources.push(r); }
    return { version: responseVersion(resources), resources };
  }
}

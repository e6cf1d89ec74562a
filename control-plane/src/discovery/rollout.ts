/**
 * What the proxies did with one config revision: a rollout.
 *
 * When a new revision reaches the snapshot cache, every connected stream that subscribes to a
 * resource the revision changed is "affected", per type. Each (stream, type) pair then settles:
 * - ACKED: the proxy ACKed a response sent at this revision or a later one, or it ACKed and
 *   has nothing left to receive (a later revision may have superseded this one);
 * - NACKED: the proxy rejected a response sent at this revision or later (with its error);
 * - GONE: the stream ended before it answered (a reconnecting proxy gets a full resync);
 * - PENDING: none of these yet.
 *
 * A proxy's state is its worst type's: NACKED over PENDING over GONE over ACKED. The rollout's
 * state is NONE when no connected proxy was affected, else the worst proxy state.
 *
 * Several revisions can land in one snapshot rebuild; the rollout then covers all of them
 * (`fromRevision`..`revision`), and a query for any of them answers with it.
 */

export type TypeOutcome = 'ACKED' | 'NACKED' | 'PENDING' | 'GONE';
export type RolloutState = 'ACKED' | 'NACKED' | 'PENDING' | 'GONE' | 'NONE';

export interface RolloutTypeReport {
  /** Short type name: LDS, RDS, CDS, EDS or SDS. */
  type: string;
  state: TypeOutcome;
  /** The client's error_detail.message, for NACKED. */
  error?: string;
}

export interface RolloutProxyReport {
  nodeId: string;
  streamId: string;
  userAgent: string;
  state: TypeOutcome;
  types: RolloutTypeReport[];
}

export interface RolloutReport {
  /** The revision asked about (the newest revision this rollout covers). */
  revision: number;
  /** The oldest revision that landed in the same snapshot rebuild. */
  fromRevision: number;
  state: RolloutState;
  /** True when no affected proxy is PENDING. */
  complete: boolean;
  counts: { affected: number; acked: number; nacked: number; pending: number; gone: number };
  proxies: RolloutProxyReport[];
  /** How long the answer waited for proxies (only when a wait was asked for). */
  waitedMs?: number;
  /** True when a wait ran out with proxies still PENDING. */
  timedOut?: boolean;
  /** A sentence for humans: what happened, or why nothing will. */
  summary: string;
}

const SHORT: Record<string, string> = { Listener: 'LDS', RouteConfiguration: 'RDS', Cluster: 'CDS', ClusterLoadAssignment: 'EDS', Secret: 'SDS' };

/** LDS/RDS/CDS/EDS/SDS for an Envoy type URL; the URL's last segment otherwise. */
export function shortType(typeUrl: string): string {
  const last = typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
  return SHORT[last] ?? last;
}

const RANK: Record<TypeOutcome, number> = { ACKED: 0, GONE: 1, PENDING: 2, NACKED: 3 };

function worstOf(states: Iterable<TypeOutcome>): TypeOutcome {
  let w: TypeOutcome = 'ACKED';
  for (const s of states) if (RANK[s] > RANK[w]) w = s;
  return w;
}

interface ProxyEntry {
  nodeId: string;
  userAgent: string;
  types: Map<string, { state: TypeOutcome; error?: string }>;
}

/** One revision's rollout: the affected proxies and how each has settled so far. */
export class Rollout {
  private readonly entries = new Map<string, ProxyEntry>();
  private pendingCount = 0;
  private readonly waiters = new Set<() => void>();

  constructor(readonly fromRevision: number, readonly revision: number) {}

  /** Records that `streamId` must take new resources of `typeUrl` for this revision. */
  affect(streamId: string, nodeId: string, userAgent: string, typeUrl: string): void {
    let e = this.entries.get(streamId);
    if (e === undefined) { e = { nodeId, userAgent, types: new Map() }; this.entries.set(streamId, e); }
    if (e.types.has(typeUrl)) return;
    e.types.set(typeUrl, { state: 'PENDING' });
    this.pendingCount++;
  }

  get complete(): boolean { return this.pendingCount === 0; }

  /** Settles a PENDING (stream, type). Later outcomes never overwrite a settled one. */
  settle(streamId: string, typeUrl: string, state: 'ACKED' | 'NACKED', error?: string): void {
    const t = this.entries.get(streamId)?.types.get(typeUrl);
    if (t === undefined || t.state !== 'PENDING') return;
    t.state = state;
    if (error !== undefined) t.error = error;
    this.onSettled();
  }

  /** Every PENDING type of a stream that ended becomes GONE. */
  gone(streamId: string): void {
    const e = this.entries.get(streamId);
    if (e === undefined) return;
    for (const t of e.types.values()) if (t.state === 'PENDING') { t.state = 'GONE'; this.onSettled(); }
  }

  /** Runs `fn` once when no affected proxy is PENDING any more (at once if none is). */
  whenComplete(fn: () => void): void {
    if (this.complete) fn();
    else this.waiters.add(fn);
  }

  /** Drops a waiter that gave up (its timeout fired), so nothing holds it. */
  forget(fn: () => void): void { this.waiters.delete(fn); }

  report(): RolloutReport {
    const proxies: RolloutProxyReport[] = [];
    const counts = { affected: 0, acked: 0, nacked: 0, pending: 0, gone: 0 };
    for (const [streamId, e] of this.entries) {
      const types: RolloutTypeReport[] = [];
      for (const [typeUrl, t] of e.types) types.push({ type: shortType(typeUrl), state: t.state, ...(t.error === undefined ? {} : { error: t.error }) });
      const state = worstOf(types.map((t) => t.state));
      proxies.push({ nodeId: e.nodeId, streamId, userAgent: e.userAgent, state, types });
      counts.affected++;
      counts[state === 'ACKED' ? 'acked' : state === 'NACKED' ? 'nacked' : state === 'PENDING' ? 'pending' : 'gone']++;
    }
    proxies.sort((a, b) => RANK[b.state] - RANK[a.state] || (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
    const state: RolloutState = proxies.length === 0 ? 'NONE' : worstOf(proxies.map((p) => p.state));
    return { revision: this.revision, fromRevision: this.fromRevision, state, complete: this.complete, counts, proxies, summary: summarize(this.revision, state, counts) };
  }

  private onSettled(): void {
    this.pendingCount--;
    if (this.pendingCount > 0) return;
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }
}

function summarize(revision: number, state: RolloutState, c: RolloutReport['counts']): string {
  if (state === 'NONE') return `revision ${revision} reached no proxy: no connected proxy subscribes to what it changed`;
  const parts = [`${c.acked} ACKed`];
  if (c.nacked > 0) parts.push(`${c.nacked} NACKed`);
  if (c.pending > 0) parts.push(`${c.pending} pending`);
  if (c.gone > 0) parts.push(`${c.gone} disconnected before answering`);
  return `revision ${revision} reached ${c.affected} prox${c.affected === 1 ? 'y' : 'ies'}: ${parts.join(', ')}`;
}

/**
 * The recent rollouts, oldest first, bounded. Only incomplete ones are visited when a proxy
 * answers, so the cost of an ACK does not grow with history.
 */
export class RolloutLog {
  private readonly rollouts: Rollout[] = [];
  private readonly open = new Set<Rollout>();

  constructor(private readonly limit = 256) {}

  begin(fromRevision: number, revision: number): Rollout {
    const r = new Rollout(fromRevision, revision);
    this.rollouts.push(r);
    if (this.rollouts.length > this.limit) this.open.delete(this.rollouts.shift()!);
    this.open.add(r);
    return r;
  }

  /** The rollout covering `revision`, if it is still kept. */
  find(revision: number): Rollout | undefined {
    for (let i = this.rollouts.length - 1; i >= 0; i--) {
      const r = this.rollouts[i]!;
      if (r.fromRevision <= revision && revision <= r.revision) return r;
      if (r.revision < revision) return undefined;
    }
    return undefined;
  }

  /** The oldest revision still answerable, or undefined before the first rollout. */
  oldest(): number | undefined { return this.rollouts[0]?.fromRevision; }

  /**
   * A proxy answered for a type: `revision` is the newest config revision that answer covers
   * (the revision the ACKed or NACKed response was built from). Settles every open rollout at
   * or below it.
   */
  answered(streamId: string, typeUrl: string, state: 'ACKED' | 'NACKED', revision: number, error?: string): void {
    for (const r of this.open) {
      if (r.revision > revision) continue;
      r.settle(streamId, typeUrl, state, error);
      if (r.complete) this.open.delete(r);
    }
  }

  /** A stream ended: whatever it still owed any rollout is GONE. */
  gone(streamId: string): void {
    for (const r of this.open) {
      r.gone(streamId);
      if (r.complete) this.open.delete(r);
    }
  }
}

import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../shared/src/clock';
import type { Logger } from '../../../shared/src/log';
import { loadAdsServiceDefinition } from '../../../shared/src/xds/protos';
import { AdsStream } from './ads-stream';
import type { DiscoveryRequest, DiscoveryResponse } from './ads-stream';
import { DeltaStream } from './delta-stream';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse } from './delta-stream';
import type { AnswerListener, StreamHooks, XdsStream } from './xds-stream';
import { LabelledHistogram } from '../../../shared/src/metrics/histogram';
import type { SnapshotCache, SnapshotChange } from './snapshot-cache';
import type { ProxyStatus } from './proxy-status';
import type { ForecastTarget } from './nack-forecast';
import { RolloutLog, shortType } from './rollout';
import type { Rollout, RolloutReport } from './rollout';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { SubscriberIndex } from './subscriber-index';
import { TimeSlicer } from '../../../shared/src/slicer';
import { callerIdentity, grpcError } from '../../../shared/src/grpc/skein-services';
import { spiffeId } from '../../../shared/src/identity/spiffe';

/** A proxy behind: its stream, the type furthest behind, since when (clock ms) and for how long. */
export interface Laggard { stream: XdsStream; type: string; since: number; lagSeconds: number }

/**
 * envoy.service.discovery.v3.AggregatedDiscoveryService: state of the world (AdsStream) and
 * incremental (DeltaStream) on the same ports, with the same authentication, snapshot, proxy
 * status and rollouts. Each stream is independent; a snapshot change is offered to every stream,
 * and each one decides for itself whether the change touches what it subscribed to.
 */
export class DiscoveryServer {
  private readonly streams = new Map<string, XdsStream>();
  private seq = 0;
  private readonly rollouts = new RolloutLog();
  private lastRevision: number;
  /** The names each stream subscribes to, to offer a change only to the streams it can reach. */
  private readonly subscribers = new SubscriberIndex<XdsStream>();
  /** Pushes of snapshot changes still writing to their streams. */
  private readonly pushing = new Set<Promise<void>>();
  /** Responses sent and NACKs received, per type URL, since start (the monitoring listener's /metrics). */
  readonly counters = { pushes: new Map<string, number>(), nacks: new Map<string, number>() };
  /**
   * Seconds to build and write one response, and seconds from a snapshot change (SnapshotChange.at)
   * to a proxy's ACK of everything it changed for it, per short type name (LDS, RDS, CDS, EDS, SDS).
   */
  readonly timings = {
    push: new LabelledHistogram('type', [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]),
    convergence: new LabelledHistogram('type', [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]),
  };

  constructor(private readonly cache: SnapshotCache, private readonly clock: Clock, private readonly log: Logger) {
    this.lastRevision = cache.revision;
    cache.onChange((change) => this.onSnapshot(change));
  }

  /**
   * Offers a snapshot change to every stream. A change that carries a new config revision starts
   * a rollout: the streams it touches, per type, to be settled by their ACKs and NACKs.
   */
  private onSnapshot(change: SnapshotChange): void {
    const rollout = change.revision > this.lastRevision ? this.rollouts.begin(this.lastRevision + 1, change.revision) : undefined;
    if (change.revision > this.lastRevision) this.lastRevision = change.revision;
    const marked: XdsStream[] = [];
    for (const s of this.offeredTo(change)) {
      const touched = s.onSnapshot(change);
      if (touched.length === 0) continue;
      marked.push(s);
      if (rollout === undefined) continue;
      for (const type of touched) rollout.affect(s.id, s.nodeId, s.userAgent(), type);
      s.reportUnchanged(touched);
    }
    const p = this.push(marked).finally(() => this.pushing.delete(p));
    this.pushing.add(p);
  }

  /**
   * The streams a change can reach: those subscribed by name to what changed when only types
   * without a wildcard changed and no scope did (endpoint churn, route changes), else every one.
   */
  private offeredTo(change: SnapshotChange): Iterable<XdsStream> {
    if ((change.rescoped?.size ?? 0) > 0) return this.streams.values();
    for (const type of change.changed.keys()) if (!SubscriberIndex.indexable(type)) return this.streams.values();
    const reached = new Set<XdsStream>();
    for (const [type, names] of change.changed) this.subscribers.collect(type, names, reached);
    return reached;
  }

  /**
   * Resolves once the pushes of every snapshot change so far were written (as far as each
   * stream's backpressure lets). The control plane installs the next snapshot after it: under
   * churn, changes that come during a push go out together in the next one, so the cost of
   * offering a change to every stream is paid per push, not per change, and adapts to the load.
   */
  async settled(): Promise<void> { while (this.pushing.size > 0) await Promise.all(this.pushing); }

  /**
   * Pushes a change to the streams it touched, yielding to the event loop between streams: with
   * many proxies and a large config, encoding every response at once would hold up the API and
   * every other stream. Each stream was marked (and its rollout recorded) at once, so a stream
   * that asks in the meantime is pushed from its own request.
   */
  private async push(streams: readonly XdsStream[]): Promise<void> {
    const slicer = new TimeSlicer();
    for (const s of streams) {
      s.flush();
      await slicer.point();
    }
  }

  /**
   * What the proxies did with `revision` so far. NOT_FOUND for a revision not yet served or
   * too old to be kept (the newest 256 snapshot revisions are).
   */
  rollout(revision: number): RolloutReport { return this.find(revision).report(); }

  /**
   * Waits up to `ms` for every proxy affected by `revision` to ACK or NACK (or disconnect), and
   * reports. A rollout that touched no proxy answers at once.
   */
  async waitRollout(revision: number, ms: number): Promise<RolloutReport> {
    const r = this.find(revision);
    const start = this.clock.now();
    if (!r.complete) {
      await new Promise<void>((resolve) => {
        const timer = this.clock.setTimer(ms, () => { r.forget(done); resolve(); });
        const done = (): void => { timer.cancel(); resolve(); };
        r.whenComplete(done);
      });
    }
    const report = r.report();
    return { ...report, waitedMs: this.clock.now() - start, timedOut: !report.complete };
  }

  private find(revision: number): Rollout {
    const r = this.rollouts.find(revision);
    if (r !== undefined) return r;
    const oldest = this.rollouts.oldest();
    const why = revision > this.lastRevision ? `is not served yet (the snapshot is at revision ${this.lastRevision})`
      : `is older than the rollouts kept (the oldest kept is ${oldest ?? this.lastRevision + 1})`;
    throw new MeshError(ErrorCodes.NOT_FOUND, `no rollout for revision ${revision}: it ${why}`);
  }

  /**
   * Adds the ADS service to a gRPC server. With `trustDomain` (the TLS port), a stream is served
   * only to a client whose verified certificate carries a workload identity of that trust
   * domain; without it (the plaintext --xds-insecure-listen port), to anyone who reaches it.
   */
  register(server: grpc.Server, auth: { trustDomain: string } | 'insecure'): void {
    server.addService(loadAdsServiceDefinition(), {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => {
        const identity = this.authenticate(call, auth);
        if (identity !== undefined) this.handle(call, (id, onAnswer, hooks) => new AdsStream(call, this.cache, this.clock, this.log, id, onAnswer, identity, hooks, this.subscribers));
      },
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) => {
        const identity = this.authenticate(call, auth);
        if (identity !== undefined) this.handle(call, (id, onAnswer, hooks) => new DeltaStream(call, this.cache, this.clock, this.log, id, onAnswer, identity, hooks, this.subscribers));
      },
    });
  }

  /** The caller's SPIFFE ID ('' on the plaintext port), or undefined after ending the call UNAUTHENTICATED. */
  private authenticate(call: grpc.ServerDuplexStream<unknown, unknown>, auth: { trustDomain: string } | 'insecure'): string | undefined {
    if (auth === 'insecure') return '';
    try {
      const id = callerIdentity(call, auth.trustDomain);
      if (id === undefined) throw new MeshError(ErrorCodes.UNAUTHENTICATED, 'xDS needs a workload certificate: get one with a join token (skein token create) from skein.identity.v1.Certificates/Sign on this port');
      return spiffeId(id);
    } catch (e) {
      const err = grpcError(e);
      this.log.warn({ peer: call.getPeer(), reason: err.details }, 'xDS stream refused');
      call.emit('error', err);
      return undefined;
    }
  }

  proxies(): ProxyStatus[] {
    return [...this.streams.values()].map((s) => s.status()).sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  get streamCount(): number { return this.streams.size; }

  /** The status of the `limit` proxies furthest behind (slowest), furthest first (GET /v1/proxies?slow=true). */
  slowProxies(limit: number): ProxyStatus[] { return this.slowest(limit).map((l) => l.stream.status()); }

  /**
   * The `limit` proxies furthest behind (a type with a change or subscription not yet ACKed, or
   * NACKed), oldest first: stream, the type furthest behind and since when (clock ms).
   */
  slowest(limit: number): Laggard[] {
    const out: Laggard[] = [];
    for (const s of this.streams.values()) {
      const b = s.behind();
      if (b === undefined) continue;
      if (out.length === limit && b.since >= out[out.length - 1]!.since) continue;
      out.push({ stream: s, ...b, lagSeconds: Math.max(0, this.clock.now() - b.since) / 1000 });
      out.sort((x, y) => x.since - y.since);
      if (out.length > limit) out.pop();
    }
    return out;
  }

  /** The connected clients, for a dry run's NACK forecast. */
  connected(): Iterable<ForecastTarget> { return this.streams.values(); }

  /** Ends every stream with UNAVAILABLE (on shutdown), so clients reconnect promptly. */
  closeAll(reason = 'control plane shutting down'): void {
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const s of streams) s.shutdown(reason);
  }

  private readonly hooks: StreamHooks = {
    sent: (type, seconds) => { bump(this.counters.pushes, type); this.timings.push.observe(shortType(type), seconds); },
    converged: (type, seconds) => this.timings.convergence.observe(shortType(type), seconds),
  };

  private handle<Req, Res>(call: grpc.ServerDuplexStream<Req, Res>, open: (id: string, onAnswer: AnswerListener, hooks: StreamHooks) => XdsStream): void {
    const id = `${Date.now().toString(36)}-${++this.seq}`;
    const stream = open(id, (s, type, state, revision, error) => {
      if (state === 'NACKED') bump(this.counters.nacks, type);
      this.rollouts.answered(s.id, type, state, revision, error);
    }, this.hooks);
    this.streams.set(id, stream);
    const done = () => {
      if (!this.streams.delete(id)) return;
      stream.close();
      this.rollouts.gone(id);
      this.log.info({ stream: id, node: stream.nodeId }, 'xDS client disconnected');
    };
    call.on('data', (req: Req) => {
      let problem: string | undefined;
      try {
        problem = stream.onRequest(req);
      } catch (e) {
        this.log.error({ stream: id, err: e }, 'failed to handle an xDS request');
        problem = 'internal error handling the request';
      }
      if (problem !== undefined) {
        this.log.warn({ stream: id, node: stream.nodeId, problem }, 'ending xDS stream: protocol violation');
        done();
        call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: problem });
      }
    });
    call.on('end', () => { done(); call.end(); });
    call.on('cancelled', done);
    call.on('error', done);
    call.on('close', done);
  }
}

function bump(m: Map<string, number>, key: string): void { m.set(key, (m.get(key) ?? 0) + 1); }

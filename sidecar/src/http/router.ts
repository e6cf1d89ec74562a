/**
 * The router filter: forwards one request to its cluster and owns everything that can happen
 * to it on the way (Envoy's router + upstream_request, grpc-js's RetryingCall):
 *
 *   start ──(fault delay)──> attempt 1 ──> response head ──> success? commit and stream it
 *                               │  ▲             │ failure
 *                               │  └─ backoff <──┴── RetryState.decide(): policy, attempts,
 *                               │     (slot held)      budget / max_retries, body replayable
 *                               └─> connect failure / refused / reset / per-try timeout
 *
 * - Retries are decided by RetryState (no hidden retries: without a policy only a failed connect
 *   or a refused stream is retried) and avoid hosts already tried (PickContext.tried).
 * - The request body is forwarded as it arrives and also kept, up to `retryBufferBytes`
 *   (64 KiB), for replay. A larger body is not replayable, so it is never retried.
 * - The response head is held until the retry decision; once committed (sent downstream) the
 *   request is never retried.
 * - Timeouts: the route timeout and the caller's grpc-timeout (whichever ends first) bound the
 *   whole request, backoffs included; the per-try timeout bounds each attempt until its
 *   response head. Each attempt tells the upstream the time left in grpc-timeout.
 * - Circuit breakers: max_requests is taken per attempt here; max_pending_requests and
 *   max_connections in the pools (BreakerOpenError).
 * - Every attempt's result feeds the cluster's outlier detector (a data sink).
 *
 * Stream event handlers are shared module functions that find the request via a symbol, as in
 * the rest of the request path: the per-request cost is this object, not closures.
 */
import type * as http from 'node:http';
import * as http2 from 'node:http2';
import { PassThrough } from 'node:stream';
import type { Readable, Writable } from 'node:stream';
import type { TimerHandle } from '../../../shared/src/clock';
import type { MeshError } from '../../../shared/src/errors';
import { RetryState } from '../resilience/retry-state';
import type { AttemptOutcome } from '../resilience/retry-state';
import { isGrpcContentType } from '../router/grpc-content-type';
import type { RouteAction } from '../router/route-action';
import type { RouteEntry } from '../router/route-table';
import type { Cluster } from '../upstream/cluster';
import type { Host } from '../upstream/host';
import { observeLatency } from '../upstream/lb/peak-ewma';
import { parseGrpcStatus, requestSucceeded } from '../stats/grpc-status';
import type { H1Exchange, H1Pool, H1ResponseHandler } from '../upstream/pool/h1-pool';
import type { H2Pool } from '../upstream/pool/h2-pool';
import { BreakerOpenError } from '../upstream/resources';
import type { ConnectionManager } from './connection-manager';
import { applyResponseHeaderOps, closeUnfinishedRequest } from './connection-manager';
import { ATTEMPT_COUNT_HEADER, LOCAL_REPLIES, replyH1, replyH2 } from './local-reply';
import type { LocalReply } from './local-reply';
import { formatGrpcTimeout } from './grpc-timeout';
import { downstreamHeaders } from './proxy-headers';
import { relay } from './relay';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_FLAG_END_STREAM } = http2.constants;

/** Default request-body bytes kept for replay (Envoy's per_request_buffer_limit_bytes role). */
export const DEFAULT_RETRY_BUFFER_BYTES = 64 * 1024;

const kFwd = Symbol('skein.forward');
type Tagged<T> = T & { [kFwd]?: Forward };

export type DownstreamKind = { h2: http2.ServerHttp2Stream } | { req: http.IncomingMessage; res: http.ServerResponse };

export class Forward {
  readonly route: RouteAction;
  readonly startedAt = performance.now();
  /** When the request was routed, on the injected clock (ms). */
  private readonly startedAtMs: number;
  /** The fault delay to wait before the first attempt (set by the connection manager). */
  delayMs = 0;
  /**
   * Stream idle timeout bookkeeping: `activity` counts request body chunks, the response head
   * and response body chunks; the connection manager's sweep notes when it last moved.
   */
  activity = 0;
  private seenActivity = 0;
  private idleSince: number;
  private readonly h2down: Tagged<http2.ServerHttp2Stream> | undefined;
  /** The downstream HTTP/2 session (a closed stream no longer names it). */
  private readonly h2session: http2.Http2Session | undefined;
  private readonly h1res: Tagged<http.ServerResponse> | undefined;
  /** The request body source; undefined when the request has none. */
  private readonly src: Tagged<Readable> | undefined;
  private bodyEnded: boolean;
  private buf: Buffer[] = [];
  private bufBytes = 0;
  private replayable = true;
  /** Where the current attempt's request body goes (the h2 stream, or the h1 body stream). */
  private sink: Tagged<Writable> | undefined;

  /** Attempts started (1 = the first try). */
  attempt = 0;
  private attemptActive = false;
  private attemptStartedAt = 0;
  host: Host;
  /** The live attempt's upstream stream / h1 exchange: events from any other one are stale. */
  private up: Tagged<http2.ClientHttp2Stream> | undefined;
  private h1x: H1Exchange | undefined;
  /** The attempt number whose upstream events count; 0 after it was abandoned. */
  liveSeq = 0;
  private tried: Set<Host> | undefined;
  private retry: RetryState | undefined;
  /**
   * Whether this proxy numbers the attempts in x-skein-attempt-count: always on the outbound
   * side; on the inbound side (setAttemptCount false) only when the caller sent no count.
   */
  private readonly setsAttemptCount: boolean;

  /** Absolute deadline on the clock (ms), 0 for none; which limit set it. */
  private deadlineAt = 0;
  private deadlineIsCaller = false;
  private routeTimer: TimerHandle | undefined;
  private tryTimer: TimerHandle | undefined;
  private waitTimer: TimerHandle | undefined;

  /** The response head went downstream: no more retries. */
  committed = false;
  done = false;
  /** The response's HTTP status for stats; 0 = no response. */
  private status = 0;
  /** The current attempt's grpc-status (headers or trailers) for stats, -1 for none (stats/grpc-status.ts). */
  private grpcStatus = -1;
  /** The upstream's status for outlier detection (gRPC mapped to HTTP as Envoy does). */
  private outlierStatus = 0;
  trailers: http2.OutgoingHttpHeaders | undefined;

  constructor(
    readonly hcm: ConnectionManager,
    readonly entry: RouteEntry,
    readonly cluster: Cluster,
    host: Host,
    readonly grpc: boolean,
    down: DownstreamKind,
    private readonly method: string,
    private readonly path: string,
    private readonly authority: string,
    /** Upstream request headers (hop-by-hop stripped, route header ops applied). */
    private readonly headers: http.OutgoingHttpHeaders,
    /** The caller's grpc-timeout in ms (0: none). */
    callerTimeoutMs: number,
    /** The request's hash-policy value, for re-picks on retry. */
    private readonly hash: number | undefined,
  ) {
    this.route = entry.route!;
    this.host = host;
    hcm.listenerStats.rqActive.add(1); // until finish()
    this.startedAtMs = this.idleSince = hcm.opts.clock.now();
    hcm.watchIdle(this);
    this.setsAttemptCount = hcm.opts.setAttemptCount !== false || headers[ATTEMPT_COUNT_HEADER] === undefined;
    if ('h2' in down) {
      const s = down.h2 as Tagged<http2.ServerHttp2Stream>;
      this.h2down = s;
      this.h2session = s.session;
      s[kFwd] = this;
      s.on('close', onDownClose);
      this.src = s.endAfterHeaders ? undefined : s;
      this.bodyEnded = s.endAfterHeaders;
    } else {
      const res = down.res as Tagged<http.ServerResponse>;
      this.h1res = res;
      this.h2session = undefined;
      res[kFwd] = this;
      res.on('close', onDownClose);
      const h = down.req.headers;
      const hasBody = (h['content-length'] !== undefined && h['content-length'] !== '0') || h['transfer-encoding'] !== undefined;
      this.src = hasBody ? down.req : undefined;
      this.bodyEnded = !hasBody;
    }
    // An h1 upstream's response body is pushed by undici: resume it when the downstream drains.
    if (cluster.protocol === 'h1') ((this.h2down ?? this.h1res!) as Writable).on('drain', onDownDrain);
    if (this.src !== undefined) {
      this.src[kFwd] = this;
      this.src.on('data', onBodyData);
      this.src.on('end', onBodyEnd);
    }
    const routeMs = this.route.timeoutMs;
    const ms = routeMs > 0 && (callerTimeoutMs <= 0 || routeMs <= callerTimeoutMs) ? routeMs : callerTimeoutMs;
    if (ms > 0) {
      this.deadlineIsCaller = ms !== routeMs;
      this.deadlineAt = hcm.opts.clock.now() + ms;
      this.routeTimer = hcm.opts.clock.setTimer(ms, () => this.onDeadline());
    }
  }

  /**
   * The connection manager's deferred start (end of the event-loop turn the request arrived
   * in): a request whose client already reset it is not forwarded.
   */
  startQueued(): void {
    if (this.done) return;
    const down = this.h2down;
    if (down !== undefined && (down.closed || down.destroyed)) { this.onDownGone(); return; }
    this.start(this.delayMs);
  }

  /** Starts the first attempt now, or after a fault-injected delay. */
  start(delayMs: number): void {
    if (delayMs > 0) {
      this.src?.pause();
      this.waitTimer = this.hcm.opts.clock.setTimer(delayMs, () => {
        this.waitTimer = undefined;
        const refused = this.hcm.admit(this.entry);
        if (refused !== undefined) { this.fail(refused, refused.reason === 'rate_limited' ? 'the route\'s local rate limit is exhausted' : 'fault injected by the route (after its delay)'); return; }
        this.startAttempt(this.host);
      });
      return;
    }
    this.startAttempt(this.host);
  }

  // --- attempts ----------------------------------------------------------------------------

  private startAttempt(host: Host): void {
    if (this.done) return;
    const cluster = this.cluster;
    if (!cluster.resources.tryStartRequest()) {
      cluster.stats?.rqOverflow.inc();
      this.fail(LOCAL_REPLIES.maxRequests, `cluster ${cluster.name}: circuit breaker max_requests is open (limit ${cluster.resources.requests.max})`);
      return;
    }
    this.host = host;
    this.attempt++;
    this.attemptActive = true;
    this.attemptStartedAt = performance.now();
    this.liveSeq = this.attempt;
    this.grpcStatus = -1;
    host.activeRequests++;
    host.requestsTotal++;
    const cs = cluster.stats;
    if (cs !== undefined) cs.rqActive.value++;
    this.hcm.routeStatsFor(this.entry).rqAttempts.value++;
    const h = this.headers;
    if (this.setsAttemptCount) h[ATTEMPT_COUNT_HEADER] = String(this.attempt);
    const perTry = this.route.perTryTimeoutMs;
    if (perTry > 0) this.tryTimer = this.hcm.opts.clock.setTimer(perTry, () => this.onPerTryTimeout());
    if (this.grpc && this.deadlineAt > 0) {
      const left = Math.max(1, this.deadlineAt - this.hcm.opts.clock.now());
      h['grpc-timeout'] = formatGrpcTimeout(perTry > 0 && perTry < left ? perTry : left);
    }
    if (cluster.protocol === 'h2') this.startH2(cluster.pool(host) as H2Pool);
    else this.startH1(cluster.pool(host) as H1Pool);
  }

  private startH2(pool: H2Pool): void {
    const h = this.headers;
    h[':method'] = this.method;
    h[':path'] = this.path;
    h[':authority'] = this.authority;
    h[':scheme'] = 'http';
    const seq = this.attempt;
    pool.request(h as http2.OutgoingHttpHeaders, { endStream: this.src === undefined }, (err, up) => this.onH2Stream(seq, err, up));
  }

  private onH2Stream(seq: number, err: MeshError | null, stream: http2.ClientHttp2Stream | undefined): void {
    if (seq !== this.liveSeq || this.done) { stream?.close(NGHTTP2_CANCEL); return; }
    if (err !== null || stream === undefined) { this.onPoolError(err); return; }
    const up = stream as Tagged<http2.ClientHttp2Stream>;
    up[kFwd] = this;
    this.up = up;
    up.on('error', ignore);
    up.on('response', onUpResponse);
    up.on('trailers', onUpTrailers);
    up.on('close', onUpClose);
    if (this.src !== undefined) { up.on('drain', onSinkDrain); this.attachSink(up); }
  }

  private startH1(pool: H1Pool): void {
    const out: Record<string, string | string[] | undefined> = {};
    const h = this.headers;
    for (const k in h) if (k.charCodeAt(0) !== 58 /* ':' */) out[k] = h[k] as string | string[] | undefined;
    out['host'] = this.authority;
    let body: PassThrough | null = null;
    if (this.src !== undefined) {
      body = new PassThrough() as Tagged<PassThrough>;
      (body as Tagged<PassThrough>)[kFwd] = this;
      body.on('drain', onSinkDrain);
    }
    const handler = new H1Attempt(this, this.attempt);
    if (body !== null) this.attachSink(body);
    this.h1x = pool.request({ method: this.method, path: this.path, headers: out, body }, handler);
  }

  /**
   * Ends the current attempt's bookkeeping (idempotent): host load, cluster stats, breakers, and
   * what the outlier detector learns ('response': the upstream answered, outlierStatus says how;
   * 'none': nothing about the host, e.g. its pool closed or the caller left).
   */
  private endAttempt(statsStatus: number, report: 'response' | 'connect-failure' | 'timeout' | 'reset' | 'none'): void {
    if (!this.attemptActive) return;
    this.attemptActive = false;
    this.tryTimer?.cancel();
    this.tryTimer = undefined;
    this.sink = undefined;
    const host = this.host;
    const cluster = this.cluster;
    host.activeRequests--;
    const cs = cluster.stats;
    if (cs !== undefined) cs.rqActive.value--;
    const grpcStatus = statsStatus === 0 ? -1 : this.grpcStatus;
    if (!requestSucceeded(statsStatus, grpcStatus)) host.failuresTotal++;
    const elapsedMs = performance.now() - this.attemptStartedAt;
    const now = this.hcm.opts.clock.now();
    observeLatency(host, elapsedMs, now, cluster.ewmaDecayMs);
    cluster.stats?.record(statsStatus, elapsedMs * 1000, now, grpcStatus);
    cluster.resources.endRequest();
    const od = cluster.outlier;
    if (od !== undefined && report !== 'none') {
      if (report !== 'response') od.onLocalOrigin(host, report);
      else { od.onLocalOrigin(host, 'success'); od.onResponse(host, this.outlierStatus); }
    }
  }

  /** An attempt failed before any response was committed: retry, or reply locally. */
  private attemptFailed(outcome: AttemptOutcome, reply: LocalReply, detail: string): void {
    if (this.done) return;
    if (this.decideRetry(outcome)) return;
    this.fail(this.lastReply ?? reply, this.lastReply === undefined ? detail : `${detail}; ${this.lastDetail}`);
  }

  /** Set when a retry was refused by a limit: names that limit in the local reply. */
  private lastReply: LocalReply | undefined;
  private lastDetail = '';

  /** Asks RetryState; on yes, schedules the next attempt after its backoff and returns true. */
  private decideRetry(outcome: AttemptOutcome): boolean {
    let rs = this.retry;
    if (rs === undefined) {
      rs = this.retry = new RetryState(this.route.retryPolicy, this.cluster.resources, { bodyReplayable: this.replayable, random: this.hcm.random });
    }
    rs.bodyReplayable = this.replayable;
    const d = rs.decide(outcome);
    const stats = this.cluster.stats;
    if (!d.retry) {
      if (d.reason === 'budget-exhausted' || d.reason === 'max-retries') {
        stats?.rqRetryOverflow.inc();
        this.lastReply = d.reason === 'budget-exhausted' ? LOCAL_REPLIES.retryBudgetExhausted : LOCAL_REPLIES.maxRetries;
        this.lastDetail = d.reason === 'budget-exhausted'
          ? `retry refused: cluster ${this.cluster.name} retry budget is exhausted`
          : `retry refused: cluster ${this.cluster.name} circuit breaker max_retries is open`;
      } else if (d.reason === 'attempts-exhausted') stats?.rqRetryLimitExceeded.inc();
      return false;
    }
    stats?.rqRetry.inc();
    this.hcm.routeStatsFor(this.entry).rqRetry.value++;
    (this.tried ??= new Set()).add(this.host);
    this.src?.pause();
    this.waitTimer = this.hcm.opts.clock.setTimer(d.delayMs, () => this.retryNow());
    return true;
  }

  private retryNow(): void {
    this.waitTimer = undefined;
    if (this.done) return;
    const ctx = this.hcm.pickContext(this.entry, this.tried, this.hash);
    const host = this.cluster.picker.pick(ctx);
    if (host === undefined) { this.fail(LOCAL_REPLIES.noHealthyUpstream, `cluster ${this.cluster.name} has no healthy endpoint`); return; }
    this.startAttempt(host);
  }

  private onPoolError(err: MeshError | null): void {
    if (err instanceof BreakerOpenError) {
      const stats = this.cluster.stats;
      if (err.breaker === 'max_connections') stats?.cxOverflow.inc(); else stats?.rqPendingOverflow.inc();
      this.endAttempt(0, 'none');
      this.fail(err.breaker === 'max_connections' ? LOCAL_REPLIES.maxConnections : LOCAL_REPLIES.maxPendingRequests, err.message);
      return;
    }
    const code = err?.code;
    const msg = err?.message ?? 'no stream';
    if (code === 'SKEIN_ERR_UPSTREAM_OVERFLOW') { this.endAttempt(0, 'none'); this.fail(LOCAL_REPLIES.upstreamOverflow, msg); return; }
    // Connect failure, connect timeout, or a pool that closed under us (the host left): nothing
    // was sent, so the request may go elsewhere even without a retry policy.
    this.up = undefined;
    this.h1x = undefined;
    this.liveSeq = 0;
    this.endAttempt(0, code === 'SKEIN_ERR_POOL_CLOSED' ? 'none' : code === 'SKEIN_ERR_UPSTREAM_CONNECT_TIMEOUT' ? 'timeout' : 'connect-failure');
    if (this.hcm.opts.refuseUnforwarded === true && !this.done) { this.refuseUnforwarded(msg); return; }
    this.attemptFailed(CONNECT_FAILURE, LOCAL_REPLIES.upstreamConnectFailure, msg);
  }

  /** Inbound: the app was not reached; tell the caller it may safely send the request elsewhere. */
  private refuseUnforwarded(detail: string): void {
    const down = this.h2down;
    if (down === undefined) { this.fail(LOCAL_REPLIES.appUnavailable, `the local app is unreachable: ${detail}`); return; }
    if (!down.destroyed) down.close(NGHTTP2_REFUSED_STREAM);
    this.hcm.countLocalReply(this.entry, LOCAL_REPLIES.appUnavailable);
    this.finish(0);
  }

  // --- response ----------------------------------------------------------------------------

  /** A response head from the current attempt: retry (abandoning it) or commit. */
  onHead(status: number, grpcStatus: number | undefined, headers: http.IncomingHttpHeaders): boolean {
    this.outlierStatus = grpcStatus === undefined ? status : grpcToHttp(grpcStatus);
    this.grpcStatus = grpcStatus === undefined ? -1 : parseGrpcStatus(grpcStatus);
    const failed = status >= 500 || (grpcStatus !== undefined && grpcStatus !== 0);
    // Other responses go to RetryState only when the policy has a condition for them (409, x-envoy-ratelimited, retriable headers or codes).
    if ((failed || this.route.retryPolicy?.retriesResponses === true) && !this.committed &&
      this.decideRetry({ kind: 'response', status, grpcStatus, headers })) {
      // Retried: this attempt is over (its retry starts after the backoff timer).
      this.abandonAttempt();
      this.endAttempt(status, 'response');
      return false;
    }
    // Passed on, failed or not: the attempt (max_requests, latency, EWMA, outlier report) ends
    // with the response's end, in complete().
    this.tryTimer?.cancel();
    this.tryTimer = undefined;
    if (this.attempt > 1 && !failed) this.cluster.stats?.rqRetrySuccess.inc();
    this.committed = true;
    return true;
  }

  /** The committed response finished (or broke): final bookkeeping. */
  complete(statsStatus: number, report: 'response' | 'timeout' | 'reset'): void {
    this.endAttempt(statsStatus, report);
    this.finish(statsStatus);
  }

  // --- request body --------------------------------------------------------------------------

  onBody(chunk: Buffer): void {
    this.activity++;
    const sink = this.sink;
    if (this.replayable || sink === undefined) {
      this.buf.push(chunk);
      this.bufBytes += chunk.length;
      if (this.replayable && this.bufBytes > this.hcm.retryBufferBytes) this.replayable = false;
    }
    if (sink === undefined) { this.src!.pause(); return; }
    if (!this.replayable && this.buf.length > 0) this.buf = [];
    if (!sink.destroyed && !sink.writableEnded && !sink.write(chunk)) this.src!.pause();
  }

  onBodyEnd(): void {
    this.bodyEnded = true;
    const sink = this.sink;
    if (sink !== undefined && !sink.destroyed && !sink.writableEnded) sink.end();
  }

  private attachSink(sink: Tagged<Writable>): void {
    this.sink = sink;
    const buf = this.buf;
    let ok = true;
    for (let i = 0; i < buf.length; i++) ok = sink.write(buf[i]!) && ok;
    if (!this.replayable) { this.buf = []; this.bufBytes = 0; }
    if (this.bodyEnded) sink.end();
    else if (ok) this.src!.resume();
  }

  onSinkDrain(): void {
    const src = this.src;
    if (src !== undefined && src.isPaused() && this.sink !== undefined && !this.bodyEnded) src.resume();
  }

  // --- timeouts and endings --------------------------------------------------------------------

  private onPerTryTimeout(): void {
    this.tryTimer = undefined;
    if (this.done || this.committed || !this.attemptActive) return;
    this.cluster.stats?.rqPerTryTimeout.inc();
    this.abandonAttempt();
    this.endAttempt(0, 'timeout');
    this.attemptFailed(PER_TRY_TIMEOUT, LOCAL_REPLIES.upstreamPerTryTimeout, `no response within the per-try timeout of ${this.route.perTryTimeoutMs}ms`);
  }

  private onDeadline(): void {
    this.routeTimer = undefined;
    if (this.done) return;
    this.hcm.routeStatsFor(this.entry).rqTimeout.value++;
    this.cluster.stats?.rqTimeout.inc();
    if (!this.committed) {
      this.abandonAttempt();
      this.endAttempt(0, 'timeout');
      const reply = this.deadlineIsCaller ? LOCAL_REPLIES.deadlineExceeded : LOCAL_REPLIES.upstreamTimeout;
      this.fail(reply, this.deadlineIsCaller ? 'the caller\'s grpc-timeout passed' : `no response within the route timeout of ${this.route.timeoutMs}ms`);
      return;
    }
    // Mid-response: cut both sides, as the client's own deadline would.
    this.abandonAttempt();
    this.resetDown(NGHTTP2_CANCEL);
    this.complete(0, 'timeout');
  }

  /** Closes the current attempt's upstream stream or exchange (its later events are ignored). */
  private abandonAttempt(): void {
    const up = this.up;
    const x = this.h1x;
    this.up = undefined;
    this.h1x = undefined;
    this.liveSeq = 0;
    if (up !== undefined && !up.closed && !up.destroyed) up.close(NGHTTP2_CANCEL);
    x?.abort(new Error('request ended by the proxy'));
  }

  /** Called by the connection manager's idle sweep. */
  checkIdle(now: number, timeoutMs: number): void {
    if (this.activity !== this.seenActivity) {
      this.seenActivity = this.activity;
      this.idleSince = now;
      return;
    }
    if (now - this.idleSince >= timeoutMs) this.onIdleTimeout(timeoutMs);
  }

  /**
   * No activity either way for the stream idle timeout: a 408 (gRPC DEADLINE_EXCEEDED) before
   * the response started, else a reset. A request body the client has not finished is cut too
   * (HTTP/2: RST_STREAM NO_ERROR after the reply; HTTP/1.1: the connection closes after it).
   */
  private onIdleTimeout(timeoutMs: number): void {
    if (this.done) return;
    this.hcm.listenerStats.rqIdleTimeout.inc();
    this.abandonAttempt();
    this.endAttempt(0, 'none');
    if (this.committed) { this.resetDown(NGHTTP2_CANCEL); this.finish(0); return; }
    if (this.h1res !== undefined && !this.bodyEnded) this.h1res.shouldKeepAlive = false;
    this.fail(LOCAL_REPLIES.streamIdleTimeout, `no request or response activity for ${timeoutMs}ms (the listener's stream idle timeout)`);
    if (this.h2down !== undefined) closeUnfinishedRequest(this.h2down);
  }

  /** The downstream went away before the request finished: the client reset or abandoned it. */
  onDownGone(): void {
    if (this.done) return;
    const ls = this.hcm.listenerStats;
    ls.rqRxReset.inc();
    if (this.attempt === 0) ls.rqRxResetUnforwarded.inc();
    const down = this.h2down;
    if (down !== undefined) this.hcm.onClientReset(this.h2session, this.startedAtMs);
    this.abandonAttempt();
    this.endAttempt(0, 'none');
    this.finish(0);
  }

  /** A local reply, then the end. */
  fail(reply: LocalReply, detail: string): void {
    if (this.done) return;
    if (this.h2down !== undefined) replyH2(this.h2down, this.grpc, reply, detail, this.attempt);
    else replyH1(this.h1res!, this.grpc, reply, detail, this.attempt);
    this.hcm.countLocalReply(this.entry, reply);
    this.finish(0);
  }

  private finish(status: number): void {
    if (this.done) return;
    this.done = true;
    this.routeTimer?.cancel();
    this.tryTimer?.cancel();
    this.waitTimer?.cancel();
    this.retry?.attemptDone();
    this.buf = [];
    this.up = undefined;
    this.h1x = undefined;
    this.liveSeq = 0;
    this.hcm.listenerStats.rqActive.add(-1);
    this.hcm.unwatchIdle(this);
    this.hcm.finished(this.cluster, this.entry, this.startedAt, status, status === 0 ? -1 : this.grpcStatus);
  }

  resetDown(code: number): void {
    if (this.h2down !== undefined) { if (!this.h2down.destroyed) this.h2down.close(code); }
    else this.h1res!.destroy();
  }

  // --- writing the response downstream ------------------------------------------------------

  /** Commits an upstream response head downstream. Returns false if the downstream is gone. */
  writeHead(status: number, headers: http.IncomingHttpHeaders, endStream: boolean, wantTrailers: boolean): boolean {
    this.activity++;
    const out = downstreamHeaders(headers);
    applyResponseHeaderOps(out, this.entry);
    out[ATTEMPT_COUNT_HEADER] = String(this.attempt);
    const down = this.h2down;
    if (down !== undefined) {
      if (down.destroyed) return false;
      try {
        out[':status'] = status;
        if (endStream) down.respond(out, { endStream: true });
        else if (wantTrailers) { down.respond(out, { waitForTrailers: true }); down.once('wantTrailers', onWantTrailers); }
        else down.respond(out);
      } catch { return false; }
      return true;
    }
    const res = this.h1res!;
    if (res.destroyed) return false;
    for (const k of Object.keys(out)) if (k.charCodeAt(0) === 58) delete out[k];
    delete out['content-length'];
    res.writeHead(status, out);
    if (endStream) res.end();
    return true;
  }

  /** The downstream writable (h2 stream or h1 response). */
  get downWritable(): Writable { return this.h2down ?? this.h1res!; }
  get h2Downstream(): boolean { return this.h2down !== undefined; }

  onUpstreamTrailers(trailers: http.IncomingHttpHeaders): void {
    const t = downstreamHeaders(trailers);
    this.trailers = t;
    const g = trailers['grpc-status'];
    if (this.grpc && g !== undefined) {
      this.grpcStatus = parseGrpcStatus(g);
      this.outlierStatus = grpcToHttp(this.grpcStatus);
    }
    if (this.h1res !== undefined && !this.h1res.destroyed) this.h1res.addTrailers(t as http.OutgoingHttpHeaders);
  }

  get statsStatus(): number { return this.status; }
  set statsStatus(s: number) { this.status = s; }

  // h1 upstream events (via H1Attempt) ------------------------------------------------------

  onH1Head(status: number, headers: http.IncomingHttpHeaders): void {
    const g = headers['grpc-status'];
    const grpcStatus = this.grpc && g !== undefined ? Number(g) : undefined;
    if (!this.onHead(status, grpcStatus, headers)) return;
    this.status = status;
    if (!this.writeHead(status, headers, false, false)) { this.h1x?.abort(new Error('the downstream went away')); }
  }

  onH1Data(chunk: Buffer): boolean {
    this.activity++;
    const w = this.downWritable;
    return w.destroyed ? true : w.write(chunk);
  }

  onH1End(trailers: http.IncomingHttpHeaders): void {
    if (Object.keys(trailers).length > 0) this.onUpstreamTrailers(trailers);
    const w = this.downWritable;
    if (!w.destroyed && !w.writableEnded) w.end();
    this.complete(this.status, 'response');
  }

  onH1Error(err: MeshError): void {
    if (this.committed) { this.resetDown(NGHTTP2_CANCEL); this.complete(0, 'reset'); return; }
    const code = err.code;
    if (err instanceof BreakerOpenError || code === 'SKEIN_ERR_UPSTREAM_OVERFLOW' || code === 'SKEIN_ERR_UPSTREAM_CONNECT_FAILURE' || code === 'SKEIN_ERR_UPSTREAM_CONNECT_TIMEOUT' || code === 'SKEIN_ERR_POOL_CLOSED') {
      this.onPoolError(err);
      return;
    }
    // Not yet put on a connection by undici: no request byte went out (reset-before-request).
    const sent = this.h1x?.started !== false;
    this.h1x = undefined;
    this.liveSeq = 0;
    this.endAttempt(0, 'reset');
    this.attemptFailed(sent ? RESET_SENT : RESET_UNSENT, LOCAL_REPLIES.upstreamReset, err.message);
  }

  resumeH1(): void { this.h1x?.resume(); }

  // h2 upstream events -------------------------------------------------------------------------

  isCurrent(up: http2.ClientHttp2Stream): boolean { return this.up === up; }

  /** The h2 upstream response has ended (all of it was relayed downstream). */
  upstreamEnded(): boolean { const up = this.up; return up !== undefined && (up.readableEnded || up.closed); }

  onH2Close(up: http2.ClientHttp2Stream): void {
    const code = up.rstCode ?? NGHTTP2_NO_ERROR;
    this.up = undefined;
    this.liveSeq = 0;
    if (this.committed) {
      if (code !== NGHTTP2_NO_ERROR) { this.resetDown(code); this.complete(0, 'reset'); return; }
      this.complete(this.status, 'response');
      return;
    }
    const refused = code === NGHTTP2_REFUSED_STREAM;
    // A refused stream was not processed (RFC 9113 8.7): not the host's failure.
    this.endAttempt(0, refused ? 'none' : 'reset');
    this.attemptFailed(refused ? REFUSED : RESET_SENT, LOCAL_REPLIES.upstreamReset,
      refused ? 'the upstream refused the stream' : code === NGHTTP2_NO_ERROR ? 'the upstream closed the stream without a response' : `the upstream reset the stream (code ${code})`);
  }
}

const CONNECT_FAILURE: AttemptOutcome = { kind: 'connect-failure' };
const REFUSED: AttemptOutcome = { kind: 'refused-stream' };
const RESET_SENT: AttemptOutcome = { kind: 'reset', sentBytes: true };
const RESET_UNSENT: AttemptOutcome = { kind: 'reset', sentBytes: false };
const PER_TRY_TIMEOUT: AttemptOutcome = { kind: 'per-try-timeout' };

/** Receives one h1 attempt's response; ignores everything once the router moved on. */
class H1Attempt implements H1ResponseHandler {
  constructor(private readonly f: Forward, private readonly seq: number) {}
  private live(): boolean { return this.f.liveSeq === this.seq && !this.f.done; }
  onHead(status: number, headers: http.IncomingHttpHeaders): void { if (this.live()) this.f.onH1Head(status, headers); }
  onData(chunk: Buffer): boolean { return this.live() ? this.f.onH1Data(chunk) : true; }
  onEnd(trailers: http.IncomingHttpHeaders): void { if (this.live()) this.f.onH1End(trailers); }
  onError(err: MeshError): void { if (this.live()) this.f.onH1Error(err); }
}

// --- shared handlers (this = the stream) ---------------------------------------------------

function onUpResponse(this: Tagged<http2.ClientHttp2Stream>, headers: http2.IncomingHttpHeaders, flags: number): void {
  const f = this[kFwd]!;
  if (f.done || !f.isCurrent(this)) { this.close(NGHTTP2_CANCEL); return; }
  const status = Number(headers[':status']);
  const g = headers['grpc-status'];
  const grpcStatus = f.grpc && g !== undefined ? Number(g) : undefined;
  if (!f.onHead(status, grpcStatus, headers)) return;
  f.statsStatus = status;
  const end = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
  const wantTrailers = f.grpc || isGrpcContentType(headers['content-type']);
  if (!f.writeHead(status, headers, end, wantTrailers && f.h2Downstream)) { this.close(NGHTTP2_CANCEL); return; }
  if (!end) relay(this, f.downWritable, f);
}

function onUpTrailers(this: Tagged<http2.ClientHttp2Stream>, trailers: http2.IncomingHttpHeaders): void {
  this[kFwd]!.onUpstreamTrailers(trailers);
}

function onUpClose(this: Tagged<http2.ClientHttp2Stream>): void {
  const f = this[kFwd]!;
  // A stream abandoned for a retry or a timeout was already accounted for.
  if (!f.done && f.isCurrent(this)) f.onH2Close(this);
}

function onWantTrailers(this: Tagged<http2.ServerHttp2Stream>): void {
  const f = this[kFwd]!;
  try {
    this.sendTrailers(f.trailers ?? { 'grpc-status': '13', 'grpc-message': 'upstream ended the stream without trailers' });
  } catch { this.destroy(); }
}

function onDownClose(this: Tagged<http2.ServerHttp2Stream | http.ServerResponse>): void {
  const f = this[kFwd]!;
  if (f.done) return;
  // Closed after the whole response went out: the upstream stream's own 'close' finishes the
  // request. (Neither rstCode nor writableFinished tells: a destroyed session closes its
  // streams with NO_ERROR, and a closed stream reports its writable side finished.)
  if (f.committed && f.upstreamEnded()) return;
  f.onDownGone();
}

function onBodyData(this: Tagged<Readable>, chunk: Buffer): void { this[kFwd]!.onBody(chunk); }
function onBodyEnd(this: Tagged<Readable>): void { this[kFwd]!.onBodyEnd(); }
function onSinkDrain(this: Tagged<Writable>): void { this[kFwd]!.onSinkDrain(); }
function onDownDrain(this: Tagged<Writable>): void { this[kFwd]!.resumeH1(); }

function ignore(): void { /* errors surface through 'close' and rstCode */ }

/** Envoy's gRPC -> HTTP status mapping (Grpc::Utility::grpcToHttpStatus), for outlier detection. */
export function grpcToHttp(code: number): number {
  switch (code) {
    case 0: return 200;
    case 1: return 499;
    case 3: case 9: case 11: return 400;
    case 4: return 504;
    case 5: return 404;
    case 6: case 10: return 409;
    case 7: return 403;
    case 8: return 429;
    case 12: return 501;
    case 14: return 503;
    case 16: return 401;
    default: return 500; // UNKNOWN, INTERNAL, DATA_LOSS, anything else
  }
}

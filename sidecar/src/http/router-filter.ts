/**
 * The router filter: the last stage of a listener's filter chain. It owns what happens to a
 * request across attempts (Envoy's router.cc, grpc-js's RetryingCall); one attempt's wire work is
 * an UpstreamRequest (upstream-request.ts), which reports back through RouterFilterInterface.
 *
 *   start ──> attempt 1 ──> response head ──> success? commit and stream it
 *               │  ▲             │ failure
 *               │  └─ backoff <──┴── RetryState.decide(): policy, attempts,
 *               │     (slot held)      budget / max_retries, body replayable
 *               └─> connect failure / refused / reset / per-try timeout
 *
 * - Retries are decided by RetryState (no hidden retries: without a policy only a failed connect
 *   or a refused stream is retried) and avoid hosts already tried (PickContext.tried).
 * - The request body is forwarded as it arrives and also kept, up to `retryBufferBytes`
 *   (64 KiB), for replay; a larger body is never retried. The copy is dropped at commit.
 * - The response head is held until the retry decision; once committed (sent downstream) the
 *   request is never retried.
 * - Timeouts: the route timeout and the caller's grpc-timeout (whichever ends first) bound the
 *   whole request, backoffs included; the per-try timeout bounds each attempt until its
 *   response head. Each attempt tells the upstream the time left in grpc-timeout.
 * - Each attempt's accounting (host load, the balancer's latency sample, cluster stats, breakers,
 *   outlier detection) is Cluster.onAttemptStart / onAttemptEnd.
 * - Errors become local replies through local-reply.ts (localReplyForError), once.
 */
import * as http2 from 'node:http2';
import type { TimerHandle } from '../../../shared/src/clock';
import type { MeshError } from '../../../shared/src/errors';
import { RetryState } from '../resilience/retry-state';
import type { AttemptOutcome } from '../resilience/retry-state';
import { isGrpcContentType } from '../route/grpc-content-type';
import type { HeaderBag } from '../route/header-ops';
import type { RouteAction } from '../route/route-action';
import type { Cluster } from '../upstream/cluster';
import type { AttemptReport } from '../upstream/cluster';
import type { Host } from '../upstream/host';
import { parseGrpcStatus } from '../stats/grpc-status';
import type { Downstream } from './downstream';
import { parseGrpcTimeout, formatGrpcTimeout } from './grpc-timeout';
import type { Selection } from './listener-context';
import { ATTEMPT_COUNT_HEADER, LOCAL_REPLIES, localReplyForError } from './local-reply';
import { BreakerOpenError } from '../upstream/resources';
import type { LocalReply } from './local-reply';
import { HOP_BY_HOP, downstreamHeaders } from './proxy-headers';
import { newUpstreamRequest } from './upstream-request';
import type { BodySink, RouterFilterInterface, UpstreamRequest } from './upstream-request';

const { NGHTTP2_CANCEL } = http2.constants;

/** Default request-body bytes kept for replay (Envoy's per_request_buffer_limit_bytes role). */
export const DEFAULT_RETRY_BUFFER_BYTES = 64 * 1024;

const NO_CHUNKS: Buffer[] = [];

export class RouterFilter implements RouterFilterInterface {
  readonly route: RouteAction;
  readonly cluster: Cluster;
  private host: Host;
  private readonly hash: number | undefined;
  private bodyEnded: boolean;
  private buf: Buffer[] = NO_CHUNKS;
  private bufBytes = 0;
  private replayable = true;
  /** Where the current attempt's request body goes (set once its stream exists). */
  private sink: BodySink | undefined;

  /** Attempts started (1 = the first try). */
  attempt = 0;
  private attemptActive = false;
  private attemptStartedAt = 0;
  /** The live attempt: events from any other one are stale (UpstreamRequest checks). */
  upstream: UpstreamRequest | undefined;
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
  /** A gRPC response whose head went out over HTTP/2 and whose trailers have not: a break is answered with trailers. */
  private grpcTrailersPending = false;
  done = false;
  /** The response's HTTP status for stats; 0 = no response. */
  private status = 0;
  /** The current attempt's grpc-status (headers or trailers) for stats, -1 for none (stats/grpc-status.ts). */
  private grpcStatus = -1;
  /** The upstream's status for outlier detection (gRPC mapped to HTTP as Envoy does). */
  private outlierStatus = 0;
  /** Set when a retry was refused by a limit: names that limit in the local reply. */
  private lastReply: LocalReply | undefined;
  private lastDetail = '';

  constructor(readonly down: Downstream, sel: Selection) {
    this.route = down.route.route!;
    this.cluster = sel.cluster;
    this.host = sel.host;
    this.hash = sel.hash;
    const cm = down.cm;
    this.setsAttemptCount = cm.setAttemptCount || down.requestHeaders[ATTEMPT_COUNT_HEADER] === undefined;
    this.bodyEnded = down.body === undefined;
    const callerMs = down.grpc && cm.honorGrpcTimeout ? parseGrpcTimeout(down.requestHeaders['grpc-timeout'] as string | undefined) : 0;
    const routeMs = this.route.timeoutMs;
    const ms = routeMs > 0 && (callerMs <= 0 || routeMs <= callerMs) ? routeMs : callerMs;
    if (ms > 0) {
      // Both limits count from the request's arrival: a fault delay spent part of them.
      const left = ms - down.heldMs;
      this.deadlineIsCaller = ms !== routeMs;
      this.deadlineAt = cm.clock.now() + left;
      if (left > 0) this.routeTimer = cm.clock.setTimer(left, () => this.onDeadline());
    }
  }

  start(): void {
    // Not in the constructor: skein's engine hands over body chunks that already arrived at once, and they go to down.router.
    this.down.readBody();
    if (this.deadlineAt !== 0 && this.routeTimer === undefined) { this.onDeadline(); return; } // spent in a fault delay
    this.startAttempt(this.host);
  }

  // --- attempts ----------------------------------------------------------------------------

  private startAttempt(host: Host): void {
    if (this.done) return;
    this.down.attempts++;
    this.down.upstreamHost = host.key;
    const cluster = this.cluster;
    if (!cluster.onAttemptStart(host)) {
      this.fail(LOCAL_REPLIES.maxRequests, `cluster ${cluster.name}: circuit breaker max_requests is open (limit ${cluster.resources.requests.max})`);
      return;
    }
    this.host = host;
    this.attempt++;
    this.attemptActive = true;
    this.attemptStartedAt = performance.now();
    this.grpcStatus = -1;
    this.down.stats.route.rqAttempts.value++;
    const h = this.down.requestHeaders;
    if (this.setsAttemptCount) h[ATTEMPT_COUNT_HEADER] = attemptString(this.attempt);
    const perTry = this.route.perTryTimeoutMs;
    if (perTry > 0) this.tryTimer = this.down.cm.clock.setTimer(perTry, () => this.onPerTryTimeout());
    if (this.down.grpc && this.deadlineAt > 0) {
      const left = Math.max(1, this.deadlineAt - this.down.cm.clock.now());
      h['grpc-timeout'] = formatGrpcTimeout(perTry > 0 && perTry < left ? perTry : left);
    }
    const trace = this.down.trace;
    if (trace !== undefined) trace.onAttempt(this.attempt, host.key, h);
    const up = newUpstreamRequest(this, cluster, host);
    this.upstream = up;
    up.start(this.down);
  }

  /** Ends the current attempt's accounting (idempotent): Cluster.onAttemptEnd. */
  private endAttempt(statsStatus: number, report: AttemptReport): void {
    if (!this.attemptActive) return;
    this.attemptActive = false;
    this.tryTimer?.cancel();
    this.tryTimer = undefined;
    this.sink = undefined;
    const trace = this.down.trace;
    if (trace !== undefined) trace.onAttemptEnd(statsStatus);
    const grpcStatus = statsStatus === 0 ? -1 : this.grpcStatus;
    this.cluster.onAttemptEnd(this.host, report, statsStatus, grpcStatus, this.outlierStatus, performance.now() - this.attemptStartedAt, this.down.cm.clock.now());
  }

  /** An attempt failed before any response was committed: retry, or reply locally. */
  private attemptFailed(outcome: AttemptOutcome, reply: LocalReply, detail: string): void {
    if (this.done) return;
    if (this.decideRetry(outcome)) return;
    this.fail(this.lastReply ?? reply, this.lastReply === undefined ? detail : `${detail}; ${this.lastDetail}`);
  }

  /** Asks RetryState; on yes, schedules the next attempt after its backoff and returns true. */
  private decideRetry(outcome: AttemptOutcome): boolean {
    let rs = this.retry;
    if (rs === undefined) {
      const cm = this.down.cm;
      rs = this.retry = new RetryState(this.route.retryPolicy, this.cluster.resources, { bodyReplayable: this.replayable, random: () => cm.random() });
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
    const trace = this.down.trace;
    if (trace !== undefined) trace.retryReason = retryReason(outcome);
    this.down.stats.route.rqRetry.value++;
    (this.tried ??= new Set()).add(this.host);
    this.down.body?.pause();
    this.waitTimer = this.down.cm.clock.setTimer(d.delayMs, () => this.retryNow());
    return true;
  }

  private retryNow(): void {
    this.waitTimer = undefined;
    if (this.done) return;
    const ctx = this.down.cm.pickContext(this.down.route, this.tried, this.hash);
    const host = this.cluster.picker.pick(ctx);
    if (host === undefined) { this.fail(LOCAL_REPLIES.noHealthyUpstream, `cluster ${this.cluster.name} has no healthy endpoint`); return; }
    this.startAttempt(host);
  }

  // --- RouterFilterInterface: what the attempt reports ------------------------------------

  isLive(req: UpstreamRequest): boolean { return this.upstream === req && !this.done; }

  /** No stream: a breaker, an overflowing pool, a failed connect (nothing was sent). */
  onPoolFailure(err: MeshError | null): void {
    const reply = localReplyForError(err);
    const msg = err?.message ?? 'no stream';
    if (err instanceof BreakerOpenError || reply === LOCAL_REPLIES.upstreamOverflow) {
      if (reply === LOCAL_REPLIES.maxConnections) this.cluster.stats?.cxOverflow.inc();
      else if (reply === LOCAL_REPLIES.maxPendingRequests) this.cluster.stats?.rqPendingOverflow.inc();
      this.endAttempt(0, 'none');
      this.fail(reply, msg);
      return;
    }
    // Connect failure, connect timeout, or a pool that closed under us (the host left): nothing
    // was sent, so the request may go elsewhere even without a retry policy.
    const code = err?.code;
    this.upstream = undefined;
    this.endAttempt(0, code === 'SKEIN_ERR_POOL_CLOSED' ? 'none' : code === 'SKEIN_ERR_UPSTREAM_CONNECT_TIMEOUT' ? 'timeout' : 'connect-failure');
    if (this.down.cm.refuseUnforwarded && !this.done) { this.refuseUnforwarded(msg); return; }
    this.attemptFailed(CONNECT_FAILURE, reply, msg);
  }

  /** The attempt's stream exists: the request body goes to `sink` (undefined: no body). */
  onUpstreamStream(sink: BodySink | undefined): void {
    if (sink === undefined) return;
    this.sink = sink;
    const buf = this.buf;
    let ok = true;
    for (let i = 0; i < buf.length; i++) ok = sink.write(buf[i]!) && ok;
    if (!this.replayable) { this.buf = NO_CHUNKS; this.bufBytes = 0; }
    if (this.bodyEnded) sink.end();
    else if (ok) this.down.body!.resume();
  }

  /**
   * A response head from the current attempt: retry (abandoning it; false) or commit and write it
   * downstream (true; false also when the downstream is gone, after abandoning the attempt).
   */
  onUpstreamHeaders(status: number, headers: HeaderBag, endStream: boolean): boolean {
    const g = headers['grpc-status'];
    const grpcStatus = this.down.grpc && g !== undefined ? Number(g) : undefined;
    this.outlierStatus = grpcStatus === undefined ? status : grpcToHttp(grpcStatus);
    this.grpcStatus = grpcStatus === undefined ? -1 : parseGrpcStatus(grpcStatus);
    const failed = status >= 500 || (grpcStatus !== undefined && grpcStatus !== 0);
    // Other responses go to RetryState only when the policy has a condition for them (409, x-envoy-ratelimited, retriable headers or codes).
    if ((failed || this.route.retryPolicy?.retriesResponses === true) && !this.committed &&
      this.decideRetry({ kind: 'response', status, grpcStatus, headers: headers as Record<string, string | string[] | undefined> })) {
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
    this.buf = NO_CHUNKS; // nothing is replayed after commit
    this.status = status;
    const out = hasHopByHop(headers) ? downstreamHeaders(headers as import('node:http').IncomingHttpHeaders) as HeaderBag : headers;
    this.down.encodeHeaders(out);
    out[ATTEMPT_COUNT_HEADER] = attemptString(this.attempt);
    const wantTrailers = this.down.h2 && (this.down.grpc || isGrpcContentType(headers['content-type'] as string | undefined));
    this.grpcTrailersPending = wantTrailers && !endStream;
    if (!this.down.respond(status, out, endStream, wantTrailers)) {
      // The downstream is gone: cut the attempt too.
      this.abandonAttempt();
      this.complete(0, 'reset');
      return false;
    }
    return true;
  }

  /** A response body chunk pushed by the attempt (HTTP/1.1 upstream); false asks it to pause. */
  onUpstreamData(chunk: Buffer): boolean {
    this.down.activity++;
    const w = this.down.writable;
    if (w.destroyed || w.write(chunk)) return true;
    this.down.watchDrain(); // backpressure: the attempt pauses until the downstream's 'drain'
    return false;
  }

  onUpstreamInformational(headers: string[]): void {
    if (this.committed || this.done) return;
    this.down.informational(headers);
  }

  onUpstreamTrailers(trailers: HeaderBag): void {
    this.grpcTrailersPending = false;
    const t = hasHopByHop(trailers) ? downstreamHeaders(trailers as import('node:http').IncomingHttpHeaders) as HeaderBag : trailers;
    const g = trailers['grpc-status'];
    if (this.down.grpc && g !== undefined) {
      this.grpcStatus = parseGrpcStatus(g as string);
      this.outlierStatus = grpcToHttp(this.grpcStatus);
    }
    this.down.setTrailers(t);
  }

  /** The committed response ended well: end the downstream (when the attempt does not relay) and account. */
  onUpstreamComplete(endDownstream: boolean): void {
    this.upstream = undefined;
    if (endDownstream) {
      const w = this.down.writable;
      if (!w.destroyed && !w.writableEnded) w.end();
    }
    this.complete(this.status, 'response');
  }

  /**
   * The attempt broke: reset or refused by the upstream (`refused`: not processed, RFC 9113 8.7),
   * with (`sentBytes`) or without any request byte out. `code`: the HTTP/2 code passed on downstream.
   */
  onUpstreamReset(refused: boolean, sentBytes: boolean, code: number, detail: string): void {
    this.upstream = undefined;
    if (this.committed) {
      if (this.grpcTrailersPending && this.endWithUnavailable(detail)) { this.complete(0, 'reset'); return; }
      this.down.reset(code);
      this.complete(0, 'reset');
      return;
    }
    this.endAttempt(0, refused ? 'none' : 'reset');
    this.attemptFailed(refused ? REFUSED : sentBytes ? RESET_SENT : RESET_UNSENT, LOCAL_REPLIES.upstreamReset, detail);
  }

  /**
   * A gRPC response broke after its head went out (the upstream reset or died): it cannot be
   * retried, but rather than a bare RST_STREAM (which gRPC clients report as INTERNAL with no
   * reason) the caller gets its trailers: UNAVAILABLE, which client retry policies treat as
   * retryable, with x-skein-reason upstream_reset. False if the downstream is gone.
   */
  private endWithUnavailable(detail: string): boolean {
    const w = this.down.writable;
    if (w.destroyed || w.writableEnded) return false;
    this.grpcTrailersPending = false;
    this.down.setTrailers({ 'grpc-status': '14', 'grpc-message': encodeURIComponent(`upstream reset mid-response: ${detail}`), 'x-skein-reason': LOCAL_REPLIES.upstreamReset.reason });
    w.end();
    return true;
  }

  // --- the downstream ------------------------------------------------------------------------

  onBody(chunk: Buffer): void {
    const sink = this.sink;
    if ((this.replayable && !this.committed) || sink === undefined) {
      if (this.buf === NO_CHUNKS) this.buf = [];
      this.buf.push(chunk);
      this.bufBytes += chunk.length;
      if (this.replayable && this.bufBytes > this.down.cm.retryBufferBytes) this.replayable = false;
    }
    if (sink === undefined) { this.down.body!.pause(); return; }
    if ((!this.replayable || this.committed) && this.buf.length > 0) this.buf = NO_CHUNKS;
    if (!sink.destroyed && !sink.writableEnded && !sink.write(chunk)) this.down.body!.pause();
  }

  onBodyEnd(): void {
    this.bodyEnded = true;
    const sink = this.sink;
    if (sink !== undefined && !sink.destroyed && !sink.writableEnded) sink.end();
  }

  /** The attempt's request stream drained: read more of the body. */
  onSinkDrain(): void {
    const src = this.down.body;
    if (src !== undefined && src.isPaused() && this.sink !== undefined && !this.bodyEnded) src.resume();
  }

  onDownstreamDrain(): void { this.upstream?.resume(); }

  /** The downstream closed: normal after the whole response, else the caller left. */
  onDownstreamClose(): void {
    if (this.done) return;
    // Closed after the whole response went out: the upstream stream's own 'close' finishes the
    // request. (Neither rstCode nor writableFinished tells: a destroyed session closes its
    // streams with NO_ERROR, and a closed stream reports its writable side finished.)
    if (this.committed && this.upstream !== undefined && this.upstream.responseEnded) return;
    this.down.clientGone(this.attempt === 0);
    this.abandonAttempt();
    this.endAttempt(0, 'none');
    this.finish(0);
  }

  /**
   * No activity either way for the listener's stream idle timeout (the connection manager's
   * sweep): a 408 (gRPC DEADLINE_EXCEEDED) before the response started, else a reset.
   */
  onIdleTimeout(detail: string): void {
    if (this.done) return;
    this.abandonAttempt();
    this.endAttempt(0, 'none');
    if (this.committed) { this.down.reset(NGHTTP2_CANCEL); this.finish(0); return; }
    this.down.idleReply(LOCAL_REPLIES.streamIdleTimeout, detail, this.attempt, this.bodyEnded);
    this.down.cm.countLocalReply(this.down.stats, LOCAL_REPLIES.streamIdleTimeout);
    this.finish(0);
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
    this.down.stats.route.rqTimeout.value++;
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
    this.down.reset(NGHTTP2_CANCEL);
    this.complete(0, 'timeout');
  }

  /** Stops the current attempt's upstream stream or exchange (its later events are ignored). */
  private abandonAttempt(): void {
    const up = this.upstream;
    this.upstream = undefined;
    up?.abandon();
  }

  /** Inbound: the app was not reached; tell the caller it may safely send the request elsewhere. */
  private refuseUnforwarded(detail: string): void {
    if (!this.down.refuseStream()) { this.fail(LOCAL_REPLIES.appUnavailable, `the local app is unreachable: ${detail}`); return; }
    this.down.cm.countLocalReply(this.down.stats, LOCAL_REPLIES.appUnavailable);
    this.finish(0);
  }

  /** The committed response finished (or broke): final bookkeeping. */
  private complete(statsStatus: number, report: 'response' | 'timeout' | 'reset'): void {
    this.endAttempt(statsStatus, report);
    this.finish(statsStatus);
  }

  /** A local reply, then the end. */
  private fail(reply: LocalReply, detail: string): void {
    if (this.done) return;
    this.down.localReply(reply, detail, this.attempt);
    this.down.cm.countLocalReply(this.down.stats, reply);
    this.finish(0);
  }

  private finish(status: number): void {
    if (this.done) return;
    this.done = true;
    this.routeTimer?.cancel();
    this.tryTimer?.cancel();
    this.waitTimer?.cancel();
    this.retry?.attemptDone();
    this.buf = NO_CHUNKS;
    this.upstream = undefined;
    this.down.finish(status, status === 0 ? -1 : this.grpcStatus, this.cluster);
  }
}

const CONNECT_FAILURE: AttemptOutcome = { kind: 'connect-failure' };
const REFUSED: AttemptOutcome = { kind: 'refused-stream' };
const RESET_SENT: AttemptOutcome = { kind: 'reset', sentBytes: true };
const RESET_UNSENT: AttemptOutcome = { kind: 'reset', sentBytes: false };
const PER_TRY_TIMEOUT: AttemptOutcome = { kind: 'per-try-timeout' };

/** The retry reason on a retry span event: the failure that caused it. */
function retryReason(o: AttemptOutcome): string {
  if (o.kind !== 'response') return o.kind;
  return o.grpcStatus !== undefined && o.grpcStatus !== 0 ? `grpc-status ${o.grpcStatus}` : `http ${o.status}`;
}

const ATTEMPT_STRINGS: readonly string[] = Array.from({ length: 16 }, (_, i) => String(i));
/** x-skein-attempt-count values, without a new string for the usual few attempts. */
function attemptString(n: number): string { return n < ATTEMPT_STRINGS.length ? ATTEMPT_STRINGS[n]! : String(n); }

/** Hop-by-hop headers are rare in a response: copy (without them) only when there is one. */
function hasHopByHop(h: HeaderBag): boolean {
  for (const k of HOP_BY_HOP) if (h[k] !== undefined) return true;
  return false;
}

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

/**
 * Active health checking for one cluster (Envoy's HealthCheckerImplBase, one session per host).
 *
 * Each host is checked right away, then `interval` after the previous check ended; a check
 * that has not finished after `timeout` (a clock timer) is aborted and is a failure.
 * `unhealthy_threshold` consecutive failures set `host.hcFailed`; while failed,
 * `healthy_threshold` consecutive successes clear it. Both transitions call `onChange` (the
 * owner publishes a new picker) and are logged. Nothing thrown or emitted by a peer escapes:
 * every error becomes a failed check.
 *
 * Initial state: a host this checker has not seen keeps the `hcFailed` it has. A new host
 * object starts not failed (false): the mesh registers only running instances, so traffic
 * need not wait for a first check. A host carried over from a previous checker of the same
 * cluster (a config update) keeps its verdict, so a dead host does not become routable while
 * the new checker re-learns it. `close()` leaves the flags alone: an owner that drops health
 * checking without a replacement clears `hcFailed` itself.
 *
 * Transports, one per host:
 *  - HTTP/1.1: node:http with a per-host keep-alive Agent (maxSockets 1), so the connection is
 *    reused between checks (Envoy's reuse_connection default). A request that fails with
 *    ECONNRESET on a reused idle socket (the server closed it as we sent) is retried once on a
 *    fresh connection, within the same timeout. A check we aborted ourselves (timeout, host
 *    removed) is never retried.
 *  - HTTP/2 (codec_client_type HTTP2): node:http2, h2c with prior knowledge, one session per
 *    host; a session that errored, closed or got GOAWAY is replaced at the next check.
 *  - TCP: a connection that is accepted passes and is closed at once (connect-only).
 *  - gRPC: grpc.health.v1.Health/Check with @grpc/grpc-js, one channel per host (own
 *    subchannel pool, so closing it closes its connection); success iff SERVING. The channel
 *    is re-created after UNAVAILABLE so the next check connects afresh instead of waiting out
 *    grpc-js's reconnect backoff.
 * A timeout closes the host's HTTP/1 socket or HTTP/2 session, as Envoy does: a peer that
 * stopped answering is not trusted with the next check. A gRPC timeout only cancels the call
 * and keeps the channel: grpc-js (1.14) does not abort a connection attempt in progress when
 * its channel closes, so a new channel per timeout would leave one more socket per check to a
 * peer that accepted TCP but never speaks HTTP/2.
 * A check is complete when the whole response has arrived (the body is read and discarded).
 *
 * Stats, under `cluster.<name>.health_check.` (Envoy's names): counters `attempt` (checks
 * started), `success`, `failure` (every failed check, including network failures and
 * timeouts), `network_failure` (connect errors, resets, UNAVAILABLE, timeouts), `timeout`;
 * gauge `healthy` (hosts this checker holds that are not hcFailed; each checker adds only its
 * own share, and removes it on close).
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import type { Clock, TimerHandle } from '../../../shared/src/clock';
import type { Logger } from '../../../shared/src/log';
import type { Counter, Gauge, Stats } from '../stats/stats';
import type { GrpcHealthCheckConfig, HealthCheckConfig, HttpHealthCheckConfig } from './health-check-config';
import type { MonitoredHost } from './monitored-host';

export const HEALTH_CHECK_USER_AGENT = 'skein-health-check';

export interface HealthCheckerOptions {
  cluster: string;
  config: HealthCheckConfig;
  clock: Clock;
  log: Logger;
  stats: Stats;
  /** Called after each hcFailed transition (never for the initial state). */
  onChange: () => void;
  /**
   * Called after each passing check of a host that is not (or no longer) failed: Envoy's
   * host-check-complete callback, which lets outlier detection return an ejected host. Only on
   * a real success (envoy#32442 unejected on failed checks too), and while a host is failed only
   * once `healthy_threshold` successes have cleared it.
   */
  onPassed?: (host: MonitoredHost) => void;
}

export interface HostHealthInfo {
  hcFailed: boolean;
  consecutiveFailures: number;
  consecutiveSuccesses: number;
  /** Why the last failed check failed. */
  lastFailure?: string;
}

/** Why a check failed; a check that succeeded reports undefined. */
interface Failure { why: string; network: boolean; timeout: boolean }
type Done = (failure: Failure | undefined) => void;

/** What a HostCheck needs from its checker. */
interface CheckLoop {
  readonly config: HealthCheckConfig;
  readonly clock: Clock;
  /** A check started. */
  started(): void;
  /** A check finished: count it, apply the thresholds. */
  record(c: HostCheck, f: Failure | undefined): void;
}

/** One host's transport. `start` calls `done` once per check unless `abort` came first. */
interface Prober {
  start(done: Done): void;
  /** Abandons the in-flight check (if any) and drops the connection. */
  abort(): void;
  close(): Promise<void>;
}

export class HealthChecker {
  private readonly checks = new Map<MonitoredHost, HostCheck>();
  private readonly cfg: HealthCheckConfig;
  private readonly cluster: string;
  private readonly authority: string;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly onChange: () => void;
  private readonly onPassed: ((host: MonitoredHost) => void) | undefined;
  private readonly attempt: Counter;
  private readonly success: Counter;
  private readonly failure: Counter;
  private readonly networkFailure: Counter;
  private readonly timeout: Counter;
  private readonly healthy: Gauge;
  private closed = false;
  private readonly loop: CheckLoop;

  constructor(opts: HealthCheckerOptions) {
    this.cfg = opts.config;
    this.cluster = opts.cluster;
    const check = opts.config.check;
    this.authority = (check.kind === 'http' ? check.host : check.kind === 'grpc' ? check.authority : undefined) ?? opts.cluster;
    this.clock = opts.clock;
    this.log = opts.log;
    this.onChange = opts.onChange;
    this.onPassed = opts.onPassed;
    const s = opts.stats.scope(`cluster.${opts.cluster}`);
    this.attempt = s.counter('health_check.attempt');
    this.success = s.counter('health_check.success');
    this.failure = s.counter('health_check.failure');
    this.networkFailure = s.counter('health_check.network_failure');
    this.timeout = s.counter('health_check.timeout');
    this.healthy = s.gauge('health_check.healthy');
    const attempt = this.attempt;
    this.loop = { config: this.cfg, clock: this.clock, started: () => attempt.inc(), record: (c, f) => this.record(c, f) };
  }

  /** The cluster's hosts (stable objects across EDS updates). Starts checking new hosts, stops removed ones. */
  setHosts(hosts: readonly MonitoredHost[]): void {
    if (this.closed) return;
    const keep = new Set(hosts);
    for (const [host, c] of this.checks) {
      if (keep.has(host)) continue;
      this.checks.delete(host);
      if (c.passing) this.healthy.add(-1);
      void c.stop();
    }
    for (const host of hosts) {
      if (this.checks.has(host)) continue;
      const c = new HostCheck(host, this.newProber(host), this.loop);
      this.checks.set(host, c);
      if (c.passing) this.healthy.add(1);
      c.run();
    }
  }

  /** Cancels timers, aborts in-flight checks, closes every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const all = [...this.checks.values()];
    this.checks.clear();
    for (const c of all) if (c.passing) this.healthy.add(-1);
    await Promise.all(all.map((c) => c.stop()));
  }

  hostInfo(host: MonitoredHost): HostHealthInfo | undefined {
    const c = this.checks.get(host);
    if (c === undefined) return undefined;
    const out: HostHealthInfo = { hcFailed: host.hcFailed, consecutiveFailures: c.failures, consecutiveSuccesses: c.successes };
    if (c.lastFailure !== undefined) out.lastFailure = c.lastFailure;
    return out;
  }

  /**
   * A failure seen outside the checks (a real request could not connect): fails the host at
   * once, as if unhealthy_threshold checks had failed. It comes back through healthy_threshold
   * passing checks, as always.
   */
  markFailed(host: MonitoredHost, why: string): void {
    const c = this.checks.get(host);
    if (c === undefined || host.hcFailed) return;
    c.failures = Math.max(c.failures, this.cfg.unhealthyThreshold);
    c.successes = 0;
    c.lastFailure = why;
    host.hcFailed = true;
    this.setPassing(c, false);
    this.log.warn({ cluster: this.cluster, host: host.key, why }, 'host marked unhealthy without waiting for a check');
    this.notify();
  }

  private record(c: HostCheck, f: Failure | undefined): void {
    const host = c.host;
    if (f === undefined) {
      this.success.inc();
      c.successes++;
      c.failures = 0;
      if (host.hcFailed && c.successes >= this.cfg.healthyThreshold) {
        host.hcFailed = false;
        this.setPassing(c, true);
        this.log.info({ cluster: this.cluster, host: host.key }, 'health check passed: host is healthy again');
        this.notify();
      }
      if (!host.hcFailed && this.onPassed !== undefined) this.guard(this.onPassed, host);
      return;
    }
    this.failure.inc();
    if (f.network) this.networkFailure.inc();
    if (f.timeout) this.timeout.inc();
    c.failures++;
    c.successes = 0;
    c.lastFailure = f.why;
    if (!host.hcFailed && c.failures >= this.cfg.unhealthyThreshold) {
      host.hcFailed = true;
      this.setPassing(c, false);
      this.log.warn({ cluster: this.cluster, host: host.key, why: f.why, consecutiveFailures: c.failures }, 'health check failed: host marked unhealthy');
      this.notify();
    }
  }

  private setPassing(c: HostCheck, passing: boolean): void {
    if (c.passing === passing) return;
    c.passing = passing;
    this.healthy.add(passing ? 1 : -1);
  }

  private notify(): void {
    this.guard(this.onChange, undefined);
  }

  /** Runs an owner callback; what it throws is logged, never thrown out of a check. */
  private guard<A>(fn: (a: A) => void, arg: A): void {
    try {
      fn(arg);
    } catch (e) {
      this.log.error({ cluster: this.cluster, err: e }, 'health check callback threw');
    }
  }

  private newProber(host: MonitoredHost): Prober {
    const check = this.cfg.check;
    if (check.kind === 'grpc') return new GrpcProber(host, check, this.authority);
    if (check.kind === 'tcp') return new TcpProber(host);
    return check.codec === 'http2' ? new Http2Prober(host, check, this.authority) : new Http1Prober(host, check, this.authority);
  }
}

/** One host's check loop: run -> (done | timeout) -> record -> wait interval -> run. */
class HostCheck {
  failures = 0;
  successes = 0;
  lastFailure: string | undefined;
  /** Counted in the `healthy` gauge by this checker. */
  passing: boolean;
  private timer: TimerHandle | undefined;
  /** Bumped per check: a late callback from an older check is ignored. */
  private gen = 0;
  private inflight = false;
  private stopped = false;

  constructor(readonly host: MonitoredHost, private readonly prober: Prober, private readonly owner: CheckLoop) {
    this.passing = !host.hcFailed;
  }

  readonly run = (): void => {
    if (this.stopped) return;
    const gen = ++this.gen;
    this.inflight = true;
    this.owner.started();
    this.timer = this.owner.clock.setTimer(this.owner.config.timeoutMs, () => this.onTimeout(gen));
    try {
      this.prober.start((f) => this.finish(gen, f));
    } catch (e) {
      // Deliver asynchronously: a check never completes inside setHosts.
      queueMicrotask(() => this.finish(gen, networkFailure(e)));
    }
  };

  stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    if (this.inflight) { this.inflight = false; this.prober.abort(); }
    return this.prober.close().catch(() => undefined);
  }

  private onTimeout(gen: number): void {
    if (gen !== this.gen || !this.inflight) return;
    this.timer = undefined;
    this.finish(gen, { why: `timed out after ${this.owner.config.timeoutMs}ms`, network: true, timeout: true });
    this.prober.abort();
  }

  private finish(gen: number, f: Failure | undefined): void {
    if (this.stopped || gen !== this.gen || !this.inflight) return;
    this.inflight = false;
    this.timer?.cancel();
    this.timer = this.owner.clock.setTimer(this.owner.config.intervalMs, this.run);
    this.owner.record(this, f);
  }
}

function networkFailure(e: unknown): Failure {
  const err = e as NodeJS.ErrnoException;
  const code = typeof err?.code === 'string' ? `${err.code}: ` : '';
  return { why: `${code}${err?.message ?? String(e)}`, network: true, timeout: false };
}

/** Runs a retry from an event handler: a synchronous throw becomes a failed check. */
function retry(send: () => void, done: Done): void {
  try {
    send();
  } catch (e) {
    done(networkFailure(e));
  }
}

function statusVerdict(status: number, ranges: HttpHealthCheckConfig['expectedStatuses']): Failure | undefined {
  for (const [start, end] of ranges) if (status >= start && status < end) return undefined;
  return { why: `unexpected status ${status}`, network: false, timeout: false };
}

/** HTTP/1.1 over a per-host keep-alive agent (one connection, reused between checks). */
class Http1Prober implements Prober {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly options: http.RequestOptions;
  private readonly ranges: HttpHealthCheckConfig['expectedStatuses'];
  private req: http.ClientRequest | undefined;

  constructor(host: MonitoredHost, cfg: HttpHealthCheckConfig, authority: string) {
    this.ranges = cfg.expectedStatuses;
    this.options = {
      host: host.address, port: host.port, method: 'GET', path: cfg.path, agent: this.agent,
      headers: { host: authority, 'user-agent': HEALTH_CHECK_USER_AGENT },
    };
  }

  start(done: Done): void { this.send(done, false); }

  private send(done: Done, isRetry: boolean): void {
    const req = http.request(this.options);
    this.req = req;
    let settled = false;
    let answered = false;
    const settle = (f: Failure | undefined): void => {
      if (settled) return;
      settled = true;
      if (this.req === req) this.req = undefined;
      done(f);
    };
    req.on('response', (res) => {
      answered = true;
      const status = res.statusCode ?? 0;
      res.on('end', () => settle(statusVerdict(status, this.ranges)));
      res.on('error', (e) => settle(networkFailure(e)));
      res.on('close', () => { if (!res.complete) settle({ why: 'connection closed before the response ended', network: true, timeout: false }); });
      res.resume();
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      // `this.req !== req`: abort() (a timeout, or the host removed) destroyed this request
      // itself; that reset is ours, not the server's, and must not be sent again (a stray
      // request that hangs would hold the agent's one socket and starve every later check).
      if (!isRetry && !answered && this.req === req && req.reusedSocket && e.code === 'ECONNRESET') {
        settled = true;
        retry(() => this.send(done, true), done);
        return;
      }
      settle(networkFailure(e));
    });
    req.end();
  }

  abort(): void {
    const req = this.req;
    this.req = undefined;
    req?.destroy();
  }

  close(): Promise<void> {
    this.abort();
    this.agent.destroy();
    return Promise.resolve();
  }
}

/** HTTP/2 (h2c, prior knowledge): one session per host, replaced after an error or GOAWAY. */
class Http2Prober implements Prober {
  private readonly origin: string;
  private readonly headers: http2.OutgoingHttpHeaders;
  private readonly ranges: HttpHealthCheckConfig['expectedStatuses'];
  private session: http2.ClientHttp2Session | undefined;
  private stream: http2.ClientHttp2Stream | undefined;
  /** Sessions not yet closed (close() waits for them). */
  private readonly open = new Set<http2.ClientHttp2Session>();

  constructor(host: MonitoredHost, cfg: HttpHealthCheckConfig, authority: string) {
    this.origin = `http://${host.address.includes(':') ? `[${host.address}]` : host.address}:${host.port}`;
    this.ranges = cfg.expectedStatuses;
    this.headers = { ':method': 'GET', ':scheme': 'http', ':path': cfg.path, ':authority': authority, 'user-agent': HEALTH_CHECK_USER_AGENT };
  }

  start(done: Done): void { this.send(done, false); }

  /**
   * One request. A stream that dies without a response on a session an earlier check opened
   * (the peer closed it as we sent) is retried once on a fresh session, within the same timeout.
   */
  private send(done: Done, isRetry: boolean): void {
    const reused = this.session !== undefined && !this.session.closed && !this.session.destroyed;
    const session = this.connect();
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(this.headers, { endStream: true });
    } catch (e) {
      this.dropSession(session);
      if (reused && !isRetry) { this.send(done, true); return; }
      throw e;
    }
    this.stream = stream;
    let status = 0;
    let error: Error | undefined;
    let settled = false;
    const settle = (f: Failure | undefined): void => {
      if (settled) return;
      settled = true;
      if (this.stream !== stream) return; // aborted
      this.stream = undefined;
      if (f !== undefined && status === 0 && reused && !isRetry) {
        this.dropSession(session);
        retry(() => this.send(done, true), done);
        return;
      }
      done(f);
    };
    stream.on('response', (h) => { status = Number(h[':status']); });
    stream.on('error', (e) => { error = e; });
    stream.on('end', () => settle(status === 0 ? { why: 'stream ended without a response', network: true, timeout: false } : statusVerdict(status, this.ranges)));
    stream.on('close', () => settle(error !== undefined ? networkFailure(error) : { why: `stream closed before the response ended (rst code ${stream.rstCode})`, network: true, timeout: false }));
    stream.resume();
  }

  private connect(): http2.ClientHttp2Session {
    const cur = this.session;
    if (cur !== undefined && !cur.closed && !cur.destroyed) return cur;
    const s = http2.connect(this.origin, { settings: { enablePush: false } });
    this.session = s;
    this.open.add(s);
    const forget = (): void => { if (this.session === s) this.session = undefined; };
    s.on('error', forget); // the in-flight stream fails too, and reports it
    s.on('goaway', forget); // node closes the session once its streams are done
    s.on('close', () => { forget(); this.open.delete(s); });
    return s;
  }

  private dropSession(s: http2.ClientHttp2Session): void {
    if (this.session === s) this.session = undefined;
    s.destroy();
  }

  abort(): void {
    const stream = this.stream;
    this.stream = undefined;
    if (stream !== undefined && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
    if (this.session !== undefined) this.dropSession(this.session);
  }

  async close(): Promise<void> {
    this.abort();
    const waits = [...this.open].map((s) => new Promise<void>((resolve) => {
      if (s.closed && s.destroyed) { resolve(); return; }
      s.once('close', () => resolve());
      s.destroy();
    }));
    await Promise.all(waits);
  }
}

/** Connect-only: an accepted connection passes and is closed at once. */
class TcpProber implements Prober {
  private socket: net.Socket | undefined;

  constructor(private readonly host: MonitoredHost) {}

  start(done: Done): void {
    const socket = net.connect({ host: this.host.address, port: this.host.port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.once('connect', () => { this.drop(socket); done(undefined); });
    socket.once('error', (e) => { this.drop(socket); done(networkFailure(e)); });
  }

  abort(): void { if (this.socket !== undefined) this.drop(this.socket); }

  close(): Promise<void> { this.abort(); return Promise.resolve(); }

  private drop(socket: net.Socket): void {
    if (this.socket === socket) this.socket = undefined;
    socket.removeAllListeners('connect');
    socket.on('error', () => undefined);
    socket.destroy();
  }
}

interface HealthCheckRequest { service: string }
interface HealthCheckResponse { status?: string }
const CHECK = healthService['Check'] as unknown as grpc.MethodDefinition<HealthCheckRequest, HealthCheckResponse>;

/** grpc.health.v1.Health/Check over one grpc-js channel per host. */
class GrpcProber implements Prober {
  private readonly target: string;
  private readonly options: grpc.ChannelOptions;
  private readonly request: HealthCheckRequest;
  private client: grpc.Client | undefined;
  private call: grpc.ClientUnaryCall | undefined;

  constructor(host: MonitoredHost, cfg: GrpcHealthCheckConfig, authority: string) {
    const kind = net.isIP(host.address);
    this.target = kind === 4 ? `ipv4:${host.address}:${host.port}` : kind === 6 ? `ipv6:[${host.address}]:${host.port}` : `dns:${host.address}:${host.port}`;
    this.options = {
      'grpc.default_authority': authority,
      'grpc.primary_user_agent': HEALTH_CHECK_USER_AGENT,
      'grpc.use_local_subchannel_pool': 1,
      'grpc.enable_channelz': 0,
      'grpc.enable_retries': 0,
    };
    this.request = { service: cfg.serviceName };
  }

  start(done: Done): void {
    const client = this.client ??= new grpc.Client(this.target, grpc.credentials.createInsecure(), this.options);
    const call = client.makeUnaryRequest(CHECK.path, CHECK.requestSerialize, CHECK.responseDeserialize, this.request, new grpc.Metadata(), {},
      (err, res) => {
        if (this.call === call) this.call = undefined;
        if (err) {
          const network = err.code === grpc.status.UNAVAILABLE;
          if (network && this.client === client) this.dropChannel();
          done({ why: `grpc status ${grpc.status[err.code] ?? err.code}: ${err.details}`, network, timeout: false });
          return;
        }
        const status = res?.status ?? 'UNKNOWN';
        done(status === 'SERVING' ? undefined : { why: `serving status ${status}`, network: false, timeout: false });
      });
    this.call = call;
  }

  private dropChannel(): void {
    const client = this.client;
    this.client = undefined;
    client?.close();
  }

  /** Cancels the call only; see the file comment for why the channel is kept. */
  abort(): void {
    const call = this.call;
    this.call = undefined;
    call?.cancel();
  }

  close(): Promise<void> {
    this.abort();
    this.dropChannel();
    return Promise.resolve();
  }
}

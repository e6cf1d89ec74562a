/**
 * The sidecar watches its own app (the local instance behind the inbound listener).
 *
 * - Active: a health check of the app, run by the same HealthChecker as cluster health checks
 *   (stats under `cluster.skein.inbound.health_check.*`): a TCP connect by default, gRPC health
 *   (grpc.health.v1) or an HTTP path when asked (`--app-health`).
 * - Passive: a real inbound request whose connection to the app is refused or times out marks
 *   the app down at once, without waiting for the next probe.
 *
 * When the app goes down the owner is told at once (it re-registers the endpoint UNHEALTHY, so
 * clients drop it from rotation with the next EDS push, and /ready answers 503 with the reason).
 * It comes back after `healthyThreshold` passing probes in a row.
 *
 * Defaults: interval 1s, timeout 1s, unhealthy after 2 failed probes, healthy after 2 passing
 * ones. A refused connection (the usual crash) is seen within one interval by the probe, or at
 * the first request that tries.
 */
import type { Clock } from '../../shared/src/clock';
import type { Logger } from '../../shared/src/log';
import { HealthChecker } from './resilience/health-checker';
import type { AppHealthSettings } from './app-health-settings';
import type { Stats } from './stats/stats';
import type { Host } from './upstream/host';
import type { OutlierSink } from './upstream/cluster';

export type { AppHealthSettings } from './app-health-settings';

export class AppHealth implements OutlierSink {
  private readonly checker: HealthChecker | undefined;
  private down: string | undefined;

  constructor(
    private readonly app: Host,
    settings: AppHealthSettings,
    env: { clock: Clock; log: Logger; stats: Stats; cluster: string },
    private readonly onChange: (healthy: boolean, reason: string | undefined) => void,
  ) {
    const { check } = settings;
    if (check.kind === 'none') return;
    this.checker = new HealthChecker({
      cluster: env.cluster, clock: env.clock, log: env.log, stats: env.stats, onChange: () => this.sync(),
      config: { check, intervalMs: settings.intervalMs, timeoutMs: settings.timeoutMs, unhealthyThreshold: settings.unhealthyThreshold, healthyThreshold: settings.healthyThreshold },
    });
    this.checker.setHosts([app]);
  }

  /** Undefined while the app is healthy; else why it is not. */
  get unhealthyReason(): string | undefined { return this.down; }

  /** OutlierSink for the inbound cluster: a refused or timed-out connect to the app is an immediate signal. */
  onLocalOrigin(_host: Host, kind: 'connect-failure' | 'timeout' | 'reset' | 'success'): void {
    if (kind !== 'connect-failure' && kind !== 'timeout') return;
    if (this.checker === undefined || this.app.hcFailed) return;
    this.checker.markFailed(this.app, kind === 'timeout' ? 'a request could not connect to the app in time' : 'a request found the app refusing connections');
  }

  onResponse(): void { /* the app answered: its status is the app's business, not its liveness */ }

  close(): Promise<void> { return this.checker?.close() ?? Promise.resolve(); }

  private sync(): void {
    const reason = this.app.hcFailed ? `the app failed its health check: ${this.checker?.hostInfo(this.app)?.lastFailure ?? 'unknown'}` : undefined;
    if (reason === this.down) return;
    this.down = reason;
    this.onChange(reason === undefined, reason);
  }
}

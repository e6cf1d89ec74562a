/**
 * peak_ewma: Linkerd's balancer (tower::load::PeakEwma + p2c), "Peak EWMA" from Finagle.
 * A host's latency estimate rises at once to any sample above it (peak sensitivity), blends
 * toward lower samples, and decays toward 0 while no samples arrive (time constant decayMs,
 * default 10 s), so a host that was slow once is retried later. Cost = estimate *
 * (activeRequests + 1) / weight (weight is 1 in Linkerd; here it scales like least_request).
 * Hosts with no sample yet cost DEFAULT_RTT_MS (Linkerd's default_rtt): cheap enough to be
 * tried, not so cheap that every new host takes all the traffic. Pick = P2C on cost.
 *
 * State lives on Host (ewmaMs, ewmaAt), written only by observeLatency (via onCallEnded, when the cluster ends an attempt); pick only reads it.
 */
import type { Host, LoadBalancer, PickContext, Picker } from '../host';
import { EMPTY_PICKER } from './empty-picker';
import type { LbConfig } from './lb-config';
import { LB_DEFAULTS, numberOption, weightsOf } from './lb-config';
import type { CostModel } from './p2c';
import { identityPermutation, p2cPick } from './p2c';

/** Estimate (ms) for a host with no latency sample yet. */
export const DEFAULT_RTT_MS = 30;

/** A host with no sample has ewmaMs = ewmaAt = 0 (Host's initial values). */
function hasSample(host: Host): boolean {
  return host.ewmaAt !== 0 || host.ewmaMs !== 0;
}

/** The host's estimate at `now`, decayed toward 0 since its last sample; DEFAULT_RTT_MS if none. */
export function currentEwmaMs(host: Host, now: number, decayMs: number = LB_DEFAULTS.decayMs): number {
  if (!hasSample(host)) return DEFAULT_RTT_MS;
  const elapsed = now - host.ewmaAt;
  return elapsed > 0 ? host.ewmaMs * Math.exp(-elapsed / decayMs) : host.ewmaMs;
}

/**
 * Records one response latency (PeakEwmaLoadBalancer.onCallEnded, after each attempt). A sample above the
 * decayed estimate replaces it; a lower one is blended in with weight 1 - exp(-dt / decayMs),
 * dt being the time since the previous sample (as tower's PeakEwma does).
 */
export function observeLatency(host: Host, ms: number, now: number, decayMs: number = LB_DEFAULTS.decayMs): void {
  if (!(ms >= 0)) return; // NaN or negative: ignore
  if (!hasSample(host)) {
    host.ewmaMs = ms;
  } else {
    const elapsed = now - host.ewmaAt;
    const decay = elapsed > 0 ? Math.exp(-elapsed / decayMs) : 1;
    const current = host.ewmaMs * decay;
    host.ewmaMs = ms > current ? ms : current * decay + ms * (1 - decay);
  }
  host.ewmaAt = now;
}

export class PeakEwmaPicker implements Picker, CostModel {
  private readonly hosts: readonly Host[];
  private readonly weights: Float64Array | undefined;
  private readonly perm: Int32Array;

  constructor(hosts: readonly Host[], private readonly choiceCount: number, private readonly decayMs: number, private readonly random: () => number) {
    this.hosts = hosts.slice();
    this.weights = weightsOf(this.hosts);
    this.perm = identityPermutation(this.hosts.length);
  }

  pick(ctx: PickContext): Host | undefined {
    return p2cPick(this.hosts, this.perm, this.choiceCount, this.random, ctx, this);
  }

  cost(index: number, now: number): number {
    const h = this.hosts[index];
    const c = currentEwmaMs(h, now, this.decayMs) * (h.activeRequests + 1);
    return this.weights === undefined ? c : c / this.weights[index];
  }
}

export class PeakEwmaLoadBalancer implements LoadBalancer {
  private readonly choiceCount: number;
  private readonly decayMs: number;
  private readonly random: () => number;
  private current: Picker = EMPTY_PICKER;

  constructor(config: LbConfig = { policy: 'peak_ewma' }) {
    this.choiceCount = numberOption('choiceCount', config.choiceCount, LB_DEFAULTS.choiceCount, 1, 2 ** 31 - 1, true);
    this.decayMs = numberOption('decayMs', config.decayMs, LB_DEFAULTS.decayMs, Number.MIN_VALUE, Number.MAX_VALUE, false);
    this.random = config.random ?? Math.random;
  }

  get picker(): Picker {
    return this.current;
  }

  update(hosts: readonly Host[]): void {
    this.current = hosts.length === 0 ? EMPTY_PICKER : new PeakEwmaPicker(hosts, this.choiceCount, this.decayMs, this.random);
  }

  /** Every attempt's latency feeds the host's estimate, with this balancer's decay. */
  onCallEnded(host: Host, latencyMs: number, now: number): void {
    observeLatency(host, latencyMs, now, this.decayMs);
  }
}

/**
 * Which hosts the load balancer gets: health from every source combined, and Envoy's panic
 * threshold. Pure functions; called when hosts or their health change, never per request.
 *
 * A host is healthy when EDS says HEALTHY, UNKNOWN or DEGRADED, outlier detection has not ejected
 * it and it has not failed active health checks.
 *
 * Panic: when fewer than `panicThresholdPercent` % of the non-draining hosts are healthy, the
 * balancer gets every non-draining host, ignoring health (Envoy's panic mode). A burst of
 * failures (or an over-eager health check) then degrades into load spread over possibly-bad hosts
 * instead of a cluster that fails every request (the istio#20135 lesson). DRAINING hosts are
 * never returned, panic or not. A threshold of 0 disables panic mode.
 */
import type { Host, HostHealth } from './host';

/** Envoy's default `common_lb_config.healthy_panic_threshold`: 50%. */
export const DEFAULT_PANIC_THRESHOLD = 50;

const ROUTABLE: ReadonlySet<HostHealth> = new Set<HostHealth>(['HEALTHY', 'UNKNOWN', 'DEGRADED']);

/** EDS health routable, not ejected, not failing active health checks. */
export function isHealthy(h: Host): boolean {
  return ROUTABLE.has(h.health) && !h.ejected && !h.hcFailed;
}

/**
 * The hosts to balance over, and whether the set is in panic.
 * @param panicThresholdPercent 0..100; 0 disables panic. Default (Envoy's) DEFAULT_PANIC_THRESHOLD.
 */
export function routableHosts(all: readonly Host[], panicThresholdPercent: number = DEFAULT_PANIC_THRESHOLD): { hosts: Host[]; panic: boolean } {
  const healthy: Host[] = [];
  let notDraining = 0;
  for (const h of all) {
    if (h.health !== 'DRAINING') notDraining++;
    if (isHealthy(h)) healthy.push(h);
  }
  if (all.length > 0 && panicThresholdPercent > 0 && healthy.length * 100 < panicThresholdPercent * notDraining) {
    return { hosts: all.filter((h) => h.health !== 'DRAINING'), panic: true };
  }
  return { hosts: healthy, panic: false };
}

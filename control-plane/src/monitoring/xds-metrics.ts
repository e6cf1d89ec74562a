/**
 * The control plane's xDS metrics, read at scrape time from what the discovery server already
 * knows: connected proxies by sync state, responses pushed and NACKs received per type URL, the
 * version served per type URL, the config revision, push and convergence times per type (histograms),
 * and the proxies furthest behind (at most LAG_TOP of them: bounded cardinality). Every name is in the README
 * ("Seeing the mesh" > Metrics).
 */
import type { MetricsExposition } from '../../../shared/src/metrics/exposition';
import type { DiscoveryServer } from '../discovery/discovery-server';
import type { SnapshotCache } from '../discovery/snapshot-cache';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { shortType } from '../discovery/rollout';

const STATES = ['SYNCED', 'STALE', 'NACKED'] as const;

/** How many of the proxies furthest behind skein_xds_proxy_lag_seconds shows. */
export const LAG_TOP = 10;

export function addXdsMetrics(m: MetricsExposition, discovery: DiscoveryServer, cache: SnapshotCache): void {
  m.add({
    name: 'skein_xds_connected_proxies', help: 'xDS clients connected now, by sync state (SYNCED, STALE, NACKED).', type: 'gauge',
    *collect() {
      const n = new Map<string, number>(STATES.map((s) => [s, 0]));
      for (const p of discovery.proxies()) n.set(p.state, (n.get(p.state) ?? 0) + 1);
      for (const [state, value] of n) yield { labels: { state }, value };
    },
  });
  m.add({ name: 'skein_xds_pushes_total', help: 'xDS responses sent, per type URL.', type: 'counter', *collect() { for (const [typeUrl, value] of discovery.counters.pushes) yield { labels: { type_url: typeUrl }, value }; } });
  m.add({ name: 'skein_xds_nacks_total', help: 'xDS responses clients rejected (NACK), per type URL.', type: 'counter', *collect() { for (const [typeUrl, value] of discovery.counters.nacks) yield { labels: { type_url: typeUrl }, value }; } });
  m.add({
    name: 'skein_xds_config_version_info', help: 'The version of the full set of resources served per type URL (value 1).', type: 'gauge',
    *collect() { for (const typeUrl of [TYPE_URLS.LISTENER, TYPE_URLS.ROUTE, TYPE_URLS.CLUSTER, TYPE_URLS.ENDPOINT, TYPE_URLS.SECRET]) yield { labels: { type_url: typeUrl, version: cache.allVersion(typeUrl) }, value: 1 }; },
  });
  m.add({ name: 'skein_xds_push_seconds', help: 'Time to build and write one xDS response, per type (LDS, RDS, CDS, EDS, SDS).', type: 'histogram', collect: () => discovery.timings.push.samples() });
  m.add({
    name: 'skein_xds_convergence_seconds', type: 'histogram', collect: () => discovery.timings.convergence.samples(),
    help: 'Time from a config or endpoint change to a proxy\'s ACK of everything it changed for it, per type (LDS, RDS, CDS, EDS, SDS); one observation per proxy and type.',
  });
  m.add({
    name: 'skein_xds_proxy_lag_seconds', type: 'gauge',
    help: `How long the proxies furthest behind (at most ${LAG_TOP}, by node id) have lacked a change or answer they are due, with the type furthest behind.`,
    *collect() {
      const seen = new Set<string>();
      for (const l of discovery.slowest(LAG_TOP)) {
        if (seen.has(l.stream.nodeId)) continue;
        seen.add(l.stream.nodeId);
        yield { labels: { proxy: l.stream.nodeId, type: shortType(l.type) }, value: l.lagSeconds };
      }
    },
  });
  m.add({ name: 'skein_config_revision', help: 'The config revision of the snapshot served now.', type: 'gauge', *collect() { yield { labels: {}, value: cache.revision }; } });
}

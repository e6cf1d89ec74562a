/**
 * The control plane's xDS metrics, read at scrape time from what the discovery server already
 * knows: connected proxies by sync state, responses pushed and NACKs received per type URL, the
 * version served per type URL, and the config revision. Every name is in the README
 * ("Seeing the mesh" > Metrics).
 */
import type { MetricsExposition } from '../../../shared/src/metrics/exposition';
import type { DiscoveryServer } from '../discovery/discovery-server';
import type { SnapshotCache } from '../discovery/snapshot-cache';
import { TYPE_URLS } from '../../../shared/src/xds/protos';

const STATES = ['SYNCED', 'STALE', 'NACKED'] as const;

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
  m.add({ name: 'skein_config_revision', help: 'The config revision of the snapshot served now.', type: 'gauge', *collect() { yield { labels: {}, value: cache.revision }; } });
}

import type { MeshConfig } from '../../../shared/src/config/mesh';
import type { Logger } from '../../../shared/src/log';
import type { DiscoveryServer } from '../discovery/discovery-server';
import type { NackWarning } from '../discovery/nack-forecast';
import type { SnapshotCache } from '../discovery/snapshot-cache';
import type { EndpointRegistry } from '../registry/endpoint-registry';
import type { ConfigStore } from '../store/config-store';
import type { MeshIdentity } from '../identity/mesh-identity';
import type { CheckContext } from '../check/finding';
import type { RootRotation } from '../identity/root-rotation';
import type { RouteStatsView } from '../telemetry/route-stats-store';

/** What the SRE API drives: the control plane as the API sees it (control-plane.ts assembles it). */
export interface ApiBackend {
  readonly store: ConfigStore;
  readonly discovery: DiscoveryServer;
  readonly registry: EndpointRegistry;
  readonly cache: SnapshotCache;
  readonly log: Logger;
  /** The CA, join tokens and admin token. */
  readonly identity: MeshIdentity;
  /** Brings the snapshot up to the stored revision now, so a change's rollout can be followed at once. */
  syncSnapshot(): Promise<void>;
  /** The NACKs a candidate config is certain to get from the proxies connected now. */
  forecastNacks(candidate: MeshConfig): NackWarning[];
  /** What GET /v1/check's checks read. */
  checkContext(): CheckContext;
  /** Root rotation (skein ca rotate). */
  readonly rotation: RootRotation;
  /** GET /v1/stats/routes: the sidecars' reports merged over the last `windowMs`. */
  routeStatsView(windowMs: number): RouteStatsView;
}

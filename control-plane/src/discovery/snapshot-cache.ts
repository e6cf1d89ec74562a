import { createHash } from 'node:crypto';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import type { PackedAny } from '../../../shared/src/xds/protos';
import { encodeResource } from '../../../shared/src/xds/pack';
import type { XdsResourceSet } from '../translate/translate';
import type { XdsObject } from '../translate/xds-json';

/** The four types the control plane serves today, in the order pushes go out (make before break). */
export const PUSH_ORDER = [TYPE_URLS.CLUSTER, TYPE_URLS.ENDPOINT, TYPE_URLS.LISTENER, TYPE_URLS.ROUTE] as const;
export type ServedType = (typeof PUSH_ORDER)[number];

/** LDS and CDS are full state (a missing resource is deleted); RDS and EDS are per name. */
export function isFullStateType(typeUrl: string): boolean {
  return typeUrl === TYPE_URLS.LISTENER || typeUrl === TYPE_URLS.CLUSTER;
}

export interface CachedResource {
  name: string;
  /** Content hash of the encoded resource: stable across restarts, usable as a delta-xDS version. */
  version: string;
  any: PackedAny;
  json: XdsObject;
}

export interface SnapshotChange {
  /** Config revision that produced the new snapshot. */
  revision: number;
  /** Per type, the names added, changed or removed. Types with no change are absent (it may be empty for a new revision). */
  changed: Map<string, Set<string>>;
}

/**
 * Encoded xDS resources per type, with a content-hash version per resource. Designed for both
 * state-of-the-world (versions of whole responses are derived from per-resource versions) and
 * delta xDS (which needs exactly the per-resource versions and the changed-name sets kept here).
 */
export class SnapshotCache {
  private readonly types = new Map<string, Map<string, CachedResource>>();
  private revisionValue = 0;
  private readonly listeners: ((c: SnapshotChange) => void)[] = [];

  constructor() { for (const t of PUSH_ORDER) this.types.set(t, new Map()); }

  get revision(): number { return this.revisionValue; }

  /** Replaces the snapshot. Throws (changing nothing) if any resource fails to encode. */
  set(resources: XdsResourceSet, revision: number): SnapshotChange {
    const next = new Map<string, Map<string, CachedResource>>([
      [TYPE_URLS.LISTENER, encodeAll(TYPE_URLS.LISTENER, resources.listeners, 'name')],
      [TYPE_URLS.ROUTE, encodeAll(TYPE_URLS.ROUTE, resources.routes, 'name')],
      [TYPE_URLS.CLUSTER, encodeAll(TYPE_URLS.CLUSTER, resources.clusters, 'name')],
      [TYPE_URLS.ENDPOINT, encodeAll(TYPE_URLS.ENDPOINT, resources.endpoints, 'cluster_name')],
    ]);
    const changed = new Map<string, Set<string>>();
    for (const [type, now] of next) {
      const before = this.types.get(type)!;
      const names = new Set<string>();
      for (const [name, r] of now) if (before.get(name)?.version !== r.version) names.add(name);
      for (const name of before.keys()) if (!now.has(name)) names.add(name);
      if (names.size > 0) changed.set(type, names);
      this.types.set(type, now);
    }
    const newRevision = revision !== this.revisionValue;
    this.revisionValue = revision;
    const change = { revision, changed };
    // A new revision is announced even when it changes no resource, so its rollout exists.
    if (changed.size > 0 || newRevision) for (const l of this.listeners) l(change);
    return change;
  }

  get(type: string, name: string): CachedResource | undefined { return this.types.get(type)?.get(name); }

  all(type: string): ReadonlyMap<string, CachedResource> { return this.types.get(type) ?? new Map(); }

  has(type: string): boolean { return this.types.has(type); }

  onChange(fn: (c: SnapshotChange) => void): void { this.listeners.push(fn); }
}

function encodeAll(type: string, objs: readonly XdsObject[], key: 'name' | 'cluster_name'): Map<string, CachedResource> {
  const out = new Map<string, CachedResource>();
  for (const json of objs) {
    const name = json[key] as string;
    const any = encodeResource(type, json);
    out.set(name, { name, version: createHash('sha256').update(any.value).digest('hex').slice(0, 16), any, json });
  }
  return out;
}

/** The version_info of a response: a hash of the (name, version) pairs it carries. */
export function responseVersion(resources: readonly CachedResource[]): string {
  const h = createHash('sha256');
  for (const r of [...resources].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) h.update(`${r.name}\0${r.version}\n`);
  return h.digest('hex').slice(0, 16);
}

import { createHash } from 'node:crypto';
import type { PackedAny } from '../../../shared/src/xds/protos';
import { encodeResource } from '../../../shared/src/xds/pack';
import { contentVersion, XDS_KINDS } from '../../../shared/src/xds/resource-kind';
import type { XdsResourceKind } from '../../../shared/src/xds/resource-kind';
import { resourcesOfKind } from '../translate/translate';
import type { XdsResource, XdsResourceSet } from '../translate/translate';

export interface CachedResource {
  name: string;
  /** Content hash of the encoded resource: stable across restarts, usable as a delta-xDS version. */
  version: string;
  any: PackedAny;
  /** The resource as the translator wrote it (JSON form). */
  json: XdsResource;
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

  constructor() { for (const k of XDS_KINDS) this.types.set(k.typeUrl, new Map()); }

  get revision(): number { return this.revisionValue; }

  /** Replaces the snapshot. Throws (changing nothing) if any resource fails to encode. */
  set(resources: XdsResourceSet, revision: number): SnapshotChange {
    const next = new Map<string, Map<string, CachedResource>>(XDS_KINDS.map((k) => [k.typeUrl, encodeAll(k, resourcesOfKind(resources, k))]));
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

function encodeAll(kind: XdsResourceKind, objs: readonly XdsResource[]): Map<string, CachedResource> {
  const out = new Map<string, CachedResource>();
  for (const json of objs) {
    const name = kind.nameOf(json);
    const any = encodeResource(kind.typeUrl, json);
    out.set(name, { name, version: contentVersion(any.value), any, json });
  }
  return out;
}

/** The version_info of a response: a hash of the (name, version) pairs it carries. */
export function responseVersion(resources: readonly CachedResource[]): string {
  const h = createHash('sha256');
  for (const r of [...resources].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) h.update(`${r.name}\0${r.version}\n`);
  return h.digest('hex').slice(0, 16);
}

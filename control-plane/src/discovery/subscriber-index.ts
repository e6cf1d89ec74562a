import { isFullStateType } from '../../../shared/src/xds/resource-kind';

/**
 * Which streams subscribe to which resource names, per type: what a snapshot change is offered
 * to. Under endpoint churn a change touches a few ClusterLoadAssignments, subscribed to by name
 * by the proxies that call those services; finding them here costs the names changed, where
 * offering the change to every stream costs every stream, at every change.
 *
 * Only explicit subscriptions are indexed. A wildcard (LDS and CDS only) is not, so a change of
 * those types, or of any proxy's scope, is still offered to every stream (DiscoveryServer).
 */
export class SubscriberIndex<S> {
  private readonly byType = new Map<string, Map<string, Set<S>>>();

  /** A set of names `stream` subscribes to of `type`, that keeps this index up to date. */
  namesFor(type: string, stream: S): Set<string> { return new IndexedNames(this, type, stream); }

  add(type: string, name: string, stream: S): void {
    let byName = this.byType.get(type);
    if (byName === undefined) this.byType.set(type, byName = new Map());
    let streams = byName.get(name);
    if (streams === undefined) byName.set(name, streams = new Set());
    streams.add(stream);
  }

  delete(type: string, name: string, stream: S): void {
    const byName = this.byType.get(type);
    const streams = byName?.get(name);
    if (streams === undefined || !streams.delete(stream)) return;
    if (streams.size === 0) byName!.delete(name);
  }

  /** Adds to `into` the streams that subscribe by name to any of `names` of `type`. */
  collect(type: string, names: Iterable<string>, into: Set<S>): void {
    const byName = this.byType.get(type);
    if (byName === undefined) return;
    for (const n of names) {
      const streams = byName.get(n);
      if (streams !== undefined) for (const s of streams) into.add(s);
    }
  }

  /** Whether a change of `type` reaches only the streams that name what changed: no wildcard can cover it. */
  static indexable(type: string): boolean { return !isFullStateType(type); }
}

/** A Set of subscribed names whose changes are reflected in a SubscriberIndex. */
class IndexedNames<S> extends Set<string> {
  constructor(private readonly index: SubscriberIndex<S>, private readonly type: string, private readonly stream: S) { super(); }

  override add(name: string): this {
    if (!this.has(name)) { super.add(name); this.index.add(this.type, name, this.stream); }
    return this;
  }

  override delete(name: string): boolean {
    if (!super.delete(name)) return false;
    this.index.delete(this.type, name, this.stream);
    return true;
  }

  override clear(): void {
    for (const n of this) this.index.delete(this.type, n, this.stream);
    super.clear();
  }
}

/** Makes `set` hold exactly `names`, changing only what differs (an indexed set updates its index per name). */
export function replaceNames(set: Set<string>, names: ReadonlySet<string>): void {
  for (const n of set) if (!names.has(n)) set.delete(n);
  for (const n of names) set.add(n);
}

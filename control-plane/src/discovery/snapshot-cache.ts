import { createHash } from 'node:crypto';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import type { PackedAny } from '../../../shared/src/xds/protos';
import { encodeResource } from '../../../shared/src/xds/pack';
import { resourcesOfKind } from '../translate/translate';
import type { XdsResourceSet } from '../translate/translate';
import { contentVersion, PUSH_ORDER, XDS_KINDS } from '../../../shared/src/xds/resource-kind';
import type { XdsObject } from '../translate/xds-json';
import { OUTBOUND } from '../translate/names';
import { inScope } from '../translate/scope';
import type { Scope } from '../translate/scope';
import type { Slicer } from '../../../shared/src/slicer';
import { resourcesVersion } from './version-set';


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
  /**
   * When (clock ms) the change began: the first config or endpoint change this snapshot takes
   * in. Proxies' convergence is measured from it. Absent: when it was installed.
   */
  at?: number;
  /** Per type, the names added, changed or removed. Types with no change are absent (it may be empty for a new revision). */
  changed: Map<string, Set<string>>;
  /** Services whose declared dependencies (scope) changed: their proxies are sent a different set. */
  rescoped?: Set<string>;
}

/** A snapshot encoded and ready to install (see SnapshotCache.prepare). */
export interface PreparedSnapshot {
  readonly types: Map<string, Map<string, CachedResource>>;
  /** The encoded VirtualHosts it used, by the hash of their JSON. */
  readonly vhosts: Map<string, Buffer>;
  /** Each service's declared dependencies (XdsResourceSet.scopes). */
  readonly scopes: Map<string, Scope>;
}

/** The RouteConfiguration field number of virtual_hosts (route.proto). */
const VIRTUAL_HOSTS_FIELD = 2;
const VIRTUAL_HOST_TYPE = 'type.googleapis.com/envoy.config.route.v3.VirtualHost';

/**
 * Encoded xDS resources per type, with a content-hash version per resource. Designed for both
 * state-of-the-world (versions of whole responses are derived from per-resource versions) and
 * delta xDS (which needs exactly the per-resource versions and the changed-name sets kept here).
 *
 * Encoding is the costly part of a change, so it is incremental: a resource whose JSON is the
 * same as in the installed (or last prepared) snapshot keeps its encoding, and a
 * RouteConfiguration is assembled from its separately encoded VirtualHosts, so the outbound
 * table (every service's virtual host) costs only the virtual hosts that changed.
 */
export class SnapshotCache {
  private types = new Map<string, Map<string, CachedResource>>();
  private revisionValue = 0;
  private readonly listeners: ((c: SnapshotChange) => void)[] = [];
  /** The last prepared snapshot, not yet installed: its encodings are reused too. */
  private lastPrepared: PreparedSnapshot | undefined;
  private vhosts = new Map<string, Buffer>();
  /** Per type, the version of a response carrying every resource (a wildcard subscription's), computed once per snapshot. */
  private readonly allVersions = new Map<string, string>();
  private scopes = new Map<string, Scope>();
  /** The outbound route table cut to a scope, by Scope.key, built once per snapshot. */
  private readonly scopedOutbound = new Map<string, CachedResource | null>();
  /** What a wildcard covers within a scope, by type and Scope.key, built once per snapshot. */
  private readonly scopedAll = new Map<string, { resources: CachedResource[]; version: string }>();

  constructor() { for (const t of PUSH_ORDER) this.types.set(t, new Map()); }

  get revision(): number { return this.revisionValue; }

  /** Replaces the snapshot at once. Throws (changing nothing) if any resource fails to encode. */
  set(resources: XdsResourceSet, revision: number): SnapshotChange {
    const p = new Preparation(this.types, this.vhosts, this.lastPrepared);
    for (const [type, objs, key] of inputs(resources)) for (const json of objs) p.add(type, json, key);
    return this.install(p.finish(resources.scopes), revision);
  }

  /**
   * Encodes a snapshot without installing it, yielding between resources (`slicer`). Throws if
   * any resource fails to encode (that config cannot be served). `install` makes it current.
   */
  async prepare(resources: XdsResourceSet, slicer: Slicer): Promise<PreparedSnapshot> {
    const p = new Preparation(this.types, this.vhosts, this.lastPrepared);
    for (const [type, objs, key] of inputs(resources)) {
      for (const json of objs) {
        p.add(type, json, key);
        await slicer.point();
      }
    }
    this.lastPrepared = p.finish(resources.scopes);
    return this.lastPrepared;
  }

  /**
   * Encodes the installed snapshot with some resources of one type replaced (`objs`, each
   * replacing the one of its name, or added), the others shared as they are: what an endpoint
   * change costs (the ClusterLoadAssignments of the services it touched), instead of encoding
   * the whole mesh. Throws if a resource fails to encode. `install` makes it current.
   */
  async prepareUpdate(type: string, objs: readonly XdsObject[], slicer: Slicer): Promise<PreparedSnapshot> {
    const kind = XDS_KINDS.find((k) => k.typeUrl === type);
    if (kind === undefined) throw new Error(`unknown xDS type ${type}`);
    const p = new Preparation(this.types, this.vhosts, this.lastPrepared);
    for (const json of objs) {
      p.add(type, json, kind.nameField);
      await slicer.point();
    }
    const types = new Map(this.types);
    const of = new Map(this.types.get(type));
    for (const [name, r] of p.finish(this.scopes).types.get(type)!) of.set(name, r);
    types.set(type, of);
    return { types, vhosts: this.vhosts, scopes: this.scopes };
  }

  /** Makes a prepared snapshot current, for `revision`, and tells the listeners what changed (`at`: SnapshotChange.at). */
  install(prepared: PreparedSnapshot, revision: number, at?: number): SnapshotChange {
    const changed = new Map<string, Set<string>>();
    for (const [type, now] of prepared.types) {
      const before = this.types.get(type)!;
      if (before === now) continue; // shared unchanged (prepareUpdate)
      const names = new Set<string>();
      for (const [name, r] of now) if (before.get(name)?.version !== r.version) names.add(name);
      for (const name of before.keys()) if (!now.has(name)) names.add(name);
      if (names.size > 0) changed.set(type, names);
    }
    const rescoped = new Set<string>();
    for (const [name, s] of prepared.scopes) if (this.scopes.get(name)?.key !== s.key) rescoped.add(name);
    for (const name of this.scopes.keys()) if (!prepared.scopes.has(name)) rescoped.add(name);
    this.types = new Map(prepared.types);
    this.vhosts = prepared.vhosts;
    this.scopes = prepared.scopes;
    if (this.lastPrepared === prepared) this.lastPrepared = undefined;
    // What was derived from a type that changed, or from scopes, is derived again when next asked.
    if (rescoped.size > 0) { this.allVersions.clear(); this.scopedAll.clear(); this.scopedOutbound.clear(); }
    for (const type of changed.keys()) {
      this.allVersions.delete(type);
      for (const key of this.scopedAll.keys()) if (key.startsWith(`${type}|`)) this.scopedAll.delete(key);
      if (type === TYPE_URLS.ROUTE) this.scopedOutbound.clear();
    }
    const newRevision = revision !== this.revisionValue;
    this.revisionValue = revision;
    const change: SnapshotChange = { revision, changed, ...(at === undefined ? {} : { at }), ...(rescoped.size === 0 ? {} : { rescoped }) };
    // A new revision is announced even when it changes no resource, so its rollout exists.
    if (changed.size > 0 || newRevision || rescoped.size > 0) for (const l of this.listeners) l(change);
    return change;
  }

  get(type: string, name: string): CachedResource | undefined { return this.types.get(type)?.get(name); }

  all(type: string): ReadonlyMap<string, CachedResource> { return this.types.get(type) ?? new Map(); }

  /** responseVersion of every resource of `type`: what a wildcard subscription is sent. Computed once per snapshot. */
  allVersion(type: string): string {
    let v = this.allVersions.get(type);
    if (v === undefined) {
      v = responseVersion([...this.all(type).values()]);
      this.allVersions.set(type, v);
    }
    return v;
  }

  has(type: string): boolean { return this.types.has(type); }

  /** The declared dependencies of `service`; undefined when it declares none (or is no service): every service. */
  scopeOf(service: string): Scope | undefined { return this.scopes.get(service); }

  /** The resources of `type` a wildcard covers within `scope`, and their response version. One per scope, type and snapshot. */
  allFor(type: string, scope: Scope): { resources: readonly CachedResource[]; version: string } {
    const key = `${type}|${scope.key}`;
    let r = this.scopedAll.get(key);
    if (r === undefined) {
      const resources = [...this.all(type).values()].filter((x) => inScope(scope, type, x.name));
      r = { resources, version: responseVersion(resources) };
      this.scopedAll.set(key, r);
    }
    return r;
  }

  /**
   * The outbound route table (OUTBOUND) with only the virtual hosts of `scope`'s services, in the
   * same order, assembled from the VirtualHosts' encodings. One per scope and snapshot.
   */
  outboundFor(scope: Scope): CachedResource | undefined {
    let r = this.scopedOutbound.get(scope.key);
    if (r === undefined) {
      const full = this.get(TYPE_URLS.ROUTE, OUTBOUND);
      r = null;
      if (full !== undefined) {
        const vhosts = (full.json['virtual_hosts'] as XdsObject[]).filter((vh) => scope.services.has(vh['name'] as string));
        const json: XdsObject = { name: OUTBOUND, virtual_hosts: vhosts };
        const any = assembleRouteConfiguration(OUTBOUND, vhosts.map((vh) => this.vhosts.get(jsonHash(vh)) ?? Buffer.from(encodeResource(VIRTUAL_HOST_TYPE, vh).value)));
        r = { name: OUTBOUND, version: contentVersion(any.value), any, json };
      }
      this.scopedOutbound.set(scope.key, r);
    }
    return r ?? undefined;
  }

  onChange(fn: (c: SnapshotChange) => void): void { this.listeners.push(fn); }
}

function inputs(r: XdsResourceSet): [string, readonly XdsObject[], 'name' | 'cluster_name'][] {
  return XDS_KINDS.map((k) => [k.typeUrl, resourcesOfKind(r, k) as unknown as readonly XdsObject[], k.nameField]);
}

/** The JSON hash each cached resource was encoded from. */
const sourceHash = new WeakMap<CachedResource, string>();

/** One snapshot being encoded, reusing the encodings of the installed and last prepared snapshots. */
class Preparation {
  private readonly types = new Map<string, Map<string, CachedResource>>(PUSH_ORDER.map((t) => [t, new Map()]));
  private readonly vhosts = new Map<string, Buffer>();

  constructor(
    private readonly installed: Map<string, Map<string, CachedResource>>,
    private readonly installedVhosts: Map<string, Buffer>,
    private readonly prepared: PreparedSnapshot | undefined,
  ) {}

  add(type: string, json: XdsObject, key: 'name' | 'cluster_name'): void {
    const name = json[key] as string;
    const hash = jsonHash(json);
    const reused = this.reuse(type, name, hash);
    const r: CachedResource = reused === undefined ? this.encode(type, name, json) : { ...reused, json };
    sourceHash.set(r, hash);
    this.types.get(type)!.set(name, r);
  }

  finish(scopes: Map<string, Scope>): PreparedSnapshot { return { types: this.types, vhosts: this.vhosts, scopes }; }

  private reuse(type: string, name: string, hash: string): CachedResource | undefined {
    for (const from of [this.installed.get(type)?.get(name), this.prepared?.types.get(type)?.get(name)]) {
      if (from === undefined || sourceHash.get(from) !== hash) continue;
      if (type === TYPE_URLS.ROUTE && isSpliceable(from.json)) for (const vh of from.json['virtual_hosts'] as XdsObject[]) this.vhost(vh);
      return from;
    }
    return undefined;
  }

  private encode(type: string, name: string, json: XdsObject): CachedResource {
    const any = type === TYPE_URLS.ROUTE && isSpliceable(json) ? this.routeConfiguration(json) : encodeResource(type, json);
    return { name, version: contentVersion(any.value), any, json };
  }

  /**
   * A RouteConfiguration of only a name and virtual hosts, assembled from the encoded name and
   * each encoded VirtualHost as a length-delimited field 2: the bytes protobufjs writes for the
   * whole message (fields in number order), so versions do not depend on how it was built.
   */
  private routeConfiguration(json: XdsObject): PackedAny {
    return assembleRouteConfiguration(json['name'] as string, (json['virtual_hosts'] as XdsObject[]).map((vh) => this.vhost(vh)));
  }

  /** A VirtualHost's encoding, reused when its JSON was encoded before. */
  private vhost(vh: XdsObject): Buffer {
    const hash = jsonHash(vh);
    let bytes = this.vhosts.get(hash) ?? this.installedVhosts.get(hash) ?? this.prepared?.vhosts.get(hash);
    if (bytes === undefined) bytes = Buffer.from(encodeResource(VIRTUAL_HOST_TYPE, vh).value);
    this.vhosts.set(hash, bytes);
    return bytes;
  }
}

/** A RouteConfiguration of `name` and the encoded VirtualHosts, as protobufjs writes it (Preparation.routeConfiguration). */
function assembleRouteConfiguration(name: string, vhosts: readonly Buffer[]): PackedAny {
  const head = encodeResource(TYPE_URLS.ROUTE, { name });
  const parts: Buffer[] = [Buffer.from(head.value)];
  for (const bytes of vhosts) parts.push(fieldHeader(VIRTUAL_HOSTS_FIELD, bytes.length), bytes);
  return { type_url: head.type_url, value: Buffer.concat(parts) };
}

function isSpliceable(json: XdsObject): boolean {
  return Array.isArray(json['virtual_hosts']) && Object.keys(json).every((k) => k === 'name' || k === 'virtual_hosts');
}

/** The tag (field number, wire type 2) and length varint of a length-delimited field. */
function fieldHeader(field: number, length: number): Buffer {
  const bytes = [(field << 3) | 2];
  let n = length;
  while (n > 0x7f) { bytes.push((n & 0x7f) | 0x80); n >>>= 7; }
  bytes.push(n);
  return Buffer.from(bytes);
}

const hashOf = new WeakMap<XdsObject, string>();

/** A hash of an xDS object's JSON (equal JSON, equal encoding), cached per object. */
function jsonHash(json: XdsObject): string {
  let h = hashOf.get(json);
  if (h === undefined) {
    h = createHash('sha1').update(JSON.stringify(json)).digest('hex');
    hashOf.set(json, h);
  }
  return h;
}

/** The version_info of a response: setVersion of the (name, version) pairs it carries. */
export function responseVersion(resources: readonly CachedResource[]): string {
  return resourcesVersion(resources);
}

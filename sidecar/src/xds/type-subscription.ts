/**
 * The client's state for one resource type: what it subscribed to, the last accepted version and
 * resources, and the nonce to echo. `apply` decides ACK or NACK for one response; it never does
 * I/O, so the XdsClient stays a thin stream loop around it.
 *
 * Accepted maps are replaced, never mutated: a map handed to a listener stays as it was.
 */
import { sameEncoding } from '../../../shared/src/xds/resource-kind';
import { capMessage, decodeBatch } from './resource-batch';
import type { BatchItem, BatchScope, Decoded, ResourceCheck } from './resource-batch';
import type { PackedResource, ResourceDecoder } from './resource-decoder';
import type { XdsClientLimits } from './xds-limits';

export { capMessage } from './resource-batch';
export type { ResourceCheck } from './resource-batch';
export { DEFAULT_LIMITS } from './xds-limits';
export type { XdsClientLimits } from './xds-limits';

export interface XdsError {
  /** version_info of the rejected response. */
  version: string;
  nonce: string;
  message: string;
  at: string;
}

/** One type in XdsClient.state(), for /config_dump. */
export interface XdsTypeState {
  typeUrl: string;
  subscribed: '*' | string[];
  /** Last accepted version_info ('' before the first accepted response). */
  version: string;
  /** Nonce of the last response seen on the current stream ('' after a reconnect). */
  nonce: string;
  resources: Record<string, unknown>;
  lastError: XdsError | null;
}

export interface ResponseView { version_info?: string; nonce: string; resources?: PackedResource[] }

export type ApplyResult =
  | { kind: 'accepted'; changed: boolean }
  | { kind: 'rejected'; errors: string[]; message: string };

export class TypeSubscription {
  names: ReadonlySet<string> | '*' = new Set();
  /** The last accepted version_info (state of the world) or system_version_info (delta). */
  version = '';
  nonce = '';
  /** The nonce of the last rejected response, so later requests on it keep carrying the error. */
  nackedNonce: string | null = null;
  lastError: XdsError | null = null;
  resources: ReadonlyMap<string, unknown> = new Map();
  /**
   * Each accepted resource's version, as a delta server gave it (what initial_resource_versions
   * tells the next delta stream). A resource accepted from a state-of-the-world response has none.
   */
  resourceVersions: ReadonlyMap<string, string> = new Map();
  private raw: ReadonlyMap<string, Buffer> = new Map();
  private accepted = false;

  /** Bound once: what decoders get as `previous` (the accepted value under a name). */
  private readonly previous = (name: string): unknown => this.resources.get(name);
  private readonly subscribed = (name: string): boolean => this.names === '*' || this.names.has(name);

  /** LDS, CDS: a response is the whole set. RDS, EDS: it replaces only the names it carries. */
  readonly fullState: boolean;

  constructor(readonly type: ResourceDecoder<unknown>, private readonly limits: XdsClientLimits) {
    this.fullState = type.kind.fullState;
  }

  get typeUrl(): string { return this.type.kind.typeUrl; }

  /** True once a response of this type was accepted (on any stream). */
  get hasAccepted(): boolean { return this.accepted; }

  /**
   * Replaces the name set; drops resources no longer subscribed (per-name types, and with
   * `dropFullState` full-state ones too: a delta server does not answer an unsubscribe). True if
   * the set changed.
   */
  setNames(names: readonly string[] | '*', dropFullState = false): boolean {
    const next = names === '*' ? '*' : new Set(names);
    const same = next === '*' ? this.names === '*' : this.names !== '*' && this.names.size === next.size && [...next].every((n) => (this.names as ReadonlySet<string>).has(n));
    this.names = next;
    if ((dropFullState || !this.fullState) && next !== '*' && [...this.resources.keys()].some((n) => !next.has(n))) {
      this.resources = new Map([...this.resources].filter(([n]) => next.has(n)));
      this.raw = new Map([...this.raw].filter(([n]) => next.has(n)));
      this.resourceVersions = new Map([...this.resourceVersions].filter(([n]) => next.has(n)));
    }
    return !same;
  }

  /** The subscription part of a DiscoveryRequest (node is the stream's business). */
  request(): { type_url: string; version_info: string; resource_names: string[]; response_nonce: string; error_detail?: { code: number; message: string } } {
    const req = { type_url: this.typeUrl, version_info: this.version, resource_names: this.names === '*' ? [] : [...this.names], response_nonce: this.nonce };
    // Still on a rejected response: say so again, or the server would take this request as an ACK.
    const error = this.pendingError();
    return error === undefined ? req : { ...req, error_detail: error };
  }

  /** The error_detail to repeat while the current nonce is a rejected response's. */
  pendingError(): { code: number; message: string } | undefined {
    if (this.nonce !== '' && this.nackedNonce === this.nonce && this.lastError !== null) return { code: 3, message: this.lastError.message };
    return undefined;
  }

  /**
   * State of the world: decodes a whole response; accepts it only if every resource is valid and
   * `check` (checks against other types' accepted resources) finds no problem in them.
   */
  apply(res: ResponseView, now: number, check?: ResourceCheck): ApplyResult {
    this.nonce = res.nonce;
    const version = res.version_info ?? '';
    const items: BatchItem[] = (res.resources ?? []).map((packed) => ({ packed }));
    const { decoded, errors } = decodeBatch(items, this.scope(check));
    if (errors.length > 0) return this.reject(errors, version, res.nonce, now);
    // Per-name types: a response replaces only the names it carries. Full state: absent means deleted.
    const kept = this.fullState ? [] : [...this.resources.keys()].filter((n) => !decoded.has(n) && this.subscribed(n));
    return { kind: 'accepted', changed: this.commit(decoded, kept, version, false) };
  }

  /** What decodeBatch needs of this type. */
  scope(check: ResourceCheck | undefined): BatchScope {
    return { type: this.type, limits: this.limits, previous: this.previous, isSubscribed: this.subscribed, check };
  }

  /** Records a rejected response: the accepted state stays as it was. */
  reject(errors: string[], version: string, nonce: string, now: number): ApplyResult {
    const message = capMessage(errors, this.limits.maxErrorDetailChars);
    this.nackedNonce = nonce;
    this.lastError = { version, nonce, message, at: new Date(now).toISOString() };
    return { kind: 'rejected', errors, message };
  }

  /**
   * Accepts `decoded` plus the accepted resources named in `kept`, as the new set at `version`.
   * `withVersions`: the decoded resources carry their delta versions (else no version is known).
   * True if any resource's bytes changed (listeners then get the new map).
   */
  commit(decoded: ReadonlyMap<string, Decoded>, kept: Iterable<string>, version: string, withVersions: boolean): boolean {
    const next = new Map<string, unknown>();
    const nextRaw = new Map<string, Buffer>();
    const nextVersions = new Map<string, string>();
    for (const n of kept) {
      if (!this.resources.has(n)) continue;
      next.set(n, this.resources.get(n));
      nextRaw.set(n, this.raw.get(n)!);
      const v = this.resourceVersions.get(n);
      if (withVersions && v !== undefined) nextVersions.set(n, v);
    }
    for (const [n, d] of decoded) {
      // Unchanged bytes keep the value already in use (same object): its state (rate-limit
      // buckets, compiled tables) survives an update that changed other resources.
      const old = this.raw.get(n);
      const same = old !== undefined && sameEncoding(old, d.raw) && this.resources.has(n);
      next.set(n, same ? this.resources.get(n) : d.value);
      nextRaw.set(n, d.raw);
      if (withVersions && d.version !== undefined) nextVersions.set(n, d.version);
    }
    const changed = !this.accepted || !sameBytes(this.raw, nextRaw);
    this.accepted = true;
    this.version = version;
    this.nackedNonce = null;
    this.lastError = null;
    this.resourceVersions = nextVersions;
    if (changed) { this.resources = next; this.raw = nextRaw; }
    return changed;
  }

  snapshot(): XdsTypeState {
    return {
      typeUrl: this.typeUrl,
      subscribed: this.names === '*' ? '*' : [...this.names],
      version: this.version,
      nonce: this.nonce,
      resources: Object.fromEntries(this.resources),
      lastError: this.lastError,
    };
  }
}

function sameBytes(a: ReadonlyMap<string, Buffer>, b: ReadonlyMap<string, Buffer>): boolean {
  if (a.size !== b.size) return false;
  for (const [n, buf] of a) {
    const other = b.get(n);
    if (other === undefined || !sameEncoding(other, buf)) return false;
  }
  return true;
}

/**
 * The client's state for one resource type: what it subscribed to, the last accepted version and
 * resources, and the nonce to echo. `apply` decides ACK or NACK for one response; it never does
 * I/O, so the XdsClient stays a thin stream loop around it.
 *
 * Accepted maps are replaced, never mutated: a map handed to a listener stays as it was.
 */
import { sameEncoding } from '../../../shared/src/xds/resource-kind';
import type { DecodeResult, PackedResource, ResourceDecoder } from './resource-decoder';

export interface XdsClientLimits {
  /** Largest DiscoveryResponse accepted from the server (gRPC max_receive_message_length). Default 64 MiB. */
  maxMessageBytes: number;
  /** Most resources in one response. Default 100000. */
  maxResources: number;
  /** Longest resource name (in a response or a subscription). Default 1024, as the control plane's. */
  maxNameLength: number;
  /** Most names in one subscription. Default 10000, as the control plane's. */
  maxSubscribedNames: number;
  /** error_detail.message is cut to about this many characters. Default 4096. */
  maxErrorDetailChars: number;
}

export const DEFAULT_LIMITS: XdsClientLimits = {
  maxMessageBytes: 64 * 1024 * 1024,
  maxResources: 100_000,
  maxNameLength: 1024,
  maxSubscribedNames: 10_000,
  maxErrorDetailChars: 4096,
};

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

/** Problems of decoded resources of `typeUrl` against the rest of the config (cross-resource checks). */
export type ResourceCheck = (typeUrl: string, resources: ReadonlyMap<string, unknown>) => string[];

export type ApplyResult =
  | { kind: 'accepted'; changed: boolean }
  | { kind: 'rejected'; errors: string[]; message: string };

export class TypeSubscription {
  names: ReadonlySet<string> | '*' = new Set();
  version = '';
  nonce = '';
  /** The nonce of the last rejected response, so later requests on it keep carrying the error. */
  nackedNonce: string | null = null;
  lastError: XdsError | null = null;
  resources: ReadonlyMap<string, unknown> = new Map();
  private raw: ReadonlyMap<string, Buffer> = new Map();
  private accepted = false;

  /** Bound once: what decoders get as `previous` (the accepted value under a name). */
  private readonly previous = (name: string): unknown => this.resources.get(name);

  /** LDS, CDS: a response is the whole set. RDS, EDS: it replaces only the names it carries. */
  readonly fullState: boolean;

  constructor(readonly type: ResourceDecoder<unknown>, private readonly limits: XdsClientLimits) {
    this.fullState = type.kind.fullState;
  }

  get typeUrl(): string { return this.type.kind.typeUrl; }

  /** Replaces the name set; drops resources no longer subscribed (per-name types). True if the set changed. */
  setNames(names: readonly string[] | '*'): boolean {
    const next = names === '*' ? '*' : new Set(names);
    const same = next === '*' ? this.names === '*' : this.names !== '*' && this.names.size === next.size && [...next].every((n) => (this.names as ReadonlySet<string>).has(n));
    this.names = next;
    if (!this.fullState && next !== '*' && [...this.resources.keys()].some((n) => !next.has(n))) {
      this.resources = new Map([...this.resources].filter(([n]) => next.has(n)));
      this.raw = new Map([...this.raw].filter(([n]) => next.has(n)));
    }
    return !same;
  }

  /** The subscription part of a DiscoveryRequest (node is the stream's business). */
  request(): { type_url: string; version_info: string; resource_names: string[]; response_nonce: string; error_detail?: { code: number; message: string } } {
    const req = { type_url: this.typeUrl, version_info: this.version, resource_names: this.names === '*' ? [] : [...this.names], response_nonce: this.nonce };
    // Still on a rejected response: say so again, or the server would take this request as an ACK.
    if (this.nonce !== '' && this.nackedNonce === this.nonce && this.lastError !== null) {
      return { ...req, error_detail: { code: 3, message: this.lastError.message } };
    }
    return req;
  }

  /**
   * Decodes a whole response; accepts it only if every resource is valid (state of the world)
   * and `check` (checks against other types' accepted resources) finds no problem in them.
   */
  apply(res: ResponseView, now: number, check?: ResourceCheck): ApplyResult {
    this.nonce = res.nonce;
    const version = res.version_info ?? '';
    const resources = res.resources ?? [];
    const errors: string[] = [];
    const decoded = new Map<string, { value: unknown; raw: Buffer }>();
    if (resources.length > this.limits.maxResources) {
      errors.push(`resources: ${resources.length} resources; at most ${this.limits.maxResources}`);
    } else {
      resources.forEach((any, i) => this.decodeOne(any, i, decoded, errors));
      if (errors.length === 0 && check !== undefined && decoded.size > 0) {
        const values = new Map<string, unknown>();
        for (const [n, d] of decoded) values.set(n, d.value);
        errors.push(...check(this.typeUrl, values));
      }
    }
    if (errors.length > 0) {
      const message = capMessage(errors, this.limits.maxErrorDetailChars);
      this.nackedNonce = res.nonce;
      this.lastError = { version, nonce: res.nonce, message, at: new Date(now).toISOString() };
      return { kind: 'rejected', errors, message };
    }
    const next = new Map<string, unknown>();
    const nextRaw = new Map<string, Buffer>();
    if (!this.fullState) {
      // Per-name types: a response replaces only the names it carries.
      for (const [n, v] of this.resources) if (!decoded.has(n) && this.isSubscribed(n)) { next.set(n, v); nextRaw.set(n, this.raw.get(n)!); }
    }
    for (const [n, d] of decoded) {
      // Unchanged bytes keep the value already in use (same object): its state (rate-limit
      // buckets, compiled tables) survives an update that changed other resources.
      const old = this.raw.get(n);
      const same = old !== undefined && sameEncoding(old, d.raw) && this.resources.has(n);
      next.set(n, same ? this.resources.get(n) : d.value);
      nextRaw.set(n, d.raw);
    }
    const changed = !this.accepted || !sameBytes(this.raw, nextRaw);
    this.accepted = true;
    this.version = version;
    this.nackedNonce = null;
    this.lastError = null;
    if (changed) { this.resources = next; this.raw = nextRaw; }
    return { kind: 'accepted', changed };
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

  private isSubscribed(name: string): boolean { return this.names === '*' || this.names.has(name); }

  private decodeOne(any: PackedResource, i: number, out: Map<string, { value: unknown; raw: Buffer }>, errors: string[]): void {
    if (any?.type_url !== this.typeUrl) {
      errors.push(`resources[${i}]: type_url ${String(any?.type_url)} does not match the response's ${this.typeUrl}`);
      return;
    }
    const raw = any.value ?? Buffer.alloc(0);
    let r: DecodeResult<unknown>;
    try {
      r = this.type.decode({ type_url: any.type_url, value: raw }, this.previous);
    } catch (e) {
      errors.push(`resources[${i}]: decoder failed: ${(e as Error).message}`);
      return;
    }
    const label = r.name === '' ? `resources[${i}]` : r.name;
    if ('error' in r) { errors.push(`${label}: ${r.error}`); return; }
    if (r.name.length > this.limits.maxNameLength) { errors.push(`resources[${i}]: name is longer than ${this.limits.maxNameLength} characters`); return; }
    if (out.has(r.name)) { errors.push(`${r.name}: appears twice in the response`); return; }
    if (!this.isSubscribed(r.name)) return; // not asked for: ignored, as Envoy does
    out.set(r.name, { value: r.value, raw });
  }
}

/** Joins errors with '; ', cut to about `max` characters with a count of what was left out. */
export function capMessage(errors: readonly string[], max: number): string {
  let out = '';
  for (let i = 0; i < errors.length; i++) {
    const piece = (i === 0 ? '' : '; ') + errors[i];
    if (out.length + piece.length > max) {
      const rest = errors.length - i;
      const tail = ` ... (${rest} more error${rest === 1 ? '' : 's'})`;
      return (out + piece).slice(0, Math.max(0, max - tail.length)) + tail;
    }
    out += piece;
  }
  return out;
}

function sameBytes(a: ReadonlyMap<string, Buffer>, b: ReadonlyMap<string, Buffer>): boolean {
  if (a.size !== b.size) return false;
  for (const [n, buf] of a) {
    const other = b.get(n);
    if (other === undefined || !sameEncoding(other, buf)) return false;
  }
  return true;
}

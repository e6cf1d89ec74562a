/**
 * Decoding the resources of one response, whatever the protocol: each packed resource through
 * its type's decoder, with the client's limits, then the cross-resource check. State of the world
 * (type-subscription.ts) and delta (delta-subscription.ts) both decode here, so a sidecar applies
 * exactly the same config, and NACKs with the same messages, on either protocol.
 */
import type { DecodeResult, PackedResource, ResourceDecoder } from './resource-decoder';
import type { XdsClientLimits } from './xds-limits';

/** Problems of decoded resources of `typeUrl` against the rest of the config (cross-resource checks). */
export type ResourceCheck = (typeUrl: string, resources: ReadonlyMap<string, unknown>) => string[];

/** One resource of a response: its packed body and, on delta, the name and version the Resource wrapper gives. */
export interface BatchItem { packed: PackedResource | undefined; name?: string; version?: string }

export interface Decoded { value: unknown; raw: Buffer; version: string | undefined }

export interface BatchScope {
  type: ResourceDecoder<unknown>;
  limits: XdsClientLimits;
  /** The accepted value under a name (what decoders get as `previous`). */
  previous: (name: string) => unknown;
  /** Resources of names not subscribed to are ignored (as Envoy does). */
  isSubscribed: (name: string) => boolean;
  check: ResourceCheck | undefined;
}

/** Decodes every item; `errors` lists each problem with its resource (empty: the batch is good). */
export function decodeBatch(items: readonly BatchItem[], scope: BatchScope): { decoded: Map<string, Decoded>; errors: string[] } {
  const decoded = new Map<string, Decoded>();
  const errors: string[] = [];
  if (items.length > scope.limits.maxResources) {
    errors.push(`resources: ${items.length} resources; at most ${scope.limits.maxResources}`);
    return { decoded, errors };
  }
  items.forEach((item, i) => decodeOne(item, i, scope, decoded, errors));
  if (errors.length === 0 && scope.check !== undefined && decoded.size > 0) {
    const values = new Map<string, unknown>();
    for (const [n, d] of decoded) values.set(n, d.value);
    errors.push(...scope.check(scope.type.kind.typeUrl, values));
  }
  return { decoded, errors };
}

function decodeOne(item: BatchItem, i: number, scope: BatchScope, out: Map<string, Decoded>, errors: string[]): void {
  const typeUrl = scope.type.kind.typeUrl;
  const any = item.packed;
  const at = item.name === undefined ? `resources[${i}]` : `resources[${i}] (${item.name.slice(0, 256)})`;
  if (any === undefined || any === null) { errors.push(`${at}: has no resource`); return; }
  if (any.type_url !== typeUrl) {
    errors.push(`${at}: type_url ${String(any.type_url)} does not match the response's ${typeUrl}`);
    return;
  }
  const raw = any.value ?? Buffer.alloc(0);
  let r: DecodeResult<unknown>;
  try {
    r = scope.type.decode({ type_url: any.type_url, value: raw }, scope.previous);
  } catch (e) {
    errors.push(`${at}: decoder failed: ${(e as Error).message}`);
    return;
  }
  const label = r.name === '' ? at : r.name;
  if ('error' in r) { errors.push(`${label}: ${r.error}`); return; }
  if (r.name.length > scope.limits.maxNameLength) { errors.push(`${at}: name is longer than ${scope.limits.maxNameLength} characters`); return; }
  if (item.name !== undefined && item.name !== r.name) { errors.push(`${at}: the resource is named ${r.name.slice(0, 256)}`); return; }
  if (out.has(r.name)) { errors.push(`${r.name}: appears twice in the response`); return; }
  if (!scope.isSubscribed(r.name)) return;
  out.set(r.name, { value: r.value, raw, version: item.version });
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

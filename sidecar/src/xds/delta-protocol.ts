/**
 * Incremental (delta) ADS from the client side (Envoy's xds_protocol, "Incremental xDS"), as
 * messages built from and applied to a TypeSubscription; no I/O (xds-client.ts writes them).
 *
 *  - A stream states each type once: resource_names_subscribe (every name, or '*' for a LDS/CDS
 *    wildcard) and initial_resource_versions (what the sidecar already holds, at the versions the
 *    server gave, so a reconnected stream is not sent them again).
 *  - Later subscription changes send only the difference: resource_names_subscribe / _unsubscribe.
 *    A name unsubscribed is dropped at once: the server does not answer an unsubscribe.
 *  - A response carries changed resources (each with its version) and removed_resources. It is
 *    decoded with the same decoders and checks as a state-of-the-world response (resource-batch.ts)
 *    and accepted whole, or NACKed whole with error_detail, keeping the previous resources.
 */
import type { PackedResource } from './resource-decoder';
import type { ResourceCheck } from './resource-batch';
import { decodeBatch } from './resource-batch';
import type { ApplyResult, TypeSubscription } from './type-subscription';

export interface DeltaRequest {
  type_url: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code: number; message: string };
  node?: object;
}

export interface DeltaResponse {
  system_version_info?: string;
  resources?: { name?: string; version?: string; resource?: PackedResource }[];
  type_url?: string;
  removed_resources?: string[];
  nonce?: string;
}

/** The names a stream has told the server it wants, per type ('*' is the wildcard). */
export type Told = Set<string>;

function wanted(sub: TypeSubscription): string[] { return sub.names === '*' ? ['*'] : [...sub.names]; }

/** The first request of a type on a new stream; `told` records what it subscribes. */
export function initialRequest(sub: TypeSubscription, told: Told): DeltaRequest {
  const names = wanted(sub);
  told.clear();
  for (const n of names) told.add(n);
  const req: DeltaRequest = { type_url: sub.typeUrl, resource_names_subscribe: names };
  if (sub.resourceVersions.size > 0) req.initial_resource_versions = Object.fromEntries(sub.resourceVersions);
  return req;
}

/** After the names changed: the subscribe/unsubscribe difference from what the stream told, or undefined. */
export function changeRequest(sub: TypeSubscription, told: Told): DeltaRequest | undefined {
  const names = new Set(wanted(sub));
  const subscribe = [...names].filter((n) => !told.has(n));
  const unsubscribe = [...told].filter((n) => !names.has(n));
  if (subscribe.length === 0 && unsubscribe.length === 0) return undefined;
  for (const n of unsubscribe) told.delete(n);
  for (const n of subscribe) told.add(n);
  const req: DeltaRequest = { type_url: sub.typeUrl };
  if (subscribe.length > 0) req.resource_names_subscribe = subscribe;
  if (unsubscribe.length > 0) req.resource_names_unsubscribe = unsubscribe;
  return req;
}

/** The ACK (or, after a rejected response, the NACK with error_detail) of the response `nonce`. */
export function answerRequest(sub: TypeSubscription, nonce: string): DeltaRequest {
  const error = sub.nonce === nonce ? sub.pendingError() : undefined;
  return error === undefined ? { type_url: sub.typeUrl, response_nonce: nonce } : { type_url: sub.typeUrl, response_nonce: nonce, error_detail: error };
}

/**
 * Applies one delta response: the resources it updates and those it removes, on top of what is
 * accepted. Any bad resource rejects the whole response (the accepted state stays).
 */
export function applyDelta(sub: TypeSubscription, res: DeltaResponse, nonce: string, now: number, check?: ResourceCheck): ApplyResult {
  sub.nonce = nonce;
  const version = res.system_version_info ?? '';
  const items = (res.resources ?? []).map((r) => ({ packed: r.resource, name: r.name ?? '', version: r.version ?? '' }));
  const { decoded, errors } = decodeBatch(items, sub.scope(check));
  const removed = new Set(res.removed_resources ?? []);
  for (const n of removed) if (decoded.has(n)) errors.push(`${n}: both updated and in removed_resources`);
  if (errors.length > 0) return sub.reject(errors, version, nonce, now);
  const kept = [...sub.resources.keys()].filter((n) => !decoded.has(n) && !removed.has(n));
  return { kind: 'accepted', changed: sub.commit(decoded, kept, version, true) };
}

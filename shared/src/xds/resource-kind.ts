/**
 * The one definition of each xDS resource kind the mesh serves, shared by the control plane
 * (snapshot cache, ADS streams) and the sidecar (its xDS client and decoders), after
 * grpc-js-xds's XdsResourceType: the type URL; whether the kind is full state in the state of the
 * world protocol (LDS, CDS: a response lists every resource, and one left out is deleted) or per
 * name (RDS, EDS, SDS: a response replaces only the names it carries); which field holds a resource's
 * name; the order pushes go out; and when two resources are equal.
 *
 * Decoding is not here: the sidecar's decoders (sidecar/src/xds/*-type.ts) plug into a kind, and
 * the control plane only encodes (pack.ts).
 */
import { createHash } from 'node:crypto';
import { TYPE_URLS } from './protos';
export interface XdsResourceKind {
  readonly typeUrl: string;
  /** The xDS service that carries it: 'LDS', 'RDS', 'CDS', 'EDS' or 'SDS'. */
  readonly service: 'LDS' | 'RDS' | 'CDS' | 'EDS' | 'SDS';
  /** Full state (LDS, CDS) or per name (RDS, EDS, SDS); see the header. */
  readonly fullState: boolean;
  /** The message field that names a resource: 'name', or 'cluster_name' for a ClusterLoadAssignment. */
  readonly nameField: 'name' | 'cluster_name';
  /** The name of a resource (JSON form or decoded: the same key), '' when unset. */
  nameOf(resource: object): string;
}

function kind(typeUrl: string, service: XdsResourceKind['service'], fullState: boolean, nameField: XdsResourceKind['nameField']): XdsResourceKind {
  return Object.freeze({
    typeUrl, service, fullState, nameField,
    nameOf(resource: object): string {
      const n = (resource as Record<string, unknown>)[nameField];
      return typeof n === 'string' ? n : '';
    },
  });
}

export const LISTENER_KIND = kind(TYPE_URLS.LISTENER, 'LDS', true, 'name');
export const ROUTE_KIND = kind(TYPE_URLS.ROUTE, 'RDS', false, 'name');
export const CLUSTER_KIND = kind(TYPE_URLS.CLUSTER, 'CDS', true, 'name');
export const ENDPOINT_KIND = kind(TYPE_URLS.ENDPOINT, 'EDS', false, 'cluster_name');
export const SECRET_KIND = kind(TYPE_URLS.SECRET, 'SDS', false, 'name');

/**
 * Every kind, in the order pushes go out: make before break (a secret before a cluster or
 * listener that names it; a cluster and its endpoints before a route points at it; a listener
 * before the routes it asks for).
 */
export const XDS_KINDS: readonly XdsResourceKind[] = Object.freeze([SECRET_KIND, CLUSTER_KIND, ENDPOINT_KIND, LISTENER_KIND, ROUTE_KIND]);

/** The type URLs of XDS_KINDS, in push order. */
export const PUSH_ORDER: readonly string[] = Object.freeze(XDS_KINDS.map((k) => k.typeUrl));

const BY_URL: ReadonlyMap<string, XdsResourceKind> = new Map(XDS_KINDS.map((k) => [k.typeUrl, k]));

/** The kind of a type URL, or undefined for a type the mesh does not serve. */
export function kindOf(typeUrl: string): XdsResourceKind | undefined { return BY_URL.get(typeUrl); }

/** LDS and CDS are full state; RDS, EDS, SDS and unknown types are not. */
export function isFullStateType(typeUrl: string): boolean { return BY_URL.get(typeUrl)?.fullState === true; }

/**
 * Equality, for every kind: two resources are the same when their encoded bytes are. The sidecar
 * keeps a resource's decoded value (and its state) when it arrives again with the same bytes;
 * the control plane compares contentVersion()s, which are a hash of those bytes.
 */
export function sameEncoding(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** A resource's version: a content hash of its encoded bytes, stable across restarts (delta-xDS ready). */
export function contentVersion(encoded: Uint8Array): string {
  return createHash('sha256').update(encoded).digest('hex').slice(0, 16);
}

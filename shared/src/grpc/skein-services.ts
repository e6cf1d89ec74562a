/**
 * skein's own gRPC services (proto/skein/…), loaded once per process, and the one mapping of
 * skein error codes to gRPC statuses used at every gRPC edge (certificate and registration
 * services on the control plane; their clients read the code back from `details`).
 */
import * as path from 'node:path';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { asMeshError, ErrorCodes, MeshError } from '../errors';
import type { ErrorCode } from '../errors';
import { PROTO_DIR } from '../paths';
import { parseSpiffeId, spiffeIdInSan } from '../identity/spiffe';
import type { WorkloadIdentity } from '../identity/spiffe';

export const CERTIFICATES_SERVICE = { file: 'skein/identity/v1/certificates.proto', name: 'skein.identity.v1.Certificates' } as const;
export const ENDPOINTS_SERVICE = { file: 'skein/registry/v1/endpoints.proto', name: 'skein.registry.v1.Endpoints' } as const;
export const ROUTE_STATS_SERVICE = { file: 'skein/stats/v1/route_stats.proto', name: 'skein.stats.v1.RouteStats' } as const;

/** skein.identity.v1.Certificates messages, as proto-loader decodes them (keepCase, longs as strings). */
export interface SignRequest { csr_pem?: string; ttl?: { seconds?: string; nanos?: number } }
export interface SignResponse { spiffe_id: string; cert_chain_pem: string; trust_bundle_pem: string; not_before_ms: string; not_after_ms: string; serial: string }

/** skein.registry.v1.Endpoints messages. */
export type WireHealth = 'HEALTH_UNSPECIFIED' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING';
export interface RegisterRequest {
  service?: string; address?: string; port?: number; labels?: Record<string, string>; zone?: string; weight?: number;
  health?: WireHealth; ttl?: { seconds?: string; nanos?: number }; node?: string;
}
export interface LeaseRef { id?: string }
export interface WireLease { id: string; service: string; address: string; port: number; health: WireHealth; ttl_ms: string; expires_at_ms: string }

/** skein.stats.v1.RouteStats messages (int64/uint64 as strings). */
export interface WireRouteVersionStats {
  route?: string; cluster?: string; requests?: string; successes?: string; latency_histogram?: string; latency_sum_us?: string; latency_max_us?: string;
}
export interface WireRouteStatsReport { node?: string; interval_start_ms?: string; interval_end_ms?: string; stats?: WireRouteVersionStats[] }
export interface WireReportSummary { reports: string }

/** A google.protobuf.Duration as proto-loader gives it, in ms; undefined when unset. */
export function durationMs(d: { seconds?: string; nanos?: number } | undefined | null, field: string): number | undefined {
  if (d === undefined || d === null) return undefined;
  const ms = Number(d.seconds ?? 0) * 1000 + Math.floor((d.nanos ?? 0) / 1e6);
  if (!Number.isFinite(ms) || ms <= 0) throw new MeshError(ErrorCodes.VALIDATION, `${field}: must be a positive duration`);
  return ms;
}

const loaded = new Map<string, grpc.ServiceClientConstructor>();

/** The client constructor of a skein service; `.service` is its server definition. */
export function skeinService(svc: { file: string; name: string }): grpc.ServiceClientConstructor {
  let ctor = loaded.get(svc.name);
  if (ctor !== undefined) return ctor;
  const pkg = protoLoader.loadSync(path.join(PROTO_DIR, svc.file), { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  let node: unknown = grpc.loadPackageDefinition(pkg);
  for (const part of svc.name.split('.')) node = (node as Record<string, unknown>)[part];
  ctor = node as grpc.ServiceClientConstructor;
  loaded.set(svc.name, ctor);
  return ctor;
}

/** The gRPC status for a skein error code. */
export function grpcStatusOf(code: ErrorCode): grpc.status {
  switch (code) {
    case ErrorCodes.UNAUTHENTICATED: return grpc.status.UNAUTHENTICATED;
    case ErrorCodes.PERMISSION_DENIED: return grpc.status.PERMISSION_DENIED;
    case ErrorCodes.VALIDATION: case ErrorCodes.MALFORMED_INPUT: case ErrorCodes.BODY_TOO_LARGE: return grpc.status.INVALID_ARGUMENT;
    case ErrorCodes.NOT_FOUND: return grpc.status.NOT_FOUND;
    case ErrorCodes.CONFLICT: return grpc.status.ALREADY_EXISTS;
    case ErrorCodes.UNSUPPORTED: return grpc.status.UNIMPLEMENTED;
    default: return grpc.status.INTERNAL;
  }
}

/** A gRPC error for any thrown value: its status, and `details` as "<SKEIN_ERR_…>: <message>". */
export function grpcError(e: unknown): Partial<grpc.StatusObject> {
  const err = asMeshError(e);
  return { code: grpcStatusOf(err.code), details: `${err.code}: ${err.message}` };
}

/**
 * The workload identity of a gRPC caller, from the client certificate its TLS connection
 * verified (undefined over plaintext or without a certificate). A certificate with no single
 * SPIFFE ID, or from another trust domain, is refused: it can never stand for a workload.
 */
export function callerIdentity(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate } }, trustDomain: string): WorkloadIdentity | undefined {
  const cert = call.getAuthContext().sslPeerCertificate;
  if (cert === undefined) return undefined;
  const uri = spiffeIdInSan(cert.subjectaltname);
  if (uri === undefined) throw new MeshError(ErrorCodes.UNAUTHENTICATED, 'the client certificate carries no single SPIFFE ID');
  const identity = parseSpiffeId(uri, 'client certificate');
  if (identity.trustDomain !== trustDomain) throw new MeshError(ErrorCodes.PERMISSION_DENIED, `client certificate ${uri} is from trust domain ${identity.trustDomain}, not ${trustDomain}`);
  return identity;
}

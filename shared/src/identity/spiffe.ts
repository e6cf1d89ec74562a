/**
 * SPIFFE IDs for workloads: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>, the
 * form Istio uses, so identities read the same across meshes. Parsing is strict: anything that
 * is not exactly that shape is refused with the reason.
 */
import { ErrorCodes, MeshError } from '../errors';

export interface WorkloadIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

export const DEFAULT_TRUST_DOMAIN = 'skein.local';
export const DEFAULT_NAMESPACE = 'default';

/** A trust domain: lower-case DNS-like labels (SPIFFE allows [a-z0-9._-]). */
const TRUST_DOMAIN = /^[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?$/;
/** Namespace and service account: DNS labels, as Kubernetes names them. */
const SEGMENT = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function checkTrustDomain(td: string, field: string): string {
  if (!TRUST_DOMAIN.test(td)) throw new MeshError(ErrorCodes.VALIDATION, `${field}: "${td}" is not a trust domain (lower-case letters, digits, '.', '-', '_'; e.g. skein.local)`);
  return td;
}

export function checkSegment(v: string, field: string): string {
  if (!SEGMENT.test(v)) throw new MeshError(ErrorCodes.VALIDATION, `${field}: "${v}" must be a DNS label (lower-case letters, digits and '-', at most 63)`);
  return v;
}

export function spiffeId(id: WorkloadIdentity): string {
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Parses a workload SPIFFE ID; throws a VALIDATION error naming what is wrong. */
export function parseSpiffeId(uri: string, field = 'spiffe id'): WorkloadIdentity {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  if (m === null) throw new MeshError(ErrorCodes.VALIDATION, `${field}: "${uri.slice(0, 300)}" is not spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`);
  return { trustDomain: checkTrustDomain(m[1]!, field), namespace: checkSegment(m[2]!, field), serviceAccount: checkSegment(m[3]!, field) };
}

/** The namespace and service account of the control plane's own serving certificate. */
export const CONTROL_PLANE_NAMESPACE = 'skein-system';
export const CONTROL_PLANE_SERVICE_ACCOUNT = 'control-plane';

/** The host name skein's own clients dial the control plane by (TLS SNI), whatever address they connect to. */
export const CONTROL_PLANE_HOST = 'control-plane.skein';

/** The SPIFFE ID the control plane serves xDS (and signs nothing else) with. */
export function controlPlaneSpiffeId(trustDomain: string): string {
  return spiffeId({ trustDomain, namespace: CONTROL_PLANE_NAMESPACE, serviceAccount: CONTROL_PLANE_SERVICE_ACCOUNT });
}

/**
 * The SPIFFE ID in a certificate's subjectAltName as Node prints it (`URI:spiffe://…, DNS:…`),
 * or undefined when it has none. A certificate with two SPIFFE IDs has none that counts.
 */
export function spiffeIdInSan(subjectAltName: string | undefined): string | undefined {
  if (subjectAltName === undefined) return undefined;
  const ids = subjectAltName.split(', ').filter((n) => n.startsWith('URI:spiffe://')).map((n) => n.slice(4));
  return ids.length === 1 ? ids[0] : undefined;
}

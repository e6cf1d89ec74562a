/**
 * Sidecar-to-sidecar mTLS in Envoy's own fields (the contract the sidecar decodes; Envoy reads it
 * the same way). Client side: every cluster of a service whose spec.mtls is not DISABLE carries a
 * transport_socket_match that applies TLS only to endpoints whose EDS metadata marks a sidecar,
 * and no plain transport_socket, so endpoints without a sidecar stay plaintext and grpc-js-xds
 * (which ignores transport_socket_matches) keeps working. Both sides take certificates over SDS:
 * 'default' (the workload's own, which never leaves it) and 'ROOTCA' (the trust bundle, served by
 * the control plane).
 */
import type { Service } from '../../../shared/src/config/types';
import { TYPE_URLS as TYPE } from '../../../shared/src/xds/protos';
import { SDS_ROOT_CA, SDS_WORKLOAD_CERT } from './names';
import { ADS_CONFIG_SOURCE } from './xds-json';
import type { CommonTlsContext, Metadata, SdsSecretConfig, Secret, Struct, TransportSocketMatch, UpstreamTlsContext } from './xds-json';

/** What translation needs to know of the mesh's identity (from the CA, passed in by control-plane.ts). */
export interface MeshTrust {
  /** The SPIFFE trust domain: identities are spiffe://<trustDomain>/ns/<ns>/sa/<sa>. */
  readonly trustDomain: string;
  /** The PEM roots workloads trust, served as the SDS secret ROOTCA. */
  readonly trustBundlePem: string;
}

/** The transport_socket_match criteria, and the EDS filter_metadata key that an endpoint with a sidecar carries. */
export const TRANSPORT_SOCKET_MATCH_KEY = 'envoy.transport_socket_match';
const TLS_MODE: Struct = Object.freeze({ fields: Object.freeze({ tlsMode: Object.freeze({ stringValue: 'skein' }) }) });

/** The metadata of an lb_endpoint that has a sidecar (an identity): its clusters' transport_socket_match selects it. */
export const SIDECAR_ENDPOINT_METADATA: Metadata = Object.freeze({ filter_metadata: Object.freeze({ [TRANSPORT_SOCKET_MATCH_KEY]: TLS_MODE }) });

const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';

function sdsSecret(name: string): SdsSecretConfig { return { name, sds_config: ADS_CONFIG_SOURCE }; }

/** The TLS settings both sides share: TLS 1.3 only, the workload's own certificate over SDS. */
function commonTls(): CommonTlsContext {
  return { tls_params: { tls_minimum_protocol_version: 'TLSv1_3' }, tls_certificate_sds_secret_configs: [sdsSecret(SDS_WORKLOAD_CERT)] };
}

/**
 * The URI SAN a server of `service` must present, as a suffix: `/sa/<service account>` (its
 * spec.serviceAccount, else its name), in any namespace. A suffix, not a regex: a regex naming
 * the trust domain and the service account can exceed RE2's program-size limit that Envoy and
 * the sidecar enforce (100) for long names. It is enough: the peer must also chain to the mesh's
 * roots (ROOTCA), and the mesh CA signs only well-formed IDs of its own trust domain, which the
 * sidecar checks too (identity/mesh-tls.ts).
 */
export function serverSanSuffix(service: Service): string {
  return `/sa/${service.spec.serviceAccount ?? service.metadata.name}`;
}

/**
 * The clusters' transport_socket_matches for `service`: mTLS to endpoints that have a sidecar,
 * unless the service's mode is DISABLE (undefined then: its clusters stay plaintext).
 */
export function transportSocketMatches(service: Service, trust: MeshTrust): TransportSocketMatch[] | undefined {
  if (service.spec.mtls === 'DISABLE') return undefined;
  const tls: UpstreamTlsContext = {
    common_tls_context: {
      ...commonTls(),
      combined_validation_context: {
        default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { suffix: serverSanSuffix(service) } }] },
        validation_context_sds_secret_config: sdsSecret(SDS_ROOT_CA),
      },
      alpn_protocols: [service.spec.protocol === 'grpc' ? 'h2' : 'http/1.1'],
    },
    sni: `${service.metadata.name}.${trust.trustDomain}`,
  };
  return [{ name: 'skein-mtls', match: TLS_MODE, transport_socket: { name: TLS_TRANSPORT_SOCKET, typed_config: { '@type': TYPE.UPSTREAM_TLS_CONTEXT, ...tls } } }];
}

/** The server side's TLS (the inbound listener's mtls chain): a client certificate chained to ROOTCA is required. */
export function downstreamTransportSocket(): NonNullable<TransportSocketMatch['transport_socket']> {
  return {
    name: TLS_TRANSPORT_SOCKET,
    typed_config: {
      '@type': TYPE.DOWNSTREAM_TLS_CONTEXT,
      require_client_certificate: { value: true },
      common_tls_context: { ...commonTls(), validation_context_sds_secret_config: sdsSecret(SDS_ROOT_CA), alpn_protocols: ['h2', 'http/1.1'] },
    },
  };
}

/**
 * The SDS secret ROOTCA: the trust bundle (PEM) as a validation context. The only secret served.
 * inline_bytes is written base64, as proto3 JSON writes bytes (the encoding is the PEM's bytes).
 */
export function rootCaSecret(trust: MeshTrust): Secret {
  return { name: SDS_ROOT_CA, validation_context: { trusted_ca: { inline_bytes: Buffer.from(trust.trustBundlePem, 'utf8').toString('base64') } } };
}

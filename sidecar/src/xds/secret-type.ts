/**
 * SDS Secret -> the PEM roots it carries. The sidecar asks for one secret, ROOTCA (the mesh's
 * trust bundle, tls-context.ts): `validation_context.trusted_ca.inline_bytes` (or inline_string)
 * holding one or more PEM certificates. A secret with a private key (tls_certificate) is refused:
 * the control plane never sends keys, and a sidecar must not accept one.
 */
import { X509Certificate } from 'node:crypto';
import { SECRET_KIND } from '../../../shared/src/xds/resource-kind';
import { checkFields, fieldSpec } from '../../../shared/src/xds/fields';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';
import { decodeWith } from './resource-decoder';
import type { PackedResource, ResourceDecoder } from './resource-decoder';

export interface SecretConfig {
  name: string;
  /** PEM certificates (the roots). */
  trustedCaPem: string;
}

interface WireSecret {
  name?: string;
  tls_certificate?: object;
  validation_context?: { trusted_ca?: { inline_bytes?: Uint8Array; inline_string?: string; filename?: string } };
}

const SECRET = fieldSpec(['name', 'tls_certificate', 'validation_context'], [], ['type']);
const VALIDATION = fieldSpec(['trusted_ca']);
const DATA_SOURCE = fieldSpec(['inline_bytes', 'inline_string', 'filename'], [], ['specifier']);

function decodeSecret(s: WireSecret, name: string, issues: Issues): SecretConfig | undefined {
  checkFields(s as XdsMessage, SECRET, '', issues);
  if (s.tls_certificate !== undefined) { issues.add('tls_certificate', 'is refused: the sidecar makes its own key and certificate, and accepts no key over xDS'); return undefined; }
  const vc = s.validation_context;
  if (vc === undefined) { issues.add('validation_context', 'is required (the trusted roots)'); return undefined; }
  checkFields(vc as XdsMessage, VALIDATION, 'validation_context', issues);
  const src = vc.trusted_ca;
  if (src === undefined) { issues.add('validation_context.trusted_ca', 'is required'); return undefined; }
  checkFields(src as XdsMessage, DATA_SOURCE, 'validation_context.trusted_ca', issues);
  if (src.filename !== undefined) { issues.add('validation_context.trusted_ca.filename', 'files are not supported; send inline_bytes'); return undefined; }
  const pem = src.inline_string ?? (src.inline_bytes === undefined ? '' : Buffer.from(src.inline_bytes).toString('utf8'));
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) { issues.add('validation_context.trusted_ca', 'holds no PEM certificate'); return undefined; }
  blocks.forEach((b, i) => {
    try {
      if (!new X509Certificate(b).ca) issues.add(`validation_context.trusted_ca[${i}]`, 'is not a CA certificate');
    } catch (e) {
      issues.add(`validation_context.trusted_ca[${i}]`, `is not a certificate: ${(e as Error).message}`);
    }
  });
  return { name, trustedCaPem: blocks.join('\n') };
}

export const secretType: ResourceDecoder<SecretConfig> = {
  kind: SECRET_KIND,
  decode(any: PackedResource) {
    return decodeWith<WireSecret, SecretConfig>(SECRET_KIND, any, (m, name, issues) => decodeSecret(m, name, issues));
  },
};

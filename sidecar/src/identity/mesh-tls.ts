/**
 * Mesh mTLS for the data path, from the workload's identity: the secure contexts of the inbound
 * listener and of upstream connections to other sidecars, and the checks of who the peer is.
 *
 * - The certificate and key are the workload's current ones (RotatingIdentity); the roots are
 *   the mesh's, from the SDS secret ROOTCA when the control plane sent it (so a root rotation
 *   reaches every sidecar), else the trust bundle that came with the certificate.
 * - A context is built once per certificate or roots change and reused by every connection
 *   after it; open connections keep the one they were made with (no connection is closed by a
 *   rotation).
 * - The peer must present exactly one SPIFFE ID in this trust domain; upstream, it must also
 *   match the cluster's allowed identities (ClusterConfig.tls.allowedIds).
 */
import * as crypto from 'node:crypto';
import * as tls from 'node:tls';
import type { Logger } from '../../../shared/src/log';
import type { RotatingIdentity } from '../../../shared/src/identity/rotating-identity';
import { spiffeIdInSan } from '../../../shared/src/identity/spiffe';
import type { UpstreamTlsConfig } from '../upstream/cluster-config';
import type { UpstreamTlsOptions, UpstreamTlsSource } from '../upstream/upstream-tls';
import type { PeerIdentity } from '../listener/peer-identity';


export class MeshTls implements UpstreamTlsSource {
  private roots: string | undefined;
  private readonly contexts = new Map<string, tls.SecureContext>();
  /** Bumped whenever the certificate or the roots change. */
  private gen = 0;

  constructor(private readonly identity: RotatingIdentity, readonly spiffeId: string, readonly trustDomain: string, private readonly log: Logger) {
    identity.onChange(() => { this.contexts.clear(); this.gen++; });
  }

  generation(): number { return this.gen; }

  /** What /identity shows: the certificate in use and where the roots come from (no key). */
  describe(): { spiffeId: string; serial: string; notBefore: string; notAfter: string; expiresInSeconds: number; renewals: number; renewalFailures: number; roots: 'SDS ROOTCA' | 'issued with the certificate'; issuedByRoot: string | null } {
    const cur = this.identity.current;
    return {
      spiffeId: cur.spiffeId, serial: cur.serial, notBefore: new Date(cur.notBefore).toISOString(), notAfter: new Date(cur.notAfter).toISOString(),
      expiresInSeconds: Math.floor(this.identity.expiresInSeconds()), renewals: this.identity.renewals, renewalFailures: this.identity.failures,
      roots: this.roots === undefined ? 'issued with the certificate' : 'SDS ROOTCA',
      issuedByRoot: rootSerialOf(cur.certChainPem, this.roots ?? cur.trustBundlePem),
    };
  }

  /** Key, certificate chain, roots and minimum version: what a tls.Server takes (setSecureContext). */
  contextOptions(minVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.2'): tls.SecureContextOptions {
    const cur = this.identity.current;
    return { key: cur.keyPem, cert: cur.certChainPem, ca: this.roots ?? cur.trustBundlePem, minVersion };
  }

  /** The mesh's roots from SDS (ROOTCA); undefined falls back to the bundle issued with the certificate. */
  setRoots(pem: string | undefined): void {
    if (pem === this.roots) return;
    this.roots = pem;
    this.contexts.clear();
    this.gen++;
    this.identity.setTrustBundle(pem);
    this.log.info({ roots: pem === undefined ? 'from the certificate' : 'from SDS ROOTCA' }, 'mesh trust bundle updated');
    // A root rotation's issue phase puts the new root first: a certificate from another root is
    // renewed now (within RENEW_ON_NEW_ROOT_MS, jittered), so the old root can leave soon.
    const first = pem === undefined ? undefined : firstCertificate(pem);
    if (first !== undefined && !issuedBy(this.identity.current.certChainPem, first)) {
      this.log.info({ spiffeId: this.spiffeId }, 'the mesh issues from a new root: renewing the workload certificate');
      this.identity.renewWithin(RENEW_ON_NEW_ROOT_MS);
    }
  }

  /** The context for new connections, server or client side (TLS 1.2 or 1.3 minimum). */
  context(minVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.3'): tls.SecureContext {
    let ctx = this.contexts.get(minVersion);
    if (ctx === undefined) {
      ctx = tls.createSecureContext(this.contextOptions(minVersion));
      this.contexts.set(minVersion, ctx);
    }
    return ctx;
  }

  /** Who a verified client certificate belongs to; an Error says why it is not a mesh workload. */
  peerOf(cert: tls.PeerCertificate | undefined): PeerIdentity | Error {
    if (cert === undefined || cert.raw === undefined) return new Error('no client certificate');
    const id = spiffeIdInSan(cert.subjectaltname);
    if (id === undefined) return new Error('the client certificate carries no single SPIFFE ID');
    if (!id.startsWith(`spiffe://${this.trustDomain}/`)) return new Error(`${id} is not in trust domain ${this.trustDomain}`);
    const hash = crypto.createHash('sha256').update(cert.raw).digest('hex');
    return { spiffeId: id, xfcc: `By=${this.spiffeId};Hash=${hash};URI=${id}` };
  }

  forUpstream(cluster: string, cfg: UpstreamTlsConfig, protocol: 'h1' | 'h2'): UpstreamTlsOptions {
    const alpn = cfg.alpn.length > 0 ? cfg.alpn : [protocol === 'h2' ? 'h2' : 'http/1.1'];
    const check = (_host: string, cert: tls.PeerCertificate): Error | undefined => this.checkServer(cluster, cfg, cert);
    return () => ({
      secureContext: this.context(cfg.minVersion), ALPNProtocols: alpn, checkServerIdentity: check,
      ...(cfg.sni !== '' ? { servername: cfg.sni } : {}),
    });
  }

  private checkServer(cluster: string, cfg: UpstreamTlsConfig, cert: tls.PeerCertificate): Error | undefined {
    const id = spiffeIdInSan(cert.subjectaltname);
    if (id === undefined) return new Error(`cluster ${cluster}: the server's certificate carries no single SPIFFE ID`);
    if (!id.startsWith(`spiffe://${this.trustDomain}/`)) return new Error(`cluster ${cluster}: the server is ${id}, not in trust domain ${this.trustDomain}`);
    if (cfg.allowedIds.length > 0 && !cfg.allowedIds.some((m) => m.matches(id))) return new Error(`cluster ${cluster}: the server is ${id}, which is not allowed for this destination`);
    return undefined;
  }
}

/** How soon a certificate from a root that no longer issues is renewed (jittered within it). */
export const RENEW_ON_NEW_ROOT_MS = 5000;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function firstCertificate(pem: string): crypto.X509Certificate | undefined {
  const m = pem.match(PEM_CERT);
  try { return m === null ? undefined : new crypto.X509Certificate(m[0]!); } catch { return undefined; }
}

/** Whether the leaf of `chainPem` (or its last intermediate) was issued by `root`. */
function issuedBy(chainPem: string, root: crypto.X509Certificate): boolean {
  const certs = chainPem.match(PEM_CERT) ?? [];
  const top = certs[certs.length - 1];
  if (top === undefined) return false;
  const c = new crypto.X509Certificate(top);
  return c.checkIssued(root) && c.verify(root.publicKey);
}

/** The serial of the root in `rootsPem` that issued the certificate, or null. */
function rootSerialOf(chainPem: string, rootsPem: string): string | null {
  for (const pem of rootsPem.match(PEM_CERT) ?? []) {
    const root = new crypto.X509Certificate(pem);
    if (issuedBy(chainPem, root)) return root.serialNumber.toLowerCase();
  }
  return null;
}

/**
 * The mesh's certificate authority: signs workload certificates (SPIFFE URI SAN) from CSRs.
 *
 * - Its own root is generated at first start: ECDSA P-256, valid 10 years, kept in
 *   <dataDir>/ca/ (root-cert.pem, root-key.pem 0600; the directory 0700). Or the operator plugs
 *   in a root or an intermediate (`--ca-cert` with its chain up to the root, `--ca-key`), as
 *   Istio's cacerts.
 * - A workload certificate is issued only for the identity the caller was authenticated for
 *   (a join token or its current certificate): the CSR must ask for exactly that SPIFFE ID and
 *   nothing else, with an ECDSA P-256 key, signed by that key.
 * - Lifetime: 24h by default, never past the CA's own expiry.
 * Private keys never leave the process that made them: the CA sees only CSRs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes, X509Certificate } from 'node:crypto';
import type { Clock } from '../../../shared/src/clock';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { writeFileAtomic } from '../../../shared/src/atomic-file';
import { controlPlaneSpiffeId, spiffeId } from '../../../shared/src/identity/spiffe';
import type { WorkloadIdentity } from '../../../shared/src/identity/spiffe';
import { EC_P256, generateKeyPair, importPrivateKeyPem, privateKeyPem, x509 } from '../../../shared/src/identity/x509';
import type { CryptoKey, CryptoKeyPair } from '../../../shared/src/identity/x509';

export const CA_DEFAULTS = {
  rootValidityMs: 10 * 365 * 24 * 3600_000,
  workloadTtlMs: 24 * 3600_000,
  /** The longest workload lifetime anyone may ask for. */
  maxWorkloadTtlMs: 90 * 24 * 3600_000,
  /** Largest CSR accepted, in PEM characters (a P-256 CSR with one SAN is under 600). */
  maxCsrBytes: 8192,
  /** Leaves are backdated this much, so a peer whose clock is a little behind accepts them. */
  backdateMs: 60_000,
} as const;

const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export interface CaOptions {
  dataDir: string;
  trustDomain: string;
  clock: Clock;
  /** PEM: the issuing CA certificate, then its chain up to and including the (self-signed) root. */
  caCertFile?: string;
  /** PEM (PKCS#8): the issuing CA's private key. Must not be readable by group or others. */
  caKeyFile?: string;
  /** Default workload certificate lifetime. */
  workloadTtlMs?: number;
}

export interface IssuedCertificate {
  spiffeId: string;
  serial: string;
  /** The leaf, then the intermediates (not the root): what a TLS peer presents. */
  certChainPem: string;
  /** The roots a workload trusts. */
  trustBundlePem: string;
  notBefore: number;
  notAfter: number;
}

export class CertificateAuthority {
  readonly trustDomain: string;
  /** The lifetime of a workload certificate when the caller asks for none (--workload-cert-ttl). */
  readonly workloadTtlMs: number;

  /** Root rotation in progress (root-rotation state, persisted in <dataDir>/ca/rotation.json). */
  private rotation: RotationState | undefined;
  /** The new root and its key, while a rotation is in its trust phase. */
  private next: { cert: x509.X509Certificate; key: CryptoKey } | undefined;
  private readonly dir: string;

  private constructor(
    opts: CaOptions,
    private readonly clock: Clock,
    private issuer: x509.X509Certificate,
    private issuerKey: CryptoKey,
    /** Intermediates between the issuer and the root (issuer first excluded), PEM. */
    private readonly intermediatesPem: string[],
    private roots: x509.X509Certificate[],
    /** Where the CA came from, for logs and `skein ca status`. */
    readonly source: 'generated' | 'loaded' | 'plugged',
  ) {
    this.trustDomain = opts.trustDomain;
    this.workloadTtlMs = opts.workloadTtlMs ?? CA_DEFAULTS.workloadTtlMs;
    this.dir = path.join(opts.dataDir, 'ca');
  }

  /** Loads the plugged CA, or the one in the data dir, or generates a root there. */
  static async open(opts: CaOptions): Promise<CertificateAuthority> {
    const ttl = opts.workloadTtlMs ?? CA_DEFAULTS.workloadTtlMs;
    if (!(ttl >= 60_000 && ttl <= CA_DEFAULTS.maxWorkloadTtlMs)) throw new MeshError(ErrorCodes.VALIDATION, `--workload-cert-ttl: must be from 1m to 2160h (90 days), got ${ttl}ms`);
    if ((opts.caCertFile === undefined) !== (opts.caKeyFile === undefined)) throw new MeshError(ErrorCodes.VALIDATION, '--ca-cert and --ca-key: give both or neither');
    if (opts.caCertFile !== undefined) return CertificateAuthority.plugged(opts, opts.caCertFile, opts.caKeyFile!);
    const dir = path.join(opts.dataDir, 'ca');
    const certFile = path.join(dir, 'root-cert.pem');
    const keyFile = path.join(dir, 'root-key.pem');
    if (fs.existsSync(certFile) || fs.existsSync(keyFile)) {
      const { issuer, key } = await loadPair(certFile, keyFile);
      const ca = new CertificateAuthority(opts, opts.clock, issuer, key, [], [issuer], 'loaded');
      await ca.loadRotation();
      return ca;
    }
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
    const { root, keys } = await newRoot(opts.trustDomain, opts.clock.now());
    // The key first: a crash between the two writes leaves a key without a cert, which open()
    // reports, never a cert whose key is lost.
    writeFileAtomic(keyFile, await privateKeyPem(keys.privateKey), 0o600);
    writeFileAtomic(certFile, root.toString('pem'), 0o644);
    return new CertificateAuthority(opts, opts.clock, root, keys.privateKey, [], [root], 'generated');
  }

  // ---- Root rotation (root-rotation.ts drives it; these are the steps, each persisted) ----

  /** The rotation in progress, or undefined. */
  get rotationState(): Readonly<RotationState> | undefined { return this.rotation; }

  /**
   * Starts a rotation: a new root is made (key 0600) and trusted next to the current one, which
   * still issues. Refused for a plugged CA (plug the new one instead) and during a rotation.
   */
  async beginRotation(): Promise<RotationState> {
    if (this.source === 'plugged') throw new MeshError(ErrorCodes.VALIDATION, 'the CA is plugged in (--ca-cert/--ca-key): rotate it by plugging in the new CA, with the old root kept in its chain file until workloads renew');
    if (this.rotation !== undefined) throw new MeshError(ErrorCodes.CONFLICT, `a root rotation is already in its ${this.rotation.phase} phase (started ${new Date(this.rotation.startedAt).toISOString()}); see skein ca status`);
    const { root, keys } = await newRoot(this.trustDomain, this.clock.now());
    writeFileAtomic(path.join(this.dir, 'next-root-key.pem'), await privateKeyPem(keys.privateKey), 0o600);
    writeFileAtomic(path.join(this.dir, 'next-root-cert.pem'), root.toString('pem'), 0o644);
    this.next = { cert: root, key: keys.privateKey };
    this.rotation = { phase: 'trust', startedAt: this.clock.now(), oldRootSerial: this.issuer.serialNumber, newRootSerial: root.serialNumber };
    this.roots = [this.issuer, root];
    this.saveRotation();
    return this.rotation;
  }

  /**
   * Trust phase -> issue phase: the new root issues from now on and comes first in the bundle;
   * the old one stays trusted until every leaf it issued has expired (oldLeavesExpireBy). Its
   * key is deleted: nothing is ever signed with it again.
   */
  switchIssuer(): RotationState {
    const r = this.rotation;
    if (r === undefined || r.phase !== 'trust' || this.next === undefined) throw new MeshError(ErrorCodes.CONFLICT, 'no root rotation in its trust phase');
    const old = this.issuer;
    writeFileAtomic(path.join(this.dir, 'previous-root-cert.pem'), old.toString('pem'), 0o644);
    writeFileAtomic(path.join(this.dir, 'root-key.pem'), fs.readFileSync(path.join(this.dir, 'next-root-key.pem'), 'utf8'), 0o600);
    writeFileAtomic(path.join(this.dir, 'root-cert.pem'), this.next.cert.toString('pem'), 0o644);
    fs.rmSync(path.join(this.dir, 'next-root-key.pem'), { force: true });
    fs.rmSync(path.join(this.dir, 'next-root-cert.pem'), { force: true });
    this.issuer = this.next.cert;
    this.issuerKey = this.next.key;
    this.next = undefined;
    this.roots = [this.issuer, old];
    const now = this.clock.now();
    this.rotation = { ...r, phase: 'issue', switchedAt: now, oldLeavesExpireBy: Math.max(now, this.issuedUntil(old.serialNumber)) };
    this.saveRotation();
    return this.rotation;
  }

  /** Issue phase -> done: the old root leaves the trust bundle. */
  finishRotation(): void {
    const r = this.rotation;
    if (r === undefined || r.phase !== 'issue') throw new MeshError(ErrorCodes.CONFLICT, r === undefined ? 'no root rotation in progress' : 'the rotation is still in its trust phase: the new root does not issue yet, so the old one cannot go');
    fs.rmSync(path.join(this.dir, 'previous-root-cert.pem'), { force: true });
    fs.rmSync(path.join(this.dir, 'rotation.json'), { force: true });
    this.roots = [this.issuer];
    this.rotation = undefined;
  }

  private saveRotation(): void {
    writeFileAtomic(path.join(this.dir, 'rotation.json'), `${JSON.stringify(this.rotation)}\n`, 0o644);
  }

  private async loadRotation(): Promise<void> {
    const file = path.join(this.dir, 'rotation.json');
    if (!fs.existsSync(file)) return;
    const r = JSON.parse(fs.readFileSync(file, 'utf8')) as RotationState;
    if (r.phase === 'trust') {
      const { issuer, key } = await loadPair(path.join(this.dir, 'next-root-cert.pem'), path.join(this.dir, 'next-root-key.pem'));
      this.next = { cert: issuer, key };
      this.roots = [this.issuer, issuer];
    } else {
      const prev = new x509.X509Certificate(fs.readFileSync(path.join(this.dir, 'previous-root-cert.pem'), 'utf8'));
      this.roots = [this.issuer, prev];
    }
    this.rotation = r;
  }

  /** The latest notAfter of a leaf the root `rootSerial` issued (persisted: it outlives restarts). */
  private issuedUntil(rootSerial: string): number {
    try { return (JSON.parse(fs.readFileSync(path.join(this.dir, 'issued-until.json'), 'utf8')) as Record<string, number>)[rootSerial] ?? 0; } catch { return 0; }
  }

  private recordIssued(notAfter: number): void {
    if (this.source === 'plugged') return;
    const file = path.join(this.dir, 'issued-until.json');
    let all: Record<string, number> = {};
    try { all = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, number>; } catch { /* first leaf */ }
    if ((all[this.issuer.serialNumber] ?? 0) >= notAfter) return;
    all[this.issuer.serialNumber] = notAfter;
    writeFileAtomic(file, `${JSON.stringify(all)}\n`, 0o644);
  }

  private static async plugged(opts: CaOptions, certFile: string, keyFile: string): Promise<CertificateAuthority> {
    const { issuer, key, chain } = await loadPair(certFile, keyFile, '--ca-cert', '--ca-key');
    const all = [issuer, ...chain];
    const root = all[all.length - 1]!;
    if (!(await root.isSelfSigned())) throw new MeshError(ErrorCodes.VALIDATION, `--ca-cert: the last certificate in ${certFile} must be the self-signed root (got "${root.subject}" issued by "${root.issuer}")`);
    for (let i = 0; i + 1 < all.length; i++) {
      if (!(await all[i]!.verify({ publicKey: all[i + 1]!.publicKey, signatureOnly: true }))) {
        throw new MeshError(ErrorCodes.VALIDATION, `--ca-cert: certificate ${i} ("${all[i]!.subject}") is not signed by the next one ("${all[i + 1]!.subject}")`);
      }
    }
    return new CertificateAuthority(opts, opts.clock, issuer, key, chain.slice(0, -1).map((c) => c.toString('pem')), [root], 'plugged');
  }

  /** The roots workloads trust, PEM. */
  trustBundlePem(): string { return this.roots.map((r) => r.toString('pem')).join('\n'); }

  /** When the issuing CA certificate expires (ms since the epoch). */
  get notAfter(): number { return this.issuer.notAfter.getTime(); }

  /** Subject of the issuing certificate. */
  get subject(): string { return this.issuer.subject; }

  /**
   * Signs a workload certificate for `identity` from `csrPem`. Refuses (naming why) a CSR that
   * cannot be parsed, is too large, is not signed by its key, has another key type, or asks for
   * any name other than exactly the identity's SPIFFE ID.
   */
  async sign(csrPem: string, identity: WorkloadIdentity, ttlMs = this.workloadTtlMs): Promise<IssuedCertificate> {
    if (identity.trustDomain !== this.trustDomain) throw new MeshError(ErrorCodes.PERMISSION_DENIED, `identity is in trust domain ${identity.trustDomain}; this CA signs for ${this.trustDomain}`);
    if (!(ttlMs >= 60_000 && ttlMs <= CA_DEFAULTS.maxWorkloadTtlMs)) throw new MeshError(ErrorCodes.VALIDATION, `ttl: must be from 1m to 2160h (90 days), got ${ttlMs}ms`);
    const csr = parseCsr(csrPem);
    if (!(await csr.verify())) throw new MeshError(ErrorCodes.VALIDATION, 'csr: its signature does not verify with its public key');
    const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
    if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') throw new MeshError(ErrorCodes.VALIDATION, `csr: the key must be ECDSA P-256, got ${alg.name ?? '?'} ${alg.namedCurve ?? ''}`.trimEnd());
    const want = spiffeId(identity);
    const asked = requestedNames(csr);
    if (asked.length !== 1 || asked[0] !== `url:${want}`) {
      throw new MeshError(ErrorCodes.PERMISSION_DENIED, `csr: asks for ${asked.length === 0 ? 'no SAN' : asked.join(', ')}; this caller may only get ${want}`);
    }
    return this.issue(csr.publicKey, [{ type: 'url', value: want }], `O=skein, CN=${identity.serviceAccount}.${identity.namespace}`, ttlMs);
  }

  /**
   * The control plane's own serving certificate for `publicKey` (its key never leaves it
   * either): the control plane's SPIFFE ID, and the DNS names and IPs clients may dial it by.
   */
  async issueServing(publicKey: CryptoKey, names: { dns: readonly string[]; ips: readonly string[] }): Promise<IssuedCertificate> {
    const spki = await x509.PublicKey.create(publicKey);
    const sans = [
      { type: 'url', value: controlPlaneSpiffeId(this.trustDomain) },
      ...names.dns.map((value) => ({ type: 'dns', value })),
      ...names.ips.map((value) => ({ type: 'ip', value })),
    ];
    return this.issue(spki, sans, `O=skein, CN=control-plane.${this.trustDomain}`, this.workloadTtlMs);
  }

  private async issue(publicKey: x509.PublicKey, sans: { type: string; value: string }[], subject: string, ttlMs: number): Promise<IssuedCertificate> {
    const now = this.clock.now();
    const notAfter = Math.min(now + ttlMs, this.notAfter);
    if (notAfter <= now) throw new MeshError(ErrorCodes.INTERNAL, `the CA certificate expired at ${new Date(this.notAfter).toISOString()}; rotate the CA`);
    const notBefore = Math.max(now - CA_DEFAULTS.backdateMs, this.issuer.notBefore.getTime());
    const sn = serial();
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: sn, subject, issuer: this.issuer.subject,
      notBefore: new Date(notBefore), notAfter: new Date(notAfter),
      signingKey: this.issuerKey, publicKey, signingAlgorithm: EC_P256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([OID_SERVER_AUTH, OID_CLIENT_AUTH]),
        new x509.SubjectAlternativeNameExtension(sans as x509.JsonGeneralNames, false),
        await x509.AuthorityKeyIdentifierExtension.create(this.issuer),
      ],
    });
    this.recordIssued(notAfter);
    return {
      spiffeId: sans[0]!.value, serial: sn,
      certChainPem: [leaf.toString('pem'), this.roots.includes(this.issuer) ? undefined : this.issuer.toString('pem'), ...this.intermediatesPem].filter((x) => x !== undefined).join('\n'),
      trustBundlePem: this.trustBundlePem(), notBefore, notAfter,
    };
  }
}

/** A root rotation: trust (the new root is trusted, the old one issues) -> issue (the new one issues, the old one is still trusted) -> done. */
export interface RotationState {
  phase: 'trust' | 'issue';
  startedAt: number;
  oldRootSerial: string;
  newRootSerial: string;
  /** Issue phase: when the new root took over. */
  switchedAt?: number;
  /** Issue phase: when the last leaf of the old root expires (the old root can go then). */
  oldLeavesExpireBy?: number;
}

/** A new self-signed root: ECDSA P-256, valid 10 years, backdated a minute. */
async function newRoot(trustDomain: string, now: number): Promise<{ root: x509.X509Certificate; keys: CryptoKeyPair }> {
  const keys = await generateKeyPair();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(), name: `O=skein, CN=skein root CA (${trustDomain}) ${new Date(now).toISOString().slice(0, 10)}`,
    notBefore: new Date(now - CA_DEFAULTS.backdateMs), notAfter: new Date(now + CA_DEFAULTS.rootValidityMs),
    keys, signingAlgorithm: EC_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { root, keys };
}

function parseCsr(pem: string): x509.Pkcs10CertificateRequest {
  if (typeof pem !== 'string' || pem.length === 0) throw new MeshError(ErrorCodes.MALFORMED_INPUT, 'csr: required, a PEM "CERTIFICATE REQUEST"');
  if (pem.length > CA_DEFAULTS.maxCsrBytes) throw new MeshError(ErrorCodes.BODY_TOO_LARGE, `csr: ${pem.length} bytes; at most ${CA_DEFAULTS.maxCsrBytes}`);
  try {
    return new x509.Pkcs10CertificateRequest(pem);
  } catch (e) {
    throw new MeshError(ErrorCodes.MALFORMED_INPUT, `csr: not a PEM PKCS#10 certificate request (${(e as Error).message})`);
  }
}

/** Every name a CSR asks for: SANs as type:value, and a non-empty subject CN counts as a DNS name. */
function requestedNames(csr: x509.Pkcs10CertificateRequest): string[] {
  const out: string[] = [];
  for (const e of csr.extensions) {
    if (e instanceof x509.SubjectAlternativeNameExtension) for (const n of e.names.toJSON()) out.push(`${n.type}:${n.value}`);
  }
  for (const cn of csr.subjectName.getField('CN')) out.push(`dns:${cn}`);
  for (const e of csr.extensions) if (e.type !== '2.5.29.17') out.push(`extension:${e.type}`);
  return out;
}

async function loadPair(certFile: string, keyFile: string, certFlag = certFile, keyFlag = keyFile): Promise<{ issuer: x509.X509Certificate; key: CryptoKey; chain: x509.X509Certificate[] }> {
  for (const [f, flag] of [[certFile, certFlag], [keyFile, keyFlag]] as const) {
    if (!fs.existsSync(f)) throw new MeshError(ErrorCodes.STORE, `${flag}: ${f} does not exist`);
  }
  const mode = fs.statSync(keyFile).mode & 0o777;
  if ((mode & 0o077) !== 0) throw new MeshError(ErrorCodes.STORE, `${keyFlag}: ${keyFile} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 ${keyFile}`);
  let certs: x509.X509Certificate[];
  try {
    certs = x509.PemConverter.decode(fs.readFileSync(certFile, 'utf8')).map((der) => new x509.X509Certificate(der));
  } catch (e) {
    throw new MeshError(ErrorCodes.VALIDATION, `${certFlag}: not PEM certificates (${(e as Error).message})`);
  }
  if (certs.length === 0) throw new MeshError(ErrorCodes.VALIDATION, `${certFlag}: no certificate in ${certFile}`);
  let key: CryptoKey;
  try {
    key = await importPrivateKeyPem(fs.readFileSync(keyFile, 'utf8'));
  } catch (e) {
    throw new MeshError(ErrorCodes.VALIDATION, `${keyFlag}: not an ECDSA P-256 PKCS#8 private key (${(e as Error).message})`);
  }
  const issuer = certs[0]!;
  const bc = issuer.getExtension(x509.BasicConstraintsExtension);
  if (bc === null || !bc.ca) throw new MeshError(ErrorCodes.VALIDATION, `${certFlag}: "${issuer.subject}" is not a CA certificate (basicConstraints CA:TRUE is required)`);
  const probe = new X509Certificate(issuer.toString('pem'));
  if (!(await matches(key, issuer))) throw new MeshError(ErrorCodes.VALIDATION, `${keyFlag}: the key does not belong to ${certFlag} ("${probe.subject.replace(/\n/g, ', ')}")`);
  return { issuer, key, chain: certs.slice(1) };
}

/** Whether `key` is the private half of `cert`'s public key: sign a probe and verify it. */
async function matches(key: CryptoKey, cert: x509.X509Certificate): Promise<boolean> {
  const { webcrypto } = await import('node:crypto');
  const data = randomBytes(32);
  const sig = await webcrypto.subtle.sign(EC_P256, key, data);
  const pub = await cert.publicKey.export(EC_P256, ['verify']);
  return webcrypto.subtle.verify(EC_P256, pub as never, sig, data);
}

/** A positive 128-bit serial, hex. */
function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

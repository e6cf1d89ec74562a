/**
 * `skein cert issue|renew`: a workload certificate written to files, for workloads without a
 * sidecar (proxyless gRPC clients with a file_watcher certificate provider, Envoy, scripts).
 *
 * - issue: a key made here (ECDSA P-256), a CSR for the SPIFFE ID to
 *   skein.identity.v1.Certificates/Sign on the control plane's TLS xDS port, authenticated by a
 *   join token (--token-file, or one minted now through the API with the admin token: for
 *   exactly that identity, single-use, 10 minutes).
 * - renew: the certificate in DIR authenticates (TLS client certificate; no token), a fresh key
 *   each time. --loop keeps it renewed (RotatingIdentity: half the lifetime ±10%, backoff,
 *   warnings in the last 10%) until SIGTERM.
 * The control plane is verified by its trust bundle and its SPIFFE ID, as the sidecar does
 * (shared/src/grpc/certificate-client.ts). Files: DIR/key.pem (0600; DIR made 0700),
 * DIR/cert-chain.pem (leaf first), DIR/ca.pem (the trust bundle), each replaced atomically;
 * nothing is written unless a certificate was issued.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { API_FLAG, optStr, str } from '../../../shared/src/cli/args';
import type { FlagSpec, Parsed } from '../../../shared/src/cli/args';
import type { Command } from '../../../shared/src/cli/command';
import { parseDuration } from '../../../shared/src/config/duration';
import { systemClock } from '../../../shared/src/clock';
import { createLogger } from '../../../shared/src/log';
import { writeFileAtomic } from '../../../shared/src/atomic-file';
import { checkSegment, checkTrustDomain, DEFAULT_NAMESPACE, DEFAULT_TRUST_DOMAIN, parseSpiffeId, spiffeId } from '../../../shared/src/identity/spiffe';
import { RotatingIdentity } from '../../../shared/src/identity/rotating-identity';
import type { IssuedIdentity } from '../../../shared/src/identity/rotating-identity';
import { x509 } from '../../../shared/src/identity/x509';
import { controlPlaneTls, readJoinTokenFile, readTrustBundleFile, requestCertificate } from '../../../shared/src/grpc/certificate-client';
import { ADMIN_TOKEN_FLAG, API_CA_FLAG } from './admin-credential';
import { client } from './config-commands';

export const CERT_FILES = { key: 'key.pem', chain: 'cert-chain.pem', ca: 'ca.pem' } as const;
/** A join token minted by `cert issue` (no --token-file) lives this long, and is single-use. */
const MINTED_TOKEN_TTL = '10m';

const DEFAULT_XDS_CA_FILE = '<$SKEIN_DATA_DIR or ./.skein-data>/ca/trust-bundle.pem';

const FLAGS: FlagSpec[] = [
  { name: 'service', type: 'string', value: 'NAME', help: 'issue: the service the certificate is for (required)' },
  { name: 'namespace', type: 'string', value: 'NS', default: DEFAULT_NAMESPACE, help: 'issue: the namespace of the identity' },
  { name: 'service-account', type: 'string', value: 'SA', help: 'issue: the service account of the identity (default: --service)' },
  { name: 'trust-domain', type: 'string', value: 'DOMAIN', default: DEFAULT_TRUST_DOMAIN, help: 'issue: the mesh\'s trust domain (the control plane\'s --trust-domain); renew reads it from the certificate' },
  { name: 'out', type: 'string', value: 'DIR', help: 'issue: where to write key.pem (0600), cert-chain.pem and ca.pem; made 0700 if missing (required)' },
  { name: 'token-file', type: 'string', value: 'FILE', help: 'issue: a join token for exactly this identity (skein token create --service NAME > FILE) (default: mint a single-use one valid 10m through --api, with the admin token)' },
  { name: 'dir', type: 'string', value: 'DIR', help: 'renew: the directory cert issue wrote (required)' },
  { name: 'loop', type: 'boolean', help: 'renew: keep running, renewing at half the lifetime ±10%, retrying with backoff, warning each minute in the last 10%; exit 0 on SIGTERM (default: renew once)' },
  { name: 'ttl', type: 'string', value: 'DURATION', help: 'the certificate lifetime to ask for, 1m to 2160h, never past the CA\'s expiry (default: the control plane\'s --workload-cert-ttl)' },
  { name: 'xds', type: 'string', value: 'HOST:PORT', env: 'SKEIN_XDS', default: '127.0.0.1:18000', help: 'the control plane\'s TLS xDS port, where certificates are signed' },
  { name: 'xds-ca-file', type: 'string', value: 'FILE', help: `PEM roots that verify the control plane (default: $SKEIN_XDS_CA_FILE, else for issue ${DEFAULT_XDS_CA_FILE}, for renew DIR/ca.pem)` },
  API_FLAG, ADMIN_TOKEN_FLAG, API_CA_FLAG,
  { name: 'log-level', type: 'string', value: 'LEVEL', env: 'SKEIN_LOG_LEVEL', default: 'info', help: 'renew --loop: JSON logs on stderr' },
];

export const cert: Command = {
  spec: {
    name: 'cert', usage: 'cert issue --service NAME --out DIR [flags] | cert renew --dir DIR [--loop] [flags]',
    summary: 'Workload certificates in files, for workloads without a sidecar (proxyless gRPC, Envoy).\n' +
      'issue makes a key here and gets a certificate for spiffe://TD/ns/NS/sa/SA with a join token; renew gets a new one (and a new key)\n' +
      'with the current certificate. Prints the SPIFFE ID, serial and expiry. Nothing is written unless a certificate was issued.',
    flags: FLAGS,
    more: 'Examples:\n  skein cert issue --service reviews --out /etc/skein/reviews\n  skein token create --service reviews > reviews.token && skein cert issue --service reviews --token-file reviews.token --out certs\n' +
      '  skein cert renew --dir /etc/skein/reviews --loop',
  },
  async run(p, out) {
    const [verb, ...rest] = p.positionals;
    if (rest.length === 0 && verb === 'issue') return issue(p, out);
    if (rest.length === 0 && verb === 'renew') return p.values['loop'] === true ? renewLoop(p, out) : renewOnce(p, out);
    throw new MeshError(ErrorCodes.VALIDATION, 'expected: cert issue --service NAME --out DIR | cert renew --dir DIR [--loop]');
  },
};

async function issue(p: Parsed, out: (s: string) => void): Promise<number> {
  const service = required(p, 'service', 'the service the certificate is for');
  const dir = required(p, 'out', 'the directory to write key.pem, cert-chain.pem and ca.pem to');
  const identity = {
    trustDomain: checkTrustDomain(str(p, 'trust-domain'), '--trust-domain'),
    namespace: checkSegment(str(p, 'namespace'), '--namespace'),
    serviceAccount: checkSegment(optStr(p, 'service-account') ?? service, '--service-account'),
  };
  checkSegment(service, '--service');
  const ttlMs = ttlFlag(p);
  const caFile = xdsCaFile(p) ?? path.join(process.env['SKEIN_DATA_DIR'] ?? './.skein-data', 'ca', 'trust-bundle.pem');
  const caPem = readTrustBundleFile(caFile, '--xds-ca-file');
  const tokenFile = optStr(p, 'token-file');
  const token = tokenFile !== undefined ? readJoinTokenFile(tokenFile, '--token-file') : await mintToken(p, service, identity.namespace, identity.serviceAccount);
  const id = await requestCertificate({
    server: str(p, 'xds'), spiffeId: spiffeId(identity), credentials: controlPlaneTls(caPem, identity.trustDomain), token,
    ...(ttlMs === undefined ? {} : { ttlMs }),
    how: tokenFile !== undefined ? `with the join token from --token-file ${tokenFile}` : 'with a join token minted through --api',
  });
  writeCertDir(dir, id);
  out(summary(id, dir));
  return 0;
}

/** A single-use join token for exactly this identity, valid 10 minutes, minted with the admin token. */
async function mintToken(p: Parsed, service: string, namespace: string, serviceAccount: string): Promise<string> {
  try {
    const t = await client(p).call<{ token: string }>('POST', '/v1/tokens', { text: JSON.stringify({ service, namespace, serviceAccount, ttl: MINTED_TOKEN_TTL, reusable: false }), type: 'application/json' });
    return t.token;
  } catch (e) {
    if (e instanceof MeshError) throw new MeshError(e.code, `no --token-file, so a join token is minted through the API, which failed: ${e.message}`);
    throw e;
  }
}

async function renewOnce(p: Parsed, out: (s: string) => void): Promise<number> {
  const dir = required(p, 'dir', 'the directory cert issue wrote');
  const cur = readCertDir(dir);
  const id = await renewWith(p, dir, cur);
  writeCertDir(dir, id);
  out(summary(id, dir));
  return 0;
}

async function renewLoop(p: Parsed, out: (s: string) => void): Promise<number> {
  const dir = required(p, 'dir', 'the directory cert issue wrote');
  const level = str(p, 'log-level');
  const log = createLogger('skein-cert', level);
  const cur = readCertDir(dir);
  ttlFlag(p);
  const rot: RotatingIdentity = new RotatingIdentity({ what: 'workload', clock: systemClock, log, issue: () => renewWith(p, dir, rot.current) });
  rot.resume(cur);
  rot.onChange((id) => {
    writeCertDir(dir, id);
    out(`renewed: serial ${id.serial}, expires ${certTime(id.notAfter)}`);
  });
  // The rotation's timers do not keep the process alive; this does, until a signal. The
  // handlers are in place before the line that says it is running.
  const keepAlive = setInterval(() => undefined, 3600_000);
  const stopped = new Promise<void>((resolve) => {
    const stop = (sig: string) => { log.info({ signal: sig }, 'stopping'); resolve(); };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  out(`${summary(cur, dir)}\nrenewing at about half its lifetime until SIGTERM`);
  await stopped;
  clearInterval(keepAlive);
  rot.close();
  log.flush();
  return 0;
}

/** A new certificate (and key) for the identity of `cur`, authenticated by `cur`. */
function renewWith(p: Parsed, dir: string, cur: IssuedIdentity): Promise<IssuedIdentity> {
  const { trustDomain } = parseSpiffeId(cur.spiffeId, `${dir}/${CERT_FILES.chain}`);
  const caFile = xdsCaFile(p);
  const caPem = caFile === undefined ? cur.trustBundlePem : readTrustBundleFile(caFile, '--xds-ca-file');
  const ttlMs = ttlFlag(p);
  return requestCertificate({
    server: str(p, 'xds'), spiffeId: cur.spiffeId, credentials: controlPlaneTls(caPem, trustDomain, cur),
    ...(ttlMs === undefined ? {} : { ttlMs }), how: `renewing with the certificate in ${dir} (serial ${cur.serial})`,
  });
}

/** The certificate, key and trust bundle in DIR; refuses an expired certificate (it cannot renew itself). */
function readCertDir(dir: string): IssuedIdentity {
  const read = (name: string): string => {
    try { return fs.readFileSync(path.join(dir, name), 'utf8'); } catch (e) {
      throw new MeshError(ErrorCodes.VALIDATION, `--dir: cannot read ${path.join(dir, name)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (write the directory with skein cert issue --out ${dir})`);
    }
  };
  const keyPem = read(CERT_FILES.key);
  const certChainPem = read(CERT_FILES.chain);
  const trustBundlePem = read(CERT_FILES.ca);
  let leaf: x509.X509Certificate;
  try {
    const der = x509.PemConverter.decode(certChainPem)[0];
    if (der === undefined) throw new Error('no PEM certificate');
    leaf = new x509.X509Certificate(der);
  } catch (e) {
    throw new MeshError(ErrorCodes.VALIDATION, `--dir: ${path.join(dir, CERT_FILES.chain)}: not a PEM certificate chain (${(e as Error).message})`);
  }
  const uris = (leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? []).filter((n) => n.type === 'url').map((n) => n.value);
  if (uris.length !== 1) throw new MeshError(ErrorCodes.VALIDATION, `--dir: ${path.join(dir, CERT_FILES.chain)}: the certificate carries ${uris.length} URI names; a workload certificate has exactly one SPIFFE ID`);
  const id: IssuedIdentity = { spiffeId: uris[0]!, serial: leaf.serialNumber, keyPem, certChainPem, trustBundlePem, notBefore: leaf.notBefore.getTime(), notAfter: leaf.notAfter.getTime() };
  parseSpiffeId(id.spiffeId, `${path.join(dir, CERT_FILES.chain)}`);
  if (systemClock.now() >= id.notAfter) {
    throw new MeshError(ErrorCodes.VALIDATION, `--dir: the certificate of ${id.spiffeId} in ${dir} expired at ${new Date(id.notAfter).toISOString()}; an expired certificate cannot renew itself: get a new one with skein cert issue --out ${dir}`);
  }
  return id;
}

/**
 * Writes the trust bundle, then the key (0600), then the chain, each atomically (a rename). The
 * key goes before the chain: a reader that loads both between those two renames gets a pair that
 * does not match and must load them again (a file watcher: at its next refresh).
 */
export function writeCertDir(dir: string, id: IssuedIdentity): void {
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700); // mkdir's mode is masked by the umask
  }
  writeFileAtomic(path.join(dir, CERT_FILES.ca), ensureNewline(id.trustBundlePem), 0o644);
  writeFileAtomic(path.join(dir, CERT_FILES.key), ensureNewline(id.keyPem), 0o600);
  writeFileAtomic(path.join(dir, CERT_FILES.chain), ensureNewline(id.certChainPem), 0o644);
}

function summary(id: IssuedIdentity, dir: string): string {
  const abs = path.resolve(dir);
  return [
    `spiffe id  ${id.spiffeId}`,
    `serial     ${id.serial}`,
    `expires    ${certTime(id.notAfter)}`,
    `files      ${path.join(abs, CERT_FILES.key)} (0600), ${path.join(abs, CERT_FILES.chain)}, ${path.join(abs, CERT_FILES.ca)}`,
  ].join('\n');
}

/** --xds-ca-file, else $SKEIN_XDS_CA_FILE; undefined for the command's own default. */
function xdsCaFile(p: Parsed): string | undefined {
  const env = process.env['SKEIN_XDS_CA_FILE'];
  return optStr(p, 'xds-ca-file') ?? (env === undefined || env === '' ? undefined : env);
}

/** A time as the certificate holds it: X.509 times have whole seconds. */
function certTime(ms: number): string { return new Date(Math.floor(ms / 1000) * 1000).toISOString(); }

function required(p: Parsed, name: string, what: string): string {
  const v = optStr(p, name);
  if (v === undefined || v === '') throw new MeshError(ErrorCodes.VALIDATION, `--${name} is required: ${what}`);
  return v;
}

function ttlFlag(p: Parsed): number | undefined {
  const v = optStr(p, 'ttl');
  if (v === undefined) return undefined;
  const ms = parseDuration(v);
  if (typeof ms !== 'number') throw new MeshError(ErrorCodes.VALIDATION, `--ttl: ${ms.error}`);
  if (ms < 60_000 || ms > 2160 * 3600_000) throw new MeshError(ErrorCodes.VALIDATION, `--ttl: must be from 1m to 2160h (90 days), got "${v}"`);
  return ms;
}

function ensureNewline(s: string): string { return s.endsWith('\n') ? s : `${s}\n`; }

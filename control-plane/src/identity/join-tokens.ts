/**
 * Join tokens: how a workload proves which service it is before it has a certificate.
 * `skein token create --service reviews` mints one; the sidecar presents it (`--token-file`) with
 * its first CSR, and the CA signs only the identity the token is bound to.
 *
 * Only a SHA-256 of each token is stored (<dataDir>/join-tokens.json, 0600), so the file and any
 * dump of it cannot be replayed. A token is single-use unless created reusable, and expires
 * (1h by default, at most 30 days).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../../../shared/src/clock';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { writeFileAtomic } from '../../../shared/src/atomic-file';
import { checkSegment, DEFAULT_NAMESPACE } from '../../../shared/src/identity/spiffe';

export const TOKEN_DEFAULTS = { ttlMs: 3600_000, maxTtlMs: 30 * 24 * 3600_000, minTtlMs: 1000 } as const;
const PREFIX = 'skein-jt.';

/** What a token allows: one service's identity. */
export interface TokenBinding {
  service: string;
  namespace: string;
  serviceAccount: string;
}

/** A stored token: never the token itself. `id` is a short prefix of its hash, for listing and revoking. */
export interface TokenRecord extends TokenBinding {
  id: string;
  hash: string;
  createdAt: number;
  expiresAt: number;
  reusable: boolean;
  usedAt?: number;
}

export interface CreateTokenRequest {
  service: string;
  namespace?: string;
  serviceAccount?: string;
  ttlMs?: number;
  reusable?: boolean;
}

export class JoinTokenStore {
  private readonly byHash = new Map<string, TokenRecord>();

  private constructor(private readonly file: string, private readonly clock: Clock) {}

  static open(dataDir: string, clock: Clock): JoinTokenStore {
    const store = new JoinTokenStore(path.join(dataDir, 'join-tokens.json'), clock);
    if (fs.existsSync(store.file)) {
      let parsed: { tokens?: TokenRecord[] };
      try {
        parsed = JSON.parse(fs.readFileSync(store.file, 'utf8')) as { tokens?: TokenRecord[] };
      } catch (e) {
        throw new MeshError(ErrorCodes.STORE, `cannot read ${store.file}: ${(e as Error).message}`);
      }
      for (const t of parsed.tokens ?? []) store.byHash.set(t.hash, t);
    }
    return store;
  }

  /** Mints a token; the answer is the only place the token itself ever appears. */
  create(req: CreateTokenRequest): { token: string; record: TokenRecord } {
    const service = checkSegment(req.service, 'service');
    const namespace = checkSegment(req.namespace ?? DEFAULT_NAMESPACE, 'namespace');
    const serviceAccount = checkSegment(req.serviceAccount ?? service, 'serviceAccount');
    const ttlMs = req.ttlMs ?? TOKEN_DEFAULTS.ttlMs;
    if (!(ttlMs >= TOKEN_DEFAULTS.minTtlMs && ttlMs <= TOKEN_DEFAULTS.maxTtlMs)) throw new MeshError(ErrorCodes.VALIDATION, `ttl: must be from 1s to 720h (30 days), got ${ttlMs}ms`);
    const token = `${PREFIX}${randomBytes(32).toString('base64url')}`;
    const hash = hashOf(token);
    const now = this.clock.now();
    const record: TokenRecord = { id: hash.slice(0, 12), hash, service, namespace, serviceAccount, createdAt: now, expiresAt: now + ttlMs, reusable: req.reusable === true };
    this.prune();
    this.byHash.set(hash, record);
    this.save();
    return { token, record };
  }

  /**
   * Checks a presented token without using it up: unknown, expired and already-used tokens are
   * refused with the reason (the token itself is never echoed).
   */
  check(token: string): TokenBinding {
    const rec = this.find(token);
    return { service: rec.service, namespace: rec.namespace, serviceAccount: rec.serviceAccount };
  }

  /** check(), then, unless the token is reusable, uses it up. */
  redeem(token: string): TokenBinding {
    const rec = this.find(token);
    if (!rec.reusable) {
      rec.usedAt = this.clock.now();
      this.save();
    }
    return { service: rec.service, namespace: rec.namespace, serviceAccount: rec.serviceAccount };
  }

  private find(token: string): TokenRecord {
    if (typeof token !== 'string' || !token.startsWith(PREFIX) || token.length > 128) throw new MeshError(ErrorCodes.UNAUTHENTICATED, 'join token: malformed (expected skein-jt.…)');
    const rec = this.byHash.get(hashOf(token));
    if (rec === undefined) throw new MeshError(ErrorCodes.UNAUTHENTICATED, 'join token: unknown (revoked, or from another control plane)');
    const now = this.clock.now();
    if (now >= rec.expiresAt) throw new MeshError(ErrorCodes.UNAUTHENTICATED, `join token ${rec.id}: expired at ${new Date(rec.expiresAt).toISOString()}`);
    if (!rec.reusable && rec.usedAt !== undefined) throw new MeshError(ErrorCodes.UNAUTHENTICATED, `join token ${rec.id}: already used at ${new Date(rec.usedAt).toISOString()} (single-use; create a --reusable one for many instances)`);
    return rec;
  }

  list(): TokenRecord[] { return [...this.byHash.values()].sort((a, b) => a.createdAt - b.createdAt); }

  revoke(id: string): void {
    const rec = [...this.byHash.values()].find((r) => r.id === id);
    if (rec === undefined) throw new MeshError(ErrorCodes.NOT_FOUND, `no join token with id ${id}`);
    this.byHash.delete(rec.hash);
    this.save();
  }

  /** Expired tokens and used single-use ones are dropped a day after, so the file stays small. */
  private prune(): void {
    const cutoff = this.clock.now() - 24 * 3600_000;
    for (const [h, r] of this.byHash) if (r.expiresAt < cutoff || (r.usedAt !== undefined && !r.reusable && r.usedAt < cutoff)) this.byHash.delete(h);
  }

  private save(): void {
    writeFileAtomic(this.file, `${JSON.stringify({ tokens: this.list() }, null, 1)}\n`, 0o600);
  }
}

function hashOf(token: string): string { return createHash('sha256').update(token).digest('hex'); }

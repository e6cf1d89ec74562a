/**
 * --store, --store-bucket and --store-replicas (its bounds): which NATS servers the control plane shares its state through, and
 * the names it uses there. Parsing only (no client is loaded), so every CLI command stays quick.
 */
import { ErrorCodes, MeshError } from '../../../shared/src/errors';

export interface NatsStoreTarget {
  /** host:port of each server, without credentials. */
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
  /** The servers as logs show them: nats://host:port,... with any credential replaced by ***. */
  redacted: string;
}

/** --store-replicas' most: JetStream's own limit on a stream's replicas. */
export const MAX_STORE_REPLICAS = 5;

const BUCKET = /^[A-Za-z0-9_-]{1,64}$/;

/** Parses --store's value. Throws MeshError(VALIDATION) naming --store, never echoing a credential. */
export function parseStoreUrl(value: string): NatsStoreTarget {
  const parts = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (parts.length === 0) throw new MeshError(ErrorCodes.VALIDATION, '--store: empty; use nats://HOST:PORT[,HOST2:PORT], or leave it out for the embedded file store');
  const servers: string[] = [];
  let user: string | undefined;
  let pass: string | undefined;
  let token: string | undefined;
  for (const [i, raw] of parts.entries()) {
    const withScheme = i > 0 && !raw.includes('://') ? `nats://${raw}` : raw;
    let u: URL;
    try { u = new URL(withScheme); } catch { throw new MeshError(ErrorCodes.VALIDATION, `--store: server ${i + 1} is not a URL; use nats://HOST:PORT[,HOST2:PORT]`); }
    if (u.protocol !== 'nats:') throw new MeshError(ErrorCodes.VALIDATION, `--store: server ${i + 1} has scheme "${u.protocol.replace(/:$/, '')}"; only nats:// is supported (the embedded file store is the default: leave --store out)`);
    if (u.hostname === '') throw new MeshError(ErrorCodes.VALIDATION, `--store: server ${i + 1} names no host; use nats://HOST:PORT`);
    if ((u.pathname !== '' && u.pathname !== '/') || u.search !== '' || u.hash !== '') throw new MeshError(ErrorCodes.VALIDATION, `--store: server ${i + 1} has a path or query; use nats://HOST:PORT (the bucket is --store-bucket)`);
    const port = u.port === '' ? 4222 : Number(u.port);
    if (u.username !== '' && u.password !== '') { user = decodeURIComponent(u.username); pass = decodeURIComponent(u.password); }
    else if (u.username !== '') token = decodeURIComponent(u.username);
    servers.push(`${u.hostname}:${port}`);
  }
  const hidden = user !== undefined ? '***:***@' : token !== undefined ? '***@' : '';
  return { servers, ...(user === undefined ? {} : { user, pass: pass! }), ...(token === undefined ? {} : { token }), redacted: servers.map((s) => `nats://${hidden}${s}`).join(',') };
}

/** Checks --store-bucket: a JetStream name part (letters, digits, - and _). */
export function checkBucket(bucket: string): string {
  if (!BUCKET.test(bucket)) throw new MeshError(ErrorCodes.VALIDATION, `--store-bucket: "${bucket.slice(0, 80)}" must be 1 to 64 letters, digits, - or _`);
  return bucket;
}

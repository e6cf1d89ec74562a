/**
 * The admin credential for the SRE API: a bearer token the control plane writes to
 * <dataDir>/admin-token (0600) at first start, and keeps across restarts. The CLI reads it from
 * there (or from SKEIN_TOKEN); every change through the API must present it as
 * `Authorization: Bearer <token>`. Only its SHA-256 is held in memory for comparison, and the
 * comparison takes the same time whatever the guess.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { writeFileAtomic } from '../../../shared/src/atomic-file';

export const ADMIN_TOKEN_FILE = 'admin-token';
const PREFIX = 'skein-admin.';

export class AdminToken {
  private constructor(private readonly hash: Buffer, readonly file: string) {}

  /** Loads <dataDir>/admin-token, or creates it (0600). Refuses a token file others can read. */
  static open(dataDir: string): AdminToken {
    const file = path.join(dataDir, ADMIN_TOKEN_FILE);
    if (!fs.existsSync(file)) {
      fs.mkdirSync(dataDir, { recursive: true });
      writeFileAtomic(file, `${PREFIX}${randomBytes(32).toString('base64url')}\n`, 0o600);
    }
    const mode = fs.statSync(file).mode & 0o777;
    if ((mode & 0o077) !== 0) throw new MeshError(ErrorCodes.STORE, `${file} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 ${file}`);
    const token = fs.readFileSync(file, 'utf8').trim();
    if (!token.startsWith(PREFIX) || token.length < PREFIX.length + 32) throw new MeshError(ErrorCodes.STORE, `${file} does not hold an admin token (expected ${PREFIX}…); delete it to have a new one made`);
    return new AdminToken(digest(token), file);
  }

  /** Whether an Authorization header value carries this token. */
  accepts(authorization: string | undefined): boolean {
    if (authorization === undefined || authorization.length > 512) return false;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return m !== null && timingSafeEqual(digest(m[1]!), this.hash);
  }
}

function digest(s: string): Buffer { return createHash('sha256').update(s).digest(); }

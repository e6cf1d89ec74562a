/**
 * Where the CLI finds the admin token for API changes, in order: SKEIN_TOKEN; the file named by
 * --admin-token-file; <$SKEIN_DATA_DIR or ./.skein-data>/admin-token (the control plane writes it
 * there at first start). None found: reads still work, and a change is refused by the API with
 * a message that says where the token is.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { FlagSpec, Parsed } from '../../../shared/src/cli/args';
import { optStr } from '../../../shared/src/cli/args';
import { ADMIN_TOKEN_FILE } from '../identity/admin-token';

export const ADMIN_TOKEN_FLAG: FlagSpec = {
  name: 'admin-token-file', type: 'string', value: 'FILE',
  help: `the admin token for changes (default: $SKEIN_TOKEN, else <$SKEIN_DATA_DIR or ./.skein-data>/${ADMIN_TOKEN_FILE} if it exists)`,
};

export function adminToken(p: Parsed): string | undefined {
  const env = process.env.SKEIN_TOKEN;
  if (env !== undefined && env.trim() !== '') return env.trim();
  const named = optStr(p, 'admin-token-file');
  if (named !== undefined) {
    try { return fs.readFileSync(named, 'utf8').trim(); } catch (e) { throw new MeshError(ErrorCodes.NOT_FOUND, `--admin-token-file: cannot read ${named}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
  }
  const file = path.join(process.env.SKEIN_DATA_DIR ?? './.skein-data', ADMIN_TOKEN_FILE);
  try { return fs.readFileSync(file, 'utf8').trim(); } catch { return undefined; }
}

export const API_CA_FLAG: FlagSpec = {
  name: 'ca-file', type: 'string', value: 'FILE', env: 'SKEIN_CA_FILE',
  help: 'PEM roots that verify the API\'s certificate (default: <$SKEIN_DATA_DIR or ./.skein-data>/ca/trust-bundle.pem, which the control plane writes)',
};

/** The mesh's roots to verify the API with: --ca-file / SKEIN_CA_FILE, else the local data dir's trust bundle, else none. */
export function apiTrust(p: Parsed): string | undefined {
  const named = optStr(p, 'ca-file');
  if (named !== undefined) {
    try { return fs.readFileSync(named, 'utf8'); } catch (e) { throw new MeshError(ErrorCodes.NOT_FOUND, `--ca-file: cannot read ${named}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
  }
  try { return fs.readFileSync(path.join(process.env.SKEIN_DATA_DIR ?? './.skein-data', 'ca', 'trust-bundle.pem'), 'utf8'); } catch { return undefined; }
}

import type * as http from 'node:http';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';

/** Reads a request body up to `limit` bytes; past that it fails with BODY_TOO_LARGE. */
export async function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  // destroyOnReturn false: stopping early must not reset the connection (see discardBody).
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.includes('\uFFFD')) throw new MeshError(ErrorCodes.MALFORMED_INPUT, 'body: is not valid UTF-8');
  return text;
}

/** Most bytes of an over-limit body that are read and dropped after the 413. */
const DISCARD_LIMIT = 64 * 1024 * 1024;

/**
 * After a 413, reads and drops the rest of the request body. Closing a connection with request
 * bytes still unread makes the kernel reset it, and the client then sees EPIPE / ECONNRESET
 * instead of the 413 and its message. Past DISCARD_LIMIT the connection is closed anyway.
 */
export function discardBody(req: http.IncomingMessage): void {
  let dropped = 0;
  req.on('data', (chunk: Buffer) => { dropped += chunk.length; if (dropped > DISCARD_LIMIT) req.socket.destroy(); });
  req.resume();
}

function tooLarge(limit: number): MeshError {
  return new MeshError(ErrorCodes.BODY_TOO_LARGE, `body: exceeds the limit of ${limit} bytes (control-plane flag --max-body-bytes); split the config into several applies`);
}

export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') throw new MeshError(ErrorCodes.MALFORMED_INPUT, 'body: is empty; expected a JSON object');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new MeshError(ErrorCodes.MALFORMED_INPUT, `body: malformed JSON: ${(e as Error).message}`);
  }
}

const YAML_OR_JSON = /^(application\/(json|yaml|x-yaml)|text\/(yaml|x-yaml|plain))\s*(;|$)/i;

/** Config bodies are YAML or JSON; anything else is refused before it is read. */
export function checkConfigMediaType(req: http.IncomingMessage): void {
  const ct = req.headers['content-type'];
  if (ct !== undefined && !YAML_OR_JSON.test(ct)) {
    throw new MeshError(ErrorCodes.UNSUPPORTED, `content-type ${ct} is not supported; send application/yaml or application/json`);
  }
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** Query flags: ?dryRun, ?dryRun=true and ?dryRun=1 are true; =false and =0 are false. */
export function flag(url: URL, name: string): boolean {
  const v = url.searchParams.get(name);
  if (v === null) return false;
  if (v === '' || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new MeshError(ErrorCodes.VALIDATION, `query parameter ${name}: must be true or false, got "${v}"`, { details: [{ resource: '', path: `query.${name}`, message: 'must be true or false' }] });
}

export function intParam(value: string | null, name: string): number | undefined {
  if (value === null) return undefined;
  if (!/^\d{1,9}$/.test(value)) throw new MeshError(ErrorCodes.VALIDATION, `${name}: must be a non-negative integer, got "${value}"`, { details: [{ resource: '', path: name, message: 'must be a non-negative integer' }] });
  return Number(value);
}

import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { FieldIssue } from '../../../shared/src/errors';

/** A thin client for the SRE API. API errors become MeshErrors carrying the API's own message. */
export class ApiClient {
  /** @param timeoutMs how long one call may take (default 30s; longer for a server-side wait) */
  /** @param token the admin token, sent as a bearer credential (needed for changes) */
  constructor(private readonly base: string, private readonly timeoutMs = 30_000, private readonly token?: string) {
    try { new URL(base); } catch { throw new MeshError(ErrorCodes.VALIDATION, `--api: "${base}" is not a URL, e.g. http://127.0.0.1:18001`); }
  }

  async call<T>(method: string, path: string, body?: { text: string; type: string }, headers: Record<string, string> = {}): Promise<T> {
    const url = new URL(path, this.base);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { ...headers, ...(body ? { 'content-type': body.type } : {}), ...(this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }) },
        ...(body ? { body: body.text } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new MeshError(ErrorCodes.INTERNAL, `cannot reach the control plane API at ${this.base}: ${cause?.code ?? cause?.message ?? (e as Error).message} (set --api or SKEIN_API)`);
    }
    const text = await res.text();
    let json: unknown;
    try { json = JSON.parse(text); } catch { throw new MeshError(ErrorCodes.PROTOCOL, `${method} ${url.pathname}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`); }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string; details?: FieldIssue[] } }).error;
      const code = (Object.values(ErrorCodes) as string[]).includes(err?.code ?? '') ? err!.code as MeshError['code'] : ErrorCodes.INTERNAL;
      throw new MeshError(code, err?.message ?? `HTTP ${res.status}`, { details: err?.details ?? [] });
    }
    return json as T;
  }
}

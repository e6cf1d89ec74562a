import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { fetchTrusting } from '../../../shared/src/identity/api-trust';
import type { ApiResponse } from '../../../shared/src/identity/api-trust';
import type { FieldIssue } from '../../../shared/src/errors';

/** A thin client for the SRE API. API errors become MeshErrors carrying the API's own message. */
export class ApiClient {
  /** @param timeoutMs how long one call may take (default 30s; longer for a server-side wait) */
  /** @param token the admin token, sent as a bearer credential (needed for changes) */
  /** @param caPem the mesh's roots, to verify the API's certificate (https) */
  constructor(private readonly base: string, private readonly timeoutMs = 30_000, private readonly token?: string, private readonly caPem?: string) {
    try { new URL(base); } catch { throw new MeshError(ErrorCodes.VALIDATION, `--api: "${base}" is not a URL, e.g. https://127.0.0.1:18001`); }
  }

  async call<T>(method: string, path: string, body?: { text: string; type: string }, headers: Record<string, string> = {}): Promise<T> {
    const url = new URL(path, this.base);
    let res: ApiResponse;
    try {
      res = await fetchTrusting(url, {
        method,
        headers: { ...headers, ...(body ? { 'content-type': body.type } : {}), ...(this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }) },
        ...(body ? { body: body.text } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      }, this.caPem);
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e as Error).message;
      const hint = /CERT|SELF_SIGNED|certificate/i.test(why) ? ' (the API is TLS from the mesh CA: give its trust bundle with --ca-file or SKEIN_CA_FILE, e.g. DATA_DIR/ca/trust-bundle.pem)' : ' (set --api or SKEIN_API)';
      throw new MeshError(ErrorCodes.INTERNAL, `cannot reach the control plane API at ${this.base}: ${why}${hint}`);
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

/**
 * HTTPS to a skein control plane's SRE API, trusting the mesh's roots (not the system's): one
 * undici Agent per set of roots, and fetch through it. The API's certificate names the control
 * plane's loopback addresses, localhost and control-plane.skein (and any --xds-san), so the
 * ordinary host name check applies.
 */
import { Agent, fetch as undiciFetch } from 'undici';

const agents = new Map<string, Agent>();

/** An Agent that verifies servers against `caPem` (cached per bundle). */
export function trustingAgent(caPem: string): Agent {
  let a = agents.get(caPem);
  if (a === undefined) {
    a = new Agent({ connect: { ca: caPem } });
    agents.set(caPem, a);
  }
  return a;
}

export type ApiResponse = Awaited<ReturnType<typeof undiciFetch>>;

/** fetch, verifying an https:// server against `caPem` when given (plain http:// is unchanged). */
export function fetchTrusting(url: string | URL, init: Parameters<typeof undiciFetch>[1] = {}, caPem?: string): Promise<ApiResponse> {
  return undiciFetch(url, caPem === undefined ? init : { ...init, dispatcher: trustingAgent(caPem) });
}

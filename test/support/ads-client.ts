import { decodeAny } from '../../shared/src/xds/protos';
import { RawStreamClient, testNode } from './raw-stream-client';
import type { RawTls } from './raw-stream-client';
import type { DiscoveryRequest, DiscoveryResponse } from '../../control-plane/src/discovery/ads-stream';

/**
 * A raw state-of-the-world ADS client for protocol tests: sends exactly the DiscoveryRequests a
 * test writes and queues every DiscoveryResponse, so a test can assert the server's answers one by one.
 */
export class RawAdsClient extends RawStreamClient<DiscoveryRequest, DiscoveryResponse> {
  /** Plaintext by default (a control plane's --xds-insecure-listen port); `tls` for its TLS port. */
  constructor(target: string, readonly nodeId: string, tls?: RawTls) {
    super(target, 'StreamAggregatedResources', tls);
  }

  /** The first request on a stream: carries the node. */
  subscribe(typeUrl: string, names: string[] = [], extra: Partial<DiscoveryRequest> = {}): void {
    this.send({ node: testNode(this.nodeId), type_url: typeUrl, resource_names: names, ...extra });
  }

  ack(r: DiscoveryResponse, names: string[] = []): void {
    this.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: names });
  }

  nack(r: DiscoveryResponse, previousVersion: string, message: string, names: string[] = []): void {
    this.send({ type_url: r.type_url, version_info: previousVersion, response_nonce: r.nonce, resource_names: names, error_detail: { code: 3, message } });
  }
}

/** Names of the resources in a response (decoded). */
export function names(r: DiscoveryResponse): string[] {
  return (r.resources ?? []).map((a) => {
    const m = decodeAny<{ name?: string; cluster_name?: string }>(a);
    return m.name ?? m.cluster_name ?? '';
  }).sort();
}

export function decoded<T = Record<string, unknown>>(r: DiscoveryResponse): T[] {
  return (r.resources ?? []).map((a) => decodeAny<T>(a));
}

/** Polls `fn` until it returns a value other than undefined (liveness bound only). */
export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

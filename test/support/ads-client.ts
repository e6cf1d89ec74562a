import * as grpc from '@grpc/grpc-js';
import { decodeAny, loadAdsServiceDefinition } from '../../shared/src/xds/protos';
import type { DiscoveryRequest, DiscoveryResponse } from '../../control-plane/src/discovery/ads-stream';

/**
 * A raw ADS client for protocol tests: sends exactly the DiscoveryRequests a test writes and
 * queues every DiscoveryResponse, so a test can assert the server's answers one by one.
 */
export class RawAdsClient {
  private readonly client: grpc.Client & { StreamAggregatedResources(): grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> };
  readonly call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  private readonly queue: DiscoveryResponse[] = [];
  private waiters: (() => void)[] = [];
  status: grpc.StatusObject | undefined;
  readonly received: DiscoveryResponse[] = [];

  /** Plaintext by default (a control plane's --xds-insecure-listen port); `tls` for its TLS port. */
  constructor(target: string, readonly nodeId: string, tls?: { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions }) {
    const Ctor = grpc.makeClientConstructor(loadAdsServiceDefinition(), 'AggregatedDiscoveryService');
    this.client = new Ctor(target, tls?.credentials ?? grpc.credentials.createInsecure(), tls?.options ?? {}) as unknown as RawAdsClient['client'];
    this.call = this.client.StreamAggregatedResources();
    this.call.on('data', (r: DiscoveryResponse) => { this.queue.push(r); this.received.push(r); this.wake(); });
    this.call.on('status', (s: grpc.StatusObject) => { this.status = s; this.wake(); });
    this.call.on('error', () => this.wake());
  }

  send(req: DiscoveryRequest): void { this.call.write(req); }

  /** The first request on a stream: carries the node. */
  subscribe(typeUrl: string, names: string[] = [], extra: Partial<DiscoveryRequest> = {}): void {
    this.send({ node: { id: this.nodeId, cluster: 'test', user_agent_name: 'raw-ads-test', user_agent_version: '1.0' }, type_url: typeUrl, resource_names: names, ...extra });
  }

  ack(r: DiscoveryResponse, names: string[] = []): void {
    this.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: names });
  }

  nack(r: DiscoveryResponse, previousVersion: string, message: string, names: string[] = []): void {
    this.send({ type_url: r.type_url, version_info: previousVersion, response_nonce: r.nonce, resource_names: names, error_detail: { code: 3, message } });
  }

  /** The next response (optionally of one type). Fails after `timeoutMs`: a liveness bound, not a performance one. */
  async next(typeUrl?: string, timeoutMs = 10_000): Promise<DiscoveryResponse> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex((r) => typeUrl === undefined || r.type_url === typeUrl);
      if (i >= 0) return this.queue.splice(i, 1)[0]!;
      if (this.status !== undefined) throw new Error(`stream ended (${this.status.code}: ${this.status.details}) while waiting for ${typeUrl ?? 'a response'}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${typeUrl ?? 'response'} within ${timeoutMs}ms; queued: ${this.queue.map((r) => r.type_url).join(', ') || 'none'}`);
      await new Promise<void>((resolve) => { const t = setTimeout(resolve, left); this.waiters.push(() => { clearTimeout(t); resolve(); }); });
    }
  }

  /** Responses received but not yet taken with next(). */
  pending(): DiscoveryResponse[] { return [...this.queue]; }

  async ended(timeoutMs = 10_000): Promise<grpc.StatusObject> {
    const deadline = Date.now() + timeoutMs;
    while (this.status === undefined) {
      if (Date.now() > deadline) throw new Error('stream did not end');
      await new Promise<void>((resolve) => { const t = setTimeout(resolve, 50); this.waiters.push(() => { clearTimeout(t); resolve(); }); });
    }
    return this.status;
  }

  close(): void { this.call.cancel(); this.client.close(); }

  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }
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

import * as grpc from '@grpc/grpc-js';
import { loadAdsServiceDefinition } from '../../shared/src/xds/protos';

/** TLS for a control plane's xDS port; plaintext (its --xds-insecure-listen port) without it. */
export interface RawTls { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions }

/**
 * A raw ADS stream for protocol tests (either RPC of AggregatedDiscoveryService): sends exactly
 * the requests a test writes and queues every response, so a test can take them one by one.
 */
export class RawStreamClient<Req, Res extends { type_url: string }> {
  private readonly client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<Req, Res>;
  private readonly queue: Res[] = [];
  private waiters: (() => void)[] = [];
  status: grpc.StatusObject | undefined;
  readonly received: Res[] = [];

  constructor(target: string, rpc: 'StreamAggregatedResources' | 'DeltaAggregatedResources', tls?: RawTls) {
    const Ctor = grpc.makeClientConstructor(loadAdsServiceDefinition(), 'AggregatedDiscoveryService');
    this.client = new Ctor(target, tls?.credentials ?? grpc.credentials.createInsecure(), tls?.options ?? {});
    this.call = (this.client as unknown as Record<string, () => grpc.ClientDuplexStream<Req, Res>>)[rpc]!.call(this.client);
    this.call.on('data', (r: Res) => { this.queue.push(r); this.received.push(r); this.wake(); });
    this.call.on('status', (s: grpc.StatusObject) => { this.status = s; this.wake(); });
    this.call.on('error', () => this.wake());
  }

  send(req: Req): void { this.call.write(req); }

  /** The next response (optionally of one type). Fails after `timeoutMs`: a liveness bound, not a performance one. */
  async next(typeUrl?: string, timeoutMs = 10_000): Promise<Res> {
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
  pending(): Res[] { return [...this.queue]; }

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

/** The node a raw test client sends on its first request. */
export function testNode(id: string): { id: string; cluster: string; user_agent_name: string; user_agent_version: string } {
  return { id, cluster: 'test', user_agent_name: 'raw-ads-test', user_agent_version: '1.0' };
}

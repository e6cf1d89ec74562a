import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../shared/src/clock';
import type { Logger } from '../../../shared/src/log';
import { loadAdsServiceDefinition } from '../../../shared/src/xds/protos';
import { AdsStream } from './ads-stream';
import type { DiscoveryRequest, DiscoveryResponse } from './ads-stream';
import type { SnapshotCache } from './snapshot-cache';
import type { ProxyStatus } from './proxy-status';

/**
 * envoy.service.discovery.v3.AggregatedDiscoveryService, state of the world.
 * Each stream is independent; a snapshot change is offered to every stream, and each one
 * decides for itself whether the change touches what it subscribed to.
 */
export class DiscoveryServer {
  private readonly streams = new Map<string, AdsStream>();
  private seq = 0;

  constructor(private readonly cache: SnapshotCache, private readonly clock: Clock, private readonly log: Logger) {
    cache.onChange((change) => { for (const s of this.streams.values()) s.onSnapshot(change); });
  }

  /** Adds the ADS service to a gRPC server. */
  register(server: grpc.Server): void {
    server.addService(loadAdsServiceDefinition(), {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => this.handle(call),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'skein serves state-of-the-world ADS only; use StreamAggregatedResources' });
      },
    });
  }

  proxies(): ProxyStatus[] {
    return [...this.streams.values()].map((s) => s.status()).sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  get streamCount(): number { return this.streams.size; }

  /** Ends every stream with UNAVAILABLE (on shutdown), so clients reconnect promptly. */
  closeAll(reason = 'control plane shutting down'): void {
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const s of streams) s.shutdown(reason);
  }

  private handle(call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>): void {
    const id = `${Date.now().toString(36)}-${++this.seq}`;
    const stream = new AdsStream(call, this.cache, this.clock, this.log, id);
    this.streams.set(id, stream);
    const done = () => {
      if (!this.streams.delete(id)) return;
      stream.close();
      this.log.info({ stream: id, node: stream.nodeId }, 'xDS client disconnected');
    };
    call.on('data', (req: DiscoveryRequest) => {
      let problem: string | undefined;
      try {
        problem = stream.onRequest(req);
      } catch (e) {
        this.log.error({ stream: id, err: e }, 'failed to handle a DiscoveryRequest');
        problem = 'internal error handling the request';
      }
      if (problem !== undefined) {
        this.log.warn({ stream: id, node: stream.nodeId, problem }, 'ending xDS stream: protocol violation');
        done();
        call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: problem });
      }
    });
    call.on('end', () => { done(); call.end(); });
    call.on('cancelled', done);
    call.on('error', done);
    call.on('close', done);
  }
}

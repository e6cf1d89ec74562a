import { decodeAny } from '../../shared/src/xds/protos';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse } from '../../control-plane/src/discovery/delta-stream';
import { RawStreamClient, testNode } from './raw-stream-client';
import type { RawTls } from './raw-stream-client';

/**
 * A raw incremental (delta) ADS client for protocol tests: sends exactly the
 * DeltaDiscoveryRequests a test writes and queues every DeltaDiscoveryResponse.
 */
export class RawDeltaClient extends RawStreamClient<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
  private first = true;

  /** Plaintext by default (a control plane's --xds-insecure-listen port); `tls` for its TLS port. */
  constructor(target: string, readonly nodeId: string, tls?: RawTls) {
    super(target, 'DeltaAggregatedResources', tls);
  }

  /** Subscribes to names of a type (none: a legacy wildcard on a first LDS/CDS request); the stream's first request carries the node. */
  subscribe(typeUrl: string, names: string[] = [], extra: Partial<DeltaDiscoveryRequest> = {}): void {
    const node = this.first ? { node: testNode(this.nodeId) } : {};
    this.first = false;
    this.send({ ...node, type_url: typeUrl, resource_names_subscribe: names, ...extra });
  }

  unsubscribe(typeUrl: string, names: string[]): void {
    this.send({ type_url: typeUrl, resource_names_unsubscribe: names });
  }

  ack(r: DeltaDiscoveryResponse): void {
    this.send({ type_url: r.type_url, response_nonce: r.nonce });
  }

  nack(r: DeltaDiscoveryResponse, message: string): void {
    this.send({ type_url: r.type_url, response_nonce: r.nonce, error_detail: { code: 3, message } });
  }
}

/** name → version of the resources in a delta response, checking each resource's name against its decoded body. */
export function versions(r: DeltaDiscoveryResponse): Record<string, string> {
  const out: Record<string, string> = {};
  for (const res of r.resources ?? []) {
    const m = decodeAny<{ name?: string; cluster_name?: string }>(res.resource);
    const inner = m.name ?? m.cluster_name ?? '';
    if (inner !== res.name) throw new Error(`Resource.name ${res.name} does not match the resource's own name ${inner}`);
    out[res.name] = res.version;
  }
  return out;
}

/** The names of the resources in a delta response, sorted. */
export function deltaNames(r: DeltaDiscoveryResponse): string[] { return Object.keys(versions(r)).sort(); }

/** A delta response's removed_resources, sorted. */
export function removed(r: DeltaDiscoveryResponse): string[] { return [...(r.removed_resources ?? [])].sort(); }

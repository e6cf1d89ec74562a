import * as grpc from '@grpc/grpc-js';
import { greeterClient } from './greeter';
import type { GreeterClient } from './greeter';

let registered = false;

/** The bootstrap a proxyless gRPC client needs to reach our control plane. */
export function xdsBootstrap(xdsServer: string, nodeId: string, cluster = 'skein-demo'): string {
  return JSON.stringify({
    xds_servers: [{ server_uri: xdsServer, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: nodeId, cluster, locality: {} },
  });
}

/**
 * A Greeter client over a real proxyless xDS channel (@grpc/grpc-js-xds): `xds:///<service>`.
 * Each client gets its own bootstrap (and so its own xDS client and ADS stream).
 */
export function xdsGreeterClient(service: string, xdsServer: string, nodeId: string): GreeterClient {
  if (!registered) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('@grpc/grpc-js-xds') as { register(): void }).register();
    registered = true;
  }
  return greeterClient(`xds:///${service}`, grpc.credentials.createInsecure(), {
    'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': xdsBootstrap(xdsServer, nodeId),
  });
}
